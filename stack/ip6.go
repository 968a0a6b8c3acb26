package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/wire"
)

// handleIPv6 is RFC 8200's input processing for a host: validate, check
// the destination, walk the extension headers (wire.IPv6Chain.Walk,
// whose verdicts become parameter problems here), reassemble, deliver.
// It is the IPv6 producer of ipRepr. linkMcast says the frame came to a
// multicast or broadcast MAC address.
func (s *Stack) handleIPv6(now clock.Instant, n *nic, b []byte, linkMcast bool, off link.Offload) {
	st := &s.host.net
	st.Ip6InReceives++
	ip, err := wire.ParseIPv6(b)
	if err != nil {
		if err == wire.ErrTruncated {
			st.Ip6InTruncatedPkts++
		} else {
			st.Ip6InHdrErrors++
		}
		return
	}
	src, dst := ip.Src(), ip.Dst()
	// RFC 4291 §2.7: a multicast source is martian; §2.5.3: the loopback
	// address never appears on a link (our own, looped back, does).
	if src.IsMulticast() || src.IsLoopback() && !s.isLocal(src) {
		st.Ip6InAddrErrors++
		return
	}
	mcast := dst.IsMulticast()
	foreign := false
	if mcast {
		st.Ip6InMcastPkts++
		if !s.host.mld.Joined(n.id, dst) {
			st.Ip6InAddrErrors++
			return
		}
	} else if ln := s.host.local.lookup(dst); ln == nil || linkScoped(dst) && ln != n {
		// Not ours (a host does not forward, unless the NIC is
		// promiscuous: forward.go), tentative (RFC 4862 §5.4: packets to
		// a tentative address are silently discarded), or another
		// link's link-local address.
		if ln != nil || !s.takesForeign(n, dst) {
			st.Ip6InAddrErrors++
			return
		}
		foreign = true
	}
	var c wire.IPv6Chain
	if err := c.Walk(ip); err != nil {
		st.Ip6InHdrErrors++
		if c.ICMP {
			// RFC 8200 §4: the parameter problem Walk asks for; a code 2
			// about an option whose type says so goes even to a
			// multicast destination (§4.2, RFC 4443 §2.4 (e.3)).
			s.sendICMPv6Error(now, n, ip.Packet(), wire.ICMPv6ParameterProblem, c.Code, c.Pointer, linkMcast, c.Code == wire.ICMPv6UnknownOption)
		}
		return
	}
	if c.Fragmented() {
		whole, ok := s.host.reasm6.AddIPv6(now, ip, &c)
		if !ok {
			return
		}
		if ip, err = wire.ParseIPv6(whole); err != nil || c.Walk(ip) != nil || c.Fragmented() {
			st.Ip6InHdrErrors++
			return
		}
		off = link.Offload{}
		if c.Proto == wire.ProtoTCP {
			// As for IPv4: another core's flow goes to that core.
			if k, ok := tcpKeyOf(src, dst, c.Upper(ip)); ok && s.handOff(n.id, whole, k) {
				return
			}
		}
	}
	if src.IsUnspecified() && c.Proto != wire.ProtoICMPv6 {
		// Only NDP's duplicate address detection and MLD come from ::
		// (RFC 4291 §2.5.2).
		st.Ip6InAddrErrors++
		return
	}
	p := ipRepr{
		nic:       n,
		src:       src,
		dst:       dst,
		proto:     c.Proto,
		ttl:       ip.HopLimit(),
		ecn:       ip.ECN(),
		payload:   c.Upper(ip),
		packet:    ip.Packet(),
		bcast:     mcast || linkMcast,
		dataValid: off.DataValid,
		nhOff:     c.ProtoOffset,
		foreign:   foreign,
	}
	s.deliver(now, &p)
}

// mtu6 returns the MTU IPv6 packets on n must fit: the link's, or the
// smaller one a router advertised (RFC 4861 §6.3.4).
func (n *nic) mtu6() int {
	if n.v6 != nil && n.v6.mtu > 0 {
		return n.v6.mtu
	}
	return n.cfg.MTU
}

