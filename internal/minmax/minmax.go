// Package minmax keeps the running maximum or minimum of a measurement over
// a sliding window of time (or of rounds), in constant space and time:
// Kathleen Nichols' algorithm, as Linux's lib/minmax.c uses it for TCP's
// minimum RTT and BBR's maximum bandwidth. It keeps the best, second best
// and third best samples of the window, each from a later part of it, so
// that when the best ages out the next is at hand.
package minmax

// Sample is one measurement: its time (any monotonic unit: nanoseconds,
// round-trip counts) and its value.
type Sample struct {
	T int64
	V uint64
}

// Filter is a windowed maximum (or minimum) filter. The zero value is empty;
// Reset starts it.
type Filter struct {
	s   [3]Sample
	min bool
	ok  bool // a sample was taken since the last Clear
}

// NewMax returns a filter that keeps the maximum.
func NewMax() Filter { return Filter{} }

// NewMin returns a filter that keeps the minimum.
func NewMin() Filter { return Filter{min: true} }

// Get returns the best value in the window (0 if the filter is empty).
func (f *Filter) Get() uint64 { return f.s[0].V }

// Samples returns the filter's three samples, best first (for a
// connection's compact parked record, tcp/park.go).
func (f *Filter) Samples() [3]Sample { return f.s }

// Empty reports whether the filter holds no sample.
func (f *Filter) Empty() bool { return !f.ok }

// Clear empties the filter.
func (f *Filter) Clear() {
	f.s = [3]Sample{}
	f.ok = false
}

// Reset forgets everything and starts the window with the sample.
func (f *Filter) Reset(t int64, v uint64) uint64 {
	s := Sample{t, v}
	f.s = [3]Sample{s, s, s}
	f.ok = true
	return v
}

// better reports whether a beats or equals b.
func (f *Filter) better(a, b uint64) bool {
	if f.min {
		return a <= b
	}
	return a >= b
}

// Update adds the sample (t, v), measured at t, for a window of length win
// ending at t, and returns the best value in the window. Samples must come
// with non-decreasing t.
func (f *Filter) Update(win, t int64, v uint64) uint64 {
	s := Sample{t, v}
	if !f.ok || f.better(v, f.s[0].V) || t-f.s[2].T > win {
		// A new best, or nothing left in the window.
		return f.Reset(t, v)
	}
	if f.better(v, f.s[1].V) {
		f.s[2] = s
		f.s[1] = s
	} else if f.better(v, f.s[2].V) {
		f.s[2] = s
	}
	return f.subwin(win, s)
}

// subwin expires the best samples that left the window and keeps the
// three spread over it (lib/minmax.c minmax_subwin_update).
func (f *Filter) subwin(win int64, s Sample) uint64 {
	dt := s.T - f.s[0].T
	if dt > win {
		// The best left the window: the second becomes best, and so on.
		f.s[0] = f.s[1]
		f.s[1] = f.s[2]
		f.s[2] = s
		if s.T-f.s[0].T > win {
			f.s[0] = f.s[1]
			f.s[1] = f.s[2]
			f.s[2] = s
		}
	} else if f.s[1].T == f.s[0].T && dt > win/4 {
		// A quarter of the window passed with no second best: take
		// this one.
		f.s[1] = s
		f.s[2] = s
	} else if f.s[2].T == f.s[1].T && dt > win/2 {
		// Half the window passed with no third best.
		f.s[2] = s
	}
	return f.s[0].V
}
