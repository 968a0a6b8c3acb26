package stack_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

var (
	ip6A   = netip.MustParseAddr("2001:db8::1")
	ip6B   = netip.MustParseAddr("2001:db8::2")
	ip6Raw = netip.MustParseAddr("2001:db8::9")
	llRaw  = netip.MustParseAddr("fe80::9")
)

// pair6 returns a segment with stacks A (2001:db8::1) and B
// (2001:db8::2), run until their addresses are usable.
func pair6(t testing.TB, cfgA, cfgB stack.Config) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n := stacktest.New(t)
	if cfgA.Seed == 0 {
		cfgA.Seed = 1
	}
	if cfgB.Seed == 0 {
		cfgB.Seed = 2
	}
	a := n.AddHost("A", cfgA, "2001:db8::1/64")
	b := n.AddHost("B", cfgB, "2001:db8::2/64")
	waitUsable(t, n, a, b)
	return n, a, b
}

// withRaw6 returns a segment with stack A (2001:db8::1, its addresses
// usable) and a raw node R (2001:db8::9) that A knows (a permanent
// neighbour entry), so that A's answers to R need no resolution.
func withRaw6(t testing.TB, cfg stack.Config) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n := stacktest.New(t)
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	a := n.AddHost("A", cfg, "2001:db8::1/64")
	r := n.AddRaw("R", stacktest.MAC(9), ip6Raw)
	a.Stack.AddNeighbor(a.NIC, ip6Raw, r.MAC)
	a.Stack.AddNeighbor(a.NIC, llRaw, r.MAC)
	waitUsable(t, n, a)
	n.RunFor(15 * time.Second) // past the router solicitations
	r.Take()
	return n, a, r
}

// waitUsable runs the segment until every address of the nodes' NICs has
// passed DAD.
func waitUsable(t testing.TB, n *stacktest.Net, nodes ...*stacktest.Node) {
	t.Helper()
	n.RunUntil(10*time.Second, func() bool {
		for _, nd := range nodes {
			for _, a := range nd.Stack.AddrInfo(nd.NIC) {
				if a.State == "tentative" {
					return false
				}
			}
		}
		return true
	})
}

// decoded returns the frames of fs that decode and pass keep.
func decoded(fs []*stacktest.Frame, keep func(d *stacktest.Decoded) bool) []*stacktest.Decoded {
	var out []*stacktest.Decoded
	for _, f := range fs {
		if d := f.Decode(); d.Err == nil && keep(d) {
			out = append(out, d)
		}
	}
	return out
}

// ndpOf is a predicate: an NDP message of type typ.
func ndpOf(typ uint8) func(d *stacktest.Decoded) bool {
	return func(d *stacktest.Decoded) bool { return d.NDP != nil && d.NDP.Type == typ }
}

// icmp6Of is a predicate: an ICMPv6 message of type typ.
func icmp6Of(typ uint8) func(d *stacktest.Decoded) bool {
	return func(d *stacktest.Decoded) bool { return d.ICMP6 != nil && d.ICMP6.Type == typ }
}

// addrState returns the state of address a on nd's NIC, or "".
func addrState(nd *stacktest.Node, a netip.Addr) string {
	for _, x := range nd.Stack.AddrInfo(nd.NIC) {
		if x.Prefix.Addr() == a {
			return x.State
		}
	}
	return ""
}

// ndpFrame returns a frame from raw node r carrying the NDP message f
// from src to dst (hop limit 255), to MAC to.
func ndpFrame(r *stacktest.Node, to wire.MAC, src, dst netip.Addr, f wire.NDPFields, o wire.NDPOptions) []byte {
	f.Options = make([]byte, o.Len())
	o.Encode(f.Options)
	m := make([]byte, f.Len())
	f.Encode(m, src, dst)
	return r.IP6Frame(to, stacktest.IP6(wire.IPv6Fields{Src: src, Dst: dst, NextHeader: wire.ProtoICMPv6, HopLimit: 255}, m))
}

func multicastMAC(a netip.Addr) wire.MAC {
	m, _ := wire.MulticastMAC(a)
	return m
}

// TestIPv6Startup: what a NIC with IPv6 sends when it starts. RFC 4862
// §5.3: a link-local address from the MAC (modified EUI-64, RFC 4291
// Appendix A); §5.4: every address tentative, one neighbour solicitation
// each from :: to its solicited-node group, with a nonce (RFC 7527) and
// no source link-layer option, after a random delay of up to a second;
// usable RetransTimer (1 s) after it. RFC 3810 §6.1: the solicited-node
// groups (never ff02::1) reported at once and again, MLDv2 to ff02::16
// with hop limit 1 and a Router Alert. RFC 4861 §6.3.7: three router
// solicitations 4 s apart from the link-local address, once it is usable,
// with the source link-layer option.
func TestIPv6Startup(t *testing.T) {
	n := stacktest.New(t)
	r := n.AddRaw("R", stacktest.MAC(9), ip6Raw)
	a := n.AddHost("A", stack.Config{Seed: 1}, "2001:db8::1/64")
	ll := wire.LinkLocalFromMAC(a.MAC)
	if got := a.Stack.Addrs(a.NIC); len(got) != 2 || got[0].Addr() != ll || got[1].Addr() != ip6A {
		t.Fatalf("addresses %v, want the link-local %v and %v", got, ll, ip6A)
	}
	for _, x := range a.Stack.AddrInfo(a.NIC) {
		if x.State != "tentative" {
			t.Fatalf("%v is %s before DAD", x.Prefix, x.State)
		}
	}
	// A packet to a tentative address is dropped (RFC 4862 §5.4).
	echo := r.ICMP6Frame(a.MAC, ip6Raw, ip6A, 64, wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, ID: 1, Seq: 1})
	expectDrop(t, n, a, echo, map[string]int64{"Net.Ip6InAddrErrors": 1})

	n.RunFor(20 * time.Second)
	for _, x := range a.Stack.AddrInfo(a.NIC) {
		if x.State != "preferred" {
			t.Errorf("%v is %s after DAD", x.Prefix, x.State)
		}
	}
	in := r.Take()
	dad := decoded(in, ndpOf(wire.ICMPv6NeighborSolicit))
	if len(dad) != 2 {
		t.Fatalf("%d neighbour solicitations, want one per address", len(dad))
	}
	targets := map[netip.Addr]bool{}
	for _, d := range dad {
		var o wire.NDPOptions
		o.Decode(d.NDP.Options)
		g := wire.SolicitedNodeMulticast(d.NDP.Target)
		if !d.IP6.Src.IsUnspecified() || d.IP6.Dst != g || d.Eth.Dst != multicastMAC(g) || d.IP6.HopLimit != 255 ||
			o.HasSourceLinkAddr || len(o.Nonce) != 6 {
			t.Errorf("DAD solicitation %v with options %+v", d, o)
		}
		targets[d.NDP.Target] = true
	}
	if !targets[ll] || !targets[ip6A] {
		t.Errorf("DAD for %v, want both addresses", targets)
	}
	groups := map[netip.Addr]int{}
	for _, f := range in {
		d := f.Decode()
		if d.ICMP6 == nil || d.ICMP6.Type != wire.ICMPv6MLDv2Report {
			continue
		}
		if d.IP6.Dst != wire.IPv6AllMLDv2Routers || d.IP6.HopLimit != 1 || !d.Chain.RouterAlert || d.Chain.RouterAlertValue != wire.RouterAlertMLD {
			t.Errorf("MLD report %v: router alert %v", d, d.Chain.RouterAlert)
		}
		rep, err := wire.ParseMLDv2Report(d.Chain.Upper(d.IPv6))
		if err != nil {
			t.Fatal(err)
		}
		for l := rep.Records(); ; {
			rec, rest, ok := l.Next()
			if !ok {
				break
			}
			if rec.Type() != wire.MLDChangeToExclude {
				t.Errorf("record type %d, want CHANGE_TO_EXCLUDE", rec.Type())
			}
			groups[rec.Multicast()]++
			l = rest
		}
	}
	if groups[wire.SolicitedNodeMulticast(ll)] != 2 || groups[wire.IPv6AllNodes] != 0 || len(groups) != 2 {
		t.Errorf("groups reported %v: want each solicited-node group twice (the addresses share none), ff02::1 never", groups)
	}
	rs := decoded(in, ndpOf(wire.ICMPv6RouterSolicit))
	if len(rs) != 3 {
		t.Fatalf("%d router solicitations, want 3", len(rs))
	}
	for i, d := range rs {
		var o wire.NDPOptions
		o.Decode(d.NDP.Options)
		if d.IP6.Src != ll || d.IP6.Dst != wire.IPv6AllRouters || !o.HasSourceLinkAddr || o.SourceLinkAddr != a.MAC {
			t.Errorf("router solicitation %v, options %+v", d, o)
		}
		_ = i
	}
	var rsAt []clock.Instant
	for _, f := range in {
		if d := f.Decode(); d.NDP != nil && d.NDP.Type == wire.ICMPv6RouterSolicit {
			rsAt = append(rsAt, f.Sent)
		}
	}
	if rsAt[1].Sub(rsAt[0]) != 4*time.Second || rsAt[2].Sub(rsAt[1]) != 4*time.Second {
		t.Errorf("router solicitations at %v, want 4 s apart", rsAt)
	}
	// Now the address answers.
	i := len(n.Log)
	a.Stack.AddNeighbor(a.NIC, ip6Raw, r.MAC)
	r.Send(echo)
	n.RunFor(time.Second)
	if rep := decoded(n.Since(i), icmp6Of(wire.ICMPv6EchoReply)); len(rep) != 1 || rep[0].IP6.Src != ip6A {
		t.Errorf("echo replies %v", rep)
	}
}

