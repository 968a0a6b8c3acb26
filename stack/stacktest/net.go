// Package stacktest joins stack.Stacks with an in-memory Ethernet segment
// that runs in virtual time, for tests: no goroutines, no sleeps, no wall
// clock. A Net polls each stack's PollTransmit into buffers, records every
// frame, delivers it to the other nodes' HandleFrame after the segment's
// delay, and advances its clock to the earliest of the next arrival and
// every stack's NextDeadline (the event loop of smoltcp's netsim and
// quinn-proto's Pair.step). A test hook can drop, delay (reorder),
// duplicate or corrupt frames on their way, and raw nodes — a MAC address
// with no stack behind it — let a test play a peer frame by frame.
//
// The segment is a hub: a frame reaches every other node, and each stack
// filters by destination MAC itself, as a NIC does.
//
// A NIC added with offload capabilities (NICConfig.Caps: link.CapTSO,
// link.CapTxChecksum) behaves as such a NIC: the frames its stack hands
// it with link.Offload set — TCP super-segments, partial checksums — are
// recorded as they were handed over (Net.Offloaded), then cut and
// completed in software (internal/gso) into the frames that go on the
// wire, which are what Net.Log holds and the other nodes receive.
package stacktest

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// Action is what an impairment hook decides for one frame.
type Action struct {
	// Drop loses the frame.
	Drop bool
	// Delay is added to the segment's delay: frames sent later overtake
	// it (reordering).
	Delay time.Duration
	// Dups is how many extra copies arrive right after it.
	Dups int
}

// Frame is a frame one node sent, as recorded in Net.Log.
type Frame struct {
	// N is the frame's index in Net.Log.
	N int
	// From is the node that sent it.
	From *Node
	// Sent is when it was sent.
	Sent clock.Instant
	// Data is the frame as delivered (a hook may have altered it).
	Data []byte
	// Action is what the hook decided.
	Action Action
	// Offload is the frame's offload metadata as its stack handed it to
	// the NIC (frames in Net.Offloaded only; those on the wire have
	// none).
	Offload link.Offload
}

// Decode decodes the frame's headers.
func (f *Frame) Decode() *Decoded { return Decode(f.Data) }

// String prints the frame in one line, tcpdump style.
func (f *Frame) String() string {
	s := fmt.Sprintf("#%d %v %s: %v", f.N, f.Sent, f.From.Name, f.Decode())
	if f.Action.Drop {
		s += " [dropped]"
	}
	return s
}

// Event is one PollEvent result, recorded on its node.
type Event struct {
	At     clock.Instant
	Socket stack.Socket
	Events stack.Events
}

// Node is a NIC on the segment: a stack's, or a raw one that only records
// what reaches it.
type Node struct {
	Name string
	// Stack is the node's stack; nil for a raw node. A stack may have
	// several NICs on the segment, each its own node (AddStack again).
	Stack *stack.Stack
	// NIC is the stack's NIC on the segment.
	NIC stack.NICID
	// MAC and Addr are the NIC's Ethernet and (first) IPv4 address.
	MAC  wire.MAC
	Addr netip.Addr
	// Inbox holds the frames that reached a raw node, in order.
	Inbox []*Frame
	// Events are the stack's PollEvent results, in order (on the
	// stack's first node, if it has several NICs on the segment).
	Events []Event
	// Down makes the node deaf and mute: frames to it are lost, and a
	// stack's output is polled and thrown away.
	Down bool

	net *Net
	tx  link.Packet
	rx  link.Packet
}

// Net is an Ethernet segment in virtual time.
type Net struct {
	// Now is the virtual time.
	Now clock.Instant
	// Delay is the one-way delay of every frame.
	Delay time.Duration
	// Impair, if set, decides the fate of each frame sent. It may change
	// f.Data to corrupt the frame.
	Impair func(f *Frame) Action
	// Log is every frame sent, in order.
	Log []*Frame
	// Offloaded is every frame a stack handed to an offloading NIC with
	// link.Offload set (a super-segment, a partial checksum), before the
	// NIC's software segmentation put its pieces in Log.
	Offloaded []*Frame
	// MaxSteps bounds the steps of each Run call (livelock guard).
	MaxSteps int

	tb    testing.TB
	nodes []*Node
	q     []delivery
	seq   int
}

