package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv6HeaderLen is the length of the header of ICMPv6 error and echo
// messages: type, code, checksum and one 32-bit word whose meaning depends
// on the type (RFC 4443 §2.1, §3, §4). Every ICMPv6 message ustack handles
// is at least this long.
const ICMPv6HeaderLen = 8

// ICMPv6 message types (RFC 4443 §2.1; MLD: RFC 2710, RFC 3810; NDP: RFC
// 4861 §4).
const (
	ICMPv6DestUnreachable  = 1
	ICMPv6PacketTooBig     = 2
	ICMPv6TimeExceeded     = 3
	ICMPv6ParameterProblem = 4
	ICMPv6EchoRequest      = 128
	ICMPv6EchoReply        = 129
	ICMPv6MLDQuery         = 130 // MLDv1 and MLDv2 (RFC 2710 §3.6, RFC 3810 §5.1)
	ICMPv6MLDv1Report      = 131 // RFC 2710 §3.6
	ICMPv6MLDv1Done        = 132 // RFC 2710 §3.6
	ICMPv6RouterSolicit    = 133
	ICMPv6RouterAdvert     = 134
	ICMPv6NeighborSolicit  = 135
	ICMPv6NeighborAdvert   = 136
	ICMPv6Redirect         = 137
	ICMPv6MLDv2Report      = 143 // RFC 3810 §5.2
)

// Codes of ICMPv6DestUnreachable (RFC 4443 §3.1).
const (
	ICMPv6NoRoute         = 0
	ICMPv6AdminProhibited = 1
	ICMPv6BeyondScope     = 2
	ICMPv6AddrUnreachable = 3
	ICMPv6PortUnreachable = 4
	ICMPv6SourcePolicy    = 5
	ICMPv6RejectRoute     = 6
)

// Codes of ICMPv6TimeExceeded (RFC 4443 §3.3).
const (
	ICMPv6HopLimitExceeded       = 0
	ICMPv6ReassemblyTimeExceeded = 1
)

// Codes of ICMPv6ParameterProblem (RFC 4443 §3.4; 3 from RFC 7112 §5).
const (
	ICMPv6ErroneousHeader   = 0
	ICMPv6UnknownNextHeader = 1
	ICMPv6UnknownOption     = 2
	ICMPv6IncompleteChain   = 3
)

// ICMPv6ErrorQuoteMax is the most of the invoking packet an ICMPv6 error
// quotes: as much as keeps the error within the minimum IPv6 MTU (RFC 4443
// §2.4 (c)): 1280 − the 40-byte IPv6 header − the 8-byte ICMPv6 header.
const ICMPv6ErrorQuoteMax = IPv6MinMTU - IPv6HeaderLen - ICMPv6HeaderLen

// ICMPv6IsError reports whether messages of type t are error messages:
// types 0 to 127 (RFC 4443 §2.1). A node never sends an ICMPv6 error about
// one (RFC 4443 §2.4 (e.1)).
func ICMPv6IsError(t uint8) bool { return t < 128 }

// ICMPv6 is a view of an ICMPv6 message (RFC 4443 §2.1): the 8-byte header
// and the data after it.
type ICMPv6 []byte

// ParseICMPv6 checks that b holds at least the 8-byte header and returns a
// view of all of b (pass the upper-layer bytes, which the IPv6 payload
// length already bounds). It verifies neither the checksum (that needs the
// pseudo-header: see ICMPv6Checksum) nor the type.
func ParseICMPv6(b []byte) (ICMPv6, error) {
	if len(b) < ICMPv6HeaderLen {
		return nil, ErrTruncated
	}
	return ICMPv6(b), nil
}

// Type returns the message type.
func (m ICMPv6) Type() uint8 { return m[0] }

// Code returns the message code.
func (m ICMPv6) Code() uint8 { return m[1] }

