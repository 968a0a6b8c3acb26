package ustack

import (
	"io"
	"testing"

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
		for range 50 { // warm up: buffers, pools, windows
			round()
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
