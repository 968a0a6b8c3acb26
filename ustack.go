package ustack

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
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
}

// Stack is a user-space TCP/IP stack with its goroutines. Make one with
// New; Close releases everything. All methods are safe for concurrent use.
type Stack struct {
	cfg  Config
	clk  clock.Real
	mu   sync.Mutex // the shard lock: guards core and everything below
	core *stack.Stack
	nics []*NIC

	spare link.Packet // output buffer PollTransmit fills before its NIC is known
	// rxBufLen is the longest read buffer of any NIC (readBufLen);
	// output buffers are at least as long, so that a link that hands
	// frames over by exchanging buffers (link.Packet.Swap) can give a
	// written frame's buffer to a reader.
	rxBufLen int
	timer    *time.Timer
	timerAt  clock.Instant
	socks    map[sockCloser]struct{}
	closed   bool

	done chan struct{}
	wg   sync.WaitGroup
}

// sockCloser is a socket the stack must close when it closes.
type sockCloser interface {
	closeFromStack()
}

// NIC is a network interface of a Stack, attached to a link.
type NIC struct {
	s    *Stack
	id   stack.NICID
	ep   link.Endpoint
	name string
	out  []link.Packet // frames ready to write, in order
	outN int
	rxErrs,
	txErrs uint64
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
		cfg:     cfg,
		clk:     clock.NewReal(),
		core:    stack.New(cfg.Config),
		socks:   map[sockCloser]struct{}{},
		done:    make(chan struct{}),
		timerAt: clock.Never,
	}
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	s.wg.Add(1)
	go s.timerLoop()
	return s, nil
}

// now returns the current instant; callers hold s.mu or do not care.
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
	id, err := s.core.AddNIC(stack.NICConfig{
		Name: cfg.Name, Medium: ep.Medium(), MTU: ep.MTU(), MAC: mac,
		Addrs: cfg.Addrs, VLAN: cfg.VLAN, Caps: ep.Caps(), IPv6: cfg.IPv6,
		Promiscuous: cfg.Promiscuous, Spoofing: cfg.Spoofing,
	})
	if err != nil {
		return nil, err
	}
	n := &NIC{s: s, id: id, ep: ep, name: cfg.Name}
	s.rxBufLen = max(s.rxBufLen, readBufLen(ep))
	n.out = make([]link.Packet, max(ep.BatchSize(), 1))
	for i := range n.out {
		// The slots' buffers are used afresh on every flush: a link may
		// take a frame by exchanging buffers (link/pipe does).
		n.out[i].Swap = true
	}
	s.nics = append(s.nics, n)
	s.wg.Add(1)
	go n.readLoop()
	// An IPv6 NIC has work to start (DAD, MLD, router solicitation):
	// the core's next deadline is due.
	s.rearmLocked()
	return n, nil
}

// ID returns the NIC's number in the stack.
func (n *NIC) ID() stack.NICID { return n.id }

// Addresses returns the NIC's addresses with their states, as `ip addr`
// shows them: an IPv6 address is "tentative" until duplicate address
// detection has run (a second or two after it was added; RFC 4862 §5.4)
// and cannot be bound or used as a source before, as in Linux.
func (n *NIC) Addresses() []stack.AddrInfo {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	return n.s.core.AddrInfo(n.id)
}

// Endpoint returns the link the NIC is attached to.
func (n *NIC) Endpoint() link.Endpoint { return n.ep }

// AddRoute adds a route to dst via gateway gw on nic; a zero gw means dst
// is on-link. A NIC address's own prefix needs no route.
func (s *Stack) AddRoute(dst netip.Prefix, gw netip.Addr, nic *NIC) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nic == nil || nic.s != s {
		return errors.New("ustack: AddRoute: NIC of another stack")
	}
	return s.core.AddRoute(dst, gw, nic.id)
}

// AddAddress adds an address to a NIC.
func (s *Stack) AddAddress(nic *NIC, p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.core.AddAddress(nic.id, p)
	s.rearmLocked() // an IPv6 address has DAD to start
	return err
}

// Stats returns a snapshot of every counter of the stack.
func (s *Stack) Stats() stack.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Stats()
}

// PathMTU returns the MTU the stack uses toward dst: its route's NIC's,
// or the smaller one path MTU discovery learned from ICMP (RFC 1191,
// RFC 8201) until it expires, as `ip route get` shows the kernel's.
func (s *Stack) PathMTU(dst netip.Addr) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.PathMTU(s.now(), dst)
}

// Conns returns the stack's TCP connections, as `ss -t` would list them.
func (s *Stack) Conns() []stack.ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Conns()
}

// Listeners returns the stack's TCP listeners.
func (s *Stack) Listeners() []stack.ListenerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Listeners()
}

