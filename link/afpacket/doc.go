// Package afpacket is a link.Endpoint on an AF_PACKET socket bound to an
// existing interface (packet(7)): one end of a veth pair, or a NIC. The
// kernel keeps the interface and everything else on it; the stack gets a
// MAC and IP address of its own on the same link — the "partial bypass"
// that leaves SSH and the rest of the host's traffic to the kernel.
//
//	ep, err := afpacket.Open(afpacket.Config{Interface: "veth1"})
//	s.AddNIC(ep, ustack.NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.77.0.2/24")}})
//
// # The interface
//
// The interface should have no IP address of its own in its namespace
// (or at least not the stack's): otherwise the kernel answers ARP for it
// and resets TCP connections it does not know. Put the interface in a
// namespace of its own (Config.Netns), or turn IPv6 off there
// (net.ipv6.conf.all.disable_ipv6=1) to keep the link quiet. The socket
// joins PACKET_MR_PROMISC unless Config.NoPromisc is set, so a NIC does
// not filter out the stack's MAC address; frames for other addresses
// reach the stack, which counts and drops them (Link.RxNotForUs).
// PACKET_IGNORE_OUTGOING keeps the stack's own frames from coming back.
//
// # Offloads
//
// A kernel peer with its transmit offloads on (a veth's default) sends
// frames a wire would not carry: TCP super-frames of up to 64 KiB (TSO,
// GSO), UDP super-datagrams (UDP_SEGMENT), and partial checksums
// (checksum offload). The socket has PACKET_VNET_HDR on, in both receive
// modes, so a virtio-net header says which frames are which, and by
// default the endpoint hands them on as they are, described by
// link.Offload (Caps: link.CapGRO, CapRxChecksumValid), as the kernel
// hands them to QEMU: read buffers need room for link.MaxSuperFrame; a
// partial checksum arrives with DataValid. Consecutive wire-sized TCP
// segments of a flow in one batch are merged by software GRO (package
// internal/gro; Config.NoGRO turns it off), their checksums verified
// where the kernel did not vouch for them. A UDP super-datagram is cut
// into its datagrams (a UDP socket takes them one at a time); the UDP
// frames that arrive behind it in the same batch wait behind it, so none
// overtakes another, while other frames go ahead. The endpoint also
// writes super-frames (CapTSO, CapUSO) and partial checksums
// (CapTxChecksum) behind a virtio-net header for the kernel to finish.
//
// With Config.NoOffloads, Caps is 0: frames are complete and at most MTU
// plus 14 (18 with an 802.1Q tag) bytes. Partial checksums are completed
// (Stats.RxCsumCompleted); super-frames are dropped and counted
// (Stats.RxGSO), so a TCP connection from a peer with segmentation
// offloads on stalls: turn them off on the peer's side of a veth,
//
//	ethtool -K <peer> tso off gso off     # needed with NoOffloads
//	ethtool -K <peer> tx off              # optional: saves completing checksums
//
// (internal/netns.SetOffloads does the same with ioctls). `ustack netem`
// opens its sockets this way: it forwards wire frames.
//
// # Receive modes
//
// ModeMmsg (the default) receives a batch of frames per recvmmsg(2) call,
// each copied into the caller's buffer, its virtio-net header beside it.
// ModeRing maps a TPACKET_V3 ring (Documentation/networking/packet_mmap.rst)
// and copies frames out of the blocks the kernel hands over, with no
// system call while blocks are ready; the kernel puts each frame's
// virtio-net header right in front of it (tpacket_rcv). A V3 block is
// handed over when it is full or after its retire timeout
// (Config.BlockTimeout, 1 ms by default),
// which adds up to that much latency to request/response traffic. Which is
// faster was measured: see BENCHMARKS.md, "AF_PACKET: recvmmsg or
// TPACKET_V3". Both modes transmit with sendmmsg(2).
//
// On a veth with several CPUs, frames of one flow can be delivered out of
// order (the kernel's per-CPU backlogs); steer receive processing to one
// CPU with RPS on both ends (/sys/class/net/IF/queues/rx-0/rps_cpus;
// internal/netns.Pair does it).
//
// # Blocking and closing
//
// The socket is non-blocking and sits in the Go runtime's poller (package
// internal/rawfd): an idle ReadBatch parks without holding a thread, and
// Close wakes it at once with net.ErrClosed. No goroutine belongs to the
// endpoint. A full send buffer makes WriteBatch wait at most WriteTimeout,
// then drop the rest of the batch, as a NIC with a full queue does.
//
// # Privileges
//
// An AF_PACKET socket needs CAP_NET_RAW in the interface's network
// namespace: root, or a user namespace of one's own (`unshare -rn`, in
// which veth pairs can be made too). SO_RCVBUFFORCE needs CAP_NET_ADMIN;
// without it the receive buffer is capped by net.core.rmem_max.
package afpacket
