package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/netns/netnstest"
)

// TestServeFlags: the default gateway goes with the default address only
// (issue 8: `-addr 192.168.5.2/24` alone failed with "-gw 10.77.0.1 is
// not on the link's prefix"); a gateway off -addr's prefix and other bad
// flags are refused with status 2 before anything is opened.
func TestServeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		addr string
		gw   string // "" : none
		code int    // 2: refused
	}{
		{args: []string{"-link", "tap:x"}, addr: "10.77.0.2/24", gw: "10.77.0.1"},
		{args: []string{"-link", "tap:x", "-addr", "10.77.0.2/24"}, addr: "10.77.0.2/24", gw: "10.77.0.1"},
		{args: []string{"-link", "tap:x", "-gw", ""}, addr: "10.77.0.2/24"},
		{args: []string{"-link", "tap:x", "-addr", "192.168.5.2/24"}, addr: "192.168.5.2/24"},
		{args: []string{"-link", "tap:x", "-addr", "10.77.0.9/24"}, addr: "10.77.0.9/24"},
		{args: []string{"-link", "tap:x", "-addr", "192.168.5.2/24", "-gw", "192.168.5.1"}, addr: "192.168.5.2/24", gw: "192.168.5.1"},
		{args: []string{"-netns-demo", "-addr", "192.168.5.2/24", "-gw", "192.168.5.1"}, addr: "192.168.5.2/24", gw: "192.168.5.1"},
		{args: []string{"-link", "tap:x", "-addr", "192.168.5.2/24", "-gw", "10.77.0.1"}, code: 2},
		{args: []string{"-link", "tap:x", "-gw", "10.1.1.1"}, code: 2},
		{args: []string{"-link", "tap:x", "-gw", "bogus"}, code: 2},
		{args: []string{"-link", "tap:x", "-addr", "192.168.5.2"}, code: 2},
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
		if c.addr != netip.MustParsePrefix(tc.addr) {
			t.Errorf("serve %q: address %v, want %s", tc.args, c.addr, tc.addr)
		}
		if got := gwString(c.gw); tc.gw == "" && got != "none" || tc.gw != "" && got != tc.gw {
			t.Errorf("serve %q: gateway %s, want %q", tc.args, got, tc.gw)
		}
	}
	var help bytes.Buffer
	if c, code := parseServeFlags([]string{"-h"}, &help); c != nil || code != 0 {
		t.Errorf("serve -h: status %d", code)
	}
	if !strings.Contains(help.String(), "another -addr there is no gateway unless -gw gives one") {
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
