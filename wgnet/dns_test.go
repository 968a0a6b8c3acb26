package wgnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// The resolver and DialContext, tested without wireguard-go: two wgnet
// devices joined directly (directPair) in a synctest bubble, so the 5 s
// timeouts are exact and take no time. B has three addresses, each with
// a DNS server of its own.
var (
	dns1 = netip.MustParseAddr("192.168.4.53")
	dns2 = netip.MustParseAddr("192.168.4.54")
)

// resolverPair is A (192.168.4.28, asking servers) and B (192.168.4.29
// and the servers' addresses), with zone z1 served at dns1 and z2 at
// dns2 (nil: no server there).
func resolverPair(t *testing.T, servers []netip.Addr, z1, z2 *dnsZone) *directPair {
	t.Helper()
	p := newDirectPair(t, side{addrs: []netip.Addr{ip4A}, dns: servers}, side{addrs: []netip.Addr{ip4B, dns1, dns2}})
	for _, s := range []struct {
		at netip.Addr
		z  *dnsZone
	}{{dns1, z1}, {dns2, z2}} {
		if s.z != nil {
			stop := serveDNS(t, p.B, netip.AddrPortFrom(s.at, 53), s.z)
			t.Cleanup(stop)
		}
	}
	return p
}

// dnsErr returns err as a *net.DNSError, failing the test otherwise.
func dnsErr(t *testing.T, err error) *net.DNSError {
	t.Helper()
	var de *net.DNSError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *net.DNSError", err, err)
	}
	return de
}

// TestLookupAnswers: the addresses of the A records (the Net has only an
// IPv4 address, so only A is asked); a truncated UDP answer asked again
// over TCP (RFC 7766 §5) with every record; literals returned as they
// are (an IPv6 zone dropped); names that are not domain names, and the
// empty name, refused without a query.
func TestLookupAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		z := testZone()
		p := resolverPair(t, []netip.Addr{dns1}, z, nil)
		got, err := p.A.LookupHost("WWW.Example.com")
		if err != nil || !slices.Equal(got, []string{"192.168.4.29", "192.168.4.30"}) {
			t.Errorf("www = %v, %v", got, err)
		}
		got, err = p.A.LookupHost("big.example.com")
		if err != nil || len(got) != 60 || got[59] != "10.0.1.60" {
			t.Errorf("big = %d addresses, %v", len(got), err)
		}
		want := []string{"udp A www.example.com.", "udp A big.example.com.", "tcp A big.example.com."}
		if q := z.Queries(); !slices.Equal(q, want) {
			t.Errorf("queries %q, want %q", q, want)
		}
		for in, out := range map[string]string{"10.1.2.3": "10.1.2.3", "fe80::1%eth0": "fe80::1", "2001:DB8::1": "2001:db8::1"} {
			if got, err := p.A.LookupHost(in); err != nil || !slices.Equal(got, []string{out}) {
				t.Errorf("literal %s = %v, %v", in, got, err)
			}
		}
		for _, bad := range []string{"", "a..b", "-a.com", "a-.com", "exa mple.com", "123", "a." + string(make([]byte, 64))} {
			_, err := p.A.LookupHost(bad)
			if de := dnsErr(t, err); !de.IsNotFound || de.Err != "no such host" {
				t.Errorf("LookupHost(%q): %#v", bad, de)
			}
		}
		if q := z.Queries(); len(q) != 3 {
			t.Errorf("queries for names that are not domain names: %q", q[3:])
		}
	})
}

// TestLookupNotFound: a name error (NXDOMAIN) and an answer without a
// record of the type asked both end the lookup at once with "no such
// host", IsNotFound, and the server that said so — not asked again nor
// of the next server.
func TestLookupNotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		z1, z2 := testZone(), testZone()
		p := resolverPair(t, []netip.Addr{dns1, dns2}, z1, z2)
		for _, name := range []string{"nowhere.example.com", "v6.example.com"} {
			_, err := p.A.LookupHost(name)
			de := dnsErr(t, err)
			if !de.IsNotFound || de.Err != "no such host" || de.Server != dns1.String() || de.Name != name {
				t.Errorf("%s: %#v", name, de)
			}
		}
		if q1, q2 := z1.Queries(), z2.Queries(); len(q1) != 2 || len(q2) != 0 {
			t.Errorf("queries: first server %q, second %q", q1, q2)
		}
	})
}

