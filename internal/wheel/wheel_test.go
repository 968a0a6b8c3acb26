package wheel

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/heapq"
)

type timer struct {
	e    Entry[*timer]
	id   int
	want clock.Instant // the reference: Never when not armed
}

// randomAt draws an instant after now from a mix of scales: sub-tick
// (pacing, delayed ACK), within level 0, each higher level, and beyond
// the wheel's span, plus instants exactly on tick boundaries and in the
// past.
func randomAt(r *rand.Rand, now clock.Instant) clock.Instant {
	switch r.IntN(9) {
	case 0:
		return now + clock.Instant(r.IntN(int(Granularity)))
	case 1:
		return now + clock.Instant(r.Int64N(int64(64*Granularity)))
	case 2:
		return now + clock.Instant(r.Int64N(int64(4096*Granularity)))
	case 3:
		return now + clock.Instant(r.Int64N(int64(time.Hour)))
	case 4:
		return now + clock.Instant(r.Int64N(int64(30*24*time.Hour)))
	case 5:
		return (now>>Shift + clock.Instant(r.IntN(200))) << Shift
	case 6:
		return now - clock.Instant(r.IntN(int(time.Second)))
	case 7:
		return now + clock.Instant(r.IntN(3))
	default:
		return now + clock.Instant(r.Int64N(int64(20*time.Second)))
	}
}

// TestWheelAgainstReference drives the wheel and a plain list with the
// same random arms, re-arms, stops and advances (by steps from under a
// tick to days), and checks after every step that: Pop hands out exactly
// the timers whose instant has passed (none early, none left behind, so
// none late), Next is never after the earliest armed instant, and Len and
// each entry's At agree with the reference.
func TestWheelAgainstReference(t *testing.T) {
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 13))
		var w Wheel[*timer]
		ts := make([]*timer, 1+r.IntN(300))
		for i := range ts {
			ts[i] = &timer{id: i, want: clock.Never}
			ts[i].e.Value = ts[i]
		}
		now := clock.Instant(r.Int64N(int64(time.Hour)))
		if seed%4 == 0 {
			now = 0
		}
		if w.Pop(now) != nil { // brings the wheel to now
			t.Fatal("popped from an empty wheel")
		}
		for op := range 4000 {
			x := ts[r.IntN(len(ts))]
			switch k := r.IntN(20); {
			case k < 9:
				at := randomAt(r, now)
				if k == 0 && x.want != clock.Never {
					at = x.want
				}
				if k == 1 && x.want != clock.Never {
					at = x.want + clock.Instant(r.IntN(1000)) // a small push back
				}
				w.Set(&x.e, at)
				x.want = at
			case k < 11:
				w.Set(&x.e, clock.Never)
				x.want = clock.Never
			case k < 13:
				w.Stop(&x.e)
				x.want = clock.Never
			default:
				next := w.Next()
				var step clock.Instant
				switch r.IntN(5) {
				case 0:
					step = clock.Instant(r.IntN(int(Granularity)))
				case 1:
					step = clock.Instant(r.Int64N(int64(time.Second)))
				case 2:
					step = clock.Instant(r.Int64N(int64(time.Hour)))
				case 3:
					step = clock.Instant(r.Int64N(int64(10 * 24 * time.Hour)))
				default:
					// As a runtime does: wake at Next.
					if next != clock.Never && next > now {
						step = next - now
					}
				}
				now += step
				var got []int
				for e := w.Pop(now); e != nil; e = w.Pop(now) {
					tm := e.Value
					if tm.want == clock.Never {
						t.Fatalf("seed %d op %d: popped disarmed timer %d", seed, op, tm.id)
					}
					if tm.want > now {
						t.Fatalf("seed %d op %d: timer %d at %v popped early at %v", seed, op, tm.id, tm.want, now)
					}
					if e.Armed() || e.At() != clock.Never {
						t.Fatalf("seed %d op %d: popped timer %d still armed", seed, op, tm.id)
					}
					got = append(got, tm.id)
					tm.want = clock.Never
				}
				for _, tm := range ts {
					if tm.want <= now {
						t.Fatalf("seed %d op %d: timer %d at %v not popped at %v (popped %v)", seed, op, tm.id, tm.want, now, got)
					}
				}
			}
			checkWheel(t, &w, ts, now, seed, op)
		}
	}
}

