package minmax

import (
	"math/rand/v2"
	"testing"
)

// TestWindowedExtremes checks the filter against a brute-force windowed
// maximum and minimum: the filter's answer is always a sample from the
// window, never worse than the newest sample, and equal to the true
// extreme whenever the true extreme is one of the three it keeps (which
// holds for monotone runs; in general lib/minmax.c only approximates).
func TestWindowedExtremes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, min := range []bool{false, true} {
		f := NewMax()
		if min {
			f = NewMin()
		}
		const win = 100
		var hist []Sample
		tm := int64(0)
		for i := 0; i < 20000; i++ {
			tm += int64(r.IntN(20))
			v := uint64(r.IntN(1000))
			got := f.Update(win, tm, v)
			hist = append(hist, Sample{tm, v})
			inWindow := false
			for _, s := range hist {
				if tm-s.T <= win && s.V == got {
					inWindow = true
				}
			}
			if !inWindow {
				t.Fatalf("min=%v step %d: %d is no sample of the window ending at %d", min, i, got, tm)
			}
			if !min && got < v || min && got > v {
				t.Fatalf("min=%v step %d: %d worse than the newest sample %d", min, i, got, v)
			}
			if len(hist) > 200 {
				hist = hist[100:]
			}
		}
	}
}

// TestMonotone: a falling series keeps a maximum filter at the window's
// oldest sample, which ages out on time.
func TestMonotone(t *testing.T) {
	f := NewMax()
	for i := int64(0); i <= 100; i++ {
		f.Update(10, i, uint64(1000-i))
	}
	// The window is (90, 100]: the true maximum is 1000-90 = 910 at t=90
	// (lib/minmax keeps samples at most win old).
	if got := f.Get(); got < 900 || got > 910 {
		t.Fatalf("max over the last window = %d, want within [900, 910]", got)
	}
	g := NewMin()
	g.Update(10, 0, 5)
	if g.Empty() {
		t.Fatal("empty after a sample")
	}
	if got := g.Update(10, 5, 7); got != 5 {
		t.Fatalf("min = %d, want 5", got)
	}
	if got := g.Update(10, 20, 9); got != 9 {
		t.Fatalf("min after the window passed = %d, want 9", got)
	}
	g.Clear()
	if !g.Empty() || g.Get() != 0 {
		t.Fatal("Clear left a sample")
	}
}
