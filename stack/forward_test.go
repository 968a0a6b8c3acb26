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

// The forwarder tests: client A (10.0.0.1) routes everything through
// forwarder B (10.0.0.2), whose NIC is promiscuous and may spoof, as a
// tun2socks or slirp-like relay's stack is; far is an address nobody on
// the segment holds.
var far = netip.MustParseAddr("198.51.100.7")

func forwarderPair(t *testing.T, spoof bool) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	if err := a.Stack.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), ipB, a.NIC); err != nil {
		t.Fatal(err)
	}
	if err := b.Stack.SetForwarding(b.NIC, true, spoof); err != nil {
		t.Fatal(err)
	}
	return n, a, b
}

// synAcksFrom counts the SYN-ACKs node nd sent since log index i.
func synAcksFrom(n *stacktest.Net, nd *stacktest.Node, i int) int {
	return len(frames(n, i, func(f *stacktest.Frame, d *stacktest.Decoded) bool {
		return f.From == nd && d.IsTCP(wire.TCPFlagSYN|wire.TCPFlagACK)
	}))
}

// TestForwardTCPAcceptAfterDecision: a SYN to a foreign address is held
// with no SYN-ACK, however long the owner takes (the client's
// retransmissions repeat the request, not make new ones); Accept then
// answers it, and the connection carries data both ways with the
// foreign address as its local end.
func TestForwardTCPAcceptAfterDecision(t *testing.T) {
	n, a, b := forwarderPair(t, true)
	f, err := b.Stack.ForwardTCP(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stack.ForwardTCP(0); !errors.Is(err, stack.ErrForwarderSet) {
		t.Fatalf("second ForwardTCP: %v, want ErrForwarderSet", err)
	}
	dst := ap(far, 443)
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, dst)
	if err != nil {
		t.Fatal(err)
	}
	i := len(n.Log)
	n.RunFor(4 * time.Second) // the client's SYN and two retransmissions
	r := f.Next()
	if r == nil {
		t.Fatal("no request")
	}
	if f.Next() != nil {
		t.Fatal("a retransmitted SYN made a second request")
	}
	if got := synAcksFrom(n, b, i); got != 0 {
		t.Fatalf("%d SYN-ACKs sent before the decision", got)
	}
	if r.LocalAddr() != dst || r.RemoteAddr() != c.LocalAddr() {
		t.Fatalf("request %v → %v, want %v → %v", r.RemoteAddr(), r.LocalAddr(), c.LocalAddr(), dst)
	}
	syn := r.SYN()
	if syn.Options.MSS != 1460 || !syn.Options.SACKPermitted || !syn.Options.HasTimestamp || !syn.Options.HasWScale {
		t.Fatalf("SYN options %+v: want the client's MSS 1460, SACK, timestamps, window scale", syn.Options)
	}
	st := b.Stack.Stats().Fwd
	if st.TCPRequests != 1 || st.TCPSynRetrans < 1 || f.InFlight() != 1 {
		t.Fatalf("stats %+v, in flight %d: want 1 request and its retransmissions", st, f.InFlight())
	}
	sc, err := r.Accept(n.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Drop(); !errors.Is(err, stack.ErrInvalid) {
		t.Fatalf("Drop after Accept: %v, want ErrInvalid", err)
	}
	n.RunUntil(5*time.Second, func() bool { return c.State() == tcp.Established && sc.State() == tcp.Established })
	if sc.LocalAddr() != dst || sc.RemoteAddr() != c.LocalAddr() {
		t.Fatalf("accepted %v ↔ %v", sc.LocalAddr(), sc.RemoteAddr())
	}
	transfer(t, n, c, sc, payload(1, 300<<10), 30*time.Second)
	transfer(t, n, sc, c, payload(2, 200<<10), 30*time.Second)
	if f.InFlight() != 0 || b.Stack.Stats().Fwd.TCPAccepted != 1 {
		t.Fatalf("after accept: in flight %d, stats %+v", f.InFlight(), b.Stack.Stats().Fwd)
	}
	// Every frame B sent to A came from the foreign address.
	for _, fr := range frames(n, i, from(b)) {
		if d := fr.Decode(); d.IP != nil && d.IP.Src != far {
			t.Fatalf("B sent from %v: %v", d.IP.Src, fr)
		}
	}
}

// TestForwardTCPReject: each way of refusing reaches the client's
// connect as the kernel reports it.
func TestForwardTCPReject(t *testing.T) {
	for _, tc := range []struct {
		how  stack.Reject
		want error
	}{
		{stack.RejectReset, syscall.ECONNREFUSED},
		{stack.RejectPortUnreachable, syscall.ECONNREFUSED},
		{stack.RejectHostUnreachable, syscall.EHOSTUNREACH},
		{stack.RejectNetUnreachable, syscall.EHOSTUNREACH},
		{stack.RejectAdminProhibited, syscall.EHOSTUNREACH},
	} {
		n, a, b := forwarderPair(t, true)
		f, _ := b.Stack.ForwardTCP(0)
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far, 80))
		if err != nil {
			t.Fatal(err)
		}
		n.RunUntil(time.Second, func() bool { return f.InFlight() == 1 })
		r := f.Next()
		if err := r.Reject(n.Now, tc.how); err != nil {
			t.Fatal(err)
		}
		n.RunUntil(5*time.Second, func() bool { return c.State() == tcp.Closed })
		if !errors.Is(c.Err(), tc.want) {
			t.Errorf("reject %d: client's error %v, want %v", tc.how, c.Err(), tc.want)
		}
		if st := b.Stack.Stats().Fwd; st.TCPRejected != 1 || f.InFlight() != 0 {
			t.Errorf("reject %d: stats %+v", tc.how, st)
		}
	}
}

