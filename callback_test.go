package ustack

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/stack"
)

// recorder is a Handler that logs every call per connection and checks
// the rules of the package doc as they happen: no two calls at a time for
// one connection, OnOpen first, OnPeerClose at most once, OnClose once and
// last. Its hooks do the work.
type recorder struct {
	t        testing.TB
	mu       sync.Mutex
	log      map[*CallbackConn][]string
	busy     map[*CallbackConn]bool
	closeErr map[*CallbackConn]error
	closed   chan *CallbackConn // every OnClose

	open     func(c *CallbackConn)
	readable func(c *CallbackConn)
	writable func(c *CallbackConn)
	peer     func(c *CallbackConn)
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{
		t:        t,
		log:      map[*CallbackConn][]string{},
		busy:     map[*CallbackConn]bool{},
		closeErr: map[*CallbackConn]error{},
		closed:   make(chan *CallbackConn, 1024),
	}
}

// enter records ev for c and checks the order rules; leave ends the call.
func (r *recorder) enter(c *CallbackConn, ev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[c] {
		r.t.Errorf("%s: called while another call for the connection runs", ev)
	}
	r.busy[c] = true
	log := r.log[c]
	switch {
	case len(log) > 0 && log[len(log)-1] == "close":
		r.t.Errorf("%s after OnClose (log %v)", ev, log)
	case ev != "open" && ev != "close" && (len(log) == 0 || log[0] != "open"):
		r.t.Errorf("%s before OnOpen (log %v)", ev, log)
	case ev == "open" && len(log) > 0:
		r.t.Errorf("a second OnOpen (log %v)", log)
	case ev == "peer" && strings.Contains(strings.Join(log, " "), "peer"):
		r.t.Errorf("a second OnPeerClose (log %v)", log)
	}
	r.log[c] = append(log, ev)
}

func (r *recorder) leave(c *CallbackConn) {
	r.mu.Lock()
	r.busy[c] = false
	r.mu.Unlock()
}

func (r *recorder) events(c *CallbackConn) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log[c]...)
}

func (r *recorder) OnOpen(c *CallbackConn) {
	r.enter(c, "open")
	defer r.leave(c)
	if r.open != nil {
		r.open(c)
	}
}

func (r *recorder) OnReadable(c *CallbackConn) {
	r.enter(c, "read")
	defer r.leave(c)
	if r.readable != nil {
		r.readable(c)
	}
}

func (r *recorder) OnWritable(c *CallbackConn) {
	r.enter(c, "write")
	defer r.leave(c)
	if r.writable != nil {
		r.writable(c)
	}
}

func (r *recorder) OnPeerClose(c *CallbackConn) {
	r.enter(c, "peer")
	defer r.leave(c)
	if r.peer != nil {
		r.peer(c)
	}
}

func (r *recorder) OnClose(c *CallbackConn, err error) {
	r.enter(c, "close")
	r.mu.Lock()
	r.closeErr[c] = err
	r.mu.Unlock()
	r.leave(c)
	r.closed <- c
}

// echoer is the state of one echoing connection: what it could not
// write yet.
type echoer struct{ pending []byte }

// echo makes r an echo server: it reads everything, writes it back
// (keeping what does not fit for OnWritable), and after the peer's FIN
// closes once all is written. Every call is made from inside a handler.
func (r *recorder) echo() {
	flush := func(c *CallbackConn) {
		e := c.Context().(*echoer)
		for len(e.pending) > 0 {
			n, err := c.Write(e.pending)
			e.pending = e.pending[n:]
			if err == ErrWouldBlock {
				return
			}
			if err != nil {
				r.t.Errorf("echo write: %v", err)
				return
			}
		}
		if c.peerClosedForTest() {
			if err := c.Close(); err != nil {
				r.t.Errorf("echo close: %v", err)
			}
		}
	}
	r.open = func(c *CallbackConn) { c.SetContext(&echoer{}) }
	r.readable = func(c *CallbackConn) {
		e := c.Context().(*echoer)
		var buf [4096]byte
		for {
			n, err := c.Read(buf[:])
			e.pending = append(e.pending, buf[:n]...)
			if err == ErrWouldBlock || err == io.EOF {
				break
			}
			if err != nil {
				r.t.Errorf("echo read: %v", err)
				return
			}
		}
		flush(c)
	}
	r.writable = flush
	r.peer = flush
}

