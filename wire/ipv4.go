package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header sizes (RFC 791 §3.1: IHL counts 32-bit words, 5 to 15).
const (
	IPv4HeaderLen    = 20 // without options
	IPv4MaxHeaderLen = 60 // IHL 15
	IPv4MaxOptionLen = IPv4MaxHeaderLen - IPv4HeaderLen
)

// Bits of the IPv4 flags and fragment offset word (RFC 791 §3.1).
const (
	ipv4FlagDF      = 0x4000 // don't fragment
	ipv4FlagMF      = 0x2000 // more fragments
	ipv4FragOffMask = 0x1fff // in units of 8 bytes
	ipv4OptEOL      = 0      // end of option list (RFC 791 §3.1, "Options")
	ipv4OptNOP      = 1      // no operation
)

// IPv4 is a view of an IPv4 packet (RFC 791 §3.1). A view returned by
// ParseIPv4 may be longer than the packet (Ethernet pads short frames):
// Payload and Packet stop at the total length.
type IPv4 []byte

// ParseIPv4 checks the lengths of the IPv4 packet at the start of b and
// returns it as a view. It returns ErrTruncated if b is shorter than the
// fixed header, the header length or the total length; ErrBadHeader if the
// version is not 4, the IHL is below 5, or the total length is smaller than
// the header (RFC 791 §3.1; RFC 1122 §3.2.1.1 and §3.2.1.2 say to drop such
// packets silently). It does not verify the header checksum (see
// ChecksumValid) nor look inside the options.
func ParseIPv4(b []byte) (IPv4, error) {
	if len(b) < IPv4HeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != 4 {
		return nil, ErrBadHeader
	}
	hl := int(b[0]&0xf) * 4
	if hl < IPv4HeaderLen {
		return nil, ErrBadHeader
	}
	if hl > len(b) {
		return nil, ErrTruncated
	}
	tl := int(binary.BigEndian.Uint16(b[2:]))
	if tl < hl {
		return nil, ErrBadHeader
	}
	if tl > len(b) {
		return nil, ErrTruncated
	}
	return IPv4(b), nil
}

// HeaderLen returns the header length in bytes (IHL*4).
func (p IPv4) HeaderLen() int { return int(p[0]&0xf) * 4 }

// TOS returns the type-of-service octet: DSCP and ECN (RFC 2474, RFC 3168).
func (p IPv4) TOS() uint8 { return p[1] }

// TotalLen returns the total length field: header plus payload.
func (p IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(p[2:]) }

// ID returns the identification field.
func (p IPv4) ID() uint16 { return binary.BigEndian.Uint16(p[4:]) }

// DF reports the don't-fragment flag.
func (p IPv4) DF() bool { return binary.BigEndian.Uint16(p[6:])&ipv4FlagDF != 0 }

// MF reports the more-fragments flag.
func (p IPv4) MF() bool { return binary.BigEndian.Uint16(p[6:])&ipv4FlagMF != 0 }

// FragOffset returns the fragment offset in bytes (the field times 8).
func (p IPv4) FragOffset() uint16 {
	return (binary.BigEndian.Uint16(p[6:]) & ipv4FragOffMask) * 8
}

// TTL returns the time-to-live.
func (p IPv4) TTL() uint8 { return p[8] }

// Protocol returns the protocol number of the payload (ProtoTCP, ...).
func (p IPv4) Protocol() uint8 { return p[9] }

// Checksum returns the header checksum field.
func (p IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(p[10:]) }

// Src returns the source address.
func (p IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(p[12:16])) }

// Dst returns the destination address.
func (p IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(p[16:20])) }

// Options returns the raw option bytes, with any padding.
func (p IPv4) Options() []byte { return p[IPv4HeaderLen:p.HeaderLen()] }

// Payload returns the bytes after the header up to the total length.
func (p IPv4) Payload() []byte { return p[p.HeaderLen():p.TotalLen()] }

// Packet returns the header and payload up to the total length, without any
// link-layer padding that followed.
func (p IPv4) Packet() []byte { return p[:p.TotalLen()] }

