package stack

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
)

// TestPMTUCache: entries hold until they expire (lookup drops an expired
// one, expire sweeps them), a full cache evicts round robin and counts
// it, the number of entries never passes MaxEntries, and the generation
// moves on every change so connections notice.
func TestPMTUCache(t *testing.T) {
	var st PMTUStats
	c := newPMTUCache(PMTUConfig{MaxEntries: 3}, &st)
	if c.cfg.Expires != 10*time.Minute {
		t.Fatalf("default expiry %v, want 10m (Linux's mtu_expires)", c.cfg.Expires)
	}
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }
	now := clock.Instant(0)
	for i := 1; i <= 3; i++ {
		gen := c.gen
		c.set(now, addr(i), 1000+i)
		if c.gen == gen {
			t.Fatal("set left the generation")
		}
		now = now.Add(time.Minute)
	}
	if m, ok := c.lookup(now, addr(2)); !ok || m != 1002 {
		t.Fatalf("lookup 2: %d %v", m, ok)
	}
	// A fourth evicts the first placed.
	c.set(now, addr(4), 1004)
	if _, ok := c.lookup(now, addr(1)); ok || st.Evictions != 1 || st.Entries != 3 || len(c.idx) != 3 {
		t.Fatalf("after eviction: 1 still there %v, %+v, %d indexed", ok, st, len(c.idx))
	}
	// Updating an entry neither adds nor evicts.
	c.set(now, addr(4), 900)
	if m, _ := c.lookup(now, addr(4)); m != 900 || st.Entries != 3 || st.Evictions != 1 {
		t.Fatalf("update: %d, %+v", m, st)
	}
	// Entry 2 was set at 1 min: it expires at 11 min; lookup finds it gone.
	if _, ok := c.lookup(clock.Instant(0).Add(11*time.Minute), addr(2)); ok || st.Expired != 1 || st.Entries != 2 {
		t.Fatalf("expired entry found: %v, %+v", ok, st)
	}
	// The sweep: entry 3 expires at 12 min, entry 4 at 13 min.
	if c.next > clock.Instant(0).Add(12*time.Minute) {
		t.Fatalf("next expiry %v", time.Duration(c.next))
	}
	c.expire(clock.Instant(0).Add(12*time.Minute + 500*time.Millisecond))
	if st.Expired != 2 || st.Entries != 1 || c.next != clock.Instant(0).Add(13*time.Minute) {
		t.Fatalf("after the sweep: %+v, next %v", st, time.Duration(c.next))
	}
	c.expire(clock.Instant(0).Add(13 * time.Minute))
	if st.Entries != 0 || len(c.idx) != 0 || c.next != clock.Never {
		t.Fatalf("after the last expiry: %+v, %d indexed, next %v", st, len(c.idx), c.next)
	}
	// A flood of new destinations stays within the bound.
	for i := range 1000 {
		c.set(now, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 1200)
	}
	if len(c.slots) != 3 || len(c.idx) != 3 || st.Entries != 3 || st.Evictions != 1+997 {
		t.Fatalf("after a flood: %d slots, %d indexed, %+v", len(c.slots), len(c.idx), st)
	}
}

// TestPlateau: RFC 1191 §5's guess for a fragmentation needed without a
// next-hop MTU.
func TestPlateau(t *testing.T) {
	for size, want := range map[int]int{1500: 1492, 1492: 1006, 9000: 8166, 600: 508, 100: 68, 40: 68} {
		if got := plateauBelow(size); got != want {
			t.Errorf("plateauBelow(%d) = %d, want %d", size, got, want)
		}
	}
}
