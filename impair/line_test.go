package impair

import (
	"bytes"
	"testing"

	"github.com/ustack/ustack/clock"
)

func TestLineOrder(t *testing.T) {
	l := NewLine[int](0)
	// Push out of order, with ties: pops come by due time, then Push order.
	dues := []clock.Instant{30, 10, 20, 10, 30, 0}
	for i, d := range dues {
		if !l.Push(Copy{Due: d}, []byte{byte(i)}, i) {
			t.Fatal("Push failed")
		}
	}
	if next, ok := l.Next(); !ok || next != 0 {
		t.Errorf("Next() = %v, %v", next, ok)
	}
	var got []int
	buf := make([]byte, 10)
	if _, _, ok := l.Pop(-1, buf); ok {
		t.Error("popped a frame before it was due")
	}
	for l.Len() > 0 {
		n, meta, ok := l.Pop(100, buf)
		if !ok || n != 1 || int(buf[0]) != meta {
			t.Fatalf("Pop: %d %d %v", n, meta, ok)
		}
		got = append(got, meta)
	}
	want := []int{5, 1, 3, 2, 0, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	if _, ok := l.Next(); ok {
		t.Error("Next on an empty line")
	}
}

func TestLineHeapRandom(t *testing.T) {
	l := NewLine[clock.Instant](0)
	m := New(Config{Delay: 100, Jitter: 100}, 1)
	for i := range 5000 {
		d := m.Offer(clock.Instant(i), 1).Copies[0]
		l.Push(d, []byte{1}, d.Due)
	}
	var last clock.Instant
	for l.Len() > 0 {
		_, due, _ := l.Pop(clock.Never-1, make([]byte, 1))
		if due < last {
			t.Fatalf("popped %v after %v", due, last)
		}
		last = due
	}
}

func TestLineLimitsAndCorruption(t *testing.T) {
	l := NewLine[struct{}](2)
	frame := []byte{0, 0, 0, 0}
	l.Push(Copy{Corrupt: true, Bit: 9}, frame, struct{}{})
	if !bytes.Equal(frame, []byte{0, 0, 0, 0}) {
		t.Error("Push changed the caller's frame")
	}
	l.Push(Copy{Due: 1}, make([]byte, 3000), struct{}{})
	if !l.Full() || l.Push(Copy{}, frame, struct{}{}) {
		t.Error("Push past the limit")
	}
	buf := make([]byte, 4)
	if n, _, ok := l.Pop(0, buf); !ok || n != 4 || !bytes.Equal(buf, []byte{0, 2, 0, 0}) {
		t.Errorf("Pop: %d %v %x", n, ok, buf)
	}
	if n, _, ok := l.Pop(1, buf); !ok || n != 3000 {
		t.Errorf("Pop into a short buffer: n=%d ok=%v", n, ok)
	}
	if l.Push(Copy{}, make([]byte, MaxFrame+1), struct{}{}) {
		t.Error("pushed a frame longer than MaxFrame")
	}
	l.Push(Copy{}, make([]byte, MaxFrame), struct{}{})
	l.Push(Copy{}, make([]byte, 10000), struct{}{})
	l.Clear()
	if l.Len() != 0 {
		t.Error("Clear left frames")
	}
}

func TestLineAllocs(t *testing.T) {
	l := NewLine[int](10)
	frame := make([]byte, 1500)
	buf := make([]byte, 1500)
	allocs := testing.AllocsPerRun(1000, func() {
		l.Push(Copy{Due: 1}, frame, 1)
		l.Push(Copy{Due: 0}, frame, 2)
		l.Pop(1, buf)
		l.Pop(1, buf)
	})
	if allocs != 0 {
		t.Errorf("Push+Pop allocates %v times", allocs)
	}
}

// TestLineRing checks NewLineRing: frames in flight are not counted, only
// those due and not yet popped, and a frame arriving at a full ring is
// dropped then — not one pushed later.
func TestLineRing(t *testing.T) {
	l := NewLineRing[int](3)
	// Ten frames in flight, due at 10, 20, ..., 100: a NewLine(3) would
	// refuse seven of them.
	for i := range 10 {
		if !l.Push(Copy{Due: clock.Instant(10 * (i + 1))}, []byte{byte(i)}, i) {
			t.Fatalf("Push %d refused with nothing due", i)
		}
	}
	if l.Len() != 10 || l.Overruns() != 0 {
		t.Fatalf("Len %d, Overruns %d; want 10, 0", l.Len(), l.Overruns())
	}
	// By 50, five have arrived and nobody read: the ring keeps the first
	// three and drops the fourth and fifth on arrival.
	if d := l.Advance(50); d != 2 {
		t.Fatalf("Advance(50) dropped %d, want 2", d)
	}
	buf := make([]byte, 4)
	var got []int
	for {
		n, meta, ok := l.Pop(50, buf)
		if !ok {
			break
		}
		if n != 1 || int(buf[0]) != meta {
			t.Fatalf("Pop: %d %d", n, meta)
		}
		got = append(got, meta)
	}
	// Read promptly from now on: nothing more is dropped.
	for now := clock.Instant(60); now <= 100; now += 10 {
		n, meta, ok := l.Pop(now, buf)
		if !ok || n != 1 {
			t.Fatalf("Pop(%v): %v", now, ok)
		}
		got = append(got, meta)
	}
	want := []int{0, 1, 2, 5, 6, 7, 8, 9}
	if len(got) != len(want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("popped %v, want %v", got, want)
		}
	}
	if l.Overruns() != 2 || l.Len() != 0 {
		t.Errorf("Overruns %d, Len %d; want 2, 0", l.Overruns(), l.Len())
	}
	// Next reports a frame waiting in the ring with its arrival time.
	l.Push(Copy{Due: 200}, []byte{1}, 1)
	l.Advance(300)
	if next, ok := l.Next(); !ok || next != 200 {
		t.Errorf("Next() = %v, %v; want 200, true", next, ok)
	}
	l.Clear()
	if l.Len() != 0 {
		t.Errorf("Len after Clear %d", l.Len())
	}
}