type delivery struct {
	at    clock.Instant
	seq   int
	to    *Node
	frame *Frame
}

// New returns an empty segment with a 1 ms delay.
func New(tb testing.TB) *Net {
	return &Net{tb: tb, Delay: time.Millisecond, MaxSteps: 1_000_000}
}

// MAC returns the MAC address 02:00:00:00:00:i, for node i.
func MAC(i int) wire.MAC { return wire.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)} }

// AddStack attaches st to the segment through a new NIC with cfg (MAC,
// MTU and so on; Medium must be Ethernet) and returns the node.
func (n *Net) AddStack(name string, st *stack.Stack, cfg stack.NICConfig) *Node {
	n.tb.Helper()
	if cfg.Name == "" {
		cfg.Name = name
	}
	id, err := st.AddNIC(cfg)
	if err != nil {
		n.tb.Fatalf("stacktest: AddNIC %s: %v", name, err)
	}
	nd := &Node{Name: name, Stack: st, NIC: id, MAC: cfg.MAC, net: n}
	if len(cfg.Addrs) > 0 {
		nd.Addr = cfg.Addrs[0].Addr()
	}
	nd.tx.Buf = make([]byte, st.MaxFrameLen())
	nd.rx.Buf = make([]byte, 65536+128)
	n.nodes = append(n.nodes, nd)
	return nd
}

// AddHost makes a stack with cfg and one NIC, MAC(len(nodes)+1) and addr
// (with its prefix), and attaches it.
func (n *Net) AddHost(name string, cfg stack.Config, addr string) *Node {
	n.tb.Helper()
	p := netip.MustParsePrefix(addr)
	return n.AddStack(name, stack.New(cfg), stack.NICConfig{MAC: MAC(len(n.nodes) + 1), Addrs: []netip.Prefix{p}})
}

// AddRaw attaches a raw node: frames to it go to its Inbox, and the test
// sends frames from it with Send.
func (n *Net) AddRaw(name string, mac wire.MAC, addr netip.Addr) *Node {
	nd := &Node{Name: name, MAC: mac, Addr: addr, net: n}
	n.nodes = append(n.nodes, nd)
	return nd
}

// Nodes returns the nodes in the order they were added.
func (n *Net) Nodes() []*Node { return n.nodes }

// Send sends frame from nd now, as if its NIC had transmitted it: it is
// recorded, impaired and delivered like any other. The frame is copied.
func (nd *Node) Send(frame []byte) *Frame {
	return nd.net.send(nd, slices.Clone(frame))
}

// Inject hands frame to nd's stack at once, bypassing the segment (and the
// log), then polls the stacks' output.
func (nd *Node) Inject(frame []byte) {
	nd.rx.N = copy(nd.rx.Buf, frame)
	nd.rx.Offload = link.Offload{}
	nd.Stack.HandleFrame(nd.net.Now, nd.NIC, &nd.rx)
	nd.net.Flush()
}

// Take removes and returns the frames in a raw node's inbox.
func (nd *Node) Take() []*Frame {
	f := nd.Inbox
	nd.Inbox = nil
	return f
}

// EventsFor returns the events recorded for socket so, in order.
func (nd *Node) EventsFor(so stack.Socket) []stack.Events {
	var out []stack.Events
	for _, e := range nd.Events {
		if e.Socket == so {
			out = append(out, e.Events)
		}
	}
	return out
}

