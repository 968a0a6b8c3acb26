package stack

import (
	"maps"
	"net/netip"
	"slices"
)

// bindings maps local addresses and ports to the sockets bound there —
// TCP listeners, UDP sockets — with the rules both share, Linux's with
// net.ipv6.bindv6only = 0 and no SO_REUSEADDR:
//
//   - a packet finds the socket bound to its exact address, else the one
//     bound to the wildcard of its family, else, for an IPv4 packet, one
//     bound to :: that is not V6Only (a dual-stack socket: package net's
//     "tcp" on ":80") — lookup;
//   - a new binding conflicts with one on the same port at the same
//     address or where either is a wildcard that covers the other's
//     family: 0.0.0.0 covers IPv4, a V6Only :: covers IPv6, a dual-stack
//     :: covers both — conflicts.
//
// This is the one "specific address, then wildcard" lookup; a new socket
// type binds through it and gets both rules.
type bindings[S any] struct {
	m map[netip.AddrPort]binding[S]
}

// binding is one bound socket, with its IPV6_V6ONLY flag.
type binding[S any] struct {
	so     S
	v6only bool
}

func newBindings[S any]() bindings[S] { return bindings[S]{m: map[netip.AddrPort]binding[S]{}} }

// wildcard returns the unspecified address of a's family.
func wildcard(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// lookup returns the socket a packet to local reaches: the one bound to
// local itself, else the one bound to local's port on the wildcard of its
// family, else, for IPv4, a dual-stack socket bound to :: on the port.
func (b *bindings[S]) lookup(local netip.AddrPort) (S, bool) {
	if x, ok := b.m[local]; ok {
		return x.so, true
	}
	port := local.Port()
	if x, ok := b.m[netip.AddrPortFrom(wildcard(local.Addr()), port)]; ok {
		return x.so, true
	}
	if local.Addr().Is4() {
		if x, ok := b.m[netip.AddrPortFrom(netip.IPv6Unspecified(), port)]; ok && !x.v6only {
			return x.so, true
		}
	}
	var zero S
	return zero, false
}

// get returns the socket bound to exactly a.
func (b *bindings[S]) get(a netip.AddrPort) (S, bool) {
	x, ok := b.m[a]
	return x.so, ok
}

// covers reports whether a binding to address w (with its V6Only flag)
// takes packets to address a: the same address, or a wildcard of a's
// family, or a dual-stack :: for an IPv4 a.
func covers(w netip.Addr, v6only bool, a netip.Addr) bool {
	switch {
	case w == a:
		return true
	case !w.IsUnspecified():
		return false
	case w.Is4():
		return a.Is4()
	case v6only:
		return a.Is6()
	}
	return true
}

// conflicts reports whether binding a (V6Only or not) would clash with a
// socket already bound on its port: either one's address range covers
// the other's address.
func (b *bindings[S]) conflicts(a netip.AddrPort, v6only bool) bool {
	for other, x := range b.m {
		if other.Port() != a.Port() {
			continue
		}
		if covers(other.Addr(), x.v6only, a.Addr()) || covers(a.Addr(), v6only, other.Addr()) {
			return true
		}
	}
	return false
}

// portBusy reports whether any socket is bound to port, on any address.
func (b *bindings[S]) portBusy(port uint16) bool {
	for other := range b.m {
		if other.Port() == port {
			return true
		}
	}
	return false
}

func (b *bindings[S]) add(a netip.AddrPort, so S, v6only bool) {
	b.m[a] = binding[S]{so: so, v6only: v6only}
}

func (b *bindings[S]) remove(a netip.AddrPort) { delete(b.m, a) }

func (b *bindings[S]) len() int { return len(b.m) }

// sorted returns the bound addresses in order (for output that must not
// depend on map order).
func (b *bindings[S]) sorted() []netip.AddrPort {
	return slices.SortedFunc(maps.Keys(b.m), netip.AddrPort.Compare)
}
