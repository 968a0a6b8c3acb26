package wire

import "encoding/binary"

// ICMPv4HeaderLen is the length of the ICMP header: type, code, checksum and
// one 32-bit word whose meaning depends on the type (RFC 792).
const ICMPv4HeaderLen = 8

// ICMPv4 message types (RFC 792).
const (
	ICMPv4EchoReply        = 0
	ICMPv4DestUnreachable  = 3
	ICMPv4EchoRequest      = 8
	ICMPv4TimeExceeded     = 11
	ICMPv4ParameterProblem = 12
)

// Codes of ICMPv4DestUnreachable (RFC 792; 4 with a next-hop MTU, RFC 1191
// §4; 13 from RFC 1812 §5.2.7.1).
const (
	ICMPv4NetUnreachable      = 0
	ICMPv4HostUnreachable     = 1
	ICMPv4ProtoUnreachable    = 2
	ICMPv4PortUnreachable     = 3
	ICMPv4FragmentationNeeded = 4
	ICMPv4AdminProhibited     = 13
)

// Codes of ICMPv4TimeExceeded (RFC 792).
const (
	ICMPv4TTLExceeded            = 0
	ICMPv4ReassemblyTimeExceeded = 1
)

// icmpv4HasIDSeq reports whether messages of type t carry an identifier and
// a sequence number in their second word: echo, timestamp and information
// (RFC 792) and address mask (RFC 950 Appendix I) requests and replies.
func icmpv4HasIDSeq(t uint8) bool {
	switch t {
	case ICMPv4EchoReply, ICMPv4EchoRequest, 13, 14, 15, 16, 17, 18:
		return true
	}
	return false
}

// icmpv4HasMTU reports whether a message carries a next-hop MTU (RFC 1191
// §4: destination unreachable, fragmentation needed and DF set).
func icmpv4HasMTU(t, code uint8) bool {
	return t == ICMPv4DestUnreachable && code == ICMPv4FragmentationNeeded
}

// ICMPv4 is a view of an ICMP message (RFC 792): the 8-byte header and the
// data after it.
type ICMPv4 []byte

// ParseICMPv4 checks that b holds at least an ICMP header and returns it as a
// view of all of b (pass the IPv4 payload, which the IP total length already
// bounds). It does not verify the checksum (see ChecksumValid) nor check the
// type.
func ParseICMPv4(b []byte) (ICMPv4, error) {
	if len(b) < ICMPv4HeaderLen {
		return nil, ErrTruncated
	}
	return ICMPv4(b), nil
}

// Type returns the message type.
func (m ICMPv4) Type() uint8 { return m[0] }

// Code returns the message code.
func (m ICMPv4) Code() uint8 { return m[1] }

// Checksum returns the checksum field.
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// ChecksumValid reports whether the checksum over the whole message verifies
// (RFC 792, RFC 1071).
func (m ICMPv4) ChecksumValid() bool { return Checksum(m, 0) == 0 }

// ID returns the identifier of an echo (or other query) message: the first
// half of the second word.
func (m ICMPv4) ID() uint16 { return binary.BigEndian.Uint16(m[4:]) }

// Seq returns the sequence number of an echo (or other query) message: the
// second half of the second word.
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// NextHopMTU returns the next-hop MTU of a destination-unreachable,
// fragmentation-needed message (RFC 1191 §4): the low 16 bits of the second
// word. Routers older than RFC 1191 send 0.
func (m ICMPv4) NextHopMTU() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// Pointer returns the octet pointer of a parameter-problem message (RFC 792):
// the offset in the quoted header of the bad octet.
func (m ICMPv4) Pointer() uint8 { return m[4] }

// Payload returns the bytes after the 8-byte header: the data of an echo, or
// for an error message the quoted IP header and the start of its payload.
func (m ICMPv4) Payload() []byte { return m[ICMPv4HeaderLen:] }

