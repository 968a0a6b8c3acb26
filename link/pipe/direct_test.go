package pipe

import (
	"testing"
	"time"

	"github.com/ustack/ustack/link"
)

// parkReader starts a reader on e that appends what ReadBatch returns to
// got (a channel of sequence numbers), and waits until it is parked.
func parkReader(t *testing.T, e *Endpoint) <-chan uint32 {
	t.Helper()
	got := make(chan uint32, 64)
	go func() {
		pkts := batch(8, 1514)
		for {
			n, err := e.ReadBatch(pkts)
			if err != nil {
				close(got)
				return
			}
			for i := range n {
				got <- seqOf(&pkts[i])
			}
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); ; {
		e.rx.mu.Lock()
		parked := e.rx.parked
		e.rx.mu.Unlock()
		if parked {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatal("the reader never parked")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDirectReceiver: on a pipe without impairment, frames written to an
// end with a link.Receiver go to it in the writer's goroutine, in order,
// whole, and never to ReadBatch; an answer written from inside the call
// (the other way) is queued for the other end's reader rather than
// delivered by a nested call; and with SetReceiver(nil) frames go to
// ReadBatch again.
func TestDirectReceiver(t *testing.T) {
	a, b := New(Config{})
	defer a.Close()
	var got []uint32
	var nestedOK bool
	b.SetReceiver(func(pkts []link.Packet) {
		for i := range pkts {
			p := &pkts[i]
			if p.N != 100 || p.Buf[10] != 10 {
				t.Errorf("frame %d: %d bytes, content %v", seqOf(p), p.N, p.Buf[:12])
			}
			got = append(got, seqOf(p))
			if seqOf(p) == 3 {
				// b answers from inside the call: a's side has a
				// receiver too, but this write is nested.
				write(t, b, 1000, 100)
				nestedOK = true
			}
		}
	})
	var aGot []uint32
	a.SetReceiver(func(pkts []link.Packet) {
		for i := range pkts {
			aGot = append(aGot, seqOf(&pkts[i]))
		}
	})
	bRead := parkReader(t, b)
	aRead := parkReader(t, a)
	pkts := batch(4, 100)
	for i := range pkts {
		frame(&pkts[i], uint32(i+1), 100)
	}
	if k, err := a.WriteBatch(pkts); k != 4 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", k, err)
	}
	if len(got) != 4 || got[0] != 1 || got[3] != 4 {
		t.Fatalf("receiver got %v, want 1 2 3 4 during WriteBatch", got)
	}
	if !nestedOK {
		t.Fatal("the nested write did not return")
	}
	if len(aGot) != 0 {
		t.Errorf("the nested answer went to a's receiver from inside the call: %v", aGot)
	}
	select {
	case s := <-aRead:
		if s != 1000 {
			t.Errorf("a's reader got %d, want the answer 1000", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the nested answer never reached a's reader")
	}
	if d := a.tx; d.directCalls != 1 || d.rxFrames != 4 {
		t.Errorf("a→b: %d direct calls, %d frames counted, want 1 and 4", d.directCalls, d.rxFrames)
	}
	b.SetReceiver(nil)
	write(t, a, 5, 100)
	select {
	case s := <-bRead:
		if s != 5 {
			t.Errorf("b's reader got %d, want 5", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("with the receiver off, the frame never reached ReadBatch")
	}
	if len(got) != 4 {
		t.Errorf("receiver called after SetReceiver(nil): %v", got)
	}
}

// TestDirectReceiverImpaired: a pipe with any impairment (here a delay)
// queues every frame, receiver or not: the impairments act on the queue.
func TestDirectReceiverImpaired(t *testing.T) {
	a, b := New(Config{Delay: time.Millisecond})
	defer a.Close()
	called := false
	b.SetReceiver(func([]link.Packet) { called = true })
	bRead := parkReader(t, b)
	write(t, a, 7, 100)
	select {
	case s := <-bRead:
		if s != 7 {
			t.Errorf("got %d, want 7", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the delayed frame never arrived")
	}
	if called {
		t.Error("the receiver was called on an impaired pipe")
	}
}
