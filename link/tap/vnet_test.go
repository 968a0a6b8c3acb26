package tap_test

import (
	"testing"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/tap"
)

// TestVnetHdrStack: the stack on a TAP opened with the virtio-net header
// (TSO and checksum offload) against the kernel: it hands the kernel
// TCP super-frames with partial checksums, which the kernel segments and
// completes, and takes the kernel's coalesced frames whole; every byte of
// the transfers both ways arrives (SHA-256), without a checksum error or
// a retransmission on the stack's side.
func TestVnetHdrStack(t *testing.T) {
	netnstest.NeedCommands(t, "ping")
	leaktest.Check(t)
	ns, ep := setup(t, tap.Config{MTU: 1500})
	if !ep.Caps().Has(link.CapTSO | link.CapTxChecksum | link.CapGRO) {
		t.Fatalf("caps %v", ep.Caps())
	}
	s, _ := linktest.Stack(t, ep, stackAddr)
	linktest.Ping(t, ns, stackAddr.Addr(), 2)
	linktest.TCPBothWays(t, ns, s, kernelAddr.Addr(), stackAddr.Addr(), 16<<20)
	st := ep.Stats()
	if st.TxFrames == 0 || st.TxBytes/st.TxFrames <= 1514 || st.TxTooBig != 0 || st.TxDropped != 0 {
		t.Errorf("stats %+v: want frames larger than the MTU on average (super-frames), none refused", st)
	}
	// A super-frame the kernel refused (a bad header, a wrong partial
	// checksum) is lost every time it is sent: fast retransmissions and
	// RTOs. What a loaded machine may add is a tail-loss probe, sent when
	// an ACK is late (2 SRTTs on this sub-millisecond path), which resends
	// the last segment though nothing was lost; those are allowed, nothing
	// else is.
	if ss := s.Stats(); ss.TCP.InCsumErrors != 0 || ss.TCP.RetransSegs > ss.TCP.TLPProbes || ss.TCP.Timeouts != 0 || ss.TCP.FastRetrans != 0 {
		t.Errorf("%d checksum errors, %d retransmissions (%d tail-loss probes, %d RTOs, %d fast retransmissions)",
			ss.TCP.InCsumErrors, ss.TCP.RetransSegs, ss.TCP.TLPProbes, ss.TCP.Timeouts, ss.TCP.FastRetrans)
	}
	t.Logf("tap: %d frames out, %d bytes (%d per frame); %d frames in, %d bytes", st.TxFrames, st.TxBytes, st.TxBytes/st.TxFrames, st.RxFrames, st.RxBytes)
}
