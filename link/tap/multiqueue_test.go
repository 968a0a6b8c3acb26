package tap_test

import (
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link/tap"
)

// TestMultiQueue: a device opened with Queues: 2 is a multi-queue TAP
// (IFF_MULTI_QUEUE) with two queues, each an Endpoint; a stack on it
// (which has a reader per queue) serves many kernel connections at once
// and both ways, the kernel spreads the flows' frames over both queues,
// and closing the endpoint closes every queue.
func TestMultiQueue(t *testing.T) {
	leaktest.Check(t)
	ns, ep := setup(t, tap.Config{MTU: 1500, Queues: 2})
	qs := ep.Queues()
	if len(qs) != 2 || qs[0] != ep {
		t.Fatalf("%d queues (first %p, the endpoint %p), want 2, the endpoint first", len(qs), qs[0], ep)
	}
	out := netnstest.MustRun(t, ns, "ip", "-d", "link", "show", "dev", ep.Name())
	if !strings.Contains(out, "multi_queue") {
		t.Errorf("the device is not multi-queue:\n%s", out)
	}
	s, _ := linktest.Stack(t, ep, stackAddr)
	linktest.TCPBothWays(t, ns, s, kernelAddr.Addr(), stackAddr.Addr(), 2<<20)

	// Many flows from the kernel: echoed, and spread over both queues.
	linktest.EchoFlows(t, ns, s, stackAddr.Addr(), 32)
	for i, q := range qs {
		st := q.(*tap.Endpoint).Stats()
		t.Logf("queue %d: %d frames in, %d out", i, st.RxFrames, st.TxFrames)
		if st.RxFrames == 0 {
			t.Errorf("queue %d read no frame: the kernel's flows did not reach it", i)
		}
	}
}
