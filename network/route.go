package network

import (
	"cmp"
	"net/netip"
	"slices"
)

// Route is an entry of the routing table: datagrams to addresses in Dst go
// out of NIC, to Gateway if it is set, else straight to their destination
// (an on-link route).
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr // zero value: on-link
	NIC     NICID
}

// Table is the routing table of a stack (RFC 1122 §3.3.1.2, RFC 1812
// §5.2.4.3): longest prefix match over IPv4 and IPv6 prefixes, the first
// added winning among equal prefixes. The zero value is an empty table.
//
// Routes are kept in one slice sorted by prefix length, and again per
// address family. A family with few routes (a host's usual three or four)
// is searched linearly, first match wins, which is faster than any index at
// that size; above linearMax routes each family also has a map from prefix
// to its first route plus the list of prefix lengths in use, so Lookup
// costs one map probe per distinct prefix length. Lookup allocates nothing.
// Changes rebuild everything; they are rare.
type Table struct {
	routes []tableRoute // by prefix length descending, then by seq
	seq    uint64
	v4, v6 prefixIndex
}

// linearMax is the family size up to which Lookup scans instead of probing
// the per-length maps.
const linearMax = 16

type tableRoute struct {
	Route
	seq uint64 // insertion order
}

type prefixIndex struct {
	routes []Route                // this family's routes, in Table.routes order
	lens   []int                  // prefix lengths present, descending (large tables)
	first  map[netip.Prefix]Route // prefix → its first-added route (large tables)
}

// Add adds r. It returns ErrRouteInvalid if r.Dst is invalid or not masked
// (r.Dst != r.Dst.Masked()), and ErrRouteExists if a route with the same
// Dst, Gateway and NIC is present. Several routes to one prefix may coexist
// (different gateways or NICs); Lookup uses the first added.
func (t *Table) Add(r Route) error {
	if !r.Dst.IsValid() || r.Dst != r.Dst.Masked() {
		return ErrRouteInvalid
	}
	for _, x := range t.routes {
		if x.Route == r {
			return ErrRouteExists
		}
	}
	t.seq++
	t.routes = append(t.routes, tableRoute{Route: r, seq: t.seq})
	t.rebuild()
	return nil
}

// Remove removes every route to dst through nic, whatever its gateway, and
// reports whether there was one.
func (t *Table) Remove(dst netip.Prefix, nic NICID) bool {
	n := len(t.routes)
	t.routes = slices.DeleteFunc(t.routes, func(x tableRoute) bool {
		return x.Dst == dst && x.NIC == nic
	})
	if len(t.routes) == n {
		return false
	}
	t.rebuild()
	return true
}

// RemoveRoute removes the route equal to r (destination, gateway and
// NIC) and reports whether there was one.
func (t *Table) RemoveRoute(r Route) bool {
	n := len(t.routes)
	t.routes = slices.DeleteFunc(t.routes, func(x tableRoute) bool { return x.Route == r })
	if len(t.routes) == n {
		return false
	}
	t.rebuild()
	return true
}

// RemoveNIC removes every route through nic (the NIC went away).
func (t *Table) RemoveNIC(nic NICID) {
	n := len(t.routes)
	t.routes = slices.DeleteFunc(t.routes, func(x tableRoute) bool { return x.NIC == nic })
	if len(t.routes) != n {
		t.rebuild()
	}
}

// Lookup returns the route for dst: the one with the longest prefix that
// contains dst, the first added among equal prefixes (RFC 1812 §5.2.4.3,
// "longest match"). An IPv4 address matches only IPv4 prefixes and an IPv6
// address (IPv4-mapped ones included) only IPv6 prefixes, as netip.Prefix
// does. Lookup allocates nothing.
func (t *Table) Lookup(dst netip.Addr) (Route, bool) {
	var ix *prefixIndex
	switch {
	case dst.Is4():
		ix = &t.v4
	case dst.Is6():
		ix = &t.v6
	default:
		return Route{}, false
	}
	if len(ix.routes) <= linearMax {
		for _, r := range ix.routes {
			if r.Dst.Contains(dst) {
				return r, true
			}
		}
		return Route{}, false
	}
	for _, bits := range ix.lens {
		p, _ := dst.Prefix(bits)
		if r, ok := ix.first[p]; ok {
			return r, true
		}
	}
	return Route{}, false
}

// Routes returns a copy of the table, by prefix length descending and, for
// equal lengths, in the order the routes were added.
func (t *Table) Routes() []Route {
	rs := make([]Route, len(t.routes))
	for i, x := range t.routes {
		rs[i] = x.Route
	}
	return rs
}

// Len returns the number of routes.
func (t *Table) Len() int { return len(t.routes) }

// rebuild sorts the routes and remakes both indexes.
func (t *Table) rebuild() {
	slices.SortFunc(t.routes, func(a, b tableRoute) int {
		if c := cmp.Compare(b.Dst.Bits(), a.Dst.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	t.v4, t.v6 = prefixIndex{}, prefixIndex{}
	for _, x := range t.routes {
		ix := &t.v6
		if x.Dst.Addr().Is4() {
			ix = &t.v4
		}
		ix.routes = append(ix.routes, x.Route)
	}
	t.v4.index()
	t.v6.index()
}

// index builds the per-length maps of a family too large to scan.
func (ix *prefixIndex) index() {
	if len(ix.routes) <= linearMax {
		return
	}
	ix.first = make(map[netip.Prefix]Route)
	for _, r := range ix.routes {
		if _, ok := ix.first[r.Dst]; ok {
			continue // an earlier route to the same prefix wins
		}
		ix.first[r.Dst] = r
		if n := len(ix.lens); n == 0 || ix.lens[n-1] != r.Dst.Bits() {
			ix.lens = append(ix.lens, r.Dst.Bits())
		}
	}
}
