package wire

import (
	"encoding/binary"
	"net/netip"
)

// UDPHeaderLen is the length of the UDP header (RFC 768).
const UDPHeaderLen = 8

// UDP is a view of a UDP datagram (RFC 768). A view returned by ParseUDP may
// be longer than the datagram; Payload and Datagram stop at the length
// field.
type UDP []byte

// ParseUDP checks that b holds a UDP header whose length field is at least 8
// and fits in b, and returns it as a view. It returns ErrTruncated if b is
// shorter than the header or the length field, and ErrBadHeader if the
// length field is below 8 (RFC 768: the length counts the header). It does
// not verify the checksum (that needs the pseudo-header: see UDPChecksum).
func ParseUDP(b []byte) (UDP, error) {
	if len(b) < UDPHeaderLen {
		return nil, ErrTruncated
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if n < UDPHeaderLen {
		return nil, ErrBadHeader
	}
	if n > len(b) {
		return nil, ErrTruncated
	}
	return UDP(b), nil
}

// SrcPort returns the source port (0 if unused, RFC 768).
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[0:]) }

// DstPort returns the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[2:]) }

// Length returns the length field: header plus payload.
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[4:]) }

// Checksum returns the checksum field; 0 means the sender computed none
// (RFC 768).
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[6:]) }

// Payload returns the data after the header, up to the length field.
func (u UDP) Payload() []byte { return u[UDPHeaderLen:u.Length()] }

// Datagram returns the header and payload up to the length field: the bytes
// the checksum covers.
func (u UDP) Datagram() []byte { return u[:u.Length()] }

// SetChecksum sets the checksum field.
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u[6:], c) }

// UDPFields is a decoded UDP header. Payload aliases the buffer it was
// decoded from.
type UDPFields struct {
	SrcPort, DstPort uint16
	// Checksum is the checksum as decoded. Encode ignores it and writes
	// the computed one.
	Checksum uint16
	Payload  []byte
}

// Decode fills f from a view returned by ParseUDP.
func (f *UDPFields) Decode(u UDP) {
	f.SrcPort = u.SrcPort()
	f.DstPort = u.DstPort()
	f.Checksum = u.Checksum()
	f.Payload = u.Payload()
}

// Len returns the length Encode writes, and the value of the length field:
// 8 plus the payload. It must not exceed 65535.
func (f *UDPFields) Len() int { return UDPHeaderLen + len(f.Payload) }

// Encode writes the header and payload into b, which must hold Len() bytes,
// computes the checksum with the pseudo-header of the addresses src and dst
// (IPv4 or IPv6, see PseudoHeaderSum), and returns Len(). A computed checksum
// of 0 is sent as 0xffff, since 0 means "no checksum" (RFC 768; RFC 8200
// §8.1).
func (f *UDPFields) Encode(b []byte, src, dst netip.Addr) int {
	n := f.Len()
	_ = b[n-1]
	binary.BigEndian.PutUint16(b[0:], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:], f.DstPort)
	binary.BigEndian.PutUint16(b[4:], uint16(n))
	b[6], b[7] = 0, 0
	copy(b[UDPHeaderLen:n], f.Payload)
	c := UDPChecksum(b[:n], src, dst)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:], c)
	return n
}

// UDPChecksum returns the checksum of the UDP datagram seg (header with a
// zero checksum field, and payload) for addresses src and dst, IPv4 or IPv6
// (RFC 768, RFC 8200 §8.1; see PseudoHeaderSum). Over a datagram whose
// checksum field is already correct it returns 0, which is how a receiver
// verifies it. A received checksum field of 0 means none was sent: over
// IPv4 there is nothing to verify; over IPv6 the datagram must be discarded
// (RFC 8200 §8.1).
func UDPChecksum(seg []byte, src, dst netip.Addr) uint16 {
	return Checksum(seg, PseudoHeaderSum(src, dst, ProtoUDP, len(seg)))
}
