package ustack

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link/pipe"
)

// Deadlines set while a call is blocked (issue 8 part 1). package net
// wakes a blocked call when its deadline is set, moved or cleared, and
// programs rely on it: net/http's server stops its background read with
// SetReadDeadline(aLongTimeAgo) after every response, proxies cancel a
// blocked copy with SetReadDeadline(time.Now()). Every test here runs in
// a synctest bubble, so "at once" and "exactly at the deadline" are exact.

// blockingCall is one blocking call of the API on a fresh pair of stacks:
// call makes it once, set sets the deadline it obeys, and complete lets
// one blocked (or later) call succeed.
type blockingCall struct {
	name string
	// oneShot: complete works once (a drained write buffer stays
	// drained), so a transition that repeats itself runs once.
	oneShot bool
	setup   func(t *testing.T, n *testNet) (call func() error, set func(time.Time) error, complete func())
}

// callUnderTest is a blockingCall set up for one transition.
type callUnderTest struct {
	call     func() error
	set      func(time.Time) error
	complete func()
	rounds   int // how often a transition may repeat
}

// connPair returns a connected pair: c on B (10.0.0.2), srv on A.
func connPair(t *testing.T, n *testNet) (c, srv *TCPConn) {
	t.Helper()
	ln, err := n.A.ListenTCP("tcp", ":80", 0)
	if err != nil {
		t.Fatal(err)
	}
	accepted := acceptOne(t, ln)
	cc, err := n.B.Dial("tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	ln.Close()
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return cc.(*TCPConn), sc.(*TCPConn)
}

var blockingCalls = []blockingCall{
	{"TCPConn.Read", false, func(t *testing.T, n *testNet) (func() error, func(time.Time) error, func()) {
		c, srv := connPair(t, n)
		read := func() error {
			_, err := c.Read(make([]byte, 1))
			return err
		}
		return read, c.SetReadDeadline, func() { srv.Write([]byte("x")) }
	}},
	{"TCPConn.Read/SetDeadline", false, func(t *testing.T, n *testNet) (func() error, func(time.Time) error, func()) {
		c, srv := connPair(t, n)
		read := func() error {
			_, err := c.Read(make([]byte, 1))
			return err
		}
		return read, c.SetDeadline, func() { srv.Write([]byte("x")) }
	}},
	{"TCPConn.Write", true, func(t *testing.T, n *testNet) (func() error, func(time.Time) error, func()) {
		// The peer does not read: a write larger than both buffers
		// and the window blocks until complete starts a reader.
		c, srv := connPair(t, n)
		c.SetWriteBuffer(16 << 10)
		srv.SetReadBuffer(16 << 10)
		write := func() error {
			_, err := c.Write(make([]byte, 256<<10))
			return err
		}
		var once sync.Once
		drain := func() { once.Do(func() { go io.Copy(io.Discard, srv) }) }
		return write, c.SetWriteDeadline, drain
	}},
	{"Listener.Accept", false, func(t *testing.T, n *testNet) (func() error, func(time.Time) error, func()) {
		ln, err := n.A.ListenTCP("tcp", ":80", 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		accept := func() error {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			return err
		}
		dial := func() {
			go func() {
				if c, err := n.B.Dial("tcp", "10.0.0.1:80"); err == nil {
					c.Close()
				}
			}()
		}
		return accept, ln.SetDeadline, dial
	}},
	{"UDPConn.ReadFrom", false, func(t *testing.T, n *testNet) (func() error, func(time.Time) error, func()) {
		u, err := n.A.ListenUDP("udp", ":53")
		if err != nil {
			t.Fatal(err)
		}
		peer, err := n.B.Dial("udp", "10.0.0.1:53")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close(); peer.Close() })
		read := func() error {
			_, _, err := u.ReadFrom(make([]byte, 10))
			return err
		}
		return read, u.SetReadDeadline, func() { peer.Write([]byte("x")) }
	}},
	{"UDPConn.Read", false, func(t *testing.T, n *testNet) (func() error, func(time.Time) error, func()) {
		u, err := n.B.Dial("udp", "10.0.0.1:53")
		if err != nil {
			t.Fatal(err)
		}
		peer, err := n.A.ListenUDP("udp", ":53")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close(); peer.Close() })
		to := u.LocalAddr().(*net.UDPAddr).AddrPort()
		to = netip.AddrPortFrom(ipB, to.Port())
		read := func() error {
			_, err := u.Read(make([]byte, 10))
			return err
		}
		return read, u.SetReadDeadline, func() { peer.WriteToUDPAddrPort([]byte("x"), to) }
	}},
	{"PingConn.ReadFrom", false, func(t *testing.T, n *testNet) (func() error, func(time.Time) error, func()) {
		p, err := n.B.DialPing(netip.Addr{}, ipA)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		read := func() error {
			_, _, err := p.ReadFrom(make([]byte, 64))
			return err
		}
		// A's stack answers the echo request; the reply wakes the read.
		return read, p.SetReadDeadline, func() { p.Write(echoRequest(1, nil)) }
	}},
}

