package bench

import (
	"context"
	"fmt"
	"runtime"

	"github.com/ustack/ustack/link/tap"
)

// scaleCores are the GOMAXPROCS settings of the scaling table: a stack
// made with ustack.New has that many shards (Config.Shards' default).
var scaleCores = []int{1, 2}

// UstackTAPQueues is UstackTAP with a multi-queue TAP device of one queue
// per shard (GOMAXPROCS at setup), so each shard has a reader of its own.
func UstackTAPQueues() Setup {
	return func(o Options) (Net, error) {
		ns, ep, err := tapKernelWith(func(netns string) tap.Config {
			c := TAPConfig(netns)
			c.Queues = runtime.GOMAXPROCS(0)
			return c
		})
		if err != nil {
			return nil, err
		}
		d := &devNet{kernel: kernelEnd{ns, devKernelIP}, nss: []*netns{ns}}
		if err := d.attach(ep); err != nil {
			d.Close()
			return nil, err
		}
		return d, nil
	}
}

// withCores runs a cell with GOMAXPROCS set to k for its setup and run,
// and set back after.
func withCores(k int, c *Cell) *Cell {
	run := c.Run
	c.Run = func(ctx context.Context, o Options) (Sample, error) {
		if runtime.NumCPU() < k {
			return nil, unsupported("%d CPUs, fewer than %d", runtime.NumCPU(), k)
		}
		prev := runtime.GOMAXPROCS(k)
		defer runtime.GOMAXPROCS(prev)
		return run(ctx, o)
	}
	return c
}

// ScalingTable is issue 13's scaling from one core to two: the same
// workloads with GOMAXPROCS 1 (one shard) and 2 (two shards, and on the
// TAP device two queues), in alternation within one run.
func ScalingTable() *Table {
	t := &Table{
		Title:  "Scaling: ustack on 1 and 2 cores (GOMAXPROCS; as many shards)",
		Corner: "case",
	}
	for _, k := range scaleCores {
		t.Cols = append(t.Cols, fmt.Sprintf("GOMAXPROCS=%d", k))
	}
	row := func(name string, setup Setup, show func([]Sample) string, w func(ctx context.Context, n Net, o Options) (Sample, error)) {
		r := &Row{Name: name}
		for _, k := range scaleCores {
			r.Cells = append(r.Cells, withCores(k, cell(setup, show, w)))
		}
		t.Rows = append(t.Rows, r)
	}
	crr8 := func(ctx context.Context, n Net, o Options) (Sample, error) { return CRR(ctx, n, o, 8) }
	bulk := func(ctx context.Context, n Net, o Options) (Sample, error) { return Bulk(ctx, n, o, false) }
	row("in process: crr, 8 clients", UstackPipe(DefaultMTU), showCRR, crr8)
	row("in process: bulk, MTU 1500", UstackPipe(DefaultMTU), showBulk, bulk)
	row("TAP, kernel clients: crr, 8 clients", UstackTAPQueues(), showCRR, crr8)
	row("TAP, kernel to ustack: bulk, MTU "+itoa(DeviceMTU), UstackTAPQueues(), showBulk, bulk)
	t.Notes = []string{
		"Each column sets GOMAXPROCS for the measurement, so a stack made in it has that many shards (ustack.Config.Shards' default), and the TAP device (multi-queue, link/tap Config.Queues) that many queues, each with a reader.",
		"In process: two stacks in this process over `link/pipe`, as in the first table (both stacks and the clients share the cores). TAP: the kernel in a namespace runs the clients (crr) or the sender (bulk) on the same cores.",
	}
	return t
}
