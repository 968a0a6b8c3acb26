package stack_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// TestManyAddresses: a NIC with more addresses than the local-address set
// scans (it switches to a map) answers pings to every one of them, and
// after most are removed (back to a scan) only to those left; directed
// broadcasts of an added prefix are not answered, and stop being
// broadcasts when the prefix goes.
func TestManyAddresses(t *testing.T) {
	n, a, r := bare(t)
	a.Stack.AddNeighbor(a.NIC, ipRaw, r.MAC)
	addr := func(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", 100+i)) }
	for i := range 15 {
		if err := a.Stack.AddAddress(a.NIC, netip.PrefixFrom(addr(i), 24)); err != nil {
			t.Fatal(err)
		}
	}
	pings := func(dst netip.Addr) int {
		r.Send(r.ICMPFrame(a.MAC, ipRaw, dst, wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 7}))
		n.RunFor(time.Second)
		k := 0
		for _, f := range r.Take() {
			if d := f.Decode(); d.ICMP != nil && d.ICMP.Type == wire.ICMPv4EchoReply && d.IP.Src == dst {
				k++
			}
		}
		return k
	}
	for i := range 15 {
		if pings(addr(i)) != 1 {
			t.Errorf("no reply from %v (one of 16 addresses)", addr(i))
		}
	}
	for i := range 12 {
		if err := a.Stack.RemoveAddress(a.NIC, addr(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 15 {
		if got, want := pings(addr(i)), boolInt(i >= 12); got != want {
			t.Errorf("%v: %d replies after removing the first 12, want %d", addr(i), got, want)
		}
	}
	if pings(ipA) != 1 {
		t.Error("no reply from the first address")
	}
	// A directed broadcast of an added prefix is taken in (and, as
	// Linux does by default, not answered); once the prefix is gone, it
	// is an address not ours.
	other := netip.MustParsePrefix("192.168.5.1/24")
	if err := a.Stack.AddAddress(a.NIC, other); err != nil {
		t.Fatal(err)
	}
	bc := netip.MustParseAddr("192.168.5.255")
	before := a.Stack.Stats()
	if pings(bc) != 0 {
		t.Error("echo reply to a directed broadcast")
	}
	mid := a.Stack.Stats()
	if mid.Net.InEchos != before.Net.InEchos+1 || mid.Net.InAddrErrors != before.Net.InAddrErrors {
		t.Errorf("broadcast echo: InEchos %d→%d, InAddrErrors %d→%d", before.Net.InEchos, mid.Net.InEchos, before.Net.InAddrErrors, mid.Net.InAddrErrors)
	}
	if err := a.Stack.RemoveAddress(a.NIC, other.Addr()); err != nil {
		t.Fatal(err)
	}
	pings(bc)
	if after := a.Stack.Stats(); after.Net.InEchos != mid.Net.InEchos || after.Net.InAddrErrors != mid.Net.InAddrErrors+1 {
		t.Errorf("after removing the prefix: InEchos %d→%d, InAddrErrors %d→%d", mid.Net.InEchos, after.Net.InEchos, mid.Net.InAddrErrors, after.Net.InAddrErrors)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
