package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/ring"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// output is the transmit path: the frames the stack made itself, the
// packets it sends to itself, and the spare buffers they are made in.
// The connections with output wait in flows.dirty. With N shards each
// shard has its own (its frames keep their order through the runtime's
// output queue).
type output struct {
	ctl  ring.Ring[outFrame] // frames the stack made itself, in order
	loop []outFrame          // packets to our own addresses
	// loopSpare is the other slice loop alternates with (PollTransmit).
	loopSpare []outFrame
	free      [][]byte // spare frame buffers
	maxFr     int      // largest frame of any NIC
	super     []byte   // where loopback super-segments are built (superBuf)
}

// outFrame is a queued frame (or, for loopback, an IP packet).
type outFrame struct {
	nic NICID
	buf []byte
	n   int
}

// getBuf returns a spare frame buffer of at least size bytes: the
// smallest one free that is large enough, searching from the most
// recently freed and stopping at one of the size getBuf would make. (It
// used to drop the buffers too small for a request, so a mix of large and
// small packets, such as fragmented datagrams, allocated on every one.)
func (s *Stack) getBuf(size int) []byte {
	o := &s.out
	best := -1
	for i := len(o.free) - 1; i >= 0; i-- {
		c := cap(o.free[i])
		if c < size {
			continue
		}
		if best < 0 || c < cap(o.free[best]) {
			best = i
		}
		if c <= max(size, o.maxFr) {
			break
		}
	}
	if best < 0 {
		return make([]byte, max(size, o.maxFr))
	}
	b := o.free[best]
	last := len(o.free) - 1
	o.free[best] = o.free[last]
	o.free[last] = nil
	o.free = o.free[:last]
	return b[:cap(b)]
}

func (s *Stack) putBuf(b []byte) {
	if len(s.out.free) < 256 {
		s.out.free = append(s.out.free, b)
	}
}

// pushCtl queues a frame the stack made itself.
func (s *Stack) pushCtl(id NICID, buf []byte, n int) {
	if s.out.ctl.Len() >= s.cfg.CtlQueueLen {
		s.host.link.TxCtlQueueDrops++
		s.putBuf(buf)
		return
	}
	s.out.ctl.PushBack(outFrame{nic: id, buf: buf, n: n})
}

// ctlFrame returns a buffer with the link header for a frame to dstMAC
// already written, and the header's length.
func (s *Stack) ctlFrame(n *nic, dstMAC wire.MAC, et wire.EtherType) ([]byte, int) {
	buf := s.getBuf(n.hdr + n.cfg.MTU)
	return buf, s.linkHeader(n, buf, dstMAC, et)
}

// linkHeader writes n's link header for a frame to dst into buf.
func (s *Stack) linkHeader(n *nic, buf []byte, dst wire.MAC, et wire.EtherType) int {
	if n.cfg.Medium != link.Ethernet {
		return 0
	}
	e := wire.EthernetFields{Dst: dst, Src: n.cfg.MAC, EtherType: et, HasVLAN: n.cfg.VLAN != 0, VLAN: n.cfg.VLAN}
	return e.Encode(buf)
}

// loopback queues an IP packet addressed to the stack itself.
func (s *Stack) loopback(pkt []byte) {
	s.host.link.TxLoopback++
	buf := s.getBuf(len(pkt))
	copy(buf, pkt)
	s.out.loop = append(s.out.loop, outFrame{buf: buf, n: len(pkt)})
}

// flushNeighbors moves packets whose next hop just resolved, and ARP
// requests that are due, to the control queue.
func (s *Stack) flushNeighbors() {
	if sh := s.shared; sh != nil && !sh.output.Load() {
		return // nothing queued in the shared cache (Shared.output)
	}
	neigh := s.host.neigh
	// With a shared cache (Shared) each poll is under its lock, and a
	// packet whose next hop resolved is copied out before the lock goes
	// (PollReady's buffer is recycled by the next call): whichever core
	// polls first sends it, whichever core queued it.
	for {
		s.nlock()
		id, mac, pkt, ok := neigh.PollReady()
		if !ok {
			s.nunlock()
			break
		}
		n := s.nic(id)
		if n == nil {
			s.nunlock()
			continue
		}
		buf, hdr := s.ctlFrame(n, mac, etherTypeOf(pkt))
		copy(buf[hdr:], pkt)
		s.nunlock()
		s.pushCtl(id, buf, hdr+len(pkt))
	}
	for {
		s.nlock()
		sol, ok := neigh.PollSolicit()
		s.nunlock()
		if !ok {
			break
		}
		id, ip := sol.NIC, sol.IP
		n := s.nic(id)
		if ip.Is6() {
			if n != nil {
				s.solicit6(n, sol)
			}
			continue
		}
		if n == nil || len(n.addrs) == 0 {
			continue
		}
		req := wire.ARPFields{Op: wire.ARPRequest, SenderMAC: n.cfg.MAC, SenderIP: srcFor(n, ip, ip), TargetIP: ip}
		buf, hdr := s.ctlFrame(n, wire.BroadcastMAC, wire.EtherTypeARP)
		req.Encode(buf[hdr:])
		// Neighbors.PollRequest has counted ARPOutRequests.
		s.pushCtl(id, buf, hdr+wire.ARPLen)
	}
}

