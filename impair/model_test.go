package impair

import (
	"math"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
)

const ms = clock.Instant(time.Millisecond)

// offerN offers n frames of size bytes, one every gap, starting at 0, and
// returns the decisions.
func offerN(m *Model, n, size int, gap time.Duration) []Decision {
	out := make([]Decision, n)
	for i := range out {
		out[i] = m.Offer(clock.Instant(i)*clock.Instant(gap), size)
	}
	return out
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.5g, want %.5g ± %.3g", what, got, want, tol)
	} else {
		t.Logf("%s = %.5g (want %.5g ± %.3g)", what, got, want, tol)
	}
}

func checkInvariant(t *testing.T, c Counters) {
	t.Helper()
	if c.Offered+c.Duplicated != c.Delivered+c.Dropped(DropNone) {
		t.Errorf("counters do not add up: %+v", c)
	}
}

func TestPerfectLink(t *testing.T) {
	m := New(Config{}, 1)
	for i, d := range offerN(m, 1000, 1500, time.Millisecond) {
		if d.N != 1 || d.Dropped != 0 || d.Copies[0].Due != clock.Instant(i)*ms || d.Copies[0].Corrupt {
			t.Fatalf("frame %d: %+v", i, d)
		}
	}
	c := m.Counters()
	if c.Offered != 1000 || c.Delivered != 1000 || c.Overtook != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestLossRate(t *testing.T) {
	const n = 100_000
	for _, p := range []float64{0.001, 0.01, 0.1, 0.5} {
		m := New(Config{Loss: p}, 42)
		offerN(m, n, 100, time.Microsecond)
		c := m.Counters()
		checkInvariant(t, c)
		// 5 standard deviations of a binomial proportion.
		near(t, "loss rate", float64(c.DroppedLoss)/n, p, 5*math.Sqrt(p*(1-p)/n))
	}
}

func TestGilbertElliottBursts(t *testing.T) {
	const n = 200_000
	cfg := Config{GE: GilbertElliott{P: 0.01, R: 0.3, LossBad: 1}}
	m := New(cfg, 7)
	var bursts, lost, run int
	for _, d := range offerN(m, n, 100, time.Microsecond) {
		if d.N == 0 {
			run++
			lost++
			continue
		}
		if run > 0 {
			bursts++
			run = 0
		}
	}
	near(t, "mean burst length", float64(lost)/float64(bursts), 1/cfg.GE.R, 0.1)
	near(t, "loss rate", float64(lost)/n, cfg.GE.P/(cfg.GE.P+cfg.GE.R), 0.004)
	checkInvariant(t, m.Counters())
}

func TestGilbertElliottGoodStateLoss(t *testing.T) {
	// k = 0.99: 1% loss in the good state; the chain never enters the bad
	// state (P = 0), so this is Bernoulli loss.
	m := New(Config{GE: GilbertElliott{P: 0, R: 1, LossBad: 1, LossGood: 0.01}}, 3)
	const n = 100_000
	offerN(m, n, 100, time.Microsecond)
	near(t, "loss rate", float64(m.Counters().DroppedLoss)/n, 0.01, 0.0015)
}

func TestRateLimitThroughput(t *testing.T) {
	// Offer 1500-byte frames at 12 Mbit/s into a 10 Mbit/s bottleneck for
	// 10 s of virtual time: the bottleneck delivers 10 Mbit/s and drops
	// the excess at its 100-frame queue.
	const rate, size = 10_000_000, 1500
	m := New(Config{Rate: rate, Queue: 100}, 1)
	gap := time.Duration(size * 8 * int64(time.Second) / 12_000_000)
	ds := offerN(m, 10_000, size, gap)
	var bitsOut float64
	var first, last clock.Instant = clock.Never, 0
	for _, d := range ds {
		for _, c := range d.Deliver() {
			bitsOut += size * 8
			first, last = min(first, c.Due), max(last, c.Due)
		}
	}
	// The first frame's last bit leaves one serialization time after 0.
	span := last.Sub(first) + time.Duration(size*8*int64(time.Second)/rate)
	near(t, "throughput (Mbit/s)", bitsOut/span.Seconds()/1e6, 10, 0.01)
	c := m.Counters()
	if c.DroppedQueue == 0 {
		t.Error("no queue drops with 20% overload")
	}
	checkInvariant(t, c)

	// Back to back, departures are exactly one serialization time apart.
	m = New(Config{Rate: rate}, 1)
	for i := range 10 {
		d := m.Offer(0, size)
		if want := clock.Instant(i+1) * clock.Instant(1200*time.Microsecond); d.Copies[0].Due != want {
			t.Errorf("frame %d due %v, want %v", i, d.Copies[0].Due, want)
		}
	}
}

func TestRateExactOverLongRun(t *testing.T) {
	// 3 bit/s does not divide a second: per-frame rounding must not drift.
	m := New(Config{Rate: 3, Queue: 1 << 20}, 1)
	var due clock.Instant
	for range 3000 {
		due = m.Offer(0, 1).Copies[0].Due // 8 bits each
	}
	// 24000 bits at 3 bit/s = 8000 s exactly.
	if want := clock.Instant(8000 * time.Second); due != want {
		t.Errorf("last due %v, want %v", due, want)
	}
}

func TestQueueDropTail(t *testing.T) {
	m := New(Config{Rate: 1_000_000, Queue: 10}, 1)
	var ok int
	for range 20 {
		d := m.Offer(0, 1000)
		if d.N == 1 {
			ok++
		} else if d.Reason != DropQueue {
			t.Fatalf("dropped for %v", d.Reason)
		}
	}
	if ok != 10 || m.Counters().DroppedQueue != 10 {
		t.Errorf("accepted %d, counters %+v", ok, m.Counters())
	}
	// After 3 frames' worth of time (8 ms each), 3 more fit.
	now := clock.Instant(24 * time.Millisecond)
	ok = 0
	for range 5 {
		if m.Offer(now, 1000).N == 1 {
			ok++
		}
	}
	if ok != 3 {
		t.Errorf("accepted %d after draining 3, want 3", ok)
	}

	// A byte limit.
	m = New(Config{Rate: 1_000_000, QueueBytes: 2500}, 1)
	ok = 0
	for range 5 {
		if m.Offer(0, 1000).N == 1 {
			ok++
		}
	}
	if ok != 2 {
		t.Errorf("byte-limited queue accepted %d, want 2", ok)
	}
}

func TestJitterUniformRange(t *testing.T) {
	const n = 50_000
	m := New(Config{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond}, 9)
	var sum float64
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for i, d := range offerN(m, n, 100, time.Millisecond) {
		lat := d.Copies[0].Due.Sub(clock.Instant(i) * ms)
		lo, hi = min(lo, lat), max(hi, lat)
		sum += lat.Seconds()
	}
	if lo < 40*time.Millisecond || hi > 60*time.Millisecond {
		t.Errorf("latency range [%v, %v] outside [40ms, 60ms]", lo, hi)
	}
	if lo > 40100*time.Microsecond || hi < 59900*time.Microsecond {
		t.Errorf("latency range [%v, %v] does not cover [40ms, 60ms]", lo, hi)
	}
	near(t, "mean latency (ms)", sum/n*1e3, 50, 0.1)
	// Jitter of ±10 ms on frames 1 ms apart reorders, as netem does.
	if m.Counters().Overtook == 0 {
		t.Error("jitter did not reorder")
	}
}

func TestJitterNormal(t *testing.T) {
	const n = 50_000
	m := New(Config{Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond, Dist: Normal}, 9)
	var sum, sq float64
	for i, d := range offerN(m, n, 100, time.Millisecond) {
		lat := d.Copies[0].Due.Sub(clock.Instant(i)*ms).Seconds() * 1e3
		if lat < 30 || lat > 70 {
			t.Fatalf("latency %vms outside 50±4σ", lat)
		}
		sum += lat
		sq += lat * lat
	}
	mean := sum / n
	near(t, "mean latency (ms)", mean, 50, 0.1)
	near(t, "latency σ (ms)", math.Sqrt(sq/n-mean*mean), 5, 0.1)

	// Delay never goes negative.
	m = New(Config{Delay: time.Millisecond, Jitter: 10 * time.Millisecond, Dist: Normal}, 1)
	for i, d := range offerN(m, 1000, 100, time.Millisecond) {
		if d.Copies[0].Due < clock.Instant(i)*ms {
			t.Fatalf("frame %d due before it was offered", i)
		}
	}
}

func TestKeepOrder(t *testing.T) {
	m := New(Config{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, KeepOrder: true}, 9)
	var last clock.Instant
	for i, d := range offerN(m, 10_000, 100, time.Millisecond) {
		due := d.Copies[0].Due
		if due < last {
			t.Fatalf("frame %d due %v before its predecessor %v", i, due, last)
		}
		last = due
	}
	if c := m.Counters(); c.Overtook != 0 {
		t.Errorf("Overtook = %d with KeepOrder", c.Overtook)
	}
}

func TestReorderFraction(t *testing.T) {
	const n = 100_000
	m := New(Config{Delay: 10 * time.Millisecond, Reorder: 0.25, KeepOrder: true}, 5)
	for i, d := range offerN(m, n, 100, time.Millisecond) {
		c := d.Copies[0]
		now := clock.Instant(i) * ms
		if c.Reordered != (c.Due == now) {
			t.Fatalf("frame %d: reordered=%v but due %v at now %v", i, c.Reordered, c.Due, now)
		}
	}
	c := m.Counters()
	near(t, "reordered fraction", float64(c.Reordered)/n, 0.25, 0.007)
	// With 10 frames in flight, every reordered frame overtakes some
	// (except a reordered frame right after another one... which overtakes
	// the in-flight ones too): all do.
	if c.Overtook != c.Reordered {
		t.Errorf("Overtook = %d, Reordered = %d", c.Overtook, c.Reordered)
	}

	// Frames far apart: a frame that skips the delay overtakes nothing.
	m = New(Config{Delay: 10 * time.Millisecond, Reorder: 0.25}, 5)
	offerN(m, 1000, 100, 20*time.Millisecond)
	if c := m.Counters(); c.Reordered == 0 || c.Overtook != 0 {
		t.Errorf("sparse frames: %+v", c)
	}
}

func TestDuplicate(t *testing.T) {
	const n = 100_000
	m := New(Config{Dup: 0.01, Delay: time.Millisecond}, 11)
	var two int
	for i, d := range offerN(m, n, 100, time.Millisecond) {
		if d.N == 2 {
			two++
			want := clock.Instant(i)*ms + ms
			if d.Copies[0].Due != want || d.Copies[1].Due != want {
				t.Fatalf("duplicate copies due %v, %v", d.Copies[0].Due, d.Copies[1].Due)
			}
		}
	}
	c := m.Counters()
	if uint64(two) != c.Duplicated || c.Delivered != n+c.Duplicated {
		t.Errorf("two=%d counters %+v", two, c)
	}
	near(t, "duplication rate", float64(two)/n, 0.01, 0.0015)
}

func TestCorrupt(t *testing.T) {
	const n = 100_000
	const size, off = 100, 54
	m := New(Config{Corrupt: 0.1, CorruptOffset: off}, 13)
	var bitsSeen [size * 8]int
	for _, d := range offerN(m, n, size, time.Microsecond) {
		if c := d.Copies[0]; c.Corrupt {
			if c.Bit < off*8 || c.Bit >= size*8 {
				t.Fatalf("bit %d outside [%d, %d)", c.Bit, off*8, size*8)
			}
			bitsSeen[c.Bit]++
		}
	}
	c := m.Counters()
	near(t, "corruption rate", float64(c.Corrupted)/n, 0.1, 0.005)
	for b := off * 8; b < size*8; b++ {
		if bitsSeen[b] == 0 {
			t.Errorf("bit %d never flipped", b)
		}
	}
	// A frame no longer than the offset is never corrupted.
	m = New(Config{Corrupt: 1, CorruptOffset: off}, 1)
	if d := m.Offer(0, off); d.Copies[0].Corrupt {
		t.Error("corrupted a frame shorter than the offset")
	}
	// Apply flips exactly one bit.
	frame := make([]byte, 4)
	Copy{Corrupt: true, Bit: 17}.Apply(frame)
	if frame[2] != 2 || frame[0]|frame[1]|frame[3] != 0 {
		t.Errorf("Apply: %x", frame)
	}
	Copy{Corrupt: true, Bit: 99}.Apply(frame) // out of range: ignored
}

func TestMTUAndDown(t *testing.T) {
	m := New(Config{MTU: 1500, LinkHeader: 14}, 1)
	if d := m.Offer(0, 1514); d.N != 1 {
		t.Errorf("1514-byte frame: %+v", d)
	}
	if d := m.Offer(0, 1515); d.N != 0 || d.Reason != DropMTU {
		t.Errorf("1515-byte frame: %+v", d)
	}
	m.SetUp(false)
	if m.Up() {
		t.Error("Up after SetUp(false)")
	}
	if d := m.Offer(0, 100); d.N != 0 || d.Reason != DropDown {
		t.Errorf("frame while down: %+v", d)
	}
	m.SetUp(true)
	if d := m.Offer(0, 100); d.N != 1 {
		t.Errorf("frame after up: %+v", d)
	}
	c := m.Counters()
	if c.DroppedMTU != 1 || c.DroppedDown != 1 || c.Delivered != 2 {
		t.Errorf("counters %+v", c)
	}
	checkInvariant(t, c)
}

var everything = Config{
	Loss: 0.02, GE: GilbertElliott{P: 0.01, R: 0.3, LossBad: 0.8, LossGood: 0.001},
	Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Reorder: 0.05,
	Dup: 0.02, Corrupt: 0.01, CorruptOffset: 14, Rate: 50_000_000, Queue: 50,
	MTU: 1500, LinkHeader: 14,
}

func TestDeterminism(t *testing.T) {
	sizes := func(i int) int { return 60 + (i*7919)%1500 }
	run := func(m *Model) []Decision {
		out := make([]Decision, 20_000)
		for i := range out {
			if i == 5000 {
				m.SetUp(false)
			} else if i == 5100 {
				m.SetUp(true)
			}
			out[i] = m.Offer(clock.Instant(i)*clock.Instant(100*time.Microsecond), sizes(i))
		}
		return out
	}
	a, b := run(New(everything, 99)), run(New(everything, 99))
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("decision %d differs: %+v vs %+v", i, a[i], b[i])
		}
	}
	ab, ba := NewPair(everything, everything, 99)
	c, d := run(ab), run(ba)
	if countEqual(a, c) != len(a) {
		t.Error("NewPair's first model differs from New with the same seed")
	}
	if countEqual(c, d) == len(c) {
		t.Error("the two directions of a pair made identical decisions")
	}
	if countEqual(a, run(New(everything, 100))) == len(a) {
		t.Error("different seeds made identical decisions")
	}
}