// peerClosedForTest reports whether OnPeerClose was called; only from a
// handler method.
func (c *CallbackConn) peerClosedForTest() bool { return c.peerClosed }

// TestCallbackEcho: an echo server on the callback API, whose handler
// reads, writes, and closes from inside its methods, serves clients on
// net.Conns (several at once) with data larger than the buffers, so that
// writes would block and OnWritable carries the rest; the events come in
// the documented order and the connection's end is reported once with a
// nil error; nothing leaks.
func TestCallbackEcho(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		r := newRecorder(t)
		r.echo()
		ln, err := n.A.ListenCallback("tcp", ":7", r)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		const clients, size = 3, 1 << 20
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				c, err := n.B.Dial("tcp", "10.0.0.1:7")
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				go func() {
					io.Copy(c, newPayload(uint64(i), size))
					c.(*TCPConn).CloseWrite()
				}()
				h := sha256.New()
				got, err := io.Copy(h, c)
				if err != nil || got != size {
					t.Errorf("client %d: echoed %d bytes, %v; want %d", i, got, err, size)
				}
				if [32]byte(h.Sum(nil)) != payloadSum(uint64(i), size) {
					t.Errorf("client %d: the echo differs from what was sent", i)
				}
			})
		}
		wg.Wait()
		for range clients {
			c := <-r.closed
			ev := r.events(c)
			if ev[0] != "open" || ev[len(ev)-1] != "close" || !strings.Contains(strings.Join(ev, " "), "peer") {
				t.Errorf("events %v: want open … peer … close", ev)
			}
			if !strings.Contains(strings.Join(ev, " "), "write") {
				t.Errorf("events %v: 1 MiB echoed without an OnWritable", ev)
			}
			if err := r.closeErr[c]; err != nil {
				t.Errorf("OnClose after Close: %v, want nil", err)
			}
			if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write after Close: %v, want net.ErrClosed", err)
			}
		}
	})
}

// TestCallbackRelay: handlers call into other connections from inside
// their methods: a relay on stack A takes each callback connection and
// dials a callback connection to an echo server on B (DialCallback from
// OnOpen), copying both ways from OnReadable into the other connection's
// Write. Every call runs while the stack delivers another connection's
// events, so a handler that could not call back in would deadlock; run
// under -race.
func TestCallbackRelay(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		echo := newRecorder(t)
		echo.echo()
		eln, err := n.B.ListenCallback("tcp", ":7", echo)
		if err != nil {
			t.Fatal(err)
		}
		defer eln.Close()

		// The relay: both connections of a pair have the pair as their
		// context. The client writes only once the pair is open, and
		// data is small, so writes fit.
		type pair struct{ down, up *CallbackConn }
		relay := newRecorder(t)
		up := newRecorder(t)
		move := func(from *CallbackConn) {
			p := from.Context().(*pair)
			to := p.up
			if from == p.up {
				to = p.down
			}
			var buf [2048]byte
			for {
				n, err := from.Read(buf[:])
				if n > 0 {
					if _, err := to.Write(buf[:n]); err != nil {
						t.Errorf("relay write: %v", err)
					}
				}
				if err != nil {
					return
				}
			}
		}
		relay.open = func(c *CallbackConn) {
			p := &pair{down: c}
			c.SetContext(p)
			d, err := n.A.DialCallback(netip.AddrPort{}, netip.AddrPortFrom(ipB, 7), up)
			if err != nil {
				t.Errorf("dial from a handler: %v", err)
				return
			}
			p.up = d
			d.SetContext(p) // before d's events: they come after the SYN-ACK
		}
		relay.readable = move
		relay.peer = func(c *CallbackConn) { c.Context().(*pair).up.CloseWrite() }
		up.readable = move
		up.peer = func(d *CallbackConn) {
			p := d.Context().(*pair)
			p.down.Close()
			d.Close()
		}
		rln, err := n.A.ListenCallback("tcp", ":8", relay)
		if err != nil {
			t.Fatal(err)
		}
		defer rln.Close()

		c, err := n.B.Dial("tcp", "10.0.0.1:8")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Wait until the relay's upstream is open before writing (two
		// round trips of the pipe's delay).
		time.Sleep(10 * time.Millisecond)
		msg := "through a relay of callbacks"
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.(*TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != msg {
			t.Fatalf("got %q, %v; want %q", got, err, msg)
		}
	})
}

