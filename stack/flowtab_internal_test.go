package stack

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// SetFlowHashMask ANDs every flow-table hash of s with m from now on
// (0: every connection collides with every other); for tests in package
// stack_test. Call it before s has connections.
func SetFlowHashMask(s *Stack, m uint64) { s.flows.conns.mask = m }

// FlowTableLen returns how many connections s's flow table holds under
// their hash and how many in its collision map.
func FlowTableLen(s *Stack) (byHash, coll int) {
	return len(s.flows.conns.byHash), len(s.flows.conns.coll)
}

// testTuple returns the i-th of a set of distinct 4-tuples, IPv4 and
// IPv6 in turn, that differ in their addresses and ports.
func testTuple(i int) tuple {
	var l, r netip.Addr
	if i%2 == 0 {
		l = netip.AddrFrom4([4]byte{10, 0, byte(i >> 16), byte(i >> 8)})
		r = netip.AddrFrom4([4]byte{10, 1, 0, byte(i)})
	} else {
		l = netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 8), 15: byte(i)})
		r = netip.AddrFrom16([16]byte{0: 0xfd, 1: 1, 15: byte(i >> 16)})
	}
	return tuple{netip.AddrPortFrom(l, uint16(40000+i%1000)), netip.AddrPortFrom(r, 80)}
}

func testConn(k tuple) *TCPConn {
	c := &TCPConn{}
	c.addrs.set(k)
	return c
}

// checkTable compares t with want, the connections it must hold by
// 4-tuple: every one found, nothing else, each yielded by all exactly
// once, and len right.
func checkTable(tb testing.TB, t *flowTable, want map[tuple]*TCPConn, absent []tuple) {
	tb.Helper()
	if t.len() != len(want) {
		tb.Fatalf("len %d, want %d", t.len(), len(want))
	}
	for k, c := range want {
		if got := t.lookup(k); got != c {
			tb.Fatalf("lookup %v: %p, want %p", k, got, c)
		}
	}
	for _, k := range absent {
		if _, ok := want[k]; !ok && t.lookup(k) != nil {
			tb.Fatalf("lookup %v: found a connection not in the table", k)
		}
	}
	seen := map[*TCPConn]int{}
	for c := range t.all() {
		seen[c]++
	}
	if len(seen) != len(want) {
		tb.Fatalf("all yielded %d connections, want %d", len(seen), len(want))
	}
	for k, c := range want {
		if seen[c] != 1 {
			tb.Fatalf("all yielded %v's connection %d times", k, seen[c])
		}
	}
}

// TestFlowTable checks lookups, inserts, replacement and deletes against
// a map, with the real hash and with hashes forced to collide (mask 0:
// one connection under the hash, the rest in the collision map; 1 and 3:
// a few chains of each).
func TestFlowTable(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 0, 1, 3} {
		t.Run(fmt.Sprintf("mask=%#x", mask), func(t *testing.T) {
			ft := newFlowTable()
			ft.mask = mask
			want := map[tuple]*TCPConn{}
			const keys = 300
			all := make([]tuple, keys)
			for i := range all {
				all[i] = testTuple(i)
			}
			rng := rand.New(rand.NewPCG(1, uint64(mask)))
			for step := range 20000 {
				k := all[rng.IntN(keys)]
				switch op := rng.IntN(10); {
				case op < 5: // insert, or replace (TIME-WAIT reuse)
					c := testConn(k)
					ft.add(c)
					want[k] = c
				case op < 8: // remove the table's connection
					if c := want[k]; c != nil {
						ft.remove(c)
						delete(want, k)
					}
				default: // remove a connection that was replaced: nothing
					old := testConn(k)
					ft.remove(old)
				}
				if step%97 == 0 {
					checkTable(t, &ft, want, all)
				}
			}
			checkTable(t, &ft, want, all)
			for _, c := range want {
				ft.remove(c)
			}
			checkTable(t, &ft, map[tuple]*TCPConn{}, all)
			if ft.coll != nil {
				t.Errorf("the collision map is kept once empty (%d entries)", len(ft.coll))
			}
		})
	}
}

// TestFlowTableReplaceCollided: a tuple in the collision map, whose hash
// holder has gone, is entered again: the new connection replaces the
// old one (a map assignment's meaning), which must not stay behind in the
// collision map to be yielded or counted.
func TestFlowTableReplaceCollided(t *testing.T) {
	ft := newFlowTable()
	ft.mask = 0
	a, b := testConn(testTuple(1)), testConn(testTuple(2))
	ft.add(a)
	ft.add(b) // collides with a: in coll
	if len(ft.coll) != 1 {
		t.Fatalf("coll has %d entries, want 1", len(ft.coll))
	}
	ft.remove(a) // hash 0 is free now
	b2 := testConn(testTuple(2))
	ft.add(b2)
	checkTable(t, &ft, map[tuple]*TCPConn{testTuple(2): b2}, []tuple{testTuple(1)})
	ft.remove(b) // the replaced one: nothing happens
	checkTable(t, &ft, map[tuple]*TCPConn{testTuple(2): b2}, nil)
}

