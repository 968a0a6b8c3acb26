package ustack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/stack"
)

var (
	ip6A = netip.MustParseAddr("2001:db8::1")
	ip6B = netip.MustParseAddr("2001:db8::2")
)

// newDualNet builds two stacks on a pipe with both families: A is
// 10.0.0.1 and 2001:db8::1 on NIC "a0", B 10.0.0.2 and 2001:db8::2 on
// "b0". It returns once every address is usable (DAD done). Call it in a
// synctest bubble, where that takes no real time.
func newDualNet(t testing.TB, pc pipe.Config, cfg Config) *testNet {
	t.Helper()
	ea, eb := pipe.New(pc)
	n := &testNet{ea: ea, eb: eb}
	var err error
	if n.A, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if n.B, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.A.Close()
		n.B.Close()
	})
	n.nicA, err = n.A.AddNIC(ea, NICConfig{Name: "a0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1},
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("2001:db8::1/64")}})
	if err != nil {
		t.Fatal(err)
	}
	n.nicB, err = n.B.AddNIC(eb, NICConfig{Name: "b0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("2001:db8::2/64")}})
	if err != nil {
		t.Fatal(err)
	}
	waitAddresses(t, n.nicA, n.nicB)
	return n
}

// waitAddresses waits until no address of the NICs is tentative.
func waitAddresses(t testing.TB, nics ...*NIC) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, nic := range nics {
		for {
			tentative := false
			for _, a := range nic.Addresses() {
				tentative = tentative || a.State == "tentative"
			}
			if !tentative {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("addresses still tentative: %+v", nic.Addresses())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestParseAddr: package net's names and address forms, and the families
// they allow.
func TestParseAddr(t *testing.T) {
	for _, c := range []struct {
		network, address string
		listen           bool
		want             string
		v6only           bool
		err              string
	}{
		{"tcp", ":80", true, "[::]:80", false, ""},
		{"tcp", "[::]:80", true, "[::]:80", false, ""},
		{"tcp", "0.0.0.0:80", true, "[::]:80", false, ""}, // package net's "tcp" listens on both here too
		{"tcp4", ":80", true, "0.0.0.0:80", false, ""},
		{"tcp4", "[::]:80", true, "0.0.0.0:80", false, ""},
		{"tcp6", ":80", true, "[::]:80", true, ""},
		{"tcp6", "0.0.0.0:80", true, "[::]:80", true, ""},
		{"udp", ":53", true, "[::]:53", false, ""},
		{"udp6", "[2001:db8::1]:53", true, "[2001:db8::1]:53", true, ""},
		{"tcp", "10.0.0.1:80", false, "10.0.0.1:80", false, ""},
		{"tcp", "[::ffff:10.0.0.1]:80", false, "10.0.0.1:80", false, ""},
		{"tcp", "[2001:db8::1]:80", false, "[2001:db8::1]:80", false, ""},
		{"tcp", "[fe80::1%eth0]:80", false, "[fe80::1%eth0]:80", false, ""},
		{"tcp", "[fe80::1%1]:80", false, "[fe80::1%1]:80", false, ""},
		{"tcp4", "[2001:db8::1]:80", false, "", false, errNoSuitable},
		{"tcp6", "10.0.0.1:80", false, "", false, errNoSuitable},
		{"tcp6", "[::ffff:10.0.0.1]:80", false, "", false, errNoSuitable},
		{"tcp", "localhost:80", false, "", false, "ustack resolves no host names"},
		{"tcp", ":80", false, "", false, "missing address"},
		{"tcp", "[2001:db8::1]:99999", false, "", false, "invalid port"},
	} {
		_, fam, err := parseNetwork(c.network)
		if err != nil {
			t.Fatal(err)
		}
		ba, err := parseAddr(c.address, c.listen, fam)
		if c.err != "" {
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.err)) {
				t.Errorf("%s %q: error %v, want %q", c.network, c.address, err, c.err)
			}
			continue
		}
		if err != nil || ba.addr.String() != c.want || ba.v6only != c.v6only {
			t.Errorf("%s %q (listen %v): %v v6only %v, %v; want %s v6only %v", c.network, c.address, c.listen, ba.addr, ba.v6only, err, c.want, c.v6only)
		}
	}
	if _, _, err := parseNetwork("ip6"); err == nil {
		t.Error("ip6 accepted")
	}
}

// TestDualStackListen: "tcp" on ":80" takes both families and reports an
// IPv4 peer as an IPv4 address, not ::ffff:a.b.c.d; "tcp4" and "tcp6"
// restrict, and may share a port; two "tcp" listeners on one port
// conflict, as in Linux with bindv6only = 0.
func TestDualStackListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newDualNet(t, pipe.Config{MTU: 1500}, Config{})
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if got := ln.Addr().String(); got != "[::]:80" {
			t.Errorf("listener address %s", got)
		}
		for _, dst := range []string{"10.0.0.1:80", "[2001:db8::1]:80"} {
			accepted := acceptOne(t, ln)
			c, err := n.B.Dial("tcp", dst)
			if err != nil {
				t.Fatalf("dial %s: %v", dst, err)
			}
			s := <-accepted
			want := "10.0.0.2:"
			if dst[0] == '[' {
				want = "[2001:db8::2]:"
			}
			if got := s.RemoteAddr().String(); !bytes.HasPrefix([]byte(got), []byte(want)) {
				t.Errorf("peer of %s reported as %s", dst, got)
			}
			if ra := s.RemoteAddr().(*net.TCPAddr); dst[0] != '[' && ra.IP.To4() == nil {
				t.Errorf("IPv4 peer as %v", ra.IP)
			}
			io.WriteString(c, "hi")
			buf := make([]byte, 2)
			if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
				t.Fatalf("read: %q %v", buf, err)
			}
			c.Close()
			s.Close()
		}
		if _, err := n.A.Listen("tcp", ":80"); !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("second listener on :80: %v", err)
		}
		l4, err := n.A.Listen("tcp4", ":81")
		if err != nil {
			t.Fatal(err)
		}
		defer l4.Close()
		l6, err := n.A.Listen("tcp6", ":81")
		if err != nil {
			t.Fatalf("tcp6 beside tcp4 on one port: %v", err)
		}
		defer l6.Close()
		for _, c := range []struct {
			ln  net.Listener
			dst string
		}{{l4, "10.0.0.1:81"}, {l6, "[2001:db8::1]:81"}} {
			accepted := acceptOne(t, c.ln)
			conn, err := n.B.Dial("tcp", c.dst)
			if err != nil {
				t.Fatalf("dial %s: %v", c.dst, err)
			}
			(<-accepted).Close()
			conn.Close()
		}
		l6only, err := n.A.Listen("tcp6", ":82")
		if err != nil {
			t.Fatal(err)
		}
		defer l6only.Close()
		if _, err := n.B.Dial("tcp", "10.0.0.1:82"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("IPv4 dial of a tcp6 listener: %v", err)
		}
	})
}

