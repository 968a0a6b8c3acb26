package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// pkt6 builds an IPv6 packet from slaacA to dst whose fixed header names
// next, followed by the given pieces.
func pkt6(next uint8, dst netip.Addr, pieces ...[]byte) IPv6 {
	payload := bytes.Join(pieces, nil)
	f := IPv6Fields{PayloadLen: uint16(len(payload)), NextHeader: next, HopLimit: 64, Src: slaacA, Dst: dst}
	b := make([]byte, IPv6HeaderLen, IPv6HeaderLen+len(payload))
	f.Encode(b)
	return IPv6(append(b, payload...))
}

// ext returns an 8-byte-unit extension header in the common format with
// the given next header and data (which must make it a multiple of 8).
func ext(next uint8, data ...byte) []byte {
	h := append([]byte{next, 0}, data...)
	if len(h)%8 != 0 {
		panic("extension header not a multiple of 8")
	}
	h[1] = byte(len(h)/8 - 1)
	return h
}

func frag(next uint8, offset uint16, more bool, id uint32) []byte {
	f := IPv6FragmentFields{NextHeader: next, Offset: offset, More: more, ID: id}
	b := make([]byte, IPv6FragmentLen)
	f.Encode(b)
	return b
}

var udp8 = []byte{0x9c, 0x40, 0x27, 0x0f, 0, 8, 0, 0} // an empty UDP datagram

// TestIPv6ChainGolden walks the captured chains. Where R answered with a
// parameter problem, Walk must ask for the same code and pointer as the
// kernel sent (the paramprob-* frames).
func TestIPv6ChainGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		want IPv6Chain
		err  error
	}{
		{"echo-request", IPv6Chain{Proto: ProtoICMPv6, Offset: 40, ProtoOffset: 6}, nil},
		{"tcp-syn", IPv6Chain{Proto: ProtoTCP, Offset: 40, ProtoOffset: 6}, nil},
		{"udp", IPv6Chain{Proto: ProtoUDP, Offset: 40, ProtoOffset: 6}, nil},
		{"proto-253", IPv6Chain{Proto: 253, Offset: 40, ProtoOffset: 6}, nil},
		// MLD: hop-by-hop with Router Alert 0 and PadN(0) (RFC 3810 §5).
		{"mld-report-linkup", IPv6Chain{Proto: ProtoICMPv6, Offset: 48, ProtoOffset: 40, Headers: 1, RouterAlert: true}, nil},
		{"mld-query-v2", IPv6Chain{Proto: ProtoICMPv6, Offset: 48, ProtoOffset: 40, Headers: 1, RouterAlert: true}, nil},
		{"dstopt-skip", IPv6Chain{Proto: ProtoUDP, Offset: 48, ProtoOffset: 40, Headers: 1}, nil},
		{"dstopt-16", IPv6Chain{Proto: ProtoUDP, Offset: 56, ProtoOffset: 40, Headers: 1}, nil},
		{"dstopt-unknown", IPv6Chain{ICMP: true, Code: ICMPv6UnknownOption, Pointer: 42}, ErrUnknownOption},
		{"hbh-unknown", IPv6Chain{ICMP: true, Code: ICMPv6UnknownOption, Pointer: 46}, ErrUnknownOption},
		{"hbh-discard", IPv6Chain{}, ErrUnknownOption},
		// RFC 8200 §4.5: the walk stops after the fragment header.
		{"frag-first", IPv6Chain{Proto: ProtoICMPv6, Offset: 48, ProtoOffset: 40, Headers: 1, FragHeader: 40, FragProtoOffset: 6,
			Frag: IPv6FragmentFields{NextHeader: ProtoICMPv6, More: true, ID: 0x2c2e079a}}, nil},
		{"frag-middle", IPv6Chain{Proto: ProtoICMPv6, Offset: 48, ProtoOffset: 40, Headers: 1, FragHeader: 40, FragProtoOffset: 6,
			Frag: IPv6FragmentFields{NextHeader: ProtoICMPv6, Offset: 1448, More: true, ID: 0x2c2e079a}}, nil},
		{"frag-last", IPv6Chain{Proto: ProtoICMPv6, Offset: 48, ProtoOffset: 40, Headers: 1, FragHeader: 40, FragProtoOffset: 6,
			Frag: IPv6FragmentFields{NextHeader: ProtoICMPv6, Offset: 2896, ID: 0x2c2e079a}}, nil},
	} {
		var c IPv6Chain
		err := c.Walk(mustIPv6(g6(tc.name)))
		if err != tc.err {
			t.Errorf("%s: Walk = %v, want %v", tc.name, err, tc.err)
		}
		if c != tc.want {
			t.Errorf("%s: chain\n %+v\nwant %+v", tc.name, c, tc.want)
		}
		if got, want := c.Fragmented(), tc.want.FragHeader != 0; got != want {
			t.Errorf("%s: Fragmented = %v", tc.name, got)
		}
	}
	// The pointers Linux sent for the same packets.
	for _, tc := range []struct{ trigger, answer string }{
		{"dstopt-unknown", "paramprob-option"},
		{"hbh-unknown", "paramprob-hbh"},
		{"proto-253", "paramprob-nexthdr"},
	} {
		var c IPv6Chain
		err := c.Walk(mustIPv6(g6(tc.trigger)))
		code, ptr := c.Code, c.Pointer
		if err == nil { // unknown next header: the caller's parameter problem
			code, ptr = ICMPv6UnknownNextHeader, uint32(c.ProtoOffset)
		}
		var m ICMPv6Fields
		m.Decode(ICMPv6(mustL4v6(g6(tc.answer))))
		if m.Type != ICMPv6ParameterProblem || m.Code != code || m.Pointer != ptr {
			t.Errorf("%s: Walk says code %d pointer %d; Linux sent %v", tc.trigger, code, ptr, &m)
		}
	}
}

