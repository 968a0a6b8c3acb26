package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/ustack/ustack/internal/siphash"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// FlowKey says which flow a received frame belongs to, as far as a runtime
// needs to know before it takes any lock: the 4-tuple of a TCP segment or
// UDP datagram, seen from the stack (Local is the packet's destination),
// or host traffic. A runtime with N shards (issue 13) hashes the key to
// pick the shard that owns the flow, as a NIC's RSS does, and hands host
// traffic to the host part.
type FlowKey struct {
	// Proto is wire.ProtoTCP or wire.ProtoUDP, or 0 for host traffic.
	Proto uint8
	// Local and Remote are the destination and source address and port
	// of a flow's packet (zero for host traffic).
	Local, Remote netip.AddrPort
}

// Host reports whether the frame is host traffic: ARP, ICMP (errors
// included: the host part reads the flow an error quotes), fragments
// (only reassembly tells whose they are), IPv6 packets with extension
// headers, protocols other than TCP and UDP, and anything that does not
// parse this far.
func (k FlowKey) Host() bool { return k.Proto == 0 }

// Hash returns a keyed hash of k (SipHash-2-4 under a key made from
// seed), for spreading flows over shards; keyed, so that a peer cannot
// aim all its flows at one shard. A flow's packets, and a connection the
// stack opens to the same 4-tuple, hash alike: the key is the stack's
// view of the flow, whatever the direction.
func (k FlowKey) Hash(seed uint64) uint64 {
	var b [1 + 2*(16+2)]byte
	b[0] = k.Proto
	n := 1
	for _, ap := range [2]netip.AddrPort{k.Local, k.Remote} {
		n += putAddr(b[n:], ap.Addr())
		binary.BigEndian.PutUint16(b[n:], ap.Port())
		n += 2
	}
	key := siphash.Key{K0: seed, K1: seed ^ 0x9e3779b97f4a7c15}
	return key.Sum64(b[:n])
}

// ParseFlowKey parses a frame as it arrives on a NIC of medium m (an
// Ethernet frame, VLAN-tagged or not, or a bare IP packet) up to its flow
// key. It is a pure function — no state, no side effects, no allocation —
// meant to run before any lock is taken. It checks only what it reads:
// a frame it gives a 4-tuple may still be dropped by the stack (a bad
// checksum, an address not ours), which is the flow's shard's business.
func ParseFlowKey(m link.Medium, frame []byte) FlowKey {
	ipPkt := frame
	if m == link.Ethernet {
		eth, err := wire.ParseEthernet(frame)
		if err != nil {
			return FlowKey{}
		}
		switch eth.EtherType() {
		case wire.EtherTypeIPv4, wire.EtherTypeIPv6:
		default:
			return FlowKey{}
		}
		ipPkt = eth.Payload()
	}
	if len(ipPkt) == 0 {
		return FlowKey{}
	}
	var src, dst netip.Addr
	var proto uint8
	var l4 []byte
	switch ipPkt[0] >> 4 {
	case 4:
		ip, err := wire.ParseIPv4(ipPkt)
		if err != nil || ip.IsFragment() {
			return FlowKey{}
		}
		src, dst, proto, l4 = ip.Src(), ip.Dst(), ip.Protocol(), ip.Payload()
	case 6:
		ip, err := wire.ParseIPv6(ipPkt)
		if err != nil {
			return FlowKey{}
		}
		src, dst, proto, l4 = ip.Src(), ip.Dst(), ip.NextHeader(), ip.Payload()
	default:
		return FlowKey{}
	}
	if proto != wire.ProtoTCP && proto != wire.ProtoUDP || len(l4) < 4 {
		return FlowKey{}
	}
	return FlowKey{
		Proto:  proto,
		Local:  netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:])),
		Remote: netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:])),
	}
}
