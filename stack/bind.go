package stack

import (
	"maps"
	"net/netip"
	"slices"
)

// bindings maps local addresses and ports to the sockets bound there —
// TCP listeners, UDP sockets — with the rules both share: a packet finds
// the socket bound to its exact address, else the one bound to the
// wildcard address of its family (lookup), and a new binding conflicts
// with one on the same port at the same address or where either is the
// wildcard (conflicts), as in Linux without SO_REUSEADDR. This is the one
// "specific address, then wildcard" lookup; a dual-stack wildcard (IPv6's
// :: taking IPv4 too, issue 11) is a change to wildcard and conflicts
// here, not to each socket type.
type bindings[S any] struct {
	m map[netip.AddrPort]S
}

func newBindings[S any]() bindings[S] { return bindings[S]{m: map[netip.AddrPort]S{}} }

// wildcard returns the unspecified address of a's family.
func wildcard(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// lookup returns the socket a packet to local reaches: the one bound to
// local itself, else the one bound to local's port on the wildcard.
func (b *bindings[S]) lookup(local netip.AddrPort) (S, bool) {
	if so, ok := b.m[local]; ok {
		return so, true
	}
	so, ok := b.m[netip.AddrPortFrom(wildcard(local.Addr()), local.Port())]
	return so, ok
}

// get returns the socket bound to exactly a.
func (b *bindings[S]) get(a netip.AddrPort) (S, bool) {
	so, ok := b.m[a]
	return so, ok
}

// conflicts reports whether binding a would clash with a socket already
// bound: the same port on the same address, or on the wildcard and a
// specific address either way round.
func (b *bindings[S]) conflicts(a netip.AddrPort) bool {
	for other := range b.m {
		if other.Port() == a.Port() && (other.Addr() == a.Addr() || other.Addr().IsUnspecified() || a.Addr().IsUnspecified()) {
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

func (b *bindings[S]) add(a netip.AddrPort, so S) { b.m[a] = so }

func (b *bindings[S]) remove(a netip.AddrPort) { delete(b.m, a) }

func (b *bindings[S]) len() int { return len(b.m) }

// sorted returns the bound addresses in order (for output that must not
// depend on map order).
func (b *bindings[S]) sorted() []netip.AddrPort {
	return slices.SortedFunc(maps.Keys(b.m), netip.AddrPort.Compare)
}
