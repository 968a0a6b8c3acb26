package stack

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/siphash"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/wire"
)

// host is the state of the host as a whole, as opposed to that of its
// flows (flows): what every packet consults whatever connection it
// belongs to. With N shards (issue 13) there is one host and N flows,
// each under its shard's lock; the host's mutable parts (neighbours,
// reassembly, the ICMP rate limit, the IP ID) then need a lock of their
// own or an owner, while NICs, addresses and routes change rarely and
// can be read-mostly. docs/ARCHITECTURE.md draws the split.
type host struct {
	nics    []*nic
	local   addrSet // every usable address of every NIC: the local-address check
	routes  network.Table
	neigh   *network.Neighbors
	reasm   *network.Reassembler
	frag    network.Fragmenter
	icmpRL  network.TokenBucket // ICMP and ICMPv6 errors sent (RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f))
	echoFwd *EchoForwarder      // takes echo requests to foreign addresses (forward.go)
	ipID    uint16              // the IPv4 ID of the next packet
	ttl     uint8               // TTL of packets the host sends (Config.TTL)
	link    LinkStats
	net     network.Stats
	c4, c6  ipCounters // the IP counters of each family, in net
	// The path MTU cache (pmtu.go) and its counters.
	pmtu      *pmtuCache
	pmtuStats PMTUStats

	// IPv6 (ip6.go, ndp.go, addrconf.go).
	reasm6   *network.Reassembler
	frag6    network.Fragmenter6
	fragKey6 siphash.Key // fragment identifications (RFC 7739)
	fragID6  uint32
	hopLimit uint8 // hop limit of packets the host sends
	mld      *network.MLDHost
	rng6     *rand.Rand  // DAD delays and nonces, reachable times, TUN interface IDs
	routers  []defRouter // the default router list (RFC 4861 §6.3.6)
	prefixes []raPrefix  // on-link prefixes learned from router advertisements
	v6next   clock.Instant
	// With cores sharing a host (shared6.go): mirror6 marks a core that
	// mirrors the owner's IPv6 configuration instead of running it,
	// v6gen is the version it mirrors, and v6dirty marks the owner's
	// configuration as changed since it was last published.
	mirror6 bool
	v6dirty bool
	v6gen   uint64
}

// nic is a NIC of the host.
type nic struct {
	id    NICID
	cfg   NICConfig
	addrs []netip.Prefix
	// bcast are the directed broadcast addresses of addrs' prefixes
	// (those shorter than /31), kept with them.
	bcast []netip.Addr
	hdr   int // link header length on output
	// tso is the largest IP packet the NIC takes to segment itself
	// (link.CapTSO, with CapTxChecksum): a TCP super-segment up to that
	// size leaves as one frame. 0 when the link cannot segment.
	tso int
	// v6 is the NIC's IPv6 state; nil while it has no IPv6.
	v6 *nicV6
}

