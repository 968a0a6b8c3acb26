package stack_test

import (
	"bytes"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// The forwarder tests over IPv6: the IPv4 ones' assertions, with client
// A (2001:db8::1) routing everything through forwarder B (2001:db8::2),
// promiscuous and spoofing; far6 and far6b are addresses off the link.
var (
	far6  = netip.MustParseAddr("2001:db8:ff::7")
	far6b = netip.MustParseAddr("2001:db8:ee::9")
)

func forwarderPair6(t *testing.T, spoof bool) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n, a, b := pair6(t, stack.Config{}, stack.Config{})
	if err := a.Stack.AddRoute(netip.MustParsePrefix("::/0"), ip6B, a.NIC); err != nil {
		t.Fatal(err)
	}
	if err := b.Stack.SetForwarding(b.NIC, true, spoof); err != nil {
		t.Fatal(err)
	}
	return n, a, b
}

// TestForwardTCPAcceptAfterDecision6: a SYN to a foreign IPv6 address
// is held unanswered while the client retransmits it (one request);
// Accept answers it with IPv6's MSS, and the connection carries data
// both ways with every packet from the foreign address.
func TestForwardTCPAcceptAfterDecision6(t *testing.T) {
	n, a, b := forwarderPair6(t, true)
	f, err := b.Stack.ForwardTCP(0)
	if err != nil {
		t.Fatal(err)
	}
	dst := ap(far6, 443)
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, dst)
	if err != nil {
		t.Fatal(err)
	}
	i := len(n.Log)
	n.RunFor(4 * time.Second)
	r := f.Next()
	if r == nil {
		t.Fatal("no request for a SYN to a foreign IPv6 address")
	}
	if f.Next() != nil {
		t.Fatal("a retransmitted SYN made a second request")
	}
	if got := synAcksFrom(n, b, i); got != 0 {
		t.Fatalf("%d SYN-ACKs sent before the decision", got)
	}
	if r.LocalAddr() != dst || r.RemoteAddr() != c.LocalAddr() || !c.LocalAddr().Addr().Is6() {
		t.Fatalf("request %v → %v, want %v → %v", r.RemoteAddr(), r.LocalAddr(), c.LocalAddr(), dst)
	}
	if syn := r.SYN(); syn.Options.MSS != 1440 || !syn.Options.SACKPermitted || !syn.Options.HasTimestamp {
		t.Fatalf("SYN options %+v: want the client's IPv6 MSS 1440, SACK, timestamps", syn.Options)
	}
	st := b.Stack.Stats().Fwd
	if st.TCPRequests != 1 || st.TCPSynRetrans < 1 || st.InForeign < 2 {
		t.Fatalf("stats %+v: want 1 request, its retransmissions, foreign packets counted", st)
	}
	sc, err := r.Accept(n.Now)
	if err != nil {
		t.Fatal(err)
	}
	n.RunUntil(5*time.Second, func() bool { return c.State() == tcp.Established && sc.State() == tcp.Established })
	if sc.LocalAddr() != dst || sc.RemoteAddr() != c.LocalAddr() {
		t.Fatalf("accepted %v ↔ %v", sc.LocalAddr(), sc.RemoteAddr())
	}
	transfer(t, n, c, sc, payload(1, 300<<10), 30*time.Second)
	transfer(t, n, sc, c, payload(2, 200<<10), 30*time.Second)
	var tcpFrames int
	for _, fr := range frames(n, i, from(b)) {
		d := fr.Decode()
		if d.TCP == nil {
			continue // neighbour discovery from B's own address
		}
		tcpFrames++
		if d.IP6 == nil || d.IP6.Src != far6 {
			t.Fatalf("B sent TCP not from %v: %v", far6, fr)
		}
		if d.TCP.Flags&wire.TCPFlagSYN != 0 && d.TCP.Options.MSS != 1440 {
			t.Fatalf("SYN-ACK's MSS %d, want 1440 (1500 less IPv6's 40 and TCP's 20)", d.TCP.Options.MSS)
		}
	}
	if tcpFrames == 0 {
		t.Fatal("B sent no TCP")
	}
}

