package stack

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/wire"
)

// Shared is the part of a host that several cores (Stacks) running one
// host's flows share, as a runtime with N shards runs them (issue 13):
// one neighbour cache (ARP and NDP/NUD) instead of one per core, and the
// hand-offs between cores — a datagram reassembled by the core that got
// its fragments, handed to the core its flow hashes to; a neighbour that
// failed, told to every core so each fails its own connects.
//
// Lock order: a core's caller holds the core's own lock (the runtime's
// shard lock) when it calls into the core, and the core takes Shared's
// lock inside that, for the moment it touches the neighbour cache or the
// hand-off queues, never the other way round: nothing holding Shared's
// lock calls into a core.
//
// One core is the owner (core 0): it does what the host does once —
// IPv6 address configuration (DAD, SLAAC, router solicitations, MLD) and
// reassembly — while the others mirror its IPv6 configuration
// (SyncShared). The runtime hands the owner every frame that teaches the
// host (ARP, neighbour and router advertisements, fragments).
type Shared struct {
	mu    sync.Mutex // taken after a core's lock, never before
	neigh *network.Neighbors
	stats network.Stats // the neighbour cache's counters (reported by the owner)
	// next is the neighbour cache's next deadline, stored at every
	// release of mu, so that a core's NextDeadline reads it without mu.
	next atomic.Int64
	// output is the cache's HasOutput, stored at every release of mu
	// (nunlock), so that a core's flushNeighbors takes mu only when
	// there is something to poll: every poll took it four times, a
	// cache line shared by every core (6 % of crr's CPU with two).
	// Whatever a core queues under mu it sees at its own next poll.
	output atomic.Bool

	steer func(FlowKey) int // the core a TCP flow belongs to
	cores []sharedCore      // by core index
	// npend counts the cores with work in SyncShared: the runtime
	// checks it after every critical section (one atomic load).
	npend atomic.Int32

	// failed are the neighbour resolutions that failed lately, with
	// sequence numbers failSeq-len(failed)+1 .. failSeq; each core reads
	// them from its own cursor.
	failed  []failedNeigh
	failSeq uint64

	// v6 is the owner's IPv6 configuration as the others mirror it, and
	// v6gen its version (0: none yet).
	v6    []nic6Snap
	v6hop uint8
	v6gen uint64
}

// sharedCore is what Shared keeps for one core.
type sharedCore struct {
	pending atomic.Bool
	handoff []handoffPkt // datagrams for the core, in arrival order
}

// failedNeigh is a neighbour whose resolution failed.
type failedNeigh struct {
	nic NICID
	ip  netip.Addr
}

// handoffPkt is a reassembled datagram handed to the core of its flow.
type handoffPkt struct {
	nic NICID
	pkt []byte
}

// maxHandoff bounds the datagrams waiting for one core; more are dropped
// (network.Stats.ReasmHandoffDrops).
const maxHandoff = 256

// maxFailed bounds the neighbour failures kept for cores to read; a core
// that has not caught up with older ones misses them (its connects then
// time out as TCP does, instead of failing early).
const maxFailed = 64

// NewShared returns the shared part of a host of n cores; steer tells
// the core (0 ≤ k < n) of a TCP flow, as the runtime spreads flows.
// cfg's Neighbor settings configure the neighbour cache.
func NewShared(cfg Config, n int, steer func(FlowKey) int) *Shared {
	sh := &Shared{steer: steer, cores: make([]sharedCore, n)}
	sh.neigh = network.NewNeighbors(cfg.Neighbor, &sh.stats)
	sh.next.Store(int64(clock.Never))
	return sh
}

// NewCore returns core i of a host whose cores share sh (core 0 is the
// owner); cfg is as for New.
func NewCore(cfg Config, sh *Shared, i int) *Stack {
	s := New(cfg)
	s.shared = sh
	s.coreIdx = i
	s.host.neigh = sh.neigh
	if i != 0 {
		s.host.mirror6 = true
	}
	return s
}

// Pending reports whether some core has work for SyncShared.
func (sh *Shared) Pending() bool { return sh.npend.Load() != 0 }

// TakePending reports whether core i has work for SyncShared, and clears
// the mark.
func (sh *Shared) TakePending(i int) bool {
	if !sh.cores[i].pending.Swap(false) {
		return false
	}
	sh.npend.Add(-1)
	return true
}

// poke marks core i as having work. The caller holds sh.mu.
func (sh *Shared) poke(i int) {
	if !sh.cores[i].pending.Swap(true) {
		sh.npend.Add(1)
	}
}

