package eval

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/sim"
	"github.com/ustack/ustack/wire"
)

func TestJain(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{5, 5, 5, 5}, 1},
		{[]float64{8, 0, 0, 0}, 0.25},
		{[]float64{1, 2, 3, 4}, 100.0 / 120},
		{[]float64{3}, 1},
		{nil, 0},
		{[]float64{0, 0}, 0},
	} {
		if got := Jain(tc.xs); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Jain(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

// TestGoodputCell: one cell per registered controller on a small path.
// Goodput can never exceed the link, must come close to it on a clean
// 10 Mbit/s path (a harness that measured the wrong thing, or nothing,
// would not), falls with 10 % loss, whose losses are all retransmitted
// but those of the last two round trips (the time limit ends the run
// before loss detection can see them), and a seed replays the same run.
func TestGoodputCell(t *testing.T) {
	budget := Budget{RTTs: 100, MinTime: time.Second, Bytes: 64 << 20}
	for _, name := range Controllers() {
		t.Run(name, func(t *testing.T) {
			c := Cell{CC: name, Rate: 10e6, RTT: 10 * time.Millisecond}
			r := RunGoodput(1, c, budget)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			t.Logf("%s: %.2f Mbit/s (%.1f %%) in %v, %d retransmitted, %d tail drops", name, r.Goodput/1e6, r.Utilization*100, r.Elapsed, r.Retrans, r.QueueDrops)
			if r.Utilization > 1 || r.Utilization < 0.8 {
				t.Errorf("utilization %.3f of a clean 10 Mbit/s path, want 0.8 to 1", r.Utilization)
			}
			if r.Elapsed < time.Second-3*c.RTT || r.ByBytes { // ARP and the handshake come first
				t.Errorf("ran %v (by bytes %v), want the 1 s time limit", r.Elapsed, r.ByBytes)
			}
			if again := RunGoodput(1, c, budget); again.Bytes != r.Bytes || again.Retrans != r.Retrans {
				t.Errorf("the same seed gave %d bytes, %d retransmissions, then %d, %d", r.Bytes, r.Retrans, again.Bytes, again.Retrans)
			}
			c.Loss = 0.1
			lossy := RunGoodput(1, c, budget)
			if lossy.Err != nil {
				t.Fatal(lossy.Err)
			}
			cutOff := c.Rate / 8 * uint64(2*c.RTT) / uint64(time.Second) / 1500 // frames in two RTTs
			if lossy.Goodput >= r.Goodput || lossy.Lost == 0 || lossy.Retrans+cutOff < lossy.Lost {
				t.Errorf("10 %% loss: %.2f Mbit/s, %d lost, %d retransmitted (clean: %.2f Mbit/s)", lossy.Goodput/1e6, lossy.Lost, lossy.Retrans, r.Goodput/1e6)
			}
		})
	}
	// The byte budget ends a run early.
	r := RunGoodput(1, Cell{CC: DefaultController(), Rate: 100e6, RTT: time.Millisecond}, Budget{RTTs: 10, MinTime: 10 * time.Second, Bytes: 4 << 20})
	if r.Err != nil || !r.ByBytes || r.Bytes < 4<<20 || r.Elapsed > 2*time.Second {
		t.Errorf("byte budget: %+v", r)
	}
}

// TestTailLossHarness: the tail-loss bench drops exactly the first
// transmissions of the last segments, and the transfer still completes,
// later than without the loss.
func TestTailLossHarness(t *testing.T) {
	for _, name := range Controllers() {
		t.Run(name, func(t *testing.T) {
			base := RunTailLoss(1, TailCase{CC: name, RTT: 10 * time.Millisecond})
			if base.Err != nil || base.Dropped != 0 || base.Retrans != 0 {
				t.Fatalf("no loss: %+v", base)
			}
			// 100 Mbit/s and 10 ms: at least a round trip for the
			// handshake and one more for the data.
			if base.Completion < 20*time.Millisecond || base.Completion > time.Second {
				t.Errorf("completion without loss %v", base.Completion)
			}
			for _, lost := range []int{1, 3} {
				r := RunTailLoss(1, TailCase{CC: name, RTT: 10 * time.Millisecond, Lost: lost})
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				t.Logf("lost %d: %v (+%v), %d RTOs, %d retransmitted, %s", lost, r.Completion, r.Completion-base.Completion, r.RTOs, r.Retrans, r.Counters)
				if r.Dropped != lost || r.Retrans < uint64(lost) {
					t.Errorf("lost %d: dropped %d, retransmitted %d", lost, r.Dropped, r.Retrans)
				}
				if r.Completion <= base.Completion {
					t.Errorf("lost %d: completed in %v, no later than without loss (%v)", lost, r.Completion, base.Completion)
				}
			}
		})
	}
}

// Small setups, so that the tests stay fast under the race detector
// (every byte of a simulated transfer costs CPU).
var (
	testReorder = ReorderSetup{Path: Path{Rate: 10e6, RTT: 40 * time.Millisecond}, Duration: 4 * time.Second, Warmup: time.Second, Sample: 10 * time.Millisecond}
	testFair    = FairSetup{Path: Path{Rate: 10e6, RTT: 20 * time.Millisecond}, Duration: 8 * time.Second, Warmup: 3 * time.Second, Stagger: 100 * time.Millisecond}
	testQueue   = QueueSetup{Path: Path{Rate: 10e6, RTT: 20 * time.Millisecond, Queue: 200}, Duration: 8 * time.Second, Warmup: 3 * time.Second, Sample: time.Millisecond, Stagger: 100 * time.Millisecond}
)

// TestReorderHarness: the baseline run has no reordering and so no
// spurious retransmission; the reordering runs do reorder.
func TestReorderHarness(t *testing.T) {
	name := DefaultController()
	none := RunReorder(1, name, DefaultReorderings[0], testReorder)
	if none.Err != nil {
		t.Fatal(none.Err)
	}
	if none.Overtaken != 0 || none.Spurious != 0 {
		t.Errorf("no reordering: %d overtaken, %d spurious", none.Overtaken, none.Spurious)
	}
	if want := int(testReorder.Duration / testReorder.Sample); len(none.Cwnd) < want-1 || none.CwndMax < none.CwndMedian || none.CwndMedian < none.CwndMin || none.CwndMin <= 0 {
		t.Errorf("%d window samples (want %d), min/median/max %v/%v/%v", len(none.Cwnd), want, none.CwndMin, none.CwndMedian, none.CwndMax)
	}
	for _, ro := range DefaultReorderings[1:] {
		r := RunReorder(1, name, ro, testReorder)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		t.Logf("%s: %.1f Mbit/s, %d overtaken, %d retransmitted, %d spurious", ro.Name, r.Goodput/1e6, r.Overtaken, r.Retrans, r.Spurious)
		if r.Overtaken == 0 {
			t.Errorf("%s: nothing was reordered", ro.Name)
		}
		if r.Spurious > r.Retrans {
			t.Errorf("%s: %d spurious of %d retransmissions", ro.Name, r.Spurious, r.Retrans)
		}
	}
}

// TestFairnessHarness: two flows share the bottleneck: each gets
// something, together no more than the link.
func TestFairnessHarness(t *testing.T) {
	r := RunFairness(1, Mix(2, DefaultController()), testFair)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	t.Logf("%s: %v, Jain %.3f, use %.3f", r.Name(), r.Goodput, r.Jain, r.Utilization)
	if len(r.Goodput) != 2 || r.Goodput[0] <= 0 || r.Goodput[1] <= 0 {
		t.Errorf("goodputs %v", r.Goodput)
	}
	if r.Utilization > 1 || r.Utilization < 0.5 || r.Jain < 0.5 || r.Jain > 1 {
		t.Errorf("use %v, Jain %v", r.Utilization, r.Jain)
	}
	if got := Mix(5, "a", "b").Name(); got != "3 × a + 2 × b" {
		t.Errorf("Mix(5, a, b).Name() = %q", got)
	}
}

// TestCoDelCutsQueueDelay: through a deep queue (240 ms at the rate),
// one flow keeps it standing; with CoDel the wait stays near CoDel's
// 5 ms target. This is the marking queue of package impair at work in
// the simulator.
func TestCoDelCutsQueueDelay(t *testing.T) {
	tail := RunQueue(1, DefaultController(), 1, DefaultDisciplines[0], testQueue)
	codel := RunQueue(1, DefaultController(), 1, DefaultDisciplines[1], testQueue)
	for _, r := range []QueueResult{tail, codel} {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		t.Logf("%s: %.1f Mbit/s, wait mean %v p99 %v, per packet %v, %d CoDel drops", r.Discipline.Name, r.Goodput/1e6, r.DelayMean, r.DelayP99, r.PacketMean, r.AQMDrops)
	}
	if tail.DelayMean < 20*time.Millisecond || tail.AQMDrops != 0 {
		t.Errorf("drop-tail: mean wait %v, %d AQM drops", tail.DelayMean, tail.AQMDrops)
	}
	if codel.DelayMean > 10*time.Millisecond || codel.PacketMean > 10*time.Millisecond || codel.AQMDrops == 0 {
		t.Errorf("CoDel: mean wait %v (per packet %v), %d drops", codel.DelayMean, codel.PacketMean, codel.AQMDrops)
	}
	if codel.DelayMean >= tail.DelayMean/4 {
		t.Errorf("CoDel's mean wait %v is not well under drop-tail's %v", codel.DelayMean, tail.DelayMean)
	}
}

// TestSimCarriesMarks: a CoDel queue with ECN on a simulated link marks
// ECN-capable frames CE, with valid IPv4 header checksums, as they reach
// the far end; frames that are not ECN-capable are dropped instead.
func TestSimCarriesMarks(t *testing.T) {
	for _, ecn := range []uint8{0, 2} {
		n := sim.New(1)
		var got, marked, bad int
		src := n.AddRaw("src", nil)
		dst := n.AddRaw("dst", func(_ clock.Instant, _ *sim.Port, f []byte) {
			got++
			ip := wire.IPv4(f[14:])
			if !ip.ChecksumValid() {
				bad++
			}
			if ip.TOS()&3 == 3 {
				marked++
			}
		})
		l := n.Link(src.AddPort(), dst.AddPort(), impair.Config{Rate: 10e6, Queue: 2000, AQM: impair.AQM{Kind: impair.CoDel, ECN: true}}, impair.Config{})
		frame := make([]byte, 1250)
		binary.BigEndian.PutUint16(frame[12:], uint16(wire.EtherTypeIPv4))
		ip := frame[14:]
		ip[0], ip[1], ip[8], ip[9] = 0x45, ecn, 64, wire.ProtoUDP
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		binary.BigEndian.PutUint16(ip[10:], wire.Checksum(ip[:20], 0))
		// 1 ms per frame at 10 Mbit/s, sent every 0.8 ms for 1 s.
		for i := range 1250 {
			n.At(clock.Instant(i)*clock.Instant(800*time.Microsecond), func() { src.Port(0).Send(frame) })
		}
		if err := n.RunQuiet(time.Minute); err != nil {
			t.Fatal(err)
		}
		c := l.AB.Model.Counters()
		t.Logf("ECN %d: %d arrived, %d marked, %d CoDel drops", ecn, got, marked, c.DroppedAQM)
		if bad > 0 {
			t.Errorf("%d frames arrived with a bad header checksum", bad)
		}
		if ecn == 0 && (marked != 0 || c.DroppedAQM == 0 || got+int(c.DroppedAQM) != 1250) {
			t.Errorf("not ECN-capable: %d marked, %d arrived, counters %+v", marked, got, c)
		}
		if ecn != 0 && (marked == 0 || uint64(marked) != c.Marked || got != 1250) {
			t.Errorf("ECN-capable: %d marked, %d arrived, counters %+v", marked, got, c)
		}
	}
}

// TestReportRepeats: the tables do not depend on how many runs go at
// once: Run with one worker and with three writes the same bytes.
func TestReportRepeats(t *testing.T) {
	o := Options{
		Seed:        3,
		CCs:         []string{DefaultController()},
		Grid:        Grid{Rates: []uint64{10e6}, RTTs: []time.Duration{5 * time.Millisecond, 20 * time.Millisecond}, Losses: []float64{0, 0.02}},
		Budget:      Budget{RTTs: 50, MinTime: 500 * time.Millisecond, Bytes: 1 << 20},
		TailRTTs:    []time.Duration{10 * time.Millisecond},
		TailLosses:  []int{0, 2},
		Reorderings: DefaultReorderings[:2],
		Reorder:     testReorder,
		FairCounts:  []int{2},
		Fair:        testFair,
		Disciplines: DefaultDisciplines[1:2],
		QueueFlows:  []int{1},
		Queue:       testQueue,
	}
	var out [2][3]bytes.Buffer
	for i, workers := range []int{1, 3} {
		o.Workers = workers
		r := Run(o)
		if errs := r.Errors(); len(errs) > 0 {
			t.Fatal(errs)
		}
		if len(r.Goodput) != 4 || len(r.Tail) != 2 || len(r.Reorder) != 2 || len(r.Fairness) != 1 || len(r.Queue) != 1 {
			t.Fatalf("%d goodput, %d tail, %d reorder, %d fairness, %d queue results", len(r.Goodput), len(r.Tail), len(r.Reorder), len(r.Fairness), len(r.Queue))
		}
		if err := r.WriteMarkdown(&out[i][0]); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteGoodputCSV(&out[i][1]); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteCwndCSV(&out[i][2]); err != nil {
			t.Fatal(err)
		}
	}
	for k := range out[0] {
		if !bytes.Equal(out[0][k].Bytes(), out[1][k].Bytes()) {
			t.Errorf("output %d differs between 1 and 3 workers:\n%s\n----\n%s", k, out[0][k].String(), out[1][k].String())
		}
	}
	if md := out[0][0].String(); !bytes.Contains(out[0][0].Bytes(), []byte("| 10 Mbit/s | 20 ms | 2 % |")) {
		t.Errorf("goodput row missing from:\n%s", md)
	}
}
