package stack

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"syscall"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/ring"
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
	// Reassembly configures IPv4 and IPv6 reassembly (each family has
	// its own memory cap of that size, as in Linux).
	Reassembly network.ReassemblyConfig
	// IPv6 configures the IPv6 side of NICs that have it (an IPv6
	// address, or NICConfig.IPv6).
	IPv6 IPv6Config
	// PMTU configures the path MTU cache (RFC 1191, RFC 8201).
	PMTU PMTUConfig
	// Seed seeds every random choice of the stack: ISN and port keys,
	// timestamp offsets, IP IDs. The same seed and the same inputs give
	// the same outputs. The runtime draws a random seed for each stack.
	Seed uint64
	// EphemeralPorts is the range ports for outgoing connections come
	// from, inclusive (net.ipv4.ip_local_port_range: 32768–60999).
	EphemeralPorts [2]uint16
	// TimeWaitReuse is how long after the last timestamp a connection in
	// TIME-WAIT received its 4-tuple may be taken by a new outgoing
	// connection (Linux's net.ipv4.tcp_tw_reuse with
	// tcp_tw_reuse_delay: 1 s, the default here; negative: never). Only
	// connections with timestamps qualify: see tcp.Conn.ReuseTimeWait
	// for why that keeps the old incarnation's duplicates out.
	TimeWaitReuse time.Duration
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

// IPv6Config holds the IPv6 settings of a stack: Neighbor Discovery
// (RFC 4861), stateless address autoconfiguration (RFC 4862) and MLD
// (RFC 3810). The zero value gives the Linux kernel's defaults for a host
// (net.ipv6.conf.default.*, with forwarding off).
type IPv6Config struct {
	// HopLimit is the hop limit of packets sent (hop_limit: 64); a
	// router advertisement's Cur Hop Limit replaces it when router
	// advertisements are accepted.
	HopLimit uint8
	// DADTransmits is how many neighbour solicitations duplicate
	// address detection sends for each address before using it (RFC
	// 4862 §5.4, dad_transmits: 1); negative turns DAD off (accept_dad
	// = 0): addresses are usable at once.
	DADTransmits int
	// IgnoreRA makes the stack ignore router advertisements and send no
	// router solicitations (accept_ra = 0). By default a NIC with IPv6
	// solicits routers when it starts and takes from their
	// advertisements a default route, on-link prefixes, the hop limit,
	// the link MTU and NDP's timers, as a Linux host does (accept_ra = 1
	// when not forwarding); a forwarder turns this off.
	IgnoreRA bool
	// NoAutoconf stops the stack forming addresses from the prefixes
	// router advertisements announce (RFC 4862 §5.5.3; autoconf = 0).
	NoAutoconf bool
	// RouterSolicitations is how many router solicitations a NIC sends
	// when it starts (RFC 4861 §10 MAX_RTR_SOLICITATIONS: 3); negative
	// sends none.
	RouterSolicitations int
	// RouterSolicitationInterval is the time between them (RFC 4861
	// RTR_SOLICITATION_INTERVAL: 4 s).
	RouterSolicitationInterval time.Duration
	// MLD configures the multicast listener reports (RFC 3810).
	MLD network.MLDConfig
}

