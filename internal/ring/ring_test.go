package ring

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRingAgainstSlice: random pushes, pops, removals from anywhere and
// clears give what a plain slice used as a queue gives, across growth
// and wrap-around.
func TestRingAgainstSlice(t *testing.T) {
	for seed := range uint64(30) {
		rnd := rand.New(rand.NewPCG(seed, 3))
		var r Ring[int]
		var want []int
		next := 0
		for op := range 5000 {
			switch k := rnd.IntN(20); {
			case k < 9:
				r.PushBack(next)
				want = append(want, next)
				next++
			case k < 16:
				x, ok := r.PopFront()
				if ok != (len(want) > 0) {
					t.Fatalf("seed %d op %d: PopFront ok %v with %d items", seed, op, ok, len(want))
				}
				if ok {
					if x != want[0] {
						t.Fatalf("seed %d op %d: PopFront %d, want %d", seed, op, x, want[0])
					}
					want = want[1:]
				}
			case k < 19 && len(want) > 0:
				i := rnd.IntN(len(want))
				if x := r.RemoveAt(i); x != want[i] {
					t.Fatalf("seed %d op %d: RemoveAt(%d) %d, want %d", seed, op, i, x, want[i])
				}
				want = slices.Delete(want, i, i+1)
			case k == 19 && rnd.IntN(10) == 0:
				r.Clear()
				want = want[:0]
			}
			if r.Len() != len(want) {
				t.Fatalf("seed %d op %d: Len %d, want %d", seed, op, r.Len(), len(want))
			}
			for i, w := range want {
				if r.At(i) != w || *r.Ptr(i) != w {
					t.Fatalf("seed %d op %d: At(%d) %d, want %d", seed, op, i, r.At(i), w)
				}
			}
			if f, ok := r.Front(); ok != (len(want) > 0) || ok && f != want[0] {
				t.Fatalf("seed %d op %d: Front %d %v", seed, op, f, ok)
			}
		}
	}
}

// TestRingReleasesItems: popped, removed and cleared slots hold no
// reference, so the queue keeps nothing alive.
func TestRingReleasesItems(t *testing.T) {
	var r Ring[*int]
	for i := range 10 {
		v := i
		r.PushBack(&v)
	}
	r.PopFront()
	r.RemoveAt(3)
	r.RemoveAt(6)
	live := 0
	for _, p := range r.buf {
		if p != nil {
			live++
		}
	}
	if live != r.Len() {
		t.Errorf("%d slots hold pointers, %d items queued", live, r.Len())
	}
	r.Clear()
	for i, p := range r.buf {
		if p != nil {
			t.Errorf("slot %d still holds a pointer after Clear", i)
		}
	}
}

// TestRingOutOfRange: At, Ptr and RemoveAt outside the queue panic
// rather than return a stale slot.
func TestRingOutOfRange(t *testing.T) {
	var r Ring[int]
	r.PushBack(1)
	for name, f := range map[string]func(){
		"At":       func() { r.At(1) },
		"Ptr":      func() { r.Ptr(-1) },
		"RemoveAt": func() { r.RemoveAt(1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s out of range did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestZeroAllocsRing: a queue that has reached its size allocates
// nothing for pushes, pops and round-robin rotation.
func TestZeroAllocsRing(t *testing.T) {
	var r Ring[*int]
	xs := make([]*int, 100)
	for i := range xs {
		xs[i] = new(int)
		r.PushBack(xs[i])
	}
	allocs := testing.AllocsPerRun(100, func() {
		for range 1000 {
			x, _ := r.PopFront()
			r.PushBack(x)
		}
		for range 100 {
			r.PopFront()
		}
		for _, x := range xs {
			r.PushBack(x)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per round", allocs)
	}
}

// BenchmarkRotate is the output rotation: pop the front, push it back.
func BenchmarkRotate(b *testing.B) {
	var r Ring[*int]
	for range 1000 {
		r.PushBack(new(int))
	}
	b.ResetTimer()
	for range b.N {
		x, _ := r.PopFront()
		r.PushBack(x)
	}
}
