package network

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// ReassemblyConfig sets the reassembler's limits. Zero fields take the
// defaults, which are Linux's (net.ipv4.ipfrag_*).
type ReassemblyConfig struct {
	Timeout  time.Duration // Linux ipfrag_time 30 s
	MaxBytes int           // memory cap over all datagrams being reassembled, per family (Linux ipfrag_high_thresh and ip6frag_high_thresh, 4 MiB each); new fragments are dropped above it (ReasmFails)
	// IPv6Timeout is the reassembly timeout of IPv6 packets (RFC 8200
	// §4.5: 60 s; Linux ip6frag_time 60 s).
	IPv6Timeout time.Duration
}

// Defaults of ReassemblyConfig.
const (
	DefaultReassemblyTimeout     = 30 * time.Second
	DefaultReassemblyMaxBytes    = 4 << 20
	DefaultIPv6ReassemblyTimeout = 60 * time.Second
)

const (
	// maxDatagram is the largest IPv4 datagram, header included (RFC 791
	// §3.1, the 16-bit total length).
	maxDatagram = 65535
	// datagramOverhead is what Bytes charges for a datagram in progress
	// besides its fragments' buffers: its bookkeeping and map entry, about
	// what Linux charges for an ipq.
	datagramOverhead = 256
	// maxPacket6 is the largest IPv6 packet, header included: a 40-byte
	// header and the 16-bit payload length (RFC 8200 §3, jumbograms
	// aside).
	maxPacket6 = wire.IPv6HeaderLen + 65535
	// maxExpired bounds the quotes waiting in PollExpired if the stack
	// does not take them; more are dropped (the ICMP errors they would
	// cause are rate-limited anyway).
	maxExpired = 1024
)

// fragKey identifies a datagram being reassembled: source, destination,
// protocol and identification (RFC 791 §3.2, "Reassembly"), or for IPv6
// source, destination and identification (RFC 8200 §4.5: the Next Header
// values of the fragments may differ; the first fragment's is used).
type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
}

// hole is an RFC 815 hole descriptor: payload bytes first..last (inclusive)
// are missing. The hole after the last fragment received ends at holeInf
// until the final fragment (MF=0) fixes the length.
type hole struct{ first, last int }

const holeInf = 1 << 30

// piece is received payload: bytes [off, off+len(buf)) of the datagram.
type piece struct {
	off int
	buf []byte
}

type datagram struct {
	key        fragKey
	created    clock.Instant
	prev, next *datagram // the expiry list, oldest first

	holes  []hole  // RFC 815 hole list, sorted, disjoint
	pieces []piece // the complement of holes, sorted, disjoint
	end    int     // payload length once the final fragment arrived, else -1
	maxEnd int     // end of the furthest byte received
	mem    int     // bytes charged to Reassembler.bytes

	// first holds, from the first fragment (offset 0), the header and up
	// to 8 bytes of its payload: for IPv4 the IP header, for IPv6 the
	// per-fragment headers (RFC 8200 §4.5's unfragmentable part) and the
	// fragment header. firstHL is the length of the header the
	// reassembled packet keeps (IPv6: without the fragment header), 0
	// until the first fragment arrives; nhOff (IPv6) is the offset of
	// the Next Header field that named the fragment header. first is a
	// pooled buffer, charged to mem.
	first   []byte
	firstHL int
	nhOff   int
}

// Reassembler puts IPv4 fragments back together (RFC 791 §3.2; RFC 815;
// RFC 1122 §3.3.2).
//
// Each datagram in progress keeps the RFC 815 hole list and its received
// payload as pieces in pooled buffers, one per hole a fragment filled, so
// the pieces never overlap and memory is what was received (rounded to a
// size class), not the 64 KiB a flat buffer could cost for one tiny
// fragment at a high offset. A fragment that overlaps bytes already
// received is compared with them: equal bytes are accepted (an exact
// duplicate is ignored), different bytes drop the whole datagram (RFC 5722
// §4 for IPv6; Linux does the same for IPv4 since 4.19, though Linux drops
// any partial overlap where this compares content). A complete datagram is
// copied once into an output buffer the Reassembler owns.
//
// The timer is Linux's: a datagram is dropped Timeout after its first
// fragment arrived (ipfrag_time; RFC 1122 §3.3.2 suggests 60 s to 120 s,
// Linux uses 30 s). The memory cap is checked before each fragment is
// stored, so Bytes never exceeds MaxBytes (Linux checks ipfrag_high_thresh
// the same way, but may overshoot by one fragment).
//
// Reassembler counts ReasmReqds, ReasmOKs, ReasmFails, ReasmTimeout,
// ReasmOverlaps, and InHdrErrors for fragments with bad lengths.
type Reassembler struct {
	cfg   ReassemblyConfig
	stats *Stats
	ctr   reasmCounters
	v6    bool

	m          map[fragKey]*datagram
	head, tail *datagram // expiry list: creation order is expiry order
	free       []*datagram
	bytes      int

	pool    bufPool
	out     []byte
	expired fifo[[]byte] // quotes, in pooled buffers
	quote   []byte       // returned by the last PollExpired
}

