package cc

import (
	"math"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
)

// flow drives a controller as a sender that always has data and a path
// that is not its bottleneck: every RTT each segment in flight is
// acknowledged (one ACK per segment, 10 µs apart or closer, with the RTT the path
// gives), and after each ACK the sender fills the window again. It keeps
// the delivered counts the rate sampler would (rounds), as package tcp
// fills AckSample.
type flow struct {
	ctl       Controller
	mss       uint32
	now       clock.Instant
	delivered uint64
	inflight  []uint64 // per segment: the delivered count when it left
	rtt       func(round int) time.Duration
	round     int
}

func newFlow(ctl Controller, mss uint32, rtt func(int) time.Duration) *flow {
	f := &flow{ctl: ctl, mss: mss, rtt: rtt}
	f.fill()
	return f
}

func (f *flow) fill() {
	for uint32(len(f.inflight))*f.mss < f.ctl.Cwnd() {
		f.inflight = append(f.inflight, f.delivered)
		f.ctl.OnSent(f.now, f.mss, uint32(len(f.inflight))*f.mss)
	}
}

// runRound acknowledges the segments in flight at the start of a round.
func (f *flow) runRound() {
	rtt := f.rtt(f.round)
	n := len(f.inflight)
	start := f.now
	gap := min(10*time.Microsecond, rtt/time.Duration(2*max(n, 1)))
	for i := 0; i < n; i++ {
		f.now = start.Add(rtt + time.Duration(i)*gap)
		prior := f.inflight[0]
		f.inflight = f.inflight[1:]
		f.delivered += uint64(f.mss)
		f.ctl.OnAck(f.now, AckSample{
			Acked: f.mss, Delivered: f.mss, RTT: rtt, PriorInFlight: uint32(len(f.inflight)+1) * f.mss,
			InFlight: uint32(len(f.inflight)) * f.mss, TotalDelivered: f.delivered, PriorDelivered: prior,
		})
		f.fill()
	}
	f.round++
}

func segs(c Controller, mss uint32) float64 { return float64(c.Cwnd()) / float64(mss) }

// TestCubicReduction checks RFC 9438 §4.6 (on a congestion event ssthresh
// = cwnd = β_cubic·cwnd, β = 0.7; W_max is the window at the event) and
// §4.7 (fast convergence: a second event below the last W_max sets W_max
// = cwnd·(1+β)/2).
func TestCubicReduction(t *testing.T) {
	const mss = 1000
	c := NewCubic(mss)
	c.Init(Params{MSS: mss, Cwnd: 100 * mss})
	c.OnRecoveryStart(0, 100*mss)
	if c.Cwnd() != 70*mss || c.Ssthresh() != 70*mss || c.wMax != 100 {
		t.Fatalf("after a loss at 100 segments: cwnd %d ssthresh %d W_max %v, want 70000 70000 100", c.Cwnd(), c.Ssthresh(), c.wMax)
	}
	c.OnRecoveryEnd(0, 70*mss)
	c.cwnd = 80 * mss
	c.OnRecoveryStart(0, 80*mss)
	if c.wMax != 80*(1+0.7)/2 || c.Cwnd() != 56*mss {
		t.Fatalf("fast convergence: W_max %v cwnd %d, want 68 and 56000", c.wMax, c.Cwnd())
	}
	// Never below two segments.
	c.cwnd = 2 * mss
	c.OnRecoveryStart(0, 2*mss)
	if c.Ssthresh() != 2*mss {
		t.Fatalf("ssthresh %d after a loss at 2 segments, want 2000", c.Ssthresh())
	}
}

// TestCubicFunction checks equations 1 and 2 (RFC 9438 §4.1, §4.2): after
// a loss at W_max = 100 segments the window starts at 70, K =
// cbrt((100−70)/0.4) ≈ 4.22 s, and a window-limited sender's cwnd follows
// W_cubic(t) = C·(t−K)³ + W_max, concave below W_max (§4.4), chasing
// W_cubic(t+RTT) one round behind. Once the Reno-friendly estimate W_est
// (growing by α_cubic per RTT, then 1 once it reaches W_max: §4.3)
// passes W_cubic, near W_max where the cubic is flattest, cwnd is W_est.
func TestCubicFunction(t *testing.T) {
	const mss = 1000
	const rtt = 100 * time.Millisecond
	c := NewCubic(mss)
	c.Init(Params{MSS: mss, Cwnd: 100 * mss, Ssthresh: 1})
	c.OnRecoveryStart(0, 100*mss)
	c.OnRecoveryEnd(0, 70*mss)
	f := newFlow(c, mss, func(int) time.Duration { return rtt })
	wantK := math.Cbrt(30 / 0.4)
	renoFriendly := false
	for f.now < clock.Instant(8*time.Second) {
		f.runRound()
		if math.Abs(c.k-wantK) > 1e-9 {
			t.Fatalf("K = %v, want %v", c.k, wantK)
		}
		tt := f.now.Sub(c.epochStart).Seconds()
		got := c.cwnd / mss
		if c.wCubic(tt) < c.wEst {
			renoFriendly = renoFriendly || tt > wantK
			if math.Abs(got-c.wEst) > 1e-6 {
				t.Fatalf("t = %.2fs: Reno-friendly region, cwnd %.2f, W_est %.2f", tt, got, c.wEst)
			}
			continue
		}
		if renoFriendly {
			continue
		}
		if hi, lo := c.wCubic(tt+rtt.Seconds()), c.wCubic(tt)-2; got > hi+1e-6 || got < lo {
			t.Fatalf("t = %.2fs: cwnd %.2f segments, want within [W_cubic(t) − 2, W_cubic(t+RTT)] = [%.2f, %.2f]", tt, got, lo, hi)
		}
	}
	if !renoFriendly {
		t.Fatal("never in the Reno-friendly region")
	}
}

