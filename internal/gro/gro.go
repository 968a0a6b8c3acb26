// Package gro is generic receive offload in software: within one batch of
// received frames, it merges consecutive TCP segments of a flow into one
// super-frame, so that the stack handles one segment (one lookup, one
// ACK decision, one wake-up) where the wire carried many. The links with
// a virtio-net header (link/tap, link/afpacket) run it on every batch they
// read.
//
// The rules are Linux's (tcp_gro_receive in net/ipv4/tcp_offload.c,
// inet_gro_receive and ipv6_gro_receive), which wireguard-go's
// tun/offload_linux.go also follows; a segment is appended to the flow's
// open super-frame only if
//
//   - it is IPv4 without options and not a fragment, or IPv6 without
//     extension headers, and its IP header matches the super-frame's:
//     TOS (all eight bits, ECN included), TTL and DF for IPv4 — whose ID
//     must be the next one (or the same one, for a flow that sends DF
//     packets with a fixed ID) — and traffic class, flow label and hop
//     limit for IPv6;
//   - its TCP header matches: the same acknowledgment number, window,
//     header length and option bytes (timestamps included), and the same
//     flags but for PSH, with ACK set and none of SYN, FIN, RST, URG or
//     CWR (CWR only ever starts a super-frame, as TSO leaves it on the
//     first segment only);
//   - it starts where the super-frame ends (contiguous sequence), carries
//     data, and is no longer than the super-frame's segment size, which
//     the first segment sets; after a shorter segment, or one with PSH,
//     nothing more is appended (PSH ends a batch);
//   - its checksum is valid: trusted when the device says so
//     (link.Offload.DataValid, which virtio-net's NEEDS_CSUM and DATA_VALID
//     give), verified here otherwise — a segment that fails is passed on
//     untouched, for the stack to count;
//   - the result stays within 65535 bytes of IP packet and the buffer of
//     the super-frame's packet.
//
// A segment of the flow that cannot be appended closes the flow's
// super-frame (so nothing of the flow is reordered) and, if it can take
// followers, opens the next one. A merged super-frame comes out as a TSO
// frame would go in: its IP lengths and IPv4 header checksum rewritten,
// the pseudo-header sum in its TCP checksum field, and link.Offload
// saying GSOTCPv4 or GSOTCPv6 with the segment size, NeedsCsum and
// DataValid — which package gso's Segmenter turns back into the original
// segments.
package gro

