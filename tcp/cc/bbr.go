package cc

import (
	"math"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/minmax"
)

// BBR is BBR version 3 as its authors' IETF draft describes it
// (draft-ietf-ccwg-bbr, BBRv3): a model of the path — the bottleneck
// bandwidth (the windowed maximum of delivery-rate samples) and the
// round-trip propagation delay (the windowed minimum RTT) — sets the
// pacing rate and bounds what is in flight; the states Startup, Drain,
// ProbeBW (DOWN, CRUISE, REFILL, UP) and ProbeRTT probe for more
// bandwidth and a lower RTT; losses above 2% of what was in flight bound
// the model from above (inflight_longterm, Linux's inflight_hi) and
// losses in a round from below for a while (bw_shortterm,
// inflight_shortterm). It paces always and sets its window itself during
// loss recovery (SetsRecoveryWindow), as Linux's cong_control. Registered
// as "bbr". The draft's section names are in the comments.
//
// Not done: the draft's ECN response (BBR ignores ECN-Echo here, as
// Linux's BBRv1 and BBRv3 without its ECN option do), and the sender's
// own app-limited marking during ProbeRTT (the connection's rate sampler
// marks app-limited phases from the application's writes only).
type BBR struct {
	mss         uint32
	initialCwnd uint32
	cwnd        uint64

	state      bbrState
	pacingGain float64
	cwndGain   float64
	pacingRate uint64

	// The model (§5.5, §5.6).
	maxBwFilter  minmax.Filter // windowed max of delivery rate, over cycles
	cycleCount   int64
	maxBw        uint64 // BBR.max_bw
	bw           uint64 // BBR.bw = min(max_bw, bw_shortterm)
	minRTT       time.Duration
	minRTTStamp  clock.Instant
	bdp          uint64
	extraAcked   uint64
	extraFilter  minmax.Filter // windowed max of extra_acked, over rounds
	extraStart   clock.Instant
	extraDeliv   uint64
	maxInflight  uint64
	sendQuantum  uint64
	offloadQuota uint64

	// Rounds (§5.5.1).
	nextRoundDelivered uint64
	roundStart         bool
	roundCount         int64

	// Startup (§5.3.1.1): full bandwidth reached.
	fullBwReached bool
	fullBwNow     bool
	fullBw        uint64
	fullBwCount   int

	// ProbeBW (§5.3.3).
	cycleStamp         clock.Instant
	ackPhase           ackPhase
	bwProbeWait        time.Duration
	roundsSinceBwProbe int64
	bwProbeSamples     bool
	bwProbeUpRounds    int
	bwProbeUpAcks      uint64
	probeUpCnt         uint64
	rng                uint64 // for the probe wait, seeded per connection

	// ProbeRTT (§5.3.4).
	probeRTTMinDelay  time.Duration
	probeRTTMinStamp  clock.Instant
	probeRTTExpired   bool
	probeRTTDoneStamp clock.Instant
	probeRTTRoundDone bool
	idleRestart       bool
	priorCwnd         uint64

	// Congestion signals (§5.5.10).
	lossInRound        bool
	lossRoundStart     bool
	lossRoundDelivered uint64
	bwLatest           uint64
	inflightLatest     uint64
	bytesLostInRound   uint64
	lossEventsInRound  int
	inflightLongterm   uint64 // inflight_hi; math.MaxUint64: unset
	bwShortterm        uint64 // bw_lo
	inflightShortterm  uint64 // inflight_lo

	// Loss recovery, told by the connection.
	inLossRecovery     bool
	roundAtRecovery    int64
	recoveryPending    bool
	lastDelivered      uint64 // C.delivered
	cwndLimited        bool
	maxInflightInRound uint64
	lastSampleAppLtd   bool
	lastSent           clock.Instant
}

type bbrState uint8

const (
	bbrStartup bbrState = iota
	bbrDrain
	bbrProbeBWDown
	bbrProbeBWCruise
	bbrProbeBWRefill
	bbrProbeBWUp
	bbrProbeRTT
)

var bbrStateNames = [...]string{"Startup", "Drain", "ProbeBW_DOWN", "ProbeBW_CRUISE", "ProbeBW_REFILL", "ProbeBW_UP", "ProbeRTT"}

// String returns the state's name as the draft writes it.
func (s bbrState) String() string { return bbrStateNames[s] }

type ackPhase uint8

