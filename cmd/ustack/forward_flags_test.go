package main

import (
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestForwardFlagsIPv6: by default `ustack forward` numbers an IPv6
// network as slirp4netns does (fd00::/64: gateway fd00::2, DNS fd00::3)
// with the guest at fd00::100; -6/--enable-ipv6 is accepted,
// --disable-ipv6 leaves IPv4 alone, --cidr6 renumbers, and what IPv6
// cannot have (an MTU under 1280, a link-local or IPv4 --cidr6) is
// refused with a message.
func TestForwardFlagsIPv6(t *testing.T) {
	base := []string{"--disable-dns"}
	c, err := forwardFlags(append(base, "1234"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ipv6() || c.cidr6 != netip.MustParsePrefix("fd00::/64") || c.gateway6() != netip.MustParseAddr("fd00::2") ||
		c.dnsAddr6() != netip.MustParseAddr("fd00::3") || c.guest6() != netip.MustParseAddr("fd00::100") {
		t.Fatalf("defaults: %v gateway %v DNS %v guest %v", c.cidr6, c.gateway6(), c.dnsAddr6(), c.guest6())
	}
	if c.guest() != netip.MustParseAddr("10.0.2.100") || c.gateway() != netip.MustParseAddr("10.0.2.2") {
		t.Fatalf("IPv4 numbering changed: %v %v", c.guest(), c.gateway())
	}
	if c, err = forwardFlags(append(base, "-6", "--enable-ipv6", "1234"), io.Discard); err != nil || !c.ipv6() {
		t.Fatalf("-6: %v", err)
	}
	if c, err = forwardFlags(append(base, "--disable-ipv6", "--mtu", "576", "1234"), io.Discard); err != nil || c.ipv6() {
		t.Fatalf("--disable-ipv6 with MTU 576: %v, ipv6 %v", err, c != nil && c.ipv6())
	}
	if c, err = forwardFlags(append(base, "--cidr6", "fd12:3456::1/48", "1234"), io.Discard); err != nil ||
		c.guest6() != netip.MustParseAddr("fd12:3456::100") || c.gateway6() != netip.MustParseAddr("fd12:3456::2") {
		t.Fatalf("--cidr6: %v %v", err, c)
	}
	for _, bad := range [][]string{
		{"--mtu", "1200"},
		{"--cidr6", "fe80::/64"},
		{"--cidr6", "10.0.3.0/24"},
		{"--cidr6", "ff02::/64"},
		{"--cidr6", "fd00::/126"},
	} {
		if _, err := forwardFlags(append(append(base, bad...), "1234"), io.Discard); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, bad[0])
		}
	}
}

// TestForwardHostAddr: the gateway of each family stands for the host's
// loopback of that family (and back for answers); the namespace's own
// networks, loopback, multicast and link-local IPv6 destinations are
// refused; with --disable-host-loopback so is the gateway.
func TestForwardHostAddr(t *testing.T) {
	c, err := forwardFlags([]string{"--disable-dns", "1234"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{cfg: c}
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		dst, want string
		ok        bool
	}{
		{"10.0.2.2:80", "127.0.0.1:80", true},
		{"[fd00::2]:80", "[::1]:80", true},
		{"[2001:db8::5]:443", "[2001:db8::5]:443", true},
		{"192.0.2.1:443", "192.0.2.1:443", true},
		{"[fd00::100]:80", "", false},
		{"[fd00::77]:80", "", false},
		{"10.0.2.50:80", "", false},
		{"[::1]:80", "", false},
		{"[fe80::1]:80", "", false},
		{"[ff02::1]:80", "", false},
	} {
		got, ok := f.hostAddr(ap(tc.dst))
		if ok != tc.ok || ok && got != ap(tc.want) {
			t.Errorf("hostAddr(%s) = %v %v, want %s %v", tc.dst, got, ok, tc.want, tc.ok)
		}
	}
	if got := f.guestAddr(ap("[::1]:8080")); got != ap("[fd00::2]:8080") {
		t.Errorf("guestAddr(::1) = %v", got)
	}
	if got := f.guestAddr(ap("127.0.0.1:8080")); got != ap("10.0.2.2:8080") {
		t.Errorf("guestAddr(127.0.0.1) = %v", got)
	}
	c.noLoopback = true
	if _, ok := f.hostAddr(ap("[fd00::2]:80")); ok {
		t.Error("--disable-host-loopback: the IPv6 gateway still reaches ::1")
	}
}

// TestParsePortForward: pasta's [ADDR:]HOSTPORT[:GUESTPORT], with an
// IPv6 address in brackets; no address means both families.
func TestParsePortForward(t *testing.T) {
	for _, tc := range []struct {
		in      string
		host    string
		guest   uint16
		anyAddr bool
	}{
		{"8080", "0.0.0.0:8080", 8080, true},
		{"8080:80", "0.0.0.0:8080", 80, true},
		{"127.0.0.1:8080:80", "127.0.0.1:8080", 80, false},
		{"127.0.0.1:8080", "127.0.0.1:8080", 8080, false},
		{"[::1]:8080:80", "[::1]:8080", 80, false},
		{"[::]:53", "[::]:53", 53, false},
	} {
		pf, err := parsePortForward(tc.in)
		if err != nil || pf.host != netip.MustParseAddrPort(tc.host) || pf.guest != tc.guest || pf.anyAddr != tc.anyAddr {
			t.Errorf("%q: %+v %v", tc.in, pf, err)
		}
	}
	for _, bad := range []string{"[::1]8080", "[10.0.0.1]:80", "[::1]:1:2:3", "[fe80::1%eth0]:80", "0", "x:80"} {
		if _, err := parsePortForward(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := forwardFlags([]string{"--disable-dns", "--disable-ipv6", "-t", "[::1]:80", "1"}, io.Discard); err == nil {
		t.Error("an IPv6 port forward with --disable-ipv6 accepted")
	}
}

// TestResolvConfNameserver: the first IPv4 nameserver, else the first
// IPv6 one (zone kept), else an error.
func TestResolvConfNameserver(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range []struct{ conf, want string }{
		{"nameserver 2001:db8::53\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n", "192.0.2.53"},
		{"# comment\nsearch example\nnameserver fe80::1%eth0\nnameserver 2001:db8::53\n", "fe80::1%eth0"},
		{"nameserver bogus\nnameserver 2001:db8::53\n", "2001:db8::53"},
		{"search example\n", ""},
	} {
		p := filepath.Join(dir, "resolv"+string(rune('a'+i)))
		if err := os.WriteFile(p, []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := resolvConfNameserver(p)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: %v, want an error", tc.conf, a)
			}
			continue
		}
		if err != nil || a != netip.MustParseAddr(tc.want) {
			t.Errorf("%q: %v %v, want %s", tc.conf, a, err, tc.want)
		}
	}
}