// mustL4v6 returns the upper-layer bytes of a golden frame.
func mustL4v6(frame []byte) []byte { return mustUpper(frame) }

func TestIPv6ChainWalk(t *testing.T) {
	uni, multi := ip6R, IPv6AllNodes
	for _, tc := range []struct {
		name string
		p    IPv6
		want IPv6Chain
		err  error
	}{
		{"no next header", pkt6(ProtoNoNext, uni, []byte{1, 2, 3}), IPv6Chain{Proto: ProtoNoNext, Offset: 40, ProtoOffset: 6}, nil},
		{"hop-by-hop, destination, routing (segments left 0), UDP",
			pkt6(ProtoHopByHop, uni, ext(ProtoDestOpts, 1, 4, 0, 0, 0, 0), ext(ProtoRouting, 1, 4, 0, 0, 0, 0), ext(ProtoUDP, 0, 0, 0, 0, 0, 0), udp8),
			IPv6Chain{Proto: ProtoUDP, Offset: 64, ProtoOffset: 56, Headers: 3}, nil},
		{"routing type 0 with segments left 0 is ignored (RFC 8200 §4.4)",
			pkt6(ProtoRouting, uni, ext(ProtoTCP, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)),
			IPv6Chain{Proto: ProtoTCP, Offset: 64, ProtoOffset: 40, Headers: 1}, nil},
		{"routing header with segments left",
			pkt6(ProtoRouting, uni, ext(ProtoTCP, 4, 2, 0, 0, 0, 0)),
			IPv6Chain{ICMP: true, Code: ICMPv6ErroneousHeader, Pointer: 42}, ErrUnsupported},
		{"hop-by-hop after a destination options header (RFC 8200 §4.1)",
			pkt6(ProtoDestOpts, uni, ext(ProtoHopByHop, 1, 4, 0, 0, 0, 0), ext(ProtoUDP, 1, 4, 0, 0, 0, 0)),
			IPv6Chain{Headers: 1, ICMP: true, Code: ICMPv6UnknownNextHeader, Pointer: 40}, ErrBadHeader},
		{"authentication header ends the walk", pkt6(ProtoAH, uni, make([]byte, 16)), IPv6Chain{Proto: ProtoAH, Offset: 40, ProtoOffset: 6}, nil},
		{"ESP ends the walk", pkt6(ProtoDestOpts, uni, ext(ProtoESP, 1, 4, 0, 0, 0, 0), make([]byte, 16)),
			IPv6Chain{Proto: ProtoESP, Offset: 48, ProtoOffset: 40, Headers: 1}, nil},
		{"atomic fragment is walked through (RFC 6946)", pkt6(ProtoFragment, uni, frag(ProtoUDP, 0, false, 7), udp8),
			IPv6Chain{Proto: ProtoUDP, Offset: 48, ProtoOffset: 40, Headers: 1, FragHeader: 40, FragProtoOffset: 6,
				Frag: IPv6FragmentFields{NextHeader: ProtoUDP, ID: 7}}, nil},
		{"Router Alert with another value", pkt6(ProtoHopByHop, multi, ext(ProtoICMPv6, 5, 2, 0, 1, 1, 0)),
			IPv6Chain{Proto: ProtoICMPv6, Offset: 48, ProtoOffset: 40, Headers: 1, RouterAlert: true, RouterAlertValue: 1}, nil},
		{"Router Alert in a destination header is an unknown 00 option",
			pkt6(ProtoDestOpts, uni, ext(ProtoNoNext, 5, 2, 0, 1, 1, 0)),
			IPv6Chain{Proto: ProtoNoNext, Offset: 48, ProtoOffset: 40, Headers: 1}, nil},
		// RFC 8200 §4.2: the action bits of an unknown option.
		{"unknown 00 option skipped", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 0x3e, 2, 9, 9, 1, 0), udp8),
			IPv6Chain{Proto: ProtoUDP, Offset: 48, ProtoOffset: 40, Headers: 1}, nil},
		{"unknown 01 option", pkt6(ProtoDestOpts, multi, ext(ProtoUDP, 0x7e, 2, 9, 9, 1, 0)), IPv6Chain{}, ErrUnknownOption},
		{"unknown 10 option to multicast", pkt6(ProtoDestOpts, multi, ext(ProtoUDP, 0, 0xbe, 2, 9, 9, 0)),
			IPv6Chain{ICMP: true, Code: ICMPv6UnknownOption, Pointer: 43}, ErrUnknownOption},
		{"unknown 11 option to multicast", pkt6(ProtoHopByHop, multi, ext(ProtoUDP, 0xfe, 0, 1, 2, 0, 0)), IPv6Chain{}, ErrUnknownOption},
		{"unknown 11 option to unicast", pkt6(ProtoHopByHop, uni, ext(ProtoUDP, 0xfe, 0, 1, 2, 0, 0)),
			IPv6Chain{ICMP: true, Code: ICMPv6UnknownOption, Pointer: 42}, ErrUnknownOption},
		{"Jumbo Payload is not supported: an unknown 11 option", pkt6(ProtoHopByHop, uni, ext(ProtoUDP, 0xc2, 4, 0, 1, 0, 0)),
			IPv6Chain{ICMP: true, Code: ICMPv6UnknownOption, Pointer: 42}, ErrUnknownOption},
		{"second header's option is pointed at", pkt6(ProtoDestOpts, uni, ext(ProtoDestOpts, 1, 4, 0, 0, 0, 0), ext(ProtoUDP, 1, 0, 0x80, 0, 1, 0)),
			IPv6Chain{Headers: 1, ICMP: true, Code: ICMPv6UnknownOption, Pointer: 52}, ErrUnknownOption},
		// Malformed option lists are dropped silently, as Linux does.
		{"option past the header", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 0x1e, 5, 0, 0, 0, 0)), IPv6Chain{}, ErrBadOptions},
		{"PadN past the header", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 1, 0, 1, 3, 0, 0)), IPv6Chain{}, ErrBadOptions},
		{"option type in the last byte", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 1, 3, 0, 0, 0, 0x1e)), IPv6Chain{}, ErrBadOptions},
		{"Router Alert of length 4", pkt6(ProtoHopByHop, uni, ext(ProtoUDP, 5, 4, 0, 0, 0, 0)), IPv6Chain{}, ErrBadOptions},
		{"PadN with data", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 1, 4, 0, 0, 0, 1)), IPv6Chain{}, ErrBadOptions},
		{"8 bytes of padding", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 1, 4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0)), IPv6Chain{}, ErrBadOptions},
		{"8 Pad1", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), IPv6Chain{}, ErrBadOptions},
		{"7 bytes of padding, reset by an option", pkt6(ProtoDestOpts, uni,
			ext(ProtoUDP, 1, 5, 0, 0, 0, 0, 0, 0x1e, 0, 0, 0, 0, 1, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), udp8),
			IPv6Chain{}, ErrBadOptions},
		// The padding limit at its edge: 7 bytes in a row pass, 8 do not.
		{"7 Pad1, then an option", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 0, 0, 0, 0, 0, 0, 0, 0x1e, 5, 0, 0, 0, 0, 0), udp8),
			IPv6Chain{Proto: ProtoUDP, Offset: 56, ProtoOffset: 40, Headers: 1}, nil},
		{"8 Pad1, then an option", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 0, 0, 0, 0, 0, 0, 0, 0, 0x1e, 4, 0, 0, 0, 0), udp8), IPv6Chain{}, ErrBadOptions},
		{"PadN of 7 bytes, then an option", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 1, 5, 0, 0, 0, 0, 0, 0x1e, 5, 0, 0, 0, 0, 0), udp8),
			IPv6Chain{Proto: ProtoUDP, Offset: 56, ProtoOffset: 40, Headers: 1}, nil},
		{"Pad1 and a PadN of 7 bytes", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 0, 1, 5, 0, 0, 0, 0, 0, 0x1e, 4, 0, 0, 0, 0), udp8), IPv6Chain{}, ErrBadOptions},
		{"9 options", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 1, 2, 0, 0)),
			IPv6Chain{}, ErrBadOptions},
		{"8 options", pkt6(ProtoDestOpts, uni, ext(ProtoUDP, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 1, 4, 0, 0, 0, 0), udp8),
			IPv6Chain{Proto: ProtoUDP, Offset: 64, ProtoOffset: 40, Headers: 1}, nil},
		// Truncation.
		{"header past the payload", pkt6(ProtoDestOpts, uni, []byte{ProtoUDP, 1, 1, 4, 0, 0, 0, 0}), IPv6Chain{}, ErrTruncated},
		{"one byte of header", pkt6(ProtoHopByHop, uni, []byte{ProtoUDP}), IPv6Chain{}, ErrTruncated},
		{"empty payload", pkt6(ProtoRouting, uni), IPv6Chain{}, ErrTruncated},
		{"short fragment header", pkt6(ProtoFragment, uni, frag(ProtoUDP, 8, false, 1)[:7]), IPv6Chain{}, ErrTruncated},
	} {
		var c IPv6Chain
		if err := c.Walk(tc.p); err != tc.err {
			t.Errorf("%s: Walk = %v, want %v", tc.name, err, tc.err)
		}
		if c != tc.want && tc.want != (IPv6Chain{}) {
			t.Errorf("%s: chain\n %+v\nwant %+v", tc.name, c, tc.want)
		}
		if tc.err == nil {
			if up := c.Upper(tc.p); len(up) != len(tc.p)-c.Offset {
				t.Errorf("%s: Upper is %d bytes", tc.name, len(up))
			}
		} else if c.ICMP != tc.want.ICMP {
			t.Errorf("%s: ICMP = %v", tc.name, c.ICMP)
		}
	}
}

