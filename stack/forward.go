package stack

import (
	"fmt"
	"net/netip"
	"syscall"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/ring"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Forwarder mode: a stack that stands for every host behind it, as
// gVisor's netstack does for tun2socks, sing-tun and slirp-like relays.
//
// Two per-NIC flags open the host up (NICConfig.Promiscuous: packets to
// any unicast address are taken; NICConfig.Spoofing: packets may leave
// from any address), and three forwarders take what no socket matched:
//
//   - TCPForwarder: each new SYN becomes a TCPRequest, held undecided —
//     no SYN-ACK yet — until the owner accepts it (the SYN-ACK goes out
//     now and the request becomes a TCPConn), rejects it (RST or an ICMP
//     unreachable) or drops it. A cap bounds the requests undecided at
//     once; SYNs beyond it are dropped and counted.
//   - UDPForwarder: each new flow becomes a UDPEndpoint found by its
//     mapping (RFC 4787 §4.1: endpoint-independent, by the client's
//     address and port alone; or per 4-tuple), capped likewise.
//   - EchoForwarder: echo requests to addresses the stack does not hold
//     are queued for the owner, which answers them (SendEchoReply) or
//     not; without it the stack answers them itself.
//
// The hooks into the shared paths are one each: handleIPv4 and
// handleIPv6 ask takesForeign where they decide "is this address mine",
// handleTCP and handleUDP call their forwarder where no listener or
// socket matched, and handleICMPv4 and handleICMPv6 hand foreign echo
// requests to the echo forwarder. Both IP versions go through the same
// hooks; nothing else in forwarder mode depends on the family.

// ForwardStats count what forwarder mode did.
type ForwardStats struct {
	// InForeign counts IP packets a promiscuous NIC took for an address
	// the stack does not hold.
	InForeign uint64
	// TCPRequests counts SYNs that became requests; TCPSynRetrans the
	// SYNs that repeated one still undecided; TCPRefusedCap those
	// dropped because MaxInFlight requests were undecided.
	TCPRequests, TCPSynRetrans, TCPRefusedCap uint64
	// How requests were decided.
	TCPAccepted, TCPRejected, TCPDropped uint64
	// UDPFlows counts flows made; UDPRefusedCap datagrams dropped
	// because MaxFlows flows were open.
	UDPFlows, UDPRefusedCap uint64
	// EchoRequests counts echo requests handed to the echo forwarder,
	// EchoQueueDrops those dropped because its queue was full,
	// EchoReplies the replies sent with SendEchoReply.
	EchoRequests, EchoQueueDrops, EchoReplies uint64
}

// SetForwarding sets a NIC's Promiscuous and Spoofing flags (see
// NICConfig) while the stack runs.
func (s *Stack) SetForwarding(id NICID, promiscuous, spoofing bool) error {
	n := s.nic(id)
	if n == nil {
		return fmt.Errorf("stack: no NIC %d", id)
	}
	n.cfg.Promiscuous, n.cfg.Spoofing = promiscuous, spoofing
	return nil
}

// takesForeign reports whether n takes a packet to dst, an address the
// stack does not hold: n is promiscuous and dst is a unicast address a
// host could have (multicast, unspecified and loopback destinations are
// nobody's to forward). For IPv6, a link-local destination is not
// taken either (RFC 4291 §2.5.6: it is never forwarded off its link, so
// it stands for no host behind us), nor an address of ours that is
// still tentative or duplicate (RFC 4862 §5.4: discarded).
func (s *Stack) takesForeign(n *nic, dst netip.Addr) bool {
	if !n.cfg.Promiscuous || dst.IsMulticast() || dst.IsUnspecified() || dst.IsLoopback() {
		return false
	}
	if dst.Is4() && s.isDirectedBroadcast(dst) || dst.Is6() && (dst.IsLinkLocalUnicast() || s.holds6(dst)) {
		return false
	}
	s.fwdStats.InForeign++
	return true
}

// holds6 reports whether a NIC has the IPv6 address a in any state.
func (s *Stack) holds6(a netip.Addr) bool {
	for _, n := range s.host.nics {
		if n.has6(a) {
			return true
		}
	}
	return false
}

// spoofing reports whether some NIC may send from any address, so that
// a socket may bind an address the stack does not hold.
func (s *Stack) spoofing() bool {
	for _, n := range s.host.nics {
		if n.cfg.Spoofing {
			return true
		}
	}
	return false
}

// listenerFor returns the listener a SYN to local reaches: for a packet
// to a foreign address (a promiscuous NIC's), only one bound to exactly
// that address — the wildcard means the stack's own addresses, as in
// Linux, where only IP_TRANSPARENT sockets take others'.
func (s *Stack) listenerFor(p *ipRepr, local netip.AddrPort) *TCPListener {
	if p.foreign {
		l, _ := s.flows.listeners.get(local)
		return l
	}
	l, _ := s.flows.listeners.lookup(local)
	return l
}

// udpSocketFor is listenerFor for UDP sockets.
func (s *Stack) udpSocketFor(p *ipRepr, local netip.AddrPort) *UDPEndpoint {
	if p.foreign {
		u, _ := s.flows.udp.get(local)
		return u
	}
	u, _ := s.flows.udp.lookup(local)
	return u
}

// closeForwarders closes every forwarder (Stack.Close).
func (s *Stack) closeForwarders() {
	if f := s.flows.tcpFwd; f != nil {
		f.Close()
	}
	if f := s.flows.udpFwd; f != nil {
		f.Close()
	}
	if f := s.host.echoFwd; f != nil {
		f.Close()
	}
}

// ErrForwarderSet is returned when a forwarder of the kind asked for is
// already set.
var ErrForwarderSet = &opError{"a forwarder of this kind is already set", syscall.EBUSY}

// TCPForwarder takes the SYNs no listener matched (forwarder mode). It
// reports EventReadable when requests wait for Next, EventClosed when
// closed.
type TCPForwarder struct {
	sockBase
	s       *Stack
	max     int
	pending map[tuple]*TCPRequest // undecided, by 4-tuple
	queue   ring.Ring[*TCPRequest]
	closed  bool
}

// TCPRequest is a SYN held undecided by a TCPForwarder: nothing has been
// answered yet. Exactly one of Accept, Reject and Drop decides it.
type TCPRequest struct {
	f       *TCPForwarder
	key     tuple
	nic     *nic
	syn     wire.TCPFields
	quote   []byte // the SYN's IP packet, for an ICMP error
	decided bool
}

// maxQuote bounds what an ICMP error quotes of the packet (RFC 1812
// §4.3.2.3: as much as fits in 576 bytes); maxQuote6 for ICMPv6 (RFC
// 4443 §2.4 (c): as much as fits in the minimum MTU, 1280 bytes).
const (
	maxQuote  = 576 - wire.IPv4HeaderLen - wire.ICMPv4HeaderLen
	maxQuote6 = wire.ICMPv6ErrorQuoteMax
)

// ForwardTCP makes the stack hand every SYN that no listener matches —
// to a foreign address on a promiscuous NIC, or to one of its own on a
// port nobody listens on — to a new TCPForwarder instead of answering it
// with a RST. At most maxInFlight requests are undecided at once (0
// means 1024, tcp_max_syn_backlog's default); a SYN beyond that is
// dropped and counted (ForwardStats.TCPRefusedCap), as a full SYN queue
// drops it.
func (s *Stack) ForwardTCP(maxInFlight int) (*TCPForwarder, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if s.flows.tcpFwd != nil {
		return nil, ErrForwarderSet
	}
	if maxInFlight <= 0 {
		maxInFlight = 1024
	}
	f := &TCPForwarder{s: s, max: maxInFlight, pending: map[tuple]*TCPRequest{}}
	s.flows.tcpFwd = f
	return f, nil
}

// offer takes a SYN that matched no listener, and reports whether it did.
// Only a bare SYN opens a request: other segments get the answer RFC
// 9293 §3.10.7.1 gives them.
func (f *TCPForwarder) offer(p *ipRepr, key tuple, seg *wire.TCPFields) bool {
	if seg.Flags&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST) != wire.TCPFlagSYN {
		return false
	}
	st := &f.s.fwdStats
	if f.pending[key] != nil {
		// The client repeats its SYN; the request is still undecided.
		st.TCPSynRetrans++
		return true
	}
	if len(f.pending) >= f.max {
		st.TCPRefusedCap++
		return true
	}
	r := &TCPRequest{f: f, key: key, nic: p.nic, syn: *seg}
	// The SYN's data, if any (Fast Open), is not taken: the client sends
	// it again after the handshake, as to a server without TFO.
	r.syn.Payload = nil
	q := maxQuote
	if p.dst.Is6() {
		q = maxQuote6
	}
	r.quote = append([]byte(nil), p.packet[:min(len(p.packet), q)]...)
	f.pending[key] = r
	f.queue.PushBack(r)
	st.TCPRequests++
	f.s.notify(f, EventReadable)
	return true
}

