package eval

import (
	"fmt"
	"time"

	"github.com/ustack/ustack/clock"
)

// Budget bounds one run of a single bulk flow: it stops after
// max(RTTs round trips, MinTime) of virtual time, or as soon as the
// receiver has read Bytes, whichever comes first. The simulator's cost is
// CPU per simulated segment, so Bytes is what bounds the fast cells.
type Budget struct {
	RTTs    int
	MinTime time.Duration
	Bytes   int64
}

// DefaultBudget is the budget of the published grid: 100 round trips, at
// least 2 s, at most 1 GiB.
var DefaultBudget = Budget{RTTs: 100, MinTime: 2 * time.Second, Bytes: 1 << 30}

// duration returns how long a run on p may last.
func (b Budget) duration(p Path) time.Duration {
	return max(time.Duration(b.RTTs)*p.RTT, b.MinTime)
}

// Cell is one point of the goodput grid.
type Cell struct {
	CC   string
	Rate uint64
	RTT  time.Duration
	Loss float64
}

// Path returns the cell's bottleneck.
func (c Cell) Path() Path { return Path{Rate: c.Rate, RTT: c.RTT, Loss: c.Loss} }

// GoodputResult is what one cell measured.
type GoodputResult struct {
	Cell
	// Bytes is what the receiver read in Elapsed, which runs from the
	// moment the sender could first write.
	Bytes   int64
	Elapsed time.Duration
	// Goodput is Bytes per Elapsed, in bits per second; Utilization is
	// Goodput over the bottleneck's rate.
	Goodput, Utilization float64
	// ByBytes says the run ended at the byte budget, not the time limit.
	ByBytes bool
	// Retrans is the segments the sender retransmitted, RTOs its
	// retransmission timeouts, Lost the frames the link lost (random
	// loss) and QueueDrops those the full bottleneck queue dropped.
	Retrans, RTOs, Lost, QueueDrops uint64
	// Err is why the run failed, if it did.
	Err error
}

// RunGoodput runs one bulk flow on the cell's path with its controller,
// within budget.
func RunGoodput(seed uint64, c Cell, budget Budget) GoodputResult {
	r := GoodputResult{Cell: c}
	p := c.Path()
	b, err := newBench(seed, p, benchConfig{cc: c.CC})
	if err != nil {
		r.Err = err
		return r
	}
	f := b.dial(FlowSpec{})
	d := budget.duration(p)
	r.Err = b.run(d, func() bool { return budget.Bytes > 0 && f.Received >= budget.Bytes })
	if r.Err == nil && f.Established == clock.Never {
		r.Err = fmt.Errorf("the connection was not established in %v", d)
	}
	if r.Err != nil {
		return r
	}
	r.Bytes = f.Received
	r.Elapsed = b.net.Now().Sub(f.Established)
	r.ByBytes = budget.Bytes > 0 && f.Received >= budget.Bytes
	if r.Elapsed > 0 {
		r.Goodput = float64(r.Bytes) * 8 / r.Elapsed.Seconds()
		r.Utilization = r.Goodput / float64(c.Rate)
	}
	st := b.senderStats()
	r.Retrans, r.RTOs = st.TCP.RetransSegs, st.TCP.Timeouts
	mc := b.data().Model.Counters()
	r.Lost, r.QueueDrops = mc.DroppedLoss, mc.DroppedQueue
	return r
}

// Grid is the set of paths the goodput table covers.
type Grid struct {
	Rates  []uint64
	RTTs   []time.Duration
	Losses []float64
}

// DefaultGrid is the published grid: 10 Mbit/s to 10 Gbit/s, 1 to 200 ms,
// 0 to 10 % loss (4 × 4 × 5 cells per controller).
var DefaultGrid = Grid{
	Rates:  []uint64{10e6, 100e6, 1e9, 10e9},
	RTTs:   []time.Duration{time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond},
	Losses: []float64{0, 0.0001, 0.001, 0.01, 0.1},
}

// Cells returns the grid's cells for each controller, controllers
// innermost so that a table can put them side by side.
func (g Grid) Cells(ccs []string) []Cell {
	var cells []Cell
	for _, rate := range g.Rates {
		for _, rtt := range g.RTTs {
			for _, loss := range g.Losses {
				for _, name := range ccs {
					cells = append(cells, Cell{CC: name, Rate: rate, RTT: rtt, Loss: loss})
				}
			}
		}
	}
	return cells
}
