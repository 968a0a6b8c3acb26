package wire

import "encoding/binary"

// Limits of the extension header walk.
const (
	// IPv6MaxExtHeaders is the most extension headers IPv6Chain.Walk and
	// SkipIPv6Ext walk through before they give up with ErrTooManyHeaders.
	// RFC 8200 §4.1 asks nodes to accept headers in any order and number,
	// and Linux has no such cap (only the packet's length bounds its
	// walk); a cap bounds the work a hostile chain of 8-byte headers can
	// cause. A packet that follows §4.1's order has at most six (hop-by-
	// hop, destination, routing, fragment, authentication, destination).
	IPv6MaxExtHeaders = 16
	// IPv6MaxOptions is the most options other than padding one hop-by-hop
	// or destination options header may hold (Linux's max_hbh_opts_number
	// and max_dst_opts_number, both 8).
	IPv6MaxOptions = 8
	// ipv6MaxPad is the longest run of padding an options header may hold:
	// padding only aligns the header to 8 bytes (RFC 4942 §2.1.9.5; Linux
	// drops longer runs, and PadN whose bytes are not zero).
	ipv6MaxPad = 7
	// IPv6FragmentLen is the length of the fragment header (RFC 8200 §4.5).
	IPv6FragmentLen = 8
	// ipv6MaxExtLen is the longest header of the common format: a header
	// extension length of 255 eight-byte units past the first.
	ipv6MaxExtLen = 256 * 8
)

// IPv6 option types this package knows (RFC 8200 §4.2, RFC 2711; IANA
// "Destination Options and Hop-by-Hop Options").
const (
	IPv6OptPad1        = 0x00
	IPv6OptPadN        = 0x01
	IPv6OptRouterAlert = 0x05 // hop-by-hop only (RFC 2711)
)

// RouterAlertMLD is the Router Alert value of MLD messages (RFC 2711 §2.1,
// RFC 3810 §5).
const RouterAlertMLD = 0

// IPv6OptionAction is what RFC 8200 §4.2 tells a node to do with a packet
// holding an option whose type it does not recognize, as the two
// high-order bits of the type say.
type IPv6OptionAction uint8

// The four actions of RFC 8200 §4.2.
const (
	// IPv6OptSkip (00): skip the option and continue with the header.
	IPv6OptSkip IPv6OptionAction = iota
	// IPv6OptDiscard (01): discard the packet.
	IPv6OptDiscard
	// IPv6OptDiscardICMP (10): discard the packet and send an ICMPv6
	// parameter problem, code 2, pointing at the option type, whether or
	// not the destination was multicast.
	IPv6OptDiscardICMP
	// IPv6OptDiscardICMPUnicast (11): discard the packet and send the
	// parameter problem only if the destination was not multicast.
	IPv6OptDiscardICMPUnicast
)

// IPv6OptionActionOf returns the action the option type typ asks for when
// it is not recognized (RFC 8200 §4.2).
func IPv6OptionActionOf(typ uint8) IPv6OptionAction { return IPv6OptionAction(typ >> 6) }

// RouterAlertOption returns a Router Alert option (RFC 2711 §2.1) with
// value v: type 5, length 2, the value. MLD messages carry it with
// RouterAlertMLD in a hop-by-hop header (RFC 3810 §5).
func RouterAlertOption(v uint16) [4]byte {
	return [4]byte{IPv6OptRouterAlert, 2, byte(v >> 8), byte(v)}
}

// IPv6ExtHeader is a view of an IPv6 extension header in the common format
// of RFC 8200 §4 (RFC 6564): next header, header extension length in
// 8-byte units past the first 8, and data. Hop-by-hop, destination options
// and routing headers have this format.
type IPv6ExtHeader []byte

// ParseIPv6ExtHeader checks that b starts with a whole extension header in
// the common format and returns a view of exactly that header. It returns
// ErrTruncated if b ends first.
func ParseIPv6ExtHeader(b []byte) (IPv6ExtHeader, error) {
	if len(b) < 2 {
		return nil, ErrTruncated
	}
	n := (int(b[1]) + 1) * 8
	if n > len(b) {
		return nil, ErrTruncated
	}
	return IPv6ExtHeader(b[:n]), nil
}

// NextHeader returns the type of the header that follows.
func (h IPv6ExtHeader) NextHeader() uint8 { return h[0] }

