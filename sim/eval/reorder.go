package eval

import (
	"slices"
	"time"

	"github.com/ustack/ustack/clock"
)

// Reordering is one kind of reordering on the data direction of a
// lossless path.
type Reordering struct {
	// Name names it in tables.
	Name string
	// Jitter and Reorder are the Path's.
	Jitter  time.Duration
	Reorder float64
}

// DefaultReorderings are the published runs: none (the baseline), jitter
// of ±5 ms on a path where frames are 120 µs apart (each frame may land
// among the 80 before or after it), and 10 % of frames skipping the
// 20 ms one-way delay (netem's reorder: each overtakes about 160).
var DefaultReorderings = []Reordering{
	{Name: "none"},
	{Name: "jitter ±5 ms", Jitter: 5 * time.Millisecond},
	{Name: "reorder 10 %", Reorder: 0.10},
}

// ReorderSetup is the path and the timing of the reordering runs.
type ReorderSetup struct {
	// Path is the path before reordering (its Jitter and Reorder are
	// the Reordering's).
	Path Path
	// Duration is the whole run; the window statistics leave out the
	// first Warmup (slow start); the window is sampled every Sample.
	Duration, Warmup, Sample time.Duration
}

// DefaultReorderSetup is the published setup: 100 Mbit/s, 40 ms, one BDP
// of queue, no loss, for 10 s.
var DefaultReorderSetup = ReorderSetup{
	Path:     Path{Rate: 100e6, RTT: 40 * time.Millisecond},
	Duration: 10 * time.Second, Warmup: time.Second, Sample: 10 * time.Millisecond,
}

// ReorderResult is what one reordering run measured.
type ReorderResult struct {
	CC         string
	Reordering Reordering
	// Goodput over the whole run, bits per second, and as a fraction of
	// the rate.
	Goodput, Utilization float64
	// Cwnd is the sender's congestion window in full segments every
	// Sample from the first; CwndMin, CwndMedian and CwndMax summarise it
	// after Warmup.
	Cwnd                         []float64
	CwndMin, CwndMedian, CwndMax float64
	// Retrans is the segments the sender retransmitted; Spurious those
	// the receiver got although it had their data already (the link
	// neither loses nor duplicates, so these were not needed); Reductions
	// counts the recoveries and RTOs that cut the window.
	Retrans, Spurious, Reductions uint64
	// Overtaken is the frames the link delivered ahead of frames sent
	// before them; QueueDrops those the full bottleneck queue dropped.
	Overtaken, QueueDrops uint64
	Counters              string
	Err                   error
}

// RunReorder runs one bulk flow with controller name over the setup's
// path with the reordering ro.
func RunReorder(seed uint64, name string, ro Reordering, setup ReorderSetup) ReorderResult {
	r := ReorderResult{CC: name, Reordering: ro}
	p := setup.Path
	p.Jitter, p.Reorder = ro.Jitter, ro.Reorder
	b, err := newBench(seed, p, benchConfig{cc: name})
	if err != nil {
		r.Err = err
		return r
	}
	f := b.dial(FlowSpec{})
	b.every(setup.Sample, func(clock.Instant) {
		info := f.Info()
		mss := max(info.SndMSS, 1)
		r.Cwnd = append(r.Cwnd, float64(info.Cwnd)/float64(mss))
	})
	if r.Err = b.run(setup.Duration, nil); r.Err != nil {
		return r
	}
	r.Goodput = float64(f.Received) * 8 / b.net.Now().Sub(f.Established).Seconds()
	r.Utilization = r.Goodput / float64(p.Rate)
	if w := int(setup.Warmup / setup.Sample); len(r.Cwnd) > w {
		after := slices.Clone(r.Cwnd[w:])
		slices.Sort(after)
		r.CwndMin, r.CwndMedian, r.CwndMax = after[0], after[len(after)/2], after[len(after)-1]
	}
	st, rst := b.senderStats(), b.receiverStats()
	r.Retrans, r.Reductions = st.TCP.RetransSegs, st.TCP.Recoveries+st.TCP.Timeouts
	r.Spurious = rst.TCP.DupData
	mc := b.data().Model.Counters()
	r.Overtaken, r.QueueDrops = mc.Overtook, mc.DroppedQueue
	r.Counters = recoveryCounters(st)
	return r
}
