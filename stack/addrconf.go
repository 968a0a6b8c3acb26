package stack

import (
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/wire"
)

// IPv6 address configuration of a NIC: its link-local address (RFC 4862
// §5.3), duplicate address detection of every address (RFC 4862 §5.4,
// with RFC 7527's nonce), router solicitation when the NIC starts (RFC
// 4861 §6.3.7), and what router advertisements teach (RFC 4861 §6.3.4):
// the default router list, on-link prefixes, the hop limit, the MTU,
// NDP's timers, and addresses formed from advertised prefixes (RFC 4862
// §5.5.3).
//
// Timers: every deadline of this file (DAD, lifetimes, solicitations,
// routers, prefixes) is folded into host.v6next by rearm6, which
// NextDeadline reads; timeout6, called by HandleTimeout, runs what is
// due. Work that needs the time but comes from a call that has none
// (AddNIC, AddAddress, RemoveAddress) is left pending with v6next = 0,
// so that the owner's next HandleTimeout does it.

// addrState is an IPv6 address's state (RFC 4862 §2).
type addrState uint8

const (
	addrTentative  addrState = iota // DAD under way: not used, packets to it dropped
	addrPreferred                   // usable
	addrDeprecated                  // usable, avoided for new communication (preferred lifetime over)
	addrDuplicate                   // DAD found it in use elsewhere: never used
)

var addrStateNames = [...]string{"tentative", "preferred", "deprecated", "dadfailed"}

// addr6 is an IPv6 address of a NIC.
type addr6 struct {
	p       netip.Prefix
	state   addrState
	auto    bool // formed from a router's prefix (SLAAC)
	started bool // its solicited-node group joined, DAD scheduled
	// DAD: solicitations still to send, when the next step is due, and
	// the nonce they carry (RFC 7527).
	dadLeft int
	dadAt   clock.Instant
	nonce   [6]byte
	// Lifetimes (clock.Never: infinite), for autoconfigured addresses.
	preferredUntil, validUntil clock.Instant
}

// usable reports whether the address may be used and receives packets.
func (x *addr6) usable() bool { return x.state == addrPreferred || x.state == addrDeprecated }

// nicV6 is a NIC's IPv6 state.
type nicV6 struct {
	addrs   []*addr6
	started bool         // the all-nodes group joined and router solicitation scheduled
	iid     [8]byte      // the interface identifier of its link-local and autoconfigured addresses
	mtu     int          // from a router advertisement's MTU option; 0: the link's
	macs    []wire.MAC   // multicast MACs of the groups joined: frames to them are taken
	leaves  []netip.Addr // groups to leave at the next timeout (RemoveAddress has no time)
	// Router solicitations still to send and when the next one is due.
	rsLeft int
	rsAt   clock.Instant
	// NDP's timers from router advertisements (0: the defaults).
	baseReachable, retrans time.Duration
}

// defRouter is an entry of the default router list (RFC 4861 §6.3.6).
type defRouter struct {
	nic   *nic
	addr  netip.Addr
	until clock.Instant
}

// raPrefix is an on-link prefix learned from a router advertisement.
type raPrefix struct {
	nic   *nic
	p     netip.Prefix
	until clock.Instant
}

// enable6 turns IPv6 on for n: a link-local address (from the MAC, RFC
// 4862 §5.3 and RFC 4291 Appendix A; random for a link without
// addresses, as Linux gives a TUN device), and the rest at the next
// timeout.
func (s *Stack) enable6(n *nic) {
	if n.v6 != nil {
		return
	}
	v := &nicV6{rsAt: clock.Never}
	n.v6 = v
	var ll netip.Addr
	if n.cfg.Medium == link.Ethernet {
		ll = wire.LinkLocalFromMAC(n.cfg.MAC)
	} else {
		var b [16]byte
		b[0], b[1] = 0xfe, 0x80
		for i := 8; i < 16; i++ {
			b[i] = byte(s.host.rng6.Uint32())
		}
		b[8] &^= 0x02 // not a universal identifier (RFC 4291 Appendix A)
		ll = netip.AddrFrom16(b)
	}
	b := ll.As16()
	copy(v.iid[:], b[8:])
	s.setNDPTimes(n)
	s.addAddr6(n, netip.PrefixFrom(ll, 64), false, clock.Never, clock.Never)
}

// has6 reports whether a is one of n's IPv6 addresses, in any state.
func (n *nic) has6(a netip.Addr) bool { return n.v6 != nil && n.v6.find(a) != nil }

