package impair

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ustack/ustack/clock"
)

// DropReason says why a frame copy was dropped.
type DropReason uint8

const (
	// DropNone means the copy was not dropped.
	DropNone DropReason = iota
	// DropLoss: lost on the wire (Loss or the Gilbert–Elliott chain).
	DropLoss
	// DropQueue: the bottleneck queue was full (drop-tail).
	DropQueue
	// DropMTU: the frame was longer than MTU+LinkHeader.
	DropMTU
	// DropDown: the link was down.
	DropDown
	// DropAQM: the queue's active queue management (CoDel) dropped it.
	DropAQM
)

// String returns "none", "loss", "queue", "mtu" or "down".
func (r DropReason) String() string {
	switch r {
	case DropNone:
		return "none"
	case DropLoss:
		return "loss"
	case DropQueue:
		return "queue"
	case DropMTU:
		return "mtu"
	case DropDown:
		return "down"
	case DropAQM:
		return "aqm"
	}
	return "drop(" + strconv.Itoa(int(r)) + ")"
}

// Copy is one copy of a frame that is to be delivered.
type Copy struct {
	// Due is when the copy arrives at the far end of the link.
	Due clock.Instant
	// Corrupt says that bit Bit of the frame is to be flipped.
	Corrupt bool
	// Bit is the index of the bit to flip, counted from the start of the
	// frame: byte Bit/8, mask 1<<(Bit%8).
	Bit int
	// Reordered says the copy took the reorder path (skipped the delay).
	Reordered bool
	// CE says the queue marked the copy Congestion Experienced (AQM.ECN):
	// Apply sets the ECN field of its IP header to CE.
	CE bool
	// Queued is how long the copy waited in the bottleneck queue before
	// its first bit went on the wire.
	Queued time.Duration

	ipOff int  // where the IP header starts (CE)
	ipv6  bool // the IP header is IPv6 (CE)
}

// Apply changes frame as the link did to this copy: it flips the copy's
// bit, if the copy is corrupt and the bit lies inside frame, and sets the
// ECN field to CE if the queue marked the copy, updating the IPv4 header
// checksum (RFC 1624). frame must be the caller's copy of the frame that
// was offered, not a buffer shared with the sender. The mark is applied
// before the bit flip, as the queue comes before the wire.
func (c Copy) Apply(frame []byte) {
	if c.CE {
		setCE(frame, c.ipOff, c.ipv6)
	}
	if c.Corrupt && c.Bit >= 0 && c.Bit/8 < len(frame) {
		frame[c.Bit/8] ^= 1 << (c.Bit % 8)
	}
}

// Decision is the fate of one offered frame: N copies to deliver (0, 1, or
// 2 when duplicated) and Dropped copies dropped for Reason.
type Decision struct {
	// N is the number of copies to deliver; they are Copies[:N].
	N int
	// Copies holds the copies to deliver, original first.
	Copies [2]Copy
	// Dropped is the number of copies dropped (0, 1 or 2).
	Dropped int
	// Reason is why the (last) dropped copy was dropped.
	Reason DropReason
}

// Deliver returns the copies to deliver, Copies[:N].
func (d *Decision) Deliver() []Copy { return d.Copies[:d.N] }

// Counters are a Model's running totals. Every offered frame is either
// dropped whole before duplication (Down, MTU) or becomes one or two copies,
// each delivered or dropped, so
//
//	Offered + Duplicated == Delivered + DroppedLoss + DroppedQueue + DroppedAQM + DroppedMTU + DroppedDown
type Counters struct {
	// Offered counts calls to Offer.
	Offered uint64
	// Delivered counts copies given a due time.
	Delivered uint64
	// DroppedLoss counts copies lost on the wire.
	DroppedLoss uint64
	// DroppedQueue counts copies dropped by the full bottleneck queue.
	DroppedQueue uint64
	// DroppedAQM counts copies the queue's AQM (CoDel) dropped.
	DroppedAQM uint64
	// Marked counts copies the AQM marked Congestion Experienced instead
	// of dropping them (AQM.ECN; already-CE copies included, as Linux
	// counts them).
	Marked uint64
	// Queued counts copies that passed the bottleneck queue (not dropped
	// there); QueueDelay is the total time they waited in it, and
	// MaxQueueDelay the longest wait. QueueDelay/Queued is the mean
	// queueing delay a packet saw.
	Queued        uint64
	QueueDelay    time.Duration
	MaxQueueDelay time.Duration
	// DroppedMTU counts frames longer than MTU+LinkHeader.
	DroppedMTU uint64
	// DroppedDown counts frames offered while the link was down.
	DroppedDown uint64
	// Duplicated counts frames that became two copies.
	Duplicated uint64
	// Corrupted counts delivered copies with a bit to flip.
	Corrupted uint64
	// Reordered counts delivered copies that took the reorder path.
	Reordered uint64
	// Overtook counts delivered copies due before a copy delivered from an
	// earlier offer (reordered by Reorder or by jitter).
	Overtook uint64
}