// TestCubicRenoFriendly checks §4.3: with a short RTT the cubic function
// grows slower than Reno would, and cwnd follows the Reno-friendly
// estimate W_est, which grows by α_cubic = 3·(1−β)/(1+β) segments per
// round trip.
func TestCubicRenoFriendly(t *testing.T) {
	const mss = 1000
	c := NewCubic(mss)
	c.Init(Params{MSS: mss, Cwnd: 1000 * mss, Ssthresh: 1})
	c.OnRecoveryStart(0, 1000*mss)
	c.OnRecoveryEnd(0, 700*mss)
	f := newFlow(c, mss, func(int) time.Duration { return time.Millisecond })
	for range 100 {
		f.runRound()
	}
	// 100 rounds in 0.1 s: W_cubic barely moves from 700 (K ≈ 9 s),
	// W_est gains about 100·α ≈ 53 segments.
	want := 700 + 100*cubicAlpha
	if got := segs(c, mss); math.Abs(got-want) > 2 {
		t.Fatalf("after 100 short round trips: cwnd %.1f, want the Reno-friendly %.1f", got, want)
	}
}

// TestCubicTimeout checks §4.8: after an RTO cwnd is one segment and
// ssthresh β·cwnd; slow start returns to ssthresh, and the next
// congestion avoidance stage starts its epoch at the window it has (K =
// 0, W_max = cwnd then).
func TestCubicTimeout(t *testing.T) {
	const mss = 1000
	c := NewCubic(mss)
	c.Init(Params{MSS: mss, Cwnd: 50 * mss, Ssthresh: 1})
	c.OnTimeout(0, 50*mss)
	if c.Cwnd() != mss || c.Ssthresh() != 35*mss {
		t.Fatalf("after an RTO: cwnd %d ssthresh %d, want 1000 35000", c.Cwnd(), c.Ssthresh())
	}
	f := newFlow(c, mss, func(int) time.Duration { return 50 * time.Millisecond })
	for c.Cwnd() < c.Ssthresh() {
		f.runRound()
	}
	f.runRound()
	if !c.epochOn || c.k != 0 || c.wMax < 35 || c.wMax > 36 {
		t.Fatalf("first epoch after the RTO: K %v W_max %v, want 0 and 35", c.k, c.wMax)
	}
}

// TestCubicUndo checks §4.9: a reduction found spurious is undone, W_max,
// K and the epoch included.
func TestCubicUndo(t *testing.T) {
	const mss = 1000
	c := NewCubic(mss)
	c.Init(Params{MSS: mss, Cwnd: 100 * mss, Ssthresh: 90 * mss})
	f := newFlow(c, mss, func(int) time.Duration { return 50 * time.Millisecond })
	f.runRound()
	before := *c
	c.OnRecoveryStart(f.now, 100*mss)
	c.OnUndo(f.now)
	// ssthresh goes back to at least what it was (Linux: the larger).
	if c.cwnd != before.cwnd || c.ssthresh != before.ssthresh || c.wMax != before.wMax || c.k != before.k || c.epochStart != before.epochStart {
		t.Fatalf("undo: cwnd %v ssthresh %d W_max %v K %v, want %v %d %v %v", c.cwnd, c.ssthresh, c.wMax, c.k, before.cwnd, before.ssthresh, before.wMax, before.k)
	}
	c.OnUndo(f.now) // nothing more to undo
	if c.cwnd != before.cwnd {
		t.Fatal("a second undo changed the window")
	}
}