// find returns n's address a, or nil.
func (v *nicV6) find(a netip.Addr) *addr6 {
	for _, x := range v.addrs {
		if x.p.Addr() == a {
			return x
		}
	}
	return nil
}

// linkLocal returns n's usable link-local address, or the zero Addr.
func (v *nicV6) linkLocal() netip.Addr {
	for _, x := range v.addrs {
		if x.usable() && x.p.Addr().IsLinkLocalUnicast() {
			return x.p.Addr()
		}
	}
	return netip.Addr{}
}

// dad reports whether addresses of n go through duplicate address
// detection: not with DADTransmits negative, and not on a link without
// link-layer addresses (Linux skips DAD on IFF_NOARP devices such as
// TUN).
func (s *Stack) dad(n *nic) bool { return s.cfg.IPv6.DADTransmits > 0 && n.cfg.Medium == link.Ethernet }

// addAddr6 adds address p to n, tentative until DAD has run (at the next
// timeout), usable at once without DAD. A static address's prefix is an
// on-link route (as Linux's prefix route); an autoconfigured one's is
// on-link only if a router says so (RFC 4861 §6.3.4: the A flag does not
// imply L).
func (s *Stack) addAddr6(n *nic, p netip.Prefix, auto bool, preferred, valid clock.Instant) {
	x := &addr6{p: p, auto: auto, dadAt: clock.Never, preferredUntil: preferred, validUntil: valid}
	if !s.dad(n) {
		x.state = addrPreferred
		s.host.local.add(p.Addr(), n)
	}
	n.v6.addrs = append(n.v6.addrs, x)
	if !auto {
		_ = s.host.routes.Add(network.Route{Dst: p.Masked(), NIC: n.id})
	}
	s.host.v6next = 0 // start it at the next timeout
	s.host.v6dirty = true
}

// removeAddr6 removes x from n, leaving its solicited-node group and, for
// a static address, the on-link route of its prefix if no other address
// of n is in it.
func (s *Stack) removeAddr6(n *nic, x *addr6) {
	v := n.v6
	s.host.v6dirty = true
	if x.usable() {
		s.host.local.remove(x.p.Addr(), n)
	}
	if x.started && x.state != addrDuplicate && n.cfg.Medium == link.Ethernet && !s.host.mirror6 {
		v.leaves = append(v.leaves, wire.SolicitedNodeMulticast(x.p.Addr()))
		s.host.v6next = 0
	}
	v.addrs = slices.DeleteFunc(v.addrs, func(y *addr6) bool { return y == x })
	if !x.auto {
		still := false
		for _, y := range v.addrs {
			still = still || !y.auto && y.p.Masked() == x.p.Masked()
		}
		if !still {
			s.host.routes.RemoveRoute(network.Route{Dst: x.p.Masked(), NIC: n.id})
		}
	}
}

// setNDPTimes gives the neighbour cache n's reachable time — the base
// value (a router's, or the default) times a random factor between 0.5
// and 1.5 (RFC 4861 §6.3.2) — and retransmission timer.
func (s *Stack) setNDPTimes(n *nic) {
	base := n.v6.baseReachable
	if base <= 0 {
		base = s.host.neigh.Config().ReachableTime
	}
	f := 0.5 + s.host.rng6.Float64()
	s.nlock()
	s.host.neigh.SetTimes(n.id, time.Duration(float64(base)*f), n.v6.retrans)
	s.nunlock()
}

// retrans6 returns n's retransmission timer (RFC 4861 §6.3.2
// RetransTimer: a router's, or the default), which DAD waits too.
func (s *Stack) retrans6(n *nic) time.Duration {
	if n.v6.retrans > 0 {
		return n.v6.retrans
	}
	return s.host.neigh.Config().RetransTime
}

// maxRtrSolicitationDelay is RFC 4861 §10's MAX_RTR_SOLICITATION_DELAY:
// the largest random delay before the first router solicitation, and
// (RFC 4862 §5.4.2, as Linux's rtr_solicit_delay) before DAD starts.
const maxRtrSolicitationDelay = time.Second

// randDelay returns a random delay in [0, d).
func (s *Stack) randDelay(d time.Duration) time.Duration {
	return time.Duration(s.host.rng6.Int64N(int64(d)))
}