// Dropped returns the number of copies dropped for reason r (all reasons
// for DropNone).
func (c *Counters) Dropped(r DropReason) uint64 {
	switch r {
	case DropLoss:
		return c.DroppedLoss
	case DropQueue:
		return c.DroppedQueue
	case DropAQM:
		return c.DroppedAQM
	case DropMTU:
		return c.DroppedMTU
	case DropDown:
		return c.DroppedDown
	case DropNone:
		return c.DroppedLoss + c.DroppedQueue + c.DroppedAQM + c.DroppedMTU + c.DroppedDown
	}
	return 0
}

// queued is a frame in the bottleneck queue: its length and the time its
// last bit leaves.
type queued struct {
	depart clock.Instant
	n      int
}

// Model applies a Config to the frames of one direction of a link. It is
// not safe for concurrent use; the caller serialises calls (a link
// direction has one Model and one lock).
type Model struct {
	cfg Config
	rng *rand.Rand
	up  bool

	geBad bool

	// Bottleneck: a ring of the frames not yet serialized at the last
	// Offer, and the busy period they belong to.
	ring      []queued
	head, cnt int
	qbytes    int
	busyStart clock.Instant // start of the current busy period
	busyBits  uint64        // bits serialized since busyStart
	aqm       *codel        // the queue's AQM, or nil for drop-tail

	lastDue clock.Instant // due time of the last non-reordered copy (KeepOrder)
	maxDue  clock.Instant // latest due time handed out
	any     bool          // a copy has been delivered (maxDue is valid)

	c Counters
}

// PCG stream constants: one per direction of a duplex link.
const (
	streamA = 0x9e3779b97f4a7c15
	streamB = 0xbf58476d1ce4e5b9
)

// New returns a Model for cfg whose random decisions come from seed. The
// link starts up.
//
// New does not reject a bad Config (use Validate or ParseConfig for that):
// probabilities are clamped to [0, 1] and negative durations and lengths
// are taken as 0.
func New(cfg Config, seed uint64) *Model {
	return newModel(cfg, seed, streamA)
}

// NewPair returns the two Models of a duplex link, one per direction, each
// with its own random stream derived from the one seed. The first is the
// same as New(ab, seed).
func NewPair(ab, ba Config, seed uint64) (abModel, baModel *Model) {
	return newModel(ab, seed, streamA), newModel(ba, seed, streamB)
}

func newModel(cfg Config, seed, stream uint64) *Model {
	cfg = sanitize(cfg)
	m := &Model{cfg: cfg, rng: rand.New(rand.NewPCG(seed, stream)), up: true}
	if cfg.Rate > 0 {
		q := cfg.Queue
		if q == 0 {
			q = DefaultQueue
		}
		m.ring = make([]queued, q)
		if cfg.AQM.Kind == CoDel {
			m.aqm = newCoDel(cfg.AQM)
		}
	}
	return m
}

func clamp01(p float64) float64 {
	if !(p > 0) { // also NaN
		return 0
	}
	return min(p, 1)
}

func sanitize(c Config) Config {
	c.Loss = clamp01(c.Loss)
	c.Reorder = clamp01(c.Reorder)
	c.Dup = clamp01(c.Dup)
	c.Corrupt = clamp01(c.Corrupt)
	c.GE.P = clamp01(c.GE.P)
	c.GE.R = clamp01(c.GE.R)
	c.GE.LossBad = clamp01(c.GE.LossBad)
	c.GE.LossGood = clamp01(c.GE.LossGood)
	c.Delay = max(c.Delay, 0)
	c.Jitter = max(c.Jitter, 0)
	if c.Dist > Normal {
		c.Dist = Uniform
	}
	c.CorruptOffset = max(c.CorruptOffset, 0)
	c.Queue = max(c.Queue, 0)
	c.QueueBytes = max(c.QueueBytes, 0)
	c.MTU = max(c.MTU, 0)
	c.LinkHeader = max(c.LinkHeader, 0)
	if c.AQM.Kind > CoDel {
		c.AQM.Kind = DropTail
	}
	c.AQM.Target = max(c.AQM.Target, 0)
	c.AQM.Interval = max(c.AQM.Interval, 0)
	return c
}