// TestForwardTCPDrop: a dropped request sends nothing, and the client's
// next SYN makes a new request.
func TestForwardTCPDrop(t *testing.T) {
	n, a, b := forwarderPair(t, true)
	f, _ := b.Stack.ForwardTCP(0)
	if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far, 80)); err != nil {
		t.Fatal(err)
	}
	n.RunUntil(time.Second, func() bool { return f.InFlight() == 1 })
	i := len(n.Log)
	if err := f.Next().Drop(); err != nil {
		t.Fatal(err)
	}
	n.RunUntil(5*time.Second, func() bool { return f.InFlight() == 1 })
	if len(frames(n, i, from(b))) != 0 {
		t.Fatal("B answered a dropped request")
	}
	if r := f.Next(); r == nil || b.Stack.Stats().Fwd.TCPRequests != 2 {
		t.Fatalf("the retransmitted SYN made no new request: %+v", b.Stack.Stats().Fwd)
	}
}

// TestForwardTCPCap: with maxInFlight undecided requests, further SYNs
// (a flood from many sources) are dropped unanswered and counted; a
// decision makes room again.
func TestForwardTCPCap(t *testing.T) {
	n, b, r := withRaw(t, stack.Config{})
	b.Stack.SetForwarding(b.NIC, true, true)
	f, _ := b.Stack.ForwardTCP(3)
	syn := func(port uint16) {
		r.Send(r.TCPFrame(b.MAC, ap(ipRaw, port), ap(far, 80), wire.TCPFields{Seq: 1000, Flags: wire.TCPFlagSYN, Window: 65535}))
	}
	i := len(n.Log)
	for p := uint16(1000); p < 1010; p++ {
		syn(p)
	}
	n.RunFor(100 * time.Millisecond)
	st := b.Stack.Stats().Fwd
	if st.TCPRequests != 3 || st.TCPRefusedCap != 7 || f.InFlight() != 3 {
		t.Fatalf("stats %+v, in flight %d: want 3 requests and 7 refused", st, f.InFlight())
	}
	if got := len(frames(n, i, from(b))); got != 0 {
		t.Fatalf("B answered %d frames of the flood", got)
	}
	first := f.Next()
	if _, err := first.Accept(n.Now); err != nil {
		t.Fatal(err)
	}
	syn(2000)
	n.RunFor(100 * time.Millisecond)
	if st := b.Stack.Stats().Fwd; st.TCPRequests != 4 || st.TCPRefusedCap != 7 {
		t.Fatalf("after a decision: %+v", st)
	}
	// Only the accepted one was answered: one SYN-ACK from the far address.
	if got := synAcksFrom(n, b, i); got != 1 {
		t.Fatalf("%d SYN-ACKs, want 1", got)
	}
}

