package sim

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// narrowPath builds h1 —1500— rA —1280— rB —1500— h2: both hosts on
// links of MTU 1500, so each announces an MSS the middle link cannot
// carry, and only path MTU discovery (ICMP from rA or rB) or PLPMTUD
// finds the 1280 bytes that pass. IPv4 10.0.1.0/24 and 10.0.3.0/24 with
// 10.0.2.0/24 in the middle; IPv6 2001:db8:1::/64, :3::/64 and :2::/64.
func narrowPath(t *testing.T, seed uint64, rcfg RouterConfig, cfg stack.Config) (*Network, *Node, *Node, *Router, *Router) {
	t.Helper()
	n := New(seed)
	n.CheckCorrupt = true
	ra := n.AddRouter("ra", rcfg)
	rb := n.AddRouter("rb", rcfg)
	a1 := ra.AddPort(1500, "10.0.1.254/24", "2001:db8:1::fe/64")
	a2 := ra.AddPort(1280, "10.0.2.1/24", "2001:db8:2::1/64")
	b2 := rb.AddPort(1280, "10.0.2.2/24", "2001:db8:2::2/64")
	b3 := rb.AddPort(1500, "10.0.3.254/24", "2001:db8:3::fe/64")
	ra.AddRoute(netip.MustParsePrefix("10.0.3.0/24"), netip.MustParseAddr("10.0.2.2"), a2)
	ra.AddRoute(netip.MustParsePrefix("2001:db8:3::/64"), netip.MustParseAddr("2001:db8:2::2"), a2)
	rb.AddRoute(netip.MustParsePrefix("10.0.1.0/24"), netip.MustParseAddr("10.0.2.1"), b2)
	rb.AddRoute(netip.MustParsePrefix("2001:db8:1::/64"), netip.MustParseAddr("2001:db8:2::1"), b2)
	h1 := n.AddHost("h1", cfg)
	p1 := h1.AddNIC(stack.NICConfig{MTU: 1500}, "10.0.1.1/24", "2001:db8:1::1/64")
	h2 := n.AddHost("h2", cfg)
	p2 := h2.AddNIC(stack.NICConfig{MTU: 1500}, "10.0.3.2/24", "2001:db8:3::2/64")
	for _, h := range []struct {
		nd     *Node
		v4, v6 string
	}{{h1, "10.0.1.254", "2001:db8:1::fe"}, {h2, "10.0.3.254", "2001:db8:3::fe"}} {
		if err := h.nd.Stack.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr(h.v4), 1); err != nil {
			t.Fatal(err)
		}
		if err := h.nd.Stack.AddRoute(netip.MustParsePrefix("::/0"), netip.MustParseAddr(h.v6), 1); err != nil {
			t.Fatal(err)
		}
	}
	link := impair.Config{MTU: 1500, Delay: 5 * time.Millisecond}
	n.Link(p1, a1, link, link)
	narrow := impair.Config{MTU: 1280, Delay: 5 * time.Millisecond}
	n.Link(a2, b2, narrow, narrow)
	n.Link(b3, p2, link, link)
	if err := n.RunFor(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	return n, h1, h2, ra, rb
}

