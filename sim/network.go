package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/internal/heapq"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// Errors of the Run methods.
var (
	// ErrLivelock: a Run call took more than MaxSteps steps, or one
	// instant needed more than maxFlushRounds rounds of output.
	ErrLivelock = errors.New("sim: step bound reached (livelock?)")
	// ErrTimeLimit: the condition did not hold within the virtual time
	// limit.
	ErrTimeLimit = errors.New("sim: virtual time limit reached")
	// ErrIdle: nothing is left to happen (no frame in flight, no deadline,
	// no timer) and the condition does not hold.
	ErrIdle = errors.New("sim: network idle, condition not met")
)

// DefaultMaxSteps is Network.MaxSteps unless changed.
const DefaultMaxSteps = 5_000_000

// maxFlushRounds bounds the rounds of PollTransmit and PollEvent at one
// instant: stacks and applications that keep making each other busy
// without time passing are in a livelock.
const maxFlushRounds = 100_000

// Network is a simulated network: nodes (stacks, switches, raw frame
// players) joined by links, run by one event loop in virtual time. It is
// not safe for concurrent use; everything happens on the caller's
// goroutine.
type Network struct {
	seed  uint64
	now   clock.Instant
	nodes []*Node
	links []*Link
	dirs  []*Dir // every link direction, in creation order

	timers   heapq.Heap[*Timer]
	timerSeq uint64

	tx      link.Packet // the PollTransmit buffer, shared by every stack
	seg     []byte      // where offloaded frames are cut (Port.transmit)
	rx      []byte      // the delivery buffer
	steps   int
	origins uint64 // frames offered, to number them (lineMeta.origin)
	digest  hash.Hash

	// MaxSteps bounds the steps of one Run call; 0 means no bound.
	MaxSteps int
	// OnFrame, if set, is called for every frame a link is offered,
	// drops, or delivers (see FrameEvent).
	OnFrame func(ev *FrameEvent)
	// OnStep, if set, is called after every step (for invariant checks).
	OnStep func()
	// CheckCorrupt makes every corrupted frame a stack receives prove
	// itself dropped: one of the stack's drop counters must grow (see
	// dropCount); a corrupted frame that passes is a Violation.
	// Corruption is checked only past the Ethernet header (byte 14):
	// a flip in the source MAC is harmless and unseen, as on a real
	// segment.
	CheckCorrupt bool

	violations []string
	captures   []*capture
}

// New returns an empty network whose every random choice (link
// impairments, stack seeds not given) derives from seed. Virtual time
// starts at 0.
func New(seed uint64) *Network {
	return &Network{
		seed: seed, MaxSteps: DefaultMaxSteps, rx: make([]byte, impair.MaxFrame),
		timers: heapq.Heap[*Timer]{Moved: timerMoved},
	}
}

// Seed returns the network's seed.
func (n *Network) Seed() uint64 { return n.seed }

// Now returns the current virtual time.
func (n *Network) Now() clock.Instant { return n.now }

// Time returns the current virtual time as a duration since the start.
func (n *Network) Time() time.Duration { return time.Duration(n.now) }

// SetStart moves the clock to t before anything has happened (to start a
// simulation at a large instant, for example). It panics once steps have
// run.
func (n *Network) SetStart(t clock.Instant) {
	if n.steps > 0 {
		panic("sim: SetStart after the network ran")
	}
	n.now = t
}

// Steps returns the number of steps run so far.
func (n *Network) Steps() int { return n.steps }

// Nodes returns the nodes, in the order they were added.
func (n *Network) Nodes() []*Node { return n.nodes }

// Links returns the links, in the order they were made.
func (n *Network) Links() []*Link { return n.links }