func checkWheel(t *testing.T, w *Wheel[*timer], ts []*timer, now clock.Instant, seed uint64, op int) {
	t.Helper()
	n, first := 0, clock.Never
	for _, tm := range ts {
		if tm.e.At() != tm.want || tm.e.Armed() != (tm.want != clock.Never) {
			t.Fatalf("seed %d op %d: timer %d: At %v armed %v, want %v", seed, op, tm.id, tm.e.At(), tm.e.Armed(), tm.want)
		}
		if tm.want != clock.Never {
			n++
			first = min(first, tm.want)
		}
	}
	if w.Len() != n {
		t.Fatalf("seed %d op %d: Len %d, want %d", seed, op, w.Len(), n)
	}
	next := w.Next()
	if n == 0 && next != clock.Never {
		t.Fatalf("seed %d op %d: empty wheel's Next is %v", seed, op, next)
	}
	if next > first {
		t.Fatalf("seed %d op %d: Next %v after the first timer %v", seed, op, next, first)
	}
	// Next is exact when the first timer is within the current tick;
	// otherwise it may be the start of a slot's tick, never before now's
	// tick (which would make a runtime spin).
	if n > 0 && next>>Shift <= now>>Shift && next != first && first>>Shift <= now>>Shift {
		t.Fatalf("seed %d op %d: Next %v, want the first timer %v exactly", seed, op, next, first)
	}
}

// TestWheelNoSpin: waking at Next always makes progress — either a timer
// pops or Next moves later — so a runtime that sleeps until Next never
// spins, and the number of wakes without a timer is bounded by the
// levels a timer passes through.
func TestWheelNoSpin(t *testing.T) {
	var w Wheel[*timer]
	r := rand.New(rand.NewPCG(1, 2))
	ts := make([]*timer, 1000)
	for i := range ts {
		ts[i] = &timer{id: i}
		ts[i].e.Value = ts[i]
		w.Set(&ts[i].e, randomAt(r, 0)+clock.Instant(time.Second))
	}
	now, popped, empty := clock.Instant(0), 0, 0
	for wakes := 0; w.Len() > 0; wakes++ {
		if wakes > 100*len(ts) {
			t.Fatalf("%d wakes and %d timers still armed: the wheel does not make progress", wakes, w.Len())
		}
		next := w.Next()
		if next < now {
			t.Fatalf("Next %v before now %v after a Pop at now", next, now)
		}
		now = next
		k := 0
		for e := w.Pop(now); e != nil; e = w.Pop(now) {
			if e.Value.e.at > now {
				t.Fatalf("early")
			}
			k++
		}
		if k == 0 {
			empty++
		}
		popped += k
	}
	if popped != len(ts) {
		t.Fatalf("popped %d of %d", popped, len(ts))
	}
	if empty > Levels*len(ts) {
		t.Errorf("%d wakes with nothing due for %d timers, want at most %d", empty, len(ts), Levels*len(ts))
	}
	t.Logf("%d timers: %d wakes with nothing due, %d slots handled, %d cascades", len(ts), empty, w.Stats().Ticks, w.Stats().Cascaded)
}

// TestWheelExactInVirtualTime: timers at the instants the TCP core uses
// (a 200 ms RTO, a 40 ms delayed ACK, pacing gaps of microseconds, 2×MSL,
// 2 h keep-alive) fire at exactly their instant when the clock jumps from
// one Next to the next, as the simulator's does.
func TestWheelExactInVirtualTime(t *testing.T) {
	var w Wheel[*timer]
	start := clock.Instant(123456789)
	ds := []time.Duration{12 * time.Microsecond, 40 * time.Millisecond, 200 * time.Millisecond, time.Second + 7, 60 * time.Second, 2 * time.Hour, 48 * time.Hour}
	ts := make([]*timer, len(ds))
	for i, d := range ds {
		ts[i] = &timer{id: i, want: start.Add(d)}
		ts[i].e.Value = ts[i]
		w.Set(&ts[i].e, ts[i].want)
	}
	var fired []clock.Instant
	now := start
	for wakes := 0; w.Len() > 0; wakes++ {
		if wakes > 1000 {
			t.Fatalf("%d wakes and %d timers still armed", wakes, w.Len())
		}
		now = w.Next()
		for e := w.Pop(now); e != nil; e = w.Pop(now) {
			if e.Value.want != now {
				t.Errorf("timer %v fired at %v", e.Value.want.Sub(start), now.Sub(start))
			}
			fired = append(fired, now)
		}
	}
	if len(fired) != len(ds) || !slices.IsSorted(fired) {
		t.Errorf("fired %v", fired)
	}
}

