package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/afpacket"
	"github.com/ustack/ustack/link/tap"
)

// Addresses of the device cases: the kernel's side is .1, the system on the
// device (ustack, the bare frame sink/source, or a second kernel) is .2.
var (
	devKernelIP = netip.MustParseAddr("10.77.0.1")
	devDUTIP    = netip.MustParseAddr("10.77.0.2")
	devPrefix   = 24
)

// Device names inside the bench's namespaces.
const (
	tapName  = "ubtap0"
	vethKern = "ubp0" // the kernel's end of a veth pair
	vethDUT  = "ubd0" // the end the system under test takes
)

// DeviceMTU is the MTU of the device cases.
const DeviceMTU = 1500

// kernelEnd is the kernel's TCP in a namespace: sockets opened on a thread
// inside it.
type kernelEnd struct {
	ns *netns
	ip netip.Addr
}

func (k kernelEnd) listen() (ln net.Listener, err error) {
	err = k.ns.do(func() error {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(k.ip, 0).String())
		return err
	})
	return ln, err
}

func (k kernelEnd) dial(ctx context.Context, addr net.Addr) (c net.Conn, err error) {
	err = k.ns.do(func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp4", addr.String())
		return err
	})
	return c, err
}

// devNet is ustack on a device against the kernel: the server is ustack,
// the client the kernel, so a forward bulk transfer goes from the kernel
// into ustack and a reverse one out of ustack into the kernel.
type devNet struct {
	kernel kernelEnd
	s      *ustack.Stack
	nss    []*netns
}

func (d *devNet) Listen() (net.Listener, error) {
	return d.s.Listen("tcp", netip.AddrPortFrom(devDUTIP, 0).String())
}

func (d *devNet) Dial(ctx context.Context, addr net.Addr) (net.Conn, error) {
	return d.kernel.dial(ctx, addr)
}

func (d *devNet) Close() error {
	var err error
	if d.s != nil {
		err = d.s.Close()
	}
	for _, n := range d.nss {
		err = errors.Join(err, n.Close())
	}
	return err
}

// attach puts a ustack stack on ep with the DUT address.
func (d *devNet) attach(ep link.Endpoint) error {
	s, err := ustack.New(ustack.Config{Shards: scaleShards})
	if err != nil {
		ep.Close()
		return err
	}
	d.s = s
	_, err = s.AddNIC(ep, ustack.NICConfig{Addrs: []netip.Prefix{netip.PrefixFrom(devDUTIP, devPrefix)}})
	return err
}

// tapKernel makes a namespace with a TAP device the kernel has the .1
// address on, and returns the namespace and the device's endpoint (opened
// with the link's default configuration, as a ustack user gets it).
func tapKernel() (*netns, *tap.Endpoint, error) { return tapKernelWith(TAPConfig) }

// tapKernelWith is tapKernel with the device configuration config(netns).
func tapKernelWith(config func(netns string) tap.Config) (*netns, *tap.Endpoint, error) {
	if err := needRoot(); err != nil {
		return nil, nil, err
	}
	ns, err := newNetns()
	if err != nil {
		return nil, nil, err
	}
	ep, err := tap.Open(config(ns.path()))
	if err == nil {
		err = ns.ip("addr", "add", netip.PrefixFrom(devKernelIP, devPrefix).String(), "dev", tapName)
	}
	if err == nil {
		err = ns.rps(tapName)
	}
	if err != nil {
		if ep != nil {
			ep.Close()
		}
		ns.Close()
		return nil, nil, err
	}
	return ns, ep, nil
}

// TAPConfig is the TAP device of the device cases, in namespace netns: the
// link's defaults but for the name and MTU, for ustack and the bare path
// alike (so both get the same offloads).
func TAPConfig(netns string) tap.Config {
	return tap.Config{Name: tapName, MTU: DeviceMTU, Netns: netns}
}

// UstackTAP returns a Setup for ustack on a TAP device whose kernel side
// (10.77.0.1) is in a namespace the bench creates.
func UstackTAP() Setup {
	return func(o Options) (Net, error) {
		ns, ep, err := tapKernel()
		if err != nil {
			return nil, err
		}
		d := &devNet{kernel: kernelEnd{ns, devKernelIP}, nss: []*netns{ns}}
		if err := d.attach(ep); err != nil {
			d.Close()
			return nil, err
		}
		return d, nil
	}
}

// vethPair makes two namespaces joined by a veth pair: the kernel's end
// (10.77.0.1) and the DUT's end (no address unless dutAddr), both with the
// kernel's default offloads (TSO, GSO, checksum: AF_PACKET takes the
// super-frames), with receive steering to one CPU on both.
func vethPair(dutAddr bool) (kns, dns *netns, err error) {
	if err := needRoot(); err != nil {
		return nil, nil, err
	}
	if kns, err = newNetns(); err != nil {
		return nil, nil, err
	}
	if dns, err = newNetns(); err != nil {
		kns.Close()
		return nil, nil, err
	}
	steps := []func() error{
		func() error {
			return run("ip", "link", "add", vethKern, "numtxqueues", "1", "numrxqueues", "1", "netns", kns.name,
				"type", "veth", "peer", "name", vethDUT, "numtxqueues", "1", "numrxqueues", "1", "netns", dns.name)
		},
		func() error { return kns.ip("link", "set", "dev", vethKern, "mtu", itoa(DeviceMTU), "up") },
		func() error { return dns.ip("link", "set", "dev", vethDUT, "mtu", itoa(DeviceMTU), "up") },
		func() error {
			return kns.ip("addr", "add", netip.PrefixFrom(devKernelIP, devPrefix).String(), "dev", vethKern)
		},
		func() error { return kns.rps(vethKern) },
		func() error { return dns.rps(vethDUT) },
	}
	if dutAddr {
		steps = append(steps, func() error {
			return dns.ip("addr", "add", netip.PrefixFrom(devDUTIP, devPrefix).String(), "dev", vethDUT)
		})
	}
	for _, step := range steps {
		if err := step(); err != nil {
			kns.Close()
			dns.Close()
			return nil, nil, err
		}
	}
	return kns, dns, nil
}