const (
	acksInit ackPhase = iota
	acksRefilling
	acksProbeStarting
	acksProbeFeedback
	acksProbeStopping
	acksProbeStopped
)

// The draft's constants (§5.1, §5.3, §5.5).
const (
	bbrStartupPacingGain  = 2.77 // 4·ln 2
	bbrStartupCwndGain    = 2.0
	bbrDrainPacingGain    = 0.5
	bbrDefaultCwndGain    = 2.0
	bbrProbeUpCwndGain    = 2.25
	bbrProbeRTTCwndGain   = 0.5
	bbrBeta               = 0.7
	bbrLossThresh         = 0.02
	bbrHeadroom           = 0.15
	bbrPacingMargin       = 0.01
	bbrMaxBwFilterLen     = 2  // cycles
	bbrExtraAckedFilter   = 10 // rounds
	bbrStartupFullLossCnt = 6
	bbrFullBwGrowth       = 1.25
	bbrFullBwRounds       = 3
	bbrProbeRTTInterval   = 5 * time.Second
	bbrMinRTTFilterLen    = 10 * time.Second
	bbrProbeRTTDuration   = 200 * time.Millisecond
	bbrMinPipeSegs        = 4
	bbrMaxSendQuantum     = 64 << 10
)

func init() {
	if err := Register("bbr", func() Controller { return &BBR{} }); err != nil {
		panic(err)
	}
}

// NewBBR returns a BBR controller initialised for mss.
func NewBBR(mss uint32) *BBR {
	b := &BBR{}
	b.Init(Params{MSS: mss})
	return b
}

// Name implements Controller.
func (b *BBR) Name() string { return "bbr" }

// State returns the current state's name (for tests and tables).
func (b *BBR) State() string { return b.state.String() }

// BtlBw returns the bandwidth estimate BBR.bw in bytes per second.
func (b *BBR) BtlBw() uint64 { return b.bw }

// MinRTT returns BBR.min_rtt (0 before a sample).
func (b *BBR) MinRTT() time.Duration { return b.minRTT }

// Init implements Controller (§5.2, BBROnInit).
func (b *BBR) Init(p Params) {
	mss := p.MSS
	if mss == 0 {
		mss = 536
	}
	iw := p.InitialWindow
	if iw == 0 {
		iw = InitialWindow(mss, 10)
	}
	*b = BBR{mss: mss, initialCwnd: iw, cwnd: uint64(iw)}
	if p.Cwnd != 0 {
		b.cwnd = uint64(p.Cwnd)
	}
	b.maxBwFilter = minmax.NewMax()
	b.extraFilter = minmax.NewMax()
	b.rng = uint64(mss)*0x9e3779b97f4a7c15 + uint64(iw)
	b.probeRTTMinDelay = -1
	b.probeRTTDoneStamp = clock.Never
	b.inflightLongterm = math.MaxUint64
	b.resetShortterm()
	b.lossRoundDelivered = math.MaxUint64
	b.probeUpCnt = math.MaxUint64
	b.enterStartup()
	b.sendQuantum = 2 * uint64(mss)
}

func (b *BBR) minPipeCwnd() uint64 { return bbrMinPipeSegs * uint64(b.mss) }

// Cwnd implements Controller.
func (b *BBR) Cwnd() uint32 { return uint32(min(max(b.cwnd, uint64(b.mss)), MaxCwnd)) }

// Ssthresh implements Controller: BBR has none.
func (b *BBR) Ssthresh() uint32 { return math.MaxUint32 }

// PacingRate implements Controller: BBR always paces (§5.6.2). Before
// any bandwidth sample, the initial window per RTT (1 ms without an RTT)
// at Startup's gain (BBRInitPacingRate).
func (b *BBR) PacingRate() uint64 {
	if b.pacingRate == 0 {
		rtt := b.minRTT
		if rtt <= 0 {
			rtt = time.Millisecond
		}
		return uint64(bbrStartupPacingGain * float64(b.initialCwnd) * float64(time.Second) / float64(rtt))
	}
	return b.pacingRate
}

// SetMSS implements Controller.
func (b *BBR) SetMSS(mss uint32) {
	if mss != 0 {
		b.mss = mss
	}
}

// SetsRecoveryWindow implements Controller: BBR sets its window during
// recovery itself (§5.6.4.4: packet conservation, then its model).
func (b *BBR) SetsRecoveryWindow() bool { return true }

