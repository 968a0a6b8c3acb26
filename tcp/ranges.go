package tcp

import "github.com/ustack/ustack/wire"

// seqRange is the sequence range [start, end).
type seqRange struct{ start, end wire.Seq }

// maxOOORanges bounds the out-of-order ranges a connection keeps. A segment
// that would need more is dropped (counted as OFODrop): the work per segment
// stays bounded whatever a peer sends.
const maxOOORanges = 64

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
func (o *ooo) empty() bool { return len(o.set) == 0 }

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
func (o *ooo) find(seq wire.Seq) int { return o.set.find(seq) }

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

// reset forgets everything (the connection ended).
func (o *ooo) reset() {
	o.set = nil
	o.nrecent = 0
}

// rangeSet is a sorted list of disjoint, non-adjacent sequence ranges: the
// out-of-order data a receiver holds, or the SACKed data a sender knows of.
type rangeSet []seqRange

// add merges [start, end) into the set. It returns false, changing
// nothing, if the set would need more than limit ranges.
func (s *rangeSet) add(start, end wire.Seq, limit int) bool {
	r := *s
	// The first range whose end is at or after start, and the first one
	// after that which starts beyond end: ranges i..j-1 touch [start, end).
	i := 0
	for i < len(r) && r[i].end.LessThan(start) {
		i++
	}
	j := i
	for j < len(r) && r[j].start.LessEq(end) {
		j++
	}
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

// find returns the index of the range holding seq, or -1.
func (s rangeSet) find(seq wire.Seq) int {
	for i, r := range s {
		if seq.InRange(r.start, r.end) {
			return i
		}
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
