package sim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// Pattern fills p with the bytes of stream id from offset off on: the
// stream's first 8 bytes are id in big-endian order (so a server learns
// which flow a connection carries from its first bytes), the rest a
// pseudo-random function of id and the offset. A reader checks what it
// reads against Pattern, byte for byte, in order.
func Pattern(id uint64, off int64, p []byte) {
	i := 0
	for ; i < len(p) && off+int64(i) < 8; i++ {
		p[i] = byte(id >> (56 - 8*(off+int64(i))))
	}
	word := func(o int64) uint64 { return splitmix(id*0x9e3779b97f4a7c15 ^ uint64(o/8)) }
	// Up to the next multiple of 8, then whole words, then the tail.
	for ; i < len(p) && (off+int64(i))%8 != 0; i++ {
		o := off + int64(i)
		p[i] = byte(word(o) >> (8 * (o % 8)))
	}
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], word(off+int64(i)))
	}
	for ; i < len(p); i++ {
		o := off + int64(i)
		p[i] = byte(word(o) >> (8 * (o % 8)))
	}
}

// Stream is one direction of a connection's byte stream: what the writer
// wrote and what the reader read, checked against Pattern.
type Stream struct {
	// ID is the stream's pattern (and, in its first 8 bytes, its flow).
	ID uint64
	// Planned is how many bytes the writer is to write, the 8-byte header
	// included.
	Planned int64
	// Written counts the bytes Write accepted.
	Written int64
	// Read counts the bytes read, each checked.
	Read int64
	// WriteClosed says the writer shut down its sending half after
	// Written bytes.
	WriteClosed bool
	// EOF says the reader saw the end of the stream.
	EOF bool
	// Mismatch is the offset of the first byte read that differs from
	// what was written, or -1.
	Mismatch int64
	// ReadErr is the first error other than io.EOF the reader saw.
	ReadErr error
}

func newStream(id uint64, planned int64) *Stream {
	return &Stream{ID: id, Planned: planned, Mismatch: -1}
}

// check checks bytes just read against the pattern and advances Read.
func (s *Stream) check(p, scratch []byte) {
	for len(p) > 0 {
		k := min(len(p), len(scratch))
		Pattern(s.ID, s.Read, scratch[:k])
		if s.Mismatch < 0 && !bytes.Equal(p[:k], scratch[:k]) {
			for i := 0; i < k; i++ {
				if p[i] != scratch[i] {
					s.Mismatch = s.Read + int64(i)
					break
				}
			}
		}
		s.Read += int64(k)
		p = p[k:]
	}
}

// Behavior describes how one side of a connection uses it.
type Behavior struct {
	// MaxWrite and MaxRead bound the size of each Write and Read call;
	// every call takes a size drawn uniformly from [1, max]. Zero means
	// 64 KiB.
	MaxWrite, MaxRead int
	// Pause is the probability that, after a read, the reader stops
	// reading for a time drawn from [0, MaxPause] (a slow reader).
	Pause    float64
	MaxPause time.Duration
	// PauseUntil, if not zero, is when the reader stops pausing and
	// keeps up from then on (readers that resume).
	PauseUntil clock.Instant
	// AbortAfter, if positive, makes this side abort the connection (a
	// RST, SO_LINGER 0) once it has read and written that many bytes in
	// all.
	AbortAfter int64
	// ReadBuffer, if positive, sets SO_RCVBUF on the connection.
	ReadBuffer int
	// Nagle leaves Nagle's algorithm on (the simulator otherwise sets
	// TCP_NODELAY, as package net does).
	Nagle bool
}

// FlowConfig describes one connection: what the client sends and
// receives, and how each side behaves.
type FlowConfig struct {
	// Up and Down are the bytes of data sent by the client and by the
	// server (the client's stream also carries the 8-byte header).
	Up, Down int64
	// Echo makes the server send back what it reads instead of Down
	// bytes of its own.
	Echo bool
	// Client and Server are the two sides' behaviours.
	Client, Server Behavior
}

// Side is what happened to one side of a flow.
type Side struct {
	// Conn is the side's connection (nil if it never existed).
	Conn *stack.TCPConn
	// Finished says the side is done with the connection.
	Finished bool
	// Aborted says the side aborted the connection itself.
	Aborted bool
	// Err is the error that ended the side (nil for an orderly end).
	Err error
	// At is when the side finished.
	At clock.Instant
	// Info is the connection's TCP_INFO when the side finished.
	Info tcp.Info
}

