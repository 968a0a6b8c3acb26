package stack_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
)

// TestDeterministic: the same seeds and the same inputs give the same
// frames, byte for byte and in the same order (DESIGN.md: "a seed replays
// exactly"), even where the stack acts on many connections at once:
// closing a listener with a full queue, a neighbour that cannot be
// resolved, closing the whole stack.
func TestDeterministic(t *testing.T) {
	run := func() []*stacktest.Frame {
		n, a, b := pair(t, stack.Config{}, stack.Config{})
		n.Impair = impairment{loss: 5, reorder: 10}.hook(3)
		l, err := b.Stack.Listen(ap(ipB, 80), 0)
		if err != nil {
			t.Fatal(err)
		}
		for range 8 {
			if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80)); err != nil {
				t.Fatal(err)
			}
		}
		n.RunFor(5 * time.Second)
		l.Close()
		n.RunFor(time.Second)
		for i := range 6 {
			if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(netip.MustParseAddr("10.0.0.77"), uint16(80+i))); err != nil {
				t.Fatal(err)
			}
		}
		n.RunFor(10 * time.Second)
		l2, err := b.Stack.Listen(ap(ipB, 81), 0)
		if err != nil {
			t.Fatal(err)
		}
		for range 8 {
			c, s := dialRetry(t, n, a, l2, ap(ipB, 81))
			c.Write([]byte("x"))
			s.Write([]byte("y"))
		}
		n.RunFor(time.Second)
		a.Stack.Close()
		n.RunFor(time.Minute)
		return n.Log
	}
	x, y := run(), run()
	if len(x) != len(y) {
		t.Fatalf("%d frames, then %d", len(x), len(y))
	}
	for i := range x {
		if !bytes.Equal(x[i].Data, y[i].Data) || x[i].Sent != y[i].Sent {
			t.Fatalf("frame %d differs:\n%v\n%v", i, x[i], y[i])
		}
	}
}