func (n *Net) send(from *Node, data []byte) *Frame {
	f := &Frame{N: len(n.Log), From: from, Sent: n.Now, Data: data}
	n.Log = append(n.Log, f)
	if n.Impair != nil {
		f.Action = n.Impair(f)
	}
	if f.Action.Drop {
		return f
	}
	at := n.Now.Add(n.Delay + f.Action.Delay)
	for _, to := range n.nodes {
		if to == from {
			continue
		}
		for range 1 + f.Action.Dups {
			n.seq++
			// Keep the queue ordered by arrival, then by sending order:
			// insert after every delivery due no later.
			i, _ := slices.BinarySearchFunc(n.q, at, func(d delivery, at clock.Instant) int {
				if d.at <= at {
					return -1
				}
				return 1
			})
			n.q = slices.Insert(n.q, i, delivery{at: at, seq: n.seq, to: to, frame: f})
		}
	}
	return f
}

// Flush collects every stack's output frames and events at Now. Frames
// go on the wire from the node of the NIC PollTransmit names; events are
// recorded on the stack's first node. A frame for a NIC that is not on
// this segment fails the test.
func (n *Net) Flush() {
	for again := true; again; {
		again = false
		for i, nd := range n.nodes {
			if nd.Stack == nil || n.firstNode(nd.Stack) != i {
				continue
			}
			for {
				nd.tx.N = 0
				id, ok := nd.Stack.PollTransmit(n.Now, &nd.tx)
				if !ok {
					break
				}
				out := n.nodeOf(nd.Stack, id)
				if out == nil {
					n.tb.Fatalf("stacktest: %s sent a frame on NIC %d, which is not on this segment", nd.Name, id)
				}
				if !out.Down {
					n.transmit(out, &nd.tx)
				}
				if n.Delay == 0 {
					again = true
				}
			}
			for {
				so, ev, ok := nd.Stack.PollEvent()
				if !ok {
					break
				}
				nd.Events = append(nd.Events, Event{At: n.Now, Socket: so, Events: ev})
			}
		}
		if n.Delay == 0 && len(n.q) > 0 && n.q[0].at <= n.Now {
			n.deliverDue()
			again = true
		}
	}
}

// transmit puts the frame a stack handed to nd's NIC on the wire: as it
// is, or, if it carries offload metadata, cut and completed as a NIC with
// those offloads would (internal/gso).
func (n *Net) transmit(nd *Node, pkt *link.Packet) {
	if pkt.Offload == (link.Offload{}) {
		n.send(nd, slices.Clone(pkt.Frame()))
		return
	}
	n.Offloaded = append(n.Offloaded, &Frame{N: len(n.Offloaded), From: nd, Sent: n.Now, Data: slices.Clone(pkt.Frame()), Offload: pkt.Offload})
	var s gso.Segmenter
	if err := s.Init(pkt.Frame(), link.Ethernet, pkt.Offload); err != nil {
		n.tb.Fatalf("stacktest: %s handed its NIC a frame with offload %+v it cannot segment: %v", nd.Name, pkt.Offload, err)
	}
	for i := 0; !s.Done(); i++ {
		buf := make([]byte, pkt.N)
		m, ok := s.Next(buf, gso.Complete)
		if !ok {
			n.tb.Fatalf("stacktest: segment %d of %d longer than its super-frame", i, s.Count())
		}
		n.send(nd, buf[:m])
	}
}

// firstNode returns the index of st's first node.
func (n *Net) firstNode(st *stack.Stack) int {
	for i, nd := range n.nodes {
		if nd.Stack == st {
			return i
		}
	}
	return -1
}

// nodeOf returns the node of st's NIC id, or nil.
func (n *Net) nodeOf(st *stack.Stack, id stack.NICID) *Node {
	for _, nd := range n.nodes {
		if nd.Stack == st && nd.NIC == id {
			return nd
		}
	}
	return nil
}

