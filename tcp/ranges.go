package tcp

import (
	"sync"

	"github.com/ustack/ustack/wire"
)

// seqRange is the sequence range [start, end).
type seqRange struct{ start, end wire.Seq }

// maxOOORanges bounds the out-of-order ranges a connection keeps, and
// maxSACKRanges the SACKed ranges its scoreboard keeps. A segment that
// would need more is dropped (counted as OFODrop); SACK blocks that would
// need more are ignored. Every search in them is a binary search, and an
// insertion moves at most the whole set (8 KiB), so the work per segment
// stays bounded whatever a peer sends, while a window of tens of
// megabytes with a loss every few dozen segments still fits.
const (
	maxOOORanges  = 1024
	maxSACKRanges = 1024
)

// ooo tracks the out-of-order data held beyond RCV.NXT (the reassembly
// queue of RFC 9293 §3.10.7.4) and the order in which blocks were last
// touched, for SACK (RFC 2018 §4).
type ooo struct {
	set rangeSet // sorted, disjoint, not adjacent, all after RCV.NXT
	// recent holds a sequence number inside each of the most recently
	// changed blocks, newest first (RFC 2018 §4: the first SACK block
	// reports the most recent segment; the others repeat recent blocks).
	recent  [wire.TCPMaxSACKBlocks]wire.Seq
	nrecent int
}

// empty reports whether no out-of-order data is held.
// A nil *ooo is an empty queue: a connection holds one only while it
// has out-of-order data (Conn.oooAdd, Conn.oooAdvance), from oooPool.
func (o *ooo) empty() bool { return o == nil || len(o.set) == 0 }

// len returns the number of ranges held.
func (o *ooo) len() int {
	if o == nil {
		return 0
	}
	return len(o.set)
}

// oooPool holds the out-of-order queues of connections that have none
// now, their range slices kept for the next hole.
var oooPool = sync.Pool{New: func() any { return new(ooo) }}

// oooAdd is ooo.add for the connection, taking a queue from oooPool for
// the first hole (an allocation only when the pool is empty: once per
// hole at most, never per segment).
func (c *Conn) oooAdd(start, end wire.Seq) bool {
	if c.ooo == nil {
		c.ooo = oooPool.Get().(*ooo)
	}
	ok := c.ooo.add(start, end)
	if c.ooo.empty() {
		c.oooRelease()
	}
	return ok
}

// oooAdvance is ooo.advance for the connection; the queue goes back to
// oooPool once the last hole is filled.
func (c *Conn) oooAdvance(rcvNxt wire.Seq) wire.Seq {
	if c.ooo == nil {
		return rcvNxt
	}
	rcvNxt = c.ooo.advance(rcvNxt)
	if c.ooo.empty() {
		c.oooRelease()
	}
	return rcvNxt
}

// oooRelease gives the connection's queue back to oooPool, emptied.
func (c *Conn) oooRelease() {
	if o := c.ooo; o != nil {
		c.ooo = nil
		o.set = o.set[:0]
		o.nrecent = 0
		oooPool.Put(o)
	}
}

// add records [start, end) as held. It returns false (and records nothing)
// if that would need more than maxOOORanges ranges.
func (o *ooo) add(start, end wire.Seq) bool {
	if !o.set.add(start, end, maxOOORanges) {
		return false
	}
	o.touch(start)
	return true
}

// touch moves the block holding seq to the front of the recent list.
func (o *ooo) touch(seq wire.Seq) {
	k := 0
	for k < o.nrecent && o.find(o.recent[k]) != o.find(seq) {
		k++
	}
	if k == o.nrecent && o.nrecent < len(o.recent) {
		o.nrecent++
	}
	if k == len(o.recent) {
		k--
	}
	copy(o.recent[1:k+1], o.recent[:k])
	o.recent[0] = seq
}

// find returns the index of the range holding seq, or -1.
func (o *ooo) find(seq wire.Seq) int {
	if o == nil {
		return -1
	}
	return o.set.find(seq)
}

