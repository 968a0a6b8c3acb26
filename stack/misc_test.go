package stack_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// TestConnectICMPErrors: RFC 1122 §4.2.3.9: ICMP destination unreachable
// while connecting ends the connect, as Linux does (tcp_v4_err): port and
// protocol unreachable with ECONNREFUSED, host unreachable with
// EHOSTUNREACH. For an established connection they are soft errors and
// change nothing; fragmentation needed is not an error at all.
func TestConnectICMPErrors(t *testing.T) {
	for _, tc := range []struct {
		code uint8
		want syscall.Errno
	}{
		{wire.ICMPv4PortUnreachable, syscall.ECONNREFUSED},
		{wire.ICMPv4ProtoUnreachable, syscall.ECONNREFUSED},
		{wire.ICMPv4HostUnreachable, syscall.EHOSTUNREACH},
		{wire.ICMPv4NetUnreachable, syscall.EHOSTUNREACH},
		{wire.ICMPv4AdminProhibited, syscall.EHOSTUNREACH},
		{wire.ICMPv4FragmentationNeeded, 0},
	} {
		n, a, r := withRaw(t, stack.Config{})
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipRaw, 80))
		if err != nil {
			t.Fatal(err)
		}
		n.RunFor(10 * time.Millisecond)
		in := r.Take()
		if len(in) != 1 || !decodeOne(t, in[0]).IsTCP(wire.TCPFlagSYN) {
			t.Fatalf("code %d: R got %v, want the SYN", tc.code, in)
		}
		syn := decodeOne(t, in[0]).IPv4
		r.Send(r.ICMPFrame(a.MAC, ipRaw, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: tc.code, MTU: 576, Payload: syn[:28]}))
		n.RunFor(10 * time.Millisecond)
		if tc.want == 0 {
			if c.State() != tcp.SynSent {
				t.Errorf("code %d: %v, %v; want still SYN-SENT", tc.code, c.State(), c.Err())
			}
			continue
		}
		if c.State() != tcp.Closed || !errors.Is(c.Err(), tc.want) {
			t.Errorf("code %d: %v, %v; want CLOSED, %v", tc.code, c.State(), c.Err(), tc.want)
		}
	}
	// Established: a port unreachable is a soft error.
	n, a, b := knownPair(t, stack.Config{})
	c, s, _ := connect(t, n, a, b, 80)
	var seg wire.IPv4
	for _, f := range frames(n, 0, from(a)) {
		seg = decodeOne(t, f).IPv4
	}
	b.Send(b.ICMPFrame(a.MAC, ipB, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4PortUnreachable, Payload: seg[:28]}))
	n.RunFor(10 * time.Millisecond)
	if c.State() != tcp.Established {
		t.Fatalf("established connection after port unreachable: %v %v", c.State(), c.Err())
	}
	transfer(t, n, c, s, []byte("still here"), time.Second)
}

// TestConnectErrors: connect fails at once, with the kernel's errno,
// where Linux's does: no route (ENETUNREACH), a broadcast or multicast
// destination (ENETUNREACH, tcp_v4_connect), a source address that is
// not ours (EADDRNOTAVAIL), port 0 (EINVAL, as Linux's EADDRNOTAVAIL is
// not meaningful here); and a connect to our own address with no
// listener is refused.
func TestConnectErrors(t *testing.T) {
	n, a, _ := pair(t, stack.Config{}, stack.Config{})
	for _, tc := range []struct {
		laddr, raddr netip.AddrPort
		want         syscall.Errno
	}{
		{netip.AddrPort{}, ap(netip.MustParseAddr("192.0.2.1"), 80), syscall.ENETUNREACH},
		{netip.AddrPort{}, ap(bcast, 80), syscall.ENETUNREACH},
		{netip.AddrPort{}, ap(netip.MustParseAddr("255.255.255.255"), 80), syscall.ENETUNREACH},
		{netip.AddrPort{}, ap(netip.MustParseAddr("224.0.0.1"), 80), syscall.ENETUNREACH},
		{ap(netip.MustParseAddr("10.0.0.50"), 0), ap(ipB, 80), syscall.EADDRNOTAVAIL},
		{netip.AddrPort{}, ap(ipB, 0), syscall.EINVAL},
	} {
		if c, err := a.Stack.Connect(n.Now, tc.laddr, tc.raddr); !errors.Is(err, tc.want) {
			t.Errorf("Connect(%v, %v) = %v, %v; want %v", tc.laddr, tc.raddr, c, err, tc.want)
		}
	}
	n.RunFor(time.Second)
	if len(n.Log) != 0 {
		t.Errorf("failed connects sent %v", n.Log[0])
	}
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipA, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(time.Millisecond)
	if !errors.Is(c.Err(), syscall.ECONNREFUSED) {
		t.Errorf("connect to ourselves without a listener: %v, want ECONNREFUSED", c.Err())
	}
}

