package stack

import "github.com/ustack/ustack/clock"

// deadlineHeap is an indexed min-heap of connections by their next
// deadline: the single timer structure of the stack. A connection with no
// armed timer is not in it, so idle connections cost nothing here.
type deadlineHeap []*TCPConn

func (h deadlineHeap) less(i, j int) bool { return h[i].deadline < h[j].deadline }

func (h deadlineHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h deadlineHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h deadlineHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// update puts c at its deadline d, inserting or removing it as needed.
func (h *deadlineHeap) update(c *TCPConn, d clock.Instant) {
	switch {
	case d == clock.Never && c.heapIdx < 0:
		return
	case d == clock.Never:
		h.remove(c)
	case c.heapIdx < 0:
		c.deadline = d
		c.heapIdx = len(*h)
		*h = append(*h, c)
		h.up(c.heapIdx)
	case d != c.deadline:
		c.deadline = d
		h.up(c.heapIdx)
		h.down(c.heapIdx)
	}
}

func (h *deadlineHeap) remove(c *TCPConn) {
	i := c.heapIdx
	if i < 0 {
		return
	}
	last := len(*h) - 1
	h.swap(i, last)
	(*h)[last] = nil
	*h = (*h)[:last]
	if i < last {
		h.up(i)
		h.down(i)
	}
	c.heapIdx = -1
	c.deadline = clock.Never
}

// min returns the earliest deadline, or clock.Never.
func (h deadlineHeap) min() clock.Instant {
	if len(h) == 0 {
		return clock.Never
	}
	return h[0].deadline
}
