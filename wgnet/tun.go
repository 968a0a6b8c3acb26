package wgnet

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/ustack/ustack"
)

// Net is the network side of a device made by CreateNetTUN: a ustack
// stack whose only link is the device, with the Dial, Listen, Ping and
// Lookup methods of wireguard-go's netstack.Net. Its methods are safe
// for concurrent use.
type Net struct {
	s            *ustack.Stack
	dev          *tunDevice
	dnsServers   []netip.Addr
	hasV4, hasV6 bool
}

// tunDevice is the tun.Device of CreateNetTUN: what wireguard-go reads
// packets to encrypt from, and writes decrypted packets to.
type tunDevice struct {
	l         *tunLink
	s         *ustack.Stack
	mtu       int
	events    chan tun.Event
	closeOnce sync.Once
	closeErr  error
}

// The MTUs a device may have: IPv4's minimum (RFC 791) to the largest
// IP packet.
const (
	minMTU = 68
	maxMTU = 65535
)

// DeviceBatchSize is the device's BatchSize: the most packets one Read
// returns. wireguard-go reads and writes its device in batches of the
// largest of its bind's (128 on Linux) and the device's sizes, so its
// Write batches are unchanged; but it keeps references to the buffers
// of the last batch it sent (64 KiB each), so smaller Read batches leave
// less memory held by an idle tunnel: 32 kept 3.4 MiB less per end than
// 128, for the same throughput.
const DeviceBatchSize = 32

// DefaultBuffer is the TCP send and receive buffer of a Net's
// connections (SO_SNDBUF, SO_RCVBUF): 1 MiB, netstack's (gVisor's
// defaults), not ustack's 4 MiB. The receive buffer bounds what a peer
// has in flight, and everything in flight through wireguard-go sits in
// its queues in a 64 KiB buffer per packet: with 4 MiB windows a bulk
// transfer between two wgnet ends held 350 MiB at its peak and its RTT
// grew until retransmission timers fired spuriously; with 1 MiB, 125 MiB
// and none (BENCHMARKS.md). A tunnel over a long path may want larger
// windows: CreateNetTUNConfig.
const DefaultBuffer = 1 << 20

// DefaultConfig returns the stack configuration of CreateNetTUN:
// ustack's defaults (the Linux kernel's) but for DefaultBuffer.
func DefaultConfig() ustack.Config {
	var c ustack.Config
	c.TCP.RcvBuf, c.TCP.SndBuf = DefaultBuffer, DefaultBuffer
	return c
}

// CreateNetTUN makes a ustack stack with localAddresses (each a /32 or
// /128 of its own, with a default route of its family through the
// device, as netstack's) and returns the tun.Device to hand to
// wireguard-go's device.NewDevice and the *Net whose sockets use it.
// dnsServers are the servers LookupHost asks, through the tunnel; mtu is
// the device's MTU (wireguard-go's default is 1420). The device says
// tun.EventUp at once. Closing the device closes the stack, its sockets
// and its goroutines.
func CreateNetTUN(localAddresses, dnsServers []netip.Addr, mtu int) (tun.Device, *Net, error) {
	return CreateNetTUNConfig(localAddresses, dnsServers, mtu, DefaultConfig())
}

// CreateNetTUNConfig is CreateNetTUN with the stack configured by cfg
// (TCP buffers, congestion control, keep-alive, ...); DefaultConfig is
// what CreateNetTUN passes.
func CreateNetTUNConfig(localAddresses, dnsServers []netip.Addr, mtu int, cfg ustack.Config) (tun.Device, *Net, error) {
	if mtu < minMTU || mtu > maxMTU {
		return nil, nil, fmt.Errorf("wgnet: MTU %d out of range %d..%d", mtu, minMTU, maxMTU)
	}
	s, err := ustack.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	l := newTunLink(mtu)
	dev := &tunDevice{l: l, s: s, mtu: mtu, events: make(chan tun.Event, 10)}
	n := &Net{s: s, dev: dev, dnsServers: append([]netip.Addr(nil), dnsServers...)}
	var prefixes []netip.Prefix
	for _, a := range localAddresses {
		a = a.Unmap()
		if !a.IsValid() {
			s.Close()
			return nil, nil, fmt.Errorf("wgnet: local address %v is not an IP address", a)
		}
		prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
		n.hasV4 = n.hasV4 || a.Is4()
		n.hasV6 = n.hasV6 || a.Is6()
	}
	nic, err := s.AddNIC(l, ustack.NICConfig{Name: "go", Addrs: prefixes})
	if err != nil {
		l.Close()
		s.Close()
		return nil, nil, fmt.Errorf("wgnet: %w", err)
	}
	for _, r := range []struct {
		has bool
		dst netip.Prefix
	}{{n.hasV4, netip.PrefixFrom(netip.IPv4Unspecified(), 0)}, {n.hasV6, netip.PrefixFrom(netip.IPv6Unspecified(), 0)}} {
		if !r.has {
			continue
		}
		if err := s.AddRoute(r.dst, netip.Addr{}, nic); err != nil {
			s.Close()
			return nil, nil, fmt.Errorf("wgnet: default route %v: %w", r.dst, err)
		}
	}
	dev.events <- tun.EventUp
	return dev, n, nil
}

// Name returns "go", as netstack's device does.
func (d *tunDevice) Name() (string, error) { return "go", nil }

// File returns nil: there is no file descriptor behind the device.
func (d *tunDevice) File() *os.File { return nil }

// Events returns the device's events: tun.EventUp once, at creation;
// the channel is closed by Close.
func (d *tunDevice) Events() <-chan tun.Event { return d.events }

// MTU returns the MTU given to CreateNetTUN.
func (d *tunDevice) MTU() (int, error) { return d.mtu, nil }

// BatchSize returns DeviceBatchSize.
func (d *tunDevice) BatchSize() int { return DeviceBatchSize }

// Read writes packets the stack sent into bufs[i][offset:], setting
// sizes[i], and returns how many: at least one, waiting until there is
// one (a packet longer than its buffer is dropped and counted). It
// returns os.ErrClosed after Close, EINVAL for a negative offset or no
// buffers.
func (d *tunDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < 0 || len(bufs) == 0 || len(sizes) == 0 {
		return 0, syscall.EINVAL
	}
	n, err := d.l.get(bufs, sizes, offset)
	if err != nil {
		return 0, os.ErrClosed
	}
	return n, nil
}

// Write hands the IP packets bufs[i][offset:] to the stack; empty ones
// (and buffers no longer than offset) are skipped. A packet that is neither IPv4 nor IPv6 fails the call
// with EAFNOSUPPORT, as netstack's device does (the packets before it
// are taken). It returns os.ErrClosed after Close.
func (d *tunDevice) Write(bufs [][]byte, offset int) (int, error) {
	if offset < 0 {
		return 0, syscall.EINVAL
	}
	for i, b := range bufs {
		if len(b) > offset {
			if v := b[offset] >> 4; v != 4 && v != 6 {
				if _, err := d.l.put(bufs[:i], offset); err != nil {
					return 0, os.ErrClosed
				}
				return 0, syscall.EAFNOSUPPORT
			}
		}
	}
	if _, err := d.l.put(bufs, offset); err != nil {
		return 0, os.ErrClosed
	}
	return len(bufs), nil
}

// Close closes the stack (every socket of the Net, its goroutines, the
// link) and the events channel. Calls after the first do nothing.
func (d *tunDevice) Close() error {
	d.closeOnce.Do(func() {
		d.closeErr = d.s.Close() // closes the link, which wakes Read and Write
		close(d.events)
	})
	return d.closeErr
}
