package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// HandleFrame processes one frame that arrived on NIC id. The frame is not
// kept: what the stack needs is copied. Frames that are not for the stack
// (other MACs, unknown EtherTypes, runts, bad headers) are counted and
// dropped.
func (s *Stack) HandleFrame(now clock.Instant, id NICID, pkt *link.Packet) {
	n := s.nic(id)
	if n == nil {
		s.stats.Link.RxNoNIC++
		return
	}
	frame := pkt.Frame()
	s.stats.Link.RxFrames++
	s.stats.Link.RxBytes += uint64(len(frame))
	if n.cfg.Medium == link.IP {
		if len(frame) == 0 || frame[0]>>4 != 4 {
			s.stats.Link.RxUnknownEtherType++
			return
		}
		s.handleIPv4(now, n, frame, false, pkt.Offload)
		return
	}
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		s.stats.Link.RxRunts++
		return
	}
	dst := eth.Dst()
	bcast := dst.IsBroadcast()
	switch {
	case dst == n.cfg.MAC || bcast:
	case dst.IsMulticast():
		s.stats.Link.RxMulticast++
		return
	default:
		s.stats.Link.RxNotForUs++
		return
	}
	tci, tagged := eth.VLAN()
	if tagged != (n.cfg.VLAN != 0) || tagged && tci&0x0fff != n.cfg.VLAN {
		s.stats.Link.RxVLANMismatch++
		return
	}
	switch eth.EtherType() {
	case wire.EtherTypeIPv4:
		s.handleIPv4(now, n, eth.Payload(), bcast, pkt.Offload)
	case wire.EtherTypeARP:
		s.handleARP(now, n, eth.Payload())
	default:
		s.stats.Link.RxUnknownEtherType++
	}
}

// handleARP answers requests for our addresses and learns senders
// (RFC 826, "Packet Reception").
func (s *Stack) handleARP(now clock.Instant, n *nic, b []byte) {
	st := &s.stats.Net
	a, err := wire.ParseARP(b)
	if err != nil {
		st.ARPBad++
		return
	}
	var f wire.ARPFields
	f.Decode(a)
	if f.SenderMAC.IsMulticast() || f.SenderMAC.IsZero() || !f.SenderIP.IsValid() {
		st.ARPBad++
		return
	}
	forUs := s.nicHas(n, f.TargetIP)
	// RFC 826: update an existing entry (the merge flag); create one only
	// if the packet is addressed to us. A probe (sender 0.0.0.0) is not
	// learned (RFC 5227).
	if !f.SenderIP.IsUnspecified() {
		s.neigh.Learn(now, n.id, f.SenderIP, f.SenderMAC, forUs)
	}
	switch f.Op {
	case wire.ARPRequest:
		st.ARPInRequests++
		if !forUs {
			return
		}
		reply := wire.ARPFields{
			Op:        wire.ARPReply,
			SenderMAC: n.cfg.MAC, SenderIP: f.TargetIP,
			TargetMAC: f.SenderMAC, TargetIP: f.SenderIP,
		}
		buf, hdr := s.ctlFrame(n, f.SenderMAC, wire.EtherTypeARP)
		if buf == nil {
			return
		}
		reply.Encode(buf[hdr:])
		s.pushCtl(n.id, buf, hdr+wire.ARPLen)
		st.ARPOutReplies++
	case wire.ARPReply:
		st.ARPInReplies++
	}
	s.flushNeighbors()
}