// TestCallbackBackPressure: a handler that stops reading closes the
// receive window: the sender's Write stalls with the window at zero and
// the receiver's buffer full; reads from another goroutine (the program
// resuming) open the window, the sender resumes, and every byte arrives
// in order.
func TestCallbackBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		var paused atomic.Bool
		paused.Store(true)
		h := sha256.New()
		var got atomic.Int64
		srvCh := make(chan *CallbackConn, 1)
		r := newRecorder(t)
		var drainMu sync.Mutex // the handler and the test goroutine both drain
		drain := func(c *CallbackConn) {
			drainMu.Lock()
			defer drainMu.Unlock()
			var buf [8192]byte
			for {
				n, err := c.Read(buf[:])
				h.Write(buf[:n])
				got.Add(int64(n))
				if err != nil {
					return
				}
			}
		}
		r.open = func(c *CallbackConn) {
			c.SetReadBuffer(64 << 10) // a fixed buffer, as SO_RCVBUF makes it
			srvCh <- c
		}
		r.readable = func(c *CallbackConn) {
			if !paused.Load() {
				drain(c)
			}
		}
		ln, err := n.A.ListenCallback("tcp", ":9", r)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := n.B.Dial("tcp", "10.0.0.1:9")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*TCPConn).SetWriteBuffer(64 << 10)
		srv := <-srvCh
		const size = 4 << 20 // far more than the receive and send buffers
		var sent atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			p := newPayload(1, size)
			buf := make([]byte, 64<<10)
			for {
				k, _ := p.Read(buf)
				if k == 0 {
					break
				}
				if _, err := c.Write(buf[:k]); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				sent.Add(int64(k))
			}
			c.(*TCPConn).CloseWrite()
		}()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stalled := sent.Load()
		if stalled >= size {
			t.Fatalf("the sender wrote all %d bytes to a receiver that does not read", size)
		}
		if ci := c.(*TCPConn).Info(); ci.SndWnd != 0 {
			t.Errorf("sender's window %d while the receiver does not read, want 0", ci.SndWnd)
		}
		srv.shard().mu.Lock()
		si := srv.sc.Info()
		srv.shard().mu.Unlock()
		if si.RcvBuffered == 0 || si.RcvWnd != 0 {
			t.Errorf("receiver: %d bytes buffered, window %d; want a full buffer and no window", si.RcvBuffered, si.RcvWnd)
		}
		time.Sleep(30 * time.Second) // persist probes only: nothing moves
		synctest.Wait()
		if s := sent.Load(); s != stalled {
			t.Fatalf("the sender went on from %d to %d bytes without the receiver reading", stalled, s)
		}
		// Resume: read from this goroutine (not a handler), then let the
		// handler read as data comes.
		paused.Store(false)
		drain(srv)
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("the sender did not resume: %d of %d bytes sent", sent.Load(), size)
		}
		for got.Load() < size {
			time.Sleep(10 * time.Millisecond)
		}
		if [32]byte(h.Sum(nil)) != payloadSum(1, size) {
			t.Error("the data differs from what was sent")
		}
	})
}

