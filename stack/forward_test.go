package stack_test

import (
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

// The forwarder tests run once per address family: client A routes
// everything through forwarder B, whose NIC is promiscuous and may
// spoof, as a tun2socks or slirp-like relay's stack is; far and far2 are
// addresses nobody on the segment holds. Raw node R (ipRaw, ip6Raw)
// plays a client frame by frame.
type fwdFamily struct {
	name       string
	v6         bool
	a, b, raw  netip.Addr
	far, far2  netip.Addr
	any        netip.Addr   // the unspecified address
	everything netip.Prefix // the default route's prefix
	mss        uint16       // A's MSS on a 1500-byte link
	pair       func(testing.TB, stack.Config, stack.Config) (*stacktest.Net, *stacktest.Node, *stacktest.Node)
	withRaw    func(testing.TB, stack.Config) (*stacktest.Net, *stacktest.Node, *stacktest.Node)
	notOurs    string // the counter of packets to an address not ours
}

var fwdFamilies = []fwdFamily{
	{name: "IPv4", a: ipA, b: ipB, raw: ipRaw,
		far: netip.MustParseAddr("198.51.100.7"), far2: netip.MustParseAddr("203.0.113.9"),
		any: netip.IPv4Unspecified(), everything: netip.MustParsePrefix("0.0.0.0/0"), mss: 1460,
		pair: pair, withRaw: withRaw, notOurs: "Net.InAddrErrors"},
	{name: "IPv6", v6: true, a: ip6A, b: ip6B, raw: ip6Raw,
		far: netip.MustParseAddr("2001:db8:ff::7"), far2: netip.MustParseAddr("2001:db8:ee::9"),
		any: netip.IPv6Unspecified(), everything: netip.MustParsePrefix("::/0"), mss: 1440,
		pair: pair6, withRaw: withRaw6, notOurs: "Net.Ip6InAddrErrors"},
}

// forEachFwdFamily runs test once per family.
func forEachFwdFamily(t *testing.T, test func(t *testing.T, fam fwdFamily)) {
	for _, fam := range fwdFamilies {
		t.Run(fam.name, func(t *testing.T) { test(t, fam) })
	}
}

// forwarderPair returns the segment with A routing everything to B, and
// B forwarding (spoofing if spoof).
func (fam fwdFamily) forwarderPair(t *testing.T, spoof bool) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n, a, b := fam.pair(t, stack.Config{}, stack.Config{})
	if err := a.Stack.AddRoute(fam.everything, fam.b, a.NIC); err != nil {
		t.Fatal(err)
	}
	if err := b.Stack.SetForwarding(b.NIC, true, spoof); err != nil {
		t.Fatal(err)
	}
	return n, a, b
}

// withForwarder returns the segment with B forwarding and spoofing, and
// raw node R.
func (fam fwdFamily) withForwarder(t *testing.T) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n, b, r := fam.withRaw(t, stack.Config{})
	if err := b.Stack.SetForwarding(b.NIC, true, true); err != nil {
		t.Fatal(err)
	}
	return n, b, r
}

// echoRequest returns R's echo request to dst (ID 77, "hello") for B.
func (fam fwdFamily) echoRequest(r, b *stacktest.Node, dst netip.Addr, seq uint16) []byte {
	if fam.v6 {
		return r.ICMP6Frame(b.MAC, ip6Raw, dst, 64, wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, ID: 77, Seq: seq, Payload: []byte("hello")})
	}
	return r.ICMPFrame(b.MAC, ipRaw, dst, wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 77, Seq: seq, Payload: []byte("hello")})
}

// echo is an echo reply as either family carries it.
type echo struct {
	src, dst netip.Addr
	id, seq  uint16
	data     string
}

