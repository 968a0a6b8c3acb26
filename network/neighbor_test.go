package network

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

var (
	ipN1  = netip.MustParseAddr("192.0.2.10")
	ipN2  = netip.MustParseAddr("192.0.2.20")
	ipN3  = netip.MustParseAddr("192.0.2.30")
	ipN4  = netip.MustParseAddr("192.0.2.40")
	macN1 = wire.MAC{0x02, 0, 0, 0, 0, 0x10}
	macN2 = wire.MAC{0x02, 0, 0, 0, 0, 0x20}
	macN3 = wire.MAC{0x02, 0, 0, 0, 0, 0x30}
)

// at returns the instant d after the epoch.
func at(d time.Duration) clock.Instant { return clock.Instant(0).Add(d) }

type req struct {
	nic NICID
	ip  netip.Addr
}

func requests(n *Neighbors) []req {
	var rs []req
	for {
		nic, ip, ok := n.PollRequest()
		if !ok {
			return rs
		}
		rs = append(rs, req{nic, ip})
	}
}

type ready struct {
	nic NICID
	mac wire.MAC
	pkt string
}

func readies(n *Neighbors) []ready {
	var rs []ready
	for {
		nic, mac, pkt, ok := n.PollReady()
		if !ok {
			return rs
		}
		rs = append(rs, ready{nic, mac, string(pkt)})
	}
}

func failures(n *Neighbors) []req {
	var rs []req
	for {
		nic, ip, ok := n.PollFailed()
		if !ok {
			return rs
		}
		rs = append(rs, req{nic, ip})
	}
}

// state returns the state of ip's entry on nic, or "" if there is none.
func state(n *Neighbors, nic NICID, ip netip.Addr) string {
	for _, e := range n.Entries() {
		if e.NIC == nic && e.IP == ip {
			return e.State
		}
	}
	return ""
}

// advance runs n's timers up to now the way the stack does: HandleTimeout at
// each NextDeadline that has passed.
func advance(n *Neighbors, now clock.Instant) {
	for i := 0; n.NextDeadline() <= now; i++ {
		if i > 1000 {
			panic("timer loop")
		}
		n.HandleTimeout(n.NextDeadline())
	}
}

func TestNeighborsQueueWhileResolving(t *testing.T) {
	var st Stats
	n := NewNeighbors(NeighborConfig{}, &st)
	buf := []byte("packet-1")
	if _, ok := n.Resolve(0, 1, ipN1, buf); ok {
		t.Fatal("unknown neighbour resolved")
	}
	copy(buf, "XXXXXXXX") // Resolve must have copied it
	n.Resolve(at(time.Millisecond), 1, ipN1, []byte("packet-2"))
	n.Resolve(at(2*time.Millisecond), 1, ipN1, nil) // nothing to queue
	n.Resolve(at(3*time.Millisecond), 1, ipN1, []byte("packet-3"))
	// RFC 1122 §2.3.2.1: one request, not one per packet.
	if got, want := requests(n), []req{{1, ipN1}}; !slices.Equal(got, want) {
		t.Fatalf("requests = %v, want %v", got, want)
	}
	if got := readies(n); got != nil {
		t.Fatalf("ready before resolution: %v", got)
	}
	if e := n.Entries(); len(e) != 1 || e[0].State != "INCOMPLETE" || e[0].Queued != 3 || !e[0].MAC.IsZero() {
		t.Fatalf("Entries = %+v", e)
	}
	if _, ok := n.Lookup(1, ipN1); ok {
		t.Fatal("Lookup of an INCOMPLETE entry succeeded")
	}
	// An invalid address resolves to nothing and schedules nothing.
	if _, ok := n.Resolve(0, 1, netip.Addr{}, []byte("lost")); ok || n.Len() != 1 {
		t.Fatal("Resolve of the zero Addr")
	}
	n.Learn(at(10*time.Millisecond), 1, ipN1, macN1, false) // the reply: merge into the entry
	want := []ready{{1, macN1, "packet-1"}, {1, macN1, "packet-2"}, {1, macN1, "packet-3"}}
	if got := readies(n); !slices.Equal(got, want) {
		t.Fatalf("ready = %v, want %v", got, want)
	}
	if mac, ok := n.Resolve(at(11*time.Millisecond), 1, ipN1, []byte("direct")); !ok || mac != macN1 {
		t.Fatalf("Resolve after Learn = %v %v", mac, ok)
	}
	if got := readies(n); got != nil {
		t.Fatalf("a resolved Resolve queued: %v", got)
	}
	if e := n.Entries(); len(e) != 1 || e[0].State != "REACHABLE" || e[0].MAC != macN1 || e[0].Queued != 0 {
		t.Fatalf("Entries = %+v", e)
	}
	if st.ARPOutRequests != 1 || st.ARPQueueDrops != 0 || st.ARPResolveFailed != 0 {
		t.Fatalf("stats: %+v", st)
	}
	if got := requests(n); got != nil {
		t.Fatalf("requests after resolution: %v", got)
	}
}

