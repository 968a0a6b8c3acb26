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
	"slices"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/ustack/ustack/internal/leaktest"
)

// The addresses of the tunnel tests: A dials, B serves.
var (
	ip4A = netip.MustParseAddr("192.168.4.28")
	ip4B = netip.MustParseAddr("192.168.4.29")
)

// The addresses of the tunnel tests over IPv6: A (fd00::28) dials, B
// (fd00::29, www.example.com's AAAA in testZone) serves.
var (
	ip6A = netip.MustParseAddr("fd00::28")
	ip6B = netip.MustParseAddr("fd00::29")
)

// tunnelFamily is what a tunnel test needs to know of an address family:
// each test runs once per family, IPv4-only ends and IPv6-only ends.
type tunnelFamily struct {
	name  string
	a, b  netip.Addr
	v6    bool
	ping  string // the Dial network of a ping socket
	frame int    // the largest UDP payload in one packet of the tunnel's MTU (1420)
	max   int    // the largest UDP payload (RFC 768 over IPv4, RFC 8200 over IPv6)
}

var tunnelFamilies = []tunnelFamily{
	{name: "IPv4", a: ip4A, b: ip4B, ping: "ping4", frame: 1392, max: 65507},
	{name: "IPv6", a: ip6A, b: ip6B, v6: true, ping: "ping6", frame: 1372, max: 65527},
}

// forEachFamily runs test over a fresh tunnel of each family.
func forEachFamily(t *testing.T, test func(t *testing.T, f tunnelFamily, tn *tunnel)) {
	for _, f := range tunnelFamilies {
		t.Run(f.name, func(t *testing.T) {
			leaktest.Check(t)
			test(t, f, newTunnel(t, side{addrs: []netip.Addr{f.a}}, side{addrs: []netip.Addr{f.b}}))
		})
	}
}

// url is the address of path on B's HTTP server.
func (f tunnelFamily) url(path string) string {
	return "http://" + netip.AddrPortFrom(f.b, 80).String() + path
}

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
// wireguard-go devices over loopback UDP, each end a wgnet Net, for each
// family: B serves with ListenTCP (as wireguard-go's http_server
// example), A fetches a 64 MiB body through DialContext (as its
// http_client example), checked by SHA-256; and a hundred small requests
// on fresh connections at once, each from A's address. Closing the
// devices leaves no goroutine behind.
func TestTunnelHTTP(t *testing.T) {
	forEachFamily(t, func(t *testing.T, f tunnelFamily, tn *tunnel) {
		serveHTTP(t, tn.B)
		fetch(t, tn.A, f.url("/bytes/"+fmt.Sprint(bigBody)), bigBody)

		errs := make(chan error, 100)
		tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := tn.A.DialContext(ctx, network, addr)
			if err == nil && c.LocalAddr().(*net.TCPAddr).AddrPort().Addr() != f.a {
				c.Close()
				return nil, fmt.Errorf("connection from %v, want %v", c.LocalAddr(), f.a)
			}
			return c, err
		}}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: time.Minute}
		for i := range 100 {
			go func() {
				resp, err := c.Get(f.url(fmt.Sprintf("/bytes/%d", 1000+i)))
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
	})
}

// TestTunnelUDPEcho: UDP datagrams from empty to the largest of each
// family (65507 bytes over IPv4, 65527 over IPv6, in fragments of the
// tunnel's MTU) go through the tunnel and come back from an echo server
// on B with the sender's address, on a connected socket
// (DialUDPAddrPort) and an unconnected one (ListenUDP); one byte more
// than the largest is refused.
func TestTunnelUDPEcho(t *testing.T) {
	forEachFamily(t, func(t *testing.T, f tunnelFamily, tn *tunnel) {
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
		c, err := tn.A.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(f.b, 7))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		u, err := tn.A.ListenUDP(&net.UDPAddr{IP: net.IP(f.a.AsSlice()), Port: 4000})
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		got := make([]byte, 70000)
		bAddr := netip.AddrPortFrom(f.b, 7).String()
		for _, size := range []int{0, 1, f.frame, f.frame + 1, 4000, f.max} {
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
			if _, err := u.WriteTo(msg, &net.UDPAddr{IP: net.IP(f.b.AsSlice()), Port: 7}); err != nil {
				t.Fatal(err)
			}
			k, from, err := u.ReadFrom(got)
			if err != nil || !bytes.Equal(got[:k], msg) || from.String() != bAddr {
				t.Fatalf("unconnected echo of %d bytes: got %d from %v, %v", size, k, from, err)
			}
		}
		if _, err := c.Write(make([]byte, f.max+1)); err == nil {
			t.Errorf("a %d-byte datagram was accepted", f.max+1)
		}
		st := tn.B.s.Stats().Net
		if reasm := map[bool]uint64{false: st.ReasmOKs, true: st.Ip6ReasmOKs}[f.v6]; reasm == 0 {
			t.Errorf("B reassembled no %s datagram: %+v", f.name, st)
		}
	})
}

// TestTunnelPing: Dial("ping4"/"ping6", host) as wireguard-go's
// ping_client example does — an echo request built with
// golang.org/x/net/icmp written to it, the reply read back with the same
// sequence number and data — and ListenPingAddr with WriteTo a *PingAddr
// and a *net.IPAddr; B's stack answers (RFC 792, RFC 4443 §4.2).
func TestTunnelPing(t *testing.T) {
	forEachFamily(t, func(t *testing.T, f tunnelFamily, tn *tunnel) {
		sock, err := tn.A.Dial(f.ping, f.b.String())
		if err != nil {
			t.Fatal(err)
		}
		defer sock.Close()
		if sock.LocalAddr().Network() != f.ping || sock.RemoteAddr().String() != f.b.String() {
			t.Errorf("addresses %v %v", sock.LocalAddr(), sock.RemoteAddr())
		}
		pingOnce(t, f.v6, func(b []byte) error {
			sock.SetReadDeadline(time.Now().Add(time.Second))
			_, err := sock.Write(b)
			return err
		}, sock.Read, 1)
		l, err := tn.A.ListenPingAddr(f.a)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for i, to := range []net.Addr{PingAddrFromAddr(f.b), &net.IPAddr{IP: net.IP(f.b.AsSlice())}} {
			pingOnce(t, f.v6, func(b []byte) error {
				l.SetReadDeadline(time.Now().Add(time.Second))
				_, err := l.WriteTo(b, to)
				return err
			}, func(b []byte) (int, error) {
				k, from, err := l.ReadFrom(b)
				if err == nil && from.(*PingAddr).Addr() != f.b {
					t.Errorf("reply from %v", from)
				}
				return k, err
			}, 2+i)
		}
		st := tn.B.s.Stats().Net
		in, out := st.InEchos, st.OutEchoReps
		if f.v6 {
			in, out = st.Icmp6InEchos, st.Icmp6OutEchoReplies
		}
		if in < 3 || out < 3 {
			t.Errorf("B answered %d of %d echo requests, want 3 or more", out, in)
		}
	})
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
