package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/wire"
)

// getBuf returns a spare frame buffer of at least size bytes: the
// smallest one free that is large enough, searching from the most
// recently freed and stopping at one of the size getBuf would make. (It
// used to drop the buffers too small for a request, so a mix of large and
// small packets, such as fragmented datagrams, allocated on every one.)
func (s *Stack) getBuf(size int) []byte {
	best := -1
	for i := len(s.free) - 1; i >= 0; i-- {
		c := cap(s.free[i])
		if c < size {
			continue
		}
		if best < 0 || c < cap(s.free[best]) {
			best = i
		}
		if c <= max(size, s.maxFr) {
			break
		}
	}
	if best < 0 {
		return make([]byte, max(size, s.maxFr))
	}
	b := s.free[best]
	last := len(s.free) - 1
	s.free[best] = s.free[last]
	s.free[last] = nil
	s.free = s.free[:last]
	return b[:cap(b)]
}

func (s *Stack) putBuf(b []byte) {
	if len(s.free) < 256 {
		s.free = append(s.free, b)
	}
}

// pushCtl queues a frame the stack made itself.
func (s *Stack) pushCtl(id NICID, buf []byte, n int) {
	if len(s.ctl)-s.ctlHd >= s.cfg.CtlQueueLen {
		s.stats.Link.TxCtlQueueDrops++
		s.putBuf(buf)
		return
	}
	s.ctl = append(s.ctl, outFrame{nic: id, buf: buf, n: n})
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

// sendIP sends the IP packet pkt (header included) out of NIC n toward
// nextHop, resolving the link address; it copies pkt. Packets to our own
// addresses loop back.
func (s *Stack) sendIP(now clock.Instant, n *nic, nextHop netip.Addr, pkt []byte) {
	if s.isLocal(nextHop) {
		s.loopback(pkt)
		return
	}
	if len(pkt) > n.cfg.MTU {
		// An echo reply to a reassembled request, say: larger than the
		// frame buffers, so it must leave in fragments.
		s.sendFragments(now, n, nextHop, pkt)
		return
	}
	if n.cfg.Medium != link.Ethernet {
		buf := s.getBuf(len(pkt))
		copy(buf, pkt)
		s.pushCtl(n.id, buf, len(pkt))
		return
	}
	mac, ok := s.resolve(now, n, nextHop, pkt)
	if !ok {
		return
	}
	buf, hdr := s.ctlFrame(n, mac, wire.EtherTypeIPv4)
	copy(buf[hdr:], pkt)
	s.pushCtl(n.id, buf, hdr+len(pkt))
}

// sendFragments sends the IP packet pkt, larger than n's MTU, in
// fragments that fit it (RFC 791 §3.2, "Fragmentation"). It reports false,
// sending nothing and counting FragFails, if pkt may not be fragmented (DF
// set: RFC 791 §3.2).
func (s *Stack) sendFragments(now clock.Instant, n *nic, nextHop netip.Addr, pkt []byte) bool {
	st := &s.stats.Net
	if err := s.frag.Reset(pkt, n.cfg.MTU); err != nil {
		st.FragFails++
		return false
	}
	fb := s.getBuf(n.cfg.MTU)
	defer s.putBuf(fb)
	for {
		k := s.frag.Next(fb)
		if k == 0 {
			break
		}
		st.FragCreates++
		s.sendIP(now, n, nextHop, fb[:k])
	}
	st.FragOKs++
	return true
}

// resolve returns nextHop's MAC on n, or queues a copy of pkt (if not nil)
// until ARP resolves it. Broadcast destinations need no resolution.
func (s *Stack) resolve(now clock.Instant, n *nic, nextHop netip.Addr, pkt []byte) (wire.MAC, bool) {
	if isBroadcast(n, nextHop) {
		return wire.BroadcastMAC, true
	}
	return s.neigh.Resolve(now, n.id, nextHop, pkt)
}

// loopback queues an IP packet addressed to the stack itself.
func (s *Stack) loopback(pkt []byte) {
	s.stats.Link.TxLoopback++
	buf := s.getBuf(len(pkt))
	copy(buf, pkt)
	s.loop = append(s.loop, outFrame{buf: buf, n: len(pkt)})
}

// ipHeader writes an IPv4 header for a payload of length plen into b and
// returns its length (RFC 791 §3.1).
func (s *Stack) ipHeader(b []byte, src, dst netip.Addr, proto uint8, plen int, df bool) int {
	s.ipID++
	h := wire.IPv4Fields{
		TotalLen: uint16(wire.IPv4HeaderLen + plen),
		ID:       s.ipID,
		DF:       df,
		TTL:      s.cfg.TTL,
		Protocol: proto,
		Src:      src,
		Dst:      dst,
	}
	return h.Encode(b)
}

// sendICMPError sends an ICMP error about orig (an IP packet, header
// first) to its source, if RFC 1122 §3.2.2 allows one and the rate limit
// (RFC 1812 §4.3.2.8) has room.
func (s *Stack) sendICMPError(now clock.Instant, orig []byte, typ, code uint8, mtu uint16) {
	st := &s.stats.Net
	ip, err := wire.ParseIPv4(orig)
	if err != nil {
		// A reassembly-timeout quote is truncated (a header and 8
		// bytes); ErrorAllowed reads no further than that.
		if len(orig) < wire.IPv4HeaderLen {
			return
		}
		ip = wire.IPv4(orig)
	}
	// RFC 1122 §3.2.2: never about an ICMP error, a non-first fragment,
	// or a datagram to a broadcast address — the directed broadcasts of
	// our subnets included, which only the stack knows. The truncated
	// quote of an expired reassembly is no exception.
	if !network.ErrorAllowed(ip, false) || s.isDirectedBroadcast(ip.Dst()) {
		return
	}
	if !s.icmpRL.Allow(now) {
		st.OutRateLimited++
		return
	}
	dst := netip.AddrFrom4([4]byte(orig[12:16]))
	n, nextHop, src, err := s.route(dst)
	if err != nil {
		st.OutNoRoutes++
		return
	}
	buf := s.getBuf(n.hdr + n.cfg.MTU)
	defer s.putBuf(buf)
	m := network.ErrorMessage(buf[wire.IPv4HeaderLen:], typ, code, mtu, orig)
	s.ipHeader(buf, src, dst, wire.ProtoICMP, m, false)
	st.OutMsgs++
	switch typ {
	case wire.ICMPv4DestUnreachable:
		st.OutDestUnreachs++
	case wire.ICMPv4TimeExceeded:
		st.OutTimeExcds++
	}
	st.OutRequests++
	s.sendIP(now, n, nextHop, buf[:wire.IPv4HeaderLen+m])
}

// sendEchoReply answers an echo request (RFC 792).
func (s *Stack) sendEchoReply(now clock.Instant, ip wire.IPv4, m wire.ICMPv4) {
	st := &s.stats.Net
	n, nextHop, _, err := s.route(ip.Src())
	if err != nil {
		st.OutNoRoutes++
		return
	}
	buf := s.getBuf(wire.IPv4HeaderLen + len(m))
	defer s.putBuf(buf)
	l := network.EchoReply(buf[wire.IPv4HeaderLen:], m)
	s.ipHeader(buf, ip.Dst(), ip.Src(), wire.ProtoICMP, l, false)
	st.OutMsgs++
	st.OutEchoReps++
	st.OutRequests++
	s.sendIP(now, n, nextHop, buf[:wire.IPv4HeaderLen+l])
}

// sendTCPControl sends a segment that belongs to no connection (a RST).
func (s *Stack) sendTCPControl(now clock.Instant, key tuple, seg *wire.TCPFields) {
	n, nextHop, _, err := s.route(key.remote.Addr())
	if err != nil {
		s.stats.Net.OutNoRoutes++
		return
	}
	buf := s.getBuf(n.hdr + n.cfg.MTU)
	defer s.putBuf(buf)
	t := buf[wire.IPv4HeaderLen:]
	l := seg.Encode(t)
	binary.BigEndian.PutUint16(t[16:], wire.TCPChecksum(t[:l], key.local.Addr(), key.remote.Addr()))
	s.ipHeader(buf, key.local.Addr(), key.remote.Addr(), wire.ProtoTCP, l, true)
	s.stats.Net.OutRequests++
	s.sendIP(now, n, nextHop, buf[:wire.IPv4HeaderLen+l])
}

// flushNeighbors moves packets whose next hop just resolved, and ARP
// requests that are due, to the control queue.
func (s *Stack) flushNeighbors() {
	for {
		id, mac, pkt, ok := s.neigh.PollReady()
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
		id, ip, ok := s.neigh.PollRequest()
		if !ok {
			break
		}
		n := s.nic(id)
		if n == nil || len(n.addrs) == 0 {
			continue
		}
		src := n.addrs[0].Addr()
		for _, p := range n.addrs {
			if p.Contains(ip) {
				src = p.Addr()
				break
			}
		}
		req := wire.ARPFields{Op: wire.ARPRequest, SenderMAC: n.cfg.MAC, SenderIP: src, TargetIP: ip}
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
	for {
		s.flushNeighbors()
		if s.ctlHd < len(s.ctl) {
			f := s.ctl[s.ctlHd]
			s.ctl[s.ctlHd] = outFrame{}
			s.ctlHd++
			if s.ctlHd == len(s.ctl) {
				s.ctl, s.ctlHd = s.ctl[:0], 0
			}
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
		if s.ctlHd < len(s.ctl) {
			continue
		}
		if len(s.loop) == 0 {
			return 0, false
		}
		// Deliver looped-back packets, which may make more output. Their
		// answers queue on the other of two slices that take turns, so
		// that loopback traffic allocates nothing once they have grown.
		loop := s.loop
		s.loop = s.loopSpare[:0]
		for _, f := range loop {
			s.handleIPv4(now, s.nics[0], f.buf[:f.n], false, link.Offload{DataValid: true})
			s.putBuf(f.buf)
		}
		clear(loop)
		s.loopSpare = loop[:0]
	}
}

func (s *Stack) countTx(n int) {
	s.stats.Link.TxFrames++
	s.stats.Link.TxBytes += uint64(n)
}

// pollConns takes the next segment from the connections with output,
// round robin, and frames it.
func (s *Stack) pollConns(now clock.Instant, pkt *link.Packet) (NICID, bool) {
	for len(s.dirty) > 0 {
		c := s.dirty[0]
		n := c.nic
		hdr := n.hdr
		ipOff := hdr
		tcpOff := hdr + wire.IPv4HeaderLen
		l := c.conn.PollTransmit(now, pkt.Buf[tcpOff:])
		if l == 0 {
			c.dirty = false
			copy(s.dirty, s.dirty[1:])
			s.dirty[len(s.dirty)-1] = nil
			s.dirty = s.dirty[:len(s.dirty)-1]
			s.afterConnQuiet(c)
			continue
		}
		// Round robin: move c to the back.
		if len(s.dirty) > 1 {
			copy(s.dirty, s.dirty[1:])
			s.dirty[len(s.dirty)-1] = c
		}
		src, dst := c.key.local.Addr(), c.key.remote.Addr()
		seg := pkt.Buf[tcpOff : tcpOff+l]
		binary.BigEndian.PutUint16(seg[16:], wire.TCPChecksum(seg, src, dst))
		s.ipHeader(pkt.Buf[ipOff:], src, dst, wire.ProtoTCP, l, true)
		s.stats.Net.OutRequests++
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
	return 0, false
}
