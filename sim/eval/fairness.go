package eval

import (
	"fmt"
	"strings"
	"time"

	"github.com/ustack/ustack/clock"
)

// FairSetup is the bottleneck and the timing of the fairness runs.
type FairSetup struct {
	// Path is the shared bottleneck.
	Path Path
	// Flows start Stagger apart; each flow's goodput is measured from
	// Warmup to Duration.
	Duration, Warmup, Stagger time.Duration
}

// DefaultFairSetup is the published setup: 100 Mbit/s, 20 ms, one BDP of
// queue (165 frames), drop-tail; flows 100 ms apart, measured from 10 s
// to 30 s.
var DefaultFairSetup = FairSetup{
	Path:     Path{Rate: 100e6, RTT: 20 * time.Millisecond},
	Duration: 30 * time.Second, Warmup: 10 * time.Second, Stagger: 100 * time.Millisecond,
}

// FairCounts are the numbers of flows of the published runs.
var FairCounts = []int{2, 4, 8}

// FairCase is one fairness run: one flow per entry of CCs, flow i with
// controller CCs[i].
type FairCase struct {
	CCs []string
}

// Mix returns a case of n flows whose controllers take turns from names.
func Mix(n int, names ...string) FairCase {
	ccs := make([]string, n)
	for i := range ccs {
		ccs[i] = names[i%len(names)]
	}
	return FairCase{CCs: ccs}
}

// Name describes the case: "8 × reno", or "4 × reno + 4 × cubic".
func (c FairCase) Name() string {
	var order []string
	count := map[string]int{}
	for _, n := range c.CCs {
		if count[n] == 0 {
			order = append(order, n)
		}
		count[n]++
	}
	parts := make([]string, len(order))
	for i, n := range order {
		parts[i] = fmt.Sprintf("%d × %s", count[n], n)
	}
	return strings.Join(parts, " + ")
}

// FairResult is what a fairness run measured.
type FairResult struct {
	FairCase
	// Goodput is each flow's goodput from Warmup to Duration, bits per
	// second.
	Goodput []float64
	// Jain is Jain's index of Goodput; Utilization their sum over the
	// rate.
	Jain, Utilization float64
	// Share is each controller's part of the total (mixed runs).
	Share map[string]float64
	// Retrans and QueueDrops are the sender's retransmitted segments and
	// the bottleneck's drops over the whole run.
	Retrans, QueueDrops uint64
	Err                 error
}

// RunFairness runs the flows of c together on the setup's bottleneck.
func RunFairness(seed uint64, c FairCase, setup FairSetup) FairResult {
	r := FairResult{FairCase: c, Share: map[string]float64{}}
	b, err := newBench(seed, setup.Path, benchConfig{})
	if err != nil {
		r.Err = err
		return r
	}
	flows := make([]*Flow, len(c.CCs))
	for i, name := range c.CCs {
		flows[i] = b.dial(FlowSpec{CC: name, Start: time.Duration(i) * setup.Stagger})
	}
	at := make([]int64, len(flows))
	b.net.At(clock.Instant(setup.Warmup), func() {
		for i, f := range flows {
			at[i] = f.Received
		}
	})
	if r.Err = b.run(setup.Duration, nil); r.Err != nil {
		return r
	}
	span := (setup.Duration - setup.Warmup).Seconds()
	var sum float64
	for i, f := range flows {
		g := float64(f.Received-at[i]) * 8 / span
		r.Goodput = append(r.Goodput, g)
		sum += g
		r.Share[c.CCs[i]] += g
	}
	if sum > 0 {
		for k := range r.Share {
			r.Share[k] /= sum
		}
	}
	r.Jain = Jain(r.Goodput)
	r.Utilization = sum / float64(setup.Path.Rate)
	r.Retrans = b.senderStats().TCP.RetransSegs
	r.QueueDrops = b.data().Model.Counters().DroppedQueue
	return r
}

// FairCases returns the published cases for controllers names: n flows
// of each controller alone, and of every pair of controllers taking
// turns, for each n of FairCounts.
func FairCases(names []string) []FairCase {
	var cases []FairCase
	for _, n := range FairCounts {
		for _, a := range names {
			cases = append(cases, Mix(n, a))
		}
		for i, a := range names {
			for _, b := range names[i+1:] {
				cases = append(cases, Mix(n, a, b))
			}
		}
	}
	return cases
}
