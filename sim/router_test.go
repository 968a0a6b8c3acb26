package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// routed builds h1 — router — h2: h1 on a link of MTU 1500
// (10.0.1.1/24, 2001:db8:1::1/64), h2 on one of MTU 1280 (10.0.2.2/24,
// 2001:db8:2::2/64), each with default routes through the router's
// addresses (.254, ::fe), all of them past DAD when it returns.
func routed(t *testing.T, seed uint64, cfg RouterConfig, ab impair.Config) (*Network, *Node, *Node, *Router) {
	t.Helper()
	n := New(seed)
	n.CheckCorrupt = true
	r := n.AddRouter("r", cfg)
	r1 := r.AddPort(1500, "10.0.1.254/24", "2001:db8:1::fe/64")
	r2 := r.AddPort(1280, "10.0.2.254/24", "2001:db8:2::fe/64")
	h1 := n.AddHost("h1", stack.Config{})
	p1 := h1.AddNIC(stack.NICConfig{MTU: 1500}, "10.0.1.1/24", "2001:db8:1::1/64")
	h2 := n.AddHost("h2", stack.Config{})
	p2 := h2.AddNIC(stack.NICConfig{MTU: 1280}, "10.0.2.2/24", "2001:db8:2::2/64")
	for _, h := range []struct {
		nd     *Node
		v4, v6 string
	}{{h1, "10.0.1.254", "2001:db8:1::fe"}, {h2, "10.0.2.254", "2001:db8:2::fe"}} {
		if err := h.nd.Stack.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr(h.v4), 1); err != nil {
			t.Fatal(err)
		}
		if err := h.nd.Stack.AddRoute(netip.MustParsePrefix("::/0"), netip.MustParseAddr(h.v6), 1); err != nil {
			t.Fatal(err)
		}
	}
	ab.MTU = 1500
	n.Link(p1, r1, ab, ab)
	n.Link(r2, p2, impair.Config{MTU: 1280}, impair.Config{MTU: 1280})
	if err := n.RunFor(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	return n, h1, h2, r
}

