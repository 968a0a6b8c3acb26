package cc

import (
	"math"
	"testing"
)

// TestRenoSlowStart checks the initial window (RFC 6928: 10 segments), the
// infinite initial ssthresh (RFC 5681 §3.1) and slow start with byte
// counting (RFC 3465 §2.2): cwnd grows by the bytes acknowledged. (How
// much one stretch ACK may add is left out: RFC 3465's L.)
func TestRenoSlowStart(t *testing.T) {
	r := NewReno(1000)
	if r.Cwnd() != 10000 || r.Ssthresh() != math.MaxUint32 {
		t.Fatalf("initial cwnd %d ssthresh %d", r.Cwnd(), r.Ssthresh())
	}
	r.OnAck(0, AckSample{Acked: 1000, PriorInFlight: 10000})
	if r.Cwnd() != 11000 {
		t.Fatalf("after 1 MSS acked: cwnd %d, want 11000", r.Cwnd())
	}
	r.OnAck(0, AckSample{Acked: 300, PriorInFlight: 10000})
	if r.Cwnd() != 11300 {
		t.Fatalf("after 300 bytes acked: cwnd %d, want 11300", r.Cwnd())
	}
}

// TestRenoCongestionAvoidance checks RFC 5681 §3.1 (cwnd grows by one SMSS
// per cwnd of acknowledged bytes above ssthresh: RFC 3465 §2.1).
func TestRenoCongestionAvoidance(t *testing.T) {
	r := NewReno(1000)
	r.OnRecoveryStart(0, 20000) // ssthresh = cwnd = 10000
	if r.Ssthresh() != 10000 || r.Cwnd() != 10000 {
		t.Fatalf("ssthresh %d cwnd %d, want 10000 10000", r.Ssthresh(), r.Cwnd())
	}
	for i := 0; i < 9; i++ {
		r.OnAck(0, AckSample{Acked: 1000, PriorInFlight: 10000})
	}
	if r.Cwnd() != 10000 {
		t.Fatalf("after 9000 bytes: cwnd %d, want 10000", r.Cwnd())
	}
	r.OnAck(0, AckSample{Acked: 1000, PriorInFlight: 10000})
	if r.Cwnd() != 11000 {
		t.Fatalf("after a window of bytes: cwnd %d, want 11000", r.Cwnd())
	}
	// The count restarts: the next increase needs 11000 bytes.
	for i := 0; i < 10; i++ {
		r.OnAck(0, AckSample{Acked: 1000, PriorInFlight: 11000})
	}
	if r.Cwnd() != 11000 {
		t.Fatalf("after 10000 more: cwnd %d, want 11000", r.Cwnd())
	}
	r.OnAck(0, AckSample{Acked: 1000, PriorInFlight: 11000})
	if r.Cwnd() != 12000 {
		t.Fatalf("cwnd %d, want 12000", r.Cwnd())
	}
}

// TestRenoLoss checks the window after loss: RFC 5681 §3.2 equation (4)
// on fast retransmit, RFC 6582 §3.2 step 3 at the end of recovery, and
// RFC 5681 §3.1 equations (4) and (5) on a timeout.
func TestRenoLoss(t *testing.T) {
	r := NewReno(1000)
	r.OnRecoveryStart(0, 9000)
	if r.Ssthresh() != 4500 {
		t.Fatalf("ssthresh %d, want FlightSize/2 = 4500", r.Ssthresh())
	}
	r.OnRecoveryStart(0, 1000)
	if r.Ssthresh() != 2000 {
		t.Fatalf("ssthresh %d, want 2*SMSS = 2000", r.Ssthresh())
	}
	r = NewReno(1000)
	r.OnRecoveryStart(0, 20000)
	r.OnRecoveryEnd(0, 3000) // min(ssthresh, max(FlightSize, SMSS) + SMSS)
	if r.Cwnd() != 4000 {
		t.Fatalf("cwnd after recovery %d, want 4000", r.Cwnd())
	}
	r.OnRecoveryEnd(0, 50000)
	if r.Cwnd() != 10000 {
		t.Fatalf("cwnd after recovery %d, want ssthresh 10000", r.Cwnd())
	}
	r.OnTimeout(0, 30000)
	if r.Cwnd() != 1000 || r.Ssthresh() != 15000 {
		t.Fatalf("after RTO cwnd %d ssthresh %d, want 1000 15000", r.Cwnd(), r.Ssthresh())
	}
}

// TestRenoRestart checks RFC 5681 §4.1: after an idle period longer than
// the RTO, cwnd = min(IW, cwnd).
func TestRenoRestart(t *testing.T) {
	r := NewReno(1000)
	for i := 0; i < 10; i++ {
		r.OnAck(0, AckSample{Acked: 2000, PriorInFlight: 10000})
	}
	r.OnIdleRestart(0)
	if r.Cwnd() != 10000 {
		t.Fatalf("cwnd after idle %d, want IW 10000", r.Cwnd())
	}
	r.OnTimeout(0, 0)
	r.OnIdleRestart(0)
	if r.Cwnd() != 1000 {
		t.Fatalf("cwnd after idle %d, want 1000 (smaller than IW)", r.Cwnd())
	}
}

// TestRenoConfig checks a configured initial window (Params), the
// 536-byte default MSS (RFC 9293 MUST-15) and that the window saturates
// instead of wrapping.
func TestRenoConfig(t *testing.T) {
	r := NewReno(0)
	if r.Cwnd() != 5360 {
		t.Fatalf("cwnd with MSS 0: %d, want 10*536", r.Cwnd())
	}
	r = &Reno{}
	r.Init(Params{MSS: 1460, InitialWindow: InitialWindow(1460, 4)})
	if r.Cwnd() != 4*1460 {
		t.Fatalf("cwnd %d, want 4*1460", r.Cwnd())
	}
	r.cwnd = math.MaxUint32 - 10
	r.OnAck(0, AckSample{Acked: 1000, PriorInFlight: 1000})
	if r.Cwnd() != math.MaxUint32 {
		t.Fatalf("cwnd %d, want saturated", r.Cwnd())
	}
	if r.Name() != "reno" {
		t.Fatalf("name %q", r.Name())
	}
}

// TestRenoSYNLoss checks the initial window after lost SYNs (RFC 5681
// §3.1), which package tcp gives as Params.Cwnd: one segment, while the
// restart window stays IW (RFC 5681 §4.1, as Linux).
func TestRenoSYNLoss(t *testing.T) {
	r := &Reno{}
	r.Init(Params{MSS: 1000, InitialWindow: InitialWindow(1000, 10), Cwnd: 1000})
	if r.Cwnd() != 1000 || r.Ssthresh() != math.MaxUint32 {
		t.Fatalf("after SYN loss cwnd %d ssthresh %d, want 1000 and infinite", r.Cwnd(), r.Ssthresh())
	}
	for i := 0; i < 20; i++ {
		r.OnAck(0, AckSample{Acked: 1000, PriorInFlight: 1000})
	}
	r.OnIdleRestart(0)
	if r.Cwnd() != 10000 {
		t.Fatalf("restart window %d, want IW 10000", r.Cwnd())
	}
}