// outcome is how a call started by startCall ended.
type outcome struct {
	err error
	at  time.Time
}

func startCall(call func() error) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		err := call()
		ch <- outcome{err, time.Now()}
	}()
	return ch
}

// mustBlock fails unless the call is still waiting once every goroutine
// of the bubble is idle.
func mustBlock(t *testing.T, ch <-chan outcome, what string) {
	t.Helper()
	synctest.Wait()
	select {
	case o := <-ch:
		t.Fatalf("%s: the call returned (%v), want it still blocked", what, o.err)
	default:
	}
}

// result waits for the call, at most a minute of virtual time (a call
// that never wakes fails here rather than hanging the test).
func result(t *testing.T, ch <-chan outcome, what string) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(time.Minute):
		t.Fatalf("%s: the call is still blocked a minute later", what)
		return outcome{}
	}
}

// wantTimeout checks that the call failed as package net's does on a
// deadline, at the instant want.
func wantTimeout(t *testing.T, o outcome, want time.Time, what string) {
	t.Helper()
	checkErr(t, what, o.err, os.ErrDeadlineExceeded)
	var ne net.Error
	if !errors.As(o.err, &ne) || !ne.Timeout() {
		t.Errorf("%s: %v is not a net.Error with Timeout()", what, o.err)
	}
	if !o.at.Equal(want) {
		t.Errorf("%s: returned %v after the deadline, want at it", what, o.at.Sub(want))
	}
}

