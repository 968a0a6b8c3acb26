package heapq

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ustack/ustack/clock"
)

type item2 struct {
	key Key
	idx int
}

func newHeap() *Heap[*item2] {
	return &Heap[*item2]{Moved: func(x **item2, i int) { (*x).idx = i }}
}

// check verifies the heap order, that every item's key is the one it was
// given, and that every item knows its index.
func check(t *testing.T, h *Heap[*item2]) {
	t.Helper()
	for i := range h.Len() {
		k, x := h.At(i)
		if x.idx != i {
			t.Fatalf("item at %d thinks it is at %d", i, x.idx)
		}
		if k != x.key {
			t.Fatalf("item at %d has key %v, was given %v", i, k, x.key)
		}
		if pk, _ := h.At((i - 1) / 2); i > 0 && k.Less(pk) {
			t.Fatalf("item at %d less than its parent", i)
		}
	}
}

func cmpItems(a, b *item2) int {
	switch {
	case a.key.Less(b.key):
		return -1
	case b.key.Less(a.key):
		return 1
	}
	return 0
}

// TestHeapAgainstSort: random pushes, pops, removals from the middle and
// key changes keep the heap order and the back-pointers, every Pop gives
// the least key, and draining gives the order a sort gives.
func TestHeapAgainstSort(t *testing.T) {
	for seed := range uint64(10) {
		r := rand.New(rand.NewPCG(seed, 7))
		h := newHeap()
		var in []*item2
		seq := uint64(0)
		randKey := func() Key {
			seq++
			k := Key{At: clock.Instant(r.IntN(50))}
			if r.IntN(2) == 0 {
				k.Seq = seq // some ties broken by sequence, some left equal
			}
			return k
		}
		for range 2000 {
			switch k := r.IntN(10); {
			case k < 5:
				x := &item2{key: randKey()}
				h.Push(x.key, x)
				in = append(in, x)
			case k < 7 && h.Len() > 0:
				key, x := h.Pop()
				if x.idx != -1 {
					t.Fatalf("popped item still has index %d", x.idx)
				}
				least := slices.MinFunc(in, cmpItems)
				if key != x.key || cmpItems(x, least) != 0 {
					t.Fatalf("seed %d: Pop gave key %v, least is %v", seed, key, least.key)
				}
				in = slices.DeleteFunc(in, func(y *item2) bool { return y == x })
			case k < 8 && h.Len() > 0:
				x := in[r.IntN(len(in))]
				if _, got := h.Remove(x.idx); got != x || x.idx != -1 {
					t.Fatalf("Remove(%d) gave another item or left an index", x.idx)
				}
				in = slices.DeleteFunc(in, func(y *item2) bool { return y == x })
			case h.Len() > 0:
				x := in[r.IntN(len(in))]
				x.key = randKey()
				h.SetKey(x.idx, x.key)
			}
			check(t, h)
			if h.Len() != len(in) {
				t.Fatalf("Len %d, want %d", h.Len(), len(in))
			}
		}
		want := slices.Clone(in)
		slices.SortStableFunc(want, cmpItems)
		for i, w := range want {
			if h.TopKey() != w.key {
				t.Fatalf("drain %d: TopKey %v, want %v", i, h.TopKey(), w.key)
			}
			if _, x := h.Pop(); cmpItems(x, w) != 0 {
				t.Fatalf("drain %d: key %v, want %v", i, x.key, w.key)
			}
		}
		if _, _, ok := h.Top(); ok || h.Len() != 0 || h.TopKey().At != clock.Never {
			t.Fatal("heap not empty after draining")
		}
	}
}

// TestHeapFIFO: items with equal instants and rising sequence numbers
// come out in the order they went in, whatever was pushed in between.
func TestHeapFIFO(t *testing.T) {
	var h Heap[int]
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		h.Push(Key{At: clock.Instant(r.IntN(5)), Seq: uint64(i)}, i)
	}
	last := map[clock.Instant]int{}
	prev := clock.Instant(-1)
	for h.Len() > 0 {
		k, v := h.Pop()
		if k.At < prev {
			t.Fatalf("instant %v after %v", k.At, prev)
		}
		if l, ok := last[k.At]; ok && v < l {
			t.Fatalf("at %v: item %d after %d", k.At, v, l)
		}
		last[k.At], prev = v, k.At
	}
}

// TestHeapClearTellsItems: Clear reports every item as gone and keeps
// nothing.
func TestHeapClearTellsItems(t *testing.T) {
	h := newHeap()
	xs := []*item2{{key: Key{At: 3}}, {key: Key{At: 1}}, {key: Key{At: 2}}}
	for _, x := range xs {
		h.Push(x.key, x)
	}
	h.Clear()
	for _, x := range xs {
		if x.idx != -1 {
			t.Errorf("item %v keeps index %d after Clear", x.key, x.idx)
		}
	}
	if h.Len() != 0 {
		t.Errorf("Len %d after Clear", h.Len())
	}
}

// TestZeroAllocsHeap: once grown, pushing and popping allocates nothing.
func TestZeroAllocsHeap(t *testing.T) {
	h := newHeap()
	h.Grow(64)
	xs := make([]*item2, 64)
	for i := range xs {
		xs[i] = &item2{key: Key{At: clock.Instant((i * 37) % 64), Seq: uint64(i)}}
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, x := range xs {
			h.Push(x.key, x)
		}
		for h.Len() > 0 {
			h.Pop()
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per 64 pushes and pops", allocs)
	}
}

// BenchmarkDelayLine is a delay line's use: push at the back of time,
// pop the earliest.
func BenchmarkDelayLine(b *testing.B) {
	var h Heap[[48]byte]
	var v [48]byte
	for i := range 64 {
		h.Push(Key{At: clock.Instant(i), Seq: uint64(i)}, v)
	}
	b.ResetTimer()
	for i := range b.N {
		h.Pop()
		h.Push(Key{At: clock.Instant(64 + i), Seq: uint64(64 + i)}, v)
	}
}
