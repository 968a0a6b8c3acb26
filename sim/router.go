package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/wire"
)

// RouterConfig configures a router node (AddRouter).
type RouterConfig struct {
	// DropICMP makes the router send none of its ICMP errors (time
	// exceeded, destination unreachable, fragmentation needed, packet
	// too big): they are counted in RouterStats.ICMPDropped instead, as
	// when a firewall on the path filters them — a path MTU black hole
	// (RFC 2923 §2.1).
	DropICMP bool
	// Neighbor configures its ARP and NDP resolution (the defaults are
	// Linux's).
	Neighbor network.NeighborConfig
}

// RouterStats count what a router did with the packets it received.
type RouterStats struct {
	Forwarded    uint64 // packets sent on toward their destination
	Fragmented   uint64 // IPv4 packets forwarded in fragments (RFC 791 §3.2)
	TTLExceeded  uint64 // packets whose TTL or hop limit ran out (RFC 1812 §5.3.1, RFC 8200 §3)
	NoRoute      uint64 // packets for a destination no route covers
	TooBig       uint64 // packets larger than the next link's MTU that could not be fragmented (IPv4 with DF, every IPv6 packet)
	ICMPSent     uint64 // ICMP and ICMPv6 errors sent
	ICMPDropped  uint64 // errors not sent: RouterConfig.DropICMP
	Local        uint64 // packets for the router itself (echo requests answered, NDP, ARP)
	Bad          uint64 // packets dropped as malformed (header checksum, lengths)
	Unresolved   uint64 // packets dropped because the next hop did not answer ARP or NDP
	LinkFiltered uint64 // frames to another MAC or an unknown multicast group
}

// routerPort is a port of a router: its MAC, its addresses (each
// prefix on-link) and the MTU of its link.
type routerPort struct {
	p     *Port
	addrs []netip.Prefix
	mtu   int
}

// routerRoute is a route beyond the router's links.
type routerRoute struct {
	dst  netip.Prefix
	gw   netip.Addr
	port int
}

// Router is a node that forwards IPv4 and IPv6 packets between its ports
// as a router does (RFC 1812 §5; RFC 8200): by the longest matching
// route (the ports' prefixes and routes added with AddRoute),
// decrementing the TTL or hop limit, resolving next hops with ARP and
// NDP (network.Neighbors, as the stacks do), answering ARP and neighbour
// solicitations for its own addresses (as a router: the R flag), and
// echo requests to them. It sends the errors a router sends: time
// exceeded (TTL or hop limit), destination unreachable (no route: net
// unreachable, ICMPv6 no route; the next hop does not resolve: host or
// address unreachable), fragmentation needed with the next link's MTU
// (RFC 1191) for an IPv4 packet with DF too big for it, and packet too
// big (RFC 8201) for every IPv6 packet too big for it; IPv4 without DF
// is fragmented (RFC 791). With RouterConfig.DropICMP it sends none of
// those errors. It forwards in no time; the links add their own.
//
// A Router is what the path MTU tests need: links of different MTUs
// behind it, and ICMP that can be lost. It keeps to RFC 1812's host-side
// rules for the errors (none about an error, a broadcast, a non-first
// fragment: network.ErrorAllowed, network.ErrorAllowed6) and has no rate
// limit of its own.
type Router struct {
	node   *Node
	cfg    RouterConfig
	ports  []routerPort
	routes []routerRoute
	neigh  *network.Neighbors
	nst    network.Stats
	frag   network.Fragmenter
	buf    []byte
	ipID   uint16
	// Stats are the router's counters.
	Stats RouterStats
}

// AddRouter adds a router node. Give it ports with Router.AddPort and
// link them; routes to prefixes beyond its links with AddRoute.
func (n *Network) AddRouter(name string, cfg RouterConfig) *Router {
	nd := n.addNode(name, kindRouter)
	r := &Router{node: nd, cfg: cfg, buf: make([]byte, 65536+64)}
	r.neigh = network.NewNeighbors(cfg.Neighbor, &r.nst)
	nd.router = r
	return r
}

