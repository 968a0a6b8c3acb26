package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// User-mode networking (issue 14 item 5): a guest namespace whose only
// way out is a relay run in the host namespace — `ustack forward`,
// slirp4netns or pasta — that carries the guest's connections through
// the host's own sockets to a server in a third namespace:
//
//	guest ns ── TUN/TAP ── relay (host ns, 10.77.0.2) ── veth ── server ns
//	client sockets                                                10.77.0.3

// Addresses of the user-mode cases: the server namespace has the host's
// gateway (.1) and the server (.3; not the gateway, which pasta maps to
// the host's loopback).
var (
	umGateway = netip.MustParseAddr("10.77.0.1")
	umHost    = netip.MustParseAddr("10.77.0.2")
	umServer  = netip.MustParseAddr("10.77.0.3")
)

// UserModeMTU is the MTU every relay gives the guest: slirp4netns's
// recommended and rootless Podman's, pasta's default.
const UserModeMTU = 65520

// usermodeNet is a guest whose client sockets reach the server through a
// relay process.
type usermodeNet struct {
	guest, host, server *netns
	relay               *exec.Cmd
	done                chan struct{}
}

func (u *usermodeNet) Listen() (ln net.Listener, err error) {
	return kernelEnd{u.server, umServer}.listen()
}

func (u *usermodeNet) Dial(ctx context.Context, addr net.Addr) (net.Conn, error) {
	return kernelEnd{u.guest, netip.Addr{}}.dial(ctx, addr)
}

func (u *usermodeNet) Close() error {
	var err error
	if u.relay != nil && u.relay.Process != nil {
		u.relay.Process.Signal(syscall.SIGTERM)
		select {
		case <-u.done:
		case <-time.After(5 * time.Second):
			u.relay.Process.Kill()
			<-u.done
		}
	}
	for _, n := range []*netns{u.guest, u.host, u.server} {
		if n != nil {
			err = errors.Join(err, n.Close())
		}
	}
	return err
}

func (u *usermodeNet) kernelSockets() {}

// usermode returns the Setup of a relay: relay(guestPath) is its command,
// run in the host namespace.
func usermode(program string, relay func(guestPath string) ([]string, error)) Setup {
	return func(o Options) (Net, error) {
		if err := needRoot(); err != nil {
			return nil, err
		}
		if _, err := exec.LookPath(program); err != nil {
			return nil, unsupported("needs %s (scripts/install-test-tools.sh installs it)", program)
		}
		u := &usermodeNet{done: make(chan struct{})}
		fail := func(err error) (Net, error) {
			u.Close()
			return nil, err
		}
		var err error
		for _, p := range []**netns{&u.guest, &u.host, &u.server} {
			if *p, err = newNetns(); err != nil {
				return fail(err)
			}
		}
		steps := []func() error{
			func() error {
				return run("ip", "link", "add", vethKern, "netns", u.server.name,
					"type", "veth", "peer", "name", vethDUT, "netns", u.host.name)
			},
			func() error { return u.server.ip("link", "set", "dev", vethKern, "up") },
			func() error { return u.host.ip("link", "set", "dev", vethDUT, "up") },
			func() error {
				return u.server.ip("addr", "add", netip.PrefixFrom(umGateway, 24).String(), "dev", vethKern)
			},
			func() error {
				return u.server.ip("addr", "add", netip.PrefixFrom(umServer, 24).String(), "dev", vethKern)
			},
			func() error { return u.host.ip("addr", "add", netip.PrefixFrom(umHost, 24).String(), "dev", vethDUT) },
			func() error { return u.host.ip("route", "add", "default", "via", umGateway.String()) },
			func() error { return u.server.rps(vethKern) },
			func() error { return u.host.rps(vethDUT) },
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return fail(err)
			}
		}
		args, err := relay(u.guest.path())
		if err != nil {
			return fail(err)
		}
		u.relay = exec.Command("ip", append([]string{"netns", "exec", u.host.name}, args...)...)
		var out strings.Builder
		u.relay.Stdout, u.relay.Stderr = &out, &out
		if err := u.relay.Start(); err != nil {
			return fail(err)
		}
		go func() {
			u.relay.Wait()
			close(u.done)
		}()
		// Ready when the guest can connect to the server.
		ln, err := u.Listen()
		if err != nil {
			return fail(err)
		}
		defer ln.Close()
		deadline := time.Now().Add(15 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			c, err := u.Dial(ctx, ln.Addr())
			cancel()
			if err == nil {
				c.Close()
				if a, err := ln.Accept(); err == nil {
					a.Close()
				}
				return u, nil
			}
			select {
			case <-u.done:
				return fail(fmt.Errorf("%s exited: %s", program, strings.TrimSpace(out.String())))
			default:
			}
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("%s: the guest cannot reach the server: %v", program, err))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// The ustack command, built once per bench process.
var (
	ustackOnce sync.Once
	ustackBin  string
	ustackErr  error
)

// ustackCommand builds cmd/ustack (from the module this one replaces)
// into a temporary directory the first time it is asked for.
func ustackCommand() (string, error) {
	ustackOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			ustackErr = unsupported("needs the go command to build cmd/ustack")
			return
		}
		dir, err := os.MkdirTemp("", "ustack-bench-bin-")
		if err != nil {
			ustackErr = err
			return
		}
		ustackBin = filepath.Join(dir, "ustack")
		if out, err := exec.Command(goBin, "build", "-o", ustackBin, "github.com/ustack/ustack/cmd/ustack").CombinedOutput(); err != nil {
			ustackErr = fmt.Errorf("go build cmd/ustack: %v: %s", err, out)
		}
	})
	return ustackBin, ustackErr
}

