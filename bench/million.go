package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link/pipe"
)

// Metrics of the million-connection workload.
const (
	MConns     = "conns"          // pairs established
	MSetup     = "setup s"        // time to establish them all
	MSetupCPU  = "setup cpu s"    // process CPU over the setup
	MRSS       = "rss MiB"        // VmRSS after setup (and a GC)
	MLive      = "live MiB"       // heap + stacks after GC, whole process
	MLiveEnd   = "live B/end"     // growth of heap + stacks per connection end
	MIdleCPU   = "idle cpu %core" // process CPU over the idle window, % of one core
	MProbes    = "probes/s"       // keep-alive probes sent per second in the window
	MIdleSpan  = "idle s"         // the idle window
	MBeforeRSS = "rss0 MiB"       // VmRSS before the stacks were made
	MPeakRSS   = "hwm MiB"        // VmHWM: the process's peak RSS so far
	MParkWait  = "park wait s"    // from the last connection open to all parked
	MUnparks   = "unparks/s"      // parked ends rebuilt per second in the idle window
	MParkedMin = "parked min"     // fewest ends parked at once in the idle window (sampled every second)
)

// MillionServerIPs is the number of server addresses of the million
// connections: with one client address and the client's ports
// 1024–65535 (64,512), 32 server addresses give 2.06 M 4-tuples for
// 1 M connections, so the client's port search (RFC 6056 Algorithm 3)
// finds a free port in a few probes all the way to the millionth; at 16
// addresses the last connections would need a free port in a range 97 %
// full.
const MillionServerIPs = 32

// millionDialWindow is how many handshakes the client keeps in flight:
// within the pipe's queues (PipeQueueLen frames each way) and the
// listener's SYN backlog, so that no SYN is dropped and retried a second
// later.
const millionDialWindow = 1024

// millionPair is two ustack stacks over link/pipe: the server with
// MillionServerIPs addresses 10.1.0.1…, the client 10.2.0.1 with the
// ports 1024–65535; both with keep-alive every ka.
type millionPair struct {
	server, client *ustack.Stack
	ips            []netip.Addr
}

