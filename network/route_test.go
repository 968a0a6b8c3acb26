package network

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

var (
	gw1 = netip.MustParseAddr("192.0.2.1")
	gw2 = netip.MustParseAddr("192.0.2.254")
)

func mustAdd(t *testing.T, tb *Table, r Route) {
	t.Helper()
	if err := tb.Add(r); err != nil {
		t.Fatalf("Add(%v): %v", r, err)
	}
}

// refLookup is the brute-force reference: of all routes (in insertion
// order) whose prefix contains dst, the longest; the earliest among equal
// lengths.
func refLookup(routes []Route, dst netip.Addr) (Route, bool) {
	best, found := Route{}, false
	for _, r := range routes {
		if r.Dst.Contains(dst) && (!found || r.Dst.Bits() > best.Dst.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}

// randNear returns a random address that shares a random number of leading
// bits with base, so random tables nest and lookups hit them.
func randNear(rng *rand.Rand, base netip.Addr) netip.Addr {
	b := base.AsSlice()
	keep := rng.IntN(len(b)*8 + 1)
	for i := keep; i < len(b)*8; i++ {
		if rng.IntN(2) == 1 {
			b[i/8] ^= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestTableLookupMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bases := []netip.Addr{
		netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.168.77.1"),
		netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1234"),
	}
	for round := 0; round < 200; round++ {
		var tb Table
		var ref []Route
		n := rng.IntN(4 * linearMax) // small tables are scanned, large ones indexed
		for i := 0; i < n; i++ {
			base := bases[rng.IntN(len(bases))]
			a := randNear(rng, base)
			bits := rng.IntN(a.BitLen() + 1)
			if rng.IntN(4) == 0 { // crowd the short and host prefixes
				bits = []int{0, a.BitLen()}[rng.IntN(2)]
			}
			r := Route{Dst: netip.PrefixFrom(a, bits).Masked(), NIC: NICID(rng.IntN(3))}
			if rng.IntN(2) == 0 {
				r.Gateway = []netip.Addr{gw1, gw2}[rng.IntN(2)]
			}
			err := tb.Add(r)
			dup := slices.Contains(ref, r)
			if dup != errors.Is(err, ErrRouteExists) || (!dup && err != nil) {
				t.Fatalf("round %d: Add(%v) = %v, duplicate %v", round, r, err, dup)
			}
			if err == nil {
				ref = append(ref, r)
			}
			if rng.IntN(8) == 0 && len(ref) > 0 { // remove one prefix/NIC pair
				v := ref[rng.IntN(len(ref))]
				if !tb.Remove(v.Dst, v.NIC) {
					t.Fatalf("Remove(%v, %d) = false", v.Dst, v.NIC)
				}
				ref = slices.DeleteFunc(ref, func(x Route) bool { return x.Dst == v.Dst && x.NIC == v.NIC })
			}
		}
		if tb.Len() != len(ref) {
			t.Fatalf("round %d: Len %d, want %d", round, tb.Len(), len(ref))
		}
		for i := 0; i < 300; i++ {
			dst := randNear(rng, bases[rng.IntN(len(bases))])
			got, gok := tb.Lookup(dst)
			want, wok := refLookup(ref, dst)
			if got != want || gok != wok {
				t.Fatalf("round %d: Lookup(%v) = %v %v, want %v %v\ntable %v", round, dst, got, gok, want, wok, ref)
			}
		}
		// Routes: a stable sort of the insertion order by length, descending.
		want := slices.Clone(ref)
		slices.SortStableFunc(want, func(a, b Route) int { return b.Dst.Bits() - a.Dst.Bits() })
		if got := tb.Routes(); !slices.Equal(got, want) {
			t.Fatalf("round %d: Routes() = %v, want %v", round, got, want)
		}
	}
}

func TestTableDefaultOnLinkAndGateway(t *testing.T) {
	var tb Table
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw1, NIC: 1})
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("192.0.2.0/24"), NIC: 1})
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("10.0.0.0/8"), Gateway: gw2, NIC: 1})
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("10.9.0.0/16"), NIC: 2})
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("10.9.8.7/32"), Gateway: gw1, NIC: 3})
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("::/0"), Gateway: netip.MustParseAddr("fe80::1"), NIC: 4})
	for _, c := range []struct {
		dst  string
		want string // Dst of the expected route, "" for none
		gw   netip.Addr
		nic  NICID
	}{
		{"8.8.8.8", "0.0.0.0/0", gw1, 1},
		{"192.0.2.77", "192.0.2.0/24", netip.Addr{}, 1},
		{"10.1.1.1", "10.0.0.0/8", gw2, 1},
		{"10.9.1.1", "10.9.0.0/16", netip.Addr{}, 2},
		{"10.9.8.7", "10.9.8.7/32", gw1, 3},
		{"10.9.8.6", "10.9.0.0/16", netip.Addr{}, 2},
		{"2001:db8::1", "::/0", netip.MustParseAddr("fe80::1"), 4},
		{"::ffff:10.9.8.7", "::/0", netip.MustParseAddr("fe80::1"), 4}, // mapped: IPv6 table
	} {
		r, ok := tb.Lookup(netip.MustParseAddr(c.dst))
		if !ok || r.Dst.String() != c.want || r.Gateway != c.gw || r.NIC != c.nic {
			t.Errorf("Lookup(%s) = %v %v, want %s via %v nic %d", c.dst, r, ok, c.want, c.gw, c.nic)
		}
	}
	if r, ok := tb.Lookup(netip.Addr{}); ok {
		t.Errorf("Lookup(invalid) = %v", r)
	}
	// Without a default route, unmatched addresses have no route.
	if !tb.Remove(netip.MustParsePrefix("0.0.0.0/0"), 1) {
		t.Fatal("Remove default = false")
	}
	if r, ok := tb.Lookup(netip.MustParseAddr("8.8.8.8")); ok {
		t.Errorf("Lookup after removing default = %v", r)
	}
	if tb.Remove(netip.MustParsePrefix("0.0.0.0/0"), 1) {
		t.Error("second Remove = true")
	}
	if tb.Remove(netip.MustParsePrefix("10.9.0.0/16"), 1) {
		t.Error("Remove with the wrong NIC = true")
	}
}