// TestIPv6DADDuplicate: RFC 4862 §5.4.3–5.4.5. A neighbour advertisement
// for a tentative address, or a solicitation for it from :: with another
// nonce, proves it duplicate: it is never used. Our own solicitation
// looped back (the same nonce, RFC 7527) proves nothing.
func TestIPv6DADDuplicate(t *testing.T) {
	for _, how := range []string{"advertisement", "solicitation", "looped back"} {
		t.Run(how, func(t *testing.T) {
			n := stacktest.New(t)
			r := n.AddRaw("R", stacktest.MAC(9), ip6Raw)
			a := n.AddHost("A", stack.Config{Seed: 1}, "2001:db8::1/64")
			var ns *stacktest.Decoded
			n.RunUntil(2*time.Second, func() bool {
				for _, d := range decoded(r.Take(), ndpOf(wire.ICMPv6NeighborSolicit)) {
					if d.NDP.Target == ip6A {
						ns = d
					}
				}
				return ns != nil
			})
			g := wire.SolicitedNodeMulticast(ip6A)
			switch how {
			case "advertisement":
				r.Send(ndpFrame(r, multicastMAC(wire.IPv6AllNodes), ip6A, wire.IPv6AllNodes,
					wire.NDPFields{Type: wire.ICMPv6NeighborAdvert, Target: ip6A, Override: true},
					wire.NDPOptions{HasTargetLinkAddr: true, TargetLinkAddr: r.MAC}))
			case "solicitation":
				r.Send(ndpFrame(r, multicastMAC(g), netip.IPv6Unspecified(), g,
					wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: ip6A},
					wire.NDPOptions{Nonce: []byte{1, 2, 3, 4, 5, 6}}))
			case "looped back":
				f := slices.Clone(ns.IPv6)
				r.Send(stacktest.Ether(multicastMAC(g), ns.Eth.Src, 0, wire.EtherTypeIPv6, f))
			}
			n.RunFor(5 * time.Second)
			st := a.Stack.Stats().Net
			if how == "looped back" {
				if addrState(a, ip6A) != "preferred" || st.Ip6DADLoopedBack != 1 || st.Ip6DADFailures != 0 {
					t.Fatalf("state %s, looped %d, failures %d", addrState(a, ip6A), st.Ip6DADLoopedBack, st.Ip6DADFailures)
				}
				return
			}
			if addrState(a, ip6A) != "dadfailed" || st.Ip6DADFailures != 1 {
				t.Fatalf("state %s, failures %d", addrState(a, ip6A), st.Ip6DADFailures)
			}
			ll := wire.LinkLocalFromMAC(a.MAC)
			if addrState(a, ll) != "preferred" {
				t.Errorf("the link-local address is %s", addrState(a, ll))
			}
			// The address is never used: not as a destination, not as
			// a source.
			a.Stack.AddNeighbor(a.NIC, ip6Raw, r.MAC)
			echo := r.ICMP6Frame(a.MAC, ip6Raw, ip6A, 64, wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, ID: 1, Seq: 1})
			expectDrop(t, n, a, echo, map[string]int64{"Net.Ip6InAddrErrors": 1})
			r.Take()
			if _, err := a.Stack.Connect(n.Now, netip.AddrPortFrom(ip6A, 0), netip.AddrPortFrom(ip6Raw, 80)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Errorf("connect from the duplicate address: %v", err)
			}
		})
	}
}

// TestIPv6NeighborDiscovery: RFC 4861 §7.2.3–7.2.4: a solicitation for
// our address is answered (solicited, override, our link-layer address)
// and teaches its sender (STALE); §7.3.3: the first packet to a STALE
// entry moves it to DELAY, and without confirmation three unicast
// probes follow, RetransTimer apart, before the entry is deleted. §7.1:
// NDP messages that were forwarded (hop limit below 255) are dropped.
func TestIPv6NeighborDiscovery(t *testing.T) {
	n := stacktest.New(t)
	r := n.AddRaw("R", stacktest.MAC(9), ip6Raw)
	a := n.AddHost("A", stack.Config{Seed: 1, IPv6: stack.IPv6Config{IgnoreRA: true}}, "2001:db8::1/64")
	waitUsable(t, n, a)
	r.Take()
	g := wire.SolicitedNodeMulticast(ip6A)
	r.Send(ndpFrame(r, multicastMAC(g), ip6Raw, g, wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: ip6A},
		wire.NDPOptions{HasSourceLinkAddr: true, SourceLinkAddr: r.MAC}))
	n.RunFor(10 * time.Millisecond)
	na := decoded(r.Take(), ndpOf(wire.ICMPv6NeighborAdvert))
	if len(na) != 1 {
		t.Fatalf("%d advertisements", len(na))
	}
	var o wire.NDPOptions
	o.Decode(na[0].NDP.Options)
	if d := na[0]; d.IP6.Src != ip6A || d.IP6.Dst != ip6Raw || d.Eth.Dst != r.MAC || !d.NDP.Solicited || !d.NDP.Override || d.NDP.Router ||
		d.NDP.Target != ip6A || !o.HasTargetLinkAddr || o.TargetLinkAddr != a.MAC || d.IP6.HopLimit != 255 {
		t.Fatalf("advertisement %v %+v %+v", d, d.NDP, o)
	}
	state := func() string {
		for _, e := range a.Stack.Neighbors() {
			if e.IP == ip6Raw {
				return e.State
			}
		}
		return "none"
	}
	// Learned STALE from the solicitation, then moved to DELAY by the
	// advertisement sent to it (§7.3.3, as in Linux, whose answer goes
	// through the neighbour entry).
	if s := state(); s != "DELAY" {
		t.Fatalf("R is %s after its solicitation was answered, want DELAY", s)
	}
	// No confirmation: PROBE with unicast solicitations.
	n.RunFor(10 * time.Second)
	probes := decoded(r.Take(), ndpOf(wire.ICMPv6NeighborSolicit))
	if len(probes) != 3 {
		t.Fatalf("%d probes, want 3", len(probes))
	}
	for _, d := range probes {
		if d.IP6.Dst != ip6Raw || d.Eth.Dst != r.MAC || d.NDP.Target != ip6Raw || d.IP6.Src != ip6A {
			t.Errorf("probe %v not unicast to R", d)
		}
	}
	if s := state(); s != "none" {
		t.Errorf("R is %s after unanswered probes, want deleted", s)
	}
	// Forwarded NDP, or a DAD solicitation not to a solicited-node
	// group: dropped.
	bad := ndpFrame(r, multicastMAC(g), ip6Raw, g, wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: ip6A}, wire.NDPOptions{})
	bad[14+7] = 64
	stacktest.FixChecksums(bad)
	expectDrop(t, n, a, bad, map[string]int64{"Net.Icmp6InErrors": 1, "Net.Icmp6InMsgs": 1, "Net.Icmp6InNeighborSolicits": 1,
		"Net.Ip6InDelivers": 1, "Net.Ip6InMcastPkts": 1})
	dadToAll := ndpFrame(r, multicastMAC(wire.IPv6AllNodes), netip.IPv6Unspecified(), wire.IPv6AllNodes,
		wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: ip6A}, wire.NDPOptions{})
	expectDrop(t, n, a, dadToAll, map[string]int64{"Net.Icmp6InErrors": 1, "Net.Icmp6InMsgs": 1, "Net.Icmp6InNeighborSolicits": 1,
		"Net.Ip6InDelivers": 1, "Net.Ip6InMcastPkts": 1})
}

