package bench

import (
	"context"
	"fmt"
	"github.com/ustack/ustack"
	"runtime"

	"github.com/ustack/ustack/link/tap"
)

// scaleCols are the columns of the scaling table: GOMAXPROCS, and the
// shards (0: Config.Shards' default, as many as GOMAXPROCS). The middle
// column tells what the second core does from what the second shard does.
var scaleCols = []struct{ cores, shards int }{{1, 0}, {2, 1}, {2, ustack.ShardsPerCPU}}

// scaleShards is the shard count the bench's ustack stacks are made with
// (0: the default); the scaling table's cells set it while they run.
var scaleShards int

// UstackTAPQueues is UstackTAP with a multi-queue TAP device of one queue
// per shard (GOMAXPROCS at setup), so each shard has a reader of its own.
func UstackTAPQueues() Setup {
	return func(o Options) (Net, error) {
		ns, ep, err := tapKernelWith(func(netns string) tap.Config {
			c := TAPConfig(netns)
			c.Queues = 1
			switch {
			case scaleShards > 0:
				c.Queues = scaleShards
			default: // the default, and ShardsPerCPU: a shard per CPU
				c.Queues = runtime.GOMAXPROCS(0)
			}
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

// withCores runs a cell with GOMAXPROCS set to k and the stacks made with
// shards shards (0: the default) for its setup and run, and sets both
// back after.
func withCores(k, shards int, c *Cell) *Cell {
	run := c.Run
	c.Run = func(ctx context.Context, o Options) (Sample, error) {
		if runtime.NumCPU() < k {
			return nil, unsupported("%d CPUs, fewer than %d", runtime.NumCPU(), k)
		}
		prev := runtime.GOMAXPROCS(k)
		scaleShards = shards
		defer func() {
			runtime.GOMAXPROCS(prev)
			scaleShards = 0
		}()
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
	for _, c := range scaleCols {
		name := fmt.Sprintf("GOMAXPROCS=%d", c.cores)
		switch {
		case c.shards > 0:
			name += fmt.Sprintf(", %d shard%s", c.shards, plural(c.shards))
		case c.shards == ustack.ShardsPerCPU:
			name += ", a shard per CPU"
		}
		t.Cols = append(t.Cols, name)
	}
	row := func(name string, setup Setup, show func([]Sample) string, w func(ctx context.Context, n Net, o Options) (Sample, error)) {
		r := &Row{Name: name}
		for _, c := range scaleCols {
			r.Cells = append(r.Cells, withCores(c.cores, c.shards, cell(setup, show, w)))
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
		"Each column sets GOMAXPROCS for the measurement; the stacks have a shard per CPU (ustack.Config.Shards' default: as many as GOMAXPROCS, which ustack.ShardsPerCPU names too) unless the column names a count, and the TAP device (multi-queue, link/tap Config.Queues) one queue per shard, each with a reader.",
		"In process: two stacks in this process over `link/pipe`, as in the first table (both stacks and the clients share the cores). TAP: the kernel in a namespace runs the clients (crr) or the sender (bulk) on the same cores.",
	}
	return t
}
