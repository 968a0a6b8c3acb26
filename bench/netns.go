package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// nsPrefix starts the name of every namespace the bench creates; the
// creator's PID follows, so that namespaces a killed run left behind can
// be told from those of a running one (sweepNamespaces).
const nsPrefix = "ustack-bench-"

var nsSeq atomic.Int64

// needRoot returns an Unsupported error unless the process can create
// namespaces and devices.
func needRoot() error {
	if os.Geteuid() != 0 {
		return unsupported("needs root (network namespaces, TAP and AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return unsupported("needs the ip command (iproute2)")
	}
	return nil
}

// netns is a named network namespace the bench made.
type netns struct{ name string }

// newNetns creates a namespace with its loopback up, after removing those a
// killed run left behind.
func newNetns() (*netns, error) {
	sweepNamespaces()
	n := &netns{name: fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), nsSeq.Add(1))}
	if err := run("ip", "netns", "add", n.name); err != nil {
		return nil, err
	}
	if err := n.ip("link", "set", "dev", "lo", "up"); err != nil {
		n.Close()
		return nil, err
	}
	// Keep the links quiet: no IPv6 router solicitations or neighbour
	// discovery beside the measured traffic.
	if err := n.sysctl("net.ipv6.conf.all.disable_ipv6", "1"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close deletes the namespace and the devices in it.
func (n *netns) Close() error { return run("ip", "netns", "del", n.name) }

// path is where the namespace is mounted, for setns and the links' Netns.
func (n *netns) path() string { return "/var/run/netns/" + n.name }

// ip runs `ip -n NS args...`.
func (n *netns) ip(args ...string) error {
	return run("ip", append([]string{"-n", n.name}, args...)...)
}

// exec runs a command inside the namespace.
func (n *netns) exec(args ...string) error {
	return run("ip", append([]string{"netns", "exec", n.name}, args...)...)
}

func (n *netns) sysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return n.exec("sh", "-c", fmt.Sprintf("echo %s > %s", value, path))
}

// rps steers the receive processing of dev to CPU 0: on a machine with
// several CPUs, a veth or TAP otherwise delivers the frames of one flow
// through several CPUs' backlogs, out of order (environment notes §1).
func (n *netns) rps(dev string) error {
	return n.exec("sh", "-c", fmt.Sprintf("echo 1 > /sys/class/net/%s/queues/rx-0/rps_cpus", dev))
}

// do runs f on an OS thread inside the namespace: sockets f opens belong to
// it and keep working from anywhere afterwards.
func (n *netns) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return // the locked thread exits with the goroutine
		}
		defer orig.Close()
		target, err := os.Open(n.path())
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(int(target.Fd()), unix.CLONE_NEWNET)
		target.Close()
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		err = f()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread, still in the namespace, ends with the goroutine
		errc <- err
	}()
	return <-errc
}

// sweepNamespaces deletes the namespaces of bench runs that no longer
// exist (killed before they could clean up).
func sweepNamespaces() {
	ents, _ := os.ReadDir("/var/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			run("ip", "netns", "del", e.Name())
		}
	}
}

func run(name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