// sendFragments6 sends the IPv6 packet pkt, larger than n's MTU, in
// fragments (RFC 8200 §4.5), with an identification that is hard to
// guess (RFC 7739: a keyed hash of the addresses plus a counter). It
// reports false, sending nothing and counting Ip6FragFails, if the packet
// cannot be fragmented.
func (s *Stack) sendFragments6(now clock.Instant, n *nic, nextHop netip.Addr, pkt []byte, mtu int) bool {
	h := &s.host
	h.fragID6++
	var b [32]byte
	copy(b[:], pkt[8:40])
	id := h.fragID6 + uint32(h.fragKey6.Sum64(b[:]))
	if err := h.frag6.Reset(pkt, mtu, id); err != nil {
		h.net.Ip6FragFails++
		return false
	}
	fb := s.getBuf(mtu)
	defer s.putBuf(fb)
	for {
		k := h.frag6.Next(fb)
		if k == 0 {
			break
		}
		h.net.Ip6FragCreates++
		s.sendIP(now, n, nextHop, fb[:k])
	}
	h.net.Ip6FragOKs++
	return true
}

// handleICMPv6 answers echo requests, hands errors to the transports,
// and takes NDP and MLD messages (RFC 4443, RFC 4861, RFC 3810).
func (s *Stack) handleICMPv6(now clock.Instant, p *ipRepr) {
	st := &s.host.net
	st.Icmp6InMsgs++
	m, err := wire.ParseICMPv6(p.payload)
	if err != nil {
		st.Icmp6InErrors++
		return
	}
	if !p.dataValid && wire.ICMPv6Checksum(m, p.src, p.dst) != 0 {
		st.Icmp6InCsumErrors++
		st.Icmp6InErrors++
		return
	}
	switch m.Type() {
	case wire.ICMPv6EchoRequest:
		st.Icmp6InEchos++
		if f := s.host.echoFwd; f != nil && p.foreign && !p.src.IsUnspecified() {
			f.offer(p, m.ID(), m.Seq(), m[wire.ICMPv6HeaderLen:]) // forwarder mode (forward.go)
			return
		}
		if !p.src.IsUnspecified() {
			// Linux answers echoes to multicast too
			// (icmpv6_echo_ignore_multicast = 0).
			s.sendEchoReply6(now, p, m)
		}
	case wire.ICMPv6EchoReply:
		st.Icmp6InEchoReplies++
		s.pingReply(p, m)
	case wire.ICMPv6DestUnreachable:
		st.Icmp6InDestUnreachs++
		kind := errHostUnreachable
		if m.Code() == wire.ICMPv6PortUnreachable {
			kind = errPortUnreachable
		}
		s.icmpv6Error(now, m, kind, 0)
	case wire.ICMPv6PacketTooBig:
		st.Icmp6InPktTooBigs++
		// RFC 8201: the path MTU task acts on it (tcpError's
		// errPacketTooBig case).
		s.icmpv6Error(now, m, errPacketTooBig, m.MTU())
	case wire.ICMPv6TimeExceeded:
		st.Icmp6InTimeExcds++
	case wire.ICMPv6ParameterProblem:
		st.Icmp6InParmProblems++
		if m.Code() == wire.ICMPv6UnknownNextHeader {
			// The peer has no such protocol (Linux: ECONNREFUSED).
			s.icmpv6Error(now, m, errProtoUnreachable, 0)
		}
	case wire.ICMPv6NeighborSolicit, wire.ICMPv6NeighborAdvert, wire.ICMPv6RouterSolicit,
		wire.ICMPv6RouterAdvert, wire.ICMPv6Redirect:
		s.handleNDP(now, p, m)
	case wire.ICMPv6MLDQuery, wire.ICMPv6MLDv1Report, wire.ICMPv6MLDv1Done, wire.ICMPv6MLDv2Report:
		s.handleMLD(now, p, m)
	}
}