// nicHas reports whether a is one of n's addresses. Linux answers ARP for
// any local address on any interface (arp_ignore=0); ustack answers only
// for the receiving NIC's own, the stricter arp_ignore=1 behaviour, which
// matters when one stack sits on two links.
func (s *Stack) nicHas(n *nic, a netip.Addr) bool {
	for _, p := range n.addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// handleIPv4 is RFC 791 §3.2 and RFC 1122 §3.2.1 input processing for a
// host: validate, check the destination, reassemble, deliver.
func (s *Stack) handleIPv4(now clock.Instant, n *nic, b []byte, linkBcast bool, off link.Offload) {
	st := &s.stats.Net
	st.InReceives++
	ip, err := wire.ParseIPv4(b)
	if err != nil {
		if err == wire.ErrTruncated {
			st.InTruncated++
		} else {
			st.InHdrErrors++
		}
		return
	}
	if !ip.ChecksumValid() {
		st.InHdrErrors++
		return
	}
	src, dst := ip.Src(), ip.Dst()
	// RFC 1122 §3.2.1.3: a source that is broadcast, multicast or
	// (for non-ARP) the limited broadcast is martian; so are loopback
	// addresses, which "MUST NOT appear outside a host" (g), and
	// {0, <Host-number>} sources (a, b), which are only for a host that
	// does not know its address yet: like Linux (ip_route_input_slow),
	// accept those only to the limited broadcast address (DHCP). A
	// loopback source that is our own address comes from our loopback
	// path (a NIC given 127.0.0.1), which also ends here.
	limited := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	if src.IsMulticast() || src == limited || isBroadcast(n, src) || src.IsLoopback() && !s.isLocal(src) ||
		src.As4()[0] == 0 && dst != limited {
		st.InAddrErrors++
		return
	}
	bcast := isBroadcast(n, dst)
	if !bcast && !s.isLocal(dst) {
		// A host does not forward (RFC 1122 §3.3.1.1 allows silently
		// discarding).
		st.InAddrErrors++
		return
	}
	if ip.IsFragment() {
		whole, ok := s.reasm.Add(now, ip)
		if !ok {
			return
		}
		ip, err = wire.ParseIPv4(whole)
		if err != nil {
			st.InHdrErrors++
			return
		}
		off = link.Offload{}
	}
	switch ip.Protocol() {
	case wire.ProtoTCP:
		if bcast || linkBcast {
			st.InAddrErrors++
			return
		}
		st.InDelivers++
		s.handleTCP(now, n, ip, off)
	case wire.ProtoUDP:
		st.InDelivers++
		s.handleUDP(now, n, ip, bcast || linkBcast, off)
	case wire.ProtoICMP:
		st.InDelivers++
		s.handleICMP(now, n, ip, bcast || linkBcast)
	default:
		st.InUnknownProtos++
		if !bcast && !linkBcast {
			s.sendICMPError(now, ip.Packet(), wire.ICMPv4DestUnreachable, wire.ICMPv4ProtoUnreachable, 0)
		}
	}
}

// handleICMP answers echo requests and delivers destination-unreachable
// errors to the connections they are about (RFC 792, RFC 1122 §3.2.2).
func (s *Stack) handleICMP(now clock.Instant, n *nic, ip wire.IPv4, bcast bool) {
	st := &s.stats.Net
	st.InMsgs++
	m, err := wire.ParseICMPv4(ip.Payload())
	if err != nil {
		st.InErrors++
		return
	}
	if !m.ChecksumValid() {
		st.InCsumErrors++
		st.InErrors++
		return
	}
	switch m.Type() {
	case wire.ICMPv4EchoRequest:
		st.InEchos++
		if bcast {
			return // net.ipv4.icmp_echo_ignore_broadcasts = 1
		}
		s.sendEchoReply(now, ip, m)
	case wire.ICMPv4EchoReply:
		st.InEchoReps++
	case wire.ICMPv4TimeExceeded:
		st.InTimeExcds++
	case wire.ICMPv4DestUnreachable:
		st.InDestUnreachs++
		s.icmpUnreachable(now, m)
	}
}

// icmpUnreachable finds the TCP connection the quoted packet belongs to
// and reports the error (RFC 1122 §4.2.3.9).
func (s *Stack) icmpUnreachable(now clock.Instant, m wire.ICMPv4) {
	// The quote is the offending packet's IP header and at least 8 bytes
	// of its payload (RFC 792): enough for the TCP ports.
	q := m.Payload()
	if len(q) < wire.IPv4HeaderLen || q[0]>>4 != 4 {
		return
	}
	ihl := int(q[0]&0x0f) * 4
	if ihl < wire.IPv4HeaderLen || len(q) < ihl+8 || q[9] != wire.ProtoTCP {
		return
	}
	p := q[ihl:]
	key := tuple{
		local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte(q[12:16])), binary.BigEndian.Uint16(p[0:])),
		remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte(q[16:20])), binary.BigEndian.Uint16(p[2:])),
	}
	c := s.conns[key]
	if c == nil {
		return
	}
	// HandleICMPError acts only while connecting, where the quoted
	// sequence number can only be our SYN's (RFC 5927 §4.1 asks for that
	// check in general).
	e := tcp.ErrHostUnreachable
	if m.Code() == wire.ICMPv4PortUnreachable || m.Code() == wire.ICMPv4ProtoUnreachable {
		e = tcp.ErrConnRefused
	}
	if m.Code() == wire.ICMPv4FragmentationNeeded {
		return // PMTU discovery: not yet
	}
	c.conn.HandleICMPError(now, e)
	s.afterConn(c)
}

