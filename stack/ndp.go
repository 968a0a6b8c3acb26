package stack

import (
	"bytes"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/wire"
)

// handleNDP takes a Neighbor Discovery message (RFC 4861): it checks
// what every NDP message must pass (§6.1, §7.1: a hop limit of 255 — it
// was not forwarded —, code 0, options well formed) and dispatches.
// Hosts ignore router solicitations (§6.2.6 is for routers) and, in
// ustack, redirects.
func (s *Stack) handleNDP(now clock.Instant, p *ipRepr, m wire.ICMPv6) {
	st := &s.host.net
	switch m.Type() {
	case wire.ICMPv6NeighborSolicit:
		st.Icmp6InNeighborSolicits++
	case wire.ICMPv6NeighborAdvert:
		st.Icmp6InNeighborAdvertisements++
	case wire.ICMPv6RouterSolicit:
		st.Icmp6InRouterSolicits++
	case wire.ICMPv6RouterAdvert:
		st.Icmp6InRouterAdvertisements++
	case wire.ICMPv6Redirect:
		st.Icmp6InRedirects++
	}
	nd, err := wire.ParseNDP(m)
	if err != nil || p.ttl != 255 || p.nic.v6 == nil {
		st.Icmp6InErrors++
		return
	}
	var o wire.NDPOptions
	_ = o.Decode(nd.Options()) // ParseNDP checked them
	if p.nic.cfg.Medium != link.Ethernet {
		// A link without link-layer addresses: options naming them mean
		// nothing here.
		o.HasSourceLinkAddr, o.HasTargetLinkAddr = false, false
	}
	switch nd.Type() {
	case wire.ICMPv6NeighborSolicit:
		s.handleNS(now, p, nd, &o)
	case wire.ICMPv6NeighborAdvert:
		s.handleNA(now, p, nd, &o)
	case wire.ICMPv6RouterAdvert:
		s.handleRA(now, p, nd, &o)
	}
}

// handleNS answers a neighbour solicitation for one of our addresses
// (RFC 4861 §7.1.1 validity, §7.2.3 and §7.2.4), or, for a tentative
// address, is duplicate address detection's evidence (RFC 4862 §5.4.3)
// — unless its nonce is ours, looped back (RFC 7527).
func (s *Stack) handleNS(now clock.Instant, p *ipRepr, m wire.NDP, o *wire.NDPOptions) {
	st := &s.host.net
	n := p.nic
	t := m.Target()
	unspec := p.src.IsUnspecified()
	if t.IsMulticast() || unspec && (!isSolicitedNode(p.dst) || o.HasSourceLinkAddr) {
		st.Icmp6InErrors++
		return
	}
	x := n.v6.find(t)
	if x == nil {
		return // not ours: ustack proxies no address
	}
	switch x.state {
	case addrTentative:
		if !unspec {
			return // someone resolving it: not a duplicate (§5.4.3)
		}
		if len(o.Nonce) >= len(x.nonce) && bytes.Equal(o.Nonce[:len(x.nonce)], x.nonce[:]) {
			st.Ip6DADLoopedBack++
			return
		}
		s.dadFailed(n, x)
		return
	case addrDuplicate:
		return
	}
	if !unspec && o.HasSourceLinkAddr {
		s.nlock()
		s.host.neigh.LearnNDP(now, n.id, p.src, o.SourceLinkAddr, false)
		s.nunlock()
	}
	if unspec {
		// Another node's DAD for our address: tell everyone (§7.2.4).
		s.sendNA(now, n, t, wire.IPv6AllNodes, false)
		return
	}
	s.sendNA(now, n, t, p.src, true)
}

// isSolicitedNode reports whether a is a solicited-node multicast
// address (ff02::1:ff00:0/104).
func isSolicitedNode(a netip.Addr) bool {
	b := a.As16()
	return a.Is6() && b[0] == 0xff && b[1] == 0x02 && b[11] == 0x01 && b[12] == 0xff &&
		b[2]|b[3]|b[4]|b[5]|b[6]|b[7]|b[8]|b[9]|b[10] == 0
}

