package ustack

import (
	"encoding/binary"
	"net/netip"
	"runtime"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// ShardsPerCPU as Config.Shards asks for one shard per CPU the Go
// runtime uses (GOMAXPROCS at New), as a NIC's RSS has a queue per core.
// It is what zero means too.
const ShardsPerCPU = -1

// shardCount is the number of shards a Stack made with cfg has: the
// Config's, or GOMAXPROCS for zero and ShardsPerCPU.
func shardCount(cfg *Config) int {
	if cfg.Shards > 0 {
		return cfg.Shards
	}
	return max(runtime.GOMAXPROCS(0), 1)
}

// hostShard returns the shard of host traffic (a frame stack.ParseFlowKey
// gives no flow). The shards' cores share one host part (stack.Shared):
// one neighbour cache, and IPv6 configuration and reassembly run by
// shard 0's core, the owner, which the others mirror. So what teaches
// the host — ARP, neighbour and router advertisements and solicitations,
// redirects, MLD — goes to shard 0, and so do fragments (a reassembled
// TCP datagram is handed to its flow's shard), echo and other
// protocols. An ICMP error about a TCP segment goes to the shard of the
// quoted flow, so that the connection hears it (RFC 1122 §4.2.3.9, RFC
// 4443 §3, and PMTU's frag-needed and packet-too-big). It is pure, like
// ParseFlowKey.
func (s *Stack) hostShard(m link.Medium, frame []byte) int {
	pkt := frame
	if m == link.Ethernet {
		eth, err := wire.ParseEthernet(frame)
		if err != nil {
			return 0
		}
		switch eth.EtherType() {
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
// with the per-listener bound on half-open connections (SynBacklog,
// tcp_max_syn_backlog) shared out like the accept backlog (partBacklog),
// since a listener has a SYN queue in every shard: so a SYN flood meets
// the one bound a listener has and SYN cookies start where they would.
// The neighbour cache's bounds need no sharing out: the cores share one
// cache (stack.Shared).
func shardConfig(cfg stack.Config, i, n int) stack.Config {
	if n == 1 {
		return cfg
	}
	if cfg.SynBacklog <= 0 {
		cfg.SynBacklog = 1024 // stack.Config's default
	}
	cfg.SynBacklog = partBacklog(cfg.SynBacklog, i, n)
	return cfg
}

// syncShards runs stack.SyncShared in every shard whose core has work
// left by another's (a datagram reassembled for one of its flows, a
// neighbour that failed, the owner's new IPv6 configuration). It is
// called after a shard's lock is released (unlockAt), never under one:
// the shards' locks are never nested.
func (s *Stack) syncShards() {
	for _, sh := range s.shards {
		if !s.host.TakePending(sh.idx) {
			continue
		}
		sh.mu.Lock()
		if sh.closed {
			sh.mu.Unlock()
			continue
		}
		sh.core.SyncShared(s.now())
		sh.unlock()
	}
}
