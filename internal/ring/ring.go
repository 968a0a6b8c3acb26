// Package ring is a FIFO queue on a circular buffer: what the stack's hot
// paths use where a slice would be shifted on every pop (the event queue,
// accept queues, UDP receive queues, the output rotation) and where TCP
// buffers give back their chunks.
//
// Pushing at the back and popping at the front are O(1); the buffer
// doubles when full and is kept when the queue empties, so a queue that
// has reached its working size allocates nothing more. Removing from the
// middle (RemoveAt) shifts the shorter side, for the rare callers that
// need it.
//
// It is not safe for concurrent use.
package ring

// Ring is a FIFO queue of T. The zero value is an empty queue.
type Ring[T any] struct {
	buf  []T // len(buf) is zero or a power of two
	mask int // len(buf) - 1 (kept, so that PushBack inlines)
	head int // index of the front item in buf
	n    int // number of items
}

// Len returns the number of items.
func (r *Ring[T]) Len() int { return r.n }

// PushBack adds x at the back.
func (r *Ring[T]) PushBack(x T) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&r.mask] = x
	r.n++
}

// PopFront removes and returns the front item; ok is false if the queue
// is empty.
func (r *Ring[T]) PopFront() (x T, ok bool) {
	if r.n == 0 {
		return x, false
	}
	var zero T
	x = r.buf[r.head]
	r.buf[r.head] = zero // keep nothing alive
	r.head = (r.head + 1) & r.mask
	r.n--
	if r.n == 0 {
		r.head = 0
	}
	return x, true
}

// Front returns the front item; ok is false if the queue is empty.
func (r *Ring[T]) Front() (x T, ok bool) {
	if r.n == 0 {
		return x, false
	}
	return r.buf[r.head], true
}

// At returns the i-th item from the front (0 is the front). It panics if
// i is out of range.
func (r *Ring[T]) At(i int) T {
	if i < 0 || i >= r.n {
		panic("ring: index out of range")
	}
	return r.buf[(r.head+i)&(len(r.buf)-1)]
}

// Ptr returns a pointer to the i-th item from the front, valid until the
// next PushBack. It panics if i is out of range.
func (r *Ring[T]) Ptr(i int) *T {
	if i < 0 || i >= r.n {
		panic("ring: index out of range")
	}
	return &r.buf[(r.head+i)&(len(r.buf)-1)]
}

// RemoveAt removes and returns the i-th item from the front, moving the
// items on its shorter side. It panics if i is out of range.
func (r *Ring[T]) RemoveAt(i int) T {
	if i < 0 || i >= r.n {
		panic("ring: index out of range")
	}
	mask := len(r.buf) - 1
	x := r.buf[(r.head+i)&mask]
	var zero T
	if i < r.n/2 {
		// Shift the items before i one place back.
		for j := i; j > 0; j-- {
			r.buf[(r.head+j)&mask] = r.buf[(r.head+j-1)&mask]
		}
		r.buf[r.head] = zero
		r.head = (r.head + 1) & mask
	} else {
		for j := i; j < r.n-1; j++ {
			r.buf[(r.head+j)&mask] = r.buf[(r.head+j+1)&mask]
		}
		r.buf[(r.head+r.n-1)&mask] = zero
	}
	r.n--
	if r.n == 0 {
		r.head = 0
	}
	return x
}

// Clear removes every item, keeping the buffer.
func (r *Ring[T]) Clear() {
	var zero T
	for i := range r.n {
		r.buf[(r.head+i)&(len(r.buf)-1)] = zero
	}
	r.head, r.n = 0, 0
}

// Free removes every item and drops the buffer.
func (r *Ring[T]) Free() { *r = Ring[T]{} }

// Cap returns how many items the queue holds before it grows.
func (r *Ring[T]) Cap() int { return len(r.buf) }

func (r *Ring[T]) grow() {
	size := max(2*len(r.buf), 4)
	buf := make([]T, size)
	if r.n > 0 {
		k := copy(buf, r.buf[r.head:])
		copy(buf[k:], r.buf[:r.head])
	}
	r.buf, r.mask, r.head = buf, size-1, 0
}
