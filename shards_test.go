package ustack

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// icmp4Error is an IPv4 packet from router to local carrying an ICMP
// error of type typ that quotes a TCP segment local → remote.
func icmp4Error(typ uint8, router netip.Addr, local, remote netip.AddrPort) []byte {
	quote := make([]byte, 20+8)
	quote[0] = 0x45
	quote[9] = wire.ProtoTCP
	l4, r4 := local.Addr().As4(), remote.Addr().As4()
	copy(quote[12:], l4[:])
	copy(quote[16:], r4[:])
	binary.BigEndian.PutUint16(quote[20:], local.Port())
	binary.BigEndian.PutUint16(quote[22:], remote.Port())
	msg := append([]byte{typ, 0, 0, 0, 0, 0, 0, 0}, quote...)
	ip := make([]byte, 20, 20+len(msg))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(msg)))
	ip[8] = 64
	ip[9] = wire.ProtoICMP
	a, b := router.As4(), local.Addr().As4()
	copy(ip[12:], a[:])
	copy(ip[16:], b[:])
	binary.BigEndian.PutUint16(ip[10:], ^wire.Checksum(ip[:20], 0))
	return append(ip, msg...)
}

// icmp6 is an IPv6 packet from src to dst carrying an ICMPv6 message of
// type typ with body.
func icmp6(typ uint8, src, dst netip.Addr, body []byte) []byte {
	msg := append([]byte{typ, 0, 0, 0, 0, 0, 0, 0}, body...)
	ip := make([]byte, 40, 40+len(msg))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(msg)))
	ip[6] = wire.ProtoICMPv6
	ip[7] = 255
	a, b := src.As16(), dst.As16()
	copy(ip[8:], a[:])
	copy(ip[24:], b[:])
	return append(ip, msg...)
}

