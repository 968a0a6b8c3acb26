package ustack

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Config configures a Stack. The zero value gives kernel-like protocol
// defaults and package net's socket defaults.
type Config struct {
	// Config holds the protocol settings (TCP, ARP, reassembly, ports,
	// seed); its zero value gives the Linux kernel's defaults. A zero
	// Seed is replaced by a random one.
	stack.Config
	// KeepAlive is the keep-alive period of connections made by Dial and
	// Accept, as net.Dialer.KeepAlive: zero means 15 s (package net's
	// default), negative turns keep-alive off.
	KeepAlive time.Duration
	// Nagle turns Nagle's algorithm on for new connections. Package net
	// turns it off (TCP_NODELAY) on every TCP connection; so does ustack
	// unless Nagle is set.
	Nagle bool
	// Shards is the number of shards TCP flows are spread over by a
	// keyed hash of their 4-tuple, each with its own lock, timer and
	// protocol core, as a NIC's RSS spreads flows over queues and cores.
	// Zero (or ShardsPerCPU) means GOMAXPROCS at New: one shard when
	// GOMAXPROCS is 1. UDP and host traffic (ARP, NDP, ICMP, fragments)
	// are shard 0's; the shards share one host part — neighbour cache,
	// IPv6 address configuration, reassembly (stack.Shared; see
	// docs/ARCHITECTURE.md, "Shards").
	Shards int
}

// Stack is a user-space TCP/IP stack with its goroutines. Make one with
// New; Close releases everything. All methods are safe for concurrent use.
type Stack struct {
	cfg Config
	clk clock.Real

	mu     sync.Mutex // the host lock: guards nics and closed; taken before a shard's
	nics   []*NIC
	closed bool

	// shards hold the protocol state; one unless a test asks for more
	// (newStack). A frame goes to the shard its flow hashes to (input).
	shards   []*shard
	nextDial atomic.Uint64 // the shard a dial goes to, in turn (input.go)
	// nextPort is RFC 6056 Algorithm 4's table of next_ephemeral
	// counters: where the next ephemeral port search to a destination
	// starts, beyond its keyed offset (input.go).
	nextPort [portTableSize]atomic.Uint32
	// host is the host part the shards' cores share (neighbours, IPv6
	// configuration, reassembly hand-offs); nil with one shard. Its lock
	// is taken inside a shard's, never before (stack.Shared).
	host *stack.Shared

	done chan struct{} // closed by Close: the goroutines end
	wg   sync.WaitGroup
}

// sockCloser is a socket the stack must close when it closes: marked
// closed under the shard lock, then woken.
type sockCloser interface {
	waker
	closeFromStack()
}

// NIC is a network interface of a Stack, attached to a link.
type NIC struct {
	s    *Stack
	id   stack.NICID
	ep   link.Endpoint
	name string
	// txq are the link's queues (one, or a link.MultiQueue's), each
	// with the lock held around its WriteBatch: one writer at a time
	// (the link.Endpoint contract); shard i writes to txq[i%len(txq)].
	txq []*txQueue
	rxErrs,
	txErrs,
	txStallDrops atomic.Uint64
	rxSynShed atomic.Uint64 // shed.go
}

// NICStats are the runtime's counters of a NIC (the stack's are in
// Stack.Stats, the link's in its endpoint).
type NICStats struct {
	// RxErrors counts ReadBatch calls that failed.
	RxErrors uint64
	// TxErrors counts WriteBatch calls that failed; the rest of their
	// batch was dropped.
	TxErrors uint64
	// TxStallDrops counts frames dropped because the link's write had
	// been blocked for 10 ms with the NIC's output queue full behind it
	// (a TAP whose device queue is full), on a stack with other NICs:
	// they would have held up the frames of every other NIC. TCP sends
	// them again. With one NIC, frames wait instead.
	TxStallDrops uint64
	// RxSYNShed counts connection requests dropped on arrival, before
	// any lock, because the link had a backlog (a full read batch) while
	// a listener was answering with SYN cookies (shed.go): the SYNs of
	// a flood, and any real client's that came with them, which its
	// client sends again.
	RxSYNShed uint64
}

// Stats returns the NIC's counters.
func (n *NIC) Stats() NICStats {
	return NICStats{
		RxErrors:     n.rxErrs.Load(),
		TxErrors:     n.txErrs.Load(),
		TxStallDrops: n.txStallDrops.Load(),
		RxSYNShed:    n.rxSynShed.Load(),
	}
}