import (
	"encoding/binary"

	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// MaxIPLen is the longest IP packet a super-frame may become.
const MaxIPLen = 65535

// Coalescer merges the TCP segments of batches (see the package
// documentation). It keeps its state between calls only to avoid
// allocating; each call to Coalesce stands alone. It is not safe for
// concurrent use.
type Coalescer struct {
	medium link.Medium
	items  []item // the open super-frames of this batch
	frames []frame

	// Merged counts the segments appended to another, over all calls.
	Merged uint64
	// Verified counts the checksums Coalesce verified itself; BadCsum
	// those that were wrong (the segment was passed on untouched).
	Verified, BadCsum uint64
}

// frame is what Coalesce learned about one packet of the batch.
type frame struct {
	gone bool // appended to another
}

// item is one open super-frame: a packet of the batch that later segments
// of its flow may be appended to.
type item struct {
	pkt     int // index in the batch
	hash    uint32
	l       gso.Layout
	mss     int  // segment size
	segs    int  // segments in it so far
	full    bool // every segment so far is mss long: more may follow
	fixedID bool // the IPv4 ID stays the same (DF flows)
	idSet   bool // fixedID has been decided (on the second segment)
	merged  bool
	nextSeq uint32
}

// New returns a Coalescer for frames of medium m.
func New(m link.Medium) *Coalescer {
	return &Coalescer{medium: m}
}

// TCP header fields.
const (
	tcpSeq    = 4
	tcpAck    = 8
	tcpOff    = 12
	tcpFlags  = 13
	tcpWindow = 14
	tcpCsum   = 16
)

// flagsAllowed are the flags a segment to merge may carry: ACK (always),
// PSH (ends the super-frame) and ECE (must equal the super-frame's).
const flagsAllowed = uint8(wire.TCPFlagACK | wire.TCPFlagPSH | wire.TCPFlagECE)

// Coalesce merges what it can of pkts and returns how many packets the
// batch holds now; the ones merged away are moved behind them, so the
// caller's batch keeps all of its own buffers. Packets that are not TCP, or
// not mergeable, are left as they were, in their order; a packet whose
// checksum Coalesce verified gets DataValid.
func (c *Coalescer) Coalesce(pkts []link.Packet) int {
	if len(pkts) < 2 {
		return len(pkts)
	}
	if cap(c.frames) < len(pkts) {
		c.frames = make([]frame, len(pkts))
		c.items = make([]item, 0, len(pkts))
	}
	c.frames = c.frames[:len(pkts)]
	c.items = c.items[:0]
	merged := false
	for i := range pkts {
		c.frames[i] = frame{}
		if c.consider(pkts, i) {
			c.frames[i].gone = true
			merged = true
		}
	}
	if !merged {
		c.finishAll(pkts)
		return len(pkts)
	}
	c.finishAll(pkts)
	// Compact: keep the order of what is left, swap buffers backwards.
	n := 0
	for i := range pkts {
		if c.frames[i].gone {
			continue
		}
		if n != i {
			pkts[n], pkts[i] = pkts[i], pkts[n]
		}
		n++
	}
	return n
}

// flowHash hashes the addresses and ports of the segment.
func flowHash(b []byte, l *gso.Layout) uint32 {
	var addrs []byte
	if l.V6 {
		addrs = b[l.L3+8 : l.L3+40]
	} else {
		addrs = b[l.L3+12 : l.L3+20]
	}
	h := uint32(2166136261)
	for _, x := range addrs {
		h = (h ^ uint32(x)) * 16777619
	}
	for _, x := range b[l.L4 : l.L4+4] {
		h = (h ^ uint32(x)) * 16777619
	}
	return h
}

// sameFlow reports whether a and b (with layouts la and lb) have the same
// addresses and ports.
func sameFlow(a []byte, la *gso.Layout, b []byte, lb *gso.Layout) bool {
	if la.V6 != lb.V6 {
		return false
	}
	if la.V6 {
		if string(a[la.L3+8:la.L3+40]) != string(b[lb.L3+8:lb.L3+40]) {
			return false
		}
	} else if string(a[la.L3+12:la.L3+20]) != string(b[lb.L3+12:lb.L3+20]) {
		return false
	}
	return string(a[la.L4:la.L4+4]) == string(b[lb.L4:lb.L4+4])
}

// consider looks at packet i: it appends it to its flow's open
// super-frame and reports true, or it closes that super-frame and maybe
// opens a new one with i.
func (c *Coalescer) consider(pkts []link.Packet, i int) bool {
	p := &pkts[i]
	b := p.Frame()
	l, err := gso.Parse(b, c.medium)
	if err != nil || l.Proto != 6 {
		return false
	}
	hash := flowHash(b, &l)
	open := -1
	for k := range c.items {
		it := &c.items[k]
		if it.hash == hash && sameFlow(pkts[it.pkt].Frame(), &it.l, b, &l) {
			open = k
			break
		}
	}
	ok := c.candidate(p, b, &l)
	if open >= 0 {
		if ok && c.append(pkts, &c.items[open], i, &l) {
			return true
		}
		c.close(pkts, open)
	}
	if ok && c.canFollow(p, b, &l) {
		seq := binary.BigEndian.Uint32(b[l.L4+tcpSeq:])
		mss := l.PayloadLen()
		segs := 1
		if p.Offload.GSOType != link.GSONone {
			mss = int(p.Offload.GSOSize)
			segs = (l.PayloadLen() + mss - 1) / mss
		}
		c.items = append(c.items, item{
			pkt: i, hash: hash, l: l, mss: mss, segs: segs,
			full:    l.PayloadLen() == segs*mss,
			nextSeq: seq + uint32(l.PayloadLen()),
		})
	}
	return false
}

// candidate reports whether the segment may take part in a merge at all:
// data, the allowed flags, an IP header without options or fragments,
// and a checksum that is valid. It sets DataValid when it verified the
// checksum itself.
func (c *Coalescer) candidate(p *link.Packet, b []byte, l *gso.Layout) bool {
	if l.PayloadLen() == 0 {
		return false
	}
	f := b[l.L4+tcpFlags]
	if f&uint8(wire.TCPFlagACK) == 0 || f&^(flagsAllowed|uint8(wire.TCPFlagCWR)) != 0 {
		return false
	}
	if !l.V6 && l.L4-l.L3 != 20 {
		return false // IPv4 options
	}
	if p.Offload.GSOType != link.GSONone {
		want := uint8(link.GSOTCPv4)
		if l.V6 {
			want = link.GSOTCPv6
		}
		if p.Offload.GSOType != want || p.Offload.GSOSize == 0 {
			return false
		}
	}
	if !p.Offload.DataValid {
		c.Verified++
		if wire.Checksum(b[l.L4:l.End], gso.PseudoSum(b, l, l.End-l.L4)) != 0 {
			c.BadCsum++
			return false
		}
		p.Offload.DataValid = true
	}
	return true
}

// canFollow reports whether segments may be appended behind this one: not
// after PSH, and not after a super-frame from the device whose last
// segment is short.
func (c *Coalescer) canFollow(p *link.Packet, b []byte, l *gso.Layout) bool {
	if b[l.L4+tcpFlags]&uint8(wire.TCPFlagPSH) != 0 {
		return false
	}
	if p.Offload.GSOType != link.GSONone && l.PayloadLen()%int(p.Offload.GSOSize) != 0 {
		return false
	}
	return true
}

// append merges packet i into the open super-frame it if the rules allow.
func (c *Coalescer) append(pkts []link.Packet, it *item, i int, l *gso.Layout) bool {
	hp, p := &pkts[it.pkt], &pkts[i]
	h, b := hp.Frame(), p.Frame()
	hl := &it.l
	if !it.full || p.Offload.GSOType != link.GSONone {
		return false // after a short segment; or a device super-frame (Linux: len-1 >= mss)
	}
	n := l.PayloadLen()
	if n > it.mss || binary.BigEndian.Uint32(b[l.L4+tcpSeq:]) != it.nextSeq {
		return false
	}
	// TCP: ack, window, header length, options; flags but PSH; no CWR.
	thl := l.Payload - l.L4
	if thl != hl.Payload-hl.L4 ||
		string(b[l.L4+tcpAck:l.L4+tcpAck+4]) != string(h[hl.L4+tcpAck:hl.L4+tcpAck+4]) ||
		string(b[l.L4+tcpWindow:l.L4+tcpWindow+2]) != string(h[hl.L4+tcpWindow:hl.L4+tcpWindow+2]) ||
		string(b[l.L4+20:l.Payload]) != string(h[hl.L4+20:hl.Payload]) {
		return false
	}
	f, hf := b[l.L4+tcpFlags], h[hl.L4+tcpFlags]
	if f&uint8(wire.TCPFlagCWR) != 0 || (f^hf)&^uint8(wire.TCPFlagPSH|wire.TCPFlagCWR) != 0 {
		return false
	}
	// IP.
	ip, hip := b[l.L3:], h[hl.L3:]
	if l.V6 {
		// Version, traffic class, flow label; hop limit.
		if string(ip[0:4]) != string(hip[0:4]) || ip[7] != hip[7] {
			return false
		}
	} else {
		if ip[1] != hip[1] || ip[8] != hip[8] || (ip[6]^hip[6])&0x40 != 0 {
			return false // TOS, TTL, DF
		}
		id, hid := binary.BigEndian.Uint16(ip[4:]), binary.BigEndian.Uint16(hip[4:])
		inc := id == hid+uint16(it.segs)
		fixed := id == hid && ip[6]&0x40 != 0
		switch {
		case !it.idSet && inc:
			it.idSet = true
		case !it.idSet && fixed:
			it.idSet, it.fixedID = true, true
		case it.idSet && it.fixedID && fixed:
		case it.idSet && !it.fixedID && inc:
		default:
			return false
		}
	}
	// Room.
	end := hl.End + n
	if end-hl.L3 > MaxIPLen || end > len(hp.Buf) {
		return false
	}
	if hl.End < hp.N {
		// Drop link padding behind the head before appending.
		hp.N = hl.End
	}
	copy(hp.Buf[hl.End:end], b[l.Payload:l.End])
	hp.N = end
	hl.End = end
	it.segs++
	it.merged = true
	it.nextSeq += uint32(n)
	if n < it.mss {
		it.full = false
	}
	if f&uint8(wire.TCPFlagPSH) != 0 {
		h[hl.L4+tcpFlags] |= uint8(wire.TCPFlagPSH)
		it.full = false // PSH ends it
	}
	c.Merged++
	return true
}

// close finishes the open super-frame k and removes it from the table.
func (c *Coalescer) close(pkts []link.Packet, k int) {
	c.finish(pkts, &c.items[k])
	last := len(c.items) - 1
	c.items[k] = c.items[last]
	c.items = c.items[:last]
}

func (c *Coalescer) finishAll(pkts []link.Packet) {
	for k := range c.items {
		c.finish(pkts, &c.items[k])
	}
	c.items = c.items[:0]
}

// finish writes a merged super-frame's lengths, IP header checksum and
// partial TCP checksum, and its Offload.
func (c *Coalescer) finish(pkts []link.Packet, it *item) {
	if !it.merged {
		return
	}
	p := &pkts[it.pkt]
	b := p.Frame()
	l := &it.l
	gso.SetIPLength(b, l, l.End)
	gso.SetChecksum(b, l, gso.Partial)
	t := uint8(link.GSOTCPv4)
	if l.V6 {
		t = link.GSOTCPv6
	}
	p.Offload = link.Offload{
		GSOType:    t,
		GSOSize:    uint16(it.mss),
		HdrLen:     uint16(l.Payload),
		NeedsCsum:  true,
		CsumStart:  uint16(l.L4),
		CsumOffset: tcpCsum,
		DataValid:  true,
	}
	it.merged = false
}
