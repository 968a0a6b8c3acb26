package stack

import (
	"encoding/binary"
	"io"
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/ring"
	"github.com/ustack/ustack/internal/wheel"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// tuple identifies a TCP connection: local and remote address and port.
type tuple struct {
	local, remote netip.AddrPort
}

// compare orders tuples by local, then remote address and port.
func (t tuple) compare(u tuple) int {
	if c := t.local.Compare(u.local); c != 0 {
		return c
	}
	return t.remote.Compare(u.remote)
}

// TCPConn is a TCP connection of a Stack: a tcp.Conn plus the stack's
// bookkeeping (demultiplexing key, route, timers, events). Its methods are
// the non-blocking socket calls; the runtime and the simulator both use
// them.
type TCPConn struct {
	sockBase
	s *Stack
	// conn is the connection's core; nil while it is parked, when
	// parked stands for it (park, unpark).
	conn     *tcp.Conn
	parked   *tcp.Parked
	nic      *nic
	nextHop  netip.Addr
	listener *TCPListener // while in the listener's queues
	// addrs is the 4-tuple, set when the connection enters the flow
	// table and never changed: it is read without the owner's lock (the
	// runtime's address getters) while the core is parked and unparked.
	// The fields after it fill its last word.
	addrs connAddrs
	// ackSeen is the highest acknowledgment number seen from the peer,
	// confirmed when the neighbour was last told of it (reachability
	// confirmation, RFC 4861 §7.3.1).
	ackSeen  wire.Seq
	ackKnown bool
	accepted bool
	inTable  bool
	dirty    bool
	// timer is the connection's entry in the stack's timer wheel
	// (connTimers), armed at the core's NextDeadline.
	timer     wheel.Entry[*TCPConn]
	confirmed clock.Instant
	// pmtuGen is the path MTU cache's generation the connection's MSS
	// last followed (syncPMTU).
	pmtuGen uint64
}

func (s *Stack) newConn(n *nic, nextHop netip.Addr) *TCPConn {
	return &TCPConn{
		s:       s,
		conn:    tcp.NewConn(s.flows.tcpEnv),
		nic:     n,
		nextHop: nextHop,
		inTable: true,
		pmtuGen: s.host.pmtu.gen,
	}
}

// afterConn does the stack's bookkeeping after any call into c's core:
// events, deadline, output, and removal once CLOSED.
// key returns the connection's 4-tuple, its key in the flow table. The
// core connection holds the addresses (from its Endpoints), so they are
// not kept twice; it is valid once the core was opened, which is before
// the connection enters the table.
func (c *TCPConn) key() tuple { return c.addrs.tuple() }

// connAddrs is a 4-tuple in 38 bytes (a tuple of netip.AddrPorts is 64):
// the addresses as 16 bytes (IPv4 mapped), the ports, the family.
type connAddrs struct {
	l, r         [16]byte
	lport, rport uint16
	v4           uint16 // 1 for IPv4: 2 bytes, so that the struct has no tail padding
}

func (a *connAddrs) set(t tuple) {
	a.l, a.lport = t.local.Addr().As16(), t.local.Port()
	a.r, a.rport = t.remote.Addr().As16(), t.remote.Port()
	a.v4 = 0
	if t.local.Addr().Is4() {
		a.v4 = 1
	}
}

func (a *connAddrs) tuple() tuple {
	l, r := netip.AddrFrom16(a.l), netip.AddrFrom16(a.r)
	if a.v4 != 0 {
		l, r = l.Unmap(), r.Unmap()
	}
	return tuple{netip.AddrPortFrom(l, a.lport), netip.AddrPortFrom(r, a.rport)}
}

// addConn enters c into the flow table under key, its 4-tuple.
func (s *Stack) addConn(key tuple, c *TCPConn) {
	c.addrs.set(key)
	s.flows.conns.add(c)
}

// core returns c's tcp.Conn, unparking it first if it is parked: every
// call into the core goes through it but the input path's, which checks
// for itself.
func (c *TCPConn) core() *tcp.Conn {
	if c.conn == nil {
		c.s.unpark(c.s.flows.lastTick, c)
		// Its timers (keep-alive, idle) go back into the wheel even if
		// the call that follows does not report to afterConn.
		c.s.afterConnQuiet(c)
	}
	return c.conn
}

// park parks c if its core is parkable (tcp.Conn.Park): its core, loss
// recovery and controller go back to the Env's pools and a tcp.Parked
// record stands for them, in the timer wheel only for its keep-alive. A
// connection with output to poll does not park. The timer loop asks after every HandleTimeout: the core's idle
// timer fires when it may have become parkable.
func (s *Stack) park(now clock.Instant, c *TCPConn) bool {
	if c.dirty || !c.inTable {
		return false
	}
	p := c.conn.Park(now)
	if p == nil {
		return false
	}
	c.conn, c.parked = nil, p
	s.flows.timers.update(c, p.NextDeadline())
	return true
}

// unpark rebuilds c's core from its record (tcp.Env.Unpark). The caller
// goes on as with any connection, afterConn included.
//
// now is the time of the segment or timer that unparks it, or for a call
// the time of the stack's last HandleTimeout (flows.lastTick).
func (s *Stack) unpark(now clock.Instant, c *TCPConn) {
	k := c.key()
	c.conn = s.flows.tcpEnv.Unpark(now, c.parked, k.local, k.remote)
	c.parked = nil
}

func (s *Stack) afterConn(c *TCPConn) {
	s.markDirty(c)
	s.afterConnQuiet(c)
}

// markDirty puts c among the connections with output (pollConns), once.
func (s *Stack) markDirty(c *TCPConn) {
	if !c.dirty {
		c.dirty = true
		s.flows.dirty.PushBack(c)
	}
}

// afterConnQuiet is afterConn without marking c as having output.
func (s *Stack) afterConnQuiet(c *TCPConn) {
	ev := tcpEvents(c.conn.TakeEvents())
	if ev&EventEstablished != 0 && c.listener != nil && !c.accepted {
		l := c.listener
		l.synQueue--
		l.acceptQ.PushBack(c)
		c.accepted = true
		s.notify(l, EventReadable)
		ev &^= EventEstablished
	}
	// A connection still in a listener's queues has no owner to tell;
	// Accept reports what it missed. One that dies there is never
	// handed out, so it is never reported at all.
	queued := c.listener != nil
	if c.conn.State() == tcp.Closed {
		if c.listener != nil {
			// Died before being accepted.
			l := c.listener
			if !c.accepted {
				l.synQueue--
			} else {
				l.removeQueued(c)
			}
			c.listener = nil
		}
		if c.inTable && !c.dirty {
			c.inTable = false
			s.flows.conns.remove(c)
		}
		s.flows.timers.remove(c)
	} else {
		s.flows.timers.update(c, c.conn.NextDeadline())
	}
	if !queued {
		s.notify(c, ev)
	}
}

// handleTCP demultiplexes a segment to its connection or listener
// (RFC 9293 §3.10.7).
func (s *Stack) handleTCP(now clock.Instant, p *ipRepr) {
	st := &s.flows.tcpEnv.Stats
	st.InSegs++
	b := p.payload
	v, err := wire.ParseTCP(b)
	if err != nil {
		st.InBadHeader++
		st.InErrs++
		return
	}
	if !p.dataValid && wire.TCPChecksum(b, p.src, p.dst) != 0 {
		st.InCsumErrors++
		st.InErrs++
		return
	}
	var seg wire.TCPFields
	if err := seg.Decode(v); err != nil {
		st.InBadHeader++
		st.InErrs++
		return
	}
	key := tuple{
		local:  netip.AddrPortFrom(p.dst, seg.DstPort),
		remote: netip.AddrPortFrom(p.src, seg.SrcPort),
	}
	var reopenISS wire.Seq
	reopen := false
	if c := s.flows.conns.lookup(key); c != nil {
		if c.conn == nil {
			if s.parkedSegment(now, c, &seg) {
				return
			}
			s.unpark(now, c)
		}
		if c.conn.State() == tcp.SynReceived && c.listener != nil && seg.Flags&wire.TCPFlagACK != 0 &&
			seg.Flags&(wire.TCPFlagSYN|wire.TCPFlagRST) == 0 && c.listener.acceptFull() {
			// The handshake would complete into a full accept queue:
			// drop the ACK and let the SYN-ACK be retransmitted, as
			// Linux does (ListenOverflows).
			st.ListenOverflows++
			st.ListenDrops++
			return
		}
		if c.conn.HandleSegmentECN(now, &seg, tcp.ECN(p.ecn)) != tcp.Reopen {
			s.confirmReachable(now, c, &seg)
			s.afterConn(c)
			return
		}
		reopenISS = c.conn.ReopenISS()
		reopen = true
		s.afterConn(c)
	}
	l := s.listenerFor(p, key.local)
	if l == nil || l.closed {
		if f := s.flows.tcpFwd; f != nil && f.offer(p, key, &seg) {
			return // a forwarder took the SYN (forward.go)
		}
		// RFC 9293 §3.10.7.1: no connection and no listener.
		st.NoListener++
		s.sendReset(now, p.nic, key, &seg)
		return
	}
	s.listen(now, p.nic, l, key, &seg, reopen, reopenISS)
}

// parkedSegment gives seg to c's parked record (tcp.Env.HandleParked:
// a peer's keep-alive probe, or an ACK such as the answer to ours); it
// returns false, having done nothing, when the record cannot take seg
// and c must be unparked. An answer goes out as the core's would: c
// joins the connections with output, and pollConns asks the record for
// it (tcp.Env.PollParked).
func (s *Stack) parkedSegment(now clock.Instant, c *TCPConn, seg *wire.TCPFields) bool {
	if c.pmtuGen != s.host.pmtu.gen {
		return false // the core follows the path MTU first (syncPMTU)
	}
	send, ok := s.flows.tcpEnv.HandleParked(now, c.parked, seg)
	if !ok {
		return false
	}
	s.confirmReachable(now, c, seg)
	if send {
		s.markDirty(c)
	}
	return true
}

// parkedTimeout runs c's parked record's keep-alive timer
// (tcp.Env.TimeoutParked) and puts it back in the timer wheel; a probe
// goes out as parkedSegment's answer does. It returns false, having done
// nothing, when c must be unparked for it (its probes are used up).
func (s *Stack) parkedTimeout(now clock.Instant, c *TCPConn) bool {
	if c.pmtuGen != s.host.pmtu.gen {
		return false
	}
	send, ok := s.flows.tcpEnv.TimeoutParked(now, c.parked)
	if !ok {
		return false
	}
	if send {
		s.markDirty(c)
	}
	s.flows.timers.update(c, c.parked.NextDeadline())
	return true
}

// confirmInterval bounds how often one connection confirms its
// neighbour's reachability: often enough for any reachable time, rare
// enough to cost one lookup a second at most.
const confirmInterval = time.Second

// confirmReachable tells the neighbour cache that c's next hop is
// reachable when seg acknowledges data not acknowledged before: the
// "hint from upper-layer protocols" of RFC 4861 §7.3.1, which spares a
// busy connection's neighbour the DELAY and PROBE states (Linux's
// dst_confirm_neigh, from tcp_ack). At most once a confirmInterval.
func (s *Stack) confirmReachable(now clock.Instant, c *TCPConn, seg *wire.TCPFields) {
	if seg.Flags&wire.TCPFlagACK == 0 {
		return
	}
	if !c.ackKnown {
		c.ackSeen, c.ackKnown = seg.Ack, true
		return
	}
	if !seg.Ack.GreaterThan(c.ackSeen) {
		return
	}
	c.ackSeen = seg.Ack
	if c.confirmed != 0 && now.Sub(c.confirmed) < confirmInterval {
		return
	}
	c.confirmed = max(now, 1)
	if c.nic != nil && c.nic.cfg.Medium == link.Ethernet {
		s.nlock()
		s.host.neigh.Confirm(now, c.nic.id, c.nextHop)
		s.nunlock()
	}
}

// listen is RFC 9293 §3.10.7.2, LISTEN state.
func (s *Stack) listen(now clock.Instant, n *nic, l *TCPListener, key tuple, seg *wire.TCPFields, reopen bool, iss wire.Seq) {
	st := &s.flows.tcpEnv.Stats
	f := seg.Flags
	switch {
	case f&wire.TCPFlagRST != 0:
		return
	case f&wire.TCPFlagACK != 0:
		if f&wire.TCPFlagSYN == 0 && s.cookieACK(now, n, l, key, seg) {
			return
		}
		// An ACK for a connection we do not have: <SEQ=SEG.ACK><CTL=RST>.
		s.sendReset(now, n, key, seg)
		return
	case f&wire.TCPFlagSYN == 0:
		return
	}
	if l.acceptFull() {
		st.ListenOverflows++
		st.ListenDrops++
		return
	}
	// RFC 4987 §3.6: with the SYN queue full (or always, by option),
	// answer with a SYN cookie and keep nothing. A SYN reopening a
	// TIME-WAIT connection keeps the normal path, as in Linux
	// (tcp_conn_request's isn).
	mode := s.cfg.SynCookies
	if !reopen && mode != SynCookiesOff && (mode == SynCookiesAlways || l.synQueue >= s.cfg.SynBacklog) {
		s.sendCookie(now, n, l, key, seg)
		return
	}
	if l.synQueue >= s.cfg.SynBacklog {
		st.SynQueueDrops++
		st.ListenDrops++
		return
	}
	rt, err := s.routeTo(key.remote.Addr(), n)
	if err != nil {
		st.ListenDrops++
		return
	}
	newISS, tsOff := s.initialSeq(now, key.local, key.remote)
	if !reopen {
		iss = newISS
	}
	c := s.newConn(rt.nic, rt.nextHop)
	ep := tcp.Endpoints{Local: key.local, Remote: key.remote, ISS: iss, TSOffset: tsOff, MTU: rt.nic.mtuFor(key.remote.Addr()), PathMTU: s.pathMTU(now, rt.nic, key.remote.Addr()), ECN: true}
	if err := c.conn.OpenPassive(now, ep, seg); err != nil {
		return
	}
	c.listener = l
	l.synQueue++
	s.addConn(key, c)
	s.afterConn(c)
}

// sendCookie answers a SYN at l with a SYN-ACK carrying a SYN cookie
// (RFC 4987 §3.6) and keeps no state but the time, which makes l check
// ACKs as cookies for the next tcp.CookieValid.
func (s *Stack) sendCookie(now clock.Instant, n *nic, l *TCPListener, key tuple, syn *wire.TCPFields) {
	ep := tcp.Endpoints{Local: key.local, Remote: key.remote, TSOffset: s.tsOffset(key.local, key.remote), MTU: n.mtuFor(key.remote.Addr()), PathMTU: s.pathMTU(now, n, key.remote.Addr()), ECN: true}
	var synack wire.TCPFields
	s.flows.cookie.SynAck(now, ep, syn, &synack)
	l.cookieSent = now
	s.flows.cookieAt, s.flows.cookieAny = now, true
	s.sendTCPControl(now, n, key, &synack)
}

// cookieACK checks an ACK that arrived at l for no connection as the
// answer to a cookie SYN-ACK, if l sent cookies lately (Linux's
// cookie_v4_check), and reports whether it took the segment: a valid
// cookie opens a connection straight into l's accept queue (or, if that
// is full, the segment is dropped and counted, ListenOverflows, as for
// any handshake: the peer's next segment brings the cookie again).
// Otherwise the caller answers the ACK as RFC 9293 §3.10.7.2 says.
func (s *Stack) cookieACK(now clock.Instant, n *nic, l *TCPListener, key tuple, seg *wire.TCPFields) bool {
	if s.cfg.SynCookies == SynCookiesOff || !tcp.CookiesRecent(now, l.cookieSent) {
		return false
	}
	st := &s.flows.tcpEnv.Stats
	ep := tcp.Endpoints{Local: key.local, Remote: key.remote, TSOffset: s.tsOffset(key.local, key.remote), MTU: n.mtuFor(key.remote.Addr()), PathMTU: s.pathMTU(now, n, key.remote.Addr()), ECN: true}
	o, ok := s.flows.cookie.Check(now, ep, seg)
	if !ok {
		return false
	}
	if l.acceptFull() {
		st.ListenOverflows++
		st.ListenDrops++
		return true
	}
	rt, err := s.routeTo(key.remote.Addr(), n)
	if err != nil {
		st.ListenDrops++
		return true
	}
	c := s.newConn(rt.nic, rt.nextHop)
	ep.ISS = seg.Ack - 1
	if err := c.conn.OpenCookie(now, ep, seg, o); err != nil {
		return true
	}
	// In the SYN queue for an instant: afterConn sees the handshake
	// complete and moves the connection to the accept queue.
	c.listener = l
	l.synQueue++
	s.addConn(key, c)
	s.afterConn(c)
	return true
}

// sendReset answers seg, which arrived on via for key and has no
// connection (RFC 9293 §3.10.7.1).
func (s *Stack) sendReset(now clock.Instant, via *nic, key tuple, seg *wire.TCPFields) {
	var rst wire.TCPFields
	if !tcp.ResetFor(seg, &rst) {
		return
	}
	s.flows.tcpEnv.Stats.OutRsts++
	s.flows.tcpEnv.Stats.OutSegs++
	s.sendTCPControl(now, via, key, &rst)
}

// sendTCPControl sends a segment that belongs to no connection (a RST, a
// SYN-ACK with a cookie) in answer to one that arrived on via.
func (s *Stack) sendTCPControl(now clock.Instant, via *nic, key tuple, seg *wire.TCPFields) {
	dst := key.remote.Addr()
	rt, err := s.routeTo(dst, via)
	if err != nil {
		*s.host.ctr(dst).outNoRoutes++
		return
	}
	n := rt.nic
	buf := s.getBuf(n.hdr + n.cfg.MTU)
	defer s.putBuf(buf)
	t := buf[ipHeaderLen(dst):]
	l := seg.Encode(t)
	binary.BigEndian.PutUint16(t[16:], wire.TCPChecksum(t[:l], key.local.Addr(), dst))
	rt.src = key.local.Addr()
	s.sendPacket(now, &rt, dst, wire.ProtoTCP, buf, l, true)
}

// tcpError hands an ICMP error to the connection whose segment it quotes
// (RFC 1122 §4.2.3.9, RFC 5461).
func (s *Stack) tcpError(now clock.Instant, e *transportError) {
	h := e.header
	key := tuple{
		local:  netip.AddrPortFrom(e.src, binary.BigEndian.Uint16(h[0:])),
		remote: netip.AddrPortFrom(e.dst, binary.BigEndian.Uint16(h[2:])),
	}
	c := s.flows.conns.lookup(key)
	if c == nil {
		return
	}
	if c.conn == nil {
		s.unpark(now, c)
	}
	// RFC 5927 §4.1: an error is acted on only if the sequence number it
	// quotes is in flight; a forged or stale one is counted and dropped.
	seq := wire.Seq(binary.BigEndian.Uint32(h[4:]))
	var err error
	switch e.kind {
	case errPortUnreachable, errProtoUnreachable:
		err = tcp.ErrConnRefused
	case errPacketTooBig:
		// RFC 1191, RFC 8201: the connection checks the sequence number
		// and lowers its MSS; only then does the cache learn the MTU.
		mtu := s.clampPMTU(e.dst, int(e.mtu))
		if c.conn.HandlePacketTooBig(now, seq, mtu) {
			// The connection sees the cache change too (syncPMTU):
			// one still opening takes it for the MSS it will send.
			s.learnPMTU(now, e.src, e.dst, mtu)
		}
		s.afterConn(c)
		return
	default:
		err = tcp.ErrHostUnreachable
	}
	if !c.conn.ICMPInWindow(seq) {
		s.flows.tcpEnv.Stats.OutOfWindowICMPs++
		return
	}
	// HandleICMPError acts only while connecting (RFC 1122 §4.2.3.9:
	// soft errors do not abort an established connection).
	c.conn.HandleICMPError(now, err)
	s.afterConn(c)
}

// Connect opens a connection to raddr from laddr (whose address and port
// may be zero: the stack picks the source address by route and an
// ephemeral port by RFC 6056).
func (s *Stack) Connect(now clock.Instant, laddr, raddr netip.AddrPort) (*TCPConn, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if !supported(raddr.Addr()) || raddr.Port() == 0 {
		return nil, ErrInvalid
	}
	if a := raddr.Addr(); a.IsMulticast() || a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || s.isDirectedBroadcast(a) {
		// RFC 9293 MUST-46 (RFC 1122 §4.2.3.10): an OPEN to a broadcast
		// or multicast address is rejected; ENETUNREACH as in Linux
		// (ip_route_connect refuses RTCF_BROADCAST|RTCF_MULTICAST).
		return nil, ErrNetUnreachable
	}
	if la := laddr.Addr(); la.IsValid() && !la.IsUnspecified() && la.Is4() != raddr.Addr().Is4() {
		return nil, ErrAFNoSupport
	}
	rt, err := s.routeTo(raddr.Addr(), nil)
	if err != nil {
		return nil, err
	}
	// The connection is known by its addresses without zones: a
	// packet carries none (the NIC is the connection's).
	raddr = netip.AddrPortFrom(raddr.Addr().WithZone(""), raddr.Port())
	n, nextHop, src := rt.nic, rt.nextHop, rt.src
	if la := laddr.Addr().WithZone(""); la.IsValid() && !la.IsUnspecified() {
		if !s.isLocal(la) && !n.cfg.Spoofing {
			return nil, ErrAddrNotAvail
		}
		src = la
	}
	port := laddr.Port()
	if port == 0 {
		port, err = s.ephemeralTCP(now, src, raddr)
		if err != nil {
			return nil, err
		}
	}
	key := tuple{local: netip.AddrPortFrom(src, port), remote: raddr}
	reopenISS, reopen := wire.Seq(0), false
	if old := s.flows.conns.lookup(key); old != nil {
		if reopenISS, reopen = s.reuseTimeWait(now, old); !reopen {
			return nil, ErrAddrInUse
		}
	}
	c := s.newConn(n, nextHop)
	iss, tsOff := s.initialSeq(now, key.local, raddr)
	if reopen {
		iss = reopenISS
	}
	ep := tcp.Endpoints{Local: key.local, Remote: raddr, ISS: iss, TSOffset: tsOff, MTU: n.mtuFor(raddr.Addr()), PathMTU: s.pathMTU(now, n, raddr.Addr()), ECN: true}
	if err := c.conn.Connect(now, ep); err != nil {
		return nil, err
	}
	s.addConn(key, c)
	s.afterConn(c)
	return c, nil
}

// initialSeq returns a new connection's ISS (RFC 6528) and timestamp
// offset, or what Config.InitialSeq says.
func (s *Stack) initialSeq(now clock.Instant, local, remote netip.AddrPort) (wire.Seq, uint32) {
	if s.cfg.InitialSeq != nil {
		return s.cfg.InitialSeq(local, remote)
	}
	return s.flows.isn.ISN(now, local, remote), s.flows.isn.TSOffset(local, remote)
}

// tsOffset returns the timestamp offset initialSeq gives a connection
// between local and remote.
func (s *Stack) tsOffset(local, remote netip.AddrPort) uint32 {
	if s.cfg.InitialSeq != nil {
		_, off := s.cfg.InitialSeq(local, remote)
		return off
	}
	return s.flows.isn.TSOffset(local, remote)
}

// reuseTimeWait ends old, the holder of a 4-tuple a new outgoing
// connection wants, if it is in TIME-WAIT and may be reused
// (Config.TimeWaitReuse, tcp.Conn.ReuseTimeWait), and returns the ISS
// for the new connection; the table entry is the new connection's once
// it is added (afterConnQuiet removes old only while it is still there).
func (s *Stack) reuseTimeWait(now clock.Instant, old *TCPConn) (wire.Seq, bool) {
	if s.cfg.TimeWaitReuse < 0 || old.conn == nil {
		// A parked connection is ESTABLISHED: never reusable, and not
		// unparked to say so (the runtime's port search asks about
		// every port it tries).
		return 0, false
	}
	iss, ok := old.conn.ReuseTimeWait(now, s.cfg.TimeWaitReuse)
	if ok {
		s.afterConnQuiet(old)
	}
	return iss, ok
}

// timeWaitReusable reports whether reuseTimeWait would end c.
func (s *Stack) timeWaitReusable(now clock.Instant, c *TCPConn) bool {
	return s.cfg.TimeWaitReuse >= 0 && c.conn != nil && c.conn.TimeWaitReusable(now, s.cfg.TimeWaitReuse)
}

// ephemeralTCP picks a local port for a connection from src to dst with
// RFC 6056 §3.3.4 (Algorithm 4, "Double-Hash Port Selection"): the
// search starts at an offset that is a keyed hash of the destination
// plus the next_ephemeral counter another part of the hash chooses, so
// ports are hard to guess but reused fairly. A port is taken per 4-tuple,
// as Linux's __inet_hash_connect does: one held by a connection to
// another destination is free for this one, and one whose connection to
// this destination is in TIME-WAIT is free once reuseTimeWait allows
// (Connect then ends that connection).
func (s *Stack) ephemeralTCP(now clock.Instant, src netip.Addr, dst netip.AddrPort) (uint16, error) {
	f := &s.flows
	lo, num := s.ephemeralRange()
	// The hash input is the addresses as the family has them (4 or 16
	// bytes each) and the port.
	var b [2*16 + 2]byte
	k := putAddr(b[:], src)
	k += putAddr(b[k:], dst.Addr())
	binary.BigEndian.PutUint16(b[k:], dst.Port())
	// The counter the search starts from is one of a table, chosen by
	// other bits of the hash (§3.3.4, Algorithm 4, as Linux's
	// table_perturb): with one counter for all destinations, after each
	// lap of the range the searches to a destination start on the ports
	// its earlier connections hold, and walk past more of them each lap.
	if f.nextEph == nil {
		f.nextEph = new([portTableSize]uint32)
		for i := range f.nextEph {
			f.nextEph[i] = s.rng.Uint32()
		}
	}
	h := f.portK.Sum64(b[:k+2])
	offset, next := uint32(h), &f.nextEph[(h>>32)%uint64(len(f.nextEph))]
	for i := uint32(0); i < num; i++ {
		port := uint16(lo + (offset+*next+i)%num)
		local := netip.AddrPortFrom(src, port)
		if c := f.conns.lookup(tuple{local, dst}); c != nil && !s.timeWaitReusable(now, c) {
			continue
		}
		if _, listened := f.listeners.lookup(local); listened {
			continue
		}
		*next += i + 1
		return port, nil
	}
	return 0, ErrNoPorts
}

// portTableSize is how many next_ephemeral counters ephemeralTCP keeps
// (RFC 6056 Algorithm 4's table; Linux has 65,536): destinations that
// share one share its laps.
const portTableSize = 1024

// putAddr writes a's bytes (4 for IPv4, 16 for IPv6) into b and returns
// how many.
func putAddr(b []byte, a netip.Addr) int {
	if a.Is4() {
		a4 := a.As4()
		return copy(b, a4[:])
	}
	a16 := a.As16()
	return copy(b, a16[:])
}

// Read reads received data (see tcp.Conn.Read); ErrWouldBlock if there
// is none yet.
//
// A parked connection answers without being unparked: it holds nothing
// to read, so its core would return ErrWouldBlock (io.EOF after
// CloseRead) and change nothing.
func (c *TCPConn) Read(p []byte) (int, error) {
	if c.conn == nil {
		if c.parked.Readable() {
			return 0, io.EOF
		}
		return 0, ErrWouldBlock
	}
	n, err := c.conn.Read(p)
	c.s.afterConn(c)
	return n, sockErr(err)
}

// Write queues data to send (see tcp.Conn.Write); ErrWouldBlock if
// there is no room.
func (c *TCPConn) Write(p []byte) (int, error) {
	n, err := c.core().Write(p)
	if n > 0 {
		c.s.afterConn(c)
	}
	return n, sockErr(err)
}

// CloseWrite sends a FIN after the data written (shutdown(SHUT_WR)).
func (c *TCPConn) CloseWrite() error {
	err := c.core().CloseWrite()
	c.s.afterConn(c)
	return err
}

// CloseRead stops reading (shutdown(SHUT_RD)).
func (c *TCPConn) CloseRead() error {
	err := c.core().CloseRead()
	c.s.afterConn(c)
	return err
}

// Close closes the connection: it shuts down in the background, or is
// reset if unread data remains (see tcp.Conn.Close).
func (c *TCPConn) Close() error {
	err := c.core().Close()
	c.s.afterConn(c)
	return err
}

// Abort resets the connection (close with SO_LINGER 0).
func (c *TCPConn) Abort() {
	c.core().Abort()
	c.s.afterConn(c)
}

// SetNoDelay sets TCP_NODELAY.
func (c *TCPConn) SetNoDelay(on bool) {
	c.core().SetNoDelay(on)
	c.s.afterConn(c)
}

// SetKeepAlive sets SO_KEEPALIVE and its idle time, interval and count
// (zero values keep the current ones).
func (c *TCPConn) SetKeepAlive(now clock.Instant, on bool, idle, interval time.Duration, count int) {
	c.core().SetKeepAlive(now, on, idle, interval, count)
	c.s.afterConn(c)
}

// KeepAlive reports whether SO_KEEPALIVE is on.
func (c *TCPConn) KeepAlive() bool {
	if c.conn == nil {
		return c.parked.KeepAlive()
	}
	return c.conn.KeepAlive()
}

// SetCongestionControl selects the connection's congestion controller by
// the name it is registered under in package tcp/cc (TCP_CONGESTION; see
// tcp.Conn.SetCongestionControl). An unknown name fails with an error
// matching syscall.ENOENT.
func (c *TCPConn) SetCongestionControl(name string) error {
	err := c.core().SetCongestionControl(name)
	c.s.afterConn(c)
	return err
}

// CongestionControl returns the name of the connection's congestion
// controller.
func (c *TCPConn) CongestionControl() string {
	if c.conn == nil {
		return c.parked.CongestionControl()
	}
	return c.conn.CongestionControl()
}

// SetReadBuffer sets SO_RCVBUF.
func (c *TCPConn) SetReadBuffer(n int) { c.core().SetReadBuffer(n) }

// SetWriteBuffer sets SO_SNDBUF.
func (c *TCPConn) SetWriteBuffer(n int) { c.core().SetWriteBuffer(n) }

// State returns the connection's state.
func (c *TCPConn) State() tcp.State {
	if c.conn == nil {
		return tcp.Established
	}
	return c.conn.State()
}

// Info returns a snapshot like TCP_INFO.
func (c *TCPConn) Info() tcp.Info { return c.core().Info() }

// Err returns the error that ended the connection, if any.
func (c *TCPConn) Err() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Err()
}