// reasmCounters are the counters a Reassembler adds to: IPv4's or
// IPv6's.
type reasmCounters struct {
	reqds, oks, fails, timeout, overlaps, hdrErrors *uint64
}

// NewReassembler returns a Reassembler with cfg (zero fields take the
// defaults) counting into stats (which may be nil).
func NewReassembler(cfg ReassemblyConfig, stats *Stats) *Reassembler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultReassemblyTimeout
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultReassemblyMaxBytes
	}
	if stats == nil {
		stats = new(Stats)
	}
	return &Reassembler{cfg: cfg, stats: stats, m: make(map[fragKey]*datagram), ctr: reasmCounters{
		reqds: &stats.ReasmReqds, oks: &stats.ReasmOKs, fails: &stats.ReasmFails, timeout: &stats.ReasmTimeout,
		overlaps: &stats.ReasmOverlaps, hdrErrors: &stats.InHdrErrors,
	}}
}

// NewReassembler6 returns a Reassembler of IPv6 packets (AddIPv6) with
// cfg's memory cap and IPv6Timeout (default 60 s), counting into stats'
// Ip6Reasm* counters (and Ip6InHdrErrors). It is the IPv4 Reassembler's
// algorithm, with RFC 8200 §4.5's rules where the two differ: the key has
// no protocol, the reassembled packet keeps the first fragment's
// per-fragment headers, and any overlap that is not an exact duplicate
// drops the packet (RFC 5722).
func NewReassembler6(cfg ReassemblyConfig, stats *Stats) *Reassembler {
	cfg.Timeout = cfg.IPv6Timeout
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultIPv6ReassemblyTimeout
	}
	r := NewReassembler(cfg, stats)
	r.v6 = true
	r.ctr = reasmCounters{
		reqds: &r.stats.Ip6ReasmReqds, oks: &r.stats.Ip6ReasmOKs, fails: &r.stats.Ip6ReasmFails, timeout: &r.stats.Ip6ReasmTimeout,
		overlaps: &r.stats.Ip6ReasmOverlaps, hdrErrors: &r.stats.Ip6InHdrErrors,
	}
	return r
}

// Add takes one fragment (a view that wire.ParseIPv4 accepted, with
// IsFragment() true; header checksum already verified by the caller). Keyed
// by (src, dst, protocol, ID) per RFC 791. When the datagram is complete it
// returns the whole reassembled packet (a valid IPv4 header with MF=0,
// offset 0, the right total length and header checksum, options of the
// first fragment, then the payload), valid until the next Add call, and
// ok=true. Overlapping fragments with different content → the whole
// datagram is dropped (ReasmOverlaps, ReasmFails) as Linux does since
// 4.19; exact duplicates are ignored. A datagram longer than 65535 bytes is
// dropped (ReasmFails). Fragments with bad lengths (non-final fragment
// whose payload is not a multiple of 8) are dropped (InHdrErrors).
//
// Also dropped: empty fragments (InHdrErrors); a fragment that contradicts
// the length the final fragment set, such as data beyond it or a second
// final fragment with another end (the whole datagram, counted like an
// overlap, as Linux does); a fragment that would take Bytes over MaxBytes
// (ReasmFails). A packet that does not parse or is not a fragment is
// ignored. The reassembled header is the first fragment's, flags other
// than MF kept.
func (r *Reassembler) Add(now clock.Instant, p wire.IPv4) (pkt []byte, ok bool) {
	if r.v6 {
		return nil, false
	}
	p, err := wire.ParseIPv4(p)
	if err != nil || !p.IsFragment() {
		return nil, false
	}
	k := fragKey{id: uint32(p.ID()), proto: p.Protocol()}
	copy(k.src[:], p[12:16])
	copy(k.dst[:], p[16:20])
	payload := p.Payload()
	hl := p.HeaderLen()
	return r.add(now, k, payload, int(p.FragOffset()), p.MF(), p[:hl+min(8, len(payload))], hl, 0)
}

