package stack

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"syscall"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/siphash"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// NICID names a NIC of a Stack.
type NICID = network.NICID

// Config holds a stack's settings. The zero value gives the Linux kernel's
// defaults.
type Config struct {
	// TCP configures every TCP connection.
	TCP tcp.Config
	// Neighbor configures ARP resolution and the neighbour cache.
	Neighbor network.NeighborConfig
	// Reassembly configures IPv4 reassembly.
	Reassembly network.ReassemblyConfig
	// Seed seeds every random choice of the stack: ISN and port keys,
	// timestamp offsets, IP IDs. The same seed and the same inputs give
	// the same outputs. The runtime draws a random seed for each stack.
	Seed uint64
	// EphemeralPorts is the range ports for outgoing connections come
	// from, inclusive (net.ipv4.ip_local_port_range: 32768–60999).
	EphemeralPorts [2]uint16
	// TTL is the TTL of outgoing packets (net.ipv4.ip_default_ttl: 64).
	TTL uint8
	// SynBacklog bounds each listener's half-open connections
	// (net.ipv4.tcp_max_syn_backlog: 1024); SYNs beyond it are answered
	// with SYN cookies, or dropped if SynCookies is SynCookiesOff.
	SynBacklog int
	// SynCookies says when a listener answers a SYN with a SYN cookie
	// (RFC 4987 §3.6) instead of a half-open connection
	// (net.ipv4.tcp_syncookies). The zero value is Linux's default: when
	// the SYN queue is full.
	SynCookies SynCookieMode
	// MaxBacklog caps a listener's accept queue (net.core.somaxconn:
	// 4096).
	MaxBacklog int
	// UDPRecvBuffer is each UDP socket's receive queue in bytes
	// (net.core.rmem_default: 212992); datagrams beyond it are dropped.
	UDPRecvBuffer int
	// CtlQueueLen bounds the frames the stack queues on its own (ARP and
	// ICMP replies, RSTs, UDP datagrams) until the owner polls them.
	CtlQueueLen int
	// InitialSeq, if not nil, replaces the RFC 6528 generator: it returns
	// the initial send sequence number and the timestamp offset of each
	// new connection. It is for tests of sequence-number and timestamp
	// wrap-around (ISS and TSval near 2³²); leave it nil otherwise.
	InitialSeq func(local, remote netip.AddrPort) (iss wire.Seq, tsOffset uint32)
}

// SynCookieMode is when listeners use SYN cookies (RFC 4987 §3.6).
type SynCookieMode uint8

// The modes, with the values of net.ipv4.tcp_syncookies they stand for.
const (
	// SynCookiesOnOverflow (1, Linux's default): a SYN that finds its
	// listener's SYN queue full gets a cookie.
	SynCookiesOnOverflow SynCookieMode = iota
	// SynCookiesAlways (2): every SYN gets a cookie; the SYN queue is not
	// used.
	SynCookiesAlways
	// SynCookiesOff (0): no cookies; a SYN that finds the SYN queue full
	// is dropped (SynQueueDrops).
	SynCookiesOff
)

// SynCookieModeFromSysctl returns the mode net.ipv4.tcp_syncookies = v
// selects: 0 off, 1 on overflow, 2 always.
func SynCookieModeFromSysctl(v int) (SynCookieMode, error) {
	switch v {
	case 0:
		return SynCookiesOff, nil
	case 1:
		return SynCookiesOnOverflow, nil
	case 2:
		return SynCookiesAlways, nil
	}
	return 0, fmt.Errorf("stack: tcp_syncookies %d: want 0 (off), 1 (when the SYN queue is full) or 2 (always)", v)
}

// String returns the mode as its tcp_syncookies value and name.
func (m SynCookieMode) String() string {
	switch m {
	case SynCookiesOnOverflow:
		return "1 (on SYN queue overflow)"
	case SynCookiesAlways:
		return "2 (always)"
	case SynCookiesOff:
		return "0 (off)"
	}
	return fmt.Sprintf("SynCookieMode(%d)", uint8(m))
}

