package cc

import (
	"math"
	"time"

	"github.com/ustack/ustack/clock"
)

// CUBIC (RFC 9438) with HyStart++ (RFC 9406) for its slow start:
// registered as "cubic", the default (Linux's too).
//
// Windows are kept in bytes; the cubic function works in segments and
// seconds, as the RFC writes it, in float64. Every input is clamped
// first (time since the epoch, RTT, windows), and every result is
// clamped to [2·MSS, MaxCwnd] before it becomes a window, so no RTT,
// window or idle period can overflow it, produce NaN, or wrap a uint32
// (FuzzCubic checks this over extreme inputs; gVisor's integer CUBIC
// once panicked on an overflow).

// The constants of RFC 9438 §4 and RFC 9406 §4.3.
const (
	cubicC    = 0.4 // C
	cubicBeta = 0.7 // β_cubic
	// cubicAlpha is α_cubic = 3·(1−β)/(1+β) (§4.3), the Reno-friendly
	// region's additive increase per RTT.
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)

	hsMinRTTThresh  = 4 * time.Millisecond  // MIN_RTT_THRESH
	hsMaxRTTThresh  = 16 * time.Millisecond // MAX_RTT_THRESH
	hsMinRTTDivisor = 8                     // MIN_RTT_DIVISOR
	hsNRTTSample    = 8                     // N_RTT_SAMPLE
	hsCSSGrowthDiv  = 4                     // CSS_GROWTH_DIVISOR
	hsCSSRounds     = 5                     // CSS_ROUNDS
	hsL             = 8                     // L: segments of growth per ACK, unpaced
	// Linux's ACK-train test (HYSTART_ACK_TRAIN, beyond RFC 9406): ACKs
	// less than hsACKDelta apart continue a train, and slow start ends
	// once a window of at least hsLowWindow segments has a train longer
	// than half the minimum RTT (the whole of it when paced).
	hsACKDelta        = 2 * time.Millisecond
	hsLowWindow       = 16
	cubicMaxEpochSecs = 1e6 // the epoch's age is clamped to this (11.6 days)
)

// MaxCwnd is the largest congestion window a controller of this package
// sets: 1 GiB, the largest window TCP can announce (RFC 7323 §2.3).
const MaxCwnd = 1 << 30

// Cubic is CUBIC's window arithmetic (RFC 9438) with HyStart++ (RFC 9406).
// The recovery episode itself (RACK, PRR) is package tcp's.
type Cubic struct {
	mss, iw  uint32
	cwnd     float64 // bytes
	ssthresh uint32

	// §4.1: W_max and K, in segments and seconds; the epoch (t = 0) and
	// the window it began with; W_est (§4.3) in segments.
	wMax       float64
	k          float64
	epochOn    bool
	epochStart clock.Instant
	wEst       float64
	// minRTT is the smallest RTT sample: the RTT of W_cubic(t+RTT)
	// (§4.2; Linux's delay_min).
	minRTT time.Duration
	srtt   time.Duration // for the pacing rate

	hs hystart

	// Rounds, by delivered bytes (as BBR counts them): a round ends when
	// a segment sent after its start is delivered.
	roundEnd uint64
	// cwndLimited: the window, not the application, limited what was in
	// flight during this round or the last (RFC 9438 §5.8: no growth
	// otherwise; Linux's tcp_is_cwnd_limited).
	maxInFlight, lastMaxInFlight uint32
	lastSent                     clock.Instant
	sentOnce                     bool

	pacing bool

	// prior holds what the last reduction changed, for OnUndo (§4.9):
	// made by the first reduction (most connections never lose a
	// segment, and carry none).
	prior *cubicPrior
}

// cubicPrior is the state a reduction changes, as it was before it.
type cubicPrior struct {
	ok         bool
	cwnd       float64
	ssthresh   uint32
	wMax, k    float64
	epochOn    bool
	epochStart clock.Instant
	wEst       float64
}