func (c *IPv6Config) setDefaults() {
	if c.HopLimit == 0 {
		c.HopLimit = 64
	}
	if c.DADTransmits == 0 {
		c.DADTransmits = 1
	}
	if c.RouterSolicitations == 0 {
		c.RouterSolicitations = 3
	}
	if c.RouterSolicitationInterval <= 0 {
		c.RouterSolicitationInterval = 4 * time.Second
	}
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
	if c.TimeWaitReuse == 0 {
		c.TimeWaitReuse = time.Second
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
	if c.TCP.ParkIdle == 0 {
		// Idle connections park after a second (and three RTOs): see
		// tcp.Config.ParkIdle; a negative value keeps them whole.
		c.TCP.ParkIdle = time.Second
	}
	c.IPv6.setDefaults()
}

// LinkStats count frames at the boundary between links and the stack.
type LinkStats struct {
	RxFrames, RxBytes uint64 // frames handed to HandleFrame
	TxFrames, TxBytes uint64 // frames returned by PollTransmit
	// Frames dropped on input, each for its reason.
	RxRunts            uint64 // too short for a link header
	RxNotForUs         uint64 // unicast to another MAC address
	RxMulticast        uint64 // multicast to a group the NIC has not joined
	RxVLANMismatch     uint64 // 802.1Q tag not configured on the NIC
	RxUnknownEtherType uint64 // neither IPv4, ARP nor IPv6 (IPv6 on a NIC without it counts here too)
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
	// UDP6 are the counters of UDP over IPv6 (Linux Udp6*).
	UDP6 UDPStats
	TCP  tcp.Stats
	Fwd  ForwardStats
	// PMTU are the path MTU cache's counters.
	PMTU PMTUStats
	Ping PingStats
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
	each("UDP6.", &s.UDP6)
	each("TCP.", &s.TCP)
	each("Fwd.", &s.Fwd)
	each("PMTU.", &s.PMTU)
	each("Ping.", &s.Ping)
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
	// IPv6 turns IPv6 on for a NIC given no IPv6 address (to take
	// addresses from router advertisements, or to use only its
	// link-local address). A NIC given an IPv6 address has IPv6
	// whatever this says. A NIC with IPv6 gets a link-local address
	// (RFC 4862 §5.3), joins the all-nodes group and the solicited-node
	// group of each address (reported with MLDv2), checks every address
	// with duplicate address detection, and solicits routers (see
	// IPv6Config). A NIC with IPv4 addresses only stays silent in IPv6,
	// where Linux would give it a link-local address anyway
	// (disable_ipv6 = 0): adding IPv6 to ustack changed nothing on the
	// wire for IPv4 users.
	IPv6 bool
	// Promiscuous makes the NIC take IP packets for any unicast
	// destination, not only the stack's own addresses (forwarder mode,
	// as gVisor's promiscuous NIC): they reach sockets bound to exactly
	// that address, else the forwarders (ForwardTCP, ForwardUDP,
	// ForwardEcho), else the usual answer for no socket.
	Promiscuous bool
	// Spoofing lets packets leave the NIC from any source address, not
	// only the stack's own (forwarder mode; Linux's IP_TRANSPARENT):
	// connections and sockets may then bind addresses the stack does
	// not hold.
	Spoofing bool
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
	ErrNoDevice       = &opError{"no such device", syscall.ENODEV}
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

// Stack is a whole TCP/IP host, IPv4 and IPv6, as a state machine. Make
// one with New.
//
// Its state is in three parts (docs/ARCHITECTURE.md, "Host and flows"):
// the host (NICs, addresses, routes, neighbours, reassembly, the ICMP
// rate limit), the flows (connections, listeners, UDP sockets, ports,
// deadlines, the output rotation, events) and the transmit path. With N
// shards (issue 13), the host is shared and each shard has flows and a
// transmit path of its own.
type Stack struct {
	cfg    Config
	host   host
	flows  flows
	out    output
	rng    *rand.Rand
	closed bool
	// fwdStats count what the forwarders did (forward.go).
	fwdStats ForwardStats
	// With cores sharing a host part (shared.go): the Shared, this
	// core's index, its cursor in Shared's neighbour failures, and
	// HandleTimeout's scratch list of them.
	shared  *Shared
	coreIdx int
	failCur uint64
	failBuf []failedNeigh
	// owner is the runtime's object for this core (SetOwner).
	owner any
}

// SetOwner attaches the runtime's object to the stack (the goroutine
// runtime's shard that drives it); Owner returns it. A connection's
// owner reaches it through TCPConn.Stack instead of keeping a pointer of
// its own in every connection.
func (s *Stack) SetOwner(o any) { s.owner = o }

// Owner returns what SetOwner attached.
func (s *Stack) Owner() any { return s.owner }

// flows is the per-flow state of a stack: everything a segment or
// datagram of one flow touches beyond the host's routing of it. A flow
// is found by its 4-tuple (ParseFlowKey), so N shards can each own the
// flows that hash to them.
type flows struct {
	tcpEnv *tcp.Env
	// lastTick is the time of the last HandleTimeout: a call that
	// unparks a connection has no time of its own (TCPConn.core).
	lastTick  clock.Instant
	isn       *tcp.ISNGenerator
	cookie    *tcp.SynCookies // SYN cookies (RFC 4987 §3.6)
	cookieAt  clock.Instant   // when a listener last sent a SYN cookie, if cookieAny (shed.go)
	cookieAny bool
	portK     siphash.Key
	conns     flowTable // the TCP connections by 4-tuple (flowtab.go)
	listeners bindings[*TCPListener]
	udp       bindings[*UDPEndpoint]
	ping      map[uint16]*PingEndpoint // ping sockets by echo identifier
	pingNext  uint16                   // the identifier picked last (BindPing)
	nextEph   *[portTableSize]uint32   // RFC 6056 Algorithm 4's table of next_ephemeral (made on the first dial)
	timers    connTimers
	dirty     ring.Ring[*TCPConn] // connections that may have output, in turn
	ready     ring.Ring[Socket]   // sockets with events to report
	udpStats  UDPStats
	udp6Stats UDPStats
	// The forwarders (forward.go): what takes the SYNs and datagrams no
	// socket matched, when set.
	tcpFwd    *TCPForwarder
	udpFwd    *UDPForwarder
	pingStats PingStats
}

// New returns a stack with no NICs.
func New(cfg Config) *Stack {
	cfg.setDefaults()
	s := &Stack{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x75737461636b)),
	}
	s.out.maxFr = 1514
	f := &s.flows
	f.conns = newFlowTable()
	f.listeners = newBindings[*TCPListener]()
	f.udp = newBindings[*UDPEndpoint]()
	f.ping = map[uint16]*PingEndpoint{}
	f.tcpEnv = tcp.NewEnv(cfg.TCP)
	h := &s.host
	h.ttl = cfg.TTL
	h.hopLimit = cfg.IPv6.HopLimit
	h.neigh = network.NewNeighbors(cfg.Neighbor, &h.net)
	h.reasm = network.NewReassembler(cfg.Reassembly, &h.net)
	h.reasm6 = network.NewReassembler6(cfg.Reassembly, &h.net)
	h.v6next = clock.Never
	h.pmtu = newPMTUCache(cfg.PMTU, &h.pmtuStats)
	h.c4, h.c6 = ipCountersOf(&h.net)
	// The draws keep their order: the same seed gives the same keys.
	f.isn = tcp.NewISNGenerator(siphash.Key{K0: s.rng.Uint64(), K1: s.rng.Uint64()})
	f.portK = siphash.Key{K0: s.rng.Uint64(), K1: s.rng.Uint64()}
	h.ipID = uint16(s.rng.Uint32())
	f.cookie = tcp.NewSynCookies(f.tcpEnv,
		siphash.Key{K0: s.rng.Uint64(), K1: s.rng.Uint64()}, siphash.Key{K0: s.rng.Uint64(), K1: s.rng.Uint64()})
	f.pingNext = uint16(s.rng.Uint32())
	// IPv6's draws come after the others', so that the keys above stay
	// what they were for a seed.
	h.fragKey6 = siphash.Key{K0: s.rng.Uint64(), K1: s.rng.Uint64()}
	h.fragID6 = s.rng.Uint32()
	h.mld = network.NewMLDHost(cfg.IPv6.MLD, s.rng.Uint64())
	h.rng6 = rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	return s
}

