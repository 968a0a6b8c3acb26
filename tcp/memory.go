package tcp

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/chunk"
)

// The stack-wide budget of TCP buffer memory, as Linux's net.ipv4.tcp_mem.
//
// Every chunk a send or receive buffer takes (out-of-order data included)
// is charged to a Memory that all the connections of a stack, over all its
// shards, share. An Env does not touch the shared counter per chunk: it
// charges it in quanta of memQuantum and keeps what it charged and has not
// used as a forward allocation (Linux's sk_forward_alloc, and its per-CPU
// batch of tcp_memory_allocated), given back when it grows past a quantum.
// The shared counter is therefore exact to within a quantum per Env.
//
// The thresholds act as tcp_mem's three values (sk_mem_schedule and
// __sk_mem_raise_allocated):
//   - at or below Low nothing is limited, and memory pressure ends;
//   - above Pressure the stack is under memory pressure until it falls back
//     to Low: receive buffers stop auto-tuning and new window
//     advertisements are clamped to four segments (tcp_adjust_rcv_ssthresh)
//     without ever retracting the right edge already advertised (RFC 9293
//     §3.8.6); send buffers stop auto-tuning (tcp_should_expand_sndbuf);
//   - a charge that would take the account above High fails: a segment
//     that needs a new chunk first makes its connection drop its
//     out-of-order data (tcp_prune_ofo_queue, counted in OFOPruned), and is
//     dropped if that is not enough (TCPRcvQDrop, RcvQDrop); Write takes
//     only what fits in the chunks the send buffer already holds, and
//     reports ErrWouldBlock (Writable false) beyond.
//
// As Linux (tcp_data_queue's sk_forced_mem_schedule, and tcp_wmem[0]'s
// guarantee), a connection whose receive buffer holds no readable data
// may always take in-order data, and one whose send buffer is empty may
// always take one chunk of writes, so that every connection keeps making
// progress however the others use the memory: the account exceeds High by
// at most those forced charges plus a quantum per Env.

// memQuantum is how much an Env charges the shared account at a time, and
// the most forward allocation it keeps.
const memQuantum = 4 * chunk.Size

// MemLimits are the thresholds of the stack-wide TCP buffer budget in
// bytes (net.ipv4.tcp_mem's min, pressure and max, which are in pages).
type MemLimits struct {
	// Low: at or below it memory pressure ends (tcp_mem[0]).
	Low int64
	// Pressure: above it the stack is under memory pressure
	// (tcp_mem[1]).
	Pressure int64
	// High: no charge takes the account above it but the forced ones
	// that keep every connection moving (tcp_mem[2]). A negative High
	// turns the budget off: memory is still counted, never limited.
	High int64
}

// DefaultMemLimits returns the limits a stack gets when Config.Mem is zero,
// derived from the machine's memory as Linux's tcp_init_mem does: with M
// the memory (Linux counts the free buffer pages at boot; ustack the total
// RAM, or 4 GiB where it cannot be read), Pressure is M/16, Low three
// quarters of it (3M/64) and High twice Low (3M/32). On a 25 GB machine
// that is 1.1 GiB, 1.5 GiB and 2.2 GiB.
func DefaultMemLimits() MemLimits {
	return memLimitsFor(machineRAM())
}

// machineRAM is totalRAM, read once (every Env without limits asks).
var machineRAM = sync.OnceValue(totalRAM)

// memLimitsFor derives tcp_mem from m bytes of memory (tcp_init_mem:
// limit = pages/16, at least 128 pages; min = limit/4*3; max = min*2).
func memLimitsFor(m int64) MemLimits {
	if m <= 0 {
		m = 4 << 30
	}
	const page = 4096
	limit := max(m/page/16, 128)
	low := limit / 4 * 3
	return MemLimits{Low: low * page, Pressure: limit * page, High: 2 * low * page}
}

// check reports limits out of order.
func (l MemLimits) check() error {
	if l.High < 0 {
		return nil
	}
	if l.Low < 0 || l.Low > l.Pressure || l.Pressure > l.High {
		return fmt.Errorf("tcp: Config.Mem: want 0 <= Low <= Pressure <= High, have %d, %d, %d", l.Low, l.Pressure, l.High)
	}
	return nil
}

// withDefaults fills zero fields from DefaultMemLimits and puts the
// values in order.
func (l MemLimits) withDefaults() MemLimits {
	if l.High < 0 {
		return MemLimits{Low: math.MaxInt64, Pressure: math.MaxInt64, High: math.MaxInt64}
	}
	if l.Low == 0 || l.Pressure == 0 || l.High == 0 {
		d := DefaultMemLimits()
		if l.Low == 0 {
			l.Low = d.Low
		}
		if l.Pressure == 0 {
			l.Pressure = max(d.Pressure, l.Low)
		}
		if l.High == 0 {
			l.High = max(d.High, l.Pressure)
		}
	}
	l.Low = max(l.Low, 0)
	l.Pressure = max(l.Pressure, l.Low)
	l.High = max(l.High, l.Pressure)
	return l
}

