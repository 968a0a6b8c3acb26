package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// icmpv6Golden lists the captured ICMPv6 error and echo messages with their
// fields as tcpdump printed them; Payload is everything after the 8-byte
// header.
var icmpv6Golden = []struct {
	name string
	want ICMPv6Fields
}{
	{"echo-request", ICMPv6Fields{Type: ICMPv6EchoRequest, ID: 1650, Seq: 1}},
	{"echo-reply", ICMPv6Fields{Type: ICMPv6EchoReply, ID: 1650, Seq: 1}},
	{"echo-class-flow", ICMPv6Fields{Type: ICMPv6EchoRequest, ID: 1651, Seq: 1}},
	{"time-exceeded", ICMPv6Fields{Type: ICMPv6TimeExceeded, Code: ICMPv6HopLimitExceeded}},
	{"packet-too-big", ICMPv6Fields{Type: ICMPv6PacketTooBig, MTU: 1280}},
	{"port-unreachable", ICMPv6Fields{Type: ICMPv6DestUnreachable, Code: ICMPv6PortUnreachable}},
	{"addr-unreachable", ICMPv6Fields{Type: ICMPv6DestUnreachable, Code: ICMPv6AddrUnreachable}},
	{"no-route", ICMPv6Fields{Type: ICMPv6DestUnreachable, Code: ICMPv6NoRoute}},
	{"dstopt-skip-unreachable", ICMPv6Fields{Type: ICMPv6DestUnreachable, Code: ICMPv6PortUnreachable}},
	{"dstopt-16-unreachable", ICMPv6Fields{Type: ICMPv6DestUnreachable, Code: ICMPv6PortUnreachable}},
	{"paramprob-option", ICMPv6Fields{Type: ICMPv6ParameterProblem, Code: ICMPv6UnknownOption, Pointer: 42}},
	{"paramprob-hbh", ICMPv6Fields{Type: ICMPv6ParameterProblem, Code: ICMPv6UnknownOption, Pointer: 46}},
	{"paramprob-nexthdr", ICMPv6Fields{Type: ICMPv6ParameterProblem, Code: ICMPv6UnknownNextHeader, Pointer: 6}},
	{"reassembly-timeout", ICMPv6Fields{Type: ICMPv6TimeExceeded, Code: ICMPv6ReassemblyTimeExceeded}},
}

// goldenMsg returns a golden frame's ICMPv6 message, its addresses, and
// the expected fields with the captured checksum and payload filled in.
func goldenMsg(t *testing.T, name string, want ICMPv6Fields) (ICMPv6, netip.Addr, netip.Addr, ICMPv6Fields) {
	t.Helper()
	p := mustIPv6(g6(name))
	b := mustUpper(g6(name))
	m, err := ParseICMPv6(b)
	if err != nil {
		t.Fatalf("%s: ParseICMPv6: %v", name, err)
	}
	want.Checksum = m.Checksum()
	want.Payload = b[ICMPv6HeaderLen:]
	return m, p.Src(), p.Dst(), want
}

func TestICMPv6Deconstruct(t *testing.T) {
	for _, tc := range icmpv6Golden {
		t.Run(tc.name, func(t *testing.T) {
			m, src, dst, w := goldenMsg(t, tc.name, tc.want)
			if m.Type() != w.Type || m.Code() != w.Code {
				t.Errorf("type %d code %d, want %d %d", m.Type(), m.Code(), w.Type, w.Code)
			}
			if ICMPv6Checksum(m, src, dst) != 0 {
				t.Error("the kernel's checksum does not verify")
			}
			switch w.Type {
			case ICMPv6EchoRequest, ICMPv6EchoReply:
				if m.ID() != w.ID || m.Seq() != w.Seq {
					t.Errorf("ID, Seq = %d, %d", m.ID(), m.Seq())
				}
			case ICMPv6PacketTooBig:
				if m.MTU() != w.MTU {
					t.Errorf("MTU = %d", m.MTU())
				}
			case ICMPv6ParameterProblem:
				if m.Pointer() != w.Pointer {
					t.Errorf("Pointer = %d", m.Pointer())
				}
			}
			if ICMPv6IsError(w.Type) != (w.Type < 128) || !ICMPv6IsError(m.Type()) == (m.Type() < 128) {
				t.Error("ICMPv6IsError")
			}
			if p := m.Payload(); &p[0] != &m[8] {
				t.Error("Payload does not alias the message")
			}
			var f ICMPv6Fields
			f.Decode(m)
			if !eqICMPv6(f, w) {
				t.Errorf("Decode = %v\n  want %v", &f, &w)
			}
		})
	}
}

