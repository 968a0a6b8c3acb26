package stack_test

import (
	"testing"
)

// BenchmarkRoundTrip measures a request and its response of 64 bytes each
// between two stacks in one goroutine, frames handed over directly: the
// stack's own cost per round trip, without a runtime around it.
func BenchmarkRoundTrip(b *testing.B) {
	x := newBulk(b)
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	step := func() {
		x.c.Write(msg)
		for {
			if _, ok := x.a.Stack.PollTransmit(x.now, &x.pa); !ok {
				break
			}
			x.b.Stack.HandleFrame(x.now, x.b.NIC, &x.pa)
		}
		x.s.Read(buf)
		x.s.Write(msg)
		for {
			if _, ok := x.b.Stack.PollTransmit(x.now, &x.pb); !ok {
				break
			}
			x.a.Stack.HandleFrame(x.now, x.a.NIC, &x.pb)
		}
		x.c.Read(buf)
		x.housekeeping()
	}
	for range 100 {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		step()
	}
}