// hystart is HyStart++'s state (RFC 9406 §4.2).
type hystart struct {
	on                 bool // slow start is watched (until the first exit)
	css                bool // in Conservative Slow Start
	cssRounds          int
	lastRoundMinRTT    time.Duration // 0: none yet
	currentRoundMinRTT time.Duration
	rttSamples         int
	cssBaselineMinRTT  time.Duration
	// The ACK train of the current round: when it began, and its last
	// ACK.
	trainStart, lastACK clock.Instant
}

func init() {
	if err := Register("cubic", func() Controller { return &Cubic{} }); err != nil {
		panic(err)
	}
}

// NewCubic returns a CUBIC controller initialised for mss, with the RFC
// 6928 initial window.
func NewCubic(mss uint32) *Cubic {
	c := &Cubic{}
	c.Init(Params{MSS: mss})
	return c
}

// Name implements Controller.
func (c *Cubic) Name() string { return "cubic" }

// Init implements Controller.
func (c *Cubic) Init(p Params) {
	mss := p.MSS
	if mss == 0 {
		mss = 536
	}
	*c = Cubic{mss: mss, iw: p.InitialWindow, ssthresh: math.MaxUint32, pacing: p.Pacing}
	if c.iw == 0 {
		c.iw = InitialWindow(mss, 10)
	}
	c.cwnd = float64(c.iw)
	if p.Cwnd != 0 {
		c.cwnd = float64(p.Cwnd)
	}
	if p.Ssthresh != 0 {
		c.ssthresh = p.Ssthresh
	}
	c.clampCwnd()
	c.hs = hystart{on: true}
}

// Cwnd implements Controller.
func (c *Cubic) Cwnd() uint32 { return uint32(c.cwnd) }

// Ssthresh implements Controller.
func (c *Cubic) Ssthresh() uint32 { return c.ssthresh }

// SetMSS implements Controller.
func (c *Cubic) SetMSS(mss uint32) {
	if mss == 0 {
		mss = 536
	}
	if c.iw == InitialWindow(c.mss, 10) {
		c.iw = InitialWindow(mss, 10)
	}
	c.mss = mss
	c.clampCwnd()
}

// PacingRate implements Controller: none, unless Params.Pacing asked for
// it; then Linux's rates (tcp_update_pacing_rate): twice the window per
// SRTT in slow start, 1.2 times in congestion avoidance.
func (c *Cubic) PacingRate() uint64 { return pacingRate(c.pacing, c.cwnd, c.srtt, c.inSlowStart()) }

// pacingRate is Linux's sk_pacing_rate for a window-based controller.
func pacingRate(on bool, cwnd float64, srtt time.Duration, slowStart bool) uint64 {
	if !on || srtt <= 0 {
		return 0
	}
	ratio := 1.2
	if slowStart {
		ratio = 2
	}
	r := ratio * cwnd * float64(time.Second) / float64(srtt)
	return uint64(min(max(r, 1), 1e15))
}

// SetsRecoveryWindow implements Controller: the recovery algorithm rules.
func (c *Cubic) SetsRecoveryWindow() bool { return false }

// OnLost implements Controller: CUBIC reacts to the episode, not to each
// segment.
func (c *Cubic) OnLost(now clock.Instant, l LostSegment) {}

func (c *Cubic) inSlowStart() bool { return c.cwnd < float64(c.ssthresh) }

// clampCwnd keeps the window in [2·MSS, MaxCwnd] (RFC 9438 §4.6: at least
// two segments after a reduction) — one segment only after an RTO.
func (c *Cubic) clampCwnd() {
	if !(c.cwnd >= float64(c.mss)) { // also NaN
		c.cwnd = float64(c.mss)
	}
	c.cwnd = min(c.cwnd, MaxCwnd)
}

// OnSent implements Controller: it notes how much the window let into
// the network (cwnd-limited or not), and, when sending resumes after a
// pause with nothing in flight, moves the epoch forward by the pause, so
// an application-limited sender does not find a window grown by its idle
// time (Linux's CA_EVENT_TX_START; RFC 9438 §5.8).
func (c *Cubic) OnSent(now clock.Instant, bytes, inFlight uint32) {
	if c.sentOnce && inFlight <= bytes && c.epochOn {
		if d := now.Sub(c.lastSent); d > 0 {
			c.epochStart = min(c.epochStart.Add(d), now)
		}
	}
	c.lastSent, c.sentOnce = now, true
	c.maxInFlight = max(c.maxInFlight, inFlight)
}

