package interop

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/tcp/cc"
)

// The congestion-control comparisons of TestImpaired (issue 10): the
// stack's controllers beside the kernel's of the same name, each sending
// through the same `ustack netem` impairment, and flows of both sharing
// one rate-limited bottleneck.
//
// By default (`make test`) a smoke subset runs: one impairment with a
// small transfer, and two short shared-bottleneck runs. With
// USTACK_INTEROP_CC=full in the environment the whole matrix runs:
//
//	sudo USTACK_INTEROP_CC=full USTACK_INTEROP_RESULTS=/tmp/cc.md \
//	    go test -count=1 -v -timeout 60m -run 'TestImpaired/(controllers|shared)' ./interop

// ccFull reports whether the whole matrix is asked for.
func ccFull() bool { return os.Getenv("USTACK_INTEROP_CC") == "full" }

// ccCase is one impairment of the side-by-side comparison.
type ccCase struct {
	spec  string
	size  int64
	limit int
}

// ccCases are the side-by-side impairments: random loss, a rate limit
// with a queue of about one BDP (where the controllers' congestion
// response, not loss recovery, decides), and a long path with loss.
func ccCases() []ccCase {
	if !ccFull() {
		return []ccCase{{spec: "loss=1%", size: 8 * mib}}
	}
	return []ccCase{
		{spec: "loss=1%", size: 32 * mib},
		{spec: "loss=5%", size: 8 * mib},
		{spec: "rate=100mbit,delay=20ms,queue=400", size: 64 * mib, limit: 5000},
		{spec: "delay=50ms,loss=1%", size: 4 * mib, limit: 20000},
	}
}

// ccRow is one line of the side-by-side table.
type ccRow struct {
	c                ccCase
	name             string
	ustack, kernel   time.Duration // 0: failed or not run
	noUstack, noKern bool          // the side has no such controller
}

// sharedRow is one shared-bottleneck run.
type sharedRow struct {
	name    string
	spec    string
	flows   []sharedFlow
	jain    float64
	ustack  float64 // the stack's flows' share of the total
	kernel  float64
	total   float64 // bits per second, all flows
	failure string
}

var (
	ccRowsMu   sync.Mutex
	ccRows     []ccRow
	sharedRows []sharedRow
)

// kernelControllers returns the congestion controllers the kernel offers
// (net.ipv4.tcp_available_congestion_control: the same in every
// namespace).
func kernelControllers(t *testing.T) []string {
	t.Helper()
	out, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

// setNSCongestion makes name the namespace's default controller
// (net.ipv4.tcp_congestion_control). The sockets the tests open set it
// themselves too (TCP_CONGESTION), which root may whatever the host
// allows, so a refusal here is only logged.
func setNSCongestion(t *testing.T, ns *netns.NS, name string) {
	t.Helper()
	if err := ns.Sysctl("net.ipv4.tcp_congestion_control", name); err != nil {
		t.Logf("sysctl net.ipv4.tcp_congestion_control=%s in %s: %v (the sockets set it themselves)", name, ns.Name, err)
	}
}

// withCongestion returns a socket Control function that sets
// TCP_CONGESTION to name.
func withCongestion(name string) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("TCP_CONGESTION %s: %w", name, serr)
		}
		return nil
	}
}

// kernelDialCC connects from ns to addr with controller name.
func kernelDialCC(ns *netns.NS, addr, name string, timeout time.Duration) (*net.TCPConn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		d := net.Dialer{Timeout: timeout, Control: withCongestion(name)}
		var err error
		c, err = d.Dial("tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	if got, err := kernelCongestion(tc); err != nil || got != name {
		tc.Close()
		return nil, fmt.Errorf("the kernel's socket runs %q (%v), not %q", got, err, name)
	}
	return tc, nil
}

// kernelCongestion reads a kernel socket's TCP_CONGESTION.
func kernelCongestion(c *net.TCPConn) (string, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	var name string
	var serr error
	if err := rc.Control(func(fd uintptr) {
		name, serr = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	}); err != nil {
		return "", err
	}
	return strings.TrimRight(name, "\x00"), serr
}