func TestNeighborsReadyPacketValidUntilNextPoll(t *testing.T) {
	n := NewNeighbors(NeighborConfig{}, nil)
	n.Resolve(0, 1, ipN1, []byte("first"))
	n.Resolve(0, 1, ipN1, []byte("second"))
	n.Learn(0, 1, ipN1, macN1, false)
	_, _, p1, _ := n.PollReady()
	// A new resolution reuses pooled buffers: it must not reuse p1's yet.
	n.Resolve(0, 1, ipN2, []byte("third"))
	if string(p1) != "first" {
		t.Fatalf("first packet changed before the next PollReady: %q", p1)
	}
	if _, _, p2, _ := n.PollReady(); string(p2) != "second" {
		t.Fatalf("second = %q", p2)
	}
}

func TestNeighborsRetransmitAndGiveUp(t *testing.T) {
	for _, max := range []int{1, 3, 5} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			var st Stats
			n := NewNeighbors(NeighborConfig{RetransTime: time.Second, MaxRequests: max}, &st)
			n.Resolve(0, 7, ipN1, []byte("a"))
			n.Resolve(at(500*time.Millisecond), 7, ipN1, []byte("b"))
			var sentAt []time.Duration
			for now := time.Duration(0); now <= time.Duration(max+2)*time.Second; now += 100 * time.Millisecond {
				advance(n, at(now))
				for range requests(n) {
					sentAt = append(sentAt, now)
				}
				if f := failures(n); f != nil {
					if !slices.Equal(f, []req{{7, ipN1}}) {
						t.Fatalf("failures = %v", f)
					}
					// RFC 1122 §2.3.2.1: MaxRequests requests RetransTime
					// apart, then give up RetransTime after the last.
					if now != time.Duration(max)*time.Second {
						t.Fatalf("gave up at %v, want %v", now, time.Duration(max)*time.Second)
					}
					break
				}
			}
			var want []time.Duration
			for i := range max {
				want = append(want, time.Duration(i)*time.Second)
			}
			if !slices.Equal(sentAt, want) {
				t.Fatalf("requests at %v, want %v", sentAt, want)
			}
			if st.ARPResolveFailed != 1 || st.ARPQueueDrops != 2 || st.ARPOutRequests != uint64(max) {
				t.Fatalf("stats: failed %d drops %d requests %d", st.ARPResolveFailed, st.ARPQueueDrops, st.ARPOutRequests)
			}
			if got := readies(n); got != nil {
				t.Fatalf("dropped packets came out: %v", got)
			}
			failedAt := time.Duration(max) * time.Second
			if s := state(n, 7, ipN1); s != "FAILED" {
				t.Fatalf("state after giving up = %q", s)
			}
			// While FAILED, packets are dropped and no request is sent.
			if _, ok := n.Resolve(at(failedAt+500*time.Millisecond), 7, ipN1, []byte("c")); ok {
				t.Fatal("FAILED entry resolved")
			}
			if r := requests(n); r != nil || st.ARPQueueDrops != 3 {
				t.Fatalf("during FAILED: requests %v, drops %d", r, st.ARPQueueDrops)
			}
			advance(n, at(failedAt+time.Second-1))
			if s := state(n, 7, ipN1); s != "FAILED" {
				t.Fatalf("FAILED entry gone early: %q", s)
			}
			advance(n, at(failedAt+time.Second))
			if s := state(n, 7, ipN1); s != "" {
				t.Fatalf("FAILED entry kept past RetransTime: %q", s)
			}
			// Then resolution starts over.
			n.Resolve(at(failedAt+time.Second), 7, ipN1, []byte("d"))
			if r := requests(n); !slices.Equal(r, []req{{7, ipN1}}) {
				t.Fatalf("restart: requests %v", r)
			}
		})
	}
}