// NICConfig describes a NIC. The MTU and framing come from the link.
type NICConfig struct {
	// Name is for humans; optional. It is also the zone that names the
	// NIC in link-local addresses ("[fe80::1%eth0]:80"; the NIC's number
	// works too).
	Name string
	// MAC is the NIC's Ethernet address. Nil picks a random locally
	// administered one.
	MAC net.HardwareAddr
	// Addrs are the NIC's addresses with prefix lengths, IPv4 or IPv6;
	// each prefix is on-link, as in the kernel. A NIC with an IPv6
	// address also gets a link-local one (see stack.NICConfig.IPv6).
	Addrs []netip.Prefix
	// VLAN puts the NIC on an 802.1Q VLAN; 0 means untagged.
	VLAN uint16
	// IPv6 turns IPv6 on for a NIC given no IPv6 address: a link-local
	// address, and addresses and routes from router advertisements.
	IPv6 bool
	// Promiscuous makes the NIC take packets to any unicast address,
	// and Spoofing lets packets leave it from any address: forwarder
	// mode (see ForwardTCP; SetForwarding changes them later).
	Promiscuous, Spoofing bool
}

// New returns a running Stack with no NICs. It fails if cfg names a
// congestion controller nothing is registered under (tcp.Config.Validate).
func New(cfg Config) (*Stack, error) {
	return newStack(cfg, shardCount(&cfg))
}

// newStack is New with nShards shards (see input.go for how they share
// the work).
func newStack(cfg Config, nShards int) (*Stack, error) {
	if err := cfg.TCP.Validate(); err != nil {
		return nil, fmt.Errorf("ustack: %w", err)
	}
	if cfg.Seed == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("ustack: seed: %w", err)
		}
		cfg.Seed = binary.LittleEndian.Uint64(b[:])
	}
	s := &Stack{
		cfg:  cfg,
		clk:  clock.NewReal(),
		done: make(chan struct{}),
	}
	if cfg.TCP.Memory == nil {
		// One budget for every shard (tcp.Config.Mem), as tcp_mem is
		// one for every CPU.
		cfg.TCP.Memory = tcp.NewMemory(cfg.TCP.Mem)
		s.cfg.TCP.Memory = cfg.TCP.Memory
	}
	if nShards > 1 {
		// One host part for every core (stack.Shared): one neighbour
		// cache, IPv6 configuration and reassembly in core 0, datagrams
		// handed to their flow's core.
		s.host = stack.NewShared(cfg.Config, nShards, s.shardOfKey)
	}
	for i := 0; i < nShards; i++ {
		core := stack.New(cfg.Config)
		if s.host != nil {
			core = stack.NewCore(shardConfig(cfg.Config, i, nShards), s.host, i)
		}
		sh := newShard(s, core)
		sh.idx = i
		s.shards = append(s.shards, sh)
	}
	return s, nil
}

// now returns the current instant.
func (s *Stack) now() clock.Instant { return s.clk.Now() }