// TestFlowTableRemoveWhileIterating: all's loop may remove the
// connection it was given, with and without collisions, and still sees
// every connection once.
func TestFlowTableRemoveWhileIterating(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 0} {
		ft := newFlowTable()
		ft.mask = mask
		for i := range 100 {
			ft.add(testConn(testTuple(i)))
		}
		seen := map[*TCPConn]bool{}
		for c := range ft.all() {
			if seen[c] {
				t.Fatalf("mask %#x: a connection yielded twice", mask)
			}
			seen[c] = true
			ft.remove(c)
		}
		if len(seen) != 100 || ft.len() != 0 {
			t.Fatalf("mask %#x: %d yielded, %d left; want 100, 0", mask, len(seen), ft.len())
		}
	}
}

// TestFlowTableAllocs: a lookup, a miss and a remove and add again
// allocate nothing, at a steady size, with and without collisions.
func TestFlowTableAllocs(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 0} {
		ft := newFlowTable()
		ft.mask = mask
		conns := make([]*TCPConn, 1000)
		for i := range conns {
			conns[i] = testConn(testTuple(i))
			ft.add(conns[i])
		}
		miss := testTuple(5000)
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			c := conns[i%len(conns)]
			i++
			if ft.lookup(c.key()) != c || ft.lookup(miss) != nil {
				panic("lookup")
			}
			ft.remove(c)
			ft.add(c)
		})
		if allocs != 0 {
			t.Errorf("mask %#x: %.1f allocations per lookup, remove and add, want 0", mask, allocs)
		}
	}
}