// echoReply returns d's echo reply, if it is one with a good checksum.
func (fam fwdFamily) echoReply(t *testing.T, d *stacktest.Decoded) (echo, bool) {
	t.Helper()
	switch {
	case d.ICMP6 != nil && d.ICMP6.Type == wire.ICMPv6EchoReply:
		if wire.ICMPv6Checksum(d.IPv6.Payload(), d.IP6.Src, d.IP6.Dst) != 0 {
			t.Fatalf("echo reply with a bad checksum: %v", d)
		}
		return echo{d.IP6.Src, d.IP6.Dst, d.ICMP6.ID, d.ICMP6.Seq, string(d.ICMP6.Payload)}, true
	case d.ICMP != nil && d.ICMP.Type == wire.ICMPv4EchoReply:
		if wire.Checksum(d.IPv4.Payload(), 0) != 0 {
			t.Fatalf("echo reply with a bad checksum: %v", d)
		}
		return echo{d.IP.Src, d.IP.Dst, d.ICMP.ID, d.ICMP.Seq, string(d.ICMP.Payload)}, true
	}
	return echo{}, false
}

// srcOf returns the source address of d's IP packet of either family.
func srcOf(d *stacktest.Decoded) netip.Addr {
	switch {
	case d.IP != nil:
		return d.IP.Src
	case d.IP6 != nil:
		return d.IP6.Src
	}
	return netip.Addr{}
}