func (c *Config) setDefaults() {
	if c.EphemeralPorts == [2]uint16{} {
		c.EphemeralPorts = [2]uint16{32768, 60999}
	}
	if c.TTL == 0 {
		c.TTL = 64
	}
	if c.SynBacklog == 0 {
		c.SynBacklog = 1024
	}
	if c.MaxBacklog == 0 {
		c.MaxBacklog = 4096
	}
	if c.UDPRecvBuffer == 0 {
		c.UDPRecvBuffer = 212992
	}
	if c.CtlQueueLen == 0 {
		c.CtlQueueLen = 4096
	}
}

// LinkStats count frames at the boundary between links and the stack.
type LinkStats struct {
	RxFrames, RxBytes uint64 // frames handed to HandleFrame
	TxFrames, TxBytes uint64 // frames returned by PollTransmit
	// Frames dropped on input, each for its reason.
	RxRunts            uint64 // too short for a link header
	RxNotForUs         uint64 // unicast to another MAC address
	RxMulticast        uint64 // multicast (ustack joins no group)
	RxVLANMismatch     uint64 // 802.1Q tag not configured on the NIC
	RxUnknownEtherType uint64 // neither IPv4 nor ARP (IPv6 counts here until it is supported)
	RxNoNIC            uint64 // HandleFrame for a NIC that does not exist
	TxCtlQueueDrops    uint64 // stack-originated frames dropped: queue full
	TxLoopback         uint64 // packets to the stack's own addresses, delivered internally
}

// UDPStats are the UDP counters (RFC 4113 UDP-MIB, Linux Udp:).
type UDPStats struct {
	InDatagrams  uint64
	NoPorts      uint64
	InErrors     uint64
	InCsumErrors uint64
	RcvbufErrors uint64
	OutDatagrams uint64
	SndbufErrors uint64 // datagrams dropped on output (queue full, no route)
}

// Stats is a snapshot of every counter of a stack.
type Stats struct {
	Link LinkStats
	Net  network.Stats
	UDP  UDPStats
	TCP  tcp.Stats
}

// Each calls f with every counter as "Group.Name", value; for printing.
func (s *Stats) Each(f func(name string, v uint64)) {
	each := func(prefix string, p any) {
		v := reflect.ValueOf(p).Elem()
		for i := 0; i < v.NumField(); i++ {
			f(prefix+v.Type().Field(i).Name, v.Field(i).Uint())
		}
	}
	each("Link.", &s.Link)
	each("Net.", &s.Net)
	each("UDP.", &s.UDP)
	each("TCP.", &s.TCP)
}

// Map returns the non-zero counters by name.
func (s *Stats) Map() map[string]uint64 {
	m := map[string]uint64{}
	s.Each(func(n string, v uint64) {
		if v != 0 {
			m[n] = v
		}
	})
	return m
}

// NICConfig describes a NIC.
type NICConfig struct {
	// Name is for humans ("eth0"); optional.
	Name string
	// Medium is the link's framing; link.Ethernet needs MAC.
	Medium link.Medium
	// MTU is the IP MTU.
	MTU int
	// MAC is the NIC's Ethernet address.
	MAC wire.MAC
	// Addrs are the NIC's addresses with their prefix lengths; each
	// prefix is on-link, as in the kernel.
	Addrs []netip.Prefix
	// VLAN is the 802.1Q VLAN ID the NIC is on; 0 means untagged.
	VLAN uint16
	// Caps are the link's offload capabilities.
	Caps link.Caps
}

type nic struct {
	id    NICID
	cfg   NICConfig
	addrs []netip.Prefix
	hdr   int // link header length on output
}

