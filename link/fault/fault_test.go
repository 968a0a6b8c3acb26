package fault

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
)

func batch(n, size int) []link.Packet {
	pkts := make([]link.Packet, n)
	for i := range pkts {
		pkts[i].Buf = make([]byte, size)
	}
	return pkts
}

func frame(p *link.Packet, seq uint32, n int) {
	p.N = n
	for i := range p.Buf[:n] {
		p.Buf[i] = byte(i)
	}
	binary.BigEndian.PutUint32(p.Buf, seq)
}

func seqOf(p *link.Packet) uint32 { return binary.BigEndian.Uint32(p.Buf) }

// send writes count frames of size bytes through e, one per call, gap
// apart.
func send(t *testing.T, e link.Endpoint, count, size int, gap time.Duration) {
	t.Helper()
	out := batch(1, size)
	for i := range count {
		frame(&out[0], uint32(i), size)
		if n, err := e.WriteBatch(out); n != 1 || err != nil {
			t.Errorf("WriteBatch = %d, %v", n, err)
			return
		}
		if gap > 0 {
			time.Sleep(gap)
		}
	}
}

// recvAll reads from e until it is closed, returning the sequence numbers
// and arrival times.
func recvAll(e link.Endpoint) (seqs []uint32, at []time.Duration) {
	start := time.Now()
	in := batch(64, 1514)
	for {
		n, err := e.ReadBatch(in)
		if err != nil {
			return
		}
		for i := range in[:n] {
			seqs = append(seqs, seqOf(&in[i]))
			at = append(at, time.Since(start))
		}
	}
}

func TestPassThrough(t *testing.T) {
	leaktest.Check(t)
	a, b := pipe.New(pipe.Config{})
	f := New(a, impair.Config{}, 1)
	if f.MTU() != 1500 || f.Medium() != link.Ethernet || f.BatchSize() != 64 || f.Caps() != a.Caps() || f.Caps() == 0 {
		t.Error("properties not passed through")
	}
	send(t, f, 100, 200, 0)
	in := batch(200, 1514)
	if n, err := b.ReadBatch(in); n != 100 || err != nil {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	for i := range in[:100] {
		if seqOf(&in[i]) != uint32(i) || in[i].N != 200 {
			t.Fatalf("frame %d: seq %d", i, seqOf(&in[i]))
		}
	}
	if s := f.Stats(); s.Tx.Delivered != 100 || s.Rx.Offered != 0 {
		t.Errorf("stats %+v", s)
	}
	// Reads pass straight through.
	b.WriteBatch(in[:3])
	if n, err := f.ReadBatch(batch(4, 1514)); n != 3 || err != nil {
		t.Errorf("ReadBatch = %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadBatch(in); !errors.Is(err, net.ErrClosed) {
		t.Errorf("wrapped endpoint not closed: %v", err)
	}
	if err := f.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	for _, err := range []error{
		func() error { _, err := f.WriteBatch(in[:1]); return err }(),
		func() error { _, err := f.ReadBatch(in[:1]); return err }(),
	} {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
	}
}

func TestTxDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pipe.New(pipe.Config{})
		f := New(a, impair.Config{Delay: 50 * time.Millisecond}, 1)
		go func() {
			send(t, f, 10, 100, time.Millisecond)
			time.Sleep(time.Second)
			f.Close()
		}()
		seqs, at := recvAll(b)
		if len(seqs) != 10 {
			t.Fatalf("got %d frames", len(seqs))
		}
		for i := range seqs {
			if seqs[i] != uint32(i) || at[i] != time.Duration(50+i)*time.Millisecond {
				t.Errorf("frame %d (seq %d) at %v, want %v", i, seqs[i], at[i], time.Duration(50+i)*time.Millisecond)
			}
		}
	})
}

func TestTxRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 10 Mbit/s: a 1250-byte frame takes 1 ms.
		a, b := pipe.New(pipe.Config{})
		f := New(a, impair.Config{Rate: 10_000_000}, 1)
		go func() {
			out := batch(50, 1250)
			for i := range out {
				frame(&out[i], uint32(i), 1250)
			}
			f.WriteBatch(out)
			time.Sleep(time.Second)
			f.Close()
		}()
		seqs, at := recvAll(b)
		if len(seqs) != 50 {
			t.Fatalf("got %d frames", len(seqs))
		}
		for i := range seqs {
			if at[i] != time.Duration(i+1)*time.Millisecond {
				t.Errorf("frame %d at %v", i, at[i])
			}
		}
	})
}

func TestTxLossDupCorrupt(t *testing.T) {
	leaktest.Check(t)
	a, b := pipe.New(pipe.Config{QueueLen: 1 << 16})
	const n, size, off = 20000, 100, 14
	f := New(a, impair.Config{Loss: 0.1, Dup: 0.05, Corrupt: 0.1, CorruptOffset: off}, 42)
	defer f.Close()
	out := batch(1, size)
	for i := range n {
		frame(&out[0], uint32(i), size)
		f.WriteBatch(out)
		// The caller's buffer is never corrupted.
		for j := 4; j < size; j++ {
			if out[0].Buf[j] != byte(j) {
				t.Fatalf("frame %d: caller's byte %d changed", i, j)
			}
		}
	}
	s := f.Stats()
	in := batch(64, 1514)
	var got, flipped int
	for uint64(got) < s.Tx.Delivered {
		k, err := b.ReadBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		for i := range in[:k] {
			p := &in[i]
			diff := 0
			for j := off; j < size; j++ {
				diff += bits.OnesCount8(p.Buf[j] ^ byte(j))
			}
			for j := 0; j < off; j++ {
				if j >= 4 && p.Buf[j] != byte(j) {
					t.Fatalf("byte %d before the corruption offset changed", j)
				}
			}
			if diff > 1 {
				t.Fatalf("%d bits flipped in one frame", diff)
			}
			flipped += diff
			got++
		}
	}
	if uint64(flipped) != s.Tx.Corrupted {
		t.Errorf("%d frames corrupted, counters say %d", flipped, s.Tx.Corrupted)
	}
	lossRate := float64(s.Tx.DroppedLoss) / float64(n+int(s.Tx.Duplicated))
	if lossRate < 0.09 || lossRate > 0.11 || s.Tx.Duplicated < 800 || s.Tx.Duplicated > 1200 {
		t.Errorf("counters %+v", s.Tx)
	}
}

func TestReorderInOrderOfDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pipe.New(pipe.Config{})
		cfg := impair.Config{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Reorder: 0.2}
		f := New(a, cfg, 3)
		go func() {
			send(t, f, 200, 100, time.Millisecond)
			time.Sleep(time.Second)
			f.Close()
		}()
		seqs, at := recvAll(b)
		if len(seqs) != 200 {
			t.Fatalf("got %d frames", len(seqs))
		}
		for i := 1; i < len(at); i++ {
			if at[i] < at[i-1] {
				t.Fatalf("frames delivered out of due order")
			}
		}
		if s := f.Stats(); s.Tx.Overtook == 0 || s.Tx.Reordered == 0 {
			t.Errorf("no reordering: %+v", s.Tx)
		}
		var inversions int
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				inversions++
			}
		}
		if inversions == 0 {
			t.Error("receiver saw no reordering")
		}
	})
}