// Memory is the account of TCP buffer memory that the connections of one
// stack (all its shards) share, or of several stacks made with the same
// Config.Memory. It is safe for concurrent use.
type Memory struct {
	limits MemLimits
	_      [64]byte
	// allocated is the bytes charged: chunks held plus every Env's
	// forward allocation.
	allocated atomic.Int64
	_         [56]byte
	// pressure is read on every window advertisement: it has a cache
	// line of its own, written only when pressure starts or ends.
	pressure atomic.Bool
	_        [63]byte
	peak     atomic.Int64

	mu       sync.Mutex // transitions of pressure
	entries  uint64
	since    clock.Instant
	pressDur time.Duration
}

// NewMemory returns an account with limits; zero fields take
// DefaultMemLimits' values.
func NewMemory(limits MemLimits) *Memory {
	return &Memory{limits: limits.withDefaults()}
}

// Limits returns the account's thresholds, defaults filled in.
func (m *Memory) Limits() MemLimits { return m.limits }

// UnderPressure reports whether the stack is under memory pressure
// (Linux's tcp_under_memory_pressure).
func (m *Memory) UnderPressure() bool { return m.pressure.Load() }

// MemStats are a Memory's counters.
type MemStats struct {
	// Allocated is the bytes charged now: chunks held by buffers plus
	// the forward allocation each Env keeps (at most 64 KiB each).
	Allocated int64
	// Peak is the largest Allocated seen.
	Peak int64
	// Pressure says whether the stack is under memory pressure now.
	Pressure bool
	// PressureEntries counts the times pressure started
	// (TCPMemoryPressures).
	PressureEntries uint64
	// TimeInPressure is the time spent under pressure in the spells
	// that ended (TCPMemoryPressuresChrono; a spell is added when it
	// ends), measured at the instants of the events the stack handled
	// when it began and ended.
	TimeInPressure time.Duration
}

// Stats returns the account's counters.
func (m *Memory) Stats() MemStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := MemStats{
		Allocated:       m.allocated.Load(),
		Peak:            m.peak.Load(),
		Pressure:        m.pressure.Load(),
		PressureEntries: m.entries,
		TimeInPressure:  m.pressDur,
	}
	return s
}

// raised notes that the account reached alloc (or tried to), at now.
func (m *Memory) raised(alloc int64, now clock.Instant) {
	for p := m.peak.Load(); alloc > p && !m.peak.CompareAndSwap(p, alloc); p = m.peak.Load() {
	}
	switch {
	case alloc <= m.limits.Low:
		if m.pressure.Load() {
			m.leave(now)
		}
	case alloc > m.limits.Pressure:
		if !m.pressure.Load() {
			m.enter(now)
		}
	}
}

// lowered notes that the account fell to alloc, at now.
func (m *Memory) lowered(alloc int64, now clock.Instant) {
	if alloc <= m.limits.Low && m.pressure.Load() {
		m.leave(now)
	}
}

func (m *Memory) enter(now clock.Instant) {
	m.mu.Lock()
	if !m.pressure.Load() {
		m.pressure.Store(true)
		m.entries++
		m.since = now
	}
	m.mu.Unlock()
}

func (m *Memory) leave(now clock.Instant) {
	m.mu.Lock()
	if m.pressure.Load() {
		m.pressure.Store(false)
		if d := now.Sub(m.since); d > 0 {
			m.pressDur += d
		}
	}
	m.mu.Unlock()
}

// envMem is an Env's share of the account: the bytes its connections'
// chunks hold, its forward allocation, and the last instant it saw (for
// the time in pressure).
type envMem struct {
	m    *Memory
	held int64
	fwd  int64
	now  clock.Instant
}

// tick records the instant of the event being handled.
func (e *Env) tick(now clock.Instant) { e.mem.now = now }

// Memory returns the account the Env charges.
func (e *Env) Memory() *Memory { return e.mem.m }

// MemHeld returns the bytes of buffer chunks the Env's connections hold
// now (exact; Memory's Allocated adds the forward allocations).
func (e *Env) MemHeld() int64 { return e.mem.held }

// ReclaimMemory gives the Env's forward allocation back to the shared
// account (sk_mem_reclaim), as when a stack closes.
func (e *Env) ReclaimMemory() {
	if e.mem.fwd > 0 {
		alloc := e.mem.m.allocated.Add(-e.mem.fwd)
		e.mem.fwd = 0
		e.mem.m.lowered(alloc, e.mem.now)
	}
}

// memPressure reports whether the stack is under memory pressure.
func (e *Env) memPressure() bool { return e.mem.m.pressure.Load() }

