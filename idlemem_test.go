package ustack

import (
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/link/pipe"
)

// idleMemPairs is how many connection pairs TestIdleConnMemory opens per
// kind: enough that the tables' growth steps average out.
const idleMemPairs = 2000

// The ceilings TestIdleConnMemory guards, in bytes per idle connection
// end (heap and goroutine stacks after GC), measured once every
// connection is parked (waitParked). With parking (park13) this test
// measured 853–878 B (callback), 889–899 B (net.Conn) and 3,689–3,738 B
// (a blocked reader) over five runs; with the output slots' small
// buffers (outbuf13), no socket-set entry per TCP end and a 48-byte
// CallbackConn (sock13), the 192-byte parked record (rec13) and the flow
// table of pointers under a hash (flowtab13), 572–581 B, 621–639 B and
// 3,431–3,448 B over five runs (this test dials one pair at a time, so
// the tables' growth steps weigh more than in the bench's 10,000 pairs,
// which read 480, 515 and 2,877 B). The ceilings leave about 5 % for map
// growth steps, less than the parked record's size class (192 B) and
// far less than an unparked tcp.Conn, so a connection that stops
// parking fails. The reader's figure moves more: the runtime sizes new
// goroutines' first stacks from the average it saw at recent GCs (2 or 4
// KiB), so its ceiling leaves room for that and guards the goroutine's
// share; the net.Conn row guards the rest. Issue 13's targets, for the
// bench's figures: 512 B (callback), 1 KiB (net.Conn), 3 KiB (reader);
// lower a ceiling when a change lowers its figure.
const (
	idleMemCeilingCallback = 610  // target 512 (the bench's 10,000 pairs: 480 B)
	idleMemCeilingNoReader = 670  // target 1024
	idleMemCeilingReader   = 3750 // target 3072, a 2 KiB goroutine stack included
)

// waitParked waits until the two stacks have parked want connections
// between them (an idle connection parks after a second: tcp.Config's
// ParkIdle), so that the figures are those of parked connections, what
// an idle connection costs for all but its first second; it fails the
// test after 30 s.
func waitParked(t *testing.T, n *testNet, want uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := n.A.Stats().TCP.Parked + n.B.Stats().TCP.Parked
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked after 30 s, want %d", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveBytes is the heap and goroutine stacks in use after two GCs.
func liveBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// openCounterHandler counts the callback connections opened.
type openCounterHandler struct {
	NopHandler
	mu    sync.Mutex
	conns []*CallbackConn
	sig   chan struct{}
}

func (h *openCounterHandler) OnOpen(c *CallbackConn) {
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	select {
	case h.sig <- struct{}{}:
	default:
	}
}

func (h *openCounterHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// TestIdleConnMemory guards the memory an established idle connection
// end costs through each API (issue 13 item 2): it opens idleMemPairs
// pairs between two stacks in one process, after a first window that is
// not counted (tables, pools and the links' buffers are not
// per-connection costs), and compares the growth of the heap and
// goroutine stacks per end with the ceilings above. Memory is not
// timing: the figure does not depend on the machine's load. Set
// USTACK_MEMPROFILE to a directory to get a heap profile of each kind.
func TestIdleConnMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector inflates every allocation, so the figures would mean nothing; make allocs runs this test without -race")
	}
	profDir := os.Getenv("USTACK_MEMPROFILE")
	if profDir != "" {
		old := runtime.MemProfileRate
		runtime.MemProfileRate = 64
		t.Cleanup(func() { runtime.MemProfileRate = old })
	}
	for _, k := range []struct {
		name    string
		ceiling float64
		measure func(t *testing.T, n *testNet) float64
	}{
		{"callback", idleMemCeilingCallback, measureIdleCallback},
		{"netconn", idleMemCeilingNoReader, func(t *testing.T, n *testNet) float64 { return measureIdleNetConn(t, n, false) }},
		{"netconn-reader", idleMemCeilingReader, func(t *testing.T, n *testNet) float64 { return measureIdleNetConn(t, n, true) }},
	} {
		t.Run(k.name, func(t *testing.T) {
			n := newTestNet(t, pipe.Config{MTU: 1500}, Config{})
			perEnd := k.measure(t, n)
			t.Logf("%s: %.0f B per idle connection end (%d pairs), ceiling %.0f B", k.name, perEnd, idleMemPairs, k.ceiling)
			if profDir != "" {
				writeHeapProfile(t, profDir+"/idle-"+k.name+".pprof")
			}
			if perEnd <= 0 {
				t.Fatalf("no memory growth measured (%.0f B per end): the measurement is broken", perEnd)
			}
			if perEnd > k.ceiling {
				t.Errorf("%s: %.0f B per idle connection end, more than the %.0f B ceiling", k.name, perEnd, k.ceiling)
			}
		})
	}
}