// Next returns the next new request, or nil.
func (f *TCPForwarder) Next() *TCPRequest {
	for {
		r, ok := f.queue.PopFront()
		if !ok {
			return nil
		}
		if !r.decided {
			return r
		}
	}
}

// InFlight returns the number of undecided requests.
func (f *TCPForwarder) InFlight() int { return len(f.pending) }

// Close stops forwarding: undecided requests are dropped, and SYNs get
// RSTs again.
func (f *TCPForwarder) Close() {
	if f.closed {
		return
	}
	f.closed = true
	if f.s.flows.tcpFwd == f {
		f.s.flows.tcpFwd = nil
	}
	for _, r := range f.pending {
		r.decided = true
	}
	clear(f.pending)
	f.queue.Free()
	f.s.notify(f, EventClosed|EventReadable)
}

// LocalAddr returns the address and port the client asked for: the
// destination of its SYN.
func (r *TCPRequest) LocalAddr() netip.AddrPort { return r.key.local }

// RemoteAddr returns the client's address and port.
func (r *TCPRequest) RemoteAddr() netip.AddrPort { return r.key.remote }

// SYN returns the SYN's header fields and options (MSS, window scale,
// SACK permitted, timestamps).
func (r *TCPRequest) SYN() wire.TCPFields { return r.syn }

