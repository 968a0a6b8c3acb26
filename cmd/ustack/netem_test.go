package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
)

// TestNetem: `ustack netem` between the two veth pairs of a Chain, with
// the kernel at both ends, delays and drops what it says, and prints its
// counters on SIGTERM.
func TestNetem(t *testing.T) {
	netnstest.Skip(t, false)
	netnstest.NeedCommands(t, "ping", "go", "ethtool")
	bin := buildUstack(t)
	c := netnstest.Chain(t, netns.ChainConfig{PairConfig: netns.PairConfig{Prefix: "ustack-nem-"}})
	// The kernel on the DUT's end too: both ends of the bridge are kernels.
	if err := c.DUT.IP("addr", "add", "10.77.0.2/24", "dev", c.DUTIf); err != nil {
		t.Fatal(err)
	}

	// 20 ms each way: every round trip takes at least 40 ms.
	s := startCommand(t, bin, "netem", "-a", c.MidA, "-b", c.MidB, "-netns", c.Mid.Name, "-impair", "delay=20ms", "-seed", "7")
	s.waitFor(t, `^ustack netem: bridging ma and mb in netns \S+, seed 7, limit 1000`)
	s.waitFor(t, `ma -> mb: delay=20ms`)
	s.waitFor(t, `mb -> ma: delay=20ms`)
	out := netnstest.MustRun(t, c.Peer, "ping", "-c", "5", "-i", "0.2", "-W", "5", "10.77.0.2")
	m := regexp.MustCompile(`rtt min/avg/max/mdev = ([0-9.]+)/`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "5 received") {
		t.Fatalf("ping through netem:\n%s", out)
	}
	if min, _ := strconv.ParseFloat(m[1], 64); min < 40 {
		t.Errorf("minimum RTT %.1f ms through 2 × 20 ms of delay", min)
	}
	s.stop(t)
	all := strings.Join(s.all, "\n")
	if !regexp.MustCompile(`ma -> mb: [1-9]\d* frames in .* [1-9]\d* out`).MatchString(all) || !strings.Contains(all, "ustack netem: stopping") {
		t.Errorf("counters missing:\n%s", all)
	}

	// Only A to B loses frames (all of them): pings get no answer, and
	// the counters say why.
	s = startCommand(t, bin, "netem", "-a", c.MidA, "-b", c.MidB, "-netns", c.Mid.Name, "-impair-ab", "loss=100%", "-seed", "7")
	s.waitFor(t, `mb -> ma: none`)
	if out, err := c.Peer.Run("ping", "-c", "3", "-i", "0.2", "-W", "1", "10.77.0.2"); err == nil {
		t.Errorf("ping through 100%% loss succeeded:\n%s", out)
	}
	s.stop(t)
	all = strings.Join(s.all, "\n")
	if !regexp.MustCompile(`ma -> mb: [1-9]\d* frames in .* 0 out .*; dropped: [1-9]\d* loss`).MatchString(all) {
		t.Errorf("loss counters missing:\n%s", all)
	}
}

// TestNetemFlags: bad flags are refused with status 2 before anything is
// opened.
func TestNetemFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-a", "x"},
		{"-a", "x", "-b", "x"},
		{"-a", "x", "-b", "y", "-impair", "loss=200%"},
		{"-a", "x", "-b", "y", "-impair-ab", "bogus=1"},
		{"-a", "x", "-b", "y", "extra"},
	} {
		if code := runNetem(args); code != 2 {
			t.Errorf("netem %q: exit status %d, want 2", args, code)
		}
	}
}