// Config returns the configuration in use (after New's clamping).
func (m *Model) Config() Config { return m.cfg }

// Counters returns the running totals.
func (m *Model) Counters() Counters { return m.c }

// SetUp brings the link up or down. Frames offered while it is down are
// dropped (DropDown); copies already given a due time are not recalled.
func (m *Model) SetUp(up bool) { m.up = up }

// Up reports whether the link is up.
func (m *Model) Up() bool { return m.up }

// chance draws once from the random stream, unless p is 0 or 1 (so a
// disabled impairment consumes no randomness).
func (m *Model) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	return m.rng.Float64() < p
}

// Offer decides the fate of a frame of frameLen bytes offered to the link
// at now (see the package documentation for the stages). Calls should come
// with non-decreasing now. A negative frameLen is taken as 0. Offer does
// not allocate.
//
// Offer does not see the frame, so an AQM takes it for a packet that is
// not ECN-capable (it drops it rather than marking it); OfferFrame reads
// the ECN field.
func (m *Model) Offer(now clock.Instant, frameLen int) Decision {
	return m.offer(now, frameLen, 0, false, ecnNotECT)
}

// OfferFrame is Offer for the frame itself: an AQM with ECN marks the
// copies of an ECN-capable IP packet instead of dropping them, and
// Copy.Apply writes the mark. The IP header is found after LinkHeader
// bytes (14: Ethernet, with or without an 802.1Q tag; 0: bare IP). The
// frame is not changed or kept. OfferFrame does not allocate.
func (m *Model) OfferFrame(now clock.Instant, frame []byte) Decision {
	if m.aqm == nil || !m.aqm.ecn {
		return m.offer(now, len(frame), 0, false, ecnNotECT)
	}
	off, v6, ecn, ok := ipHeader(frame, m.cfg.LinkHeader)
	if !ok {
		ecn = ecnNotECT
	}
	return m.offer(now, len(frame), off, v6, ecn)
}

func (m *Model) offer(now clock.Instant, frameLen, ipOff int, v6 bool, ecn uint8) Decision {
	var d Decision
	frameLen = max(frameLen, 0)
	m.c.Offered++
	if !m.up {
		m.c.DroppedDown++
		d.Dropped, d.Reason = 1, DropDown
		return d
	}
	if m.cfg.MTU > 0 && frameLen > m.cfg.MTU+m.cfg.LinkHeader {
		m.c.DroppedMTU++
		d.Dropped, d.Reason = 1, DropMTU
		return d
	}
	copies := 1
	if m.chance(m.cfg.Dup) {
		copies = 2
		m.c.Duplicated++
	}
	for range copies {
		depart, queued, v := m.serialize(now, frameLen, ecn != ecnNotECT)
		switch v {
		case qFull:
			m.c.DroppedQueue++
			d.Dropped++
			d.Reason = DropQueue
			continue
		case qAQMDrop:
			m.c.DroppedAQM++
			d.Dropped++
			d.Reason = DropAQM
			continue
		}
		if m.lose() {
			m.c.DroppedLoss++
			d.Dropped++
			d.Reason = DropLoss
			continue
		}
		c := &d.Copies[d.N]
		d.N++
		m.c.Delivered++
		c.Queued = queued
		if v == qMark {
			c.CE, c.ipOff, c.ipv6 = true, ipOff, v6
		}
		if frameLen > m.cfg.CorruptOffset && m.chance(m.cfg.Corrupt) {
			c.Corrupt = true
			c.Bit = m.cfg.CorruptOffset*8 + m.rng.IntN((frameLen-m.cfg.CorruptOffset)*8)
			m.c.Corrupted++
		}
		c.Due = m.delay(depart, c)
		if m.any && c.Due < m.maxDue {
			m.c.Overtook++
		}
		if !m.any || c.Due > m.maxDue {
			m.maxDue, m.any = c.Due, true
		}
	}
	return d
}

// queueVerdict is what the bottleneck queue did with a copy.
type queueVerdict uint8

const (
	qPass    queueVerdict = iota
	qMark                 // passed, marked CE by the AQM
	qFull                 // dropped: the queue was full
	qAQMDrop              // dropped by the AQM
)