// Flow is one TCP connection made by the applications, from Dial to the
// end of both sides.
type Flow struct {
	// ID names the flow; the client's stream starts with it.
	ID uint64
	// Config is what the flow was asked to do.
	Config FlowConfig
	// Client and Server are the nodes at either end.
	Client, Server *Node
	// Raddr is the address dialled.
	Raddr netip.AddrPort
	// Up is the client-to-server stream, Down the server-to-client one.
	Up, Down *Stream
	// C and S are the client's and the server's sides.
	C, S Side
	// Start is when the client dialled.
	Start clock.Instant
}

// Aborted reports whether either side aborted the flow.
func (f *Flow) Aborted() bool { return f.C.Aborted || f.S.Aborted }

// String describes the flow in one line.
func (f *Flow) String() string {
	return fmt.Sprintf("flow %d %s->%v up %d/%d/%d down %d/%d/%d client{fin %v abort %v err %v} server{fin %v abort %v err %v}",
		f.ID, f.Client.Name, f.Raddr, f.Up.Written, f.Up.Read, f.Up.Planned, f.Down.Written, f.Down.Read, f.Down.Planned,
		f.C.Finished, f.C.Aborted, f.C.Err, f.S.Finished, f.S.Aborted, f.S.Err)
}

// Check returns the first broken property of the flow, or nil: every
// byte read is the byte written at that offset; nothing is read that was
// not written; and unless a side aborted, both sides ended without error
// after every planned byte arrived, followed by the end of the stream.
func (f *Flow) Check() error {
	for _, s := range []*Stream{f.Up, f.Down} {
		name := "up"
		if s == f.Down {
			name = "down"
		}
		if s.Mismatch >= 0 {
			return fmt.Errorf("%v: %s stream: byte %d differs from the byte written", f, name, s.Mismatch)
		}
		if s.Read > s.Written {
			return fmt.Errorf("%v: %s stream: %d bytes read, only %d written", f, name, s.Read, s.Written)
		}
	}
	if f.Aborted() {
		if !f.C.Finished {
			return fmt.Errorf("%v: client side never finished", f)
		}
		return nil
	}
	switch {
	case !f.C.Finished || !f.S.Finished:
		return fmt.Errorf("%v: not finished", f)
	case f.C.Err != nil || f.S.Err != nil:
		return fmt.Errorf("%v: failed without an abort", f)
	case f.Up.Read != f.Up.Planned || f.Up.Written != f.Up.Planned || !f.Up.EOF:
		return fmt.Errorf("%v: up stream incomplete (EOF %v)", f, f.Up.EOF)
	case f.Down.Read != f.Down.Planned || f.Down.Written != f.Down.Planned || !f.Down.EOF:
		return fmt.Errorf("%v: down stream incomplete (EOF %v)", f, f.Down.EOF)
	}
	return nil
}

// Apps runs applications on a network's hosts — servers, clients, UDP
// senders and sinks — as event-driven state machines that use the stacks'
// non-blocking socket calls, the calls the net.Conn layer makes, and
// keeps the record of every flow for the property checks.
type Apps struct {
	// Net is the network the applications run on.
	Net *Network
	// KeepAlive is the keep-alive idle time and interval of every
	// connection (9 probes), as package net sets it: 15 s. Negative
	// turns keep-alive off. It makes a connection whose peer vanished
	// (an aborted peer whose RST was lost) end.
	KeepAlive time.Duration

	flows   []*Flow
	byID    map[uint64]*Flow
	nextID  uint64
	conns   []*stack.TCPConn
	open    int // endpoints not finished
	dialing int // dials scheduled and not made
	servers []*Server
	udp     []*UDPFlow
	udpByID map[uint64]*UDPFlow
	sinks   []*stack.UDPEndpoint
	scratch []byte
	rbuf    []byte
}

