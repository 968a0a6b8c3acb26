package bench

import (
	"context"
	"fmt"
)

// The systems of the in-process table, in the order they alternate.
var inProcess = []struct {
	name string
	// setup returns the Setup for an MTU, or the reason it does not apply.
	setup func(mtu int) (Setup, string)
	// conns says the system runs the connection workloads (crr, memory):
	// false for the Unix-domain socket, which the issue compares for rr
	// and bulk only.
	conns bool
}{
	{"ustack", func(mtu int) (Setup, string) { return UstackPipe(orDefault(mtu)), "" }, true},
	// The same over IPv6, for bulk and rr beside IPv4 in one run.
	{"ustack IPv6", func(mtu int) (Setup, string) { return UstackPipe6(orDefault(mtu)), "" }, false},
	{"gVisor", func(mtu int) (Setup, string) { return GVisorChannel(orDefault(mtu)), "" }, true},
	{"kernel TCP", func(mtu int) (Setup, string) {
		if mtu != 0 && mtu < BigMTU {
			return nil, fmt.Sprintf("loopback's MTU is %d", LoopbackMTU)
		}
		return KernelTCP(), ""
	}, true},
	{"kernel UDS", func(mtu int) (Setup, string) {
		if mtu != 0 && mtu < BigMTU {
			return nil, "no MTU: shown in the large-MTU row"
		}
		return KernelUnix(), ""
	}, false},
}

// DefaultMTU is the MTU of the in-memory links in the cases whose figures
// do not depend on it (rr, crr, memory).
const DefaultMTU = 1500

func orDefault(mtu int) int {
	if mtu == 0 {
		return DefaultMTU
	}
	return mtu
}

// LoopbackMTU is the MTU of the kernel's loopback device.
const LoopbackMTU = 65536

// BigMTU is the large MTU of the in-process cases: the largest IPv4
// packet, close to the loopback device's 65536.
const BigMTU = 65535

// cell makes a Cell that sets up a fresh Net, runs w on it and closes it.
func cell(setup Setup, show func([]Sample) string, w func(ctx context.Context, n Net, o Options) (Sample, error)) *Cell {
	return &Cell{
		Show: show,
		Run: func(ctx context.Context, o Options) (Sample, error) {
			n, err := setup(o)
			if err != nil {
				return nil, err
			}
			s, err := w(ctx, n, o)
			if cerr := n.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("close: %w", cerr)
			}
			return s, err
		},
	}
}

// notApplicable is a cell that is never run, only shows why: the column
// does not apply to the row on any machine.
func notApplicable(reason string) *Cell { return &Cell{na: reason} }

// InProcessTable is the table of issue 12: two stacks in one process for
// ustack and gVisor, the kernel's loopback TCP and a Unix-domain socket,
// with the targets beside the figures.
func InProcessTable() *Table {
	t := &Table{
		Title:  "In one process: ustack, gVisor netstack, the kernel",
		Corner: "case",
	}
	for _, s := range inProcess {
		t.Cols = append(t.Cols, s.name)
	}
	row := func(name, target string, mtu int, conns bool, show func([]Sample) string, w func(ctx context.Context, n Net, o Options) (Sample, error)) {
		r := &Row{Name: name, Target: target}
		for _, s := range inProcess {
			setup, why := s.setup(mtu)
			switch {
			case conns && !s.conns:
				r.Cells = append(r.Cells, nil)
			case setup == nil:
				r.Cells = append(r.Cells, notApplicable(why))
			default:
				r.Cells = append(r.Cells, cell(setup, show, w))
			}
		}
		t.Rows = append(t.Rows, r)
	}
	bulk := func(ctx context.Context, n Net, o Options) (Sample, error) { return Bulk(ctx, n, o, false) }
	row("bulk, MTU 1500", "≥ 5× gVisor", 1500, false, showBulk, bulk)
	row(fmt.Sprintf("bulk, MTU %d", BigMTU), "≥ 1.5× gVisor", BigMTU, false, showBulk, bulk)
	row("rr 64 B", "≥ 1.3× kernel TCP tx/s, p99 ≤ 2× kernel", 0, false, showRR, RR)
	for _, k := range []int{1, 8} {
		target := ""
		if k == 8 {
			target = "≥ 2× kernel"
		}
		row(fmt.Sprintf("crr, %d client%s", k, plural(k)), target, 0, true, showCRR,
			func(ctx context.Context, n Net, o Options) (Sample, error) { return CRR(ctx, n, o, k) })
	}
	row("idle memory per connection end, no goroutine", "(issue 13: ≤ 1 KiB)", 0, true, showMem,
		func(ctx context.Context, n Net, o Options) (Sample, error) { return Mem(ctx, n, o, MemNoReader) })
	row("idle memory per connection end, blocked reader", "(issue 13: ≤ 3 KiB)", 0, true, showMem,
		func(ctx context.Context, n Net, o Options) (Sample, error) { return Mem(ctx, n, o, MemBlockedReader) })
	cb := &Row{Name: "idle memory per connection end, callback API", Target: "(issue 13: ≤ 512 B)"}
	for _, s := range inProcess {
		setup, _ := s.setup(0)
		switch {
		case !s.conns:
			cb.Cells = append(cb.Cells, nil)
		case s.name != "ustack":
			cb.Cells = append(cb.Cells, notApplicable("no callback API"))
		default:
			cb.Cells = append(cb.Cells, cell(setup, showMem, MemCallback))
		}
	}
	t.Rows = append(t.Rows, cb)
	t.Notes = []string{
		"ustack: two stacks over `link/pipe` (Ethernet, " + itoa(PipeQueueLen) + "-frame queues, the pipe's default offloads: a veth's TSO and checksum offload); " +
			"ustack IPv6: the same over IPv6 (2001:db8::/64; DAD and router solicitation off, so that a measurement starts at once), for bulk and rr; " +
			"gVisor: two stacks over a channel link through `gonet` (Ethernet, SACK on, checksum offload claimed as loopback does); " +
			"kernel TCP: loopback (MTU 65536); kernel UDS: a Unix-domain stream socket.",
		"bulk: one connection, " + itoa(BulkWrite>>10) + " KiB writes, goodput to the receiver's EOF; CPU is the whole process's (getrusage), per GiB moved.",
		"rr, crr and memory: MTU " + itoa(DefaultMTU) + " for ustack and gVisor. rr: one connection, a 64-byte request and response at a time; latency of each transaction; CPU per transaction.",
		"crr: connect, 64-byte request, 64-byte response, close (client first); a server goroutine per connection; the client's ports are taken over from TIME-WAIT 1 s after their last timestamp (the kernel: tcp_tw_reuse on loopback; ustack: stack.Config.TimeWaitReuse), and ustack's client has the ports 1024–65535 (the kernel's default range, 28,232 ports, lasts less than a second at ustack's rate).",
		"memory: live heap + goroutine stacks after GC, per connection end (both ends are in this process); ustack's are measured once every connection end is parked (an idle connection parks a second after its last segment, tcp.Config.ParkIdle; the first pair's too, before the base), which the figure says; the kernel adds its slab growth (/proc/slabinfo, machine-wide). A measurement that sees no growth (something else freed memory meanwhile) is made again, up to three times. The callback row: ustack's ListenCallback and DialCallback, the program keeping each end's *CallbackConn.",
	}
	return t
}

func plural(k int) string {
	if k == 1 {
		return ""
	}
	return "s"
}

// Plan returns every table `make bench` measures.
func Plan() []*Table {
	return []*Table{InProcessTable(), DeviceTable(), UserModeTable(), WireGuardTable(), ScalingTable(), MillionTable(), FloodTable()}
}
