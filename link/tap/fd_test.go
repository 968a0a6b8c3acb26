//go:build linux

package tap_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/tap"
)

// openRaw opens and attaches a device inside ns the way another program
// would (not through package tap), and brings it up with the kernel's
// address: what FromFD is handed.
func openRaw(t *testing.T, ns *netns.NS, name string, flags uint16) int {
	t.Helper()
	fd := -1
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint16(flags)
		return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.IP("addr", "add", kernelAddr.String(), "dev", name); err != nil {
		t.Fatal(err)
	}
	if err := ns.IP("link", "set", "dev", name, "up"); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestFromFD: a descriptor another program attached — TUN or TAP, with
// or without the virtio-net header — carries ping and TCP both ways, with
// the medium and offloads its flags say.
func TestFromFD(t *testing.T) {
	for _, tc := range []struct {
		flags uint16
		med   link.Medium
		caps  link.Caps
	}{
		{unix.IFF_TUN | unix.IFF_NO_PI, link.IP, 0},
		{unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR, link.IP, offloadCaps},
		{unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR, link.Ethernet, offloadCaps},
	} {
		t.Run(fmt.Sprintf("flags=%#x", tc.flags), func(t *testing.T) {
			netnstest.Skip(t, true)
			netnstest.NeedCommands(t, "ping")
			leaktest.Check(t)
			ns := netnstest.NS(t, "ustack-tapfd-")
			fd := openRaw(t, ns, "fd0", tc.flags)
			ep, err := tap.FromFD(fd, tap.FDConfig{MTU: 1500})
			if err != nil {
				unix.Close(fd)
				t.Fatal(err)
			}
			if ep.Medium() != tc.med || ep.Caps() != tc.caps || ep.Name() != "fd0" || ep.Created() {
				t.Fatalf("medium %v caps %b (want %v %b) name %q", ep.Medium(), ep.Caps(), tc.med, tc.caps, ep.Name())
			}
			s, _ := linktest.Stack(t, ep, stackAddr)
			linktest.Ping(t, ns, stackAddr.Addr(), 3)
			linktest.TCPBothWays(t, ns, s, kernelAddr.Addr(), stackAddr.Addr(), 8<<20)
			if st := ep.Stats(); (tc.caps != 0) != (st.RxGSO > 0) || st.RxBadOffload != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestFromFDRefuses: a descriptor that is not an attached TUN/TAP device
// is refused with the reason, and left open for its owner.
func TestFromFDRefuses(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "notun")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tap.FromFD(int(f.Fd()), tap.FDConfig{}); err == nil || !strings.Contains(err.Error(), "TUNGETIFF") {
		t.Fatalf("a plain file: %v", err)
	}
	if _, err := f.Write([]byte("still open")); err != nil {
		t.Fatalf("the refused descriptor was closed: %v", err)
	}
}