// OnSent implements Controller: is the window limiting (for the probing
// that needs a full window), and a restart after idle (§5.4.1).
func (b *BBR) OnSent(now clock.Instant, bytes, inFlight uint32) {
	if uint64(inFlight) >= b.cwnd {
		b.cwndLimited = true
	}
	b.maxInflightInRound = max(b.maxInflightInRound, uint64(inFlight))
	if inFlight <= bytes && b.lastSampleAppLtd {
		// BBRHandleRestartFromIdle.
		b.idleRestart = true
		b.extraStart = now
		if b.inProbeBW() {
			b.setPacingRateWithGain(1)
		} else if b.state == bbrProbeRTT {
			b.checkProbeRTTDone(now)
		}
	}
	b.lastSent = now
}

// OnAck implements Controller (§5.2, BBRUpdateOnACK).
func (b *BBR) OnAck(now clock.Instant, s AckSample) {
	b.lastDelivered = s.TotalDelivered
	b.lastSampleAppLtd = s.AppLimited
	b.handleRecovery(s)
	b.updateModelAndState(now, &s)
	b.updateControlParameters(&s)
}

// handleRecovery is §5.6.4.4: on entering loss recovery the window is
// what is in flight plus what this ACK delivered (packet conservation for
// a round), saved to be restored when recovery ends.
func (b *BBR) handleRecovery(s AckSample) {
	if b.recoveryPending && !b.inLossRecovery {
		b.recoveryPending = false
		b.inLossRecovery = true
		b.roundAtRecovery = b.roundCount
		if !b.roundStart {
			b.roundAtRecovery++
		}
		b.saveCwnd()
		b.cwnd = uint64(s.InFlight) + max(uint64(s.Delivered), uint64(b.mss))
	}
}

// OnRecoveryStart implements Controller: loss recovery begins on the next
// ACK's processing.
func (b *BBR) OnRecoveryStart(now clock.Instant, flight uint32) {
	b.recoveryPending = true
}

// OnRecoveryEnd implements Controller: the window saved at the start of
// recovery comes back (BBRRestoreCwnd).
func (b *BBR) OnRecoveryEnd(now clock.Instant, flight uint32) {
	b.recoveryPending = false
	if b.inLossRecovery {
		b.inLossRecovery = false
		b.roundAtRecovery = -1
		b.restoreCwnd()
	}
}

// OnTimeout implements Controller: as on entering RTO recovery, the
// window is saved and becomes one segment plus what is in flight, which
// after an RTO is about nothing (the draft's BBROnEnterRTO).
func (b *BBR) OnTimeout(now clock.Instant, flight uint32) {
	b.saveCwnd()
	b.cwnd = uint64(b.mss)
	b.recoveryPending, b.inLossRecovery = false, false
}

// OnUndo implements Controller: a reduction found spurious gives the
// saved window back.
func (b *BBR) OnUndo(now clock.Instant) {
	b.inLossRecovery, b.recoveryPending = false, false
	b.restoreCwnd()
}

// OnECE implements Controller: BBR does not react to ECN-Echo here.
func (b *BBR) OnECE(now clock.Instant, flight uint32) {}

// OnIdleRestart implements Controller: nothing; BBR's pacing handles a
// restart after idle (OnSent).
func (b *BBR) OnIdleRestart(now clock.Instant) {}

// OnLost implements Controller (§5.5.10.2, BBRHandleLostPacket): a loss in
// the round is noted, and while bandwidth is being probed a loss rate
// above 2% of what was in flight when the segment left bounds
// inflight_longterm.
func (b *BBR) OnLost(now clock.Instant, l LostSegment) {
	if !b.lossInRound {
		b.lossRoundDelivered = b.lastDelivered
	}
	b.lossInRound = true
	b.bytesLostInRound += uint64(l.Bytes)
	b.lossEventsInRound++
	if !b.bwProbeSamples {
		return
	}
	txInFlight := uint64(l.TxInFlight)
	lost := l.TotalLost - min(l.LostAtSend, l.TotalLost)
	if inflightTooHigh(lost, txInFlight) {
		txInFlight = inflightLongtermFromLost(txInFlight, lost, uint64(l.Bytes))
		b.handleInflightTooHigh(now, txInFlight, l.AppLimited)
	}
}

// inflightTooHigh is IsInflightTooHigh (§5.5.10.2): more than
// BBRLossThresh of what was in flight was lost.
func inflightTooHigh(lost, txInFlight uint64) bool {
	return float64(lost) > bbrLossThresh*float64(txInFlight)
}

