package ustack

import (
	"errors"
	"net"
	"net/netip"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// This file chooses shards: for each received frame, for each new
// connection and listener. A Stack has Config.Shards shards (GOMAXPROCS by
// default), each with a core of its own holding the same host
// configuration (NICs, addresses, routes), the cores sharing one host
// part (stack.Shared: the neighbour cache; IPv6 configuration and
// reassembly run by shard 0's core), and TCP flows are spread over
// them by a keyed hash of their 4-tuple, as a NIC's RSS spreads them over
// queues:
//
//   - a received TCP segment goes to the shard its flow hashes to;
//     everything else is host traffic or UDP, and goes to shard 0, except
//     ICMP errors that quote a TCP segment, which go to the shard of the
//     quoted flow (hostShard); a TCP datagram shard 0 reassembles is
//     handed to its flow's shard (syncShards);
//   - a dial goes to a shard in turn and picks a local port its flow
//     hashes back to that shard with (the source address from the route,
//     stack.SourceAddr, when the dial names none);
//   - a listener has a part in every shard, and Accept takes turns;
//   - UDP sockets and the UDP and echo forwarders live in shard 0, where
//     all UDP and ICMP traffic goes; a TCP forwarder has a part in each.
//
// With one shard every choice is that one and no frame is parsed for it.

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

// receive is a NIC's link.Receiver function on a stack with several
// shards: frames the peer writes, handed over in its writer's goroutine.
// Each run of consecutive frames for one shard goes to that shard under
// one taking of its lock, so every shard gets its frames in order with
// no scratch space: the peer may call it from several writers at once
// (link.ConcurrentWriter), and a writer's batch is mostly one flow's.
func (s *Stack) receive(n *NIC, pkts []link.Packet) {
	m := n.ep.Medium()
	k := 0
	for i := 0; i < len(pkts); {
		if i == 0 {
			k = s.shardOfFrame(m, pkts[i].Frame())
		}
		j, next := i+1, -1
		for ; j < len(pkts); j++ {
			if next = s.shardOfFrame(m, pkts[j].Frame()); next != k {
				break
			}
		}
		if !s.shards[k].input(n.id, pkts[i:j]) {
			return // closed
		}
		i, k = j, next
	}
}

// shardOfFrame returns the shard a received frame goes to: for a TCP
// segment, the one its flow hashes to (stack.ParseFlowKey, a pure parse up
// to the flow key); for UDP shard 0; for host traffic what hostShard says.
func (s *Stack) shardOfFrame(m link.Medium, frame []byte) int {
	k := stack.ParseFlowKey(m, frame)
	switch {
	case k.Proto == wire.ProtoTCP:
		return s.shardOfKey(k)
	case k.Host():
		return s.hostShard(m, frame)
	}
	return 0
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
	sh, err := s.open(laddr, raddr, func(sh *shard, sc *stack.TCPConn) { c = sh.newTCPConn(sc, true) })
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
		// The port's hash needs the whole 4-tuple: the source address
		// the route gives, as the core would pick it.
		sh := s.shards[0]
		sh.mu.Lock()
		src, err := sh.core.SourceAddr(raddr.Addr())
		sh.mu.Unlock()
		if err != nil {
			return nil, err
		}
		laddr = netip.AddrPortFrom(src, laddr.Port())
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
	// The search goes on from where the last one stopped, from an offset
	// keyed by the destination (RFC 6056 §3.3.3, Algorithm 3, as the
	// core's own choice with one shard, stack.ephemeralTCP): a port to a
	// destination comes round again only after the whole range. A
	// random start, as before, gave a port back within a millisecond
	// about once in 5,000 connections, while the server still held the
	// last connection on it in TIME-WAIT and saw no newer sequence
	// number or timestamp in the SYN (RFC 6191): the SYN went
	// unanswered and was retransmitted after a second
	// (TestShardsPortsNotReusedAtOnce).
	//
	// The counter is one of a table, chosen by other bits of the same
	// keyed hash (RFC 6056 §3.3.4, Algorithm 4, "Double-Hash Port
	// Selection", as Linux's __inet_hash_connect and its table_perturb):
	// with one counter for every destination, the searches to one
	// destination started, after every lap of the range the dials to all
	// made, on the ports its own earlier connections held, and each
	// walked past more of them: a million connections to 32 addresses
	// spent 26 of their 57 s of setup CPU in the port search.
	h := stack.FlowKey{Proto: wire.ProtoTCP, Local: netip.AddrPortFrom(laddr.Addr(), 0), Remote: raddr}.Hash(s.cfg.Seed ^ portKey)
	offset, next := uint32(h), &s.nextPort[(h>>32)%uint64(len(s.nextPort))]
	start := offset + next.Load()
	err := error(stack.ErrAddrInUse)
	for i := uint32(0); i < span; i++ {
		local := netip.AddrPortFrom(laddr.Addr(), lo+uint16((start+i)%span))
		if s.shardOfFlow(local, raddr) != want {
			continue
		}
		var sh *shard
		sh, err = s.shards[want].open(local, raddr, wrap)
		if !errors.Is(err, stack.ErrAddrInUse) {
			next.Add(i + 1)
			return sh, err
		}
	}
	return nil, err
}

// portKey tells the key of the ephemeral port search's offset from the
// flow hash's (both come from Config.Seed).
const portKey = 0x6a09e667f3bcc908

// portTableSize is how many next_ephemeral counters the port search keeps
// (RFC 6056 Algorithm 4's table; Linux has 65,536): destinations that
// share one share its laps.
const portTableSize = 1024

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

// shardForUDP returns the shard of a new UDP socket: shard 0, which all
// UDP traffic goes to (UDP is not spread over shards).
func (s *Stack) shardForUDP() (*shard, error) {
	return s.shards[0], nil
}

// shardForForwarder returns the shard of a UDP or echo forwarder
// (ForwardUDP, ForwardEcho): shard 0, which all UDP and ICMP traffic
// goes to. A TCP forwarder has a part in every shard (ForwardTCP).
func (s *Stack) shardForForwarder() (*shard, error) {
	return s.shards[0], nil
}
