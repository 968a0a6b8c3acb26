package stack

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// BenchmarkNeighborLookup measures the next-hop lookup every segment a
// connection sends makes (resolve), with cores each on a goroutine of
// its own (RunParallel: GOMAXPROCS of them): "private" with a cache per
// core (one shard), "shared" with one cache behind Shared's mutex, as
// several shards have it. The difference is the price of one cache.
func BenchmarkNeighborLookup(b *testing.B) {
	peer := netip.MustParseAddr("10.0.0.2")
	for _, shared := range []bool{false, true} {
		name := "private"
		if shared {
			name = "shared"
		}
		b.Run(name, func(b *testing.B) {
			var sh *Shared
			if shared {
				sh = NewShared(Config{}, 64, func(FlowKey) int { return 0 })
			}
			var cores []*Stack
			for i := range 64 {
				s := New(Config{})
				if shared {
					s = NewCore(Config{}, sh, i)
				}
				id, err := s.AddNIC(NICConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 1}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
				if err != nil {
					b.Fatal(err)
				}
				s.AddNeighbor(id, peer, wire.MAC{2, 0, 0, 0, 0, 2})
				cores = append(cores, s)
			}
			var next atomic.Int32
			b.RunParallel(func(pb *testing.PB) {
				s := cores[next.Add(1)-1]
				n := s.nic(1)
				for pb.Next() {
					if _, ok := s.resolve(clock.Instant(1), n, peer, nil); !ok {
						b.Fatal("not resolved")
					}
				}
			})
		})
	}
}

// TestSharedNeighborFailure: a neighbour that fails in one core is told
// to the others (SyncShared), each of which fails its own connects
// waiting for it with EHOSTUNREACH, as one core would.
func TestSharedNeighborFailure(t *testing.T) {
	sh := NewShared(Config{}, 2, func(FlowKey) int { return 0 })
	a, b := NewCore(Config{}, sh, 0), NewCore(Config{}, sh, 1)
	for _, s := range []*Stack{a, b} {
		if _, err := s.AddNIC(NICConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 1}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
			t.Fatal(err)
		}
	}
	dead := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.9"), 80)
	ca, err := a.Connect(0, netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 40000), dead)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Connect(0, netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 40001), dead)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	drain := func(s *Stack, now clock.Instant) (arp int) {
		for {
			pkt := linkPacket(buf)
			if _, ok := s.PollTransmit(now, pkt); !ok {
				return arp
			}
			if d := pkt.Frame(); len(d) >= 14 && d[12] == 0x08 && d[13] == 0x06 {
				arp++
			}
		}
	}
	arps := drain(a, 0) + drain(b, 0)
	// Run the core whose timer would fire until the cache gives up.
	for now := clock.Instant(0); now < clock.Instant(10e9); {
		d := a.NextDeadline()
		if d == clock.Never {
			break
		}
		now = d
		a.HandleTimeout(now)
		arps += drain(a, now)
	}
	if arps != 3 {
		t.Errorf("%d ARP requests from the two cores, want 3 (one resolution: ucast/mcast probes as one host)", arps)
	}
	if sh.TakePending(0) || !sh.TakePending(1) {
		t.Fatalf("pending marks: want core 1's only")
	}
	if ca.State().String() != "CLOSED" {
		t.Errorf("core 0's connect: %v, want CLOSED", ca.State())
	}
	b.SyncShared(clock.Instant(10e9))
	if cb.State().String() != "CLOSED" {
		t.Errorf("core 1's connect after SyncShared: %v, want CLOSED", cb.State())
	}
}

func linkPacket(buf []byte) *link.Packet { return &link.Packet{Buf: buf} }
