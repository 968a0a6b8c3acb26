// Package tap is a link.Endpoint on a Linux TAP device (Ethernet frames)
// or TUN device (bare IP packets), through /dev/net/tun
// (Documentation/networking/tuntap.rst).
//
//	ep, err := tap.Open(tap.Config{Name: "tap0", MTU: 1500})
//	if err != nil { ... }
//	s, _ := ustack.New(ustack.Config{})
//	s.AddNIC(ep, ustack.NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.77.0.2/24")}})
//	// the kernel side: ip addr add 10.77.0.1/24 dev tap0
//
// The kernel sees the device as an ordinary interface; what it sends
// there, the stack reads, and what the stack writes, the kernel receives
// as if from a wire. The stack has its own MAC address on a TAP device
// (the device's own address belongs to the kernel side).
//
// # Creating, attaching, namespaces
//
// Open creates the device, or attaches to an existing one of that name
// (for example a persistent device made by `ip tuntap add dev tap0 mode
// tap`), sets its MTU if Config.MTU is given, and brings it up. With
// Config.Netns it does all this inside a named network namespace: it
// enters it with setns(2) on a locked OS thread, opens the device, and
// switches back; the descriptor keeps working from anywhere (package
// internal/netns). Without Config.Persist, a device Open created
// disappears when the endpoint is closed.
//
// # Offloads
//
// By default there is no virtio-net header, and Open always sets
// TUNSETOFFLOAD 0: a persistent device keeps the offloads its last user
// turned on, and the kernel would then send partial checksums and 64 KiB
// GSO frames with nothing to say so (environment notes §2). Frames are
// then at most MTU plus the link header, with complete checksums, and
// Caps is 0.
//
// Config.VnetHdr (experimental) opens the device with IFF_VNET_HDR and
// turns on checksum offload and TSO, and maps the virtio-net header
// (virtio spec v1.2 §5.1.6) onto link.Offload: received frames may be TCP
// super-frames up to 64 KiB (CapGRO) whose checksum is partial
// (Offload.NeedsCsum, DataValid), and written frames may ask the kernel
// to segment (CapTSO) and checksum (CapTxChecksum) them. It is roughly ten
// times faster from the kernel (environment notes §2). The stack uses it
// (super-frames out, coalesced frames taken whole), but it stays off by
// default until the speed issue has measured and tested it against the
// kernel.
//
// # Batching and blocking
//
// A TUN/TAP descriptor gives one frame per read(2) and takes one per
// write(2); there is no recvmmsg for it. ReadBatch reads frames until the
// batch is full or the device has none left (EAGAIN), so one wake-up
// carries a whole burst. The descriptor is non-blocking and sits in the Go
// runtime's poller (package internal/rawfd): a ReadBatch with nothing to
// read parks its goroutine without holding a thread, and Close wakes it
// at once with net.ErrClosed. No goroutine belongs to the endpoint.
//
// # Privileges
//
// Opening /dev/net/tun and creating a device needs CAP_NET_ADMIN in the
// device's network namespace: root, or a user namespace of one's own
// (`unshare -rn`), where the device node must also be accessible to the
// user (it is often mode 0666; where it is 0600, as on the project's CI
// machines, an administrator must `chmod 0666 /dev/net/tun`).
package tap