// TestCubicAppLimited checks §5.8: a sender that does not fill its window
// does not grow it, and after a pause with nothing in flight the epoch
// moves by the pause (the window does not jump by the idle time).
func TestCubicAppLimited(t *testing.T) {
	const mss = 1000
	c := NewCubic(mss)
	c.Init(Params{MSS: mss, Cwnd: 100 * mss, Ssthresh: 1})
	// Ten segments in flight of a 100-segment window.
	for i := range 10 {
		c.OnSent(clock.Instant(i), mss, uint32(i+1)*mss)
	}
	for i := range 20 {
		c.OnAck(clock.Instant(time.Duration(i)*time.Millisecond), AckSample{Acked: mss, RTT: 10 * time.Millisecond, InFlight: 9 * mss, TotalDelivered: uint64(i+1) * mss, PriorDelivered: uint64(i) * mss})
	}
	if c.Cwnd() != 100*mss {
		t.Fatalf("application-limited: cwnd grew to %d", c.Cwnd())
	}
	// Window-limited for a while, then idle 100 s, then sending again.
	f := newFlow(c, mss, func(int) time.Duration { return 10 * time.Millisecond })
	f.runRound()
	f.runRound()
	start := c.epochStart
	pause := 100 * time.Second
	f.now = f.now.Add(pause)
	c.OnSent(f.now, mss, mss)
	if got := c.epochStart.Sub(start); got < pause-time.Second {
		t.Fatalf("the epoch moved by %v after a %v pause", got, pause)
	}
}

// TestHyStartCSS checks HyStart++ (RFC 9406 §4.2): slow start goes on
// while each round's minimum RTT stays within RttThresh of the last
// round's; a rise of at least RttThresh (clamp(lastRoundMinRTT/8, 4 ms,
// 16 ms)) enters Conservative Slow Start, where cwnd grows a quarter as
// fast; CSS_ROUNDS (5) rounds later slow start ends with ssthresh = cwnd.
func TestHyStartCSS(t *testing.T) {
	const mss = 1000
	c := NewCubic(mss)
	base := 100 * time.Millisecond
	rtt := func(r int) time.Duration {
		if r >= 4 {
			return base + 20*time.Millisecond // a queue: 20 ms > 100/8
		}
		return base
	}
	f := newFlow(c, mss, rtt)
	for range 4 {
		f.runRound()
	}
	if c.hs.css || !c.hs.on || c.Cwnd() != 160*mss {
		t.Fatalf("after 4 rounds of constant RTT: css %v, cwnd %d, want slow start at 160000", c.hs.css, c.Cwnd())
	}
	before := c.Cwnd()
	f.runRound() // the RTT rose by 20 ms: CSS after the first 8 samples
	if !c.hs.css {
		t.Fatal("no Conservative Slow Start after the RTT rose by 20 ms")
	}
	// 8 ACKs at full growth (the eighth sample shows the rise, after
	// its own growth), the other 152 at a quarter.
	if got, want := c.Cwnd()-before, uint32(8*mss+152*mss/4); got != want {
		t.Fatalf("growth in the round CSS began: %d, want %d", got, want)
	}
	for range 4 {
		f.runRound()
	}
	if c.Ssthresh() != math.MaxUint32 {
		t.Fatalf("slow start ended after %d CSS rounds, want %d", c.hs.cssRounds, hsCSSRounds)
	}
	f.runRound()
	if c.hs.on || c.Ssthresh() != c.Cwnd() && c.Ssthresh() > c.Cwnd() {
		t.Fatalf("after CSS_ROUNDS: hystart on %v, ssthresh %d, cwnd %d", c.hs.on, c.Ssthresh(), c.Cwnd())
	}

	// A rise that goes away: back to slow start.
	d := NewCubic(mss)
	g := newFlow(d, mss, func(r int) time.Duration {
		if r == 4 {
			return base + 20*time.Millisecond
		}
		return base
	})
	for range 5 {
		g.runRound()
	}
	if !d.hs.css {
		t.Fatal("no CSS after the rise")
	}
	g.runRound()
	if d.hs.css || !d.hs.on {
		t.Fatal("still in CSS after the RTT fell back below the baseline")
	}
}

// TestSlowStartStretchACK checks that a stretch ACK grows the window by
// every byte it acknowledges, as Linux's slow start (RFC 9406 §4.3's L
// is not applied: see slowStart).
func TestSlowStartStretchACK(t *testing.T) {
	const mss = 1000
	c := NewCubic(mss)
	c.OnSent(0, mss, 10*mss)
	c.OnAck(0, AckSample{Acked: 30 * mss, RTT: 10 * time.Millisecond, InFlight: 0, TotalDelivered: 30 * mss})
	if c.Cwnd() != 40*mss {
		t.Fatalf("a 30-segment stretch ACK grew cwnd to %d, want 10000 + 30 segments", c.Cwnd())
	}
}