// memSchedule makes sure n bytes of chunks can be taken from the forward
// allocation, charging the account if need be (sk_mem_schedule). Unless
// force is set it fails, charging nothing, when the account would go
// above High.
func (e *Env) memSchedule(n int64, force bool) bool {
	em := &e.mem
	if em.fwd >= n {
		return true
	}
	m := em.m
	need := n - em.fwd
	amt := (need + memQuantum - 1) / memQuantum * memQuantum
	alloc := m.allocated.Add(amt)
	if alloc > m.limits.High {
		if alloc-amt+need > m.limits.High && !force {
			m.allocated.Add(-amt)
			m.raised(alloc-amt+need, em.now) // pressure starts even so
			return false
		}
		// Take what is needed, not a whole quantum.
		alloc = m.allocated.Add(need - amt)
		amt = need
	}
	em.fwd += amt
	m.raised(alloc, em.now)
	return true
}

// memRoom returns how many bytes of new chunks a charge may take now
// without going above High: the forward allocation plus the account's
// room.
func (e *Env) memRoom() int64 {
	em := &e.mem
	return max(em.m.limits.High-em.m.allocated.Load(), 0) + em.fwd
}

// chunkGet takes a chunk for a buffer, charging it (by force if nothing
// was scheduled: a buffer never goes without its bytes).
func (e *Env) chunkGet() *chunk.Chunk {
	em := &e.mem
	if em.fwd < chunk.Size {
		e.memSchedule(chunk.Size, true)
	}
	em.fwd -= chunk.Size
	em.held += chunk.Size
	return chunk.Get()
}

// chunkPut gives a buffer's chunk back, and the account its bytes once
// the forward allocation passes a quantum (all of it under pressure).
func (e *Env) chunkPut(c *chunk.Chunk) {
	chunk.Put(c)
	em := &e.mem
	em.held -= chunk.Size
	em.fwd += chunk.Size
	if em.fwd <= memQuantum && !em.m.pressure.Load() {
		return
	}
	keep := int64(memQuantum)
	if em.m.pressure.Load() {
		keep = 0
	}
	rel := em.fwd - keep
	if rel <= 0 {
		return
	}
	em.fwd = keep
	em.m.lowered(em.m.allocated.Add(-rel), em.now)
}

// rcvSchedule reports whether the receive buffer may take n bytes off
// bytes past RCV.NXT: whether the chunks they need can be charged
// (tcp_try_rmem_schedule). In-order data into a receive buffer with
// nothing readable is always taken (sk_forced_mem_schedule). In-order
// data that does not fit makes the connection drop its out-of-order data
// first (tcp_prune_ofo_queue); a segment still refused is counted in
// RcvQDrop and dropped.
func (c *Conn) rcvSchedule(off, n int) bool {
	k := c.rcv.q.missing(c.rcv.n+off, n)
	if k == 0 {
		return true
	}
	force := off == 0 && c.rcv.n == 0
	if c.env.memSchedule(int64(k)*chunk.Size, force) {
		return true
	}
	if off == 0 && !c.ooo.empty() {
		c.pruneOFO()
		k = c.rcv.q.missing(c.rcv.n, n)
		if k == 0 || c.env.memSchedule(int64(k)*chunk.Size, false) {
			return true
		}
	}
	c.env.Stats.RcvQDrop++
	return false
}

// pruneOFO drops the out-of-order data and gives back the chunks that held
// only it (tcp_prune_ofo_queue). Blocks already SACKed are reneged on,
// which RFC 2018 §8 allows: the sender keeps the data until it is
// cumulatively acknowledged.
func (c *Conn) pruneOFO() {
	c.oooRelease()
	c.rcvFinOOO = false
	c.rcv.truncate(c.env, c.rcv.n)
	c.env.Stats.OFOPruned++
}

// sndRoom returns how many bytes Write may take now: the send buffer's
// free space, within what the budget allows — what fits in the chunks the
// buffer holds, plus new chunks up to High; an empty buffer may always
// take one chunk (as tcp_wmem[0] is guaranteed under pressure).
func (c *Conn) sndRoom() int {
	room := int(c.sndBufSize) - c.snd.n
	if room <= 0 {
		return 0
	}
	avail := c.env.memRoom()
	if avail >= int64(room) {
		return room
	}
	allowed := c.snd.q.tailRoom(c.snd.n) + int(avail/chunk.Size)*chunk.Size
	if c.snd.n == 0 {
		allowed = max(allowed, chunk.Size)
	}
	return min(room, allowed)
}

// rcvOffer returns the most window the receive side offers now: the free
// buffer space, clamped to four segments under memory pressure (Linux's
// tcp_adjust_rcv_ssthresh). windowField still never announces less than
// what remains of the last window (RFC 9293 §3.8.6), so the window shrinks
// as the peer fills it, not by retraction.
func (c *Conn) rcvOffer() uint32 {
	free := c.rcvFree()
	if c.env.memPressure() {
		free = min(free, 4*uint32(c.advMSS))
	}
	return free
}