// The transitions of a deadline while a call waits, each checked for
// every blocking call.
var deadlineTransitions = []struct {
	name string
	run  func(t *testing.T, c *callUnderTest)
}{
	{"none→past", func(t *testing.T, c *callUnderTest) {
		call, set := c.call, c.set
		ch := startCall(call)
		time.Sleep(time.Second)
		mustBlock(t, ch, "no deadline")
		now := time.Now()
		set(now.Add(-time.Hour))
		wantTimeout(t, result(t, ch, "deadline set in the past"), now, "deadline set in the past")
	}},
	{"none→now", func(t *testing.T, c *callUnderTest) {
		call, set := c.call, c.set
		ch := startCall(call)
		time.Sleep(time.Second)
		mustBlock(t, ch, "no deadline")
		now := time.Now()
		set(now)
		wantTimeout(t, result(t, ch, "deadline set to now"), now, "deadline set to now")
	}},
	{"none→future", func(t *testing.T, c *callUnderTest) {
		call, set := c.call, c.set
		ch := startCall(call)
		time.Sleep(time.Second)
		mustBlock(t, ch, "no deadline")
		at := time.Now().Add(2 * time.Second)
		set(at)
		mustBlock(t, ch, "deadline in the future")
		wantTimeout(t, result(t, ch, "deadline set in the future"), at, "deadline set in the future")
	}},
	{"future→past", func(t *testing.T, c *callUnderTest) {
		call, set := c.call, c.set
		set(time.Now().Add(time.Hour))
		ch := startCall(call)
		time.Sleep(time.Second)
		mustBlock(t, ch, "deadline in an hour")
		now := time.Now()
		set(now.Add(-time.Second))
		wantTimeout(t, result(t, ch, "deadline moved to the past"), now, "deadline moved to the past")
	}},
	{"future→earlier", func(t *testing.T, c *callUnderTest) {
		call, set := c.call, c.set
		set(time.Now().Add(time.Hour))
		ch := startCall(call)
		time.Sleep(time.Second)
		mustBlock(t, ch, "deadline in an hour")
		at := time.Now().Add(time.Second)
		set(at)
		wantTimeout(t, result(t, ch, "deadline moved earlier"), at, "deadline moved earlier")
	}},
	{"future→later", func(t *testing.T, c *callUnderTest) {
		call, set := c.call, c.set
		start := time.Now()
		set(start.Add(time.Second))
		ch := startCall(call)
		time.Sleep(500 * time.Millisecond)
		mustBlock(t, ch, "deadline in 1s")
		set(start.Add(3 * time.Second))
		time.Sleep(time.Second) // past the first deadline
		mustBlock(t, ch, "deadline moved from 1s to 3s")
		wantTimeout(t, result(t, ch, "deadline moved later"), start.Add(3*time.Second), "deadline moved later")
	}},
	{"future→cleared", func(t *testing.T, c *callUnderTest) {
		call, set, complete := c.call, c.set, c.complete
		set(time.Now().Add(time.Second))
		ch := startCall(call)
		time.Sleep(500 * time.Millisecond)
		set(time.Time{})
		time.Sleep(10 * time.Second)
		mustBlock(t, ch, "deadline cleared")
		complete()
		if o := result(t, ch, "deadline cleared, then completed"); o.err != nil {
			t.Errorf("after clearing the deadline: %v, want success", o.err)
		}
	}},
	{"past→cleared", func(t *testing.T, c *callUnderTest) {
		call, set, complete := c.call, c.set, c.complete
		now := time.Now()
		set(now.Add(-time.Second))
		wantTimeout(t, outcome{call(), time.Now()}, now, "deadline in the past")
		// Still in the past for the next call.
		wantTimeout(t, outcome{call(), time.Now()}, now, "deadline still in the past")
		set(time.Time{})
		ch := startCall(call)
		time.Sleep(10 * time.Second)
		mustBlock(t, ch, "deadline cleared")
		complete()
		if o := result(t, ch, "deadline cleared, then completed"); o.err != nil {
			t.Errorf("after clearing the deadline: %v, want success", o.err)
		}
	}},
	{"past→future", func(t *testing.T, c *callUnderTest) {
		call, set := c.call, c.set
		set(time.Now().Add(-time.Second))
		if err := call(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("deadline in the past: %v", err)
		}
		at := time.Now().Add(2 * time.Second)
		set(at)
		ch := startCall(call)
		mustBlock(t, ch, "deadline moved to the future")
		wantTimeout(t, result(t, ch, "deadline moved to the future"), at, "deadline moved to the future")
	}},
	{"cleared while the timer fires", func(t *testing.T, c *callUnderTest) {
		call, set, complete := c.call, c.set, c.complete
		// The deadline passes and is cleared at the same instant, in
		// either order; the call may fail (the timer came first) but
		// once cleared the deadline must stay cleared: a stale timer
		// must not make later calls fail.
		for i := range c.rounds {
			at := time.Now().Add(time.Second)
			set(at)
			ch := startCall(call)
			go func() {
				time.Sleep(time.Until(at))
				set(time.Time{})
			}()
			time.Sleep(time.Until(at))
			synctest.Wait()
			select {
			case o := <-ch:
				wantTimeout(t, o, at, "deadline passed as it was cleared")
				ch = startCall(call)
			default:
			}
			time.Sleep(10 * time.Second)
			mustBlock(t, ch, "deadline cleared as it passed")
			if t.Failed() {
				t.Fatalf("round %d", i)
			}
			complete()
			if o := result(t, ch, "deadline cleared, then completed"); o.err != nil {
				t.Fatalf("round %d: after clearing the deadline: %v, want success", i, o.err)
			}
		}
	}},
}

