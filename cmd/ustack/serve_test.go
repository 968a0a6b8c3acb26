package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
)

// buildUstack builds the command into a temporary directory.
func buildUstack(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ustack")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// served is a running `ustack serve` (or another long-running command of
// ustack): its output lines as they come, and all of them read so far.
type served struct {
	cmd   *exec.Cmd
	lines chan string
	all   []string
}

// startServe runs `ustack serve args...`; it is killed when the test
// ends if it is still running.
func startServe(t *testing.T, bin string, args ...string) *served {
	t.Helper()
	return startCommand(t, bin, "serve", args...)
}

// startCommand runs `ustack sub args...`; it is killed when the test ends
// if it is still running.
func startCommand(t *testing.T, bin, sub string, args ...string) *served {
	t.Helper()
	cmd := exec.Command(bin, append([]string{sub}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, lines: make(chan string, 1000)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	return s
}

// waitFor returns the first line (from now on) matching re.
func (s *served) waitFor(t *testing.T, re string) []string {
	t.Helper()
	r := regexp.MustCompile(re)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("serve exited before printing %q; output:\n%s", re, strings.Join(s.all, "\n"))
			}
			s.all = append(s.all, l)
			if m := r.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("serve did not print %q in 20 s; output:\n%s", re, strings.Join(s.all, "\n"))
		}
	}
}

// stop sends SIGTERM and expects a clean exit (status 0) within 10 s.
func (s *served) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		for l := range s.lines {
			s.all = append(s.all, l)
		}
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v; output:\n%s", err, strings.Join(s.all, "\n"))
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("serve still running 10 s after SIGTERM")
	}
}

func curl(t *testing.T, ns *netns.NS, url string) string {
	t.Helper()
	out, err := ns.Run("curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", url)
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	return out
}

// TestServeNetnsDemo: `ustack serve -netns-demo` builds its namespace,
// answers curl there, exits 0 on SIGTERM and leaves no namespace behind.
func TestServeNetnsDemo(t *testing.T) {
	netnstest.Skip(t, true)
	netnstest.NeedCommands(t, "curl", "go")
	bin := buildUstack(t)
	s := startServe(t, bin, "-netns-demo")
	m := s.waitFor(t, `the kernel's side is .+ in netns (\S+)\.`)
	ns := &netns.NS{Name: m[1]}
	t.Cleanup(func() { ns.Delete() }) // in case serve did not
	s.waitFor(t, `^Ctrl-C`)
	if got := curl(t, ns, "http://10.77.0.2/bytes/1000000"); got != "200 1000000" {
		t.Errorf("curl: %q, want \"200 1000000\"", got)
	}
	// IPv6 too: the kernel side has fd77::1, the stack fd77::2.
	if got := curl(t, ns, "http://[fd77::2]/bytes/1000000"); got != "200 1000000" {
		t.Errorf("curl -6: %q, want \"200 1000000\"", got)
	}
	if out, err := ns.Run("ping", "-6", "-c", "2", "-W", "5", "fd77::2"); err != nil {
		t.Errorf("ping -6: %v\n%s", err, out)
	}
	s.stop(t)
	out := strings.Join(s.all, "\n")
	for _, want := range []string{"ping -6 -c 3 fd77::2", "curl -6 "} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's commands lack %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "removed netns "+ns.Name) || !regexp.MustCompile(`http\s+2 connections`).MatchString(out) {
		t.Errorf("summary or teardown missing:\n%s", out)
	}
	if netns.Exists(ns.Name) {
		t.Errorf("netns %s left behind", ns.Name)
	}
}