// AddNIC adds a NIC and returns its ID. Its addresses' prefixes become
// on-link routes.
func (s *Stack) AddNIC(cfg NICConfig) (NICID, error) {
	if cfg.Medium == 0 {
		cfg.Medium = link.Ethernet
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.MTU < 68 || cfg.MTU > 65535 {
		return 0, fmt.Errorf("stack: MTU %d out of range 68..65535", cfg.MTU)
	}
	if cfg.Medium == link.Ethernet && (cfg.MAC.IsZero() || cfg.MAC.IsMulticast()) {
		return 0, fmt.Errorf("stack: an Ethernet NIC needs a unicast MAC address, not %v", cfg.MAC)
	}
	// Check the addresses before anything is added, so that a failed
	// AddNIC leaves no NIC and no route behind.
	for i, p := range cfg.Addrs {
		if !supported(p.Addr()) || p.Addr().Zone() != "" {
			return 0, fmt.Errorf("stack: %v: %w", p, ErrAFNoSupport)
		}
		for _, q := range cfg.Addrs[:i] {
			if q.Addr() == p.Addr() {
				return 0, fmt.Errorf("stack: address %v: %w", p.Addr(), ErrAddrInUse)
			}
		}
	}
	v6 := cfg.IPv6
	for _, p := range cfg.Addrs {
		v6 = v6 || p.Addr().Is6()
	}
	if v6 && cfg.MTU < wire.IPv6MinMTU {
		// RFC 8200 §5: every link IPv6 runs on carries 1280 bytes.
		return 0, fmt.Errorf("stack: MTU %d below IPv6's minimum %d", cfg.MTU, wire.IPv6MinMTU)
	}
	h := &s.host
	n := &nic{id: NICID(len(h.nics) + 1), cfg: cfg, hdr: cfg.Medium.HeaderLen()}
	if cfg.VLAN != 0 {
		n.hdr += wire.VLANTagLen
	}
	if cfg.Caps.Has(link.CapTSO | link.CapTxChecksum) {
		// A segmenting link takes an IP packet of up to 64 KiB (IPv4's
		// total length; GSO's limit) and needs the checksum left partial
		// for each segment (virtio-net: TSO implies NEEDS_CSUM).
		n.tso = maxIPPacket
	}
	h.nics = append(h.nics, n)
	s.out.maxFr = max(s.out.maxFr, n.hdr+cfg.MTU)
	if n.tso > 0 {
		s.out.maxFr = max(s.out.maxFr, n.hdr+maxIPPacket)
	}
	if cfg.IPv6 {
		s.enable6(n)
	}
	for _, p := range cfg.Addrs {
		if err := s.AddAddress(n.id, p); err != nil {
			return 0, err
		}
	}
	s.publish6()
	return n.id, nil
}

// maxIPPacket is the largest IPv4 packet, header included (RFC 791 §3.1:
// the total length is 16 bits), and the largest TCP super-segment the
// stack builds, as Linux's GSO_MAX_SIZE.
const maxIPPacket = 65535

func (s *Stack) nic(id NICID) *nic {
	if id < 1 || int(id) > len(s.host.nics) {
		return nil
	}
	return s.host.nics[id-1]
}

// MaxFrameLen returns the size a frame buffer passed to PollTransmit must
// have: the largest MTU plus link header over all NICs, or a 64 KiB IP
// packet plus link header if a NIC segments TCP (link.CapTSO).
func (s *Stack) MaxFrameLen() int { return s.out.maxFr }

// AddAddress adds address p (with its prefix length) to a NIC; its prefix
// becomes an on-link route.
func (s *Stack) AddAddress(id NICID, p netip.Prefix) error {
	n := s.nic(id)
	if n == nil {
		return fmt.Errorf("stack: no NIC %d", id)
	}
	if !supported(p.Addr()) || p.Addr().Zone() != "" {
		return fmt.Errorf("stack: %v: %w", p, ErrAFNoSupport)
	}
	for _, q := range n.addrs {
		if q.Addr() == p.Addr() {
			return fmt.Errorf("stack: address %v: %w", p.Addr(), ErrAddrInUse)
		}
	}
	if p.Addr().Is6() {
		if n.cfg.MTU < wire.IPv6MinMTU {
			return fmt.Errorf("stack: MTU %d below IPv6's minimum %d", n.cfg.MTU, wire.IPv6MinMTU)
		}
		s.enable6(n)
		if n.has6(p.Addr()) {
			if s.host.mirror6 {
				return nil // the owner's configuration has it already (shared6.go)
			}
			return fmt.Errorf("stack: address %v: %w", p.Addr(), ErrAddrInUse)
		}
		s.addAddr6(n, p, false, clock.Never, clock.Never)
		s.publish6()
		return nil
	}
	n.addrs = append(n.addrs, p)
	n.setBroadcasts()
	s.host.local.add(p.Addr(), n)
	_ = s.host.routes.Add(network.Route{Dst: p.Masked(), NIC: id})
	return nil
}

// RemoveAddress removes an address from a NIC, and its on-link route if
// no other address of the NIC is in that prefix.
func (s *Stack) RemoveAddress(id NICID, a netip.Addr) error {
	n := s.nic(id)
	if n == nil {
		return fmt.Errorf("stack: no NIC %d", id)
	}
	if a.Is6() && n.v6 != nil {
		for _, x := range n.v6.addrs {
			if x.p.Addr() == a {
				s.removeAddr6(n, x)
				s.publish6()
				return nil
			}
		}
		if s.host.mirror6 && a.Is6() {
			return nil // gone from the owner's configuration already (shared6.go)
		}
	}
	for i, q := range n.addrs {
		if q.Addr() == a {
			n.addrs = append(n.addrs[:i], n.addrs[i+1:]...)
			n.setBroadcasts()
			s.host.local.remove(a, n)
			still := false
			for _, r := range n.addrs {
				still = still || r.Masked() == q.Masked()
			}
			if !still {
				s.host.routes.Remove(q.Masked(), id)
			}
			return nil
		}
	}
	return fmt.Errorf("stack: %v is not on NIC %d: %w", a, id, ErrAddrNotAvail)
}

// Addrs returns the addresses of a NIC: IPv4 first, then IPv6 (the
// link-local one, addresses still tentative or found duplicate, and
// those autoconfigured included; AddrInfo tells their states).
func (s *Stack) Addrs(id NICID) []netip.Prefix {
	n := s.nic(id)
	if n == nil {
		return nil
	}
	out := append([]netip.Prefix(nil), n.addrs...)
	if n.v6 != nil {
		for _, x := range n.v6.addrs {
			out = append(out, x.p)
		}
	}
	return out
}

// AddRoute adds a route to dst through gateway gw (the zero Addr for
// on-link) on a NIC.
func (s *Stack) AddRoute(dst netip.Prefix, gw netip.Addr, id NICID) error {
	if s.nic(id) == nil {
		return fmt.Errorf("stack: no NIC %d", id)
	}
	if gw.IsValid() && !supported(gw) || !supported(dst.Addr()) || gw.IsValid() && gw.Is4() != dst.Addr().Is4() {
		return fmt.Errorf("stack: route %v via %v: %w", dst, gw, ErrAFNoSupport)
	}
	return s.host.routes.Add(network.Route{Dst: dst.Masked(), Gateway: gw.WithZone(""), NIC: id})
}

// RemoveRoute removes the routes to dst on a NIC.
func (s *Stack) RemoveRoute(dst netip.Prefix, id NICID) bool {
	return s.host.routes.Remove(dst.Masked(), id)
}

// Routes returns the routing table.
func (s *Stack) Routes() []network.Route { return s.host.routes.Routes() }

// AddNeighbor adds a permanent neighbour entry (like `ip neigh add ...
// nud permanent`).
func (s *Stack) AddNeighbor(id NICID, ip netip.Addr, mac wire.MAC) {
	s.nlock()
	s.host.neigh.Add(id, ip, mac)
	s.nunlock()
}

// Neighbors returns the neighbour cache.
func (s *Stack) Neighbors() []network.NeighborEntry {
	s.nlock()
	defer s.nunlock()
	return s.host.neigh.Entries()
}

// isLocal reports whether a is one of the stack's addresses.
func (s *Stack) isLocal(a netip.Addr) bool { return s.host.local.lookup(a) != nil }

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

// setBroadcasts recomputes n's directed broadcast addresses.
func (n *nic) setBroadcasts() {
	n.bcast = n.bcast[:0]
	for _, p := range n.addrs {
		if p.Addr().Is4() && p.Bits() < 31 {
			n.bcast = append(n.bcast, lastAddr(p))
		}
	}
}

// limitedBroadcast is 255.255.255.255 (RFC 919, RFC 1122 §3.2.1.3).
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// isBroadcast reports whether a is the limited broadcast or a directed
// broadcast address of one of n's prefixes.
func isBroadcast(n *nic, a netip.Addr) bool {
	if a == limitedBroadcast {
		return true
	}
	for _, b := range n.bcast {
		if a == b {
			return true
		}
	}
	return false
}

// isDirectedBroadcast reports whether a is the broadcast address of a
// prefix of any NIC.
func (s *Stack) isDirectedBroadcast(a netip.Addr) bool {
	for _, n := range s.host.nics {
		if isBroadcast(n, a) {
			return true
		}
	}
	return false
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// route is where a packet to a destination goes: out of nic, to nextHop
// on its link, from src (the source address the stack picks for it). A
// destination that is one of the stack's own addresses routes through
// the NIC holding it with nextHop = src = the destination: the packet
// loops back.
type route struct {
	nic     *nic
	nextHop netip.Addr
	src     netip.Addr
}

// routeTo finds the route to dst (RFC 1122 §3.3.1: the stack's own
// addresses first, then the longest matching prefix). A link-local
// destination (RFC 4291 §2.5.6) has no route: it is on the link its zone
// names (a NIC's name or number, as in "fe80::1%eth0"), or, for the
// answer to a packet, on via, the NIC the packet came in on; without
// either the destination is ambiguous (EINVAL, as Linux's connect to a
// link-local address without a scope). via is nil for traffic the stack
// starts.
func (s *Stack) routeTo(dst netip.Addr, via *nic) (route, error) {
	if !supported(dst) {
		return route{}, ErrAFNoSupport
	}
	zone := dst.Zone()
	dst = dst.WithZone("")
	if linkScoped(dst) {
		n := via
		if zone != "" {
			if n = s.nicByZone(zone); n == nil {
				return route{}, ErrNoDevice
			}
		}
		if n == nil {
			return route{}, ErrInvalid
		}
		if n.v6 == nil {
			return route{}, ErrNetUnreachable
		}
		if ln := s.host.local.lookup(dst); ln == n {
			return route{nic: n, nextHop: dst, src: dst}, nil
		}
		src := srcFor(n, dst, dst)
		if !src.IsValid() {
			return route{}, ErrAddrNotAvail
		}
		return route{nic: n, nextHop: dst, src: src}, nil
	}
	if n := s.host.local.lookup(dst); n != nil {
		return route{nic: n, nextHop: dst, src: dst}, nil
	}
	r, ok := s.host.routes.Lookup(dst)
	if !ok {
		return route{}, ErrNetUnreachable
	}
	n := s.nic(r.NIC)
	if n == nil || len(n.addrs) == 0 && n.v6 == nil {
		return route{}, ErrNetUnreachable
	}
	nextHop := dst
	if r.Gateway.IsValid() {
		nextHop = r.Gateway
	}
	src := srcFor(n, dst, nextHop)
	if !src.IsValid() {
		if dst.Is6() {
			return route{}, ErrAddrNotAvail
		}
		return route{}, ErrNetUnreachable
	}
	return route{nic: n, nextHop: nextHop, src: src}, nil
}

// linkScoped reports whether a is a link-local unicast or multicast
// IPv6 address (or an interface-local multicast one): meaningful on one
// link only, so it names no route (RFC 4291 §2.5.6, §2.7).
func linkScoped(a netip.Addr) bool {
	return a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast())
}

// nicByZone returns the NIC a zone names: its name, or its number.
func (s *Stack) nicByZone(zone string) *nic {
	for _, n := range s.host.nics {
		if n.cfg.Name == zone {
			return n
		}
	}
	if id, err := strconv.Atoi(zone); err == nil {
		return s.nic(NICID(id))
	}
	return nil
}

// zoneOf returns the zone that names n in addresses: its name, or else
// its number.
func zoneOf(n *nic) string {
	if n.cfg.Name != "" {
		return n.cfg.Name
	}
	return strconv.Itoa(int(n.id))
}

// srcFor picks the source address of packets to dst through nextHop out
// of n; it is the one source-address selection: routes and neighbour
// solicitations use it. For IPv4 it is an address of n in nextHop's
// prefix, else n's first IPv4 address (the kernel's preferred source,
// simplified). For IPv6 it is RFC 6724 §5 among n's usable addresses
// (srcFor6).
func srcFor(n *nic, dst, nextHop netip.Addr) netip.Addr {
	if dst.Is6() {
		return srcFor6(n, dst)
	}
	var first netip.Addr
	for _, p := range n.addrs {
		if p.Contains(nextHop) {
			return p.Addr()
		}
		if !first.IsValid() && p.Addr().Is4() == nextHop.Is4() {
			first = p.Addr()
		}
	}
	return first
}

// addrSet is the set of the stack's own addresses, each with the NIC
// that holds it: the local-address check of every packet in and out. A
// host's few addresses are compared in line, which is faster than a hash
// at that size; above addrLinearMax (a forwarder's many, say) a map
// answers, so the check stays O(1).
type addrSet struct {
	list []localAddr
	m    map[netip.Addr]*nic // only when len(list) > addrLinearMax
}

type localAddr struct {
	a netip.Addr
	n *nic
}

// addrLinearMax is the size up to which addrSet scans its list.
const addrLinearMax = 8

// lookup returns the NIC holding a, or nil.
func (s *addrSet) lookup(a netip.Addr) *nic {
	if s.m != nil {
		return s.m[a]
	}
	for i := range s.list {
		if s.list[i].a == a {
			return s.list[i].n
		}
	}
	return nil
}

// add records that n holds a. An address held by several NICs is found
// on the one with the lowest ID, as a scan of the NICs in order finds
// it: entries are kept in NIC order.
func (s *addrSet) add(a netip.Addr, n *nic) {
	i := len(s.list)
	for i > 0 && s.list[i-1].n.id > n.id {
		i--
	}
	s.list = slices.Insert(s.list, i, localAddr{a, n})
	s.index()
}

// remove forgets that n holds a.
func (s *addrSet) remove(a netip.Addr, n *nic) {
	for i, e := range s.list {
		if e.a == a && e.n == n {
			s.list = append(s.list[:i], s.list[i+1:]...)
			break
		}
	}
	s.index()
}

// index rebuilds the map of a large set (or drops it for a small one).
func (s *addrSet) index() {
	if len(s.list) <= addrLinearMax {
		s.m = nil
		return
	}
	s.m = make(map[netip.Addr]*nic, len(s.list))
	for _, e := range s.list {
		if _, dup := s.m[e.a]; !dup {
			s.m[e.a] = e.n
		}
	}
}
