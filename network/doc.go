// Package network holds the pure (sans-IO) network-layer components that the
// stack composes: the routing table, the neighbour cache with ARP resolution,
// IPv4 reassembly and fragmentation, and ICMPv4 error and echo helpers.
//
// Reading list, in the order the code follows it:
//   - RFC 791 (IPv4) §2.3 and §3.2: fragmentation and reassembly; RFC 815:
//     the hole-descriptor reassembly algorithm.
//   - RFC 826 (ARP) and RFC 1122 §2.3.2.1–2: resolution, the merge rule,
//     request flooding limits and queueing while resolving.
//   - RFC 792 (ICMP), RFC 1122 §3.2.2: when an ICMP error may be sent and
//     what it quotes; RFC 1191 §4: the next-hop MTU; RFC 1812 §4.3.2.8: rate
//     limiting.
//   - RFC 1122 §3.3.1: the routing decision (longest prefix match).
//
// # The Handle/Poll contract
//
// Nothing here starts a goroutine, reads a clock, takes a lock or blocks.
// Every input takes the current time as a clock.Instant; timers are
// reported by NextDeadline and run by HandleTimeout(now); outputs are taken
// with Poll methods and are valid until the next call of the same method.
// Time only moves forward. The same calls with the same arguments produce
// the same outputs in the same order (no map iteration reaches an output),
// which is what lets the simulator replay a run from its seed.
//
// Where the RFCs leave a choice the default is what Linux does, and the
// comment names the sysctl mirrored. Malformed input is counted in Stats
// and dropped, never a panic. In steady state no packet allocates: queued
// and reassembled bytes live in pooled buffers of a few size classes, and
// the tables reuse their storage.
//
// None of the types is safe for concurrent use; their owner (the stack)
// serialises access.
package network
