package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/internal/flood"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/wire"
)

// Floods (issue 13 item 6): a server stack S and a client stack C over
// link/pipe, in this process, and package internal/flood writing spoofed
// frames into C's side of the pipe beside C's own (an Injector), as fast
// as it can or at a set rate. S reads its side from its own reader
// goroutine (flood.Queued), so a flood queues in the pipe's receive
// queue as in a NIC's ring, and S sheds what it cannot take
// (ustack.NICStats.RxSYNShed).
//
// Metric names of the flood samples.
const (
	MFloodOffered  = "offered SYN/s"
	MFloodAnswered = "cookies/s"        // SYNs S answered with a SYN cookie a second
	MFloodOnWire   = "to spoofed/s"     // frames S sent to spoofed addresses a second, seen on the link (SYN-ACKs, ARP requests)
	MFloodShed     = "shed SYN/s"       // SYNs S's reader dropped before the lock
	MFloodRing     = "ring drops/s"     // frames the pipe's queue to S dropped (full), flood and real alike
	MFloodRatio    = "throughput ratio" // the connections' bytes with the flood over without
	MFloodBase     = "base Mbit/s"      // the connections' throughput without the flood
	MFloodConnOK   = "connect success"  // fraction of real clients' dials that connected
	MFloodConnP50  = "connect p50 ms"
	MFloodConnMax  = "connect max ms"
	MFloodConns    = "connections"
	MNsPerSeg      = "ns/segment"
	MCPUNsPerSeg   = "CPU ns/segment"
	MSegs          = "segments"
)

var (
	floodSrvMAC = wire.MAC{2, 0, 0, 0, 0xf1, 1}
	floodCliMAC = wire.MAC{2, 0, 0, 0, 0xf1, 2}
	floodSrv    = netip.MustParseAddrPort("10.0.0.1:80")
	floodOut    = netip.MustParsePrefix("198.18.0.0/15") // RFC 2544's benchmark range: off the link
	floodIn     = netip.MustParsePrefix("10.0.0.128/26") // on the link, nobody's
)

// floodPair is S and C.
type floodPair struct {
	s, c     *ustack.Stack
	nic      *ustack.NIC
	in       *flood.Injector
	ea, eb   *pipe.Endpoint
	ln       *ustack.Listener
	accepted chan net.Conn
	wg       sync.WaitGroup
}

// newFloodPair makes S (10.0.0.1, listening on port 80) and C (10.0.0.2,
// and 10.0.0.254, S's gateway to the spoofed sources off the link). With
// queued, S reads its link from its reader goroutine only; otherwise the
// pipe may deliver in the writer's goroutine (link.Receiver), which
// makes a writer's WriteBatch time S's input.
func newFloodPair(queued bool) (*floodPair, error) {
	p := &floodPair{accepted: make(chan net.Conn, 4096)}
	p.ea, p.eb = pipe.New(pipe.Config{QueueLen: 4096})
	var err error
	if p.s, err = ustack.New(ustack.Config{}); err != nil {
		return nil, err
	}
	if p.c, err = ustack.New(ustack.Config{}); err != nil {
		p.s.Close()
		return nil, err
	}
	var sep link.Endpoint = p.ea
	if queued {
		sep = flood.Queued(p.ea)
	}
	if p.nic, err = p.s.AddNIC(sep, ustack.NICConfig{MAC: net.HardwareAddr(floodSrvMAC[:]), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
		p.Close()
		return nil, err
	}
	p.in = flood.NewInjector(p.eb, floodOut, floodIn)
	if _, err = p.c.AddNIC(p.in, ustack.NICConfig{MAC: net.HardwareAddr(floodCliMAC[:]),
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("10.0.0.254/24")}}); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.s.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.0.0.254"), p.nic); err != nil {
		p.Close()
		return nil, err
	}
	if p.ln, err = p.s.ListenTCPAddrPort(floodSrv, 0); err != nil {
		p.Close()
		return nil, err
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.accepted <- c
		}
	}()
	return p, nil
}

// Close closes both stacks and waits for the accept loop.
func (p *floodPair) Close() {
	if p.ln != nil {
		p.ln.Close()
	}
	p.s.Close()
	p.c.Close()
	p.ea.Close()
	p.eb.Close()
	p.wg.Wait()
}

