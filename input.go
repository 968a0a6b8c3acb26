package ustack

import (
	"github.com/ustack/ustack/link"
)

// input is a NIC reader's scratch space for handing a batch of frames to
// several shards.
type input struct{}

// input hands a batch of frames received on n to the shards; it reports
// false once the stack is closed.
func (s *Stack) input(n *NIC, pkts []link.Packet, in *input) bool {
	return s.shards[0].input(n.id, pkts)
}

// shardForDial returns the shard a new outgoing TCP connection goes to.
func (s *Stack) shardForDial() *shard { return s.shards[0] }

// shardForListen returns the shard of a new listener or unbound UDP
// socket.
func (s *Stack) shardForListen() (*shard, error) { return s.shards[0], nil }
