package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// ndpGolden lists the captured NDP messages with their fields and single
// options as tcpdump -vv printed them (Options is filled from the capture).
var ndpGolden = []struct {
	name string
	want NDPFields
	opts NDPOptions
}{
	// Duplicate address detection: no source link-layer address (RFC
	// 4861 §7.2.2, from ::), a 6-byte nonce (RFC 7527).
	{"ns-dad", NDPFields{Type: ICMPv6NeighborSolicit, Target: llA}, NDPOptions{Nonce: unhex("f009a86d321e")}},
	{"rs", NDPFields{Type: ICMPv6RouterSolicit}, NDPOptions{SourceLinkAddr: macA0, HasSourceLinkAddr: true}},
	{"ra", NDPFields{Type: ICMPv6RouterAdvert, CurHopLimit: 64, RouterLifetime: 1800},
		NDPOptions{SourceLinkAddr: macR0, HasSourceLinkAddr: true, MTU: 1500, HasMTU: true, Prefixes: 1, RDNSS: 1}},
	{"ns", NDPFields{Type: ICMPv6NeighborSolicit, Target: ip6R}, NDPOptions{SourceLinkAddr: macA0, HasSourceLinkAddr: true}},
	{"na", NDPFields{Type: ICMPv6NeighborAdvert, Router: true, Solicited: true, Override: true, Target: ip6R},
		NDPOptions{TargetLinkAddr: macR0, HasTargetLinkAddr: true}},
	{"ns-unicast", NDPFields{Type: ICMPv6NeighborSolicit, Target: llA}, NDPOptions{SourceLinkAddr: macR0, HasSourceLinkAddr: true}},
	{"na-unicast", NDPFields{Type: ICMPv6NeighborAdvert, Solicited: true, Target: llA}, NDPOptions{}},
	// The redirected header: tcpdump -vv's dump of the option, after its
	// 6 reserved bytes.
	{"redirect", NDPFields{Type: ICMPv6Redirect, Target: llC, Destination: ip6C3},
		NDPOptions{TargetLinkAddr: macC, HasTargetLinkAddr: true, RedirectedHeader: unhex(`
		6002 ac7c 0010 3a40 2001 0db8 0001 0000 0000 00ff fe00 0101 2001
		0db8 0003 0000 0000 0000 0000 0001 8000 1134 06f8 0001 0001 0203 0405 0607`)}},
}

func goldenNDP(t *testing.T, name string) (NDP, netip.Addr, netip.Addr) {
	t.Helper()
	p := mustIPv6(g6(name))
	m, err := ParseNDP(mustUpper(g6(name)))
	if err != nil {
		t.Fatalf("%s: ParseNDP: %v", name, err)
	}
	return m, p.Src(), p.Dst()
}

func eqNDP(a, b NDPFields) bool {
	ao, bo := a.Options, b.Options
	a.Options, b.Options = nil, nil
	return reflect.DeepEqual(a, b) && bytes.Equal(ao, bo)
}

func eqNDPOptions(a, b NDPOptions) bool {
	an, bn, ar, br := a.Nonce, b.Nonce, a.RedirectedHeader, b.RedirectedHeader
	a.Nonce, b.Nonce, a.RedirectedHeader, b.RedirectedHeader = nil, nil, nil, nil
	return reflect.DeepEqual(a, b) && bytes.Equal(an, bn) && (an == nil) == (bn == nil) && bytes.Equal(ar, br) && (ar == nil) == (br == nil)
}

func TestNDPDeconstruct(t *testing.T) {
	for _, tc := range ndpGolden {
		t.Run(tc.name, func(t *testing.T) {
			m, src, dst := goldenNDP(t, tc.name)
			if ICMPv6Checksum(m, src, dst) != 0 {
				t.Error("checksum does not verify")
			}
			w := tc.want
			w.Checksum = m.Checksum()
			w.Options = m[ndpHeaderLen(w.Type):]
			if m.Type() != w.Type || (w.Type == ICMPv6RouterAdvert && (m.CurHopLimit() != w.CurHopLimit || m.RAFlags() != w.RAFlags ||
				m.RouterLifetime() != w.RouterLifetime || m.ReachableTime() != w.ReachableTime || m.RetransTimer() != w.RetransTimer)) ||
				(w.Type == ICMPv6NeighborAdvert && (m.Router() != w.Router || m.Solicited() != w.Solicited || m.Override() != w.Override)) ||
				(w.Target.IsValid() && m.Target() != w.Target) || (w.Destination.IsValid() && m.Destination() != w.Destination) {
				t.Errorf("accessors disagree with tcpdump")
			}
			var f NDPFields
			f.Decode(m)
			if !eqNDP(f, w) {
				t.Errorf("Decode = %+v\n  want %+v", f, w)
			}
			var o NDPOptions
			if err := o.Decode(m.Options()); err != nil || !eqNDPOptions(o, tc.opts) {
				t.Errorf("options = %+v, %v\n  want %+v", o, err, tc.opts)
			}
		})
	}
}