func TestRxImpairment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pipe.New(pipe.Config{})
		f := NewWith(a, Options{Rx: &impair.Config{Delay: 20 * time.Millisecond, Loss: 0.5}, Seed: 5})
		go func() {
			send(t, b, 100, 100, time.Millisecond)
			time.Sleep(time.Second)
			f.Close()
		}()
		seqs, at := recvAll(f)
		s := f.Stats()
		if uint64(len(seqs)) != s.Rx.Delivered || s.Rx.Offered != 100 || s.Rx.DroppedLoss == 0 || s.Tx.Offered != 0 {
			t.Errorf("got %d frames; stats %+v", len(seqs), s)
		}
		for i := range seqs {
			if want := time.Duration(20+seqs[i]) * time.Millisecond; at[i] != want {
				t.Errorf("frame %d at %v, want %v", seqs[i], at[i], want)
			}
		}
		// Writes are not impaired.
		if _, err := f.WriteBatch(batch(1, 10)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after close: %v", err)
		}
	})
}

func TestRxWrappedEndpointClosed(t *testing.T) {
	leaktest.Check(t)
	a, b := pipe.New(pipe.Config{})
	f := NewWith(a, Options{Rx: &impair.Config{}})
	defer f.Close()
	send(t, b, 3, 100, 0)
	in := batch(8, 1514)
	var got int
	for got < 3 {
		n, err := f.ReadBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	b.Close() // closes the cable under the fault endpoint
	if _, err := f.ReadBatch(in); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch after the wrapped endpoint closed: %v", err)
	}
}

func TestCloseUnblocksAndStops(t *testing.T) {
	for _, opts := range []Options{
		{Tx: &impair.Config{Delay: time.Hour}},
		{Tx: &impair.Config{Delay: time.Hour}, Rx: &impair.Config{Delay: time.Hour}},
		{},
	} {
		t.Run("", func(t *testing.T) {
			leaktest.Check(t)
			a, b := pipe.New(pipe.Config{})
			f := NewWith(a, opts)
			send(t, f, 5, 100, 0) // held for an hour (or sent)
			send(t, b, 5, 100, 0)
			if opts.Rx == nil {
				f.ReadBatch(batch(8, 1514))
			}
			errc := make(chan error)
			go func() {
				_, err := f.ReadBatch(batch(8, 1514))
				errc <- err
			}()
			time.Sleep(10 * time.Millisecond)
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("ReadBatch: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadBatch still blocked after Close")
			}
		})
	}
}

func TestQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pipe.New(pipe.Config{})
		defer b.Close()
		f := NewWith(a, Options{Tx: &impair.Config{Delay: time.Millisecond}, QueueLen: 10})
		defer f.Close()
		send(t, f, 15, 100, 0)
		if s := f.Stats(); s.TxQueueFull != 5 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestMTUAndDown(t *testing.T) {
	a, b := pipe.New(pipe.Config{Medium: link.IP, MTU: 1000})
	f := New(a, impair.Config{MTU: 500}, 1)
	defer f.Close()
	out := batch(3, 1001)
	out[0].N, out[1].N, out[2].N = 600, 1001, 10
	if n, err := f.WriteBatch(out); n != 1 || !errors.Is(err, link.ErrFrameTooBig) {
		t.Errorf("WriteBatch = %d, %v", n, err)
	}
	out[0].N = -1
	if n, err := f.WriteBatch(out[:1]); n != 0 || err == nil {
		t.Errorf("WriteBatch of a bad packet = %d, %v", n, err)
	}
	f.SetUp(false)
	out[0].N = 10
	f.WriteBatch(out[:1])
	f.SetUp(true)
	f.WriteBatch(out[:1])
	s := f.Stats()
	if s.TxTooBig != 1 || s.Tx.DroppedMTU != 1 || s.Tx.DroppedDown != 1 || s.Tx.Delivered != 1 {
		t.Errorf("stats %+v", s)
	}
	if n, _ := b.ReadBatch(batch(4, 1000)); n != 1 {
		t.Errorf("read %d frames", n)
	}
}

// refuser is an endpoint that refuses the second frame of every batch of
// more than one.
type refuser struct {
	link.Endpoint
	calls int
}

func (r *refuser) WriteBatch(pkts []link.Packet) (int, error) {
	r.calls++
	if len(pkts) > 1 {
		return 1, errors.New("refused")
	}
	return len(pkts), nil
}

