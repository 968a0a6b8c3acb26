// Command evalcc measures loss recovery and congestion control in the
// simulator and writes the tables that BENCHMARKS.md links: every
// controller registered in tcp/cc, over a goodput grid of bandwidth × RTT
// × loss, tail losses, heavy reordering, fairness of 2, 4 and 8 flows,
// and queue delay with and without ECN marking (package sim/eval).
//
// Usage:
//
//	go run ./sim/cmd/evalcc -out docs/eval     # or: make eval
//
// It writes cc.md (the tables), goodput.csv (every goodput run) and
// reorder-cwnd.csv (the window over time in the reordering runs) to the
// -out directory. Every run is in virtual time from a fixed seed, so the
// same code writes the same files; the wall time it took goes to stderr.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ustack/ustack/sim/eval"
)

func main() {
	out := flag.String("out", "docs/eval", "directory to write cc.md, goodput.csv and reorder-cwnd.csv to")
	seed := flag.Uint64("seed", 1, "seed of every run")
	ccs := flag.String("cc", "", "comma-separated controllers to measure (default: every registered one)")
	workers := flag.Int("j", 0, "runs at once (default GOMAXPROCS)")
	quick := flag.Bool("quick", false, "a small grid and short lists, to try the command")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "evalcc: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	o := eval.DefaultOptions()
	o.Seed, o.Workers = *seed, *workers
	if *ccs != "" {
		o.CCs = strings.Split(*ccs, ",")
	}
	if *quick {
		o.Grid = eval.Grid{Rates: []uint64{10e6, 1e9}, RTTs: []time.Duration{10 * time.Millisecond, 100 * time.Millisecond}, Losses: []float64{0, 0.01}}
		o.TailRTTs, o.TailLosses = o.TailRTTs[:1], []int{0, 1}
		o.FairCounts, o.QueueFlows = []int{2}, []int{1}
	}
	start := time.Now()
	last := time.Now()
	o.Progress = func(done, total int) {
		if time.Since(last) > 5*time.Second || done == total {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "evalcc: %d of %d runs, %v\n", done, total, time.Since(start).Round(time.Second))
		}
	}
	r := eval.Run(o)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fatal(err)
	}
	for name, write := range map[string]func(*bytes.Buffer) error{
		"cc.md":            func(b *bytes.Buffer) error { return r.WriteMarkdown(b) },
		"goodput.csv":      func(b *bytes.Buffer) error { return r.WriteGoodputCSV(b) },
		"reorder-cwnd.csv": func(b *bytes.Buffer) error { return r.WriteCwndCSV(b) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*out, name), b.Bytes(), 0o644); err != nil {
			fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "evalcc: wrote %s/{cc.md,goodput.csv,reorder-cwnd.csv} in %v (controllers: %s)\n",
		*out, time.Since(start).Round(time.Second), strings.Join(r.CCs, ", "))
	if errs := r.Errors(); len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, "evalcc:", err)
		}
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "evalcc:", err)
	os.Exit(1)
}