// timeout6 runs the IPv6 configuration timers due at now, then sends the
// MLD reports they (or anything else) made due.
func (s *Stack) timeout6(now clock.Instant) {
	h := &s.host
	if h.mirror6 {
		h.v6next = clock.Never // the owner runs it (shared6.go)
		return
	}
	if h.v6next <= now {
		for _, n := range h.nics {
			if n.v6 != nil {
				s.timeoutNIC6(now, n)
			}
		}
		h.routers = slices.DeleteFunc(h.routers, func(r defRouter) bool {
			if r.until > now {
				return false
			}
			h.routes.RemoveRoute(network.Route{Dst: defaultRoute6, Gateway: r.addr, NIC: r.nic.id})
			return true
		})
		h.prefixes = slices.DeleteFunc(h.prefixes, func(p raPrefix) bool {
			if p.until > now {
				return false
			}
			h.routes.RemoveRoute(network.Route{Dst: p.p, NIC: p.nic.id})
			return true
		})
		s.rearm6()
	}
	s.flushMLD(now)
}

// timeoutNIC6 runs n's IPv6 timers due at now.
func (s *Stack) timeoutNIC6(now clock.Instant, n *nic) {
	v := n.v6
	h := &s.host
	if !v.started {
		v.started = true
		h.mld.Join(now, n.id, wire.IPv6AllNodes) // never reported (RFC 3810 §6)
		s.updateMACs(n)
		if ll := v.linkLocal(); ll.IsValid() {
			// No DAD for the link-local address: solicit routers after
			// the random delay (RFC 4861 §6.3.7).
			s.startRS(now.Add(s.randDelay(maxRtrSolicitationDelay)), n)
		}
	}
	for i := 0; i < len(v.addrs); {
		x := v.addrs[i]
		if !x.started {
			s.startDAD(now, n, x)
		}
		for x.dadAt <= now {
			s.stepDAD(now, n, x)
		}
		if x.usable() && x.preferredUntil <= now {
			x.state = addrDeprecated
		}
		if x.validUntil <= now {
			h.net.Ip6AddrsExpired++
			s.removeAddr6(n, x)
			continue
		}
		i++
	}
	// Groups left by addresses removed, here or since the last timeout.
	for _, g := range v.leaves {
		h.mld.Leave(now, n.id, g)
	}
	v.leaves = v.leaves[:0]
	s.updateMACs(n)
	if v.rsAt <= now {
		s.sendRS(n)
		v.rsLeft--
		v.rsAt = clock.Never
		if v.rsLeft > 0 {
			v.rsAt = now.Add(s.cfg.IPv6.RouterSolicitationInterval)
		}
	}
}

// startRS schedules the router solicitations of RFC 4861 §6.3.7 from at
// on, unless router advertisements are ignored.
func (s *Stack) startRS(at clock.Instant, n *nic) {
	if s.cfg.IPv6.IgnoreRA || s.cfg.IPv6.RouterSolicitations <= 0 {
		return
	}
	n.v6.rsLeft = s.cfg.IPv6.RouterSolicitations
	n.v6.rsAt = at
}

// startDAD joins x's solicited-node group (RFC 4861 §7.2.1; RFC 4862
// §5.4.2: before the first solicitation) and, for a tentative address,
// schedules the first solicitation after a random delay.
func (s *Stack) startDAD(now clock.Instant, n *nic, x *addr6) {
	x.started = true
	if n.cfg.Medium == link.Ethernet {
		s.host.mld.Join(now, n.id, wire.SolicitedNodeMulticast(x.p.Addr()))
	}
	if x.state != addrTentative {
		return
	}
	x.dadLeft = s.cfg.IPv6.DADTransmits
	for i := range x.nonce {
		x.nonce[i] = byte(s.host.rng6.Uint32())
	}
	x.dadAt = now.Add(s.randDelay(maxRtrSolicitationDelay))
}

// stepDAD runs x's DAD step due at now (RFC 4862 §5.4.2, §5.4.5): the
// next solicitation, or, RetransTimer after the last one with no answer,
// the address becomes usable.
func (s *Stack) stepDAD(now clock.Instant, n *nic, x *addr6) {
	if x.state != addrTentative {
		x.dadAt = clock.Never
		return
	}
	if x.dadLeft > 0 {
		x.dadLeft--
		a := x.p.Addr()
		g := wire.SolicitedNodeMulticast(a)
		mac, _ := wire.MulticastMAC(g)
		s.sendNS(n, netip.IPv6Unspecified(), a, g, mac, x.nonce[:])
		x.dadAt = now.Add(s.retrans6(n))
		return
	}
	x.dadAt = clock.Never
	x.state = addrPreferred
	if x.preferredUntil <= now {
		x.state = addrDeprecated
	}
	s.host.local.add(x.p.Addr(), n)
	if x.p.Addr().IsLinkLocalUnicast() && n.v6.rsAt == clock.Never && n.v6.rsLeft == 0 {
		// RFC 4861 §6.3.7: solicit routers once the link-local
		// address is usable (the random delay came before DAD).
		s.startRS(now, n)
	}
}

