package stack

import (
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/wire"
)

// The network layer's seam. Input: a producer per IP version (handleIPv4;
// IPv6 is the second) validates a packet, reassembles it, and hands the
// transports an ipRepr — addresses, protocol, TTL, ECN, payload, NIC —
// through deliver, the one protocol dispatch; ICMP errors reach the
// transports through transportError, also whatever the ICMP version.
// Output: a transport writes its header and payload behind room for the
// IP header (ipHeaderLen) and hands them to sendPacket, which writes the
// header of the destination's family (writeIPHeader) and sends the
// packet through sendIP: loopback, fragmentation, neighbour resolution.
// TCP's data path (pollConns) writes the same header in place.

// ipRepr is the network layer's account of a received packet, whatever
// its IP version, as smoltcp's IpRepr: what a transport needs of the IP
// header, and nothing that would make it parse one.
type ipRepr struct {
	nic      *nic
	src, dst netip.Addr
	proto    uint8
	ttl      uint8 // TTL (IPv4) or hop limit (IPv6)
	ecn      uint8 // the ECN field (RFC 3168 §5)
	// payload is the transport's bytes: its header and data.
	payload []byte
	// packet is the whole IP packet, header first, as it arrived (or as
	// reassembly made it): what an ICMP error about it quotes.
	packet []byte
	// bcast: the packet came to a broadcast or multicast address, of the
	// link or of IP (RFC 1122 §3.2.2, §4.2.3.10; RFC 4443 §2.4 (e): no
	// ICMP errors, no TCP).
	bcast bool
	// nhOff is the offset in packet of the Next Header field that names
	// proto (IPv6; RFC 4443 §3.4: a parameter problem about an unknown
	// protocol points at it).
	nhOff int
	// dataValid: the transport checksum needs no check — the link
	// verified it (link.Offload.DataValid), or the packet never left the
	// stack (loopback).
	dataValid bool
	// foreign: the destination is not the stack's; a promiscuous NIC
	// took the packet (forwarder mode). Only sockets bound to exactly
	// that address match it, then the forwarders.
	foreign bool
}

// handleIPv4 is RFC 791 §3.2 and RFC 1122 §3.2.1 input processing for a
// host: validate, check the destination, reassemble, deliver. It is the
// IPv4 producer of ipRepr.
func (s *Stack) handleIPv4(now clock.Instant, n *nic, b []byte, linkBcast bool, off link.Offload) {
	st := &s.host.net
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
	if src.IsMulticast() || src == limitedBroadcast || isBroadcast(n, src) || src.IsLoopback() && !s.isLocal(src) ||
		src.As4()[0] == 0 && dst != limitedBroadcast {
		st.InAddrErrors++
		return
	}
	bcast := isBroadcast(n, dst)
	foreign := false
	if !bcast && !s.isLocal(dst) {
		// A host does not forward (RFC 1122 §3.3.1.1 allows silently
		// discarding), unless the NIC is promiscuous: then the packet
		// is for whatever socket or forwarder takes its destination.
		if !s.takesForeign(n, dst) {
			st.InAddrErrors++
			return
		}
		foreign = true
	}
	if ip.IsFragment() {
		whole, ok := s.host.reasm.Add(now, ip)
		if !ok {
			return
		}
		ip, err = wire.ParseIPv4(whole)
		if err != nil {
			st.InHdrErrors++
			return
		}
		off = link.Offload{}
		if ip.Protocol() == wire.ProtoTCP {
			// A TCP datagram of another core's flow goes to that core
			// (Shared): only the owner reassembles.
			if k, ok := tcpKeyOf(src, dst, ip.Payload()); ok && s.handOff(n.id, whole, k) {
				return
			}
		}
	}
	p := ipRepr{
		nic:       n,
		src:       src,
		dst:       dst,
		proto:     ip.Protocol(),
		ttl:       ip.TTL(),
		ecn:       ip.TOS() & 3,
		payload:   ip.Payload(),
		packet:    ip.Packet(),
		bcast:     bcast || linkBcast,
		dataValid: off.DataValid,
		foreign:   foreign,
	}
	s.deliver(now, &p)
}