// AddNIC attaches the stack to link ep. It starts the NIC's reader
// goroutine; the stack owns ep from now on and closes it on Close.
func (s *Stack) AddNIC(ep link.Endpoint, cfg NICConfig) (*NIC, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	var mac wire.MAC
	if ep.Medium() == link.Ethernet {
		if cfg.MAC == nil {
			var b [6]byte
			rand.Read(b[:])
			b[0] = b[0]&^1 | 2 // unicast, locally administered
			mac = wire.MAC(b)
		} else if m, ok := wire.MACFrom(cfg.MAC); ok {
			mac = m
		} else {
			return nil, fmt.Errorf("ustack: bad MAC address %v", cfg.MAC)
		}
	}
	n := &NIC{s: s, ep: ep, name: cfg.Name}
	queues := []link.Endpoint{ep}
	if mq, ok := ep.(link.MultiQueue); ok {
		queues = mq.Queues()
	}
	concurrent := false
	if cw, ok := ep.(link.ConcurrentWriter); ok && cw.ConcurrentWrites() {
		concurrent = true
	}
	for _, q := range queues {
		n.txq = append(n.txq, &txQueue{ep: q, concurrent: concurrent})
	}
	for i, sh := range s.shards {
		sh.mu.Lock()
		id, err := sh.core.AddNIC(stack.NICConfig{
			Name: cfg.Name, Medium: ep.Medium(), MTU: ep.MTU(), MAC: mac,
			Addrs: cfg.Addrs, VLAN: cfg.VLAN, Caps: ep.Caps(), IPv6: cfg.IPv6,
			Promiscuous: cfg.Promiscuous, Spoofing: cfg.Spoofing,
		})
		if err == nil && i > 0 && id != n.id {
			err = fmt.Errorf("ustack: shard %d numbered the NIC %d, not %d", i, id, n.id)
		}
		if err != nil {
			sh.mu.Unlock()
			// Only the first shard can fail: they all hold the same
			// configuration.
			return nil, err
		}
		n.id = id
		sh.addNICLocked(n)
		// An IPv6 NIC has work to start (DAD, MLD, router
		// solicitation): unlock collects it and arms the timer.
		sh.unlock()
	}
	s.nics = append(s.nics, n)
	if r, ok := ep.(link.Receiver); ok && (len(s.shards) == 1 || concurrent) {
		// Frames the peer writes come straight into their shards, in
		// the peer writer's goroutine (link.Receiver); the reader
		// goroutine still takes whatever the link queues. With several
		// shards only on a link they write to without taking turns
		// (link.ConcurrentWriter): taking turns, one shard's writer
		// would hold the NIC's turn (txQueue.wmu) while it delivered
		// into the peer, whose writer, delivering back into another
		// shard of this stack, would have that shard wait for the turn
		// while holding the peer's own (TestShardsReceiverNoDeadlock).
		if len(s.shards) == 1 {
			sh, id := s.shards[0], n.id
			r.SetReceiver(func(pkts []link.Packet) { sh.input(id, pkts) })
		} else {
			r.SetReceiver(func(pkts []link.Packet) { s.receive(n, pkts) })
		}
	}
	for _, q := range n.txq { // a reader per queue
		s.wg.Add(1)
		go n.readLoop(q.ep)
	}
	return n, nil
}

// ID returns the NIC's number in the stack.
func (n *NIC) ID() stack.NICID { return n.id }

// Addresses returns the NIC's addresses with their states, as `ip addr`
// shows them: an IPv6 address is "tentative" until duplicate address
// detection has run (a second or two after it was added; RFC 4862 §5.4)
// and cannot be bound or used as a source before, as in Linux.
func (n *NIC) Addresses() []stack.AddrInfo {
	// The first shard's: its core runs IPv6's address configuration
	// (DAD, SLAAC) for all, the others mirror it (stack.Shared).
	sh := n.s.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.core.AddrInfo(n.id)
}

// Endpoint returns the link the NIC is attached to.
func (n *NIC) Endpoint() link.Endpoint { return n.ep }

// AddRoute adds a route to dst via gateway gw on nic; a zero gw means dst
// is on-link. A NIC address's own prefix needs no route.
func (s *Stack) AddRoute(dst netip.Prefix, gw netip.Addr, nic *NIC) error {
	if nic == nil || nic.s != s {
		return errors.New("ustack: AddRoute: NIC of another stack")
	}
	return s.eachShard(func(sh *shard) error { return sh.core.AddRoute(dst, gw, nic.id) })
}

// AddAddress adds an address to a NIC.
func (s *Stack) AddAddress(nic *NIC, p netip.Prefix) error {
	return s.eachShard(func(sh *shard) error { return sh.core.AddAddress(nic.id, p) })
}

// eachShard applies a host configuration change to every shard's core,
// under the host lock so that the shards see changes in the same order.
func (s *Stack) eachShard(f func(sh *shard) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sh := range s.shards {
		sh.mu.Lock()
		err := f(sh)
		sh.unlock()
		if err != nil {
			return err // only the first shard can fail: they hold the same state
		}
	}
	return nil
}

// TCPMemory returns the counters of the stack's TCP buffer budget
// (tcp.Config.Mem): the bytes charged, the peak, whether it is under
// memory pressure, how often and how long it was. One budget serves every
// shard.
func (s *Stack) TCPMemory() tcp.MemStats {
	return s.cfg.TCP.Memory.Stats()
}

// Stats returns a snapshot of every counter of the stack (summed over
// its shards).
func (s *Stack) Stats() stack.Stats {
	var st stack.Stats
	for i, sh := range s.shards {
		sh.mu.Lock()
		one := sh.core.Stats()
		sh.mu.Unlock()
		if i == 0 {
			st = one
		} else {
			addStats(&st, &one)
		}
	}
	return st
}

// addStats adds every counter of src to dst.
func addStats(dst, src *stack.Stats) {
	addCounters(reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem())
}