// Len returns the header's length in bytes, a multiple of 8.
func (h IPv6ExtHeader) Len() int { return (int(h[1]) + 1) * 8 }

// Data returns the bytes after the next header and length octets: the
// options of a hop-by-hop or destination options header (RFC 8200 §4.2),
// or the routing type, segments left and type-specific data of a routing
// header (§4.4).
func (h IPv6ExtHeader) Data() []byte { return h[2:h.Len()] }

// RoutingType returns the routing type of a routing header (RFC 8200 §4.4).
func (h IPv6ExtHeader) RoutingType() uint8 { return h[2] }

// SegmentsLeft returns the segments-left field of a routing header: how
// many listed nodes the packet has yet to visit (RFC 8200 §4.4).
func (h IPv6ExtHeader) SegmentsLeft() uint8 { return h[3] }

// IPv6OptionsFields is a hop-by-hop or destination options header (RFC
// 8200 §4.3, §4.6) to encode, or decoded. Options aliases the buffer it was
// decoded from.
type IPv6OptionsFields struct {
	NextHeader uint8
	// Options are the option TLVs (RFC 8200 §4.2). Decode keeps the
	// padding; Encode pads with Pad1 or PadN so the header is a multiple
	// of 8 bytes long, and writes at most the 2046 bytes a header holds.
	Options []byte
}

// Decode fills f from a view returned by ParseIPv6ExtHeader.
func (f *IPv6OptionsFields) Decode(h IPv6ExtHeader) {
	f.NextHeader = h.NextHeader()
	f.Options = h.Data()
}

// options returns Options cut to what one header can hold.
func (f *IPv6OptionsFields) options() []byte {
	if len(f.Options) > ipv6MaxExtLen-2 {
		return f.Options[:ipv6MaxExtLen-2]
	}
	return f.Options
}

// Len returns the length Encode writes: 2 plus the options, rounded up to
// a multiple of 8.
func (f *IPv6OptionsFields) Len() int { return (2 + len(f.options()) + 7) &^ 7 }

// Encode writes the header into b, which must hold Len() bytes, and
// returns Len(). One byte of padding is a Pad1 option, more is a PadN
// (RFC 8200 §4.2).
func (f *IPv6OptionsFields) Encode(b []byte) int {
	n := f.Len()
	_ = b[n-1]
	b[0] = f.NextHeader
	b[1] = byte(n/8 - 1)
	i := 2 + copy(b[2:n], f.options())
	switch pad := n - i; {
	case pad == 1:
		b[i] = IPv6OptPad1
	case pad >= 2:
		b[i], b[i+1] = IPv6OptPadN, byte(pad-2)
		clear(b[i+2 : n])
	}
	return n
}

// IPv6Fragment is a view of an IPv6 fragment header (RFC 8200 §4.5): next
// header, a reserved octet, the fragment offset in 8-byte units with two
// reserved bits and the M (more fragments) flag, and the identification.
type IPv6Fragment []byte

// ParseIPv6Fragment checks that b holds a fragment header and returns a
// view of its 8 bytes. It returns ErrTruncated if b is shorter.
func ParseIPv6Fragment(b []byte) (IPv6Fragment, error) {
	if len(b) < IPv6FragmentLen {
		return nil, ErrTruncated
	}
	return IPv6Fragment(b[:IPv6FragmentLen]), nil
}

// NextHeader returns the type of the first header of the fragmentable part
// (RFC 8200 §4.5), the same in every fragment.
func (h IPv6Fragment) NextHeader() uint8 { return h[0] }

// Offset returns the fragment offset in bytes (the field times 8).
func (h IPv6Fragment) Offset() uint16 { return binary.BigEndian.Uint16(h[2:]) &^ 7 }

// More reports the M flag: more fragments follow.
func (h IPv6Fragment) More() bool { return h[3]&1 != 0 }

// ID returns the identification.
func (h IPv6Fragment) ID() uint32 { return binary.BigEndian.Uint32(h[4:]) }

// IPv6FragmentFields is a decoded fragment header. The reserved fields are
// not kept; Encode writes them as zero.
type IPv6FragmentFields struct {
	NextHeader uint8
	// Offset is the fragment offset in bytes, a multiple of 8; Encode
	// rounds it down.
	Offset uint16
	More   bool
	ID     uint32
}

