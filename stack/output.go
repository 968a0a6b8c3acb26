package stack

import (
	"encoding/binary"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/ring"
	"github.com/ustack/ustack/link"
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
	neigh := s.host.neigh
	for {
		id, mac, pkt, ok := neigh.PollReady()
		if !ok {
			break
		}
		n := s.nic(id)
		if n == nil {
			continue
		}
		buf, hdr := s.ctlFrame(n, mac, wire.EtherTypeIPv4)
		copy(buf[hdr:], pkt)
		s.pushCtl(id, buf, hdr+len(pkt))
	}
	for {
		id, ip, ok := neigh.PollRequest()
		if !ok {
			break
		}
		n := s.nic(id)
		if n == nil || len(n.addrs) == 0 {
			continue
		}
		req := wire.ARPFields{Op: wire.ARPRequest, SenderMAC: n.cfg.MAC, SenderIP: srcFor(n, ip), TargetIP: ip}
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
			s.handleIPv4(now, s.host.nics[0], f.buf[:f.n], false, link.Offload{DataValid: true})
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
// round robin, and frames it.
func (s *Stack) pollConns(now clock.Instant, pkt *link.Packet) (NICID, bool) {
	dirty := &s.flows.dirty
	for {
		c, ok := dirty.Front()
		if !ok {
			return 0, false
		}
		n := c.nic
		src, dst := c.key.local.Addr(), c.key.remote.Addr()
		ipOff := n.hdr
		tcpOff := ipOff + ipHeaderLen(dst)
		l := c.conn.PollTransmit(now, pkt.Buf[tcpOff:])
		if l == 0 {
			c.dirty = false
			dirty.PopFront()
			s.afterConnQuiet(c)
			continue
		}
		// Round robin: move c to the back.
		if dirty.Len() > 1 {
			dirty.PopFront()
			dirty.PushBack(c)
		}
		seg := pkt.Buf[tcpOff : tcpOff+l]
		binary.BigEndian.PutUint16(seg[16:], wire.TCPChecksum(seg, src, dst))
		s.writeIPHeader(pkt.Buf[ipOff:], src, dst, wire.ProtoTCP, l, true)
		s.host.net.OutRequests++
		ipPkt := pkt.Buf[ipOff : tcpOff+l]
		if s.isLocal(dst) {
			s.loopback(ipPkt)
			continue
		}
		if n.cfg.Medium == link.Ethernet {
			mac, ok := s.resolve(now, n, c.nextHop, ipPkt)
			if !ok {
				continue // queued until ARP resolves
			}
			s.linkHeader(n, pkt.Buf, mac, wire.EtherTypeIPv4)
		}
		pkt.N = tcpOff + l
		pkt.Offload = link.Offload{}
		return n.id, true
	}
}