// cwndLimited reports whether the window limited the flight recently:
// within a segment of it in congestion avoidance, at least half of it in
// slow start (Linux's tcp_is_cwnd_limited).
func (c *Cubic) cwndLimited() bool {
	f := float64(max(c.maxInFlight, c.lastMaxInFlight))
	if c.inSlowStart() {
		return 2*f >= c.cwnd
	}
	return f+float64(c.mss) >= c.cwnd
}

// OnAck implements Controller.
func (c *Cubic) OnAck(now clock.Instant, s AckSample) {
	if s.RTT > 0 {
		if c.minRTT == 0 || s.RTT < c.minRTT {
			c.minRTT = s.RTT
		}
		if c.srtt == 0 {
			c.srtt = s.RTT
		} else {
			c.srtt += (s.RTT - c.srtt) / 8
		}
	}
	newRound := false
	if s.PriorDelivered >= c.roundEnd {
		newRound = true
		c.roundEnd = s.TotalDelivered
		c.lastMaxInFlight, c.maxInFlight = c.maxInFlight, s.InFlight
	}
	if s.InRecovery || s.Acked == 0 {
		return // the recovery algorithm rules; byte counting counts cumulative ACKs
	}
	if !c.cwndLimited() {
		return
	}
	acked := float64(s.Acked)
	if c.inSlowStart() {
		acked = c.slowStart(now, s, acked, newRound)
		if acked <= 0 {
			return
		}
	}
	c.congestionAvoidance(now, acked)
}

// slowStart grows the window (RFC 5681 §3.1 with byte counting), under
// HyStart++ (RFC 9406 §4.2): by a quarter of that in Conservative Slow
// Start once the RTT rose, and out into congestion avoidance after
// CSS_ROUNDS rounds of CSS. It returns the bytes acknowledged beyond
// ssthresh, for congestion avoidance.
func (c *Cubic) slowStart(now clock.Instant, s AckSample, acked float64, newRound bool) float64 {
	hs := &c.hs
	if hs.on {
		if newRound {
			hs.lastRoundMinRTT = hs.currentRoundMinRTT
			hs.currentRoundMinRTT = 0
			hs.rttSamples = 0
			hs.trainStart, hs.lastACK = now, now
			if hs.css {
				hs.cssRounds++
				if hs.cssRounds >= hsCSSRounds {
					// §4.2: CSS lasted CSS_ROUNDS rounds: slow start
					// is over.
					c.ssthresh = uint32(c.cwnd)
					hs.on, hs.css = false, false
					return acked
				}
			}
		}
		if c.ackTrain(now) {
			// The ACKs of one window arrive back to back for longer
			// than half an RTT: the window fills the path. Slow start
			// ends here (Linux's HyStart ACK train).
			c.ssthresh = uint32(c.cwnd)
			hs.on, hs.css = false, false
			return acked
		}
	}
	// RFC 9406 §4.3 recommends limiting the growth per ACK to L = 8
	// segments when not paced. ustack does not, as Linux's slow start
	// does not: receivers that batch (GRO, or ustack's own, which ACKs
	// once per batch read) send stretch ACKs of twenty segments and more,
	// and with L the demo's slow start took three times as long (615
	// against 800 Mbit/s over 256 MiB on a loaded machine).
	grow := acked
	if hs.on && hs.css {
		grow /= hsCSSGrowthDiv
	}
	room := float64(c.ssthresh) - c.cwnd
	left := 0.0
	if grow <= room {
		c.cwnd += grow
	} else {
		c.cwnd = float64(c.ssthresh)
		left = acked - room
	}
	c.clampCwnd()
	if hs.on {
		c.hystartRTT(s)
	}
	return left
}