func TestICMPv6Construct(t *testing.T) {
	for _, tc := range icmpv6Golden {
		t.Run(tc.name, func(t *testing.T) {
			m, src, dst, w := goldenMsg(t, tc.name, tc.want)
			w.Checksum = 0 // Encode computes it
			n := w.Len()
			b := poisoned(n + 1)
			if got := w.Encode(b, src, dst); got != n {
				t.Fatalf("Encode = %d, want %d", got, n)
			}
			if d := diffBytes(b[:n], m); d != "" {
				t.Error(d)
			}
			if b[n] != poison {
				t.Error("Encode wrote past Len")
			}
		})
	}
}

// skipUpper returns the bytes after a golden frame's extension headers,
// walked by length only (so that options do not matter).
func skipUpper(frame []byte) []byte {
	p := mustIPv6(frame)
	_, off, err := SkipIPv6Ext(p.Payload(), p.NextHeader())
	if err != nil {
		panic(err)
	}
	return p.Payload()[off:]
}

func eqICMPv6(a, b ICMPv6Fields) bool {
	return a.Type == b.Type && a.Code == b.Code && a.Checksum == b.Checksum && a.ID == b.ID && a.Seq == b.Seq &&
		a.MTU == b.MTU && a.Pointer == b.Pointer && bytes.Equal(a.Payload, b.Payload)
}

func TestICMPv6RoundTrip(t *testing.T) {
	for _, f := range []ICMPv6Fields{
		{Type: ICMPv6PacketTooBig, MTU: 0xffffffff, Payload: []byte{1}},
		{Type: ICMPv6ParameterProblem, Code: ICMPv6IncompleteChain},
		{Type: ICMPv6ParameterProblem, Code: ICMPv6ErroneousHeader, Pointer: 1 << 20},
		{Type: ICMPv6EchoReply, ID: 0xffff, Seq: 0xfffe, Payload: []byte{1, 2, 3}},
		{Type: ICMPv6DestUnreachable, Code: ICMPv6RejectRoute},
		{Type: 200, Code: 9, Payload: make([]byte, 17)}, // unknown informational type: second word zero
	} {
		b := poisoned(f.Len())
		f.Encode(b, ip6A, ip6R)
		m, err := ParseICMPv6(b)
		if err != nil {
			t.Fatalf("%v: %v", &f, err)
		}
		if ICMPv6Checksum(m, ip6A, ip6R) != 0 || ICMPv6Checksum(m, ip6A, ip6B) == 0 {
			t.Errorf("%v: checksum does not bind the addresses", &f)
		}
		var g ICMPv6Fields
		g.Decode(m)
		f.Checksum = m.Checksum()
		if !eqICMPv6(f, g) {
			t.Errorf("round trip\n%v\n%v", &f, &g)
		}
	}
	// Types whose second word ICMPv6Fields does not know are written zero.
	f := ICMPv6Fields{Type: ICMPv6DestUnreachable, ID: 1, Seq: 2, MTU: 3, Pointer: 4}
	b := make([]byte, f.Len())
	f.Encode(b, ip6A, ip6R)
	if !allZero(b[4:8]) {
		t.Errorf("unused word %x", b[4:8])
	}
}