// unreachableOf reports whether d is a destination unreachable error of
// either family, and its code.
func unreachableOf(d *stacktest.Decoded) (uint8, bool) {
	switch {
	case d.ICMP != nil && d.ICMP.Type == wire.ICMPv4DestUnreachable:
		return d.ICMP.Code, true
	case d.ICMP6 != nil && d.ICMP6.Type == wire.ICMPv6DestUnreachable:
		return d.ICMP6.Code, true
	}
	return 0, false
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
// answers it with the family's MSS, and the connection carries data
// both ways with every TCP segment from the foreign address.
func TestForwardTCPAcceptAfterDecision(t *testing.T) {
	forEachFwdFamily(t, func(t *testing.T, fam fwdFamily) {
		n, a, b := fam.forwarderPair(t, true)
		f, err := b.Stack.ForwardTCP(0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Stack.ForwardTCP(0); !errors.Is(err, stack.ErrForwarderSet) {
			t.Fatalf("second ForwardTCP: %v, want ErrForwarderSet", err)
		}
		dst := ap(fam.far, 443)
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
		if r.LocalAddr() != dst || r.RemoteAddr() != c.LocalAddr() || c.LocalAddr().Addr() != fam.a {
			t.Fatalf("request %v → %v, want %v → %v", r.RemoteAddr(), r.LocalAddr(), c.LocalAddr(), dst)
		}
		syn := r.SYN()
		if syn.Options.MSS != fam.mss || !syn.Options.SACKPermitted || !syn.Options.HasTimestamp || !syn.Options.HasWScale {
			t.Fatalf("SYN options %+v: want the client's MSS %d, SACK, timestamps, window scale", syn.Options, fam.mss)
		}
		st := b.Stack.Stats().Fwd
		if st.TCPRequests != 1 || st.TCPSynRetrans < 1 || st.InForeign < 2 || f.InFlight() != 1 {
			t.Fatalf("stats %+v, in flight %d: want 1 request, its retransmissions, foreign packets counted", st, f.InFlight())
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
		var segs int
		for _, fr := range frames(n, i, from(b)) {
			d := fr.Decode()
			if d.TCP == nil {
				continue // ARP, neighbour discovery from B's own address
			}
			segs++
			if srcOf(d) != fam.far {
				t.Fatalf("B sent TCP not from %v: %v", fam.far, fr)
			}
			if d.TCP.Flags&wire.TCPFlagSYN != 0 && d.TCP.Options.MSS != fam.mss {
				t.Fatalf("SYN-ACK's MSS %d, want %d", d.TCP.Options.MSS, fam.mss)
			}
		}
		if segs == 0 {
			t.Fatal("B sent no TCP")
		}
	})
}

// TestForwardTCPReject: a request to a foreign address refused each way
// reaches the client's connect as the kernel reports it: a RST from the
// foreign address, or a destination unreachable error with the code
// iptables' and ip6tables' REJECT use (RFC 792, RFC 4443 §3.1).
func TestForwardTCPReject(t *testing.T) {
	forEachFwdFamily(t, func(t *testing.T, fam fwdFamily) {
		for _, tc := range []struct {
			how          stack.Reject
			code4, code6 uint8
			want         error
		}{
			{stack.RejectReset, 0, 0, syscall.ECONNREFUSED},
			{stack.RejectPortUnreachable, wire.ICMPv4PortUnreachable, wire.ICMPv6PortUnreachable, syscall.ECONNREFUSED},
			{stack.RejectHostUnreachable, wire.ICMPv4HostUnreachable, wire.ICMPv6AddrUnreachable, syscall.EHOSTUNREACH},
			{stack.RejectNetUnreachable, wire.ICMPv4NetUnreachable, wire.ICMPv6NoRoute, syscall.EHOSTUNREACH},
		} {
			n, a, b := fam.forwarderPair(t, true)
			f, _ := b.Stack.ForwardTCP(0)
			c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(fam.far, 80))
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
			var codes []uint8
			errs := decoded(frames(n, i, from(b)), func(d *stacktest.Decoded) bool {
				code, ok := unreachableOf(d)
				if ok {
					codes = append(codes, code)
				}
				return ok
			})
			rsts := decoded(frames(n, i, from(b)), func(d *stacktest.Decoded) bool { return d.IsTCP(wire.TCPFlagRST | wire.TCPFlagACK) })
			code := tc.code4
			if fam.v6 {
				code = tc.code6
			}
			if tc.how == stack.RejectReset {
				if len(errs) != 0 || len(rsts) != 1 || srcOf(rsts[0]) != fam.far {
					t.Errorf("reset: %d ICMP errors, RSTs %v: want one RST from %v", len(errs), rsts, fam.far)
				}
			} else if len(codes) != 1 || codes[0] != code {
				t.Errorf("reject %d: unreachable codes %v, want one of code %d", tc.how, codes, code)
			}
			if st := b.Stack.Stats().Fwd; st.TCPRejected != 1 || f.InFlight() != 0 {
				t.Errorf("reject %d: stats %+v", tc.how, st)
			}
		}
	})
}

// TestForwardTCPDrop: a dropped request sends nothing, and the client's
// next SYN makes a new request.
func TestForwardTCPDrop(t *testing.T) {
	forEachFwdFamily(t, func(t *testing.T, fam fwdFamily) {
		n, a, b := fam.forwarderPair(t, true)
		f, _ := b.Stack.ForwardTCP(0)
		if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(fam.far, 80)); err != nil {
			t.Fatal(err)
		}
		n.RunUntil(time.Second, func() bool { return f.InFlight() == 1 })
		i := len(n.Log)
		if err := f.Next().Drop(); err != nil {
			t.Fatal(err)
		}
		n.RunUntil(5*time.Second, func() bool { return f.InFlight() == 1 })
		if got := decoded(frames(n, i, from(b)), func(d *stacktest.Decoded) bool {
			return d.TCP != nil || d.ICMP != nil || d.ICMP6 != nil && d.NDP == nil
		}); len(got) != 0 {
			t.Fatalf("B answered a dropped request: %v", got)
		}
		if r := f.Next(); r == nil || b.Stack.Stats().Fwd.TCPRequests != 2 {
			t.Fatalf("the retransmitted SYN made no new request: %+v", b.Stack.Stats().Fwd)
		}
	})
}

// TestForwardTCPCap: with maxInFlight undecided requests, further SYNs
// (a flood from many sources) are dropped unanswered and counted; a
// decision makes room again.
func TestForwardTCPCap(t *testing.T) {
	forEachFwdFamily(t, func(t *testing.T, fam fwdFamily) {
		n, b, r := fam.withForwarder(t)
		f, _ := b.Stack.ForwardTCP(3)
		syn := func(port uint16) {
			r.Send(r.TCPFrame(b.MAC, ap(fam.raw, port), ap(fam.far, 80), wire.TCPFields{Seq: 1000, Flags: wire.TCPFlagSYN, Window: 65535}))
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
	})
}

// TestForwardForeignDemux: packets to foreign addresses reach only
// sockets bound to exactly that address — a wildcard listener means the
// stack's own addresses — and, without a forwarder, a foreign SYN gets
// a RST from the foreign address; without promiscuity it is dropped as
// not ours. Over IPv6, link-local destinations that are not ours and
// our own tentative addresses are never taken as foreign.
func TestForwardForeignDemux(t *testing.T) {
	forEachFwdFamily(t, func(t *testing.T, fam fwdFamily) {
		n, a, b := fam.forwarderPair(t, true)
		l, err := b.Stack.Listen(ap(fam.any, 80), 0)
		if err != nil {
			t.Fatal(err)
		}
		// No forwarder: the foreign SYN is refused with a RST from the
		// foreign address, the wildcard listener untouched.
		c, _ := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(fam.far, 80))
		n.RunUntil(5*time.Second, func() bool { return c.State() == tcp.Closed })
		if !errors.Is(c.Err(), syscall.ECONNREFUSED) || l.Pending() != 0 {
			t.Fatalf("foreign SYN without forwarder: %v, pending %d", c.Err(), l.Pending())
		}
		// A listener bound to exactly the foreign address (spoofing
		// allows it) takes it.
		if _, err := b.Stack.Listen(ap(fam.far, 80), 0); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Listen on far:80 beside the wildcard: %v, want EADDRINUSE as in Linux", err)
		}
		lf, err := b.Stack.Listen(ap(fam.far, 8080), 0)
		if err != nil {
			t.Fatalf("Listen on a foreign address with spoofing: %v", err)
		}
		c1, s1 := connectTo(t, n, a, lf, ap(fam.far, 8080))
		transfer(t, n, c1, s1, payload(3, 10000), 10*time.Second)
		// The forwarder takes what matches no listener — foreign or own.
		f, _ := b.Stack.ForwardTCP(0)
		c81, _ := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(fam.far, 81))
		c82, _ := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(fam.b, 82))
		n.RunUntil(time.Second, func() bool { return f.InFlight() == 2 })
		if f.InFlight() != 2 {
			t.Fatalf("forwarder took %d requests, want the foreign one and the own one", f.InFlight())
		}
		// Refused, so that no retransmission counts below.
		for r := f.Next(); r != nil; r = f.Next() {
			r.Reject(n.Now, stack.RejectReset)
		}
		n.RunUntil(time.Second, func() bool { return c81.State() == tcp.Closed && c82.State() == tcp.Closed })
		if fam.v6 {
			notForeign6(t, n, a, b, f)
		}
		// Not promiscuous: foreign packets are dropped as not ours.
		b.Stack.SetForwarding(b.NIC, false, true)
		before := b.Stack.Stats()
		a.Stack.Connect(n.Now, netip.AddrPort{}, ap(fam.far, 83))
		n.RunFor(100 * time.Millisecond)
		if d := diff(before, b.Stack.Stats()); d[fam.notOurs] != 1 || d["Fwd.InForeign"] != 0 || f.InFlight() != 0 {
			t.Fatalf("not promiscuous: %v", d)
		}
	})
}