// stackDialCC connects from the stack to addr with controller name.
func stackDialCC(s *ustack.Stack, addr, name string) (net.Conn, error) {
	c, err := s.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := c.(*ustack.TCPConn).SetCongestionControl(name); err != nil {
		c.Close()
		return nil, err
	}
	if got := c.(*ustack.TCPConn).CongestionControl(); got != name {
		c.Close()
		return nil, fmt.Errorf("the connection runs %q after SetCongestionControl(%q)", got, name)
	}
	return c, nil
}

// union returns the sorted names in a or b.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, n := range b {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// runControllers sends ccCase's transfer from the stack to the kernel
// with each of the stack's controllers, and from a kernel to the kernel
// with each of the kernel's, through the same impairment; netem restarts
// with the same seed before each transfer, so each sees the same
// sequence of impairment decisions.
func runControllers(t *testing.T, c ccCase) {
	const seed = 1
	timeout := 5 * time.Minute
	ic := impairCase{name: "cc", spec: c.spec, size: c.size, limit: c.limit}
	e := newEnv(t, chainLink, envConfig{noStack: true})
	ch := e.chain
	kernelCCs := kernelControllers(t)
	ustackCCs := cc.Names()
	names := union(ustackCCs, kernelCCs)
	rows := make([]ccRow, len(names))
	for i, n := range names {
		rows[i] = ccRow{c: c, name: n, noUstack: !slices.Contains(ustackCCs, n), noKern: !slices.Contains(kernelCCs, n)}
	}
	defer func() {
		ccRowsMu.Lock()
		ccRows = append(ccRows, rows...)
		ccRowsMu.Unlock()
	}()

	// 1. The stack sends, with each of its controllers.
	e.startStack(nil, ustack.Config{})
	kln := kernelListen(t, e.kernel, fmt.Sprintf("%v:5021", kernelAddr.Addr()))
	for i := range rows {
		r := &rows[i]
		if r.noUstack {
			continue
		}
		nm := startNetem(t, ch, ic, seed)
		before := e.s.Stats()
		d, err := sendOne(
			func() (net.Conn, error) { return stackDialCC(e.s, kln.Addr().String(), r.name) },
			func() (net.Conn, error) { return kln.Accept() },
			c.size, 21, timeout)
		if err != nil {
			t.Errorf("ustack %s -> kernel: %v", r.name, err)
		} else {
			r.ustack = d
		}
		st := e.s.Stats()
		t.Logf("ustack %s -> kernel, %s, %d MiB: %v; %d segments retransmitted, %d RTOs, %d recoveries\nnetem %s", r.name, c.spec, c.size/mib,
			d.Round(time.Millisecond), st.TCP.RetransSegs-before.TCP.RetransSegs, st.TCP.Timeouts-before.TCP.Timeouts, st.TCP.Recoveries-before.TCP.Recoveries, stopNetem(t, nm))
	}
	e.stopStack()

	// 2. A kernel sends to the kernel, with each of its controllers set
	// in its namespace and on the socket.
	if err := ch.DUT.IP("addr", "add", stackAddr.String(), "dev", ch.DUTIf); err != nil {
		t.Fatal(err)
	}
	if err := ch.Peer.IP("neigh", "flush", "dev", ch.PeerIf); err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		r := &rows[i]
		if r.noKern {
			continue
		}
		setNSCongestion(t, ch.DUT, r.name)
		nm := startNetem(t, ch, ic, seed)
		before := nstat(t, ch.DUT)
		d, err := sendOne(
			func() (net.Conn, error) { return kernelDialCC(ch.DUT, kln.Addr().String(), r.name, 30*time.Second) },
			func() (net.Conn, error) { return kln.Accept() },
			c.size, 22, timeout)
		if err != nil {
			t.Errorf("kernel %s -> kernel: %v", r.name, err)
		} else {
			r.kernel = d
		}
		t.Logf("kernel %s -> kernel, %s, %d MiB: %v; sender %v\nnetem %s", r.name, c.spec, c.size/mib, d.Round(time.Millisecond),
			delta(before, nstat(t, ch.DUT), kernelCounters...), stopNetem(t, nm))
	}
}