// dadFailed is RFC 4862 §5.4.5: x is another node's. It is never used;
// an autoconfigured one is removed, a static one stays, marked, as in
// Linux ("dadfailed").
func (s *Stack) dadFailed(n *nic, x *addr6) {
	s.host.net.Ip6DADFailures++
	s.host.v6dirty = true
	if x.usable() {
		s.host.local.remove(x.p.Addr(), n)
	}
	if x.started && n.cfg.Medium == link.Ethernet {
		n.v6.leaves = append(n.v6.leaves, wire.SolicitedNodeMulticast(x.p.Addr()))
	}
	x.state = addrDuplicate
	x.dadAt = clock.Never
	if x.auto {
		x.started = false // its group is being left already
		s.removeAddr6(n, x)
	}
	s.host.v6next = 0
}

// updateMACs recomputes the multicast MACs n takes frames for: those of
// the groups it listens to (RFC 2464 §7).
func (s *Stack) updateMACs(n *nic) {
	v := n.v6
	v.macs = v.macs[:0]
	for _, g := range s.host.mld.Groups(n.id) {
		if m, ok := wire.MulticastMAC(g); ok && !slices.Contains(v.macs, m) {
			v.macs = append(v.macs, m)
		}
	}
}

// rearm6 recomputes host.v6next, the earliest IPv6 configuration
// deadline.
func (s *Stack) rearm6() {
	h := &s.host
	next := clock.Never
	for _, n := range h.nics {
		v := n.v6
		if v == nil {
			continue
		}
		if !v.started || len(v.leaves) > 0 {
			next = 0
		}
		next = clock.Min(next, v.rsAt)
		for _, x := range v.addrs {
			if !x.started {
				next = 0
			}
			next = clock.Min(next, x.dadAt)
			next = clock.Min(next, x.validUntil)
			if x.state == addrPreferred {
				next = clock.Min(next, x.preferredUntil)
			}
		}
	}
	for _, r := range h.routers {
		next = clock.Min(next, r.until)
	}
	for _, p := range h.prefixes {
		next = clock.Min(next, p.until)
	}
	h.v6next = next
	h.v6dirty = true
}

// lifetime returns the end of a lifetime of secs seconds from now; all
// ones is infinity (RFC 4861 §4.6.2).
func lifetime(now clock.Instant, secs uint32) clock.Instant {
	if secs == 0xffffffff {
		return clock.Never
	}
	return now.Add(time.Duration(secs) * time.Second)
}

// handleRA processes a router advertisement (RFC 4861 §6.1.2 validity,
// §6.3.4 processing; RFC 4862 §5.5.3 for its prefixes).
func (s *Stack) handleRA(now clock.Instant, p *ipRepr, m wire.NDP, o *wire.NDPOptions) {
	h := &s.host
	n := p.nic
	if s.cfg.IPv6.IgnoreRA || !p.src.IsLinkLocalUnicast() || h.mirror6 {
		h.net.Ip6RAIgnored++
		return
	}
	v := n.v6
	// RFC 4861 §6.3.7: an advertisement ends the solicitations.
	v.rsLeft, v.rsAt = 0, clock.Never
	if hl := m.CurHopLimit(); hl != 0 {
		h.hopLimit = hl
	}
	if lt := m.RouterLifetime(); lt == 0 {
		s.removeRouter(n, p.src)
	} else {
		s.addRouter(n, p.src, now.Add(time.Duration(lt)*time.Second))
	}
	timers := false
	if rt := m.ReachableTime(); rt != 0 {
		v.baseReachable, timers = time.Duration(rt)*time.Millisecond, true
	}
	if rt := m.RetransTimer(); rt != 0 {
		v.retrans, timers = time.Duration(rt)*time.Millisecond, true
	}
	if timers {
		s.setNDPTimes(n)
	}
	if o.HasSourceLinkAddr && n.cfg.Medium == link.Ethernet {
		s.nlock()
		h.neigh.LearnNDP(now, n.id, p.src, o.SourceLinkAddr, true)
		s.nunlock()
	}
	if o.HasMTU && o.MTU >= wire.IPv6MinMTU && int(o.MTU) <= n.cfg.MTU {
		v.mtu = int(o.MTU)
	}
	for l := m.Options(); ; {
		opt, rest, ok := l.Next()
		if !ok {
			break
		}
		if opt.Type() == wire.NDPOptPrefixInfo {
			s.prefixInfo(now, n, opt.PrefixInfo())
		}
		l = rest
	}
	s.rearm6()
}