func TestNDPConstruct(t *testing.T) {
	for _, tc := range ndpGolden {
		t.Run(tc.name, func(t *testing.T) {
			m, src, dst := goldenNDP(t, tc.name)
			w := tc.want
			w.Options = m.Options()
			n := w.Len()
			b := poisoned(n + 1)
			if got := w.Encode(b, src, dst); got != n || n != len(m) {
				t.Fatalf("Encode = %d, Len %d, want %d", got, n, len(m))
			}
			if d := diffBytes(b[:n], m); d != "" {
				t.Error(d)
			}
			if b[n] != poison {
				t.Error("Encode wrote past Len")
			}
			if tc.name == "ra" {
				return // radvd's option order differs from Linux's: TestNDPRouterAdvertOptions
			}
			// NDPOptions writes the options in Linux's order.
			ob := poisoned(tc.opts.Len() + 1)
			if k := tc.opts.Encode(ob); k != tc.opts.Len() || !bytes.Equal(ob[:k], m.Options()) || ob[k] != poison {
				t.Errorf("NDPOptions.Encode = %x\n                want %x", ob[:k], []byte(m.Options()))
			}
		})
	}
}

func TestNDPRouterAdvertOptions(t *testing.T) {
	// radvd's RA: prefix information, RDNSS, MTU, source link-layer
	// address, as tcpdump -vv decoded them.
	m, _, _ := goldenNDP(t, "ra")
	wantPI := NDPPrefixInfo{PrefixLen: 64, Flags: NDPPrefixOnLink | NDPPrefixAutonomous, ValidLifetime: 86400, PreferredLifetime: 14400, Prefix: mustAddr6("2001:db8:1::")}
	var types []uint8
	for l := m.Options(); len(l) > 0; {
		o, rest, ok := l.Next()
		if !ok {
			t.Fatal("Next failed on a checked list")
		}
		types = append(types, o.Type())
		switch o.Type() {
		case NDPOptPrefixInfo:
			if pi := o.PrefixInfo(); pi != wantPI || o.Len() != 32 {
				t.Errorf("prefix %+v", pi)
			}
		case NDPOptRDNSS:
			if o.RDNSSLifetime() != 600 || o.RDNSSServers().Len() != 1 || o.RDNSSServers().At(0) != mustAddr6("2001:db8:1::53") {
				t.Errorf("RDNSS %d %x", o.RDNSSLifetime(), []byte(o.RDNSSServers()))
			}
		case NDPOptMTU:
			if o.MTU() != 1500 || len(o.Body()) != 6 {
				t.Errorf("MTU %d", o.MTU())
			}
		case NDPOptSourceLinkAddr:
			if o.LinkAddr() != macR0 {
				t.Errorf("SLLA %v", o.LinkAddr())
			}
		}
		l = rest
	}
	if !bytes.Equal(types, []uint8{NDPOptPrefixInfo, NDPOptRDNSS, NDPOptMTU, NDPOptSourceLinkAddr}) {
		t.Errorf("option types %v", types)
	}
	// Encoding each option reproduces radvd's bytes.
	b := poisoned(88)
	i := wantPI.Encode(b)
	r := NDPRDNSS{Lifetime: 600, Servers: AppendIPv6Addrs(nil, mustAddr6("2001:db8:1::53"))}
	i += r.Encode(b[i:])
	o := NDPOptions{MTU: 1500, HasMTU: true}
	i += o.Encode(b[i:])
	o = NDPOptions{SourceLinkAddr: macR0, HasSourceLinkAddr: true}
	i += o.Encode(b[i:])
	if d := diffBytes(b[:i], m.Options()); d != "" {
		t.Error(d)
	}
	if r.Len() != 24 {
		t.Errorf("RDNSS Len %d", r.Len())
	}
}