// sharedCase is one shared-bottleneck run: ustack flows with controller
// ustackCC and kernel flows with kernelCC, together through netem's rate
// limit.
type sharedCase struct {
	ustackN, kernelN   int
	ustackCC, kernelCC string
}

// id names the case's subtest: "ustack-reno-x1+kernel-cubic-x1".
func (c sharedCase) id() string {
	var parts []string
	if c.ustackN > 0 {
		parts = append(parts, fmt.Sprintf("ustack-%s-x%d", c.ustackCC, c.ustackN))
	}
	if c.kernelN > 0 {
		parts = append(parts, fmt.Sprintf("kernel-%s-x%d", c.kernelCC, c.kernelN))
	}
	return strings.Join(parts, "+")
}

// name describes the case in tables: "1 × ustack reno + 1 × kernel cubic".
func (c sharedCase) name() string {
	var parts []string
	if c.ustackN > 0 {
		parts = append(parts, fmt.Sprintf("%d × ustack %s", c.ustackN, c.ustackCC))
	}
	if c.kernelN > 0 {
		parts = append(parts, fmt.Sprintf("%d × kernel %s", c.kernelN, c.kernelCC))
	}
	return strings.Join(parts, " + ")
}

// sharedSetup is the bottleneck and timing of the shared runs.
type sharedSetup struct {
	spec           string
	warm, duration time.Duration
}

// sharedSetupFor returns the smoke or the full setup: a rate limit with
// 20 ms of RTT and a queue of about two BDPs.
func sharedSetupFor() sharedSetup {
	if ccFull() {
		return sharedSetup{spec: "rate=100mbit,delay=10ms,queue=330", warm: 10 * time.Second, duration: 40 * time.Second}
	}
	return sharedSetup{spec: "rate=20mbit,delay=10ms,queue=70", warm: 3 * time.Second, duration: 10 * time.Second}
}

// sharedCases returns the shared-bottleneck runs: the stack's default
// controller against kernel CUBIC (issue 10's target: Jain ≥ 0.9), eight
// stack flows (target: ≥ 0.95), and, with the full matrix, every pair of
// the stack's and the kernel's controllers and two kernel CUBIC flows as
// the reference.
func sharedCases(kernelCCs []string) []sharedCase {
	def := tcp.NewEnv(tcp.Config{}).Config().Congestion // the stack's default
	cases := []sharedCase{
		{ustackN: 1, ustackCC: def, kernelN: 1, kernelCC: "cubic"},
		{ustackN: 8, ustackCC: def},
	}
	if !ccFull() {
		return cases
	}
	cases = append(cases, sharedCase{kernelN: 2, kernelCC: "cubic"})
	for _, u := range cc.Names() {
		for _, k := range kernelCCs {
			if u == def && k == "cubic" {
				continue
			}
			cases = append(cases, sharedCase{ustackN: 1, ustackCC: u, kernelN: 1, kernelCC: k})
		}
	}
	return cases
}

// sharedFlow is one flow of a shared run.
type sharedFlow struct {
	ustack  bool
	cc      string
	goodput float64 // bits per second over the measured window
	err     error
}

