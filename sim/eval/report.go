package eval

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options choose what Run measures.
type Options struct {
	// Seed seeds every run (the same seed gives the same tables).
	Seed uint64
	// CCs are the controllers to measure; nil means Controllers().
	CCs []string
	// Grid and Budget are the goodput grid and its runs' bounds.
	Grid   Grid
	Budget Budget
	// TailRTTs and TailLosses are the tail-loss runs' RTTs and numbers of
	// segments lost.
	TailRTTs   []time.Duration
	TailLosses []int
	// Reorderings are the reordering runs' kinds, Reorder their setup.
	Reorderings []Reordering
	Reorder     ReorderSetup
	// FairCounts are the numbers of flows of the fairness runs, Fair
	// their setup.
	FairCounts []int
	Fair       FairSetup
	// Disciplines and QueueFlows are the queue-delay runs', Queue their
	// setup.
	Disciplines []Discipline
	QueueFlows  []int
	Queue       QueueSetup
	// Workers is how many runs go at once; 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, is called after each run with the runs done and
	// the runs in all.
	Progress func(done, total int)
}

// DefaultOptions returns the options of the published tables.
func DefaultOptions() Options {
	return Options{
		Seed:        1,
		Grid:        DefaultGrid,
		Budget:      DefaultBudget,
		TailRTTs:    []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond},
		TailLosses:  []int{0, 1, 2, 4},
		Reorderings: DefaultReorderings,
		Reorder:     DefaultReorderSetup,
		FairCounts:  FairCounts,
		Fair:        DefaultFairSetup,
		Disciplines: DefaultDisciplines,
		QueueFlows:  QueueFlowCounts,
		Queue:       DefaultQueueSetup,
	}
}

// Results are every run's result, in the order of the tables.
type Results struct {
	Options  Options
	CCs      []string
	Goodput  []GoodputResult
	Tail     []TailResult
	Reorder  []ReorderResult
	Fairness []FairResult
	Queue    []QueueResult
}

// Errors returns the errors of the runs that failed.
func (r *Results) Errors() []error {
	var errs []error
	add := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	for _, g := range r.Goodput {
		add(fmt.Sprintf("goodput %s %s %v loss %g", g.CC, fmtRate(g.Rate), g.RTT, g.Loss), g.Err)
	}
	for _, t := range r.Tail {
		add(fmt.Sprintf("tail loss %s %v lost %d", t.CC, t.RTT, t.Lost), t.Err)
	}
	for _, o := range r.Reorder {
		add(fmt.Sprintf("reordering %s %s", o.CC, o.Reordering.Name), o.Err)
	}
	for _, f := range r.Fairness {
		add("fairness "+f.Name(), f.Err)
	}
	for _, q := range r.Queue {
		add(fmt.Sprintf("queue %s %d flows %s", q.CC, q.Flows, q.Discipline.Name), q.Err)
	}
	return errs
}

// Run runs every experiment of o, Workers at a time. Each run is a
// network of its own, so runs share nothing and the results do not depend
// on Workers.
func Run(o Options) *Results {
	ccs := o.CCs
	if ccs == nil {
		ccs = Controllers()
	}
	r := &Results{Options: o, CCs: ccs}
	cells := o.Grid.Cells(ccs)
	r.Goodput = make([]GoodputResult, len(cells))
	var jobs []func()
	for i, c := range cells {
		jobs = append(jobs, func() { r.Goodput[i] = RunGoodput(o.Seed, c, o.Budget) })
	}
	for _, name := range ccs {
		for _, rtt := range o.TailRTTs {
			for _, lost := range o.TailLosses {
				i := len(r.Tail)
				r.Tail = append(r.Tail, TailResult{})
				c := TailCase{CC: name, RTT: rtt, Lost: lost}
				jobs = append(jobs, func() { r.Tail[i] = RunTailLoss(o.Seed, c) })
			}
		}
		for _, ro := range o.Reorderings {
			i := len(r.Reorder)
			r.Reorder = append(r.Reorder, ReorderResult{})
			jobs = append(jobs, func() { r.Reorder[i] = RunReorder(o.Seed, name, ro, o.Reorder) })
		}
	}
	var fair []FairCase
	for _, n := range o.FairCounts {
		for _, c := range FairCases(ccs) {
			if len(c.CCs) == n {
				fair = append(fair, c)
			}
		}
	}
	r.Fairness = make([]FairResult, len(fair))
	for i, c := range fair {
		jobs = append(jobs, func() { r.Fairness[i] = RunFairness(o.Seed, c, o.Fair) })
	}
	for _, name := range ccs {
		for _, n := range o.QueueFlows {
			for _, d := range o.Disciplines {
				i := len(r.Queue)
				r.Queue = append(r.Queue, QueueResult{})
				jobs = append(jobs, func() { r.Queue[i] = RunQueue(o.Seed, name, n, d, o.Queue) })
			}
		}
	}
	runJobs(jobs, o.Workers, o.Progress)
	return r
}