func TestNDPRedirect(t *testing.T) {
	// The redirected header option quotes A's whole 56-byte packet (RFC
	// 4861 §4.6.3): an echo request, id 1784, to 2001:db8:3::1.
	m, _, _ := goldenNDP(t, "redirect")
	var o NDPOptions
	if err := o.Decode(m.Options()); err != nil {
		t.Fatal(err)
	}
	p, err := ParseIPv6(o.RedirectedHeader)
	if err != nil || p.Src() != slaacA || p.Dst() != ip6C3 || len(p.Packet()) != 56 {
		t.Fatalf("redirected packet %v", err)
	}
	if e := ICMPv6(p.Payload()); e.Type() != ICMPv6EchoRequest || e.ID() != 1784 || ICMPv6Checksum(e, p.Src(), p.Dst()) != 0 {
		t.Errorf("redirected echo %d id %d", e.Type(), e.ID())
	}
	// Padding: a 57-byte quote takes 72 bytes (8 + 57 rounded up).
	o = NDPOptions{RedirectedHeader: make([]byte, 57)}
	b := poisoned(o.Len())
	if n := o.Encode(b); n != 72 || b[1] != 9 || !allZero(b[2:8]) || !allZero(b[8:]) {
		t.Errorf("Encode = %d: %x", n, b)
	}
	// At most 2032 bytes of packet fit in one option.
	o = NDPOptions{RedirectedHeader: make([]byte, 3000)}
	if o.Len() != 255*8 {
		t.Errorf("Len = %d", o.Len())
	}
	b = make([]byte, o.Len())
	o.Encode(b)
	var back NDPOptions
	if err := back.Decode(b); err != nil || len(back.RedirectedHeader) != 2032 {
		t.Errorf("long redirected header: %v %d", err, len(back.RedirectedHeader))
	}
}

func TestNDPRoundTrip(t *testing.T) {
	opts := func(o NDPOptions) []byte {
		b := make([]byte, o.Len())
		o.Encode(b)
		return b
	}
	pi := make([]byte, 32)
	(&NDPPrefixInfo{PrefixLen: 48, Flags: 0xff, ValidLifetime: 0xffffffff, PreferredLifetime: 1, Prefix: mustAddr6("2001:db8::")}).Encode(pi)
	for _, f := range []NDPFields{
		{Type: ICMPv6RouterAdvert, CurHopLimit: 255, RAFlags: 0xff, RouterLifetime: 0xffff, ReachableTime: 0xffffffff, RetransTimer: 1,
			Options: append(opts(NDPOptions{MTU: 1280, HasMTU: true}), pi...)},
		{Type: ICMPv6NeighborAdvert, Override: true, Target: ip6A, Options: opts(NDPOptions{TargetLinkAddr: macA0, HasTargetLinkAddr: true})},
		{Type: ICMPv6NeighborAdvert, Router: true, Target: llA},
		{Type: ICMPv6NeighborSolicit, Target: ip6A, Options: opts(NDPOptions{Nonce: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}})},
		{Type: ICMPv6Redirect, Target: llR, Destination: ip6B, Options: opts(NDPOptions{RedirectedHeader: []byte{}})},
		{Type: ICMPv6RouterSolicit, Options: []byte{200, 1, 0, 0, 0, 0, 0, 0}}, // an unknown option is kept
	} {
		b := poisoned(f.Len())
		f.Encode(b, llA, IPv6AllRouters)
		m, err := ParseNDP(b)
		if err != nil {
			t.Fatalf("%v: ParseNDP(Encode) = %v", &f, err)
		}
		if ICMPv6Checksum(m, llA, IPv6AllRouters) != 0 {
			t.Errorf("%v: checksum", &f)
		}
		var g NDPFields
		g.Decode(m)
		f.Checksum = g.Checksum
		if !eqNDP(f, g) {
			t.Errorf("round trip\n%+v\n%+v", f, g)
		}
	}
	// A Type that is not NDP is written with an 8-byte fixed part.
	f := NDPFields{Type: 1, Target: ip6A, Options: []byte{1, 2}}
	b := poisoned(f.Len())
	if n := f.Encode(b, llA, llR); n != 10 || !allZero(b[4:8]) {
		t.Errorf("type 1: %d %x", n, b)
	}
	// Nonces are padded to whole 8-byte units; decoding keeps the padding.
	o := NDPOptions{Nonce: []byte{1, 2, 3, 4, 5, 6, 7}}
	nb := poisoned(o.Len())
	if n := o.Encode(nb); n != 16 || nb[1] != 2 || !bytes.Equal(nb[2:9], o.Nonce) || !allZero(nb[9:]) {
		t.Errorf("nonce %x", nb)
	}
	o = NDPOptions{Nonce: make([]byte, 5000)}
	if o.Len() != 255*8 {
		t.Errorf("long nonce Len %d", o.Len())
	}
}