// TestDeadlineWhileBlocked: for every blocking call, every transition of
// its deadline while it waits takes effect on that call, as in package
// net: set in the past or now, the call fails at once; in the future, at
// that instant; moved, at the new time; cleared, the call waits on.
func TestDeadlineWhileBlocked(t *testing.T) {
	for _, bc := range blockingCalls {
		t.Run(bc.name, func(t *testing.T) {
			for _, tr := range deadlineTransitions {
				t.Run(tr.name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
						c := &callUnderTest{rounds: 20}
						c.call, c.set, c.complete = bc.setup(t, n)
						if bc.oneShot {
							c.rounds = 1
						}
						tr.run(t, c)
					})
				})
			}
		})
	}
}

// TestDialContextWhileBlocked: a dial waiting for its SYN-ACK (the link
// is down) ends when its context is cancelled or its deadline passes, at
// that instant, with package net's errors; a context whose deadline
// passes after the dial succeeded leaves the connection alone.
func TestDialContextWhileBlocked(t *testing.T) {
	dial := func(n *testNet, ctx context.Context) <-chan outcome {
		return startCall(func() error {
			c, err := n.B.DialContext(ctx, "tcp", "10.0.0.1:80")
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
			n.eb.SetUp(false)
			ctx, cancel := context.WithCancel(context.Background())
			ch := dial(n, ctx)
			time.Sleep(time.Second)
			mustBlock(t, ch, "dial into a dead link")
			now := time.Now()
			cancel()
			o := result(t, ch, "dial cancelled")
			checkErr(t, "dial cancelled", o.err, context.Canceled)
			if !o.at.Equal(now) {
				t.Errorf("cancelled dial returned %v after the cancel", o.at.Sub(now))
			}
		})
	})
	t.Run("deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
			n.eb.SetUp(false)
			at := time.Now().Add(2 * time.Second)
			ctx, cancel := context.WithDeadline(context.Background(), at)
			defer cancel()
			ch := dial(n, ctx)
			mustBlock(t, ch, "dial into a dead link")
			o := result(t, ch, "dial past its deadline")
			wantTimeout(t, o, at, "dial past its deadline")
			// package net's dial errors match both.
			checkErr(t, "dial past its deadline", o.err, context.DeadlineExceeded)
		})
	})
	t.Run("expired", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			defer cancel()
			now := time.Now()
			o := <-dial(n, ctx)
			wantTimeout(t, o, now, "dial with an expired context")
			checkErr(t, "dial with an expired context", o.err, context.DeadlineExceeded)
		})
	})
	t.Run("deadline after the dial", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
			ln, err := n.A.Listen("tcp", ":80")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := acceptOne(t, ln)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c, err := n.B.DialContext(ctx, "tcp", "10.0.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			srv := <-accepted
			defer srv.Close()
			ch := startCall(func() error {
				_, err := c.Read(make([]byte, 1))
				return err
			})
			time.Sleep(5 * time.Second)
			cancel()
			mustBlock(t, ch, "read on a conn whose dial context has expired")
			srv.Write([]byte("x"))
			if o := result(t, ch, "read"); o.err != nil {
				t.Errorf("read: %v", o.err)
			}
		})
	})
}