// pmtuFlows dials h2 from h1 in both families, each flow with up bytes
// each way, and runs until they are done or limit passes.
func pmtuFlows(t *testing.T, n *Network, h1, h2 *Node, size int64, limit time.Duration) (*Apps, []*Flow, error) {
	t.Helper()
	apps := NewApps(n)
	if _, err := apps.Serve(h2, netip.AddrPortFrom(netip.IPv6Unspecified(), 80), ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	var flows []*Flow
	for _, dst := range []string{"10.0.3.2", "[2001:db8:3::2]"} {
		flows = append(flows, apps.Dial(n.Now(), h1, netip.MustParseAddrPort(dst+":80"), FlowConfig{Up: size, Down: size}))
	}
	return apps, flows, n.Run(limit, apps.Done)
}

// TestPMTUDiscoveryRouted: RFC 1191 and RFC 8201 through two routers
// whose middle link takes 1280 bytes. With the routers' ICMP allowed,
// both families complete both ways: each sender learns the path MTU from
// "fragmentation needed" (IPv4, DF set on every segment) or "packet too
// big" (IPv6), the cache holds it, and nothing is fragmented by a router.
func TestPMTUDiscoveryRouted(t *testing.T) {
	n, h1, h2, ra, rb := narrowPath(t, 1, RouterConfig{}, stack.Config{})
	_, flows, err := pmtuFlows(t, n, h1, h2, 500_000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		if err := f.Check(); err != nil {
			t.Error(err)
		}
	}
	for _, h := range []*Node{h1, h2} {
		st := h.Stack.Stats()
		if st.TCP.PTBAccepted < 2 || st.PMTU.Learned < 2 || st.TCP.MTUBlackHoles != 0 {
			t.Errorf("%s: PTB accepted %d, learned %d, black holes %d", h.Name, st.TCP.PTBAccepted, st.PMTU.Learned, st.TCP.MTUBlackHoles)
		}
	}
	for _, dst := range []string{"10.0.3.2", "2001:db8:3::2"} {
		if m, err := h1.Stack.PathMTU(n.Now(), netip.MustParseAddr(dst)); err != nil || m != 1280 {
			t.Errorf("h1's path MTU to %s: %d, %v", dst, m, err)
		}
	}
	if ra.Stats.TooBig == 0 || rb.Stats.TooBig == 0 || ra.Stats.Fragmented != 0 || rb.Stats.Fragmented != 0 {
		t.Errorf("routers: %+v %+v", ra.Stats, rb.Stats)
	}
	for _, v := range n.Violations() {
		t.Error(v)
	}
}

// TestPLPMTUDBlackHoleRouted: the same path with the routers' ICMP
// errors dropped (a black hole). With tcp_mtu_probing = 0 no flow
// completes in two minutes: full-sized segments are resent whole until
// the connection would time out. With the default (1) every flow
// completes through black-hole detection and PLPMTUD, and the senders end
// within probeThreshold of the 1280 bytes that pass.
func TestPLPMTUDBlackHoleRouted(t *testing.T) {
	off := stack.Config{TCP: tcp.Config{MTUProbing: tcp.MTUProbingOff}}
	n, h1, h2, _, _ := narrowPath(t, 2, RouterConfig{DropICMP: true}, off)
	_, flows, err := pmtuFlows(t, n, h1, h2, 500_000, 2*time.Minute)
	if !errors.Is(err, ErrTimeLimit) {
		t.Fatalf("probing off: %v, want the time limit", err)
	}
	for _, f := range flows {
		if f.Up.Read == f.Up.Planned && f.Down.Read == f.Down.Planned {
			t.Errorf("probing off, through a black hole: %v completed", f)
		}
	}

	n, h1, h2, ra, _ := narrowPath(t, 2, RouterConfig{DropICMP: true}, stack.Config{})
	start := n.Now()
	apps, flows, err := pmtuFlows(t, n, h1, h2, 500_000, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("completed through the black hole in %v", n.Now().Sub(start))
	for _, f := range flows {
		if err := f.Check(); err != nil {
			t.Error(err)
		}
	}
	for _, c := range apps.Conns() {
		i := c.Info()
		t.Logf("%v: MSS %d (path MTU %d), %v", c.RemoteAddr(), i.SndMSS, i.PMTU, i.PLPMTUD)
		if i.PMTU > 1280 || i.PMTU < 1280-8 || i.PLPMTUD != tcp.PLPMTUDSearchComplete {
			t.Errorf("%v: path MTU %d (%v), want the search complete within 8 bytes (tcp_probe_threshold) of 1280", c.RemoteAddr(), i.PMTU, i.PLPMTUD)
		}
	}
	if ra.Stats.ICMPDropped == 0 {
		t.Error("the router dropped no ICMP")
	}
	for _, h := range []*Node{h1, h2} {
		st := h.Stack.Stats().TCP
		if st.MTUBlackHoles == 0 || st.MTUProbeSuccess == 0 || st.PTBReceived != 0 {
			t.Errorf("%s: black holes %d, probes %d (%d succeeded, %d failed), PTB %d",
				h.Name, st.MTUBlackHoles, st.MTUProbes, st.MTUProbeSuccess, st.MTUProbeFail, st.PTBReceived)
		}
	}
	for _, v := range n.Violations() {
		t.Error(v)
	}
}
