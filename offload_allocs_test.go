package ustack

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/ustack/ustack/link/pipe"
)

// TestBulkAllocs: bulk data between two stacks over a pipe with its
// default offloads (a veth's: TSO, checksum offload; frames handed over
// by exchanging buffers, link.Packet.Swap) allocates nothing per segment
// in steady state: 256 KiB written and read, again and again.
func TestBulkAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random; make allocs runs this without it")
	}
	for _, mtu := range []int{1500, 65535} {
		n := newTestNet(t, pipe.Config{MTU: mtu, QueueLen: 4096}, Config{})
		c, srv := connPair(t, n)
		// Fixed buffers (auto-tuning off, as SO_RCVBUF/SO_SNDBUF do):
		// an auto-tuned window keeps growing now and then for thousands
		// of rounds, and each growth takes new chunks — an allocation per
		// growth of the window, not per segment, which is what this
		// measures (it failed one run in two that way).
		c.SetReadBuffer(1 << 20)
		srv.SetWriteBuffer(1 << 20)
		out, in := make([]byte, 256<<10), make([]byte, 256<<10)
		start, wrote := make(chan struct{}), make(chan error)
		go func() {
			for range start {
				_, err := srv.Write(out)
				wrote <- err
			}
		}()
		round := func() {
			start <- struct{}{}
			if _, err := io.ReadFull(c, in); err != nil {
				t.Fatal(err)
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
		}
		// Warm up — buffers, pools, windows — until 50 rounds in a row
		// allocate nothing, as AllocsPerRun measures them (on one P).
		// The windows grow with receive-buffer auto-tuning, and with
		// frames crossing in the writer's goroutine (link.Receiver) a
		// writer on one P fills them before the reader runs: the chunks
		// in flight, and so those the pool has made, grow for a few
		// hundred rounds (up to about 3 MiB) before they level off.
		if !settleAllocs(round) {
			t.Fatalf("MTU %d: still allocating after 2,000 rounds of 256 KiB", mtu)
		}
		a := testing.AllocsPerRun(200, round)
		close(start)
		// 256 KiB is 180 segments at MTU 1500: one allocation per
		// round would already be far below one per segment, so allow
		// none at all.
		if a != 0 {
			t.Errorf("MTU %d: %v allocations per 256 KiB", mtu, a)
		}
	}
}

// TestRoundTripAllocs: a 64-byte request and its response between two
// stacks over a pipe (the bench's rr), with and without deadlines, and
// without or with offloads, allocate nothing per transaction in steady
// state: the frames cross in the writer's goroutine (link.Receiver), the
// shard's timer is not reset on every round trip, and a waiting call
// parks on its socket's signal.
func TestRoundTripAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random; make allocs runs this without it")
	}
	for _, tc := range []struct {
		name     string
		pc       pipe.Config
		deadline bool
	}{
		{"offloads", pipe.Config{QueueLen: 4096}, false},
		{"offloads, deadlines", pipe.Config{QueueLen: 4096}, true},
		{"no offloads", pipe.Config{QueueLen: 4096, NoOffloads: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t, tc.pc, Config{})
			c, srv := connPair(t, n)
			if tc.deadline {
				far := time.Now().Add(time.Hour)
				c.SetDeadline(far)
				srv.SetDeadline(far)
			}
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(srv, buf); err != nil {
						done <- err
						return
					}
					if _, err := srv.Write(buf); err != nil {
						done <- err
						return
					}
				}
			}()
			req, resp := make([]byte, 64), make([]byte, 64)
			round := func() {
				if _, err := c.Write(req); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, resp); err != nil {
					t.Fatal(err)
				}
			}
			for range 1000 {
				round()
			}
			if a := testing.AllocsPerRun(2000, round); a != 0 {
				t.Errorf("%v allocations per round trip", a)
			}
			c.Close()
			<-done
		})
	}
}

// allocsIn returns how many allocations runs calls of f made in all,
// on one P as testing.AllocsPerRun counts them, without its rounding
// down to a whole number per call.
func allocsIn(runs int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&m1)
	return m1.Mallocs - m0.Mallocs
}

// settleAllocs runs round until 50 rounds in a row allocate nothing, as
// AllocsPerRun counts them and on one P (allocsIn), for at most 40 tries
// (2,000 rounds and more); it reports whether they did.
func settleAllocs(round func()) bool {
	for range 40 {
		if testing.AllocsPerRun(50, round) == 0 && allocsIn(50, round) == 0 {
			return true
		}
	}
	return false
}