// TestCallbackDial: DialCallback returns at once; OnOpen comes when the
// handshake completes and the connection works both ways with a
// net.Conn server; a dial to a closed port gets OnClose with
// ECONNREFUSED and no OnOpen; a Write before OnOpen would block.
func TestCallbackDial(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			io.Copy(c, c)
		}()
		r := newRecorder(t)
		reply := make(chan string, 1)
		var buf []byte
		r.open = func(c *CallbackConn) {
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Errorf("write in OnOpen: %v", err)
			}
			c.CloseWrite()
		}
		r.readable = func(c *CallbackConn) {
			var b [64]byte
			for {
				n, err := c.Read(b[:])
				buf = append(buf, b[:n]...)
				if err != nil {
					break
				}
			}
		}
		r.peer = func(c *CallbackConn) {
			reply <- string(buf)
			c.Close()
		}
		c, err := n.B.DialCallback(netip.AddrPort{}, netip.AddrPortFrom(ipA, 80), r)
		if err != nil {
			t.Fatal(err)
		}
		if k, err := c.Write([]byte("early")); k != 0 || err != ErrWouldBlock {
			t.Errorf("Write before OnOpen: %d, %v; want 0, ErrWouldBlock", k, err)
		}
		if got := <-reply; got != "ping" {
			t.Errorf("echoed %q, want ping", got)
		}
		<-r.closed
		// OnWritable may come at any time; the rest has one order.
		var ev []string
		for _, e := range r.events(c) {
			if e != "write" {
				ev = append(ev, e)
			}
		}
		if strings.Join(ev, " ") != "open read peer close" {
			t.Errorf("events %v (OnWritable left out), want [open read peer close]", ev)
		}

		refused := newRecorder(t)
		d, err := n.B.DialCallback(netip.AddrPort{}, netip.AddrPortFrom(ipA, 81), refused)
		if err != nil {
			t.Fatal(err)
		}
		<-refused.closed
		if ev := refused.events(d); len(ev) != 1 || ev[0] != "close" {
			t.Errorf("refused dial: events %v, want only close", ev)
		}
		if err := refused.closeErr[d]; !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("refused dial: OnClose(%v), want ECONNREFUSED", err)
		}
	})
}

// TestCallbackReset: a peer's reset ends a callback connection with
// OnClose(ECONNRESET), and its calls then fail with net.ErrClosed.
func TestCallbackReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		r := newRecorder(t)
		ln, err := n.A.ListenCallback("tcp", ":80", r)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		c.(*TCPConn).SetLinger(0)
		time.Sleep(10 * time.Millisecond) // the server accepts on the handshake's last ACK
		c.Close()
		srv := <-r.closed
		if err := r.closeErr[srv]; !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("OnClose(%v), want ECONNRESET", err)
		}
		if _, err := srv.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after the reset's OnClose: %v, want net.ErrClosed", err)
		}
	})
}

// TestCallbackStackClose: Stack.Close ends every callback connection with
// OnClose(net.ErrClosed) before it returns, once each, including
// connections still in their handshake; the listener's further events are
// ignored; no goroutine is left.
func TestCallbackStackClose(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		r := newRecorder(t)
		ln, err := n.A.ListenCallback("tcp", ":80", r)
		if err != nil {
			t.Fatal(err)
		}
		var clients []net.Conn
		for range 4 {
			c, err := n.B.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
		}
		time.Sleep(10 * time.Millisecond) // the server accepts on the handshakes' last ACKs
		d := newRecorder(t)
		// A dial still in its handshake: the pipe's delay is not over.
		half, err := n.A.DialCallback(netip.AddrPort{}, netip.AddrPortFrom(ipB, 9), d)
		if err != nil {
			t.Fatal(err)
		}
		n.A.Close()
		if len(r.closed) != 4 || len(d.closed) != 1 {
			t.Fatalf("%d accepted and %d dialled connections heard OnClose by Stack.Close's return, want 4 and 1", len(r.closed), len(d.closed))
		}
		for range 4 {
			c := <-r.closed
			if err := r.closeErr[c]; !errors.Is(err, net.ErrClosed) {
				t.Errorf("OnClose(%v), want net.ErrClosed", err)
			}
		}
		if err := d.closeErr[<-d.closed]; !errors.Is(err, net.ErrClosed) {
			t.Errorf("dial in progress: OnClose(%v), want net.ErrClosed", err)
		}
		if ev := d.events(half); len(ev) != 1 {
			t.Errorf("dial in progress: events %v, want only close", ev)
		}
		if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("listener Close after Stack.Close: %v, want net.ErrClosed", err)
		}
		for _, c := range clients {
			c.Close()
		}
	})
}