// derive returns a seed for the i-th thing of a kind, from the network's
// seed (SplitMix64 of both, so nearby seeds give unrelated streams).
func (n *Network) derive(kind, i uint64) uint64 {
	return splitmix(n.seed ^ splitmix(kind<<32|i))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Rand returns a new random source for the i-th user of a kind (an
// application, an attacker), derived from the network's seed.
func (n *Network) Rand(kind string, i uint64) *rand.Rand {
	var k uint64
	for _, c := range []byte(kind) {
		k = k*131 + uint64(c)
	}
	s := n.derive(3, k^i<<20)
	return rand.New(rand.NewPCG(s, splitmix(s)))
}

// Violation records a broken invariant. Tests read them with Violations.
func (n *Network) Violation(format string, args ...any) {
	if len(n.violations) < 100 {
		n.violations = append(n.violations, fmt.Sprintf("%v: ", n.now)+fmt.Sprintf(format, args...))
	}
}

// Violations returns the broken invariants recorded so far.
func (n *Network) Violations() []string { return n.violations }

// EnableDigest starts hashing every frame offered to and delivered by a
// link, with its time and link direction, into a SHA-256 digest: two runs
// with the same seed must give the same Digest.
func (n *Network) EnableDigest() { n.digest = sha256.New() }

// Digest returns the SHA-256 of the frames seen since EnableDigest.
func (n *Network) Digest() [32]byte {
	var d [32]byte
	if n.digest != nil {
		copy(d[:], n.digest.Sum(nil))
	}
	return d
}

func (n *Network) hashFrame(kind byte, d *Dir, frame []byte) {
	var h [13]byte
	h[0] = kind
	binary.BigEndian.PutUint64(h[1:], uint64(n.now))
	binary.BigEndian.PutUint32(h[9:], uint32(d.idx))
	n.digest.Write(h[:])
	n.digest.Write(frame)
}

// nodeKind says what a node is.
type nodeKind uint8

const (
	kindHost nodeKind = iota
	kindSwitch
	kindRaw
	kindRouter
)

// Node is a host (a stack.Stack), a learning switch, a router (Router),
// or a raw node that sends and receives frames through functions (an
// attacker, a sink).
type Node struct {
	// Name names the node in messages.
	Name string
	// Stack is the host's stack; nil for a switch or a raw node.
	Stack *stack.Stack

	net   *Network
	idx   int
	kind  nodeKind
	ports []*Port

	fdb    map[wire.MAC]*Port                         // switch: forwarding database
	recv   func(now clock.Instant, p *Port, f []byte) // raw: frame handler
	router *Router                                    // router: its state
}

// Port is a node's attachment to a link: a NIC of a host, a port of a
// switch, or a raw node's port.
type Port struct {
	// Node is the node the port belongs to.
	Node *Node
	// NIC is the stack's NIC (hosts only).
	NIC stack.NICID
	// MAC is the port's Ethernet address (hosts and raw nodes).
	MAC wire.MAC
	// Addrs are the NIC's addresses (hosts only).
	Addrs []netip.Prefix

	idx  int
	link *Link
	out  *Dir // the direction leaving the port
	in   *Dir // the direction arriving at the port
	// Unattached counts frames sent on the port while it had no link.
	Unattached uint64
	// Injected counts frames handed to the port with Inject.
	Injected uint64
	// Offloaded counts the frames a host's stack handed the port with
	// offloads to do (a NIC configured with link.CapTxChecksum or
	// CapTSO); Segments counts the wire frames they became.
	Offloaded, Segments uint64
}

// Link returns the link the port is attached to, or nil.
func (p *Port) Link() *Link { return p.link }

// Addr returns the port's first address (hosts), or the zero Addr.
func (p *Port) Addr() netip.Addr {
	if len(p.Addrs) == 0 {
		return netip.Addr{}
	}
	return p.Addrs[0].Addr()
}

// String names the port "node/index".
func (p *Port) String() string { return fmt.Sprintf("%s/%d", p.Node.Name, p.idx) }

// MAC returns the automatic MAC address of port j of node i:
// 02:00:00:00:i:j, locally administered and unicast.
func MAC(i, j int) wire.MAC { return wire.MAC{0x02, 0, 0, 0, byte(i), byte(j)} }

// AddHost adds a node running a stack made with cfg. If cfg.Seed is zero
// the stack's seed derives from the network's. Give it NICs with AddNIC.
func (n *Network) AddHost(name string, cfg stack.Config) *Node {
	if cfg.Seed == 0 {
		cfg.Seed = n.derive(1, uint64(len(n.nodes)))
	}
	nd := n.addNode(name, kindHost)
	nd.Stack = stack.New(cfg)
	return nd
}

// AddSwitch adds a learning Ethernet switch: a frame goes out of the port
// its destination MAC was last seen on, or every other port if unknown or
// broadcast. Forwarding takes no time; the links add their own.
func (n *Network) AddSwitch(name string) *Node {
	nd := n.addNode(name, kindSwitch)
	nd.fdb = map[wire.MAC]*Port{}
	return nd
}

// AddRaw adds a node with no stack: recv, if not nil, is called with every
// frame delivered to one of its ports (the slice is valid during the
// call), and Send sends frames.
func (n *Network) AddRaw(name string, recv func(now clock.Instant, p *Port, frame []byte)) *Node {
	nd := n.addNode(name, kindRaw)
	nd.recv = recv
	return nd
}

func (n *Network) addNode(name string, k nodeKind) *Node {
	nd := &Node{Name: name, net: n, idx: len(n.nodes) + 1, kind: k}
	n.nodes = append(n.nodes, nd)
	return nd
}

// Ports returns the node's ports.
func (nd *Node) Ports() []*Port { return nd.ports }

// Port returns port i (counted from 0; a host's NIC i+1).
func (nd *Node) Port(i int) *Port { return nd.ports[i] }

// Network returns the network the node is in.
func (nd *Node) Network() *Network { return nd.net }

// AddNIC adds a NIC to a host with the given addresses ("10.0.0.1/24"),
// an automatic MAC and the configuration's other fields (a zero MTU means
// 1500), and returns its port. It panics on a bad configuration: a
// simulation's topology is code, not input.
func (nd *Node) AddNIC(cfg stack.NICConfig, addrs ...string) *Port {
	if nd.kind != kindHost {
		panic("sim: AddNIC on a node that is not a host")
	}
	if cfg.MAC.IsZero() {
		cfg.MAC = MAC(nd.idx, len(nd.ports)+1)
	}
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("%s.eth%d", nd.Name, len(nd.ports))
	}
	for _, a := range addrs {
		cfg.Addrs = append(cfg.Addrs, netip.MustParsePrefix(a))
	}
	id, err := nd.Stack.AddNIC(cfg)
	if err != nil {
		panic(err)
	}
	p := &Port{Node: nd, NIC: id, MAC: cfg.MAC, Addrs: cfg.Addrs, idx: len(nd.ports)}
	nd.ports = append(nd.ports, p)
	return p
}

// AddPort adds a port to a switch or a raw node. A raw node's port has the
// automatic MAC unless mac is given.
func (nd *Node) AddPort(mac ...wire.MAC) *Port {
	if nd.kind == kindHost || nd.kind == kindRouter {
		panic("sim: AddPort on a host or router; use AddNIC or Router.AddPort")
	}
	p := &Port{Node: nd, idx: len(nd.ports)}
	if nd.kind == kindRaw {
		p.MAC = MAC(nd.idx, len(nd.ports)+1)
		if len(mac) > 0 {
			p.MAC = mac[0]
		}
	}
	nd.ports = append(nd.ports, p)
	return p
}

// Send offers frame to the port's link at the current time (raw nodes;
// also usable on a host's port to inject a frame as if the host sent it).
// The frame is copied.
func (p *Port) Send(frame []byte) { p.send(frame, lineMeta{}) }

func (p *Port) send(frame []byte, carried lineMeta) {
	if p.out == nil {
		p.Unattached++
		return
	}
	p.out.offer(frame, carried)
}

// transmit offers the frame a host's stack handed its NIC to the link:
// as it is, or, with offload metadata (a NIC given link.CapTSO or
// link.CapTxChecksum), cut into the wire's frames and checksums
// completed, as the NIC would (internal/gso).
func (p *Port) transmit(pkt *link.Packet) {
	if pkt.Offload == (link.Offload{}) {
		p.Send(pkt.Frame())
		return
	}
	n := p.Node.net
	l2 := wire.EthernetHeaderLen
	if eth, err := wire.ParseEthernet(pkt.Frame()); err == nil {
		l2 = eth.HeaderLen()
	}
	k, err := gso.Count(pkt.Frame(), l2, pkt.Offload)
	if err != nil {
		n.Violation("%s: a frame with offload %+v the NIC cannot segment: %v", p, pkt.Offload, err)
		return
	}
	if len(n.seg) < pkt.N {
		n.seg = make([]byte, pkt.N)
	}
	p.Offloaded++
	p.Segments += uint64(k)
	for i := range k {
		m, err := gso.Segment(n.seg, pkt.Frame(), l2, pkt.Offload, i)
		if err != nil {
			n.Violation("%s: segment %d of %d: %v", p, i, k, err)
			return
		}
		p.Send(n.seg[:m])
	}
}

// Inject hands frame to the port's node now, as if its link had just
// delivered it: an attacker one hop away and no delay, so a test knows the
// state of the stack that processes it. Captures of delivered frames
// record it (if the port is linked). The frame is not kept.
func (p *Port) Inject(frame []byte) {
	n := p.Node.net
	p.Injected++
	if p.in != nil {
		for _, c := range n.captures {
			if !c.sent {
				c.write(p.in, n.now, frame)
			}
		}
	}
	p.receive(frame, lineMeta{})
}

// Link is a duplex link between two ports. Each direction has its own
// impair.Model, seeded from the network's seed and the link's index.
type Link struct {
	// Name is "a-b", from the nodes' names.
	Name string
	// A and B are the link's ends; AB carries frames from A to B, BA the
	// other way.
	A, B   *Port
	AB, BA *Dir
	idx    int
}

// Dir is one direction of a link: its impairment model, its delay line,
// and counters of what it did.
type Dir struct {
	// Link is the link the direction belongs to.
	Link *Link
	// From and To are the ports the frames leave and reach.
	From, To *Port
	// Model is the direction's impairment model.
	Model *impair.Model

	line *impair.Line[lineMeta]
	idx  int

	// Offered counts frames offered to the direction.
	Offered uint64
	// Delivered counts frame copies handed to the receiving node.
	Delivered uint64
	// CorruptDelivered counts delivered copies with a flipped bit.
	CorruptDelivered uint64
	// Late counts delivered copies that a frame sent after them (by any
	// node, on any path) overtook, and second copies of duplicates.
	Late      uint64
	maxOrigin uint64
	// CorruptSpared counts copies the model chose to corrupt but that
	// were ARP frames, or already corrupted on an earlier hop, left as
	// they were (see Network.Link).
	CorruptSpared uint64
	// LineFull counts copies dropped because the delay line was full.
	LineFull uint64
	// Filter, if set, is asked about every frame offered before the
	// model is: true drops it (counted in Filtered, reported as a
	// FrameDropped event with reason impair.DropNone). Tests use it for
	// exact losses: a partition, a window of lost ACKs.
	Filter func(now clock.Instant, frame []byte) bool
	// Filtered counts the frames Filter dropped.
	Filtered uint64
}

// lineMeta is what the delay line carries with each frame copy.
type lineMeta struct {
	corrupt bool
	bit     int
	// origin numbers the frame when a node first sent it (a switch
	// forwards it with its number), to tell copies that arrive late.
	origin uint64
}

// String names the direction "from->to".
func (d *Dir) String() string { return d.From.String() + "->" + d.To.String() }

// Link joins ports p and q with a duplex link: frames from p to q go
// through a model of ab, frames back through one of ba. LinkHeader
// defaults to 14 (Ethernet). The models' random streams derive from the
// network's seed and the link's index.
//
// Corruption is applied to IP frames only: a bit flip models an error
// that escaped the Ethernet FCS, and ARP, which has no checksum of its
// own, would turn it into a wrong neighbour entry that no TCP property
// can be checked against. ARP copies the model chose to corrupt are
// delivered intact and counted in Dir.CorruptSpared. (NDP has ICMPv6's
// checksum, so its frames are corrupted like any other; a flip in a
// field of IPv6's header that nothing checks is let through, as on a
// real link: see unchecked6.) A frame is flipped
// at most once on its way: the Internet checksum catches every single-bit
// error but not every pair (RFC 1071: two flips of one bit position in
// opposite directions cancel), so a second flip on a later hop is spared.
func (n *Network) Link(p, q *Port, ab, ba impair.Config) *Link {
	if p.link != nil || q.link != nil {
		panic("sim: port already linked")
	}
	if ab.LinkHeader == 0 {
		ab.LinkHeader = 14
	}
	if ba.LinkHeader == 0 {
		ba.LinkHeader = 14
	}
	l := &Link{Name: p.Node.Name + "-" + q.Node.Name, A: p, B: q, idx: len(n.links)}
	mab, mba := impair.NewPair(ab, ba, n.derive(2, uint64(l.idx)))
	l.AB = &Dir{Link: l, From: p, To: q, Model: mab, line: impair.NewLine[lineMeta](0), idx: len(n.dirs)}
	l.BA = &Dir{Link: l, From: q, To: p, Model: mba, line: impair.NewLine[lineMeta](0), idx: len(n.dirs) + 1}
	n.dirs = append(n.dirs, l.AB, l.BA)
	p.link, p.out, p.in = l, l.AB, l.BA
	q.link, q.out, q.in = l, l.BA, l.AB
	n.links = append(n.links, l)
	return l
}

// SetUp brings both directions of the link up or down (impair.Model.SetUp):
// frames offered while down are dropped; frames in flight still arrive.
func (l *Link) SetUp(up bool) {
	l.AB.Model.SetUp(up)
	l.BA.Model.SetUp(up)
}

// Up reports whether the link is up.
func (l *Link) Up() bool { return l.AB.Model.Up() }

// InFlight returns the frame copies held in the link's delay lines.
func (l *Link) InFlight() int { return l.AB.line.Len() + l.BA.line.Len() }

// FrameKind says what happened to a frame in a FrameEvent.
type FrameKind uint8

// The kinds of FrameEvent.
const (
	// FrameOffered: a node sent the frame into the link direction.
	FrameOffered FrameKind = iota
	// FrameDropped: the direction's model dropped a copy (Reason says
	// why).
	FrameDropped
	// FrameDelivered: a copy reached the far end (Corrupt says whether a
	// bit was flipped: Frame is the copy as delivered).
	FrameDelivered
)

// FrameEvent describes a frame on a link for Network.OnFrame.
type FrameEvent struct {
	// Kind says what happened.
	Kind FrameKind
	// Dir is the link direction it happened on.
	Dir *Dir
	// At is when.
	At clock.Instant
	// Frame is the frame; valid only during the call.
	Frame []byte
	// Reason is why a FrameDropped copy was dropped.
	Reason impair.DropReason
	// Survivors is, for FrameDropped, how many copies of the same offer
	// are delivered (1 when one of two duplicates was lost): 0 means the
	// frame is lost.
	Survivors int
	// Corrupt says a FrameDelivered copy had a bit flipped: bit Bit,
	// counted from the start of the frame.
	Corrupt bool
	Bit     int
}

// offer sends a frame into the direction at the current time. carried is
// the damage the frame already took on an earlier hop (a switch forwards
// a corrupted frame as it got it), so the receiving host's checks know.
func (d *Dir) offer(frame []byte, carried lineMeta) {
	n := d.Link.A.Node.net
	d.Offered++
	if n.digest != nil {
		n.hashFrame('o', d, frame)
	}
	for _, c := range n.captures {
		if c.sent {
			c.write(d, n.now, frame)
		}
	}
	if n.OnFrame != nil {
		n.OnFrame(&FrameEvent{Kind: FrameOffered, Dir: d, At: n.now, Frame: frame})
	}
	if d.Filter != nil && d.Filter(n.now, frame) {
		d.Filtered++
		if n.OnFrame != nil {
			n.OnFrame(&FrameEvent{Kind: FrameDropped, Dir: d, At: n.now, Frame: frame, Reason: impair.DropNone})
		}
		return
	}
	n.origins++
	origin := n.origins
	dec := d.Model.OfferFrame(n.now, frame)
	if dec.Dropped > 0 && n.OnFrame != nil {
		for range dec.Dropped {
			n.OnFrame(&FrameEvent{Kind: FrameDropped, Dir: d, At: n.now, Frame: frame, Reason: dec.Reason, Survivors: dec.N})
		}
	}
	for _, c := range dec.Deliver() {
		if c.Corrupt && (isARP(frame) || carried.corrupt) {
			c.Corrupt = false
			d.CorruptSpared++
		}
		meta := carried
		if meta.origin == 0 {
			meta.origin = origin
		}
		if c.Corrupt && !meta.corrupt {
			meta.corrupt, meta.bit = true, c.Bit
		}
		if !d.line.Push(c, frame, meta) {
			d.LineFull++
		}
	}
}

func isARP(f []byte) bool {
	return len(f) >= 14 && binary.BigEndian.Uint16(f[12:]) == uint16(wire.EtherTypeARP)
}

// deliverDue hands every copy due by now to the receiving port.
func (d *Dir) deliverDue() {
	n := d.Link.A.Node.net
	for {
		k, meta, ok := d.line.Pop(n.now, n.rx)
		if !ok {
			return
		}
		frame := n.rx[:k]
		d.Delivered++
		if meta.corrupt {
			d.CorruptDelivered++
		}
		if meta.origin <= d.maxOrigin {
			d.Late++
		} else {
			d.maxOrigin = meta.origin
		}
		if n.digest != nil {
			n.hashFrame('d', d, frame)
		}
		for _, c := range n.captures {
			if !c.sent {
				c.write(d, n.now, frame)
			}
		}
		if n.OnFrame != nil {
			n.OnFrame(&FrameEvent{Kind: FrameDelivered, Dir: d, At: n.now, Frame: frame, Corrupt: meta.corrupt, Bit: meta.bit})
		}
		d.To.receive(frame, meta)
	}
}

// receive handles a frame arriving at port p.
func (p *Port) receive(frame []byte, meta lineMeta) {
	nd := p.Node
	n := nd.net
	switch nd.kind {
	case kindHost:
		pkt := link.Packet{Buf: frame, N: len(frame)}
		if !meta.corrupt || !n.CheckCorrupt || meta.bit < 14*8 || fragmentPayload(frame, meta.bit) || unchecked6(frame, meta.bit) {
			nd.Stack.HandleFrame(n.now, p.NIC, &pkt)
			return
		}
		before := dropCount(nd.Stack.Stats())
		nd.Stack.HandleFrame(n.now, p.NIC, &pkt)
		if dropCount(nd.Stack.Stats()) == before {
			n.Violation("%s: corrupted frame (bit %d) not counted as dropped: % x", p, meta.bit, frame[:min(len(frame), 64)])
		}
	case kindSwitch:
		if len(frame) < 14 {
			return
		}
		dst, src := wire.MAC(frame[0:6]), wire.MAC(frame[6:12])
		if !src.IsMulticast() {
			nd.fdb[src] = p
		}
		if out, ok := nd.fdb[dst]; ok && !dst.IsMulticast() {
			if out != p {
				out.send(frame, meta)
			}
			return
		}
		for _, q := range nd.ports {
			if q != p {
				q.send(frame, meta)
			}
		}
	case kindRaw:
		if nd.recv != nil {
			nd.recv(n.now, p, frame)
		}
	case kindRouter:
		nd.router.receive(n.now, p, frame, meta)
	}
}

// fragmentPayload reports whether bit lies in the payload of an IPv4
// fragment, or in the fragment header or data of an IPv6 one: the damage
// shows only once the packet is reassembled (a transport checksum
// error), or never if it is not (a reassembly timeout), not when the
// fragment arrives. (IPv6 has no header checksum to catch a flip in the
// fragment header when it arrives.)
func fragmentPayload(frame []byte, bit int) bool {
	if len(frame) < 14+20 {
		return false
	}
	switch binary.BigEndian.Uint16(frame[12:]) {
	case uint16(wire.EtherTypeIPv4):
		ip := frame[14:]
		ihl := int(ip[0]&0x0f) * 4
		frag := binary.BigEndian.Uint16(ip[6:])&0x3fff != 0
		return frag && bit >= (14+ihl)*8
	case uint16(wire.EtherTypeIPv6):
		ip, err := wire.ParseIPv6(frame[14:])
		if err != nil {
			return false
		}
		var c wire.IPv6Chain
		c.Walk(ip) // a fragment header found before any error is enough
		if c.FragHeader == 0 || c.Frag.Atomic() {
			return false
		}
		// The payload length and the source address are in the key or
		// the bounds of the packet being reassembled: a flip there
		// shows later, too.
		i := bit/8 - 14
		return bit >= (14+c.FragHeader)*8 || i == 4 || i == 5 || i >= 8 && i < 24
	}
	return false
}

// unchecked6 reports whether bit lies in a field of an IPv6 header that
// no checksum covers and no check reads, so that a flip there is
// delivered unnoticed as on a real link: the traffic class and the flow
// label (RFC 8200 §3); the hop limit, but for NDP and MLD, which check
// theirs; and a next header turned into "no next header" (RFC 8200 §4.7:
// what follows is ignored, as Linux does, with no counter).
func unchecked6(frame []byte, bit int) bool {
	if len(frame) < 14+wire.IPv6HeaderLen || binary.BigEndian.Uint16(frame[12:]) != uint16(wire.EtherTypeIPv6) {
		return false
	}
	// Bit b is mask 1<<(b%8) of byte b/8 (impair.Copy).
	i, mask := bit/8-14, byte(1)<<(bit%8)
	nh := frame[14+6]
	switch {
	case i == 0:
		return mask < 0x10 // the traffic class's high nibble, not the version
	case i >= 1 && i <= 3:
		return true
	case i == 6:
		return nh == wire.ProtoNoNext
	case i == 7:
		switch nh {
		case wire.ProtoHopByHop:
			return false // MLD
		case wire.ProtoICMPv6:
			t := byte(0)
			if len(frame) > 14+wire.IPv6HeaderLen {
				t = frame[14+wire.IPv6HeaderLen]
			}
			return t < wire.ICMPv6MLDQuery || t > wire.ICMPv6MLDv2Report
		}
		return true
	}
	return false
}

// dropCount sums the counters of frames a stack dropped as damaged: a
// corrupted frame must move one of them.
func dropCount(st stack.Stats) uint64 {
	l, ip := &st.Link, &st.Net
	return l.RxRunts + l.RxNotForUs + l.RxMulticast + l.RxVLANMismatch + l.RxUnknownEtherType +
		ip.InHdrErrors + ip.InTruncated + ip.InCsumErrors + ip.InErrors +
		// IPv6 has no header checksum: a flipped address or next header
		// shows as an address not ours or a protocol unknown.
		ip.Ip6InHdrErrors + ip.Ip6InTruncatedPkts + ip.Ip6InAddrErrors + ip.Ip6InUnknownProtos +
		ip.Icmp6InCsumErrors + ip.Icmp6InErrors + ip.NDPBad +
		st.TCP.InCsumErrors + st.TCP.InBadHeader + st.UDP.InCsumErrors + st.UDP.InErrors +
		st.UDP6.InCsumErrors + st.UDP6.InErrors
}

// Handler receives the events of a socket (see Node.Watch).
type Handler func(ev stack.Events)

// Watch makes h the receiver of so's events: the event loop calls it with
// what PollEvent reports for so. It replaces any earlier owner.
func Watch(so stack.Socket, h Handler) { so.SetOwner(h) }

// next returns the time of the next thing to happen, or clock.Never.
func (n *Network) next() clock.Instant {
	t := n.nextTimer()
	for _, d := range n.dirs {
		if at, ok := d.line.Next(); ok && at < t {
			t = at
		}
	}
	for _, nd := range n.nodes {
		if nd.Stack != nil {
			t = clock.Min(t, nd.Stack.NextDeadline())
		}
		if nd.router != nil {
			t = clock.Min(t, nd.router.nextDeadline())
		}
	}
	return t
}

// Next returns when the next event (frame arrival, stack deadline or
// timer) is due, or clock.Never if nothing will ever happen.
func (n *Network) Next() clock.Instant {
	n.flush()
	return n.next()
}

// Step advances virtual time to the next event and runs everything due
// then: frame arrivals (HandleFrame, switching, raw handlers), stack
// timers (HandleTimeout), application timers; then it collects every
// stack's output into the links (PollTransmit) and dispatches events to
// their handlers (PollEvent), until nothing more happens at this instant.
// It returns false, doing nothing, if nothing will ever happen.
func (n *Network) Step() bool {
	n.flush()
	t := n.next()
	if t == clock.Never {
		return false
	}
	if t > n.now {
		n.now = t
	}
	n.steps++
	for _, d := range n.dirs {
		d.deliverDue()
	}
	for _, nd := range n.nodes {
		if nd.router != nil && nd.router.nextDeadline() <= n.now {
			nd.router.handleTimeout(n.now)
		}
		if nd.Stack == nil || nd.Stack.NextDeadline() > n.now {
			continue
		}
		nd.Stack.HandleTimeout(n.now)
		// A deadline left in the past after HandleTimeout would make the
		// loop spin at this instant.
		if d := nd.Stack.NextDeadline(); d <= n.now {
			n.Violation("%s: NextDeadline %v not after HandleTimeout(%v)", nd.Name, d, n.now)
		}
	}
	for n.nextTimer() <= n.now {
		_, tm := n.timers.Pop()
		tm.f()
	}
	n.flush()
	if n.OnStep != nil {
		n.OnStep()
	}
	return true
}

// flush drains every stack's output into its links and its events into
// their handlers, until no stack has more at this instant.
func (n *Network) flush() {
	for round := 0; ; round++ {
		busy := false
		for _, nd := range n.nodes {
			if nd.Stack != nil && nd.flush() {
				busy = true
			}
		}
		if !busy {
			return
		}
		if round >= maxFlushRounds {
			n.Violation("livelock: %d rounds of output at one instant", round)
			return
		}
	}
}

// flush drains one stack; it reports whether anything happened.
func (nd *Node) flush() bool {
	n := nd.net
	busy := false
	if size := nd.Stack.MaxFrameLen(); len(n.tx.Buf) < size {
		n.tx.Buf = make([]byte, size)
	}
	for {
		n.tx.N = 0
		id, ok := nd.Stack.PollTransmit(n.now, &n.tx)
		if !ok {
			break
		}
		busy = true
		if int(id) < 1 || int(id) > len(nd.ports) {
			n.Violation("%s: PollTransmit for NIC %d, which the simulator does not know", nd.Name, id)
			continue
		}
		nd.ports[id-1].transmit(&n.tx)
	}
	for {
		so, ev, ok := nd.Stack.PollEvent()
		if !ok {
			break
		}
		busy = true
		if h, ok := so.Owner().(Handler); ok {
			h(ev)
		}
	}
	return busy
}

// Run runs until cond holds, and reports ErrTimeLimit if it does not
// within limit of virtual time, ErrIdle if nothing is left to happen
// first, and ErrLivelock if MaxSteps steps go by. cond is checked before
// every step.
func (n *Network) Run(limit time.Duration, cond func() bool) error {
	end := n.now.Add(limit)
	n.flush()
	for steps := 0; !cond(); steps++ {
		if n.MaxSteps > 0 && steps >= n.MaxSteps {
			return fmt.Errorf("%w: %d steps at %v", ErrLivelock, steps, n.now)
		}
		next := n.next()
		if next == clock.Never {
			return ErrIdle
		}
		if next > end {
			return fmt.Errorf("%w: %v", ErrTimeLimit, limit)
		}
		n.Step()
	}
	return nil
}

// RunFor runs everything due in the next d of virtual time and leaves the
// clock d later.
func (n *Network) RunFor(d time.Duration) error {
	end := n.now.Add(d)
	err := n.Run(d, func() bool { return n.next() > end })
	if errors.Is(err, ErrIdle) || errors.Is(err, ErrTimeLimit) {
		err = nil
	}
	n.now = max(n.now, end)
	n.flush()
	return err
}

// RunQuiet runs until nothing is left to happen: no frame in flight, no
// stack deadline, no timer. It reports ErrTimeLimit if that takes more
// than limit of virtual time.
func (n *Network) RunQuiet(limit time.Duration) error {
	err := n.Run(limit, func() bool { return n.next() == clock.Never })
	if errors.Is(err, ErrIdle) {
		err = nil
	}
	return err
}

// Timer is a function scheduled at an instant of virtual time.
type Timer struct {
	at  clock.Instant
	seq uint64
	idx int
	f   func()
	n   *Network
}

// At schedules f at instant t (or now, if t has passed). Timers due at
// the same instant run in the order they were scheduled.
func (n *Network) At(t clock.Instant, f func()) *Timer {
	t = max(t, n.now)
	n.timerSeq++
	tm := &Timer{at: t, seq: n.timerSeq, f: f, n: n, idx: -1}
	n.timers.Push(heapq.Key{At: t, Seq: tm.seq}, tm)
	return tm
}

// After schedules f d from now.
func (n *Network) After(d time.Duration, f func()) *Timer { return n.At(n.now.Add(d), f) }

// Stop cancels the timer; it reports whether the timer was pending.
func (t *Timer) Stop() bool {
	if t == nil || t.idx < 0 {
		return false
	}
	t.n.timers.Remove(t.idx)
	return true
}

// timerMoved keeps a timer's index in the network's heap of timers (an
// internal/heapq heap by (at, seq)).
func timerMoved(t **Timer, i int) { (*t).idx = i }

// nextTimer returns when the earliest timer is due, or clock.Never.
func (n *Network) nextTimer() clock.Instant {
	return n.timers.TopKey().At
}