// nlock takes the neighbour cache's lock when it is shared; nunlock
// releases it. Every use of s.host.neigh is between the two.
func (s *Stack) nlock() {
	if s.shared != nil {
		s.shared.mu.Lock()
	}
}

func (s *Stack) nunlock() {
	if sh := s.shared; sh != nil {
		sh.next.Store(int64(sh.neigh.NextDeadline()))
		sh.output.Store(sh.neigh.HasOutput())
		sh.mu.Unlock()
	}
}

// neighDeadline returns the neighbour cache's next deadline.
func (s *Stack) neighDeadline() clock.Instant {
	if sh := s.shared; sh != nil {
		return clock.Instant(sh.next.Load())
	}
	return s.host.neigh.NextDeadline()
}

// neighFailedLocked records the failures of the shared cache for the
// other cores and pokes them. The caller holds sh.mu.
func (sh *Shared) neighFailedLocked(self int, f failedNeigh) {
	if len(sh.failed) == maxFailed {
		copy(sh.failed, sh.failed[1:])
		sh.failed = sh.failed[:maxFailed-1]
	}
	sh.failed = append(sh.failed, f)
	sh.failSeq++
	for i := range sh.cores {
		if i != self {
			sh.poke(i)
		}
	}
}

// handOff gives core k a reassembled TCP datagram that arrived on nic
// and reports true, or reports false if the datagram's flow is this
// core's. It copies pkt.
func (s *Stack) handOff(nic NICID, pkt []byte, key FlowKey) bool {
	sh := s.shared
	if sh == nil {
		return false
	}
	k := sh.steer(key)
	if k == s.coreIdx || k < 0 || k >= len(sh.cores) {
		return false
	}
	sh.mu.Lock()
	c := &sh.cores[k]
	if len(c.handoff) >= maxHandoff {
		sh.mu.Unlock()
		s.host.net.ReasmHandoffDrops++
		return true
	}
	c.handoff = append(c.handoff, handoffPkt{nic: nic, pkt: append([]byte(nil), pkt...)})
	sh.poke(k)
	sh.mu.Unlock()
	return true
}

// tcpKeyOf returns the flow key of a received TCP datagram from src to
// dst whose TCP header starts l4, and false if it is too short to tell.
func tcpKeyOf(src, dst netip.Addr, l4 []byte) (FlowKey, bool) {
	if len(l4) < 4 {
		return FlowKey{}, false
	}
	return FlowKey{
		Proto:  wire.ProtoTCP,
		Local:  netip.AddrPortFrom(dst, uint16(l4[2])<<8|uint16(l4[3])),
		Remote: netip.AddrPortFrom(src, uint16(l4[0])<<8|uint16(l4[1])),
	}, true
}

// SyncShared does what the other cores left this one in Shared: it
// fails the connects waiting for a neighbour that failed, takes the
// datagrams reassembled for its flows, and (on a core other than the
// owner) mirrors the owner's IPv6 configuration. The runtime calls it,
// with the core's lock held, when Shared.TakePending says so.
func (s *Stack) SyncShared(now clock.Instant) {
	sh := s.shared
	if sh == nil {
		return
	}
	sh.mu.Lock()
	var fails []failedNeigh
	if s.failCur < sh.failSeq {
		from := len(sh.failed) - int(min(sh.failSeq-s.failCur, uint64(len(sh.failed))))
		fails = append(fails, sh.failed[from:]...)
		s.failCur = sh.failSeq
	}
	c := &sh.cores[s.coreIdx]
	pkts := c.handoff
	c.handoff = nil
	var v6 []nic6Snap
	var hop uint8
	if s.host.mirror6 && sh.v6gen != s.host.v6gen {
		v6, hop = sh.v6, sh.v6hop
		s.host.v6gen = sh.v6gen
	}
	sh.mu.Unlock()
	for _, f := range fails {
		s.neighborFailed(now, f.nic, f.ip)
	}
	if v6 != nil {
		s.applyMirror6(now, v6, hop)
	}
	for _, p := range pkts {
		n := s.nic(p.nic)
		if n == nil || len(p.pkt) == 0 {
			continue
		}
		if p.pkt[0]>>4 == 6 {
			if n.v6 != nil {
				s.handleIPv6(now, n, p.pkt, false, link.Offload{})
			}
		} else {
			s.handleIPv4(now, n, p.pkt, false, link.Offload{})
		}
	}
}

// neighborStats returns the shared neighbour cache's counters (the ARP
// and NDP counters it keeps: network.Neighbors). The owner core adds
// them to its Stats.
func (sh *Shared) neighborStats() network.Stats {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.stats
}