// Checksum returns the checksum field.
func (m ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// ID returns the identifier of an echo request or reply (RFC 4443 §4).
func (m ICMPv6) ID() uint16 { return binary.BigEndian.Uint16(m[4:]) }

// Seq returns the sequence number of an echo request or reply.
func (m ICMPv6) Seq() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// MTU returns the MTU of a packet-too-big message: the whole second word
// (RFC 4443 §3.2).
func (m ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(m[4:]) }

// Pointer returns the pointer of a parameter-problem message: the offset
// in the invoking packet of the octet where the problem was found, the
// whole second word (RFC 4443 §3.4).
func (m ICMPv6) Pointer() uint32 { return binary.BigEndian.Uint32(m[4:]) }

// Payload returns the bytes after the 8-byte header: the data of an echo,
// or for an error message the invoking packet, from its IPv6 header.
func (m ICMPv6) Payload() []byte { return m[ICMPv6HeaderLen:] }

// SetChecksum sets the checksum field.
func (m ICMPv6) SetChecksum(c uint16) { binary.BigEndian.PutUint16(m[2:], c) }

// Quote decodes the fixed IPv6 header of the packet an error message quotes
// into f, walks its extension headers by length (SkipIPv6Ext), and returns
// the protocol they end with and the quoted bytes from there on: the start
// of the transport header, at least 8 bytes (ports and, for TCP, the
// sequence number, which RFC 5927 §4.1 checks). The quote is cut at the
// quoted payload length when it holds less than the bytes present; it is
// usually cut short by the sender instead (RFC 4443 §2.4 (c)). A quote that
// stops in a fragment that is not the first gives proto ProtoFragment and
// the fragment's data.
//
// It returns ErrTruncated if the quote ends before the IPv6 header, an
// extension header or the 8 bytes, ErrBadHeader if the quoted header is not
// version 6, and ErrTooManyHeaders as SkipIPv6Ext does.
func (m ICMPv6) Quote(f *IPv6Fields) (proto uint8, upper []byte, err error) {
	q := m.Payload()
	if len(q) < IPv6HeaderLen {
		return 0, nil, ErrTruncated
	}
	if q[0]>>4 != 6 {
		return 0, nil, ErrBadHeader
	}
	f.Decode(IPv6(q))
	if n := IPv6HeaderLen + int(f.PayloadLen); n < len(q) {
		q = q[:n]
	}
	proto, off, err := SkipIPv6Ext(q[IPv6HeaderLen:], f.NextHeader)
	if err != nil {
		return 0, nil, err
	}
	upper = q[IPv6HeaderLen+off:]
	if len(upper) < 8 {
		return 0, nil, ErrTruncated
	}
	return proto, upper, nil
}

// ICMPv6Checksum returns the checksum of the ICMPv6 message msg (with a
// zero checksum field) for IPv6 addresses src and dst, with the IPv6
// pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1). Over a message whose
// checksum field is already correct it returns 0, which is how a receiver
// verifies it.
func ICMPv6Checksum(msg []byte, src, dst netip.Addr) uint16 {
	return Checksum(msg, PseudoHeaderSum(src, dst, ProtoICMPv6, len(msg)))
}

// icmpv6HasIDSeq reports whether messages of type t carry an identifier and
// a sequence number (RFC 4443 §4).
func icmpv6HasIDSeq(t uint8) bool { return t == ICMPv6EchoRequest || t == ICMPv6EchoReply }

// ICMPv6Fields is a decoded ICMPv6 error or echo message. Which of ID, Seq,
// MTU and Pointer mean anything depends on Type: Decode fills only those,
// and Encode writes only those (the second word of other types is written
// as zero: decode NDP and MLD messages with NDPFields and MLDFields).
// Payload aliases the buffer it was decoded from.
type ICMPv6Fields struct {
	Type, Code uint8
	// Checksum is the checksum as decoded. Encode ignores it and writes
	// the computed one.
	Checksum uint16
	// ID and Seq are the identifier and sequence number of echo requests
	// and replies (RFC 4443 §4).
	ID, Seq uint16
	// MTU is the MTU of a packet-too-big message (RFC 4443 §3.2).
	MTU uint32
	// Pointer is the pointer of a parameter-problem message (RFC 4443
	// §3.4).
	Pointer uint32
	// Payload is the echo data, or the invoking packet of an error.
	Payload []byte
}

// Decode fills f from a view returned by ParseICMPv6.
func (f *ICMPv6Fields) Decode(m ICMPv6) {
	*f = ICMPv6Fields{
		Type:     m.Type(),
		Code:     m.Code(),
		Checksum: m.Checksum(),
		Payload:  m.Payload(),
	}
	switch f.Type {
	case ICMPv6EchoRequest, ICMPv6EchoReply:
		f.ID, f.Seq = m.ID(), m.Seq()
	case ICMPv6PacketTooBig:
		f.MTU = m.MTU()
	case ICMPv6ParameterProblem:
		f.Pointer = m.Pointer()
	}
}

// Len returns the length Encode writes: 8 plus the payload.
func (f *ICMPv6Fields) Len() int { return ICMPv6HeaderLen + len(f.Payload) }

// Encode writes the header and payload into b, which must hold Len() bytes,
// computes the checksum with the pseudo-header of src and dst (RFC 4443
// §2.3), and returns Len().
func (f *ICMPv6Fields) Encode(b []byte, src, dst netip.Addr) int {
	n := f.Len()
	_ = b[n-1]
	b[0], b[1] = f.Type, f.Code
	b[2], b[3] = 0, 0
	var w uint32
	switch f.Type {
	case ICMPv6EchoRequest, ICMPv6EchoReply:
		w = uint32(f.ID)<<16 | uint32(f.Seq)
	case ICMPv6PacketTooBig:
		w = f.MTU
	case ICMPv6ParameterProblem:
		w = f.Pointer
	}
	binary.BigEndian.PutUint32(b[4:], w)
	copy(b[ICMPv6HeaderLen:n], f.Payload)
	binary.BigEndian.PutUint16(b[2:], ICMPv6Checksum(b[:n], src, dst))
	return n
}