// AddIPv6 takes one fragment of an IPv6 packet (RFC 8200 §4.5): p is the
// view c walked (wire.IPv6Chain.Walk, which checked the fragment's
// lengths and offset), and c.Fragmented() must be true. When the packet
// is complete it returns it whole, valid until the next call: the first
// fragment's per-fragment headers with the Next Header field that named
// the fragment header now naming what followed it (the first fragment's
// value), the payload length set, then the fragmentable part. It counts
// into the Ip6Reasm* counters and drops as Add does, with two
// differences: fragments are keyed by source, destination and
// identification alone, and a fragment that overlaps bytes already
// received is an overlap unless it repeats exactly what arrived (RFC
// 5722: the packet is dropped, Ip6ReasmOverlaps).
func (r *Reassembler) AddIPv6(now clock.Instant, p wire.IPv6, c *wire.IPv6Chain) (pkt []byte, ok bool) {
	if !r.v6 || !c.Fragmented() {
		return nil, false
	}
	pk := p.Packet()
	k := fragKey{id: c.Frag.ID}
	copy(k.src[:], pk[8:24])
	copy(k.dst[:], pk[24:40])
	payload := pk[c.Offset:]
	return r.add(now, k, payload, int(c.Frag.Offset), c.Frag.More, pk[:c.Offset+min(8, len(payload))], c.FragHeader, c.FragProtoOffset)
}

// add is Add and AddIPv6's common part: the fragment's payload (the
// fragmentable part's bytes) at off, with mf its more-fragments flag,
// head the fragment's headers and up to 8 bytes of payload, hl the
// length of the header the reassembled packet keeps, and nhOff (IPv6)
// the offset of the Next Header field to rewrite.
func (r *Reassembler) add(now clock.Instant, k fragKey, payload []byte, off int, mf bool, head []byte, hl, nhOff int) (pkt []byte, ok bool) {
	*r.ctr.reqds++
	end := off + len(payload)
	if len(payload) == 0 || (mf && len(payload)%8 != 0) {
		*r.ctr.hdrErrors++
		return nil, false
	}
	d := r.m[k]

	// RFC 791: the reassembled datagram's header is the first fragment's;
	// it and the payload must fit the 16-bit total length (IPv6: the
	// payload length, RFC 8200 §4.5). Until the first fragment arrives,
	// the smallest header is a lower bound of the header, and the check
	// is repeated when it does.
	limit, hlMin := maxDatagram, wire.IPv4HeaderLen
	if r.v6 {
		limit, hlMin = maxPacket6, wire.IPv6HeaderLen
	}
	total := end
	switch {
	case d != nil && d.firstHL > 0:
		hl = d.firstHL
	case off != 0:
		hl = hlMin
	}
	if d != nil {
		total = max(total, d.maxEnd)
	}
	if hl+total > limit {
		*r.ctr.fails++ // once, for the datagram
		if d != nil {
			r.free1(d)
		}
		return nil, false
	}

	firstCost := 0
	if off == 0 && (d == nil || d.firstHL == 0) {
		firstCost = bufCost(len(head))
	}
	if d == nil {
		cost := datagramOverhead + bufCost(len(payload)) + firstCost
		if r.bytes+cost > r.cfg.MaxBytes {
			*r.ctr.fails++
			return nil, false
		}
		d = r.newDatagram(now, k)
	} else {
		// The final fragment fixes the length; nothing may contradict it
		// (Linux ip_frag_queue: "corrupted" → discard the queue).
		if (!mf && ((d.end >= 0 && end != d.end) || end < d.maxEnd)) || (mf && d.end >= 0 && end > d.end) {
			r.overlap(d)
			return nil, false
		}
		if !r.sameAsReceived(d, off, payload) {
			r.overlap(d)
			return nil, false
		}
		cost, fresh := 0, 0
		for i := holeIndex(d.holes, off); i < len(d.holes) && d.holes[i].first < end; i++ {
			n := min(d.holes[i].last+1, end) - max(d.holes[i].first, off)
			cost += bufCost(n)
			fresh += n
		}
		if r.v6 && fresh != 0 && fresh != len(payload) {
			// RFC 5722 §4 (RFC 8200 §4.5): an overlap, however equal
			// its bytes, abandons the packet.
			r.overlap(d)
			return nil, false
		}
		if cost == 0 && (mf || d.end >= 0) {
			return nil, false // an exact duplicate: ignored (Linux IPFRAG_DUP)
		}
		if r.bytes+cost+firstCost > r.cfg.MaxBytes {
			*r.ctr.fails++
			return nil, false
		}
	}

	if firstCost > 0 {
		d.first = r.pool.get(len(head))
		copy(d.first, head)
		d.firstHL, d.nhOff = hl, nhOff
		d.mem += cap(d.first)
		r.bytes += cap(d.first)
	}
	r.fill(d, off, payload, mf)
	if len(d.holes) > 0 {
		return nil, false
	}
	out := r.assemble(d)
	r.free1(d)
	*r.ctr.oks++
	return out, true
}