// Decode fills f from a view returned by ParseIPv6Fragment.
func (f *IPv6FragmentFields) Decode(h IPv6Fragment) {
	f.NextHeader = h.NextHeader()
	f.Offset = h.Offset()
	f.More = h.More()
	f.ID = h.ID()
}

// Atomic reports whether the header belongs to an atomic fragment: offset 0
// and M clear, a whole packet that carries a fragment header anyway (RFC
// 6946), processed as if it had none.
func (f *IPv6FragmentFields) Atomic() bool { return f.Offset == 0 && !f.More }

// Encode writes the header into b, which must hold IPv6FragmentLen bytes,
// and returns IPv6FragmentLen.
func (f *IPv6FragmentFields) Encode(b []byte) int {
	_ = b[IPv6FragmentLen-1]
	b[0], b[1] = f.NextHeader, 0
	w := f.Offset &^ 7
	if f.More {
		w |= 1
	}
	binary.BigEndian.PutUint16(b[2:], w)
	binary.BigEndian.PutUint32(b[4:], f.ID)
	return IPv6FragmentLen
}

// IPv6Chain is a packet's extension header chain as Walk found it (RFC 8200
// §4): what follows it, the fragment header if there is one, the Router
// Alert, and, when Walk fails, the ICMPv6 parameter problem the node must
// send, if any.
type IPv6Chain struct {
	// Proto is the Next Header value that ended the walk: the upper-layer
	// protocol (ProtoTCP, ProtoUDP, ProtoICMPv6), ProtoNoNext (nothing
	// follows, RFC 8200 §4.7), or a value Walk does not walk through,
	// which includes ProtoAH and ProtoESP (ustack does not do IPsec). A
	// value the caller has no handler for is answered with a parameter
	// problem, code 1, pointing at ProtoOffset (RFC 8200 §4; RFC 4443
	// §3.4).
	Proto uint8
	// Offset is where Proto's header starts, from the start of the IPv6
	// header.
	Offset int
	// ProtoOffset is the offset of the Next Header field that holds
	// Proto: 6 for the fixed header, else the start of the last extension
	// header walked.
	ProtoOffset int
	// Headers is the number of extension headers walked.
	Headers int

	// FragHeader is the offset of the fragment header (RFC 8200 §4.5), 0
	// if there is none; Frag is that header, decoded, and FragProtoOffset
	// the offset of the Next Header field that names it. For a fragment
	// that is not atomic Walk stops after the fragment header: Proto is
	// the fragment header's next header and Offset is FragHeader+8, where
	// the fragment's data starts. The bytes before FragHeader are the
	// per-fragment headers; on reassembly the Next Header field at
	// FragProtoOffset takes Frag.NextHeader. An atomic fragment (see
	// IPv6FragmentFields.Atomic) is walked through.
	FragHeader      int
	FragProtoOffset int
	Frag            IPv6FragmentFields

	// RouterAlert reports a Router Alert option (RFC 2711) in the
	// hop-by-hop header; RouterAlertValue is its value (RouterAlertMLD
	// for MLD).
	RouterAlert      bool
	RouterAlertValue uint16

	// When Walk returns an error, ICMP says whether RFC 8200 asks for an
	// ICMPv6 parameter problem (RFC 4443 §3.4) with Code and Pointer (an
	// offset from the start of the IPv6 header); the caller still applies
	// RFC 4443 §2.4 (e) and its rate limit. Pointer is 0 for code 3.
	ICMP    bool
	Code    uint8
	Pointer uint32
}

// Fragmented reports whether Walk stopped at the fragment header of a
// fragment that is not atomic, to be reassembled before anything after it
// is processed (RFC 8200 §4.5).
func (c *IPv6Chain) Fragmented() bool { return c.FragHeader != 0 && !c.Frag.Atomic() }

// Upper returns the bytes of p from Offset to the end of the packet: the
// upper-layer header and data, or a fragment's data. p must be the view
// Walk walked.
func (c *IPv6Chain) Upper(p IPv6) []byte { return p.Packet()[c.Offset:] }

// problem records the parameter problem to send and returns err.
func (c *IPv6Chain) problem(code uint8, pointer int, err error) error {
	c.ICMP, c.Code, c.Pointer = true, code, uint32(pointer)
	return err
}

