package pipe

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/ustack/ustack/link"
)

// TestSwapExchangesBuffers: on a pipe without impairment, a writer and a
// reader that allow it (link.Packet.Swap) hand a large frame over by
// exchanging buffers: the reader gets the writer's very buffer, the
// writer a buffer at least as long in its place; what the writer then
// writes into its new buffer does not touch the frame. Without Swap the
// callers keep their buffers and the frame is copied; a small frame is
// always copied.
func TestSwapExchangesBuffers(t *testing.T) {
	a, b := New(Config{})
	defer a.Close()
	p, _ := superFrame(1, 40, 1460, 0, link.Ethernet)
	want := append([]byte(nil), p.Frame()...)
	orig := &p.Buf[0]
	p.Swap = true
	out := []link.Packet{p}
	in := batch(1, link.MaxSuperFrame)
	in[0].Swap = true
	readerOrig := &in[0].Buf[0]
	// The pipe has no buffer to give the writer yet: the first frame is
	// copied, and the reader takes the copy's buffer, leaving its own.
	if n, err := a.WriteBatch(out); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if &out[0].Buf[0] != orig {
		t.Fatal("the writer's buffer was taken with nothing to give back")
	}
	if n, err := b.ReadBatch(in); n != 1 || err != nil || !bytes.Equal(in[0].Frame(), want) {
		t.Fatal(n, err)
	}
	if &in[0].Buf[0] == readerOrig || len(in[0].Buf) < link.MaxSuperFrame {
		t.Fatal("the reader's buffer was not exchanged")
	}
	// Now the writer's buffer is taken, frame and all, and the reader's
	// old one given in its place.
	if n, err := a.WriteBatch(out); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if &out[0].Buf[0] != readerOrig {
		t.Fatal("the writer did not get the reader's old buffer")
	}
	for i := range out[0].Buf {
		out[0].Buf[i] = 0xee // the writer's new buffer is its own
	}
	if n, err := b.ReadBatch(in); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if &in[0].Buf[0] != orig || !bytes.Equal(in[0].Frame(), want) {
		t.Fatal("the reader did not get the writer's buffer with the frame intact")
	}
	if b.rx.swapped != 3 {
		t.Errorf("%d exchanges, want 3", b.rx.swapped)
	}

	// Without Swap: copies, buffers kept.
	q, _ := superFrame(1, 40, 1460, 0, link.Ethernet)
	qb := &q.Buf[0]
	a.WriteBatch([]link.Packet{q})
	in2 := batch(1, link.MaxSuperFrame)
	ib := &in2[0].Buf[0]
	b.ReadBatch(in2)
	if &in2[0].Buf[0] != ib || &q.Buf[0] != qb || !bytes.Equal(in2[0].Frame(), want) {
		t.Error("without Swap a buffer changed hands")
	}
	// A small frame is copied even with Swap.
	small := link.Packet{Buf: make([]byte, link.MaxSuperFrame), N: 60, Swap: true}
	sb := &small.Buf[0]
	a.WriteBatch([]link.Packet{small})
	if &small.Buf[0] != sb {
		t.Error("a small frame was taken by exchange")
	}
	in[0].N = 0
	before := &in[0].Buf[0]
	b.ReadBatch(in)
	if &in[0].Buf[0] != before || in[0].N != 60 {
		t.Error("a small frame's buffer was handed to the reader")
	}
}

// TestSwapAllocs: frames handed over by exchange, and by copy when the
// callers' buffers are too short to exchange, allocate nothing in steady
// state.
func TestSwapAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	for _, sizes := range []struct{ w, r int }{
		{link.MaxSuperFrame + 111, link.MaxSuperFrame + 111}, // exchanged both ways
		{65549, 65664}, // the writer's 4 bytes short: copied on write
	} {
		a, b := New(Config{})
		p, _ := superFrame(1, 44, 1460, 0, link.Ethernet)
		out := []link.Packet{{Buf: make([]byte, sizes.w), Swap: true}}
		out[0].N = copy(out[0].Buf, p.Frame())
		out[0].Offload = p.Offload
		in := batch(8, sizes.r)
		for i := range in {
			in[i].Swap = true
		}
		allocs := testing.AllocsPerRun(500, func() {
			if _, err := a.WriteBatch(out); err != nil {
				t.Fatal(err)
			}
			if n, err := b.ReadBatch(in); n != 1 || err != nil {
				t.Fatal(n, err)
			}
			out[0].N = copy(out[0].Buf, in[0].Frame())
		})
		if allocs != 0 {
			t.Errorf("buffers %d/%d: %v allocations per frame", sizes.w, sizes.r, allocs)
		}
		a.Close()
	}
}

// TestSwapConcurrent: a writer that scribbles over its buffers right
// after each write and a reader that checks every frame, both exchanging,
// at full speed (run with -race): no frame is ever changed after it was
// written.
func TestSwapConcurrent(t *testing.T) {
	a, b := New(Config{QueueLen: 4096})
	defer a.Close()
	const frames = 3000
	var wg sync.WaitGroup
	wg.Go(func() {
		out := make([]link.Packet, 4)
		for i := range out {
			// Super-frames (the pipe does not look inside on this
			// path): longer than the MTU, so exchanged.
			out[i] = link.Packet{Buf: make([]byte, link.MaxSuperFrame), Swap: true,
				Offload: link.Offload{GSOType: link.GSOTCPv4, GSOSize: 1000}}
		}
		for seq := 0; seq < frames; {
			k := 0
			for ; k < len(out) && seq < frames; k++ {
				n := 3000 + seq%1000
				fill(out[k].Buf[:n], uint32(seq))
				out[k].N = n
				seq++
			}
			if _, err := a.WriteBatch(out[:k]); err != nil {
				t.Errorf("WriteBatch: %v", err)
				a.Close() // unblocks the reader
				return
			}
			for i := range out[:k] {
				for j := range out[i].Buf[:100] {
					out[i].Buf[j] = 0xff
				}
			}
		}
	})
	in := batch(8, link.MaxSuperFrame)
	for i := range in {
		in[i].Swap = true
	}
	got := 0
	for got < frames {
		n, err := b.ReadBatch(in)
		if err != nil {
			break
		}
		for i := range in[:n] {
			f := in[i].Frame()
			seq := binary.BigEndian.Uint32(f)
			want := make([]byte, len(f))
			fill(want, seq)
			if !bytes.Equal(f, want) {
				t.Fatalf("frame %d changed after it was written", seq)
			}
		}
		got += n
	}
	wg.Wait()
	if got != frames || b.rx.swapped == 0 {
		t.Errorf("%d of %d frames read, %d buffers exchanged", got, frames, b.rx.swapped)
	}
}

func fill(b []byte, seq uint32) {
	for i := range b {
		b[i] = byte(i) ^ byte(seq)
	}
	binary.BigEndian.PutUint32(b, seq)
}