// TestIPv6NUDConfirmedByTCP: RFC 4861 §7.3.1 — acknowledgments of new
// data confirm the peer's reachability, so a busy connection's
// neighbour entry needs no probes, while a sender that hears nothing
// new (the receiving side of a one-way transfer) probes as usual.
func TestIPv6NUDConfirmedByTCP(t *testing.T) {
	n, a, b := pair6(t, stack.Config{}, stack.Config{})
	l, err := b.Stack.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, s := connectTo(t, n, a, l, netip.AddrPortFrom(ip6B, 80))
	// Both entries go STALE (after a reachable time of 15 s to 45 s) but
	// are not yet collected (60 s later).
	n.RunFor(50 * time.Second)
	nsA := a.Stack.Stats().Net.Icmp6OutNeighborSolicits
	nsB := b.Stack.Stats().Net.Icmp6OutNeighborSolicits
	// A writes a little every 100 ms for 20 s; B only acknowledges.
	buf := make([]byte, 64<<10)
	for range 200 {
		if _, err := c.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		n.RunFor(100 * time.Millisecond)
		if _, err := s.Read(buf); err != nil && !errors.Is(err, stack.ErrWouldBlock) {
			t.Fatal(err)
		}
	}
	if got := a.Stack.Stats().Net.Icmp6OutNeighborSolicits - nsA; got != 0 {
		t.Errorf("the sender probed %d times, though every ACK confirmed B", got)
	}
	if got := b.Stack.Stats().Net.Icmp6OutNeighborSolicits - nsB; got == 0 {
		t.Errorf("the receiver, which hears nothing acknowledged, never probed")
	}
}

// TestIPv6ICMPErrors: RFC 8200 §4 and RFC 4443 §3.4: an unknown next
// header is answered by a parameter problem, code 1, pointing at the
// field that names it; an unknown option by what its type's high bits
// ask (§4.2: skip, discard, a code 2 problem even to multicast, or only
// to unicast); RFC 4443 §3.1: a UDP port nobody listens on by a port
// unreachable. RFC 4443 §2.4 (e): never about an error message, never
// (but for the §4.2 exception) about a multicast packet; the quote keeps
// the error within 1280 bytes.
func TestIPv6ICMPErrors(t *testing.T) {
	n, a, r := withRaw6(t, stack.Config{})
	opts := func(typ uint8, nh uint8) []byte {
		o := wire.IPv6OptionsFields{NextHeader: nh, Options: []byte{typ, 2, 0, 0}}
		b := make([]byte, o.Len())
		o.Encode(b)
		return b
	}
	udp := stacktest.UDPDgram(netip.AddrPortFrom(ip6Raw, 1000), netip.AddrPortFrom(ip6A, 9), []byte("data"))
	pkt := func(dst netip.Addr, nh uint8, payload []byte) []byte {
		return stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: dst, NextHeader: nh}, payload)
	}
	all := wire.IPv6AllNodes
	big := stacktest.UDPDgram(netip.AddrPortFrom(ip6Raw, 1000), netip.AddrPortFrom(ip6A, 9), make([]byte, 1400))
	for _, c := range []struct {
		name     string
		pkt      []byte
		typ      uint8
		code     uint8
		pointer  uint32
		answered bool
	}{
		{"unknown next header", pkt(ip6A, 253, []byte("12345678")), wire.ICMPv6ParameterProblem, wire.ICMPv6UnknownNextHeader, 6, true},
		{"unknown next header behind options", pkt(ip6A, wire.ProtoDestOpts, append(opts(0x1e, 253), "12345678"...)), wire.ICMPv6ParameterProblem, wire.ICMPv6UnknownNextHeader, 40, true},
		{"option 00: skipped", pkt(ip6A, wire.ProtoDestOpts, append(opts(0x1e, wire.ProtoUDP), udp...)), wire.ICMPv6DestUnreachable, wire.ICMPv6PortUnreachable, 0, true},
		{"option 01: dropped", pkt(ip6A, wire.ProtoDestOpts, append(opts(0x5e, wire.ProtoUDP), udp...)), 0, 0, 0, false},
		{"option 10", pkt(ip6A, wire.ProtoDestOpts, append(opts(0x9e, wire.ProtoUDP), udp...)), wire.ICMPv6ParameterProblem, wire.ICMPv6UnknownOption, 42, true},
		{"option 10 to multicast", pkt(all, wire.ProtoDestOpts, append(opts(0x9e, wire.ProtoUDP), udp...)), wire.ICMPv6ParameterProblem, wire.ICMPv6UnknownOption, 42, true},
		{"option 11 to multicast", pkt(all, wire.ProtoDestOpts, append(opts(0xde, wire.ProtoUDP), udp...)), 0, 0, 0, false},
		{"option 11 to unicast", pkt(ip6A, wire.ProtoDestOpts, append(opts(0xde, wire.ProtoUDP), udp...)), wire.ICMPv6ParameterProblem, wire.ICMPv6UnknownOption, 42, true},
		{"closed port", pkt(ip6A, wire.ProtoUDP, udp), wire.ICMPv6DestUnreachable, wire.ICMPv6PortUnreachable, 0, true},
		{"closed port, big", pkt(ip6A, wire.ProtoUDP, big), wire.ICMPv6DestUnreachable, wire.ICMPv6PortUnreachable, 0, true},
		{"closed port to multicast", pkt(all, wire.ProtoUDP, udp), 0, 0, 0, false},
		{"about an error message", pkt(ip6A, wire.ProtoDestOpts, append(opts(0x9e, wire.ProtoICMPv6),
			stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6DestUnreachable}, ip6Raw, ip6A)...)), 0, 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dstMAC := a.MAC
			if bytes.Equal(c.pkt[24:40], all.AsSlice()) {
				dstMAC = multicastMAC(all)
			}
			// The UDP checksum covers the real destination.
			f := r.IP6Frame(dstMAC, c.pkt)
			stacktest.FixChecksums(f)
			r.Send(f)
			n.RunFor(10 * time.Millisecond)
			errs := decoded(r.Take(), func(d *stacktest.Decoded) bool { return d.ICMP6 != nil && wire.ICMPv6IsError(d.ICMP6.Type) })
			if !c.answered {
				if len(errs) != 0 {
					t.Fatalf("answered with %v", errs[0])
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("%d errors, want 1", len(errs))
			}
			e := errs[0]
			if e.ICMP6.Type != c.typ || e.ICMP6.Code != c.code || c.typ == wire.ICMPv6ParameterProblem && e.ICMP6.Pointer != c.pointer {
				t.Fatalf("error %d/%d pointer %d, want %d/%d pointer %d", e.ICMP6.Type, e.ICMP6.Code, e.ICMP6.Pointer, c.typ, c.code, c.pointer)
			}
			if e.IP6.Src != ip6A || e.IP6.Dst != ip6Raw || len(e.IPv6) > wire.IPv6MinMTU {
				t.Fatalf("error %v of %d bytes", e, len(e.IPv6))
			}
			if q := e.ICMP6.Payload; !bytes.Equal(q, c.pkt[:len(q)]) || len(q) < min(len(c.pkt), wire.ICMPv6ErrorQuoteMax) {
				t.Fatalf("quote of %d bytes does not start the packet", len(q))
			}
		})
	}
}