// deliver hands a packet to its transport (RFC 1122 §3.2.1.9, §3.3.7;
// RFC 8200 §4): the one protocol dispatch, for every IP version. A new
// transport is a case here and one in transportError.
func (s *Stack) deliver(now clock.Instant, p *ipRepr) {
	c := s.host.ctr(p.dst)
	switch {
	case p.proto == wire.ProtoTCP:
		if p.bcast {
			*c.inAddrErrors++
			return
		}
		*c.inDelivers++
		s.handleTCP(now, p)
	case p.proto == wire.ProtoUDP:
		*c.inDelivers++
		s.handleUDP(now, p)
	case p.proto == wire.ProtoICMP && p.dst.Is4():
		*c.inDelivers++
		s.handleICMPv4(now, p)
	case p.proto == wire.ProtoICMPv6 && p.dst.Is6():
		*c.inDelivers++
		s.handleICMPv6(now, p)
	case p.proto == wire.ProtoNoNext && p.dst.Is6():
		// RFC 8200 §4.7: nothing follows; what does is ignored (Linux
		// delivers it to a discarding handler).
		*c.inDelivers++
	default:
		*c.inUnknownProtos++
		if !p.bcast {
			s.sendUnreachable(now, p, unreachProto)
		}
	}
}

// ipCounters are the IP counters of one family: pointers into
// network.Stats, IPv4's (Ip*) or IPv6's (Ip6*), so that the paths both
// families share count by the packet's family without a branch each.
type ipCounters struct {
	inAddrErrors, inUnknownProtos, inDelivers, outRequests, outNoRoutes *uint64
	fragOKs, fragFails, fragCreates                                     *uint64
}

// ipCountersOf returns the counters of each family in st.
func ipCountersOf(st *network.Stats) (v4, v6 ipCounters) {
	v4 = ipCounters{
		inAddrErrors: &st.InAddrErrors, inUnknownProtos: &st.InUnknownProtos, inDelivers: &st.InDelivers,
		outRequests: &st.OutRequests, outNoRoutes: &st.OutNoRoutes,
		fragOKs: &st.FragOKs, fragFails: &st.FragFails, fragCreates: &st.FragCreates,
	}
	v6 = ipCounters{
		inAddrErrors: &st.Ip6InAddrErrors, inUnknownProtos: &st.Ip6InUnknownProtos, inDelivers: &st.Ip6InDelivers,
		outRequests: &st.Ip6OutRequests, outNoRoutes: &st.Ip6OutNoRoutes,
		fragOKs: &st.Ip6FragOKs, fragFails: &st.Ip6FragFails, fragCreates: &st.Ip6FragCreates,
	}
	return v4, v6
}

// ctr returns the counters of a's family.
func (h *host) ctr(a netip.Addr) *ipCounters {
	if a.Is4() {
		return &h.c4
	}
	return &h.c6
}

// errKind is what an ICMP error (of either version) says happened to a
// packet we sent, as the transports see it.
type errKind uint8

const (
	// errHostUnreachable: the network or host cannot be reached (RFC
	// 1122 §4.2.3.9 lets TCP abort only a connection still opening).
	errHostUnreachable errKind = iota + 1
	// errPortUnreachable: nothing listens at the port (ICMPv4 3/3,
	// ICMPv6 1/4).
	errPortUnreachable
	// errProtoUnreachable: the peer does not speak the protocol (ICMPv4
	// 3/2; ICMPv6 parameter problem 4/1).
	errProtoUnreachable
	// errPacketTooBig: the packet did not fit the path (ICMPv4 3/4 with
	// RFC 1191's next-hop MTU; ICMPv6 packet too big, RFC 8201). For
	// path MTU discovery (issue 11).
	errPacketTooBig
)