// TestWheelAllocs: once the near heap has its working size, arming,
// moving, stopping, advancing and popping allocate nothing.
func TestWheelAllocs(t *testing.T) {
	var w Wheel[*timer]
	ts := make([]*timer, 4096)
	for i := range ts {
		ts[i] = &timer{id: i}
		ts[i].e.Value = ts[i]
	}
	now := clock.Instant(0)
	round := func() {
		for i, tm := range ts {
			w.Set(&tm.e, now+clock.Instant(i%7)*clock.Instant(time.Millisecond)+clock.Instant(i))
		}
		for i, tm := range ts {
			if i%3 == 0 {
				w.Set(&tm.e, now+clock.Instant(time.Duration(i)*time.Second))
			}
			if i%5 == 0 {
				w.Stop(&tm.e)
			}
		}
		now += clock.Instant(10 * time.Millisecond)
		for e := w.Pop(now); e != nil; e = w.Pop(now) {
		}
	}
	for range 3 {
		round()
	}
	if a := testing.AllocsPerRun(20, round); a != 0 {
		t.Errorf("%v allocations per round, want 0", a)
	}
}

// BenchmarkWheelAdvance measures one advance of the clock by a
// millisecond with n idle timers armed 1–2 h ahead (idle connections'
// keep-alive) and 64 busy ones, each due and re-armed every 64 ms (a
// retransmission timer): the cost per advance must not grow with n.
func BenchmarkWheelAdvance(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var w Wheel[*timer]
			r := rand.New(rand.NewPCG(uint64(n), 1))
			ts := make([]timer, n+64)
			for i := range ts {
				ts[i].e.Value = &ts[i]
				at := clock.Instant(time.Hour) + clock.Instant(r.Int64N(int64(time.Hour)))
				if i < 64 {
					at = clock.Instant(i) * clock.Instant(time.Millisecond)
				}
				w.Set(&ts[i].e, at)
			}
			now := clock.Instant(0)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				now += clock.Instant(time.Millisecond)
				for e := w.Pop(now); e != nil; e = w.Pop(now) {
					w.Set(e, now+64*clock.Instant(time.Millisecond))
				}
			}
		})
	}
}

// BenchmarkWheelKeepAlive measures the cost per timer fired when n
// timers spread over a period each fire and re-arm once a period (every
// connection with keep-alive): per timer it stays flat; what grows with
// n is the number fired per advance, and the cache misses of touching
// entries spread over more memory.
func BenchmarkWheelKeepAlive(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var w Wheel[*timer]
			period := clock.Instant(15 * time.Second)
			r := rand.New(rand.NewPCG(uint64(n), 1))
			ts := make([]timer, n)
			for i := range ts {
				ts[i].e.Value = &ts[i]
				w.Set(&ts[i].e, clock.Instant(r.Int64N(int64(period))))
			}
			now, fired := clock.Instant(0), 0
			step := period / clock.Instant(n) * 64 // 64 timers per advance
			b.ReportAllocs()
			b.ResetTimer()
			for fired < b.N {
				now += step
				for e := w.Pop(now); e != nil; e = w.Pop(now) {
					w.Set(e, now+period)
					fired++
				}
			}
		})
	}
}

// BenchmarkWheelRearm measures moving an armed timer later (the
// retransmission timer pushed back by an ACK), with n timers armed.
func BenchmarkWheelRearm(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var w Wheel[*timer]
			ts := make([]timer, n)
			for i := range ts {
				ts[i].e.Value = &ts[i]
				w.Set(&ts[i].e, clock.Instant(i)*clock.Instant(time.Microsecond)+clock.Instant(time.Second))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e := &ts[i%n].e
				w.Set(e, e.at+clock.Instant(3*time.Millisecond))
			}
		})
	}
}

// BenchmarkHeapKeepAlive is BenchmarkWheelKeepAlive with the binary heap
// the stack used before the wheel (internal/heapq, each item telling its
// owner its index), for comparison.
func BenchmarkHeapKeepAlive(b *testing.B) {
	type conn struct {
		idx int
		at  clock.Instant
	}
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h := heapq.Heap[*conn]{Moved: func(c **conn, i int) { (*c).idx = i }}
			period := clock.Instant(15 * time.Second)
			r := rand.New(rand.NewPCG(uint64(n), 1))
			cs := make([]conn, n)
			for i := range cs {
				cs[i].at = clock.Instant(r.Int64N(int64(period)))
				h.Push(heapq.Key{At: cs[i].at}, &cs[i])
			}
			now, fired := clock.Instant(0), 0
			step := period / clock.Instant(n) * 64
			b.ReportAllocs()
			b.ResetTimer()
			for fired < b.N {
				now += step
				for h.Len() > 0 && h.TopKey().At <= now {
					_, c := h.Pop()
					c.at = now + period
					h.Push(heapq.Key{At: c.at}, c)
					fired++
				}
			}
		})
	}
}
