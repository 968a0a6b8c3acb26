package afpacket_test

import (
	"testing"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/link/afpacket"
)

// TestFanout: with Queues: 2 the endpoint is two sockets in one
// PACKET_FANOUT_HASH group; a stack on it (a reader per socket) serves
// the kernel both ways and many flows at once, every frame reaches one
// socket (no frame twice: the flows' data arrives intact and the kernel
// sees no retransmission storm), and both sockets get flows.
func TestFanout(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			leaktest.Check(t)
			p, ep := setup(t, netns.PairConfig{}, afpacket.Config{Mode: m, Queues: 2})
			qs := ep.Queues()
			if len(qs) != 2 || qs[0] != ep {
				t.Fatalf("%d queues, want 2, the endpoint first", len(qs))
			}
			s, _ := linktest.Stack(t, ep, stackAddr)
			before := linktest.Counters(t, p.Peer)
			linktest.TCPBothWays(t, p.Peer, s, kernelAddr.Addr(), stackAddr.Addr(), 4<<20)
			linktest.EchoFlows(t, p.Peer, s, stackAddr.Addr(), 32)
			linktest.NoRetransStorm(t, p.Peer, before)
			for i, q := range qs {
				st := q.(*afpacket.Endpoint).Stats()
				t.Logf("socket %d: %d frames in, %d out", i, st.RxFrames, st.TxFrames)
				if st.RxFrames == 0 {
					t.Errorf("socket %d of the fanout group read no frame", i)
				}
			}
		})
	}
}