// TestIPv6ErrorRateLimit: RFC 4443 §2.4 (f): errors are rate-limited,
// by the token bucket ICMPv4 shares (Linux's icmp_msgs_burst 50).
func TestIPv6ErrorRateLimit(t *testing.T) {
	n, a, r := withRaw6(t, stack.Config{})
	udp := stacktest.UDPDgram(netip.AddrPortFrom(ip6Raw, 1000), netip.AddrPortFrom(ip6A, 9), []byte("data"))
	f := r.IP6Frame(a.MAC, stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: ip6A, NextHeader: wire.ProtoUDP}, udp))
	for range 60 {
		r.Send(f)
	}
	n.RunFor(10 * time.Millisecond)
	errs := decoded(r.Take(), icmp6Of(wire.ICMPv6DestUnreachable))
	if st := a.Stack.Stats().Net; len(errs) != 50 || st.Icmp6OutRateLimited != 10 {
		t.Fatalf("%d errors, %d rate-limited; want 50 and 10", len(errs), st.Icmp6OutRateLimited)
	}
}

// TestIPv6EchoAndFragments: RFC 4443 §4.2: echo requests are answered,
// from the address they went to, or for a multicast one from a unicast
// address; RFC 8200 §4.5: a request sent in fragments is reassembled and
// the reply, larger than the MTU, leaves in fragments of the source;
// an atomic fragment is processed as a whole packet (RFC 6946, RFC 8021).
func TestIPv6EchoAndFragments(t *testing.T) {
	n, a, r := withRaw6(t, stack.Config{})
	echo := func(dst netip.Addr, data []byte) []byte {
		return stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: dst, NextHeader: wire.ProtoICMPv6},
			stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, ID: 7, Seq: 1, Payload: data}, ip6Raw, dst))
	}
	replies := func() []*stacktest.Decoded { return decoded(r.Take(), icmp6Of(wire.ICMPv6EchoReply)) }

	r.Send(r.IP6Frame(a.MAC, echo(ip6A, []byte("hello"))))
	n.RunFor(10 * time.Millisecond)
	if rep := replies(); len(rep) != 1 || rep[0].IP6.Src != ip6A || string(rep[0].ICMP6.Payload) != "hello" || rep[0].ICMP6.ID != 7 {
		t.Fatalf("echo replies %v", rep)
	}
	r.Send(r.IP6Frame(multicastMAC(wire.IPv6AllNodes), echo(wire.IPv6AllNodes, []byte("all"))))
	n.RunFor(10 * time.Millisecond)
	if rep := replies(); len(rep) != 1 || rep[0].IP6.Src != ip6A {
		t.Fatalf("echo replies to ff02::1: %v", rep)
	}

	// 4000 bytes of echo, in fragments; the reply in fragments too.
	data := payload(3, 4000)
	var fr network.Fragmenter6
	if err := fr.Reset(echo(ip6A, data), 1500, 77); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for k := fr.Next(buf); k > 0; k = fr.Next(buf) {
		r.Send(r.IP6Frame(a.MAC, buf[:k]))
	}
	n.RunFor(10 * time.Millisecond)
	frags := r.Take()
	re := network.NewReassembler6(network.ReassemblyConfig{}, nil)
	var whole []byte
	for _, f := range frags {
		d := f.Decode()
		if d.IP6 == nil || !d.Chain.Fragmented() {
			continue
		}
		if len(d.IPv6) > 1500 {
			t.Fatalf("fragment of %d bytes", len(d.IPv6))
		}
		if p, ok := re.AddIPv6(n.Now, d.IPv6, &d.Chain); ok {
			whole = slices.Clone(p)
		}
	}
	d := stacktest.DecodeIP(whole)
	if d.ICMP6 == nil || d.ICMP6.Type != wire.ICMPv6EchoReply || !bytes.Equal(d.ICMP6.Payload, data) {
		t.Fatalf("reassembled reply %v", d)
	}
	st := a.Stack.Stats().Net
	if st.Ip6ReasmOKs != 1 || st.Ip6FragOKs != 1 || st.Ip6FragCreates != 3 {
		t.Fatalf("counters: reassembled %d, fragmented %d into %d", st.Ip6ReasmOKs, st.Ip6FragOKs, st.Ip6FragCreates)
	}

	// An atomic fragment: processed in isolation, no reassembly.
	fh := make([]byte, 8)
	(&wire.IPv6FragmentFields{NextHeader: wire.ProtoICMPv6, ID: 5}).Encode(fh)
	msg := stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, ID: 8, Seq: 1, Payload: []byte("atomic")}, ip6Raw, ip6A)
	r.Send(r.IP6Frame(a.MAC, stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: ip6A, NextHeader: wire.ProtoFragment}, append(fh, msg...))))
	n.RunFor(10 * time.Millisecond)
	if rep := replies(); len(rep) != 1 || string(rep[0].ICMP6.Payload) != "atomic" {
		t.Fatalf("atomic fragment: replies %v", rep)
	}
	if got := a.Stack.Stats().Net.Ip6ReasmReqds; got != st.Ip6ReasmReqds {
		t.Errorf("an atomic fragment went to reassembly")
	}

	// Only the first fragment: 60 s later, time exceeded, code 1,
	// quoting it (RFC 8200 §4.5).
	if err := fr.Reset(echo(ip6A, data), 1500, 78); err != nil {
		t.Fatal(err)
	}
	k := fr.Next(buf)
	first := slices.Clone(buf[:k])
	r.Send(r.IP6Frame(a.MAC, first))
	n.RunFor(59 * time.Second)
	if len(r.Take()) != 0 {
		t.Fatal("answered before the reassembly timeout")
	}
	n.RunFor(2 * time.Second)
	te := decoded(r.Take(), icmp6Of(wire.ICMPv6TimeExceeded))
	if len(te) != 1 || te[0].ICMP6.Code != wire.ICMPv6ReassemblyTimeExceeded || !bytes.HasPrefix(first, te[0].ICMP6.Payload) {
		t.Fatalf("time exceeded %v", te)
	}
}

// TestIPv6UDP: datagrams both ways; one larger than the MTU leaves in
// fragments (RFC 8200 §4.5); a datagram with a zero checksum is dropped
// (RFC 8200 §8.1); counters are UDP6's.
func TestIPv6UDP(t *testing.T) {
	n, a, r := withRaw6(t, stack.Config{})
	u, err := a.Stack.BindUDP(netip.AddrPortFrom(netip.IPv6Unspecified(), 53))
	if err != nil {
		t.Fatal(err)
	}
	q := stacktest.UDPDgram(netip.AddrPortFrom(ip6Raw, 1000), netip.AddrPortFrom(ip6A, 53), []byte("query"))
	r.Send(r.IP6Frame(a.MAC, stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: ip6A, NextHeader: wire.ProtoUDP}, q)))
	n.RunFor(10 * time.Millisecond)
	buf := make([]byte, 100)
	k, from, err := u.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "query" || from != netip.AddrPortFrom(ip6Raw, 1000) {
		t.Fatalf("ReadFrom: %q %v %v", buf[:k], from, err)
	}
	data := payload(4, 4000)
	if _, err := u.WriteTo(n.Now, data, from); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	re := network.NewReassembler6(network.ReassemblyConfig{}, nil)
	var whole []byte
	nfr := 0
	for _, f := range r.Take() {
		d := f.Decode()
		if d.IP6 == nil || !d.Chain.Fragmented() {
			continue
		}
		nfr++
		if p, ok := re.AddIPv6(n.Now, d.IPv6, &d.Chain); ok {
			whole = slices.Clone(p)
		}
	}
	d := stacktest.DecodeIP(whole)
	if nfr != 3 || d.UDP == nil || !bytes.Equal(d.UDP.Payload, data) {
		t.Fatalf("%d fragments, reassembled %v", nfr, d)
	}
	zero := slices.Clone(q)
	zero[6], zero[7] = 0, 0
	before := a.Stack.Stats()
	r.Send(r.IP6Frame(a.MAC, stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: ip6A, NextHeader: wire.ProtoUDP}, zero)))
	n.RunFor(10 * time.Millisecond)
	if _, _, err := u.ReadFrom(buf); !errors.Is(err, stack.ErrWouldBlock) {
		t.Fatal("a datagram without checksum was delivered")
	}
	if got := diff(before, a.Stack.Stats()); got["UDP6.InCsumErrors"] != 1 || got["UDP.InCsumErrors"] != 0 {
		t.Fatalf("counters %v", got)
	}
	if st := a.Stack.Stats(); st.UDP6.InDatagrams != 1 || st.UDP6.OutDatagrams != 1 || st.UDP.InDatagrams != 0 {
		t.Fatalf("UDP counters %+v / %+v", st.UDP, st.UDP6)
	}
	// 65527 bytes fit IPv6 (no 20-byte header to subtract); one more
	// does not.
	if _, err := u.WriteTo(n.Now, make([]byte, 65528), from); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("65528 bytes: %v", err)
	}
	if _, err := u.WriteTo(n.Now, make([]byte, 65527), from); err != nil {
		t.Errorf("65527 bytes: %v", err)
	}
}

