package tap_test

import (
	"fmt"
	"testing"

	"github.com/ustack/ustack/internal/gso/gsotest"
	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/tap"
)

// offloadStats gives the shared offload checks ep's counters.
func offloadStats(ep *tap.Endpoint) func() linktest.OffloadStats {
	return func() linktest.OffloadStats {
		st := ep.Stats()
		return linktest.OffloadStats{RxGSO: st.RxGSO, RxCoalesced: st.RxCoalesced, RxSplit: st.RxSplit,
			RxTooBig: st.RxTooBig, RxBadOffload: st.RxBadOffload, TxGSO: st.TxGSO, TxDropped: st.TxDropped}
	}
}

// TestOffloadsBulk: with the default offloads, on a TAP and on a TUN,
// bulk TCP both ways between the kernel and a stack arrives byte-exact,
// with the kernel's view of it clean (no retransmission storm, no
// checksum errors), and super-frames or merged segments come where they
// should (linktest.OffloadsBulk): the kernel sending 64 KiB super-frames
// with partial checksums, or wire-sized segments (its GSO off on the
// device), and the stack sending super-frames.
func TestOffloadsBulk(t *testing.T) {
	for _, mode := range linktest.BulkModes {
		for _, tun := range []bool{false, true} {
			name := mode.String()
			if tun {
				name += ", TUN"
			}
			t.Run(name, func(t *testing.T) {
				netnstest.NeedCommands(t, "ping")
				leaktest.Check(t)
				cfg := tap.Config{MTU: 1500}
				if tun {
					cfg = tap.Config{Name: "tun0", TUN: true, MTU: 1500}
				}
				ns, ep := setup(t, cfg)
				if mode == linktest.PeerSegments {
					if err := ns.Do(func() error { return netns.SetOffloads(ep.Name(), false) }); err != nil {
						t.Fatal(err)
					}
				}
				linktest.OffloadsBulk(t, ns, ep, offloadStats(ep), mode, kernelAddr, stackAddr)
			})
		}
	}
}

// knowStack gives the kernel a permanent neighbour entry for the stack's
// address behind the device, so it sends without asking.
func knowStack(t *testing.T, ns *netns.NS, ep *tap.Endpoint) {
	t.Helper()
	if err := ns.IP("neigh", "add", stackAddr.Addr().String(), "lladdr", "02:00:00:00:00:02", "dev", ep.Name(), "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
}

// TestUDPSuperDatagramIn: a kernel UDP socket sending with UDP_SEGMENT
// hands the device one super-datagram (USO); the endpoint cuts it into the
// datagrams it stands for, each with its own header, in order, across
// ReadBatch calls when the batch is smaller than the datagrams.
func TestUDPSuperDatagramIn(t *testing.T) {
	leaktest.Check(t)
	ns, ep := setup(t, tap.Config{})
	if !ep.Caps().Has(link.CapUSO) {
		t.Fatalf("caps %b: no USO on kernel 6.18", ep.Caps())
	}
	knowStack(t, ns, ep)
	linktest.SuperDatagramIn(t, ns, ep, offloadStats(ep), stackAddr.Addr())
}

// TestUDPSuperDatagramOut: a UDP super-datagram written with GSOUDPL4
// reaches a kernel UDP socket as the datagrams it stands for, from a TAP
// and from a TUN.
func TestUDPSuperDatagramOut(t *testing.T) {
	leaktest.Check(t)
	for _, tun := range []bool{false, true} {
		t.Run(fmt.Sprintf("tun=%v", tun), func(t *testing.T) {
			cfg := tap.Config{}
			if tun {
				cfg = tap.Config{Name: "tun0", TUN: true}
			}
			ns, ep := setup(t, cfg)
			linktest.SuperDatagramOut(t, ns, ep, offloadStats(ep), ep.Name(), kernelAddr.Addr(), stackAddr.Addr())
		})
	}
}

// TestSuperFrameChecks: a super-frame is refused as too big on a device
// without offloads, and a frame above the MTU without a GSO type is
// refused on one with.
func TestSuperFrameChecks(t *testing.T) {
	_, ep := setup(t, tap.Config{})
	s := gsotest.Seg{Seq: 1, Payload: gsotest.Bytes(3000, 1)}
	f := s.Frame()
	if _, err := ep.WriteBatch([]link.Packet{{Buf: f, N: len(f)}}); err == nil || !isTooBig(err) {
		t.Errorf("a frame above the MTU without a GSO type: %v", err)
	}
	_, plain := setup(t, tap.Config{Name: "tap1", NoOffloads: true})
	off := s.TSO(f, 1000)
	if _, err := plain.WriteBatch([]link.Packet{{Buf: f, N: len(f), Offload: off}}); err == nil || !isTooBig(err) {
		t.Errorf("a super-frame on a device without offloads: %v", err)
	}
}

func isTooBig(err error) bool {
	for e := err; e != nil; {
		if e == link.ErrFrameTooBig {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// TestOffloadsAllocs: reading the kernel's frames with GRO and writing
// super-frames allocate nothing per frame.
func TestOffloadsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	ns, ep := setup(t, tap.Config{})
	knowStack(t, ns, ep)
	linktest.OffloadsAllocs(t, ns, ep, offloadStats(ep), kernelAddr.Addr(), stackAddr.Addr())
}