// inflightLongtermFromLost is BBRInflightLongtermFromLostPacket: where
// between the flight before this segment and the flight with it the loss
// rate crossed BBRLossThresh.
func inflightLongtermFromLost(txInFlight, lost, size uint64) uint64 {
	inflightPrev := txInFlight - min(size, txInFlight)
	lostPrev := lost - min(size, lost)
	lp := bbrLossThresh*float64(inflightPrev) - float64(lostPrev)
	if lp <= 0 {
		return inflightPrev
	}
	return inflightPrev + uint64(lp/(1-bbrLossThresh))
}

func (b *BBR) handleInflightTooHigh(now clock.Instant, txInFlight uint64, appLimited bool) {
	b.bwProbeSamples = false
	if !appLimited {
		b.inflightLongterm = max(txInFlight, uint64(float64(b.targetInflight())*bbrBeta))
	}
	if b.state == bbrProbeBWUp {
		b.startProbeBWDown(now)
	}
}

// updateModelAndState is BBRUpdateModelAndState.
func (b *BBR) updateModelAndState(now clock.Instant, s *AckSample) {
	b.updateLatestDeliverySignals(s)
	b.updateCongestionSignals(s)
	b.updateACKAggregation(now, s)
	b.checkFullBwReached(s)
	b.checkStartupDone(s)
	b.checkDrainDone(now, s)
	b.updateProbeBWCyclePhase(now, s)
	b.updateMinRTT(now, s)
	b.checkProbeRTT(now, s)
	b.advanceLatestDeliverySignals(s)
	b.boundBwForModel()
}

// updateControlParameters is BBRUpdateControlParameters.
func (b *BBR) updateControlParameters(s *AckSample) {
	b.setPacingRate()
	b.setSendQuantum()
	b.setCwnd(s)
}

func (b *BBR) enterStartup() {
	b.state = bbrStartup
	b.pacingGain = bbrStartupPacingGain
	b.cwndGain = bbrStartupCwndGain
}

func (b *BBR) resetShortterm() {
	b.bwShortterm = math.MaxUint64
	b.inflightShortterm = math.MaxUint64
}

func (b *BBR) resetCongestionSignals() {
	b.lossInRound = false
	b.bwLatest = 0
	b.inflightLatest = 0
}

func (b *BBR) resetFullBw() {
	b.fullBw, b.fullBwCount, b.fullBwNow = 0, 0, false
}

// updateRound is BBRUpdateRound (§5.5.1): a packet-timed round ends when
// a segment sent after it began is delivered.
func (b *BBR) updateRound(s *AckSample) {
	if s.PriorDelivered >= b.nextRoundDelivered {
		b.startRound()
		b.roundCount++
		b.roundsSinceBwProbe++
		b.roundStart = true
		b.bytesLostInRound = 0
		b.lossEventsInRound = 0
		b.cwndLimited = b.maxInflightInRound >= b.cwnd
		b.maxInflightInRound = 0
		return
	}
	b.roundStart = false
}

func (b *BBR) startRound() { b.nextRoundDelivered = b.lastDelivered }

// updateMaxBw is BBRUpdateMaxBw (§5.5.5): the windowed maximum of the
// delivery rate over the last two ProbeBW cycles, app-limited samples
// only when they raise it.
func (b *BBR) updateMaxBw(s *AckSample) {
	b.updateRound(s)
	if s.DeliveryRate > 0 && (s.DeliveryRate >= b.maxBw || !s.AppLimited) {
		b.maxBw = b.maxBwFilter.Update(bbrMaxBwFilterLen, b.cycleCount, s.DeliveryRate)
	}
}

func (b *BBR) updateLatestDeliverySignals(s *AckSample) {
	b.lossRoundStart = false
	b.bwLatest = max(b.bwLatest, s.DeliveryRate)
	b.inflightLatest = max(b.inflightLatest, s.SampleDelivered)
	if s.PriorDelivered >= b.lossRoundDelivered {
		b.lossRoundDelivered = s.TotalDelivered
		b.lossRoundStart = true
	}
}

func (b *BBR) advanceLatestDeliverySignals(s *AckSample) {
	if b.lossRoundStart {
		b.bwLatest = s.DeliveryRate
		b.inflightLatest = s.SampleDelivered
	}
}