// sameAsReceived reports whether the bytes of payload (at offset off) that
// were already received are equal to what was received.
func (r *Reassembler) sameAsReceived(d *datagram, off int, payload []byte) bool {
	end := off + len(payload)
	i, _ := slices.BinarySearchFunc(d.pieces, off, func(pc piece, off int) int {
		if pc.off+len(pc.buf) <= off {
			return -1
		}
		return 1
	})
	for ; i < len(d.pieces) && d.pieces[i].off < end; i++ {
		pc := d.pieces[i]
		lo, hi := max(pc.off, off), min(pc.off+len(pc.buf), end)
		if string(pc.buf[lo-pc.off:hi-pc.off]) != string(payload[lo-off:hi-off]) {
			return false
		}
	}
	return true
}

// holeIndex returns the index of the first hole that ends at or after off.
func holeIndex(holes []hole, off int) int {
	i, _ := slices.BinarySearchFunc(holes, off, func(h hole, off int) int {
		if h.last < off {
			return -1
		}
		return 1
	})
	return i
}

// fill stores the parts of payload (at offset off) that fall in holes and
// updates the hole list by the RFC 815 algorithm.
func (r *Reassembler) fill(d *datagram, off int, payload []byte, mf bool) {
	first, last := off, off+len(payload)-1
	i := holeIndex(d.holes, first)
	j := i
	var repl [2]hole
	nr := 0
	for ; j < len(d.holes) && d.holes[j].first <= last; j++ {
		// RFC 815 steps 1-2: this hole overlaps the fragment; delete it.
		h := d.holes[j]
		lo, hi := max(h.first, first), min(h.last, last)
		b := r.pool.get(hi - lo + 1)
		copy(b, payload[lo-off:])
		d.mem += cap(b)
		r.bytes += cap(b)
		d.pieces = insertPiece(d.pieces, piece{off: lo, buf: b})
		// Step 3: the part of the hole before the fragment remains.
		if first > h.first {
			repl[nr] = hole{h.first, first - 1}
			nr++
		}
		// Step 4: the part after it remains, unless this is the final
		// fragment.
		if last < h.last && mf {
			repl[nr] = hole{last + 1, h.last}
			nr++
		}
	}
	d.holes = slices.Replace(d.holes, i, j, repl[:nr]...)
	d.maxEnd = max(d.maxEnd, last+1)
	if !mf && d.end < 0 {
		// The final fragment: nothing after it is missing. RFC 815 step 4
		// does this for the hole the fragment falls in; a final fragment
		// that brings no new byte still ends the trailing hole here.
		d.end = last + 1
		// Holes the fragment overlapped lost their parts after it above;
		// only the trailing hole can start at or after the end.
		for len(d.holes) > 0 && d.holes[len(d.holes)-1].first >= d.end {
			d.holes = d.holes[:len(d.holes)-1]
		}
	}
}

func insertPiece(ps []piece, p piece) []piece {
	i, _ := slices.BinarySearchFunc(ps, p.off, func(q piece, off int) int { return q.off - off })
	return slices.Insert(ps, i, p)
}

