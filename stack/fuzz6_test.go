package stack_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// fuzz6Fixture is FuzzStackInput's fixture over IPv6 (and IPv4 beside
// it): stack A with an established IPv6 connection to B, data in flight
// both ways, a listener on :: and a UDP socket. Router advertisements
// are accepted, so that the fuzzer reaches address configuration too.
func newFuzz6Fixture(t testing.TB) *fuzzFixture {
	n := stacktest.New(t)
	cfg := stack.Config{Seed: 1, IPv6: stack.IPv6Config{DADTransmits: -1}}
	a := n.AddStack("A", stack.New(cfg), stack.NICConfig{MAC: stacktest.MAC(1),
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("2001:db8::1/64")}})
	cfg.Seed = 2
	b := n.AddStack("B", stack.New(cfg), stack.NICConfig{MAC: stacktest.MAC(2),
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("2001:db8::2/64")}})
	x := &fuzzFixture{n: n, a: a, b: b, ab: payload(10, fuzzData), ba: payload(11, fuzzData)}
	var err error
	if x.l, err = a.Stack.Listen(ap(netip.IPv6Unspecified(), 80), 0); err != nil {
		t.Fatal(err)
	}
	if x.u, err = a.Stack.BindUDP(ap(netip.IPv6Unspecified(), 53)); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Stack.Listen(ap(ip6B, 8080), 0)
	if err != nil {
		t.Fatal(err)
	}
	x.c, x.s = connectTo(t, n, a, lb, ap(ip6B, 8080))
	x.pump()
	n.RunFor(1500 * time.Microsecond)
	x.pump()
	return x
}

// fuzz6Seeds are inputs (in splitFrames' framing) of frames to A that
// reach each part of IPv6's input: NDP of every kind, MLD, echo in
// fragments, extension headers, TCP and UDP.
func fuzz6Seeds(t testing.TB, x *fuzzFixture) [][]byte {
	r := x.b
	llR := wire.LinkLocalFromMAC(r.MAC)
	mc := func(a netip.Addr) wire.MAC { m, _ := wire.MulticastMAC(a); return m }
	g := wire.SolicitedNodeMulticast(ip6A)
	var seeds [][]byte
	seeds = append(seeds,
		ndpFrame(r, mc(g), ip6B, g, wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: ip6A}, wire.NDPOptions{HasSourceLinkAddr: true, SourceLinkAddr: r.MAC}),
		ndpFrame(r, x.a.MAC, ip6B, ip6A, wire.NDPFields{Type: wire.ICMPv6NeighborAdvert, Target: ip6B, Solicited: true, Override: true}, wire.NDPOptions{HasTargetLinkAddr: true, TargetLinkAddr: r.MAC}),
		ndpFrame(r, mc(g), netip.IPv6Unspecified(), g, wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: ip6A}, wire.NDPOptions{Nonce: []byte{1, 2, 3, 4, 5, 6}}),
	)
	ra := wire.NDPFields{Type: wire.ICMPv6RouterAdvert, CurHopLimit: 9, RouterLifetime: 300, ReachableTime: 1000, RetransTimer: 100}
	var o wire.NDPOptions
	o.HasSourceLinkAddr, o.SourceLinkAddr, o.HasMTU, o.MTU = true, r.MAC, true, 1400
	ra.Options = make([]byte, o.Len()+wire.NDPPrefixInfoLen)
	k := o.Encode(ra.Options)
	(&wire.NDPPrefixInfo{PrefixLen: 64, Flags: wire.NDPPrefixOnLink | wire.NDPPrefixAutonomous, ValidLifetime: 60, PreferredLifetime: 30,
		Prefix: netip.MustParseAddr("2001:db8:7::")}).Encode(ra.Options[k:])
	m := make([]byte, ra.Len())
	ra.Encode(m, llR, wire.IPv6AllNodes)
	seeds = append(seeds, r.IP6Frame(mc(wire.IPv6AllNodes), stacktest.IP6(wire.IPv6Fields{Src: llR, Dst: wire.IPv6AllNodes, NextHeader: wire.ProtoICMPv6, HopLimit: 255}, m)))
	q := make([]byte, wire.MLDv2QueryLen)
	(&wire.MLDFields{Type: wire.ICMPv6MLDQuery, MaxRespCode: 100, Multicast: netip.IPv6Unspecified(), V2: true}).Encode(q, llR, wire.IPv6AllNodes)
	seeds = append(seeds, r.IP6Frame(mc(wire.IPv6AllNodes), stacktest.IP6(wire.IPv6Fields{Src: llR, Dst: wire.IPv6AllNodes, NextHeader: wire.ProtoICMPv6, HopLimit: 1}, q)))
	echo := stacktest.IP6(wire.IPv6Fields{Src: ip6B, Dst: ip6A, NextHeader: wire.ProtoICMPv6},
		stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, ID: 1, Seq: 1, Payload: payload(5, 3000)}, ip6B, ip6A))
	var fr network.Fragmenter6
	if err := fr.Reset(echo, 1280, 9); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1280)
	var frags [][]byte
	for k := fr.Next(buf); k > 0; k = fr.Next(buf) {
		frags = append(frags, r.IP6Frame(x.a.MAC, bytes.Clone(buf[:k])))
	}
	fragSeed := len(seeds)
	seeds = append(seeds, joinFrames(frags...))
	dopt := wire.IPv6OptionsFields{NextHeader: wire.ProtoUDP, Options: []byte{0x9e, 2, 0, 0}}
	d := make([]byte, dopt.Len())
	dopt.Encode(d)
	udp := stacktest.UDPDgram(ap(ip6B, 1000), ap(ip6A, 53), []byte("query"))
	seeds = append(seeds,
		r.IP6Frame(x.a.MAC, stacktest.IP6(wire.IPv6Fields{Src: ip6B, Dst: ip6A, NextHeader: wire.ProtoDestOpts}, append(d, udp...))),
		r.UDPFrame(x.a.MAC, ap(ip6B, 1000), ap(ip6A, 53), []byte("query")),
		r.TCPFrame(x.a.MAC, ap(ip6B, 40000), ap(ip6A, 80), wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN, Window: 65535}),
	)
	for i, sd := range seeds {
		if i != fragSeed {
			seeds[i] = joinFrames(sd) // a single frame
		}
	}
	return seeds
}