// updateCongestionSignals is BBRUpdateCongestionSignals (§5.5.10.3): once
// per round with loss, the short-term bounds come down by β, no lower
// than the latest delivery.
func (b *BBR) updateCongestionSignals(s *AckSample) {
	b.updateMaxBw(s)
	if !b.lossRoundStart {
		return
	}
	if !b.isProbingBW() && b.lossInRound {
		if b.bwShortterm == math.MaxUint64 {
			b.bwShortterm = b.maxBw
		}
		if b.inflightShortterm == math.MaxUint64 {
			b.inflightShortterm = b.cwnd
		}
		b.bwShortterm = max(b.bwLatest, uint64(float64(b.bwShortterm)*bbrBeta))
		b.inflightShortterm = max(b.inflightLatest, uint64(float64(b.inflightShortterm)*bbrBeta))
	}
	b.lossInRound = false
}

func (b *BBR) boundBwForModel() { b.bw = min(b.maxBw, b.bwShortterm) }

func (b *BBR) isProbingBW() bool {
	return b.state == bbrStartup || b.state == bbrProbeBWRefill || b.state == bbrProbeBWUp
}

func (b *BBR) inProbeBW() bool { return b.state >= bbrProbeBWDown && b.state <= bbrProbeBWUp }

// updateACKAggregation is BBRUpdateACKAggregation (§5.5.9): how much more
// than the model predicts was acknowledged in an aggregation epoch, its
// recent maximum added to the window.
func (b *BBR) updateACKAggregation(now clock.Instant, s *AckSample) {
	interval := now.Sub(b.extraStart)
	expected := b.bw * uint64(max(interval, 0)) / uint64(time.Second)
	if b.extraDeliv <= expected {
		b.extraDeliv = 0
		b.extraStart = now
		expected = 0
	}
	b.extraDeliv += uint64(s.Delivered)
	extra := uint64(0)
	if b.extraDeliv > expected {
		extra = min(b.extraDeliv-expected, b.cwnd)
	}
	win := int64(1)
	if b.fullBwReached {
		win = bbrExtraAckedFilter
	}
	b.extraAcked = b.extraFilter.Update(win, b.roundCount, extra)
}

// checkFullBwReached is BBRCheckFullBWReached (§5.3.1.2): the bandwidth
// did not grow by 25% in three rounds.
func (b *BBR) checkFullBwReached(s *AckSample) {
	if b.fullBwNow || !b.roundStart || s.AppLimited {
		return
	}
	if float64(s.DeliveryRate) >= float64(b.fullBw)*bbrFullBwGrowth {
		b.resetFullBw()
		b.fullBw = s.DeliveryRate
		return
	}
	b.fullBwCount++
	b.fullBwNow = b.fullBwCount >= bbrFullBwRounds
	if b.fullBwNow {
		b.fullBwReached = true
	}
}

// checkStartupHighLoss is BBRCheckStartupHighLoss (§5.3.1.3): more than
// six loss events in a round, outside the first round of recovery, with
// the sample's loss rate too high, also end Startup.
func (b *BBR) checkStartupHighLoss(s *AckSample) {
	if b.fullBwReached || b.lossEventsInRound <= bbrStartupFullLossCnt ||
		b.inLossRecovery && b.roundCount <= b.roundAtRecovery ||
		!inflightTooHigh(s.SampleLost, uint64(s.TxInFlight)) {
		return
	}
	b.fullBwReached = true
	b.inflightLongterm = max(b.bdpMultiple(b.cwndGain), b.inflightLatest)
}

func (b *BBR) checkStartupDone(s *AckSample) {
	b.checkStartupHighLoss(s)
	if b.state == bbrStartup && b.fullBwReached {
		b.state = bbrDrain
		b.pacingGain = bbrDrainPacingGain
		b.cwndGain = bbrDefaultCwndGain
	}
}

// checkDrainDone: Drain ends when what is in flight is down to one BDP
// (§5.3.2).
func (b *BBR) checkDrainDone(now clock.Instant, s *AckSample) {
	if b.state == bbrDrain && uint64(s.InFlight) <= b.inflight(1) {
		b.startProbeBWDown(now)
	}
}

func (b *BBR) startProbeBWDown(now clock.Instant) {
	b.resetCongestionSignals()
	b.probeUpCnt = math.MaxUint64
	b.pickProbeWait()
	b.cycleStamp = now
	b.ackPhase = acksProbeStopping
	b.startRound()
	b.state = bbrProbeBWDown
	b.pacingGain = 0.9
	b.cwndGain = bbrDefaultCwndGain
}

