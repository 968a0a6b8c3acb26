// Package cc holds TCP congestion controllers behind one small interface, so
// the connection core does not care which one runs (RFC 5681 §3 describes
// the window arithmetic every controller must respect).
//
// A Controller is pure, like the rest of the TCP core: it is told about ACKs,
// losses and timeouts, with the current time, and answers with a congestion
// window. Loss recovery itself (which segment to resend, when recovery ends)
// stays in package tcp.
package cc

import (
	"math"
	"time"

	"github.com/ustack/ustack/clock"
)

// Controller decides the congestion window of one connection.
type Controller interface {
	// Name returns the algorithm's name as Linux spells it ("reno").
	Name() string
	// Cwnd returns the congestion window in bytes.
	Cwnd() uint32
	// Ssthresh returns the slow-start threshold in bytes.
	Ssthresh() uint32
	// SetMSS tells the controller the sender's maximum segment size.
	SetMSS(mss uint32)
	// OnAck reports an ACK, outside loss recovery, that acknowledged
	// acked new bytes while flight bytes were outstanding before it; rtt
	// is an RTT sample taken from it, or 0.
	OnAck(now clock.Instant, acked, flight uint32, rtt time.Duration)
	// OnRecoveryStart reports the start of fast recovery (RFC 5681 §3.2
	// step 2) with flight bytes outstanding.
	OnRecoveryStart(now clock.Instant, flight uint32)
	// OnRecoveryEnd reports the ACK that ended recovery (RFC 6582 §3.2
	// step 3), with flight bytes still outstanding after it.
	OnRecoveryEnd(now clock.Instant, flight uint32)
	// OnTimeout reports a retransmission timeout with flight bytes
	// outstanding (RFC 5681 §3.1, equation 4).
	OnTimeout(now clock.Instant, flight uint32)
	// OnIdleRestart reports that the sender is about to send after an
	// idle period longer than the RTO (RFC 5681 §4.1).
	OnIdleRestart(now clock.Instant)
}

// InitialWindow returns the initial window for mss (RFC 6928 §2: ten
// segments; RFC 3390's byte cap is not applied, as Linux does not).
func InitialWindow(mss uint32, segs int) uint32 {
	return mss * uint32(segs)
}

// Reno is NewReno's window arithmetic (RFC 5681 slow start and congestion
// avoidance with appropriate byte counting, RFC 3465; the recovery episode
// of RFC 6582 is driven by package tcp).
type Reno struct {
	mss      uint32
	cwnd     uint32
	ssthresh uint32
	iw       uint32
	// acc counts bytes acknowledged in congestion avoidance (RFC 3465 §2.1).
	acc uint32
}

// NewReno returns a Reno controller with the RFC 6928 initial window of ten
// segments and an infinite initial ssthresh (RFC 5681 §3.1).
func NewReno(mss uint32) *Reno {
	r := &Reno{ssthresh: math.MaxUint32}
	r.SetMSS(mss)
	r.cwnd = r.iw
	return r
}

// Name implements Controller.
func (r *Reno) Name() string { return "reno" }

// Cwnd implements Controller.
func (r *Reno) Cwnd() uint32 { return r.cwnd }

// Ssthresh implements Controller.
func (r *Reno) Ssthresh() uint32 { return r.ssthresh }

// SetMSS implements Controller.
func (r *Reno) SetMSS(mss uint32) {
	if mss == 0 {
		mss = 536
	}
	r.mss = mss
	r.iw = InitialWindow(mss, 10)
}

// SetInitialWindow sets the initial window in segments (for the
// connection's configuration), and the current window if nothing was sent.
func (r *Reno) SetInitialWindow(segs int) {
	r.iw = InitialWindow(r.mss, segs)
	r.cwnd = r.iw
}

// OnAck implements Controller. Below ssthresh, slow start grows cwnd by
// every byte acknowledged, up to ssthresh (RFC 5681 §3.1 allows up to
// SMSS per ACK and RFC 3465 L=2·SMSS; Linux's tcp_slow_start counts them
// all, which matters when ACKs are aggregated, as a receiver behind GRO or
// batched reads sends them). Above it, congestion avoidance adds one MSS
// per cwnd of acknowledged bytes, however many ACKs carried them (RFC 3465
// §2.1 byte counting; Linux tcp_cong_avoid_ai).
func (r *Reno) OnAck(now clock.Instant, acked, flight uint32, rtt time.Duration) {
	if r.cwnd < r.ssthresh {
		grow := min(acked, r.ssthresh-r.cwnd)
		r.cwnd = satAdd(r.cwnd, grow)
		acked -= grow
		if acked == 0 {
			return
		}
	}
	r.acc += acked
	if r.acc >= r.cwnd {
		k := r.acc / r.cwnd
		r.acc -= k * r.cwnd
		r.cwnd = satAdd(r.cwnd, k*r.mss)
	}
}

// OnRecoveryStart implements Controller: ssthresh = max(FlightSize/2,
// 2*SMSS) (RFC 5681 §3.2, equation 4).
func (r *Reno) OnRecoveryStart(now clock.Instant, flight uint32) {
	r.ssthresh = max(flight/2, 2*r.mss)
	r.cwnd = r.ssthresh
	r.acc = 0
}

// OnRecoveryEnd implements Controller: cwnd = min(ssthresh,
// max(FlightSize, SMSS) + SMSS) (RFC 6582 §3.2 step 3, option 1).
func (r *Reno) OnRecoveryEnd(now clock.Instant, flight uint32) {
	r.cwnd = min(r.ssthresh, max(flight, r.mss)+r.mss)
}

// OnTimeout implements Controller: ssthresh = max(FlightSize/2, 2*SMSS) and
// cwnd = one segment (RFC 5681 §3.1, equations 4 and 5).
func (r *Reno) OnTimeout(now clock.Instant, flight uint32) {
	r.ssthresh = max(flight/2, 2*r.mss)
	r.cwnd = r.mss
	r.acc = 0
}

// OnSYNLoss tells the controller that the SYN or SYN-ACK was retransmitted
// more than once: the initial window is one segment (RFC 5681 §3.1, as RFC
// 6928 §2 refines it). The restart window of RFC 5681 §4.1 stays IW, as in
// Linux (tcp_init_transfer sets cwnd 1; tcp_cwnd_restart uses the IW).
// Package tcp calls it on controllers that have it.
func (r *Reno) OnSYNLoss() { r.cwnd = r.mss }

// OnIdleRestart implements Controller: cwnd = min(IW, cwnd) (RFC 5681 §4.1).
func (r *Reno) OnIdleRestart(now clock.Instant) {
	r.cwnd = min(r.cwnd, r.iw)
}

func satAdd(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint32
}

var _ Controller = (*Reno)(nil)