func TestNeighborsLearnAfterRetriesStopsThem(t *testing.T) {
	n := NewNeighbors(NeighborConfig{}, nil)
	n.Resolve(0, 1, ipN1, []byte("x"))
	requests(n)
	advance(n, at(time.Second)) // second request due, not polled yet
	n.Learn(at(time.Second), 1, ipN1, macN1, false)
	if r := requests(n); r != nil {
		t.Fatalf("request still sent after the answer: %v", r)
	}
	advance(n, at(10*time.Second))
	if r, f := requests(n), failures(n); r != nil || f != nil {
		t.Fatalf("after resolution: requests %v failures %v", r, f)
	}
	if got := readies(n); len(got) != 1 || got[0].pkt != "x" {
		t.Fatalf("ready = %v", got)
	}
}

func TestNeighborsQueueOverflowDropsOldest(t *testing.T) {
	var st Stats
	n := NewNeighbors(NeighborConfig{QueueLen: 3}, &st)
	for i := 1; i <= 5; i++ {
		n.Resolve(0, 1, ipN1, []byte(fmt.Sprint("p", i)))
	}
	if st.ARPQueueDrops != 2 {
		t.Fatalf("ARPQueueDrops = %d, want 2", st.ARPQueueDrops)
	}
	n.Learn(0, 1, ipN1, macN1, false)
	want := []ready{{1, macN1, "p3"}, {1, macN1, "p4"}, {1, macN1, "p5"}}
	if got := readies(n); !slices.Equal(got, want) {
		t.Fatalf("ready = %v, want %v", got, want)
	}

	// The byte limit (unres_qlen_bytes) drops the oldest too, but a packet
	// alone is always kept.
	st = Stats{}
	n = NewNeighbors(NeighborConfig{QueueBytes: 1000}, &st)
	for i := 1; i <= 4; i++ {
		n.Resolve(0, 1, ipN1, bytes.Repeat([]byte{byte('0' + i)}, 400))
	}
	n.Resolve(0, 1, ipN2, make([]byte, 1500))
	n.Learn(0, 1, ipN1, macN1, false)
	n.Learn(0, 1, ipN2, macN2, false)
	got := readies(n)
	if len(got) != 3 || got[0].pkt[0] != '3' || got[1].pkt[0] != '4' || len(got[2].pkt) != 1500 || got[2].mac != macN2 {
		t.Fatalf("byte-limited queue gave %d packets", len(got))
	}
	if st.ARPQueueDrops != 2 {
		t.Fatalf("ARPQueueDrops = %d, want 2", st.ARPQueueDrops)
	}
}

func TestNeighborsReachableStaleRemoved(t *testing.T) {
	cfg := NeighborConfig{ReachableTime: 30 * time.Second, StaleTime: 60 * time.Second}
	n := NewNeighbors(cfg, nil)
	n.Learn(0, 1, ipN1, macN1, true) // unused from now on
	n.Learn(0, 1, ipN2, macN2, true) // used while stale
	if d := n.NextDeadline(); d != at(30*time.Second) {
		t.Fatalf("NextDeadline = %v, want 30s", d)
	}
	advance(n, at(30*time.Second-1))
	if mac, ok := n.Resolve(at(30*time.Second-1), 1, ipN2, nil); !ok || mac != macN2 || state(n, 1, ipN2) != "REACHABLE" {
		t.Fatal("entry not REACHABLE before ReachableTime")
	}
	if r := requests(n); r != nil {
		t.Fatalf("REACHABLE use sent %v", r)
	}
	advance(n, at(30*time.Second))
	if s1, s2 := state(n, 1, ipN1), state(n, 1, ipN2); s1 != "STALE" || s2 != "STALE" {
		t.Fatalf("after ReachableTime: %q %q", s1, s2)
	}
	// A STALE entry is still used; its first use schedules one refresh
	// request, and further uses within ReachableTime none.
	if mac, ok := n.Resolve(at(31*time.Second), 1, ipN2, []byte("p")); !ok || mac != macN2 {
		t.Fatal("STALE entry not used")
	}
	n.Resolve(at(32*time.Second), 1, ipN2, nil)
	if r := requests(n); !slices.Equal(r, []req{{1, ipN2}}) {
		t.Fatalf("refresh requests = %v", r)
	}
	n.Resolve(at(40*time.Second), 1, ipN2, nil) // last use
	if r := requests(n); r != nil {
		t.Fatalf("second refresh within ReachableTime: %v", r)
	}
	if got := readies(n); got != nil {
		t.Fatalf("STALE use queued packets: %v", got)
	}
	// The unused one goes StaleTime after it went STALE; the used one
	// StaleTime after its last use.
	advance(n, at(90*time.Second-1))
	if state(n, 1, ipN1) != "STALE" {
		t.Fatal("unused STALE entry removed early")
	}
	advance(n, at(90*time.Second))
	if s := state(n, 1, ipN1); s != "" {
		t.Fatalf("unused STALE entry kept: %q", s)
	}
	advance(n, at(100*time.Second-1))
	if state(n, 1, ipN2) != "STALE" {
		t.Fatal("used STALE entry removed early")
	}
	advance(n, at(100*time.Second))
	if s := state(n, 1, ipN2); s != "" {
		t.Fatalf("STALE entry kept StaleTime after last use: %q", s)
	}
	if d := n.NextDeadline(); d != clock.Never {
		t.Fatalf("NextDeadline of an empty cache = %v", d)
	}
}

