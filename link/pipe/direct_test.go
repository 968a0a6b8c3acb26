package pipe

import (
	"runtime"
	"sync"
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

// TestConcurrentWriters: the pipe is a link.ConcurrentWriter. Writers
// writing to one end at once, with a receive function and a reader on the
// other, lose no frame but those a full queue drops (counted), and each
// writer's frames arrive in the order it wrote them, whether the receive
// function or ReadBatch took them. (The receive function may be in
// several calls at once, one per writer; the test logs how many were.)
func TestConcurrentWriters(t *testing.T) {
	a, b := New(Config{})
	defer a.Close()
	if !a.ConcurrentWrites() {
		t.Fatal("ConcurrentWrites = false")
	}
	const writers, batches, per = 4, 300, 4
	var mu sync.Mutex
	next := make([]uint32, writers) // each writer's next sequence number
	total, inside, most := 0, 0, 0
	record := func(p *link.Packet, via string) {
		s := seqOf(p)
		w, k := s>>24, s&0xffffff
		if w >= writers || k < next[w] {
			t.Errorf("%s: writer %d frame %d after frame %d", via, w, k, next[w%writers]-1)
		}
		next[w%writers] = k + 1
		total++
	}
	b.SetReceiver(func(pkts []link.Packet) {
		mu.Lock()
		inside++
		most = max(most, inside)
		for i := range pkts {
			record(&pkts[i], "receiver")
		}
		mu.Unlock()
		runtime.Gosched() // let another writer's call start meanwhile
		mu.Lock()
		inside--
		mu.Unlock()
	})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		pkts := batch(8, 1514)
		for {
			n, err := b.ReadBatch(pkts)
			if err != nil {
				return
			}
			mu.Lock()
			for i := range n {
				record(&pkts[i], "reader")
			}
			mu.Unlock()
		}
	}()
	// A frame goes to the receive function only while the reader waits
	// on an empty queue: the writers start once it does, or (slowed by
	// the race detector, on a loaded machine) they can fill the queue
	// before the reader first waits and never find it empty (CI run40:
	// 0 of 1,792 frames direct).
	for deadline := time.Now().Add(5 * time.Second); ; {
		a.tx.mu.Lock()
		waiting := a.tx.parked
		a.tx.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reader never waited in ReadBatch")
		}
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkts := batch(per, 100)
			for k := range batches {
				for i := range pkts {
					frame(&pkts[i], uint32(w)<<24|uint32(k*per+i), 100)
				}
				if n, err := a.WriteBatch(pkts); n != per || err != nil {
					t.Errorf("writer %d: WriteBatch = %d, %v", w, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; {
		mu.Lock()
		n := total
		mu.Unlock()
		if n+int(a.Stats().TxQueueFull) == writers*batches*per {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d frames arrived", n, writers*batches*per)
		}
		time.Sleep(time.Millisecond)
	}
	a.Close()
	<-readDone
	st := b.Stats()
	if int(st.RxFrames) != total || st.RxDirect == 0 || st.RxDirect > st.RxFrames {
		t.Errorf("Stats: %d frames, %d of them direct; want %d, some direct", st.RxFrames, st.RxDirect, total)
	}
	t.Logf("%d frames direct of %d, %d dropped by the full queue; at most %d receive calls at once",
		st.RxDirect, st.RxFrames, a.Stats().TxQueueFull, most)
}