// handleTCP demultiplexes a segment to its connection or listener
// (RFC 9293 §3.10.7).
func (s *Stack) handleTCP(now clock.Instant, n *nic, ip wire.IPv4, off link.Offload) {
	st := &s.tcpEnv.Stats
	st.InSegs++
	b := ip.Payload()
	v, err := wire.ParseTCP(b)
	if err != nil {
		st.InBadHeader++
		st.InErrs++
		return
	}
	if !off.DataValid && wire.TCPChecksum(b, ip.Src(), ip.Dst()) != 0 {
		st.InCsumErrors++
		st.InErrs++
		return
	}
	var seg wire.TCPFields
	if err := seg.Decode(v); err != nil {
		st.InBadHeader++
		st.InErrs++
		return
	}
	key := tuple{
		local:  netip.AddrPortFrom(ip.Dst(), seg.DstPort),
		remote: netip.AddrPortFrom(ip.Src(), seg.SrcPort),
	}
	var reopenISS wire.Seq
	reopen := false
	if c := s.conns[key]; c != nil {
		if c.conn.State() == tcp.SynReceived && c.listener != nil && seg.Flags&wire.TCPFlagACK != 0 &&
			seg.Flags&(wire.TCPFlagSYN|wire.TCPFlagRST) == 0 && c.listener.acceptFull() {
			// The handshake would complete into a full accept queue:
			// drop the ACK and let the SYN-ACK be retransmitted, as
			// Linux does (ListenOverflows).
			st.ListenOverflows++
			st.ListenDrops++
			return
		}
		if c.conn.HandleSegment(now, &seg) != tcp.Reopen {
			s.afterConn(c)
			return
		}
		reopenISS = c.conn.ReopenISS()
		reopen = true
		s.afterConn(c)
	}
	l := s.listeners[key.local]
	if l == nil {
		l = s.listeners[netip.AddrPortFrom(netip.IPv4Unspecified(), seg.DstPort)]
	}
	if l == nil || l.closed {
		// RFC 9293 §3.10.7.1: no connection and no listener.
		st.NoListener++
		s.sendReset(now, n, ip, &seg)
		return
	}
	s.listen(now, n, l, key, &seg, reopen, reopenISS)
}

// listen is RFC 9293 §3.10.7.2, LISTEN state.
func (s *Stack) listen(now clock.Instant, n *nic, l *TCPListener, key tuple, seg *wire.TCPFields, reopen bool, iss wire.Seq) {
	st := &s.tcpEnv.Stats
	f := seg.Flags
	switch {
	case f&wire.TCPFlagRST != 0:
		return
	case f&wire.TCPFlagACK != 0:
		if f&wire.TCPFlagSYN == 0 && s.cookieACK(now, n, l, key, seg) {
			return
		}
		// An ACK for a connection we do not have: <SEQ=SEG.ACK><CTL=RST>.
		s.sendResetFor(now, key, seg)
		return
	case f&wire.TCPFlagSYN == 0:
		return
	}
	if l.acceptFull() {
		st.ListenOverflows++
		st.ListenDrops++
		return
	}
	// RFC 4987 §3.6: with the SYN queue full (or always, by option),
	// answer with a SYN cookie and keep nothing. A SYN reopening a
	// TIME-WAIT connection keeps the normal path, as in Linux
	// (tcp_conn_request's isn).
	mode := s.cfg.SynCookies
	if !reopen && mode != SynCookiesOff && (mode == SynCookiesAlways || l.synQueue >= s.cfg.SynBacklog) {
		s.sendCookie(now, n, l, key, seg)
		return
	}
	if l.synQueue >= s.cfg.SynBacklog {
		st.SynQueueDrops++
		st.ListenDrops++
		return
	}
	_, nextHop, _, err := s.route(key.remote.Addr())
	if err != nil {
		st.ListenDrops++
		return
	}
	newISS, tsOff := s.initialSeq(now, key.local, key.remote)
	if !reopen {
		iss = newISS
	}
	c := s.newConn(key, n, nextHop)
	ep := tcp.Endpoints{Local: key.local, Remote: key.remote, ISS: iss, TSOffset: tsOff, MTU: n.cfg.MTU}
	if err := c.conn.OpenPassive(now, ep, seg); err != nil {
		return
	}
	c.listener = l
	l.synQueue++
	s.conns[key] = c
	s.afterConn(c)
}