func TestNeighborsStaleRefreshAnswered(t *testing.T) {
	n := NewNeighbors(NeighborConfig{ReachableTime: 30 * time.Second}, nil)
	n.Learn(0, 1, ipN1, macN1, true)
	advance(n, at(30*time.Second))
	n.Resolve(at(35*time.Second), 1, ipN1, nil)
	if r := requests(n); len(r) != 1 {
		t.Fatalf("refresh requests = %v", r)
	}
	newMAC := wire.MAC{0x02, 0, 0, 0, 0, 0x99} // the address moved
	n.Learn(at(35*time.Second), 1, ipN1, newMAC, false)
	if mac, ok := n.Resolve(at(36*time.Second), 1, ipN1, nil); !ok || mac != newMAC || state(n, 1, ipN1) != "REACHABLE" {
		t.Fatalf("after refresh: %v %v %q", mac, ok, state(n, 1, ipN1))
	}
	advance(n, at(65*time.Second-1))
	if state(n, 1, ipN1) != "REACHABLE" {
		t.Fatal("refreshed entry did not restart ReachableTime")
	}
	// A refresh still queued when the answer comes is not sent.
	advance(n, at(65*time.Second))
	n.Resolve(at(66*time.Second), 1, ipN1, nil)
	n.Learn(at(66*time.Second), 1, ipN1, newMAC, false)
	if r := requests(n); r != nil {
		t.Fatalf("answered refresh still sent: %v", r)
	}
}

func TestNeighborsLearnMergeRule(t *testing.T) {
	var st Stats
	n := NewNeighbors(NeighborConfig{}, &st)
	// RFC 826: without create, an unknown sender is not added.
	n.Learn(0, 1, ipN1, macN1, false)
	if e := n.Entries(); len(e) != 0 {
		t.Fatalf("Learn(create=false) added %+v", e)
	}
	if _, ok := n.Lookup(1, ipN1); ok {
		t.Fatal("Lookup found an entry Learn(create=false) should not have made")
	}
	n.Learn(0, 1, ipN1, macN1, true)
	if mac, ok := n.Lookup(1, ipN1); !ok || mac != macN1 {
		t.Fatalf("Learn(create=true): Lookup = %v %v", mac, ok)
	}
	// An existing entry is updated without create.
	n.Learn(0, 1, ipN1, macN2, false)
	if mac, _ := n.Lookup(1, ipN1); mac != macN2 {
		t.Fatalf("merge: MAC = %v, want %v", mac, macN2)
	}
	// The same address on another NIC is another neighbour.
	if _, ok := n.Lookup(2, ipN1); ok {
		t.Fatal("entry leaked to another NIC")
	}
	// Unusable addresses are refused and counted.
	for _, c := range []struct {
		ip  netip.Addr
		mac wire.MAC
	}{
		{ipN2, wire.BroadcastMAC},
		{ipN2, wire.MAC{0x01, 0x00, 0x5e, 0, 0, 1}},
		{ipN2, wire.MAC{}},
		{netip.Addr{}, macN1},
		{netip.MustParseAddr("0.0.0.0"), macN1},
		{netip.MustParseAddr("224.0.0.1"), macN1},
		{netip.MustParseAddr("255.255.255.255"), macN1},
	} {
		n.Learn(0, 1, c.ip, c.mac, true)
	}
	if st.ARPBad != 7 || n.Len() != 1 {
		t.Fatalf("ARPBad = %d, entries %d", st.ARPBad, n.Len())
	}
}