// addRouter puts a router in the default router list until the given
// time, with its default route (RFC 4861 §6.3.4).
func (s *Stack) addRouter(n *nic, a netip.Addr, until clock.Instant) {
	h := &s.host
	for i := range h.routers {
		if r := &h.routers[i]; r.nic == n && r.addr == a {
			r.until = until
			return
		}
	}
	h.routers = append(h.routers, defRouter{nic: n, addr: a, until: until})
	_ = h.routes.Add(network.Route{Dst: defaultRoute6, Gateway: a, NIC: n.id})
}

// removeRouter takes a router off the default router list (a zero
// lifetime, RFC 4861 §6.3.4; a router turned host, §7.2.5).
func (s *Stack) removeRouter(n *nic, a netip.Addr) {
	h := &s.host
	h.routers = slices.DeleteFunc(h.routers, func(r defRouter) bool {
		if r.nic != n || r.addr != a {
			return false
		}
		h.routes.RemoveRoute(network.Route{Dst: defaultRoute6, Gateway: a, NIC: n.id})
		return true
	})
}

// twoHours is RFC 4862 §5.5.3 (e)'s bound on shortening a valid
// lifetime by an unauthenticated advertisement.
const twoHours = 2 * time.Hour

// prefixInfo processes a prefix information option (RFC 4861 §6.3.4
// for the on-link flag, RFC 4862 §5.5.3 for the autonomous one).
func (s *Stack) prefixInfo(now clock.Instant, n *nic, pi wire.NDPPrefixInfo) {
	h := &s.host
	if pi.PrefixLen > 128 || !pi.Prefix.Is6() {
		return
	}
	pfx := netip.PrefixFrom(pi.Prefix, int(pi.PrefixLen)).Masked()
	if pfx.Addr().IsLinkLocalUnicast() {
		return // (b): the link-local prefix is not a router's to give
	}
	if pi.Flags&wire.NDPPrefixOnLink != 0 {
		i := slices.IndexFunc(h.prefixes, func(q raPrefix) bool { return q.nic == n && q.p == pfx })
		switch {
		case pi.ValidLifetime == 0 && i >= 0:
			h.routes.RemoveRoute(network.Route{Dst: pfx, NIC: n.id})
			h.prefixes = slices.Delete(h.prefixes, i, i+1)
		case pi.ValidLifetime == 0:
		case i >= 0:
			h.prefixes[i].until = lifetime(now, pi.ValidLifetime)
		default:
			h.prefixes = append(h.prefixes, raPrefix{nic: n, p: pfx, until: lifetime(now, pi.ValidLifetime)})
			_ = h.routes.Add(network.Route{Dst: pfx, NIC: n.id})
		}
	}
	if pi.Flags&wire.NDPPrefixAutonomous == 0 || s.cfg.IPv6.NoAutoconf {
		return
	}
	if pi.PreferredLifetime > pi.ValidLifetime || pi.PrefixLen != 64 {
		return // (c); (d): our interface identifiers are 64 bits long
	}
	pref, valid := lifetime(now, pi.PreferredLifetime), lifetime(now, pi.ValidLifetime)
	var x *addr6
	for _, y := range n.v6.addrs {
		if y.auto && y.p.Masked() == pfx {
			x = y
			break
		}
	}
	if x == nil {
		if pi.ValidLifetime == 0 {
			return
		}
		b := pfx.Addr().As16()
		copy(b[8:], n.v6.iid[:])
		a := netip.AddrFrom16(b)
		if n.has6(a) {
			return
		}
		h.net.Ip6AutoconfAddrs++
		s.addAddr6(n, netip.PrefixFrom(a, 64), true, pref, valid)
		return
	}
	// (e): the preferred lifetime is taken as it is; the valid one is
	// not cut below two hours by an advertisement.
	x.preferredUntil = pref
	if x.state == addrDeprecated && pref > now {
		x.state = addrPreferred
	}
	remaining := time.Duration(x.validUntil - now)
	if x.validUntil == clock.Never {
		remaining = time.Duration(1<<63 - 1)
	}
	switch received := time.Duration(pi.ValidLifetime) * time.Second; {
	case pi.ValidLifetime == 0xffffffff || received > twoHours || received > remaining:
		x.validUntil = valid
	case remaining <= twoHours:
	default:
		x.validUntil = now.Add(twoHours)
	}
}