// Walk walks the extension headers of p, a view returned by ParseIPv6, as
// the destination node processes them (RFC 8200 §4), and fills c. It reads
// only within the payload length and walks at most IPv6MaxExtHeaders
// headers. The errors, all meaning "discard the packet":
//
//   - ErrTruncated: a header runs past the end of the packet (silently;
//     Linux does the same). In the first fragment of a fragmented packet,
//     headers up to the upper-layer header that do not all fit also give
//     ErrTruncated, with a parameter problem, code 3, pointer 0 (RFC 8200
//     §4.5, RFC 7112).
//   - ErrTooManyHeaders: more than IPv6MaxExtHeaders headers (silently).
//   - ErrBadHeader: a hop-by-hop header anywhere but first (parameter
//     problem, code 1, at the Next Header field that names it: RFC 8200
//     §4.1); a fragment whose length is not a multiple of 8 with M set
//     (code 0 at the payload length field), or that would end past 65535
//     bytes (code 0 at its offset field) (§4.5).
//   - ErrBadOptions: a malformed option list (an option running past the
//     header, a wrong-length Router Alert, more than 7 bytes of padding in
//     a row or PadN with non-zero bytes, more than IPv6MaxOptions options),
//     silently as Linux does.
//   - ErrUnknownOption: an option of a type this package does not know,
//     whose high-order bits ask for the packet to be discarded, with the
//     parameter problem they ask for (§4.2, code 2 at the option's type).
//     A multicast destination is taken into account for 11-type options.
//   - ErrUnsupported: a routing header with segments left (parameter
//     problem, code 0, at its routing type): ustack forwards along no
//     routing type (§4.4). Routing headers with no segments left are
//     skipped.
//
// Walk stops at the first Next Header value that is not a hop-by-hop,
// destination options, routing or fragment header; see IPv6Chain.Proto.
func (c *IPv6Chain) Walk(p IPv6) error {
	*c = IPv6Chain{}
	pkt := p.Packet()
	next, nh, off := pkt[6], 6, IPv6HeaderLen
	for {
		var n int
		switch next {
		case ProtoHopByHop, ProtoDestOpts, ProtoRouting:
			if next == ProtoHopByHop && off != IPv6HeaderLen {
				return c.problem(ICMPv6UnknownNextHeader, nh, ErrBadHeader)
			}
			if c.Headers == IPv6MaxExtHeaders {
				return ErrTooManyHeaders
			}
			h, err := ParseIPv6ExtHeader(pkt[off:])
			if err != nil {
				return err
			}
			n = h.Len()
			switch {
			case next == ProtoRouting:
				if h.SegmentsLeft() != 0 {
					return c.problem(ICMPv6ErroneousHeader, off+2, ErrUnsupported)
				}
			default:
				if err := c.options(pkt, off, n, next == ProtoHopByHop, p.Dst().IsMulticast()); err != nil {
					return err
				}
			}
		case ProtoFragment:
			if c.Headers == IPv6MaxExtHeaders {
				return ErrTooManyHeaders
			}
			h, err := ParseIPv6Fragment(pkt[off:])
			if err != nil {
				return err
			}
			c.FragHeader, c.FragProtoOffset = off, nh
			c.Frag.Decode(h)
			n = IPv6FragmentLen
			if !c.Frag.Atomic() {
				c.Headers++
				return c.fragment(pkt)
			}
		default:
			c.Proto, c.Offset, c.ProtoOffset = next, off, nh
			return nil
		}
		c.Headers++
		next, nh, off = pkt[off], off, off+n
	}
}

// fragment checks the fragment header of a fragment that is not atomic
// (RFC 8200 §4.5, in Linux's order: ipv6_frag_rcv, ip6_frag_queue) and ends
// the walk after it.
func (c *IPv6Chain) fragment(pkt []byte) error {
	f := c.FragHeader
	c.Proto, c.Offset, c.ProtoOffset = c.Frag.NextHeader, f+IPv6FragmentLen, f
	data := len(pkt) - c.Offset
	if c.Frag.Offset == 0 {
		// RFC 7112: the first fragment holds every header up to and
		// including the upper-layer header.
		proto, off, err := SkipIPv6Ext(pkt[c.Offset:], c.Frag.NextHeader)
		if err == ErrTooManyHeaders {
			return err
		}
		if err != nil || off+minUpperLen(proto) > data {
			return c.problem(ICMPv6IncompleteChain, 0, ErrTruncated)
		}
	}
	if int(c.Frag.Offset)+data > 0xffff {
		return c.problem(ICMPv6ErroneousHeader, f+2, ErrBadHeader)
	}
	if c.Frag.More && data%8 != 0 {
		return c.problem(ICMPv6ErroneousHeader, 4, ErrBadHeader)
	}
	return nil
}