// PollTransmit writes the next frame to send into pkt.Buf (which must hold
// MaxFrameLen bytes), sets pkt.N and pkt.Offload, and returns the NIC to
// send it on; ok is false when nothing is left to send now.
func (s *Stack) PollTransmit(now clock.Instant, pkt *link.Packet) (id NICID, ok bool) {
	o := &s.out
	for {
		s.flushNeighbors()
		if f, ok := o.ctl.PopFront(); ok {
			pkt.N = copy(pkt.Buf, f.buf[:f.n])
			pkt.Offload = link.Offload{}
			s.putBuf(f.buf)
			s.countTx(pkt.N)
			return f.nic, true
		}
		if id, ok := s.pollConns(now, pkt); ok {
			s.countTx(pkt.N)
			return id, true
		}
		// Segments that had to wait for ARP made requests due: send them
		// now, not at the next poll.
		s.flushNeighbors()
		if o.ctl.Len() > 0 {
			continue
		}
		if len(o.loop) == 0 {
			return 0, false
		}
		// Deliver looped-back packets, which may make more output. Their
		// answers queue on the other of two slices that take turns, so
		// that loopback traffic allocates nothing once they have grown.
		loop := o.loop
		o.loop = o.loopSpare[:0]
		for _, f := range loop {
			pkt := f.buf[:f.n]
			if etherTypeOf(pkt) == wire.EtherTypeIPv6 {
				// On the NIC that holds the destination: a link-local
				// address is checked against its own link.
				n := s.host.nics[0]
				if p, err := wire.ParseIPv6(pkt); err == nil {
					if ln := s.host.local.lookup(p.Dst()); ln != nil {
						n = ln
					}
				}
				s.handleIPv6(now, n, pkt, false, link.Offload{DataValid: true})
			} else {
				s.handleIPv4(now, s.host.nics[0], pkt, false, link.Offload{DataValid: true})
			}
			s.putBuf(f.buf)
		}
		clear(loop)
		o.loopSpare = loop[:0]
	}
}

func (s *Stack) countTx(n int) {
	s.host.link.TxFrames++
	s.host.link.TxBytes += uint64(n)
}