func TestNeighborsTableFull(t *testing.T) {
	var st Stats
	cfg := NeighborConfig{MaxEntries: 3, MaxUnresolved: 3, ReachableTime: 10 * time.Second, StaleTime: 100 * time.Second}
	n := NewNeighbors(cfg, &st)
	n.Add(9, ipN4, macN3) // permanent: does not count
	n.Learn(0, 1, ipN1, macN1, true)
	n.Learn(at(time.Second), 1, ipN2, macN2, true)
	n.Resolve(at(2*time.Second), 1, ipN3, []byte("q"))
	requests(n)
	// Full of REACHABLE and INCOMPLETE entries: refuse.
	if _, ok := n.Resolve(at(3*time.Second), 2, ipN1, []byte("refused")); ok || n.Len() != 4 {
		t.Fatal("resolved past a full table")
	}
	if st.ARPTableFull != 1 || st.ARPQueueDrops != 1 {
		t.Fatalf("ARPTableFull %d ARPQueueDrops %d", st.ARPTableFull, st.ARPQueueDrops)
	}
	if r := requests(n); r != nil {
		t.Fatalf("refused entry sent %v", r)
	}
	n.Learn(at(3*time.Second), 2, ipN2, macN2, true) // refused too
	if st.ARPTableFull != 2 || state(n, 2, ipN2) != "" {
		t.Fatal("Learn(create) past a full table")
	}
	// ipN1 and ipN2 go STALE at 10 s and 11 s; ipN3 fails at 5 s.
	advance(n, at(12*time.Second))
	failures(n)
	if s := state(n, 1, ipN3); s != "" {
		t.Fatalf("ipN3 = %q, want removed", s) // FAILED for 1 s, then gone
	}
	n.Resolve(at(12*time.Second), 1, ipN3, nil) // refill the table
	n.Resolve(at(13*time.Second), 1, ipN2, nil) // ipN2 used: ipN1 is idle longest
	n.Resolve(at(14*time.Second), 2, ipN1, nil)
	if state(n, 1, ipN1) != "" || state(n, 1, ipN2) != "STALE" || state(n, 2, ipN1) != "INCOMPLETE" {
		t.Fatalf("eviction: %+v", n.Entries())
	}
	if state(n, 9, ipN4) != "PERMANENT" {
		t.Fatal("permanent entry evicted")
	}
	// FAILED entries are evictable too.
	advance(n, at(17*time.Second)) // ipN3 (1) has failed at 15 s, ipN1 (2) at 17 s
	n.Resolve(at(17*time.Second), 3, ipN1, nil)
	if state(n, 1, ipN3) != "" || state(n, 3, ipN1) != "INCOMPLETE" || n.Len() != 4 {
		t.Fatalf("FAILED eviction: %+v", n.Entries())
	}
}

func TestNeighborsPermanent(t *testing.T) {
	var st Stats
	n := NewNeighbors(NeighborConfig{}, &st)
	n.Resolve(0, 1, ipN1, []byte("waiting"))
	n.Add(1, ipN1, macN1) // over an INCOMPLETE entry: releases its queue
	if got := readies(n); !slices.Equal(got, []ready{{1, macN1, "waiting"}}) {
		t.Fatalf("ready = %v", got)
	}
	requests(n)
	n.Learn(0, 1, ipN1, macN2, true) // ARP does not override a static entry
	if mac, ok := n.Resolve(0, 1, ipN1, nil); !ok || mac != macN1 {
		t.Fatalf("Resolve = %v %v", mac, ok)
	}
	if d := n.NextDeadline(); d != at(time.Second) {
		t.Fatalf("NextDeadline = %v (the INCOMPLETE timer, harmless)", d)
	}
	advance(n, at(time.Hour))
	if mac, ok := n.Resolve(at(time.Hour), 1, ipN1, nil); !ok || mac != macN1 || state(n, 1, ipN1) != "PERMANENT" {
		t.Fatal("permanent entry expired")
	}
	if r, f := requests(n), failures(n); r != nil || f != nil {
		t.Fatalf("permanent entry: requests %v failures %v", r, f)
	}
	if n.NextDeadline() != clock.Never {
		t.Fatal("permanent entry keeps a timer")
	}
	if !n.Remove(1, ipN1) || n.Remove(1, ipN1) || n.Len() != 0 {
		t.Fatal("Remove")
	}
	n.Add(1, netip.Addr{}, macN1)
	if n.Len() != 0 {
		t.Fatal("Add of an invalid address")
	}
}

