package afpacket_test

import (
	"testing"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/link/afpacket"
)

// offloadStats gives the shared offload checks ep's counters.
func offloadStats(ep *afpacket.Endpoint) func() linktest.OffloadStats {
	return func() linktest.OffloadStats {
		st := ep.Stats()
		return linktest.OffloadStats{RxGSO: st.RxGSO, RxCoalesced: st.RxCoalesced, RxSplit: st.RxSplit,
			RxTooBig: st.RxTooBig, RxBadOffload: st.RxBadOffload, RxCsumCompleted: st.RxCsumCompleted,
			TxGSO: st.TxGSO, TxDropped: st.TxDropped}
	}
}

// TestOffloadsBulk: with the default offloads, in both receive modes,
// bulk TCP both ways between the kernel and a stack arrives byte-exact,
// the kernel's counters show no retransmission storm and no checksum
// error, and super-frames or merged segments come where they should
// (linktest.OffloadsBulk): the kernel's end of the veth with its
// offloads on (the kernel's default) or off, and the stack sending
// super-frames.
func TestOffloadsBulk(t *testing.T) {
	for _, mode := range linktest.BulkModes {
		for _, m := range modes {
			t.Run(mode.String()+"/"+m.String(), func(t *testing.T) {
				leaktest.Check(t)
				p, ep := setup(t, netns.PairConfig{PeerOffloads: mode == linktest.PeerTSO}, afpacket.Config{Mode: m})
				linktest.OffloadsBulk(t, p.Peer, ep, offloadStats(ep), mode, kernelAddr, stackAddr)
			})
		}
	}
}

// knowStack gives the kernel's end a permanent neighbour entry for the
// stack's address, so it sends without asking.
func knowStack(t *testing.T, p *netns.Pair) {
	t.Helper()
	if err := p.Peer.IP("neigh", "add", stackAddr.Addr().String(), "lladdr", "02:00:00:00:00:02", "dev", p.PeerIf, "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
}

// TestUDPSuperDatagramIn: a kernel UDP socket sending with UDP_SEGMENT
// through a veth with offloads on hands the packet socket one
// super-datagram; the endpoint cuts it into the datagrams it stands for,
// in order, across ReadBatch calls when the batch is smaller.
func TestUDPSuperDatagramIn(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			leaktest.Check(t)
			p, ep := setup(t, netns.PairConfig{PeerOffloads: true}, afpacket.Config{Mode: m})
			knowStack(t, p)
			linktest.SuperDatagramIn(t, p.Peer, ep, offloadStats(ep), stackAddr.Addr())
		})
	}
}

// TestUDPSuperDatagramOut: a UDP super-datagram written with GSOUDPL4
// reaches a kernel UDP socket as the datagrams it stands for.
func TestUDPSuperDatagramOut(t *testing.T) {
	leaktest.Check(t)
	p, ep := setup(t, netns.PairConfig{}, afpacket.Config{})
	linktest.SuperDatagramOut(t, p.Peer, ep, offloadStats(ep), p.PeerIf, kernelAddr.Addr(), stackAddr.Addr())
}

// TestOffloadsAllocs: reading with GRO and writing super-frames allocate
// nothing per frame, in both receive modes.
func TestOffloadsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			p, ep := setup(t, netns.PairConfig{}, afpacket.Config{Mode: m})
			knowStack(t, p)
			linktest.OffloadsAllocs(t, p.Peer, ep, offloadStats(ep), kernelAddr.Addr(), stackAddr.Addr())
		})
	}
}
