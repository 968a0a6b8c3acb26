package ustack

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
)

// outSlots calls f with every slot buffer of s's output queues, fill and
// flight, under each shard's lock once no writer holds the queue's token
// (the holder uses flight without the lock), and returns how many slots
// hold a buffer.
func outSlots(t *testing.T, s *Stack, f func(buf []byte)) (used int) {
	t.Helper()
	for _, sh := range s.shards {
		deadline := time.Now().Add(10 * time.Second)
		for {
			sh.mu.Lock()
			busy := false
			for _, q := range sh.out {
				busy = busy || q.writing.Load()
			}
			if !busy {
				break
			}
			sh.mu.Unlock()
			if time.Now().After(deadline) {
				t.Fatal("a writer still holds its token after 10 s")
			}
			time.Sleep(time.Millisecond)
		}
		for _, q := range sh.out {
			for _, batch := range [][]link.Packet{q.fill, q.flight} {
				for _, p := range batch {
					if p.Buf != nil {
						used++
						f(p.Buf)
					}
				}
			}
		}
		sh.mu.Unlock()
	}
	return used
}

// TestOutputSlotsSmallBuffers: a burst of handshakes over a link with
// offloads (the core's frames may be 64 KiB super-frames, so the spare
// buffer frames are polled into is 64 KiB) leaves the shards' output
// slots holding small buffers only (smallOut): SYNs and ACKs are copied
// out of the spare, not exchanged with it. Before, every slot a frame had
// gone through held a 64 KiB buffer — 2 × BatchSize of them per shard per
// NIC after a burst, about 400 B per idle connection end in the bench's
// callback memory row. Then bulk data through the same queues exchanges
// its big frames as before (zero-copy): the sending shard's slots have
// full buffers.
func TestOutputSlotsSmallBuffers(t *testing.T) {
	n := newTestNet(t, pipe.Config{MTU: 1500, QueueLen: 4096}, Config{})
	for _, s := range []*Stack{n.A, n.B} {
		for _, sh := range s.shards {
			sh.mu.Lock()
			size := sh.core.MaxFrameLen()
			sh.mu.Unlock()
			if size < copySmallMin {
				t.Fatalf("MaxFrameLen %d on a link with offloads: below copySmallMin (%d), so this test tests nothing", size, copySmallMin)
			}
		}
	}
	srv := &openCounterHandler{sig: make(chan struct{}, 1)}
	cli := &openCounterHandler{sig: make(chan struct{}, 1)}
	ln, err := n.A.ListenCallback("tcp", "10.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const pairs = 1000
	for range pairs {
		if _, err := n.B.DialCallback(netip.AddrPort{}, ln.Addr(), cli); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, h := range []*openCounterHandler{srv, cli} {
		for h.count() < pairs {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d connections open after 30 s", h.count(), pairs)
			}
			select {
			case <-h.sig:
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	used, long, longest := 0, 0, 0
	for _, s := range []*Stack{n.A, n.B} {
		used += outSlots(t, s, func(b []byte) {
			if len(b) > smallOut {
				long++
				longest = max(longest, len(b))
			}
		})
	}
	t.Logf("%d output slots hold a buffer after %d handshakes", used, pairs)
	if long > 0 {
		t.Errorf("%d output slots of %d hold buffers longer than %d bytes (up to %d) after a burst of handshakes", long, used, smallOut, longest)
	}
	if used == 0 {
		t.Fatal("no output slot holds a buffer: the handshakes' frames went through no queue, so this test tests nothing")
	}

	// Bulk data: big frames keep the exchange, and take full buffers.
	c, s := connPair(t, n)
	go func() {
		s.Write(make([]byte, 1<<20))
	}()
	if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	big := 0
	outSlots(t, n.A, func(b []byte) {
		if len(b) >= copySmallMin {
			big++
		}
	})
	if big == 0 {
		t.Error("no output slot of the sending stack holds a full buffer after 1 MiB of bulk data: its big frames were not exchanged")
	}
}

// TestMixedFramesAllocs: small and big frames through the same output
// slots — a 64-byte message and two of 64 KiB in turn, each answered
// with 64 bytes. Each message goes out in a batch of its own, and the
// queue's fill and flight change places at every batch, so with three a
// round the first slot of each carries a small frame one time and a
// 64 KiB super-frame another (with two, one of them would carry only
// the small ones). That allocates nothing in steady state: a slot that
// has carried a big frame keeps its full buffer and copies small frames
// into it, and a link's exchange hands back a buffer as long, so no slot
// goes back and forth between a small buffer and a full one. (A slot
// that took a fresh small buffer for every small frame fails here.)
func TestMixedFramesAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random; make allocs runs this without it")
	}
	n := newTestNet(t, pipe.Config{MTU: 1500, QueueLen: 4096}, Config{})
	c, srv := connPair(t, n)
	c.SetWriteBuffer(1 << 20)
	srv.SetReadBuffer(1 << 20)
	const small, big = 64, 64 << 10
	done := make(chan error, 1)
	go func() {
		in, resp := make([]byte, big), make([]byte, 64)
		for {
			for _, k := range []int{small, big, big} {
				if _, err := io.ReadFull(srv, in[:k]); err != nil {
					done <- err
					return
				}
				if _, err := srv.Write(resp); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	req, resp := make([]byte, big), make([]byte, 64)
	round := func() {
		for _, k := range []int{small, big, big} {
			if _, err := c.Write(req[:k]); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, resp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !settleAllocs(round) {
		t.Fatal("still allocating after 2,000 rounds of 64 B and twice 64 KiB")
	}
	if a := testing.AllocsPerRun(500, round); a != 0 {
		t.Errorf("%v allocations per round of 64 B and twice 64 KiB", a)
	}
	c.Close()
	<-done
}
