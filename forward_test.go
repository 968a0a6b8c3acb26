package ustack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/stack"
)

// The forwarder's runtime: A (10.0.0.1) is a client whose default route
// is B (10.0.0.2), a promiscuous, spoofing stack that relays; far is an
// address nobody holds.
var far = netip.MustParseAddr("198.51.100.7")

func newForwardNet(t *testing.T) *testNet { return newForwardNetShards(t, 2) }

// newForwardNetShards is newForwardNet with B of the given shards (two
// by default: a TCP forwarder has a part in each).
func newForwardNetShards(t *testing.T, shards int) *testNet {
	t.Helper()
	n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{Shards: shards})
	if err := n.A.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), ipB, n.nicA); err != nil {
		t.Fatal(err)
	}
	if err := n.B.SetForwarding(n.nicB, true, true); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestForwardTCPAcceptAfterUpstream: over each family, the handler sees
// the SYN's 4-tuple and options (the family's MSS), and the client's
// connect stays pending — no SYN-ACK, its SYN repeated — until the
// handler accepts (here after its "upstream" is ready); the connection
// then carries data both ways with half-close passed through, and its
// local address is the one the client dialled.
func TestForwardTCPAcceptAfterUpstream(t *testing.T) {
	for _, fam := range []struct {
		name   string
		newNet func(*testing.T) *testNet
		dst    netip.AddrPort
		client netip.Addr
		mss    uint16
	}{
		{"IPv4", newForwardNet, netip.AddrPortFrom(far, 443), ipA, 1460},
		{"IPv6", newForwardNet6, netip.AddrPortFrom(far6, 443), ip6A, 1440},
	} {
		t.Run(fam.name, func(t *testing.T) {
			leaktest.Check(t)
			synctest.Test(t, func(t *testing.T) {
				testForwardTCPAcceptAfterUpstream(t, fam.newNet(t), fam.dst, fam.client, fam.mss)
			})
		})
	}
}

