package bench

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/link/tap"
)

// stackPeer puts a ustack stack where the kernel is in the device cases.
type stackPeer struct{ s *ustack.Stack }

func (p stackPeer) listen() (net.Listener, error) {
	return p.s.Listen("tcp", netip.AddrPortFrom(devKernelIP, 0).String())
}

func (p stackPeer) dial(ctx context.Context, addr net.Addr) (net.Conn, error) {
	return p.s.DialContext(ctx, "tcp", addr.String())
}

// TestBareOverLossyPipe runs the bare sink and source against a TCP that
// is not the kernel's over a link that loses 1 % of frames each way, so
// that their loss handling (the sink's duplicate ACKs, the source's
// go-back-N on duplicate ACKs and on timeout, retried ARP, SYN and FIN)
// runs, and checks every byte sent arrived.
func TestBareOverLossyPipe(t *testing.T) {
	leaktest.Check(t)
	for _, source := range []bool{false, true} {
		name := "sink"
		if source {
			name = "source"
		}
		t.Run(name, func(t *testing.T) {
			a, b := pipe.New(pipe.Config{MTU: 1500, QueueLen: PipeQueueLen, Impair: &impair.Config{Loss: 0.01}, Seed: 7})
			s, err := ustack.New(ustack.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.AddNIC(b, ustack.NICConfig{Addrs: []netip.Prefix{netip.PrefixFrom(devKernelIP, devPrefix)}}); err != nil {
				t.Fatal(err)
			}
			node := newBareNode(a)
			node.source = source
			go node.read()
			defer func() { a.Close(); <-node.done }()
			o := Quick()
			o.Duration = 100 * time.Millisecond
			var smp Sample
			if source {
				smp, err = node.runSource(context.Background(), o, stackPeer{s})
			} else {
				smp, err = node.runSink(context.Background(), o, stackPeer{s})
			}
			if err != nil {
				t.Fatal(err)
			}
			if smp[MBytes] <= 0 {
				t.Fatalf("no data moved: %v", smp)
			}
			lost := a.Stats().Impair.DroppedLoss + b.Stats().Impair.DroppedLoss
			if lost == 0 {
				t.Fatalf("the pipe lost nothing; the test did not exercise loss recovery")
			}
			t.Logf("%s: %.0f bytes, %d frames lost, %s", name, smp[MBytes], lost, showBulk([]Sample{smp}))
		})
	}
}

// TestBareTAPOffloads runs the bare sink and source on a TAP device with
// the virtio-net header and the kernel's offloads on (link/tap's default):
// the sink takes the kernel's 64 KiB GSO frames, the source hands the
// device 64 KiB frames to segment and checksum. It needs root.
func TestBareTAPOffloads(t *testing.T) {
	leaktest.Check(t)
	if err := needRoot(); err != nil {
		if strict {
			t.Fatalf("USTACK_TEST_STRICT is set, so this must run: %v", err)
		}
		t.Skipf("skipped: %v", err)
	}
	open := func() (*bareDevice, error) {
		ns, ep, err := tapKernelWith(func(netns string) tap.Config {
			c := TAPConfig(netns)
			c.NoOffloads = false
			return c
		})
		if err != nil {
			return nil, err
		}
		if !ep.Caps().Has(link.CapTSO | link.CapGRO | link.CapTxChecksum) {
			ep.Close()
			ns.Close()
			t.Fatalf("a TAP with the virtio-net header but without offloads: caps %v", ep.Caps())
		}
		return &bareDevice{ep: ep, kernel: kernelEnd{ns, devKernelIP}, nss: []*netns{ns}}, nil
	}
	o := Quick()
	for _, source := range []bool{false, true} {
		s, err := bareRun(context.Background(), o, open, source)
		if err != nil {
			t.Fatalf("source=%v: %v", source, err)
		}
		checkSample(t, "bare TAP with offloads", s)
		t.Logf("source=%v: %s", source, showBulk([]Sample{s}))
	}
}