// TestForwardTCPRejectForeign6: a request to a foreign IPv6 address
// refused each way reaches the client's connect as the kernel reports
// it, the ICMPv6 errors with ip6tables' REJECT codes and quoting the SYN.
func TestForwardTCPRejectForeign6(t *testing.T) {
	for _, tc := range []struct {
		how  stack.Reject
		code uint8
		want error
	}{
		{stack.RejectReset, 0, syscall.ECONNREFUSED},
		{stack.RejectPortUnreachable, wire.ICMPv6PortUnreachable, syscall.ECONNREFUSED},
		{stack.RejectHostUnreachable, wire.ICMPv6AddrUnreachable, syscall.EHOSTUNREACH},
		{stack.RejectNetUnreachable, wire.ICMPv6NoRoute, syscall.EHOSTUNREACH},
	} {
		n, a, b := forwarderPair6(t, true)
		f, _ := b.Stack.ForwardTCP(0)
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far6, 80))
		if err != nil {
			t.Fatal(err)
		}
		n.RunUntil(time.Second, func() bool { return f.InFlight() == 1 })
		r := f.Next()
		if r == nil {
			t.Fatalf("reject %d: no request", tc.how)
		}
		i := len(n.Log)
		if err := r.Reject(n.Now, tc.how); err != nil {
			t.Fatal(err)
		}
		n.RunUntil(5*time.Second, func() bool { return c.State() == tcp.Closed })
		if !errors.Is(c.Err(), tc.want) {
			t.Errorf("reject %d: client's error %v, want %v", tc.how, c.Err(), tc.want)
		}
		errs := decoded(frames(n, i, from(b)), icmp6Of(wire.ICMPv6DestUnreachable))
		rsts := decoded(frames(n, i, from(b)), func(d *stacktest.Decoded) bool { return d.IsTCP(wire.TCPFlagRST | wire.TCPFlagACK) })
		if tc.how == stack.RejectReset {
			if len(errs) != 0 || len(rsts) != 1 || rsts[0].IP6.Src != far6 {
				t.Errorf("reset: %d ICMPv6 errors, RSTs %v: want one RST from %v", len(errs), rsts, far6)
			}
		} else if len(errs) != 1 || errs[0].ICMP6.Code != tc.code {
			t.Errorf("reject %d: ICMPv6 errors %v, want one of code %d", tc.how, errs, tc.code)
		}
		if st := b.Stack.Stats().Fwd; st.TCPRejected != 1 || f.InFlight() != 0 {
			t.Errorf("reject %d: stats %+v", tc.how, st)
		}
	}
}

// TestForwardTCPCap6: a flood of IPv6 SYNs from many ports beyond
// maxInFlight is dropped unanswered and counted.
func TestForwardTCPCap6(t *testing.T) {
	n, b, r := withRaw6(t, stack.Config{})
	b.Stack.SetForwarding(b.NIC, true, true)
	f, _ := b.Stack.ForwardTCP(3)
	i := len(n.Log)
	for p := uint16(1000); p < 1010; p++ {
		r.Send(r.TCPFrame(b.MAC, ap(ip6Raw, p), ap(far6, 80), wire.TCPFields{Seq: 1000, Flags: wire.TCPFlagSYN, Window: 65535}))
	}
	n.RunFor(100 * time.Millisecond)
	if st := b.Stack.Stats().Fwd; st.TCPRequests != 3 || st.TCPRefusedCap != 7 || f.InFlight() != 3 {
		t.Fatalf("stats %+v, in flight %d: want 3 requests and 7 refused", st, f.InFlight())
	}
	if got := len(frames(n, i, from(b))); got != 0 {
		t.Fatalf("B answered %d frames of the flood", got)
	}
}