// pollConns takes the next segment from the connections with output,
// round robin, and frames it. Where the receiver can take more than a
// segment at once, it asks the connection for a super-segment of up to
// 64 KiB (tcp.Conn.PollTransmitBatch): on a NIC that segments TCP itself
// (link.CapTSO with CapTxChecksum) it leaves as one frame with the GSO
// fields of link.Offload set, and to the stack's own addresses it loops
// back whole (as Linux's loopback takes 64 KiB). Everywhere else a
// connection is asked for one segment at a time, so the frames on the
// wire are those of one PollTransmit per segment (tcp.SplitSegment, and
// internal/gso for a whole frame, cut a super-segment into exactly
// those).
//
// The TCP checksum is left partial (the pseudo-header sum, with
// Offload.NeedsCsum) for a NIC that completes it (link.CapTxChecksum),
// not computed at all for a packet that loops back (it never leaves the
// stack; delivery marks it DataValid), and computed in full otherwise.
func (s *Stack) pollConns(now clock.Instant, pkt *link.Packet) (NICID, bool) {
	dirty := &s.flows.dirty
	for {
		c, ok := dirty.Front()
		if !ok {
			return 0, false
		}
		if c.pmtuGen != s.host.pmtu.gen && c.conn != nil {
			s.syncPMTU(now, c)
		}
		n := c.nic
		// A connection with output is never parked by park; a parked
		// one answers or probes from its record (tcp.Env.PollParked),
		// and follows the path MTU once its core is back.
		var src, dst netip.Addr
		var k tuple
		if c.conn != nil {
			src, dst = c.conn.LocalAddr().Addr(), c.conn.RemoteAddr().Addr()
		} else {
			k = c.key()
			src, dst = k.local.Addr(), k.remote.Addr()
		}
		hl := ipHeaderLen(dst)
		loop := s.isLocal(dst)
		// Offloads apply to a frame that leaves now: one that waits for
		// the neighbour is queued as a plain packet, whole and
		// checksummed.
		offload := !loop && n.offloads() && s.resolved(n, c.nextHop)
		var t tcp.Transmit
		var frame []byte // the frame's buffer, from the IP header on
		switch {
		case c.conn == nil:
			frame = pkt.Buf[n.hdr:]
			if loop {
				frame = s.superBuf()
			}
			t.Len, t.Segments = s.flows.tcpEnv.PollParked(now, c.parked, k.local.Port(), k.remote.Port(), frame[hl:]), 1
		case loop:
			frame = s.superBuf()
			t = c.conn.PollTransmitBatch(now, frame[hl:], maxSuperSegs)
		case offload && n.tso > 0:
			frame = pkt.Buf[n.hdr : n.hdr+n.tso]
			t = c.conn.PollTransmitBatch(now, frame[hl:], maxSuperSegs)
		default:
			// One segment: PollTransmit, which is PollTransmitBatch
			// without the shape to report.
			frame = pkt.Buf[n.hdr:]
			t.Len, t.Segments = c.conn.PollTransmit(now, frame[hl:]), 1
			t.ECN = c.conn.TransmitECN()
		}
		if t.Len == 0 {
			c.dirty = false
			dirty.PopFront()
			if c.conn != nil {
				s.afterConnQuiet(c)
			}
			continue
		}
		// Round robin: move c to the back.
		if dirty.Len() > 1 {
			dirty.PopFront()
			dirty.PushBack(c)
		}
		seg := frame[hl : hl+t.Len]
		csum := offload && n.cfg.Caps.Has(link.CapTxChecksum)
		switch {
		case loop:
		case csum:
			binary.BigEndian.PutUint16(seg[16:], wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, t.Len))
		default:
			binary.BigEndian.PutUint16(seg[16:], wire.TCPChecksum(seg, src, dst))
		}
		s.writeIPHeader(frame, src, dst, wire.ProtoTCP, uint8(t.ECN), t.Len, true)
		if dst.Is4() {
			// The IDs of a super-segment's pieces are the next ones (as
			// TSO numbers them): the next packet's ID follows the last
			// piece's.
			s.host.ipID += uint16(t.Segments - 1)
		}
		*s.host.ctr(dst).outRequests++
		ipPkt := frame[:hl+t.Len]
		if loop {
			s.loopback(ipPkt)
			continue
		}
		if n.cfg.Medium == link.Ethernet {
			mac, ok := s.resolve(now, n, c.nextHop, ipPkt)
			if !ok {
				continue // queued until ARP resolves (a plain packet: see offload)
			}
			s.linkHeader(n, pkt.Buf, mac, etherTypeOf(ipPkt))
		}
		pkt.N = n.hdr + hl + t.Len
		pkt.Offload = link.Offload{}
		if csum {
			pkt.Offload = link.Offload{NeedsCsum: true, CsumStart: uint16(n.hdr + hl), CsumOffset: 16}
		}
		if t.Segments > 1 {
			pkt.Offload.GSOType = link.GSOTCPv4
			if !dst.Is4() {
				pkt.Offload.GSOType = link.GSOTCPv6
			}
			pkt.Offload.GSOSize = uint16(t.SegmentSize)
			pkt.Offload.HdrLen = uint16(n.hdr + hl + t.HeaderLen)
		}
		return n.id, true
	}
}

// maxSuperSegs bounds the segments of a super-segment; the 64 KiB of an
// IP packet (maxIPPacket) bounds it first at any MSS above 1 KiB.
const maxSuperSegs = 64

// offloads reports whether n's link takes frames with offloads the stack
// uses: a checksum to complete (CapTxChecksum), TCP to segment (CapTSO,
// which needs CapTxChecksum).
func (n *nic) offloads() bool { return n.cfg.Caps.Has(link.CapTxChecksum) }

// solicit6 sends the neighbour solicitation the neighbour cache asks for
// (RFC 4861 §7.2.2): to the target's solicited-node group, or unicast to
// its cached address in PROBE (§7.3.3), from the address source
// selection picks for the target. With no usable address (all still
// tentative) none is sent: only DAD may use :: (RFC 4862 §5.4.2).
func (s *Stack) solicit6(n *nic, sol network.Solicit) {
	if n.v6 == nil || n.cfg.Medium != link.Ethernet {
		return
	}
	src := srcFor6(n, sol.IP)
	if !src.IsValid() {
		return
	}
	dst, mac := sol.IP, sol.MAC
	if !sol.Unicast {
		dst = wire.SolicitedNodeMulticast(sol.IP)
		mac, _ = wire.MulticastMAC(dst)
	}
	s.sendNS(n, src, sol.IP, dst, mac, nil)
}

// resolved reports whether a packet to nextHop on n can leave at once,
// without waiting in the neighbour queue: only then may it use the
// link's offloads, which the queue (packets, not frames with offload
// metadata) could not carry.
func (s *Stack) resolved(n *nic, nextHop netip.Addr) bool {
	if n.cfg.Medium != link.Ethernet || isBroadcast(n, nextHop) || nextHop.IsMulticast() {
		return true
	}
	s.nlock()
	_, ok := s.host.neigh.Lookup(n.id, nextHop)
	s.nunlock()
	return ok
}

// superBuf returns the buffer super-segments to the stack's own
// addresses are built in (one IP packet of up to 64 KiB), made on first
// use; loopback copies the packet out of it.
func (s *Stack) superBuf() []byte {
	if s.out.super == nil {
		s.out.super = make([]byte, maxIPPacket)
	}
	return s.out.super
}
