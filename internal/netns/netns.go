// Package netns runs code inside Linux network namespaces and builds small
// test topologies (named namespaces, veth pairs, addresses) out of them.
//
// It serves three users: link/tap and link/afpacket open their devices and
// sockets inside a named namespace (Do); `ustack serve -netns-demo` builds a
// private namespace pair for a demo and removes it on exit; and tests build
// their own topologies, unique per test and removed in t.Cleanup (see
// ForTest and Veth).
//
// # How a goroutine enters a namespace
//
// A network namespace belongs to an OS thread, not to a process (setns(2),
// network_namespaces(7)). Do locks its goroutine to its OS thread, enters
// the target with setns(CLONE_NEWNET), runs the function, and switches
// back. Whatever the function opens there — a TUN fd, an AF_PACKET socket,
// a TCP listener from package net — stays in that namespace after the
// thread has left it, and keeps working from any goroutine. If switching
// back fails, the thread is left locked, so the Go runtime discards it when
// the goroutine ends instead of reusing a thread in the wrong namespace.
// Since Go 1.10 the runtime starts new threads from a clean template
// thread, never from a locked one, so no other thread inherits the
// namespace.
//
// Named namespaces are the ones `ip netns add` creates: a bind mount of a
// namespace file at /var/run/netns/NAME. Create and Delete use the `ip`
// command (iproute2), which is also how a person inspects them; the
// interface helpers (SetUp, SetMTU, MTU, Index, HardwareAddr, SetOffloads)
// are plain ioctls on the calling thread's namespace, to be used inside
// Do.
//
// Everything here needs root or CAP_SYS_ADMIN + CAP_NET_ADMIN (or a user
// namespace of one's own: `unshare -rn`). Tests call ForTest, which skips
// with the reason when the machine cannot run them.
package netns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces live (iproute2's NETNS_RUN_DIR).
const RunDir = "/var/run/netns"

// Path returns the namespace file of a named namespace: RunDir/name, or
// name itself when it is a path (contains a slash), such as
// /proc/1234/ns/net.
func Path(name string) string {
	if strings.ContainsRune(name, '/') {
		return name
	}
	return filepath.Join(RunDir, name)
}

// Do runs f on an OS thread inside the network namespace ns (a name for
// Path), then switches the thread back. With ns == "" it just calls f.
// Descriptors f opens stay in ns and may be used from any goroutine after
// Do returns.
func Do(ns string, f func() error) error {
	if ns == "" {
		return f()
	}
	target, err := unix.Open(Path(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	defer unix.Close(target)
	// A fresh goroutine: its thread is discarded if it cannot switch
	// back, and the caller's thread state is never touched.
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netns: current namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netns: setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the runtime drops this thread when the
			// goroutine exits.
			done <- errors.Join(ferr, fmt.Errorf("netns: setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// Exists reports whether the named namespace exists.
func Exists(name string) bool {
	var st unix.Stat_t
	return unix.Stat(Path(name), &st) == nil
}

// uniq numbers the names this process makes.
var uniq atomic.Uint64

// UniqueName returns prefix followed by a suffix unique to this process
// and call, e.g. "ustack-demo-1a2b3c-1": the process ID, a counter and a
// few random bits, so that parallel test binaries and leftover namespaces
// of a crashed run never collide. Names of namespaces may be long;
// interface names (15 bytes at most) should not be built from this.
func UniqueName(prefix string) string {
	var r [3]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s%x-%s-%d", prefix, os.Getpid(), hex.EncodeToString(r[:]), uniq.Add(1))
}

// uniqueRE matches what UniqueName appends to a prefix (the process ID in
// hex, six hex digits, a counter), optionally followed by a role such as
// "-peer"; its first group is the process ID.
var uniqueRE = regexp.MustCompile(`^([0-9a-f]+)-[0-9a-f]{6}-[0-9]+(?:-[a-z0-9]+)?$`)

// Creator returns the process ID UniqueName put in name after prefix, and
// whether name has that shape.
func Creator(name, prefix string) (pid int, ok bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found {
		return 0, false
	}
	m := uniqueRE.FindStringSubmatch(rest)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseUint(m[1], 16, 31)
	if err != nil || v == 0 {
		return 0, false
	}
	return int(v), true
}

// Stale returns the named namespaces left behind by processes that no
// longer exist: names that start with one of prefixes and carry (per
// UniqueName) the ID of a process that is gone, with no process inside.
// A run killed before its clean-up (a test binary's timeout panic, a
// SIGKILL) leaves such namespaces; nothing else owns them. A process ID
// reused since makes a namespace look alive, never the reverse.
func Stale(prefixes ...string) []string {
	ents, err := os.ReadDir(RunDir)
	if err != nil {
		return nil
	}
	var stale []string
	for _, e := range ents {
		for _, prefix := range prefixes {
			pid, ok := Creator(e.Name(), prefix)
			if !ok {
				continue
			}
			if unix.Kill(pid, 0) != unix.ESRCH {
				break // alive, or not ours to judge
			}
			out, err := exec.Command("ip", "netns", "pids", e.Name()).Output()
			if err == nil && len(bytes.TrimSpace(out)) == 0 {
				stale = append(stale, e.Name())
			}
			break
		}
	}
	return stale
}

// NS is a named network namespace this process created.
type NS struct {
	Name string
}

// Create makes a named namespace with `ip netns add` and brings its
// loopback up.
func Create(name string) (*NS, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	ns := &NS{Name: name}
	if err := ns.IP("link", "set", "dev", "lo", "up"); err != nil {
		ns.Delete()
		return nil, err
	}
	return ns, nil
}

// Delete removes the namespace (`ip netns del`). The kernel destroys the
// veth and TUN/TAP devices in it once no process or descriptor holds it;
// processes still running inside keep it alive (invisible) until they
// exit, so stop them first.
func (n *NS) Delete() error {
	if n == nil || !Exists(n.Name) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", n.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Do runs f inside the namespace (see the package function Do).
func (n *NS) Do(f func() error) error { return Do(n.Name, f) }

// Command returns a command that runs name with args inside the namespace
// (`ip netns exec NS name args...`, which also mounts the namespace's own
// /sys, so /sys/class/net shows its interfaces).
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined
// output; a failure's error includes the output.
func (n *NS) Run(name string, args ...string) (string, error) {
	out, err := n.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s (in netns %s): %v: %s", name, strings.Join(args, " "), n.Name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// IP runs `ip -n NS args...`.
func (n *NS) IP(args ...string) error {
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Sysctl sets a sysctl inside the namespace, e.g.
// ns.Sysctl("net.ipv6.conf.all.disable_ipv6", "1").
func (n *NS) Sysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return n.Do(func() error {
		// /proc/sys/net follows the namespace of the thread that opens
		// it (proc_net is per task).
		return os.WriteFile(path, []byte(value), 0)
	})
}

// SetRPS steers receive processing of ifname's first queue to the CPUs in
// mask (a hex string, "1" = CPU 0), via
// /sys/class/net/IF/queues/rx-0/rps_cpus inside the namespace. On a
// non-NAPI veth with several CPUs, frames of one flow otherwise go through
// different CPUs' backlogs and arrive out of order (environment notes §1;
// Documentation/networking/scaling.rst).
func (n *NS) SetRPS(ifname, mask string) error {
	_, err := n.Run("sh", "-c", fmt.Sprintf("echo %s > /sys/class/net/%s/queues/rx-0/rps_cpus", mask, ifname))
	return err
}

// Why returns "" if this process can build namespace topologies — it is
// root, the `ip` command exists, and (when needTun) /dev/net/tun is there
// — and otherwise the reason it cannot, for a test to skip with.
func Why(needTun bool) string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces, veth pairs, TAP devices and AF_PACKET sockets need CAP_SYS_ADMIN and CAP_NET_ADMIN); run the tests as root, as CI does"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "needs the ip command (Debian package iproute2; make test installs it)"
	}
	if needTun {
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			return "needs /dev/net/tun (the tun driver): " + err.Error()
		}
	}
	return ""
}
