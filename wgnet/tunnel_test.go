package wgnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/ustack/ustack/internal/leaktest"
)

// The addresses of the tunnel tests: A dials, B serves.
var (
	ip4A = netip.MustParseAddr("192.168.4.28")
	ip4B = netip.MustParseAddr("192.168.4.29")
)

// bigBody is the size of the HTTP body the tunnel tests fetch.
const bigBody = 64 << 20

// serveHTTP serves /bytes/N on n's port 80 (N deterministic bytes with
// their SHA-256 in the X-Body-Sha256 header) until the test ends.
func serveHTTP(t *testing.T, n *Net) {
	t.Helper()
	ln, err := n.ListenTCP(&net.TCPAddr{Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var size int64
		if _, err := fmt.Sscanf(r.URL.Path, "/bytes/%d", &size); err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Body-Sha256", bodySum(uint64(size), size))
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.Copy(w, newBody(uint64(size), size))
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// fetch GETs url through n and checks the body against its SHA-256.
func fetch(t *testing.T, n *Net, url string, size int64) {
	t.Helper()
	tr := &http.Transport{DialContext: n.DialContext}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	k, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body after %d bytes: %v", url, k, err)
	}
	if k != size || hex.EncodeToString(h.Sum(nil)) != resp.Header.Get("X-Body-Sha256") {
		t.Fatalf("GET %s: %d bytes, SHA-256 %x; want %d bytes, %s", url, k, h.Sum(nil), size, resp.Header.Get("X-Body-Sha256"))
	}
	d := time.Since(start)
	t.Logf("GET %s: %d MiB in %v (%.2f Gbit/s)", url, size>>20, d.Round(time.Millisecond), float64(size)*8/d.Seconds()/1e9)
}

// TestTunnelHTTP: net/http through a WireGuard tunnel between two
// wireguard-go devices over loopback UDP, each end a wgnet Net: B serves
// with ListenTCP (as wireguard-go's http_server example), A fetches a
// 64 MiB body through DialContext (as its http_client example), checked
// by SHA-256; and a thousand small requests on fresh connections at
// once. Closing the devices leaves no goroutine behind.
func TestTunnelHTTP(t *testing.T) {
	leaktest.Check(t)
	tn := newTunnel(t, side{addrs: []netip.Addr{ip4A}}, side{addrs: []netip.Addr{ip4B}})
	serveHTTP(t, tn.B)
	fetch(t, tn.A, "http://192.168.4.29/bytes/"+fmt.Sprint(bigBody), bigBody)

	errs := make(chan error, 100)
	tr := &http.Transport{DialContext: tn.A.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	for i := range 100 {
		go func() {
			resp, err := c.Get(fmt.Sprintf("http://192.168.4.29/bytes/%d", 1000+i))
			if err == nil {
				var b []byte
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				sum := sha256.Sum256(b)
				if err == nil && (len(b) != 1000+i || hex.EncodeToString(sum[:]) != resp.Header.Get("X-Body-Sha256")) {
					err = fmt.Errorf("request %d: %d bytes, wrong sum", i, len(b))
				}
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

// TestTunnelUDPEcho: UDP datagrams of every size from empty to the
// largest (65507 bytes, in 47 fragments) go through the tunnel and come
// back from an echo server on B, with the sender's address; a connected
// socket (DialUDPAddrPort) and an unconnected one (ListenUDP).
func TestTunnelUDPEcho(t *testing.T) {
	leaktest.Check(t)
	tn := newTunnel(t, side{addrs: []netip.Addr{ip4A}}, side{addrs: []netip.Addr{ip4B}})
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
	c, err := tn.A.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(ip4B, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, err := tn.A.ListenUDP(&net.UDPAddr{IP: net.IP(ip4A.AsSlice()), Port: 4000})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	got := make([]byte, 70000)
	for _, size := range []int{0, 1, 1392, 1393, 4000, 65507} {
		msg := make([]byte, size)
		newBody(uint64(size), int64(size)).Read(msg)
		// The first datagram starts the handshake, and may be lost
		// behind it; send again until the echo comes.
		var k int
		for try := 0; ; try++ {
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
		if _, err := u.WriteTo(msg, &net.UDPAddr{IP: net.IP(ip4B.AsSlice()), Port: 7}); err != nil {
			t.Fatal(err)
		}
		k, from, err := u.ReadFrom(got)
		if err != nil || !bytes.Equal(got[:k], msg) || from.String() != "192.168.4.29:7" {
			t.Fatalf("unconnected echo of %d bytes: got %d from %v, %v", size, k, from, err)
		}
	}
}

// TestTunnelPing: Dial("ping4", host) as wireguard-go's ping_client
// example does — an echo request built with golang.org/x/net/icmp
// written to it, the reply read back with the same sequence number and
// data — and ListenPingAddr with WriteTo a *PingAddr and a *net.IPAddr;
// B's stack answers (RFC 792).
func TestTunnelPing(t *testing.T) {
	leaktest.Check(t)
	tn := newTunnel(t, side{addrs: []netip.Addr{ip4A}}, side{addrs: []netip.Addr{ip4B}})
	sock, err := tn.A.Dial("ping4", "192.168.4.29")
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if sock.LocalAddr().Network() != "ping4" || sock.RemoteAddr().String() != "192.168.4.29" {
		t.Errorf("addresses %v %v", sock.LocalAddr(), sock.RemoteAddr())
	}
	ping := func(write func([]byte) error, read func([]byte) (int, error), seq int) {
		t.Helper()
		req := icmp.Echo{Seq: seq, Data: []byte("gopher burrow")}
		b, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &req}).Marshal(nil)
		var k int
		var err error
		buf := make([]byte, 1500)
		for try := 0; ; try++ { // the first request starts the handshake
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
		m, err := icmp.ParseMessage(1, buf[:k])
		if err != nil {
			t.Fatal(err)
		}
		rep, ok := m.Body.(*icmp.Echo)
		if m.Type != ipv4.ICMPTypeEchoReply || !ok || rep.Seq != seq || !bytes.Equal(rep.Data, req.Data) {
			t.Fatalf("reply %+v", m)
		}
	}
	ping(func(b []byte) error {
		sock.SetReadDeadline(time.Now().Add(time.Second))
		_, err := sock.Write(b)
		return err
	}, sock.Read, 1)

	l, err := tn.A.ListenPingAddr(ip4A)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, to := range []net.Addr{PingAddrFromAddr(ip4B), &net.IPAddr{IP: net.IP(ip4B.AsSlice())}} {
		ping(func(b []byte) error {
			l.SetReadDeadline(time.Now().Add(time.Second))
			_, err := l.WriteTo(b, to)
			return err
		}, func(b []byte) (int, error) {
			k, from, err := l.ReadFrom(b)
			if err == nil && from.(*PingAddr).Addr() != ip4B {
				t.Errorf("reply from %v", from)
			}
			return k, err
		}, 2+i)
	}
	if st := tn.B.s.Stats().Net; st.InEchos < 3 || st.OutEchoReps < 3 {
		t.Errorf("B answered %d of %d echo requests, want 3 or more", st.OutEchoReps, st.InEchos)
	}
}

// TestTunnelDNS: LookupHost through the tunnel, to a DNS server on B
// (UDP and TCP port 53), and Dial of a name: the answer's addresses,
// NXDOMAIN as IsNotFound, and a truncated UDP answer asked again over
// TCP. (The resolver's rules are tested in dns_test.go without
// wireguard-go, in virtual time.)
func TestTunnelDNS(t *testing.T) {
	leaktest.Check(t)
	tn := newTunnel(t, side{addrs: []netip.Addr{ip4A}, dns: []netip.Addr{ip4B}}, side{addrs: []netip.Addr{ip4B}})
	zone := testZone()
	stop := serveDNS(t, tn.B, netip.AddrPortFrom(netip.Addr{}, 53), zone)
	defer stop()
	serveHTTP(t, tn.B)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := tn.A.LookupContextHost(ctx, "www.example.com")
	if err != nil || fmt.Sprint(got) != "[192.168.4.29 192.168.4.30]" {
		t.Errorf("LookupHost www.example.com = %v, %v", got, err)
	}
	got, err = tn.A.LookupHost("big.example.com")
	if err != nil || len(got) != 60 {
		t.Errorf("LookupHost big.example.com (truncated over UDP) = %d addresses, %v", len(got), err)
	}
	_, err = tn.A.LookupHost("nowhere.example.com")
	if de, ok := err.(*net.DNSError); !ok || !de.IsNotFound || de.Err != "no such host" || de.Server != "192.168.4.29" {
		t.Errorf("LookupHost nowhere.example.com: %#v", err)
	}
	c, err := tn.A.DialContext(ctx, "tcp4", "www.example.com:80")
	if err != nil {
		t.Fatalf("Dial by name: %v", err)
	}
	if c.RemoteAddr().String() != "192.168.4.29:80" {
		t.Errorf("dialed %v", c.RemoteAddr())
	}
	c.Close()
	fetch(t, tn.A, "http://www.example.com/bytes/100000", 100000)
}