func testForwardTCPAcceptAfterUpstream(t *testing.T, n *testNet, dst netip.AddrPort, client netip.Addr, mss uint16) {
	upstream := make(chan struct{})
	got := make(chan *TCPConn, 1)
	var req *TCPRequest
	fw, err := n.B.ForwardTCP(0, func(r *TCPRequest) {
		req = r
		<-upstream // the upstream connect takes its time
		c, err := r.Accept(context.Background())
		if err != nil {
			t.Errorf("Accept: %v", err)
			close(got)
			return
		}
		got <- c
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	dialed := make(chan net.Conn, 1)
	go func() {
		c, err := n.A.Dial("tcp", dst.String())
		if err != nil {
			t.Errorf("Dial: %v", err)
		}
		dialed <- c
	}()
	time.Sleep(5 * time.Second) // the client resends its SYN meanwhile
	synctest.Wait()
	select {
	case <-dialed:
		t.Fatal("the client connected before the handler accepted")
	default:
	}
	if req == nil || req.LocalAddr() != dst || req.RemoteAddr().Addr() != client {
		t.Fatalf("request %+v", req)
	}
	if o := req.Options(); o.MSS != mss || !o.SACKPermitted {
		t.Fatalf("SYN options %+v: want MSS %d and SACK", o, mss)
	}
	if st := n.B.Stats().Fwd; st.TCPRequests != 1 || st.TCPSynRetrans == 0 {
		t.Fatalf("stats %+v: one request, its SYN repeated", st)
	}
	close(upstream)
	srv := <-got
	cli := <-dialed
	if srv == nil || cli == nil {
		t.Fatal("no connection")
	}
	defer srv.Close()
	defer cli.Close()
	if srv.LocalAddrPort() != req.LocalAddr() || cli.RemoteAddr().String() != dst.String() {
		t.Fatalf("accepted conn's local address %v, client's peer %v", srv.LocalAddrPort(), cli.RemoteAddr())
	}
	// Half-close: the client sends and shuts its side; the relay still
	// answers after the EOF.
	msg := bytes.Repeat([]byte("forward "), 50_000)
	go func() {
		cli.Write(msg)
		cli.(*TCPConn).CloseWrite()
	}()
	in, err := io.ReadAll(srv)
	if err != nil || !bytes.Equal(in, msg) {
		t.Fatalf("relay read %d bytes, %v", len(in), err)
	}
	srv.Write([]byte("reply after EOF"))
	srv.CloseWrite()
	out, err := io.ReadAll(cli)
	if err != nil || string(out) != "reply after EOF" {
		t.Fatalf("client read %q, %v", out, err)
	}
	fw.Close()
	fw.Wait()
}

// TestForwardTCPRejectDropAndCap: Reject fails the client's dial as the
// kernel would; a handler that returns without deciding drops the
// request (the client's dial times out); and requests beyond the cap are
// refused, counted, while the handlers hold theirs.
//
// One shard: the cap is shared out over a forwarder's parts, so with
// several it would depend on which part each SYN's flow reaches.
func TestForwardTCPRejectDropAndCap(t *testing.T) {
	testForwardTCPRejectDropAndCap(t, func(t *testing.T) *testNet { return newForwardNetShards(t, 1) }, far)
}

// testForwardTCPRejectDropAndCap is TestForwardTCPRejectDropAndCap on
// the network newNet makes, dialling ports of dst (either family).
func testForwardTCPRejectDropAndCap(t *testing.T, newNet func(*testing.T) *testNet, dst netip.Addr) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newNet(t)
		release := make(chan struct{})
		var held atomic.Int32
		fw, err := n.B.ForwardTCP(2, func(r *TCPRequest) {
			switch r.LocalAddr().Port() {
			case 1:
				r.Reject(stack.RejectReset)
			case 2:
				r.Reject(stack.RejectHostUnreachable)
			case 3:
				// undecided: dropped on return
			case 4:
				held.Add(1)
				<-release
				r.Reject(stack.RejectReset)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer fw.Close()
		dial := func(port uint16, timeout time.Duration) error {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c, err := n.A.DialTCP(ctx, netip.AddrPort{}, netip.AddrPortFrom(dst, port))
			if err == nil {
				c.Close()
			}
			return err
		}
		if err := dial(1, 10*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("RST: %v", err)
		}
		if err := dial(2, 10*time.Second); !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Fatalf("host unreachable: %v", err)
		}
		// The client sends its SYN at 0 and 1 s; each makes a request
		// the handler leaves undecided.
		if err := dial(3, 2*time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("undecided: %v", err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st := n.B.Stats().Fwd; st.TCPDropped != 2 {
			t.Fatalf("undecided requests: %+v, want 2 dropped", st)
		}
		// Two requests held by the handler fill the cap; a third SYN
		// is refused.
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = dial(4, 2*time.Second)
			}()
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if held.Load() != 2 || n.B.Stats().Fwd.TCPRefusedCap == 0 {
			t.Fatalf("held %d, stats %+v: want the cap of 2 and refusals", held.Load(), n.B.Stats().Fwd)
		}
		close(release)
		wg.Wait()
		refused := 0
		for _, err := range errs {
			if errors.Is(err, syscall.ECONNREFUSED) {
				refused++
			}
		}
		if refused < 2 {
			t.Fatalf("dials: %v", errs)
		}
		fw.Close()
		fw.Wait()
	})
}

// TestForwardUDPFlows: a client's datagrams to two destinations make one
// endpoint-independent flow; the relay answers from each destination,
// and the client sees each answer from where it wrote. A read deadline
// ends an idle flow, and its next datagram opens a new one.
func TestForwardUDPFlows(t *testing.T) {
	testForwardUDPFlows(t, newForwardNet, netip.MustParseAddrPort("10.0.0.1:4000"),
		netip.MustParseAddrPort("198.51.100.7:53"), netip.MustParseAddrPort("203.0.113.9:123"))
}

// testForwardUDPFlows is TestForwardUDPFlows on the network newNet
// makes, with the client at client sending to d1 and d2 (either family).
func testForwardUDPFlows(t *testing.T, newNet func(*testing.T) *testNet, client, d1, d2 netip.AddrPort) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newNet(t)
		flows := make(chan *UDPFlow, 4)
		fw, err := n.B.ForwardUDP(stack.UDPEndpointIndependent, 0, func(f *UDPFlow) {
			flows <- f
			buf := make([]byte, 1500)
			for {
				f.SetReadDeadline(time.Now().Add(30 * time.Second))
				k, dst, err := f.ReadTo(buf)
				if err != nil {
					f.Close()
					return
				}
				f.WriteFrom(append([]byte("re:"), buf[:k]...), dst)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer fw.Close()
		u, err := n.A.ListenUDP("udp", fmt.Sprintf(":%d", client.Port()))
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		u.WriteToUDPAddrPort([]byte("a"), d1)
		u.WriteToUDPAddrPort([]byte("b"), d2)
		buf := make([]byte, 100)
		seen := map[netip.AddrPort]string{}
		for range 2 {
			k, from, err := u.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			seen[from] = string(buf[:k])
		}
		if seen[d1] != "re:a" || seen[d2] != "re:b" {
			t.Fatalf("answers %v", seen)
		}
		f := <-flows
		if f.Client() != client || f.Dst() != d1 || len(flows) != 0 {
			t.Fatalf("flow %v → %v, %d more", f.Client(), f.Dst(), len(flows))
		}
		time.Sleep(time.Minute) // idle: the handler closes the flow
		synctest.Wait()
		u.WriteToUDPAddrPort([]byte("c"), d1)
		k, _, err := u.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:k]) != "re:c" {
			t.Fatalf("after idle: %q %v", buf[:k], err)
		}
		if st := n.B.Stats().Fwd; st.UDPFlows != 2 {
			t.Fatalf("stats %+v: want a second flow after the first closed", st)
		}
		fw.Close()
		fw.Wait()
	})
}