// raFrame returns a router advertisement from R's link-local address.
func raFrame(r *stacktest.Node, f wire.NDPFields, o wire.NDPOptions, prefixes ...wire.NDPPrefixInfo) []byte {
	f.Type = wire.ICMPv6RouterAdvert
	opts := make([]byte, o.Len())
	o.Encode(opts)
	for _, p := range prefixes {
		b := make([]byte, wire.NDPPrefixInfoLen)
		p.Encode(b)
		opts = append(opts, b...)
	}
	f.Options = opts
	m := make([]byte, f.Len())
	f.Encode(m, llRaw, wire.IPv6AllNodes)
	return r.IP6Frame(multicastMAC(wire.IPv6AllNodes), stacktest.IP6(wire.IPv6Fields{Src: llRaw, Dst: wire.IPv6AllNodes, NextHeader: wire.ProtoICMPv6, HopLimit: 255}, m))
}

var prefix1 = netip.MustParsePrefix("2001:db8:1::/64")

// TestIPv6RouterAdvertisement: RFC 4861 §6.3.4 and RFC 4862 §5.5.3. A
// host that solicited routers takes from an advertisement: the router
// into its default router list (a default route), its link-layer
// address (the neighbour entry, STALE, IsRouter), the hop limit, the
// MTU, the reachable time and retransmission timer, an on-link prefix,
// and an address formed from the prefix (the interface identifier of
// the link-local address), which goes through DAD. A zero router
// lifetime takes the router off the list.
func TestIPv6RouterAdvertisement(t *testing.T) {
	n := stacktest.New(t)
	r := n.AddRaw("R", stacktest.MAC(9), llRaw)
	a := n.AddStack("A", stack.New(stack.Config{Seed: 1}), stack.NICConfig{MAC: stacktest.MAC(1), IPv6: true})
	ll := wire.LinkLocalFromMAC(a.MAC)
	n.RunFor(3 * time.Second)
	if rs := decoded(r.Take(), ndpOf(wire.ICMPv6RouterSolicit)); len(rs) == 0 || rs[0].IP6.Src != ll {
		t.Fatalf("router solicitations %v", rs)
	}
	r.Send(raFrame(r, wire.NDPFields{CurHopLimit: 42, RouterLifetime: 1800, ReachableTime: 20000, RetransTimer: 500},
		wire.NDPOptions{HasSourceLinkAddr: true, SourceLinkAddr: r.MAC, HasMTU: true, MTU: 1400},
		wire.NDPPrefixInfo{PrefixLen: 64, Flags: wire.NDPPrefixOnLink | wire.NDPPrefixAutonomous, ValidLifetime: 7200, PreferredLifetime: 3600, Prefix: prefix1.Addr()}))
	n.RunFor(5 * time.Second)
	if rs := decoded(r.Take(), ndpOf(wire.ICMPv6RouterSolicit)); len(rs) != 0 {
		t.Errorf("router solicitations after an advertisement: %d", len(rs))
	}
	b := prefix1.Addr().As16()
	copy(b[8:], ll.AsSlice()[8:])
	auto := netip.AddrFrom16(b)
	var info stack.AddrInfo
	for _, x := range a.Stack.AddrInfo(a.NIC) {
		if x.Prefix.Addr() == auto {
			info = x
		}
	}
	if info.State != "preferred" || !info.Auto || info.Prefix.Bits() != 64 || info.PreferredUntil == clock.Never {
		t.Fatalf("autoconfigured address %+v", info)
	}
	routes := a.Stack.Routes()
	hasRoute := func(r network.Route) bool { return slices.Contains(routes, r) }
	if !hasRoute(network.Route{Dst: netip.MustParsePrefix("::/0"), Gateway: llRaw, NIC: a.NIC}) || !hasRoute(network.Route{Dst: prefix1, NIC: a.NIC}) {
		t.Fatalf("routes %v", routes)
	}
	if a.Stack.HopLimit() != 42 || a.Stack.LinkMTU6(a.NIC) != 1400 {
		t.Fatalf("hop limit %d, MTU %d", a.Stack.HopLimit(), a.Stack.LinkMTU6(a.NIC))
	}
	router := false
	for _, e := range a.Stack.Neighbors() {
		router = router || e.IP == llRaw && e.Router && e.MAC == r.MAC
	}
	if !router {
		t.Fatalf("the router's neighbour entry: %+v", a.Stack.Neighbors())
	}
	// A connection off the link goes through the router, with the hop
	// limit, the source and the MSS the advertisement set.
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, netip.MustParseAddrPort("[2001:db8:99::1]:80"))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	syn := decoded(r.Take(), func(d *stacktest.Decoded) bool { return d.IsTCP(wire.TCPFlagSYN) })
	if len(syn) != 1 || syn[0].Eth.Dst != r.MAC || syn[0].IP6.HopLimit != 42 || syn[0].IP6.Src != auto || syn[0].TCP.Options.MSS != 1400-60 {
		t.Fatalf("SYN %v", syn)
	}
	c.Abort()
	// The router leaves.
	r.Send(raFrame(r, wire.NDPFields{}, wire.NDPOptions{}))
	n.RunFor(10 * time.Millisecond)
	if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, netip.MustParseAddrPort("[2001:db8:99::1]:80")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("connect with no router: %v", err)
	}
	// Invalid advertisements are ignored: from a global address, or
	// forwarded (hop limit below 255).
	before := a.Stack.Stats().Net
	fromGlobal := raFrame(r, wire.NDPFields{RouterLifetime: 1800}, wire.NDPOptions{})
	copy(fromGlobal[14+8:14+24], ip6Raw.AsSlice())
	stacktest.FixChecksums(fromGlobal)
	r.Send(fromGlobal)
	forwarded := raFrame(r, wire.NDPFields{RouterLifetime: 1800}, wire.NDPOptions{})
	forwarded[14+7] = 254
	r.Send(forwarded)
	n.RunFor(10 * time.Millisecond)
	after := a.Stack.Stats().Net
	if after.Ip6RAIgnored != before.Ip6RAIgnored+1 || after.Icmp6InErrors != before.Icmp6InErrors+1 {
		t.Fatalf("ignored %d→%d, errors %d→%d", before.Ip6RAIgnored, after.Ip6RAIgnored, before.Icmp6InErrors, after.Icmp6InErrors)
	}
	if slices.ContainsFunc(a.Stack.Routes(), func(r network.Route) bool { return r.Dst.Bits() == 0 }) {
		t.Fatal("an invalid advertisement made a default route")
	}
}