// TestForwardForeignDemux: packets to foreign addresses reach only
// sockets bound to exactly that address — a wildcard listener means the
// stack's own addresses — and, without a forwarder or without
// promiscuity, get the usual answers.
func TestForwardForeignDemux(t *testing.T) {
	n, a, b := forwarderPair(t, true)
	l, err := b.Stack.Listen(ap(netip.IPv4Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	// No forwarder: the foreign SYN is refused with a RST from the
	// foreign address, the wildcard listener untouched.
	c, _ := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far, 80))
	n.RunUntil(5*time.Second, func() bool { return c.State() == tcp.Closed })
	if !errors.Is(c.Err(), syscall.ECONNREFUSED) || l.Pending() != 0 {
		t.Fatalf("foreign SYN without forwarder: %v, pending %d", c.Err(), l.Pending())
	}
	// A listener bound to exactly the foreign address (spoofing allows
	// it) takes it.
	if _, err := b.Stack.Listen(ap(far, 80), 0); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Listen on far:80 beside the wildcard: %v, want EADDRINUSE as in Linux", err)
	}
	lf, err := b.Stack.Listen(ap(far, 8080), 0)
	if err != nil {
		t.Fatalf("Listen on a foreign address with spoofing: %v", err)
	}
	c1, s1 := connectTo(t, n, a, lf, ap(far, 8080))
	transfer(t, n, c1, s1, payload(3, 10000), 10*time.Second)
	// The forwarder takes what matches no listener — foreign or own.
	f, _ := b.Stack.ForwardTCP(0)
	a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far, 81))
	a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 82))
	n.RunUntil(time.Second, func() bool { return f.InFlight() == 2 })
	// Not promiscuous: foreign packets are dropped as not ours.
	b.Stack.SetForwarding(b.NIC, false, true)
	before := b.Stack.Stats()
	a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far, 83))
	n.RunFor(100 * time.Millisecond)
	if d := diff(before, b.Stack.Stats()); d["Net.InAddrErrors"] != 1 || f.InFlight() != 2 {
		t.Fatalf("not promiscuous: %v", d)
	}
}

// TestForwardSpoofingNeeded: without Spoofing, nothing leaves from a
// foreign address: Accept, WriteFrom, SendEchoReply, Connect, Listen and
// BindUDP refuse with EADDRNOTAVAIL.
func TestForwardSpoofingNeeded(t *testing.T) {
	n, a, b := forwarderPair(t, false)
	f, _ := b.Stack.ForwardTCP(0)
	a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far, 80))
	n.RunUntil(time.Second, func() bool { return f.InFlight() == 1 })
	if _, err := f.Next().Accept(n.Now); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("Accept without spoofing: %v", err)
	}
	if err := b.Stack.SendEchoReply(n.Now, far, ipA, 1, 1, nil); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("SendEchoReply without spoofing: %v", err)
	}
	if _, err := b.Stack.Connect(n.Now, ap(far, 5), ap(ipA, 80)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("Connect from a foreign address: %v", err)
	}
	if _, err := b.Stack.Listen(ap(far, 5), 0); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("Listen: %v", err)
	}
	if _, err := b.Stack.BindUDP(ap(far, 5)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("BindUDP: %v", err)
	}
	u, _ := b.Stack.BindUDP(ap(netip.IPv4Unspecified(), 5))
	if _, err := u.WriteFrom(n.Now, []byte("x"), ap(far, 53), ap(ipA, 9)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("WriteFrom: %v", err)
	}
	if _, err := u.WriteFrom(n.Now, []byte("x"), ap(ipB, 53), ap(ipA, 9)); err != nil {
		t.Fatalf("WriteFrom an own address: %v", err)
	}
}

// udpRecv reads every datagram queued on u.
func udpRecv(u *stack.UDPEndpoint) (msgs []string, from []netip.AddrPort) {
	buf := make([]byte, 2048)
	for {
		k, src, err := u.ReadFrom(buf)
		if err != nil {
			return
		}
		msgs = append(msgs, string(buf[:k]))
		from = append(from, src)
	}
}

