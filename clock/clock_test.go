package clock

import (
	"testing"
	"time"
)

func TestAddSaturatesAtNever(t *testing.T) {
	if got := Never.Add(time.Second); got != Never {
		t.Errorf("Never+1s = %v, want Never", got)
	}
	if got := Instant(Never - 5).Add(time.Hour); got != Never {
		t.Errorf("overflowing Add = %v, want Never", got)
	}
	if got := Instant(10).Add(-5); got != 5 {
		t.Errorf("10ns-5ns = %v, want 5ns", got)
	}
}

func TestOrderAndMin(t *testing.T) {
	a, b := Instant(1), Instant(2)
	if !a.Before(b) || !b.After(a) || a.After(b) {
		t.Error("Before/After wrong")
	}
	if Min(a, b) != a || Min(b, a) != a || Min(a, Never) != a {
		t.Error("Min wrong")
	}
	if b.Sub(a) != time.Nanosecond {
		t.Errorf("Sub = %v", b.Sub(a))
	}
	if Never.String() != "never" || Instant(time.Second).String() != "1s" {
		t.Errorf("String: %q %q", Never.String(), Instant(time.Second).String())
	}
}

func TestRealIsMonotonic(t *testing.T) {
	r := NewReal()
	t0 := r.Now()
	t1 := r.Now()
	if t1 < t0 || t0 < 0 {
		t.Fatalf("Now went backwards: %v then %v", t0, t1)
	}
	if d := r.Until(t1.Add(time.Hour)); d <= 0 || d > time.Hour {
		t.Fatalf("Until an hour ahead = %v", d)
	}
	if got := r.Time(t1).Sub(r.Time(t0)); got != t1.Sub(t0) {
		t.Fatalf("Time does not preserve differences: %v vs %v", got, t1.Sub(t0))
	}
}
