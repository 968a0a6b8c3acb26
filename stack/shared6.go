package stack

import (
	"net/netip"
	"slices"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/network"
)

// IPv6 address configuration with cores sharing a host (Shared): the
// owner (core 0) runs it — DAD, SLAAC from router advertisements, router
// solicitations, MLD, lifetimes — and publishes the outcome whenever it
// changes (publish6); the other cores are mirrors (host.mirror6): they
// run none of it and take the owner's addresses (with their states),
// default routers, on-link prefixes, link MTUs and hop limit as they are
// (applyMirror6, from SyncShared). So the host sends each DAD
// solicitation, router solicitation and MLD report once, and a mirror
// uses an address only once the owner's DAD has made it usable.

// nic6Snap is one NIC's IPv6 configuration as the owner publishes it.
type nic6Snap struct {
	id       NICID
	addrs    []addr6Snap
	mtu      int
	routers  []netip.Addr   // default routers on the NIC
	prefixes []netip.Prefix // on-link prefixes from router advertisements
}

// addr6Snap is an address in a nic6Snap.
type addr6Snap struct {
	p     netip.Prefix
	state addrState
	auto  bool
}

// publish6 publishes the owner's IPv6 configuration if it changed since
// it last did, and pokes the mirrors. It is called at the end of the
// owner's calls that may change it.
func (s *Stack) publish6() {
	h := &s.host
	if !h.v6dirty {
		return
	}
	h.v6dirty = false
	if s.shared == nil || h.mirror6 {
		return
	}
	var snap []nic6Snap
	for _, n := range h.nics {
		if n.v6 == nil {
			continue
		}
		ns := nic6Snap{id: n.id, mtu: n.v6.mtu}
		for _, x := range n.v6.addrs {
			ns.addrs = append(ns.addrs, addr6Snap{p: x.p, state: x.state, auto: x.auto})
		}
		for _, r := range h.routers {
			if r.nic == n {
				ns.routers = append(ns.routers, r.addr)
			}
		}
		for _, p := range h.prefixes {
			if p.nic == n {
				ns.prefixes = append(ns.prefixes, p.p)
			}
		}
		snap = append(snap, ns)
	}
	sh := s.shared
	sh.mu.Lock()
	sh.v6, sh.v6hop = snap, h.hopLimit
	sh.v6gen++
	for i := range sh.cores {
		if i != s.coreIdx {
			sh.poke(i)
		}
	}
	sh.mu.Unlock()
}

// applyMirror6 makes a mirror's IPv6 configuration the owner's snap.
func (s *Stack) applyMirror6(now clock.Instant, snap []nic6Snap, hop uint8) {
	h := &s.host
	h.hopLimit = hop
	for _, ns := range snap {
		n := s.nic(ns.id)
		if n == nil {
			continue
		}
		if n.v6 == nil {
			s.enable6(n)
		}
		v := n.v6
		v.mtu = ns.mtu
		// Addresses: drop those the owner no longer has, add the new
		// ones, and take every state.
		for i := 0; i < len(v.addrs); {
			x := v.addrs[i]
			if !slices.ContainsFunc(ns.addrs, func(a addr6Snap) bool { return a.p == x.p && a.auto == x.auto }) {
				s.removeAddr6(n, x)
				continue
			}
			i++
		}
		for _, a := range ns.addrs {
			x := v.find(a.p.Addr())
			if x == nil {
				x = &addr6{p: a.p, auto: a.auto, dadAt: clock.Never, preferredUntil: clock.Never, validUntil: clock.Never}
				v.addrs = append(v.addrs, x)
				if !a.auto {
					_ = h.routes.Add(network.Route{Dst: a.p.Masked(), NIC: n.id})
				}
			}
			was := x.usable()
			x.state = a.state
			switch is := x.usable(); {
			case is && !was:
				h.local.add(x.p.Addr(), n)
			case was && !is:
				h.local.remove(x.p.Addr(), n)
			}
		}
		// Default routers and on-link prefixes: the owner expires them.
		for _, r := range slices.Clone(h.routers) {
			if r.nic == n && !slices.Contains(ns.routers, r.addr) {
				s.removeRouter(n, r.addr)
			}
		}
		for _, a := range ns.routers {
			s.addRouter(n, a, clock.Never)
		}
		h.prefixes = slices.DeleteFunc(h.prefixes, func(p raPrefix) bool {
			if p.nic != n || slices.Contains(ns.prefixes, p.p) {
				return false
			}
			h.routes.RemoveRoute(network.Route{Dst: p.p, NIC: n.id})
			return true
		})
		for _, p := range ns.prefixes {
			if !slices.ContainsFunc(h.prefixes, func(q raPrefix) bool { return q.nic == n && q.p == p }) {
				h.prefixes = append(h.prefixes, raPrefix{nic: n, p: p, until: clock.Never})
				_ = h.routes.Add(network.Route{Dst: p, NIC: n.id})
			}
		}
	}
	h.v6next = clock.Never
}
