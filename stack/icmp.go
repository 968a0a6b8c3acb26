package stack

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/wire"
)

// handleICMPv4 answers echo requests, hands echo replies to the ping
// sockets, and destination-unreachable errors to the transports (RFC 792,
// RFC 1122 §3.2.2).
func (s *Stack) handleICMPv4(now clock.Instant, p *ipRepr) {
	st := &s.host.net
	st.InMsgs++
	m, err := wire.ParseICMPv4(p.payload)
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
		if p.bcast {
			return // net.ipv4.icmp_echo_ignore_broadcasts = 1
		}
		if f := s.host.echoFwd; f != nil && p.foreign {
			f.offer(p, m.ID(), m.Seq(), m[wire.ICMPv4HeaderLen:]) // forwarder mode: the owner answers (forward.go)
			return
		}
		s.sendEchoReply(now, p, m)
	case wire.ICMPv4EchoReply:
		st.InEchoReps++
		s.pingReply(p, m)
	case wire.ICMPv4TimeExceeded:
		st.InTimeExcds++
	case wire.ICMPv4DestUnreachable:
		st.InDestUnreachs++
		s.icmpv4Unreachable(now, m)
	}
}

// icmpv4Unreachable hands a destination unreachable to the transport of
// the packet it quotes (RFC 1122 §4.2.3.9), as a transportError.
func (s *Stack) icmpv4Unreachable(now clock.Instant, m wire.ICMPv4) {
	// The quote is the offending packet's IP header and at least 8 bytes
	// of its payload (RFC 792): enough for the ports.
	var q wire.IPv4Fields
	hdr, err := m.Quote(&q)
	if err != nil {
		return
	}
	e := transportError{kind: errHostUnreachable, src: q.Src, dst: q.Dst, proto: q.Protocol, header: hdr}
	switch m.Code() {
	case wire.ICMPv4PortUnreachable:
		e.kind = errPortUnreachable
	case wire.ICMPv4ProtoUnreachable:
		e.kind = errProtoUnreachable
	case wire.ICMPv4FragmentationNeeded:
		e.kind, e.mtu = errPacketTooBig, uint32(m.NextHopMTU())
		if e.mtu == 0 {
			// A router older than RFC 1191 names no next-hop MTU:
			// take the plateau below the quoted packet's length (§5).
			e.mtu = uint32(plateauBelow(int(q.TotalLen)))
		}
	}
	s.transportError(now, &e)
}

// unreachReason is why a transport refuses a packet, whatever the IP
// version; sendUnreachable turns it into the ICMP error of the packet's
// family.
type unreachReason uint8

const (
	unreachPort  unreachReason = iota + 1 // no socket at the port
	unreachProto                          // no transport for the protocol
)

// sendUnreachable tells p's sender that the packet could not be
// delivered (RFC 1122 §3.2.2.1, §4.1.3.1): ICMPv4 destination
// unreachable, port or protocol; for IPv6, destination unreachable, port
// unreachable (RFC 4443 §3.1), or a parameter problem, unknown next
// header, pointing at the field that names the protocol (RFC 8200 §4,
// RFC 4443 §3.4).
func (s *Stack) sendUnreachable(now clock.Instant, p *ipRepr, why unreachReason) {
	if p.src.Is6() {
		if why == unreachProto {
			s.sendICMPv6Error(now, p.nic, p.packet, wire.ICMPv6ParameterProblem, wire.ICMPv6UnknownNextHeader, uint32(p.nhOff), p.bcast, false)
			return
		}
		s.sendICMPv6Error(now, p.nic, p.packet, wire.ICMPv6DestUnreachable, wire.ICMPv6PortUnreachable, 0, p.bcast, false)
		return
	}
	code := uint8(wire.ICMPv4PortUnreachable)
	if why == unreachProto {
		code = wire.ICMPv4ProtoUnreachable
	}
	s.sendICMPError(now, p.packet, wire.ICMPv4DestUnreachable, code, 0)
}

// sendICMPError sends an ICMP error about orig (an IPv4 packet, header
// first) to its source, if RFC 1122 §3.2.2 allows one and the rate limit
// (RFC 1812 §4.3.2.8) has room.
func (s *Stack) sendICMPError(now clock.Instant, orig []byte, typ, code uint8, mtu uint16) {
	st := &s.host.net
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
	if !s.host.icmpRL.Allow(now) {
		st.OutRateLimited++
		return
	}
	dst := ip.Src()
	rt, err := s.routeTo(dst, nil)
	if err != nil {
		st.OutNoRoutes++
		return
	}
	n := rt.nic
	buf := s.getBuf(n.hdr + n.cfg.MTU)
	defer s.putBuf(buf)
	m := network.ErrorMessage(buf[wire.IPv4HeaderLen:], typ, code, mtu, orig)
	st.OutMsgs++
	switch typ {
	case wire.ICMPv4DestUnreachable:
		st.OutDestUnreachs++
	case wire.ICMPv4TimeExceeded:
		st.OutTimeExcds++
	}
	s.sendPacket(now, &rt, dst, wire.ProtoICMP, buf, m, false)
}

// sendEchoReply answers an echo request (RFC 792).
func (s *Stack) sendEchoReply(now clock.Instant, p *ipRepr, m wire.ICMPv4) {
	st := &s.host.net
	rt, err := s.routeTo(p.src, p.nic)
	if err != nil {
		st.OutNoRoutes++
		return
	}
	buf := s.getBuf(wire.IPv4HeaderLen + len(m))
	defer s.putBuf(buf)
	l := network.EchoReply(buf[wire.IPv4HeaderLen:], m)
	st.OutMsgs++
	st.OutEchoReps++
	// The reply comes from the address the request went to.
	rt.src = p.dst
	s.sendPacket(now, &rt, p.src, wire.ProtoICMP, buf, l, false)
}
