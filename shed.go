package ustack

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
)

// Shedding load under a SYN flood (docs/ARCHITECTURE.md, "Shedding
// load"). A NIC reader that gets a full batch from its link is behind:
// frames wait in the link's receive queue (a NIC's ring) and more may be
// dropped there, whatever they carry. While the stack is SYN-flooded (a
// listener answered with a SYN cookie in the last second,
// stack.SynFlooded), such a batch hands at most 1/synShare of its slots
// to connection requests and drops the other SYNs before any lock, at
// the cost of a header parse each (NICStats.RxSYNShed); every other frame
// — the established connections' data and ACKs, the cookie-carrying ACKs
// of clients completing a handshake — goes on. Draining the queue so
// cheaply keeps room in it for those frames, which is how established
// flows keep their throughput: Linux gets the same from the listener's
// lockless SYN path and its per-CPU backlog, and a NIC with flow
// steering from its own filters. A batch that is not full means the
// reader keeps up, and nothing is shed; a legitimate SYN shed meanwhile
// is sent again by its client (RFC 6298's initial RTO), as one a full
// backlog dropped.

// synShare: a full batch hands at most len/synShare SYNs to the shards
// while the stack is SYN-flooded.
const synShare = 4

// noteSynFlood records, for the readers, whether sh's core is SYN-flooded.
// The caller holds sh.mu.
func (sh *shard) noteSynFlood(now clock.Instant) {
	if f := sh.core.SynFlooded(now); f != sh.synFlooded.Load() {
		sh.synFlooded.Store(f)
	}
}

// synFlooded reports whether a shard's core is SYN-flooded.
func (s *Stack) synFlooded() bool {
	for _, sh := range s.shards {
		if sh.synFlooded.Load() {
			return true
		}
	}
	return false
}

// shed drops the SYNs beyond the quota from a full batch the NIC's reader
// got while the stack is SYN-flooded, and returns how many frames are
// left, moved to the front in their order (the reader's buffers change
// places; it uses them afresh after each read).
func (n *NIC) shed(pkts []link.Packet) int {
	if len(pkts) < 2*synShare || !n.s.synFlooded() {
		return len(pkts)
	}
	quota := len(pkts) / synShare
	m := n.ep.Medium()
	k, shed := 0, 0
	for i := range pkts {
		if stack.IsConnRequest(m, pkts[i].Frame()) {
			if quota == 0 {
				pkts[i].N = 0
				pkts[i].Offload = link.Offload{}
				shed++
				continue
			}
			quota--
		}
		if k != i {
			pkts[k], pkts[i] = pkts[i], pkts[k]
		}
		k++
	}
	if shed > 0 {
		n.rxSynShed.Add(uint64(shed))
	}
	return k
}