// Errors of the socket API, each matching its errno with errors.Is.
var (
	ErrAddrInUse      = &opError{"address already in use", syscall.EADDRINUSE}
	ErrAddrNotAvail   = &opError{"cannot assign requested address", syscall.EADDRNOTAVAIL}
	ErrNetUnreachable = &opError{"network is unreachable", syscall.ENETUNREACH}
	ErrNoPorts        = &opError{"no ephemeral port free", syscall.EADDRNOTAVAIL}
	ErrMsgSize        = &opError{"message too long", syscall.EMSGSIZE}
	ErrClosed         = &opError{"socket closed", syscall.EBADF}
	ErrInvalid        = &opError{"invalid argument", syscall.EINVAL}
	ErrAFNoSupport    = &opError{"address family not supported", syscall.EAFNOSUPPORT}
)

type opError struct {
	msg   string
	errno syscall.Errno
}

func (e *opError) Error() string { return e.msg }

// Errno returns the syscall error number the error corresponds to.
func (e *opError) Errno() syscall.Errno { return e.errno }

func (e *opError) Is(target error) bool {
	errno, ok := target.(syscall.Errno)
	return ok && errno == e.errno
}

// Stack is a whole TCP/IPv4 host as a state machine. Make one with New.
type Stack struct {
	cfg    Config
	nics   []*nic
	routes network.Table
	neigh  *network.Neighbors
	reasm  *network.Reassembler
	frag   network.Fragmenter
	icmpRL network.TokenBucket
	tcpEnv *tcp.Env
	isn    *tcp.ISNGenerator
	cookie *tcp.SynCookies // SYN cookies (RFC 4987 §3.6)
	portK  siphash.Key
	rng    *rand.Rand
	stats  Stats

	conns     map[tuple]*TCPConn
	listeners map[netip.AddrPort]*TCPListener
	udp       map[netip.AddrPort]*UDPEndpoint
	nextEph   uint32 // RFC 6056 Algorithm 3's next_ephemeral
	ipID      uint16

	timers deadlineHeap
	dirty  []*TCPConn // connections that may have output
	ready  []Socket   // sockets with events to report
	ctl    []outFrame // frames the stack made itself, in order
	ctlHd  int
	loop   []outFrame // packets to our own addresses
	// loopSpare is the other slice loop alternates with (PollTransmit).
	loopSpare []outFrame
	free      [][]byte // spare frame buffers
	maxFr     int      // largest frame of any NIC
	closed    bool
}

// outFrame is a queued frame (or, for loopback, an IP packet).
type outFrame struct {
	nic NICID
	buf []byte
	n   int
}

// New returns a stack with no NICs.
func New(cfg Config) *Stack {
	cfg.setDefaults()
	s := &Stack{
		cfg:       cfg,
		conns:     map[tuple]*TCPConn{},
		listeners: map[netip.AddrPort]*TCPListener{},
		udp:       map[netip.AddrPort]*UDPEndpoint{},
		rng:       rand.New(rand.NewPCG(cfg.Seed, 0x75737461636b)),
		maxFr:     1514,
	}
	s.tcpEnv = tcp.NewEnv(cfg.TCP)
	s.neigh = network.NewNeighbors(cfg.Neighbor, &s.stats.Net)
	s.reasm = network.NewReassembler(cfg.Reassembly, &s.stats.Net)
	s.isn = tcp.NewISNGenerator(siphash.Key{K0: s.rng.Uint64(), K1: s.rng.Uint64()})
	s.portK = siphash.Key{K0: s.rng.Uint64(), K1: s.rng.Uint64()}
	s.nextEph = s.rng.Uint32()
	s.ipID = uint16(s.rng.Uint32())
	s.cookie = tcp.NewSynCookies(s.tcpEnv,
		siphash.Key{K0: s.rng.Uint64(), K1: s.rng.Uint64()}, siphash.Key{K0: s.rng.Uint64(), K1: s.rng.Uint64()})
	return s
}

// TCPConfig returns the TCP configuration in effect, defaults filled in.
func (s *Stack) TCPConfig() tcp.Config { return *s.tcpEnv.Config() }

