package tcp

import (
	"testing"
	"time"
)

// TestRTTEstimator checks RFC 6298 §2 with alpha = 1/8, beta = 1/4, and
// the RTO = SRTT + max(MinRTO, 4*RTTVAR) that Linux computes (RFC 6298
// (2.4) would instead round the RTO up to 1 s).
func TestRTTEstimator(t *testing.T) {
	const (
		initial = time.Second
		minRTO  = 200 * time.Millisecond
		maxRTO  = 120 * time.Second
	)
	var e rttEstimator
	// §2.1: before any sample, the initial RTO.
	if got := e.rto(initial, minRTO, maxRTO); got != initial {
		t.Fatalf("RTO before a sample = %v, want %v", got, initial)
	}
	for i, c := range []struct {
		r                 time.Duration
		srtt, rttvar, rto time.Duration
	}{
		// §2.2: SRTT = R, RTTVAR = R/2.
		{100 * time.Millisecond, 100 * time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond},
		// §2.3: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'| (with the old
		// SRTT), SRTT = 7/8 SRTT + 1/8 R'.
		{200 * time.Millisecond, 112500 * time.Microsecond, 62500 * time.Microsecond, 362500 * time.Microsecond},
		{112500 * time.Microsecond, 112500 * time.Microsecond, 46875 * time.Microsecond, 312500 * time.Microsecond},
		// A long RTT: the variance term exceeds MinRTO.
		{2 * time.Second, 348437500 * time.Nanosecond, 507031250 * time.Nanosecond, 2376562500 * time.Nanosecond},
	} {
		e.sample(c.r)
		if e.srtt != c.srtt || e.rttvar != c.rttvar {
			t.Fatalf("sample %d (%v): SRTT %v RTTVAR %v, want %v %v", i, c.r, e.srtt, e.rttvar, c.srtt, c.rttvar)
		}
		if got := e.rto(initial, minRTO, maxRTO); got != c.rto {
			t.Fatalf("sample %d: RTO %v, want %v", i, got, c.rto)
		}
	}
	// §2.5: a maximum may be placed on the RTO.
	if got := e.rto(initial, minRTO, time.Second); got != time.Second {
		t.Fatalf("RTO above max = %v, want 1s", got)
	}
	// §2.4 (Linux's form): the variance term is at least MinRTO.
	var f rttEstimator
	f.sample(time.Millisecond)
	if got := f.rto(initial, minRTO, maxRTO); got != time.Millisecond+minRTO {
		t.Fatalf("RTO for 1 ms RTT = %v, want %v", got, time.Millisecond+minRTO)
	}
	// A zero or negative measurement (clock granularity) still counts
	// as a valid, tiny sample.
	var g rttEstimator
	g.sample(0)
	if !g.valid() || g.srtt <= 0 {
		t.Fatalf("sample(0): valid %v srtt %v", g.valid(), g.srtt)
	}
}
