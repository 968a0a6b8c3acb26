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
	FragOKs         uint64 // datagrams fragmented (IpFragOKs)
	FragFails       uint64 // datagrams not fragmented: DF set (IpFragFails)
	FragCreates     uint64 // fragments created (IpFragCreates)

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