// hystartRTT is HyStart++'s RTT tracking for one ACK (RFC 9406 §4.2),
// after the window grew for it: the round's minimum RTT, and, from the
// N_RTT_SAMPLE-th sample on, Conservative Slow Start when it rose by
// RttThresh over the last round's, or back to slow start when it fell
// below CSS's baseline.
func (c *Cubic) hystartRTT(s AckSample) {
	hs := &c.hs
	if s.RTT > 0 {
		if hs.currentRoundMinRTT == 0 || s.RTT < hs.currentRoundMinRTT {
			hs.currentRoundMinRTT = s.RTT
		}
		hs.rttSamples++
	}
	if hs.rttSamples >= hsNRTTSample && hs.currentRoundMinRTT > 0 {
		switch {
		case !hs.css && hs.lastRoundMinRTT > 0:
			thresh := min(max(hs.lastRoundMinRTT/hsMinRTTDivisor, hsMinRTTThresh), hsMaxRTTThresh)
			if hs.currentRoundMinRTT >= hs.lastRoundMinRTT+thresh {
				hs.css, hs.cssRounds = true, 0
				hs.cssBaselineMinRTT = hs.currentRoundMinRTT
			}
		case hs.css && hs.currentRoundMinRTT < hs.cssBaselineMinRTT:
			// §4.2: the RTT fell back: the rise was not from
			// the bottleneck's queue. Back to slow start.
			hs.css = false
		}
	}
}

// ackTrain is Linux's HyStart ACK-train test, which RFC 9406 does not
// have: HyStart++'s per-round minimum RTT sees a queue only once it
// lasts a whole round, too late when the bottleneck's buffer is about a
// bandwidth-delay product (the window doubles past BDP plus buffer in the
// round after the first queue forms). A train of ACKs arriving closely
// spaced since the round began, for longer than half the minimum RTT,
// shows the window's data queued at the bottleneck for that long: the
// window is about the path's capacity.
func (c *Cubic) ackTrain(now clock.Instant) bool {
	hs := &c.hs
	if now.Sub(hs.lastACK) > hsACKDelta {
		return false
	}
	hs.lastACK = now
	if c.minRTT == 0 || c.cwnd < hsLowWindow*float64(c.mss) {
		return false
	}
	thresh := c.minRTT / 2
	if c.pacing {
		thresh = c.minRTT // pacing spreads a window over up to an RTT
	}
	return now.Sub(hs.trainStart) > thresh
}

// congestionAvoidance is RFC 9438 §4.2 to §4.5 for acked bytes.
func (c *Cubic) congestionAvoidance(now clock.Instant, acked float64) {
	mss := float64(c.mss)
	w := c.cwnd / mss // segments
	if !c.epochOn {
		// A new congestion avoidance stage (§4.2): t starts here, from
		// the window it starts with.
		c.epochOn, c.epochStart = true, now
		if c.wMax <= w {
			// Past W_max (or none, after an RTO: §4.8): the
			// function starts at the current window, convex.
			c.wMax, c.k = w, 0
		} else {
			c.k = math.Cbrt((c.wMax - w) / cubicC) // equation 2
		}
		c.wEst = w
	}
	t := min(max(now.Sub(c.epochStart).Seconds(), 0), cubicMaxEpochSecs)
	rtt := min(c.minRTT.Seconds(), 60)
	// §4.2: the target is W_cubic(t + RTT), within [cwnd, 1.5·cwnd].
	target := c.wCubic(t + rtt)
	target = min(max(target, w), 1.5*w)
	// §4.3: the Reno-friendly estimate grows by α_cubic segments per
	// window acknowledged (α = 1 once it reaches W_max).
	alpha := cubicAlpha
	if c.wEst >= c.wMax {
		alpha = 1
	}
	segs := acked / mss
	c.wEst += alpha * segs / w
	if c.wCubic(t) < c.wEst {
		// The Reno-friendly region (§4.3).
		c.cwnd = c.wEst * mss
	} else {
		// Concave and convex regions (§4.4, §4.5): cwnd grows by
		// (target − cwnd)/cwnd per segment acknowledged.
		c.cwnd += (target - w) / w * segs * mss
	}
	c.clampCwnd()
}

