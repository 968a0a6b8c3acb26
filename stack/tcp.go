package stack

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
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
	s        *Stack
	conn     *tcp.Conn
	key      tuple
	nic      *nic
	nextHop  netip.Addr
	listener *TCPListener // while in the listener's queues
	accepted bool
	inTable  bool
	dirty    bool
	heapIdx  int
	deadline clock.Instant
}

func (s *Stack) newConn(key tuple, n *nic, nextHop netip.Addr) *TCPConn {
	return &TCPConn{
		s:        s,
		conn:     tcp.NewConn(s.tcpEnv),
		key:      key,
		nic:      n,
		nextHop:  nextHop,
		heapIdx:  -1,
		deadline: clock.Never,
		inTable:  true,
	}
}

// afterConn does the stack's bookkeeping after any call into c's core:
// events, deadline, output, and removal once CLOSED.
func (s *Stack) afterConn(c *TCPConn) {
	if !c.dirty {
		c.dirty = true
		s.dirty = append(s.dirty, c)
	}
	s.afterConnQuiet(c)
}

// afterConnQuiet is afterConn without marking c as having output.
func (s *Stack) afterConnQuiet(c *TCPConn) {
	ev := tcpEvents(c.conn.TakeEvents())
	if ev&EventEstablished != 0 && c.listener != nil && !c.accepted {
		l := c.listener
		l.synQueue--
		l.acceptQ = append(l.acceptQ, c)
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
			if s.conns[c.key] == c {
				delete(s.conns, c.key)
			}
		}
		s.timers.remove(c)
	} else {
		s.timers.update(c, c.conn.NextDeadline())
	}
	if !queued {
		s.notify(c, ev)
	}
}

// Connect opens a connection to raddr from laddr (whose address and port
// may be zero: the stack picks the source address by route and an
// ephemeral port by RFC 6056).
func (s *Stack) Connect(now clock.Instant, laddr, raddr netip.AddrPort) (*TCPConn, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if !raddr.Addr().Is4() || raddr.Port() == 0 {
		return nil, ErrInvalid
	}
	if a := raddr.Addr(); a.IsMulticast() || a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || s.isDirectedBroadcast(a) {
		// RFC 9293 MUST-46 (RFC 1122 §4.2.3.10): an OPEN to a broadcast
		// or multicast address is rejected; ENETUNREACH as in Linux
		// (ip_route_connect refuses RTCF_BROADCAST|RTCF_MULTICAST).
		return nil, ErrNetUnreachable
	}
	n, nextHop, src, err := s.route(raddr.Addr())
	if err != nil {
		return nil, err
	}
	if laddr.Addr().IsValid() && !laddr.Addr().IsUnspecified() {
		if !s.isLocal(laddr.Addr()) {
			return nil, ErrAddrNotAvail
		}
		src = laddr.Addr()
	}
	port := laddr.Port()
	if port == 0 {
		port, err = s.ephemeralTCP(src, raddr)
		if err != nil {
			return nil, err
		}
	}
	key := tuple{local: netip.AddrPortFrom(src, port), remote: raddr}
	if old := s.conns[key]; old != nil {
		return nil, ErrAddrInUse
	}
	c := s.newConn(key, n, nextHop)
	iss, tsOff := s.initialSeq(now, key.local, raddr)
	ep := tcp.Endpoints{Local: key.local, Remote: raddr, ISS: iss, TSOffset: tsOff, MTU: n.cfg.MTU}
	if err := c.conn.Connect(now, ep); err != nil {
		return nil, err
	}
	s.conns[key] = c
	s.afterConn(c)
	return c, nil
}

// initialSeq returns a new connection's ISS (RFC 6528) and timestamp
// offset, or what Config.InitialSeq says.
func (s *Stack) initialSeq(now clock.Instant, local, remote netip.AddrPort) (wire.Seq, uint32) {
	if s.cfg.InitialSeq != nil {
		return s.cfg.InitialSeq(local, remote)
	}
	return s.isn.ISN(now, local, remote), s.isn.TSOffset(local, remote)
}

// tsOffset returns the timestamp offset initialSeq gives a connection
// between local and remote.
func (s *Stack) tsOffset(local, remote netip.AddrPort) uint32 {
	if s.cfg.InitialSeq != nil {
		_, off := s.cfg.InitialSeq(local, remote)
		return off
	}
	return s.isn.TSOffset(local, remote)
}

