package impair

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// AQMKind names the discipline of the bottleneck queue.
type AQMKind uint8

const (
	// DropTail is a plain FIFO that drops what does not fit (Queue,
	// QueueBytes): the default, and netem's and pfifo's behaviour.
	DropTail AQMKind = iota
	// CoDel is Controlled Delay active queue management (RFC 8289), as
	// Linux's codel qdisc and each queue of fq_codel run it.
	CoDel
)

// String returns "droptail" or "codel".
func (k AQMKind) String() string {
	switch k {
	case DropTail:
		return "droptail"
	case CoDel:
		return "codel"
	}
	return "aqm(" + strconv.Itoa(int(k)) + ")"
}

// CoDel's defaults (RFC 8289 §4.2 and §4.3; Linux's codel qdisc).
const (
	DefaultCoDelTarget   = 5 * time.Millisecond
	DefaultCoDelInterval = 100 * time.Millisecond
	// DefaultCoDelMTU is the backlog, in bytes, at or below which CoDel
	// never drops (RFC 8289 §5.3's maxpacket; Linux uses the device's
	// MTU plus its link header, 1514 on Ethernet).
	DefaultCoDelMTU = 1514
)

// AQM configures active queue management of the bottleneck queue (it
// needs a Rate: without one there is no queue). The zero value is
// DropTail.
type AQM struct {
	// Kind is the discipline.
	Kind AQMKind
	// Target is CoDel's acceptable standing queue delay (0: 5 ms).
	Target time.Duration
	// Interval is CoDel's sliding window, about a worst-case RTT (0:
	// 100 ms).
	Interval time.Duration
	// ECN makes CoDel mark ECN-capable packets Congestion Experienced
	// instead of dropping them (RFC 3168 §5; `tc ... codel ecn`,
	// fq_codel's default). Packets that are not ECN-capable are still
	// dropped.
	ECN bool
}

// codelVerdict is what the queue does to one frame copy.
type codelVerdict uint8

const (
	vPass codelVerdict = iota
	vMark
	vDrop
)

// follow says what the previous frame's drop left for the next frame
// dequeued at the same instant (Linux's codel_dequeue dequeues again at
// once after a drop).
type follow uint8

const (
	followNone  follow = iota
	followEntry        // dropped on entering the dropping state: the next frame passes
	followLoop         // dropped in the dropping state: the next frame continues the loop
)

// codel is the state of RFC 8289's algorithm (its §5 pseudocode, and
// Linux's include/net/codel_impl.h, whose choices it follows where the
// two differ: a strict "after" for first_above_time, the count reuse of
// §5.5, marking an ECN-capable packet ends the drop loop).
//
// CoDel decides when a packet is dequeued, from how long it waited. The
// Model's bottleneck is a FIFO at a known rate, so when a frame is
// offered its dequeue time (when its first bit goes on the wire: the
// departure of the frame ahead of it) and its sojourn time are already
// known, and so is every earlier frame's fate. decide therefore runs the
// dequeue-time state machine for each frame in FIFO order, at that
// frame's dequeue time, when the frame is offered; a frame it drops never
// takes the link, so the frames behind it leave earlier, as after a head
// drop. One input is not known then: the backlog behind the frame when
// it leaves (RFC 8289 §5.3 does not drop when at most one MTU is
// queued). decide takes the bytes queued ahead of the frame when it
// arrived instead, which is the same in a standing queue, the state CoDel
// acts on, and a frame that finds the queue empty resets the state as
// Linux's dequeue of an empty queue does.
type codel struct {
	target, interval time.Duration
	mtu              int
	ecn              bool

	dropping         bool
	count, lastCount uint32
	aboveSet         bool
	firstAbove       clock.Instant
	dropNext         clock.Instant

	follow   follow
	followAt clock.Instant
}

func newCoDel(a AQM) *codel {
	q := &codel{target: a.Target, interval: a.Interval, mtu: DefaultCoDelMTU, ecn: a.ECN}
	if q.target <= 0 {
		q.target = DefaultCoDelTarget
	}
	if q.interval <= 0 {
		q.interval = DefaultCoDelInterval
	}
	return q
}

// controlLaw returns t + interval/√count (RFC 8289 §5.4).
func (q *codel) controlLaw(t clock.Instant, count uint32) clock.Instant {
	return t.Add(time.Duration(float64(q.interval) / math.Sqrt(float64(max(count, 1)))))
}

// shouldDrop is RFC 8289's dodequeue test (Linux's codel_should_drop)
// for a frame leaving at now after waiting sojourn, with backlog bytes
// queued.
func (q *codel) shouldDrop(now clock.Instant, sojourn time.Duration, backlog int) bool {
	if sojourn < q.target || backlog <= q.mtu {
		q.aboveSet = false
		return false
	}
	if !q.aboveSet {
		q.aboveSet, q.firstAbove = true, now.Add(q.interval)
		return false
	}
	return now > q.firstAbove
}