// TestSetDeadlineConcurrent: many goroutines set the read and write
// deadlines at random (past, now, near future, cleared) while a reader
// and a writer loop on the connection and timers fire between the sets;
// under -race this checks the locking. Afterwards the deadlines are
// cleared, and no timer of the storm may fail a later call.
func TestSetDeadlineConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		c, srv := connPair(t, n)
		c.SetWriteBuffer(16 << 10)
		srv.SetReadBuffer(16 << 10)
		var stop atomic.Bool
		var loops sync.WaitGroup
		for _, op := range []func() error{
			func() error { _, err := c.Read(make([]byte, 10)); return err },
			func() error { _, err := c.Write(make([]byte, 64<<10)); return err },
		} {
			loops.Add(1)
			go func() {
				defer loops.Done()
				for !stop.Load() {
					err := op()
					if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("call during the storm: %v", err)
						return
					}
					if err != nil {
						// A loop that only meets passed deadlines
						// would spin, and virtual time stands still
						// while any goroutine runs.
						time.Sleep(100 * time.Microsecond)
					}
				}
			}()
		}
		var setters sync.WaitGroup
		for g := range 16 {
			setters.Add(1)
			go func() {
				defer setters.Done()
				r := rand.New(rand.NewPCG(uint64(g), 1))
				sets := []func(time.Time) error{c.SetReadDeadline, c.SetWriteDeadline, c.SetDeadline}
				for i := range 500 {
					var at time.Time
					switch r.IntN(4) {
					case 0:
						at = time.Now().Add(-time.Duration(r.IntN(1000)) * time.Microsecond)
					case 1:
						at = time.Now()
					case 2:
						at = time.Now().Add(time.Duration(r.IntN(2000)) * time.Microsecond)
					}
					sets[r.IntN(3)](at)
					if i%16 == 0 {
						time.Sleep(time.Duration(r.IntN(1000)) * time.Microsecond)
					}
				}
			}()
		}
		setters.Wait()
		stop.Store(true)
		c.SetDeadline(time.Now()) // the loops' last calls return
		loopsDone := make(chan struct{})
		go func() { loops.Wait(); close(loopsDone) }()
		select {
		case <-loopsDone:
		case <-time.After(time.Minute):
			t.Fatal("a call still blocked a minute after SetDeadline(now)")
		}
		c.SetDeadline(time.Time{})
		time.Sleep(time.Minute) // every timer of the storm has fired by now

		// Cleared: a read waits for data, a write for room.
		rd := startCall(func() error { _, err := c.Read(make([]byte, 1)); return err })
		wr := startCall(func() error { _, err := c.Write(make([]byte, 256<<10)); return err })
		time.Sleep(10 * time.Second)
		mustBlock(t, rd, "read after the storm")
		mustBlock(t, wr, "write after the storm")
		srv.Write([]byte("x"))
		go io.Copy(io.Discard, srv)
		if o := result(t, rd, "read after the storm"); o.err != nil {
			t.Errorf("read after the storm: %v", o.err)
		}
		if o := result(t, wr, "write after the storm"); o.err != nil {
			t.Errorf("write after the storm: %v", o.err)
		}
	})
}

// TestDeadlineStaleTimer: a timer that fired but had to wait for the
// deadline's lock while set moved or cleared the deadline does nothing
// (the race a review found: it used to close the channel of the newer
// setting). The timer's late run is made deterministic by calling fire
// with the generation it was armed for.
func TestDeadlineStaleTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d deadline
		defer d.stop()
		start := time.Now()

		d.set(start.Add(time.Second))
		stale := d.gen
		d.set(time.Time{})
		d.fire(stale)
		if _, passed := d.wait(); passed {
			t.Fatal("a stale timer passed a cleared deadline")
		}

		d.set(start.Add(time.Second))
		stale = d.gen
		d.set(start.Add(3 * time.Second))
		ch, _ := d.wait()
		d.fire(stale)
		select {
		case <-ch:
			t.Fatal("a stale timer woke the waiters of a deadline moved later")
		default:
		}
		time.Sleep(time.Until(start.Add(3 * time.Second)))
		synctest.Wait()
		select {
		case <-ch:
		default:
			t.Fatal("the deadline moved later did not pass at its time")
		}
		if _, passed := d.wait(); !passed {
			t.Fatal("the deadline moved later has not passed")
		}
		// Clearing a passed deadline gives waiters a fresh channel.
		d.set(time.Time{})
		ch, passed := d.wait()
		if passed || ch == nil {
			t.Fatal("a cleared deadline still reports passed")
		}
		select {
		case <-ch:
			t.Fatal("a cleared deadline's channel is closed")
		default:
		}
	})
}