// Next returns the time of the next thing to happen: an arrival or a
// stack's deadline, or clock.Never.
func (n *Net) Next() clock.Instant {
	next := clock.Never
	if len(n.q) > 0 {
		next = n.q[0].at
	}
	for _, nd := range n.nodes {
		if nd.Stack != nil {
			next = clock.Min(next, nd.Stack.NextDeadline())
		}
	}
	return next
}

func (n *Net) deliverDue() {
	for len(n.q) > 0 && n.q[0].at <= n.Now {
		d := n.q[0]
		n.q = n.q[1:]
		to := d.to
		if to.Down {
			continue
		}
		if to.Stack == nil {
			to.Inbox = append(to.Inbox, d.frame)
			continue
		}
		to.rx.N = copy(to.rx.Buf, d.frame.Data)
		to.rx.Offload = link.Offload{}
		to.Stack.HandleFrame(n.Now, to.NIC, &to.rx)
	}
}

// Step advances to the next event, delivers the frames due then, runs the
// timers due, and collects the output. It returns false, doing nothing,
// if nothing will ever happen.
func (n *Net) Step() bool {
	n.Flush()
	next := n.Next()
	if next == clock.Never {
		return false
	}
	if next > n.Now {
		n.Now = next
	}
	n.deliverDue()
	for i, nd := range n.nodes {
		if nd.Stack == nil || n.firstNode(nd.Stack) != i || nd.Stack.NextDeadline() > n.Now {
			continue
		}
		nd.Stack.HandleTimeout(n.Now)
		// No deadline may be left in the past once its timeout ran: the
		// loop would spin.
		if d := nd.Stack.NextDeadline(); d <= n.Now {
			n.tb.Errorf("stacktest: %s: NextDeadline %v not after HandleTimeout(%v)", nd.Name, d, n.Now)
		}
	}
	n.Flush()
	return true
}

// RunUntil steps until cond holds, and fails the test if it does not
// within limit of virtual time (or MaxSteps steps, or before everything
// goes quiet).
func (n *Net) RunUntil(limit time.Duration, cond func() bool) {
	n.tb.Helper()
	if !n.TryRunUntil(limit, cond) {
		n.tb.Fatalf("stacktest: condition not met by %v (limit %v)", n.Now, limit)
	}
}

// TryRunUntil is RunUntil reporting failure instead of failing the test.
func (n *Net) TryRunUntil(limit time.Duration, cond func() bool) bool {
	n.tb.Helper()
	end := n.Now.Add(limit)
	n.Flush()
	for steps := 0; !cond(); steps++ {
		if steps >= n.MaxSteps {
			n.tb.Fatalf("stacktest: %d steps at %v: livelock?", steps, n.Now)
		}
		if next := n.Next(); next == clock.Never || next > end {
			return false
		}
		n.Step()
	}
	return true
}

// RunFor runs everything that happens in the next d of virtual time, and
// leaves Now d later.
func (n *Net) RunFor(d time.Duration) {
	n.tb.Helper()
	end := n.Now.Add(d)
	n.Flush()
	for steps := 0; ; steps++ {
		if steps >= n.MaxSteps {
			n.tb.Fatalf("stacktest: %d steps at %v: livelock?", steps, n.Now)
		}
		if next := n.Next(); next == clock.Never || next > end {
			break
		}
		n.Step()
	}
	n.Now = max(n.Now, end)
	n.Flush()
}

// RunQuiet runs until nothing is left to happen (no frame in flight, no
// deadline), failing the test if that takes more than limit.
func (n *Net) RunQuiet(limit time.Duration) {
	n.tb.Helper()
	n.RunUntil(limit, func() bool { return n.Next() == clock.Never })
}

// Pending returns the number of frame deliveries in flight.
func (n *Net) Pending() int { return len(n.q) }

// Since returns the frames logged from index i on.
func (n *Net) Since(i int) []*Frame { return n.Log[i:] }

// Dump logs every frame of the log through the test's Logf.
func (n *Net) Dump() {
	n.tb.Helper()
	for _, f := range n.Log {
		n.tb.Logf("%v", f)
	}
}