func newMillionPair(ka time.Duration) (*millionPair, error) {
	a, b := pipe.New(pipe.Config{MTU: DefaultMTU, QueueLen: PipeQueueLen})
	cfg := ustack.Config{KeepAlive: ka, Shards: scaleShards}
	server, err := ustack.New(cfg)
	if err != nil {
		a.Close()
		b.Close()
		return nil, err
	}
	ccfg := cfg
	ccfg.EphemeralPorts = [2]uint16{1024, 65535}
	client, err := ustack.New(ccfg)
	if err != nil {
		server.Close()
		a.Close()
		b.Close()
		return nil, err
	}
	p := &millionPair{server: server, client: client}
	var addrs []netip.Prefix
	for i := range MillionServerIPs {
		ip := netip.AddrFrom4([4]byte{10, 1, 0, byte(1 + i)})
		p.ips = append(p.ips, ip)
		addrs = append(addrs, netip.PrefixFrom(ip, 8))
	}
	if _, err := server.AddNIC(a, ustack.NICConfig{Addrs: addrs}); err != nil {
		b.Close()
		p.Close()
		return nil, err
	}
	if _, err := client.AddNIC(b, ustack.NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.2.0.1/8")}}); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *millionPair) Close() error { return errors.Join(p.client.Close(), p.server.Close()) }

// opens is a Handler that counts the connections opened and fails on
// the first closed with an error; it keeps no reference to them (the
// stack does, as long as they are open).
type opens struct {
	ustack.NopHandler
	n      atomic.Int64
	mu     sync.Mutex
	failed error
	sig    chan struct{}
}

func (h *opens) OnOpen(c *ustack.CallbackConn) {
	h.n.Add(1)
	h.notify()
}

func (h *opens) OnClose(c *ustack.CallbackConn, err error) {
	h.mu.Lock()
	if h.failed == nil {
		h.failed = fmt.Errorf("connection %v–%v closed: %v", c.LocalAddr(), c.RemoteAddr(), err)
	}
	h.mu.Unlock()
	h.notify()
}

func (h *opens) notify() {
	select {
	case h.sig <- struct{}{}:
	default:
	}
}

func (h *opens) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

// Million establishes o.Conns idle connections between two stacks in
// this process through the callback API, with keep-alive every ka on
// every end, and reports the setup time, the process's RSS and live heap
// after it, and the CPU the process spends over o.Idle while the
// connections idle (keep-alive probes and answers, timers, the runtime).
// No connection may close before the end.
func Million(ctx context.Context, o Options, ka time.Duration) (Sample, error) {
	rss0, _ := procStatus("VmRSS:")
	base := liveBytes()
	p, err := newMillionPair(ka)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	srv := &opens{sig: make(chan struct{}, 1)}
	cli := &opens{sig: make(chan struct{}, 1)}
	ln, err := p.server.ListenCallback("tcp4", "0.0.0.0:7", srv)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	n := int64(o.Conns)
	start, cpuStart := time.Now(), cpuTime()
	stall := time.NewTimer(grace)
	defer stall.Stop()
	// waitUntil waits until both sides have opened at least k.
	waitUntil := func(k int64) error {
		for srv.n.Load() < k || cli.n.Load() < k {
			if err := errors.Join(srv.err(), cli.err()); err != nil {
				return err
			}
			select {
			case <-srv.sig:
			case <-cli.sig:
			case <-ctx.Done():
				return ctx.Err()
			case <-stall.C:
				return fmt.Errorf("stalled: %d/%d opened after %v", min(srv.n.Load(), cli.n.Load()), n, time.Since(start).Round(time.Millisecond))
			}
		}
		return nil
	}
	for i := int64(0); i < n; i++ {
		if i >= millionDialWindow {
			if err := waitUntil(i - millionDialWindow + 1); err != nil {
				return nil, err
			}
		}
		if i%4096 == 0 {
			stall.Reset(grace) // progress: the grace counts from here
		}
		dst := netip.AddrPortFrom(p.ips[i%MillionServerIPs], 7)
		if _, err := p.client.DialCallback(netip.AddrPort{}, dst, cli); err != nil {
			return nil, fmt.Errorf("dial %d: %w", i, err)
		}
	}
	if err := waitUntil(n); err != nil {
		return nil, err
	}
	setup, setupCPU := time.Since(start), cpuTime()-cpuStart
	// The figures are those of parked connections (an idle connection
	// parks a second after its last segment): wait for all of them.
	parkStart := time.Now()
	parked, err := waitParked(ctx, uint64(2*n), p.server, p.client)
	if err != nil {
		return nil, err
	}
	parkWait := time.Since(parkStart)
	// The collections first, then the release: what the last seconds'
	// parks left in the sync.Pools of parked Conns lives until the
	// second collection, and is garbage after it.
	live := liveBytes()
	debug.FreeOSMemory()
	rss, err := procStatus("VmRSS:")
	if err != nil {
		return nil, err
	}
	hwm, err := procStatus("VmHWM:")
	if err != nil {
		return nil, err
	}
	probes0 := p.server.Stats().TCP.KeepAliveProbes + p.client.Stats().TCP.KeepAliveProbes
	unparks0 := p.server.Stats().TCP.Unparks + p.client.Stats().TCP.Unparks
	cpu0, t0 := cpuTime(), time.Now()
	// The fewest ends parked at once, sampled: keep-alive unparks ends
	// in bursts (those set up together probe together). An unparked end
	// stays so for at least ParkIdle (a second), so a sample a second
	// sees every burst; more often, the samples (Stats reads every
	// shard's counters) would show in the idle CPU they sit in (at
	// 100 ms, 0.236 % of a core against 0.026 % at a second, 200,000
	// pairs idle for 20 s).
	parkedMin := uint64(2 * n)
	end := time.After(o.Idle)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-end:
			break wait
		case <-tick.C:
			parkedMin = min(parkedMin, p.server.Stats().TCP.Parked+p.client.Stats().TCP.Parked)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cpu, span := cpuTime()-cpu0, time.Since(t0)
	probes := p.server.Stats().TCP.KeepAliveProbes + p.client.Stats().TCP.KeepAliveProbes - probes0
	unparks := p.server.Stats().TCP.Unparks + p.client.Stats().TCP.Unparks - unparks0
	if err := errors.Join(srv.err(), cli.err()); err != nil {
		return nil, err
	}
	if s, c := p.server.Stats().TCP.CurrEstab, p.client.Stats().TCP.CurrEstab; s != uint64(n) || c != uint64(n) {
		return nil, fmt.Errorf("after the idle window: %d and %d established, want %d", s, c, n)
	}
	return Sample{
		MConns:     float64(n),
		MSetup:     setup.Seconds(),
		MSetupCPU:  setupCPU.Seconds(),
		MRSS:       float64(rss) / (1 << 20),
		MBeforeRSS: float64(rss0) / (1 << 20),
		MPeakRSS:   float64(hwm) / (1 << 20),
		MLive:      float64(live) / (1 << 20),
		MLiveEnd:   (float64(live) - float64(base)) / float64(2*n),
		MIdleCPU:   100 * cpu.Seconds() / span.Seconds(),
		MProbes:    float64(probes) / span.Seconds(),
		MUnparks:   float64(unparks) / span.Seconds(),
		MParkedMin: float64(parkedMin),
		MIdleSpan:  span.Seconds(),
		MParked:    float64(parked),
		MParkWait:  parkWait.Seconds(),
	}, nil
}

// procStatus returns a size field of /proc/self/status (VmRSS:, the
// resident set; VmHWM:, its peak) in bytes.
func procStatus(field string) (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

func showMillion(ss []Sample) string {
	return fmt.Sprintf("%s pairs: setup %s s (CPU %s s); %s ends parked %s s later; RSS %s MiB, peak %s (live heap %s MiB, %s B/end); idle CPU %s %% of a core (%s probes/s, %s unparks/s over %s s; at least %s ends parked throughout)",
		bytesInt(ss[0][MConns]), show(ss, MSetup, sig), show(ss, MSetupCPU, sig), bytesInt(ss[0][MParked]), show(ss, MParkWait, sig),
		show(ss, MRSS, sig), show(ss, MPeakRSS, sig), show(ss, MLive, sig), show(ss, MLiveEnd, bytesInt),
		show(ss, MIdleCPU, sig), show(ss, MProbes, sig), show(ss, MUnparks, sig), show(ss, MIdleSpan, sig), bytesInt(ss[0][MParkedMin]))
}

// MillionTable is issue 13's million connections: two ustack stacks in one
// process, every connection idle with keep-alive at the kernel's timing
// and at package net's.
func MillionTable() *Table {
	t := &Table{
		Title:    "Many idle connections: two ustack stacks in one process, the callback API",
		Corner:   "keep-alive",
		Cols:     []string{"ustack"},
		OneRound: true,
	}
	for _, r := range []struct {
		name  string
		ka    time.Duration
		tenth bool
	}{
		{"every 2 h (the kernel's tcp_keepalive_time)", 2 * time.Hour, false},
		{"every 15 s (package net's default), a tenth of the connections", 15 * time.Second, true},
	} {
		ka, tenth := r.ka, r.tenth
		t.Rows = append(t.Rows, &Row{
			Name:   r.name,
			Target: "(issue 13, at 1 M: RSS < 1.5 GiB, setup < 1 min, keep-alive < 5 % of a core)",
			Cells: []*Cell{{
				Show: showMillion,
				Run: func(ctx context.Context, o Options) (Sample, error) {
					runtime.GC()
					if tenth {
						o.Conns = max(o.Conns/10, 100)
					}
					return Million(ctx, o, ka)
				},
			}},
		})
	}
	t.Notes = []string{
		"ustack.ListenCallback and DialCallback over `link/pipe` (" + itoa(PipeQueueLen) + "-frame queues), each stack with its default shards (ustack.Config.Shards: GOMAXPROCS); the server has " + itoa(MillionServerIPs) + " addresses, the client one address and the ports 1024–65535; " + itoa(millionDialWindow) + " handshakes in flight at a time. Keep-alive (ustack.Config.KeepAlive) on both ends: idle time and interval as the row says.",
		"setup: first dial to the last connection open on both sides (wall clock, and the process's CPU in it: on a loaded machine the CPU is the figure that carries over). Then the run waits until every connection end is parked (an idle connection parks a second after its last segment: tcp.Config.ParkIdle), and says how long that took. RSS: VmRSS after that, two GCs and debug.FreeOSMemory, and peak: VmHWM, the process's highest RSS so far (GOGC at its default, 100, and no memory limit: the heap may grow to twice the live data between collections while the connections are made); live heap: heap + goroutine stacks after GC (the whole process); B/end: its growth per connection end. Idle CPU: getrusage of the whole process over the idle window, as % of one core; probes/s: keep-alive probes both stacks sent in it; unparks/s: parked ends rebuilt in it (keep-alive is done by the parked records themselves, both ways: none); parked throughout: the fewest ends parked at once, sampled every second (within the idle CPU figure).",
		"Keep-alive every 15 s runs a tenth of the connections: each end then sends a probe every 15 s and the other answers it (a probe does not count as hearing from the peer, as in Linux), so the probes of the connections already open compete with the handshakes of the rest (at a million, on the 2-CPU machine under a load average of 25, setup stalled at 376 k); the CPU is proportional to the probes per second, shown beside it.",
		"One round (the table's cells are not repeated: each takes minutes at a million).",
	}
	return t
}