func TestNDPParseErrors(t *testing.T) {
	for _, name := range []string{"rs", "ra", "ns", "na-unicast", "redirect"} {
		m := mustUpper(g6(name))
		hl := ndpHeaderLen(m[0])
		for n := 0; n < hl; n++ {
			if _, err := ParseNDP(m[:n]); err != ErrTruncated {
				t.Errorf("%s: ParseNDP(%d bytes) = %v, want ErrTruncated", name, n, err)
			}
		}
		if _, err := ParseNDP(m[:hl]); err != nil {
			t.Errorf("%s without options: %v", name, err)
		}
		// RFC 4861 §6.1.1 and the like: ICMP code 0.
		if _, err := ParseNDP(edit(m, func(b []byte) { b[1] = 1 })); err != ErrBadHeader {
			t.Errorf("%s with code 1: %v", name, err)
		}
	}
	for _, typ := range []uint8{ICMPv6EchoRequest, ICMPv6MLDQuery, 138, 0} {
		if _, err := ParseNDP([]byte{typ, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != ErrUnsupported {
			t.Errorf("type %d: %v", typ, err)
		}
	}
	rs := mustUpper(g6("rs"))[:8]
	for _, tc := range []struct {
		name string
		opts []byte
		want error
	}{
		{"length 0", []byte{1, 0, 2, 0, 0, 0, 1, 1}, ErrBadOptions},
		{"past the end", []byte{1, 2, 2, 0, 0, 0, 1, 1}, ErrBadOptions},
		{"one byte", []byte{1}, ErrBadOptions},
		{"source link-layer address of 16 bytes", append([]byte{1, 2}, make([]byte, 14)...), ErrBadOptions},
		{"target link-layer address of 16 bytes", append([]byte{2, 2}, make([]byte, 14)...), ErrBadOptions},
		{"MTU of 16 bytes", append([]byte{5, 2}, make([]byte, 14)...), ErrBadOptions},
		{"prefix information of 24 bytes", append([]byte{3, 3}, make([]byte, 22)...), ErrBadOptions},
		{"RDNSS of 8 bytes", append([]byte{25, 1}, make([]byte, 6)...), ErrBadOptions},
		{"RDNSS of 32 bytes", append([]byte{25, 4}, make([]byte, 30)...), ErrBadOptions},
		{"RDNSS of 40 bytes", append([]byte{25, 5}, make([]byte, 38)...), nil},
		{"unknown option", append([]byte{31, 2}, make([]byte, 14)...), nil},
		{"long nonce", append([]byte{14, 2}, make([]byte, 14)...), nil},
	} {
		if _, err := ParseNDP(append(slicesClone(rs), tc.opts...)); err != tc.want {
			t.Errorf("%s: ParseNDP = %v, want %v", tc.name, err, tc.want)
		}
		var o NDPOptions
		if err := o.Decode(tc.opts); err != tc.want {
			t.Errorf("%s: Decode = %v", tc.name, err)
		}
	}
	// Options that should occur once: the first one counts (Linux:
	// ndisc_parse_options).
	var opts []byte
	for _, x := range []byte{1, 2} {
		opts = append(opts, 1, 1, 2, 0, 0, 0, 0, x, 2, 1, 2, 0, 0, 0, 0, x, 5, 1, 0, 0, 0, 0, 5, x,
			14, 1, x, 0, 0, 0, 0, 0, 4, 1, x, 0, 0, 0, 0, 0)
	}
	var o NDPOptions
	if err := o.Decode(opts); err != nil || o.SourceLinkAddr[5] != 1 || o.TargetLinkAddr[5] != 1 || o.MTU != 0x501 ||
		o.Nonce[0] != 1 || o.RedirectedHeader == nil || len(o.RedirectedHeader) != 0 {
		t.Errorf("duplicates: %+v, %v", o, err)
	}
	// Next stops at a malformed option.
	for _, l := range []NDPOptionList{{1}, {1, 0, 0, 0, 0, 0, 0, 0}, {1, 2, 0, 0, 0, 0, 0, 0}, nil} {
		if _, _, ok := l.Next(); ok {
			t.Errorf("Next(%x) = ok", []byte(l))
		}
	}
	if !errors.Is(ErrBadOptions, ErrBadOptions) {
		t.Fatal()
	}
}