// decide returns the fate of a frame dequeued at now after waiting
// sojourn, with backlog bytes queued ahead of it when it arrived; empty
// says it found the queue empty, ect that it may be marked instead of
// dropped. Calls come in FIFO order with non-decreasing now.
func (q *codel) decide(now clock.Instant, sojourn time.Duration, backlog int, empty, ect bool) codelVerdict {
	if empty || (q.follow != followNone && now != q.followAt) {
		// The queue ran empty: the dequeue that found it so left the
		// dropping state, and the last frame before it had no backlog.
		q.follow, q.dropping, q.aboveSet = followNone, false, false
	}
	ok := q.shouldDrop(now, sojourn, backlog)
	switch q.follow {
	case followEntry:
		q.follow = followNone
		return vPass
	case followLoop:
		q.follow = followNone
		if !ok {
			q.dropping = false
			return vPass
		}
		q.dropNext = q.controlLaw(q.dropNext, q.count)
		return q.loop(now, ect)
	}
	if q.dropping {
		if !ok {
			q.dropping = false
			return vPass
		}
		return q.loop(now, ect)
	}
	if !ok {
		return vPass
	}
	// Enter the dropping state (RFC 8289 §5.5): if it was left only
	// recently, resume near the drop rate that controlled the queue then.
	v := vDrop
	if q.ecn && ect {
		v = vMark
	}
	q.dropping = true
	if delta := q.count - q.lastCount; delta > 1 && now < q.dropNext.Add(16*q.interval) {
		q.count = delta
	} else {
		q.count = 1
	}
	q.lastCount = q.count
	q.dropNext = q.controlLaw(now, q.count)
	if v == vDrop {
		q.follow, q.followAt = followEntry, now
	}
	return v
}

// loop is one turn of the dropping state's loop: drop (or mark) when the
// next drop is due.
func (q *codel) loop(now clock.Instant, ect bool) codelVerdict {
	if now < q.dropNext {
		return vPass
	}
	q.count++
	if q.ecn && ect {
		q.dropNext = q.controlLaw(q.dropNext, q.count)
		return vMark
	}
	q.follow, q.followAt = followLoop, now
	return vDrop
}

// ECN codepoints (RFC 3168 §5).
const (
	ecnNotECT = 0
	ecnCE     = 3
)

// ipHeader finds the IP header in a frame whose link header is hdr bytes
// long (14: Ethernet, with or without one 802.1Q tag; 0: a bare IP
// packet): its offset, whether it is IPv6, and its ECN codepoint. ok is
// false for anything but a well-formed start of an IPv4 or IPv6 header.
func ipHeader(frame []byte, hdr int) (off int, v6 bool, ecn uint8, ok bool) {
	off = hdr
	if hdr == 14 {
		if len(frame) < 14 {
			return 0, false, 0, false
		}
		et := binary.BigEndian.Uint16(frame[12:])
		if et == 0x8100 || et == 0x88a8 {
			if len(frame) < 18 {
				return 0, false, 0, false
			}
			et, off = binary.BigEndian.Uint16(frame[16:]), 18
		}
		switch et {
		case uint16(wire.EtherTypeIPv4), uint16(wire.EtherTypeIPv6):
		default:
			return 0, false, 0, false
		}
	}
	if off < 0 || len(frame) < off+2 {
		return 0, false, 0, false
	}
	switch frame[off] >> 4 {
	case 4:
		if frame[off]&0x0f < 5 || len(frame) < off+20 {
			return 0, false, 0, false
		}
		return off, false, frame[off+1] & 3, true
	case 6:
		if len(frame) < off+40 {
			return 0, false, 0, false
		}
		return off, true, frame[off+1] >> 4 & 3, true
	}
	return 0, false, 0, false
}

// setCE marks the IP packet at frame[off:] Congestion Experienced
// (RFC 3168 §5), updating an IPv4 header checksum incrementally
// (RFC 1624 §3); IPv6 has no header checksum. It changes nothing if the
// header is not there (the frame is shorter, or another protocol).
func setCE(frame []byte, off int, v6 bool) {
	if off < 0 || len(frame) < off+2 {
		return
	}
	b := frame[off:]
	if v6 {
		if b[0]>>4 == 6 {
			b[1] |= ecnCE << 4
		}
		return
	}
	if b[0]>>4 != 4 || len(b) < 20 || b[1]&3 == ecnCE {
		return
	}
	old := binary.BigEndian.Uint16(b[0:])
	b[1] |= ecnCE
	csum := wire.ChecksumUpdate16(binary.BigEndian.Uint16(b[10:]), old, binary.BigEndian.Uint16(b[0:]))
	binary.BigEndian.PutUint16(b[10:], csum)
}
