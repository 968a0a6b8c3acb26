package ustack

import (
	"encoding/binary"
	"net/netip"
	"runtime"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// allShards is shardOfFrame's answer for a frame every shard gets.
const allShards = -1

// shardCount is the number of shards a Stack made with cfg has: the
// Config's, or GOMAXPROCS (one when the program runs on one CPU).
func shardCount(cfg *Config) int {
	if cfg.Shards > 0 {
		return cfg.Shards
	}
	return max(runtime.GOMAXPROCS(0), 1)
}

// hostShard returns the shard of host traffic (a frame stack.ParseFlowKey
// gives no flow): every shard for an ARP reply, since each core has its
// own neighbour cache and waits for the replies to its own requests; the
// shard of the quoted flow for an ICMP error about a TCP segment, so that
// the connection hears it (RFC 1122 §4.2.3.9, and PMTU's frag-needed);
// shard 0 for the rest (ARP requests, which shard 0 answers; echo;
// fragments; other protocols). It is pure, like ParseFlowKey.
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
		case wire.EtherTypeIPv4:
			pkt = eth.Payload()
		default:
			return 0
		}
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
	// The quoted segment is one the stack sent: its source is the local
	// end of the flow.
	return s.shardOfKey(stack.FlowKey{
		Proto:  wire.ProtoTCP,
		Local:  netip.AddrPortFrom(q.Src, binary.BigEndian.Uint16(l4[0:])),
		Remote: netip.AddrPortFrom(q.Dst, binary.BigEndian.Uint16(l4[2:])),
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
