package network

import "math/bits"

// Buffers for queued and reassembled bytes come from a bufPool: free lists
// of a few size classes, four per power of two from 64 bytes to 64 KiB
// (64, 80, 96, 112, 128, 160, ..., 57344, 65536), so a buffer wastes at
// most a fifth of its size. A buffer given back is reused for the next
// request of its class; in steady state nothing is allocated. The free
// lists only hold what was once in use at the same time, which the users
// bound (Reassembler by MaxBytes, Neighbors by its queue limits).

const (
	poolMinSize    = 64
	poolMaxSize    = 1 << 16
	poolNumClasses = 1 + (16-6)*4 // class 0 is 64 bytes, then four per power of two
)

// sizeClass returns the index of the smallest class that holds n bytes, or
// -1 if n is above poolMaxSize.
func sizeClass(n int) int {
	if n <= poolMinSize {
		return 0
	}
	if n > poolMaxSize {
		return -1
	}
	e := bits.Len(uint(n - 1)) // 2^(e-1) < n <= 2^e, e >= 7
	sh := e - 3                // four steps of 2^(e-3) between 2^(e-1) and 2^e
	k := (n + 1<<sh - 1) >> sh // 5..8
	return 1 + (e-7)*4 + (k - 5)
}

// classSize returns the capacity of the buffers of class c.
func classSize(c int) int {
	if c == 0 {
		return poolMinSize
	}
	e := (c-1)/4 + 7
	k := (c-1)%4 + 5
	return k << (e - 3)
}

// bufCost returns the memory a buffer for n bytes takes: its class size, or
// n itself above the largest class.
func bufCost(n int) int {
	if c := sizeClass(n); c >= 0 {
		return classSize(c)
	}
	return n
}

type bufPool struct {
	free [poolNumClasses][][]byte
}

// get returns a buffer of length n, with capacity bufCost(n).
func (p *bufPool) get(n int) []byte {
	c := sizeClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if l := p.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[c] = l[:len(l)-1]
		return b[:n]
	}
	return make([]byte, n, classSize(c))
}

// put gives b back for reuse. Buffers not made by get are dropped.
func (p *bufPool) put(b []byte) {
	c := sizeClass(cap(b))
	if c < 0 || classSize(c) != cap(b) {
		return
	}
	p.free[c] = append(p.free[c], b[:0])
}

// fifo is a first-in first-out queue on a slice that keeps its storage:
// once it has grown to the largest backlog, pushing and popping allocate
// nothing.
type fifo[T any] struct {
	buf  []T
	head int
}

func (q *fifo[T]) len() int { return len(q.buf) - q.head }

func (q *fifo[T]) push(v T) {
	if q.head > 0 && len(q.buf) == cap(q.buf) {
		// Slide the live part down rather than grow.
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf = q.buf[:n]
		q.head = 0
	}
	q.buf = append(q.buf, v)
}

func (q *fifo[T]) pop() (v T, ok bool) {
	if q.head == len(q.buf) {
		return v, false
	}
	var zero T
	v = q.buf[q.head]
	q.buf[q.head] = zero
	q.head++
	if q.head == len(q.buf) {
		q.buf = q.buf[:0]
		q.head = 0
	}
	return v, true
}

// filter keeps only the elements for which keep returns true, in order.
func (q *fifo[T]) filter(keep func(T) bool) {
	n := 0
	for _, v := range q.buf[q.head:] {
		if keep(v) {
			q.buf[n] = v
			n++
		}
	}
	clear(q.buf[n:])
	q.buf = q.buf[:n]
	q.head = 0
}
