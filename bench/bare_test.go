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
	"github.com/ustack/ustack/link/pipe"
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