// TestDialFamilies: "tcp4" and "tcp6" refuse addresses of the other
// family, host names stay unsupported, and a link-local address takes a
// zone naming the NIC by name or number; the connection reports it.
func TestDialFamilies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newDualNet(t, pipe.Config{MTU: 1500}, Config{})
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		for _, c := range []struct{ network, addr string }{{"tcp4", "[2001:db8::1]:80"}, {"tcp6", "10.0.0.1:80"}} {
			if _, err := n.B.Dial(c.network, c.addr); err == nil {
				t.Errorf("%s %s: dialed", c.network, c.addr)
			} else if ae := new(net.AddrError); !errors.As(err, &ae) {
				t.Errorf("%s %s: %v, want an AddrError", c.network, c.addr, err)
			}
		}
		var dnsErr *net.DNSError
		if _, err := n.B.Dial("tcp6", "localhost:80"); !errors.As(err, &dnsErr) {
			t.Errorf("host name: %v", err)
		}
		llA := "fe80::ff:fe00:1"
		if _, err := n.B.Dial("tcp", "["+llA+"]:80"); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("link-local without a zone: %v", err)
		}
		for _, zone := range []string{"b0", "1"} {
			accepted := acceptOne(t, ln)
			c, err := n.B.Dial("tcp6", "["+llA+"%"+zone+"]:80")
			if err != nil {
				t.Fatalf("zone %s: %v", zone, err)
			}
			s := <-accepted
			if got := c.RemoteAddr().String(); got != "["+llA+"%b0]:80" {
				t.Errorf("zone %s: remote address %s", zone, got)
			}
			if ra := s.RemoteAddr().(*net.TCPAddr); ra.Zone != "a0" {
				t.Errorf("accepted connection's peer %v, want zone a0", ra)
			}
			c.Close()
			s.Close()
		}
	})
}