// Node returns the router's node.
func (r *Router) Node() *Node { return r.node }

// AddPort adds a port with the automatic MAC, an MTU (0: 1500) and
// addresses ("10.0.1.254/24", "2001:db8:1::fe/64"), whose prefixes are
// on-link, and returns it.
func (r *Router) AddPort(mtu int, addrs ...string) *Port {
	nd := r.node
	if mtu == 0 {
		mtu = 1500
	}
	p := &Port{Node: nd, idx: len(nd.ports), MAC: MAC(nd.idx, len(nd.ports)+1)}
	for _, a := range addrs {
		p.Addrs = append(p.Addrs, netip.MustParsePrefix(a))
	}
	nd.ports = append(nd.ports, p)
	r.ports = append(r.ports, routerPort{p: p, addrs: p.Addrs, mtu: mtu})
	return p
}

// AddRoute routes dst through gateway gw, reached on port p.
func (r *Router) AddRoute(dst netip.Prefix, gw netip.Addr, p *Port) {
	r.routes = append(r.routes, routerRoute{dst: dst.Masked(), gw: gw, port: p.idx})
}

// SetDropICMP turns the dropping of the router's ICMP errors on or off.
func (r *Router) SetDropICMP(drop bool) { r.cfg.DropICMP = drop }

// Neighbors returns the router's neighbour cache.
func (r *Router) Neighbors() []network.NeighborEntry { return r.neigh.Entries() }

// nicOf is the neighbour cache's NIC ID of port i.
func nicOf(i int) network.NICID { return network.NICID(i + 1) }

// route returns the port and next hop toward dst: the longest matching
// prefix among the ports' and the routes', or false.
func (r *Router) route(dst netip.Addr) (port int, next netip.Addr, ok bool) {
	best := -1
	for i, rp := range r.ports {
		for _, p := range rp.addrs {
			if p.Contains(dst) && p.Bits() > best {
				best, port, next, ok = p.Bits(), i, dst, true
			}
		}
	}
	for _, rt := range r.routes {
		if rt.dst.Contains(dst) && rt.dst.Bits() > best {
			best, port, next, ok = rt.dst.Bits(), rt.port, rt.gw, true
		}
	}
	return port, next, ok
}

// own reports whether a is one of the router's addresses, and on which
// port.
func (r *Router) own(a netip.Addr) (int, bool) {
	for i, rp := range r.ports {
		for _, p := range rp.addrs {
			if p.Addr() == a {
				return i, true
			}
		}
	}
	return 0, false
}

