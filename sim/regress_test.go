package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/stack"
)

// pairNet returns two hosts, a (10.0.0.1) and b (10.0.0.2), on one link
// with the given impairments in both directions.
func pairNet(seed uint64, cfgA, cfgB stack.Config, ab, ba impair.Config) (*Network, *Node, *Node, *Link) {
	n := New(seed)
	a := n.AddHost("a", cfgA)
	b := n.AddHost("b", cfgB)
	l := n.Link(a.AddNIC(stack.NICConfig{}, "10.0.0.1/24"), b.AddNIC(stack.NICConfig{}, "10.0.0.2/24"), ab, ba)
	return n, a, b, l
}

// runFlows runs the applications until they are done, checks every flow,
// closes the sockets and runs until the network is quiet.
func runFlows(t *testing.T, n *Network, apps *Apps, limit time.Duration) {
	t.Helper()
	if err := n.Run(limit, apps.Done); err != nil {
		t.Errorf("run: %v", err)
	}
	for _, err := range apps.Check() {
		t.Error(err)
	}
	apps.CloseAll()
	if err := n.RunQuiet(limit); err != nil {
		t.Errorf("quiet: %v", err)
	}
	for _, v := range n.Violations() {
		t.Error(v)
	}
}

// TestRegressSACKBlocksOnData: data segments that also carry SACK blocks
// (both directions send, both lose) must shrink their data by the SACK
// option's length, or the segment outgrows the MTU (RFC 9293 §3.7.1: the
// MSS counts no TCP options). Before the fix the sender wrote past the
// end of its frame buffer and panicked.
func TestRegressSACKBlocksOnData(t *testing.T) {
	loss := impair.Config{Delay: 10 * time.Millisecond, Loss: 0.02, MTU: 1500}
	n, a, b, _ := pairNet(1, stack.Config{}, stack.Config{}, loss, loss)
	apps := NewApps(n)
	if _, err := apps.Serve(b, netip.MustParseAddrPort("0.0.0.0:80"), ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		apps.Dial(0, a, netip.MustParseAddrPort("10.0.0.2:80"), FlowConfig{Up: 300_000, Down: 300_000})
	}
	runFlows(t, n, apps, time.Hour)
	for _, l := range n.Links() {
		if d := l.AB.Model.Counters().DroppedMTU + l.BA.Model.Counters().DroppedMTU; d != 0 {
			t.Errorf("%d frames larger than the MTU", d)
		}
	}
}
