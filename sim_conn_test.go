package ustack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/link/pipe"
)

// The blocking net.Conn layer over simulated links (issue 4 item 2):
// every test runs in a testing/synctest bubble, so the pipes' delays,
// the stacks' timers and the deadlines all run on the bubble's fake
// clock — exact and instant — while the runtime's goroutines, locks and
// wake-ups are the real ones. The links are link/pipe endpoints impaired
// by package impair (loss, delay, jitter, reordering, duplication).

// impaired returns a pipe configuration with the given impairments in
// both directions.
func impaired(seed uint64, c impair.Config) pipe.Config {
	return pipe.Config{Impair: &c, Seed: seed}
}

// TestSimTransferImpaired: bulk transfers both ways at once through
// io.Copy, over links that lose, delay, jitter, reorder and duplicate
// frames; every byte arrives, checked by SHA-256, and both ends see EOF
// after the peer's CloseWrite.
func TestSimTransferImpaired(t *testing.T) {
	for i, c := range []impair.Config{
		{Delay: 20 * time.Millisecond, Loss: 0.02},
		{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Reorder: 0.05, Dup: 0.02},
		// Bursts of two frames on average. The chain moves per frame, so
		// on a link gone quiet (a sender backing off its RTO) a burst
		// lasts in time until enough frames pass: with long bursts (R of
		// 30 %) a run could lose every retransmission and keep-alive
		// answer for the 150 s keep-alive gives a silent peer.
		{Delay: 30 * time.Millisecond, GE: impair.GilbertElliott{P: 0.005, R: 0.5, LossBad: 1}, Rate: 20_000_000, Queue: 50},
		{Delay: 5 * time.Millisecond, Loss: 0.05, Corrupt: 0.01, CorruptOffset: 14},
	} {
		t.Run(c.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newTestNet(t, impaired(uint64(i+1), c), Config{})
				ln, err := n.A.Listen("tcp", ":80")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				const size = 2 << 20
				accepted := acceptOne(t, ln)
				cl, err := n.B.Dial("tcp", "10.0.0.1:80")
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				srv := <-accepted
				defer srv.Close()
				// Each end sends its stream and half-closes, and reads the
				// other's to EOF.
				var wg sync.WaitGroup
				sums := make([][32]byte, 2)
				for k, conn := range []net.Conn{cl, srv} {
					wg.Add(2)
					go func() {
						defer wg.Done()
						if _, err := io.Copy(conn, newPayload(uint64(k), size)); err != nil {
							t.Errorf("write: %v", err)
						}
						conn.(*TCPConn).CloseWrite()
					}()
					go func() {
						defer wg.Done()
						h := sha256.New()
						if got, err := io.Copy(h, conn); err != nil || got != size {
							t.Errorf("read %d bytes, %v", got, err)
						}
						copy(sums[k][:], h.Sum(nil))
					}()
				}
				start := time.Now()
				wg.Wait()
				// Each end read the other's stream.
				if sums[0] != payloadSum(1, size) || sums[1] != payloadSum(0, size) {
					t.Error("SHA-256 mismatch")
				}
				st := n.A.Stats().TCP
				sa := n.ea.Stats()
				t.Logf("%v of virtual time; A retransmitted %d segments; link A→B dropped %d, corrupted %d",
					time.Since(start), st.RetransSegs, sa.Dropped(), sa.Impair.Corrupted)
			})
		})
	}
}