// baseProfile writes the heap profile the kind's profile is compared
// with (go tool pprof -diff_base), when USTACK_MEMPROFILE asks.
func baseProfile(t *testing.T, kind string) {
	if dir := os.Getenv("USTACK_MEMPROFILE"); dir != "" {
		writeHeapProfile(t, dir+"/base-"+kind+".pprof")
	}
}

func writeHeapProfile(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// measureIdleCallback opens pairs through ListenCallback and DialCallback
// and returns the growth per end.
func measureIdleCallback(t *testing.T, n *testNet) float64 {
	srv := &openCounterHandler{sig: make(chan struct{}, 1)}
	cli := &openCounterHandler{sig: make(chan struct{}, 1)}
	ln, err := n.A.ListenCallback("tcp", "10.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	opened := 0
	dial := func(k int) {
		for range k {
			if _, err := n.B.DialCallback(netip.AddrPort{}, ln.Addr(), cli); err != nil {
				t.Fatal(err)
			}
		}
		opened += k
		deadline := time.Now().Add(30 * time.Second)
		for _, h := range []*openCounterHandler{srv, cli} {
			for h.count() < opened {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d connections open after 30 s", h.count(), opened)
				}
				select {
				case <-h.sig:
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}
	// One at a time, as the net.Conn kinds: a burst of handshakes leaves
	// the links and the shards as many frame buffers as were in flight,
	// a cost of the burst rather than of the connections.
	dial(1)
	waitParked(t, n, 2)
	base := liveBytes()
	baseProfile(t, "callback")
	for range idleMemPairs {
		dial(1)
	}
	waitParked(t, n, 2+2*idleMemPairs)
	live := liveBytes()
	runtime.KeepAlive(srv)
	runtime.KeepAlive(cli)
	return (float64(live) - float64(base)) / (2 * idleMemPairs)
}

// measureIdleNetConn opens pairs through Listen and Dial, with a reader
// goroutine blocked on each end if readers, and returns the growth per
// end.
func measureIdleNetConn(t *testing.T, n *testNet, readers bool) float64 {
	ln, err := n.A.Listen("tcp", "10.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	started := make(chan struct{}, 2*idleMemPairs+2)
	open := func() {
		c, err := n.B.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c, s)
		if readers {
			for _, c := range []net.Conn{c, s} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					started <- struct{}{}
					var b [1]byte
					c.Read(b[:]) // returns when the test closes c
				}()
			}
		}
	}
	open()
	if readers {
		<-started
		<-started
	}
	waitParked(t, n, 2)
	base := liveBytes()
	baseProfile(t, "netconn")
	for range idleMemPairs {
		open()
	}
	waitParked(t, n, 2+2*idleMemPairs)
	if !readers {
		return (float64(liveBytes()) - float64(base)) / (2 * idleMemPairs)
	}
	for range 2 * idleMemPairs {
		<-started
	}
	// Let the readers reach their wait inside Read: on a loaded machine
	// some are still on their way for a while, so measure until two
	// measurements 50 ms apart agree within 8 B per end (or 5 s pass).
	live := liveBytes()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		next := liveBytes()
		d := float64(next) - float64(live)
		live = next
		if d < 8*2*idleMemPairs && d > -8*2*idleMemPairs {
			break
		}
	}
	return (float64(live) - float64(base)) / (2 * idleMemPairs)
}
