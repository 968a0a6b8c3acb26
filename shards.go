package ustack

import (
	"encoding/binary"
	"net/netip"
	"runtime"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// allShards is shardOfFrame's answer for a frame every shard gets.
const allShards = -1

// ShardsPerCPU as Config.Shards asks for one shard per CPU the Go
// runtime uses (GOMAXPROCS at New), as a NIC's RSS has a queue per core.
const ShardsPerCPU = -1

// shardCount is the number of shards a Stack made with cfg has: the
// Config's, GOMAXPROCS for ShardsPerCPU, or one.
func shardCount(cfg *Config) int {
	switch {
	case cfg.Shards > 0:
		return cfg.Shards
	case cfg.Shards == ShardsPerCPU:
		return max(runtime.GOMAXPROCS(0), 1)
	}
	return 1
}

// hostShard returns the shard of host traffic (a frame stack.ParseFlowKey
// gives no flow). Each shard's core has its own host part — neighbour
// cache, IPv6 addresses configured from router advertisements — so what
// teaches a host goes to every shard: ARP replies, and IPv6's neighbour
// and router advertisements and redirects; each core resolves and
// configures for itself. An ICMP error about a TCP segment goes to the
// shard of the quoted flow, so that the connection hears it (RFC 1122
// §4.2.3.9, RFC 4443 §3, and PMTU's frag-needed and packet-too-big). The
// rest (ARP requests and neighbour solicitations, which shard 0 answers;
// echo; fragments; MLD; other protocols) goes to shard 0. It is pure,
// like ParseFlowKey.
func (s *Stack) hostShard(m link.Medium, frame []byte) int {
	pkt := frame
	if m == link.Ethernet {
		eth, err := wire.ParseEthernet(frame)
		if err != nil {
			return 0
		}
		switch eth.EtherType() {
		case wire.EtherTypeARP:
			if a, err := wire.ParseARP(eth.Payload()); err == nil && a.Op() == wire.ARPReply {
				return allShards
			}
			return 0
		case wire.EtherTypeIPv4, wire.EtherTypeIPv6:
			pkt = eth.Payload()
		default:
			return 0
		}
	}
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		return s.hostShard6(pkt)
	}
	ip, err := wire.ParseIPv4(pkt)
	if err != nil || ip.IsFragment() || ip.Protocol() != wire.ProtoICMP {
		return 0
	}
	icmp, err := wire.ParseICMPv4(ip.Payload())
	if err != nil {
		return 0
	}
	switch icmp.Type() {
	case wire.ICMPv4DestUnreachable, wire.ICMPv4TimeExceeded, wire.ICMPv4ParameterProblem:
	default:
		return 0
	}
	var q wire.IPv4Fields
	l4, err := icmp.Quote(&q)
	if err != nil || q.Protocol != wire.ProtoTCP {
		return 0
	}
	return s.quotedShard(q.Src, q.Dst, l4)
}

// hostShard6 is hostShard for an IPv6 packet: ICMPv6 without extension
// headers is the only host traffic it spreads.
func (s *Stack) hostShard6(pkt []byte) int {
	ip, err := wire.ParseIPv6(pkt)
	if err != nil || ip.NextHeader() != wire.ProtoICMPv6 {
		return 0
	}
	icmp, err := wire.ParseICMPv6(ip.Payload())
	if err != nil {
		return 0
	}
	switch icmp.Type() {
	case wire.ICMPv6NeighborAdvert, wire.ICMPv6RouterAdvert, wire.ICMPv6Redirect:
		return allShards
	case wire.ICMPv6DestUnreachable, wire.ICMPv6PacketTooBig, wire.ICMPv6TimeExceeded, wire.ICMPv6ParameterProblem:
	default:
		return 0
	}
	// The invoking packet, as much as fits (RFC 4443 §2.4 (c)): its fixed
	// header, and the TCP ports if no extension header comes first.
	q := icmp.Payload()
	if len(q) < 40+4 || q[0]>>4 != 6 || q[6] != wire.ProtoTCP {
		return 0
	}
	src := netip.AddrFrom16([16]byte(q[8:24]))
	dst := netip.AddrFrom16([16]byte(q[24:40]))
	return s.quotedShard(src, dst, q[40:])
}

// quotedShard returns the shard of the TCP flow of a segment the stack
// sent from src to dst, quoted by an ICMP error (l4: the quoted TCP
// header's start): its source is the flow's local end.
func (s *Stack) quotedShard(src, dst netip.Addr, l4 []byte) int {
	return s.shardOfKey(stack.FlowKey{
		Proto:  wire.ProtoTCP,
		Local:  netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:])),
		Remote: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:])),
	})
}

// partBacklog is the accept backlog of a listener's part in shard i of n:
// the listener's backlog shared out, so that the parts together hold as
// many connections as the one listener would (at least one each); zero
// (the stack's maximum) stays zero.
func partBacklog(backlog, i, n int) int {
	if backlog <= 0 || n == 1 {
		return backlog
	}
	b := backlog / n
	if i < backlog%n {
		b++
	}
	return max(b, 1)
}

// shardConfig is the core configuration of shard i of n: the stack's,
// with the bounds that hold a flood back shared out like the accept
// backlog (partBacklog), since every shard has its own copy of what they
// bound: the per-listener bound on half-open connections (SynBacklog,
// tcp_max_syn_backlog; a listener has a SYN queue in every shard), so a
// SYN flood meets the one bound a listener has and SYN cookies start
// where they would; and the neighbour cache's bounds on resolutions in
// progress and packets waiting for them (each shard's core resolves on
// its own), so spoofed sources tie up no more than one cache would. The
// table itself (MaxEntries) stays whole in every shard: each must hold
// every real neighbour it talks to.
func shardConfig(cfg stack.Config, i, n int) stack.Config {
	if n == 1 {
		return cfg
	}
	share := func(v, def int) int {
		if v <= 0 {
			v = def
		}
		return partBacklog(v, i, n)
	}
	cfg.SynBacklog = share(cfg.SynBacklog, 1024) // stack.Config's default
	nc := &cfg.Neighbor
	entries := nc.MaxEntries
	if entries <= 0 {
		entries = network.DefaultMaxEntries
	}
	nc.MaxUnresolved = share(nc.MaxUnresolved, max(entries/4, 1)) // NeighborConfig's default
	nc.MaxQueued = share(nc.MaxQueued, network.DefaultMaxQueued)
	return cfg
}