// TestGateway: a destination off the link is reached through the route's
// gateway: ARP resolves the gateway (RFC 1122 §3.3.1.2), frames go to its
// MAC with the final destination in the IP header; if the gateway does
// not answer ARP, the connect fails with EHOSTUNREACH.
func TestGateway(t *testing.T) {
	n, a, r := bare(t)
	gw := ipRaw
	far := netip.MustParseAddr("192.0.2.1")
	if err := a.Stack.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), gw, a.NIC); err != nil {
		t.Fatal(err)
	}
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(far, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	in := r.Take()
	if len(in) != 1 || decodeOne(t, in[0]).ARP == nil || decodeOne(t, in[0]).ARP.TargetIP != gw {
		t.Fatalf("R got %v, want an ARP request for the gateway", in)
	}
	r.Send(stacktest.Ether(a.MAC, r.MAC, 0, wire.EtherTypeARP, stacktest.ARP(wire.ARPReply, r.MAC, gw, a.MAC, ipA)))
	n.RunFor(10 * time.Millisecond)
	in = r.Take()
	if len(in) != 1 {
		t.Fatalf("R got %d frames, want the SYN", len(in))
	}
	if d := decodeOne(t, in[0]); !d.IsTCP(wire.TCPFlagSYN) || d.Eth.Dst != r.MAC || d.IP.Dst != far || d.IP.Src != ipA {
		t.Errorf("SYN %v, want to the gateway's MAC for %v", d, far)
	}
	// A second destination behind a gateway that does not answer.
	if err := a.Stack.AddRoute(netip.MustParsePrefix("198.51.100.0/24"), netip.MustParseAddr("10.0.0.254"), a.NIC); err != nil {
		t.Fatal(err)
	}
	c2, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(netip.MustParseAddr("198.51.100.1"), 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunUntil(10*time.Second, func() bool { return c2.State() == tcp.Closed })
	if !errors.Is(c2.Err(), syscall.EHOSTUNREACH) {
		t.Errorf("connect through a dead gateway: %v, want EHOSTUNREACH", c2.Err())
	}
	if c.State() != tcp.SynSent {
		t.Errorf("the other connect: %v", c.State())
	}
}

// TestUDPBroadcast: a datagram to the subnet's broadcast address goes to
// the broadcast MAC without ARP and reaches sockets bound to the wildcard
// (RFC 1122 §3.3.6, §4.1.3.5).
func TestUDPBroadcast(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	ua, err := a.Stack.BindUDP(ap(ipA, 7))
	if err != nil {
		t.Fatal(err)
	}
	ub, err := b.Stack.BindUDP(ap(netip.IPv4Unspecified(), 7))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := ua.WriteTo(n.Now, []byte("all"), ap(bcast, 7)); err != nil {
			t.Fatal(err)
		}
	}
	n.RunFor(10 * time.Millisecond)
	if got := recvAll(ub); len(got) != 2 {
		t.Errorf("B got %d datagrams, want 2", len(got))
	}
	for _, f := range n.Log {
		if d := decodeOne(t, f); d.ARP != nil || d.Eth.Dst != wire.BroadcastMAC {
			t.Errorf("frame %v, want broadcast datagrams only", f)
		}
	}
}

// TestUDPReceiveBuffer: datagrams beyond a socket's receive buffer are
// dropped and counted (Linux UDP RcvbufErrors and InErrors); reading
// makes room again.
func TestUDPReceiveBuffer(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{UDPRecvBuffer: 3000})
	ua, ub := udpPair(t, a, b)
	for range 4 {
		if _, err := ua.WriteTo(n.Now, make([]byte, 1000), ap(ipB, 7)); err != nil {
			t.Fatal(err)
		}
	}
	n.RunFor(10 * time.Millisecond)
	if got := len(recvAll(ub)); got != 3 {
		t.Errorf("%d datagrams queued, want 3", got)
	}
	if st := b.Stack.Stats().UDP; st.RcvbufErrors != 1 || st.InErrors != 1 || st.InDatagrams != 3 {
		t.Errorf("UDP counters %+v", st)
	}
	if _, err := ua.WriteTo(n.Now, make([]byte, 1000), ap(ipB, 7)); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	if got := len(recvAll(ub)); got != 1 {
		t.Errorf("after reading: %d datagrams, want 1", got)
	}
}