// FuzzStackInput6 feeds arbitrary frames to a stack with IPv6 — an
// established connection with data in flight, a listener, a UDP socket,
// router advertisements accepted — as FuzzStackInput does for IPv4 (the
// same framing of the input; each input also with its checksums made
// valid). Properties: no panic, no counter goes down, and the stack keeps
// working: its timers run for a minute of virtual time without a
// deadline left in the past (stacktest fails the test on one), and every
// frame it sends decodes. Unlike FuzzStackInput it does not ask the
// connection to survive: a valid neighbour advertisement or router
// advertisement may legitimately redirect A's traffic (NDP has no
// authentication, RFC 3756).
func FuzzStackInput6(f *testing.F) {
	x := newFuzz6Fixture(f)
	for _, s := range fuzz6Seeds(f, x) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := splitFrames(data)
		for fix := range 2 {
			if fix == 1 {
				changed := false
				for i, fr := range frames {
					fixed := bytes.Clone(fr)
					stacktest.FixChecksums(fixed)
					changed = changed || !bytes.Equal(fixed, fr)
					frames[i] = fixed
				}
				if !changed {
					break
				}
			}
			x := newFuzz6Fixture(t)
			first := len(x.n.Log)
			for _, fr := range frames {
				before := x.a.Stack.Stats()
				x.a.Inject(fr)
				checkGrowth(t, before, x.a.Stack.Stats())
				x.n.RunFor(100 * time.Microsecond)
			}
			for range 60 {
				x.pump()
				x.n.RunFor(time.Second)
			}
			for _, f := range x.n.Since(first) {
				if f.From == x.a {
					if d := f.Decode(); d.Err != nil {
						t.Fatalf("A sent a frame that does not decode: %v: %v", f, d.Err)
					}
				}
			}
		}
	})
}

// TestFuzz6Fixture: without fuzz frames the fixture's IPv6 transfer
// completes, so FuzzStackInput6 starts from a working stack.
func TestFuzz6Fixture(t *testing.T) {
	x := newFuzz6Fixture(t)
	if x.c.Info().Unacked == 0 || !x.c.RemoteAddr().Addr().Is6() {
		t.Fatalf("no IPv6 data in flight: %v", x.c.RemoteAddr())
	}
	x.finish(t, true)
}