// scope6 returns an address's scope (RFC 6724 §3.1, RFC 4291 §2.7):
// multicast scopes as they are, link-local and loopback 2, the rest
// global (14).
func scope6(a netip.Addr) int {
	switch {
	case a.IsMulticast():
		return int(a.As16()[1] & 0x0f)
	case a.IsLinkLocalUnicast(), a.IsLoopback():
		return 2
	}
	return 14
}

// commonPrefix returns the length of the prefix a and b share.
func commonPrefix(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	for i := range 16 {
		if d := x[i] ^ y[i]; d != 0 {
			return i*8 + bits.LeadingZeros8(d)
		}
	}
	return 128
}

// srcFor6 picks the source address of packets to dst out of n by RFC
// 6724 §5's rules that apply to a host without mobility, temporary
// addresses or a policy table: 1 (the destination itself), 2 (the
// appropriate scope), 3 (avoid deprecated addresses) and 8 (the longest
// matching prefix, up to the source's prefix length), among n's usable
// addresses (tentative and duplicate ones never). It returns the zero Addr if n has none.
func srcFor6(n *nic, dst netip.Addr) netip.Addr {
	if n.v6 == nil {
		return netip.Addr{}
	}
	var best *addr6
	sd := scope6(dst)
	for _, x := range n.v6.addrs {
		if !x.usable() {
			continue
		}
		a := x.p.Addr()
		if a == dst {
			return a
		}
		if best == nil {
			best = x
			continue
		}
		sa, sb := scope6(a), scope6(best.p.Addr())
		switch {
		case sa < sb:
			if sa >= sd {
				best = x
			}
			continue
		case sb < sa:
			if sb < sd {
				best = x
			}
			continue
		}
		if (x.state == addrDeprecated) != (best.state == addrDeprecated) {
			if best.state == addrDeprecated {
				best = x
			}
			continue
		}
		// Rule 8's CommonPrefixLen stops at the source's prefix length
		// (RFC 6724 §2.2).
		if min(commonPrefix(a, dst), x.p.Bits()) > min(commonPrefix(best.p.Addr(), dst), best.p.Bits()) {
			best = x
		}
	}
	if best == nil {
		return netip.Addr{}
	}
	return best.p.Addr()
}

// AddrInfo describes an address of a NIC, as `ip addr` shows it.
type AddrInfo struct {
	Prefix netip.Prefix
	// State is "preferred" for IPv4 addresses; an IPv6 address is
	// "tentative" while DAD runs, then "preferred", "deprecated" when its
	// preferred lifetime is over, or "dadfailed".
	State string
	// Auto says the address was formed from a router's prefix (SLAAC).
	Auto bool
	// PreferredUntil and ValidUntil end its lifetimes (clock.Never:
	// forever).
	PreferredUntil, ValidUntil clock.Instant
}

// AddrInfo returns the addresses of a NIC with their states.
func (s *Stack) AddrInfo(id NICID) []AddrInfo {
	n := s.nic(id)
	if n == nil {
		return nil
	}
	var out []AddrInfo
	for _, p := range n.addrs {
		out = append(out, AddrInfo{Prefix: p, State: "preferred", PreferredUntil: clock.Never, ValidUntil: clock.Never})
	}
	if n.v6 != nil {
		for _, x := range n.v6.addrs {
			out = append(out, AddrInfo{Prefix: x.p, State: addrStateNames[x.state], Auto: x.auto, PreferredUntil: x.preferredUntil, ValidUntil: x.validUntil})
		}
	}
	return out
}

// HopLimit returns the hop limit of the IPv6 packets the stack sends.
func (s *Stack) HopLimit() uint8 { return s.host.hopLimit }

// LinkMTU6 returns the MTU of IPv6 packets on a NIC: the link's, or a
// router's smaller one (RFC 4861 §6.3.4). 0 for no such NIC.
func (s *Stack) LinkMTU6(id NICID) int {
	if n := s.nic(id); n != nil {
		return n.mtu6()
	}
	return 0
}

// defaultRoute6 is ::/0, the destination of the routes through default
// routers.
var defaultRoute6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