func TestWrappedEndpointErrors(t *testing.T) {
	a, _ := pipe.New(pipe.Config{})
	r := &refuser{Endpoint: a}
	f := New(r, impair.Config{}, 1)
	defer f.Close()
	n, err := f.WriteBatch(batch(4, 10))
	if n != 4 || err == nil || err.Error() != "refused" {
		t.Errorf("WriteBatch = %d, %v", n, err)
	}
	// Frames 1 and 3 are refused; the rest are written.
	if s := f.Stats(); s.TxErrors != 2 || r.calls != 2 {
		t.Errorf("TxErrors = %d after %d calls", s.TxErrors, r.calls)
	}
}

func TestDeterministic(t *testing.T) {
	run := func() (seqs []uint32) {
		synctest.Test(t, func(t *testing.T) {
			a, b := pipe.New(pipe.Config{})
			cfg := impair.Config{Loss: 0.1, Delay: 5 * time.Millisecond, Jitter: 3 * time.Millisecond, Dup: 0.05, Reorder: 0.1}
			f := NewWith(a, Options{Tx: &cfg, Rx: &cfg, Seed: 77})
			go func() {
				send(t, f, 500, 100, 100*time.Microsecond)
				time.Sleep(time.Second)
				f.Close()
			}()
			seqs, _ = recvAll(b)
		})
		return seqs
	}
	s1, s2 := run(), run()
	if len(s1) != len(s2) {
		t.Fatalf("%d vs %d frames", len(s1), len(s2))
	}
	for i := range s1 {
		if s1[i] != s2[i] {
			t.Fatalf("frame %d differs", i)
		}
	}
}

func TestConcurrent(t *testing.T) {
	leaktest.Check(t)
	a, b := pipe.New(pipe.Config{QueueLen: 1 << 16})
	cfg := impair.Config{Delay: time.Millisecond, Jitter: time.Millisecond, Loss: 0.01}
	f := NewWith(a, Options{Tx: &cfg, Rx: &cfg, Seed: 1, QueueLen: 1 << 16})
	var writers, readers sync.WaitGroup
	for range 3 {
		writers.Go(func() { send(t, f, 1000, 100, 0) })
	}
	writers.Go(func() { send(t, b, 1000, 100, 0) })
	var rxA, rxB atomic.Uint64
	count := func(e link.Endpoint, n *atomic.Uint64) {
		in := batch(64, 1514)
		for {
			k, err := e.ReadBatch(in)
			if err != nil {
				return
			}
			n.Add(uint64(k))
		}
	}
	readers.Go(func() { count(f, &rxA) })
	readers.Go(func() { count(b, &rxB) })
	writers.Wait()
	// Every frame is due within 2 ms of the last write; wait for all the
	// delivered ones to arrive before closing.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s := f.Stats()
		// The receive goroutine may not have read b's frames yet
		// (its 64 KiB buffers take a moment to make on a link with
		// GRO): wait for it to have offered them all.
		if rxB.Load() == s.Tx.Delivered && rxA.Load() == s.Rx.Delivered && s.Rx.Offered == 1000 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	f.Close()
	readers.Wait()
	s := f.Stats()
	if rxB.Load() != s.Tx.Delivered || rxA.Load() != s.Rx.Delivered || s.Tx.Offered != 3000 || s.Rx.Offered != 1000 {
		t.Errorf("received %d/%d, stats %+v", rxB.Load(), rxA.Load(), s)
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	a, b := pipe.New(pipe.Config{})
	f := New(a, impair.Config{Loss: 0.01, Corrupt: 0.01, Dup: 0.01}, 1)
	defer f.Close()
	out, in := batch(8, 1514), batch(16, 1514)
	for i := range out {
		frame(&out[i], uint32(i), 1000)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		f.WriteBatch(out)
		b.ReadBatch(in)
	})
	if allocs != 0 {
		t.Errorf("write+read allocates %v times", allocs)
	}
}