// TCPMemory returns the counters of the TCP buffer budget the stack's
// connections charge (tcp.Config.Mem; shared with the stacks that share
// its tcp.Memory).
func (s *Stack) TCPMemory() tcp.MemStats { return s.flows.tcpEnv.Memory().Stats() }

// TCPMemHeld returns the bytes of buffer chunks this stack's connections
// hold now, exactly (TCPMemory's Allocated adds forward allocations).
func (s *Stack) TCPMemHeld() int64 { return s.flows.tcpEnv.MemHeld() }

// TCPConfig returns the TCP configuration in effect, defaults filled in.
func (s *Stack) TCPConfig() tcp.Config { return *s.flows.tcpEnv.Config() }

// Stats returns a snapshot of the counters.
func (s *Stack) Stats() Stats {
	if sh := s.shared; sh != nil && s.coreIdx == 0 {
		// The shared neighbour cache's counters, once: the owner's.
		net := s.host.net
		ns := sh.neighborStats()
		addCounters(reflect.ValueOf(&net).Elem(), reflect.ValueOf(&ns).Elem())
		st := s.statsOf()
		st.Net = net
		return st
	}
	return s.statsOf()
}

// addCounters adds src's unsigned fields to dst's (structs of counters).
func addCounters(dst, src reflect.Value) {
	for i := 0; i < dst.NumField(); i++ {
		if f := dst.Field(i); f.CanUint() {
			f.SetUint(f.Uint() + src.Field(i).Uint())
		}
	}
}

// statsOf is Stats without the shared part.
func (s *Stack) statsOf() Stats {
	return Stats{Link: s.host.link, Net: s.host.net, UDP: s.flows.udpStats, UDP6: s.flows.udp6Stats, TCP: s.flows.tcpEnv.Stats, Fwd: s.fwdStats, Ping: s.flows.pingStats, PMTU: s.host.pmtuStats}
}

// Socket is a TCPConn, TCPListener, UDPEndpoint or PingEndpoint, as
// PollEvent reports them.
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
		s.flows.ready.PushBack(so)
	}
}

