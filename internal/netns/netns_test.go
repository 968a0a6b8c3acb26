package netns_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
)

func TestUniqueName(t *testing.T) {
	a, b := netns.UniqueName("x-"), netns.UniqueName("x-")
	if a == b || !strings.HasPrefix(a, "x-") {
		t.Errorf("UniqueName gave %q and %q", a, b)
	}
	if netns.Path("foo") != "/var/run/netns/foo" || netns.Path("/proc/1/ns/net") != "/proc/1/ns/net" {
		t.Error("Path")
	}
}

// TestCreator: the creating process is read back from every name
// UniqueName makes, with or without a role, and from nothing else.
func TestCreator(t *testing.T) {
	for _, prefix := range []string{"ustack-t-", "ustack-iop-", "ustack-demo-", "ustack-ab-"} {
		name := netns.UniqueName(prefix)
		for _, n := range []string{name, name + "-peer", name + "-mid"} {
			if pid, ok := netns.Creator(n, prefix); !ok || pid != os.Getpid() {
				t.Errorf("Creator(%q, %q) = %d, %v; want %d", n, prefix, pid, ok, os.Getpid())
			}
		}
	}
	for _, n := range []string{"ustack-t-", "ustack-t-zz-abcdef-1", "ustack-t-1f-abcde-1", "ustack-t-1f-abcdef-x",
		"other-1f-abcdef-1", "ustack-t-0-abcdef-1", "ustack-t-1f-abcdef-1-Peer"} {
		if pid, ok := netns.Creator(n, "ustack-t-"); ok {
			t.Errorf("Creator(%q) = %d, true; want false", n, pid)
		}
	}
}

// TestStale: a namespace named by a process that is gone is stale; one
// of a live process, or one with a process inside, is not.
func TestStale(t *testing.T) {
	netnstest.Skip(t, false)
	// A process ID that is surely gone: a child that has exited and been
	// reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadPid := cmd.Process.Pid
	const prefix = "ustack-stale-test-"
	mk := func(pid int) *netns.NS {
		name := fmt.Sprintf("%s%x-abcdef-1-dut", prefix, pid)
		ns, err := netns.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Delete() })
		return ns
	}
	dead, alive := mk(deadPid), mk(os.Getpid())
	stale := netns.Stale(prefix)
	if !slices.Contains(stale, dead.Name) || slices.Contains(stale, alive.Name) {
		t.Fatalf("Stale = %v; want %s and not %s", stale, dead.Name, alive.Name)
	}
	// A process inside keeps a namespace from being stale.
	sleeper := dead.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	for range 100 {
		if out, _ := exec.Command("ip", "netns", "pids", dead.Name).Output(); len(strings.TrimSpace(string(out))) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if stale := netns.Stale(prefix); slices.Contains(stale, dead.Name) {
		t.Errorf("Stale = %v with a process inside %s", stale, dead.Name)
	}
}

// TestPair: the standard topology is built as described, a socket opened
// inside Do lives in the peer namespace, and everything goes on Close.
func TestPair(t *testing.T) {
	netnstest.NeedCommands(t, "ethtool")
	leaktest.Check(t)
	p := netnstest.Pair(t, netns.PairConfig{Prefix: "ustack-nst-"})
	out := netnstest.MustRun(t, p.Peer, "ip", "-br", "addr", "show", "dev", "p0")
	if !strings.Contains(out, "10.77.0.1/24") || !strings.Contains(out, "UP") {
		t.Errorf("peer p0: %s", out)
	}
	out = netnstest.MustRun(t, p.DUT, "ip", "-br", "addr", "show", "dev", "d0")
	if strings.Contains(out, "10.77") {
		t.Errorf("DUT d0 has an address: %s", out)
	}
	out = netnstest.MustRun(t, p.Peer, "ethtool", "-k", "p0")
	for _, f := range []string{"tx-tcp-segmentation: off", "tx-tcp6-segmentation: off", "generic-segmentation-offload: off", "tx-checksumming: off"} {
		if !strings.Contains(out, f) {
			t.Errorf("peer offloads: want %q in\n%s", f, out)
		}
	}
	if rps := netnstest.MustRun(t, p.DUT, "cat", "/sys/class/net/d0/queues/rx-0/rps_cpus"); !strings.Contains(rps, "1") {
		t.Errorf("RPS on d0: %q", rps)
	}
	// A listener made inside Do belongs to the peer namespace: only an
	// address of that namespace can be bound.
	var ln net.Listener
	if err := p.Peer.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "10.77.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if l, err := net.Listen("tcp", "10.77.0.1:0"); err == nil {
		l.Close()
		t.Error("10.77.0.1 is bindable outside the namespace: Do did not switch back?")
	}
	var mtu int
	if err := p.DUT.Do(func() error {
		var err error
		mtu, err = netns.MTU("d0")
		return err
	}); err != nil || mtu != 1500 {
		t.Errorf("MTU(d0) = %d, %v", mtu, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if netns.Exists(p.Peer.Name) || netns.Exists(p.DUT.Name) {
		t.Error("namespaces left after Close")
	}
}

// TestChain: the impairment topology is built as described — offloads
// off on all four ends, no addresses in the middle or on the DUT's end —
// and everything goes on Close.
func TestChain(t *testing.T) {
	netnstest.NeedCommands(t, "ethtool")
	leaktest.Check(t)
	c := netnstest.Chain(t, netns.ChainConfig{PairConfig: netns.PairConfig{Prefix: "ustack-nsc-"}})
	out := netnstest.MustRun(t, c.Peer, "ip", "-br", "addr", "show", "dev", "p0")
	if !strings.Contains(out, "10.77.0.1/24") || !strings.Contains(out, "UP") {
		t.Errorf("peer p0: %s", out)
	}
	for _, e := range []struct {
		ns     *netns.NS
		ifname string
	}{{c.Peer, "p0"}, {c.Mid, "ma"}, {c.Mid, "mb"}, {c.DUT, "d0"}} {
		out := netnstest.MustRun(t, e.ns, "ethtool", "-k", e.ifname)
		for _, f := range []string{"tx-tcp-segmentation: off", "generic-segmentation-offload: off", "tx-checksumming: off", "generic-receive-offload: off"} {
			if !strings.Contains(out, f) {
				t.Errorf("%s offloads: want %q", e.ifname, f)
			}
		}
		if e.ns != c.Peer {
			out := netnstest.MustRun(t, e.ns, "ip", "-br", "addr", "show", "dev", e.ifname)
			if strings.Contains(out, "10.77") || !strings.Contains(out, "UP") {
				t.Errorf("%s: %s", e.ifname, out)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if netns.Exists(c.Peer.Name) || netns.Exists(c.Mid.Name) || netns.Exists(c.DUT.Name) {
		t.Error("namespaces left after Close")
	}
}