// AddNIC adds a NIC and returns its ID. Its addresses' prefixes become
// on-link routes.
func (s *Stack) AddNIC(cfg NICConfig) (NICID, error) {
	if cfg.Medium == 0 {
		cfg.Medium = link.Ethernet
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.MTU < 68 || cfg.MTU > 65535 {
		return 0, fmt.Errorf("stack: MTU %d out of range 68..65535", cfg.MTU)
	}
	if cfg.Medium == link.Ethernet && (cfg.MAC.IsZero() || cfg.MAC.IsMulticast()) {
		return 0, fmt.Errorf("stack: an Ethernet NIC needs a unicast MAC address, not %v", cfg.MAC)
	}
	// Check the addresses before anything is added, so that a failed
	// AddNIC leaves no NIC and no route behind.
	for i, p := range cfg.Addrs {
		if !p.Addr().Is4() {
			return 0, fmt.Errorf("stack: %v: %w", p, ErrAFNoSupport)
		}
		for _, q := range cfg.Addrs[:i] {
			if q.Addr() == p.Addr() {
				return 0, fmt.Errorf("stack: address %v: %w", p.Addr(), ErrAddrInUse)
			}
		}
	}
	n := &nic{id: NICID(len(s.nics) + 1), cfg: cfg, hdr: cfg.Medium.HeaderLen()}
	if cfg.VLAN != 0 {
		n.hdr += wire.VLANTagLen
	}
	s.nics = append(s.nics, n)
	s.maxFr = max(s.maxFr, n.hdr+cfg.MTU)
	for _, p := range cfg.Addrs {
		if err := s.AddAddress(n.id, p); err != nil {
			return 0, err
		}
	}
	return n.id, nil
}

func (s *Stack) nic(id NICID) *nic {
	if id < 1 || int(id) > len(s.nics) {
		return nil
	}
	return s.nics[id-1]
}

// MaxFrameLen returns the size a frame buffer passed to PollTransmit must
// have: the largest MTU plus link header over all NICs.
func (s *Stack) MaxFrameLen() int { return s.maxFr }

// AddAddress adds address p (with its prefix length) to a NIC; its prefix
// becomes an on-link route.
func (s *Stack) AddAddress(id NICID, p netip.Prefix) error {
	n := s.nic(id)
	if n == nil {
		return fmt.Errorf("stack: no NIC %d", id)
	}
	if !p.Addr().Is4() {
		return fmt.Errorf("stack: %v: %w", p, ErrAFNoSupport)
	}
	for _, q := range n.addrs {
		if q.Addr() == p.Addr() {
			return fmt.Errorf("stack: address %v: %w", p.Addr(), ErrAddrInUse)
		}
	}
	n.addrs = append(n.addrs, p)
	_ = s.routes.Add(network.Route{Dst: p.Masked(), NIC: id})
	return nil
}

// RemoveAddress removes an address from a NIC, and its on-link route if
// no other address of the NIC is in that prefix.
func (s *Stack) RemoveAddress(id NICID, a netip.Addr) error {
	n := s.nic(id)
	if n == nil {
		return fmt.Errorf("stack: no NIC %d", id)
	}
	for i, q := range n.addrs {
		if q.Addr() == a {
			n.addrs = append(n.addrs[:i], n.addrs[i+1:]...)
			still := false
			for _, r := range n.addrs {
				still = still || r.Masked() == q.Masked()
			}
			if !still {
				s.routes.Remove(q.Masked(), id)
			}
			return nil
		}
	}
	return fmt.Errorf("stack: %v is not on NIC %d: %w", a, id, ErrAddrNotAvail)
}

// Addrs returns the addresses of a NIC.
func (s *Stack) Addrs(id NICID) []netip.Prefix {
	if n := s.nic(id); n != nil {
		return append([]netip.Prefix(nil), n.addrs...)
	}
	return nil
}

// AddRoute adds a route to dst through gateway gw (the zero Addr for
// on-link) on a NIC.
func (s *Stack) AddRoute(dst netip.Prefix, gw netip.Addr, id NICID) error {
	if s.nic(id) == nil {
		return fmt.Errorf("stack: no NIC %d", id)
	}
	if gw.IsValid() && !gw.Is4() || !dst.Addr().Is4() {
		return fmt.Errorf("stack: route %v via %v: %w", dst, gw, ErrAFNoSupport)
	}
	return s.routes.Add(network.Route{Dst: dst.Masked(), Gateway: gw, NIC: id})
}

// RemoveRoute removes the routes to dst on a NIC.
func (s *Stack) RemoveRoute(dst netip.Prefix, id NICID) bool {
	return s.routes.Remove(dst.Masked(), id)
}

// Routes returns the routing table.
func (s *Stack) Routes() []network.Route { return s.routes.Routes() }

// AddNeighbor adds a permanent neighbour entry (like `ip neigh add ...
// nud permanent`).
func (s *Stack) AddNeighbor(id NICID, ip netip.Addr, mac wire.MAC) { s.neigh.Add(id, ip, mac) }

// Neighbors returns the neighbour cache.
func (s *Stack) Neighbors() []network.NeighborEntry { return s.neigh.Entries() }

// Stats returns a snapshot of the counters.
func (s *Stack) Stats() Stats {
	st := s.stats
	st.TCP = s.tcpEnv.Stats
	return st
}

// isLocal reports whether a is one of the stack's addresses.
func (s *Stack) isLocal(a netip.Addr) bool {
	for _, n := range s.nics {
		for _, p := range n.addrs {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

// isBroadcast reports whether a is the limited broadcast or a directed
// broadcast address of one of n's prefixes.
func isBroadcast(n *nic, a netip.Addr) bool {
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	for _, p := range n.addrs {
		if p.Bits() < 31 && p.Contains(a) && a == lastAddr(p) {
			return true
		}
	}
	return false
}

// isDirectedBroadcast reports whether a is the broadcast address of a
// prefix of any NIC.
func (s *Stack) isDirectedBroadcast(a netip.Addr) bool {
	for _, n := range s.nics {
		if isBroadcast(n, a) {
			return true
		}
	}
	return false
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// route finds the NIC, next hop and source address for dst.
func (s *Stack) route(dst netip.Addr) (n *nic, nextHop, src netip.Addr, err error) {
	if !dst.Is4() {
		return nil, netip.Addr{}, netip.Addr{}, ErrAFNoSupport
	}
	if s.isLocal(dst) {
		// Loopback: pick the NIC that holds the address.
		for _, n := range s.nics {
			for _, p := range n.addrs {
				if p.Addr() == dst {
					return n, dst, dst, nil
				}
			}
		}
	}
	r, ok := s.routes.Lookup(dst)
	if !ok {
		return nil, netip.Addr{}, netip.Addr{}, ErrNetUnreachable
	}
	n = s.nic(r.NIC)
	if n == nil || len(n.addrs) == 0 {
		return nil, netip.Addr{}, netip.Addr{}, ErrNetUnreachable
	}
	nextHop = dst
	if r.Gateway.IsValid() {
		nextHop = r.Gateway
	}
	// Source: an address of the NIC in the next hop's prefix, else the
	// NIC's first address (the kernel's preferred source, simplified).
	src = n.addrs[0].Addr()
	for _, p := range n.addrs {
		if p.Contains(nextHop) {
			src = p.Addr()
			break
		}
	}
	return n, nextHop, src, nil
}

// Socket is a TCPConn, TCPListener or UDPEndpoint, as PollEvent reports
// them.
type Socket interface {
	// Owner returns what SetOwner attached.
	Owner() any
	// SetOwner attaches the owner's object (the runtime's waiters).
	SetOwner(any)
	base() *sockBase
}

// sockBase is what every socket has for the owner's bookkeeping.
type sockBase struct {
	owner  any
	events Events
	queued bool
}

func (b *sockBase) base() *sockBase { return b }

// SetOwner attaches the owner's object to the socket (the runtime's
// waiters); Owner returns it.
func (b *sockBase) SetOwner(o any) { b.owner = o }

// Owner returns what SetOwner attached.
func (b *sockBase) Owner() any { return b.owner }

// notify queues events of a socket for PollEvent.
func (s *Stack) notify(so Socket, ev Events) {
	if ev == 0 {
		return
	}
	b := so.base()
	b.events |= ev
	if !b.queued {
		b.queued = true
		s.ready = append(s.ready, so)
	}
}

// PollEvent returns the next socket with events and the events, or false.
func (s *Stack) PollEvent() (Socket, Events, bool) {
	if len(s.ready) == 0 {
		return nil, 0, false
	}
	so := s.ready[0]
	copy(s.ready, s.ready[1:])
	s.ready[len(s.ready)-1] = nil
	s.ready = s.ready[:len(s.ready)-1]
	b := so.base()
	ev := b.events
	b.events, b.queued = 0, false
	return so, ev, true
}

// NextDeadline returns when HandleTimeout must next be called.
func (s *Stack) NextDeadline() clock.Instant {
	d := s.timers.min()
	d = clock.Min(d, s.neigh.NextDeadline())
	d = clock.Min(d, s.reasm.NextDeadline())
	return d
}

// HandleTimeout runs every timer due at now.
func (s *Stack) HandleTimeout(now clock.Instant) {
	for len(s.timers) > 0 && s.timers[0].deadline <= now {
		c := s.timers[0]
		s.timers.remove(c)
		c.conn.HandleTimeout(now)
		s.afterConn(c)
	}
	s.neigh.HandleTimeout(now)
	for {
		id, ip, ok := s.neigh.PollFailed()
		if !ok {
			break
		}
		s.neighborFailed(now, id, ip)
	}
	s.reasm.HandleTimeout(now)
	for {
		q, ok := s.reasm.PollExpired()
		if !ok {
			break
		}
		// RFC 792, RFC 1122 §3.3.2: time exceeded, fragment reassembly.
		s.sendICMPError(now, q, wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyTimeExceeded, 0)
	}
}

// neighborFailed fails the connects waiting on an unresolvable next hop
// with EHOSTUNREACH, as Linux does when ARP gives up.
func (s *Stack) neighborFailed(now clock.Instant, id NICID, ip netip.Addr) {
	for _, c := range s.sortedConns(func(c *TCPConn) bool {
		return c.nic != nil && c.nic.id == id && c.nextHop == ip && c.conn.State() == tcp.SynSent
	}) {
		c.conn.HandleICMPError(now, tcp.ErrHostUnreachable)
		s.afterConn(c)
	}
}

// sortedConns returns the connections keep selects, ordered by their
// 4-tuples. What the stack does to several connections at once (their
// RSTs, their events) must come out in the same order on every run, as a
// seed replays exactly (DESIGN.md), and Go's map iteration order is
// random.
func (s *Stack) sortedConns(keep func(*TCPConn) bool) []*TCPConn {
	var out []*TCPConn
	for _, c := range s.conns {
		if keep(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *TCPConn) int { return a.key.compare(b.key) })
	return out
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[netip.AddrPort]V) []netip.AddrPort {
	return slices.SortedFunc(maps.Keys(m), netip.AddrPort.Compare)
}

// Close aborts every connection (each sends a RST), closes every listener
// and UDP socket. Frames still to send can be polled afterwards.
func (s *Stack) Close() {
	if s.closed {
		return
	}
	s.closed = true
	for _, a := range sortedKeys(s.listeners) {
		s.listeners[a].Close()
	}
	for _, c := range s.sortedConns(func(*TCPConn) bool { return true }) {
		c.conn.Abort()
		s.afterConn(c)
	}
	for _, a := range sortedKeys(s.udp) {
		s.udp[a].Close()
	}
}

// ephemeralRange returns the first port and the count of the range.
func (s *Stack) ephemeralRange() (uint32, uint32) {
	lo, hi := uint32(s.cfg.EphemeralPorts[0]), uint32(s.cfg.EphemeralPorts[1])
	if hi < lo {
		lo, hi = hi, lo
	}
	return lo, hi - lo + 1
}