// Readable reports whether Read would not block.
func (c *TCPConn) Readable() bool {
	if c.conn == nil {
		return c.parked.Readable()
	}
	return c.conn.Readable()
}

// Writable reports whether Write would not block.
func (c *TCPConn) Writable() bool {
	if c.conn == nil {
		return c.parked.Writable()
	}
	return c.conn.Writable()
}

// LocalAddr returns the local address and port; a link-local address
// carries the zone of its NIC (its name, or number).
func (c *TCPConn) LocalAddr() netip.AddrPort { return withZone(c.key().local, c.nic) }

// RemoteAddr returns the remote address and port; a link-local address
// carries the zone of the NIC it is reached through.
func (c *TCPConn) RemoteAddr() netip.AddrPort { return withZone(c.key().remote, c.nic) }

// withZone returns ap with n's zone if its address is link-scoped, as
// package net shows such addresses ("[fe80::1%eth0]:80").
func withZone(ap netip.AddrPort, n *nic) netip.AddrPort {
	if n == nil || !linkScoped(ap.Addr()) {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().WithZone(zoneOf(n)), ap.Port())
}

// BufferedChunks returns the buffer chunks the connection holds.
func (c *TCPConn) BufferedChunks() int {
	if c.conn == nil {
		return 0
	}
	return c.conn.BufferedChunks()
}

