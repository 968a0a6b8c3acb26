package stack

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestAddrSet: the set of local addresses answers as a scan of the NICs
// in order would — across adds and removes that take it over the size
// where it switches to a map and back, with addresses held by two NICs
// found on the one with the lower ID.
func TestAddrSet(t *testing.T) {
	nics := []*nic{{id: 1}, {id: 2}, {id: 3}}
	r := rand.New(rand.NewPCG(5, 6))
	var s addrSet
	held := map[*nic]map[netip.Addr]bool{}
	for _, n := range nics {
		held[n] = map[netip.Addr]bool{}
	}
	addr := func(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", i)) }
	want := func(a netip.Addr) *nic {
		for _, n := range nics {
			if held[n][a] {
				return n
			}
		}
		return nil
	}
	sawMap, sawList := false, false
	for op := range 4000 {
		n := nics[r.IntN(len(nics))]
		a := addr(r.IntN(24))
		if held[n][a] {
			s.remove(a, n)
			delete(held[n], a)
		} else {
			s.add(a, n)
			held[n][a] = true
		}
		sawMap = sawMap || s.m != nil
		sawList = sawList || s.m == nil && len(s.list) > 0
		for i := range 26 {
			if got, w := s.lookup(addr(i)), want(addr(i)); got != w {
				t.Fatalf("op %d: lookup(%v) = %v, want %v", op, addr(i), got, w)
			}
		}
	}
	if !sawMap || !sawList {
		t.Errorf("the set never switched representation (map %v, list %v)", sawMap, sawList)
	}
}