// TestHyStartACKTrain checks the ACK-train exit ustack takes from Linux
// (HyStart's HYSTART_ACK_TRAIN): ACKs of one window arriving back to back
// for longer than half the minimum RTT end slow start, with ssthresh =
// cwnd, before the queue that would delay them overflows.
func TestHyStartACKTrain(t *testing.T) {
	const mss = 1000
	c := NewCubic(mss)
	// A bottleneck of 1000 segments a second and a 100 ms base RTT: a
	// window's ACKs arrive a millisecond apart, so a window of more than
	// 50 segments makes a train longer than 50 ms.
	delivered := uint64(0)
	now := clock.Instant(0)
	for c.hs.on && now < clock.Instant(10*time.Second) {
		n := int(c.Cwnd() / mss)
		prior := delivered
		for range n {
			now = now.Add(time.Millisecond)
			delivered += mss
			c.OnAck(now, AckSample{Acked: mss, RTT: 100 * time.Millisecond, InFlight: c.Cwnd(), TotalDelivered: delivered, PriorDelivered: prior})
			c.OnSent(now, mss, c.Cwnd())
		}
		now = now.Add(100 * time.Millisecond)
	}
	if c.hs.on || c.Ssthresh() == math.MaxUint32 {
		t.Fatal("slow start did not end")
	}
	// The round with a window of 80 (under 100) ends it after 50 ACKs,
	// at 130: more than half the BDP, less than the 160 the round would
	// have doubled to.
	if got := c.Ssthresh() / mss; got < 50 || got >= 160 {
		t.Fatalf("slow start ended at ssthresh %d segments, want between half the 100-segment BDP and the next doubling", got)
	}
}

// FuzzCubic feeds CUBIC arbitrary sequences of events with extreme
// values — RTTs from 0 to an hour, windows to the largest, ACKs of up to
// 4 GiB, idle periods of years, time going nowhere — and checks that the
// window stays within [1 MSS, MaxCwnd] and W_max, K and W_est finite
// after every event, and ssthresh at least two segments after every
// reduction: the arithmetic cannot overflow, wrap or produce NaN.
func FuzzCubic(f *testing.F) {
	f.Add(uint16(1448), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(uint16(1), []byte{255, 255, 255, 255, 3, 0, 0, 0, 0, 4, 255, 255})
	f.Add(uint16(65535), []byte{1, 200, 2, 0, 5, 1, 1, 1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, mss uint16, ops []byte) {
		c := &Cubic{}
		c.Init(Params{MSS: uint32(mss), Pacing: len(ops)%2 == 0})
		now := clock.Instant(0)
		var delivered uint64
		for len(ops) >= 5 {
			op, v := ops[0], uint32(ops[1])<<24|uint32(ops[2])<<16|uint32(ops[3])<<8|uint32(ops[4])
			ops = ops[5:]
			switch op % 9 {
			case 0:
				now = now.Add(time.Duration(v) * time.Microsecond * 1000) // up to 49 days
			case 1:
				delivered += uint64(v)
				c.OnAck(now, AckSample{Acked: v, Delivered: v, RTT: time.Duration(v%3600_000_000) * time.Microsecond,
					InFlight: v, PriorInFlight: v, TotalDelivered: delivered, PriorDelivered: delivered - uint64(v)})
			case 2:
				c.OnSent(now, v%65536, v)
			case 3:
				c.OnRecoveryStart(now, v)
			case 4:
				c.OnRecoveryEnd(now, v)
			case 5:
				c.OnTimeout(now, v)
			case 6:
				c.OnUndo(now)
			case 7:
				c.OnIdleRestart(now)
			case 8:
				c.Init(Params{MSS: v % 70000, Cwnd: v, Ssthresh: v >> 3, Pacing: v&1 == 0})
			}
			m := float64(c.mss)
			if !(c.cwnd >= m) || c.cwnd > MaxCwnd || c.Cwnd() == 0 {
				t.Fatalf("cwnd %v (MSS %d) after op %d", c.cwnd, c.mss, op%9)
			}
			if (op%9 == 3 || op%9 == 5) && c.Ssthresh() < 2*c.mss {
				t.Fatalf("ssthresh %d below two segments of %d after a reduction", c.Ssthresh(), c.mss)
			}
			if math.IsNaN(c.wMax) || math.IsInf(c.wMax, 0) || math.IsNaN(c.k) || math.IsInf(c.k, 0) || math.IsNaN(c.wEst) || math.IsInf(c.wEst, 0) {
				t.Fatalf("W_max %v K %v W_est %v", c.wMax, c.k, c.wEst)
			}
			_ = c.PacingRate()
		}
	})
}
