//go:build linux

package tap

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack/internal/gro"
	"github.com/ustack/ustack/internal/rawfd"
	"github.com/ustack/ustack/internal/vnet"
	"github.com/ustack/ustack/link"
)

// FDConfig describes a device descriptor that another party opened
// (FromFD).
type FDConfig struct {
	// MTU is the device's MTU. It cannot be read through the descriptor
	// when the device is in another network namespace, so the caller
	// says it; 0 means 1500.
	MTU int
	// BatchSize is the most frames one ReadBatch returns; 0 means 64.
	BatchSize int
	// NoGRO, as in Config.
	NoGRO bool
}

// FromFD makes an Endpoint of a TUN or TAP descriptor some other code
// opened and attached (TUNSETIFF) — a program's own, one a helper
// process opened inside another namespace and passed over a Unix socket
// (ustack forward), one handed down by a container runtime — and takes
// ownership of it: Close closes it. The device's flags decide the rest
// (TUNGETIFF): IFF_TUN gives link.IP, IFF_TAP link.Ethernet; with
// IFF_VNET_HDR, frames carry the virtio-net header and the kernel's
// offloads are turned on as Open does (TUNSETOFFLOAD, which works on the
// descriptor from any namespace), otherwise they are turned off
// (TUNSETOFFLOAD 0: a device keeps what an earlier user set). The
// descriptor must have been attached with IFF_NO_PI, as every user of
// package tap's kind does: frames with a packet-information prefix are
// not supported, and TUNGETIFF cannot tell (on Linux 6.18 it reports
// IFF_NO_PI for a device attached without it). If FromFD fails, the
// descriptor stays the caller's.
func FromFD(fd int, cfg FDConfig) (*Endpoint, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return nil, err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return nil, fmt.Errorf("tap: TUNGETIFF on descriptor %d: %w (not an attached TUN/TAP descriptor?)", fd, err)
	}
	flags := ifr.Uint16()
	e := &Endpoint{name: ifr.Name(), medium: link.Ethernet, mtu: cfg.MTU, batch: cfg.BatchSize, vnet: flags&unix.IFF_VNET_HDR != 0}
	if flags&unix.IFF_TUN != 0 {
		e.medium = link.IP
	}
	if e.mtu <= 0 {
		e.mtu = 1500
	}
	if e.batch <= 0 {
		e.batch = 64
	}
	if e.vnet {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnet.Len); err != nil {
			return nil, fmt.Errorf("tap: TUNSETVNETHDRSZ: %w", err)
		}
		off := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN
		e.uso = true
		if unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, off|unix.TUN_F_USO4|unix.TUN_F_USO6) != nil {
			e.uso = false
			if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, off); err != nil {
				return nil, fmt.Errorf("tap: TUNSETOFFLOAD: %w", err)
			}
		}
	} else if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0); err != nil {
		return nil, fmt.Errorf("tap: TUNSETOFFLOAD 0: %w", err)
	}
	e.fd, err = rawfd.New(fd, "tap "+e.name)
	if err != nil {
		return nil, err
	}
	e.spill = make([]byte, 65536+vnet.Len)
	e.readFn = e.readSome
	e.writeFn = e.writeSome
	if e.vnet && !cfg.NoGRO {
		e.gro = gro.New(e.medium)
	}
	return e, nil
}
