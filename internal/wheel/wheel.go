// Package wheel is a hierarchical timing wheel (Varghese and Lauck,
// "Hashed and Hierarchical Timing Wheels", 1987 — the scheme of Linux's
// timer wheel before 4.8) for the stack's connection timers: the cost of
// arming, moving, disarming and expiring a timer does not grow with the
// number of timers armed, so a million idle connections with keep-alive
// cost what their keep-alive probes cost and nothing per advance.
//
// # Structure
//
// Time is cut into ticks of 2^20 ns (1.048576 ms, Granularity). Levels
// holds 64 slots each: level 0's slots are one tick wide (67 ms in all),
// level 1's 64 ticks (4.3 s), level 2's 4,096 ticks (4.6 min), level 3's
// 262,144 ticks (4.9 h) and level 4's 16.8 M ticks (12.7 days). A timer is
// linked (intrusively: its Entry carries the links, so arming allocates
// nothing) into the slot of the lowest level whose span covers its
// distance from the wheel's current tick; a timer further away than level
// 4 reaches sits in level 4's furthest slot and is placed again when that
// slot comes up. When the current tick enters a slot of level l ≥ 1 (the
// lower 6·l bits of the tick wrap to zero), the slot's timers cascade: each
// is placed again, now nearer, in a lower level. When it enters a level-0
// slot, the slot's timers move to the near heap.
//
// # Exact firing
//
// The near heap is a binary heap by the exact instant of the timers due in
// the current tick (or before it). Pop hands out a timer only once its
// exact instant has passed, and Next reports the exact instant of the near
// heap's first timer, so a timer never fires early and never late: the
// tick only decides when timers are looked at, not when they fire. The
// price of exactness is a wake-up that may find nothing due: when the
// next thing to do is a slot (level 0's, or a cascade), Next reports the
// start of that slot's tick, which is at or before every instant in it.
// There is at most one such wake per non-empty slot, so per timer at most
// one per level it passes through (a keep-alive timer 2 h away: four).
// Simulated and synctest time advance exactly as before.
//
// Advancing over idle time costs nothing per empty tick: Pop jumps from
// one non-empty slot to the next with a bitmap per level.
//
// The zero Wheel is empty and ready, at tick 0. It is not safe for
// concurrent use.
package wheel

import (
	"math/bits"

	"github.com/ustack/ustack/clock"
)

const (
	// Shift is log2 of a tick in nanoseconds.
	Shift = 20
	// Granularity is one tick: how far apart the wheel looks at its
	// slots. It does not bound how late a timer fires (it fires at its
	// exact instant); it bounds how early before a slot's first timer
	// the wheel may wake to move it into the near heap.
	Granularity clock.Instant = 1 << Shift

	slotBits = 6
	slots    = 1 << slotBits
	mask     = slots - 1
	// Levels is the number of levels of 64 slots.
	Levels = 5
	// span is the distance in ticks the levels cover.
	span = 1 << (slotBits * Levels)
)

// Entry is a timer: embed it in the value it belongs to (a connection)
// and set Value to that value, so a popped Entry leads back to it. The
// zero Entry is disarmed; it is armed from the first Set until it is
// popped or Stop is called. An Entry belongs to at most one Wheel.
type Entry[T any] struct {
	next, prev *Entry[T]
	at         clock.Instant
	// loc is where the entry is: -1 (or 0 in the zero Entry, see
	// Armed) nowhere; 1 + slot number for a slot (level·64 + index);
	// -2 - i for index i of the near heap.
	loc int32
	// Value is what the timer belongs to.
	Value T
}

// Armed reports whether e is in a wheel.
func (e *Entry[T]) Armed() bool { return e.loc > 0 || e.loc < -1 }

// At returns e's instant, or clock.Never if it is not armed.
func (e *Entry[T]) At() clock.Instant {
	if !e.Armed() {
		return clock.Never
	}
	return e.at
}