// advance pops the ranges that start at or before rcvNxt and returns the
// new RCV.NXT: the end of the contiguous data.
func (o *ooo) advance(rcvNxt wire.Seq) wire.Seq {
	k := 0
	for k < len(o.set) && o.set[k].start.LessEq(rcvNxt) {
		rcvNxt = wire.MaxSeq(rcvNxt, o.set[k].end)
		k++
	}
	if k > 0 {
		o.set = append(o.set[:0], o.set[k:]...)
	}
	return rcvNxt
}

// sackBlocks fills blocks with up to len(blocks) SACK blocks, most recent
// first (RFC 2018 §4), after first (if non-nil: a D-SACK block, RFC 2883
// §4), and returns how many it wrote.
func (o *ooo) sackBlocks(blocks []wire.SACKBlock, first *seqRange) int {
	n := 0
	if first != nil && n < len(blocks) {
		blocks[n] = wire.SACKBlock{Start: first.start, End: first.end}
		n++
	}
	if o == nil {
		return n
	}
	var used [wire.TCPMaxSACKBlocks]int
	nu := 0
	for k := 0; k < o.nrecent && n < len(blocks); k++ {
		i := o.find(o.recent[k])
		if i < 0 {
			continue
		}
		dup := false
		for _, u := range used[:nu] {
			dup = dup || u == i
		}
		if dup {
			continue
		}
		used[nu] = i
		nu++
		blocks[n] = wire.SACKBlock{Start: o.set[i].start, End: o.set[i].end}
		n++
	}
	// Fill remaining room with the other blocks, highest first.
	for i := len(o.set) - 1; i >= 0 && n < len(blocks); i-- {
		dup := false
		for _, u := range used[:nu] {
			dup = dup || u == i
		}
		if dup {
			continue
		}
		if nu < len(used) {
			used[nu] = i
			nu++
		}
		blocks[n] = wire.SACKBlock{Start: o.set[i].start, End: o.set[i].end}
		n++
	}
	return n
}

// rangeSet is a sorted list of disjoint, non-adjacent sequence ranges: the
// out-of-order data a receiver holds, or the SACKed data a sender knows of.
// Its ranges lie within half the sequence space of each other (inside one
// window), so they compare without ambiguity and can be binary-searched.
type rangeSet []seqRange

// touching returns the first index whose range ends at or after start,
// and the first after it that starts beyond end: ranges i..j-1 overlap or
// abut [start, end). O(log n).
func (s rangeSet) touching(start, end wire.Seq) (i, j int) {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].end.LessThan(start) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i = lo
	hi = len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].start.LessEq(end) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return i, lo
}

// add merges [start, end) into the set. It returns false, changing
// nothing, if the set would need more than limit ranges.
func (s *rangeSet) add(start, end wire.Seq, limit int) bool {
	r := *s
	i, j := r.touching(start, end)
	if i == j {
		if len(r) >= limit {
			return false
		}
		r = append(r, seqRange{})
		copy(r[i+1:], r[i:])
		r[i] = seqRange{start, end}
	} else {
		r[i].start = wire.MinSeq(r[i].start, start)
		r[i].end = wire.MaxSeq(r[j-1].end, end)
		r = append(r[:i+1], r[j:]...)
	}
	*s = r
	return true
}

// find returns the index of the range holding seq, or -1. O(log n).
func (s rangeSet) find(seq wire.Seq) int {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].end.LessEq(seq) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(s) && s[lo].start.LessEq(seq) {
		return lo
	}
	return -1
}

// trimBelow drops everything before seq.
func (s *rangeSet) trimBelow(seq wire.Seq) {
	r := *s
	k := 0
	for k < len(r) && r[k].end.LessEq(seq) {
		k++
	}
	r = append(r[:0], r[k:]...)
	if len(r) > 0 && r[0].start.LessThan(seq) {
		r[0].start = seq
	}
	*s = r
}
