package stack_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

var (
	ip6A   = netip.MustParseAddr("2001:db8::1")
	ip6B   = netip.MustParseAddr("2001:db8::2")
	ip6Raw = netip.MustParseAddr("2001:db8::9")
)

// pair6 returns a segment with stacks A (2001:db8::1) and B
// (2001:db8::2), run until their addresses are usable.
func pair6(t testing.TB, cfgA, cfgB stack.Config) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n := stacktest.New(t)
	if cfgA.Seed == 0 {
		cfgA.Seed = 1
	}
	if cfgB.Seed == 0 {
		cfgB.Seed = 2
	}
	a := n.AddHost("A", cfgA, "2001:db8::1/64")
	b := n.AddHost("B", cfgB, "2001:db8::2/64")
	waitUsable(t, n, a, b)
	return n, a, b
}

// waitUsable runs the segment until every address of the nodes' NICs has
// passed DAD.
func waitUsable(t testing.TB, n *stacktest.Net, nodes ...*stacktest.Node) {
	t.Helper()
	n.RunUntil(10*time.Second, func() bool {
		for _, nd := range nodes {
			for _, a := range nd.Stack.AddrInfo(nd.NIC) {
				if a.State == "tentative" {
					return false
				}
			}
		}
		return true
	})
}

func TestIPv6TCPSmoke(t *testing.T) {
	n, a, b := pair6(t, stack.Config{}, stack.Config{})
	l, err := b.Stack.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, s := connectTo(t, n, a, l, netip.AddrPortFrom(ip6B, 80))
	data := payload(1, 100_000)
	got := transfer(t, n, c, s, data, time.Minute)
	if !bytes.Equal(got, data) {
		t.Fatal("data differ")
	}
	if c.Info().SndMSS != 1500-60-12 {
		t.Errorf("MSS %d, want %d", c.Info().SndMSS, 1500-60-12)
	}
	for _, f := range n.Log[:20] {
		t.Log(f)
	}
	_ = tcp.Established
	_ = wire.ProtoTCP
}