// Wheel is a hierarchical timing wheel of Entries.
type Wheel[T any] struct {
	cur   int64 // the current tick: every slot up to it has been handled
	n     int   // armed entries
	used  [Levels]uint64
	slot  [Levels * slots]*Entry[T]
	near  []*Entry[T] // binary min-heap by at
	stats Stats
}

// Stats counts the wheel's work, for tests and benchmarks.
type Stats struct {
	Cascaded uint64 // entries placed again from a higher level
	Ticks    uint64 // slots handled (level-0 slots and cascades)
}

// Len returns the number of armed entries.
func (w *Wheel[T]) Len() int { return w.n }

// Stats returns the wheel's counters.
func (w *Wheel[T]) Stats() Stats { return w.stats }

// Set arms e at instant at, or moves it there if it is armed; at ==
// clock.Never disarms it.
func (w *Wheel[T]) Set(e *Entry[T], at clock.Instant) {
	if at == clock.Never {
		w.Stop(e)
		return
	}
	if e.Armed() {
		if at == e.at {
			return
		}
		if e.loc > 0 {
			// Moved within the slot it is in (a retransmission or
			// keep-alive timer pushed back a little): only the instant
			// changes.
			if loc, _ := w.where(at); loc == e.loc {
				e.at = at
				return
			}
		} else if tick(at) <= w.cur {
			// Stays in the near heap.
			old := e.at
			e.at = at
			i := int(-2 - e.loc)
			if at < old {
				w.up(i)
			} else {
				w.down(i)
			}
			return
		}
		w.unlink(e)
		w.n--
	}
	e.at = at
	w.place(e)
	w.n++
}

// Stop disarms e; it does nothing if e is not armed.
func (w *Wheel[T]) Stop(e *Entry[T]) {
	if !e.Armed() {
		return
	}
	w.unlink(e)
	e.loc = -1
	w.n--
}

// Next returns the instant Pop must next be called at to keep every
// timer exact: the first entry's instant if it is in the near heap,
// otherwise the start of the tick of the next non-empty slot (or cascade)
// if that is earlier; clock.Never if the wheel is empty.
func (w *Wheel[T]) Next() clock.Instant {
	if w.n == 0 {
		return clock.Never
	}
	d := clock.Never
	if len(w.near) > 0 {
		d = w.near[0].at
	}
	if t, ok := w.nextTick(); ok {
		d = min(d, clock.Instant(t)<<Shift)
	}
	return d
}

// Pop advances the wheel to now and removes and returns an entry whose
// instant is at or before now, or nil if there is none. Entries due at
// the same instant come out in no particular order. Call it until it
// returns nil.
func (w *Wheel[T]) Pop(now clock.Instant) *Entry[T] {
	w.advance(tick(now))
	if len(w.near) == 0 || w.near[0].at > now {
		return nil
	}
	e := w.near[0]
	w.heapRemove(0)
	e.loc = -1
	w.n--
	return e
}

func tick(at clock.Instant) int64 { return int64(at) >> Shift }

// where returns the slot (1 + level·64 + index) an entry at instant at
// belongs to, or ok false for the near heap.
func (w *Wheel[T]) where(at clock.Instant) (loc int32, ok bool) {
	t := tick(at)
	if t <= w.cur {
		return 0, false
	}
	d := t - w.cur
	if d >= span {
		// Beyond the wheel: the slot of level 4 furthest away; it is
		// placed again when that slot comes up.
		t = w.cur + span - 1
		d = span - 1
	}
	l := (bits.Len64(uint64(d)) - 1) / slotBits
	i := (t >> (slotBits * l)) & mask
	return int32(1 + l*slots + int(i)), true
}

// place links e (with e.at set) where it belongs.
func (w *Wheel[T]) place(e *Entry[T]) {
	loc, ok := w.where(e.at)
	if !ok {
		w.heapPush(e)
		return
	}
	s := int(loc - 1)
	e.loc = loc
	e.prev = nil
	e.next = w.slot[s]
	if e.next != nil {
		e.next.prev = e
	}
	w.slot[s] = e
	w.used[s>>slotBits] |= 1 << (s & mask)
}