func TestNeighborsRemoveNIC(t *testing.T) {
	var st Stats
	n := NewNeighbors(NeighborConfig{}, &st)
	n.Resolve(0, 1, ipN1, []byte("a1"))
	n.Resolve(0, 2, ipN1, []byte("b1"))
	n.Resolve(0, 1, ipN2, []byte("a2"))
	n.Learn(0, 1, ipN2, macN2, false) // a2 ready, not polled
	n.Resolve(0, 2, ipN2, []byte("b2"))
	n.Learn(0, 2, ipN2, macN2, false) // b2 ready
	n.Add(1, ipN3, macN3)
	n.RemoveNIC(1)
	if got := requests(n); !slices.Equal(got, []req{{2, ipN1}}) {
		t.Fatalf("requests = %v", got)
	}
	if got := readies(n); !slices.Equal(got, []ready{{2, macN2, "b2"}}) {
		t.Fatalf("ready = %v", got)
	}
	for _, e := range n.Entries() {
		if e.NIC == 1 {
			t.Fatalf("entry of the removed NIC: %+v", e)
		}
	}
	if st.ARPQueueDrops != 2 { // a1 queued, a2 ready
		t.Fatalf("ARPQueueDrops = %d", st.ARPQueueDrops)
	}
	advance(n, at(10*time.Second))
	if got := failures(n); !slices.Equal(got, []req{{2, ipN1}}) {
		t.Fatalf("failures = %v", got)
	}
	// Failures not yet taken are forgotten with the NIC.
	n.Resolve(at(10*time.Second), 1, ipN1, nil)
	n.Resolve(at(10*time.Second), 2, ipN1, nil)
	advance(n, at(20*time.Second))
	n.RemoveNIC(1)
	if got := failures(n); !slices.Equal(got, []req{{2, ipN1}}) {
		t.Fatalf("failures after RemoveNIC = %v", got)
	}
}

func TestNeighborsEntriesSorted(t *testing.T) {
	n := NewNeighbors(NeighborConfig{}, nil)
	n.Add(2, ipN1, macN1)
	n.Learn(0, 1, ipN3, macN3, true)
	n.Resolve(0, 1, ipN1, nil)
	got := n.Entries()
	want := []NeighborEntry{
		{NIC: 1, IP: ipN1, State: "INCOMPLETE"},
		{NIC: 1, IP: ipN3, MAC: macN3, State: "REACHABLE"},
		{NIC: 2, IP: ipN1, MAC: macN1, State: "PERMANENT"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Entries = %+v\nwant %+v", got, want)
	}
}

// TestNeighborsUnresolvedBound: at most MaxUnresolved resolutions run at
// once, over all NICs; a new one abandons the one that started longest
// ago, whose packets are dropped (ARPUnresolvedEvicted, ARPQueueDrops),
// without reporting it as failed. A flood of unanswered neighbours
// therefore cannot fill the table: a real neighbour is still learned and
// resolved.
func TestNeighborsUnresolvedBound(t *testing.T) {
	var st Stats
	n := NewNeighbors(NeighborConfig{MaxEntries: 16, MaxUnresolved: 4}, &st)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}) }
	now := at(0)
	for i := range 100 {
		now = now.Add(time.Millisecond)
		n.Resolve(now, NICID(1+i%2), addr(i), []byte{byte(i)})
	}
	var inc []netip.Addr
	for _, e := range n.Entries() {
		if e.State == "INCOMPLETE" {
			inc = append(inc, e.IP)
		}
	}
	slices.SortFunc(inc, netip.Addr.Compare)
	if want := []netip.Addr{addr(96), addr(97), addr(98), addr(99)}; !slices.Equal(inc, want) {
		t.Errorf("INCOMPLETE %v, want the newest four %v", inc, want)
	}
	if st.ARPUnresolvedEvicted != 96 || st.ARPQueueDrops != 96 || st.ARPTableFull != 0 || st.ARPResolveFailed != 0 {
		t.Errorf("ARPUnresolvedEvicted %d ARPQueueDrops %d ARPTableFull %d ARPResolveFailed %d, want 96 96 0 0",
			st.ARPUnresolvedEvicted, st.ARPQueueDrops, st.ARPTableFull, st.ARPResolveFailed)
	}
	if f := failures(n); len(f) != 0 {
		t.Errorf("evicted resolutions reported as failed: %v", f)
	}
	// A real neighbour asks for us: learned (the table has room), and
	// what we send it goes out at once.
	n.Learn(now, 1, ipN1, macN1, true)
	if mac, ok := n.Resolve(now, 1, ipN1, []byte("syn-ack")); !ok || mac != macN1 {
		t.Errorf("real neighbour: %v %v", mac, ok)
	}
	// One we resolve answers before the flood evicts it.
	n.Resolve(now, 1, ipN2, []byte("syn-ack"))
	n.Resolve(now, 1, addr(200), nil)
	n.Learn(now, 1, ipN2, macN2, false)
	if r := readies(n); len(r) != 1 {
		t.Errorf("the answered neighbour's packet: %v", r)
	}
}