func (b *BBR) startProbeBWCruise() {
	b.state = bbrProbeBWCruise
	b.pacingGain = 1
	b.cwndGain = bbrDefaultCwndGain
}

func (b *BBR) startProbeBWRefill() {
	b.resetShortterm()
	b.bwProbeUpRounds = 0
	b.bwProbeUpAcks = 0
	b.ackPhase = acksRefilling
	b.startRound()
	b.state = bbrProbeBWRefill
	b.pacingGain = 1
	b.cwndGain = bbrDefaultCwndGain
}

func (b *BBR) startProbeBWUp(s *AckSample) {
	b.ackPhase = acksProbeStarting
	b.startRound()
	b.resetFullBw()
	b.fullBw = s.DeliveryRate
	b.state = bbrProbeBWUp
	b.pacingGain = 1.25
	b.cwndGain = bbrProbeUpCwndGain
	b.raiseInflightLongtermSlope()
}

// updateProbeBWCyclePhase is BBRUpdateProbeBWCyclePhase (§5.3.3.6).
func (b *BBR) updateProbeBWCyclePhase(now clock.Instant, s *AckSample) {
	if !b.fullBwReached {
		return
	}
	b.adaptLongtermModel(now, s)
	if !b.inProbeBW() {
		return
	}
	switch b.state {
	case bbrProbeBWDown:
		if b.isTimeToProbeBW(now) {
			return
		}
		if b.isTimeToCruise(s) {
			b.startProbeBWCruise()
		}
	case bbrProbeBWCruise:
		b.isTimeToProbeBW(now)
	case bbrProbeBWRefill:
		if b.roundStart {
			b.bwProbeSamples = true
			b.startProbeBWUp(s)
		}
	case bbrProbeBWUp:
		if b.isTimeToGoDown(s) {
			b.startProbeBWDown(now)
		}
	}
}

func (b *BBR) isTimeToCruise(s *AckSample) bool {
	return uint64(s.InFlight) <= min(b.inflightWithHeadroom(), b.inflight(1))
}

func (b *BBR) isTimeToGoDown(s *AckSample) bool {
	if b.cwndLimited && b.cwnd >= b.inflightLongterm {
		b.resetFullBw()
		b.fullBw = s.DeliveryRate
		return false
	}
	return b.fullBwNow
}

// inflightWithHeadroom leaves 15% of inflight_longterm for other flows
// (§5.6.4.3).
func (b *BBR) inflightWithHeadroom() uint64 {
	if b.inflightLongterm == math.MaxUint64 {
		return math.MaxUint64
	}
	headroom := max(uint64(b.mss), uint64(bbrHeadroom*float64(b.inflightLongterm)))
	if b.inflightLongterm > headroom {
		return max(b.inflightLongterm-headroom, b.minPipeCwnd())
	}
	return b.minPipeCwnd()
}

func (b *BBR) raiseInflightLongtermSlope() {
	growth := uint64(b.mss) << min(b.bwProbeUpRounds, 30)
	b.bwProbeUpRounds = min(b.bwProbeUpRounds+1, 30)
	b.probeUpCnt = max(b.cwnd/growth, 1)
}

func (b *BBR) probeInflightLongtermUpward(s *AckSample) {
	if !b.cwndLimited || b.cwnd < b.inflightLongterm {
		return
	}
	b.bwProbeUpAcks += uint64(s.Delivered)
	if b.bwProbeUpAcks >= b.probeUpCnt*uint64(b.mss) {
		delta := b.bwProbeUpAcks / b.probeUpCnt
		b.bwProbeUpAcks -= delta * b.probeUpCnt
		b.inflightLongterm += delta
	}
	if b.roundStart {
		b.raiseInflightLongtermSlope()
	}
}

// adaptLongtermModel is BBRAdaptLongTermModel (§5.5.10.2): a round of
// probing without too much loss raises inflight_longterm; too much loss
// on an ACK sample bounds it.
func (b *BBR) adaptLongtermModel(now clock.Instant, s *AckSample) {
	if b.ackPhase == acksProbeStarting && b.roundStart {
		b.ackPhase = acksProbeFeedback
	}
	if b.ackPhase == acksProbeStopping && b.roundStart {
		// The end of the samples from the last probe: the max filter
		// moves on by one cycle, once per cycle (as Linux's BBRv3,
		// ACKS_PROBE_STOPPED), so it holds the probe's samples for two
		// cycles.
		b.ackPhase = acksProbeStopped
		if b.inProbeBW() && !s.AppLimited {
			b.cycleCount++ // BBRAdvanceMaxBwFilter
		}
	}
	if b.bwProbeSamples && s.TxInFlight > 0 && inflightTooHigh(s.SampleLost, uint64(s.TxInFlight)) {
		b.handleInflightTooHigh(now, uint64(s.TxInFlight), s.AppLimited)
		return
	}
	if b.inflightLongterm == math.MaxUint64 {
		return
	}
	if uint64(s.TxInFlight) > b.inflightLongterm {
		b.inflightLongterm = uint64(s.TxInFlight)
	}
	if b.state == bbrProbeBWUp {
		b.probeInflightLongtermUpward(s)
	}
}