// gen returns a generator of kind k aimed at S.
func (p *floodPair) gen(k flood.Kind, targets []flood.Target) *flood.Gen {
	return flood.New(flood.Config{Kind: k, DstMAC: floodSrvMAC, SrcMAC: floodCliMAC, Dst: floodSrv,
		Sources: []netip.Prefix{floodOut, floodIn}, Targets: targets, Seed: uint64(time.Now().UnixNano())})
}

// dialN opens n connections from C to S and returns both ends of each.
func (p *floodPair) dialN(ctx context.Context, n int) (cli, srv []net.Conn, err error) {
	for range n {
		c, err := p.c.DialContext(ctx, "tcp", floodSrv.String())
		if err != nil {
			return cli, srv, err
		}
		cli = append(cli, c)
		select {
		case s := <-p.accepted:
			srv = append(srv, s)
		case <-ctx.Done():
			return cli, srv, ctx.Err()
		}
	}
	return cli, srv, nil
}

// floodConns and floodRate are the established connections of the SYN
// flood measurement and each one's sending rate: 1,000 × 64 KiB/s is
// 537 Mbit/s, within what the two stacks move on one of the machine's
// two cores, so that what the flood takes from them shows.
const (
	floodConns = 1000
	floodRate  = 64 << 10
	// floodSYNRate is the SYN flood's offer, a second: the generator is
	// paced to it (and reports what it achieved) rather than left to
	// spin, which on two cores would take one of them whole from the
	// stacks whatever they shed.
	floodSYNRate = 1_200_000
)

