package cc

import (
	"math"
	"time"

	"github.com/ustack/ustack/clock"
)

// Reno is NewReno's window arithmetic (RFC 5681 slow start and congestion
// avoidance with appropriate byte counting, RFC 3465; the recovery episode
// of RFC 6582 or RFC 6675 is driven by package tcp). It is registered as
// "reno".
type Reno struct {
	mss      uint32
	cwnd     uint32
	ssthresh uint32
	iw       uint32
	// acc counts bytes acknowledged in congestion avoidance (RFC 3465 §2.1).
	acc uint32
	// priorCwnd and priorSsthresh are the window and threshold before the
	// last reduction, for OnUndo; priorCwnd is 0 when there is nothing
	// to undo.
	priorCwnd, priorSsthresh uint32
	// pacing (Params.Pacing) and the smoothed RTT it needs.
	pacing bool
	srtt   time.Duration
}

// NewReno returns a Reno controller initialised for mss with the RFC 6928
// initial window of ten segments and an infinite initial ssthresh (RFC
// 5681 §3.1).
func NewReno(mss uint32) *Reno {
	r := &Reno{}
	r.Init(Params{MSS: mss})
	return r
}

// Name implements Controller.
func (r *Reno) Name() string { return "reno" }

// Init implements Controller: cwnd starts at p.Cwnd, or the initial window
// (RFC 6928: ten segments when p.InitialWindow is zero); ssthresh at
// p.Ssthresh, or infinity (RFC 5681 §3.1). An MSS of zero is taken as 536
// (RFC 9293 MUST-15).
func (r *Reno) Init(p Params) {
	r.mss = p.MSS
	if r.mss == 0 {
		r.mss = 536
	}
	r.iw = p.InitialWindow
	if r.iw == 0 {
		r.iw = InitialWindow(r.mss, 10)
	}
	r.cwnd = r.iw
	if p.Cwnd != 0 {
		r.cwnd = p.Cwnd
	}
	r.ssthresh = math.MaxUint32
	if p.Ssthresh != 0 {
		r.ssthresh = p.Ssthresh
	}
	r.acc = 0
	r.priorCwnd, r.priorSsthresh = 0, 0
	r.pacing, r.srtt = p.Pacing, 0
}

// Cwnd implements Controller.
func (r *Reno) Cwnd() uint32 { return r.cwnd }

// Ssthresh implements Controller.
func (r *Reno) Ssthresh() uint32 { return r.ssthresh }

// PacingRate implements Controller: none, unless Params.Pacing asked for
// it; then Linux's rates (tcp_update_pacing_rate).
func (r *Reno) PacingRate() uint64 {
	return pacingRate(r.pacing, float64(r.cwnd), r.srtt, r.cwnd < r.ssthresh)
}

// SetMSS implements Controller. The initial window follows the MSS only
// while it is the default of ten segments.
func (r *Reno) SetMSS(mss uint32) {
	if mss == 0 {
		mss = 536
	}
	if r.iw == InitialWindow(r.mss, 10) {
		r.iw = InitialWindow(mss, 10)
	}
	r.mss = mss
}

// OnSent implements Controller: Reno needs nothing from it.
func (r *Reno) OnSent(now clock.Instant, bytes, inFlight uint32) {}

// OnAck implements Controller. Below ssthresh, slow start grows cwnd by
// every byte acknowledged, up to ssthresh (RFC 5681 §3.1 allows up to
// SMSS per ACK and RFC 3465 L=2·SMSS; Linux's tcp_slow_start counts them
// all, which matters when ACKs are aggregated, as a receiver behind GRO or
// batched reads sends them). Above it, congestion avoidance adds one MSS
// per cwnd of acknowledged bytes, however many ACKs carried them (RFC 3465
// §2.1 byte counting; Linux tcp_cong_avoid_ai). During loss recovery the
// window is left alone (RFC 6582 §3.2, RFC 6675 §5 rule it).
func (r *Reno) OnAck(now clock.Instant, s AckSample) {
	if s.RTT > 0 {
		if r.srtt == 0 {
			r.srtt = s.RTT
		} else {
			r.srtt += (s.RTT - r.srtt) / 8
		}
	}
	if s.InRecovery || s.Acked == 0 {
		return // an ACK that only SACKed: byte counting counts cumulative ACKs
	}
	acked := s.Acked
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

// save remembers the window before a reduction, for OnUndo.
func (r *Reno) save() {
	r.priorCwnd, r.priorSsthresh = r.cwnd, r.ssthresh
}

// OnRecoveryStart implements Controller: ssthresh = max(FlightSize/2,
// 2*SMSS) (RFC 5681 §3.2, equation 4), and cwnd = ssthresh.
func (r *Reno) OnRecoveryStart(now clock.Instant, flight uint32) {
	r.save()
	r.ssthresh = max(flight/2, 2*r.mss)
	r.cwnd = r.ssthresh
	r.acc = 0
}

// OnECE implements Controller: the same reduction as for a loss (RFC 3168
// §6.1.2).
func (r *Reno) OnECE(now clock.Instant, flight uint32) { r.OnRecoveryStart(now, flight) }

// SetsRecoveryWindow implements Controller: the recovery algorithm rules.
func (r *Reno) SetsRecoveryWindow() bool { return false }

// OnLost implements Controller: Reno reacts to the episode, not to each
// segment.
func (r *Reno) OnLost(now clock.Instant, l LostSegment) {}

// OnRecoveryEnd implements Controller: cwnd = min(ssthresh,
// max(FlightSize, SMSS) + SMSS) (RFC 6582 §3.2 step 3, option 1).
func (r *Reno) OnRecoveryEnd(now clock.Instant, flight uint32) {
	r.cwnd = min(r.ssthresh, satAdd(max(flight, r.mss), r.mss))
}

// OnTimeout implements Controller: ssthresh = max(FlightSize/2, 2*SMSS) and
// cwnd = one segment (RFC 5681 §3.1, equations 4 and 5).
func (r *Reno) OnTimeout(now clock.Instant, flight uint32) {
	r.save()
	r.ssthresh = max(flight/2, 2*r.mss)
	r.cwnd = r.mss
	r.acc = 0
}

// OnIdleRestart implements Controller: cwnd = min(IW, cwnd) (RFC 5681
// §4.1). The restart window is the initial window even after a lost SYN
// made the first window one segment, as in Linux (tcp_init_transfer sets
// cwnd 1; tcp_cwnd_restart uses the IW).
func (r *Reno) OnIdleRestart(now clock.Instant) {
	r.cwnd = min(r.cwnd, r.iw)
}

// OnUndo implements Controller: the window and threshold go back to at
// least what they were before the last reduction (Linux
// tcp_undo_cwnd_reduction with tcp_reno_undo_cwnd).
func (r *Reno) OnUndo(now clock.Instant) {
	if r.priorCwnd == 0 {
		return
	}
	r.cwnd = max(r.cwnd, r.priorCwnd)
	r.ssthresh = max(r.ssthresh, r.priorSsthresh)
	r.priorCwnd, r.priorSsthresh = 0, 0
	r.acc = 0
}

var _ Controller = (*Reno)(nil)

// ReusableAfterInit implements Reusable: Init sets every field.
func (*Reno) ReusableAfterInit() {}
