package ustack

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// This file chooses shards: for each received frame, for each new
// connection and listener. A Stack has one shard, and every choice is
// that one; a stack made with newStack(cfg, n) has n, each with a core of
// its own holding the same host configuration (NICs, addresses, routes),
// and flows are spread over them by a keyed hash of their 4-tuple, as a
// NIC's RSS spreads them over queues:
//
//   - a received TCP or UDP frame goes to the shard its flow hashes to,
//     anything else (ARP, ICMP, fragments) to shard 0 (stack.ParseFlowKey
//     tells them apart);
//   - a dial goes to a shard in turn and picks a local port its flow
//     hashes back to that shard with;
//   - a listener has a part in every shard, and Accept takes turns.
//
// Until the shards' cores share one host part (package stack keeps host
// state apart from flows, but each core has its own), several shards work
// only where host traffic does not matter to flows: a link without ARP
// (link.IP), dials with a local address. UDP sockets are refused. issue
// 13 makes the shard count configuration on that ground.

// errShardsUDP is the refusal of a UDP socket on a stack with several
// shards.
var errShardsUDP = errors.New("ustack: UDP on a stack with several shards is not supported yet")

// errShardsSource is the refusal of a dial without a local address on a
// stack with several shards.
var errShardsSource = errors.New("ustack: a dial on a stack with several shards needs a local address")

// input is a NIC reader's scratch space for handing a batch of frames to
// several shards.
type input struct {
	to   []int         // the shard of each frame of the batch
	pkts []link.Packet // one shard's frames (the reader's buffers), in order
}

// input hands a batch of frames received on n to the shards; it reports
// false once the stack is closed. With several shards each frame is
// parsed up to its flow key first, before any lock, and each shard gets
// its frames in the order they came, under one taking of its lock.
func (s *Stack) input(n *NIC, pkts []link.Packet, in *input) bool {
	if len(s.shards) == 1 {
		return s.shards[0].input(n.id, pkts)
	}
	if len(in.to) < len(pkts) {
		in.to = make([]int, len(pkts))
		in.pkts = make([]link.Packet, len(pkts))
	}
	m := n.ep.Medium()
	for i := range pkts {
		in.to[i] = s.shardOfFrame(m, pkts[i].Frame())
	}
	open := true
	for k, sh := range s.shards {
		j := 0
		for i := range pkts {
			if in.to[i] == k {
				in.pkts[j] = pkts[i]
				j++
			}
		}
		if j > 0 && open {
			open = sh.input(n.id, in.pkts[:j])
		}
		clear(in.pkts[:j])
	}
	for i := range pkts {
		pkts[i].N = 0
		pkts[i].Offload = link.Offload{}
	}
	return open
}

// shardOfFrame returns the shard a received frame goes to: the one its
// flow hashes to (stack.ParseFlowKey, a pure parse up to the flow key),
// or shard 0 for host traffic.
func (s *Stack) shardOfFrame(m link.Medium, frame []byte) int {
	k := stack.ParseFlowKey(m, frame)
	if k.Host() {
		return 0
	}
	return s.shardOfKey(k)
}

// shardOfKey returns the shard that owns flow k.
func (s *Stack) shardOfKey(k stack.FlowKey) int {
	return int(k.Hash(s.cfg.Seed) % uint64(len(s.shards)))
}

// shardOfFlow returns the shard that owns the TCP flow between local and
// remote.
func (s *Stack) shardOfFlow(local, remote netip.AddrPort) int {
	return s.shardOfKey(stack.FlowKey{Proto: wire.ProtoTCP, Local: local, Remote: remote})
}

// connect opens a TCP connection from laddr to raddr in the shard its
// flow belongs to, and wraps it.
func (s *Stack) connect(laddr, raddr netip.AddrPort) (*shard, *TCPConn, error) {
	var c *TCPConn
	sh, err := s.open(laddr, raddr, func(sh *shard, sc *stack.TCPConn) { c = sh.newTCPConn(sc) })
	return sh, c, err
}

// open opens a TCP connection from laddr to raddr in the shard its flow
// belongs to; wrap gives it its owner, under the shard lock (a TCPConn
// for Dial, a CallbackConn for DialCallback).
func (s *Stack) open(laddr, raddr netip.AddrPort, wrap func(*shard, *stack.TCPConn)) (*shard, error) {
	if len(s.shards) == 1 {
		return s.shards[0].open(laddr, raddr, wrap)
	}
	if !laddr.Addr().IsValid() || laddr.Addr().IsUnspecified() {
		return nil, errShardsSource
	}
	if laddr.Port() != 0 {
		sh := s.shards[s.shardOfFlow(laddr, raddr)]
		return sh.open(laddr, raddr, wrap)
	}
	// An ephemeral port whose flow hashes to the next shard in turn
	// (RSS-aware port choice, as user-space stacks that own a NIC queue
	// per core do); the shard's core refuses a 4-tuple it already has.
	want := int(s.nextDial.Add(1) % uint64(len(s.shards)))
	lo, hi := s.cfg.EphemeralPorts[0], s.cfg.EphemeralPorts[1]
	if lo == 0 && hi == 0 {
		lo, hi = 32768, 60999 // stack.Config's default
	}
	if hi < lo {
		lo, hi = hi, lo
	}
	span := uint32(hi-lo) + 1
	start := rand.Uint32N(span)
	err := error(stack.ErrAddrInUse)
	for i := uint32(0); i < span; i++ {
		local := netip.AddrPortFrom(laddr.Addr(), lo+uint16((start+i)%span))
		if s.shardOfFlow(local, raddr) != want {
			continue
		}
		var sh *shard
		sh, err = s.shards[want].open(local, raddr, wrap)
		if !errors.Is(err, stack.ErrAddrInUse) {
			return sh, err
		}
	}
	return nil, err
}

// open opens a TCP connection in sh and has wrap give it its owner.
func (sh *shard) open(laddr, raddr netip.AddrPort, wrap func(*shard, *stack.TCPConn)) (*shard, error) {
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return nil, net.ErrClosed
	}
	sc, err := sh.core.Connect(sh.s.now(), laddr, raddr)
	if err != nil {
		sh.mu.Unlock()
		return nil, err
	}
	wrap(sh, sc)
	sh.unlock()
	return sh, nil
}

// shardForUDP returns the shard of a new UDP socket.
func (s *Stack) shardForUDP() (*shard, error) {
	if len(s.shards) > 1 {
		return nil, errShardsUDP
	}
	return s.shards[0], nil
}