func TestICMPv6Quote(t *testing.T) {
	// Errors whose invoking packet is also in the golden file: the quote
	// is that packet (after R's hop-limit decrement where R forwarded it).
	for _, tc := range []struct {
		err, trigger string
		proto        uint8
		hopLimit     uint8
	}{
		{"port-unreachable", "udp", ProtoUDP, 63},
		{"dstopt-skip-unreachable", "dstopt-skip", ProtoUDP, 64},
		{"dstopt-16-unreachable", "dstopt-16", ProtoUDP, 64},
		{"paramprob-option", "dstopt-unknown", ProtoUDP, 64},
		{"paramprob-hbh", "hbh-unknown", ProtoUDP, 64},
		{"paramprob-nexthdr", "proto-253", 253, 64},
	} {
		m := ICMPv6(mustUpper(g6(tc.err)))
		var f IPv6Fields
		proto, upper, err := m.Quote(&f)
		if err != nil {
			t.Fatalf("%s: Quote: %v", tc.err, err)
		}
		want := slicesClone(mustIPv6(g6(tc.trigger)).Packet())
		IPv6(want).SetHopLimit(tc.hopLimit)
		if !bytes.Equal(m.Payload(), want) {
			t.Errorf("%s: quote is not the %s packet", tc.err, tc.trigger)
		}
		var wf IPv6Fields
		wf.Decode(IPv6(want))
		if f != wf || proto != tc.proto || &upper[0] != &m[len(m)-len(upper)] || !bytes.Equal(upper, skipUpper(g6(tc.trigger))) {
			t.Errorf("%s: Quote = %v, %d, %x", tc.err, &f, proto, upper)
		}
	}
	// Errors about packets not in the file: their headers as tcpdump -vv
	// printed them in link1.pcap (frames 25, 27, 31, 35, 77):
	//   (flowlabel 0xf60b0, hlim 1, next-header ICMPv6 (58) payload length: 24) 2001:db8:1::ff:fe00:101 > 2001:db8:2::2: echo request, id 1653, seq 1
	//   (flowlabel 0xf60b0, hlim 64, next-header ICMPv6 (58) payload length: 1408) 2001:db8:1::ff:fe00:101 > 2001:db8:2::2: echo request, id 1654, seq 1
	//   (flowlabel 0x2c20f, hlim 64, next-header ICMPv6 (58) payload length: 64) 2001:db8:1::ff:fe00:101 > 2001:db8:2::99: echo request, id 1677, seq 1
	//   (flowlabel 0x74138, hlim 64, next-header ICMPv6 (58) payload length: 64) 2001:db8:1::ff:fe00:101 > 2001:db8:99::1: echo request, id 1721, seq 1
	//   (flowlabel 0x5b1e5, hlim 64, next-header Fragment (44) payload length: 1456) 2001:db8:1::ff:fe00:101 > 2001:db8:1::2: frag (0xf3da9d3f:0|1448) echo request, id 2067, seq 1
	// The address-unreachable error comes from R's neighbour queue, after
	// R decremented the hop limit; the others from before.
	for _, tc := range []struct {
		name   string
		want   IPv6Fields
		id     uint16
		nUpper int
	}{
		{"time-exceeded", IPv6Fields{FlowLabel: 0xf60b0, PayloadLen: 24, NextHeader: ProtoICMPv6, HopLimit: 1, Src: slaacA, Dst: ip6B}, 1653, 24},
		// RFC 4443 §2.4 (c): the quote is cut so the error fits in 1280 bytes.
		{"packet-too-big", IPv6Fields{FlowLabel: 0xf60b0, PayloadLen: 1408, NextHeader: ProtoICMPv6, HopLimit: 64, Src: slaacA, Dst: ip6B}, 1654, ICMPv6ErrorQuoteMax - IPv6HeaderLen},
		{"addr-unreachable", IPv6Fields{FlowLabel: 0x2c20f, PayloadLen: 64, NextHeader: ProtoICMPv6, HopLimit: 63, Src: slaacA, Dst: mustAddr6("2001:db8:2::99")}, 1677, 64},
		{"no-route", IPv6Fields{FlowLabel: 0x74138, PayloadLen: 64, NextHeader: ProtoICMPv6, HopLimit: 64, Src: slaacA, Dst: mustAddr6("2001:db8:99::1")}, 1721, 64},
		// A first fragment: the fragment header is skipped.
		{"reassembly-timeout", IPv6Fields{FlowLabel: 0x5b1e5, PayloadLen: 1456, NextHeader: ProtoFragment, HopLimit: 64, Src: slaacA, Dst: ip6R}, 2067, ICMPv6ErrorQuoteMax - IPv6HeaderLen - IPv6FragmentLen},
	} {
		m := ICMPv6(mustUpper(g6(tc.name)))
		var f IPv6Fields
		proto, upper, err := m.Quote(&f)
		if err != nil || f != tc.want || proto != ProtoICMPv6 || len(upper) != tc.nUpper ||
			ICMPv6(upper).Type() != ICMPv6EchoRequest || ICMPv6(upper).ID() != tc.id || ICMPv6(upper).Seq() != 1 {
			t.Errorf("%s: Quote = %v, %d, %d bytes (id %d), %v", tc.name, &f, proto, len(upper), ICMPv6(upper).ID(), err)
		}
	}
}

