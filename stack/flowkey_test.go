package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// ipv6Packet returns an IPv6 packet from src to dst with next header nh
// and payload.
func ipv6Packet(src, dst netip.Addr, nh uint8, payload []byte) []byte {
	h := wire.IPv6Fields{PayloadLen: uint16(len(payload)), NextHeader: nh, HopLimit: 64, Src: src, Dst: dst}
	b := make([]byte, wire.IPv6HeaderLen+len(payload))
	h.Encode(b)
	copy(b[wire.IPv6HeaderLen:], payload)
	return b
}

// TestParseFlowKey: the 4-tuple of TCP and UDP over Ethernet (tagged or
// not), over a bare IP link and over IPv6, from the stack's side (Local
// is the destination); host traffic for everything a shard cannot own
// by port: ARP, ICMP, fragments (even the first), IPv6 extension
// headers, other protocols, and frames too short or malformed to read.
func TestParseFlowKey(t *testing.T) {
	macA, macB := stacktest.MAC(1), stacktest.MAC(2)
	src, dst := ap(ipB, 40000), ap(ipA, 80)
	tcpSeg := stacktest.TCPSeg(src, dst, wire.TCPFields{Flags: wire.TCPFlagSYN, Seq: 1})
	udpDgram := stacktest.UDPDgram(src, dst, []byte("hello"))
	tcpPkt := stacktest.IP(stacktest.IPHeader(ipB, ipA, wire.ProtoTCP), tcpSeg)
	udpPkt := stacktest.IP(stacktest.IPHeader(ipB, ipA, wire.ProtoUDP), udpDgram)
	withOpts := stacktest.IPHeader(ipB, ipA, wire.ProtoTCP)
	withOpts.Options = []byte{1, 1, 1, 0} // NOP NOP NOP EOL: IHL 6
	frag := func(mf bool, off uint16) []byte {
		h := stacktest.IPHeader(ipB, ipA, wire.ProtoUDP)
		h.MF, h.FragOffset = mf, off
		return stacktest.IP(h, udpDgram)
	}
	src6, dst6 := netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1")
	tcp6 := ipv6Packet(src6, dst6, wire.ProtoTCP, tcpSeg)
	withExt := ipv6Packet(src6, dst6, 0, append([]byte{wire.ProtoTCP, 0, 1, 4, 0, 0, 0, 0}, tcpSeg...))
	eth := func(et wire.EtherType, p []byte) []byte { return stacktest.Ether(macA, macB, 0, et, p) }
	tcpKey := stack.FlowKey{Proto: wire.ProtoTCP, Local: dst, Remote: src}
	for _, c := range []struct {
		name   string
		medium link.Medium
		frame  []byte
		want   stack.FlowKey
	}{
		{"tcp", link.Ethernet, eth(wire.EtherTypeIPv4, tcpPkt), tcpKey},
		{"udp", link.Ethernet, eth(wire.EtherTypeIPv4, udpPkt), stack.FlowKey{Proto: wire.ProtoUDP, Local: dst, Remote: src}},
		{"vlan", link.Ethernet, stacktest.Ether(macA, macB, 7, wire.EtherTypeIPv4, tcpPkt), tcpKey},
		{"ip options", link.Ethernet, eth(wire.EtherTypeIPv4, stacktest.IP(withOpts, tcpSeg)), tcpKey},
		{"tun", link.IP, tcpPkt, tcpKey},
		{"ipv6", link.Ethernet, eth(wire.EtherTypeIPv6, tcp6), stack.FlowKey{Proto: wire.ProtoTCP, Local: netip.AddrPortFrom(dst6, 80), Remote: netip.AddrPortFrom(src6, 40000)}},
		{"ipv6 tun", link.IP, tcp6, stack.FlowKey{Proto: wire.ProtoTCP, Local: netip.AddrPortFrom(dst6, 80), Remote: netip.AddrPortFrom(src6, 40000)}},
		{"ipv6 extension header", link.Ethernet, eth(wire.EtherTypeIPv6, withExt), stack.FlowKey{}},
		{"arp", link.Ethernet, eth(wire.EtherTypeARP, stacktest.ARP(wire.ARPRequest, macB, ipB, wire.MAC{}, ipA)), stack.FlowKey{}},
		{"icmp", link.Ethernet, eth(wire.EtherTypeIPv4, stacktest.IP(stacktest.IPHeader(ipB, ipA, wire.ProtoICMP), stacktest.ICMPMsg(wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest}))), stack.FlowKey{}},
		{"first fragment", link.Ethernet, eth(wire.EtherTypeIPv4, frag(true, 0)), stack.FlowKey{}},
		{"later fragment", link.Ethernet, eth(wire.EtherTypeIPv4, frag(false, 8)), stack.FlowKey{}},
		{"other protocol", link.Ethernet, eth(wire.EtherTypeIPv4, stacktest.IP(stacktest.IPHeader(ipB, ipA, 132), tcpSeg)), stack.FlowKey{}},
		{"ports cut off", link.Ethernet, eth(wire.EtherTypeIPv4, stacktest.IP(stacktest.IPHeader(ipB, ipA, wire.ProtoTCP), tcpSeg[:3])), stack.FlowKey{}},
		{"truncated ip", link.Ethernet, eth(wire.EtherTypeIPv4, tcpPkt[:30]), stack.FlowKey{}},
		{"runt", link.Ethernet, eth(wire.EtherTypeIPv4, nil)[:10], stack.FlowKey{}},
		{"empty tun packet", link.IP, nil, stack.FlowKey{}},
		{"version 5", link.IP, append([]byte{0x50}, tcpPkt[1:]...), stack.FlowKey{}},
	} {
		got := stack.ParseFlowKey(c.medium, c.frame)
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
		if got.Host() != (c.want.Proto == 0) {
			t.Errorf("%s: Host() %v", c.name, got.Host())
		}
	}
}

