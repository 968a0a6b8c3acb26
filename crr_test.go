package ustack

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/link/pipe"
)

// TestShardsReceiverNoDeadlock: two stacks of two shards each over a pipe,
// which hands frames to the far stack in the writer's goroutine
// (link.Receiver) and takes several writers at once
// (link.ConcurrentWriter). Connections open, exchange a request and a
// response and close, many at a time, in both directions, so that
// writers of both shards of both stacks deliver into each other at once.
// When the shards of a NIC took turns on one lock around WriteBatch, this
// hung in two runs of three under -race (16,000 connections): one shard's
// writer held the turn
// while it delivered into the peer, the peer's writer held its own turn
// while it delivered back into the other shard, whose reply waited for the
// first turn. Every exchange must complete, with the frames carried by the
// receive functions.
func TestShardsReceiverNoDeadlock(t *testing.T) {
	n := newTestNet(t, pipe.Config{}, Config{Shards: 2})
	if len(n.A.shards) != 2 || len(n.B.shards) != 2 {
		t.Fatalf("shards: %d and %d, want 2 and 2", len(n.A.shards), len(n.B.shards))
	}
	const clients = 8
	rounds := 1000
	if testing.Short() {
		rounds = 200
	}
	serve := func(s *Stack, ip netip.Addr) net.Listener {
		ln, err := s.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					buf := make([]byte, 64)
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					c.Write(buf)
				}()
			}
		}()
		return ln
	}
	lnA, lnB := serve(n.A, ipA), serve(n.B, ipB)
	defer lnA.Close()
	defer lnB.Close()
	errs := make(chan error, 2*clients)
	within(t, 2*time.Minute, "connect-request-response-close in both directions", func() {
		var wg sync.WaitGroup
		for i := range 2 * clients {
			from, to := n.A, lnB.Addr().String()
			if i%2 == 1 {
				from, to = n.B, lnA.Addr().String()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, resp := make([]byte, 64), make([]byte, 64)
				for r := range rounds {
					copy(req, fmt.Sprintf("client %d round %d", i, r))
					c, err := from.Dial("tcp", to)
					if err != nil {
						errs <- fmt.Errorf("client %d round %d: %w", i, r, err)
						return
					}
					_, err = c.Write(req)
					if err == nil {
						_, err = io.ReadFull(c, resp)
					}
					c.Close()
					if err != nil {
						errs <- fmt.Errorf("client %d round %d: %w", i, r, err)
						return
					}
					if !bytes.Equal(req, resp) {
						errs <- fmt.Errorf("client %d round %d: response %q, want %q", i, r, resp, req)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, e := range []struct {
		name string
		ep   *pipe.Endpoint
	}{{"A", n.ea}, {"B", n.eb}} {
		if st := e.ep.Stats(); st.RxDirect == 0 {
			t.Errorf("stack %s: no frame came through the receive function (%d frames read)", e.name, st.RxFrames)
		}
	}
}

// TestShardsPortsNotReusedAtOnce: with several shards a dial picks a local
// port that hashes to its shard. The search goes on from where the last
// one stopped, so no port to a destination comes back before the range is
// used up. Here the server closes first, so the client's side of each
// connection is gone at once and only the server holds it in TIME-WAIT:
// when the port came back at once (a random start, 3,000 connections over
// 64,512 ports all but surely repeat one), the SYN met that TIME-WAIT with
// no newer sequence number or timestamp, went unanswered and was
// retransmitted after a second.
func TestShardsPortsNotReusedAtOnce(t *testing.T) {
	cfg := Config{Shards: 2}
	cfg.EphemeralPorts = [2]uint16{1024, 65535}
	n := newTestNet(t, pipe.Config{}, cfg)
	ln, err := n.A.Listen("tcp", netip.AddrPortFrom(ipA, 80).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close() // the server closes first
		}
	}()
	seen := map[uint16]int{}
	within(t, time.Minute, "3,000 connections", func() {
		for i := range 3000 {
			c, err := n.B.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			port := c.LocalAddr().(*net.TCPAddr).Port
			if j, ok := seen[uint16(port)]; ok {
				t.Errorf("dial %d took port %d again (dial %d had it)", i, port, j)
			}
			seen[uint16(port)] = i
			io.Copy(io.Discard, c) // until the server's FIN
			c.Close()
		}
	})
	if st := n.B.Stats().TCP; st.SynRetrans != 0 {
		t.Errorf("%d SYNs retransmitted", st.SynRetrans)
	}
}

// TestWriteSignalOnDemand: a Write that finds room makes no write signal
// (waitOn.lazy; crr's Writes made one each, two allocations), and a Write
// that has to wait makes it then and still sees the room the reader
// makes: 8 MiB written while the peer reads nothing at first.
func TestWriteSignalOnDemand(t *testing.T) {
	n := newTestNet(t, pipe.Config{}, Config{})
	ln, err := n.A.Listen("tcp", netip.AddrPortFrom(ipA, 80).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := acceptOne(t, ln)
	c, err := n.B.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	defer s.Close()
	tc := c.(*TCPConn)
	if _, err := c.Write(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if tc.wsig.p.Load() != nil {
		t.Fatal("a Write that did not wait made the write signal")
	}
	const total = 8 << 20
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, total))
		done <- err
	}()
	got := 0
	within(t, time.Minute, "8 MiB through a Write that waits", func() {
		for tc.wsig.p.Load() == nil { // the Write waits for room
			runtime.Gosched()
		}
		buf := make([]byte, 64<<10)
		for got < total+64 {
			k, err := s.Read(buf)
			if err != nil {
				t.Errorf("read after %d bytes: %v", got, err)
				return
			}
			got += k
		}
		if err := <-done; err != nil {
			t.Errorf("write: %v", err)
		}
	})
	if got != total+64 {
		t.Errorf("read %d bytes, want %d", got, total+64)
	}
}

// TestCRRAllocs: what one connection costs in allocations, both ends
// together: dial, a 64-byte request and response, close (client first),
// the server accepting and answering in one goroutine; with one shard and
// two. At most 18: the two TCPConns and the core's two, the core's TCP
// state (the connection, its recovery, its sent queue, its congestion
// controller: eight), and three lazy signals at two allocations each
// (the dial's, each end's reader's). A Write that does not wait makes no
// signal and a successful dial no error address (there were 26).
func TestCRRAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random; make allocs runs this without it")
	}
	for _, shards := range []int{1, 2} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			cfg := Config{Shards: shards}
			cfg.EphemeralPorts = [2]uint16{1024, 65535}
			n := newTestNet(t, pipe.Config{QueueLen: 4096}, cfg)
			ln, err := n.A.Listen("tcp", netip.AddrPortFrom(ipA, 80).String())
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				buf := make([]byte, 64)
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					if _, err := io.ReadFull(c, buf); err == nil {
						c.Write(buf)
					}
					c.Close()
				}
			}()
			to := ln.Addr().String()
			req := make([]byte, 64)
			crr := func() {
				c, err := n.B.Dial("tcp", to)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Write(req); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, req); err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			for range 200 {
				crr()
			}
			a := testing.AllocsPerRun(2000, crr)
			t.Logf("%v allocations per connection", a)
			if a > 18 {
				t.Errorf("%v allocations per connection, want at most 18", a)
			}
		})
	}
}