// TestForwardForeignDemux6: packets to foreign IPv6 addresses reach
// only sockets bound to exactly that address; without a forwarder a
// foreign SYN gets a RST from the foreign address; without promiscuity
// it is dropped as not ours. Link-local destinations that are not ours
// and our own tentative addresses are never taken as foreign.
func TestForwardForeignDemux6(t *testing.T) {
	n, a, b := forwarderPair6(t, true)
	l, err := b.Stack.Listen(ap(netip.IPv6Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far6, 80))
	n.RunUntil(5*time.Second, func() bool { return c.State() == tcp.Closed })
	if !errors.Is(c.Err(), syscall.ECONNREFUSED) || l.Pending() != 0 {
		t.Fatalf("foreign SYN without forwarder: %v, pending %d", c.Err(), l.Pending())
	}
	lf, err := b.Stack.Listen(ap(far6, 8080), 0)
	if err != nil {
		t.Fatalf("Listen on a foreign IPv6 address with spoofing: %v", err)
	}
	c1, s1 := connectTo(t, n, a, lf, ap(far6, 8080))
	transfer(t, n, c1, s1, payload(3, 10000), 10*time.Second)
	f, _ := b.Stack.ForwardTCP(0)
	c81, _ := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far6, 81))
	c82, _ := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ip6B, 82))
	n.RunUntil(time.Second, func() bool { return f.InFlight() == 2 })
	if f.InFlight() != 2 {
		t.Fatalf("forwarder took %d requests, want the foreign one and the own one", f.InFlight())
	}
	// Refused, so that no retransmission counts below.
	for r := f.Next(); r != nil; r = f.Next() {
		r.Reject(n.Now, stack.RejectReset)
	}
	n.RunUntil(time.Second, func() bool { return c81.State() == tcp.Closed && c82.State() == tcp.Closed })

	// A link-local destination that is not B's: not taken (RFC 4291
	// §2.5.6), dropped as not ours.
	before := b.Stack.Stats()
	a.Stack.AddNeighbor(a.NIC, netip.MustParseAddr("fe80::77"), b.MAC)
	if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, netip.AddrPortFrom(netip.MustParseAddr("fe80::77").WithZone("1"), 84)); err != nil {
		t.Fatal(err)
	}
	n.RunFor(2 * time.Second)
	d := diff(before, b.Stack.Stats())
	if d["Net.Ip6InAddrErrors"] < 1 || d["Fwd.InForeign"] != 0 || f.InFlight() != 0 {
		t.Fatalf("foreign link-local destination: %v, in flight %d", d, f.InFlight())
	}

	// An address of B's still tentative: discarded (RFC 4862 §5.4),
	// not foreign.
	tent := netip.MustParseAddr("2001:db8::55")
	if err := b.Stack.AddAddress(b.NIC, netip.PrefixFrom(tent, 64)); err != nil {
		t.Fatal(err)
	}
	if got := addrState(b, tent); got != "tentative" {
		t.Fatalf("new address %s, want tentative", got)
	}
	a.Stack.AddNeighbor(a.NIC, tent, b.MAC)
	before = b.Stack.Stats()
	a.Stack.Connect(n.Now, netip.AddrPort{}, ap(tent, 85))
	n.RunFor(10 * time.Millisecond)
	if d := diff(before, b.Stack.Stats()); d["Net.Ip6InAddrErrors"] != 1 || d["Fwd.InForeign"] != 0 || f.InFlight() != 0 {
		t.Fatalf("tentative destination: %v, in flight %d", d, f.InFlight())
	}

	// Not promiscuous: foreign packets are dropped as not ours.
	b.Stack.SetForwarding(b.NIC, false, true)
	before = b.Stack.Stats()
	a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far6, 83))
	n.RunFor(100 * time.Millisecond)
	if d := diff(before, b.Stack.Stats()); d["Net.Ip6InAddrErrors"] != 1 || d["Fwd.InForeign"] != 0 || f.InFlight() != 0 {
		t.Fatalf("not promiscuous: %v", d)
	}
}

// TestForwardNoProxyNDP: a promiscuous NIC answers neighbour
// solicitations for foreign IPv6 addresses no more than ARP requests
// for foreign IPv4 ones: it stands for hosts behind it (a TUN has no
// neighbours), not on its link, and a proxy would capture the segment.
func TestForwardNoProxyNDP(t *testing.T) {
	n, b, r := withRaw6(t, stack.Config{})
	b.Stack.SetForwarding(b.NIC, true, true)
	i := len(n.Log)
	// A multicast solicitation to far6's solicited-node group, and a
	// unicast one (a NUD probe) to far6 itself.
	ns := wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: far6}
	o := wire.NDPOptions{HasSourceLinkAddr: true, SourceLinkAddr: r.MAC}
	sn := netip.MustParseAddr("ff02::1:ff00:7")
	r.Send(ndpFrame(r, multicastMAC(sn), ip6Raw, sn, ns, o))
	r.Send(ndpFrame(r, b.MAC, ip6Raw, far6, ns, o))
	n.RunFor(time.Second)
	if got := decoded(frames(n, i, from(b)), ndpOf(wire.ICMPv6NeighborAdvert)); len(got) != 0 {
		t.Fatalf("B advertised a foreign address: %v", got)
	}
	// Its own address is still answered.
	ns.Target = b.Addr
	r.Send(ndpFrame(r, b.MAC, ip6Raw, b.Addr, ns, o))
	n.RunFor(time.Second)
	if got := decoded(frames(n, i, from(b)), ndpOf(wire.ICMPv6NeighborAdvert)); len(got) != 1 {
		t.Fatalf("B's own address: %d advertisements, want 1", len(got))
	}
}

