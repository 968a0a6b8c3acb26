package stack_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// TestAddNICErrors: a NIC needs an MTU an IPv4 link can have (RFC 791
// §3.2: at least 68), or for IPv6 one of at least 1280 (RFC 8200 §5),
// and, on Ethernet, a unicast MAC; addresses are IPv4 or IPv6 (not
// IPv4-mapped) and unique per NIC.
func TestAddNICErrors(t *testing.T) {
	st := stack.New(stack.Config{})
	for _, cfg := range []stack.NICConfig{
		{MAC: stacktest.MAC(1), MTU: 67},
		{MAC: stacktest.MAC(1), MTU: 65536},
		{},
		{MAC: wire.BroadcastMAC},
		{MAC: stacktest.MAC(1), MTU: 1279, Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}},
		{MAC: stacktest.MAC(1), MTU: 1279, IPv6: true},
		{MAC: stacktest.MAC(1), Addrs: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.1/120")}},
		{MAC: stacktest.MAC(1), Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64"), netip.MustParsePrefix("2001:db8::1/64")}},
	} {
		if _, err := st.AddNIC(cfg); err == nil {
			t.Errorf("AddNIC(%+v) succeeded", cfg)
		}
	}
	id, err := st.AddNIC(stack.NICConfig{Medium: link.IP, MTU: 9000})
	if err != nil {
		t.Fatal(err)
	}
	if st.MaxFrameLen() != 9000 {
		t.Errorf("MaxFrameLen %d, want 9000 (the largest MTU plus link header)", st.MaxFrameLen())
	}
	p := netip.MustParsePrefix("10.1.0.1/16")
	if err := st.AddAddress(id, p); err != nil {
		t.Fatal(err)
	}
	if err := st.AddAddress(id, p); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("duplicate address: %v", err)
	}
	if err := st.AddAddress(99, p); err == nil {
		t.Error("address on a missing NIC")
	}
	if err := st.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.1.0.254"), 99); err == nil {
		t.Error("route on a missing NIC")
	}
	if err := st.AddRoute(netip.MustParsePrefix("::ffff:0:0/96"), netip.Addr{}, id); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("IPv4-mapped route: %v", err)
	}
	if err := st.AddRoute(netip.MustParsePrefix("::/0"), netip.MustParseAddr("10.1.0.254"), id); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("IPv6 route through an IPv4 gateway: %v", err)
	}
	if err := st.AddRoute(netip.MustParsePrefix("::/0"), netip.MustParseAddr("2001:db8::fe"), id); err != nil {
		t.Errorf("IPv6 route: %v", err)
	}
	if got := st.TCPConfig(); got.RcvBuf != 128<<10 || got.RcvBufMax != 32<<20 || got.TimeWait != time.Minute {
		t.Errorf("TCPConfig defaults %+v", got)
	}
}

// TestAddressesAndRoutes: each address's prefix is an on-link route
// while an address of the NIC is in it; removing the last one removes the
// route, and the stack stops answering for the address.
func TestAddressesAndRoutes(t *testing.T) {
	n, a, r := bare(t)
	st := a.Stack
	extra := netip.MustParsePrefix("10.0.0.5/24")
	other := netip.MustParsePrefix("192.168.7.1/24")
	for _, p := range []netip.Prefix{extra, other} {
		if err := st.AddAddress(a.NIC, p); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(st.Addrs(a.NIC)); got != 3 {
		t.Errorf("%d addresses, want 3", got)
	}
	hasRoute := func(p netip.Prefix) bool {
		for _, rt := range st.Routes() {
			if rt.Dst == p.Masked() && rt.NIC == a.NIC {
				return true
			}
		}
		return false
	}
	if !hasRoute(extra) || !hasRoute(other) {
		t.Fatalf("routes %+v", st.Routes())
	}
	echo := func(dst netip.Addr) int {
		r.Send(r.ICMPFrame(a.MAC, ipRaw, dst, wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 1}))
		n.RunFor(time.Second)
		k := 0
		for _, f := range r.Take() {
			if d := f.Decode(); d.ICMP != nil {
				k++
			}
		}
		return k
	}
	a.Stack.AddNeighbor(a.NIC, ipRaw, r.MAC)
	if echo(extra.Addr()) != 1 {
		t.Error("no echo reply from the second address")
	}
	if err := st.RemoveAddress(a.NIC, extra.Addr()); err != nil {
		t.Fatal(err)
	}
	if !hasRoute(extra) {
		t.Error("route removed while 10.0.0.1 is still in the prefix")
	}
	if echo(extra.Addr()) != 0 {
		t.Error("echo reply from a removed address")
	}
	if err := st.RemoveAddress(a.NIC, other.Addr()); err != nil {
		t.Fatal(err)
	}
	if hasRoute(other) {
		t.Error("route of the removed prefix still there")
	}
	if err := st.RemoveAddress(a.NIC, other.Addr()); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("removing it twice: %v", err)
	}
	if err := st.AddRoute(netip.MustParsePrefix("172.16.0.0/12"), ipRaw, a.NIC); err != nil {
		t.Fatal(err)
	}
	if !st.RemoveRoute(netip.MustParsePrefix("172.16.0.0/12"), a.NIC) || st.RemoveRoute(netip.MustParsePrefix("172.16.0.0/12"), a.NIC) {
		t.Error("RemoveRoute")
	}
	if st.Addrs(99) != nil {
		t.Error("addresses of a missing NIC")
	}
	_ = network.Route{}
}

