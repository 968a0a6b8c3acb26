package netns

import (
	"fmt"
	"net"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The interface helpers below are the ioctls of netdevice(7) and
// ethtool's legacy ETHTOOL_S* commands (include/uapi/linux/ethtool.h).
// They act on the network namespace of the calling thread: call them
// inside Do to reach another namespace.

// ioctlSock runs f with an AF_INET datagram socket in the calling thread's
// namespace, the socket netdevice(7) ioctls are made on.
func ioctlSock(f func(fd int) error) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: socket: %w", err)
	}
	defer unix.Close(fd)
	return f(fd)
}

// SetUp brings interface name up (SIOCSIFFLAGS with IFF_UP), like
// `ip link set dev NAME up`.
func SetUp(name string) error {
	return ioctlSock(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("netns: SIOCGIFFLAGS %s: %w", name, err)
		}
		flags := ifr.Uint16()
		if flags&unix.IFF_UP != 0 {
			return nil
		}
		ifr.SetUint16(flags | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("netns: SIOCSIFFLAGS %s up: %w", name, err)
		}
		return nil
	})
}

// SetMTU sets the MTU of interface name (SIOCSIFMTU).
func SetMTU(name string, mtu int) error {
	return ioctlSock(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint32(uint32(mtu))
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
			return fmt.Errorf("netns: SIOCSIFMTU %s %d: %w", name, mtu, err)
		}
		return nil
	})
}

// MTU returns the MTU of interface name (SIOCGIFMTU).
func MTU(name string) (int, error) {
	var mtu int
	err := ioctlSock(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFMTU, ifr); err != nil {
			return fmt.Errorf("netns: SIOCGIFMTU %s: %w", name, err)
		}
		mtu = int(ifr.Uint32())
		return nil
	})
	return mtu, err
}

// SetTxQueueLen sets the transmit queue length of interface name
// (SIOCSIFTXQLEN), like `ip link set dev NAME txqueuelen N`. On a TAP or
// TUN device it is also the size of the ring the kernel fills for the
// device's reader.
func SetTxQueueLen(name string, n int) error {
	return ioctlSock(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint32(uint32(n))
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFTXQLEN, ifr); err != nil {
			return fmt.Errorf("netns: SIOCSIFTXQLEN %s %d: %w", name, n, err)
		}
		return nil
	})
}

// TxQueueLen returns the transmit queue length of interface name
// (SIOCGIFTXQLEN).
func TxQueueLen(name string) (int, error) {
	var n int
	err := ioctlSock(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFTXQLEN, ifr); err != nil {
			return fmt.Errorf("netns: SIOCGIFTXQLEN %s: %w", name, err)
		}
		n = int(ifr.Uint32())
		return nil
	})
	return n, err
}

// Index returns the interface index of name (SIOCGIFINDEX).
func Index(name string) (int, error) {
	var idx int
	err := ioctlSock(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
			return fmt.Errorf("netns: interface %s: %w", name, err)
		}
		idx = int(ifr.Uint32())
		return nil
	})
	return idx, err
}

// HardwareAddr returns the Ethernet address of interface name
// (SIOCGIFHWADDR).
func HardwareAddr(name string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := ioctlSock(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
			return fmt.Errorf("netns: SIOCGIFHWADDR %s: %w", name, err)
		}
		// struct ifreq: name[16], then struct sockaddr { family u16;
		// data[14] }, the address in the first six bytes of data.
		raw := (*[unix.IFNAMSIZ + 16]byte)(unsafe.Pointer(ifr))
		mac = append(net.HardwareAddr(nil), raw[unix.IFNAMSIZ+2:unix.IFNAMSIZ+8]...)
		return nil
	})
	return mac, err
}

// Legacy ethtool commands (include/uapi/linux/ethtool.h), each taking a
// struct ethtool_value { u32 cmd; u32 data; }. The kernel maps them onto
// the features `ethtool -K` sets.
const (
	ethtoolSTXCSUM = 0x17 // ETHTOOL_STXCSUM: "tx" (checksum offload)
	ethtoolSSG     = 0x19 // ETHTOOL_SSG: scatter-gather
	ethtoolSTSO    = 0x1f // ETHTOOL_STSO: "tso"
	ethtoolSGSO    = 0x24 // ETHTOOL_SGSO: "gso"
	ethtoolSGRO    = 0x2c // ETHTOOL_SGRO: "gro"
)

type ethtoolValue struct {
	cmd, data uint32
}

// SetOffloads turns the transmit offloads of interface name on or off:
// TSO, GSO and transmit checksumming, like
// `ethtool -K NAME tso off gso off tx off`. With them off, a veth peer
// hands the other end MTU-sized frames with complete checksums, which is
// what a link without offload support (link/afpacket by default) needs
// (environment notes §3). The legacy commands know the TSO variants of
// their time: a newer one (tx-tcp-accecn-segmentation, Linux 6.18, used
// only by AccECN connections) stays as it was; `ethtool -K NAME tso off`
// turns off every variant by name.
func SetOffloads(name string, on bool) error {
	v := uint32(0)
	if on {
		v = 1
	}
	return ioctlSock(func(fd int) error {
		// Order matters when turning off: TSO depends on checksumming.
		cmds := []uint32{ethtoolSTSO, ethtoolSGSO, ethtoolSTXCSUM}
		if on {
			cmds = []uint32{ethtoolSTXCSUM, ethtoolSSG, ethtoolSGSO, ethtoolSTSO}
		}
		for _, c := range cmds {
			if err := ethtool(fd, name, c, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetTxChecksum turns transmit checksum offload of interface name on or
// off (`ethtool -K NAME tx on|off`).
func SetTxChecksum(name string, on bool) error {
	v := uint32(0)
	if on {
		v = 1
	}
	return ioctlSock(func(fd int) error { return ethtool(fd, name, ethtoolSTXCSUM, v) })
}

// SetGRO turns generic receive offload of interface name on or off
// (`ethtool -K NAME gro on|off`).
func SetGRO(name string, on bool) error {
	v := uint32(0)
	if on {
		v = 1
	}
	return ioctlSock(func(fd int) error { return ethtool(fd, name, ethtoolSGRO, v) })
}

func ethtool(fd int, name string, cmd, data uint32) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	// On the heap, which does not move, since the kernel finds it through
	// a pointer stored inside the ifreq.
	val := &ethtoolValue{cmd: cmd, data: data}
	// struct ifreq's union holds a pointer to the ethtool command.
	raw := (*[unix.IFNAMSIZ + 24]byte)(unsafe.Pointer(ifr))
	*(*uintptr)(unsafe.Pointer(&raw[unix.IFNAMSIZ])) = uintptr(unsafe.Pointer(val))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(ifr)))
	runtime.KeepAlive(val)
	if errno != 0 {
		return fmt.Errorf("netns: ethtool %#x=%d on %s: %w", cmd, data, name, errno)
	}
	return nil
}
