// Package heapq is the one binary min-heap of the code base, a queue of
// values by due time: the simulator's timers and the delay line of
// impaired links (impair.Line) are each a Heap. (The stack's connection
// timers are in a timing wheel, internal/wheel, whose cost does not grow
// with the number of connections.)
//
// Every item has a Key: an instant and a sequence number that breaks ties
// (callers that need first-in, first-out among equal instants number
// their items; those that do not leave it zero). The heap compares keys
// itself, in line, rather than through a function value, which would
// cost an indirect call per comparison on the per-frame path of a delay
// line.
//
// A Heap keeps its items in one slice, which it reuses: once it has grown
// to its working size, Push and Pop allocate nothing. Items that must be
// found again — to move or remove them before they reach the top, as a
// connection whose deadline changes — learn their index through the
// Moved function; items that only ever leave from the top need none.
//
// It is not safe for concurrent use.
package heapq

import "github.com/ustack/ustack/clock"

// Key orders the items of a Heap: by At, then by Seq.
type Key struct {
	At  clock.Instant
	Seq uint64
}

// Less reports whether k comes before o. The heap's own code spells the
// comparison out (see up and down): the compiler does not inline calls
// in code instantiated for a type's shape, and a call per comparison was
// a tenth of a delay line's time.
func (k Key) Less(o Key) bool { return k.At < o.At || k.At == o.At && k.Seq < o.Seq }

type item[T any] struct {
	key Key
	v   T
}

// Heap is a binary min-heap of T by Key. The zero value is an empty heap;
// set Moved, if needed, before the first Push.
type Heap[T any] struct {
	// Moved, if not nil, is called with a pointer to an item (valid only
	// during the call) and its new index every time it is placed, and
	// with -1 when it leaves the heap.
	Moved func(x *T, i int)

	items []item[T]
}

// Len returns the number of items.
func (h *Heap[T]) Len() int { return len(h.items) }

// Top returns the least item and its key; ok is false if the heap is
// empty.
func (h *Heap[T]) Top() (k Key, x T, ok bool) {
	if len(h.items) == 0 {
		return k, x, false
	}
	return h.items[0].key, h.items[0].v, true
}

// TopKey returns the least key, or a key at clock.Never if the heap is
// empty.
func (h *Heap[T]) TopKey() Key {
	if len(h.items) == 0 {
		return Key{At: clock.Never}
	}
	return h.items[0].key
}

// At returns the item at index i (0 is the top) and its key.
func (h *Heap[T]) At(i int) (Key, T) { return h.items[i].key, h.items[i].v }

// Push adds x with key k.
func (h *Heap[T]) Push(k Key, x T) {
	h.items = append(h.items, item[T]{key: k, v: x})
	i := len(h.items) - 1
	h.moved(i)
	if p := (i - 1) / 2; i > 0 && (k.At < h.items[p].key.At || k.At == h.items[p].key.At && k.Seq < h.items[p].key.Seq) {
		h.up(i)
	}
}

// Pop removes and returns the least item; it panics if the heap is empty,
// as indexing an empty slice does. (Remove(0) with the top's shortcuts:
// the last item moved to the top can only go down.)
func (h *Heap[T]) Pop() (Key, T) {
	items := h.items
	if h.Moved != nil {
		h.Moved(&items[0].v, -1)
	}
	top := items[0]
	last := len(items) - 1
	if last > 0 {
		items[0] = items[last]
		h.moved(0)
	}
	items[last] = item[T]{} // keep nothing alive
	h.items = items[:last]
	if last > 1 {
		h.down(0)
	}
	return top.key, top.v
}

// Remove removes and returns the item at index i.
func (h *Heap[T]) Remove(i int) (Key, T) {
	if h.Moved != nil {
		h.Moved(&h.items[i].v, -1)
	}
	x := h.items[i]
	last := len(h.items) - 1
	if i != last {
		h.items[i] = h.items[last]
		h.moved(i)
	}
	h.items[last] = item[T]{} // keep nothing alive
	h.items = h.items[:last]
	if i < last {
		h.fix(i)
	}
	return x.key, x.v
}

// SetKey gives the item at index i the key k and restores the order.
func (h *Heap[T]) SetKey(i int, k Key) {
	h.items[i].key = k
	if len(h.items) > 1 {
		h.fix(i)
	}
}

// Clear removes every item (calling Moved with -1 for each), keeping the
// storage.
func (h *Heap[T]) Clear() {
	for i := range h.items {
		if h.Moved != nil {
			h.Moved(&h.items[i].v, -1)
		}
		h.items[i] = item[T]{}
	}
	h.items = h.items[:0]
}

// Grow makes room for n more items without allocating again.
func (h *Heap[T]) Grow(n int) {
	if cap(h.items)-len(h.items) < n {
		s := make([]item[T], len(h.items), len(h.items)+n)
		copy(s, h.items)
		h.items = s
	}
}

func (h *Heap[T]) moved(i int) {
	if h.Moved != nil {
		h.Moved(&h.items[i].v, i)
	}
}

// fix moves the item at i down or up to its place. At most one of the
// two applies: an item less than its parent is less than its children.
func (h *Heap[T]) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// up and down move the item at i along its path with a hole — the items
// on the way shift into it, and the item is written once at its place —
// which ends where a series of swaps would, with half the copying.

func (h *Heap[T]) up(i int) {
	items, mv := h.items, h.Moved
	if i == 0 {
		return
	}
	if a, b := &items[i].key, &items[(i-1)/2].key; !(a.At < b.At || a.At == b.At && a.Seq < b.Seq) {
		return // where it is (an item pushed later than its parent)
	}
	x := items[i]
	start := i
	for i > 0 {
		p := (i - 1) / 2
		if b := &items[p].key; !(x.key.At < b.At || x.key.At == b.At && x.key.Seq < b.Seq) {
			break
		}
		items[i] = items[p]
		if mv != nil {
			mv(&items[i].v, i)
		}
		i = p
	}
	if i != start {
		items[i] = x
		if mv != nil {
			mv(&items[i].v, i)
		}
	}
}

// down sifts the item at i down and reports whether it moved.
func (h *Heap[T]) down(i int) bool {
	items, mv := h.items, h.Moved
	n := len(items)
	x := items[i]
	start := i
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n {
			if a, b := &items[r].key, &items[l].key; a.At < b.At || a.At == b.At && a.Seq < b.Seq {
				m = r
			}
		}
		if a := &items[m].key; !(a.At < x.key.At || a.At == x.key.At && a.Seq < x.key.Seq) {
			break
		}
		items[i] = items[m]
		if mv != nil {
			mv(&items[i].v, i)
		}
		i = m
	}
	if i == start {
		return false
	}
	items[i] = x
	if mv != nil {
		mv(&items[i].v, i)
	}
	return true
}