// TCPListener is a listening socket (RFC 9293 LISTEN): a SYN queue of
// half-open connections and an accept queue of established ones.
type TCPListener struct {
	sockBase
	s        *Stack
	addr     netip.AddrPort
	backlog  int
	synQueue int
	acceptQ  ring.Ring[*TCPConn]
	closed   bool
	// cookieSent is when the listener last answered a SYN with a SYN
	// cookie (clock.Never: never); ACKs for no connection are checked as
	// cookies for tcp.CookieValid after it.
	cookieSent clock.Instant
}

// Listen starts listening on addr (an unspecified address means every
// address of the stack: 0.0.0.0 every IPv4 one, :: every one of either
// family, as a Linux socket with IPV6_V6ONLY off). backlog bounds the
// accept queue, up to Config.MaxBacklog; 0 means the maximum.
func (s *Stack) Listen(addr netip.AddrPort, backlog int) (*TCPListener, error) {
	return s.ListenOpts(addr, backlog, BindOptions{})
}

// BindOptions are a socket's options that bear on binding.
type BindOptions struct {
	// V6Only restricts a socket bound to :: to IPv6 (IPV6_V6ONLY): it
	// takes no IPv4 packets and does not keep IPv4 sockets off its port.
	V6Only bool
}

// ListenOpts is Listen with options.
func (s *Stack) ListenOpts(addr netip.AddrPort, backlog int, o BindOptions) (*TCPListener, error) {
	if s.closed {
		return nil, ErrClosed
	}
	a := addr.Addr().Unmap().WithZone("")
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	if !supported(a) {
		return nil, ErrAFNoSupport
	}
	if o.V6Only && !a.Is6() {
		return nil, ErrInvalid
	}
	if !a.IsUnspecified() && !s.isLocal(a) && !s.spoofing() {
		return nil, ErrAddrNotAvail
	}
	port := addr.Port()
	if port == 0 {
		var err error
		if port, err = s.ephemeralListen(); err != nil {
			return nil, err
		}
	}
	addr = netip.AddrPortFrom(a, port)
	if s.flows.listeners.conflicts(addr, o.V6Only) {
		return nil, ErrAddrInUse
	}
	if backlog <= 0 || backlog > s.cfg.MaxBacklog {
		backlog = s.cfg.MaxBacklog
	}
	l := &TCPListener{s: s, addr: addr, backlog: backlog, cookieSent: clock.Never}
	s.flows.listeners.add(addr, l, o.V6Only)
	return l, nil
}

