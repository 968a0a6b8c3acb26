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
// By default the device is opened with IFF_VNET_HDR, so that every frame
// read or written carries a virtio-net header (virtio spec v1.2 §5.1.6;
// package internal/vnet maps it onto link.Offload), and with the kernel's
// offloads on: TUNSETOFFLOAD TUN_F_CSUM|TSO4|TSO6|TSO_ECN, and USO4|USO6
// where the kernel has them (6.2 and later; an older kernel refuses the
// flags and Open sets the others). It is what QEMU does for a guest's
// virtio-net, and what moves about ten times as much through a TAP as
// frames of the MTU do (environment notes §2).
//
//   - From the kernel: TCP super-frames of up to 64 KiB (link.CapGRO; read
//     buffers need room for link.MaxSuperFrame), whose checksum is partial
//     (Offload.NeedsCsum: the kernel never computed it) and so trusted
//     (DataValid). Consecutive wire-sized TCP segments of a flow in one
//     read batch (a kernel with TSO off, or forwarding) are merged into
//     super-frames by software GRO (package internal/gro: Linux's rules;
//     Config.NoGRO turns it off), their checksums verified where the
//     kernel did not vouch for them. A UDP super-datagram (a kernel socket
//     with UDP_SEGMENT) is cut into its datagrams here, since a UDP
//     socket takes them one at a time.
//   - To the kernel: TCP super-frames (link.CapTSO) and, with USO, UDP ones
//     (CapUSO), which the kernel segments, and partial checksums
//     (CapTxChecksum), which it completes or, delivering locally, trusts.
//
// Config.NoOffloads opens the device without the header and sets
// TUNSETOFFLOAD 0 — always, since a persistent device keeps the offloads
// its last user turned on, and the kernel would otherwise send partial
// checksums and 64 KiB frames with nothing to say so (environment notes
// §2). Frames are then at most MTU plus the link header, with complete
// checksums, and Caps is 0.
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