// TestServeAFPacket: serve on an AF_PACKET socket in a namespace the test
// made (-link afpacket:IF -netns NS), with a directory over HTTP, over
// IPv4 and IPv6 (its default addresses are of both).
func TestServeAFPacket(t *testing.T) {
	netnstest.Skip(t, false)
	netnstest.NeedCommands(t, "curl", "go")
	bin := buildUstack(t)
	p := netnstest.Pair(t, netns.PairConfig{Prefix: "ustack-srv-"})
	root := t.TempDir()
	if err := writeFile(filepath.Join(root, "hello.txt"), "hello from ustack\n"); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, bin, "-link", "afpacket:"+p.DUTIf, "-netns", p.DUT.Name, "-root", root, "-v")
	if err := p.Peer.IP("-6", "addr", "add", "fd77::1/64", "dev", p.PeerIf, "nodad"); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, `^ustack serve: 10.77.0.2/24, fd77::2/64 on afpacket:d0`)
	s.waitFor(t, `udp-echo`)
	if got := curl(t, p.Peer, "http://[fd77::2]/bytes/3000000"); got != "200 3000000" {
		t.Errorf("curl over IPv6: %q", got)
	}
	if got := curl(t, p.Peer, "http://10.77.0.2/hello.txt"); got != "200 18" {
		t.Errorf("curl file: %q, want \"200 18\"", got)
	}
	if got := curl(t, p.Peer, "http://10.77.0.2/bytes/3000000"); got != "200 3000000" {
		t.Errorf("curl bytes: %q", got)
	}
	s.stop(t)
	if out := strings.Join(s.all, "\n"); !strings.Contains(out, "endpoint: {RxFrames:") {
		t.Errorf("verbose summary missing:\n%s", out)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

// TestServeSynCookies: -syncookies 2 (every SYN gets a SYN cookie, as
// net.ipv4.tcp_syncookies = 2) reaches the stack: curl's connections open
// from cookies, and the summary counts them. A value tcp_syncookies
// cannot have is refused with the usage status.
func TestServeSynCookies(t *testing.T) {
	if got := runServe([]string{"-syncookies", "3", "-link", "tap:x"}); got != 2 {
		t.Errorf("-syncookies 3: exit status %d, want 2", got)
	}
	netnstest.Skip(t, true)
	netnstest.NeedCommands(t, "curl", "go")
	bin := buildUstack(t)
	s := startServe(t, bin, "-netns-demo", "-syncookies", "2")
	m := s.waitFor(t, `the kernel's side is .+ in netns (\S+)\.`)
	ns := &netns.NS{Name: m[1]}
	t.Cleanup(func() { ns.Delete() })
	s.waitFor(t, `^Ctrl-C`)
	for range 3 {
		if got := curl(t, ns, "http://10.77.0.2/bytes/100000"); got != "200 100000" {
			t.Errorf("curl: %q, want \"200 100000\"", got)
		}
	}
	s.stop(t)
	out := strings.Join(s.all, "\n")
	c := regexp.MustCompile(`listeners: (\d+) SYN cookies sent, (\d+) valid, (\d+) refused`).FindStringSubmatch(out)
	if c == nil || c[1] != "3" || c[2] != "3" || c[3] != "0" {
		t.Errorf("want 3 cookies sent and 3 valid in the summary:\n%s", out)
	}
}

// TestServeMTUProbing: -mtu-probing 2 (net.ipv4.tcp_mtu_probing = 2:
// every connection starts at the base MSS and probes upward) reaches the
// stack: a large download over the demo's 1500-byte link sends probes
// that are acknowledged, and the summary says so. A value the sysctl
// cannot have is refused with the usage status.
func TestServeMTUProbing(t *testing.T) {
	if got := runServe([]string{"-mtu-probing", "3", "-link", "tap:x"}); got != 2 {
		t.Errorf("-mtu-probing 3: exit status %d, want 2", got)
	}
	netnstest.Skip(t, true)
	netnstest.NeedCommands(t, "curl", "go")
	bin := buildUstack(t)
	s := startServe(t, bin, "-netns-demo", "-mtu-probing", "2")
	m := s.waitFor(t, `the kernel's side is .+ in netns (\S+)\.`)
	ns := &netns.NS{Name: m[1]}
	t.Cleanup(func() { ns.Delete() })
	s.waitFor(t, `^Ctrl-C`)
	if got := curl(t, ns, "http://10.77.0.2/bytes/4000000"); got != "200 4000000" {
		t.Errorf("curl: %q, want \"200 4000000\"", got)
	}
	s.stop(t)
	out := strings.Join(s.all, "\n")
	c := regexp.MustCompile(`path MTU: (\d+) probes sent, (\d+) acknowledged`).FindStringSubmatch(out)
	if c == nil || c[1] == "0" || c[2] == "0" {
		t.Errorf("want probes sent and acknowledged in the summary:\n%s", out)
	}
}