// ephemeralListen picks a free port for a listener bound to port 0: one
// no listener holds on any address.
func (s *Stack) ephemeralListen() (uint16, error) {
	lo, num := s.ephemeralRange()
	start := s.rng.Uint32()
	for i := uint32(0); i < num; i++ {
		port := uint16(lo + (start+i)%num)
		if !s.flows.listeners.portBusy(port) {
			return port, nil
		}
	}
	return 0, ErrNoPorts
}

func (l *TCPListener) acceptFull() bool { return l.acceptQ.Len() >= l.backlog }

func (l *TCPListener) removeQueued(c *TCPConn) {
	for i := range l.acceptQ.Len() {
		if l.acceptQ.At(i) == c {
			l.acceptQ.RemoveAt(i)
			return
		}
	}
}

// Addr returns the address the listener is bound to.
func (l *TCPListener) Addr() netip.AddrPort { return l.addr }

// Accept returns the next established connection, or nil if none is
// waiting.
func (l *TCPListener) Accept() *TCPConn {
	c, ok := l.acceptQ.PopFront()
	if !ok {
		return nil
	}
	c.listener = nil
	// Events that happened while queued (data, FIN) are due now.
	c.s.notify(c, EventReadable|EventWritable)
	return c
}

// Pending returns the number of connections waiting to be accepted.
func (l *TCPListener) Pending() int { return l.acceptQ.Len() }