// TestFlowKeyMatchesConnections: every TCP frame of a transfer between
// two stacks — handshake, data, ACKs, FINs — keys to a connection the
// receiving stack holds under that 4-tuple, so a runtime that picks
// shards by ParseFlowKey sends each segment to its connection's shard;
// ARP is host traffic.
func TestFlowKeyMatchesConnections(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	c, s, _ := connect(t, n, a, b, 80)
	transfer(t, n, c, s, payload(1, 200_000), time.Minute)
	transfer(t, n, s, c, payload(2, 50_000), time.Minute)
	owner := map[*stacktest.Node]*stack.TCPConn{a: c, b: s}
	tcpFrames, arpFrames := 0, 0
	for _, f := range n.Log {
		d := f.Decode()
		key := stack.ParseFlowKey(link.Ethernet, f.Data)
		switch {
		case d.ARP != nil:
			arpFrames++
			if !key.Host() {
				t.Fatalf("ARP frame %v keyed to %+v", f, key)
			}
		case d.TCP != nil:
			tcpFrames++
			to := a
			if f.From == a {
				to = b
			}
			conn := owner[to]
			want := stack.FlowKey{Proto: wire.ProtoTCP, Local: conn.LocalAddr(), Remote: conn.RemoteAddr()}
			if key != want {
				t.Fatalf("frame %v: key %+v, the connection it reaches is %+v", f, key, want)
			}
			if key.Hash(7) != (stack.FlowKey{Proto: wire.ProtoTCP, Local: conn.LocalAddr(), Remote: conn.RemoteAddr()}).Hash(7) {
				t.Fatal("equal keys hash apart")
			}
		}
	}
	if tcpFrames < 100 || arpFrames == 0 {
		t.Fatalf("%d TCP and %d ARP frames: not the exchange meant", tcpFrames, arpFrames)
	}
}