// SYNFlood measures S under a spoofed SYN flood offered at floodSYNRate,
// while floodConns connections from C upload at
// floodRate each and a real client of C dials every 10 ms: the
// connections' throughput with the flood over without it (the same
// connections, the halves of one run), what the flood offered and what
// became of it, and how the real clients fared.
func SYNFlood(ctx context.Context, o Options) (Sample, error) {
	p, err := newFloodPair(true)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	nconn, rate := floodConns, float64(floodSYNRate)
	if o.Duration < 500*time.Millisecond {
		// A smoke run (-quick, and the tests under the race detector,
		// which slows the stacks several times): a tenth of the scale.
		nconn, rate = floodConns/10, floodSYNRate/10
	}
	cli, srv, err := p.dialN(ctx, nconn)
	defer func() {
		for _, c := range append(cli, srv...) {
			c.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	var got atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range cli {
		wg.Add(2)
		go func(c net.Conn) { // the sender: floodRate, in 4 KiB writes
			defer wg.Done()
			buf := make([]byte, 4096)
			every := time.Duration(float64(time.Second) * float64(len(buf)) / floodRate)
			next := time.Now().Add(time.Duration(i) * every / time.Duration(nconn))
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Until(next)):
				}
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write(buf); err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
					return
				}
				next = next.Add(every)
				if time.Until(next) < -4*every {
					// Behind by more than four writes: do not burst to
					// catch up (a burst after a stall would make one
					// window's throughput exceed the rate).
					next = time.Now()
				}
			}
		}(cli[i])
		go func(c net.Conn) {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				got.Add(int64(n))
				if err != nil {
					return
				}
			}
		}(srv[i])
	}
	defer func() {
		close(stop)
		for _, c := range append(cli, srv...) {
			c.Close()
		}
		wg.Wait()
	}()
	d := max(o.Duration, 500*time.Millisecond)
	// Warm up, then the connections alone, then with the flood.
	time.Sleep(d / 2)
	b0, bt := got.Load(), time.Now()
	time.Sleep(d)
	base := got.Load() - b0
	bel := time.Since(bt).Seconds()

	var (
		cmu   sync.Mutex
		lat   []time.Duration
		tries atomic.Int64
	)
	fstop := make(chan struct{})
	var fres flood.Result
	var fwg sync.WaitGroup
	fwg.Add(2)
	go func() {
		defer fwg.Done()
		fres = p.in.Flood(p.gen(flood.SYN, nil), fstop, 64, 0, rate)
	}()
	go func() { // real clients: a dial every 10 ms, each in its own goroutine
		defer fwg.Done()
		var dwg sync.WaitGroup
		defer dwg.Wait()
		for {
			select {
			case <-fstop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			tries.Add(1)
			dwg.Add(1)
			go func() {
				defer dwg.Done()
				t0 := time.Now()
				dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				c, err := p.c.DialContext(dctx, "tcp", floodSrv.String())
				cancel()
				if err == nil {
					cmu.Lock()
					lat = append(lat, time.Since(t0))
					cmu.Unlock()
					c.Close()
				}
			}()
		}
	}()
	time.Sleep(d / 4) // the flood takes hold (the SYN queue fills, cookies begin)
	st0, shed0, ring0, ans0 := p.s.Stats().TCP, p.nic.Stats().RxSYNShed, p.eb.Stats().TxQueueFull, p.in.Answered()
	f0 := got.Load()
	t0 := time.Now()
	time.Sleep(d)
	flooded := got.Load() - f0
	el := time.Since(t0).Seconds()
	st1, shed1, ring1, ans1 := p.s.Stats().TCP, p.nic.Stats().RxSYNShed, p.eb.Stats().TxQueueFull, p.in.Answered()
	close(fstop)
	fwg.Wait()
	if base == 0 {
		return nil, fmt.Errorf("the connections moved nothing without the flood")
	}
	s := Sample{
		MFloodOffered:  fres.Rate(),
		MFloodAnswered: float64(st1.SyncookiesSent-st0.SyncookiesSent) / el,
		MFloodOnWire:   float64(ans1-ans0) / el,
		MFloodShed:     float64(shed1-shed0) / el,
		MFloodRing:     float64(ring1-ring0) / el,
		MFloodRatio:    (float64(flooded) / el) / (float64(base) / bel),
		MFloodBase:     float64(base) * 8 / bel / 1e6,
		MFloodConns:    float64(nconn),
	}
	if n := tries.Load(); n > 0 {
		s[MFloodConnOK] = float64(len(lat)) / float64(n)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		s[MFloodConnP50] = float64(lat[len(lat)/2]) / float64(time.Millisecond)
		s[MFloodConnMax] = float64(lat[len(lat)-1]) / float64(time.Millisecond)
	}
	return s, nil
}

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// FloodCost measures what one flood segment of kind k costs S through
// the whole runtime (the shard lock, the core, the output to the link):
// the generator is the only writer of the pipe and S takes its frames in
// the generator's goroutine (link.Receiver), so the time of each
// WriteBatch is the time S spent on its 64 frames; the generator's own
// cost (measured alone first) is taken off. The process's CPU time a
// segment, less the generator's, is the figure shown first: on a busy
// machine the wall time counts the moments the goroutine waited for a
// core, the CPU time does not; it adds what C's side does with S's
// answers (filtering those to spoofed sources, the challenge ACKs). Targets, for the kinds that need them, are
// 100 idle established connections of C's; SACK blocks at an idle
// connection fail validation (nothing is in flight), so the scoreboard's
// work with data in flight is left to stack's BenchmarkFlood/SACK and
// tcp's TestSACKFloodWork.
func FloodCost(ctx context.Context, o Options, k flood.Kind, targeted bool) (Sample, error) {
	p, err := newFloodPair(false)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var targets []flood.Target
	if targeted {
		cli, srv, err := p.dialN(ctx, 100)
		defer func() {
			for _, c := range append(cli, srv...) {
				c.Close()
			}
		}()
		if err != nil {
			return nil, err
		}
		for _, c := range srv {
			tc := c.(*ustack.TCPConn)
			i := tc.Info()
			targets = append(targets, flood.Target{Local: tc.LocalAddrPort(), Remote: tc.RemoteAddrPort(),
				RcvNxt: i.RcvNxt, RcvWnd: i.RcvWnd, SndUna: i.SndUna, SndNxt: i.SndMax})
		}
	}
	if k == flood.ACK && !targeted {
		// The listener checks ACKs as cookies once it has sent some.
		p.in.Flood(p.gen(flood.SYN, nil), nil, 64, 2000, 0)
	}
	g := p.gen(k, targets)
	// The generator alone.
	buf := make([]byte, flood.FrameLen)
	const genN = 200_000
	t0, g0 := time.Now(), cpuTime()
	for range genN {
		g.Frame(buf)
	}
	genNs := float64(time.Since(t0).Nanoseconds()) / genN
	genCPU := float64((cpuTime() - g0).Nanoseconds()) / genN
	stop := make(chan struct{})
	time.AfterFunc(max(o.Duration, 300*time.Millisecond), func() { close(stop) })
	c0 := cpuTime()
	r := p.in.Flood(g, stop, 64, 0, 0)
	cpu := cpuTime() - c0
	if r.Offered == 0 {
		return nil, fmt.Errorf("nothing offered")
	}
	ns := float64(r.Elapsed.Nanoseconds())/float64(r.Offered) - genNs
	cpuNs := float64(cpu.Nanoseconds())/float64(r.Offered) - genCPU
	return Sample{MNsPerSeg: ns, MCPUNsPerSeg: cpuNs, MSegs: float64(r.Offered)}, nil
}