// minUpperLen is how much of an upper-layer header the first fragment must
// hold (Linux ipv6_frag_thdr_truncated): the fixed TCP, UDP or ICMPv6
// header, nothing after "no next header", one byte of anything else.
func minUpperLen(proto uint8) int {
	switch proto {
	case ProtoTCP:
		return TCPHeaderLen
	case ProtoUDP:
		return UDPHeaderLen
	case ProtoICMPv6:
		return ICMPv6HeaderLen
	case ProtoNoNext:
		return 0
	}
	return 1
}

// options processes the option list of the hop-by-hop (hbh) or destination
// options header pkt[start:start+n] (RFC 8200 §4.2, with Linux's limits:
// ip6_parse_tlv).
func (c *IPv6Chain) options(pkt []byte, start, n int, hbh, multicast bool) error {
	end := start + n
	pad, count := 0, 0
	for i := start + 2; i < end; {
		typ := pkt[i]
		if typ == IPv6OptPad1 {
			if pad++; pad > ipv6MaxPad {
				return ErrBadOptions
			}
			i++
			continue
		}
		if i+2 > end {
			return ErrBadOptions
		}
		l := 2 + int(pkt[i+1])
		if i+l > end {
			return ErrBadOptions
		}
		if typ == IPv6OptPadN {
			if pad += l; pad > ipv6MaxPad {
				return ErrBadOptions
			}
			for _, x := range pkt[i+2 : i+l] {
				if x != 0 {
					return ErrBadOptions
				}
			}
			i += l
			continue
		}
		pad = 0
		if count++; count > IPv6MaxOptions {
			return ErrBadOptions
		}
		switch {
		case hbh && typ == IPv6OptRouterAlert:
			if l != 4 {
				return ErrBadOptions
			}
			c.RouterAlert, c.RouterAlertValue = true, binary.BigEndian.Uint16(pkt[i+2:])
		default:
			switch IPv6OptionActionOf(typ) {
			case IPv6OptDiscard:
				return ErrUnknownOption
			case IPv6OptDiscardICMP:
				return c.problem(ICMPv6UnknownOption, i, ErrUnknownOption)
			case IPv6OptDiscardICMPUnicast:
				if multicast {
					return ErrUnknownOption
				}
				return c.problem(ICMPv6UnknownOption, i, ErrUnknownOption)
			}
		}
		i += l
	}
	return nil
}

// SkipIPv6Ext walks the extension headers at the start of b by their
// lengths alone, without processing options (as Linux's
// ipv6_skip_exthdr, for quoted packets and the first-fragment check), and
// returns the Next Header value that ends the walk and the offset in b
// where that header starts. next is the Next Header field that precedes b.
// It walks through hop-by-hop, destination options, routing and
// authentication (RFC 4302 §2.2: length in 4-byte units, plus 2) headers,
// and fragment headers at offset 0; a fragment header at another offset
// ends the walk with proto ProtoFragment and off just past it, because what
// follows is the middle of a packet, not a header. It returns ErrTruncated
// if a header runs past b, and ErrTooManyHeaders after IPv6MaxExtHeaders.
func SkipIPv6Ext(b []byte, next uint8) (proto uint8, off int, err error) {
	for headers := 0; ; headers++ {
		var n int
		switch next {
		case ProtoHopByHop, ProtoDestOpts, ProtoRouting, ProtoAH, ProtoFragment:
		default:
			return next, off, nil
		}
		if headers == IPv6MaxExtHeaders {
			return next, off, ErrTooManyHeaders
		}
		if off+2 > len(b) {
			return next, off, ErrTruncated
		}
		switch next {
		case ProtoAH:
			n = (int(b[off+1]) + 2) * 4
		case ProtoFragment:
			n = IPv6FragmentLen
		default:
			n = (int(b[off+1]) + 1) * 8
		}
		if off+n > len(b) {
			return next, off, ErrTruncated
		}
		if next == ProtoFragment && IPv6Fragment(b[off:]).Offset() != 0 {
			return ProtoFragment, off + n, nil
		}
		next, off = b[off], off+n
	}
}
