package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// IPv6 golden frames: testdata/ipv6-golden.txt holds Ethernet frames
// captured from Linux (its header comment and testdata/capture-ipv6.sh say
// how), each with tcpdump's decoding; golden6 maps their names to the
// bytes.
var golden6 = loadGolden6("testdata/ipv6-golden.txt")

// loadGolden6 reads the "== name", comment and hex lines of the golden
// file. It panics on a malformed file, which can only come from an edit.
func loadGolden6(path string) map[string][]byte {
	f, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	m := map[string][]byte{}
	var name string
	var buf bytes.Buffer
	flush := func() {
		if name == "" {
			return
		}
		b, err := hex.DecodeString(buf.String())
		if err != nil || len(b) == 0 {
			panic(fmt.Sprintf("%s: frame %s: %v", path, name, err))
		}
		m[name] = b
		name = ""
		buf.Reset()
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "== "):
			flush()
			name = strings.TrimPrefix(line, "== ")
			if _, dup := m[name]; dup {
				panic(path + ": duplicate frame " + name)
			}
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			buf.WriteString(line)
		}
	}
	if err := sc.Err(); err != nil {
		panic(err)
	}
	flush()
	return m
}

// g6 returns the golden frame name; it panics if there is none.
func g6(name string) []byte {
	b, ok := golden6[name]
	if !ok {
		panic("no IPv6 golden frame " + name)
	}
	return b
}

// Addresses of the IPv6 capture topology (see testdata/capture-ipv6.sh).
var (
	llA       = netip.MustParseAddr("fe80::ff:fe00:101")
	llR       = netip.MustParseAddr("fe80::ff:fe00:102")
	llC       = netip.MustParseAddr("fe80::ff:fe00:103")
	slaacA    = netip.MustParseAddr("2001:db8:1::ff:fe00:101")
	ip6A      = netip.MustParseAddr("2001:db8:1::1")
	ip6R      = netip.MustParseAddr("2001:db8:1::2")
	ip6B      = netip.MustParseAddr("2001:db8:2::2")
	ip6C3     = netip.MustParseAddr("2001:db8:3::1")
	ip6Unspec = netip.IPv6Unspecified()
	macC      = MAC{0x02, 0, 0, 0, 0x01, 0x03}
)

func mustAddr6(s string) netip.Addr { return netip.MustParseAddr(s) }

// mustIPv6 returns the IPv6 packet of a golden frame.
func mustIPv6(frame []byte) IPv6 {
	p, err := ParseIPv6(mustL3(frame))
	if err != nil {
		panic(err)
	}
	return p
}

// mustUpper returns the bytes after a golden frame's extension headers.
func mustUpper(frame []byte) []byte {
	p := mustIPv6(frame)
	var c IPv6Chain
	if err := c.Walk(p); err != nil {
		panic(err)
	}
	return c.Upper(p)
}