// SetChecksum sets the checksum field.
func (m ICMPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(m[2:], c) }

// Quote decodes the IPv4 header that an error message (destination
// unreachable, time exceeded, parameter problem) quotes into f, and returns
// the quoted bytes after that header: the start of the transport header, at
// least 8 bytes (RFC 792; RFC 1812 §4.3.2.3 lets routers quote more, and
// Linux does). The quoted header is truncated by design, so its total length
// is not checked against the bytes present. It returns ErrTruncated if fewer
// than the header and 8 bytes are quoted, and ErrBadHeader if the quoted
// header is not IPv4 or its IHL is below 5.
func (m ICMPv4) Quote(f *IPv4Fields) (transport []byte, err error) {
	q := m.Payload()
	if len(q) < IPv4HeaderLen {
		return nil, ErrTruncated
	}
	if q[0]>>4 != 4 {
		return nil, ErrBadHeader
	}
	hl := int(q[0]&0xf) * 4
	if hl < IPv4HeaderLen {
		return nil, ErrBadHeader
	}
	if len(q) < hl+8 {
		return nil, ErrTruncated
	}
	f.Decode(IPv4(q[:hl]))
	return q[hl:], nil
}

// ICMPv4Fields is a decoded ICMP message. Which of ID, Seq, MTU and Pointer
// mean anything depends on Type: Decode fills only those, and Encode writes
// only those (the rest of the second word, unused for errors, is zero).
// Payload aliases the buffer it was decoded from.
type ICMPv4Fields struct {
	Type, Code uint8
	// Checksum is the checksum as decoded. Encode ignores it and writes
	// the computed one.
	Checksum uint16
	// ID and Seq are the identifier and sequence number of echo requests
	// and replies (and of the other query types, RFC 792 and RFC 950).
	ID, Seq uint16
	// MTU is the next-hop MTU of a fragmentation-needed message (type 3
	// code 4, RFC 1191 §4).
	MTU uint16
	// Pointer is the octet pointer of a parameter-problem message (type
	// 12, RFC 792).
	Pointer uint8
	// Payload is the echo data, or the quoted datagram of an error.
	Payload []byte
}

// Decode fills f from a view returned by ParseICMPv4.
func (f *ICMPv4Fields) Decode(m ICMPv4) {
	*f = ICMPv4Fields{
		Type:     m.Type(),
		Code:     m.Code(),
		Checksum: m.Checksum(),
		Payload:  m.Payload(),
	}
	switch {
	case icmpv4HasIDSeq(f.Type):
		f.ID, f.Seq = m.ID(), m.Seq()
	case icmpv4HasMTU(f.Type, f.Code):
		f.MTU = m.NextHopMTU()
	case f.Type == ICMPv4ParameterProblem:
		f.Pointer = m.Pointer()
	}
}

// Len returns the length Encode writes: 8 plus the payload.
func (f *ICMPv4Fields) Len() int { return ICMPv4HeaderLen + len(f.Payload) }

// Encode writes the header and payload into b, which must hold Len() bytes,
// computes the checksum over them (RFC 792), and returns Len().
func (f *ICMPv4Fields) Encode(b []byte) int {
	n := f.Len()
	_ = b[n-1]
	b[0], b[1] = f.Type, f.Code
	b[2], b[3] = 0, 0
	var w1, w2 uint16
	switch {
	case icmpv4HasIDSeq(f.Type):
		w1, w2 = f.ID, f.Seq
	case icmpv4HasMTU(f.Type, f.Code):
		w2 = f.MTU
	case f.Type == ICMPv4ParameterProblem:
		w1 = uint16(f.Pointer) << 8
	}
	binary.BigEndian.PutUint16(b[4:], w1)
	binary.BigEndian.PutUint16(b[6:], w2)
	copy(b[ICMPv4HeaderLen:n], f.Payload)
	binary.BigEndian.PutUint16(b[2:], Checksum(b[:n], 0))
	return n
}