// Neighbors returns the neighbour (ARP) cache, as `ip neigh` would list it.
func (s *Stack) Neighbors() []network.NeighborEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Neighbors()
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
	// Sockets are marked closed before the core resets their
	// connections, so a woken Read reports net.ErrClosed, not the reset.
	for so := range s.socks {
		so.closeFromStack()
	}
	s.core.Close()
	s.flushLocked()
	s.mu.Unlock()
	close(s.done)
	var errs []error
	for _, n := range s.nics {
		if err := n.ep.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	s.timer.Stop()
	return errors.Join(errs...)
}

// register and unregister track the sockets Close must close.
func (s *Stack) register(so sockCloser) {
	s.socks[so] = struct{}{}
}

func (s *Stack) unregister(so sockCloser) {
	delete(s.socks, so)
}

// timerLoop runs the stack's single timer: when the earliest deadline of
// any connection, neighbour or reassembly passes, it runs the core's
// timeouts.
func (s *Stack) timerLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.timer.C:
		}
		s.mu.Lock()
		if !s.closed {
			s.timerAt = clock.Never
			s.core.HandleTimeout(s.now())
			s.flushLocked()
		}
		s.mu.Unlock()
	}
}

// readLoop feeds the frames the link receives to the stack, a batch at a
// time, and sends whatever they caused.
func (n *NIC) readLoop() {
	s := n.s
	defer s.wg.Done()
	size := readBufLen(n.ep)
	pkts := make([]link.Packet, max(n.ep.BatchSize(), 1))
	for i := range pkts {
		pkts[i].Buf = make([]byte, size)
		pkts[i].Swap = true // used afresh on every read
	}
	for {
		k, err := n.ep.ReadBatch(pkts)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n.rxErrs++
			time.Sleep(time.Millisecond) // a failing link must not spin
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		now := s.now()
		for i := 0; i < k; i++ {
			s.core.HandleFrame(now, n.id, &pkts[i])
			pkts[i].N = 0
			pkts[i].Offload = link.Offload{}
		}
		s.flushLocked()
		s.mu.Unlock()
	}
}

// readBufLen is the length of the buffers frames are read into from ep.
func readBufLen(ep link.Endpoint) int {
	if ep.Caps().Has(link.CapGRO) {
		return 65536 + 128
	}
	return ep.MTU() + ep.Medium().HeaderLen() + wire.VLANTagLen
}

// flushLocked sends every frame the core has ready, wakes the sockets
// that have events, and re-arms the timer. The caller holds s.mu. Frames
// are written while the lock is held, which keeps them in order.
func (s *Stack) flushLocked() {
	now := s.now()
	size := s.core.MaxFrameLen()
	if size > 16384 {
		size = max(size, s.rxBufLen) // see rxBufLen
	}
	if len(s.spare.Buf) < size {
		s.spare.Buf = make([]byte, size)
	}
	for {
		id, ok := s.core.PollTransmit(now, &s.spare)
		if !ok {
			break
		}
		n := s.nics[id-1]
		slot := &n.out[n.outN]
		if len(slot.Buf) < size {
			slot.Buf = make([]byte, size)
		}
		slot.Buf, s.spare.Buf = s.spare.Buf, slot.Buf
		slot.N, slot.Offload = s.spare.N, s.spare.Offload
		n.outN++
		if n.outN == len(n.out) {
			n.writeOut()
		}
	}
	for _, n := range s.nics {
		if n.outN > 0 {
			n.writeOut()
		}
	}
	for {
		so, ev, ok := s.core.PollEvent()
		if !ok {
			break
		}
		if w, ok := so.Owner().(waker); ok {
			w.wake(ev)
		}
	}
	s.rearmLocked()
}

// writeOut writes the NIC's pending frames. A link error drops them (as a
// NIC's full queue would); TCP retransmits.
func (n *NIC) writeOut() {
	for done := 0; done < n.outN; {
		k, err := n.ep.WriteBatch(n.out[done:n.outN])
		if err != nil {
			n.txErrs++
			break
		}
		if k <= 0 {
			break
		}
		done += k
	}
	n.outN = 0
}

// rearmLocked points the timer at the core's next deadline.
func (s *Stack) rearmLocked() {
	d := s.core.NextDeadline()
	if d == s.timerAt {
		return
	}
	s.timerAt = d
	if d == clock.Never {
		s.timer.Stop()
		return
	}
	s.timer.Reset(max(s.clk.Until(d), 0))
}

// waker is what a socket's owner object does when the core reports
// events.
type waker interface {
	wake(ev stack.Events)
}

// signal is a one-slot wake-up: a send never blocks and is never lost.
type signal chan struct{}

func newSignal() signal { return make(signal, 1) }

func (c signal) notify() {
	select {
	case c <- struct{}{}:
	default:
	}
}