// addCounters adds src's counters to dst's, group by group: every
// unsigned field of every group (and of groups inside groups), so that a
// group a later change adds is merged too.
func addCounters(d, v reflect.Value) {
	switch d.Kind() {
	case reflect.Struct:
		for i := 0; i < d.NumField(); i++ {
			addCounters(d.Field(i), v.Field(i))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.SetUint(d.Uint() + v.Uint())
	}
}

// PathMTU returns the MTU the stack uses toward dst: its route's NIC's,
// or the smaller one path MTU discovery learned from ICMP (RFC 1191,
// RFC 8201) until it expires, as `ip route get` shows the kernel's.
//
// With several shards each keeps the path MTUs its own connections
// learned (an ICMP error goes to the shard of the flow it quotes, and
// each shard's core has its own host state); this returns the smallest
// any shard knows.
func (s *Stack) PathMTU(dst netip.Addr) (int, error) {
	best := 0
	for _, sh := range s.shards {
		sh.mu.Lock()
		mtu, err := sh.core.PathMTU(s.now(), dst)
		sh.mu.Unlock()
		if err != nil {
			return 0, err // a route error: the same in every shard
		}
		if best == 0 || mtu < best {
			best = mtu
		}
	}
	return best, nil
}

// Conns returns the stack's TCP connections, as `ss -t` would list them.
func (s *Stack) Conns() []stack.ConnInfo {
	var all []stack.ConnInfo
	for _, sh := range s.shards {
		sh.mu.Lock()
		all = append(all, sh.core.Conns()...)
		sh.mu.Unlock()
	}
	return all
}

// Listeners returns the stack's TCP listeners. A listener has a part in
// every shard; it is listed once, with its parts' queues and backlogs
// added up.
func (s *Stack) Listeners() []stack.ListenerInfo {
	var all []stack.ListenerInfo
	at := map[netip.AddrPort]int{}
	for _, sh := range s.shards {
		sh.mu.Lock()
		for _, l := range sh.core.Listeners() {
			i, ok := at[l.Addr]
			if !ok {
				at[l.Addr] = len(all)
				all = append(all, l)
				continue
			}
			all[i].SynQueue += l.SynQueue
			all[i].AcceptQueue += l.AcceptQueue
			all[i].Backlog += l.Backlog
		}
		sh.mu.Unlock()
	}
	return all
}

// Neighbors returns the neighbour (ARP and NDP) cache, as `ip neigh`
// would list it.
func (s *Stack) Neighbors() []network.NeighborEntry {
	// The shards' cores share one cache (stack.Shared): any shard's
	// core lists it.
	sh := s.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.core.Neighbors()
}

// Close stops the stack: every socket is closed (blocked calls return
// net.ErrClosed), connections are reset, links are closed, and every
// goroutine of the stack has ended when Close returns.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	nics := s.nics
	s.mu.Unlock()
	for _, sh := range s.shards {
		sh.close() // the resets are written before the links close
	}
	close(s.done)
	var errs []error
	for _, n := range nics {
		if err := n.ep.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	for _, sh := range s.shards {
		sh.timerRef.Store(nil) // no run is left (wg); let the timer forget the shard
	}
	return errors.Join(errs...)
}

// readBufLen is the length of the buffers frames are read into from ep.
func readBufLen(ep link.Endpoint) int {
	if ep.Caps().Has(link.CapGRO) {
		return 65536 + 128
	}
	return ep.MTU() + ep.Medium().HeaderLen() + wire.VLANTagLen
}

// txQueue is one of a NIC's link queues, as shards write to it.
type txQueue struct {
	ep link.Endpoint
	// concurrent: the link takes several writers at once
	// (link.ConcurrentWriter), so each shard's writer writes on its own
	// and wmu is not taken.
	concurrent bool
	wmu        sync.Mutex // held around WriteBatch unless concurrent
}

// readLoop feeds the frames the link (or one of its queues, ep) receives
// to the stack, a batch at a time.
func (n *NIC) readLoop(ep link.Endpoint) {
	s := n.s
	defer s.wg.Done()
	size := readBufLen(ep)
	pkts := make([]link.Packet, max(ep.BatchSize(), 1))
	for i := range pkts {
		pkts[i].Buf = make([]byte, size)
		pkts[i].Swap = true // used afresh on every read
	}
	var in input
	for {
		k, err := ep.ReadBatch(pkts)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n.rxErrs.Add(1)
			time.Sleep(time.Millisecond) // a failing link must not spin
			continue
		}
		if k == len(pkts) {
			k = n.shed(pkts) // behind: shed a flood's SYNs (shed.go)
		}
		if !s.input(n, pkts[:k], &in) {
			return
		}
	}
}
