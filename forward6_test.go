package ustack

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/stack"
)

// The forwarder's runtime over IPv6: A (2001:db8::1) routes everything
// through B (2001:db8::2), promiscuous and spoofing; far6 and far6b are
// addresses nobody holds. The assertions are the IPv4 tests'.
var (
	far6  = netip.MustParseAddr("2001:db8:ff::7")
	far6b = netip.MustParseAddr("2001:db8:ee::9")
)

func newForwardNet6(t *testing.T) *testNet { return newForwardNet6Shards(t, 2) }

// newForwardNet6Shards is newForwardNet6 with B of the given shards.
func newForwardNet6Shards(t *testing.T, shards int) *testNet {
	t.Helper()
	n := newDualNet(t, pipe.Config{Delay: time.Millisecond}, Config{Shards: shards})
	if err := n.A.AddRoute(netip.MustParsePrefix("::/0"), ip6B, n.nicA); err != nil {
		t.Fatal(err)
	}
	if err := n.B.SetForwarding(n.nicB, true, true); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestForwardTCPRejectDropAndCap6 is TestForwardTCPRejectDropAndCap's
// assertions over IPv6: Reject fails the dial as the kernel would (a
// RST: ECONNREFUSED; ICMPv6 address unreachable: EHOSTUNREACH), an
// undecided request is dropped, the cap refuses and counts.
func TestForwardTCPRejectDropAndCap6(t *testing.T) {
	testForwardTCPRejectDropAndCap(t, func(t *testing.T) *testNet { return newForwardNet6Shards(t, 1) }, far6)
}

// TestForwardUDPFlows6 is TestForwardUDPFlows's assertions over IPv6:
// one endpoint-independent flow for two destinations, answers from
// each, an idle flow ended and a new one made.
func TestForwardUDPFlows6(t *testing.T) {
	testForwardUDPFlows(t, newForwardNet6, netip.AddrPortFrom(ip6A, 4000),
		netip.AddrPortFrom(far6, 53), netip.AddrPortFrom(far6b, 123))
}

// TestForwardEcho6: a ping socket's ICMPv6 echo request to a foreign
// address reaches the echo handler, whose SendEchoReply from that
// address reaches the socket as the reply; without the handler's
// answer no reply comes.
func TestForwardEcho6(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newForwardNet6(t)
		reqs := make(chan stack.EchoRequest, 4)
		fw, err := n.B.ForwardEcho(0, func(r stack.EchoRequest) {
			reqs <- r
			if r.Seq == 1 {
				if err := n.B.SendEchoReply(r.Dst, r.Src, r.ID, r.Seq, r.Data); err != nil {
					t.Errorf("SendEchoReply: %v", err)
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer fw.Close()
		p, err := n.A.DialPing(netip.Addr{}, far6)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		echo := func(seq int) []byte {
			b, err := (&icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{Seq: seq, Data: []byte("far away")}}).Marshal(nil)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		if _, err := p.Write(echo(1)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		k, from, err := p.ReadFromAddr(buf)
		if err != nil {
			t.Fatal(err)
		}
		m, err := icmp.ParseMessage(58, buf[:k])
		if err != nil {
			t.Fatal(err)
		}
		e, ok := m.Body.(*icmp.Echo)
		if m.Type != ipv6.ICMPTypeEchoReply || !ok || e.Seq != 1 || e.ID != int(p.ID()) || string(e.Data) != "far away" || from != far6 {
			t.Fatalf("reply %+v %+v from %v", m, m.Body, from)
		}
		r := <-reqs
		if r.Src != ip6A || r.Dst != far6 || r.ID != p.ID() || r.TTL != 64 {
			t.Fatalf("request %+v", r)
		}
		// Seq 2: the handler sees it and does not answer.
		p.Write(echo(2))
		p.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := p.Read(buf); err == nil {
			t.Fatal("a reply the handler never sent")
		}
		if r := <-reqs; r.Seq != 2 {
			t.Fatalf("second request %+v", r)
		}
		if st := n.B.Stats().Fwd; st.EchoRequests != 2 || st.EchoReplies != 1 {
			t.Fatalf("stats %+v", st)
		}
		fw.Close()
		fw.Wait()
	})
}