// TestStackClose: Close resets every connection (the peers see
// ECONNRESET), closes listeners and UDP sockets, and refuses new sockets
// with EBADF; the RSTs can still be polled.
func TestStackClose(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	c1, s1, l := connect(t, n, a, b, 80)
	c2, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunUntil(time.Second, func() bool { return l.Pending() == 1 })
	u, err := b.Stack.BindUDP(ap(ipB, 7))
	if err != nil {
		t.Fatal(err)
	}
	b.Stack.Close()
	n.RunFor(10 * time.Millisecond)
	for i, c := range []*stack.TCPConn{c1, c2} {
		if !errors.Is(c.Err(), syscall.ECONNRESET) {
			t.Errorf("client %d: %v %v, want ECONNRESET", i, c.State(), c.Err())
		}
	}
	if s1.State() != tcp.Closed || !l.Closed() {
		t.Errorf("server side: conn %v, listener closed %v", s1.State(), l.Closed())
	}
	if _, _, err := u.ReadFrom(make([]byte, 10)); !errors.Is(err, syscall.EBADF) {
		t.Errorf("UDP read after Close: %v", err)
	}
	if _, err := b.Stack.Listen(ap(ipB, 81), 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Listen after Close: %v", err)
	}
	if _, err := b.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipA, 80)); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Connect after Close: %v", err)
	}
	if len(b.Stack.Conns()) != 0 {
		t.Errorf("connections left: %+v", b.Stack.Conns())
	}
}