// notForeign6 checks that a promiscuous NIC does not take as foreign a
// link-local destination that is not B's (RFC 4291 §2.5.6) nor an
// address of B's still tentative (discarded, RFC 4862 §5.4).
func notForeign6(t *testing.T, n *stacktest.Net, a, b *stacktest.Node, f *stack.TCPForwarder) {
	t.Helper()
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
}

// TestForwardSpoofingNeeded: without Spoofing, nothing leaves from a
// foreign address: Accept, WriteFrom, SendEchoReply, Connect, Listen and
// BindUDP refuse with EADDRNOTAVAIL; an echo reply across families is
// invalid.
func TestForwardSpoofingNeeded(t *testing.T) {
	forEachFwdFamily(t, func(t *testing.T, fam fwdFamily) {
		n, a, b := fam.forwarderPair(t, false)
		f, _ := b.Stack.ForwardTCP(0)
		a.Stack.Connect(n.Now, netip.AddrPort{}, ap(fam.far, 80))
		n.RunUntil(time.Second, func() bool { return f.InFlight() == 1 })
		if _, err := f.Next().Accept(n.Now); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("Accept without spoofing: %v", err)
		}
		if err := b.Stack.SendEchoReply(n.Now, fam.far, fam.a, 1, 1, nil); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("SendEchoReply without spoofing: %v", err)
		}
		other := ipB
		if !fam.v6 {
			other = ip6B
		}
		if err := b.Stack.SendEchoReply(n.Now, other, fam.a, 1, 1, nil); !errors.Is(err, stack.ErrInvalid) {
			t.Fatalf("SendEchoReply across families: %v, want ErrInvalid", err)
		}
		if _, err := b.Stack.Connect(n.Now, ap(fam.far, 5), ap(fam.a, 80)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("Connect from a foreign address: %v", err)
		}
		if _, err := b.Stack.Listen(ap(fam.far, 5), 0); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("Listen: %v", err)
		}
		if _, err := b.Stack.BindUDP(ap(fam.far, 5)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("BindUDP: %v", err)
		}
		u, _ := b.Stack.BindUDP(ap(fam.any, 5))
		if _, err := u.WriteFrom(n.Now, []byte("x"), ap(fam.far, 53), ap(fam.a, 9)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("WriteFrom: %v", err)
		}
		if _, err := u.WriteFrom(n.Now, []byte("x"), ap(fam.b, 53), ap(fam.a, 9)); err != nil {
			t.Fatalf("WriteFrom an own address: %v", err)
		}
	})
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
// destination. The cap refuses flows beyond it, counted; a bound socket
// still wins over the forwarder for its own address.
func TestForwardUDPMappings(t *testing.T) {
	forEachFwdFamily(t, func(t *testing.T, fam fwdFamily) {
		for _, m := range []stack.UDPMapping{stack.UDPEndpointIndependent, stack.UDPPerTuple} {
			n, a, b := fam.forwarderPair(t, true)
			f, err := b.Stack.ForwardUDP(m, 0)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := a.Stack.BindUDP(ap(fam.any, 4000))
			u.WriteTo(n.Now, []byte("one"), ap(fam.far, 53))
			u.WriteTo(n.Now, []byte("two"), ap(fam.far2, 123))
			u.WriteTo(n.Now, []byte("three"), ap(fam.far, 53))
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
				if ep.Client() != ap(fam.a, 4000) {
					t.Fatalf("flow's client %v", ep.Client())
				}
				for {
					k, from, to, err := ep.ReadFromTo(buf)
					if err != nil {
						break
					}
					got = append(got, string(buf[:k])+"→"+to.String())
					if from != ap(fam.a, 4000) {
						t.Fatalf("from %v", from)
					}
				}
			}
			if len(got) != 3 {
				t.Fatalf("mapping %d: read %v", m, got)
			}
			// Answers from each destination reach the client from it.
			ep := flows[0]
			if _, err := ep.WriteFrom(n.Now, []byte("r1"), ap(fam.far, 53), ep.Client()); err != nil {
				t.Fatal(err)
			}
			if _, err := ep.WriteFrom(n.Now, []byte("r2"), ap(fam.far2, 123), ep.Client()); err != nil {
				t.Fatal(err)
			}
			n.RunFor(50 * time.Millisecond)
			msgs, srcs := udpRecv(u)
			if len(msgs) != 2 || srcs[0] != ap(fam.far, 53) || srcs[1] != ap(fam.far2, 123) {
				t.Fatalf("client got %v from %v", msgs, srcs)
			}
			// Closing a flow forgets it; the next datagram opens a new one.
			for _, ep := range flows {
				ep.Close()
			}
			if f.Flows() != 0 {
				t.Fatal("closed flows still counted")
			}
			u.WriteTo(n.Now, []byte("again"), ap(fam.far, 53))
			n.RunFor(50 * time.Millisecond)
			if f.Next() == nil {
				t.Fatal("no new flow after close")
			}
		}
		// The cap.
		n, a, b := fam.forwarderPair(t, true)
		f, _ := b.Stack.ForwardUDP(stack.UDPPerTuple, 2)
		u, _ := a.Stack.BindUDP(ap(fam.any, 4000))
		for port := uint16(1); port <= 5; port++ {
			u.WriteTo(n.Now, []byte("x"), ap(fam.far, port))
		}
		n.RunFor(50 * time.Millisecond)
		if st := b.Stack.Stats().Fwd; f.Flows() != 2 || st.UDPFlows != 2 || st.UDPRefusedCap != 3 {
			t.Fatalf("cap: %d flows, %+v", f.Flows(), st)
		}
		// A bound socket still wins over the forwarder, for its own address.
		own, _ := b.Stack.BindUDP(ap(fam.b, 7))
		u.WriteTo(n.Now, []byte("mine"), ap(fam.b, 7))
		n.RunFor(50 * time.Millisecond)
		if msgs, _ := udpRecv(own); len(msgs) != 1 {
			t.Fatalf("bound socket got %v", msgs)
		}
	})
}