// TestNeighborsQueuedBound: beyond the first packet of each unresolved
// neighbour, at most MaxQueued packets wait over the whole stack; past
// that, a neighbour's queue stops growing (its oldest packet makes room,
// ARPQueueFull), but a new neighbour's first packet is always kept.
func TestNeighborsQueuedBound(t *testing.T) {
	var st Stats
	n := NewNeighbors(NeighborConfig{MaxQueued: 5}, &st)
	// Two neighbours take 3 + 3 packets: 4 beyond their first.
	for i := range 3 {
		n.Resolve(0, 1, ipN1, []byte{1, byte(i)})
		n.Resolve(0, 1, ipN2, []byte{2, byte(i)})
	}
	// One more fits, then the bound holds: N1's queue keeps 4 packets.
	for i := 3; i < 10; i++ {
		n.Resolve(0, 1, ipN1, []byte{1, byte(i)})
	}
	if st.ARPQueueFull != 6 || st.ARPQueueDrops != 6 {
		t.Errorf("ARPQueueFull %d ARPQueueDrops %d, want 6 6", st.ARPQueueFull, st.ARPQueueDrops)
	}
	// A new neighbour's first packet is queued all the same, and goes out
	// when it answers; N1's newest packets wait.
	n.Resolve(0, 1, ipN3, []byte{3, 0})
	n.Learn(0, 1, ipN3, macN3, false)
	n.Learn(0, 1, ipN1, macN1, false)
	r := readies(n)
	want := []ready{
		{1, macN3, "\x03\x00"},
		{1, macN1, "\x01\x06"}, {1, macN1, "\x01\x07"}, {1, macN1, "\x01\x08"}, {1, macN1, "\x01\x09"},
	}
	if !slices.Equal(r, want) {
		t.Errorf("sent %v, want %v", r, want)
	}
	// N2's three still wait, and count: two beyond its first.
	if n.extra != 2 {
		t.Errorf("%d packets beyond the first, want 2", n.extra)
	}
}