// TestIPv6AddressLifetimes: RFC 4862 §5.5.3 — an autoconfigured address
// is deprecated when its preferred lifetime ends (still usable, avoided
// as a source: RFC 6724 rule 3) and removed when its valid lifetime
// does; (e): an advertisement cannot cut a valid lifetime below two
// hours.
func TestIPv6AddressLifetimes(t *testing.T) {
	n := stacktest.New(t)
	r := n.AddRaw("R", stacktest.MAC(9), llRaw)
	a := n.AddStack("A", stack.New(stack.Config{Seed: 1}), stack.NICConfig{MAC: stacktest.MAC(1), IPv6: true,
		Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::77/48")}})
	waitUsable(t, n, a)
	r.Send(raFrame(r, wire.NDPFields{RouterLifetime: 0}, wire.NDPOptions{},
		wire.NDPPrefixInfo{PrefixLen: 64, Flags: wire.NDPPrefixAutonomous, ValidLifetime: 100, PreferredLifetime: 50, Prefix: prefix1.Addr()}))
	n.RunFor(10 * time.Millisecond)
	waitUsable(t, n, a)
	var auto netip.Addr
	for _, x := range a.Stack.AddrInfo(a.NIC) {
		if x.Auto {
			auto = x.Prefix.Addr()
		}
	}
	if !auto.IsValid() || addrState(a, auto) != "preferred" {
		t.Fatalf("no autoconfigured address: %+v", a.Stack.AddrInfo(a.NIC))
	}
	dst := netip.AddrPortFrom(netip.MustParseAddr("2001:db8:1::99"), 80)
	src := func() netip.Addr {
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, dst)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Abort()
		return c.LocalAddr().Addr()
	}
	// Rule 8 (the longer match, /64 against /48) picks the
	// autoconfigured address while it is preferred...
	if got := src(); got != auto {
		t.Fatalf("source %v, want %v", got, auto)
	}
	n.RunFor(60 * time.Second)
	if addrState(a, auto) != "deprecated" {
		t.Fatalf("after the preferred lifetime: %s", addrState(a, auto))
	}
	// ...and rule 3 avoids it once deprecated.
	if got := src(); got != netip.MustParseAddr("2001:db8:1::77") {
		t.Fatalf("source %v, want the static address", got)
	}
	n.RunFor(60 * time.Second)
	if addrState(a, auto) != "" || a.Stack.Stats().Net.Ip6AddrsExpired != 1 {
		t.Fatalf("after the valid lifetime: %q", addrState(a, auto))
	}
	// The two-hour rule: a prefix with a long lifetime, then one
	// advertising 10 s.
	r.Send(raFrame(r, wire.NDPFields{}, wire.NDPOptions{},
		wire.NDPPrefixInfo{PrefixLen: 64, Flags: wire.NDPPrefixAutonomous, ValidLifetime: 3 * 3600, PreferredLifetime: 3600, Prefix: prefix1.Addr()}))
	n.RunFor(10 * time.Millisecond)
	waitUsable(t, n, a)
	r.Send(raFrame(r, wire.NDPFields{}, wire.NDPOptions{},
		wire.NDPPrefixInfo{PrefixLen: 64, Flags: wire.NDPPrefixAutonomous, ValidLifetime: 10, PreferredLifetime: 10, Prefix: prefix1.Addr()}))
	n.RunFor(time.Millisecond)
	for _, x := range a.Stack.AddrInfo(a.NIC) {
		if x.Auto && x.ValidUntil.Sub(n.Now) != 2*time.Hour {
			t.Errorf("valid for %v more, want two hours", x.ValidUntil.Sub(n.Now))
		}
	}
}

// TestIPv6IgnoreRA: with router advertisements off (accept_ra = 0) the
// host sends no router solicitation and takes nothing from an
// advertisement.
func TestIPv6IgnoreRA(t *testing.T) {
	n := stacktest.New(t)
	r := n.AddRaw("R", stacktest.MAC(9), llRaw)
	a := n.AddStack("A", stack.New(stack.Config{Seed: 1, IPv6: stack.IPv6Config{IgnoreRA: true}}), stack.NICConfig{MAC: stacktest.MAC(1), IPv6: true})
	n.RunFor(15 * time.Second)
	if rs := decoded(r.Take(), ndpOf(wire.ICMPv6RouterSolicit)); len(rs) != 0 {
		t.Fatalf("%d router solicitations", len(rs))
	}
	r.Send(raFrame(r, wire.NDPFields{CurHopLimit: 9, RouterLifetime: 1800}, wire.NDPOptions{},
		wire.NDPPrefixInfo{PrefixLen: 64, Flags: wire.NDPPrefixOnLink | wire.NDPPrefixAutonomous, ValidLifetime: 7200, PreferredLifetime: 3600, Prefix: prefix1.Addr()}))
	n.RunFor(5 * time.Second)
	if a.Stack.HopLimit() != 64 || len(a.Stack.AddrInfo(a.NIC)) != 1 || a.Stack.Stats().Net.Ip6RAIgnored != 1 {
		t.Fatalf("hop limit %d, addresses %+v", a.Stack.HopLimit(), a.Stack.AddrInfo(a.NIC))
	}
}

// TestIPv6MLDQueries: RFC 3810 §6.2 — a general query is answered, within
// its maximum response delay, by a current-state report of every group
// the NIC listens to but ff02::1; §8.2: an MLDv1 query by MLDv1 reports,
// one per group, to the group.
func TestIPv6MLDQueries(t *testing.T) {
	n, a, r := withRaw6(t, stack.Config{})
	query := func(f wire.MLDFields) []byte {
		f.Type = wire.ICMPv6MLDQuery
		m := make([]byte, f.Len())
		f.Encode(m, llRaw, wire.IPv6AllNodes)
		return r.IP6Frame(multicastMAC(wire.IPv6AllNodes), stacktest.IP6(wire.IPv6Fields{Src: llRaw, Dst: wire.IPv6AllNodes, NextHeader: wire.ProtoICMPv6, HopLimit: 1}, m))
	}
	r.Send(query(wire.MLDFields{MaxRespCode: 2000, Multicast: netip.IPv6Unspecified(), V2: true}))
	n.RunFor(2 * time.Second)
	reps := decoded(r.Take(), icmp6Of(wire.ICMPv6MLDv2Report))
	if len(reps) != 1 {
		t.Fatalf("%d reports, want 1", len(reps))
	}
	rep, _ := wire.ParseMLDv2Report(reps[0].Chain.Upper(reps[0].IPv6))
	want := map[netip.Addr]bool{wire.SolicitedNodeMulticast(ip6A): true, wire.SolicitedNodeMulticast(wire.LinkLocalFromMAC(a.MAC)): true}
	got := map[netip.Addr]bool{}
	for l := rep.Records(); ; {
		rec, rest, ok := l.Next()
		if !ok {
			break
		}
		if rec.Type() != wire.MLDModeIsExclude || rec.NumSources() != 0 {
			t.Errorf("record %d with %d sources", rec.Type(), rec.NumSources())
		}
		got[rec.Multicast()] = true
		l = rest
	}
	for g := range want {
		if !got[g] {
			t.Errorf("group %v not reported (got %v)", g, got)
		}
	}
	if got[wire.IPv6AllNodes] {
		t.Error("ff02::1 reported")
	}
	// MLDv1.
	r.Send(query(wire.MLDFields{MaxRespCode: 1000, Multicast: netip.IPv6Unspecified()}))
	n.RunFor(2 * time.Second)
	v1 := decoded(r.Take(), icmp6Of(wire.ICMPv6MLDv1Report))
	if len(v1) != len(want) {
		t.Fatalf("%d MLDv1 reports, want %d", len(v1), len(want))
	}
	for _, d := range v1 {
		if !want[d.MLD.Multicast] || d.IP6.Dst != d.MLD.Multicast || d.IP6.HopLimit != 1 {
			t.Errorf("MLDv1 report %v", d)
		}
	}
	// A query from a global address is invalid (RFC 3810 §5.1.14).
	bad := query(wire.MLDFields{MaxRespCode: 1000, Multicast: netip.IPv6Unspecified(), V2: true})
	copy(bad[14+8:14+24], ip6Raw.AsSlice())
	stacktest.FixChecksums(bad)
	expectDrop(t, n, a, bad, map[string]int64{"Net.Icmp6InErrors": 1, "Net.Icmp6InMsgs": 1, "Net.Icmp6InGroupMembQueries": 1,
		"Net.Ip6InDelivers": 1, "Net.Ip6InMcastPkts": 1})
}

// TestIPv6MulticastFilter: frames to multicast MACs are taken for the
// groups the NIC listens to and dropped (RxMulticast) for others.
func TestIPv6MulticastFilter(t *testing.T) {
	n, a, r := withRaw6(t, stack.Config{})
	other := netip.MustParseAddr("ff02::1:ff12:3456")
	echo := stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: other, NextHeader: wire.ProtoICMPv6},
		stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest}, ip6Raw, other))
	expectDrop(t, n, a, r.IP6Frame(multicastMAC(other), echo), map[string]int64{"Link.RxMulticast": 1, "Net.Ip6InReceives": 0})
	// An IPv4-only NIC takes no IPv6 at all.
	n4 := stacktest.New(t)
	b := n4.AddHost("B", stack.Config{Seed: 2}, "10.0.0.2/24")
	r4 := n4.AddRaw("R", stacktest.MAC(9), ipRaw)
	all := stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: wire.IPv6AllNodes, NextHeader: wire.ProtoICMPv6},
		stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest}, ip6Raw, wire.IPv6AllNodes))
	expectDrop(t, n4, b, r4.IP6Frame(multicastMAC(wire.IPv6AllNodes), all), map[string]int64{"Link.RxMulticast": 1})
	expectDrop(t, n4, b, r4.IP6Frame(b.MAC, all), map[string]int64{"Link.RxUnknownEtherType": 1})
	n4.RunFor(10 * time.Second)
	if len(n4.Log) != 0 {
		t.Errorf("an IPv4-only NIC sent %d frames, such as %v", len(n4.Log), n4.Log[0])
	}
}