// sendCookie answers a SYN at l with a SYN-ACK carrying a SYN cookie
// (RFC 4987 §3.6) and keeps no state but the time, which makes l check
// ACKs as cookies for the next tcp.CookieValid.
func (s *Stack) sendCookie(now clock.Instant, n *nic, l *TCPListener, key tuple, syn *wire.TCPFields) {
	ep := tcp.Endpoints{Local: key.local, Remote: key.remote, TSOffset: s.tsOffset(key.local, key.remote), MTU: n.cfg.MTU}
	var synack wire.TCPFields
	s.cookie.SynAck(now, ep, syn, &synack)
	l.cookieSent = now
	s.sendTCPControl(now, key, &synack)
}

// cookieACK checks an ACK that arrived at l for no connection as the
// answer to a cookie SYN-ACK, if l sent cookies lately (Linux's
// cookie_v4_check), and reports whether it took the segment: a valid
// cookie opens a connection straight into l's accept queue (or, if that
// is full, the segment is dropped and counted, ListenOverflows, as for
// any handshake: the peer's next segment brings the cookie again).
// Otherwise the caller answers the ACK as RFC 9293 §3.10.7.2 says.
func (s *Stack) cookieACK(now clock.Instant, n *nic, l *TCPListener, key tuple, seg *wire.TCPFields) bool {
	if s.cfg.SynCookies == SynCookiesOff || !tcp.CookiesRecent(now, l.cookieSent) {
		return false
	}
	st := &s.tcpEnv.Stats
	ep := tcp.Endpoints{Local: key.local, Remote: key.remote, TSOffset: s.tsOffset(key.local, key.remote), MTU: n.cfg.MTU}
	o, ok := s.cookie.Check(now, ep, seg)
	if !ok {
		return false
	}
	if l.acceptFull() {
		st.ListenOverflows++
		st.ListenDrops++
		return true
	}
	_, nextHop, _, err := s.route(key.remote.Addr())
	if err != nil {
		st.ListenDrops++
		return true
	}
	c := s.newConn(key, n, nextHop)
	ep.ISS = seg.Ack - 1
	if err := c.conn.OpenCookie(now, ep, seg, o); err != nil {
		return true
	}
	// In the SYN queue for an instant: afterConn sees the handshake
	// complete and moves the connection to the accept queue.
	c.listener = l
	l.synQueue++
	s.conns[key] = c
	s.afterConn(c)
	return true
}

// sendReset answers a segment that has no connection (RFC 9293 §3.10.7.1).
func (s *Stack) sendReset(now clock.Instant, n *nic, ip wire.IPv4, seg *wire.TCPFields) {
	key := tuple{
		local:  netip.AddrPortFrom(ip.Dst(), seg.DstPort),
		remote: netip.AddrPortFrom(ip.Src(), seg.SrcPort),
	}
	s.sendResetFor(now, key, seg)
}

func (s *Stack) sendResetFor(now clock.Instant, key tuple, seg *wire.TCPFields) {
	var rst wire.TCPFields
	if !tcp.ResetFor(seg, &rst) {
		return
	}
	s.tcpEnv.Stats.OutRsts++
	s.tcpEnv.Stats.OutSegs++
	s.sendTCPControl(now, key, &rst)
}

// handleUDP delivers a datagram to its socket, or answers with ICMP port
// unreachable (RFC 768, RFC 1122 §4.1.3.1).
func (s *Stack) handleUDP(now clock.Instant, n *nic, ip wire.IPv4, bcast bool, off link.Offload) {
	st := &s.stats.UDP
	u, err := wire.ParseUDP(ip.Payload())
	if err != nil {
		st.InErrors++
		return
	}
	if u.Checksum() != 0 && !off.DataValid && wire.UDPChecksum(ip.Payload()[:u.Length()], ip.Src(), ip.Dst()) != 0 {
		st.InCsumErrors++
		st.InErrors++
		return
	}
	local := netip.AddrPortFrom(ip.Dst(), u.DstPort())
	ep := s.udp[local]
	if ep == nil {
		ep = s.udp[netip.AddrPortFrom(netip.IPv4Unspecified(), u.DstPort())]
	}
	if ep == nil || ep.closed {
		st.NoPorts++
		if !bcast {
			s.sendICMPError(now, ip.Packet(), wire.ICMPv4DestUnreachable, wire.ICMPv4PortUnreachable, 0)
		}
		return
	}
	if !ep.deliver(netip.AddrPortFrom(ip.Src(), u.SrcPort()), local, u.Payload()) {
		st.RcvbufErrors++
		st.InErrors++
		return
	}
	st.InDatagrams++
	s.notify(ep, EventReadable)
}