// TestForwardSpoofingNeeded6: without Spoofing nothing leaves from a
// foreign IPv6 address.
func TestForwardSpoofingNeeded6(t *testing.T) {
	n, a, b := forwarderPair6(t, false)
	f, _ := b.Stack.ForwardTCP(0)
	a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far6, 80))
	n.RunUntil(time.Second, func() bool { return f.InFlight() == 1 })
	if _, err := f.Next().Accept(n.Now); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("Accept without spoofing: %v", err)
	}
	if err := b.Stack.SendEchoReply(n.Now, far6, ip6A, 1, 1, nil); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("SendEchoReply without spoofing: %v", err)
	}
	if err := b.Stack.SendEchoReply(n.Now, ipB, ip6A, 1, 1, nil); !errors.Is(err, stack.ErrInvalid) {
		t.Fatalf("SendEchoReply across families: %v, want ErrInvalid", err)
	}
	if _, err := b.Stack.Listen(ap(far6, 5), 0); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("Listen: %v", err)
	}
	u, _ := b.Stack.BindUDP(ap(netip.IPv6Unspecified(), 5))
	if _, err := u.WriteFrom(n.Now, []byte("x"), ap(far6, 53), ap(ip6A, 9)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("WriteFrom: %v", err)
	}
	if _, err := u.WriteFrom(n.Now, []byte("x"), ap(ip6B, 53), ap(ip6A, 9)); err != nil {
		t.Fatalf("WriteFrom an own address: %v", err)
	}
}

// TestForwardUDPMappings6: both RFC 4787 mappings over IPv6, answers
// from each foreign destination, and the cap.
func TestForwardUDPMappings6(t *testing.T) {
	for _, m := range []stack.UDPMapping{stack.UDPEndpointIndependent, stack.UDPPerTuple} {
		n, a, b := forwarderPair6(t, true)
		f, err := b.Stack.ForwardUDP(m, 0)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := a.Stack.BindUDP(ap(netip.IPv6Unspecified(), 4000))
		u.WriteTo(n.Now, []byte("one"), ap(far6, 53))
		u.WriteTo(n.Now, []byte("two"), ap(far6b, 123))
		u.WriteTo(n.Now, []byte("three"), ap(far6, 53))
		n.RunFor(50 * time.Millisecond)
		var flows []*stack.UDPEndpoint
		for ep := f.Next(); ep != nil; ep = f.Next() {
			flows = append(flows, ep)
		}
		want := map[stack.UDPMapping]int{stack.UDPEndpointIndependent: 1, stack.UDPPerTuple: 2}[m]
		if len(flows) != want || f.Flows() != want {
			t.Fatalf("mapping %d: %d flows, want %d", m, len(flows), want)
		}
		var got []string
		buf := make([]byte, 100)
		for _, ep := range flows {
			if ep.Client() != ap(ip6A, 4000) {
				t.Fatalf("flow's client %v", ep.Client())
			}
			for {
				k, from, to, err := ep.ReadFromTo(buf)
				if err != nil {
					break
				}
				got = append(got, string(buf[:k])+"→"+to.String())
				if from != ap(ip6A, 4000) {
					t.Fatalf("from %v", from)
				}
			}
		}
		if len(got) != 3 {
			t.Fatalf("mapping %d: read %v", m, got)
		}
		ep := flows[0]
		if _, err := ep.WriteFrom(n.Now, []byte("r1"), ap(far6, 53), ep.Client()); err != nil {
			t.Fatal(err)
		}
		if _, err := ep.WriteFrom(n.Now, []byte("r2"), ap(far6b, 123), ep.Client()); err != nil {
			t.Fatal(err)
		}
		n.RunFor(50 * time.Millisecond)
		msgs, srcs := udpRecv(u)
		if len(msgs) != 2 || srcs[0] != ap(far6, 53) || srcs[1] != ap(far6b, 123) {
			t.Fatalf("client got %v from %v", msgs, srcs)
		}
	}
	n, a, b := forwarderPair6(t, true)
	f, _ := b.Stack.ForwardUDP(stack.UDPPerTuple, 2)
	u, _ := a.Stack.BindUDP(ap(netip.IPv6Unspecified(), 4000))
	for port := uint16(1); port <= 5; port++ {
		u.WriteTo(n.Now, []byte("x"), ap(far6, port))
	}
	n.RunFor(50 * time.Millisecond)
	if st := b.Stack.Stats().Fwd; f.Flows() != 2 || st.UDPFlows != 2 || st.UDPRefusedCap != 3 {
		t.Fatalf("cap: %d flows, %+v", f.Flows(), st)
	}
}