// TestForwardEcho: echo requests to foreign addresses are answered by
// the stack from the address pinged, or, with an echo forwarder, queued
// for it (its queue bounded) and answered by SendEchoReply with a valid
// checksum; pings to the stack's own address are answered by the stack
// either way.
func TestForwardEcho(t *testing.T) {
	forEachFwdFamily(t, func(t *testing.T, fam fwdFamily) {
		n, b, r := fam.withForwarder(t)
		ping := func(dst netip.Addr, seq uint16) {
			r.Send(fam.echoRequest(r, b, dst, seq))
			n.RunFor(10 * time.Millisecond)
		}
		replies := func() (out []echo) {
			for _, fr := range r.Take() {
				if e, ok := fam.echoReply(t, fr.Decode()); ok {
					out = append(out, e)
				}
			}
			return out
		}
		ping(fam.far, 1)
		if got := replies(); len(got) != 1 || got[0].src != fam.far || got[0].seq != 1 || got[0].data != "hello" {
			t.Fatalf("without a forwarder: %v", got)
		}
		f, _ := b.Stack.ForwardEcho(2)
		for seq := uint16(2); seq <= 4; seq++ {
			ping(fam.far, seq)
		}
		ping(b.Addr, 5)
		got := replies()
		if len(got) != 1 || got[0].src != b.Addr {
			t.Fatalf("with a forwarder, the stack answered %d (want only the ping to its own address)", len(got))
		}
		req, ok := f.Next()
		if !ok || req.Src != fam.raw || req.Dst != fam.far || req.ID != 77 || req.Seq != 2 || req.TTL != 64 || string(req.Data) != "hello" {
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
		if got := replies(); len(got) != 1 || got[0] != (echo{fam.far, fam.raw, 77, 2, "hello"}) {
			t.Fatalf("SendEchoReply: %v", got)
		}
		if d := diff(before, b.Stack.Stats()); d["Fwd.EchoReplies"] != 1 || d["Net.OutEchoReps"]+d["Net.Icmp6OutEchoReplies"] != 1 {
			t.Fatalf("SendEchoReply's counters: %v", d)
		}
		f.Close()
		ping(fam.far, 6)
		if got := replies(); len(got) != 1 {
			t.Fatal("after Close the stack does not answer again")
		}
	})
}

// TestForwardStackClose: Close drops undecided requests and closes
// flows and forwarders.
func TestForwardStackClose(t *testing.T) {
	forEachFwdFamily(t, func(t *testing.T, fam fwdFamily) {
		n, a, b := fam.forwarderPair(t, true)
		tf, _ := b.Stack.ForwardTCP(0)
		uf, _ := b.Stack.ForwardUDP(stack.UDPPerTuple, 0)
		if _, err := b.Stack.ForwardEcho(0); err != nil {
			t.Fatal(err)
		}
		a.Stack.Connect(n.Now, netip.AddrPort{}, ap(fam.far, 80))
		u, _ := a.Stack.BindUDP(ap(fam.any, 4000))
		u.WriteTo(n.Now, []byte("x"), ap(fam.far, 53))
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
	})
}

// TestForwardNoProxyNDP: a promiscuous NIC answers neighbour
// solicitations for foreign IPv6 addresses no more than ARP requests
// for foreign IPv4 ones: it stands for hosts behind it (a TUN has no
// neighbours), not on its link, and a proxy would capture the segment.
func TestForwardNoProxyNDP(t *testing.T) {
	n, b, r := withRaw6(t, stack.Config{})
	b.Stack.SetForwarding(b.NIC, true, true)
	i := len(n.Log)
	// A multicast solicitation to fwdFamilies[1].far's solicited-node group, and a
	// unicast one (a NUD probe) to fwdFamilies[1].far itself.
	ns := wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: fwdFamilies[1].far}
	o := wire.NDPOptions{HasSourceLinkAddr: true, SourceLinkAddr: r.MAC}
	sn := netip.MustParseAddr("ff02::1:ff00:7")
	r.Send(ndpFrame(r, multicastMAC(sn), ip6Raw, sn, ns, o))
	r.Send(ndpFrame(r, b.MAC, ip6Raw, fwdFamilies[1].far, ns, o))
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