// flowTableBytes returns the heap bytes per connection of a flow table
// of n connections (the conns are made before the measurement), and of
// the map of 4-tuples it replaced.
func flowTableBytes(conns []*TCPConn, n int) (table, tupleMap float64) {
	var ms runtime.MemStats
	heap := func() uint64 {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	h0 := heap()
	ft := newFlowTable()
	for _, c := range conns[:n] {
		ft.add(c)
	}
	h1 := heap()
	m := map[tuple]*TCPConn{}
	for _, c := range conns[:n] {
		m[c.key()] = c
	}
	h2 := heap()
	runtime.KeepAlive(&ft)
	runtime.KeepAlive(m)
	return float64(int64(h1-h0)) / float64(n), float64(int64(h2-h1)) / float64(n)
}

// TestFlowTableMemory: the flow table costs at most 32 B per connection
// on average over a doubling of the number of connections (Go's map
// grows its tables by doubling, so the figure is a sawtooth), where the
// map of 4-tuples cost about 127 B (issue 13).
func TestFlowTableMemory(t *testing.T) {
	const lo, steps = 1 << 16, 8
	conns := make([]*TCPConn, 2*lo)
	for i := range conns {
		conns[i] = testConn(testTuple(i))
	}
	var sum, sumOld float64
	for i := range steps {
		n := lo + lo*i/steps
		b, old := flowTableBytes(conns, n)
		t.Logf("%7d connections: %5.1f B each (map of 4-tuples: %5.1f B)", n, b, old)
		sum += b
		sumOld += old
	}
	avg, avgOld := sum/steps, sumOld/steps
	t.Logf("average: %.1f B per connection (map of 4-tuples: %.1f B)", avg, avgOld)
	if avg > 32 {
		t.Errorf("the flow table costs %.1f B per connection on average, want at most 32", avg)
	}
	if avg < 8 {
		t.Errorf("the flow table costs %.1f B per connection, less than its pointer: the measurement is broken", avg)
	}
}

// BenchmarkFlowTable measures a lookup of one of n connections (a hit,
// IPv4 or IPv6, in a random order, then a read of the connection, as the
// input path reads it; and a miss) in the flow table and in the map of 4-tuples it
// replaced, and reports each one's bytes per connection.
func BenchmarkFlowTable(b *testing.B) {
	for _, n := range []int{16, 100_000} {
		conns := make([]*TCPConn, n)
		for i := range conns {
			conns[i] = testConn(testTuple(i))
		}
		// The keys looked up: IPv4 ones (even i), IPv6 ones (odd i).
		var keys4, keys6 []tuple
		for i, c := range conns {
			if i%2 == 0 {
				keys4 = append(keys4, c.key())
			} else {
				keys6 = append(keys6, c.key())
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		rng.Shuffle(len(keys4), func(i, j int) { keys4[i], keys4[j] = keys4[j], keys4[i] })
		rng.Shuffle(len(keys6), func(i, j int) { keys6[i], keys6[j] = keys6[j], keys6[i] })
		miss := testTuple(1 << 22)
		table, tupleMap := flowTableBytes(conns, n)
		ft := newFlowTable()
		m := map[tuple]*TCPConn{}
		for _, c := range conns {
			ft.add(c)
			m[c.key()] = c
		}
		for _, fam := range []struct {
			name string
			keys []tuple
		}{{"v4", keys4}, {"v6", keys6}} {
			b.Run(fmt.Sprintf("n=%d/table/hit%s", n, fam.name), func(b *testing.B) {
				b.ReportMetric(table, "B/conn")
				var sum uint16
				for i := range b.N {
					sum += ft.lookup(fam.keys[i%len(fam.keys)]).addrs.rport
				}
				runtime.KeepAlive(sum)
			})
			b.Run(fmt.Sprintf("n=%d/tuplemap/hit%s", n, fam.name), func(b *testing.B) {
				b.ReportMetric(tupleMap, "B/conn")
				var sum uint16
				for i := range b.N {
					sum += m[fam.keys[i%len(fam.keys)]].addrs.rport
				}
				runtime.KeepAlive(sum)
			})
		}
		b.Run(fmt.Sprintf("n=%d/table/miss", n), func(b *testing.B) {
			for range b.N {
				if ft.lookup(miss) != nil {
					b.Fatal("hit")
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/tuplemap/miss", n), func(b *testing.B) {
			for range b.N {
				if m[miss] != nil {
					b.Fatal("hit")
				}
			}
		})
	}
}

// BenchmarkFlowTableGrow1M inserts a million connections one by one,
// into the flow table and into the map of 4-tuples it replaced, and
// reports the slowest insert (max-insert-ns) and how many took over
// 100 µs: Go's map grows a table of at most 1,024 slots at a time, so no
// insert rehashes the whole table under the shard lock. (On a busy
// machine the slowest insert is the scheduler's: compare the two.)
func BenchmarkFlowTableGrow1M(b *testing.B) {
	const n = 1 << 20
	conns := make([]*TCPConn, n)
	keys := make([]tuple, n)
	for i := range conns {
		conns[i] = testConn(testTuple(i))
		keys[i] = conns[i].key()
	}
	for _, kind := range []string{"table", "tuplemap"} {
		b.Run(kind, func(b *testing.B) {
			var worst time.Duration
			slow := 0
			for range b.N {
				ft := newFlowTable()
				m := map[tuple]*TCPConn{}
				for i, c := range conns {
					t0 := time.Now()
					if kind == "table" {
						ft.add(c)
					} else {
						m[keys[i]] = c
					}
					d := time.Since(t0)
					worst = max(worst, d)
					if d > 100*time.Microsecond {
						slow++
					}
				}
			}
			b.ReportMetric(float64(worst.Nanoseconds()), "max-insert-ns")
			b.ReportMetric(float64(slow)/float64(b.N), "inserts>100µs/op")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestFlowTableAddrWords: addrWords is As16's bytes as two big-endian
// words, for every form of address, and a tuple's words are those of
// its connAddrs, so that a lookup finds what add entered.
func TestFlowTableAddrWords(t *testing.T) {
	for _, s := range []string{"10.1.2.3", "0.0.0.0", "255.255.255.255", "::ffff:10.1.2.3", "fd00::1", "2001:db8::ff00:42:8329", "fe80::1%eth0", "::"} {
		a := netip.MustParseAddr(s)
		b := a.As16()
		hi, lo := addrWords(a)
		if hi != binary.BigEndian.Uint64(b[:8]) || lo != binary.BigEndian.Uint64(b[8:]) {
			t.Errorf("%v: words %#x %#x, want As16's %x", a, hi, lo, b)
		}
		k := tuple{netip.AddrPortFrom(a, 443), netip.AddrPortFrom(a, 50000)}
		ft := newFlowTable()
		c := testConn(k)
		ft.add(c)
		if ft.lookup(k) != c {
			t.Errorf("%v: lookup does not find the connection added", a)
		}
	}
	if hi, lo := addrWords(netip.Addr{}); hi != 0 || lo != 0 {
		t.Errorf("the zero Addr: words %#x %#x, want 0", hi, lo)
	}
	// The family is in the key: 10.1.2.3 and ::ffff:10.1.2.3 differ.
	ft := newFlowTable()
	ft.mask = 0
	k4 := tuple{netip.MustParseAddrPort("10.1.2.3:80"), netip.MustParseAddrPort("10.1.2.4:80")}
	k6 := tuple{netip.MustParseAddrPort("[::ffff:10.1.2.3]:80"), netip.MustParseAddrPort("[::ffff:10.1.2.4]:80")}
	c4 := testConn(k4)
	ft.add(c4)
	if ft.lookup(k6) != nil {
		t.Error("an IPv4-mapped IPv6 tuple finds the IPv4 connection")
	}
}