// TestTUN: NICs of medium IP (TUN devices) carry bare IP packets, with no
// link header and no ARP; two stacks on such a link connect and transfer.
func TestTUN(t *testing.T) {
	n := stacktest.New(t)
	a := n.AddStack("A", stack.New(stack.Config{Seed: 1}), stack.NICConfig{Medium: link.IP, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	b := n.AddStack("B", stack.New(stack.Config{Seed: 2}), stack.NICConfig{Medium: link.IP, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	c, s, _ := connect(t, n, a, b, 80)
	transfer(t, n, c, s, payload(1, 100000), time.Minute)
	transfer(t, n, s, c, payload(2, 100000), time.Minute)
	for _, f := range n.Log {
		ip, err := wire.ParseIPv4(f.Data)
		if err != nil || len(f.Data) > 1500 {
			t.Fatalf("frame is not a bare IP packet within the MTU: %x", f.Data[:20])
		}
		_ = ip
	}
	if st := a.Stack.Stats().Net; st.ARPOutRequests != 0 {
		t.Errorf("ARP on a TUN link")
	}
	// A frame that is not IPv4 is counted and dropped.
	before := a.Stack.Stats().Link.RxUnknownEtherType
	a.Inject([]byte{0x60, 0, 0, 0})
	if a.Stack.Stats().Link.RxUnknownEtherType != before+1 {
		t.Error("IPv6 on a TUN link not counted")
	}
}

// TestTwoNICs: a stack with two NICs on one segment answers ARP for each
// address only on its own NIC (arp_ignore=1 behaviour, see nicHas), and
// connections to either address work.
func TestTwoNICs(t *testing.T) {
	n := stacktest.New(t)
	a := n.AddHost("A", stack.Config{Seed: 1}, "10.0.0.1/24")
	bst := stack.New(stack.Config{Seed: 2})
	b1 := n.AddStack("B1", bst, stack.NICConfig{MAC: stacktest.MAC(2), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	b2 := n.AddStack("B2", bst, stack.NICConfig{MAC: stacktest.MAC(3), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.3/24")}})
	l, err := bst.Listen(ap(netip.IPv4Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []netip.Addr{b1.Addr, b2.Addr} {
		c, s := connectTo(t, n, a, l, ap(dst, 80))
		transfer(t, n, c, s, payload(1, 50000), time.Minute)
		transfer(t, n, s, c, payload(2, 50000), time.Minute)
	}
	replies := map[netip.Addr]*stacktest.Node{}
	for _, f := range n.Log {
		if d := decodeOne(t, f); d.ARP != nil && d.ARP.Op == wire.ARPReply {
			if prev, ok := replies[d.ARP.SenderIP]; ok && prev != f.From {
				t.Errorf("%v answered from two NICs", d.ARP.SenderIP)
			}
			replies[d.ARP.SenderIP] = f.From
			if d.ARP.SenderMAC != f.From.MAC {
				t.Errorf("ARP reply %v from %s", d.ARP, f.From.Name)
			}
		}
	}
	if replies[b1.Addr] != b1 || replies[b2.Addr] != b2 {
		t.Errorf("ARP replies: %v", replies)
	}
}

// TestUDPInput: RFC 768: a zero checksum means none was sent and the
// datagram is taken; a bad checksum, or a length field beyond the IP
// payload or below 8, is an error (Linux UdpInCsumErrors, UdpInErrors);
// bytes after the UDP length are not data.
func TestUDPInput(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	u, err := a.Stack.BindUDP(ap(netip.IPv4Unspecified(), 7))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(mut func(d []byte) []byte) []byte {
		d := mut(stacktest.UDPDgram(ap(ipRaw, 1000), ap(ipA, 7), []byte("data")))
		return r.IPFrame(a.MAC, stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoUDP), d))
	}
	a.Inject(mk(func(d []byte) []byte { d[6], d[7] = 0, 0; return d }))
	a.Inject(mk(func(d []byte) []byte { return append(d, "trailer"...) }))
	var buf [100]byte
	for i := range 2 {
		if k, _, err := u.ReadFrom(buf[:]); err != nil || string(buf[:k]) != "data" {
			t.Errorf("datagram %d: %q %v", i, buf[:k], err)
		}
	}
	expectDrop(t, n, a, mk(func(d []byte) []byte { d[8] ^= 1; return d }), map[string]int64{"Net.InDelivers": 1, "UDP.InErrors": 1, "UDP.InCsumErrors": 1})
	expectDrop(t, n, a, mk(func(d []byte) []byte { d[5] = 20; return d }), map[string]int64{"Net.InDelivers": 1, "UDP.InErrors": 1})
	expectDrop(t, n, a, mk(func(d []byte) []byte { d[5] = 4; return d }), map[string]int64{"Net.InDelivers": 1, "UDP.InErrors": 1})
}

// TestSelfConnect: a connection from an address and port to the same
// address and port is a simultaneous open with itself (RFC 9293 §3.5,
// figure 8, both SYNs being the same one); Linux allows it, and it
// carries data to itself.
func TestSelfConnect(t *testing.T) {
	n, a, _ := pair(t, stack.Config{}, stack.Config{})
	c, err := a.Stack.Connect(n.Now, ap(ipA, 5000), ap(ipA, 5000))
	if err != nil {
		t.Fatal(err)
	}
	n.RunUntil(time.Second, func() bool { return c.State() == tcp.Established })
	if _, err := c.Write([]byte("echo")); err != nil {
		t.Fatal(err)
	}
	n.RunFor(100 * time.Millisecond)
	if got, err := readAll(c); string(got) != "echo" || err != nil {
		t.Errorf("read %q %v", got, err)
	}
	c.Close()
	n.RunUntil(5*time.Minute, func() bool { return len(a.Stack.Conns()) == 0 })
}

// TestARPProbe: RFC 5227 §2.1.1: an ARP probe (sender address 0.0.0.0)
// for our address is answered, so the prober sees the conflict, and
// teaches nothing.
func TestARPProbe(t *testing.T) {
	n, a, r := bare(t)
	r.Send(stacktest.Ether(wire.BroadcastMAC, r.MAC, 0, wire.EtherTypeARP, stacktest.ARP(wire.ARPRequest, r.MAC, netip.IPv4Unspecified(), wire.MAC{}, ipA)))
	n.RunFor(10 * time.Millisecond)
	in := r.Take()
	if len(in) != 1 || decodeOne(t, in[0]).ARP == nil || decodeOne(t, in[0]).ARP.Op != wire.ARPReply || decodeOne(t, in[0]).ARP.SenderMAC != a.MAC {
		t.Fatalf("answers %v, want one reply", in)
	}
	if len(a.Stack.Neighbors()) != 0 {
		t.Errorf("probe learnt: %+v", a.Stack.Neighbors())
	}
}
