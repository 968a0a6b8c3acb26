package tcp

import (
	"sync"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// The send record: one txRecord per data segment (or FIN) in flight, in
// sequence order, from SND.UNA to SND.MAX. It is what RACK (RFC 8985)
// needs of every transmission — when it was last sent, whether it was
// resent, whether it was SACKed or deemed lost — and what the
// delivery-rate sampler (draft-cheng-iccrg-delivery-rate-estimation §3)
// snapshots at each transmission. Retransmissions are still rebuilt from
// the send buffer; a record holds no data.
//
// Records live in blocks of recBlockLen taken from a pool when the first
// record lands in them and given back when the cumulative ACK passes
// them, as the data chunks are: an idle connection holds no block. Each
// record is addressed by an absolute index that never changes while it
// lives, so the two intrusive lists below can link records by index:
//
//   - the flight list: records in the network (sent, neither SACKed nor
//     waiting to be resent), in the order they were last sent — RACK's
//     time-ordered walk (RFC 8985 §6.2 step 5) starts at its head and
//     stops at the first record it cannot yet deem lost;
//   - the lost list: records deemed lost and not resent since, in the
//     order they were deemed lost, which is the order they are resent.
//
// A record is on at most one list; a SACKed one is on neither. Every
// operation is O(1) but find (O(log n), binary search by sequence
// number) and the walks over a range of records, whose cost the caller
// bounds (see markSACKed).

// recBlockLen is the number of records in a block (a block is about 18
// KiB).
const recBlockLen = 256

// noRec is the null record index.
const noRec = ^uint64(0)

type recFlags uint8

const (
	recSACKed     recFlags = 1 << iota // every byte SACKed (RFC 2018)
	recLost                            // deemed lost and not resent since: on the lost list
	recRetrans                         // resent at least once (RFC 8985's Segment.retransmitted; Karn's rule)
	recAppLimited                      // sent while application-limited (rate sampler)
	recDelivered                       // counted as delivered by the rate sampler (its delivered_time is 0)
	recFIN                             // the record ends with our FIN
	recPSH                             // it was sent with PSH, and is resent with it
)

// txRecord is one transmitted segment.
type txRecord struct {
	start, end wire.Seq      // sequence range, FIN included
	xmit       clock.Instant // last transmission (RACK's Segment.xmit_ts)
	// What the rate sampler saw at the last transmission
	// (draft-cheng-iccrg-delivery-rate-estimation §3.2: P.delivered,
	// P.delivered_time, P.first_sent_time), plus what BBR needs: the
	// bytes lost so far and in flight then.
	delivered     uint64
	deliveredTime clock.Instant
	firstSent     clock.Instant
	lostAtSend    uint64
	inFlight      uint32
	flags         recFlags
	list          uint8 // listNone, listFlight or listLost
	prev, next    uint64
}

func (r *txRecord) len() uint32 { return r.end.Size(r.start) }

const (
	listNone uint8 = iota
	listFlight
	listLost
)

type recBlock [recBlockLen]txRecord

var recPool = sync.Pool{New: func() any { return new(recBlock) }}

// recList is an intrusive doubly linked list of records.
type recList struct {
	head, tail uint64
	bytes      uint32 // sequence space of its records
}

// sentQueue holds the records of a connection.
type sentQueue struct {
	blocks     []*recBlock
	base       uint64 // absolute index of blocks[0][0]
	head, tail uint64 // live records: [head, tail)
	flight     recList
	lost       recList
}

// init empties the lists (a zero sentQueue has head and tail lists at 0,
// which is a valid index).
func (q *sentQueue) init() {
	q.flight = recList{head: noRec, tail: noRec}
	q.lost = recList{head: noRec, tail: noRec}
}

// at returns record i, which must be live.
func (q *sentQueue) at(i uint64) *txRecord {
	k := i - q.base
	return &q.blocks[k/recBlockLen][k%recBlockLen]
}

func (q *sentQueue) empty() bool { return q.head == q.tail }

// count returns the number of live records.
func (q *sentQueue) count() int { return int(q.tail - q.head) }

// first and last return the oldest and newest records (the queue must not
// be empty).
func (q *sentQueue) first() *txRecord { return q.at(q.head) }
func (q *sentQueue) last() *txRecord  { return q.at(q.tail - 1) }

// push appends a record for a new transmission of [start, end) and
// returns it, on the flight list's tail. The caller fills in the rest.
func (q *sentQueue) push(start, end wire.Seq, now clock.Instant) (uint64, *txRecord) {
	i := q.tail
	k := i - q.base
	b := k / recBlockLen
	for uint64(len(q.blocks)) <= b {
		q.blocks = append(q.blocks, nil)
	}
	if q.blocks[b] == nil {
		q.blocks[b] = recPool.Get().(*recBlock)
	}
	q.tail++
	r := q.at(i)
	*r = txRecord{start: start, end: end, xmit: now, prev: noRec, next: noRec}
	q.link(&q.flight, i, r, listFlight)
	return i, r
}

// link appends record i to list l.
func (q *sentQueue) link(l *recList, i uint64, r *txRecord, which uint8) {
	r.list = which
	r.prev, r.next = l.tail, noRec
	if l.tail != noRec {
		q.at(l.tail).next = i
	} else {
		l.head = i
	}
	l.tail = i
	l.bytes += r.len()
}

// unlink removes record i from its list, if any.
func (q *sentQueue) unlink(i uint64, r *txRecord) {
	var l *recList
	switch r.list {
	case listFlight:
		l = &q.flight
	case listLost:
		l = &q.lost
	default:
		return
	}
	if r.prev != noRec {
		q.at(r.prev).next = r.next
	} else {
		l.head = r.next
	}
	if r.next != noRec {
		q.at(r.next).prev = r.prev
	} else {
		l.tail = r.prev
	}
	l.bytes -= r.len()
	r.list, r.prev, r.next = listNone, noRec, noRec
}

// find returns the index of the first record that ends after seq (holds
// seq, or lies above it), or q.tail if there is none: a binary search,
// O(log n). Sequence numbers compare relative to the first record's start,
// so the search works across the 2³² wrap.
func (q *sentQueue) find(seq wire.Seq) uint64 {
	if q.empty() {
		return q.tail
	}
	base := q.first().start
	off := seq.Size(base)
	if seq.LessThan(base) {
		off = 0
	}
	lo, hi := q.head, q.tail
	for lo < hi {
		mid := lo + (hi-lo)/2
		if q.at(mid).end.Size(base) <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// sent moves a record that was just resent to the flight list's tail
// (RACK keeps the list in transmission order) and marks it resent.
func (q *sentQueue) resent(i uint64, r *txRecord, now clock.Instant) {
	if r.flags&recSACKed != 0 {
		r.xmit = now
		r.flags |= recRetrans
		return
	}
	q.unlink(i, r)
	r.flags &^= recLost
	r.flags |= recRetrans
	r.xmit = now
	q.link(&q.flight, i, r, listFlight)
}

// markLost moves a record from the flight list to the lost list's tail.
func (q *sentQueue) markLost(i uint64, r *txRecord) {
	if r.flags&(recSACKed|recLost) != 0 {
		return
	}
	q.unlink(i, r)
	r.flags |= recLost
	q.link(&q.lost, i, r, listLost)
}

// unmarkLost puts every record of the lost list back in flight: the
// losses were spurious (an undo, RFC 3708, RFC 4015, RFC 5682). They
// rejoin the flight list in transmission order (RACK walks it oldest
// first); they need not all be older than the records in flight — an RTO
// marks a retransmission lost with the rest — so the lost list, in the
// order of marking, is sorted by send time and merged with the flight
// list: O(n log n) once per undo, with no allocation.
func (q *sentQueue) unmarkLost() {
	if q.lost.head == noRec {
		return
	}
	n := 0
	for i := q.lost.head; i != noRec; i = q.at(i).next {
		r := q.at(i)
		r.flags &^= recLost
		r.list = listFlight
		n++
	}
	lost := q.sortBySend(q.lost.head, n)
	head := q.mergeBySend(lost, q.flight.head)
	// Rebuild the back links and the ends.
	prev := noRec
	for i := head; i != noRec; i = q.at(i).next {
		q.at(i).prev = prev
		prev = i
	}
	q.flight.head, q.flight.tail = head, prev
	q.flight.bytes += q.lost.bytes
	q.lost = recList{head: noRec, tail: noRec}
}

// sentBefore orders records as RACK does (RFC 8985 §6.2, RACK_sent_after):
// by send time, then by end sequence.
func (q *sentQueue) sentBefore(a, b uint64) bool {
	ra, rb := q.at(a), q.at(b)
	return ra.xmit < rb.xmit || ra.xmit == rb.xmit && ra.end.LessThan(rb.end)
}

// sortBySend sorts the n records linked by next from head by send time
// (a merge sort of the list; prev links are left stale) and returns the
// new head.
func (q *sentQueue) sortBySend(head uint64, n int) uint64 {
	if n <= 1 {
		if head != noRec {
			q.at(head).next = noRec
		}
		return head
	}
	mid := head
	for range n/2 - 1 {
		mid = q.at(mid).next
	}
	second := q.at(mid).next
	q.at(mid).next = noRec
	return q.mergeBySend(q.sortBySend(head, n/2), q.sortBySend(second, n-n/2))
}

// mergeBySend merges two lists sorted by send time, linked by next, and
// returns the head of the result (prev links are left stale).
func (q *sentQueue) mergeBySend(a, b uint64) uint64 {
	head, tail := noRec, noRec
	for a != noRec || b != noRec {
		var take uint64
		if b == noRec || a != noRec && !q.sentBefore(b, a) {
			take, a = a, q.at(a).next
		} else {
			take, b = b, q.at(b).next
		}
		if tail == noRec {
			head = take
		} else {
			q.at(tail).next = take
		}
		tail = take
	}
	if tail != noRec {
		q.at(tail).next = noRec
	}
	return head
}

// sack marks record i SACKed: it leaves its list.
func (q *sentQueue) sack(i uint64, r *txRecord) {
	q.unlink(i, r)
	r.flags = r.flags&^recLost | recSACKed
}

// unsack clears every SACK mark (the receiver reneged, RFC 2018 §8): the
// records go to the lost list in sequence order, to be resent. It walks
// every record, once per reneging.
func (q *sentQueue) unsackAll() {
	for i := q.head; i < q.tail; i++ {
		r := q.at(i)
		if r.flags&recSACKed != 0 {
			r.flags &^= recSACKed
			r.flags |= recLost
			q.link(&q.lost, i, r, listLost)
		}
	}
}

// popFront removes the first record, which must be on no list or is taken
// off its list, and gives back its block when it was the block's last.
func (q *sentQueue) popFront() {
	r := q.at(q.head)
	q.unlink(q.head, r)
	q.head++
	if q.head == q.tail {
		q.release()
		return
	}
	for q.head-q.base >= recBlockLen {
		recPool.Put(q.blocks[0])
		copy(q.blocks, q.blocks[1:])
		q.blocks[len(q.blocks)-1] = nil
		q.blocks = q.blocks[:len(q.blocks)-1]
		q.base += recBlockLen
	}
}

// trimFront drops the first record's bytes below seq (a cumulative ACK
// inside it).
func (q *sentQueue) trimFront(seq wire.Seq) {
	r := q.at(q.head)
	if !seq.GreaterThan(r.start) || !seq.LessThan(r.end) {
		return
	}
	d := seq.Size(r.start)
	switch r.list {
	case listFlight:
		q.flight.bytes -= d
	case listLost:
		q.lost.bytes -= d
	}
	r.start = seq
}

// release gives back every block and empties the queue; the slice of
// block pointers is kept (an idle connection holds no block).
func (q *sentQueue) release() {
	for i, b := range q.blocks {
		if b != nil {
			recPool.Put(b)
			q.blocks[i] = nil
		}
	}
	q.blocks = q.blocks[:0]
	q.base = q.tail
	q.head = q.tail
	q.init()
}

// free is release, and the slice goes too (the connection ended).
func (q *sentQueue) free() {
	q.release()
	q.blocks = nil
}

// held returns how many blocks the queue holds.
func (q *sentQueue) held() int {
	n := 0
	for _, b := range q.blocks {
		if b != nil {
			n++
		}
	}
	return n
}

// split cuts record i, which must be on a list, into records of at most
// mss bytes of data each (its FIN, if any, stays with the last piece):
// what was sent as one segment before the MSS fell (a probe larger than
// the path takes, RFC 4821 §7.5; data in flight when a packet too big
// arrived, RFC 1191 §6.5) is resent in pieces that fit. The pieces keep
// the record's flags and send time and follow it on its list, which keeps
// the list in send order. The records after i move up by the number of
// new pieces and every link is renumbered: O(n) in the records held, once
// per change of the MSS, which is rare.
func (q *sentQueue) split(i uint64, mss uint32) {
	r := q.at(i)
	data := r.len()
	if r.flags&recFIN != 0 {
		data--
	}
	if mss == 0 || data <= mss || r.list == listNone {
		return
	}
	k := uint64((data+mss-1)/mss) - 1 // pieces added
	oldTail := q.tail
	for j := uint64(0); j < k; j++ {
		q.grow()
	}
	// Move the records after i up by k, from the last.
	for j := oldTail; j > i+1; j-- {
		*q.at(j - 1 + k) = *q.at(j - 1)
	}
	shift := func(x uint64) uint64 {
		if x != noRec && x > i {
			return x + k
		}
		return x
	}
	for j := q.head; j < q.tail; j++ {
		if j > i && j <= i+k {
			continue // the pieces, written below
		}
		rr := q.at(j)
		rr.prev, rr.next = shift(rr.prev), shift(rr.next)
	}
	for _, l := range []*recList{&q.flight, &q.lost} {
		l.head, l.tail = shift(l.head), shift(l.tail)
	}
	r = q.at(i)
	tail := r.flags & (recFIN | recPSH)
	next := r.next
	start, end := r.start, r.end
	prev := i
	for j := uint64(0); j <= k; j++ {
		p := q.at(i + j)
		if j > 0 {
			*p = *r
		}
		p.start = start.Add(uint32(j) * mss)
		p.flags &^= recFIN | recPSH
		if j < k {
			p.end = p.start.Add(mss)
		} else {
			p.end = end
			p.flags |= tail
		}
		if j > 0 {
			p.prev = prev
			q.at(prev).next = i + j
		}
		prev = i + j
	}
	last := q.at(i + k)
	last.next = next
	l := &q.flight
	if r.list == listLost {
		l = &q.lost
	}
	if next != noRec {
		q.at(next).prev = i + k
	} else {
		l.tail = i + k
	}
}

// grow appends an empty slot at the tail (split fills it).
func (q *sentQueue) grow() {
	k := q.tail - q.base
	b := k / recBlockLen
	for uint64(len(q.blocks)) <= b {
		q.blocks = append(q.blocks, nil)
	}
	if q.blocks[b] == nil {
		q.blocks[b] = recPool.Get().(*recBlock)
	}
	q.tail++
}