// TestUDPDualStack: "udp" on ":53" takes datagrams of both families and
// answers each; a datagram larger than the MTU travels in fragments both
// ways over IPv6 (RFC 8200 §4.5).
func TestUDPDualStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newDualNet(t, pipe.Config{MTU: 1500}, Config{})
		srv, err := n.A.ListenPacket("udp", ":53")
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
		for _, dst := range []string{"10.0.0.1:53", "[2001:db8::1]:53"} {
			for _, size := range []int{10, 8000} {
				c, err := n.B.Dial("udp", dst)
				if err != nil {
					t.Fatal(err)
				}
				msg := bytes.Repeat([]byte{byte(size)}, size)
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 65536)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				k, err := c.Read(buf)
				if err != nil || !bytes.Equal(buf[:k], msg) {
					t.Fatalf("%s, %d bytes: echo %d bytes, %v", dst, size, k, err)
				}
				c.Close()
			}
		}
		st := n.A.Stats()
		if st.UDP.InDatagrams != 2 || st.UDP6.InDatagrams != 2 || st.Net.Ip6ReasmOKs != 1 || st.Net.Ip6FragOKs != 1 {
			t.Errorf("counters: UDP %d, UDP6 %d, reassembled %d, fragmented %d", st.UDP.InDatagrams, st.UDP6.InDatagrams, st.Net.Ip6ReasmOKs, st.Net.Ip6FragOKs)
		}
	})
}

// happyEyeballs is a caller's RFC 8305 connection race on our dialer:
// the first address at once, each next one after delay or as soon as
// the previous attempt fails, the first to connect wins and the others
// are cancelled through their contexts.
func happyEyeballs(ctx context.Context, s *Stack, addrs []string, delay time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		c   net.Conn
		err error
	}
	results := make(chan result, len(addrs))
	failed := make(chan struct{}, len(addrs))
	var wg sync.WaitGroup
	started := 0
	start := func() {
		a := addrs[started]
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.DialContext(ctx, "tcp", a)
			if err != nil {
				failed <- struct{}{}
			}
			results <- result{c, err}
		}()
	}
	start()
	var firstErr error
	for done := 0; done < len(addrs); {
		var next <-chan time.Time
		if started < len(addrs) {
			next = time.After(delay)
		}
		select {
		case <-next:
			start()
			continue
		case <-failed:
			if started < len(addrs) {
				start()
			}
			continue
		case r := <-results:
			done++
			if r.err == nil {
				cancel()
				go func() { // the losers' connections, if any won too
					wg.Wait()
					close(results)
					for r := range results {
						if r.c != nil {
							r.c.Close()
						}
					}
				}()
				return r.c, nil
			}
			if firstErr == nil {
				firstErr = r.err
			}
		}
	}
	return nil, firstErr
}