func TestIPv6ChainLimit(t *testing.T) {
	// IPv6MaxExtHeaders headers are walked; one more is refused.
	var hdrs [][]byte
	for i := 0; i < IPv6MaxExtHeaders-1; i++ {
		hdrs = append(hdrs, ext(ProtoDestOpts, 1, 4, 0, 0, 0, 0))
	}
	ok := pkt6(ProtoDestOpts, ip6R, append(hdrs, ext(ProtoUDP, 1, 4, 0, 0, 0, 0), udp8)...)
	var c IPv6Chain
	if err := c.Walk(ok); err != nil || c.Headers != IPv6MaxExtHeaders || c.Proto != ProtoUDP {
		t.Errorf("%d headers: %v, %+v", IPv6MaxExtHeaders, err, c)
	}
	if p, _, err := SkipIPv6Ext(ok.Payload(), ProtoDestOpts); err != nil || p != ProtoUDP {
		t.Errorf("SkipIPv6Ext of %d headers: %d %v", IPv6MaxExtHeaders, p, err)
	}
	for _, next := range []uint8{ProtoDestOpts, ProtoRouting, ProtoFragment} {
		hs := append(hdrs[:len(hdrs):len(hdrs)], ext(next, 1, 4, 0, 0, 0, 0)) // the 16th names next
		last := ext(ProtoUDP, 0, 0, 0, 0, 0, 0)                               // valid as options and as routing
		if next == ProtoFragment {
			last = frag(ProtoUDP, 0, false, 0)
		}
		tooMany := pkt6(ProtoDestOpts, ip6R, append(hs, last, udp8)...)
		if err := c.Walk(tooMany); err != ErrTooManyHeaders || c.ICMP {
			t.Errorf("%d headers ending in %d: %v", IPv6MaxExtHeaders+1, next, err)
		}
		if _, _, err := SkipIPv6Ext(tooMany.Payload(), ProtoDestOpts); err != ErrTooManyHeaders {
			t.Errorf("SkipIPv6Ext of %d headers: %v", IPv6MaxExtHeaders+1, err)
		}
		// One header fewer is fine.
		if err := c.Walk(pkt6(ProtoDestOpts, ip6R, append(hs[1:], last, udp8)...)); err != nil || c.Headers != IPv6MaxExtHeaders {
			t.Errorf("%d headers ending in %d: %v", IPv6MaxExtHeaders, next, err)
		}
	}
	// A packet of nothing but 8-byte headers, as long as a jumbo frame:
	// the walk stops at the cap.
	var many [][]byte
	for i := 0; i < 1100; i++ {
		many = append(many, ext(ProtoDestOpts, 1, 4, 0, 0, 0, 0))
	}
	if err := c.Walk(pkt6(ProtoDestOpts, ip6R, many...)); err != ErrTooManyHeaders || c.Headers != IPv6MaxExtHeaders {
		t.Errorf("long chain: %v after %d headers", err, c.Headers)
	}
}