// TestCtlQueueLimit: frames the stack makes itself (ICMP, ARP, RSTs) wait
// in a bounded queue until polled; beyond Config.CtlQueueLen they are
// dropped and counted.
func TestCtlQueueLimit(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{CtlQueueLen: 3})
	for i := range 5 {
		f := r.UDPFrame(a.MAC, ap(ipRaw, 1000), ap(ipA, uint16(2000+i)), []byte("x"))
		a.Stack.HandleFrame(n.Now, a.NIC, &link.Packet{Buf: f, N: len(f)})
	}
	n.RunFor(10 * time.Millisecond)
	if got := len(r.Take()); got != 3 {
		t.Errorf("%d port unreachables, want 3", got)
	}
	if st := a.Stack.Stats().Link; st.TxCtlQueueDrops != 2 {
		t.Errorf("TxCtlQueueDrops %d, want 2", st.TxCtlQueueDrops)
	}
}

// TestSocketCalls: the socket options and shutdowns reach the connection:
// SO_RCVBUF bounds the window, TCP_NODELAY sends small writes at once
// (RFC 9293 §3.7.4), SHUT_RD makes reads end, and readiness follows.
func TestSocketCalls(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	c, s, _ := connect(t, n, a, b, 80)
	if !c.Writable() || c.Readable() {
		t.Errorf("fresh connection: writable %v readable %v", c.Writable(), c.Readable())
	}
	c.SetNoDelay(true)
	c.SetWriteBuffer(8192)
	s.SetReadBuffer(8192)
	if c.KeepAlive() {
		t.Error("keep-alive on by default")
	}
	// With Nagle off, two small writes leave as two segments at once.
	mark := len(n.Log)
	c.Write([]byte("a"))
	n.Flush()
	c.Write([]byte("b"))
	n.Flush()
	if got := len(frames(n, mark, from(a))); got != 2 {
		t.Errorf("%d segments for two small writes with TCP_NODELAY, want 2", got)
	}
	n.RunFor(100 * time.Millisecond)
	if !s.Readable() {
		t.Error("data arrived but not readable")
	}
	s.CloseRead()
	if k, err := s.Read(make([]byte, 10)); k != 0 || err == nil {
		t.Errorf("Read after CloseRead: %d %v, want EOF", k, err)
	}
	if u, err := b.Stack.BindUDP(ap(ipB, 7)); err != nil || u.Readable() {
		t.Errorf("fresh UDP socket readable: %v", err)
	}
	var so stack.Socket = c
	so.SetOwner("mine")
	if so.Owner() != "mine" {
		t.Error("Owner")
	}
	var err error = stack.ErrAddrInUse
	if e, ok := err.(interface{ Errno() syscall.Errno }); !ok || e.Errno() != syscall.EADDRINUSE || err.Error() == "" {
		t.Error("ErrAddrInUse does not carry its errno")
	}
	st := a.Stack.Stats()
	if m := st.Map(); m["TCP.ActiveOpens"] != 1 || m["Link.RxRunts"] != 0 {
		t.Errorf("Stats.Map: %v", m)
	}
	if got := b.Stack.Listeners(); len(got) != 1 || got[0].Addr != ap(netip.IPv4Unspecified(), 80) {
		t.Errorf("Listeners %+v", got)
	}
	_ = tcp.Established
}

// TestAddNICAtomic: an AddNIC that fails adds nothing: the next NIC gets
// the ID the failed one would have had.
func TestAddNICAtomic(t *testing.T) {
	st := stack.New(stack.Config{})
	bad := stack.NICConfig{MAC: stacktest.MAC(1), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("::ffff:10.0.0.2/120")}}
	if _, err := st.AddNIC(bad); err == nil {
		t.Fatal("AddNIC with an IPv4-mapped address succeeded")
	}
	id, err := st.AddNIC(stack.NICConfig{MAC: stacktest.MAC(1)})
	if err != nil || id != 1 {
		t.Errorf("next AddNIC: %v %v, want NIC 1", id, err)
	}
	if len(st.Routes()) != 0 {
		t.Errorf("routes of the failed NIC left: %+v", st.Routes())
	}
}