// transportError is an ICMP error as the transport it is about sees it,
// whatever the ICMP version: the kind, and the packet we sent as quoted.
type transportError struct {
	kind errKind
	mtu  uint32 // errPacketTooBig: the MTU the error reports (0: none)
	// src and dst are the quoted packet's: our address and the peer's.
	src, dst netip.Addr
	proto    uint8
	// header is the quoted start of the transport header: at least the
	// 8 bytes an ICMP error must carry (RFC 792, RFC 4443 §2.4 (c)),
	// enough for the ports and TCP's sequence number.
	header []byte
}

// transportError hands an ICMP error to the transport it is about.
// UDP sockets are not told: ustack's are unconnected, and Linux reports
// errors to those only with IP_RECVERR.
func (s *Stack) transportError(now clock.Instant, e *transportError) {
	if e.kind == errPacketTooBig && e.proto != wire.ProtoTCP {
		// Other transports quote nothing to check the error against:
		// the MTU is learned as it comes (RFC 1191 §4, RFC 8201 §4; as
		// Linux does for UDP and raw sockets), within the family's
		// minimum and never upward.
		s.learnPMTU(now, e.src, e.dst, s.clampPMTU(e.dst, int(e.mtu)))
	}
	switch e.proto {
	case wire.ProtoTCP:
		s.tcpError(now, e)
	}
}

// supported reports whether the stack speaks a's family: IPv4 and IPv6,
// but not IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2), which the
// socket layer turns into IPv4 ones before they get here (the socket
// calls, routes and addresses refuse them with their errors).
func supported(a netip.Addr) bool { return a.Is4() || a.Is6() && !a.Is4In6() }

// etherTypeOf returns the EtherType of an IP packet, by its version.
func etherTypeOf(pkt []byte) wire.EtherType {
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		return wire.EtherTypeIPv6
	}
	return wire.EtherTypeIPv4
}

// ipHeaderLen returns the length of the IP header the stack writes in
// front of a transport payload to dst.
func ipHeaderLen(dst netip.Addr) int {
	if dst.Is4() {
		return wire.IPv4HeaderLen
	}
	return wire.IPv6HeaderLen
}

// writeIPHeader writes into b the IP header of a packet of plen payload
// bytes of protocol proto from src to dst, of dst's family, and returns
// its length (RFC 791 §3.1, df setting IPv4's Don't Fragment; RFC 8200
// §3, with the host's hop limit and flow label 0), ecn the ECN field of
// either family (RFC 3168 §5: what TCP asked for its segment; DSCP 0).
func (s *Stack) writeIPHeader(b []byte, src, dst netip.Addr, proto, ecn uint8, plen int, df bool) int {
	if !dst.Is4() {
		h := wire.IPv6Fields{TrafficClass: ecn & 3, PayloadLen: uint16(plen), NextHeader: proto, HopLimit: s.host.hopLimit, Src: src, Dst: dst}
		return h.Encode(b)
	}
	s.host.ipID++
	h := wire.IPv4Fields{
		TOS:      ecn & 3, // DSCP 0; the ECN field (RFC 3168 §5)
		TotalLen: uint16(wire.IPv4HeaderLen + plen),
		ID:       s.host.ipID,
		DF:       df,
		TTL:      s.host.ttl,
		Protocol: proto,
		Src:      src,
		Dst:      dst,
	}
	return h.Encode(b)
}

// sendPacket sends a transport's payload of plen bytes, which the caller
// wrote into buf at ipHeaderLen(dst), from rt.src to dst along rt: it
// writes the IP header in front and sends the packet (sendIP). It is the
// one output path of the transports' own packets (RSTs, datagrams) and
// ICMP; it reports false if the packet needed fragments it may not have
// (DF set: RFC 791 §3.2).
func (s *Stack) sendPacket(now clock.Instant, rt *route, dst netip.Addr, proto uint8, buf []byte, plen int, df bool) bool {
	hl := ipHeaderLen(dst)
	c := s.host.ctr(dst)
	if dst.Is6() && df && hl+plen > s.pathMTU(now, rt.nic, dst) {
		// IPv6 has no DF bit: the source fragments or not, and TCP's
		// segments are never fragmented (RFC 8200 §5).
		*c.fragFails++
		return false
	}
	s.writeIPHeader(buf, rt.src, dst, proto, 0, plen, df)
	*c.outRequests++
	return s.sendIP(now, rt.nic, rt.nextHop, buf[:hl+plen])
}

