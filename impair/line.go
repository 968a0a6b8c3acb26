package impair

import (
	"sync"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/heapq"
)

// MaxFrame is the longest frame a Line holds: a 64 KiB GSO super-frame
// plus headers.
const MaxFrame = 65536 + 1024

// Frame buffers come from pools of fixed-size arrays, three size classes,
// so a steady stream of frames allocates nothing. A pointer to an array is
// stored in the pool's interface without allocating.
var (
	pool2k  sync.Pool // *[2048]byte
	pool16k sync.Pool // *[16384]byte
	pool64k sync.Pool // *[MaxFrame]byte
)

func getBuf(n int) []byte {
	switch {
	case n <= 2048:
		if p, _ := pool2k.Get().(*[2048]byte); p != nil {
			return p[:]
		}
		return new([2048]byte)[:]
	case n <= 16384:
		if p, _ := pool16k.Get().(*[16384]byte); p != nil {
			return p[:]
		}
		return new([16384]byte)[:]
	default:
		if p, _ := pool64k.Get().(*[MaxFrame]byte); p != nil {
			return p[:]
		}
		return new([MaxFrame]byte)[:]
	}
}

func putBuf(b []byte) {
	switch len(b) {
	case 2048:
		pool2k.Put((*[2048]byte)(b))
	case 16384:
		pool16k.Put((*[16384]byte)(b))
	case MaxFrame:
		pool64k.Put((*[MaxFrame]byte)(b))
	}
}

// lineEntry is one held frame copy; its key in the heap is its due time
// and the order of Push, which breaks ties.
type lineEntry[M any] struct {
	buf  []byte // a whole pooled array; the frame is buf[:n]
	n    int
	meta M
}

// Line holds copies of frames until they are due and hands them out in
// order of due time (ties in order of Push): the delay line of a link
// direction. M is per-frame metadata the caller wants carried along (for
// example link.Offload).
//
// Line copies each frame into a pooled buffer, so neither Push nor Pop
// allocates in steady state. It is pure (no goroutines, no clock) and not
// safe for concurrent use.
type Line[M any] struct {
	h     heapq.Heap[lineEntry[M]] // by (due, order of Push)
	seq   uint64
	limit int

	// The ring of a Line made by NewLineRing: frames that are due and
	// not yet popped, in order of due time; ring is nil otherwise.
	ring      []ringEntry[M]
	rhead, rn int
	overrun   uint64
}

// ringEntry is a frame in a Line's ring and the time it arrived.
type ringEntry[M any] struct {
	due clock.Instant
	e   lineEntry[M]
}

// NewLine returns a Line that holds at most limit frames (0: no limit),
// in flight or due: like netem's limit, it counts the frames being
// delayed.
func NewLine[M any](limit int) *Line[M] {
	l := &Line[M]{limit: max(limit, 0)}
	if l.limit > 0 {
		l.h.Grow(l.limit)
	}
	return l
}

// NewLineRing returns a Line that holds any number of frames in flight
// (not yet due) but at most ring frames that are due and not yet popped:
// the receive ring at the far end of a wire. A frame that becomes due
// while ring frames wait is dropped then and counted (Overruns), as a NIC
// whose ring is full drops what arrives. What bounds the frames in flight
// is the caller's business: behind a bandwidth limit (Model with a Rate)
// they are at most the bottleneck queue plus what the wire holds.
//
// Arrivals are processed lazily, in order of due time, by Advance, Pop
// and Next, which is exact as long as the reader pops only through Pop:
// no frame leaves the ring between the arrivals a call processes. ring
// must be positive.
func NewLineRing[M any](ring int) *Line[M] {
	return &Line[M]{ring: make([]ringEntry[M], max(ring, 1))}
}

// Len returns the number of frames held.
func (l *Line[M]) Len() int { return l.h.Len() + l.rn }

// Full reports whether the Line holds its limit of frames (never for a
// Line made by NewLineRing, which drops on arrival instead).
func (l *Line[M]) Full() bool { return l.limit > 0 && l.h.Len() >= l.limit }

// Overruns returns the number of frames a Line made by NewLineRing
// dropped because its ring was full when they arrived.
func (l *Line[M]) Overruns() uint64 { return l.overrun }

// Advance moves the frames due at now into the ring of a Line made by
// NewLineRing, dropping those that find it full; it returns how many it
// dropped. It does nothing for other Lines. Call it before Push as well,
// so that frames no reader takes do not pile up in flight.
func (l *Line[M]) Advance(now clock.Instant) int {
	if l.ring == nil {
		return 0
	}
	dropped := 0
	for l.h.Len() > 0 && l.h.TopKey().At <= now {
		k, e := l.h.Pop()
		if l.rn == len(l.ring) {
			putBuf(e.buf)
			l.overrun++
			dropped++
			continue
		}
		l.ring[(l.rhead+l.rn)%len(l.ring)] = ringEntry[M]{due: k.At, e: e}
		l.rn++
	}
	return dropped
}

// Push holds a copy of frame until c.Due, flipping the copy's bit if c is
// corrupt (the caller's frame is not changed). It returns false, holding
// nothing, if the Line is full or frame is longer than MaxFrame.
func (l *Line[M]) Push(c Copy, frame []byte, meta M) bool {
	if l.Full() || len(frame) > MaxFrame {
		return false
	}
	buf := getBuf(len(frame))
	n := copy(buf, frame)
	c.Apply(buf[:n])
	l.h.Push(heapq.Key{At: c.Due, Seq: l.seq}, lineEntry[M]{buf: buf, n: n, meta: meta})
	l.seq++
	return true
}

// Next returns the due time of the earliest frame, or clock.Never and
// false if the Line is empty.
func (l *Line[M]) Next() (clock.Instant, bool) {
	if l.rn > 0 {
		return l.ring[l.rhead].due, true
	}
	if l.h.Len() == 0 {
		return clock.Never, false
	}
	return l.h.TopKey().At, true
}

// Pop removes the earliest frame if it is due at now, copies it into dst
// and returns its length and metadata. If the frame is longer than dst,
// nothing is copied and n > len(dst) tells the caller (the frame is still
// removed). ok is false, and nothing is removed, if no frame is due.
func (l *Line[M]) Pop(now clock.Instant, dst []byte) (n int, meta M, ok bool) {
	if l.ring != nil {
		l.Advance(now)
		if l.rn == 0 {
			return 0, meta, false
		}
		e := l.ring[l.rhead].e
		l.ring[l.rhead] = ringEntry[M]{}
		l.rhead = (l.rhead + 1) % len(l.ring)
		l.rn--
		if e.n <= len(dst) {
			copy(dst, e.buf[:e.n])
		}
		putBuf(e.buf)
		return e.n, e.meta, true
	}
	if l.h.Len() == 0 || l.h.TopKey().At > now {
		return 0, meta, false
	}
	_, e := l.h.Pop()
	if e.n <= len(dst) {
		copy(dst, e.buf[:e.n])
	}
	putBuf(e.buf)
	return e.n, e.meta, true
}

// Clear drops every held frame, returning the buffers to the pool.
func (l *Line[M]) Clear() {
	for l.h.Len() > 0 {
		_, e := l.h.Pop()
		putBuf(e.buf)
	}
	for l.rn > 0 {
		putBuf(l.ring[l.rhead].e.buf)
		l.ring[l.rhead] = ringEntry[M]{}
		l.rhead = (l.rhead + 1) % len(l.ring)
		l.rn--
	}
}
