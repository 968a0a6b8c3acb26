package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
)

// TestOffloadNICs: hosts whose NICs segment TCP and complete checksums
// (link.CapTSO, link.CapTxChecksum) hand their NICs super-frames, and
// the simulator's NICs cut them (internal/gso) into exactly the frames
// hosts without offloads send: over a lossy, reordering link carrying
// flows both ways, the two runs' frame digests are equal, and every byte
// arrives.
func TestOffloadNICs(t *testing.T) {
	imp := impair.Config{Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.01, Rate: 200e6, Queue: 200}
	run := func(caps link.Caps) ([32]byte, *Port) {
		n := New(11)
		a := n.AddHost("a", stack.Config{})
		b := n.AddHost("b", stack.Config{})
		pa := a.AddNIC(stack.NICConfig{Caps: caps}, "10.0.0.1/24")
		pb := b.AddNIC(stack.NICConfig{Caps: caps}, "10.0.0.2/24")
		n.Link(pa, pb, imp, imp)
		n.EnableDigest()
		apps := NewApps(n)
		if _, err := apps.Serve(b, netip.MustParseAddrPort("0.0.0.0:80"), ServerConfig{}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			apps.Dial(clock.Instant(time.Duration(i)*10*time.Millisecond), a, netip.MustParseAddrPort("10.0.0.2:80"), FlowConfig{Up: 3 << 20, Down: 1 << 20})
		}
		runFlows(t, n, apps, time.Hour)
		return n.Digest(), pa
	}
	plain, pp := run(0)
	off, po := run(link.CapTSO | link.CapTxChecksum)
	if plain != off {
		t.Errorf("the links carried other frames with offloads (%x) than without (%x)", off[:8], plain[:8])
	}
	// Most frames are ACKs and retransmissions (one segment each), but
	// the super-frames must show: at least a quarter more segments than
	// frames.
	if pp.Offloaded != 0 || po.Offloaded == 0 || po.Segments < po.Offloaded+po.Offloaded/4 {
		t.Errorf("without offloads %d frames offloaded; with, %d frames became %d", pp.Offloaded, po.Offloaded, po.Segments)
	}
	t.Logf("with offloads, host a handed its NIC %d frames that became %d on the wire", po.Offloaded, po.Segments)
}
