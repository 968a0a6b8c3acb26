package wgnet

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/ustack/ustack/internal/leaktest"
)

// The tunnel tests over IPv6, as the IPv4 ones: A (fd00::28) dials, B
// (fd00::29, www.example.com's AAAA in testZone) serves.
var (
	ip6A = netip.MustParseAddr("fd00::28")
	ip6B = netip.MustParseAddr("fd00::29")
)

// TestTunnelHTTP6: net/http through the tunnel between IPv6-only ends:
// a 64 MiB body checked by SHA-256, and a hundred small requests on
// fresh connections at once.
func TestTunnelHTTP6(t *testing.T) {
	leaktest.Check(t)
	tn := newTunnel(t, side{addrs: []netip.Addr{ip6A}}, side{addrs: []netip.Addr{ip6B}})
	serveHTTP(t, tn.B)
	fetch(t, tn.A, "http://[fd00::29]/bytes/"+fmt.Sprint(bigBody), bigBody)
	errs := make(chan error, 100)
	for i := range 100 {
		go func() {
			c, err := tn.A.DialContextTCPAddrPort(context.Background(), netip.AddrPortFrom(ip6B, 80))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if la := c.LocalAddr().(*net.TCPAddr); !la.IP.Equal(net.IP(ip6A.AsSlice())) {
				errs <- fmt.Errorf("connection %d from %v", i, la)
				return
			}
			fmt.Fprintf(c, "GET /bytes/%d HTTP/1.0\r\n\r\n", 1000+i)
			c.SetReadDeadline(time.Now().Add(time.Minute))
			var resp bytes.Buffer
			_, err = resp.ReadFrom(c)
			if err == nil && !bytes.HasPrefix(resp.Bytes(), []byte("HTTP/1.0 200")) {
				err = fmt.Errorf("request %d: %q", i, resp.Bytes()[:min(resp.Len(), 40)])
			}
			errs <- err
		}()
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestTunnelUDPEcho6: UDP datagrams from empty to the largest IPv6
// allows (65527 bytes, in fragments of the tunnel's MTU) go through and
// come back from an echo server on B with the sender's address, on a
// connected and an unconnected socket.
func TestTunnelUDPEcho6(t *testing.T) {
	leaktest.Check(t)
	tn := newTunnel(t, side{addrs: []netip.Addr{ip6A}}, side{addrs: []netip.Addr{ip6B}})
	srv, err := tn.B.ListenUDPAddrPort(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			k, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:k], from)
		}
	}()
	c, err := tn.A.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(ip6B, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, err := tn.A.ListenUDP(&net.UDPAddr{IP: net.IP(ip6A.AsSlice()), Port: 4000})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	got := make([]byte, 70000)
	for _, size := range []int{0, 1, 1372, 1373, 4000, 65527} {
		msg := make([]byte, size)
		newBody(uint64(size), int64(size)).Read(msg)
		var k int
		for try := 0; ; try++ { // the first datagram starts the handshake
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(msg); err != nil {
				t.Fatalf("write %d bytes: %v", size, err)
			}
			k, err = c.Read(got)
			if err == nil || try == 10 {
				break
			}
		}
		if err != nil || !bytes.Equal(got[:k], msg) {
			t.Fatalf("echo of %d bytes: got %d, %v", size, k, err)
		}
		u.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := u.WriteTo(msg, &net.UDPAddr{IP: net.IP(ip6B.AsSlice()), Port: 7}); err != nil {
			t.Fatal(err)
		}
		k, from, err := u.ReadFrom(got)
		if err != nil || !bytes.Equal(got[:k], msg) || from.String() != "[fd00::29]:7" {
			t.Fatalf("unconnected echo of %d bytes: got %d from %v, %v", size, k, from, err)
		}
	}
	if _, err := c.Write(make([]byte, 65528)); err == nil {
		t.Error("a 65528-byte datagram over IPv6 was accepted")
	}
	if st := tn.B.s.Stats().Net; st.Ip6ReasmOKs == 0 {
		t.Errorf("B reassembled no IPv6 datagram: %+v", st)
	}
}

