// Command bench measures ustack beside gVisor's netstack and the Linux
// kernel and prints the tables; -write puts them into BENCHMARKS.md.
//
//	cd bench && go run ./cmd/bench                      # 3 rounds, about 3 minutes
//	cd bench && go run ./cmd/bench -quick               # every case once, briefly
//	cd bench && go run ./cmd/bench -write ../BENCHMARKS.md
//	cd bench && go run ./cmd/bench -only 'rr|crr'       # cells whose table/row/column match
//
// As root it also measures ustack on a TAP device and an AF_PACKET socket
// against the kernel in network namespaces it creates and removes.
// `make bench` runs it with -write.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/ustack/ustack/bench"
)

func main() {
	quick := flag.Bool("quick", false, "a smoke run: every case once, briefly (overrides -rounds, -duration, -pairs unless given after it)")
	rounds := flag.Int("rounds", 0, "rounds per cell (default 3)")
	duration := flag.Duration("duration", 0, "length of one bulk, rr or crr measurement (default 1s)")
	pairs := flag.Int("pairs", 0, "established connections of the memory cases (default 10000)")
	conns := flag.Int("conns", 0, "connections of the million-connection table (default 1000000)")
	idle := flag.Duration("idle", 0, "idle window of the million-connection table (default 1m)")
	only := flag.String("only", "", "regexp: measure only the cells whose `table/row/column` match")
	write := flag.String("write", "", "replace the bench section of this Markdown file (BENCHMARKS.md) with the tables, unless a cell failed")
	note := flag.String("note", "", "a sentence to put above the tables (e.g. what else ran on the machine)")
	command := flag.String("command", "", "the command to record in the file (default: how this one was invoked)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	quiet := flag.Bool("q", false, "do not log each measurement to stderr")
	flag.Parse()

	o := bench.Full()
	if *quick {
		o = bench.Quick()
	}
	if *rounds > 0 {
		o.Rounds = *rounds
	}
	if *duration > 0 {
		o.Duration = *duration
	}
	if *pairs > 0 {
		o.Pairs = *pairs
	}
	if *conns > 0 {
		o.Conns = *conns
	}
	if *idle > 0 {
		o.Idle = *idle
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -only:", err)
			os.Exit(2)
		}
		o.Only = re
	}
	if !*quiet {
		o.Log = os.Stderr
	}
	if *command == "" {
		*command = "cd bench && go run ./cmd/bench " + strings.Join(os.Args[1:], " ")
	}
	if err := bench.RaiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: file limit:", err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
		defer pprof.StopCPUProfile()
	}

	// SIGINT and SIGTERM end the run early; namespaces and devices are
	// still removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := bench.ThisMachine()
	tables := bench.Plan()
	start := time.Now()
	failed := bench.Run(ctx, tables, o)
	bench.RemoveBuilt()
	took := time.Since(start)
	section := bench.Section(tables, o, m, strings.TrimSpace(*command), *note, took)
	fmt.Print(section)
	if *write != "" {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted; not writing", *write)
		} else if failed > 0 {
			fmt.Fprintf(os.Stderr, "bench: %d cell(s) failed; not writing %s (the tables above say why)\n", failed, *write)
		} else if err := bench.WriteSection(*write, bench.Heading, section); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			failed++
		} else {
			fmt.Fprintln(os.Stderr, "bench: wrote", *write)
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d cell(s) failed\n", failed)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
