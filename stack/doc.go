// Package stack composes the protocol cores into a whole TCP/IP host, as
// a pure state machine: NICs and their addresses, the routing table, ARP
// and IPv6 Neighbor Discovery, IPv4 and IPv6 input and output with
// reassembly and fragmentation, ICMP and ICMPv6, IPv6 address
// configuration (link-local addresses, duplicate address detection,
// router discovery, SLAAC) and MLD, UDP sockets, TCP listeners and
// connections with their demultiplexing, port allocation and one deadline
// heap for all of them. Sockets bound to :: take both families, as
// package net's "tcp" on ":80".
//
// Like package tcp it never starts a goroutine, reads a clock, takes a lock
// or blocks. Its owner drives it:
//
//   - HandleFrame(now, nic, pkt) for every frame read from a link;
//   - HandleTimeout(now) when NextDeadline has passed;
//   - socket calls (Connect, Listen, BindUDP and the methods of TCPConn,
//     TCPListener and UDPEndpoint), all non-blocking;
//   - then PollTransmit(now, pkt) until it reports nothing more, to collect
//     the frames to write; NextDeadline; and PollEvent, to learn which
//     sockets became readable, writable, connected or closed (Events).
//
// A socket call that would have to wait returns ErrWouldBlock, whatever
// the protocol.
//
// Package ustack (the root) drives a Stack from goroutines in real time;
// package sim drives the very same Stack single-threaded in virtual time.
//
// A Stack is not safe for concurrent use: its owner serialises every call.
//
// # Inside
//
// The network layer hands the transports a family-neutral account of each
// packet (addresses, protocol, TTL, ECN, payload, NIC) and takes their
// payloads back through one output path that writes the IP header by the
// destination's family, so IPv6 is a second producer of the same values.
// The state is in two parts: the host (NICs, addresses, routes,
// neighbours, reassembly, ICMP) and the flows (connections, listeners,
// UDP sockets, ports, deadlines, the output rotation, events), so that N
// shards can share one host. docs/ARCHITECTURE.md draws both.
//
// # Offloads and super-frames
//
// PollTransmit may set link.Offload on the frame it writes, but only for
// a NIC whose configuration (NICConfig.Caps) says its link takes it: with
// link.CapTxChecksum a TCP segment's checksum is left partial
// (Offload.NeedsCsum, the pseudo-header sum in the field); with
// link.CapTSO as well, a TCP super-segment of up to 64 KiB leaves as one
// frame with the GSO fields set, for the link to cut into segments of
// GSOSize. MaxFrameLen then covers a 64 KiB IP packet; the owner sizes
// its buffers by it and passes Offload on to the link (WriteBatch). NICs
// without those capabilities get exactly what they got before: complete
// frames, one segment each. Connections to the stack's own addresses move
// their data in super-segments internally. HandleFrame takes frames
// larger than the MTU (a link's coalesced segments) and skips the
// transport checksum of those marked Offload.DataValid.
//
// # Choosing a shard
//
// ParseFlowKey reads a frame up to its flow key — the 4-tuple of a TCP
// segment or UDP datagram, or host traffic — without touching a Stack, so
// that a runtime can choose a shard by FlowKey.Hash before taking any
// lock. Today's runtime has one shard.
package stack