// RemoveBuilt removes the binaries the bench built (cmd/ustack).
func RemoveBuilt() {
	if ustackBin != "" {
		os.RemoveAll(filepath.Dir(ustackBin))
	}
}

// UstackForward is the guest behind `ustack forward`.
func UstackForward() Setup {
	return usermode("go", func(guest string) ([]string, error) {
		bin, err := ustackCommand()
		if err != nil {
			return nil, err
		}
		args := []string{bin, "forward", "--configure", "--disable-dns", "--disable-ipv6", "-q", "--mtu", itoa(UserModeMTU)}
		if p := os.Getenv("USTACK_FORWARD_CPUPROFILE"); p != "" {
			args = append(args, "-cpuprofile", p)
		}
		return append(args, guest), nil
	})
}

// Slirp4netns is the guest behind slirp4netns (its TAP, libslirp).
func Slirp4netns() Setup {
	return usermode("slirp4netns", func(guest string) ([]string, error) {
		return []string{"slirp4netns", "--configure", "--mtu=" + itoa(UserModeMTU), "--disable-dns", "--netns-type=path", guest, "tap0"}, nil
	})
}

// Pasta is the guest behind pasta (passt's namespace mode), IPv4 only,
// no port forwarding.
func Pasta() Setup {
	return usermode("pasta", func(guest string) ([]string, error) {
		return []string{"pasta", "-f", "-q", "-4", "--config-net", "--runas", "0", "-m", itoa(UserModeMTU),
			"-t", "none", "-u", "none", "-T", "none", "-U", "none", "--netns", guest}, nil
	})
}

// The columns of the user-mode table, in the order they alternate.
var userModeSystems = []struct {
	name  string
	setup func() Setup
}{
	{"ustack forward", UstackForward},
	{"slirp4netns", Slirp4netns},
	{"pasta", Pasta},
}

// UserModeTable is user-mode networking for a namespace: `ustack
// forward` beside slirp4netns and pasta, the same bulk and crr through
// each (root only).
func UserModeTable() *Table {
	t := &Table{
		Title:  "User-mode networking: a namespace's traffic through a relay's host sockets",
		Corner: "case",
	}
	for _, s := range userModeSystems {
		t.Cols = append(t.Cols, s.name)
	}
	row := func(name, target string, show func([]Sample) string, w func(ctx context.Context, n Net, o Options) (Sample, error)) {
		r := &Row{Name: name, Target: target}
		for _, s := range userModeSystems {
			r.Cells = append(r.Cells, cell(s.setup(), show, w))
		}
		t.Rows = append(t.Rows, r)
	}
	row("bulk, guest sends", "≥ 2× slirp4netns, ≥ pasta", showBulk,
		func(ctx context.Context, n Net, o Options) (Sample, error) { return Bulk(ctx, n, o, false) })
	row("bulk, guest receives", "≥ 2× slirp4netns, ≥ pasta", showBulk,
		func(ctx context.Context, n Net, o Options) (Sample, error) { return Bulk(ctx, n, o, true) })
	for _, k := range []int{1, 8} {
		row(fmt.Sprintf("crr, %d client%s", k, plural(k)), "best of the three", showCRR,
			func(ctx context.Context, n Net, o Options) (Sample, error) { return CRR(ctx, n, o, k) })
	}
	t.Notes = []string{
		fmt.Sprintf("The guest is an empty network namespace; the relay runs in a host namespace (%v, default route via %v) joined by a veth to the server's namespace (%v); the guest's client sockets connect to the server through the relay, which connects from the host namespace's own sockets. Every namespace is made fresh for each measurement.", umHost, umGateway, umServer),
		fmt.Sprintf("MTU %d for all three. `ustack forward --configure --disable-dns --disable-ipv6` (a TUN with the virtio-net header; IPv4 only, as the other two here); `slirp4netns --configure --disable-dns` (a TAP); `pasta -4 --config-net --runas 0` (as root it would drop to nobody and fail to enter the namespace) with no port forwarding.", UserModeMTU),
		"The guest is the client (it connects); in \"guest receives\" the server sends. CPU is the bench process's (the guest's and the server's kernel sockets), not the relay's, which runs as a process of its own.",
	}
	return t
}