func TestIPv6ChainFragment(t *testing.T) {
	// RFC 8200 §4.5 and RFC 7112: the checks on fragments that are not
	// atomic, with the parameter problems Linux sends.
	data := func(n int) []byte { return make([]byte, n) }
	tcp := make([]byte, TCPHeaderLen)
	for _, tc := range []struct {
		name string
		p    IPv6
		err  error
		code uint8
		ptr  uint32
		icmp bool
	}{
		{"first fragment with the whole chain", pkt6(ProtoFragment, ip6R, frag(ProtoDestOpts, 0, true, 1), ext(ProtoTCP, 1, 4, 0, 0, 0, 0), tcp, data(4)), nil, 0, 0, false},
		{"first fragment ending in the TCP header", pkt6(ProtoFragment, ip6R, frag(ProtoTCP, 0, true, 1), tcp[:16]), ErrTruncated, ICMPv6IncompleteChain, 0, true},
		{"first fragment ending in the UDP header", pkt6(ProtoFragment, ip6R, frag(ProtoUDP, 0, true, 1), udp8[:0]), ErrTruncated, ICMPv6IncompleteChain, 0, true},
		{"first fragment ending in the ICMPv6 header", pkt6(ProtoFragment, ip6R, frag(ProtoICMPv6, 0, true, 1), data(0)), ErrTruncated, ICMPv6IncompleteChain, 0, true},
		{"first fragment ending in an extension header", pkt6(ProtoFragment, ip6R, frag(ProtoDestOpts, 0, true, 1), []byte{ProtoUDP, 1, 1, 4, 0, 0, 0, 0}), ErrTruncated, ICMPv6IncompleteChain, 0, true},
		{"first fragment with no upper-layer byte", pkt6(ProtoFragment, ip6R, frag(253, 0, true, 1)), ErrTruncated, ICMPv6IncompleteChain, 0, true},
		{"first fragment with one byte of an unknown protocol", pkt6(ProtoFragment, ip6R, frag(253, 0, true, 1), data(8)), nil, 0, 0, false},
		{"first fragment of nothing (no next header)", pkt6(ProtoFragment, ip6R, frag(ProtoNoNext, 0, true, 1)), nil, 0, 0, false},
		{"first fragment of 17 chained headers", pkt6(ProtoFragment, ip6R, append([][]byte{frag(ProtoDestOpts, 0, true, 1)}, bytes.Repeat(ext(ProtoDestOpts, 1, 4, 0, 0, 0, 0), 17))...), ErrTooManyHeaders, 0, 0, false},
		{"later fragments are not checked", pkt6(ProtoFragment, ip6R, frag(ProtoTCP, 8, true, 1), data(8)), nil, 0, 0, false},
		{"M set, length not a multiple of 8", pkt6(ProtoFragment, ip6R, frag(ProtoTCP, 8, true, 1), data(12)), ErrBadHeader, ICMPv6ErroneousHeader, 4, true},
		{"last fragment of any length", pkt6(ProtoFragment, ip6R, frag(ProtoTCP, 8, false, 1), data(12)), nil, 0, 0, false},
		{"ending at 65535", pkt6(ProtoFragment, ip6R, frag(ProtoTCP, 65528, false, 1), data(7)), nil, 0, 0, false},
		{"ending past 65535", pkt6(ProtoFragment, ip6R, frag(ProtoTCP, 65528, false, 1), data(8)), ErrBadHeader, ICMPv6ErroneousHeader, 42, true},
		{"after a destination header", pkt6(ProtoDestOpts, ip6R, ext(ProtoFragment, 1, 4, 0, 0, 0, 0), frag(ProtoTCP, 65528, true, 1), data(16)), ErrBadHeader, ICMPv6ErroneousHeader, 50, true},
	} {
		var c IPv6Chain
		err := c.Walk(tc.p)
		if err != tc.err || c.ICMP != tc.icmp || c.Code != tc.code || c.Pointer != tc.ptr {
			t.Errorf("%s: Walk = %v, icmp %v code %d pointer %d; want %v %v %d %d", tc.name, err, c.ICMP, c.Code, c.Pointer, tc.err, tc.icmp, tc.code, tc.ptr)
		}
		if err == nil && (!c.Fragmented() || c.Offset != c.FragHeader+IPv6FragmentLen || c.ProtoOffset != c.FragHeader || c.Proto != c.Frag.NextHeader) {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
}

func TestSkipIPv6Ext(t *testing.T) {
	ah := []byte{ProtoTCP, 4, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3} // RFC 4302: (4+2)*4 = 24 bytes
	for _, tc := range []struct {
		name  string
		b     []byte
		next  uint8
		proto uint8
		off   int
		err   error
	}{
		{"nothing to skip", udp8, ProtoUDP, ProtoUDP, 0, nil},
		{"empty", nil, ProtoTCP, ProtoTCP, 0, nil},
		{"options are not processed", bytes.Join([][]byte{ext(ProtoRouting, 0xc0, 4, 0, 0, 0, 0), ext(ProtoUDP, 0, 2, 0, 0, 0, 0)}, nil), ProtoHopByHop, ProtoUDP, 16, nil},
		{"authentication header", ah, ProtoAH, ProtoTCP, 24, nil},
		{"first fragment", frag(ProtoICMPv6, 0, true, 1), ProtoFragment, ProtoICMPv6, 8, nil},
		{"later fragment", bytes.Join([][]byte{ext(ProtoFragment, 1, 4, 0, 0, 0, 0), frag(ProtoICMPv6, 16, true, 1), udp8}, nil), ProtoDestOpts, ProtoFragment, 16, nil},
		{"truncated AH", ah[:23], ProtoAH, ProtoAH, 0, ErrTruncated},
		{"truncated header", ext(ProtoUDP, 1, 4, 0, 0, 0, 0)[:7], ProtoDestOpts, ProtoDestOpts, 0, ErrTruncated},
		{"one byte", []byte{0}, ProtoDestOpts, ProtoDestOpts, 0, ErrTruncated},
		{"truncated fragment header", frag(ProtoTCP, 0, false, 0)[:4], ProtoFragment, ProtoFragment, 0, ErrTruncated},
	} {
		proto, off, err := SkipIPv6Ext(tc.b, tc.next)
		if err != tc.err || (err == nil && (proto != tc.proto || off != tc.off)) {
			t.Errorf("%s: SkipIPv6Ext = %d, %d, %v; want %d, %d, %v", tc.name, proto, off, err, tc.proto, tc.off, tc.err)
		}
	}
	// On every captured packet that Walk accepts and does not stop at a
	// fragment, the two agree.
	for _, tc := range ipv6Golden {
		p := mustIPv6(g6(tc.name))
		var c IPv6Chain
		if c.Walk(p) != nil {
			continue
		}
		proto, off, err := SkipIPv6Ext(p.Payload(), p.NextHeader())
		wantProto := c.Proto
		if c.Fragmented() && c.Frag.Offset != 0 {
			wantProto = ProtoFragment
		} else if c.Fragmented() {
			continue // Skip goes on into the first fragment
		}
		if err != nil || proto != wantProto || off+IPv6HeaderLen != c.Offset {
			t.Errorf("%s: SkipIPv6Ext = %d, %d, %v; Walk %d, %d", tc.name, proto, off, err, c.Proto, c.Offset)
		}
	}
}

func TestIPv6ExtHeader(t *testing.T) {
	// The MLD report's hop-by-hop header as Linux wrote it: Router Alert
	// (MLD) and PadN(0) (RFC 3810 §5, RFC 2711).
	hbh := mustIPv6(g6("mld-report-linkup")).Payload()[:8]
	if !bytes.Equal(hbh, []byte{ProtoICMPv6, 0, 5, 2, 0, 0, 1, 0}) {
		t.Fatalf("captured header %x", hbh)
	}
	h, err := ParseIPv6ExtHeader(hbh)
	if err != nil || h.NextHeader() != ProtoICMPv6 || h.Len() != 8 || !bytes.Equal(h.Data(), hbh[2:]) {
		t.Fatalf("ParseIPv6ExtHeader = %x, %v", []byte(h), err)
	}
	ra := RouterAlertOption(RouterAlertMLD)
	f := IPv6OptionsFields{NextHeader: ProtoICMPv6, Options: ra[:]}
	b := poisoned(f.Len() + 1)
	if n := f.Encode(b); n != 8 || !bytes.Equal(b[:8], hbh) || b[8] != poison {
		t.Errorf("Encode = %d, %x; want Linux's %x", n, b[:8], hbh)
	}
	// Decode then Encode gives the header back.
	var g IPv6OptionsFields
	g.Decode(h)
	b = poisoned(g.Len())
	if g.Encode(b); !bytes.Equal(b, hbh) {
		t.Errorf("round trip %x", b)
	}
	// The 16-byte destination header of dstopt-16: Pad1 then an 11-byte
	// option.
	d16 := mustIPv6(g6("dstopt-16")).Payload()[:16]
	if h, err := ParseIPv6ExtHeader(d16); err != nil || h.Len() != 16 || h.NextHeader() != ProtoUDP {
		t.Errorf("dstopt-16: %v %d", err, h.Len())
	}
	// Padding: 0 bytes, Pad1, PadN of each length.
	for n := 0; n <= 20; n++ {
		opts := bytes.Repeat([]byte{0x1e}, n) // not valid options; only the padding matters here
		f := IPv6OptionsFields{NextHeader: ProtoTCP, Options: opts}
		want := (2 + n + 7) / 8 * 8
		b := poisoned(want)
		if got := f.Encode(b); got != want || f.Len() != want {
			t.Fatalf("%d option bytes: Encode = %d, want %d", n, got, want)
		}
		pad := b[2+n:]
		switch {
		case len(pad) == 1 && pad[0] != IPv6OptPad1,
			len(pad) >= 2 && (pad[0] != IPv6OptPadN || int(pad[1]) != len(pad)-2 || !allZero(pad[2:])):
			t.Fatalf("%d option bytes: padding %x", n, pad)
		}
		if int(b[1]) != want/8-1 {
			t.Fatalf("%d option bytes: length field %d", n, b[1])
		}
	}
	// At most one header's worth of options.
	big := IPv6OptionsFields{Options: make([]byte, 3000)}
	if big.Len() != 2048 {
		t.Errorf("Len of 3000 option bytes = %d, want 2048", big.Len())
	}
	b = poisoned(2048)
	if big.Encode(b); b[1] != 255 {
		t.Errorf("length field %d", b[1])
	}
	// Routing accessors.
	r, _ := ParseIPv6ExtHeader(ext(ProtoTCP, 4, 3, 0, 0, 0, 0))
	if r.RoutingType() != 4 || r.SegmentsLeft() != 3 {
		t.Errorf("routing type %d segments left %d", r.RoutingType(), r.SegmentsLeft())
	}
	for n := 0; n < 8; n++ {
		if _, err := ParseIPv6ExtHeader(hbh[:n]); err != ErrTruncated {
			t.Errorf("ParseIPv6ExtHeader(%d bytes) = %v", n, err)
		}
	}
}

func TestIPv6Fragment(t *testing.T) {
	for _, tc := range []struct {
		name string
		want IPv6FragmentFields
	}{
		{"frag-first", IPv6FragmentFields{NextHeader: ProtoICMPv6, More: true, ID: 0x2c2e079a}},
		{"frag-middle", IPv6FragmentFields{NextHeader: ProtoICMPv6, Offset: 1448, More: true, ID: 0x2c2e079a}},
		{"frag-last", IPv6FragmentFields{NextHeader: ProtoICMPv6, Offset: 2896, ID: 0x2c2e079a}},
	} {
		b := mustIPv6(g6(tc.name)).Payload()
		h, err := ParseIPv6Fragment(b)
		if err != nil || len(h) != 8 {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var f IPv6FragmentFields
		f.Decode(h)
		if f != tc.want || h.NextHeader() != f.NextHeader || h.Offset() != f.Offset || h.More() != f.More || h.ID() != f.ID {
			t.Errorf("%s: %+v, want %+v", tc.name, f, tc.want)
		}
		e := poisoned(9)
		if n := tc.want.Encode(e); n != 8 || !bytes.Equal(e[:8], b[:8]) || e[8] != poison {
			t.Errorf("%s: Encode = %x, want %x", tc.name, e[:8], b[:8])
		}
	}
	// Reserved bits are not kept; the offset is rounded down.
	h := IPv6Fragment{ProtoTCP, 0xff, 0x12, 0x36, 0, 0, 0, 1}
	var f IPv6FragmentFields
	f.Decode(h)
	if f != (IPv6FragmentFields{NextHeader: ProtoTCP, Offset: 0x1230, ID: 1}) || f.Atomic() {
		t.Errorf("reserved bits: %+v", f)
	}
	f.Offset = 13
	b := make([]byte, 8)
	f.Encode(b)
	if IPv6Fragment(b).Offset() != 8 || b[1] != 0 {
		t.Errorf("Encode %x", b)
	}
	if !(&IPv6FragmentFields{ID: 5}).Atomic() {
		t.Error("offset 0, M clear is atomic")
	}
	for n := 0; n < 8; n++ {
		if _, err := ParseIPv6Fragment(b[:n]); err != ErrTruncated {
			t.Errorf("ParseIPv6Fragment(%d bytes) = %v", n, err)
		}
	}
}

func TestIPv6OptionAction(t *testing.T) {
	// RFC 8200 §4.2's table, and the option types of the captures (RFC
	// 4727's experimental ones).
	for typ, want := range map[uint8]IPv6OptionAction{
		0x1e: IPv6OptSkip, 0x5e: IPv6OptDiscard, 0x9e: IPv6OptDiscardICMP, 0xde: IPv6OptDiscardICMPUnicast,
		0x00: IPv6OptSkip, 0x3f: IPv6OptSkip, 0x40: IPv6OptDiscard, 0xbf: IPv6OptDiscardICMP, 0xc2: IPv6OptDiscardICMPUnicast,
	} {
		if got := IPv6OptionActionOf(typ); got != want {
			t.Errorf("IPv6OptionActionOf(%#x) = %d, want %d", typ, got, want)
		}
	}
	if ra := RouterAlertOption(0x1234); ra != [4]byte{5, 2, 0x12, 0x34} {
		t.Errorf("RouterAlertOption = %x", ra)
	}
}

func TestIPv6ChainErrorsAreSentinels(t *testing.T) {
	// Every error Walk returns is one of the package's sentinels, so the
	// stack can name a drop counter after it.
	for _, err := range []error{ErrTruncated, ErrBadHeader, ErrBadOptions, ErrUnknownOption, ErrUnsupported, ErrTooManyHeaders} {
		if !errors.Is(err, err) || err.Error() == "" {
			t.Error(err)
		}
	}
}