func TestNeighborsDefaults(t *testing.T) {
	c := NewNeighbors(NeighborConfig{}, nil).Config()
	want := NeighborConfig{30 * time.Second, 60 * time.Second, time.Second, 3, 101, 1024, 212992, 256, 1024, 5 * time.Second, 3}
	if c != want {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
}

func TestNeighborsAllocs(t *testing.T) {
	n := NewNeighbors(NeighborConfig{}, nil)
	n.Learn(0, 1, ipN1, macN1, true)
	pkt := make([]byte, 1500)
	if a := testing.AllocsPerRun(100, func() { n.Resolve(0, 1, ipN1, pkt) }); a != 0 {
		t.Errorf("Resolve of a known neighbour allocates %v", a)
	}
	// A whole resolution, after warm-up: entries, buffers and queues are
	// reused.
	now := clock.Instant(0)
	cycle := func() {
		now = now.Add(time.Millisecond)
		for range 4 {
			n.Resolve(now, 1, ipN2, pkt)
		}
		n.PollRequest()
		n.Learn(now, 1, ipN2, macN2, false)
		for {
			if _, _, _, ok := n.PollReady(); !ok {
				break
			}
		}
		n.Remove(1, ipN2)
	}
	for range 10 {
		cycle()
	}
	if a := testing.AllocsPerRun(100, cycle); a != 0 {
		t.Errorf("a resolution cycle allocates %v", a)
	}
}

// TestNeighborsRandomTimersAndConservation drives two caches with the same
// random calls: one has HandleTimeout called every tick, the other only when
// its NextDeadline has passed. Their outputs must be identical (so
// NextDeadline is never late), and every queued packet must be accounted
// for: sent from PollReady, counted as dropped, or still queued.
func TestNeighborsRandomTimersAndConservation(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		cfg := NeighborConfig{
			ReachableTime: time.Duration(1+rng.IntN(30)) * 100 * time.Millisecond,
			StaleTime:     time.Duration(1+rng.IntN(30)) * 100 * time.Millisecond,
			RetransTime:   time.Duration(1+rng.IntN(10)) * 100 * time.Millisecond,
			MaxRequests:   1 + rng.IntN(4),
			QueueLen:      1 + rng.IntN(4),
			MaxEntries:    1 + rng.IntN(6),
			MaxUnresolved: 1 + rng.IntN(6),
			MaxQueued:     1 + rng.IntN(6),
		}
		var sa, sb Stats
		a, b := NewNeighbors(cfg, &sa), NewNeighbors(cfg, &sb)
		ips := []netip.Addr{ipN1, ipN2, ipN3, ipN4, netip.MustParseAddr("192.0.2.50")}
		macs := []wire.MAC{macN1, macN2, macN3}
		sent, outA, outB := 0, "", ""
		poll := func(n *Neighbors, out *string) {
			for _, r := range requests(n) {
				*out += fmt.Sprintf("req %v;", r)
			}
			for _, r := range readies(n) {
				*out += fmt.Sprintf("ready %v;", r)
			}
			for _, r := range failures(n) {
				*out += fmt.Sprintf("fail %v;", r)
			}
		}
		for tick := 0; tick < 2000; tick++ {
			now := at(time.Duration(tick) * 100 * time.Millisecond)
			a.HandleTimeout(now)
			if b.NextDeadline() <= now {
				b.HandleTimeout(now)
			}
			for range rng.IntN(3) {
				nic, ip := NICID(rng.IntN(2)), ips[rng.IntN(len(ips))]
				switch rng.IntN(6) {
				case 0, 1, 2:
					p := []byte(fmt.Sprint("pkt", sent))
					sent++
					ma, oka := a.Resolve(now, nic, ip, p)
					mb, okb := b.Resolve(now, nic, ip, p)
					if ma != mb || oka != okb {
						t.Fatalf("seed %d tick %d: Resolve differs", seed, tick)
					}
					if oka {
						sent-- // went out directly
					}
				case 3, 4:
					mac, create := macs[rng.IntN(len(macs))], rng.IntN(2) == 0
					a.Learn(now, nic, ip, mac, create)
					b.Learn(now, nic, ip, mac, create)
				case 5:
					if rng.IntN(20) == 0 {
						a.RemoveNIC(nic)
						b.RemoveNIC(nic)
					}
				}
			}
			poll(a, &outA)
			poll(b, &outB)
			if outA != outB {
				t.Fatalf("seed %d tick %d: outputs differ:\n%s\n%s", seed, tick, outA, outB)
			}
			if !slices.Equal(a.Entries(), b.Entries()) {
				t.Fatalf("seed %d tick %d: entries differ", seed, tick)
			}
			if n := a.Len(); n > cfg.MaxEntries {
				t.Fatalf("seed %d: %d entries, max %d", seed, n, cfg.MaxEntries)
			}
			incomplete, extra := 0, 0
			for _, e := range a.Entries() {
				if e.State == "INCOMPLETE" {
					incomplete++
				}
				extra += max(e.Queued-1, 0)
			}
			if incomplete > cfg.MaxUnresolved || incomplete != a.npending || extra > cfg.MaxQueued || extra != a.extra {
				t.Fatalf("seed %d tick %d: %d INCOMPLETE (counted %d, max %d), %d packets beyond the first (counted %d, max %d)",
					seed, tick, incomplete, a.npending, cfg.MaxUnresolved, extra, a.extra, cfg.MaxQueued)
			}
		}
		queued := 0
		for _, e := range a.Entries() {
			queued += e.Queued
		}
		readyOut := bytes.Count([]byte(outA), []byte("ready"))
		if uint64(sent) != uint64(readyOut)+sa.ARPQueueDrops+uint64(queued) {
			t.Fatalf("seed %d: %d queued in all, %d sent + %d dropped + %d waiting", seed, sent, readyOut, sa.ARPQueueDrops, queued)
		}
		if sa != sb {
			t.Fatalf("seed %d: stats differ", seed)
		}
	}
}
