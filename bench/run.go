package bench

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"time"
)

// Options size the measurements.
type Options struct {
	// Rounds is how many times each cell is measured (medians with
	// min–max are shown over them).
	Rounds int
	// Duration is the length of one bulk, rr or crr measurement.
	Duration time.Duration
	// Pairs is the number of established connections of the memory
	// workload.
	Pairs int
	// Conns is the number of connections of the million-connection
	// table, and Idle how long they idle while its CPU is measured.
	Conns int
	Idle  time.Duration
	// Only, if set, keeps the cells whose "table/row/column" it matches.
	Only *regexp.Regexp
	// Log receives a line per measurement; nil discards them.
	Log io.Writer
}

// Full returns the options `make bench` uses.
func Full() Options {
	return Options{Rounds: 3, Duration: time.Second, Pairs: 10000, Conns: 1_000_000, Idle: time.Minute}
}

// Quick returns the options of a smoke run: every cell once, briefly.
func Quick() Options {
	return Options{Rounds: 1, Duration: 100 * time.Millisecond, Pairs: 1000, Conns: 10_000, Idle: 2 * time.Second}
}

// A Sample is what one measurement gives: named figures (see the metric
// names in the workloads' files).
type Sample map[string]float64

// A Cell is one workload on one system.
type Cell struct {
	// Run makes the measurement.
	Run func(ctx context.Context, o Options) (Sample, error)
	// Show renders a cell's samples (one per round).
	Show func(s []Sample) string

	samples []Sample
	na      string // why the column never applies to the row
	reason  string // Unsupported's reason, once known
	err     error  // the first other error
}

// Samples returns the cell's samples so far.
func (c *Cell) Samples() []Sample { return c.samples }

// Err returns the first failure of the cell that was not Unsupported.
func (c *Cell) Err() error { return c.err }

// Reason returns why the cell could not run on this machine, or "".
func (c *Cell) Reason() string { return c.reason }

// NotApplicable returns why the cell's column never applies to its row,
// or "".
func (c *Cell) NotApplicable() string { return c.na }

// A Row is a line of a table: a cell per column (nil where the column does
// not apply) and the target for it, if any.
type Row struct {
	Name   string
	Cells  []*Cell
	Target string
}

// A Table is a set of rows measured and shown together.
type Table struct {
	Title string
	// Corner names the rows (the header of the first column).
	Corner string
	Cols   []string
	Rows   []*Row
	// Notes are printed under the table.
	Notes []string
	// OneRound measures the table's cells in the first round only (a
	// cell that takes minutes).
	OneRound bool
}

// each calls f for every cell of the tables that Only keeps.
func each(tables []*Table, o Options, f func(t *Table, r *Row, col string, c *Cell)) {
	for _, t := range tables {
		for _, r := range t.Rows {
			for i, c := range r.Cells {
				if c == nil {
					continue
				}
				if o.Only != nil && !o.Only.MatchString(t.Title+"/"+r.Name+"/"+t.Cols[i]) {
					continue
				}
				f(t, r, t.Cols[i], c)
			}
		}
	}
}

// Run measures every cell of the tables o.Rounds times, round after round,
// so that within a row the systems alternate. It returns the number of
// cells that failed (not counting those Unsupported here); the failures
// are in Cell.Err and in the rendered table.
func Run(ctx context.Context, tables []*Table, o Options) (failed int) {
	for round := 1; round <= o.Rounds; round++ {
		each(tables, o, func(t *Table, r *Row, col string, c *Cell) {
			if ctx.Err() != nil || c.na != "" || c.reason != "" || c.err != nil || t.OneRound && round > 1 {
				return
			}
			runtime.GC() // the previous cell's garbage is not this one's cost
			start := time.Now()
			s, err := c.Run(ctx, o)
			if reason, ok := isUnsupported(err); ok {
				c.reason = reason
				logf(o, "%s / %s / %s: not run: %s", t.Title, r.Name, col, reason)
				return
			}
			if err != nil {
				c.err = err
				logf(o, "%s / %s / %s: FAILED: %v", t.Title, r.Name, col, err)
				return
			}
			c.samples = append(c.samples, s)
			logf(o, "round %d: %s / %s / %s: %s (%.1fs)", round, t.Title, r.Name, col, c.Show([]Sample{s}), time.Since(start).Seconds())
		})
	}
	each(tables, o, func(_ *Table, _ *Row, _ string, c *Cell) {
		if c.err != nil {
			failed++
		}
	})
	if ctx.Err() != nil {
		failed++
	}
	return failed
}

func logf(o Options, format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}