// ChecksumValid reports whether the header checksum verifies (RFC 791 §3.1,
// RFC 1071): the ones'-complement sum of the header is all ones.
func (p IPv4) ChecksumValid() bool { return Checksum(p[:p.HeaderLen()], 0) == 0 }

// IsFragment reports whether the packet is a fragment: more fragments
// follow, or it does not start at offset 0 (RFC 791 §2.3, "Fragmentation").
func (p IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(p[6:])&(ipv4FlagMF|ipv4FragOffMask) != 0
}

// SetTTL sets the time-to-live and updates the header checksum
// incrementally (RFC 1624 §3, as a router does when it decrements the TTL,
// RFC 1812 §5.3.1). TTL shares its 16-bit checksum word with the protocol.
func (p IPv4) SetTTL(ttl uint8) {
	old := binary.BigEndian.Uint16(p[8:])
	p[8] = ttl
	p.SetChecksum(ChecksumUpdate16(p.Checksum(), old, binary.BigEndian.Uint16(p[8:])))
}

// SetChecksum sets the header checksum field.
func (p IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(p[10:], c) }

// IPv4Fields is a decoded IPv4 header (RFC 791 §3.1). The reserved flag bit
// is not kept. Options aliases the buffer it was decoded from.
type IPv4Fields struct {
	TOS      uint8
	TotalLen uint16
	ID       uint16
	DF, MF   bool
	// FragOffset is the fragment offset in bytes, a multiple of 8.
	FragOffset uint16
	TTL        uint8
	Protocol   uint8
	// Checksum is the header checksum as decoded. Encode ignores it and
	// writes the computed one.
	Checksum uint16
	Src, Dst netip.Addr
	// Options are the raw option bytes, at most 40; Encode pads them with
	// zeros (end of option list) to a multiple of 4.
	Options []byte
}

// Decode fills f from a view returned by ParseIPv4.
func (f *IPv4Fields) Decode(p IPv4) {
	f.TOS = p.TOS()
	f.TotalLen = p.TotalLen()
	f.ID = p.ID()
	f.DF = p.DF()
	f.MF = p.MF()
	f.FragOffset = p.FragOffset()
	f.TTL = p.TTL()
	f.Protocol = p.Protocol()
	f.Checksum = p.Checksum()
	f.Src = p.Src()
	f.Dst = p.Dst()
	f.Options = p.Options()
}

// options returns Options cut to the 40 bytes an IHL of 15 can hold.
func (f *IPv4Fields) options() []byte {
	if len(f.Options) > IPv4MaxOptionLen {
		return f.Options[:IPv4MaxOptionLen]
	}
	return f.Options
}

// HeaderLen returns the length Encode writes: 20 plus the options rounded up
// to a multiple of 4.
func (f *IPv4Fields) HeaderLen() int {
	return IPv4HeaderLen + (len(f.options())+3)&^3
}

// Encode writes the header into b, which must hold HeaderLen() bytes, and
// returns HeaderLen(). The total length is f.TotalLen (the caller knows the
// payload); FragOffset is rounded down to a multiple of 8; addresses that are
// not IPv4 are written as 0.0.0.0. The header checksum is computed (RFC 791
// §3.1) and f.Checksum is ignored.
func (f *IPv4Fields) Encode(b []byte) int {
	hl := f.HeaderLen()
	_ = b[hl-1]
	b[0] = 0x40 | byte(hl/4)
	b[1] = f.TOS
	binary.BigEndian.PutUint16(b[2:], f.TotalLen)
	binary.BigEndian.PutUint16(b[4:], f.ID)
	ff := f.FragOffset / 8
	if f.DF {
		ff |= ipv4FlagDF
	}
	if f.MF {
		ff |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(b[6:], ff)
	b[8] = f.TTL
	b[9] = f.Protocol
	b[10], b[11] = 0, 0
	putAddr4(b[12:16], f.Src)
	putAddr4(b[16:20], f.Dst)
	n := copy(b[IPv4HeaderLen:hl], f.options())
	clear(b[IPv4HeaderLen+n : hl])
	binary.BigEndian.PutUint16(b[10:], Checksum(b[:hl], 0))
	return hl
}
