// Package stack composes the protocol cores into a whole TCP/IPv4 host, as
// a pure state machine: NICs and their addresses, the routing table, ARP,
// IPv4 input and output with reassembly and fragmentation, ICMP, UDP
// sockets, TCP listeners and connections with their demultiplexing, port
// allocation and one deadline heap for all of them.
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
package stack
