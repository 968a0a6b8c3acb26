package stack

import (
	"math/rand/v2"
	"testing"

	"github.com/ustack/ustack/clock"
)

// TestDeadlineHeap checks the stack's deadline heap against a brute-force
// minimum over random updates (insert, move earlier or later, disarm) and
// removals, and its invariants after every operation: the heap order, the
// back-pointers, and that exactly the connections with an armed deadline
// are in it.
func TestDeadlineHeap(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		h := newDeadlineHeap()
		conns := make([]*TCPConn, 1+r.IntN(64))
		want := make([]clock.Instant, len(conns)) // the deadline each should have
		for i := range conns {
			conns[i] = &TCPConn{heapIdx: -1, deadline: clock.Never}
			want[i] = clock.Never
		}
		for op := range 5000 {
			i := r.IntN(len(conns))
			c := conns[i]
			switch k := r.IntN(10); {
			case k < 6:
				d := clock.Instant(r.IntN(1000))
				if k == 0 {
					d = clock.Never
				}
				if k == 1 && want[i] != clock.Never {
					d = want[i] // an update to the same deadline
				}
				h.update(c, d)
				want[i] = d
			case k < 8:
				h.remove(c)
				want[i] = clock.Never
			default:
				// HandleTimeout's loop: pop everything due.
				now := clock.Instant(r.IntN(1000))
				for h.len() > 0 && h.top().deadline <= now {
					top := h.top()
					j := indexOf(conns, top)
					if want[j] > now {
						t.Fatalf("seed %d op %d: popped deadline %v, want %v", seed, op, top.deadline, want[j])
					}
					h.remove(top)
					want[j] = clock.Never
				}
			}
			checkHeap(t, &h, conns, want, seed, op)
		}
	}
}

func indexOf(cs []*TCPConn, c *TCPConn) int {
	for i, x := range cs {
		if x == c {
			return i
		}
	}
	return -1
}

func checkHeap(t *testing.T, h *deadlineHeap, conns []*TCPConn, want []clock.Instant, seed uint64, op int) {
	t.Helper()
	min := clock.Never
	armed := 0
	for i, c := range conns {
		min = clock.Min(min, want[i])
		if want[i] != clock.Never {
			armed++
			if c.heapIdx < 0 || c.heapIdx >= h.len() || h.at(c.heapIdx) != c || c.deadline != want[i] {
				t.Fatalf("seed %d op %d: conn %d (deadline %v) not at its place: idx %d, deadline %v", seed, op, i, want[i], c.heapIdx, c.deadline)
			}
		} else if c.heapIdx != -1 {
			t.Fatalf("seed %d op %d: disarmed conn %d still at %d", seed, op, i, c.heapIdx)
		}
	}
	if h.len() != armed {
		t.Fatalf("seed %d op %d: heap holds %d, %d armed", seed, op, h.len(), armed)
	}
	if h.min() != min {
		t.Fatalf("seed %d op %d: min %v, brute force %v", seed, op, h.min(), min)
	}
	for i := 1; i < h.len(); i++ {
		if h.at((i-1)/2).deadline > h.at(i).deadline {
			t.Fatalf("seed %d op %d: heap order broken at %d", seed, op, i)
		}
	}
}