// TestHostShard: host traffic reaches the shards that need it — an ICMP
// or ICMPv6 error the shard of the TCP flow it quotes, the rest —
// ARP replies and IPv6 neighbour and router advertisements included,
// which the shared host part's owner takes — shard 0 — and what does not parse (a quote cut short) goes to shard 0
// without a panic.
func TestHostShard(t *testing.T) {
	s, err := newStack(Config{Config: stack.Config{Seed: 7}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	router := netip.MustParseAddr("10.0.0.254")
	seen := map[int]bool{}
	for i := range 64 {
		local := netip.AddrPortFrom(ipA, uint16(40000+i))
		remote := netip.AddrPortFrom(ipB, 80)
		want := s.shardOfFlow(local, remote)
		seen[want] = true
		for _, typ := range []uint8{wire.ICMPv4DestUnreachable, wire.ICMPv4TimeExceeded} {
			if got := s.hostShard(link.IP, icmp4Error(typ, router, local, remote)); got != want {
				t.Errorf("ICMP type %d about %v→%v: shard %d, want %d", typ, local, remote, got, want)
			}
			if got := s.shardOfFrame(link.IP, icmp4Error(typ, router, local, remote)); got != want {
				t.Errorf("shardOfFrame: ICMP type %d about %v→%v: shard %d, want %d", typ, local, remote, got, want)
			}
		}
		// IPv6: packet too big quoting a segment.
		l6 := netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(40000+i))
		r6 := netip.AddrPortFrom(netip.MustParseAddr("2001:db8::2"), 443)
		q := make([]byte, 40+8)
		q[0] = 0x60
		q[6] = wire.ProtoTCP
		a, b := l6.Addr().As16(), r6.Addr().As16()
		copy(q[8:], a[:])
		copy(q[24:], b[:])
		binary.BigEndian.PutUint16(q[40:], l6.Port())
		binary.BigEndian.PutUint16(q[42:], r6.Port())
		want6 := s.shardOfFlow(l6, r6)
		if got := s.hostShard(link.IP, icmp6(wire.ICMPv6PacketTooBig, netip.MustParseAddr("2001:db8::fe"), l6.Addr(), q)); got != want6 {
			t.Errorf("ICMPv6 packet too big about %v→%v: shard %d, want %d", l6, r6, got, want6)
		}
	}
	if len(seen) < 2 {
		t.Fatalf("64 flows all hashed to one shard of 4: the test shows nothing")
	}
	// A quote cut short, an echo request: shard 0.
	short := icmp4Error(wire.ICMPv4DestUnreachable, router, netip.AddrPortFrom(ipA, 1), netip.AddrPortFrom(ipB, 2))
	short = short[:len(short)-6]
	binary.BigEndian.PutUint16(short[2:], uint16(len(short)))
	if got := s.hostShard(link.IP, short); got != 0 {
		t.Errorf("truncated quote: shard %d, want 0", got)
	}
	for k := 1; k < len(short); k++ {
		s.hostShard(link.IP, short[:k]) // must not panic
	}
	if got := s.hostShard(link.IP, icmp4Error(wire.ICMPv4EchoRequest, router, netip.AddrPortFrom(ipA, 1), netip.AddrPortFrom(ipB, 2))); got != 0 {
		t.Errorf("echo request: shard %d, want 0", got)
	}
	// ARP over Ethernet: replies to every shard, requests to shard 0.
	arp := func(op uint16) []byte {
		f := make([]byte, 14+28)
		binary.BigEndian.PutUint16(f[12:], uint16(wire.EtherTypeARP))
		p := f[14:]
		binary.BigEndian.PutUint16(p[0:], 1)
		binary.BigEndian.PutUint16(p[2:], 0x0800)
		p[4], p[5] = 6, 4
		binary.BigEndian.PutUint16(p[6:], op)
		return f
	}
	if got := s.shardOfFrame(link.Ethernet, arp(wire.ARPReply)); got != 0 {
		t.Errorf("ARP reply: shard %d, want 0 (the shared host part's owner)", got)
	}
	if got := s.shardOfFrame(link.Ethernet, arp(wire.ARPRequest)); got != 0 {
		t.Errorf("ARP request: shard %d, want 0", got)
	}
	ll := netip.MustParseAddr("fe80::1")
	for typ, want := range map[uint8]int{
		wire.ICMPv6NeighborAdvert:  0,
		wire.ICMPv6RouterAdvert:    0,
		wire.ICMPv6Redirect:        0,
		wire.ICMPv6NeighborSolicit: 0,
		wire.ICMPv6EchoRequest:     0,
	} {
		if got := s.shardOfFrame(link.IP, icmp6(typ, ll, ll, make([]byte, 16))); got != want {
			t.Errorf("ICMPv6 type %d: shard %d, want %d", typ, got, want)
		}
	}
}

// TestShardConfig: the bounds that hold floods back add up over the
// shards to what one stack has — SYN queue (default and set), a
// listener's backlog — and each shard gets at least one; the neighbour
// cache's bounds are left whole (the cores share one cache).
func TestShardConfig(t *testing.T) {
	for _, base := range []stack.Config{{}, {SynBacklog: 7, Neighbor: network.NeighborConfig{MaxUnresolved: 3, MaxQueued: 10, MaxEntries: 50}}} {
		for n := 1; n <= 5; n++ {
			var syn, unres, queued, backlog int
			for i := range n {
				c := shardConfig(base, i, n)
				if c.SynBacklog < 1 && n > 1 || c.Neighbor.MaxUnresolved < 0 {
					t.Errorf("n=%d shard %d: %+v", n, i, c)
				}
				if c.Neighbor != base.Neighbor {
					t.Errorf("n=%d shard %d: neighbour config %+v, want %+v (whole)", n, i, c.Neighbor, base.Neighbor)
				}
				syn += c.SynBacklog
				unres += c.Neighbor.MaxUnresolved
				queued += c.Neighbor.MaxQueued
				backlog += partBacklog(100, i, n)
			}
			if n == 1 {
				continue // unchanged: the core's own defaults apply
			}
			wantSyn := 1024
			if base.SynBacklog != 0 {
				wantSyn = max(7, n)
			}
			if syn != wantSyn || unres != n*base.Neighbor.MaxUnresolved || queued != n*base.Neighbor.MaxQueued || backlog != 100 {
				t.Errorf("n=%d: SYN queues %d, resolutions %d, waiting %d, backlogs %d; want %d, %d, %d, 100",
					n, syn, unres, queued, backlog, wantSyn, n*base.Neighbor.MaxUnresolved, n*base.Neighbor.MaxQueued)
			}
		}
	}
}

// TestShardCountDefault: GOMAXPROCS shards by default and for
// ShardsPerCPU (one, and no shared host part, when GOMAXPROCS is 1),
// the number given otherwise.
func TestShardCountDefault(t *testing.T) {
	for _, c := range []struct{ in, want int }{{0, max(runtime.GOMAXPROCS(0), 1)}, {1, 1}, {3, 3}, {ShardsPerCPU, max(runtime.GOMAXPROCS(0), 1)}} {
		if got := shardCount(&Config{Shards: c.in}); got != c.want {
			t.Errorf("Shards %d: %d shards, want %d", c.in, got, c.want)
		}
	}
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := max(runtime.GOMAXPROCS(0), 1); len(s.shards) != want {
		t.Errorf("New(Config{}): %d shards, want GOMAXPROCS = %d", len(s.shards), want)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	one, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if len(one.shards) != 1 || one.host != nil {
		t.Errorf("New(Config{}) with GOMAXPROCS 1: %d shards (shared host part %v), want one and none", len(one.shards), one.host != nil)
	}
}