// AFPacketConfig is the AF_PACKET socket of the device cases, on the DUT's
// end of the veth pair in namespace netns: the link's defaults otherwise.
func AFPacketConfig(netns string) afpacket.Config {
	return afpacket.Config{Interface: vethDUT, Netns: netns}
}

// UstackAFPacket returns a Setup for ustack on an AF_PACKET socket on one
// end of a veth pair, against the kernel on the other end.
func UstackAFPacket() Setup {
	return func(o Options) (Net, error) {
		kns, dns, err := vethPair(false)
		if err != nil {
			return nil, err
		}
		d := &devNet{kernel: kernelEnd{kns, devKernelIP}, nss: []*netns{kns, dns}}
		ep, err := afpacket.Open(AFPacketConfig(dns.path()))
		if err != nil {
			d.Close()
			return nil, err
		}
		if err := d.attach(ep); err != nil {
			d.Close()
			return nil, err
		}
		return d, nil
	}
}

// KernelVeth returns a Setup for the kernel on both ends of a veth pair
// with the offloads and steering of the AF_PACKET case: the server is the
// DUT's namespace, the client the kernel's.
func KernelVeth() Setup {
	return func(o Options) (Net, error) {
		kns, dns, err := vethPair(true)
		if err != nil {
			return nil, err
		}
		return &vethNet{client: kernelEnd{kns, devKernelIP}, server: kernelEnd{dns, devDUTIP}}, nil
	}
}

type vethNet struct{ client, server kernelEnd }

func (v *vethNet) Listen() (net.Listener, error) { return v.server.listen() }
func (v *vethNet) Dial(ctx context.Context, addr net.Addr) (net.Conn, error) {
	return v.client.dial(ctx, addr)
}
func (v *vethNet) Close() error   { return errors.Join(v.client.ns.Close(), v.server.ns.Close()) }
func (v *vethNet) kernelSockets() {}

// The columns of the device table.
const (
	colIn  = "into the system: the kernel sends"
	colOut = "out of the system: the kernel receives"
)

// DeviceTable is ustack on a TAP device and on an AF_PACKET socket against
// the kernel in a namespace, beside the bare device path (a trivial frame
// sink and source in Go on the same device with the same offloads) and
// the kernel on both ends of a veth pair: bulk both ways (root only).
func DeviceTable() *Table {
	t := &Table{
		Title:  "Devices: ustack against the kernel in a namespace (bulk, MTU " + itoa(DeviceMTU) + ")",
		Corner: "system on the device",
		Cols:   []string{colIn, colOut},
	}
	bulkRow := func(name, target string, setup Setup) {
		t.Rows = append(t.Rows, &Row{Name: name, Target: target, Cells: []*Cell{
			cell(setup, showBulk, func(ctx context.Context, n Net, o Options) (Sample, error) { return Bulk(ctx, n, o, false) }),
			cell(setup, showBulk, func(ctx context.Context, n Net, o Options) (Sample, error) { return Bulk(ctx, n, o, true) }),
		}})
	}
	bareRow := func(name string, open func() (*bareDevice, error)) {
		t.Rows = append(t.Rows, &Row{Name: name, Cells: []*Cell{
			{Show: showBulk, Run: func(ctx context.Context, o Options) (Sample, error) { return bareRun(ctx, o, open, false) }},
			{Show: showBulk, Run: func(ctx context.Context, o Options) (Sample, error) { return bareRun(ctx, o, open, true) }},
		}})
	}
	bulkRow("ustack on a TAP device", "≥ 5 Gbit/s, and ≥ 90 % of the bare TAP path each way", UstackTAP())
	bareRow("bare TAP path (Go frame sink / source)", bareTAP)
	bulkRow("ustack on AF_PACKET (veth)", "", UstackAFPacket())
	bareRow("bare AF_PACKET path (Go frame sink / source)", bareAFPacket)
	bulkRow("kernel on both ends of the veth", "", KernelVeth())
	t.Notes = []string{
		fmt.Sprintf("The kernel's side is in a network namespace the bench creates (%s, removed after each measurement); its sockets are opened by this process on a thread inside it, so the CPU figures are this process's, kernel work included.", netip.PrefixFrom(devKernelIP, devPrefix)),
		"TAP: the device as `link/tap` opens it by default (the virtio-net header with TSO, checksum offload and USO on, GRO on reads; receive steered to CPU 0). AF_PACKET: `link/afpacket` defaults (PACKET_VNET_HDR: the kernel's GSO frames taken, super-frames sent, GRO) on one end of a veth pair with the kernel's default offloads on both ends; receive steered to CPU 0 on both ends. The kernel↔kernel row uses the same veth settings.",
		"Bare path: a Go loop on the same `link.Endpoint` (same device, same configuration) that answers ARP, accepts one connection and acknowledges every in-order segment at the end of each read batch (sink), or connects and sends at the window the kernel offers, go-back-N on loss (source), in frames of the MTU or, where the device offers TSO and checksum offload, of up to 64 KiB for the device to segment; its payload is constant, so its checksum is computed once. It is the device's ceiling for a stack on it.",
	}
	return t
}
