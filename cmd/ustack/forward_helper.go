package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack/internal/netns"
)

// The helper: a Go program cannot enter another user namespace once it
// runs more than one thread (setns(CLONE_NEWUSER) fails with EINVAL),
// and every Go program does. So, as slirp4netns does with its child,
// `ustack forward` starts a helper inside the namespaces — nsenter
// enters them, then runs this binary's hidden forward-helper command —
// which opens the TUN device there, configures it, and passes the
// descriptor back over a Unix socket (SCM_RIGHTS). The descriptor keeps
// working from the parent's namespaces.

const helperCommand = "forward-helper"

// helperSockFD is the helper's end of the socket pair: its first extra
// file.
const helperSockFD = 3

// nsenterArgs returns nsenter's arguments to enter cfg's target
// namespace, and its user namespace where that differs from ours.
func nsenterArgs(cfg *forwardConfig) ([]string, error) {
	if !cfg.byPath {
		args := []string{"--target", cfg.target, "--net"}
		same, err := sameNS(fmt.Sprintf("/proc/%s/ns/user", cfg.target), "/proc/self/ns/user")
		if err != nil {
			return nil, err
		}
		if !same {
			args = append(args, "--user")
		}
		return args, nil
	}
	if _, err := os.Stat(cfg.target); err != nil {
		return nil, err
	}
	args := []string{"--net=" + cfg.target}
	if cfg.userns != "" {
		args = append(args, "--user="+cfg.userns)
	}
	return args, nil
}

// sameNS reports whether two namespace files name the same namespace.
func sameNS(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, fmt.Errorf("namespace of the target: %w", err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// openTUNInNamespace runs the helper in the target namespace and returns
// the TUN descriptor it opened.
func openTUNInNamespace(cfg *forwardConfig) (int, error) {
	nsArgs, err := nsenterArgs(cfg)
	if err != nil {
		return -1, err
	}
	exe, err := os.Executable()
	if err != nil {
		return -1, err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	mine := os.NewFile(uintptr(pair[0]), "forward-helper")
	theirs := os.NewFile(uintptr(pair[1]), "forward-helper")
	defer mine.Close()
	args := append(nsArgs, "--", exe, helperCommand,
		"-name", cfg.tunName, "-mtu", strconv.Itoa(cfg.mtu), "-vnet="+strconv.FormatBool(!cfg.noVnet))
	if cfg.configure {
		args = append(args, "-configure",
			"-addr", netip.PrefixFrom(cfg.guest(), cfg.cidr.Bits()).String(), "-gw", cfg.gateway().String())
		if cfg.ipv6() {
			args = append(args, "-addr6", netip.PrefixFrom(cfg.guest6(), cfg.cidr6.Bits()).String(), "-gw6", cfg.gateway6().String())
		}
	}
	cmd := exec.Command("nsenter", args...)
	cmd.ExtraFiles = []*os.File{theirs} // fd 3 in the helper
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		theirs.Close()
		return -1, fmt.Errorf("nsenter: %w", err)
	}
	theirs.Close()
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, rerr := unix.Recvmsg(pair[0], buf, oob, 0)
	werr := cmd.Wait()
	if rerr != nil || n == 0 {
		return -1, fmt.Errorf("helper in the namespace: %v %v: %s", rerr, werr, strings.TrimSpace(stderr.String()))
	}
	msg := string(buf[:n])
	if msg != "ok" {
		return -1, fmt.Errorf("helper in the namespace: %s", msg)
	}
	cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cmsgs) != 1 {
		return -1, fmt.Errorf("helper in the namespace: no descriptor passed (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&cmsgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("helper in the namespace: bad descriptor message (%v)", err)
	}
	return fds[0], nil
}

// runForwardHelper is the helper's side: it runs inside the namespaces.
func runForwardHelper(args []string) int {
	fs := flag.NewFlagSet(helperCommand, flag.ContinueOnError)
	name := fs.String("name", "tun0", "device name")
	mtu := fs.Int("mtu", 1500, "MTU")
	vnet := fs.Bool("vnet", true, "virtio-net header")
	configure := fs.Bool("configure", false, "address, route, lo up")
	addr := fs.String("addr", "", "the guest's address/prefix")
	gw := fs.String("gw", "", "the default gateway")
	addr6 := fs.String("addr6", "", "the guest's IPv6 address/prefix (none: IPv4 only)")
	gw6 := fs.String("gw6", "", "the IPv6 default gateway")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		unix.Sendmsg(helperSockFD, []byte("error: "+err.Error()), nil, nil, 0)
		fmt.Fprintln(os.Stderr, "ustack forward-helper:", err)
		return 1
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open /dev/net/tun: %w", err))
	}
	ifr, err := unix.NewIfreq(*name)
	if err != nil {
		return fail(err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if *vnet {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fail(fmt.Errorf("TUNSETIFF %s: %w", *name, err))
	}
	dev := ifr.Name()
	if err := netns.SetMTU(dev, *mtu); err != nil {
		return fail(err)
	}
	if err := netns.SetUp(dev); err != nil {
		return fail(err)
	}
	if *configure {
		cmds := [][]string{
			{"link", "set", "dev", "lo", "up"},
			{"addr", "add", *addr, "dev", dev},
			{"route", "add", "default", "via", *gw, "dev", dev},
		}
		if *addr6 != "" {
			// nodad: the relay is the only other end of a TUN, so
			// there is nobody to collide with, and the address is
			// usable at once (no 1 s of DAD before the first connect).
			cmds = append(cmds,
				[]string{"-6", "addr", "add", *addr6, "dev", dev, "nodad"},
				[]string{"-6", "route", "add", "default", "via", *gw6, "dev", dev})
		}
		for _, c := range cmds {
			if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
				hint := ""
				if c[0] == "-6" {
					hint = " (IPv6 off in the namespace? give --disable-ipv6)"
				}
				return fail(fmt.Errorf("ip %s: %v: %s%s", strings.Join(c, " "), err, bytes.TrimSpace(out), hint))
			}
		}
	}
	if err := unix.Sendmsg(helperSockFD, []byte("ok"), unix.UnixRights(fd), nil, 0); err != nil {
		fmt.Fprintln(os.Stderr, "ustack forward-helper: send descriptor:", err)
		return 1
	}
	return 0
}