// ephemeralTCP picks a local port for a connection from src to dst with
// RFC 6056 §3.3.3 (Algorithm 3, "Simple Hash-Based Port Selection"): the
// search starts at an offset that is a keyed hash of the destination, so
// ports are hard to guess but reused fairly.
func (s *Stack) ephemeralTCP(src netip.Addr, dst netip.AddrPort) (uint16, error) {
	lo, num := s.ephemeralRange()
	var b [10]byte
	s4, d4 := src.As4(), dst.Addr().As4()
	copy(b[0:], s4[:])
	copy(b[4:], d4[:])
	binary.BigEndian.PutUint16(b[8:], dst.Port())
	offset := uint32(s.portK.Sum64(b[:]))
	for i := uint32(0); i < num; i++ {
		port := uint16(lo + (offset+s.nextEph+i)%num)
		local := netip.AddrPortFrom(src, port)
		if s.conns[tuple{local, dst}] != nil || s.portListened(local) {
			continue
		}
		s.nextEph += i + 1
		return port, nil
	}
	return 0, ErrNoPorts
}

// portListened reports whether a listener holds local's port on its
// address or on the wildcard.
func (s *Stack) portListened(local netip.AddrPort) bool {
	if _, ok := s.listeners[local]; ok {
		return true
	}
	_, ok := s.listeners[netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port())]
	return ok
}

// Read reads received data (see tcp.Conn.Read); ErrWouldBlock if there
// is none yet.
func (c *TCPConn) Read(p []byte) (int, error) {
	n, err := c.conn.Read(p)
	c.s.afterConn(c)
	return n, sockErr(err)
}

// Write queues data to send (see tcp.Conn.Write); ErrWouldBlock if
// there is no room.
func (c *TCPConn) Write(p []byte) (int, error) {
	n, err := c.conn.Write(p)
	if n > 0 {
		c.s.afterConn(c)
	}
	return n, sockErr(err)
}

// CloseWrite sends a FIN after the data written (shutdown(SHUT_WR)).
func (c *TCPConn) CloseWrite() error {
	err := c.conn.CloseWrite()
	c.s.afterConn(c)
	return err
}

// CloseRead stops reading (shutdown(SHUT_RD)).
func (c *TCPConn) CloseRead() error {
	err := c.conn.CloseRead()
	c.s.afterConn(c)
	return err
}

// Close closes the connection: it shuts down in the background, or is
// reset if unread data remains (see tcp.Conn.Close).
func (c *TCPConn) Close() error {
	err := c.conn.Close()
	c.s.afterConn(c)
	return err
}

// Abort resets the connection (close with SO_LINGER 0).
func (c *TCPConn) Abort() {
	c.conn.Abort()
	c.s.afterConn(c)
}

// SetNoDelay sets TCP_NODELAY.
func (c *TCPConn) SetNoDelay(on bool) {
	c.conn.SetNoDelay(on)
	c.s.afterConn(c)
}

// SetKeepAlive sets SO_KEEPALIVE and its idle time, interval and count
// (zero values keep the current ones).
func (c *TCPConn) SetKeepAlive(now clock.Instant, on bool, idle, interval time.Duration, count int) {
	c.conn.SetKeepAlive(now, on, idle, interval, count)
	c.s.afterConn(c)
}

// KeepAlive reports whether SO_KEEPALIVE is on.
func (c *TCPConn) KeepAlive() bool { return c.conn.KeepAlive() }

// SetCongestionControl selects the connection's congestion controller by
// the name it is registered under in package tcp/cc (TCP_CONGESTION; see
// tcp.Conn.SetCongestionControl). An unknown name fails with an error
// matching syscall.ENOENT.
func (c *TCPConn) SetCongestionControl(name string) error {
	err := c.conn.SetCongestionControl(name)
	c.s.afterConn(c)
	return err
}

// CongestionControl returns the name of the connection's congestion
// controller.
func (c *TCPConn) CongestionControl() string { return c.conn.CongestionControl() }

// SetReadBuffer sets SO_RCVBUF.
func (c *TCPConn) SetReadBuffer(n int) { c.conn.SetReadBuffer(n) }

// SetWriteBuffer sets SO_SNDBUF.
func (c *TCPConn) SetWriteBuffer(n int) { c.conn.SetWriteBuffer(n) }

// State returns the connection's state.
func (c *TCPConn) State() tcp.State { return c.conn.State() }

// Info returns a snapshot like TCP_INFO.
func (c *TCPConn) Info() tcp.Info { return c.conn.Info() }

// Err returns the error that ended the connection, if any.
func (c *TCPConn) Err() error { return c.conn.Err() }

// Readable reports whether Read would not block.
func (c *TCPConn) Readable() bool { return c.conn.Readable() }

// Writable reports whether Write would not block.
func (c *TCPConn) Writable() bool { return c.conn.Writable() }

// LocalAddr returns the local address and port.
func (c *TCPConn) LocalAddr() netip.AddrPort { return c.key.local }

// RemoteAddr returns the remote address and port.
func (c *TCPConn) RemoteAddr() netip.AddrPort { return c.key.remote }

// BufferedChunks returns the buffer chunks the connection holds.
func (c *TCPConn) BufferedChunks() int { return c.conn.BufferedChunks() }