// runJobs runs jobs on workers goroutines and waits for them all.
func runJobs(jobs []func(), workers int, progress func(done, total int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	next := make(chan func())
	for range min(workers, max(len(jobs), 1)) {
		wg.Go(func() {
			for job := range next {
				job()
				mu.Lock()
				done++
				if progress != nil {
					progress(done, len(jobs))
				}
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
}

// mbit formats bits per second in Mbit/s with three significant digits.
func mbit(bps float64) string {
	switch {
	case bps >= 100e6:
		return fmt.Sprintf("%.0f", bps/1e6)
	case bps >= 10e6:
		return fmt.Sprintf("%.1f", bps/1e6)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f", bps/1e6)
	}
	return fmt.Sprintf("%.3f", bps/1e6)
}

// pct formats a fraction as a percentage.
func pct(f float64) string {
	switch {
	case f >= 0.1:
		return fmt.Sprintf("%.0f %%", f*100)
	case f >= 0.01:
		return fmt.Sprintf("%.1f %%", f*100)
	}
	return fmt.Sprintf("%.2f %%", f*100)
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", d.Seconds()*1e3)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", d.Seconds()*1e3)
	}
	return fmt.Sprintf("%.2f ms", d.Seconds()*1e3)
}

// errCell is a table cell for a run that failed.
func errCell(err error) string {
	s := err.Error()
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return "failed: " + strings.ReplaceAll(s, "|", "/")
}

// WriteMarkdown writes the tables.
func (r *Results) WriteMarkdown(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	o := r.Options
	p("# Loss recovery and congestion control in the simulator\n\n")
	p("Generated by `go run ./sim/cmd/evalcc -out docs/eval` (`make eval`); do not edit by hand.\n")
	p("Every run is a whole ustack sender and receiver in package sim, in virtual time, from seed %d:\n", o.Seed)
	p("the same code gives the same tables, byte for byte.\n\n")
	p("Controllers measured (every one registered in `tcp/cc`): %s.\n", strings.Join(r.CCs, ", "))
	p("ECN: `tcp.Config.ECN` is `tcp.ECNRequest` on both stacks in the ECN rows (net.ipv4.tcp_ecn=1); elsewhere the default, accept only.\n\n")
	p("The bench (package `sim/eval`): a sender and a receiver joined by one link. The direction from the\n")
	p("sender is the bottleneck: its rate, half the RTT, random loss after the queue, a queue of one\n")
	p("bandwidth-delay product (at least %d frames) unless said otherwise, drop-tail. The ACK direction\n", MinQueue)
	p("has the other half of the RTT and nothing else. The sender writes without end; the receiver reads\n")
	p("at once and checks every byte. Goodput is what the receiving application read per second of\n")
	p("virtual time. The stacks run with their defaults (auto-tuned buffers, no configuration); only the\n")
	p("controller is chosen.\n\n")

	r.writeGoodput(p)
	r.writeTail(p)
	r.writeReorder(p)
	r.writeFairness(p)
	r.writeQueue(p)
	return ew.err
}

func (r *Results) writeGoodput(p func(string, ...any)) {
	o := r.Options
	p("## Goodput: bandwidth × RTT × loss\n\n")
	p("One flow per run. A run lasts %d RTTs (at least %s) of virtual time, or until %d MiB have\n",
		o.Budget.RTTs, fmtDur(o.Budget.MinTime), o.Budget.Bytes>>20)
	p("arrived (marked †: the fast cells, where CPU per simulated segment is the cost); goodput counts\n")
	p("from the moment the sender could first write, so slow start is in it. Loss is random and\n")
	p("independent on the data direction. Each cell: goodput in Mbit/s (share of the bottleneck);\n")
	p("`goodput.csv` beside this file has every counter of every run.\n\n")
	p("| bottleneck | RTT | loss |")
	for _, name := range r.CCs {
		p(" %s |", name)
	}
	p("\n| --- | --- | --- |%s\n", strings.Repeat(" --- |", len(r.CCs)))
	for i := 0; i < len(r.Goodput); i += len(r.CCs) {
		g := r.Goodput[i]
		p("| %s | %s | %g %% |", fmtRate(g.Rate), fmtDur(g.RTT), g.Loss*100)
		for _, c := range r.Goodput[i : i+len(r.CCs)] {
			if c.Err != nil {
				p(" %s |", errCell(c.Err))
				continue
			}
			mark := ""
			if c.ByBytes {
				mark = " †"
			}
			p(" %s (%s)%s |", mbit(c.Goodput), pct(c.Utilization), mark)
		}
		p("\n")
	}
	p("\n")
}

func (r *Results) writeTail(p func(string, ...any)) {
	if len(r.Tail) == 0 {
		return
	}
	p("## Tail loss: time to complete a transfer whose last segments are lost\n\n")
	p("A transfer of %d segments (%d bytes) on a %s path with a BDP queue; the sender does\n", TailSegments, TailSegments*tailMSS, fmtRate(TailRate))
	p("not close (no FIN follows the data). The last *lost* segments are dropped on their first\n")
	p("transmission only, whatever recovers them. Completion runs from the dial to the receiver reading\n")
	p("the last byte; *extra* is the difference from the same transfer without loss.\n\n")
	p("| controller | RTT | lost | completion | extra | extra in RTTs | RTOs | retransmitted | other sender counters |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	base := map[string]time.Duration{}
	for _, t := range r.Tail {
		key := fmt.Sprint(t.CC, t.RTT)
		if t.Lost == 0 && t.Err == nil {
			base[key] = t.Completion
		}
		if t.Err != nil {
			p("| %s | %s | %d | %s | | | | | |\n", t.CC, fmtDur(t.RTT), t.Lost, errCell(t.Err))
			continue
		}
		extra, rtts := "–", "–"
		if b, ok := base[key]; ok && t.Lost > 0 {
			extra = ms(t.Completion - b)
			rtts = fmt.Sprintf("%.1f", float64(t.Completion-b)/float64(t.RTT))
		}
		p("| %s | %s | %d | %s | %s | %s | %d | %d | %s |\n", t.CC, fmtDur(t.RTT), t.Lost, ms(t.Completion), extra, rtts, t.RTOs, t.Retrans, t.Counters)
	}
	p("\n")
}

func (r *Results) writeReorder(p func(string, ...any)) {
	if len(r.Reorder) == 0 {
		return
	}
	p("## Heavy reordering on a lossless path\n\n")
	rs := r.Options.Reorder
	p("One flow for %s on %s; the link loses and duplicates nothing, so every segment the\n", fmtDur(rs.Duration), rs.Path)
	p("receiver gets twice was a spurious retransmission. The window is sampled every %s; its statistics\n", fmtDur(rs.Sample))
	p("leave out the first %s. *Window cuts* are the sender's recoveries and RTOs; *overtaken* counts the frames\n", fmtDur(rs.Warmup))
	p("the link delivered ahead of frames sent before them. `reorder-cwnd.csv` beside this file has the\n")
	p("window over time.\n\n")
	p("| controller | reordering | goodput | cwnd min / median / max (segments) | retransmitted | spurious | window cuts | overtaken | tail drops | other sender counters |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, o := range r.Reorder {
		if o.Err != nil {
			p("| %s | %s | %s | | | | | | | |\n", o.CC, o.Reordering.Name, errCell(o.Err))
			continue
		}
		p("| %s | %s | %s Mbit/s (%s) | %.0f / %.0f / %.0f | %d | %d | %d | %d | %d | %s |\n", o.CC, o.Reordering.Name,
			mbit(o.Goodput), pct(o.Utilization), o.CwndMin, o.CwndMedian, o.CwndMax, o.Retrans, o.Spurious, o.Reductions,
			o.Overtaken, o.QueueDrops, o.Counters)
	}
	p("\n")
}

func (r *Results) writeFairness(p func(string, ...any)) {
	if len(r.Fairness) == 0 {
		return
	}
	p("## Fairness: flows sharing one bottleneck\n\n")
	fs := r.Options.Fair
	p("Flows from one sender to one receiver on %s, drop-tail, starting %s apart; each\n", fs.Path, fmtDur(fs.Stagger))
	p("flow's goodput is measured from %s to %s. Jain's index is (Σx)²/(n·Σx²): 1 when every flow gets the same.\n", fmtDur(fs.Warmup), fmtDur(fs.Duration))
	p("Mixed runs alternate the controllers flow by flow; *shares* is each controller's part of the total.\n\n")
	p("| flows | goodput per flow (Mbit/s) | Jain's index | link use | shares | retransmitted | tail drops |\n")
	p("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, f := range r.Fairness {
		if f.Err != nil {
			p("| %s | %s | | | | | |\n", f.Name(), errCell(f.Err))
			continue
		}
		gs := make([]string, len(f.Goodput))
		for i, g := range f.Goodput {
			gs[i] = mbit(g)
		}
		var shares []string
		for _, k := range slices.Sorted(maps.Keys(f.Share)) {
			shares = append(shares, fmt.Sprintf("%s %s", k, pct(f.Share[k])))
		}
		p("| %s | %s | %.3f | %s | %s | %d | %d |\n", f.Name(), strings.Join(gs, ", "), f.Jain, pct(f.Utilization),
			strings.Join(shares, ", "), f.Retrans, f.QueueDrops)
	}
	p("\n")
}

func (r *Results) writeQueue(p func(string, ...any)) {
	if len(r.Queue) == 0 {
		return
	}
	p("## Queue delay with and without ECN marking\n\n")
	qs := r.Options.Queue
	p("Bulk flows (started %s apart) through %s: a deep queue, as a bloated buffer is.\n", fmtDur(qs.Stagger), qs.Path)
	p("With CoDel (RFC 8289, 5 ms target, 100 ms interval, the %d frames as its hard limit) the queue\n", qs.Path.QueueFrames())
	p("drops — or, with ECN, marks CE — packets that waited too long. The ECN rows also ask both stacks for ECN\n")
	p("(`RequestECN`); *ECT* is the share of data frames that were ECN-capable, so 0 %% means the stacks\n")
	p("did not negotiate it and CoDel dropped instead. Measured from %s to %s; the queue's wait is\n", fmtDur(qs.Warmup), fmtDur(qs.Duration))
	p("sampled every %s (time average); *per packet* is the mean wait of the frames that passed.\n\n", fmtDur(qs.Sample))
	p("| controller | flows | queue | goodput | wait mean / p50 / p99 / max | per packet | CoDel drops | CE marks | tail drops | ECT | retransmitted |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, q := range r.Queue {
		if q.Err != nil {
			p("| %s | %d | %s | %s | | | | | | | |\n", q.CC, q.Flows, q.Discipline.Name, errCell(q.Err))
			continue
		}
		p("| %s | %d | %s | %s Mbit/s (%s) | %s / %s / %s / %s | %s | %d | %d | %d | %s | %d |\n", q.CC, q.Flows, q.Discipline.Name,
			mbit(q.Goodput), pct(q.Utilization), ms(q.DelayMean), ms(q.DelayP50), ms(q.DelayP99), ms(q.DelayMax), ms(q.PacketMean),
			q.AQMDrops, q.Marks, q.QueueDrops, pct(q.ECT), q.Retrans)
	}
	p("\n")
}

// WriteGoodputCSV writes every goodput run as a CSV row.
func (r *Results) WriteGoodputCSV(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("cc,rate_bps,rtt_ms,loss,bytes,elapsed_s,goodput_bps,utilization,by_bytes,retrans_segs,rtos,lost_frames,queue_drops,error\n")
	for _, g := range r.Goodput {
		errs := ""
		if g.Err != nil {
			errs = strings.NewReplacer(",", ";", "\n", " ").Replace(g.Err.Error())
		}
		ew.printf("%s,%d,%g,%g,%d,%.6f,%.0f,%.4f,%v,%d,%d,%d,%d,%s\n", g.CC, g.Rate, g.RTT.Seconds()*1e3, g.Loss, g.Bytes,
			g.Elapsed.Seconds(), g.Goodput, g.Utilization, g.ByBytes, g.Retrans, g.RTOs, g.Lost, g.QueueDrops, errs)
	}
	return ew.err
}

// WriteCwndCSV writes the reordering runs' windows over time: a column
// per run, a row per sample.
func (r *Results) WriteCwndCSV(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("time_ms")
	rows := 0
	for _, o := range r.Reorder {
		ew.printf(",%s %s", o.CC, o.Reordering.Name)
		rows = max(rows, len(o.Cwnd))
	}
	ew.printf("\n")
	for i := range rows {
		ew.printf("%d", (time.Duration(i+1) * r.Options.Reorder.Sample).Milliseconds())
		for _, o := range r.Reorder {
			if i < len(o.Cwnd) {
				ew.printf(",%.1f", o.Cwnd[i])
			} else {
				ew.printf(",")
			}
		}
		ew.printf("\n")
	}
	return ew.err
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