func TestTableAddErrorsAndTies(t *testing.T) {
	var tb Table
	for _, p := range []netip.Prefix{{}, netip.PrefixFrom(netip.MustParseAddr("10.1.2.3"), 8)} {
		if err := tb.Add(Route{Dst: p}); !errors.Is(err, ErrRouteInvalid) {
			t.Errorf("Add(%v) = %v, want ErrRouteInvalid", p, err)
		}
	}
	p := netip.MustParsePrefix("10.0.0.0/8")
	mustAdd(t, &tb, Route{Dst: p, Gateway: gw1, NIC: 1})
	if err := tb.Add(Route{Dst: p, Gateway: gw1, NIC: 1}); !errors.Is(err, ErrRouteExists) {
		t.Errorf("duplicate Add = %v, want ErrRouteExists", err)
	}
	mustAdd(t, &tb, Route{Dst: p, Gateway: gw2, NIC: 1}) // another gateway: allowed
	mustAdd(t, &tb, Route{Dst: p, NIC: 2})
	// The first added wins, and keeps winning when later ones are added
	// with longer prefixes elsewhere (a rebuild must not reorder ties).
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("10.1.0.0/16"), NIC: 3})
	if r, _ := tb.Lookup(netip.MustParseAddr("10.2.3.4")); r.Gateway != gw1 || r.NIC != 1 {
		t.Errorf("tie: got %v, want the first added", r)
	}
	// Removing NIC 1's routes leaves NIC 2's.
	tb.RemoveNIC(1)
	if r, _ := tb.Lookup(netip.MustParseAddr("10.2.3.4")); r.NIC != 2 || r.Gateway.IsValid() {
		t.Errorf("after RemoveNIC(1): %v", r)
	}
	if got := tb.Routes(); len(got) != 2 || got[0].NIC != 3 || got[1].NIC != 2 {
		t.Errorf("Routes() = %v", got)
	}
	tb.RemoveNIC(2)
	tb.RemoveNIC(3)
	if tb.Len() != 0 {
		t.Errorf("Len = %d after removing every NIC", tb.Len())
	}
	if _, ok := tb.Lookup(netip.MustParseAddr("10.1.2.3")); ok {
		t.Error("lookup in an emptied table succeeded")
	}
}

func TestTableRoutesIsACopy(t *testing.T) {
	var tb Table
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("10.0.0.0/8"), NIC: 1})
	rs := tb.Routes()
	rs[0].NIC = 9
	if r, _ := tb.Lookup(netip.MustParseAddr("10.0.0.1")); r.NIC != 1 {
		t.Error("changing Routes()'s result changed the table")
	}
}

func TestTableLookupAllocs(t *testing.T) {
	var tb Table
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw1, NIC: 1})
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("192.0.2.0/24"), NIC: 1})
	mustAdd(t, &tb, Route{Dst: netip.MustParsePrefix("2001:db8::/32"), NIC: 2})
	dsts := []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("192.0.2.9"),
		netip.MustParseAddr("2001:db8::9"), netip.MustParseAddr("fe80::1%eth0")}
	lookups := func() {
		for _, d := range dsts {
			tb.Lookup(d)
		}
	}
	if a := testing.AllocsPerRun(100, lookups); a != 0 {
		t.Errorf("Lookup (small table) allocates %v times per run", a)
	}
	for i := 0; i <= linearMax; i++ { // large enough to be indexed
		mustAdd(t, &tb, Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), NIC: 1})
		mustAdd(t, &tb, Route{Dst: netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 1, byte(i)}), 48), NIC: 2})
	}
	if a := testing.AllocsPerRun(100, lookups); a != 0 {
		t.Errorf("Lookup (indexed table) allocates %v times per run", a)
	}
}

func BenchmarkTableLookup(b *testing.B) {
	var tb Table
	tb.Add(Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw1, NIC: 1})
	tb.Add(Route{Dst: netip.MustParsePrefix("192.0.2.0/24"), NIC: 1})
	tb.Add(Route{Dst: netip.MustParsePrefix("198.51.100.7/32"), NIC: 1})
	dst := netip.MustParseAddr("8.8.8.8")
	b.ReportAllocs()
	for b.Loop() {
		tb.Lookup(dst)
	}
}

func TestRemoveRoute(t *testing.T) {
	var tb Table
	def := netip.MustParsePrefix("::/0")
	r1 := Route{Dst: def, Gateway: netip.MustParseAddr("fe80::1"), NIC: 1}
	r2 := Route{Dst: def, Gateway: netip.MustParseAddr("fe80::2"), NIC: 1}
	for _, r := range []Route{r1, r2} {
		if err := tb.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if !tb.RemoveRoute(r1) || tb.RemoveRoute(r1) {
		t.Fatal("RemoveRoute did not remove exactly once")
	}
	if r, ok := tb.Lookup(netip.MustParseAddr("2001:db8::1")); !ok || r != r2 {
		t.Fatalf("the other router's route went too: %v %v", r, ok)
	}
}
