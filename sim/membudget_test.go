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

// memBudgetRun has nFlows clients send up bytes each to a server whose
// readers read little and pause often for the first slowFor, then keep up;
// mem is the server's tcp.Config.Mem. It returns the network, the apps,
// and the largest account and held memory sampled every millisecond.
func memBudgetRun(t *testing.T, mem tcp.MemLimits, nFlows int, up int64, slowFor time.Duration) (srv *Node, apps *Apps, maxAlloc, maxHeld int64, minWnd uint32) {
	t.Helper()
	n := New(7)
	cfg := stack.Config{TCP: tcp.Config{Mem: mem, RcvBuf: 1 << 20}}
	srv = n.AddHost("S", cfg)
	cli := n.AddHost("C", stack.Config{})
	link := impair.Config{Delay: 2 * time.Millisecond, Rate: 1_000_000_000, Queue: 2000}
	n.Link(cli.AddNIC(stack.NICConfig{}, "10.0.0.1/24"), srv.AddNIC(stack.NICConfig{}, "10.0.0.2/24"), link, link)
	apps = NewApps(n)
	dst := netip.MustParseAddrPort("10.0.0.2:80")
	if _, err := apps.Serve(srv, dst, ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	slow := Behavior{MaxRead: 2048, Pause: 0.5, MaxPause: 400 * time.Millisecond, PauseUntil: clock.Instant(slowFor)}
	for i := range nFlows {
		apps.Dial(clock.Instant(time.Duration(i)*time.Millisecond), cli, dst, FlowConfig{Up: up, Server: slow})
	}
	minWnd = ^uint32(0)
	var sample func()
	sample = func() {
		s := srv.Stack.TCPMemory()
		maxAlloc = max(maxAlloc, s.Allocated)
		maxHeld = max(maxHeld, srv.Stack.TCPMemHeld())
		if s.Pressure {
			// The largest window any connection has open.
			w := uint32(0)
			for _, c := range srv.Stack.Conns() {
				if c.Info.State == tcp.Established {
					w = max(w, c.Info.RcvWnd)
				}
			}
			minWnd = min(minWnd, w)
		}
		if !apps.Done() {
			n.After(time.Millisecond, sample)
		}
	}
	n.After(time.Millisecond, sample)
	if err := n.Run(time.Hour, apps.Done); err != nil {
		t.Fatal(err)
	}
	for _, err := range apps.Check() {
		t.Error(err)
	}
	return srv, apps, maxAlloc, maxHeld, minWnd
}

// TestMemoryBudgetSlowReaders: 64 connections into a server whose readers
// are slow for 3 s (1 MiB receive buffers, 2 MB each): with a 4 MiB
// budget the server's account never exceeds High plus the stated slack
// (a forward-allocation quantum for its one Env, and for each connection
// the chunks a segment into an empty receive buffer may force: 2), the
// pressure shrinks windows to four segments, and every byte of every
// stream arrives intact once the readers resume; afterwards nothing is
// held (the leak check). Without the budget the same run holds several
// times as much.
func TestMemoryBudgetSlowReaders(t *testing.T) {
	const nFlows, up = 64, 2_000_000
	mem := tcp.MemLimits{Low: 2 << 20, Pressure: 3 << 20, High: 4 << 20}
	srv, _, maxAlloc, maxHeld, minWnd := memBudgetRun(t, mem, nFlows, up, 3*time.Second)
	s := srv.Stack.TCPMemory()
	st := srv.Stack.Stats().TCP
	t.Logf("budget: peak %d (held %d), pressure entries %d for %v, RcvQDrop %d, OFOPruned %d, largest open window under pressure down to %d",
		s.Peak, maxHeld, s.PressureEntries, s.TimeInPressure, st.RcvQDrop, st.OFOPruned, minWnd)
	slack := int64(64<<10) + nFlows*2*16<<10
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
	_, _, freeAlloc, _, _ := memBudgetRun(t, tcp.MemLimits{High: -1}, nFlows, up, 3*time.Second)
	t.Logf("without a budget: peak %d", freeAlloc)
	if freeAlloc < 2*mem.High {
		t.Errorf("without a budget the run peaked at %d: too little to test the budget (want > %d)", freeAlloc, 2*mem.High)
	}
}
