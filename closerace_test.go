package ustack

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/link/pipe"
)

// TestCloseRacesStackClose closes sockets of every kind while their stack
// closes. A socket's Close takes the shard lock inside its once-only
// work and Stack.Close closes the sockets with that lock held: when both
// were one sync.Once, the two could wait for each other for ever (found
// by CI: wgnet's TestTunnelHTTP6 hung at its end). Each Close must return
// nil or net.ErrClosed, and every call must end.
func TestCloseRacesStackClose(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for i := range rounds {
		n := newTestNet(t, pipe.Config{}, Config{})
		ln, err := n.A.ListenTCP("tcp", ":80", 0)
		if err != nil {
			t.Fatal(err)
		}
		acc := acceptOne(t, ln)
		cc, err := n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		var sc net.Conn
		within(t, 5*time.Second, "accept", func() { sc = <-acc })
		u, err := n.A.ListenUDP("udp", ":53")
		if err != nil {
			t.Fatal(err)
		}
		p, err := n.A.ListenPing(netip.Addr{}, uint16(i+1))
		if err != nil {
			t.Fatal(err)
		}
		socks := []interface{ Close() error }{ln, sc, u, p, cc}
		var wg sync.WaitGroup
		errs := make(chan error, len(socks))
		for _, so := range socks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- so.Close()
			}()
		}
		within(t, 10*time.Second, "Close racing Stack.Close", func() {
			n.A.Close()
			n.B.Close()
			wg.Wait()
		})
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.Fatalf("round %d: Close racing Stack.Close: %v", i, err)
			}
		}
		for _, so := range socks {
			if err := so.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("round %d: second Close of %T: %v, want net.ErrClosed", i, so, err)
			}
		}
	}
}