// runShared runs the flows of c through one rate limit: the stack on the
// DUT's veth (10.77.0.2, AF_PACKET) and the kernel on the same veth
// (10.77.0.3), all sending to receivers in the peer namespace, which
// count what each flow delivers from setup.warm to setup.duration.
func runShared(t *testing.T, c sharedCase, setup sharedSetup) {
	const seed = 1
	row := sharedRow{name: c.name(), spec: setup.spec}
	defer func() {
		ccRowsMu.Lock()
		sharedRows = append(sharedRows, row)
		ccRowsMu.Unlock()
	}()
	fail := func(format string, args ...any) {
		row.failure = fmt.Sprintf(format, args...)
		t.Error(row.failure)
	}
	e := newEnv(t, chainLink, envConfig{noStack: true})
	ch := e.chain
	kernelSrc := "10.77.0.3/24"
	if err := ch.DUT.IP("addr", "add", kernelSrc, "dev", ch.DUTIf); err != nil {
		t.Fatal(err)
	}
	if c.kernelN > 0 {
		setNSCongestion(t, ch.DUT, c.kernelCC)
	}
	nm := startNetem(t, ch, impairCase{name: "shared", spec: setup.spec, limit: 5000}, seed)
	defer func() { t.Logf("netem %s", stopNetem(t, nm)) }()
	e.startStack(nil, ustack.Config{})
	ln := kernelListen(t, e.kernel, fmt.Sprintf("%v:5031", kernelAddr.Addr()))

	// Receivers: count each connection's bytes, by the sender's address.
	type counter struct{ n atomic.Int64 }
	var (
		cmu      sync.Mutex
		counters = map[string]*counter{}
		rwg      sync.WaitGroup
	)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			ctr := &counter{}
			cmu.Lock()
			counters[conn.RemoteAddr().String()] = ctr
			cmu.Unlock()
			rwg.Go(func() {
				defer conn.Close()
				buf := make([]byte, 256<<10)
				for {
					n, err := conn.Read(buf)
					ctr.n.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
		}
	}()

	// Senders: write until the end, then close.
	start := time.Now()
	end := start.Add(setup.duration)
	src := make([]byte, 256<<10)
	stream(31, int64(len(src))).Read(src)
	type sender struct {
		flow  sharedFlow
		local string
		conn  net.Conn
	}
	var senders []*sender
	dial := func(ustackSide bool, name string) {
		s := &sender{flow: sharedFlow{ustack: ustackSide, cc: name}}
		senders = append(senders, s)
		var err error
		if ustackSide {
			s.conn, err = stackDialCC(e.s, ln.Addr().String(), name)
		} else {
			s.conn, err = kernelDialCC(ch.DUT, ln.Addr().String(), name, 30*time.Second)
		}
		if err != nil {
			s.flow.err = err
			return
		}
		s.local = s.conn.LocalAddr().String()
	}
	for i := 0; i < max(c.ustackN, c.kernelN); i++ {
		if i < c.ustackN {
			dial(true, c.ustackCC)
		}
		if i < c.kernelN {
			dial(false, c.kernelCC)
		}
	}
	var swg sync.WaitGroup
	for _, s := range senders {
		if s.conn == nil {
			continue
		}
		swg.Go(func() {
			// At the end, reset rather than close: a close would first
			// deliver the megabytes still in the send buffer.
			defer s.conn.Close()
			defer s.conn.(interface{ SetLinger(int) error }).SetLinger(0)
			s.conn.SetWriteDeadline(end)
			for {
				if _, err := s.conn.Write(src); err != nil {
					if !isTimeout(err) {
						s.flow.err = err
					}
					return
				}
			}
		})
	}
	snapshot := func() map[string]int64 {
		m := map[string]int64{}
		cmu.Lock()
		defer cmu.Unlock()
		for k, v := range counters {
			m[k] = v.n.Load()
		}
		return m
	}
	time.Sleep(time.Until(start.Add(setup.warm)))
	atWarm, tWarm := snapshot(), time.Now()
	time.Sleep(time.Until(end.Add(-100 * time.Millisecond)))
	atEnd, tEnd := snapshot(), time.Now()
	swg.Wait()
	ln.Close()
	<-acceptDone
	rwg.Wait()

	span := tEnd.Sub(tWarm).Seconds()
	var total, us, ks float64
	var goodputs []float64
	for _, s := range senders {
		if s.flow.err != nil {
			fail("%s sender %s: %v", map[bool]string{true: "ustack", false: "kernel"}[s.flow.ustack], s.flow.cc, s.flow.err)
			continue
		}
		if _, ok := atEnd[s.local]; !ok {
			fail("no receiver counted the flow from %s", s.local)
			continue
		}
		s.flow.goodput = float64(atEnd[s.local]-atWarm[s.local]) * 8 / span
		goodputs = append(goodputs, s.flow.goodput)
		row.flows = append(row.flows, s.flow)
		total += s.flow.goodput
		if s.flow.ustack {
			us += s.flow.goodput
		} else {
			ks += s.flow.goodput
		}
	}
	row.total = total
	if total > 0 {
		row.ustack, row.kernel = us/total, ks/total
	}
	row.jain = jain(goodputs)
	st := e.s.Stats()
	t.Logf("%s through %s: %.1f Mbit/s in all, ustack %.0f %%, kernel %.0f %%, Jain %.3f; stack: %d retransmitted, %d RTOs",
		row.name, setup.spec, total/1e6, row.ustack*100, row.kernel*100, row.jain, st.TCP.RetransSegs, st.TCP.Timeouts)
	for _, f := range row.flows {
		t.Logf("  %s %s: %.2f Mbit/s", map[bool]string{true: "ustack", false: "kernel"}[f.ustack], f.cc, f.goodput/1e6)
	}
	if total == 0 {
		fail("nothing arrived")
	}
}

// jain is Jain's fairness index, (Σx)² / (n·Σx²).
func jain(xs []float64) float64 {
	var s, s2 float64
	for _, x := range xs {
		s += x
		s2 += x * x
	}
	if s2 == 0 {
		return 0
	}
	return s * s / (float64(len(xs)) * s2)
}

// ccTables formats the side-by-side and shared-bottleneck tables.
func ccTables() string {
	ccRowsMu.Lock()
	defer ccRowsMu.Unlock()
	var b strings.Builder
	cell := func(size int64, d time.Duration, missing bool) string {
		switch {
		case missing:
			return "no such controller"
		case d == 0:
			return "failed"
		}
		return fmt.Sprintf("%.2f s (%.0f Mbit/s)", d.Seconds(), mbps(size, d))
	}
	if len(ccRows) > 0 {
		fmt.Fprintf(&b, "\n| impairment (each direction) | size | controller | ustack → kernel | kernel → kernel | ustack ÷ kernel time |\n")
		fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- |\n")
		for _, r := range ccRows {
			ratio := "–"
			if r.ustack > 0 && r.kernel > 0 {
				ratio = fmt.Sprintf("%.2f", r.ustack.Seconds()/r.kernel.Seconds())
			}
			fmt.Fprintf(&b, "| `%s` | %d MiB | %s | %s | %s | %s |\n", r.c.spec, r.c.size/mib, r.name,
				cell(r.c.size, r.ustack, r.noUstack), cell(r.c.size, r.kernel, r.noKern), ratio)
		}
	}
	if len(sharedRows) > 0 {
		fmt.Fprintf(&b, "\n| flows | bottleneck | goodput per flow (Mbit/s) | ustack share | kernel share | Jain's index |\n")
		fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- |\n")
		for _, r := range sharedRows {
			if r.failure != "" {
				fmt.Fprintf(&b, "| %s | `%s` | failed: %s | | | |\n", r.name, r.spec, strings.ReplaceAll(r.failure, "|", "/"))
				continue
			}
			var gs []string
			for _, f := range r.flows {
				side := "kernel"
				if f.ustack {
					side = "ustack"
				}
				gs = append(gs, fmt.Sprintf("%s %s %.1f", side, f.cc, f.goodput/1e6))
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %.0f %% | %.0f %% | %.3f |\n", r.name, r.spec, strings.Join(gs, ", "), r.ustack*100, r.kernel*100, r.jain)
		}
	}
	return b.String()
}