// TCPListener is a listening socket (RFC 9293 LISTEN): a SYN queue of
// half-open connections and an accept queue of established ones.
type TCPListener struct {
	sockBase
	s        *Stack
	addr     netip.AddrPort
	backlog  int
	synQueue int
	acceptQ  []*TCPConn
	closed   bool
	// cookieSent is when the listener last answered a SYN with a SYN
	// cookie (clock.Never: never); ACKs for no connection are checked as
	// cookies for tcp.CookieValid after it.
	cookieSent clock.Instant
}

// Listen starts listening on addr (an unspecified address means every
// address of the stack). backlog bounds the accept queue, up to
// Config.MaxBacklog; 0 means the maximum.
func (s *Stack) Listen(addr netip.AddrPort, backlog int) (*TCPListener, error) {
	if s.closed {
		return nil, ErrClosed
	}
	a := addr.Addr()
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	if !a.Is4() {
		return nil, ErrAFNoSupport
	}
	if !a.IsUnspecified() && !s.isLocal(a) {
		return nil, ErrAddrNotAvail
	}
	port := addr.Port()
	if port == 0 {
		var err error
		if port, err = s.ephemeralListen(a); err != nil {
			return nil, err
		}
	}
	addr = netip.AddrPortFrom(a, port)
	// Binding conflicts as in Linux: the same port on the same address,
	// or on the wildcard and a specific address, conflict.
	for other := range s.listeners {
		if other.Port() == port && (other.Addr() == a || other.Addr().IsUnspecified() || a.IsUnspecified()) {
			return nil, ErrAddrInUse
		}
	}
	if backlog <= 0 || backlog > s.cfg.MaxBacklog {
		backlog = s.cfg.MaxBacklog
	}
	l := &TCPListener{s: s, addr: addr, backlog: backlog, cookieSent: clock.Never}
	s.listeners[addr] = l
	return l, nil
}

// ephemeralListen picks a free port for a listener bound to port 0.
func (s *Stack) ephemeralListen(a netip.Addr) (uint16, error) {
	lo, num := s.ephemeralRange()
	start := s.rng.Uint32()
	for i := uint32(0); i < num; i++ {
		port := uint16(lo + (start+i)%num)
		if !s.portListened(netip.AddrPortFrom(a, port)) {
			busy := false
			for other := range s.listeners {
				busy = busy || other.Port() == port
			}
			if !busy {
				return port, nil
			}
		}
	}
	return 0, ErrNoPorts
}

func (l *TCPListener) acceptFull() bool { return len(l.acceptQ) >= l.backlog }

func (l *TCPListener) removeQueued(c *TCPConn) {
	for i, q := range l.acceptQ {
		if q == c {
			l.acceptQ = append(l.acceptQ[:i], l.acceptQ[i+1:]...)
			return
		}
	}
}

// Addr returns the address the listener is bound to.
func (l *TCPListener) Addr() netip.AddrPort { return l.addr }

// Accept returns the next established connection, or nil if none is
// waiting.
func (l *TCPListener) Accept() *TCPConn {
	if len(l.acceptQ) == 0 {
		return nil
	}
	c := l.acceptQ[0]
	copy(l.acceptQ, l.acceptQ[1:])
	l.acceptQ[len(l.acceptQ)-1] = nil
	l.acceptQ = l.acceptQ[:len(l.acceptQ)-1]
	c.listener = nil
	// Events that happened while queued (data, FIN) are due now.
	c.s.notify(c, EventReadable|EventWritable)
	return c
}

// Pending returns the number of connections waiting to be accepted.
func (l *TCPListener) Pending() int { return len(l.acceptQ) }

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
	if s.listeners[l.addr] == l {
		delete(s.listeners, l.addr)
	}
	for _, c := range s.sortedConns(func(c *TCPConn) bool { return c.listener == l }) {
		c.conn.Abort()
		s.afterConn(c)
	}
	l.acceptQ = nil
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
	out := make([]ConnInfo, 0, len(s.conns))
	for _, c := range s.sortedConns(func(*TCPConn) bool { return true }) {
		out = append(out, ConnInfo{Local: c.key.local, Remote: c.key.remote, Info: c.conn.Info()})
	}
	return out
}

// Listeners returns the addresses listened on, with queue lengths,
// ordered by address and port.
func (s *Stack) Listeners() []ListenerInfo {
	out := make([]ListenerInfo, 0, len(s.listeners))
	for _, a := range sortedKeys(s.listeners) {
		l := s.listeners[a]
		out = append(out, ListenerInfo{Addr: a, SynQueue: l.synQueue, AcceptQueue: len(l.acceptQ), Backlog: l.backlog})
	}
	return out
}

// ListenerInfo describes a listener for ss-like tables.
type ListenerInfo struct {
	Addr                  netip.AddrPort
	SynQueue, AcceptQueue int
	Backlog               int
}