// TestHappyEyeballs: DialContext of either family works without a
// resolver, and honours its context, so a caller racing an IPv6 and an
// IPv4 address (RFC 8305, as net.Dialer does with its fallback delay)
// gets the IPv4 connection 250 ms in when IPv6 is a black hole, and the
// IPv6 attempt ends at once, leaving no connection behind.
func TestHappyEyeballs(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newDualNet(t, pipe.Config{MTU: 1500}, Config{})
		ln, err := n.A.Listen("tcp", ":80")
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
				fmt.Fprintf(c, "%s\n", c.LocalAddr())
				c.Close()
			}
		}()
		// Both families work when both are there: IPv6 first wins.
		c, err := happyEyeballs(context.Background(), n.B, []string{"[2001:db8::1]:80", "10.0.0.1:80"}, 250*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if ra := c.RemoteAddr().String(); ra != "[2001:db8::1]:80" {
			t.Errorf("with both families: connected to %s", ra)
		}
		c.Close()
		// A black-holed IPv6 address (on the link, but nobody answers
		// its neighbour solicitations): IPv4 after the fallback delay.
		begin := time.Now()
		c, err = happyEyeballs(context.Background(), n.B, []string{"[2001:db8::77]:80", "10.0.0.1:80"}, 250*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(begin); took < 250*time.Millisecond || took > 300*time.Millisecond {
			t.Errorf("connected after %v, want the fallback delay and a round trip", took)
		}
		if ra := c.RemoteAddr().String(); ra != "10.0.0.1:80" {
			t.Errorf("connected to %s", ra)
		}
		c.Close()
		synctest.Wait()
		for _, ci := range n.B.Conns() {
			if ci.Remote.Addr() == netip.MustParseAddr("2001:db8::77") {
				t.Errorf("the cancelled attempt left %+v", ci)
			}
		}
		// A cancelled dial returns context.Canceled at once.
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel()
		}()
		begin = time.Now()
		if _, err := n.B.DialContext(ctx, "tcp6", "[2001:db8::77]:80"); !errors.Is(err, context.Canceled) || time.Since(begin) != 100*time.Millisecond {
			t.Errorf("cancelled dial: %v after %v", err, time.Since(begin))
		}
	})
}

// TestHTTPOverIPv6: net/http over a "tcp6" listener, ten requests at
// once, bodies up to 4 MiB, checked byte for byte.
func TestHTTPOverIPv6(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newDualNet(t, pipe.Config{MTU: 1500, Delay: 200 * time.Microsecond, QueueLen: 4096}, Config{})
		ln, err := n.A.Listen("tcp6", "[2001:db8::1]:80")
		if err != nil {
			t.Fatal(err)
		}
		body := bytes.Repeat([]byte("ipv6 "), 800_000)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(body)
		})}
		go srv.Serve(ln)
		defer srv.Close()
		tr := &http.Transport{DialContext: n.B.DialContext}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get("http://[2001:db8::1]/")
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil || !bytes.Equal(got, body) {
					t.Errorf("body of %d bytes, %v", len(got), err)
				}
			}()
		}
		wg.Wait()
		conns := n.B.Conns()
		for _, c := range conns {
			if !c.Remote.Addr().Is6() {
				t.Errorf("connection %v -> %v not over IPv6", c.Local, c.Remote)
			}
			if c.Info.SndMSS != 1500-60-12 {
				t.Errorf("MSS %d over IPv6 at MTU 1500", c.Info.SndMSS)
			}
		}
	})
}

// TestTentativeAddress: an IPv6 address cannot be bound while DAD runs
// (EADDRNOTAVAIL, as in Linux), and can once it is done.
func TestTentativeAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ea, eb := pipe.New(pipe.Config{MTU: 1500})
		defer eb.Close()
		s, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		nic, err := s.AddNIC(ea, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::5/64")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Listen("tcp6", "[2001:db8::5]:80"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Errorf("listen on a tentative address: %v", err)
		}
		waitAddresses(t, nic)
		ln, err := s.Listen("tcp6", "[2001:db8::5]:80")
		if err != nil {
			t.Fatalf("after DAD: %v", err)
		}
		ln.Close()
		var infos []stack.AddrInfo = nic.Addresses()
		if len(infos) != 2 || !infos[0].Prefix.Addr().IsLinkLocalUnicast() {
			t.Errorf("addresses %+v, want the link-local one and ours", infos)
		}
	})
}