// NewApps returns an empty set of applications on n.
func NewApps(n *Network) *Apps {
	return &Apps{
		Net:       n,
		KeepAlive: 15 * time.Second,
		byID:      map[uint64]*Flow{},
		udpByID:   map[uint64]*UDPFlow{},
		scratch:   make([]byte, 64<<10),
		rbuf:      make([]byte, 64<<10),
		nextID:    n.derive(4, 0) & (1<<48 - 1) << 8,
	}
}

// Flows returns every flow dialled, in order.
func (a *Apps) Flows() []*Flow { return a.flows }

// UDPFlows returns every UDP flow, in order.
func (a *Apps) UDPFlows() []*UDPFlow { return a.udp }

// Conns returns every TCP connection the applications held.
func (a *Apps) Conns() []*stack.TCPConn { return a.conns }

// Done reports whether every dial was made and every connection an
// application holds has finished, and no listener has connections
// waiting to be accepted.
func (a *Apps) Done() bool {
	if a.dialing > 0 || a.open > 0 {
		return false
	}
	for _, s := range a.servers {
		if s.L.Pending() > 0 && !s.L.Closed() {
			return false
		}
	}
	return true
}

// Check returns the broken properties of every flow (see Flow.Check and
// UDPFlow.Check).
func (a *Apps) Check() []error {
	var errs []error
	for _, f := range a.flows {
		if err := f.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, u := range a.udp {
		if err := u.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// CloseAll closes every listener and UDP socket the applications opened.
func (a *Apps) CloseAll() {
	for _, s := range a.servers {
		s.Close()
	}
	for _, u := range a.sinks {
		u.Close()
	}
}

// ServerConfig describes a TCP server.
type ServerConfig struct {
	// Backlog is the listener's accept queue (0: the stack's maximum).
	Backlog int
	// AcceptDelay makes the server accept one connection, then wait this
	// long before the next (a busy server: with a small Backlog, the
	// accept queue overflows).
	AcceptDelay time.Duration
}

// Server is a listener whose connections serve flows: each connection's
// first 8 bytes name its flow, whose configuration says what to send
// back and how to behave.
type Server struct {
	// L is the listener.
	L   *stack.TCPListener
	a   *Apps
	cfg ServerConfig
	nd  *Node
	// Accepted counts the connections accepted.
	Accepted int
	wait     *Timer
}

// Serve starts a server on nd listening on addr.
func (a *Apps) Serve(nd *Node, addr netip.AddrPort, cfg ServerConfig) (*Server, error) {
	l, err := nd.Stack.Listen(addr, cfg.Backlog)
	if err != nil {
		return nil, err
	}
	s := &Server{L: l, a: a, cfg: cfg, nd: nd}
	Watch(l, func(stack.Events) { s.accept() })
	a.servers = append(a.servers, s)
	return s, nil
}

// Close closes the listener.
func (s *Server) Close() {
	s.wait.Stop()
	s.L.Close()
}

func (s *Server) accept() {
	if s.wait != nil && s.wait.idx >= 0 {
		return
	}
	for !s.L.Closed() {
		c := s.L.Accept()
		if c == nil {
			return
		}
		s.Accepted++
		s.a.startEndpoint(s.nd, c, nil, false)
		if s.cfg.AcceptDelay > 0 {
			s.wait = s.a.Net.After(s.cfg.AcceptDelay, s.accept)
			return
		}
	}
}

// Dial schedules a client on nd to connect to raddr at instant at and run
// a flow as cfg describes.
func (a *Apps) Dial(at clock.Instant, nd *Node, raddr netip.AddrPort, cfg FlowConfig) *Flow {
	a.nextID++
	id := a.nextID
	f := &Flow{ID: id, Config: cfg, Client: nd, Raddr: raddr, Start: at}
	f.Up = newStream(id, 8+max(cfg.Up, 0))
	if cfg.Echo {
		f.Down = newStream(id, f.Up.Planned)
	} else {
		f.Down = newStream(id^1<<63, max(cfg.Down, 0))
	}
	a.flows = append(a.flows, f)
	a.byID[id] = f
	a.dialing++
	a.Net.At(at, func() {
		a.dialing--
		f.Start = a.Net.now
		c, err := nd.Stack.Connect(a.Net.now, netip.AddrPort{}, raddr)
		if err != nil {
			f.C = Side{Finished: true, Err: err, At: a.Net.now}
			return
		}
		a.startEndpoint(nd, c, f, true)
	})
	return f
}

// endpoint is one side of a connection, run by its socket's events and
// its own timers.
type endpoint struct {
	a      *Apps
	nd     *Node
	c      *stack.TCPConn
	f      *Flow // nil on a server until the header arrives
	side   *Side
	client bool
	b      Behavior
	rng    *rand.Rand
	in     *Stream
	out    *Stream

	hdr     [8]byte
	hdrN    int
	echo    []byte // bytes read and not yet echoed
	wclosed bool
	resume  *Timer
	moved   int64
	done    bool
}

func (a *Apps) startEndpoint(nd *Node, c *stack.TCPConn, f *Flow, client bool) {
	e := &endpoint{a: a, nd: nd, c: c, f: f, client: client}
	a.conns = append(a.conns, c)
	a.open++
	if client {
		e.side, e.b, e.out, e.in = &f.C, f.Config.Client, f.Up, f.Down
		e.side.Conn = c
		e.rng = a.Net.Rand("client", f.ID)
	} else {
		e.side = &Side{Conn: c}
		e.rng = a.Net.Rand("server", uint64(len(a.conns)))
	}
	c.SetNoDelay(!e.b.Nagle)
	if a.KeepAlive > 0 {
		c.SetKeepAlive(a.Net.now, true, a.KeepAlive, a.KeepAlive, 9)
	}
	if e.b.ReadBuffer > 0 {
		c.SetReadBuffer(e.b.ReadBuffer)
	}
	Watch(c, func(stack.Events) { e.step() })
	if !client {
		e.step() // the accepted connection may have data already
	}
}

func sizeIn(rng *rand.Rand, maxSize int) int {
	if maxSize <= 0 {
		maxSize = 64 << 10
	}
	return 1 + rng.IntN(maxSize)
}

// step does what the connection allows: write, read, abort or close.
func (e *endpoint) step() {
	if e.done {
		return
	}
	st := e.c.State()
	if st == tcp.Closed {
		if e.paused() {
			return // a slow reader reads what is left when it resumes
		}
		// Read what is left, then report the error.
		e.read()
		if !e.done && e.b.AbortAfter > 0 && e.moved >= e.b.AbortAfter {
			e.side.Aborted = true
			e.finish(nil, true)
			return
		}
		if !e.done && !e.paused() {
			err := e.c.Err()
			if err == nil && !(e.wclosed && e.in != nil && e.in.EOF) {
				err = errors.New("connection closed before the flow ended")
			}
			e.finish(err, false)
		}
		return
	}
	if st == tcp.SynSent || st == tcp.SynReceived {
		return
	}
	// Writing may follow reading (a server learns its flow from the
	// first bytes; an echo server writes what it read) and reading may
	// follow writing: go on until neither makes progress.
	for {
		moved, eof, f := e.moved, e.in != nil && e.in.EOF, e.f
		e.write()
		if e.done {
			return
		}
		e.read()
		if e.done {
			return
		}
		if e.moved == moved && (e.in != nil && e.in.EOF) == eof && e.f == f {
			break
		}
	}
	if e.b.AbortAfter > 0 && e.moved >= e.b.AbortAfter {
		e.side.Aborted = true
		e.finish(nil, true)
		return
	}
	if e.wclosed && e.in != nil && e.in.EOF && len(e.echo) == 0 {
		e.finish(nil, false)
	}
}

func (e *endpoint) write() {
	a := e.a
	if e.out == nil || e.wclosed {
		return
	}
	if e.f.Config.Echo && !e.client {
		for len(e.echo) > 0 {
			n, err := e.c.Write(e.echo)
			e.out.Written += int64(n)
			e.moved += int64(n)
			e.echo = e.echo[:copy(e.echo, e.echo[n:])]
			if errors.Is(err, stack.ErrWouldBlock) || n == 0 && err == nil {
				break
			}
			if err != nil {
				e.finish(err, false)
				return
			}
		}
		if e.in.EOF && len(e.echo) == 0 {
			e.closeWrite()
		}
		return
	}
	for e.out.Written < e.out.Planned {
		k := int(min(int64(sizeIn(e.rng, e.b.MaxWrite)), e.out.Planned-e.out.Written, int64(len(a.scratch))))
		Pattern(e.out.ID, e.out.Written, a.scratch[:k])
		n, err := e.c.Write(a.scratch[:k])
		e.out.Written += int64(n)
		e.moved += int64(n)
		if errors.Is(err, stack.ErrWouldBlock) {
			return
		}
		if err != nil {
			e.finish(err, false)
			return
		}
		if n < k {
			return
		}
		if e.b.AbortAfter > 0 && e.moved >= e.b.AbortAfter {
			return
		}
	}
	e.closeWrite()
}

func (e *endpoint) closeWrite() {
	if err := e.c.CloseWrite(); err != nil {
		e.finish(err, false)
		return
	}
	e.wclosed = true
	e.out.WriteClosed = true
}

func (e *endpoint) read() {
	a := e.a
	for !e.paused() {
		k := sizeIn(e.rng, e.b.MaxRead)
		if e.f != nil && e.f.Config.Echo && !e.client {
			room := 256<<10 - len(e.echo)
			if room <= 0 {
				return
			}
			k = min(k, room)
		}
		k = min(k, len(a.rbuf))
		n, err := e.c.Read(a.rbuf[:k])
		if n > 0 {
			e.moved += int64(n)
			e.consume(a.rbuf[:n])
			if e.done {
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, stack.ErrWouldBlock):
			return
		case err == io.EOF:
			if e.in != nil {
				e.in.EOF = true
			} else {
				// The peer closed before naming its flow.
				e.finish(errors.New("EOF before the flow header"), false)
			}
			return
		default:
			if e.in != nil && e.in.ReadErr == nil {
				e.in.ReadErr = err
			}
			e.finish(err, false)
			return
		}
		if e.b.Pause > 0 && (e.b.PauseUntil == 0 || e.a.Net.Now() < e.b.PauseUntil) && e.rng.Float64() < e.b.Pause {
			d := time.Duration(e.rng.Int64N(int64(e.b.MaxPause) + 1))
			e.resume = e.a.Net.After(d, e.step)
			return
		}
		if e.b.AbortAfter > 0 && e.moved >= e.b.AbortAfter {
			return
		}
	}
}

// paused reports whether a slow reader is pausing.
func (e *endpoint) paused() bool { return e.resume != nil && e.resume.idx >= 0 }

// consume takes bytes just read: the flow header on a server, then the
// stream's bytes, checked.
func (e *endpoint) consume(p []byte) {
	if e.f == nil {
		k := copy(e.hdr[e.hdrN:], p)
		e.hdrN += k
		p = p[k:]
		if e.hdrN < 8 {
			return
		}
		id := binary.BigEndian.Uint64(e.hdr[:])
		f := e.a.byID[id]
		if f == nil {
			e.a.Net.Violation("%s: connection %v->%v names flow %#x, which does not exist", e.c.LocalAddr(), e.c.RemoteAddr(), e.c.LocalAddr(), id)
			e.finish(errors.New("unknown flow"), true)
			return
		}
		if f.S.Conn != nil {
			e.a.Net.Violation("flow %d served twice", id)
		}
		f.Server = e.nd
		f.S = *e.side
		e.side = &f.S
		e.f, e.b, e.in, e.out = f, f.Config.Server, f.Up, f.Down
		e.in.check(e.hdr[:], e.a.scratch)
		if f.Config.Echo {
			e.echo = append(e.echo, e.hdr[:]...)
		}
		if e.b.ReadBuffer > 0 {
			e.c.SetReadBuffer(e.b.ReadBuffer)
		}
		e.c.SetNoDelay(!e.b.Nagle)
	}
	if len(p) == 0 {
		return
	}
	e.in.check(p, e.a.scratch)
	if e.f.Config.Echo && !e.client {
		e.echo = append(e.echo, p...)
	}
}

// finish ends the side: an orderly Close, or Abort.
func (e *endpoint) finish(err error, abort bool) {
	e.done = true
	e.resume.Stop()
	e.side.Finished = true
	e.side.Err = err
	e.side.At = e.a.Net.now
	e.side.Info = e.c.Info()
	if abort {
		e.c.Abort()
	} else {
		e.c.Close()
	}
	e.a.open--
}

// UDPFlow is a stream of datagrams from a sender to a sink, each
// carrying its flow, its number and a pattern the sink checks.
type UDPFlow struct {
	// ID names the flow; every datagram starts with it.
	ID uint64
	// From and To are the sender and the sink.
	From, To *Node
	// Sent counts datagrams sent; Received those the sink read, intact
	// or not; Bad those whose contents differ from what was sent.
	Sent, Received, Bad int
	// Dups counts datagrams received more than once (the link
	// duplicates).
	Dups int
	seen map[uint32]bool
}

// Check returns an error if a datagram arrived damaged, or more arrived
// than were sent (duplicates aside).
func (u *UDPFlow) Check() error {
	if u.Bad > 0 {
		return fmt.Errorf("udp flow %d %s->%s: %d of %d datagrams damaged", u.ID, u.From.Name, u.To.Name, u.Bad, u.Received)
	}
	if u.Received-u.Dups > u.Sent {
		return fmt.Errorf("udp flow %d: %d datagrams received (%d dups), %d sent", u.ID, u.Received, u.Dups, u.Sent)
	}
	return nil
}

// udpHeader is the flow ID and the datagram's number.
const udpHeader = 12

// UDPSink opens a UDP socket on nd at addr that reads and checks every
// datagram sent to it by a UDPFlow.
func (a *Apps) UDPSink(nd *Node, addr netip.AddrPort) (*stack.UDPEndpoint, error) {
	u, err := nd.Stack.BindUDP(addr)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	Watch(u, func(stack.Events) {
		for {
			n, _, err := u.ReadFrom(buf)
			if err != nil {
				return
			}
			a.udpReceived(buf[:n])
		}
	})
	a.sinks = append(a.sinks, u)
	return u, nil
}

func (a *Apps) udpReceived(p []byte) {
	if len(p) < udpHeader {
		a.Net.Violation("UDP datagram of %d bytes: too short for its header", len(p))
		return
	}
	id := binary.BigEndian.Uint64(p)
	seq := binary.BigEndian.Uint32(p[8:])
	u := a.udpByID[id]
	if u == nil {
		a.Net.Violation("UDP datagram of unknown flow %#x", id)
		return
	}
	u.Received++
	if u.seen[seq] {
		u.Dups++
	}
	u.seen[seq] = true
	want := a.scratch[:len(p)-udpHeader]
	Pattern(id^uint64(seq)<<32, udpHeader, want)
	if !bytes.Equal(p[udpHeader:], want) {
		u.Bad++
	}
}

// SendUDP schedules a UDP flow: from nd, count datagrams of sizes drawn
// from [udpHeader, maxSize] to `to`, one every interval from at on.
func (a *Apps) SendUDP(at clock.Instant, nd *Node, to netip.AddrPort, count, maxSize int, interval time.Duration) *UDPFlow {
	a.nextID++
	u := &UDPFlow{ID: a.nextID, From: nd, seen: map[uint32]bool{}}
	for _, h := range a.Net.nodes {
		for _, p := range h.ports {
			for _, pr := range p.Addrs {
				if pr.Addr() == to.Addr() {
					u.To = h
				}
			}
		}
	}
	a.udp = append(a.udp, u)
	a.udpByID[u.ID] = u
	rng := a.Net.Rand("udp", u.ID)
	var ep *stack.UDPEndpoint
	var send func()
	seq := uint32(0)
	send = func() {
		if ep == nil {
			var err error
			// :: sends to either family (a dual-stack socket).
			if ep, err = nd.Stack.BindUDP(netip.AddrPortFrom(netip.IPv6Unspecified(), 0)); err != nil {
				a.Net.Violation("BindUDP: %v", err)
				return
			}
			a.sinks = append(a.sinks, ep)
		}
		size := udpHeader + rng.IntN(max(maxSize-udpHeader, 0)+1)
		p := make([]byte, size)
		binary.BigEndian.PutUint64(p, u.ID)
		binary.BigEndian.PutUint32(p[8:], seq)
		Pattern(u.ID^uint64(seq)<<32, udpHeader, p[udpHeader:])
		if _, err := ep.WriteTo(a.Net.now, p, to); err == nil {
			u.Sent++
		}
		seq++
		if int(seq) < count {
			a.Net.After(interval, send)
		}
	}
	if count > 0 {
		a.Net.At(at, send)
	}
	return u
}