// TestBlockingCallsAllocs: the wait of a blocking call (the deadline's
// channel, taken on every pass of the loop) allocates nothing per call
// once a deadline is set: a 1 KiB Write and the Read that waits for it,
// under read and write deadlines, make no allocation at all.
func TestBlockingCallsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random; make allocs runs this without it")
	}
	// A link delay, so the Read always waits for the data.
	n := newTestNet(t, pipe.Config{QueueLen: 4096, Delay: 50 * time.Microsecond}, Config{})
	c, srv := connPair(t, n)
	c.SetReadDeadline(time.Now().Add(time.Hour))
	srv.SetWriteDeadline(time.Now().Add(time.Hour))
	out, in := make([]byte, 1024), make([]byte, 1024)
	roundTrip := func() {
		if _, err := srv.Write(out); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // warm up: buffers, pools, the deadlines' channels
		roundTrip()
	}
	if a := testing.AllocsPerRun(1000, roundTrip); a != 0 {
		t.Errorf("%v allocations per write and blocked read, want 0", a)
	}
}

// TestUDPWriteDeadline: WriteTo never waits, so a write deadline matters
// only once passed: WriteTo and Write then fail with a timeout, and work
// again once it is cleared or moved to the future.
func TestUDPWriteDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		srv, err := n.A.ListenUDP("udp", ":53")
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		c, err := n.B.Dial("udp", "10.0.0.1:53")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		u := c.(*UDPConn)
		to := netip.AddrPortFrom(ipA, 53)
		u.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := u.Write([]byte("a")); err != nil {
			t.Fatalf("write before the deadline: %v", err)
		}
		time.Sleep(time.Second)
		_, err = u.Write([]byte("b"))
		checkErr(t, "Write past the deadline", err, os.ErrDeadlineExceeded)
		other, err := n.B.ListenUDP("udp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		other.SetWriteDeadline(time.Now())
		_, err = other.WriteToUDPAddrPort([]byte("c"), to)
		checkErr(t, "WriteTo past the deadline", err, os.ErrDeadlineExceeded)
		other.SetWriteDeadline(time.Time{})
		if _, err := other.WriteToUDPAddrPort([]byte("d"), to); err != nil {
			t.Errorf("WriteTo after clearing the deadline: %v", err)
		}
		u.SetWriteDeadline(time.Now().Add(time.Hour))
		if _, err := u.Write([]byte("e")); err != nil {
			t.Errorf("Write after moving the deadline on: %v", err)
		}
		// The datagrams sent before and after, none of those refused.
		buf := make([]byte, 10)
		var got []string
		srv.SetReadDeadline(time.Now().Add(time.Second))
		for {
			k, _, err := srv.ReadFrom(buf)
			if err != nil {
				break
			}
			got = append(got, string(buf[:k]))
		}
		if strings.Join(got, "") != "ade" {
			t.Errorf("server got %q, want a, d and e", got)
		}
	})
}

// TestSetDeadlineAfterClose: as in package net, setting a deadline on a
// closed socket fails with net.ErrClosed.
func TestSetDeadlineAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		c, _ := connPair(t, n)
		c.Close()
		ln, err := n.A.ListenTCP("tcp", ":81", 0)
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		u, err := n.A.ListenUDP("udp", ":53")
		if err != nil {
			t.Fatal(err)
		}
		u.Close()
		p, err := n.A.ListenPing(netip.Addr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		for name, set := range map[string]func(time.Time) error{
			"TCPConn.SetDeadline": c.SetDeadline, "TCPConn.SetReadDeadline": c.SetReadDeadline,
			"TCPConn.SetWriteDeadline": c.SetWriteDeadline, "Listener.SetDeadline": ln.SetDeadline,
			"UDPConn.SetDeadline": u.SetDeadline, "UDPConn.SetReadDeadline": u.SetReadDeadline,
			"UDPConn.SetWriteDeadline": u.SetWriteDeadline, "PingConn.SetDeadline": p.SetDeadline,
			"PingConn.SetReadDeadline": p.SetReadDeadline, "PingConn.SetWriteDeadline": p.SetWriteDeadline,
		} {
			checkErr(t, name+" after Close", set(time.Now().Add(time.Second)), net.ErrClosed)
		}
	})
}