// TestCallbackTwoShards: a callback listener on a stack with two shards
// (over a link without ARP, see TestTwoShards) accepts connections from
// both shards' parts and echoes on them; accepted connections land in
// both shards.
func TestCallbackTwoShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pa, pb := pipe.New(pipe.Config{Medium: link.IP, Delay: time.Millisecond})
		a, err := newStack(Config{Config: stack.Config{Seed: 1}}, 2)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		if _, err := a.AddNIC(pa, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
			t.Fatal(err)
		}
		b, err := New(Config{Config: stack.Config{Seed: 2}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		if _, err := b.AddNIC(pb, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
			t.Fatal(err)
		}
		r := newRecorder(t)
		r.echo()
		var mu sync.Mutex
		shards := map[*shard]int{}
		open := r.open
		r.open = func(c *CallbackConn) {
			mu.Lock()
			shards[c.shard()]++
			mu.Unlock()
			open(c)
		}
		ln, err := a.ListenCallback("tcp", ":7", r)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		for i := range 16 {
			c, err := b.DialTCP(t.Context(), netip.AddrPortFrom(ipB, 0), netip.AddrPortFrom(ipA, 7))
			if err != nil {
				t.Fatal(err)
			}
			msg := fmt.Sprintf("message %d", i)
			c.Write([]byte(msg))
			c.CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != msg {
				t.Errorf("got %q, %v; want %q", got, err, msg)
			}
			c.Close()
		}
		if len(shards) != 2 {
			t.Errorf("accepted connections in %d shards, want 2 (%v)", len(shards), shards)
		}
	})
}

// fnHandler is a Handler of functions, for tests that must not allocate
// in their bookkeeping.
type fnHandler struct {
	NopHandler
	open, readable func(c *CallbackConn)
}

func (h *fnHandler) OnOpen(c *CallbackConn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h *fnHandler) OnReadable(c *CallbackConn) { h.readable(c) }

// TestCallbackAllocs: a request and response through callback
// connections — the client's Write, the server handler's Read and Write,
// the client handler's Read, including their would-block reads —
// allocate nothing.
func TestCallbackAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random; make allocs runs this without it")
	}
	n := newTestNet(t, pipe.Config{QueueLen: 4096}, Config{})
	var sbuf [1024]byte
	srv := &fnHandler{readable: func(c *CallbackConn) {
		for {
			k, err := c.Read(sbuf[:])
			if err != nil {
				return
			}
			c.Write(sbuf[:k])
		}
	}}
	ln, err := n.A.ListenCallback("tcp", ":7", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan struct{}, 1)
	opened := make(chan struct{})
	var cbuf [1024]byte
	var have int
	cli := &fnHandler{
		open: func(c *CallbackConn) { close(opened) },
		readable: func(c *CallbackConn) {
			for {
				k, err := c.Read(cbuf[:])
				have += k
				if err != nil {
					break
				}
			}
			if have >= len(cbuf) {
				have -= len(cbuf)
				got <- struct{}{}
			}
		},
	}
	c, err := n.B.DialCallback(netip.AddrPort{}, netip.AddrPortFrom(ipA, 7), cli)
	if err != nil {
		t.Fatal(err)
	}
	<-opened
	out := make([]byte, 1024)
	roundTrip := func() {
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		<-got
	}
	for range 100 {
		roundTrip()
	}
	if a := testing.AllocsPerRun(1000, roundTrip); a != 0 {
		t.Errorf("%v allocations per round trip, want 0", a)
	}
	c.Close()
}
