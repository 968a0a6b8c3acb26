package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/netns/netnstest"
)

// TestServeFlags: -addr and -gw may be repeated, for IPv4 and IPv6, with
// one default gateway per family; the default gateways go with the
// default addresses only (issue 8: `-addr 192.168.5.2/24` alone failed
// with "-gw 10.77.0.1 is not on the link's prefix"); a gateway off every
// -addr's prefix (IPv6 link-local ones aside), two of one family, and
// other bad flags are refused with status 2 before anything is opened.
func TestServeFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		addrs string // comma-separated
		gws   string // "none" or comma-separated
		code  int    // 2: refused
	}{
		{args: []string{"-link", "tap:x"}, addrs: "10.77.0.2/24, fd77::2/64", gws: "10.77.0.1, fd77::1"},
		{args: []string{"-link", "tap:x", "-addr", "10.77.0.2/24"}, addrs: "10.77.0.2/24", gws: "10.77.0.1"},
		{args: []string{"-link", "tap:x", "-gw", ""}, addrs: "10.77.0.2/24, fd77::2/64", gws: "none"},
		{args: []string{"-link", "tap:x", "-addr", "192.168.5.2/24"}, addrs: "192.168.5.2/24", gws: "none"},
		{args: []string{"-link", "tap:x", "-addr", "10.77.0.9/24"}, addrs: "10.77.0.9/24", gws: "none"},
		{args: []string{"-link", "tap:x", "-addr", "192.168.5.2/24", "-gw", "192.168.5.1"}, addrs: "192.168.5.2/24", gws: "192.168.5.1"},
		{args: []string{"-netns-demo", "-addr", "192.168.5.2/24", "-gw", "192.168.5.1"}, addrs: "192.168.5.2/24", gws: "192.168.5.1"},
		{args: []string{"-link", "tap:x", "-addr", "2001:db8::2/64", "-addr", "192.168.5.2/24", "-gw", "192.168.5.1", "-gw", "2001:db8::1"},
			addrs: "2001:db8::2/64, 192.168.5.2/24", gws: "192.168.5.1, 2001:db8::1"},
		{args: []string{"-link", "tap:x", "-addr", "2001:db8::2/64", "-gw", "fe80::1"}, addrs: "2001:db8::2/64", gws: "fe80::1"},
		{args: []string{"-link", "tap:x", "-addr", "fd77::2/64"}, addrs: "fd77::2/64", gws: "fd77::1"},
		{args: []string{"-link", "tap:x", "-addr", "192.168.5.2/24", "-gw", "10.77.0.1"}, code: 2},
		{args: []string{"-link", "tap:x", "-gw", "10.1.1.1"}, code: 2},
		{args: []string{"-link", "tap:x", "-gw", "bogus"}, code: 2},
		{args: []string{"-link", "tap:x", "-gw", "10.77.0.1", "-gw", "10.77.0.3"}, code: 2},
		{args: []string{"-link", "tap:x", "-addr", "2001:db8::2/64", "-gw", "2001:db9::1"}, code: 2},
		{args: []string{"-link", "tap:x", "-addr", "192.168.5.2"}, code: 2},
		{args: []string{"-link", "tap:x", "-addr", "::ffff:10.0.0.1/120"}, code: 2},
		{args: []string{"-link", "tap:x", "-addr", ""}, code: 2},
		{args: []string{"-addr", "192.168.5.2/24"}, code: 2}, // no -link
		{args: []string{"-link", "tap:x", "extra"}, code: 2},
	} {
		var stderr bytes.Buffer
		c, code := parseServeFlags(tc.args, &stderr)
		if tc.code != 0 {
			if c != nil || code != tc.code {
				t.Errorf("serve %q: accepted (status %d), want status %d", tc.args, code, tc.code)
			} else if stderr.Len() == 0 {
				t.Errorf("serve %q: refused without saying why", tc.args)
			}
			continue
		}
		if c == nil {
			t.Errorf("serve %q: refused (status %d): %s", tc.args, code, stderr.String())
			continue
		}
		if got := addrsString(c.addrs); got != tc.addrs {
			t.Errorf("serve %q: addresses %s, want %s", tc.args, got, tc.addrs)
		}
		if got := gwsString(c.gws); got != tc.gws {
			t.Errorf("serve %q: gateways %s, want %s", tc.args, got, tc.gws)
		}
	}
	var help bytes.Buffer
	if c, code := parseServeFlags([]string{"-h"}, &help); c != nil || code != 0 {
		t.Errorf("serve -h: status %d", code)
	}
	if !strings.Contains(help.String(), "another -addr there is no gateway unless -gw gives one") || !strings.Contains(help.String(), "may be given more than once") {
		t.Errorf("serve -h does not say when there is a default gateway:\n%s", help.String())
	}
}

// TestServeOffloadFlags: the links' offloads are on unless -offloads=false
// (or its old name, -vnet-hdr=false) turns them off.
func TestServeOffloadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"-link", "tap:x"}, true},
		{[]string{"-link", "tap:x", "-offloads=false"}, false},
		{[]string{"-link", "tap:x", "-vnet-hdr=false"}, false},
		{[]string{"-link", "afpacket:x", "-offloads=false"}, false},
		{[]string{"-link", "tap:x", "-vnet-hdr"}, true},
	} {
		var stderr bytes.Buffer
		c, code := parseServeFlags(tc.args, &stderr)
		if c == nil {
			t.Fatalf("serve %q: refused (status %d): %s", tc.args, code, stderr.String())
		}
		if c.offloads != tc.want {
			t.Errorf("serve %q: offloads %v, want %v", tc.args, c.offloads, tc.want)
		}
	}
}

// TestServeOtherAddr: `ustack serve` on a TAP with an address of another
// prefix than the default and no -gw starts without a gateway and
// answers curl on that prefix.
func TestServeOtherAddr(t *testing.T) {
	netnstest.Skip(t, true)
	netnstest.NeedCommands(t, "curl", "go")
	bin := buildUstack(t)
	ns := netnstest.NS(t, "ustack-addr-")
	s := startServe(t, bin, "-link", "tap:ustk0", "-netns", ns.Name, "-addr", "192.168.5.2/24")
	s.waitFor(t, `^ustack serve: 192\.168\.5\.2/24 on tap:ustk0 in netns \S+ \(MTU \d+\), gateway none$`)
	s.waitFor(t, `udp-echo`)
	if err := ns.IP("addr", "add", "192.168.5.1/24", "dev", "ustk0"); err != nil {
		t.Fatal(err)
	}
	if err := ns.IP("link", "set", "dev", "ustk0", "up"); err != nil {
		t.Fatal(err)
	}
	if got := curl(t, ns, "http://192.168.5.2/bytes/100000"); got != "200 100000" {
		t.Errorf("curl: %q, want \"200 100000\"", got)
	}
	s.stop(t)
}