// TestRouterForwarding: TCP both ways in both families across the
// router, whose second link has the smaller MTU: the MSS each end
// announces keeps the segments within both links (no path MTU discovery
// needed). IPv4 datagrams larger than the second link are fragmented
// again by the router (no DF, RFC 791); the router's neighbour cache
// resolves both hosts with ARP and NDP.
func TestRouterForwarding(t *testing.T) {
	n, h1, h2, r := routed(t, 1, RouterConfig{}, impair.Config{Delay: 5 * time.Millisecond, Loss: 0.01})
	apps := NewApps(n)
	for _, h := range []*Node{h1, h2} {
		if _, err := apps.Serve(h, netip.AddrPortFrom(netip.IPv6Unspecified(), 80), ServerConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	var flows []*Flow
	for _, dst := range []string{"10.0.2.2", "[2001:db8:2::2]"} {
		flows = append(flows, apps.Dial(n.Now(), h1, netip.MustParseAddrPort(dst+":80"), FlowConfig{Up: 300_000, Down: 300_000}))
	}
	for _, dst := range []string{"10.0.1.1", "[2001:db8:1::1]"} {
		flows = append(flows, apps.Dial(n.Now(), h2, netip.MustParseAddrPort(dst+":80"), FlowConfig{Up: 200_000, Down: 100_000}))
	}
	if _, err := apps.UDPSink(h2, netip.AddrPortFrom(netip.IPv6Unspecified(), 53)); err != nil {
		t.Fatal(err)
	}
	u := apps.SendUDP(n.Now(), h1, netip.MustParseAddrPort("10.0.2.2:53"), 10, 3000, 10*time.Millisecond)
	if err := n.Run(10*time.Minute, apps.Done); err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		if err := f.Check(); err != nil {
			t.Error(err)
		}
		if f.Up.Read != f.Up.Planned || f.Down.Read != f.Down.Planned {
			t.Errorf("%v: not every byte arrived", f)
		}
	}
	if err := u.Check(); err != nil || u.Received == 0 {
		t.Errorf("UDP through the router: %v, %d of %d received", err, u.Received, u.Sent)
	}
	if r.Stats.Forwarded == 0 || r.Stats.Fragmented == 0 || r.Stats.TooBig != 0 {
		t.Errorf("router stats %+v", r.Stats)
	}
	for _, v := range n.Violations() {
		t.Error(v)
	}
	families := map[bool]bool{}
	for _, e := range r.Neighbors() {
		families[e.IP.Is4()] = true
	}
	if !families[true] || !families[false] {
		t.Errorf("router's neighbours %+v: want both families resolved", r.Neighbors())
	}
}

// inject sends an IP packet from h's port, as if its stack had sent it,
// to the router's MAC.
func inject(h *Node, r *Router, pkt []byte) {
	et := wire.EtherTypeIPv4
	if pkt[0]>>4 == 6 {
		et = wire.EtherTypeIPv6
	}
	h.Port(0).Send(stacktest.Ether(r.node.Port(0).MAC, h.Port(0).MAC, 0, et, pkt))
}

// TestRouterErrors: what the router answers, and what it keeps to itself
// with DropICMP: time exceeded for a TTL or hop limit of 1 (RFC 1812
// §5.3.1, RFC 4443 §3.3), fragmentation needed with the next link's MTU
// for IPv4 with DF (RFC 1191), packet too big with it for IPv6 (RFC
// 8201), net unreachable for no route; echo requests to its addresses
// answered.
func TestRouterErrors(t *testing.T) {
	for _, drop := range []bool{false, true} {
		n, h1, _, r := routed(t, 2, RouterConfig{DropICMP: drop}, impair.Config{})
		h1.Stack.AddNeighbor(1, netip.MustParseAddr("10.0.1.254"), r.node.Port(0).MAC)
		h1.Stack.AddNeighbor(1, netip.MustParseAddr("2001:db8:1::fe"), r.node.Port(0).MAC)
		a4, b4 := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.0.2.2")
		a6, b6 := netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:2::2")
		udp4 := func(ttl uint8, df bool, size int, dst netip.Addr) []byte {
			h := stacktest.IPHeader(a4, dst, wire.ProtoUDP)
			h.TTL, h.DF = ttl, df
			return stacktest.IP(h, stacktest.UDPDgram(netip.AddrPortFrom(a4, 1000), netip.AddrPortFrom(dst, 9), make([]byte, size)))
		}
		udp6 := func(hop uint8, size int, dst netip.Addr) []byte {
			return stacktest.IP6(wire.IPv6Fields{Src: a6, Dst: dst, NextHeader: wire.ProtoUDP, HopLimit: hop},
				stacktest.UDPDgram(netip.AddrPortFrom(a6, 1000), netip.AddrPortFrom(dst, 9), make([]byte, size)))
		}
		before := h1.Stack.Stats().Net
		inject(h1, r, udp4(1, false, 10, b4))
		inject(h1, r, udp6(1, 10, b6))
		inject(h1, r, udp4(64, true, 1400, b4))
		inject(h1, r, udp6(64, 1400, b6))
		inject(h1, r, udp4(64, false, 10, netip.MustParseAddr("10.9.9.9")))
		inject(h1, r, udp6(64, 10, netip.MustParseAddr("2001:db8:9::9")))
		echo := stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, ID: 1, Seq: 1}, a6, netip.MustParseAddr("2001:db8:1::fe"))
		inject(h1, r, stacktest.IP6(wire.IPv6Fields{Src: a6, Dst: netip.MustParseAddr("2001:db8:1::fe"), NextHeader: wire.ProtoICMPv6}, echo))
		if err := n.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		st := h1.Stack.Stats().Net
		got := map[string]uint64{
			"time exceeded": st.InTimeExcds - before.InTimeExcds, "time exceeded v6": st.Icmp6InTimeExcds - before.Icmp6InTimeExcds,
			"unreachable": st.InDestUnreachs - before.InDestUnreachs, "unreachable v6": st.Icmp6InDestUnreachs - before.Icmp6InDestUnreachs,
			"too big v6": st.Icmp6InPktTooBigs - before.Icmp6InPktTooBigs, "echo reply v6": st.Icmp6InEchoReplies - before.Icmp6InEchoReplies,
		}
		want := map[string]uint64{"time exceeded": 1, "time exceeded v6": 1, "unreachable": 2, "unreachable v6": 1, "too big v6": 1, "echo reply v6": 1}
		if drop {
			want = map[string]uint64{"echo reply v6": 1}
			for k := range got {
				if _, ok := want[k]; !ok {
					want[k] = 0
				}
			}
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("DropICMP %v: %s: %d, want %d", drop, k, got[k], v)
			}
		}
		if drop && r.Stats.ICMPDropped != 6 || !drop && r.Stats.ICMPSent != 6 {
			t.Errorf("DropICMP %v: router stats %+v", drop, r.Stats)
		}
		if r.Stats.TooBig != 2 || r.Stats.TTLExceeded != 2 || r.Stats.NoRoute != 2 {
			t.Errorf("router stats %+v", r.Stats)
		}
	}
}