// TestSimDeadlines: read, write and accept deadlines fire exactly when
// set (virtual time), can be extended and cleared while a call waits, and
// a dial into a dead link gives up at its context's deadline.
func TestSimDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, impaired(1, impair.Config{Delay: 10 * time.Millisecond, Loss: 0.01}), Config{})
		ln, err := n.A.ListenTCP("tcp", ":80", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := acceptOne(t, ln)
		c, err := n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		srv := <-accepted
		defer srv.Close()

		// A read deadline extended while the read waits: it fires at the
		// new time, not the old.
		start := time.Now()
		c.SetReadDeadline(start.Add(time.Second))
		go func() {
			time.Sleep(500 * time.Millisecond)
			c.SetReadDeadline(start.Add(3 * time.Second))
		}()
		_, err = c.Read(make([]byte, 1))
		checkErr(t, "extended read deadline", err, os.ErrDeadlineExceeded)
		if el := time.Since(start); el != 3*time.Second {
			t.Errorf("extended read deadline fired after %v, want 3s", el)
		}

		// A read deadline cleared while the read waits: the read goes
		// on until data arrives.
		start = time.Now()
		c.SetReadDeadline(start.Add(time.Second))
		go func() {
			time.Sleep(500 * time.Millisecond)
			c.SetReadDeadline(time.Time{})
			time.Sleep(2 * time.Second)
			srv.Write([]byte("late"))
		}()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "late" {
			t.Fatalf("read after clearing the deadline: %q, %v", buf, err)
		}
		if el := time.Since(start); el < 2500*time.Millisecond {
			t.Errorf("read returned after %v, before the data was sent", el)
		}

		// A write deadline while the peer does not read: the windows and
		// the send buffer fill, and Write returns what it queued.
		c.(*TCPConn).SetWriteBuffer(64 << 10)
		srv.(*TCPConn).SetReadBuffer(16 << 10)
		start = time.Now()
		c.SetWriteDeadline(start.Add(5 * time.Second))
		k, err := c.Write(make([]byte, 64<<20))
		checkErr(t, "write deadline", err, os.ErrDeadlineExceeded)
		if el := time.Since(start); el != 5*time.Second {
			t.Errorf("write deadline fired after %v, want 5s", el)
		}
		if k == 0 || k >= 64<<20 {
			t.Errorf("write queued %d bytes before its deadline", k)
		}
		c.SetWriteDeadline(time.Time{})

		// An accept deadline.
		start = time.Now()
		ln.SetDeadline(start.Add(2 * time.Second))
		_, err = ln.Accept()
		checkErr(t, "accept deadline", err, os.ErrDeadlineExceeded)
		if el := time.Since(start); el != 2*time.Second {
			t.Errorf("accept deadline fired after %v, want 2s", el)
		}
		ln.SetDeadline(time.Time{})

		// A dial whose SYNs all vanish gives up at its context's deadline.
		n.eb.SetUp(false)
		start = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		_, err = n.B.DialContext(ctx, "tcp", "10.0.0.1:80")
		checkErr(t, "dial deadline", err, os.ErrDeadlineExceeded)
		if el := time.Since(start); el != 4*time.Second {
			t.Errorf("dial gave up after %v, want 4s", el)
		}
		n.eb.SetUp(true)
	})
}

// TestSimCloseUnblocks: Close of a connection unblocks a Read and a Write
// waiting on it, Close of a listener an Accept, and Stack.Close every
// call of every socket — over an impaired link, each at the instant of
// the Close (synctest.Wait makes sure the calls are blocked first).
func TestSimCloseUnblocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, impaired(2, impair.Config{Delay: 15 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.02}), Config{})
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		dial := func() (c, srv net.Conn) {
			accepted := acceptOne(t, ln)
			c, err := n.B.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			return c, <-accepted
		}
		type result struct {
			what string
			err  error
			at   time.Time
		}
		results := make(chan result, 10)
		call := func(what string, f func() error) {
			go func() {
				err := f()
				results <- result{what, err, time.Now()}
			}()
		}
		expect := func(want int, closedAt time.Time) {
			t.Helper()
			for range want {
				r := <-results
				checkErr(t, r.what, r.err, net.ErrClosed)
				if !r.at.Equal(closedAt) {
					t.Errorf("%s returned %v after the Close", r.what, r.at.Sub(closedAt))
				}
			}
		}

		// Read and Write blocked on one connection; Close unblocks both.
		c, srv := dial()
		srv.(*TCPConn).SetReadBuffer(8 << 10)
		c.(*TCPConn).SetWriteBuffer(8 << 10)
		call("blocked read", func() error { _, err := c.Read(make([]byte, 1)); return err })
		call("blocked write", func() error { _, err := c.Write(make([]byte, 16<<20)); return err })
		synctest.Wait()
		closedAt := time.Now()
		c.Close()
		expect(2, closedAt)
		srv.Close()

		// Accept blocked on a listener.
		call("blocked accept", func() error { _, err := ln.Accept(); return err })
		synctest.Wait()
		closedAt = time.Now()
		ln.Close()
		expect(1, closedAt)

		// Stack.Close unblocks a read, a write, an accept and a UDP read.
		ln2, err := n.A.Listen("tcp", ":81")
		if err != nil {
			t.Fatal(err)
		}
		accepted := acceptOne(t, ln2)
		c2, err := n.A.Dial("tcp", "10.0.0.2:9") // refused: B has no listener
		if err == nil {
			c2.Close()
			t.Fatal("dial to a closed port succeeded")
		}
		c3, err := n.B.Dial("tcp", "10.0.0.1:81")
		if err != nil {
			t.Fatal(err)
		}
		srv3 := <-accepted
		srv3.(*TCPConn).SetWriteBuffer(8 << 10)
		c3.(*TCPConn).SetReadBuffer(8 << 10)
		u, err := n.A.ListenPacket("udp", ":53")
		if err != nil {
			t.Fatal(err)
		}
		call("read on a closing stack", func() error { _, err := srv3.Read(make([]byte, 1)); return err })
		call("write on a closing stack", func() error { _, err := srv3.Write(make([]byte, 16<<20)); return err })
		call("accept on a closing stack", func() error { _, err := ln2.Accept(); return err })
		call("UDP read on a closing stack", func() error { _, _, err := u.ReadFrom(make([]byte, 10)); return err })
		synctest.Wait()
		closedAt = time.Now()
		n.A.Close()
		expect(4, closedAt)
		// B's side learns of it: by the RST, or, since Stack.Close also
		// closes the pipe (both ends) and with it the RST in flight, by
		// keep-alive giving up.
		_, err = c3.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.ETIMEDOUT) {
			t.Errorf("peer of a closed stack: %v, want ECONNRESET or ETIMEDOUT", err)
		}
		c3.Close()
	})
}