func showSYNFlood(ss []Sample) string {
	m := func(x float64) string { return sig(x/1e6) + " M" }
	k := func(x float64) string { return sig(x/1e3) + " k" }
	pct := func(x float64) string { return sig(100*x) + " %" }
	ms := func(x float64) string { return sig(x) + " ms" }
	return fmt.Sprintf("offered %s SYN/s; cookies %s/s, shed %s/s, ring drops %s/s; %s connections at %s Mbit/s keep %s; clients: %s connect, p50 %s, max %s",
		show(ss, MFloodOffered, m), show(ss, MFloodAnswered, k), show(ss, MFloodShed, k), show(ss, MFloodRing, k),
		show(ss, MFloodConns, func(x float64) string { return fmt.Sprint(int(x)) }), show(ss, MFloodBase, sig), show(ss, MFloodRatio, pct),
		show(ss, MFloodConnOK, pct), show(ss, MFloodConnP50, ms), show(ss, MFloodConnMax, ms))
}

func showFloodCost(ss []Sample) string {
	return show(ss, MCPUNsPerSeg, sig) + " ns CPU (" + show(ss, MNsPerSeg, sig) + " ns wall)"
}

// FloodTable is issue 13 item 6: ustack under floods, in process.
func FloodTable() *Table {
	t := &Table{
		Title:  "Floods: ustack in process (link/pipe), a generator writing spoofed segments into the link",
		Corner: "case",
		Cols:   []string{"ustack, one shard"},
	}
	t.Rows = append(t.Rows, &Row{Name: fmt.Sprintf("SYN flood paced at %.1f M/s, %d connections at %d KiB/s each", floodSYNRate/1e6, floodConns, floodRate>>10),
		Cells: []*Cell{{Run: SYNFlood, Show: showSYNFlood}}})
	for _, c := range []struct {
		name     string
		k        flood.Kind
		targeted bool
	}{
		{"ns per segment: SYN (answered with a cookie)", flood.SYN, false},
		{"ns per segment: ACK for no connection (checked as a cookie, RST)", flood.ACK, false},
		{"ns per segment: ACK near a connection's window (100 connections)", flood.ACK, true},
		{"ns per segment: RST in window (challenge ACK, rate limited)", flood.RST, true},
		{"ns per segment: ACK with 3 bogus SACK blocks (100 idle connections)", flood.SACK, true},
	} {
		t.Rows = append(t.Rows, &Row{Name: c.name, Cells: []*Cell{{
			Run:  func(ctx context.Context, o Options) (Sample, error) { return FloodCost(ctx, o, c.k, c.targeted) },
			Show: showFloodCost,
		}}})
	}
	t.Notes = []string{
		"SYN flood: the generator (package internal/flood) offers spoofed SYNs (half from 198.18.0.0/15 off the link, half from unanswered addresses on it) at 1.2 M/s (paced in bursts of up to 2048 every 100 µs or more; the offered figure is what it achieved), into the link beside the client stack's frames; the server reads its link from its reader goroutine, the link's queue holding 4096 frames as a NIC's ring. Cookies: SYNs the server answered with a SYN cookie (Stats().TCP.SyncookiesSent); shed: SYNs the server's reader dropped before the lock (ustack.NICStats.RxSYNShed); ring drops: frames of any kind the full queue dropped. The connections send at a fixed rate each, so that the ratio shows what the flood takes from them rather than what the generator's core takes from the machine; real clients dial every 10 ms with a 5 s timeout. A smoke run (-quick) floods a tenth: 100 connections, 120 k SYN/s.",
		"ns per segment: what each flood segment costs through the runtime (shard lock, core, output): the process's CPU time over the segments offered, less the generator's own CPU a frame (measured alone), and in brackets the wall time of the generator's writes, in whose goroutine the pipe delivers into the server (it counts waits for a core on a busy machine).",
		"Issue 13 asks for at least 1 M SYN/s offered while the connections keep at least 90 % of their throughput and real clients keep connecting.",
	}
	return t
}