// addrOn returns the router's address of a's family on port i (the
// link-local one for an IPv6 link-local a), or the zero Addr.
func (r *Router) addrOn(i int, a netip.Addr) netip.Addr {
	if a.Is6() && a.IsLinkLocalUnicast() {
		return wire.LinkLocalFromMAC(r.ports[i].p.MAC)
	}
	for _, p := range r.ports[i].addrs {
		if p.Addr().Is4() == a.Is4() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// receive handles a frame that arrived on port p.
func (r *Router) receive(now clock.Instant, p *Port, frame []byte, meta lineMeta) {
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		r.Stats.Bad++
		return
	}
	dst := eth.Dst()
	if dst != p.MAC && !dst.IsBroadcast() && !dst.IsMulticast() {
		r.Stats.LinkFiltered++
		return
	}
	switch eth.EtherType() {
	case wire.EtherTypeARP:
		r.arp(now, p, eth.Payload())
	case wire.EtherTypeIPv4:
		if dst == p.MAC {
			r.ipv4(now, p, eth.Payload(), meta)
		}
	case wire.EtherTypeIPv6:
		r.ipv6(now, p, eth.Payload(), dst != p.MAC, meta)
	}
	r.flush(now)
}

// arp learns senders and answers requests for the port's addresses.
func (r *Router) arp(now clock.Instant, p *Port, b []byte) {
	a, err := wire.ParseARP(b)
	if err != nil {
		r.Stats.Bad++
		return
	}
	var f wire.ARPFields
	f.Decode(a)
	mine := false
	for _, pr := range r.ports[p.idx].addrs {
		mine = mine || pr.Addr() == f.TargetIP
	}
	if !f.SenderIP.IsUnspecified() {
		r.neigh.Learn(now, nicOf(p.idx), f.SenderIP, f.SenderMAC, mine)
	}
	if f.Op != wire.ARPRequest || !mine {
		return
	}
	r.Stats.Local++
	reply := wire.ARPFields{Op: wire.ARPReply, SenderMAC: p.MAC, SenderIP: f.TargetIP, TargetMAC: f.SenderMAC, TargetIP: f.SenderIP}
	out := r.buf[:wire.EthernetHeaderLen+wire.ARPLen]
	(&wire.EthernetFields{Dst: f.SenderMAC, Src: p.MAC, EtherType: wire.EtherTypeARP}).Encode(out)
	reply.Encode(out[wire.EthernetHeaderLen:])
	p.send(out, lineMeta{})
}

// ipv4 forwards an IPv4 packet, or answers an echo request to the
// router.
func (r *Router) ipv4(now clock.Instant, in *Port, b []byte, meta lineMeta) {
	ip, err := wire.ParseIPv4(b)
	if err != nil || !ip.ChecksumValid() {
		r.Stats.Bad++
		return
	}
	pkt := ip.Packet()
	if _, ok := r.own(ip.Dst()); ok {
		r.Stats.Local++
		if ip.Protocol() == wire.ProtoICMP && !ip.IsFragment() {
			if m, err := wire.ParseICMPv4(ip.Payload()); err == nil && m.Type() == wire.ICMPv4EchoRequest && m.ChecksumValid() {
				reply := make([]byte, len(m))
				network.EchoReply(reply, m)
				r.send4(now, ip.Dst(), ip.Src(), wire.ProtoICMP, reply)
			}
		}
		return
	}
	if ip.TTL() <= 1 {
		r.Stats.TTLExceeded++
		r.error4(now, pkt, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, 0, in.idx)
		return
	}
	port, next, ok := r.route(ip.Dst())
	if !ok {
		r.Stats.NoRoute++
		r.error4(now, pkt, wire.ICMPv4DestUnreachable, wire.ICMPv4NetUnreachable, 0, in.idx)
		return
	}
	// RFC 1812 §5.3.1: the TTL goes down by one, the checksum by RFC
	// 1624.
	fwd := r.buf[wire.EthernetHeaderLen : wire.EthernetHeaderLen+len(pkt)]
	copy(fwd, pkt)
	old := binary.BigEndian.Uint16(fwd[8:])
	fwd[8]--
	c := wire.ChecksumUpdate16(binary.BigEndian.Uint16(fwd[10:]), old, binary.BigEndian.Uint16(fwd[8:]))
	binary.BigEndian.PutUint16(fwd[10:], c)
	mtu := r.ports[port].mtu
	if len(fwd) <= mtu {
		r.Stats.Forwarded++
		r.output(now, port, next, fwd, meta)
		return
	}
	if wire.IPv4(fwd).DF() {
		// RFC 1191 §4: fragmentation needed, with the next link's MTU.
		r.Stats.TooBig++
		r.error4(now, pkt, wire.ICMPv4DestUnreachable, wire.ICMPv4FragmentationNeeded, uint16(mtu), in.idx)
		return
	}
	if err := r.frag.Reset(slicesClone(fwd), mtu); err != nil {
		r.Stats.TooBig++
		return
	}
	r.Stats.Forwarded++
	r.Stats.Fragmented++
	fb := make([]byte, mtu)
	for k := r.frag.Next(fb); k > 0; k = r.frag.Next(fb) {
		r.output(now, port, next, fb[:k], lineMeta{})
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

// ipv6 forwards an IPv6 packet, or handles NDP and echo requests to the
// router.
func (r *Router) ipv6(now clock.Instant, in *Port, b []byte, linkMcast bool, meta lineMeta) {
	ip, err := wire.ParseIPv6(b)
	if err != nil {
		r.Stats.Bad++
		return
	}
	pkt := ip.Packet()
	dst := ip.Dst()
	ll := wire.LinkLocalFromMAC(in.MAC)
	_, mine := r.own(dst)
	if dst.IsMulticast() || mine || dst == ll {
		r.local6(now, in, ip)
		return
	}
	if linkMcast {
		r.Stats.LinkFiltered++
		return
	}
	if dst.IsLinkLocalUnicast() || ip.Src().IsLinkLocalUnicast() {
		// RFC 4291 §2.5.6: link-local packets are not forwarded; a
		// router sends "beyond scope" (RFC 4443 §3.1) for a link-local
		// source, and drops the rest.
		if ip.Src().IsLinkLocalUnicast() && !dst.IsLinkLocalUnicast() {
			r.error6(now, pkt, wire.ICMPv6DestUnreachable, wire.ICMPv6BeyondScope, 0, in.idx, false)
		}
		r.Stats.NoRoute++
		return
	}
	if ip.HopLimit() <= 1 {
		r.Stats.TTLExceeded++
		r.error6(now, pkt, wire.ICMPv6TimeExceeded, wire.ICMPv6HopLimitExceeded, 0, in.idx, false)
		return
	}
	port, next, ok := r.route(dst)
	if !ok {
		r.Stats.NoRoute++
		r.error6(now, pkt, wire.ICMPv6DestUnreachable, wire.ICMPv6NoRoute, 0, in.idx, false)
		return
	}
	if mtu := r.ports[port].mtu; len(pkt) > mtu {
		// RFC 8200 §5, RFC 4443 §3.2: a router never fragments IPv6.
		r.Stats.TooBig++
		r.error6(now, pkt, wire.ICMPv6PacketTooBig, 0, uint32(mtu), in.idx, true)
		return
	}
	fwd := r.buf[wire.EthernetHeaderLen : wire.EthernetHeaderLen+len(pkt)]
	copy(fwd, pkt)
	fwd[7]--
	r.Stats.Forwarded++
	r.output(now, port, next, fwd, meta)
}

// local6 handles an IPv6 packet to the router or a multicast group:
// neighbour solicitations for its addresses, advertisements, and echo
// requests.
func (r *Router) local6(now clock.Instant, in *Port, ip wire.IPv6) {
	var c wire.IPv6Chain
	if c.Walk(ip) != nil || c.Fragmented() || c.Proto != wire.ProtoICMPv6 {
		return
	}
	m, err := wire.ParseICMPv6(c.Upper(ip))
	if err != nil || wire.ICMPv6Checksum(m, ip.Src(), ip.Dst()) != 0 {
		r.Stats.Bad++
		return
	}
	nic := nicOf(in.idx)
	switch m.Type() {
	case wire.ICMPv6NeighborSolicit:
		nd, err := wire.ParseNDP(m)
		if err != nil || ip.HopLimit() != 255 {
			return
		}
		var o wire.NDPOptions
		o.Decode(nd.Options())
		t := nd.Target()
		if _, ok := r.own(t); !ok && t != wire.LinkLocalFromMAC(in.MAC) {
			return
		}
		r.Stats.Local++
		if o.HasSourceLinkAddr && !ip.Src().IsUnspecified() {
			r.neigh.LearnNDP(now, nic, ip.Src(), o.SourceLinkAddr, false)
		}
		to, mac := ip.Src(), o.SourceLinkAddr
		if to.IsUnspecified() || !o.HasSourceLinkAddr {
			to = wire.IPv6AllNodes
			mac, _ = wire.MulticastMAC(to)
		}
		var opts wire.NDPOptions
		opts.HasTargetLinkAddr, opts.TargetLinkAddr = true, in.MAC
		f := wire.NDPFields{Type: wire.ICMPv6NeighborAdvert, Target: t, Router: true, Solicited: !to.IsMulticast(), Override: true,
			Options: make([]byte, opts.Len())}
		opts.Encode(f.Options)
		msg := make([]byte, f.Len())
		f.Encode(msg, t, to)
		r.frame6(in.idx, mac, t, to, 255, msg)
	case wire.ICMPv6NeighborAdvert:
		nd, err := wire.ParseNDP(m)
		if err != nil || ip.HopLimit() != 255 {
			return
		}
		var o wire.NDPOptions
		o.Decode(nd.Options())
		r.neigh.LearnAdvert(now, nic, nd.Target(), network.Advert{MAC: o.TargetLinkAddr, HasMAC: o.HasTargetLinkAddr,
			Router: nd.Router(), Solicited: nd.Solicited(), Override: nd.Override()})
	case wire.ICMPv6EchoRequest:
		if ip.Dst().IsMulticast() {
			return
		}
		r.Stats.Local++
		reply := make([]byte, len(m))
		network.EchoReply6(reply, m, ip.Dst(), ip.Src())
		r.send6(now, in.idx, ip.Dst(), ip.Src(), reply)
	}
}

// output sends the IP packet pkt out of port i toward next, resolving
// its link-layer address (queued until it resolves).
func (r *Router) output(now clock.Instant, i int, next netip.Addr, pkt []byte, meta lineMeta) {
	mac, ok := r.neigh.Resolve(now, nicOf(i), next, pkt)
	if !ok {
		return
	}
	r.emit(i, mac, pkt, meta)
}

// emit frames pkt to mac on port i.
func (r *Router) emit(i int, mac wire.MAC, pkt []byte, meta lineMeta) {
	et := wire.EtherTypeIPv4
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		et = wire.EtherTypeIPv6
	}
	out := make([]byte, wire.EthernetHeaderLen+len(pkt))
	(&wire.EthernetFields{Dst: mac, Src: r.ports[i].p.MAC, EtherType: et}).Encode(out)
	copy(out[wire.EthernetHeaderLen:], pkt)
	r.ports[i].p.send(out, meta)
}

// frame6 sends an ICMPv6 message from src to dst (link-layer mac) with
// hop limit hop on port i.
func (r *Router) frame6(i int, mac wire.MAC, src, dst netip.Addr, hop uint8, msg []byte) {
	pkt := make([]byte, wire.IPv6HeaderLen+len(msg))
	(&wire.IPv6Fields{PayloadLen: uint16(len(msg)), NextHeader: wire.ProtoICMPv6, HopLimit: hop, Src: src, Dst: dst}).Encode(pkt)
	copy(pkt[wire.IPv6HeaderLen:], msg)
	r.emit(i, mac, pkt, lineMeta{})
}

// send4 sends an IPv4 packet the router makes (an echo reply, an error)
// from src to dst.
func (r *Router) send4(now clock.Instant, src, dst netip.Addr, proto uint8, payload []byte) {
	port, next, ok := r.route(dst)
	if !ok {
		return
	}
	r.ipID++
	pkt := make([]byte, wire.IPv4HeaderLen+len(payload))
	(&wire.IPv4Fields{TotalLen: uint16(len(pkt)), ID: r.ipID, TTL: 64, Protocol: proto, Src: src, Dst: dst}).Encode(pkt)
	copy(pkt[wire.IPv4HeaderLen:], payload)
	r.output(now, port, next, pkt, lineMeta{})
}

// send6 sends an ICMPv6 message the router makes, through the port it
// routes dst to (port in for a link-local destination).
func (r *Router) send6(now clock.Instant, in int, src, dst netip.Addr, msg []byte) {
	port, next := in, dst
	if !dst.IsLinkLocalUnicast() {
		var ok bool
		if port, next, ok = r.route(dst); !ok {
			return
		}
	}
	pkt := make([]byte, wire.IPv6HeaderLen+len(msg))
	(&wire.IPv6Fields{PayloadLen: uint16(len(msg)), NextHeader: wire.ProtoICMPv6, HopLimit: 64, Src: src, Dst: dst}).Encode(pkt)
	copy(pkt[wire.IPv6HeaderLen:], msg)
	r.output(now, port, next, pkt, lineMeta{})
}

// error4 sends an ICMPv4 error about orig, which arrived on port in,
// from the router's address there (RFC 1812 §4.3.2.4), unless
// DropICMP.
func (r *Router) error4(now clock.Instant, orig []byte, typ, code uint8, mtu uint16, in int) {
	ip := wire.IPv4(orig)
	if !network.ErrorAllowed(ip, false) {
		return
	}
	if r.cfg.DropICMP {
		r.Stats.ICMPDropped++
		return
	}
	src := r.addrOn(in, ip.Src())
	if !src.IsValid() {
		return
	}
	m := make([]byte, wire.ICMPv4HeaderLen+network.ICMPErrorQuoteMax)
	k := network.ErrorMessage(m, typ, code, mtu, orig)
	r.Stats.ICMPSent++
	r.send4(now, src, ip.Src(), wire.ProtoICMP, m[:k])
}

// error6 sends an ICMPv6 error about orig, which arrived on port in
// (RFC 4443 §2.4 (e) applies; exception marks a packet too big), unless
// DropICMP.
func (r *Router) error6(now clock.Instant, orig []byte, typ, code uint8, word uint32, in int, exception bool) {
	if !network.ErrorAllowed6(orig, false, exception) {
		return
	}
	if r.cfg.DropICMP {
		r.Stats.ICMPDropped++
		return
	}
	to := wire.IPv6(orig).Src()
	src := r.addrOn(in, to)
	if !src.IsValid() {
		return
	}
	m := make([]byte, wire.ICMPv6HeaderLen+wire.ICMPv6ErrorQuoteMax)
	k := network.ErrorMessage6(m, typ, code, word, orig, src, to)
	r.Stats.ICMPSent++
	r.send6(now, in, src, to, m[:k])
}

// flush sends what the neighbour cache has ready: packets whose next hop
// resolved, and ARP requests and neighbour solicitations.
func (r *Router) flush(now clock.Instant) {
	for {
		nic, mac, pkt, ok := r.neigh.PollReady()
		if !ok {
			break
		}
		r.emit(int(nic)-1, mac, pkt, lineMeta{})
	}
	for {
		sol, ok := r.neigh.PollSolicit()
		if !ok {
			break
		}
		i := int(sol.NIC) - 1
		p := r.ports[i].p
		if sol.IP.Is4() {
			req := wire.ARPFields{Op: wire.ARPRequest, SenderMAC: p.MAC, SenderIP: r.addrOn(i, sol.IP), TargetIP: sol.IP}
			out := make([]byte, wire.EthernetHeaderLen+wire.ARPLen)
			(&wire.EthernetFields{Dst: wire.BroadcastMAC, Src: p.MAC, EtherType: wire.EtherTypeARP}).Encode(out)
			req.Encode(out[wire.EthernetHeaderLen:])
			p.send(out, lineMeta{})
			continue
		}
		dst, mac := sol.IP, sol.MAC
		if !sol.Unicast {
			dst = wire.SolicitedNodeMulticast(sol.IP)
			mac, _ = wire.MulticastMAC(dst)
		}
		src := r.addrOn(i, sol.IP)
		var o wire.NDPOptions
		o.HasSourceLinkAddr, o.SourceLinkAddr = true, p.MAC
		f := wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: sol.IP, Options: make([]byte, o.Len())}
		o.Encode(f.Options)
		msg := make([]byte, f.Len())
		f.Encode(msg, src, dst)
		r.frame6(i, mac, src, dst, 255, msg)
	}
	for {
		if _, _, ok := r.neigh.PollFailed(); !ok {
			break
		}
		r.Stats.Unresolved++
	}
}

// nextDeadline returns when the router's timers (its neighbour cache's)
// next need it.
func (r *Router) nextDeadline() clock.Instant { return r.neigh.NextDeadline() }

// handleTimeout runs the router's timers due at now.
func (r *Router) handleTimeout(now clock.Instant) {
	r.neigh.HandleTimeout(now)
	r.flush(now)
}

// String names the router.
func (r *Router) String() string { return fmt.Sprintf("router %s", r.node.Name) }