// Closed reports whether Close was called.
func (l *TCPListener) Closed() bool { return l.closed }

// Close stops listening and resets the connections not yet accepted, as
// Linux does (inet_csk_listen_stop).
func (l *TCPListener) Close() {
	if l.closed {
		return
	}
	l.closed = true
	s := l.s
	if cur, _ := s.flows.listeners.get(l.addr); cur == l {
		s.flows.listeners.remove(l.addr)
	}
	for _, c := range s.sortedConns(func(c *TCPConn) bool { return c.listener == l }) {
		c.core().Abort()
		s.afterConn(c)
	}
	l.acceptQ.Free()
	s.notify(l, EventClosed|EventReadable)
}

// ConnInfo describes a connection for ss-like tables.
type ConnInfo struct {
	Local, Remote netip.AddrPort
	Info          tcp.Info
}

// Conns returns every connection the stack holds, TIME-WAIT included,
// ordered by local then remote address and port.
func (s *Stack) Conns() []ConnInfo {
	out := make([]ConnInfo, 0, s.flows.conns.len())
	for _, c := range s.sortedConns(func(*TCPConn) bool { return true }) {
		out = append(out, ConnInfo{Local: c.key().local, Remote: c.key().remote, Info: c.Info()})
	}
	return out
}

// Stack returns the stack c belongs to.
func (c *TCPConn) Stack() *Stack { return c.s }

// ConnOwners calls f with the owner (SetOwner) of every connection the
// stack holds that has one, TIME-WAIT and listeners' accept queues
// included, ordered as Conns. It does not unpark a parked connection.
// The runtime uses it to close the sockets of its connections when it
// closes, before Close resets them: it keeps no set of its own of them.
func (s *Stack) ConnOwners(f func(owner any)) {
	for _, c := range s.sortedConns(func(c *TCPConn) bool { return c.owner != nil }) {
		f(c.owner)
	}
}

// Listeners returns the addresses listened on, with queue lengths,
// ordered by address and port.
func (s *Stack) Listeners() []ListenerInfo {
	out := make([]ListenerInfo, 0, s.flows.listeners.len())
	for _, a := range s.flows.listeners.sorted() {
		l, _ := s.flows.listeners.get(a)
		out = append(out, ListenerInfo{Addr: a, SynQueue: l.synQueue, AcceptQueue: l.acceptQ.Len(), Backlog: l.backlog})
	}
	return out
}

// ListenerInfo describes a listener for ss-like tables.
type ListenerInfo struct {
	Addr                  netip.AddrPort
	SynQueue, AcceptQueue int
	Backlog               int
}