// Decided reports whether the request has been accepted, rejected or
// dropped (or its forwarder closed).
func (r *TCPRequest) Decided() bool { return r.decided }

// decide marks r decided and frees its place under the cap.
func (r *TCPRequest) decide() bool {
	if r.decided {
		return false
	}
	r.decided = true
	if r.f.pending[r.key] == r {
		delete(r.f.pending, r.key)
	}
	return true
}

// Accept answers the SYN now, as a listener would (RFC 9293 §3.10.7.2):
// the connection goes to SYN-RECEIVED with its SYN-ACK queued, and is
// returned; it reports EventEstablished when the handshake completes.
// It fails with ErrInvalid if the request was already decided, with
// ErrAddrInUse if a connection with the same 4-tuple exists, and with
// the route's error if the client cannot be reached (the request is
// then dropped).
func (r *TCPRequest) Accept(now clock.Instant) (*TCPConn, error) {
	if !r.decide() {
		return nil, ErrInvalid
	}
	s := r.f.s
	st := &s.fwdStats
	if s.flows.conns.lookup(r.key) != nil {
		st.TCPDropped++
		return nil, ErrAddrInUse
	}
	rt, err := s.routeTo(r.key.remote.Addr(), r.nic)
	if err == nil && !s.isLocal(r.key.local.Addr()) && !rt.nic.cfg.Spoofing {
		err = ErrAddrNotAvail
	}
	if err != nil {
		st.TCPDropped++
		return nil, err
	}
	c := s.newConn(rt.nic, rt.nextHop)
	iss, tsOff := s.initialSeq(now, r.key.local, r.key.remote)
	ep := tcp.Endpoints{Local: r.key.local, Remote: r.key.remote, ISS: iss, TSOffset: tsOff, MTU: rt.nic.mtuFor(r.key.remote.Addr()), PathMTU: s.pathMTU(now, rt.nic, r.key.remote.Addr()), ECN: true}
	if err := c.conn.OpenPassive(now, ep, &r.syn); err != nil {
		st.TCPDropped++
		return nil, err
	}
	s.addConn(r.key, c)
	s.afterConn(c)
	st.TCPAccepted++
	return c, nil
}

// Reject is how a TCPRequest is refused.
type Reject uint8

// The ways to refuse a request.
const (
	// RejectReset answers with a RST, as a host with nothing listening
	// does (RFC 9293 §3.10.7.1); the client's connect fails with
	// ECONNREFUSED.
	RejectReset Reject = iota + 1
	// RejectPortUnreachable, RejectHostUnreachable,
	// RejectNetUnreachable and RejectAdminProhibited answer with an ICMP
	// destination unreachable of that code (RFC 792, RFC 1812
	// §5.2.7.1; for an IPv6 SYN ICMPv6's port unreachable, address
	// unreachable, no route and administratively prohibited, RFC 4443
	// §3.1), from the stack's address toward the client, as a router
	// would.
	RejectPortUnreachable
	RejectHostUnreachable
	RejectNetUnreachable
	RejectAdminProhibited
)