// assemble writes the complete datagram d into r.out and returns it.
func (r *Reassembler) assemble(d *datagram) []byte {
	hl := d.firstHL
	n := hl + d.end
	if cap(r.out) < n {
		r.out = make([]byte, max(n, maxDatagram))
	}
	out := r.out[:n]
	copy(out, d.first[:hl])
	for _, pc := range d.pieces {
		copy(out[hl+pc.off:], pc.buf)
	}
	if r.v6 {
		// RFC 8200 §4.5: the Next Header field of the last per-fragment
		// header takes the first fragment's fragment header's, and the
		// payload length is the reassembled packet's.
		out[d.nhOff] = d.first[hl]
		binary.BigEndian.PutUint16(out[4:], uint16(n-wire.IPv6HeaderLen))
		return out
	}
	binary.BigEndian.PutUint16(out[2:], uint16(n))
	out[6] &^= 0x3f // MF and the offset's high bits; DF and the reserved bit stay
	out[7] = 0
	ip := wire.IPv4(out)
	ip.SetChecksum(0)
	ip.SetChecksum(wire.Checksum(out[:hl], 0))
	return out
}

// overlap drops d for overlapping or contradictory fragments.
func (r *Reassembler) overlap(d *datagram) {
	*r.ctr.overlaps++
	*r.ctr.fails++
	r.free1(d)
}

func (r *Reassembler) newDatagram(now clock.Instant, k fragKey) *datagram {
	var d *datagram
	if l := len(r.free); l > 0 {
		d = r.free[l-1]
		r.free[l-1] = nil
		r.free = r.free[:l-1]
	} else {
		d = new(datagram)
	}
	holes, pieces := d.holes[:0], d.pieces[:0]
	// (first is nil: free1 gave it back.)
	*d = datagram{key: k, created: now, end: -1, holes: append(holes, hole{0, holeInf}), pieces: pieces, mem: datagramOverhead}
	r.bytes += d.mem
	r.m[k] = d
	// Append to the expiry list.
	d.prev = r.tail
	if r.tail != nil {
		r.tail.next = d
	} else {
		r.head = d
	}
	r.tail = d
	return d
}

// free1 removes d from the map and the expiry list, gives its buffers back
// and recycles it.
func (r *Reassembler) free1(d *datagram) {
	delete(r.m, d.key)
	if d.prev != nil {
		d.prev.next = d.next
	} else {
		r.head = d.next
	}
	if d.next != nil {
		d.next.prev = d.prev
	} else {
		r.tail = d.prev
	}
	d.prev, d.next = nil, nil
	for i, pc := range d.pieces {
		r.pool.put(pc.buf)
		d.pieces[i] = piece{}
	}
	d.pieces = d.pieces[:0]
	if d.first != nil {
		r.pool.put(d.first)
		d.first = nil
	}
	r.bytes -= d.mem
	d.mem = 0
	r.free = append(r.free, d)
}

// NextDeadline returns when the oldest datagram in progress expires, or
// clock.Never.
func (r *Reassembler) NextDeadline() clock.Instant {
	if r.head == nil {
		return clock.Never
	}
	return r.head.created.Add(r.cfg.Timeout)
}

// HandleTimeout drops the datagrams whose Timeout has passed at now
// (ReasmTimeout and ReasmFails, as Linux ip_expire counts both), keeping a
// quote of each whose first fragment had arrived for PollExpired.
func (r *Reassembler) HandleTimeout(now clock.Instant) {
	for d := r.head; d != nil && d.created.Add(r.cfg.Timeout) <= now; d = r.head {
		*r.ctr.timeout++
		*r.ctr.fails++
		if d.firstHL > 0 && r.expired.len() < maxExpired {
			// The quote keeps the first fragment's buffer.
			r.expired.push(d.first)
			r.bytes -= cap(d.first)
			d.mem -= cap(d.first)
			d.first = nil
		}
		r.free1(d)
	}
}

// PollExpired returns, for each expired datagram whose FIRST fragment
// (offset 0) had arrived, that fragment's headers plus the first 8 bytes
// of its payload (IPv4: the IP header; IPv6: every header up to and with
// the fragment header), so the stack can send ICMP time exceeded, code 1
// (RFC 792; RFC 1122 §3.3.2; RFC 8200 §4.5). Valid until the next call.
func (r *Reassembler) PollExpired() (quote []byte, ok bool) {
	if r.quote != nil {
		r.pool.put(r.quote)
		r.quote = nil
	}
	q, ok := r.expired.pop()
	if !ok {
		return nil, false
	}
	r.quote = q
	return q, true
}

// Bytes returns the memory in use by datagrams being reassembled: their
// buffers (by size class) and a fixed overhead each. It never exceeds
// MaxBytes.
func (r *Reassembler) Bytes() int { return r.bytes }

// Pending returns the number of datagrams being reassembled.
func (r *Reassembler) Pending() int { return len(r.m) }