// TestForwardUDPMappings: endpoint-independent mapping makes one flow
// per client port whatever the destinations (RFC 4787 §4.1), and its
// answers may come from any of them; per-tuple mapping makes one per
// destination. The cap refuses flows beyond it, counted.
func TestForwardUDPMappings(t *testing.T) {
	far2 := netip.MustParseAddr("203.0.113.9")
	for _, m := range []stack.UDPMapping{stack.UDPEndpointIndependent, stack.UDPPerTuple} {
		n, a, b := forwarderPair(t, true)
		f, err := b.Stack.ForwardUDP(m, 0)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := a.Stack.BindUDP(ap(netip.IPv4Unspecified(), 4000))
		u.WriteTo(n.Now, []byte("one"), ap(far, 53))
		u.WriteTo(n.Now, []byte("two"), ap(far2, 123))
		u.WriteTo(n.Now, []byte("three"), ap(far, 53))
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
			if ep.Client() != ap(ipA, 4000) {
				t.Fatalf("flow's client %v", ep.Client())
			}
			for {
				k, from, to, err := ep.ReadFromTo(buf)
				if err != nil {
					break
				}
				got = append(got, string(buf[:k])+"→"+to.String())
				if from != ap(ipA, 4000) {
					t.Fatalf("from %v", from)
				}
			}
		}
		if len(got) != 3 {
			t.Fatalf("mapping %d: read %v", m, got)
		}
		// Answers from each destination reach the client from it.
		ep := flows[0]
		ep.WriteFrom(n.Now, []byte("r1"), ap(far, 53), ep.Client())
		ep.WriteFrom(n.Now, []byte("r2"), ap(far2, 123), ep.Client())
		n.RunFor(50 * time.Millisecond)
		msgs, srcs := udpRecv(u)
		if len(msgs) != 2 || srcs[0] != ap(far, 53) || srcs[1] != ap(far2, 123) {
			t.Fatalf("client got %v from %v", msgs, srcs)
		}
		// Closing a flow forgets it; the next datagram opens a new one.
		for _, ep := range flows {
			ep.Close()
		}
		if f.Flows() != 0 {
			t.Fatal("closed flows still counted")
		}
		u.WriteTo(n.Now, []byte("again"), ap(far, 53))
		n.RunFor(50 * time.Millisecond)
		if f.Next() == nil {
			t.Fatal("no new flow after close")
		}
	}
	// The cap.
	n, a, b := forwarderPair(t, true)
	f, _ := b.Stack.ForwardUDP(stack.UDPPerTuple, 2)
	u, _ := a.Stack.BindUDP(ap(netip.IPv4Unspecified(), 4000))
	for port := uint16(1); port <= 5; port++ {
		u.WriteTo(n.Now, []byte("x"), ap(far, port))
	}
	n.RunFor(50 * time.Millisecond)
	if st := b.Stack.Stats().Fwd; f.Flows() != 2 || st.UDPFlows != 2 || st.UDPRefusedCap != 3 {
		t.Fatalf("cap: %d flows, %+v", f.Flows(), st)
	}
	// A bound socket still wins over the forwarder, for its own address.
	own, _ := b.Stack.BindUDP(ap(ipB, 7))
	u.WriteTo(n.Now, []byte("mine"), ap(ipB, 7))
	n.RunFor(50 * time.Millisecond)
	if msgs, _ := udpRecv(own); len(msgs) != 1 {
		t.Fatalf("bound socket got %v", msgs)
	}
}

// TestForwardEcho: echo requests to foreign addresses are answered by
// the stack from the address pinged, or, with an echo forwarder, queued
// for it (its queue bounded) and answered by SendEchoReply; pings to
// the stack's own address are answered by the stack either way.
func TestForwardEcho(t *testing.T) {
	n, b, r := withRaw(t, stack.Config{})
	b.Stack.SetForwarding(b.NIC, true, true)
	ping := func(dst netip.Addr, seq uint16) {
		r.Send(r.ICMPFrame(b.MAC, ipRaw, dst, wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 77, Seq: seq, Payload: []byte("hello")}))
		n.RunFor(10 * time.Millisecond)
	}
	replies := func() (out []*stacktest.Decoded) {
		for _, fr := range r.Inbox {
			if d := fr.Decode(); d.ICMP != nil && d.ICMP.Type == wire.ICMPv4EchoReply {
				out = append(out, d)
			}
		}
		r.Inbox = nil
		return out
	}
	ping(far, 1)
	if got := replies(); len(got) != 1 || got[0].IP.Src != far || got[0].ICMP.Seq != 1 || !bytes.Equal(got[0].ICMP.Payload, []byte("hello")) {
		t.Fatalf("without a forwarder: %v", got)
	}
	f, _ := b.Stack.ForwardEcho(2)
	for seq := uint16(2); seq <= 4; seq++ {
		ping(far, seq)
	}
	ping(b.Addr, 5)
	got := replies()
	if len(got) != 1 || got[0].IP.Src != b.Addr {
		t.Fatalf("with a forwarder, the stack answered %d (want only the ping to its own address)", len(got))
	}
	req, ok := f.Next()
	if !ok || req.Src != ipRaw || req.Dst != far || req.ID != 77 || req.Seq != 2 || string(req.Data) != "hello" {
		t.Fatalf("request %+v", req)
	}
	if st := b.Stack.Stats().Fwd; st.EchoRequests != 2 || st.EchoQueueDrops != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := b.Stack.SendEchoReply(n.Now, req.Dst, req.Src, req.ID, req.Seq, req.Data); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	if got := replies(); len(got) != 1 || got[0].IP.Src != far || got[0].ICMP.ID != 77 || got[0].ICMP.Seq != 2 {
		t.Fatalf("SendEchoReply: %v", got)
	}
	f.Close()
	ping(far, 6)
	if got := replies(); len(got) != 1 {
		t.Fatal("after Close the stack does not answer again")
	}
}