// unlink takes e out of its slot or the near heap (e is armed).
func (w *Wheel[T]) unlink(e *Entry[T]) {
	if e.loc < 0 {
		w.heapRemove(int(-2 - e.loc))
		return
	}
	s := int(e.loc - 1)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		w.slot[s] = e.next
		if e.next == nil {
			w.used[s>>slotBits] &^= 1 << (s & mask)
		}
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.next, e.prev = nil, nil
}

// nextTick returns the first tick after the current one at which a
// non-empty slot is handled: a level-0 slot's tick, or the tick at which
// a higher level's slot cascades (its lower bits all zero).
func (w *Wheel[T]) nextTick() (int64, bool) {
	best, ok := int64(0), false
	for l := range Levels {
		u := w.used[l]
		if u == 0 {
			continue
		}
		sh := uint(slotBits * l)
		base := w.cur >> sh
		// The slot handled first is the one after base's; base's own
		// slot (a full turn away) comes last.
		r := bits.RotateLeft64(u, -int((base+1)&mask))
		k := int64(bits.TrailingZeros64(r)) + 1
		t := (base + k) << sh
		if !ok || t < best {
			best, ok = t, true
		}
	}
	return best, ok
}

// advance handles every non-empty slot up to tick to, in order.
func (w *Wheel[T]) advance(to int64) {
	for to > w.cur {
		t, ok := w.nextTick()
		if !ok || t > to {
			w.cur = to
			return
		}
		w.cur = t
		w.stats.Ticks++
		// Cascade the higher levels whose slot starts at t, highest
		// first, then take level 0's slot of t into the near heap.
		for l := Levels - 1; l >= 1; l-- {
			sh := uint(slotBits * l)
			if t&(1<<sh-1) != 0 {
				continue
			}
			w.takeSlot(l*slots+int((t>>sh)&mask), true)
		}
		w.takeSlot(int(t&mask), false)
	}
}

// takeSlot empties slot s, placing its entries again (cascade) or moving
// them to the near heap.
func (w *Wheel[T]) takeSlot(s int, cascade bool) {
	e := w.slot[s]
	if e == nil {
		return
	}
	w.slot[s] = nil
	w.used[s>>slotBits] &^= 1 << (s & mask)
	for e != nil {
		next := e.next
		e.next, e.prev = nil, nil
		if cascade {
			w.stats.Cascaded++
			w.place(e)
		} else {
			w.heapPush(e)
		}
		e = next
	}
}

// The near heap: a binary min-heap by at, each entry knowing its index.

func (w *Wheel[T]) heapPush(e *Entry[T]) {
	w.near = append(w.near, e)
	i := len(w.near) - 1
	e.loc = int32(-2 - i)
	w.up(i)
}

func (w *Wheel[T]) heapRemove(i int) {
	h := w.near
	last := len(h) - 1
	if i != last {
		h[i] = h[last]
		h[i].loc = int32(-2 - i)
	}
	h[last] = nil
	w.near = h[:last]
	if i != last {
		w.down(i)
		w.up(i)
	}
}

func (w *Wheel[T]) up(i int) {
	h := w.near
	e := h[i]
	for i > 0 {
		p := (i - 1) / 2
		if h[p].at <= e.at {
			break
		}
		h[i] = h[p]
		h[i].loc = int32(-2 - i)
		i = p
	}
	h[i] = e
	e.loc = int32(-2 - i)
}

func (w *Wheel[T]) down(i int) {
	h := w.near
	n := len(h)
	e := h[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].at < h[c].at {
			c = r
		}
		if h[c].at >= e.at {
			break
		}
		h[i] = h[c]
		h[i].loc = int32(-2 - i)
		i = c
	}
	h[i] = e
	e.loc = int32(-2 - i)
}