// isTimeToProbeBW: after the randomized wait of 2 to 3 s, or as many
// rounds as Reno would take to probe (coexistence, §5.3.3.5).
func (b *BBR) isTimeToProbeBW(now clock.Instant) bool {
	if now.Sub(b.cycleStamp) > b.bwProbeWait || b.isRenoCoexistenceProbeTime() {
		b.startProbeBWRefill()
		return true
	}
	return false
}

func (b *BBR) pickProbeWait() {
	b.roundsSinceBwProbe = int64(b.rand(2))
	b.bwProbeWait = 2*time.Second + time.Duration(b.rand(uint64(time.Second)+1))
}

// rand is a splitmix64 step: deterministic per connection, so the
// simulator replays a seed exactly.
func (b *BBR) rand(n uint64) uint64 {
	b.rng += 0x9e3779b97f4a7c15
	z := b.rng
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return z % n
}

func (b *BBR) isRenoCoexistenceProbeTime() bool {
	renoRounds := int64(b.targetInflight() / uint64(b.mss))
	return b.roundsSinceBwProbe >= min(renoRounds, 63)
}

func (b *BBR) targetInflight() uint64 { return min(b.bdp, b.cwnd) }

// updateMinRTT is BBRUpdateMinRTT (§5.5.7): the windowed minimum over
// 10 s, and ProbeRTT's own over 5 s.
func (b *BBR) updateMinRTT(now clock.Instant, s *AckSample) {
	b.probeRTTExpired = now.Sub(b.probeRTTMinStamp) > bbrProbeRTTInterval
	if s.RTT > 0 && (b.probeRTTMinDelay < 0 || s.RTT < b.probeRTTMinDelay || b.probeRTTExpired) {
		b.probeRTTMinDelay = s.RTT
		b.probeRTTMinStamp = now
	}
	expired := now.Sub(b.minRTTStamp) > bbrMinRTTFilterLen
	if b.probeRTTMinDelay >= 0 && (b.minRTT == 0 || b.probeRTTMinDelay < b.minRTT || expired) {
		b.minRTT = b.probeRTTMinDelay
		b.minRTTStamp = b.probeRTTMinStamp
	}
}

// checkProbeRTT: every 5 s without a lower RTT, the flight drops to half
// a BDP for 200 ms and a round, to see the path's RTT (§5.3.4).
func (b *BBR) checkProbeRTT(now clock.Instant, s *AckSample) {
	if b.state != bbrProbeRTT && b.probeRTTExpired && !b.idleRestart {
		b.state = bbrProbeRTT
		b.pacingGain = 1
		b.cwndGain = bbrProbeRTTCwndGain
		b.saveCwnd()
		b.probeRTTDoneStamp = clock.Never
		b.ackPhase = acksProbeStopping
		b.startRound()
	}
	if b.state == bbrProbeRTT {
		b.handleProbeRTT(now, s)
	}
	if s.SampleDelivered > 0 {
		b.idleRestart = false
	}
}

func (b *BBR) handleProbeRTT(now clock.Instant, s *AckSample) {
	if b.probeRTTDoneStamp == clock.Never && uint64(s.InFlight) <= b.probeRTTCwnd() {
		b.probeRTTDoneStamp = now.Add(bbrProbeRTTDuration)
		b.probeRTTRoundDone = false
		b.startRound()
		return
	}
	if b.probeRTTDoneStamp != clock.Never {
		if b.roundStart {
			b.probeRTTRoundDone = true
		}
		if b.probeRTTRoundDone {
			b.checkProbeRTTDone(now)
		}
	}
}