// sendIP sends the IP packet pkt (header included) out of NIC n toward
// nextHop, resolving the link address; it copies pkt. Packets to our own
// addresses loop back; packets larger than the MTU leave in fragments,
// or not at all (false) if they may not be fragmented.
func (s *Stack) sendIP(now clock.Instant, n *nic, nextHop netip.Addr, pkt []byte) bool {
	if s.isLocal(nextHop) {
		s.loopback(pkt)
		return true
	}
	v6 := etherTypeOf(pkt) == wire.EtherTypeIPv6
	mtu := n.cfg.MTU
	if v6 {
		mtu = n.mtu6()
	}
	if s.host.pmtu.gen != 0 {
		// A path MTU was learned for some destination: is it this
		// packet's (RFC 1191, RFC 8201)?
		if m, ok := s.host.pmtu.lookup(now, pktDst(pkt)); ok && m < mtu {
			mtu = m
		}
	}
	if v6 {
		if len(pkt) > mtu {
			// RFC 8200 §4.5: the source fragments what does not fit
			// the path (RFC 8201 §4).
			return s.sendFragments6(now, n, nextHop, pkt, mtu)
		}
		if nextHop.IsMulticast() {
			s.host.net.Ip6OutMcastPkts++
		}
	} else if len(pkt) > mtu {
		// A datagram, or an echo reply to a reassembled request: larger
		// than the link (or the path) takes, so it must leave in
		// fragments.
		return s.sendFragments(now, n, nextHop, pkt, mtu)
	}
	if n.cfg.Medium != link.Ethernet {
		buf := s.getBuf(len(pkt))
		copy(buf, pkt)
		s.pushCtl(n.id, buf, len(pkt))
		return true
	}
	mac, ok := s.resolve(now, n, nextHop, pkt)
	if !ok {
		return true // queued until the neighbour resolves
	}
	buf, hdr := s.ctlFrame(n, mac, etherTypeOf(pkt))
	copy(buf[hdr:], pkt)
	s.pushCtl(n.id, buf, hdr+len(pkt))
	return true
}

// sendFragments sends the IP packet pkt, larger than n's MTU, in
// fragments that fit it (RFC 791 §3.2, "Fragmentation"). It reports false,
// sending nothing and counting FragFails, if pkt may not be fragmented (DF
// set: RFC 791 §3.2).
func (s *Stack) sendFragments(now clock.Instant, n *nic, nextHop netip.Addr, pkt []byte, mtu int) bool {
	st := &s.host.net
	if err := s.host.frag.Reset(pkt, mtu); err != nil {
		st.FragFails++
		return false
	}
	fb := s.getBuf(mtu)
	defer s.putBuf(fb)
	for {
		k := s.host.frag.Next(fb)
		if k == 0 {
			break
		}
		st.FragCreates++
		s.sendIP(now, n, nextHop, fb[:k])
	}
	st.FragOKs++
	return true
}

// pktDst returns the destination address of an IP packet of either
// version.
func pktDst(pkt []byte) netip.Addr {
	if pkt[0]>>4 == 6 {
		return netip.AddrFrom16([16]byte(pkt[24:40]))
	}
	return netip.AddrFrom4([4]byte(pkt[16:20]))
}

// resolve returns nextHop's MAC on n, or queues a copy of pkt (if not nil)
// until ARP or NDP resolves it. Broadcast and multicast destinations need
// no resolution (RFC 2464 §7 maps IPv6 multicast to Ethernet).
func (s *Stack) resolve(now clock.Instant, n *nic, nextHop netip.Addr, pkt []byte) (wire.MAC, bool) {
	if isBroadcast(n, nextHop) {
		return wire.BroadcastMAC, true
	}
	if nextHop.Is6() && nextHop.IsMulticast() {
		return wire.MulticastMAC(nextHop)
	}
	s.nlock()
	mac, ok := s.host.neigh.Resolve(now, n.id, nextHop, pkt)
	s.nunlock()
	return mac, ok
}
