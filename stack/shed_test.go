package stack_test

import (
	"net/netip"
	"testing"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// TestSynFlooded: a stack counts as SYN-flooded from its first SYN cookie
// until SynFloodHold after its last; SYNs the SYN queue holds do not
// count.
func TestSynFlooded(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{SynBacklog: 2})
	if _, err := a.Stack.Listen(ap(ipA, 80), 0); err != nil {
		t.Fatal(err)
	}
	for port := uint16(1000); port < 1002; port++ {
		rawTCP(t, n, a, r, port, 80, tsSYN(wire.Seq(port), 1))
	}
	if a.Stack.SynFlooded(n.Now) {
		t.Fatal("flooded with room in the SYN queue")
	}
	rawTCP(t, n, a, r, 1002, 80, tsSYN(1002, 1))
	if !a.Stack.SynFlooded(n.Now) || a.Stack.Stats().TCP.SyncookiesSent != 1 {
		t.Fatalf("not flooded after a cookie (SyncookiesSent %d)", a.Stack.Stats().TCP.SyncookiesSent)
	}
	n.RunFor(stack.SynFloodHold / 2)
	if !a.Stack.SynFlooded(n.Now) {
		t.Fatal("not flooded before SynFloodHold passed")
	}
	n.RunFor(stack.SynFloodHold / 2)
	if a.Stack.SynFlooded(n.Now) {
		t.Fatal("still flooded SynFloodHold after the last cookie")
	}
}

// TestIsConnRequest: SYN alone is a connection request, in IPv4 or IPv6,
// tagged or not, on Ethernet or a bare IP link; SYN-ACK, SYN with RST,
// an ACK, a fragment, UDP, ARP and truncated frames are not.
func TestIsConnRequest(t *testing.T) {
	src, dst := netip.MustParseAddrPort("10.0.0.9:1000"), netip.MustParseAddrPort("10.0.0.1:80")
	src6, dst6 := netip.MustParseAddrPort("[fd00::9]:1000"), netip.MustParseAddrPort("[fd00::1]:80")
	seg := func(f wire.TCPFlags) []byte {
		return stacktest.IP(stacktest.IPHeader(src.Addr(), dst.Addr(), wire.ProtoTCP), stacktest.TCPSeg(src, dst, wire.TCPFields{Flags: f}))
	}
	eth := func(p []byte) []byte { return stacktest.Ether(wire.MAC{1}, wire.MAC{2}, 0, wire.EtherTypeIPv4, p) }
	syn := seg(wire.TCPFlagSYN)
	frag := append([]byte(nil), syn...)
	frag[6] |= 0x20 // more fragments
	v6 := stacktest.IP6(wire.IPv6Fields{Src: src6.Addr(), Dst: dst6.Addr(), NextHeader: wire.ProtoTCP, HopLimit: 64},
		stacktest.TCPSeg(src6, dst6, wire.TCPFields{Flags: wire.TCPFlagSYN | wire.TCPFlagECE | wire.TCPFlagCWR}))
	for _, c := range []struct {
		name  string
		m     link.Medium
		frame []byte
		want  bool
	}{
		{"SYN", link.Ethernet, eth(syn), true},
		{"SYN on IP", link.IP, syn, true},
		{"tagged SYN", link.Ethernet, stacktest.Ether(wire.MAC{1}, wire.MAC{2}, 7, wire.EtherTypeIPv4, syn), true},
		{"IPv6 ECN SYN", link.Ethernet, stacktest.Ether(wire.MAC{1}, wire.MAC{2}, 0, wire.EtherTypeIPv6, v6), true},
		{"SYN-ACK", link.Ethernet, eth(seg(wire.TCPFlagSYN | wire.TCPFlagACK)), false},
		{"SYN RST", link.Ethernet, eth(seg(wire.TCPFlagSYN | wire.TCPFlagRST)), false},
		{"ACK", link.Ethernet, eth(seg(wire.TCPFlagACK)), false},
		{"fragment", link.Ethernet, eth(frag), false},
		{"UDP", link.Ethernet, eth(stacktest.IP(stacktest.IPHeader(src.Addr(), dst.Addr(), wire.ProtoUDP), stacktest.UDPDgram(src, dst, make([]byte, 20)))), false},
		{"truncated", link.Ethernet, eth(syn)[:14+20+10], false},
		{"empty", link.Ethernet, nil, false},
		{"ARP", link.Ethernet, stacktest.Ether(wire.MAC{1}, wire.MAC{2}, 0, wire.EtherTypeARP, make([]byte, 28)), false},
	} {
		if got := stack.IsConnRequest(c.m, c.frame); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	f := eth(syn)
	if a := testing.AllocsPerRun(100, func() { stack.IsConnRequest(link.Ethernet, f) }); a != 0 {
		t.Errorf("%v allocations", a)
	}
}
