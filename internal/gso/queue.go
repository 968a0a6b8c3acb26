package gso

import "github.com/ustack/ustack/link"

// Queue holds frames that must reach a reader as wire frames, in order,
// across reads: UDP super-datagrams (a UDP socket takes datagrams one at a
// time, so a link cuts what the kernel's UDP segmentation left to it), and
// the UDP frames that arrive behind one, which must not overtake it. The
// links fill the slots of a batch from it before reading more. Its buffers
// are made on first use and kept.
type Queue struct {
	medium  link.Medium
	entries []queued // a ring
	head, n int
	seg     Segmenter
	cutting bool // seg is cutting entries[head]
}

type queued struct {
	buf []byte
	len int
	off link.Offload
}

// NewQueue returns a Queue for frames of medium m that holds at most max
// frames.
func NewQueue(m link.Medium, max int) *Queue {
	return &Queue{medium: m, entries: make([]queued, max)}
}

// Len returns the number of frames held (one partly handed out counts).
func (q *Queue) Len() int { return q.n }

// Push copies frame, with its Offload, to the end of the queue. It reports
// false, holding nothing, if the queue is full or frame is a super-frame
// that cannot be cut (its Offload does not match it).
func (q *Queue) Push(frame []byte, off link.Offload) bool {
	if q.n == len(q.entries) || len(frame) > link.MaxSuperFrame {
		return false
	}
	if off.GSOType != link.GSONone {
		var s Segmenter
		if s.Init(frame, q.medium, off) != nil {
			return false
		}
	}
	e := &q.entries[(q.head+q.n)%len(q.entries)]
	if e.buf == nil {
		e.buf = make([]byte, link.MaxSuperFrame)
	}
	e.len = copy(e.buf, frame)
	e.off = off
	q.n++
	return true
}

// Fill writes the held frames into pkts, cutting super-frames into their
// segments — each with its checksum partial and trusted (NeedsCsum and
// DataValid) when the super-frame's was partial, complete otherwise — and
// returns how many packets it filled. A frame longer than its packet's
// buffer is skipped and counted in tooBig.
func (q *Queue) Fill(pkts []link.Packet) (n int, tooBig int) {
	for n < len(pkts) && q.n > 0 {
		e := &q.entries[q.head]
		p := &pkts[n]
		if e.off.GSOType == link.GSONone {
			if e.len > len(p.Buf) {
				tooBig++
			} else {
				p.N = copy(p.Buf, e.buf[:e.len])
				p.Offload = e.off
				n++
			}
			q.pop()
			continue
		}
		if !q.cutting {
			q.seg.Init(e.buf[:e.len], q.medium, e.off) // checked by Push
			q.cutting = true
		}
		mode, off := Complete, link.Offload{}
		if e.off.NeedsCsum {
			l := q.seg.Layout()
			mode = Partial
			off = link.Offload{NeedsCsum: true, CsumStart: uint16(l.L4), CsumOffset: uint16(l.csumOffset()), DataValid: true}
		}
		if size, ok := q.seg.Next(p.Buf, mode); ok {
			p.N, p.Offload = size, off
			n++
		} else if !q.seg.Done() {
			tooBig++
		}
		if q.seg.Done() {
			q.cutting = false
			q.pop()
		}
	}
	return n, tooBig
}

func (q *Queue) pop() {
	q.entries[q.head].off = link.Offload{}
	q.head = (q.head + 1) % len(q.entries)
	q.n--
}