// TestFlowKeyHash: the hash is keyed (another seed, another value), it
// tells flows apart, and it spreads a listener's clients evenly enough
// over four shards that none gets twice its share.
func TestFlowKeyHash(t *testing.T) {
	k := stack.FlowKey{Proto: wire.ProtoTCP, Local: ap(ipA, 80), Remote: ap(ipB, 40000)}
	if k.Hash(1) == k.Hash(2) {
		t.Error("the seed does not change the hash")
	}
	u := k
	u.Proto = wire.ProtoUDP
	if k.Hash(1) == u.Hash(1) {
		t.Error("TCP and UDP flows with the same ports hash alike")
	}
	var shards [4]int
	const flows = 4000
	for i := range flows {
		k.Remote = ap(ipB, uint16(32768+i))
		shards[k.Hash(99)%4]++
	}
	for i, c := range shards {
		if c < flows/4/2 || c > flows/4*2 {
			t.Errorf("shard %d gets %d of %d flows: %v", i, c, flows, shards)
		}
	}
}

// TestZeroAllocsFlowKey: parsing a frame to its key and hashing it
// allocate nothing (the runtime does it for every frame).
func TestZeroAllocsFlowKey(t *testing.T) {
	frame := stacktest.Ether(stacktest.MAC(1), stacktest.MAC(2), 0, wire.EtherTypeIPv4,
		stacktest.IP(stacktest.IPHeader(ipB, ipA, wire.ProtoTCP), stacktest.TCPSeg(ap(ipB, 1), ap(ipA, 2), wire.TCPFields{})))
	var sum uint64
	if allocs := testing.AllocsPerRun(1000, func() {
		sum += stack.ParseFlowKey(link.Ethernet, frame).Hash(3)
	}); allocs != 0 {
		t.Errorf("%.1f allocations per frame", allocs)
	}
	_ = sum
}

// FuzzParseFlowKey: whatever the bytes, ParseFlowKey does not panic, and
// a 4-tuple it gives is what the full parsers of package wire read from
// the same frame.
func FuzzParseFlowKey(f *testing.F) {
	f.Add(stacktest.Ether(stacktest.MAC(1), stacktest.MAC(2), 0, wire.EtherTypeIPv4,
		stacktest.IP(stacktest.IPHeader(ipB, ipA, wire.ProtoTCP), stacktest.TCPSeg(ap(ipB, 1), ap(ipA, 2), wire.TCPFields{}))), false)
	f.Add(stacktest.IP(stacktest.IPHeader(ipB, ipA, wire.ProtoUDP), stacktest.UDPDgram(ap(ipB, 1), ap(ipA, 2), nil)), true)
	f.Fuzz(func(t *testing.T, frame []byte, tun bool) {
		m := link.Ethernet
		if tun {
			m = link.IP
		}
		k := stack.ParseFlowKey(m, frame)
		if k.Host() {
			if k != (stack.FlowKey{}) {
				t.Fatalf("host traffic with a tuple: %+v", k)
			}
			return
		}
		p := frame
		if m == link.Ethernet {
			eth, err := wire.ParseEthernet(frame)
			if err != nil {
				t.Fatalf("keyed %+v, but not Ethernet: %v", k, err)
			}
			p = eth.Payload()
		}
		var l4 []byte
		var src, dst netip.Addr
		if ip, err := wire.ParseIPv4(p); err == nil {
			src, dst, l4 = ip.Src(), ip.Dst(), ip.Payload()
		} else if ip6, err := wire.ParseIPv6(p); err == nil {
			src, dst, l4 = ip6.Src(), ip6.Dst(), ip6.Payload()
		} else {
			t.Fatalf("keyed %+v, but neither IPv4 nor IPv6", k)
		}
		if k.Local.Addr() != dst || k.Remote.Addr() != src {
			t.Fatalf("key %+v, addresses %v → %v", k, src, dst)
		}
		if u, err := wire.ParseUDP(l4); err == nil && k.Proto == wire.ProtoUDP && (u.SrcPort() != k.Remote.Port() || u.DstPort() != k.Local.Port()) {
			t.Fatalf("key %+v, UDP ports %d → %d", k, u.SrcPort(), u.DstPort())
		}
		if tc, err := wire.ParseTCP(l4); err == nil && k.Proto == wire.ProtoTCP && (tc.SrcPort() != k.Remote.Port() || tc.DstPort() != k.Local.Port()) {
			t.Fatalf("key %+v, TCP ports %d → %d", k, tc.SrcPort(), tc.DstPort())
		}
	})
}
