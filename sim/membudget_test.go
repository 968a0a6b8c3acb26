package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// memBudgetResult is what memBudgetRun saw.
type memBudgetResult struct {
	srv, cli *Node
	// maxAlloc and maxHeld are the largest account and held memory
	// sampled every millisecond; minWnd the smallest, over the samples
	// under pressure, of the largest window any connection had open.
	maxAlloc, maxHeld int64
	minWnd            uint32
	// done is when the last flow ended.
	done time.Duration
}

// memBudgetRun has nFlows clients send up bytes each to a server whose
// readers read little and pause often for the first slowFor, then keep up;
// mem is the server's tcp.Config.Mem.
func memBudgetRun(t *testing.T, mem tcp.MemLimits, nFlows int, up int64, slowFor time.Duration) (r memBudgetResult) {
	t.Helper()
	n := New(7)
	cfg := stack.Config{TCP: tcp.Config{Mem: mem, RcvBuf: 1 << 20}}
	srv := n.AddHost("S", cfg)
	cli := n.AddHost("C", stack.Config{})
	r.srv, r.cli = srv, cli
	link := impair.Config{Delay: 2 * time.Millisecond, Rate: 1_000_000_000, Queue: 2000}
	n.Link(cli.AddNIC(stack.NICConfig{}, "10.0.0.1/24"), srv.AddNIC(stack.NICConfig{}, "10.0.0.2/24"), link, link)
	apps := NewApps(n)
	dst := netip.MustParseAddrPort("10.0.0.2:80")
	if _, err := apps.Serve(srv, dst, ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	slow := Behavior{MaxRead: 2048, Pause: 0.5, MaxPause: 400 * time.Millisecond, PauseUntil: clock.Instant(slowFor)}
	for i := range nFlows {
		apps.Dial(clock.Instant(time.Duration(i)*time.Millisecond), cli, dst, FlowConfig{Up: up, Server: slow})
	}
	r.minWnd = ^uint32(0)
	var sample func()
	sample = func() {
		s := srv.Stack.TCPMemory()
		r.maxAlloc = max(r.maxAlloc, s.Allocated)
		r.maxHeld = max(r.maxHeld, srv.Stack.TCPMemHeld())
		if s.Pressure && n.Now()%clock.Instant(5*time.Millisecond) == 0 {
			// The largest window any connection has open.
			w := uint32(0)
			for _, c := range srv.Stack.Conns() {
				if c.Info.State == tcp.Established {
					w = max(w, c.Info.RcvWnd)
				}
			}
			r.minWnd = min(r.minWnd, w)
		}
		if !apps.Done() {
			n.After(time.Millisecond, sample)
		}
	}
	n.After(time.Millisecond, sample)
	if err := n.Run(time.Hour, apps.Done); err != nil {
		t.Fatal(err)
	}
	r.done = n.Time()
	for _, err := range apps.Check() {
		t.Error(err)
	}
	return r
}

// TestMemoryBudgetSlowReaders: 64 connections into a server whose readers
// are slow for 3 s (1 MiB receive buffers, 2 MB each; 16 and 1 MB under
// the race detector, with a 1 MiB budget): with a 4 MiB budget the server's account never exceeds High plus the stated slack
// (a forward-allocation quantum for its one Env, and for each connection
// the chunks a segment into an empty receive buffer may force: 2), the
// pressure shrinks windows to four segments, and every byte of every
// stream arrives intact once the readers resume; afterwards nothing is
// held (the leak check). Without the budget the same run holds several
// times as much.
func TestMemoryBudgetSlowReaders(t *testing.T) {
	nFlows, up := 64, int64(2_000_000)
	mem := tcp.MemLimits{Low: 2 << 20, Pressure: 3 << 20, High: 4 << 20}
	if raceEnabled {
		// The race detector slows the simulator tenfold: a quarter of
		// the connections, half the data, a quarter of the budget.
		nFlows, up = 16, 1_000_000
		mem = tcp.MemLimits{Low: 512 << 10, Pressure: 768 << 10, High: 1 << 20}
	}
	r := memBudgetRun(t, mem, nFlows, up, 3*time.Second)
	srv, maxAlloc, minWnd := r.srv, r.maxAlloc, r.minWnd
	s := srv.Stack.TCPMemory()
	st := srv.Stack.Stats().TCP
	t.Logf("budget %d/%d/%d: peak %d (held %d), pressure entries %d for %v, RcvQDrop %d, OFOPruned %d, largest open window under pressure down to %d; all done at %v, client retransmissions %d",
		mem.Low, mem.Pressure, mem.High, s.Peak, r.maxHeld, s.PressureEntries, s.TimeInPressure, st.RcvQDrop, st.OFOPruned, minWnd, r.done, r.cli.Stack.Stats().TCP.RetransSegs)
	slack := int64(64<<10) + int64(nFlows)*2*16<<10
	if s.Peak > mem.High+slack || maxAlloc > mem.High+slack {
		t.Errorf("account peaked at %d (sampled %d), above High %d + slack %d", s.Peak, maxAlloc, mem.High, slack)
	}
	if s.PressureEntries == 0 || s.TimeInPressure <= 0 || s.Pressure {
		t.Errorf("pressure not entered and left: %+v", s)
	}
	if minWnd > 4*1460+1024 {
		t.Errorf("under pressure the largest open window was never below %d, want four segments (plus the scale's rounding)", minWnd)
	}
	if h := srv.Stack.TCPMemHeld(); h != 0 {
		t.Errorf("%d bytes held after every flow ended", h)
	}
	free := memBudgetRun(t, tcp.MemLimits{High: -1}, nFlows, up, 3*time.Second)
	freeAlloc := free.srv.Stack.TCPMemory().Peak
	t.Logf("without a budget: peak %d (held %d); all done at %v, client retransmissions %d",
		freeAlloc, free.maxHeld, free.done, free.cli.Stack.Stats().TCP.RetransSegs)
	if freeAlloc < 2*mem.High {
		t.Errorf("without a budget the run peaked at %d: too little to test the budget (want > %d)", freeAlloc, 2*mem.High)
	}
}