// icmpv6Error hands an ICMPv6 error to the transport of the packet it
// quotes (RFC 4443 §2.4 (d)), as a transportError.
func (s *Stack) icmpv6Error(now clock.Instant, m wire.ICMPv6, kind errKind, mtu uint32) {
	var q wire.IPv6Fields
	proto, hdr, err := m.Quote(&q)
	if err != nil {
		return
	}
	if proto == wire.ProtoFragment {
		// A fragment of ours (a datagram larger than the path) quotes
		// no transport header; its packet too big still teaches the
		// path's MTU (RFC 8201 §4).
		if kind == errPacketTooBig {
			s.learnPMTU(now, q.Src, q.Dst, s.clampPMTU(q.Dst, int(mtu)))
		}
		return
	}
	e := transportError{kind: kind, mtu: mtu, src: q.Src, dst: q.Dst, proto: proto, header: hdr}
	s.transportError(now, &e)
}

// sendICMPv6Error sends an ICMPv6 error about orig (an IPv6 packet,
// header first, as it arrived on via, or a reassembly timeout's quote
// with via nil) to its source, if RFC 4443 §2.4 (e) allows one and the
// rate limit (f), which ICMPv4 shares as in Linux, has room. word is the
// MTU or pointer of the message; linkMcast says orig came as link-layer
// multicast; exception marks the errors (e.3) lets go to multicast.
func (s *Stack) sendICMPv6Error(now clock.Instant, via *nic, orig []byte, typ, code uint8, word uint32, linkMcast, exception bool) {
	st := &s.host.net
	if !network.ErrorAllowed6(orig, linkMcast, exception) {
		return
	}
	ip := wire.IPv6(orig)
	dst := ip.Src()
	if !s.host.icmpRL.Allow(now) {
		st.Icmp6OutRateLimited++
		return
	}
	rt, err := s.routeTo(dst, via)
	if err != nil {
		st.Ip6OutNoRoutes++
		return
	}
	// RFC 4443 §2.2: from the address the packet went to, if it was one
	// of ours; otherwise the source selection's choice.
	if d := ip.Dst(); !d.IsMulticast() && s.isLocal(d) {
		rt.src = d
	}
	buf := s.getBuf(wire.IPv6HeaderLen + wire.IPv6MinMTU)
	defer s.putBuf(buf)
	l := network.ErrorMessage6(buf[wire.IPv6HeaderLen:], typ, code, word, orig, rt.src, dst)
	st.Icmp6OutMsgs++
	switch typ {
	case wire.ICMPv6DestUnreachable:
		st.Icmp6OutDestUnreachs++
	case wire.ICMPv6TimeExceeded:
		st.Icmp6OutTimeExcds++
	case wire.ICMPv6ParameterProblem:
		st.Icmp6OutParmProblems++
	}
	s.sendPacket(now, &rt, dst, wire.ProtoICMPv6, buf, l, false)
}

// sendEchoReply6 answers an echo request (RFC 4443 §4.2), from the
// address it went to, or, if that was a multicast group, from the
// address source selection picks (RFC 4443 §2.2).
func (s *Stack) sendEchoReply6(now clock.Instant, p *ipRepr, m wire.ICMPv6) {
	st := &s.host.net
	rt, err := s.routeTo(p.src, p.nic)
	if err != nil {
		st.Ip6OutNoRoutes++
		return
	}
	if !p.dst.IsMulticast() {
		rt.src = p.dst
	}
	buf := s.getBuf(wire.IPv6HeaderLen + len(m))
	defer s.putBuf(buf)
	l := network.EchoReply6(buf[wire.IPv6HeaderLen:], m, rt.src, p.src)
	st.Icmp6OutMsgs++
	st.Icmp6OutEchoReplies++
	s.sendPacket(now, &rt, p.src, wire.ProtoICMPv6, buf, l, false)
}

// ip6PayloadLen returns the payload length field of an IPv6 packet.
func ip6PayloadLen(pkt []byte) int { return int(binary.BigEndian.Uint16(pkt[4:])) }

// mtuFor returns the MTU of n for packets to dst: the IPv6 one (mtu6)
// for an IPv6 destination. It is the MSS a connection announces
// (tcp.Endpoints.MTU); pathMTU lowers it per destination for what is
// sent.
func (n *nic) mtuFor(dst netip.Addr) int {
	if dst.Is6() {
		return n.mtu6()
	}
	return n.cfg.MTU
}