// TestSimAcceptBacklog: a listener with an accept backlog of 2 that does
// not accept while 6 clients connect over a lossy link. As on Linux, the
// handshakes beyond the backlog stay half-open (the final ACK is dropped,
// ListenOverflows counts it) while the clients already see them
// established; when the server accepts, the held handshakes complete
// (SYN-ACK retransmission) and every connection carries its data.
func TestSimAcceptBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, impaired(3, impair.Config{Delay: 10 * time.Millisecond, Loss: 0.02}), Config{})
		ln, err := n.A.ListenTCP("tcp", ":80", 2)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		const clients = 6
		conns := make(chan net.Conn, clients)
		for i := range clients {
			go func() {
				c, err := n.B.Dial("tcp", "10.0.0.1:80")
				if err != nil {
					t.Errorf("dial %d: %v", i, err)
					conns <- nil
					return
				}
				fmt.Fprintf(c, "client %d\n", i)
				conns <- c
			}()
		}
		var clientConns []net.Conn
		for range clients {
			if c := <-conns; c != nil {
				clientConns = append(clientConns, c)
			}
		}
		time.Sleep(5 * time.Second)
		li := n.A.Listeners()
		if len(li) != 1 || li[0].AcceptQueue != 2 {
			t.Errorf("listener queues after 5 s: %+v, want 2 waiting to be accepted", li)
		}
		if st := n.A.Stats().TCP; st.ListenOverflows == 0 {
			t.Error("no handshake was held back (ListenOverflows 0)")
		}
		// Now accept them all; each carries its client's line.
		seen := map[string]bool{}
		for range clients {
			ln.SetDeadline(time.Now().Add(time.Minute))
			s, err := ln.Accept()
			if err != nil {
				t.Fatalf("accept: %v", err)
			}
			line := make([]byte, 9)
			if _, err := io.ReadFull(s, line); err != nil {
				t.Fatalf("read: %v", err)
			}
			seen[string(line)] = true
			s.Close()
		}
		if len(seen) != clients {
			t.Errorf("accepted %d distinct clients, want %d", len(seen), clients)
		}
		for _, c := range clientConns {
			c.Close()
		}
	})
}

// TestSimSlowReaderUnderLoss: a reader that pauses for seconds at a time
// over a lossy, reordering link: the window closes and reopens, zero-
// window probes and retransmissions mix, and every byte arrives.
func TestSimSlowReaderUnderLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A 16 KiB receive buffer from the start: the window a handshake
		// announced can never shrink later (RFC 9293 §3.8.6).
		cfg := Config{}
		cfg.TCP.RcvBuf = 16 << 10
		n := newTestNet(t, impaired(4, impair.Config{Delay: 20 * time.Millisecond, Loss: 0.02, Reorder: 0.02}), cfg)
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		const size = 1 << 20
		go func() {
			c, err := ln.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			io.Copy(c, newPayload(9, size))
		}()
		c, err := n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h := sha256.New()
		buf := make([]byte, 4096)
		var got int64
		for {
			k, err := c.Read(buf)
			h.Write(buf[:k])
			got += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read after %d bytes: %v", got, err)
			}
			if got%(256<<10) < 4096 {
				time.Sleep(3 * time.Second) // pause: the window closes
			}
		}
		if got != size || !bytes.Equal(h.Sum(nil), sumSlice(payloadSum(9, size))) {
			t.Fatalf("read %d bytes or SHA-256 mismatch", got)
		}
		if p := n.A.Stats().TCP.ZeroWindowProbes; p == 0 {
			t.Error("no zero-window probe while the reader paused")
		}
	})
}