// handleNA takes a neighbour advertisement (RFC 4861 §7.1.2 validity,
// §7.2.5): it updates the neighbour cache, or, for a tentative address
// of ours, is DAD's evidence of a duplicate (RFC 4862 §5.4.4).
func (s *Stack) handleNA(now clock.Instant, p *ipRepr, m wire.NDP, o *wire.NDPOptions) {
	st := &s.host.net
	n := p.nic
	t := m.Target()
	if t.IsMulticast() || p.dst.IsMulticast() && m.Solicited() {
		st.Icmp6InErrors++
		return
	}
	if x := n.v6.find(t); x != nil {
		if x.state == addrTentative {
			s.dadFailed(n, x)
		}
		return // another node claims an address of ours: nothing to learn
	}
	a := network.Advert{MAC: o.TargetLinkAddr, HasMAC: o.HasTargetLinkAddr, Router: m.Router(), Solicited: m.Solicited(), Override: m.Override()}
	s.nlock()
	wasRouter := s.host.neigh.LearnAdvert(now, n.id, t, a)
	s.nunlock()
	if wasRouter && !m.Router() {
		s.removeRouter(n, t)
		s.rearm6()
	}
}

// handleMLD takes an MLD message: queries are answered (RFC 3810 §6.2,
// after §5.1.14's checks: a link-local source, hop limit 1); other
// listeners' reports are only counted.
func (s *Stack) handleMLD(now clock.Instant, p *ipRepr, m wire.ICMPv6) {
	st := &s.host.net
	switch m.Type() {
	case wire.ICMPv6MLDQuery:
		st.Icmp6InGroupMembQueries++
	case wire.ICMPv6MLDv1Report:
		st.Icmp6InGroupMembResponses++
		return
	case wire.ICMPv6MLDv1Done:
		st.Icmp6InGroupMembReductions++
		return
	case wire.ICMPv6MLDv2Report:
		st.Icmp6InMLDv2Reports++
		return
	}
	q, err := wire.ParseMLD(m)
	if err != nil || !p.src.IsLinkLocalUnicast() || p.ttl != 1 {
		st.Icmp6InErrors++
		return
	}
	s.host.mld.HandleQuery(now, p.nic.id, q)
}

// mldHopByHop is the hop-by-hop header of MLD messages (RFC 3810 §5):
// next header ICMPv6, a Router Alert with value 0 (RFC 2711), and a PadN
// of two bytes.
var mldHopByHop = [8]byte{wire.ProtoICMPv6, 0, wire.IPv6OptRouterAlert, 2, 0, 0, wire.IPv6OptPadN, 0}

// frame6 returns a control frame for an IPv6 packet on n to dstMAC, the
// link header written, and the offset of the IPv6 header.
func (s *Stack) frame6(n *nic, dstMAC wire.MAC) ([]byte, int) {
	return s.ctlFrame(n, dstMAC, wire.EtherTypeIPv6)
}

// push6 writes the IPv6 header (and, for MLD, the hop-by-hop header) of
// an ICMPv6 message of l bytes the caller wrote behind them in buf, and
// queues the frame. The message's checksum is the caller's.
func (s *Stack) push6(n *nic, buf []byte, hdr int, src, dst netip.Addr, hop uint8, hbh bool, l int) {
	st := &s.host.net
	ext := 0
	nh := uint8(wire.ProtoICMPv6)
	if hbh {
		ext = len(mldHopByHop)
		nh = wire.ProtoHopByHop
		copy(buf[hdr+wire.IPv6HeaderLen:], mldHopByHop[:])
	}
	f := wire.IPv6Fields{PayloadLen: uint16(ext + l), NextHeader: nh, HopLimit: hop, Src: src, Dst: dst}
	f.Encode(buf[hdr:])
	st.Ip6OutRequests++
	if dst.IsMulticast() {
		st.Ip6OutMcastPkts++
	}
	st.Icmp6OutMsgs++
	s.pushCtl(n.id, buf, hdr+wire.IPv6HeaderLen+ext+l)
}

// sendNS sends a neighbour solicitation for target from src to dst
// (dstMAC on the link): a resolution's (to target's solicited-node
// group, or unicast to probe it, RFC 4861 §7.2.2, §7.3.3) with our
// link-layer address, or DAD's (from ::, with a nonce, RFC 4862 §5.4.2,
// RFC 7527).
func (s *Stack) sendNS(n *nic, src, target, dst netip.Addr, dstMAC wire.MAC, nonce []byte) {
	buf, hdr := s.frame6(n, dstMAC)
	at := hdr + wire.IPv6HeaderLen
	var o wire.NDPOptions
	if !src.IsUnspecified() && n.cfg.Medium == link.Ethernet {
		o.HasSourceLinkAddr, o.SourceLinkAddr = true, n.cfg.MAC
	}
	o.Nonce = nonce
	ol := o.Encode(buf[at+wire.NDPNeighborSolicitLen:])
	f := wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: target, Options: buf[at+wire.NDPNeighborSolicitLen : at+wire.NDPNeighborSolicitLen+ol]}
	l := f.Encode(buf[at:], src, dst)
	s.host.net.Icmp6OutNeighborSolicits++
	s.push6(n, buf, hdr, src, dst, 255, false, l)
}