// Reject refuses the request as how says. It fails with ErrInvalid if
// the request was already decided or how is not a Reject.
func (r *TCPRequest) Reject(now clock.Instant, how Reject) error {
	var code, code6 uint8
	switch how {
	case RejectReset:
	case RejectPortUnreachable:
		code, code6 = wire.ICMPv4PortUnreachable, wire.ICMPv6PortUnreachable
	case RejectHostUnreachable:
		code, code6 = wire.ICMPv4HostUnreachable, wire.ICMPv6AddrUnreachable
	case RejectNetUnreachable:
		code, code6 = wire.ICMPv4NetUnreachable, wire.ICMPv6NoRoute
	case RejectAdminProhibited:
		code, code6 = wire.ICMPv4AdminProhibited, wire.ICMPv6AdminProhibited
	default:
		return ErrInvalid
	}
	if !r.decide() {
		return ErrInvalid
	}
	s := r.f.s
	s.fwdStats.TCPRejected++
	if how == RejectReset {
		s.sendReset(now, r.nic, r.key, &r.syn)
		return nil
	}
	if r.key.remote.Addr().Is6() {
		// RFC 4443 §3.1: the codes ip6tables' REJECT sends.
		s.sendICMPv6Error(now, r.nic, r.quote, wire.ICMPv6DestUnreachable, code6, 0, false, false)
		return nil
	}
	s.sendICMPError(now, r.quote, wire.ICMPv4DestUnreachable, code, 0)
	return nil
}

// Drop forgets the request without an answer; the client's next SYN
// makes a new one. It fails with ErrInvalid if the request was already
// decided.
func (r *TCPRequest) Drop() error {
	if !r.decide() {
		return ErrInvalid
	}
	r.f.s.fwdStats.TCPDropped++
	return nil
}

// UDPMapping is how a UDPForwarder groups datagrams into flows (RFC 4787
// §4.1).
type UDPMapping uint8

// The mappings.
const (
	// UDPEndpointIndependent makes one flow per client address and port,
	// whatever the destinations ("full cone": RFC 4787 §4.1's
	// endpoint-independent mapping); the owner sends the answers from
	// whichever address they come from (UDPEndpoint.WriteFrom).
	UDPEndpointIndependent UDPMapping = iota + 1
	// UDPPerTuple makes one flow per 4-tuple (address and port
	// dependent mapping).
	UDPPerTuple
)

// UDPForwarder takes the UDP datagrams no socket matched (forwarder
// mode) and groups them into flows: UDPEndpoints that are not bound but
// found by their mapping. It reports EventReadable when new flows wait
// for Next.
type UDPForwarder struct {
	sockBase
	s       *Stack
	mapping UDPMapping
	max     int
	flows   map[tuple]*UDPEndpoint
	queue   ring.Ring[*UDPEndpoint]
	closed  bool
}

// ForwardUDP makes the stack hand every UDP datagram that no socket
// matches to a flow of a new UDPForwarder instead of answering it with a
// port unreachable. At most maxFlows flows are open at once (0 means
// 4096); a datagram that would open another is dropped and counted
// (ForwardStats.UDPRefusedCap).
func (s *Stack) ForwardUDP(mapping UDPMapping, maxFlows int) (*UDPForwarder, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if mapping != UDPEndpointIndependent && mapping != UDPPerTuple {
		return nil, ErrInvalid
	}
	if s.flows.udpFwd != nil {
		return nil, ErrForwarderSet
	}
	if maxFlows <= 0 {
		maxFlows = 4096
	}
	f := &UDPForwarder{s: s, mapping: mapping, max: maxFlows, flows: map[tuple]*UDPEndpoint{}}
	s.flows.udpFwd = f
	return f, nil
}

// flowKey returns the key of the flow a datagram from remote to local
// belongs to.
func (f *UDPForwarder) flowKey(local, remote netip.AddrPort) tuple {
	if f.mapping == UDPEndpointIndependent {
		return tuple{remote: remote}
	}
	return tuple{local: local, remote: remote}
}