// forget drops from the ring the frames that have left by now.
func (m *Model) forget(now clock.Instant) {
	for m.cnt > 0 && m.ring[m.head].depart <= now {
		m.qbytes -= m.ring[m.head].n
		m.head = (m.head + 1) % len(m.ring)
		m.cnt--
	}
}

// serialize passes a copy through the bottleneck: it returns the time its
// last bit leaves and how long it waited for the wire, or a verdict that
// drops it (the queue is full, or the AQM dropped it). ect says the copy
// may be marked instead of dropped. Without a Rate a copy leaves at once.
func (m *Model) serialize(now clock.Instant, n int, ect bool) (clock.Instant, time.Duration, queueVerdict) {
	if m.cfg.Rate == 0 {
		m.c.Queued++
		return now, 0, qPass
	}
	m.forget(now)
	if m.cnt == len(m.ring) || (m.cfg.QueueBytes > 0 && m.qbytes+n > m.cfg.QueueBytes) {
		return 0, 0, qFull
	}
	// The copy's first bit goes on the wire when the frame ahead of it
	// has left.
	start := now
	if m.cnt > 0 {
		start = max(now, m.ring[(m.head+m.cnt-1)%len(m.ring)].depart)
	}
	v := qPass
	if m.aqm != nil {
		switch m.aqm.decide(start, start.Sub(now), m.qbytes, m.cnt == 0, ect) {
		case vDrop:
			return 0, 0, qAQMDrop
		case vMark:
			m.c.Marked++
			v = qMark
		}
	}
	if m.cnt == 0 {
		// The link is idle: a new busy period starts now. Counting bits
		// from the start of a busy period (rather than adding a rounded
		// time per frame) keeps the long-run rate exact.
		m.busyStart, m.busyBits = now, 0
	}
	m.busyBits += uint64(n) * 8
	hi, lo := bits.Mul64(m.busyBits, uint64(time.Second))
	dep := clock.Never
	if hi < m.cfg.Rate {
		ns, rem := bits.Div64(hi, lo, m.cfg.Rate)
		if rem != 0 {
			ns++
		}
		if ns <= math.MaxInt64 {
			dep = m.busyStart.Add(time.Duration(ns))
		}
	}
	m.ring[(m.head+m.cnt)%len(m.ring)] = queued{depart: dep, n: n}
	m.cnt++
	m.qbytes += n
	wait := start.Sub(now)
	m.c.Queued++
	m.c.QueueDelay += wait
	m.c.MaxQueueDelay = max(m.c.MaxQueueDelay, wait)
	return dep, wait, v
}

// Backlog returns what the bottleneck queue holds at now: the frames and
// bytes not yet serialized (the one on the wire included), and how long
// a frame offered now would wait before its first bit goes on the wire.
// Without a Rate the queue is always empty. Calls, like Offer's, should
// come with non-decreasing now.
func (m *Model) Backlog(now clock.Instant) (frames, bytes int, wait time.Duration) {
	if m.cfg.Rate == 0 {
		return 0, 0, 0
	}
	m.forget(now)
	if m.cnt == 0 {
		return 0, 0, 0
	}
	last := m.ring[(m.head+m.cnt-1)%len(m.ring)].depart
	return m.cnt, m.qbytes, max(last.Sub(now), 0)
}

// lose decides loss on the wire.
func (m *Model) lose() bool {
	lost := m.chance(m.cfg.Loss)
	if g := &m.cfg.GE; g.Enabled() {
		if m.geBad {
			if m.chance(g.LossBad) {
				lost = true
			}
			if m.chance(g.R) {
				m.geBad = false
			}
		} else {
			if m.chance(g.LossGood) {
				lost = true
			}
			if m.chance(g.P) {
				m.geBad = true
			}
		}
	}
	return lost
}

// delay returns the due time of a copy that left the bottleneck at depart.
func (m *Model) delay(depart clock.Instant, c *Copy) clock.Instant {
	if m.chance(m.cfg.Reorder) {
		c.Reordered = true
		m.c.Reordered++
		return depart
	}
	d := m.cfg.Delay
	if j := m.cfg.Jitter; j > 0 {
		switch m.cfg.Dist {
		case Normal:
			x := m.rng.NormFloat64()
			x = max(-4, min(4, x))
			d += time.Duration(x * float64(j))
		default:
			if j < math.MaxInt64/2 {
				d += time.Duration(m.rng.Int64N(int64(2*j)+1)) - j
			}
		}
	}
	due := depart.Add(max(d, 0))
	if m.cfg.KeepOrder {
		due = max(due, m.lastDue)
		m.lastDue = due
	}
	return due
}