// TestLookupAAAA: the resolver's IPv6 side, as netstack's — a Net with
// an IPv6 address asks AAAA beside A, at once, and returns the IPv6
// addresses first; a name with only AAAA records resolves even though
// its A query says "no such host"; a Net with only an IPv6 address asks
// only AAAA. The test marks A's Net as having an IPv6 address rather
// than giving it one (written before the stack had IPv6), so the
// queries still cross the directly joined devices over IPv4.
func TestLookupAAAA(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		z := testZone()
		p := resolverPair(t, []netip.Addr{dns1}, z, nil)
		p.A.hasV6 = true
		for name, want := range map[string][]string{
			"www.example.com": {"fd00::29", "192.168.4.29", "192.168.4.30"},
			"v6.example.com":  {"fd00::6"},
		} {
			if got, err := p.A.LookupHost(name); err != nil || !slices.Equal(got, want) {
				t.Errorf("%s = %v, %v; want %v", name, got, err, want)
			}
		}
		_, err := p.A.LookupHost("nowhere.example.com")
		if de := dnsErr(t, err); !de.IsNotFound || de.Err != "no such host" {
			t.Errorf("nowhere: %#v", de)
		}
		q := z.Queries()
		slices.Sort(q)
		want := []string{
			"udp A nowhere.example.com.", "udp A v6.example.com.", "udp A www.example.com.",
			"udp AAAA nowhere.example.com.", "udp AAAA v6.example.com.", "udp AAAA www.example.com.",
		}
		if !slices.Equal(q, want) {
			t.Errorf("queries %q, want %q", q, want)
		}

		p.A.hasV4 = false
		got, err := p.A.LookupHost("www.example.com")
		if err != nil || !slices.Equal(got, []string{"fd00::29"}) {
			t.Errorf("IPv6 only: www = %v, %v", got, err)
		}
		if q := z.Queries(); len(q) != 7 || q[6] != "udp AAAA www.example.com." {
			t.Errorf("IPv6 only: queries %q", q[6:])
		}
	})
}

// TestLookupServerOrder: a server that fails (SERVFAIL) or is lame is
// passed over for the next; when all fail, the list is tried twice and
// the last error is returned: SERVFAIL is temporary, a lame referral is
// not.
func TestLookupServerOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := &dnsZone{RCode: dnsmessage.RCodeServerFailure}
		good := testZone()
		p := resolverPair(t, []netip.Addr{dns1, dns2}, bad, good)
		got, err := p.A.LookupHost("www.example.com")
		if err != nil || len(got) != 2 {
			t.Errorf("www = %v, %v", got, err)
		}
		if q1, q2 := bad.Queries(), good.Queries(); len(q1) != 1 || len(q2) != 1 {
			t.Errorf("queries: %q then %q", q1, q2)
		}
	})
	for _, tc := range []struct {
		z         *dnsZone
		err       string
		temporary bool
	}{
		{&dnsZone{RCode: dnsmessage.RCodeServerFailure}, "server misbehaving", true},
		{&dnsZone{RCode: dnsmessage.RCodeRefused}, "server misbehaving", false},
		{&dnsZone{Lame: true}, "lame referral", false},
	} {
		synctest.Test(t, func(t *testing.T) {
			p := resolverPair(t, []netip.Addr{dns1}, tc.z, nil)
			_, err := p.A.LookupHost("www.example.com")
			de := dnsErr(t, err)
			if de.Err != tc.err || de.IsTemporary != tc.temporary || de.IsNotFound || de.Server != dns1.String() {
				t.Errorf("%s: %#v", tc.err, de)
			}
			if q := tc.z.Queries(); len(q) != 2 {
				t.Errorf("%s: %d queries, want 2 (the list, twice)", tc.err, len(q))
			}
		})
	}
}