// PollEvent returns the next socket with events and the events, or false.
func (s *Stack) PollEvent() (Socket, Events, bool) {
	so, ok := s.flows.ready.PopFront()
	if !ok {
		return nil, 0, false
	}
	b := so.base()
	ev := b.events
	b.events, b.queued = 0, false
	return so, ev, true
}

// NextDeadline returns when HandleTimeout must next be called.
func (s *Stack) NextDeadline() clock.Instant {
	d := s.flows.timers.next()
	d = clock.Min(d, s.neighDeadline())
	d = clock.Min(d, s.host.reasm.NextDeadline())
	d = clock.Min(d, s.host.reasm6.NextDeadline())
	d = clock.Min(d, s.host.v6next)
	d = clock.Min(d, s.host.mld.NextDeadline())
	d = clock.Min(d, s.host.pmtu.next)
	return d
}

// HandleTimeout runs every timer due at now.
func (s *Stack) HandleTimeout(now clock.Instant) {
	timers := &s.flows.timers
	s.flows.lastTick = max(s.flows.lastTick, now)
	for c := timers.pop(now); c != nil; c = timers.pop(now) {
		if c.conn == nil {
			// Its keep-alive timer: run by the record if it can.
			if s.parkedTimeout(now, c) {
				continue
			}
			s.unpark(now, c)
		}
		c.conn.HandleTimeout(now)
		if s.park(now, c) {
			continue
		}
		s.afterConn(c)
	}
	h := &s.host
	s.nlock()
	h.neigh.HandleTimeout(now)
	fails := s.failBuf[:0]
	for {
		id, ip, ok := h.neigh.PollFailed()
		if !ok {
			break
		}
		fails = append(fails, failedNeigh{id, ip})
		if s.shared != nil {
			// The other cores fail their own connects (SyncShared).
			s.shared.neighFailedLocked(s.coreIdx, failedNeigh{id, ip})
		}
	}
	s.nunlock()
	for _, f := range fails {
		s.neighborFailed(now, f.nic, f.ip)
	}
	s.failBuf = fails[:0]
	h.reasm.HandleTimeout(now)
	for {
		q, ok := h.reasm.PollExpired()
		if !ok {
			break
		}
		// RFC 792, RFC 1122 §3.3.2: time exceeded, fragment reassembly.
		s.sendICMPError(now, q, wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyTimeExceeded, 0)
	}
	h.reasm6.HandleTimeout(now)
	for {
		q, ok := h.reasm6.PollExpired()
		if !ok {
			break
		}
		// RFC 8200 §4.5: time exceeded, fragment reassembly time
		// exceeded, to the source of the first fragment.
		s.sendICMPv6Error(now, nil, q, wire.ICMPv6TimeExceeded, wire.ICMPv6ReassemblyTimeExceeded, 0, false, false)
	}
	s.timeout6(now)
	h.pmtu.expire(now)
	s.publish6()
}

// neighborFailed fails the connects waiting on an unresolvable next hop
// with EHOSTUNREACH, as Linux does when ARP gives up.
func (s *Stack) neighborFailed(now clock.Instant, id NICID, ip netip.Addr) {
	for _, c := range s.sortedConns(func(c *TCPConn) bool {
		return c.nic != nil && c.nic.id == id && c.nextHop == ip && c.State() == tcp.SynSent
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
	for c := range s.flows.conns.all() {
		if keep(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *TCPConn) int { return a.key().compare(b.key()) })
	return out
}

// Close aborts every connection (each sends a RST), closes every listener,
// UDP socket and ping socket. Frames still to send can be polled afterwards.
func (s *Stack) Close() {
	if s.closed {
		return
	}
	s.closed = true
	f := &s.flows
	for _, a := range f.listeners.sorted() {
		l, _ := f.listeners.get(a)
		l.Close()
	}
	for _, c := range s.sortedConns(func(*TCPConn) bool { return true }) {
		c.core().Abort()
		s.afterConn(c)
	}
	for _, a := range f.udp.sorted() {
		u, _ := f.udp.get(a)
		u.Close()
	}
	s.closeForwarders()
	for _, id := range slices.Sorted(maps.Keys(f.ping)) {
		f.ping[id].Close()
	}
	// The connections gave their chunks back; the forward allocation
	// goes back to the shared budget too.
	f.tcpEnv.ReclaimMemory()
}

// ephemeralRange returns the first port and the count of the range.
func (s *Stack) ephemeralRange() (uint32, uint32) {
	lo, hi := uint32(s.cfg.EphemeralPorts[0]), uint32(s.cfg.EphemeralPorts[1])
	if hi < lo {
		lo, hi = hi, lo
	}
	return lo, hi - lo + 1
}