func countEqual(a, b []Decision) int {
	n := 0
	for i := range a {
		if a[i] == b[i] {
			n++
		}
	}
	return n
}

func TestCountersInvariantEverything(t *testing.T) {
	m := New(everything, 1)
	for i := range 100_000 {
		m.Offer(clock.Instant(i)*clock.Instant(50*time.Microsecond), 60+i%1500)
	}
	c := m.Counters()
	checkInvariant(t, c)
	for _, r := range []DropReason{DropLoss, DropQueue, DropMTU} {
		if c.Dropped(r) == 0 {
			t.Errorf("no %v drops: %+v", r, c)
		}
	}
	if c.Duplicated == 0 || c.Corrupted == 0 || c.Reordered == 0 || c.Overtook == 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestSanitize(t *testing.T) {
	// New never panics and clamps a bad Config.
	m := New(Config{Loss: 2, Dup: math.NaN(), Delay: -time.Second, Jitter: -1, Dist: 9,
		Queue: -1, QueueBytes: -1, MTU: -5, CorruptOffset: -3, Corrupt: 1, Rate: 1}, 1)
	d := m.Offer(0, 10)
	if d.N != 0 || d.Reason != DropLoss {
		t.Errorf("loss=2 (clamped to 1) delivered: %+v", d)
	}
	if c := m.Config(); c.Loss != 1 || c.Dup != 0 || c.Delay != 0 || c.MTU != 0 {
		t.Errorf("sanitized config %+v", c)
	}
	// A negative length is an empty frame.
	m = New(Config{Rate: 8, Corrupt: 1}, 1)
	if d := m.Offer(0, -5); d.N != 1 || d.Copies[0].Due != 0 || d.Copies[0].Corrupt {
		t.Errorf("negative length: %+v", d)
	}
	// Huge frames at a tiny rate do not overflow.
	m = New(Config{Rate: 1}, 1)
	if d := m.Offer(0, math.MaxInt32); d.N != 1 || d.Copies[0].Due <= 0 {
		t.Errorf("huge frame: %+v", d)
	}
}

func TestOfferAllocs(t *testing.T) {
	m := New(everything, 1)
	var now clock.Instant
	allocs := testing.AllocsPerRun(1000, func() {
		now += clock.Instant(time.Millisecond)
		m.Offer(now, 1000)
	})
	if allocs != 0 {
		t.Errorf("Offer allocates %v times per call", allocs)
	}
}

func BenchmarkOffer(b *testing.B) {
	m := New(everything, 1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Offer(clock.Instant(i)*clock.Instant(time.Microsecond), 1000)
	}
}