// TestIPv6Martians: RFC 4291: a multicast source, the loopback address
// from a link, another link's link-local address, and, for anything but
// NDP and MLD, the unspecified source are dropped.
func TestIPv6Martians(t *testing.T) {
	n, a, r := withRaw6(t, stack.Config{})
	if _, err := a.Stack.BindUDP(netip.AddrPortFrom(netip.IPv6Unspecified(), 7)); err != nil {
		t.Fatal(err)
	}
	udp := func(src, dst netip.Addr) []byte {
		return r.IP6Frame(a.MAC, stacktest.IP6(wire.IPv6Fields{Src: src, Dst: dst, NextHeader: wire.ProtoUDP},
			stacktest.UDPDgram(netip.AddrPortFrom(src, 1000), netip.AddrPortFrom(dst, 7), []byte("x"))))
	}
	for _, c := range []struct {
		name     string
		src, dst string
	}{
		{"multicast source", "ff02::1", "2001:db8::1"},
		{"loopback source", "::1", "2001:db8::1"},
		{"unspecified source", "::", "2001:db8::1"},
		{"loopback destination", "2001:db8::9", "::1"},
		{"not ours", "2001:db8::9", "2001:db8::77"},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectDrop(t, n, a, udp(netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)), map[string]int64{"Net.Ip6InAddrErrors": 1})
		})
	}
	// A truncated packet and a bad version.
	p := udp(ip6Raw, ip6A)
	expectDrop(t, n, a, p[:len(p)-3], map[string]int64{"Net.Ip6InTruncatedPkts": 1})
	q := slices.Clone(p)
	q[14] = 0x40
	expectDrop(t, n, a, q, map[string]int64{"Net.Ip6InHdrErrors": 1})
}

// TestDualStackSockets: a socket bound to :: takes both families, and
// reports an IPv4 peer as IPv4 (Linux with bindv6only = 0, package
// net's "tcp" on ":80"); V6Only restricts it; binding conflicts follow
// Linux's rules.
func TestDualStackSockets(t *testing.T) {
	n := stacktest.New(t)
	a := n.AddStack("A", stack.New(stack.Config{Seed: 1}), stack.NICConfig{MAC: stacktest.MAC(1),
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("2001:db8::1/64")}})
	b := n.AddStack("B", stack.New(stack.Config{Seed: 2}), stack.NICConfig{MAC: stacktest.MAC(2),
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("2001:db8::2/64")}})
	waitUsable(t, n, a, b)
	dual, err := b.Stack.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, s4 := connectTo(t, n, a, dual, netip.AddrPortFrom(ipB, 80))
	_, s6 := connectTo(t, n, a, dual, netip.AddrPortFrom(ip6B, 80))
	if r := s4.RemoteAddr().Addr(); !r.Is4() || r != ipA || !s4.LocalAddr().Addr().Is4() {
		t.Errorf("IPv4 peer reported as %v (local %v)", s4.RemoteAddr(), s4.LocalAddr())
	}
	if r := s6.RemoteAddr().Addr(); r != ip6A {
		t.Errorf("IPv6 peer reported as %v", s6.RemoteAddr())
	}
	only6, err := b.Stack.ListenOpts(netip.AddrPortFrom(netip.IPv6Unspecified(), 81), 0, stack.BindOptions{V6Only: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, netip.AddrPortFrom(ipB, 81))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(time.Second)
	if !errors.Is(c.Err(), syscall.ECONNREFUSED) {
		t.Errorf("IPv4 connect to a V6Only listener: %v", c.Err())
	}
	connectTo(t, n, a, only6, netip.AddrPortFrom(ip6B, 81))

	// Binding rules, for TCP and UDP alike.
	any4, any6 := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	for _, c := range []struct {
		name         string
		first        netip.Addr
		firstV6Only  bool
		second       netip.Addr
		secondV6Only bool
		conflict     bool
	}{
		{"0.0.0.0 then ::", any4, false, any6, false, true},
		{":: then 0.0.0.0", any6, false, any4, false, true},
		{"0.0.0.0 then :: v6only", any4, false, any6, true, false},
		{":: v6only then 0.0.0.0", any6, true, any4, false, false},
		{":: then IPv4 address", any6, false, ipB, false, true},
		{":: v6only then IPv4 address", any6, true, ipB, false, false},
		{":: v6only then IPv6 address", any6, true, ip6B, false, true},
		{"IPv4 address then ::", ipB, false, any6, false, true},
		{"IPv6 address then 0.0.0.0", ip6B, false, any4, false, false},
		{"IPv4 then IPv6 address", ipB, false, ip6B, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := stack.New(stack.Config{Seed: 3})
			if _, err := st.AddNIC(stack.NICConfig{MAC: stacktest.MAC(1), IPv6: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
				t.Fatal(err)
			}
			// DAD off: the address is usable at once.
			st = stack.New(stack.Config{Seed: 3, IPv6: stack.IPv6Config{DADTransmits: -1}})
			if _, err := st.AddNIC(stack.NICConfig{MAC: stacktest.MAC(1), Addrs: []netip.Prefix{
				netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("2001:db8::2/64")}}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ListenOpts(netip.AddrPortFrom(c.first, 90), 0, stack.BindOptions{V6Only: c.firstV6Only}); err != nil {
				t.Fatal(err)
			}
			_, err := st.ListenOpts(netip.AddrPortFrom(c.second, 90), 0, stack.BindOptions{V6Only: c.secondV6Only})
			if got := errors.Is(err, syscall.EADDRINUSE); got != c.conflict {
				t.Errorf("TCP: second bind: %v, want conflict %v", err, c.conflict)
			}
			if _, err := st.BindUDPOpts(netip.AddrPortFrom(c.first, 90), stack.BindOptions{V6Only: c.firstV6Only}); err != nil {
				t.Fatal(err)
			}
			_, err = st.BindUDPOpts(netip.AddrPortFrom(c.second, 90), stack.BindOptions{V6Only: c.secondV6Only})
			if got := errors.Is(err, syscall.EADDRINUSE); got != c.conflict {
				t.Errorf("UDP: second bind: %v, want conflict %v", err, c.conflict)
			}
		})
	}
}

// TestIPv6LinkLocalZones: a link-local destination needs a zone naming
// the NIC (by name or number: EINVAL without, ENODEV for none such), and
// the connection reports its link-local addresses with the zone.
func TestIPv6LinkLocalZones(t *testing.T) {
	n, a, b := pair6(t, stack.Config{}, stack.Config{})
	llB := wire.LinkLocalFromMAC(b.MAC)
	l, err := b.Stack.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, netip.AddrPortFrom(llB, 80)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("no zone: %v", err)
	}
	if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, netip.AddrPortFrom(llB.WithZone("nope"), 80)); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("unknown zone: %v", err)
	}
	for _, zone := range []string{"A", "1"} {
		c, s := connectTo(t, n, a, l, netip.AddrPortFrom(llB.WithZone(zone), 80))
		if c.RemoteAddr().Addr() != llB.WithZone("A") || c.LocalAddr().Addr() != wire.LinkLocalFromMAC(a.MAC).WithZone("A") {
			t.Errorf("zone %s: connection %v -> %v", zone, c.LocalAddr(), c.RemoteAddr())
		}
		if s.RemoteAddr().Addr().Zone() != "B" {
			t.Errorf("accepted connection's peer %v, want zone B", s.RemoteAddr())
		}
		if got := transfer(t, n, c, s, []byte("over the link"), time.Second); string(got) != "over the link" {
			t.Fatal("no data")
		}
	}
}

