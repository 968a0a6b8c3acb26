// Package netnstest gives tests private network namespaces that are
// removed when the test ends, even when it fails, and skips tests (with
// the reason) on machines where they cannot run.
//
//	func TestPing(t *testing.T) {
//		p := netnstest.Pair(t, netns.PairConfig{})
//		ep, err := afpacket.Open(afpacket.Config{Interface: p.DUTIf, Netns: p.DUT.Name})
//		...
//		netnstest.MustRun(t, p.Peer, "ping", "-c", "3", "-W", "2", "10.77.0.2")
//	}
//
// Names are unique per test (netns.UniqueName), so test binaries may run
// in parallel, and nothing outside the namespaces a test made is touched.
package netnstest

import (
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/ustack/ustack/internal/netns"
)

// StrictEnv names the environment variable that turns these skips into
// failures. `make test` sets it when it runs as root (as CI does), where
// every test must run: a missing tool or device there is a broken set-up,
// not a reason to pass quietly.
const StrictEnv = "USTACK_TEST_STRICT"

// skip skips t with msg, or fails it when StrictEnv is set.
func skip(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(StrictEnv) != "" {
		t.Fatalf("%s (%s is set: every test must run here)", msg, StrictEnv)
	}
	t.Skip(msg)
}

// Skip skips t, saying why, unless the machine can build namespace
// topologies (root, the ip command, and /dev/net/tun when needTun). With
// StrictEnv set it fails t instead.
func Skip(t testing.TB, needTun bool) {
	t.Helper()
	if why := netns.Why(needTun); why != "" {
		skip(t, "skipped: "+why)
	}
}

// NeedCommands skips t if any of the named programs is missing (fails it
// with StrictEnv set).
func NeedCommands(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			skip(t, "skipped: needs "+n+" on PATH (make test installs it: scripts/install-test-tools.sh)")
		}
	}
}

// stalePrefixes are the prefixes of the namespaces the project's tests
// and commands create.
var stalePrefixes = []string{"ustack-"}

var sweepOnce sync.Once

// sweep deletes, once per test binary, the namespaces earlier runs of
// the project's tests left when they were killed before their clean-up
// (netns.Stale: their creator is gone and nothing runs inside).
func sweep(t testing.TB) {
	t.Helper()
	sweepOnce.Do(func() {
		for _, name := range netns.Stale(stalePrefixes...) {
			if err := (&netns.NS{Name: name}).Delete(); err != nil {
				t.Logf("a stale namespace of an earlier run: %v", err)
				continue
			}
			t.Logf("deleted %s, left by an earlier run that no longer exists", name)
		}
	})
}

// NS returns a new named namespace, deleted when the test ends.
func NS(t testing.TB, prefix string) *netns.NS {
	t.Helper()
	Skip(t, false)
	sweep(t)
	ns, err := netns.Create(netns.UniqueName(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

// Pair returns a new netns.Pair, deleted when the test ends.
func Pair(t testing.TB, cfg netns.PairConfig) *netns.Pair {
	t.Helper()
	Skip(t, false)
	sweep(t)
	if cfg.Prefix == "" {
		cfg.Prefix = "ustack-t-"
	}
	p, err := netns.NewPair(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// Chain returns a new netns.Chain, deleted when the test ends.
func Chain(t testing.TB, cfg netns.ChainConfig) *netns.Chain {
	t.Helper()
	Skip(t, false)
	sweep(t)
	if cfg.Prefix == "" {
		cfg.Prefix = "ustack-t-"
	}
	c, err := netns.NewChain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// MustRun runs a command in ns and fails the test if it fails; it returns
// the output.
func MustRun(t testing.TB, ns *netns.NS, name string, args ...string) string {
	t.Helper()
	out, err := ns.Run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