func (b *BBR) checkProbeRTTDone(now clock.Instant) {
	if b.probeRTTDoneStamp != clock.Never && now > b.probeRTTDoneStamp {
		b.probeRTTMinStamp = now
		b.restoreCwnd()
		b.resetShortterm()
		if b.fullBwReached {
			b.startProbeBWDown(now)
			b.startProbeBWCruise()
		} else {
			b.enterStartup()
		}
	}
}

func (b *BBR) saveCwnd() {
	if !b.inLossRecovery && b.state != bbrProbeRTT {
		b.priorCwnd = b.cwnd
		return
	}
	b.priorCwnd = max(b.priorCwnd, b.cwnd)
}

func (b *BBR) restoreCwnd() { b.cwnd = max(b.cwnd, b.priorCwnd) }

func (b *BBR) probeRTTCwnd() uint64 {
	return max(b.bdpMultiple(bbrProbeRTTCwndGain), b.minPipeCwnd())
}

// bdpMultiple is BBRBDPMultiple (§5.6.4.2): gain × bw × min_rtt, the
// initial window before an RTT sample.
func (b *BBR) bdpMultiple(gain float64) uint64 {
	if b.minRTT <= 0 {
		return uint64(b.initialCwnd)
	}
	b.bdp = max(b.bw*uint64(b.minRTT)/uint64(time.Second), 1)
	return uint64(gain * float64(b.bdp))
}

// quantizationBudget is BBRQuantizationBudget (§5.6.4.2): room for the
// segments the sender sends together, a minimum window, and two segments
// more while probing up.
func (b *BBR) quantizationBudget(inflight uint64) uint64 {
	b.offloadQuota = 3 * b.sendQuantum
	inflight = max(inflight, b.offloadQuota, b.minPipeCwnd())
	if b.state == bbrProbeBWUp {
		inflight += 2 * uint64(b.mss)
	}
	return inflight
}

func (b *BBR) inflight(gain float64) uint64 { return b.quantizationBudget(b.bdpMultiple(gain)) }

func (b *BBR) setPacingRateWithGain(gain float64) {
	if b.bw == 0 {
		return
	}
	r := uint64(gain * float64(b.bw) * (1 - bbrPacingMargin))
	if b.fullBwReached || r > b.PacingRate() {
		b.pacingRate = max(r, 1)
	}
}

func (b *BBR) setPacingRate() { b.setPacingRateWithGain(b.pacingGain) }

// setSendQuantum is BBRSetSendQuantum (§5.6.3): a millisecond at the
// pacing rate, between two segments and 64 KiB.
func (b *BBR) setSendQuantum() {
	q := b.PacingRate() / 1000
	b.sendQuantum = max(min(q, bbrMaxSendQuantum), 2*uint64(b.mss))
}

// setCwnd is BBRSetCwnd (§5.6.4.5): grow by what is delivered up to the
// model's maximum (cwnd_gain BDPs plus the ACK aggregation), then bound
// it for ProbeRTT and by the model's upper and lower bounds.
func (b *BBR) setCwnd(s *AckSample) {
	b.maxInflight = b.quantizationBudget(b.bdpMultiple(b.cwndGain) + b.extraAcked)
	delivered := uint64(s.Delivered)
	if b.inLossRecovery && b.roundCount <= b.roundAtRecovery {
		// Packet conservation in the first round of recovery: no more
		// out than delivered.
		b.cwnd = max(b.cwnd, uint64(s.InFlight)+delivered)
	} else if b.fullBwReached {
		b.cwnd = min(b.cwnd+delivered, b.maxInflight)
	} else if b.cwnd < b.maxInflight || s.TotalDelivered < uint64(b.initialCwnd) {
		b.cwnd += delivered
	}
	b.cwnd = max(b.cwnd, b.minPipeCwnd())
	if b.state == bbrProbeRTT {
		b.cwnd = min(b.cwnd, b.probeRTTCwnd())
	}
	// BBRBoundCwndForModel.
	limit := uint64(math.MaxUint64)
	switch {
	case b.inProbeBW() && b.state != bbrProbeBWCruise:
		limit = b.inflightLongterm
	case b.state == bbrProbeRTT || b.state == bbrProbeBWCruise:
		limit = b.inflightWithHeadroom()
	}
	limit = max(min(limit, b.inflightShortterm), b.minPipeCwnd())
	b.cwnd = min(b.cwnd, limit, MaxCwnd)
}

var _ Controller = (*BBR)(nil)

// ReusableAfterInit implements Reusable: Init sets every field.
func (*BBR) ReusableAfterInit() {}