// offer takes a datagram no socket matched, and reports whether it did.
func (f *UDPForwarder) offer(p *ipRepr, u wire.UDP, local netip.AddrPort) bool {
	s := f.s
	remote := netip.AddrPortFrom(p.src, u.SrcPort())
	key := f.flowKey(local, remote)
	ep := f.flows[key]
	if ep == nil {
		if len(f.flows) >= f.max {
			s.fwdStats.UDPRefusedCap++
			return true
		}
		ep = &UDPEndpoint{s: s, addr: local, fwd: f, fkey: key}
		f.flows[key] = ep
		f.queue.PushBack(ep)
		s.fwdStats.UDPFlows++
		s.notify(f, EventReadable)
	}
	st := s.udpStats(p.dst)
	if !ep.deliver(remote, local, p.nic, u.Payload()) {
		st.RcvbufErrors++
		st.InErrors++
		return true
	}
	st.InDatagrams++
	s.notify(ep, EventReadable)
	return true
}

// Next returns the next new flow, or nil. Its first datagram is queued
// on it; LocalAddr is that datagram's destination.
func (f *UDPForwarder) Next() *UDPEndpoint {
	for {
		ep, ok := f.queue.PopFront()
		if !ok {
			return nil
		}
		if !ep.closed {
			return ep
		}
	}
}

// Flows returns the number of open flows.
func (f *UDPForwarder) Flows() int { return len(f.flows) }

// forget removes a closed flow.
func (f *UDPForwarder) forget(ep *UDPEndpoint) {
	if f.flows[ep.fkey] == ep {
		delete(f.flows, ep.fkey)
	}
}

// Close stops forwarding and closes every flow.
func (f *UDPForwarder) Close() {
	if f.closed {
		return
	}
	f.closed = true
	if f.s.flows.udpFwd == f {
		f.s.flows.udpFwd = nil
	}
	eps := make([]*UDPEndpoint, 0, len(f.flows))
	for _, ep := range f.flows {
		eps = append(eps, ep)
	}
	// In key order, so the events come out alike on every run.
	sortEndpoints(eps)
	for _, ep := range eps {
		ep.Close()
	}
	f.queue.Free()
	f.s.notify(f, EventClosed|EventReadable)
}

func sortEndpoints(eps []*UDPEndpoint) {
	for i := 1; i < len(eps); i++ {
		for j := i; j > 0 && eps[j].fkey.compare(eps[j-1].fkey) < 0; j-- {
			eps[j], eps[j-1] = eps[j-1], eps[j]
		}
	}
}

// Client returns the address and port of the client of a forwarder's
// flow (the source of its datagrams); for other sockets, the zero value.
func (u *UDPEndpoint) Client() netip.AddrPort { return u.fkey.remote }

// ReadFromTo is ReadFrom that also returns the datagram's destination,
// which differs between datagrams of an endpoint-independent flow.
func (u *UDPEndpoint) ReadFromTo(p []byte) (n int, from, to netip.AddrPort, err error) {
	if u.closed {
		return 0, from, to, ErrClosed
	}
	d, ok := u.q.PopFront()
	if !ok {
		return 0, from, to, ErrWouldBlock
	}
	u.qBytes -= d.n
	n = copy(p, d.buf[:d.n])
	u.s.putBuf(d.buf)
	return n, d.from, d.to, nil
}

// WriteFrom sends p as one datagram from `from` to `to`. From may be any
// address of the stack or, through a NIC with Spoofing, any at all: a
// forwarder's flow answers its client from the address the client wrote
// to. It fails with ErrAddrNotAvail for a source the route's NIC may not
// use.
func (u *UDPEndpoint) WriteFrom(now clock.Instant, p []byte, from, to netip.AddrPort) (int, error) {
	if u.closed {
		return 0, ErrClosed
	}
	if len(p) > maxUDPPayload {
		return 0, ErrMsgSize
	}
	if !supported(to.Addr()) || to.Port() == 0 || !from.Addr().IsValid() || from.Port() == 0 {
		return 0, ErrInvalid
	}
	return u.send(now, p, from, to)
}

// EchoRequest is an ICMP echo request to an address the stack does not
// hold, as an EchoForwarder hands it over: ICMPv4's (RFC 792) or
// ICMPv6's (RFC 4443 §4.1), by the addresses' family.
type EchoRequest struct {
	// Src is the client, Dst the address it pinged.
	Src, Dst netip.Addr
	ID, Seq  uint16
	TTL      uint8 // or the IPv6 hop limit
	// Data is the echo data (the owner's copy).
	Data []byte
}