// TestForwardEcho6: ICMPv6 echo requests to foreign addresses are
// answered by the stack from the address pinged, or, with an echo
// forwarder, queued (bounded) and answered by SendEchoReply with a
// valid ICMPv6 checksum; pings to the stack's own address are the
// stack's either way.
func TestForwardEcho6(t *testing.T) {
	n, b, r := withRaw6(t, stack.Config{})
	b.Stack.SetForwarding(b.NIC, true, true)
	ping := func(dst netip.Addr, seq uint16) {
		r.Send(r.ICMP6Frame(b.MAC, ip6Raw, dst, 64, wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, ID: 77, Seq: seq, Payload: []byte("hello")}))
		n.RunFor(10 * time.Millisecond)
	}
	replies := func() (out []*stacktest.Decoded) {
		for _, fr := range r.Take() {
			if d := fr.Decode(); d.ICMP6 != nil && d.ICMP6.Type == wire.ICMPv6EchoReply {
				if wire.ICMPv6Checksum(d.IPv6.Payload(), d.IP6.Src, d.IP6.Dst) != 0 {
					t.Fatalf("echo reply with a bad checksum: %v", d)
				}
				out = append(out, d)
			}
		}
		return out
	}
	ping(far6, 1)
	if got := replies(); len(got) != 1 || got[0].IP6.Src != far6 || got[0].ICMP6.Seq != 1 || !bytes.Equal(got[0].ICMP6.Payload, []byte("hello")) {
		t.Fatalf("without a forwarder: %v", got)
	}
	f, _ := b.Stack.ForwardEcho(2)
	for seq := uint16(2); seq <= 4; seq++ {
		ping(far6, seq)
	}
	ping(b.Addr, 5)
	got := replies()
	if len(got) != 1 || got[0].IP6.Src != b.Addr {
		t.Fatalf("with a forwarder, the stack answered %d (want only the ping to its own address)", len(got))
	}
	req, ok := f.Next()
	if !ok || req.Src != ip6Raw || req.Dst != far6 || req.ID != 77 || req.Seq != 2 || req.TTL != 64 || string(req.Data) != "hello" {
		t.Fatalf("request %+v", req)
	}
	if st := b.Stack.Stats().Fwd; st.EchoRequests != 2 || st.EchoQueueDrops != 1 {
		t.Fatalf("stats %+v", st)
	}
	before := b.Stack.Stats()
	if err := b.Stack.SendEchoReply(n.Now, req.Dst, req.Src, req.ID, req.Seq, req.Data); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	if got := replies(); len(got) != 1 || got[0].IP6.Src != far6 || got[0].IP6.Dst != ip6Raw || got[0].ICMP6.ID != 77 || got[0].ICMP6.Seq != 2 || string(got[0].ICMP6.Payload) != "hello" {
		t.Fatalf("SendEchoReply: %v", got)
	}
	if d := diff(before, b.Stack.Stats()); d["Net.Icmp6OutEchoReplies"] != 1 || d["Fwd.EchoReplies"] != 1 {
		t.Fatalf("SendEchoReply's counters: %v", d)
	}
	f.Close()
	ping(far6, 6)
	if got := replies(); len(got) != 1 {
		t.Fatal("after Close the stack does not answer again")
	}
}