func TestICMPv6QuoteErrors(t *testing.T) {
	te := mustUpper(g6("time-exceeded")) // 8 + 40 + 24 bytes
	var f IPv6Fields
	for n := ICMPv6HeaderLen; n < 8+40+8; n++ {
		if _, _, err := ICMPv6(te[:n]).Quote(&f); err != ErrTruncated {
			t.Errorf("Quote(%d bytes) = %v, want ErrTruncated", n, err)
		}
	}
	if proto, up, err := ICMPv6(te[:8+40+8]).Quote(&f); err != nil || len(up) != 8 || proto != ProtoICMPv6 {
		t.Errorf("Quote(header + 8 bytes) = %d bytes, %v", len(up), err)
	}
	bad := slicesClone(te)
	bad[8] = 0x45 // IPv4
	if _, _, err := ICMPv6(bad).Quote(&f); err != ErrBadHeader {
		t.Errorf("Quote(version 4) = %v", err)
	}
	// A quoted payload length shorter than the bytes present cuts the
	// quote: here to 4 bytes, too few.
	bad = edit(te, func(b []byte) { b[8+4], b[8+5] = 0, 4 })
	if _, _, err := ICMPv6(bad).Quote(&f); err != ErrTruncated {
		t.Errorf("Quote(payload length 4) = %v", err)
	}
	// A quoted extension header cut off, and a quote ending in the
	// middle of a fragmented packet.
	hdr := make([]byte, IPv6HeaderLen)
	q := IPv6Fields{PayloadLen: 1000, NextHeader: ProtoDestOpts, Src: ip6A, Dst: ip6R}
	q.Encode(hdr)
	msg := func(pieces ...[]byte) ICMPv6 {
		return ICMPv6(bytes.Join(append([][]byte{{ICMPv6DestUnreachable, 0, 0, 0, 0, 0, 0, 0}, hdr}, pieces...), nil))
	}
	if _, _, err := msg(ext(ProtoTCP, 1, 4, 0, 0, 0, 0)[:6]).Quote(&f); err != ErrTruncated {
		t.Errorf("cut extension header: %v", err)
	}
	proto, up, err := msg(ext(ProtoFragment, 1, 4, 0, 0, 0, 0), frag(ProtoTCP, 8, true, 9), []byte("12345678")).Quote(&f)
	if err != nil || proto != ProtoFragment || string(up) != "12345678" {
		t.Errorf("later fragment: %d %q %v", proto, up, err)
	}
	var many [][]byte
	for i := 0; i < IPv6MaxExtHeaders+1; i++ {
		many = append(many, ext(ProtoDestOpts, 1, 4, 0, 0, 0, 0))
	}
	if _, _, err := msg(many...).Quote(&f); err != ErrTooManyHeaders {
		t.Errorf("long chain: %v", err)
	}
}

func TestICMPv6ParseErrors(t *testing.T) {
	good := mustUpper(g6("echo-request"))
	for n := 0; n < ICMPv6HeaderLen; n++ {
		if _, err := ParseICMPv6(good[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("ParseICMPv6(%d bytes) = %v", n, err)
		}
	}
	if m, err := ParseICMPv6(good[:8]); err != nil || len(m.Payload()) != 0 {
		t.Errorf("header only: %v", err)
	}
}

func TestICMPv6ChecksumOddLength(t *testing.T) {
	// RFC 1071 §4.1 over the pseudo-header and an odd-length message,
	// computed by hand from RFC 8200 §8.1's layout.
	f := ICMPv6Fields{Type: ICMPv6EchoRequest, ID: 7, Seq: 9, Payload: []byte{1, 2, 3}}
	b := poisoned(f.Len())
	f.Encode(b, ip6A, ip6R)
	s, d := ip6A.As16(), ip6R.As16()
	ph := append(append(append(s[:], d[:]...), 0, 0, 0, 11), 0, 0, 0, ProtoICMPv6)
	want := ^naiveSum(append(ph, 128, 0, 0, 0, 0, 7, 0, 9, 1, 2, 3), 0)
	if got := ICMPv6(b).Checksum(); got != want {
		t.Errorf("checksum %#04x, want %#04x", got, want)
	}
	ICMPv6(b).SetChecksum(0x1234)
	if ICMPv6(b).Checksum() != 0x1234 {
		t.Error("SetChecksum")
	}
}