// pingOnce writes an echo request of family v6 through write and reads
// the reply with read, retrying while the handshake runs, and checks
// the reply's sequence number and data.
func pingOnce(t *testing.T, v6 bool, write func([]byte) error, read func([]byte) (int, error), seq int) {
	t.Helper()
	req := icmp.Echo{Seq: seq, Data: []byte("gopher burrow")}
	var typ, want icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if v6 {
		typ, want, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	b, _ := (&icmp.Message{Type: typ, Body: &req}).Marshal(nil)
	var k int
	var err error
	buf := make([]byte, 1500)
	for try := 0; ; try++ {
		if err := write(b); err != nil {
			t.Fatal(err)
		}
		k, err = read(buf)
		if err == nil || try == 10 {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := icmp.ParseMessage(proto, buf[:k])
	if err != nil {
		t.Fatal(err)
	}
	rep, ok := m.Body.(*icmp.Echo)
	if m.Type != want || !ok || rep.Seq != seq || !bytes.Equal(rep.Data, req.Data) {
		t.Fatalf("reply %+v %+v", m, m.Body)
	}
}

// TestTunnelPing6: Dial("ping6", host) and ListenPingAddr with WriteTo
// a *PingAddr and a *net.IPAddr, through the tunnel; B's stack answers
// (RFC 4443 §4.2).
func TestTunnelPing6(t *testing.T) {
	leaktest.Check(t)
	tn := newTunnel(t, side{addrs: []netip.Addr{ip6A}}, side{addrs: []netip.Addr{ip6B}})
	sock, err := tn.A.Dial("ping6", "fd00::29")
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if sock.LocalAddr().Network() != "ping6" || sock.RemoteAddr().String() != "fd00::29" {
		t.Errorf("addresses %v %v", sock.LocalAddr(), sock.RemoteAddr())
	}
	pingOnce(t, true, func(b []byte) error {
		sock.SetReadDeadline(time.Now().Add(time.Second))
		_, err := sock.Write(b)
		return err
	}, sock.Read, 1)
	l, err := tn.A.ListenPingAddr(ip6A)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, to := range []net.Addr{PingAddrFromAddr(ip6B), &net.IPAddr{IP: net.IP(ip6B.AsSlice())}} {
		pingOnce(t, true, func(b []byte) error {
			l.SetReadDeadline(time.Now().Add(time.Second))
			_, err := l.WriteTo(b, to)
			return err
		}, func(b []byte) (int, error) {
			k, from, err := l.ReadFrom(b)
			if err == nil && from.(*PingAddr).Addr() != ip6B {
				t.Errorf("reply from %v", from)
			}
			return k, err
		}, 2+i)
	}
	if st := tn.B.s.Stats().Net; st.Icmp6InEchos < 3 || st.Icmp6OutEchoReplies < 3 {
		t.Errorf("B answered %d of %d ICMPv6 echo requests, want 3 or more", st.Icmp6OutEchoReplies, st.Icmp6InEchos)
	}
}

// TestTunnelDualStack: ends with an IPv4 and an IPv6 address each. The
// resolver, asking B's DNS server over IPv6, answers with both families,
// IPv6 first (netstack's order for a Net with IPv6); a dial by name
// takes the IPv6 address first, "tcp4" and "tcp6" keep to theirs; HTTP,
// UDP and ping work over both, each from the source of its family.
func TestTunnelDualStack(t *testing.T) {
	leaktest.Check(t)
	tn := newTunnel(t,
		side{addrs: []netip.Addr{ip4A, ip6A}, dns: []netip.Addr{ip6B}},
		side{addrs: []netip.Addr{ip4B, ip6B}})
	zone := testZone()
	stop := serveDNS(t, tn.B, netip.AddrPortFrom(netip.Addr{}, 53), zone)
	defer stop()
	serveHTTP(t, tn.B)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := tn.A.LookupContextHost(ctx, "www.example.com")
	if want := []string{"fd00::29", "192.168.4.29", "192.168.4.30"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("LookupHost www.example.com = %v, %v; want %v", got, err, want)
	}
	if got, err := tn.A.LookupHost("v6.example.com"); err != nil || !slices.Equal(got, []string{"fd00::6"}) {
		t.Errorf("LookupHost v6.example.com = %v, %v", got, err)
	}
	q := zone.Queries()
	if !slices.Contains(q, "udp A www.example.com.") || !slices.Contains(q, "udp AAAA www.example.com.") {
		t.Errorf("queries %q: want A and AAAA", q)
	}
	for network, want := range map[string]string{
		"tcp":  "[fd00::29]:80",
		"tcp6": "[fd00::29]:80",
		"tcp4": "192.168.4.29:80",
	} {
		c, err := tn.A.DialContext(ctx, network, "www.example.com:80")
		if err != nil {
			t.Fatalf("Dial %s www.example.com: %v", network, err)
		}
		if c.RemoteAddr().String() != want {
			t.Errorf("Dial %s www.example.com: %v, want %s", network, c.RemoteAddr(), want)
		}
		la := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr()
		if want := ip4A; network == "tcp4" && la != want || network != "tcp4" && la != ip6A {
			t.Errorf("Dial %s: from %v", network, la)
		}
		c.Close()
	}
	fetch(t, tn.A, "http://192.168.4.29/bytes/1000000", 1000000)
	fetch(t, tn.A, "http://[fd00::29]/bytes/1000000", 1000000)

	srv, err := tn.B.ListenUDPAddrPort(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			k, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(append([]byte(from.String()+" "), buf[:k]...), from)
		}
	}()
	for _, dst := range []netip.Addr{ip4B, ip6B} {
		c, err := tn.A.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(dst, 7))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 200)
		var k int
		for try := 0; try < 10; try++ {
			c.SetReadDeadline(time.Now().Add(time.Second))
			c.Write([]byte("hi"))
			if k, err = c.Read(buf); err == nil {
				break
			}
		}
		src := ip4A
		if dst.Is6() {
			src = ip6A
		}
		if want := netip.AddrPortFrom(src, uint16(c.LocalAddr().(*net.UDPAddr).Port)).String() + " hi"; err != nil || string(buf[:k]) != want {
			t.Errorf("UDP to %v: %q %v, want %q", dst, buf[:k], err, want)
		}
		c.Close()
	}
	for _, dst := range []string{"192.168.4.29", "fd00::29"} {
		sock, err := tn.A.Dial("ping", dst)
		if err != nil {
			t.Fatal(err)
		}
		v6 := sock.RemoteAddr().(PingAddr).Addr().Is6()
		pingOnce(t, v6, func(b []byte) error {
			sock.SetReadDeadline(time.Now().Add(time.Second))
			_, err := sock.Write(b)
			return err
		}, sock.Read, 7)
		sock.Close()
	}
}