// TestLookupTimeout: a server that never answers costs 5 s per exchange
// before the next is asked; with none answering, the lookup fails after
// both rounds (10 s) with a timeout; a context deadline or cancel ends
// it at once, with "i/o timeout" or "operation was canceled".
func TestLookupTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		silent, good := &dnsZone{Silent: true}, testZone()
		p := resolverPair(t, []netip.Addr{dns1, dns2}, silent, good)
		start := time.Now()
		got, err := p.A.LookupHost("www.example.com")
		if err != nil || len(got) != 2 {
			t.Errorf("www = %v, %v", got, err)
		}
		if d := time.Since(start); d != dnsTimeout {
			t.Errorf("answer after %v, want %v", d, dnsTimeout)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		silent := &dnsZone{Silent: true}
		p := resolverPair(t, []netip.Addr{dns1}, silent, nil)
		start := time.Now()
		_, err := p.A.LookupHost("www.example.com")
		de := dnsErr(t, err)
		if !de.IsTimeout || !de.IsTemporary || !strings.HasSuffix(de.Err, ": i/o timeout") {
			t.Errorf("no answer: %#v", de)
		}
		if d := time.Since(start); d != 2*dnsTimeout {
			t.Errorf("failed after %v, want %v", d, 2*dnsTimeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		_, err = p.A.LookupContextHost(ctx, "www.example.com")
		if de := dnsErr(t, err); !de.IsTimeout || time.Since(start) != time.Second {
			// The deadline ends the first attempt, and the second at once.
			t.Errorf("context deadline: %#v after %v", de, time.Since(start))
		}
		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(1500*time.Millisecond, cancel)
		start = time.Now()
		_, err = p.A.LookupContextHost(ctx, "www.example.com")
		if de := dnsErr(t, err); de.Err != "operation was canceled" || time.Since(start) != 1500*time.Millisecond {
			t.Errorf("cancel: %#v after %v", de, time.Since(start))
		}
	})
}

// TestDialContext: DialContext resolves, filters by family and tries
// the addresses in turn, each with its share of the context's time (at
// least 2 s): the first address black-holed, the second answers after
// its share of 10 s; networks and addresses netstack refuses are refused
// the same way.
func TestDialContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		z := testZone()
		z.A["two.example.com."] = []netip.Addr{netip.MustParseAddr("192.168.4.99"), ip4B}
		p := resolverPair(t, []netip.Addr{dns1}, z, nil)
		p.SetDrop(func(pkt []byte) bool {
			return len(pkt) >= 20 && netip.AddrFrom4([4]byte(pkt[16:20])) == netip.MustParseAddr("192.168.4.99")
		})
		ln, err := p.B.ListenTCP(&net.TCPAddr{Port: 80})
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
				c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		c, err := p.A.DialContext(ctx, "tcp", "two.example.com:80")
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("connected after %v, want 5s (half of 10 s for the first address)", d)
		}
		if c.RemoteAddr().String() != "192.168.4.29:80" {
			t.Errorf("connected to %v", c.RemoteAddr())
		}
		u, err := p.A.Dial("udp4", "192.168.4.29:53")
		if _, ok := u.(*UDPConn); err != nil || !ok {
			t.Errorf("udp4: %T, %v", u, err)
		} else {
			u.Close()
		}
		for _, tc := range []struct{ network, address, want string }{
			{"sctp", "192.168.4.29:80", "unknown network sctp"},
			{"tcp", "192.168.4.29", "missing port in address"},
			{"tcp", "192.168.4.29:http", "port must be numeric"},
			{"tcp", "192.168.4.29:65536", "port must be numeric"},
			{"tcp6", "www.example.com:80", "no suitable address found"},
			{"tcp", "nowhere.example.com:80", "no such host"},
			{"tcp", ":80", "no such host"},
		} {
			_, err := p.A.Dial(tc.network, tc.address)
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "dial" || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Dial(%q, %q) = %v, want an OpError saying %q", tc.network, tc.address, err, tc.want)
			}
		}
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		if _, err := p.A.DialContext(ctx, "tcp", "192.168.4.29:80"); err == nil || !strings.Contains(err.Error(), "operation was canceled") {
			t.Errorf("cancelled dial: %v", err)
		}
	})
}