// TestAddressesRoutesWhileRunning: addresses and routes added and
// removed while connections run (and, with the race detector, while
// other goroutines read them): a removed route makes new dials fail
// with ENETUNREACH, a removed address takes no new connections, and
// the connections already open carry on.
func TestAddressesRoutesWhileRunning(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		ln, err := n.B.Listen("tcp", ":7")
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
		long, err := n.A.Dial("tcp", "10.0.0.2:7")
		if err != nil {
			t.Fatal(err)
		}
		defer long.Close()
		extra := netip.MustParsePrefix("10.9.0.2/32")
		route := netip.MustParsePrefix("10.9.0.0/24")
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					switch g {
					case 0:
						n.B.AddAddress(n.nicB, extra)
						n.B.RemoveAddress(n.nicB, extra.Addr())
					case 1:
						n.A.AddRoute(route, ipB, n.nicA)
						n.A.RemoveRoute(route, n.nicA)
					default:
						n.A.Routes()
						n.B.Addrs(n.nicB)
					}
					time.Sleep(time.Millisecond)
				}
			}()
		}
		for i := range 50 {
			msg := []byte{byte(i)}
			if _, err := long.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(long, msg); err != nil || msg[0] != byte(i) {
				t.Fatalf("echo %d: %v", i, err)
			}
		}
		close(stop)
		wg.Wait()
		// Now settled: the route to 10.9.0.0/24 is gone.
		if _, err := n.A.Dial("tcp", "10.9.0.2:7"); !errors.Is(err, syscall.ENETUNREACH) {
			t.Fatalf("dial without a route: %v", err)
		}
		if err := n.A.AddRoute(route, ipB, n.nicA); err != nil {
			t.Fatal(err)
		}
		if err := n.B.AddAddress(n.nicB, extra); err != nil {
			t.Fatal(err)
		}
		c, err := n.A.Dial("tcp", "10.9.0.2:7")
		if err != nil {
			t.Fatalf("dial with route and address: %v", err)
		}
		c.Close()
		if err := n.B.RemoveAddress(n.nicB, extra.Addr()); err != nil {
			t.Fatal(err)
		}
		if err := n.B.RemoveAddress(n.nicB, extra.Addr()); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("removing it twice: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := n.A.DialContext(ctx, "tcp", "10.9.0.2:7"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial to a removed address: %v", err)
		}
		if got := n.B.Addrs(n.nicB); len(got) != 1 || got[0] != netip.MustParsePrefix("10.0.0.2/24") {
			t.Fatalf("addresses %v", got)
		}
	})
}

// TestUDPFlowCloseWakesRead: a flow's ReadTo waits in the shard's
// blocking loop; with no deadline it waits only on the flow's signal, so
// Close (from another goroutine) and the stack's Close must both wake it,
// and it returns net.ErrClosed rather than waiting for ever.
func TestUDPFlowCloseWakesRead(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newForwardNet(t)
		flows := make(chan *UDPFlow, 2)
		fw, err := n.B.ForwardUDP(stack.UDPPerTuple, 0, func(f *UDPFlow) { flows <- f })
		if err != nil {
			t.Fatal(err)
		}
		defer fw.Close()
		u, err := n.A.ListenUDP("udp", ":4000")
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		u.WriteToUDPAddrPort([]byte("a"), netip.MustParseAddrPort("198.51.100.7:53"))
		u.WriteToUDPAddrPort([]byte("b"), netip.MustParseAddrPort("203.0.113.9:53"))
		f1, f2 := <-flows, <-flows
		buf := make([]byte, 100)
		for _, f := range []*UDPFlow{f1, f2} {
			if k, _, err := f.ReadTo(buf); err != nil || k != 1 {
				t.Fatalf("first datagram: %d bytes, %v", k, err)
			}
		}
		errs := make(chan error, 2)
		for _, f := range []*UDPFlow{f1, f2} {
			go func() {
				_, _, err := f.ReadTo(buf[:0:0])
				errs <- err
			}()
		}
		synctest.Wait() // both readers wait
		if len(errs) != 0 {
			t.Fatalf("a read returned with nothing to read: %v", <-errs)
		}
		f1.Close()
		synctest.Wait()
		if len(errs) != 1 {
			t.Fatalf("%d reads returned after one flow's Close, want 1", len(errs))
		}
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after the flow's Close: %v, want net.ErrClosed", err)
		}
		n.B.Close()
		synctest.Wait()
		if len(errs) != 1 {
			t.Fatal("the read of the other flow did not return when the stack closed")
		}
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after the stack's Close: %v, want net.ErrClosed", err)
		}
	})
}
