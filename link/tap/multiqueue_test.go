package tap_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

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
	ln, err := s.Listen("tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			var c net.Conn
			err := ns.Do(func() error {
				var err error
				c, err = net.DialTimeout("tcp", netip.AddrPortFrom(stackAddr.Addr(), 7).String(), 5*time.Second)
				return err
			})
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			msg := fmt.Sprintf("flow %d over a multi-queue TAP", i)
			c.Write([]byte(msg))
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != msg {
				t.Errorf("flow %d: echo %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	for i, q := range qs {
		st := q.(*tap.Endpoint).Stats()
		t.Logf("queue %d: %d frames in, %d out", i, st.RxFrames, st.TxFrames)
		if st.RxFrames == 0 {
			t.Errorf("queue %d read no frame: the kernel's flows did not reach it", i)
		}
	}
}