// TestForwardStackClose: Close drops undecided requests and closes
// flows and forwarders.
func TestForwardStackClose(t *testing.T) {
	n, a, b := forwarderPair(t, true)
	tf, _ := b.Stack.ForwardTCP(0)
	uf, _ := b.Stack.ForwardUDP(stack.UDPPerTuple, 0)
	if _, err := b.Stack.ForwardEcho(0); err != nil {
		t.Fatal(err)
	}
	a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far, 80))
	u, _ := a.Stack.BindUDP(ap(netip.IPv4Unspecified(), 4000))
	u.WriteTo(n.Now, []byte("x"), ap(far, 53))
	n.RunUntil(time.Second, func() bool { return tf.InFlight() == 1 && uf.Flows() == 1 })
	r := tf.Next()
	flow := uf.Next()
	b.Stack.Close()
	if !r.Decided() || tf.InFlight() != 0 || uf.Flows() != 0 || !flow.Readable() {
		t.Fatalf("after Close: decided %v, in flight %d, flows %d", r.Decided(), tf.InFlight(), uf.Flows())
	}
	if _, err := r.Accept(n.Now); !errors.Is(err, stack.ErrInvalid) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if _, err := b.Stack.ForwardTCP(0); !errors.Is(err, stack.ErrClosed) {
		t.Fatalf("ForwardTCP after Close: %v", err)
	}
}

// TestForwardTCPReject6: a TCP forwarder also takes IPv6 SYNs to the
// stack's own addresses that no listener matches, and each way of
// refusing one answers in IPv6 — a RST, or ICMPv6 destination
// unreachable with the code ip6tables' REJECT uses (RFC 4443 §3.1) —
// which the client's connect reports.
func TestForwardTCPReject6(t *testing.T) {
	for _, tc := range []struct {
		how  stack.Reject
		code uint8
		want error
	}{
		{stack.RejectReset, 0, syscall.ECONNREFUSED},
		{stack.RejectPortUnreachable, wire.ICMPv6PortUnreachable, syscall.ECONNREFUSED},
		{stack.RejectHostUnreachable, wire.ICMPv6AddrUnreachable, syscall.EHOSTUNREACH},
		{stack.RejectNetUnreachable, wire.ICMPv6NoRoute, syscall.EHOSTUNREACH},
		{stack.RejectAdminProhibited, wire.ICMPv6AdminProhibited, nil},
	} {
		n, a, b := pair6(t, stack.Config{}, stack.Config{})
		f, _ := b.Stack.ForwardTCP(0)
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ip6B, 80))
		if err != nil {
			t.Fatal(err)
		}
		n.RunUntil(time.Second, func() bool { return f.InFlight() == 1 })
		r := f.Next()
		if r == nil {
			t.Fatalf("reject %d: no request for an IPv6 SYN", tc.how)
		}
		i := len(n.Log)
		if err := r.Reject(n.Now, tc.how); err != nil {
			t.Fatal(err)
		}
		n.RunUntil(5*time.Second, func() bool { return c.State() == tcp.Closed })
		if tc.want != nil && !errors.Is(c.Err(), tc.want) || tc.want == nil && c.Err() == nil {
			t.Errorf("reject %d: client's error %v, want %v", tc.how, c.Err(), tc.want)
		}
		got := frames(n, i, func(f *stacktest.Frame, d *stacktest.Decoded) bool {
			return f.From == b && d.ICMP6 != nil && d.ICMP6.Type == wire.ICMPv6DestUnreachable
		})
		if tc.how == stack.RejectReset && len(got) != 0 || tc.how != stack.RejectReset && (len(got) != 1 || got[0].Decode().ICMP6.Code != tc.code) {
			t.Errorf("reject %d: ICMPv6 errors %v, want one of code %d", tc.how, got, tc.code)
		}
	}
}