// TestIPv6SourceSelection: RFC 6724 — rule 1 (the destination itself),
// rule 2 (a link-local destination gets the link-local source), rule 8
// (the longest matching prefix).
func TestIPv6SourceSelection(t *testing.T) {
	n := stacktest.New(t)
	a := n.AddStack("A", stack.New(stack.Config{Seed: 1, IPv6: stack.IPv6Config{DADTransmits: -1}}), stack.NICConfig{MAC: stacktest.MAC(1), Addrs: []netip.Prefix{
		netip.MustParsePrefix("2001:db8::1/64"), netip.MustParsePrefix("2001:db8:5::1/64")}})
	a.Stack.AddRoute(netip.MustParsePrefix("::/0"), netip.MustParseAddr("fe80::fe"), a.NIC)
	for _, c := range []struct{ dst, src string }{
		{"2001:db8:5::99", "2001:db8:5::1"},
		{"2001:db8::99", "2001:db8::1"},
		{"2001:db8:5:1::99", "2001:db8:5::1"},
		{"fe80::99%A", "fe80::ff:fe00:1"},
		{"2001:db8::1", "2001:db8::1"},
	} {
		conn, err := a.Stack.Connect(n.Now, netip.AddrPort{}, netip.AddrPortFrom(netip.MustParseAddr(c.dst), 80))
		if err != nil {
			t.Fatalf("%s: %v", c.dst, err)
		}
		if got := conn.LocalAddr().Addr().WithZone(""); got != netip.MustParseAddr(c.src) {
			t.Errorf("to %s: source %v, want %s", c.dst, got, c.src)
		}
		conn.Abort()
	}
}

// TestIPv6MSS: the MSS announced over IPv6 is the MTU less 60 (RFC 8200
// §8.3), over IPv4 less 40.
func TestIPv6MSS(t *testing.T) {
	for _, mtu := range []int{1280, 1500, 9000} {
		n := stacktest.New(t)
		a := n.AddStack("A", stack.New(stack.Config{Seed: 1, IPv6: stack.IPv6Config{DADTransmits: -1}}), stack.NICConfig{MAC: stacktest.MAC(1), MTU: mtu,
			Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64"), netip.MustParsePrefix("10.0.0.1/24")}})
		r := n.AddRaw("R", stacktest.MAC(9), ip6Raw)
		a.Stack.AddNeighbor(a.NIC, ip6Raw, r.MAC)
		a.Stack.AddNeighbor(a.NIC, ipRaw, r.MAC)
		for _, dst := range []netip.Addr{ip6Raw, ipRaw} {
			if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, netip.AddrPortFrom(dst, 80)); err != nil {
				t.Fatal(err)
			}
		}
		n.RunFor(time.Millisecond)
		want := map[bool]uint16{true: uint16(mtu - 60), false: uint16(mtu - 40)}
		for _, d := range decoded(r.Take(), func(d *stacktest.Decoded) bool { return d.IsTCP(wire.TCPFlagSYN) }) {
			if got := d.TCP.Options.MSS; got != want[d.IP6 != nil] {
				t.Errorf("MTU %d, IPv6 %v: MSS %d, want %d", mtu, d.IP6 != nil, got, want[d.IP6 != nil])
			}
		}
	}
}

// TestIPv6PacketTooBigReachesTCP: an ICMPv6 packet too big about a
// connection's segment reaches the transport as errPacketTooBig (the
// path MTU task's hook); the connection is not hurt by it.
func TestIPv6PacketTooBigReachesTCP(t *testing.T) {
	n, a, r := withRaw6(t, stack.Config{})
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, netip.AddrPortFrom(ip6Raw, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(time.Millisecond)
	syn := decoded(r.Take(), func(d *stacktest.Decoded) bool { return d.IsTCP(wire.TCPFlagSYN) })
	if len(syn) != 1 {
		t.Fatal("no SYN")
	}
	ptb := stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6PacketTooBig, MTU: 1280, Payload: syn[0].IPv6}, ip6Raw, ip6A)
	r.Send(r.IP6Frame(a.MAC, stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: ip6A, NextHeader: wire.ProtoICMPv6}, ptb)))
	n.RunFor(time.Millisecond)
	if st := a.Stack.Stats().Net; st.Icmp6InPktTooBigs != 1 || c.State() != tcp.SynSent {
		t.Fatalf("packet too big: counted %d, connection %v", st.Icmp6InPktTooBigs, c.State())
	}
	// A port unreachable about the SYN refuses the connection.
	pu := stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6DestUnreachable, Code: wire.ICMPv6PortUnreachable, Payload: syn[0].IPv6}, ip6Raw, ip6A)
	r.Send(r.IP6Frame(a.MAC, stacktest.IP6(wire.IPv6Fields{Src: ip6Raw, Dst: ip6A, NextHeader: wire.ProtoICMPv6}, pu)))
	n.RunFor(time.Millisecond)
	if !errors.Is(c.Err(), syscall.ECONNREFUSED) {
		t.Fatalf("after a port unreachable: %v", c.Err())
	}
}

// TestIPv6TCPTransfer: a bulk transfer over IPv6 both ways, with loss,
// on NICs with and without offloads; the MSS is the MTU less 60.
func TestIPv6TCPTransfer(t *testing.T) {
	n, a, b := pair6(t, stack.Config{}, stack.Config{})
	l, err := b.Stack.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, s := connectTo(t, n, a, l, netip.AddrPortFrom(ip6B, 80))
	k := 0
	n.Impair = func(f *stacktest.Frame) stacktest.Action {
		k++
		return stacktest.Action{Drop: k%37 == 0}
	}
	data := payload(1, 300_000)
	if got := transfer(t, n, c, s, data, time.Minute); !bytes.Equal(got, data) {
		t.Fatal("A to B: data differ")
	}
	if got := transfer(t, n, s, c, data, time.Minute); !bytes.Equal(got, data) {
		t.Fatal("B to A: data differ")
	}
	if c.Info().SndMSS != 1500-60-12 {
		t.Errorf("MSS %d, want %d", c.Info().SndMSS, 1500-60-12)
	}
	if st := a.Stack.Stats(); st.Net.Ip6OutRequests == 0 || st.Net.OutRequests != 0 {
		t.Errorf("counters: Ip6OutRequests %d, OutRequests %d", st.Net.Ip6OutRequests, st.Net.OutRequests)
	}
}

// TestIPv6Loopback: a connection to the stack's own IPv6 address moves
// its data internally, as over IPv4.
func TestIPv6Loopback(t *testing.T) {
	n, a, _ := pair6(t, stack.Config{}, stack.Config{})
	l, err := a.Stack.Listen(netip.AddrPortFrom(ip6A, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	i := len(n.Log)
	c, s := connectTo(t, n, a, l, netip.AddrPortFrom(ip6A, 80))
	data := payload(2, 200_000)
	if got := transfer(t, n, c, s, data, time.Minute); !bytes.Equal(got, data) {
		t.Fatal("data differ")
	}
	if tcpOut := frames(n, i, func(f *stacktest.Frame, d *stacktest.Decoded) bool { return d.TCP != nil }); len(tcpOut) != 0 {
		t.Errorf("loopback traffic on the wire: %v", tcpOut[0])
	}
	_ = binary.BigEndian
}