// sendNA answers a solicitation for our address target (RFC 4861
// §7.2.4): to its sender (solicited) or, for DAD's, to all nodes; with
// the override flag (not an anycast address) and our link-layer address.
func (s *Stack) sendNA(now clock.Instant, n *nic, target, dst netip.Addr, solicited bool) {
	var mac wire.MAC
	if dst.IsMulticast() {
		mac, _ = wire.MulticastMAC(dst)
	} else if n.cfg.Medium == link.Ethernet {
		var ok bool
		// The solicitation's source link-layer address was learned just
		// now; without one, resolve (§7.2.4).
		s.nlock()
		mac, ok = s.host.neigh.Resolve(now, n.id, dst, nil)
		s.nunlock()
		if !ok {
			return
		}
	}
	buf, hdr := s.frame6(n, mac)
	at := hdr + wire.IPv6HeaderLen
	var o wire.NDPOptions
	if n.cfg.Medium == link.Ethernet {
		o.HasTargetLinkAddr, o.TargetLinkAddr = true, n.cfg.MAC
	}
	ol := o.Encode(buf[at+wire.NDPNeighborAdvertLen:])
	f := wire.NDPFields{Type: wire.ICMPv6NeighborAdvert, Target: target, Solicited: solicited, Override: true,
		Options: buf[at+wire.NDPNeighborAdvertLen : at+wire.NDPNeighborAdvertLen+ol]}
	l := f.Encode(buf[at:], target, dst)
	s.host.net.Icmp6OutNeighborAdvertisements++
	s.push6(n, buf, hdr, target, dst, 255, false, l)
}

// sendRS sends a router solicitation to all routers (RFC 4861 §6.3.7),
// from the link-local address with our link-layer address, or from ::
// without it while there is none.
func (s *Stack) sendRS(n *nic) {
	mac, _ := wire.MulticastMAC(wire.IPv6AllRouters)
	buf, hdr := s.frame6(n, mac)
	at := hdr + wire.IPv6HeaderLen
	src := n.v6.linkLocal()
	if !src.IsValid() {
		src = netip.IPv6Unspecified()
	}
	var o wire.NDPOptions
	if !src.IsUnspecified() && n.cfg.Medium == link.Ethernet {
		o.HasSourceLinkAddr, o.SourceLinkAddr = true, n.cfg.MAC
	}
	ol := o.Encode(buf[at+wire.NDPRouterSolicitLen:])
	f := wire.NDPFields{Type: wire.ICMPv6RouterSolicit, Options: buf[at+wire.NDPRouterSolicitLen : at+wire.NDPRouterSolicitLen+ol]}
	l := f.Encode(buf[at:], src, wire.IPv6AllRouters)
	s.host.net.Icmp6OutRouterSolicits++
	s.push6(n, buf, hdr, src, wire.IPv6AllRouters, 255, false, l)
}

// flushMLD sends the MLD reports due (RFC 3810 §5.2: to ff02::16, hop
// limit 1, with the Router Alert; MLDv1's to the group, or ff02::2 for a
// done message, RFC 2710 §3), from the link-local address, or from ::
// while it is tentative (RFC 3810 §5.2.13).
func (s *Stack) flushMLD(now clock.Instant) {
	st := &s.host.net
	for {
		r, ok := s.host.mld.PollReport(now)
		if !ok {
			return
		}
		n := s.nic(r.NIC)
		if n == nil || n.v6 == nil || n.cfg.Medium != link.Ethernet {
			continue
		}
		src := n.v6.linkLocal()
		if !src.IsValid() {
			src = netip.IPv6Unspecified()
		}
		dst := wire.IPv6AllMLDv2Routers
		if r.V1 {
			dst = r.Group
			if r.Done {
				dst = wire.IPv6AllRouters
			}
		}
		mac, _ := wire.MulticastMAC(dst)
		buf, hdr := s.frame6(n, mac)
		at := hdr + wire.IPv6HeaderLen + len(mldHopByHop)
		var l int
		if r.V1 {
			f := wire.MLDFields{Type: wire.ICMPv6MLDv1Report, Multicast: r.Group}
			if r.Done {
				f.Type = wire.ICMPv6MLDv1Done
				st.Icmp6OutGroupMembReductions++
			} else {
				st.Icmp6OutGroupMembResponses++
			}
			l = f.Encode(buf[at:], src, dst)
		} else {
			f := wire.MLDv2ReportFields{Records: r.Records}
			l = f.Encode(buf[at:], src, dst)
			st.Icmp6OutMLDv2Reports++
		}
		s.push6(n, buf, hdr, src, dst, 1, true, l)
	}
}