// EchoForwarder takes echo requests to foreign addresses (forwarder
// mode), up to a queue of maxQueue; it reports EventReadable when some
// wait for Next.
type EchoForwarder struct {
	sockBase
	s      *Stack
	max    int
	queue  ring.Ring[EchoRequest]
	closed bool
}

// ForwardEcho makes the stack queue echo requests to addresses it does
// not hold (a promiscuous NIC's) for a new EchoForwarder, instead of
// answering them itself; the owner answers with SendEchoReply. At most
// maxQueue requests wait (0 means 256); more are dropped and counted
// (ForwardStats.EchoQueueDrops).
func (s *Stack) ForwardEcho(maxQueue int) (*EchoForwarder, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if s.host.echoFwd != nil {
		return nil, ErrForwarderSet
	}
	if maxQueue <= 0 {
		maxQueue = 256
	}
	f := &EchoForwarder{s: s, max: maxQueue}
	s.host.echoFwd = f
	return f, nil
}

// offer queues an echo request to a foreign address, of either family:
// its identifier, sequence number and data.
func (f *EchoForwarder) offer(p *ipRepr, id, seq uint16, data []byte) {
	st := &f.s.fwdStats
	if f.queue.Len() >= f.max {
		st.EchoQueueDrops++
		return
	}
	st.EchoRequests++
	f.queue.PushBack(EchoRequest{
		Src: p.src, Dst: p.dst, ID: id, Seq: seq, TTL: p.ttl,
		Data: append([]byte(nil), data...),
	})
	f.s.notify(f, EventReadable)
}

// Next returns the next echo request.
func (f *EchoForwarder) Next() (EchoRequest, bool) { return f.queue.PopFront() }

// Close stops forwarding echo requests; the stack answers them again.
func (f *EchoForwarder) Close() {
	if f.closed {
		return
	}
	f.closed = true
	if f.s.host.echoFwd == f {
		f.s.host.echoFwd = nil
	}
	f.queue.Free()
	f.s.notify(f, EventClosed|EventReadable)
}

// SendEchoReply sends an echo reply (RFC 792; ICMPv6's, RFC 4443 §4.2,
// when the addresses are IPv6) from `from` to `to` with the given
// identifier, sequence number and data: the answer to an EchoRequest,
// from the address that was pinged. From must be the stack's or go out
// of a NIC with Spoofing (else ErrAddrNotAvail); the two addresses must
// be of one family and from a unicast address (else ErrInvalid). A
// link-local `to` needs its zone.
func (s *Stack) SendEchoReply(now clock.Instant, from, to netip.Addr, id, seq uint16, data []byte) error {
	if !supported(to) || from.Is4() != to.Is4() || from.IsMulticast() || from.IsUnspecified() {
		return ErrInvalid
	}
	if len(data) > maxUDPPayload {
		return ErrMsgSize
	}
	st := &s.host.net
	rt, err := s.routeTo(to, nil)
	if err != nil {
		if to.Is6() {
			st.Ip6OutNoRoutes++
		} else {
			st.OutNoRoutes++
		}
		return err
	}
	if !s.isLocal(from) && !rt.nic.cfg.Spoofing {
		return ErrAddrNotAvail
	}
	from, to = from.WithZone(""), to.WithZone("")
	hl := ipHeaderLen(to)
	buf := s.getBuf(hl + wire.ICMPv4HeaderLen + len(data))
	defer s.putBuf(buf)
	var l int
	proto := uint8(wire.ProtoICMP)
	if to.Is6() {
		m := wire.ICMPv6Fields{Type: wire.ICMPv6EchoReply, ID: id, Seq: seq, Payload: data}
		l = m.Encode(buf[hl:], from, to)
		proto = wire.ProtoICMPv6
		st.Icmp6OutMsgs++
		st.Icmp6OutEchoReplies++
	} else {
		m := wire.ICMPv4Fields{Type: wire.ICMPv4EchoReply, ID: id, Seq: seq, Payload: data}
		l = m.Encode(buf[hl:])
		st.OutMsgs++
		st.OutEchoReps++
	}
	s.fwdStats.EchoReplies++
	rt.src = from
	s.sendPacket(now, &rt, to, proto, buf, l, false)
	return nil
}