// wCubic is equation 1: W_cubic(t) = C·(t − K)³ + W_max, in segments.
func (c *Cubic) wCubic(t float64) float64 {
	d := t - c.k
	return cubicC*d*d*d + c.wMax
}

// save remembers the state a reduction changes (§4.9).
func (c *Cubic) save() {
	if c.prior == nil {
		c.prior = new(cubicPrior) // once per connection, at its first reduction
	}
	p := c.prior
	p.ok = true
	p.cwnd, p.ssthresh = c.cwnd, c.ssthresh
	p.wMax, p.k = c.wMax, c.k
	p.epochOn, p.epochStart = c.epochOn, c.epochStart
	p.wEst = c.wEst
}

// reduce is §4.6 and §4.7: W_max becomes the window at the congestion
// event (less, by fast convergence, if it is smaller than the last
// W_max), ssthresh β·cwnd (at least 2·MSS), and a new epoch begins with
// the next congestion avoidance. It uses cwnd, as Linux (the RFC allows
// it instead of the flight size).
func (c *Cubic) reduce() {
	c.save()
	w := c.cwnd / float64(c.mss)
	if w < c.wMax {
		c.wMax = w * (1 + cubicBeta) / 2 // fast convergence (§4.7)
	} else {
		c.wMax = w
	}
	c.ssthresh = uint32(max(c.cwnd*cubicBeta, 2*float64(c.mss)))
	c.epochOn = false
	c.hs.on, c.hs.css = false, false
}

// OnRecoveryStart implements Controller (§4.6): cwnd = ssthresh =
// β·cwnd.
func (c *Cubic) OnRecoveryStart(now clock.Instant, flight uint32) {
	c.reduce()
	c.cwnd = float64(c.ssthresh)
	c.clampCwnd()
}

// OnECE implements Controller: the same reduction (RFC 9438 §4.6
// applies to ECN-Echo as to loss).
func (c *Cubic) OnECE(now clock.Instant, flight uint32) { c.OnRecoveryStart(now, flight) }

// OnRecoveryEnd implements Controller: cwnd = min(ssthresh, flight +
// SMSS), ssthresh when PRR ran.
func (c *Cubic) OnRecoveryEnd(now clock.Instant, flight uint32) {
	c.cwnd = float64(min(c.ssthresh, satAdd(max(flight, c.mss), c.mss)))
	c.clampCwnd()
}

// OnTimeout implements Controller (§4.8): ssthresh as for a loss, cwnd
// one segment, and the first congestion avoidance stage after it starts
// from its own window (W_max = cwnd then, K = 0), as Linux's bictcp_reset.
func (c *Cubic) OnTimeout(now clock.Instant, flight uint32) {
	c.reduce()
	c.wMax = 0
	c.cwnd = float64(c.mss)
}

// OnIdleRestart implements Controller: cwnd = min(IW, cwnd) (RFC 5681
// §4.1), and a new epoch.
func (c *Cubic) OnIdleRestart(now clock.Instant) {
	c.cwnd = min(c.cwnd, float64(c.iw))
	c.clampCwnd()
	c.epochOn = false
}

// OnUndo implements Controller (§4.9): the state before the last
// reduction comes back (the window at least as large as it was).
func (c *Cubic) OnUndo(now clock.Instant) {
	p := c.prior
	if p == nil || !p.ok {
		return
	}
	c.cwnd = max(c.cwnd, p.cwnd)
	c.ssthresh = max(c.ssthresh, p.ssthresh)
	c.wMax, c.k = p.wMax, p.k
	c.epochOn, c.epochStart = p.epochOn, p.epochStart
	c.wEst = p.wEst
	p.ok = false
	c.clampCwnd()
}

var _ Controller = (*Cubic)(nil)

// ReusableAfterInit implements Reusable: Init sets every field.
func (*Cubic) ReusableAfterInit() {}
