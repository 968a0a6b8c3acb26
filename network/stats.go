package network

import "reflect"

// NICID identifies a network interface of a stack. The stack assigns them;
// this package only compares them.
type NICID int32

// Stats are the network-layer counters of a stack, named after the Linux
// MIB counters (`nstat`, `netstat -s`): the RFC 4293 IP-MIB group (Ip*),
// the ICMP group (Icmp*), and ARP counters after /proc/net/stat/arp_cache.
// The components of this package add to the counters named in their doc
// comments; the stack adds to the rest. The owner reads them under the
// stack's lock.
type Stats struct {
	// IP (RFC 4293 ipSystemStats, Linux Ip*).
	InReceives      uint64 // datagrams received, including errors (IpInReceives)
	InHdrErrors     uint64 // datagrams dropped for header errors: bad version, length, checksum, fragment length (IpInHdrErrors)
	InAddrErrors    uint64 // datagrams dropped: destination not ours and not forwarded (IpInAddrErrors)
	InUnknownProtos uint64 // datagrams for a protocol with no handler (IpInUnknownProtos)
	InDiscards      uint64 // datagrams dropped for lack of resources (IpInDiscards)
	InDelivers      uint64 // datagrams delivered to ICMP, UDP, TCP (IpInDelivers)
	InTruncated     uint64 // datagrams shorter than their total length (IpInTruncatedPkts)
	OutRequests     uint64 // datagrams handed to IP for sending (IpOutRequests)
	OutDiscards     uint64 // datagrams dropped on output for lack of resources (IpOutDiscards)
	OutNoRoutes     uint64 // datagrams dropped: no route (IpOutNoRoutes)
	ReasmTimeout    uint64 // datagrams whose reassembly timed out (IpReasmTimeout)
	ReasmReqds      uint64 // fragments received for reassembly (IpReasmReqds)
	ReasmOKs        uint64 // datagrams reassembled (IpReasmOKs)
	ReasmFails      uint64 // reassembly failures: timeouts, overlaps, oversize, memory (IpReasmFails)
	ReasmOverlaps   uint64 // datagrams dropped for overlapping fragments (IpExtReasmOverlaps)
	// ReasmHandoffDrops counts reassembled TCP datagrams (either family)
	// dropped because the queue to the core of their flow was full
	// (ustack: stack.Shared).
	ReasmHandoffDrops uint64
	FragOKs           uint64 // datagrams fragmented (IpFragOKs)
	FragFails         uint64 // datagrams not fragmented: DF set (IpFragFails)
	FragCreates       uint64 // fragments created (IpFragCreates)

	// ICMP (RFC 4293 icmpStatsTable and icmpMsgStatsTable, Linux Icmp*).
	InMsgs          uint64 // ICMP messages received, including errors (IcmpInMsgs)
	InErrors        uint64 // ICMP messages with errors: bad checksum, too short (IcmpInErrors)
	InCsumErrors    uint64 // ICMP messages with a bad checksum (IcmpInCsumErrors)
	InDestUnreachs  uint64 // destination unreachable received (IcmpInDestUnreachs)
	InTimeExcds     uint64 // time exceeded received (IcmpInTimeExcds)
	InEchos         uint64 // echo requests received (IcmpInEchos)
	InEchoReps      uint64 // echo replies received (IcmpInEchoReps)
	OutMsgs         uint64 // ICMP messages sent (IcmpOutMsgs)
	OutEchos        uint64 // echo requests sent, from ping sockets (IcmpOutEchos)
	OutEchoReps     uint64 // echo replies sent (IcmpOutEchoReps)
	OutDestUnreachs uint64 // destination unreachable sent (IcmpOutDestUnreachs)
	OutTimeExcds    uint64 // time exceeded sent (IcmpOutTimeExcds)
	OutRateLimited  uint64 // ICMP errors not sent: rate limit (IcmpOutRateLimitGlobal + IcmpOutRateLimitHost)

	// ARP (Linux /proc/net/stat/arp_cache and ustack's own).
	ARPInRequests    uint64 // ARP requests received (ustack)
	ARPInReplies     uint64 // ARP replies received (ustack)
	ARPOutRequests   uint64 // ARP requests sent: counted by Neighbors.PollRequest
	ARPOutReplies    uint64 // ARP replies sent (ustack)
	ARPResolveFailed uint64 // resolutions that gave up (arp_cache res_failed)
	ARPQueueDrops    uint64 // packets dropped while or because resolution failed (arp_cache unresolved_discards)
	ARPBad           uint64 // ARP packets dropped as malformed or with unusable addresses (ustack)
	ARPTableFull     uint64 // new neighbours refused: table full (arp_cache table_fulls)
	// The stack-wide bounds of resolution (NeighborConfig.MaxUnresolved,
	// MaxQueued); the packets they drop count in ARPQueueDrops too.
	ARPUnresolvedEvicted uint64 // resolutions abandoned for a new one: MaxUnresolved reached (ustack)
	ARPQueueFull         uint64 // packets dropped: MaxQueued reached (ustack)

	// IPv6 (RFC 4293 ipSystemStats for IPv6, Linux Ip6* in
	// /proc/net/snmp6), under Linux's names.
	Ip6InReceives      uint64 // packets received, including errors
	Ip6InHdrErrors     uint64 // packets dropped for header errors: version, extension headers, hop limit of NDP, parameter problems
	Ip6InAddrErrors    uint64 // packets dropped: destination not ours (or tentative), martian source
	Ip6InUnknownProtos uint64 // packets for a protocol with no handler
	Ip6InTruncatedPkts uint64 // packets shorter than their payload length
	Ip6InDiscards      uint64 // packets dropped for lack of resources
	Ip6InDelivers      uint64 // packets delivered to ICMPv6, UDP, TCP
	Ip6InMcastPkts     uint64 // multicast packets received
	Ip6OutRequests     uint64 // packets handed to IPv6 for sending
	Ip6OutMcastPkts    uint64 // multicast packets sent
	Ip6OutNoRoutes     uint64 // packets dropped: no route
	Ip6ReasmTimeout    uint64 // packets whose reassembly timed out
	Ip6ReasmReqds      uint64 // fragments received for reassembly
	Ip6ReasmOKs        uint64 // packets reassembled
	Ip6ReasmFails      uint64 // reassembly failures: timeouts, overlaps, oversize, memory
	Ip6ReasmOverlaps   uint64 // packets dropped for overlapping fragments (RFC 5722; Linux counts them in Ip6ReasmFails only)
	Ip6FragOKs         uint64 // packets fragmented
	Ip6FragFails       uint64 // packets not fragmented: not allowed (TCP) or not fragmentable
	Ip6FragCreates     uint64 // fragments created

	// ICMPv6 (RFC 4293 icmpStatsTable for IPv6, Linux Icmp6*).
	Icmp6InMsgs                    uint64 // messages received, including errors
	Icmp6InErrors                  uint64 // messages with errors: too short, malformed, NDP failing RFC 4861's validation
	Icmp6InCsumErrors              uint64 // messages with a bad checksum
	Icmp6InDestUnreachs            uint64
	Icmp6InPktTooBigs              uint64
	Icmp6InTimeExcds               uint64
	Icmp6InParmProblems            uint64
	Icmp6InEchos                   uint64
	Icmp6InEchoReplies             uint64
	Icmp6InGroupMembQueries        uint64 // MLD queries (v1 and v2)
	Icmp6InGroupMembResponses      uint64 // MLDv1 reports
	Icmp6InGroupMembReductions     uint64 // MLDv1 done
	Icmp6InRouterSolicits          uint64
	Icmp6InRouterAdvertisements    uint64
	Icmp6InNeighborSolicits        uint64
	Icmp6InNeighborAdvertisements  uint64
	Icmp6InRedirects               uint64
	Icmp6InMLDv2Reports            uint64
	Icmp6OutMsgs                   uint64 // messages sent
	Icmp6OutDestUnreachs           uint64
	Icmp6OutTimeExcds              uint64
	Icmp6OutParmProblems           uint64
	Icmp6OutEchos                  uint64 // echo requests sent (ping sockets)
	Icmp6OutEchoReplies            uint64
	Icmp6OutGroupMembResponses     uint64 // MLDv1 reports
	Icmp6OutGroupMembReductions    uint64 // MLDv1 done
	Icmp6OutRouterSolicits         uint64
	Icmp6OutNeighborSolicits       uint64
	Icmp6OutNeighborAdvertisements uint64
	Icmp6OutMLDv2Reports           uint64
	Icmp6OutRateLimited            uint64 // errors not sent: the rate limit shared with ICMPv4 (Linux: Icmp6OutRateLimitHost, IcmpOutRateLimitGlobal)

	// The NDP side of the neighbour cache (Linux /proc/net/stat/ndisc_cache
	// and ustack's own, as the ARP ones above).
	NDPResolveFailed      uint64 // resolutions that gave up, and PROBE entries whose unicast probes went unanswered (res_failed)
	NDPQueueDrops         uint64 // packets dropped while or because resolution failed (unresolved_discards)
	NDPBad                uint64 // link-layer addresses refused: multicast, zero, unusable neighbour address (ustack)
	NDPTableFull          uint64 // new neighbours refused: table full (table_fulls)
	NDPUnresolvedEvicted  uint64 // resolutions abandoned for a new one: MaxUnresolved reached (ustack)
	NDPQueueFull          uint64 // packets dropped: MaxQueued reached (ustack)
	NDPUnsolicitedIgnored uint64 // neighbour advertisements for no entry, ignored (RFC 4861 §7.2.5) (ustack)

	// Stateless address autoconfiguration (RFC 4862; ustack's names).
	Ip6DADFailures   uint64 // addresses found duplicate by DAD (Linux logs "duplicate address detected!")
	Ip6DADLoopedBack uint64 // our own DAD solicitations seen again, told by their nonce (RFC 7527)
	Ip6RAIgnored     uint64 // router advertisements not acted on: invalid (RFC 4861 §6.1.2) or not accepted (IgnoreRA)
	Ip6AutoconfAddrs uint64 // addresses formed from advertised prefixes (RFC 4862 §5.5.3)
	Ip6AddrsExpired  uint64 // autoconfigured addresses removed at the end of their valid lifetime
}

// Each calls f with the name and value of every counter, in declaration
// order. It is for printing and tests; it is not fast.
func (s *Stats) Each(f func(name string, v uint64)) {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f(t.Field(i).Name, v.Field(i).Uint())
	}
}