// ipv6Golden lists every golden frame with its fixed header as tcpdump
// -vv decoded it.
var ipv6Golden = []struct {
	name string
	want IPv6Fields
}{
	{"mld-report-linkup", IPv6Fields{PayloadLen: 56, NextHeader: ProtoHopByHop, HopLimit: 1, Src: ip6Unspec, Dst: IPv6AllMLDv2Routers}},
	{"ns-dad", IPv6Fields{PayloadLen: 32, NextHeader: ProtoICMPv6, HopLimit: 255, Src: ip6Unspec, Dst: mustAddr6("ff02::1:ff00:101")}},
	{"rs", IPv6Fields{PayloadLen: 16, NextHeader: ProtoICMPv6, HopLimit: 255, Src: llA, Dst: IPv6AllRouters}},
	{"ra", IPv6Fields{FlowLabel: 0x01a40, PayloadLen: 88, NextHeader: ProtoICMPv6, HopLimit: 255, Src: llR, Dst: llA}},
	{"ns", IPv6Fields{PayloadLen: 32, NextHeader: ProtoICMPv6, HopLimit: 255, Src: slaacA, Dst: mustAddr6("ff02::1:ff00:2")}},
	{"na", IPv6Fields{PayloadLen: 32, NextHeader: ProtoICMPv6, HopLimit: 255, Src: ip6R, Dst: slaacA}},
	{"echo-request", IPv6Fields{FlowLabel: 0x5b1e5, PayloadLen: 40, NextHeader: ProtoICMPv6, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"echo-reply", IPv6Fields{FlowLabel: 0x7acd4, PayloadLen: 40, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"echo-class-flow", IPv6Fields{TrafficClass: 0xb9, FlowLabel: 0x12345, PayloadLen: 16, NextHeader: ProtoICMPv6, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"frag-first", IPv6Fields{FlowLabel: 0x5b1e5, PayloadLen: 1456, NextHeader: ProtoFragment, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"frag-middle", IPv6Fields{FlowLabel: 0x5b1e5, PayloadLen: 1456, NextHeader: ProtoFragment, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"frag-last", IPv6Fields{FlowLabel: 0x5b1e5, PayloadLen: 120, NextHeader: ProtoFragment, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"time-exceeded", IPv6Fields{FlowLabel: 0xc9a69, PayloadLen: 72, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"packet-too-big", IPv6Fields{FlowLabel: 0xa8699, PayloadLen: 1240, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"udp", IPv6Fields{FlowLabel: 0x8fb0b, PayloadLen: 13, NextHeader: ProtoUDP, HopLimit: 64, Src: slaacA, Dst: ip6B}},
	{"port-unreachable", IPv6Fields{FlowLabel: 0x275e1, PayloadLen: 61, NextHeader: ProtoICMPv6, HopLimit: 63, Src: ip6B, Dst: slaacA}},
	{"ns-unicast", IPv6Fields{PayloadLen: 32, NextHeader: ProtoICMPv6, HopLimit: 255, Src: llR, Dst: llA}},
	{"na-unicast", IPv6Fields{PayloadLen: 24, NextHeader: ProtoICMPv6, HopLimit: 255, Src: llA, Dst: llR}},
	{"addr-unreachable", IPv6Fields{FlowLabel: 0x91510, PayloadLen: 112, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"no-route", IPv6Fields{FlowLabel: 0xe5132, PayloadLen: 112, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"redirect", IPv6Fields{PayloadLen: 112, NextHeader: ProtoICMPv6, HopLimit: 255, Src: llR, Dst: slaacA}},
	{"tcp-syn", IPv6Fields{FlowLabel: 0xbd735, PayloadLen: 40, NextHeader: ProtoTCP, HopLimit: 64, Src: ip6A, Dst: ip6R}},
	{"tcp-synack", IPv6Fields{FlowLabel: 0x05387, PayloadLen: 40, NextHeader: ProtoTCP, HopLimit: 64, Src: ip6R, Dst: ip6A}},
	{"tcp-data", IPv6Fields{TrafficClass: 0x02, FlowLabel: 0xbd735, PayloadLen: 132, NextHeader: ProtoTCP, HopLimit: 64, Src: ip6A, Dst: ip6R}},
	{"dstopt-skip", IPv6Fields{FlowLabel: 0xda5c1, PayloadLen: 17, NextHeader: ProtoDestOpts, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"dstopt-skip-unreachable", IPv6Fields{FlowLabel: 0x08ad2, PayloadLen: 65, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"dstopt-unknown", IPv6Fields{FlowLabel: 0x50b5a, PayloadLen: 17, NextHeader: ProtoDestOpts, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"paramprob-option", IPv6Fields{FlowLabel: 0x79a64, PayloadLen: 65, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"hbh-unknown", IPv6Fields{FlowLabel: 0x475bd, PayloadLen: 17, NextHeader: ProtoHopByHop, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"paramprob-hbh", IPv6Fields{FlowLabel: 0x79a64, PayloadLen: 65, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"hbh-discard", IPv6Fields{FlowLabel: 0x07616, PayloadLen: 17, NextHeader: ProtoHopByHop, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"dstopt-16", IPv6Fields{FlowLabel: 0x92178, PayloadLen: 25, NextHeader: ProtoDestOpts, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"dstopt-16-unreachable", IPv6Fields{FlowLabel: 0x08ad2, PayloadLen: 73, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"proto-253", IPv6Fields{FlowLabel: 0xe8db4, PayloadLen: 10, NextHeader: 253, HopLimit: 64, Src: slaacA, Dst: ip6R}},
	{"paramprob-nexthdr", IPv6Fields{FlowLabel: 0x4e270, PayloadLen: 58, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
	{"mld-query-v2", IPv6Fields{FlowLabel: 0xb2ed4, PayloadLen: 36, NextHeader: ProtoHopByHop, HopLimit: 1, Src: llR, Dst: IPv6AllNodes}},
	{"mld-report-current", IPv6Fields{PayloadLen: 56, NextHeader: ProtoHopByHop, HopLimit: 1, Src: llA, Dst: IPv6AllMLDv2Routers}},
	{"mld-report-4", IPv6Fields{PayloadLen: 96, NextHeader: ProtoHopByHop, HopLimit: 1, Src: llR, Dst: IPv6AllMLDv2Routers}},
	{"mld-query-v1", IPv6Fields{FlowLabel: 0xb2ed4, PayloadLen: 32, NextHeader: ProtoHopByHop, HopLimit: 1, Src: llR, Dst: IPv6AllNodes}},
	{"mldv1-report", IPv6Fields{PayloadLen: 32, NextHeader: ProtoHopByHop, HopLimit: 1, Src: llA, Dst: mustAddr6("ff02::1:ff00:101")}},
	{"reassembly-timeout", IPv6Fields{FlowLabel: 0x713f1, PayloadLen: 1240, NextHeader: ProtoICMPv6, HopLimit: 64, Src: ip6R, Dst: slaacA}},
}

func TestGolden6Complete(t *testing.T) {
	// Every frame of the file is in the table above, and every frame is
	// an untagged Ethernet frame carrying IPv6 with no padding.
	seen := map[string]bool{}
	for _, tc := range ipv6Golden {
		seen[tc.name] = true
	}
	for name, frame := range golden6 {
		if !seen[name] {
			t.Errorf("frame %s of ipv6-golden.txt is not in ipv6Golden", name)
		}
		var ef EthernetFields
		ef.Decode(Ethernet(frame))
		if ef.EtherType != EtherTypeIPv6 || ef.HasVLAN {
			t.Errorf("%s: %v", name, &ef)
		}
		if p := mustIPv6(frame); len(p.Packet()) != len(frame)-EthernetHeaderLen {
			t.Errorf("%s: %d bytes after the packet", name, len(frame)-EthernetHeaderLen-len(p.Packet()))
		}
	}
	if len(golden6) != len(ipv6Golden) {
		t.Errorf("%d frames in the file, %d in the table", len(golden6), len(ipv6Golden))
	}
}

func TestIPv6Deconstruct(t *testing.T) {
	for _, tc := range ipv6Golden {
		t.Run(tc.name, func(t *testing.T) {
			b := l3(t, g6(tc.name))
			p, err := ParseIPv6(b)
			if err != nil {
				t.Fatalf("ParseIPv6: %v", err)
			}
			w := tc.want
			if p.TrafficClass() != w.TrafficClass || p.ECN() != w.TrafficClass&3 || p.FlowLabel() != w.FlowLabel ||
				p.PayloadLen() != w.PayloadLen || p.NextHeader() != w.NextHeader || p.HopLimit() != w.HopLimit ||
				p.Src() != w.Src || p.Dst() != w.Dst {
				t.Errorf("accessors disagree with tcpdump: class %#x flow %#x plen %d nh %d hlim %d %v > %v",
					p.TrafficClass(), p.FlowLabel(), p.PayloadLen(), p.NextHeader(), p.HopLimit(), p.Src(), p.Dst())
			}
			if pl := p.Payload(); len(pl) != int(w.PayloadLen) || &pl[0] != &b[IPv6HeaderLen] {
				t.Errorf("Payload: %d bytes, want %d aliasing the input", len(pl), w.PayloadLen)
			}
			if pk := p.Packet(); len(pk) != IPv6HeaderLen+int(w.PayloadLen) || &pk[0] != &b[0] {
				t.Errorf("Packet: %d bytes", len(pk))
			}
			var f IPv6Fields
			f.Decode(p)
			if f != w {
				t.Errorf("Decode = %+v\n  want %+v", f, w)
			}
		})
	}
}

func TestIPv6Construct(t *testing.T) {
	for _, tc := range ipv6Golden {
		t.Run(tc.name, func(t *testing.T) {
			b := poisoned(IPv6HeaderLen + 1)
			if n := tc.want.Encode(b); n != IPv6HeaderLen {
				t.Fatalf("Encode = %d", n)
			}
			if d := diffBytes(b[:IPv6HeaderLen], l3(t, g6(tc.name))[:IPv6HeaderLen]); d != "" {
				t.Error(d)
			}
			if b[IPv6HeaderLen] != poison {
				t.Error("Encode wrote past the header")
			}
		})
	}
}

func TestIPv6RoundTrip(t *testing.T) {
	for _, f := range []IPv6Fields{
		{TrafficClass: 0xff, FlowLabel: 0xfffff, PayloadLen: 0xffff, NextHeader: 0xff, HopLimit: 0xff, Src: IPv6AllNodes, Dst: mustAddr6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
		{},
		{TrafficClass: ECNCE, FlowLabel: 1, Src: mustAddr6("::ffff:10.0.0.1"), Dst: mustAddr6("::1")},
	} {
		b := append(poisoned(IPv6HeaderLen), make([]byte, f.PayloadLen)...)
		f.Encode(b)
		p, err := ParseIPv6(b)
		if err != nil {
			t.Fatalf("%v: ParseIPv6(Encode) = %v", &f, err)
		}
		var g IPv6Fields
		g.Decode(p)
		want := f
		if !want.Src.IsValid() {
			want.Src, want.Dst = ip6Unspec, ip6Unspec // the zero Addr is written as ::
		}
		if g != want {
			t.Errorf("round trip\n%+v\n%+v", want, g)
		}
	}
	// Bits of the flow label past 20 are not written; an IPv4 address is
	// written IPv4-mapped.
	f := IPv6Fields{FlowLabel: 0xfff12345, TrafficClass: 0x12, Src: ipA, Dst: ipB}
	b := make([]byte, IPv6HeaderLen)
	f.Encode(b)
	p := IPv6(b)
	if p.FlowLabel() != 0x12345 || p.TrafficClass() != 0x12 || b[0] != 0x61 ||
		p.Src() != netip.AddrFrom16(ipA.As16()) || p.Dst() != netip.AddrFrom16(ipB.As16()) {
		t.Errorf("encoded %x: flow %#x class %#x %v > %v", b[:4], p.FlowLabel(), p.TrafficClass(), p.Src(), p.Dst())
	}
}

func TestIPv6ParseErrors(t *testing.T) {
	good := l3(t, g6("echo-request"))
	for n := 0; n < len(good); n++ {
		if _, err := ParseIPv6(good[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("ParseIPv6(%d of %d bytes) = %v, want ErrTruncated", n, len(good), err)
		}
	}
	for _, v := range []byte{0x00, 0x40, 0x50, 0x70, 0xf0} {
		if _, err := ParseIPv6(edit(good, func(b []byte) { b[0] = v | b[0]&0x0f })); !errors.Is(err, ErrBadHeader) {
			t.Errorf("version %d: %v, want ErrBadHeader", v>>4, err)
		}
	}
	// Payload length 0: an empty payload (jumbograms are not supported).
	p, err := ParseIPv6(edit(good, func(b []byte) { b[4], b[5] = 0, 0 }))
	if err != nil || len(p.Payload()) != 0 || len(p.Packet()) != IPv6HeaderLen {
		t.Errorf("payload length 0: %v", err)
	}
	// Ethernet padding after a short packet stays out of Payload.
	p, err = ParseIPv6(append(slicesClone(good), 0, 0, 0, 0))
	if err != nil || len(p.Payload()) != 40 || len(p) != len(good)+4 {
		t.Errorf("padded: %v", err)
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func TestIPv6Setters(t *testing.T) {
	b := slicesClone(l3(t, g6("echo-class-flow")))
	p := IPv6(b)
	p.SetHopLimit(1)
	p.SetTrafficClass(p.TrafficClass() | ECNCE) // a router marks CE (RFC 3168 §5)
	if p.HopLimit() != 1 || p.TrafficClass() != 0xbb || p.ECN() != ECNCE || p.FlowLabel() != 0x12345 || b[0]>>4 != 6 {
		t.Errorf("hlim %d class %#x flow %#x version %d", p.HopLimit(), p.TrafficClass(), p.FlowLabel(), b[0]>>4)
	}
	for tc := 0; tc < 256; tc++ {
		p.SetTrafficClass(uint8(tc))
		if p.TrafficClass() != uint8(tc) || p.FlowLabel() != 0x12345 || b[0]>>4 != 6 {
			t.Fatalf("SetTrafficClass(%#x): class %#x flow %#x", tc, p.TrafficClass(), p.FlowLabel())
		}
	}
}

// TestGolden6Checksums verifies every captured upper-layer checksum with
// the IPv6 pseudo-header (RFC 8200 §8.1), and checks that a single-bit
// change in an address, in the length or in the data is detected.
func TestGolden6Checksums(t *testing.T) {
	for _, tc := range ipv6Golden {
		frame := g6(tc.name)
		p := mustIPv6(frame)
		var c IPv6Chain
		if err := c.Walk(p); err != nil || c.Fragmented() {
			continue // the parameter-problem triggers and fragments
		}
		up := c.Upper(p)
		src, dst := p.Src(), p.Dst()
		var sum func(b []byte, s, d netip.Addr) uint16
		switch c.Proto {
		case ProtoTCP:
			sum = TCPChecksum
		case ProtoUDP:
			sum = UDPChecksum
		case ProtoICMPv6:
			sum = ICMPv6Checksum
		default:
			continue
		}
		if got := sum(up, src, dst); got != 0 {
			t.Errorf("%s: checksum over the kernel's message = %#04x, want 0", tc.name, got)
		}
		s16 := src.As16()
		s16[15] ^= 1
		if sum(up, netip.AddrFrom16(s16), dst) == 0 {
			t.Errorf("%s: a changed source address still verifies", tc.name)
		}
		if sum(up[:len(up)-1], src, dst) == 0 && up[len(up)-1] != 0 {
			t.Errorf("%s: a shorter message still verifies", tc.name)
		}
	}
}
