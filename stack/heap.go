package stack

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/heapq"
)

// deadlineHeap is an indexed min-heap of connections by their next
// deadline: the single timer structure of the stack (per-flow state). A
// connection with no armed timer is not in it, so idle connections cost
// nothing here. It is internal/heapq's heap, with each connection
// keeping its index (heapIdx) to move or leave it.
type deadlineHeap struct {
	h heapq.Heap[*TCPConn]
}

func newDeadlineHeap() deadlineHeap {
	return deadlineHeap{h: heapq.Heap[*TCPConn]{Moved: deadlineMoved}}
}

func deadlineMoved(c **TCPConn, i int) { (*c).heapIdx = i }

// update puts c at its deadline d, inserting or removing it as needed.
func (h *deadlineHeap) update(c *TCPConn, d clock.Instant) {
	switch {
	case d == clock.Never && c.heapIdx < 0:
		return
	case d == clock.Never:
		h.remove(c)
	case c.heapIdx < 0:
		c.deadline = d
		h.h.Push(heapq.Key{At: d}, c)
	case d != c.deadline:
		c.deadline = d
		h.h.SetKey(c.heapIdx, heapq.Key{At: d})
	}
}

// remove takes c out of the heap, if it is in it.
func (h *deadlineHeap) remove(c *TCPConn) {
	if c.heapIdx < 0 {
		return
	}
	h.h.Remove(c.heapIdx)
	c.deadline = clock.Never
}

// top returns the connection with the earliest deadline, or nil.
func (h *deadlineHeap) top() *TCPConn {
	_, c, _ := h.h.Top()
	return c
}

// min returns the earliest deadline, or clock.Never.
func (h *deadlineHeap) min() clock.Instant { return h.h.TopKey().At }

// len returns the number of connections with an armed deadline.
func (h *deadlineHeap) len() int { return h.h.Len() }

// at returns the connection at index i of the heap (for tests).
func (h *deadlineHeap) at(i int) *TCPConn {
	_, c := h.h.At(i)
	return c
}
