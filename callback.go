package ustack

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/ustack/ustack/stack"
)

// This file is the callback (event) API: connections without a goroutine
// or a channel, whose owner is a Handler called on the stack's goroutines.
// See "The callback API" in the package doc for the rules.

// ErrWouldBlock is what the callback API's non-blocking calls return when
// they would have to wait: CallbackConn.Read with nothing to read,
// CallbackConn.Write with no room for all of p. It is returned as it is
// (not wrapped, so that a would-block costs no allocation): compare with
// ==, or with errors.Is, which also matches syscall.EAGAIN.
var ErrWouldBlock = stack.ErrWouldBlock

// Handler receives a callback connection's events. Its methods are called
// on one of the stack's goroutines with no lock held, never two at a time
// for one connection and never nested for one connection, in this order:
// OnOpen once; then OnReadable, OnPeerClose (once) and OnWritable as
// things happen; OnClose once, last. They must not block: they may call
// any method of any CallbackConn or TCPConn that does not wait (the
// CallbackConn's, TCPConn's setters and Close), but not a blocking Read,
// Write, Accept or Dial, and not Stack.Close.
//
// Embed NopHandler to implement only some of the methods.
type Handler interface {
	// OnOpen: the connection was accepted (on a CallbackListener) or
	// its handshake completed (DialCallback).
	OnOpen(c *CallbackConn)
	// OnReadable: data (or the peer's FIN, or an error) arrived; Read
	// until it returns ErrWouldBlock, or stop reading to push back (the
	// receive window closes and the peer stalls until Read is called
	// again, from a later event or from another goroutine). It may be
	// called when there is nothing new to read.
	OnReadable(c *CallbackConn)
	// OnWritable: room was freed in the send buffer. Write returned
	// ErrWouldBlock earlier; write the rest now. It may be called when
	// nothing was waiting.
	OnWritable(c *CallbackConn)
	// OnPeerClose: the peer shut down its sending half (its FIN), and
	// every byte before it has been read: Read returns io.EOF from now
	// on. Writing may go on; Close or CloseWrite when done.
	OnPeerClose(c *CallbackConn)
	// OnClose: the connection ended. err is nil after the program's own
	// Close, net.ErrClosed when the Stack was closed, otherwise the
	// reason the connection ended or the dial failed (a *net.OpError
	// matching syscall.ECONNRESET, ECONNREFUSED, ETIMEDOUT, …; nil for
	// an orderly end). After OnClose the handler hears nothing more
	// about c, and c's calls return net.ErrClosed.
	OnClose(c *CallbackConn, err error)
}

// NopHandler implements every Handler method as doing nothing; embed it in
// a handler that needs only some.
type NopHandler struct{}

// OnOpen does nothing.
func (NopHandler) OnOpen(*CallbackConn) {}

// OnReadable does nothing.
func (NopHandler) OnReadable(*CallbackConn) {}

// OnWritable does nothing.
func (NopHandler) OnWritable(*CallbackConn) {}

// OnPeerClose does nothing.
func (NopHandler) OnPeerClose(*CallbackConn) {}

// OnClose does nothing.
func (NopHandler) OnClose(*CallbackConn, error) {}

// The bits of CallbackConn.st. The ev bits are events posted and not yet
// handled; the st bits are the connection's own state.
const (
	evOpen        uint32 = 1 << iota // the connection is to be opened (accepted, or established)
	evReadable                       // stack.EventReadable
	evWritable                       // stack.EventWritable
	evClosed                         // stack.EventClosed, Close, or Stack.Close
	stRunning                        // a goroutine is running the handler for c (run)
	stClosing                        // Close or Stack.Close: calls fail; OnClose is next; set under the shard lock
	stDone                           // OnClose was called: events are ignored
	stSawEmpty                       // a Read found nothing (ErrWouldBlock) since dispatch cleared this
	stSawEOF                         // a Read returned io.EOF
	stStackClosed                    // Stack.Close closed it: OnClose's error is net.ErrClosed; set with stClosing

	evMask = evOpen | evReadable | evWritable | evClosed
)

// CallbackConn is a TCP connection whose owner is a Handler: it has no
// goroutine and no channel, and its calls never wait. Read, Write,
// CloseWrite and Close may be called from the handler's methods (of this
// connection or another) or from any goroutine.
//
// An idle connection costs what it holds: 48 bytes, a size class of its
// own (TestCallbackConnSize). It keeps no shard pointer (shard finds the
// shard through the core connection), why the program or the stack
// closed it is a bit of st (stStackClosed), not an error field, and the
// shard does not list it: Stack.Close finds it as its core connection's
// owner.
type CallbackConn struct {
	sc *stack.TCPConn
	h  Handler
	st atomic.Uint32 // ev, st bits above

	// Only the goroutine that holds stRunning touches these.
	opened, peerClosed bool

	ctx any
}

// newCallbackConn wraps sc for h; the caller holds sh.mu. pending are the
// events c starts with; with running, the caller then calls c.run (so
// OnOpen comes before any event another goroutine posts).
func (sh *shard) newCallbackConn(sc *stack.TCPConn, h Handler, pending uint32) *CallbackConn {
	c := &CallbackConn{sc: sc, h: h}
	c.st.Store(pending)
	sc.SetOwner(c) // Stack.Close finds c through it (shard.close)
	return c
}

// shard returns the shard c's connection is in: its core's owner
// (newShard), one pointer fewer in every CallbackConn.
func (c *CallbackConn) shard() *shard { return c.sc.Stack().Owner().(*shard) }

// wake implements waker: it turns the core's events into posted events.
func (c *CallbackConn) wake(ev stack.Events) {
	var bits uint32
	if ev&stack.EventEstablished != 0 {
		bits |= evOpen
	}
	if ev&stack.EventReadable != 0 {
		bits |= evReadable
	}
	if ev&stack.EventWritable != 0 {
		bits |= evWritable
	}
	if ev&stack.EventClosed != 0 {
		bits |= evClosed
	}
	c.post(bits)
}

// closeFromStack implements sockCloser: Stack.Close marks c closed under
// the shard lock; its wake with EventClosed then delivers OnClose.
func (c *CallbackConn) closeFromStack() {
	if c.st.Load()&stClosing == 0 {
		c.st.Or(stClosing | stStackClosed)
	}
}

// post adds events to c's pending set and, unless another goroutine is
// running c's handler (it will see them before it stops), runs it.
func (c *CallbackConn) post(bits uint32) {
	for {
		old := c.st.Load()
		if old&stDone != 0 {
			return
		}
		if c.st.CompareAndSwap(old, old|bits|stRunning) {
			if old&stRunning == 0 {
				c.run()
			}
			return
		}
	}
}

// run calls the handler for the pending events until there are none; the
// caller holds stRunning, which run gives back.
func (c *CallbackConn) run() {
	for {
		old := c.st.Load()
		if old&evMask == 0 {
			if c.st.CompareAndSwap(old, old&^stRunning) {
				return
			}
			continue
		}
		if c.st.CompareAndSwap(old, old&^evMask) {
			c.dispatch(old & evMask)
		}
	}
}

// dispatch calls the handler for one set of events, in the documented
// order: open, readable, peer close, writable, close. A Close made by a
// handler method skips the rest for OnClose.
func (c *CallbackConn) dispatch(ev uint32) {
	if c.st.Load()&stDone != 0 {
		return
	}
	if !c.opened {
		if ev&evClosed != 0 || c.closing() {
			c.finish() // a dial that failed: OnClose without OnOpen
			return
		}
		if ev&evOpen == 0 {
			return // a dial's events before its handshake completed
		}
		c.opened = true
		c.h.OnOpen(c)
	}
	if ev&evReadable != 0 && !c.closing() {
		c.st.And(^stSawEmpty)
		c.h.OnReadable(c)
	}
	if ev&(evReadable|evClosed) != 0 && !c.peerClosed && !c.closing() && c.atEOF() {
		c.peerClosed = true
		c.h.OnPeerClose(c)
	}
	if ev&evWritable != 0 && !c.closing() {
		c.h.OnWritable(c)
	}
	if ev&evClosed != 0 || c.closing() {
		c.finish()
	}
}

func (c *CallbackConn) closing() bool { return c.st.Load()&stClosing != 0 }

// atEOF reports whether a Read would return io.EOF: the peer's FIN came
// and everything before it has been read. What the handler's own reads
// saw answers without the lock: io.EOF, or nothing to read since the
// event (a FIN after that posts an event of its own).
func (c *CallbackConn) atEOF() bool {
	switch st := c.st.Load(); {
	case st&stSawEOF != 0:
		return true
	case st&stSawEmpty != 0:
		return false
	}
	sh := c.shard()
	sh.mu.Lock()
	_, err := c.sc.Read(nil)
	sh.unlock()
	return err == io.EOF
}

// finish delivers OnClose: the core connection, if it lives on, forgets
// c, and nothing more is called.
func (c *CallbackConn) finish() {
	sh := c.shard()
	sh.mu.Lock()
	var err error // the program's own Close
	if c.st.Load()&stStackClosed != 0 {
		err = net.ErrClosed
	}
	if c.st.Load()&stClosing == 0 {
		c.st.Or(stClosing)
		if cerr := c.sc.Err(); cerr != nil {
			op := "read"
			if !c.opened {
				op = "dial"
			}
			err = c.opErr(op, cerr)
		}
	}
	if c.sc.Owner() == c {
		c.sc.SetOwner(nil)
	}
	sh.mu.Unlock()
	c.st.Or(stDone)
	c.h.OnClose(c, err)
}

func (c *CallbackConn) opErr(op string, err error) error {
	return opError(op, "tcp", net.TCPAddrFromAddrPort(c.sc.LocalAddr()), net.TCPAddrFromAddrPort(c.sc.RemoteAddr()), err)
}

// Read reads received data into p without waiting. It returns n > 0 and
// nil; 0 and ErrWouldBlock when there is nothing to read yet; 0 and io.EOF
// after the peer's FIN; or an error like TCPConn.Read's (net.ErrClosed
// after Close). Reading frees receive buffer: not reading is how a
// handler pushes back on the peer.
func (c *CallbackConn) Read(p []byte) (int, error) {
	sh := c.shard()
	sh.mu.Lock()
	if c.closing() {
		sh.mu.Unlock()
		return 0, c.opErr("read", net.ErrClosed)
	}
	n, err := c.sc.Read(p)
	if n == 0 && err == stack.ErrWouldBlock {
		sh.mu.Unlock() // nothing changed
		c.st.Or(stSawEmpty)
		return 0, ErrWouldBlock
	}
	sh.unlock() // a read may open the window: unlock sends the update
	switch {
	case n > 0 || err == nil:
		return n, nil
	case err == io.EOF:
		c.st.Or(stSawEOF)
		return 0, io.EOF
	}
	return n, c.opErr("read", err)
}

// Write queues p for sending without waiting. It returns len(p) and nil
// when all of p fit in the send buffer; otherwise how much did and
// ErrWouldBlock (OnWritable follows when there is room), or an error like
// TCPConn.Write's (net.ErrClosed after Close, EPIPE after CloseWrite). A
// dial's Write before OnOpen returns 0 and ErrWouldBlock.
func (c *CallbackConn) Write(p []byte) (int, error) {
	sh := c.shard()
	sh.mu.Lock()
	if c.closing() {
		sh.mu.Unlock()
		return 0, c.opErr("write", net.ErrClosed)
	}
	n, err := c.sc.Write(p)
	if n == 0 && wouldBlock(err) {
		sh.mu.Unlock() // nothing changed
		return 0, ErrWouldBlock
	}
	sh.unlock()
	switch {
	case n == len(p):
		return n, nil
	case err == nil || wouldBlock(err):
		return n, ErrWouldBlock
	}
	return n, c.opErr("write", err)
}

// CloseWrite shuts down the sending half: a FIN follows the data written
// (shutdown(SHUT_WR)). Reading, and the handler's events, go on.
func (c *CallbackConn) CloseWrite() error {
	sh := c.shard()
	sh.mu.Lock()
	if c.closing() {
		sh.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	err := c.sc.CloseWrite()
	sh.unlock()
	if err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// Close closes the connection as TCPConn.Close does (the data written is
// sent and the connection shuts down in the background; unread received
// data makes it a reset, as in the kernel). The handler's OnClose follows
// with a nil error, once the method that called Close (if a handler did)
// has returned; no other event does. A second Close returns net.ErrClosed.
func (c *CallbackConn) Close() error {
	return c.close(false)
}

// Abort resets the connection (Close with SO_LINGER 0).
func (c *CallbackConn) Abort() error {
	return c.close(true)
}

func (c *CallbackConn) close(abort bool) error {
	sh := c.shard()
	sh.mu.Lock()
	if c.closing() {
		sh.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	c.st.Or(stClosing) // without stStackClosed: the program's own close
	if abort {
		c.sc.Abort()
	} else {
		c.sc.Close()
	}
	c.sc.SetOwner(nil) // the core's connection may live on; c hears no more of it
	sh.unlock()
	c.post(evClosed)
	return nil
}

// LocalAddr returns the local address.
func (c *CallbackConn) LocalAddr() netip.AddrPort { return c.sc.LocalAddr() }

// RemoteAddr returns the peer's address.
func (c *CallbackConn) RemoteAddr() netip.AddrPort { return c.sc.RemoteAddr() }

// SetContext stores a value of the program's with the connection (its
// per-connection state), and Context returns it. They are not
// synchronised: use them from the handler's methods, which are never
// called two at a time for one connection, or guard them yourself.
func (c *CallbackConn) SetContext(v any) { c.ctx = v }

// Context returns the value SetContext stored, or nil.
func (c *CallbackConn) Context() any { return c.ctx }

// SetNoDelay turns Nagle's algorithm off (true, the default) or on.
func (c *CallbackConn) SetNoDelay(noDelay bool) {
	sh := c.shard()
	sh.mu.Lock()
	c.sc.SetNoDelay(noDelay)
	sh.unlock()
}

// SetReadBuffer sets the receive buffer size (SO_RCVBUF).
func (c *CallbackConn) SetReadBuffer(bytes int) {
	sh := c.shard()
	sh.mu.Lock()
	c.sc.SetReadBuffer(bytes)
	sh.unlock()
}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF).
func (c *CallbackConn) SetWriteBuffer(bytes int) {
	sh := c.shard()
	sh.mu.Lock()
	c.sc.SetWriteBuffer(bytes)
	sh.unlock()
}

// CallbackListener is a TCP listener whose connections are CallbackConns:
// each is accepted as soon as its handshake completes, on the stack's
// goroutine, and its handler's OnOpen is called.
type CallbackListener struct {
	h      Handler
	parts  []*listenPart
	addr   netip.AddrPort
	closed atomic.Bool
}

// listenPart is a CallbackListener's part in one shard; it owns the core
// listener there, so its wake-up says which shard has connections.
type listenPart struct {
	l  *CallbackListener
	sh *shard
	sl *stack.TCPListener
}

// ListenCallback listens on address as Listen does (network "tcp",
// "tcp4" or "tcp6") and calls h for every connection it accepts. The accept queue (backlog 128 as Listen's) holds
// connections only until the stack's goroutine accepts them, at once; its
// length is the stack's maximum, as Listen's.
func (s *Stack) ListenCallback(network, address string, h Handler) (*CallbackListener, error) {
	if h == nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: errors.New("ustack: nil Handler")}
	}
	p, fam, err := parseNetwork(network)
	if err == nil && p != protoTCP {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ba, err := parseAddr(address, true, fam)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	addr := ba.addr
	l := &CallbackListener{h: h}
	for i, sh := range s.shards {
		sh.mu.Lock()
		var sl *stack.TCPListener
		err := error(net.ErrClosed)
		if !sh.closed {
			sl, err = sh.core.ListenOpts(addr, partBacklog(0, i, len(s.shards)), stack.BindOptions{V6Only: ba.v6only})
		}
		if err != nil {
			sh.mu.Unlock()
			l.Close()
			return nil, opError("listen", network, nil, net.TCPAddrFromAddrPort(addr), err)
		}
		part := &listenPart{l: l, sh: sh, sl: sl}
		sl.SetOwner(part)
		sh.register(part)
		sh.mu.Unlock()
		l.parts = append(l.parts, part)
		addr = sl.Addr() // the first part picks the port the others take
	}
	l.addr = addr
	return l, nil
}

// Addr returns the address the listener listens on.
func (l *CallbackListener) Addr() netip.AddrPort { return l.addr }

// Close stops listening: connections not yet accepted are reset; those
// accepted live on.
func (l *CallbackListener) Close() error {
	if l.closed.Swap(true) {
		return opError("close", "tcp", nil, net.TCPAddrFromAddrPort(l.addr), net.ErrClosed)
	}
	for _, p := range l.parts {
		p.sh.mu.Lock()
		p.sl.Close()
		p.sh.unregister(p)
		p.sh.unlock()
	}
	return nil
}

// wake implements waker: a connection to accept in this part's shard.
func (p *listenPart) wake(ev stack.Events) {
	if ev&stack.EventReadable != 0 {
		p.accept()
	}
}

func (p *listenPart) closeFromStack() { p.l.closed.Store(true) }

// accept takes every connection in the part's accept queue, one at a
// time, and runs its handler from OnOpen (holding stRunning from the
// start, so OnOpen is first whatever other goroutines post meanwhile).
func (p *listenPart) accept() {
	sh := p.sh
	for {
		sh.mu.Lock()
		if sh.closed || p.l.closed.Load() {
			sh.mu.Unlock()
			return
		}
		sc := p.sl.Accept()
		if sc == nil {
			sh.mu.Unlock()
			return
		}
		pending := evOpen | stRunning
		if sc.Readable() {
			pending |= evReadable // data that came with or after the handshake
		}
		c := sh.newCallbackConn(sc, p.l.h, pending)
		sh.applyDefaults(sc)
		sh.unlock()
		c.run()
	}
}

// DialCallback connects from laddr (zero: any address, an ephemeral port)
// to raddr without waiting: it returns once the SYN is on its way, and h
// hears OnOpen when the handshake completes or OnClose with the error
// (ECONNREFUSED, ETIMEDOUT, …) when it fails — possibly before
// DialCallback has returned. Write from OnOpen on (before it, Write
// returns ErrWouldBlock).
func (s *Stack) DialCallback(laddr, raddr netip.AddrPort, h Handler) (*CallbackConn, error) {
	laddr = netip.AddrPortFrom(laddr.Addr().Unmap(), laddr.Port())
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	if h == nil {
		return nil, opError("dial", "tcp", nil, net.TCPAddrFromAddrPort(raddr), errors.New("ustack: nil Handler"))
	}
	var c *CallbackConn
	_, err := s.open(laddr, raddr, func(sh *shard, sc *stack.TCPConn) {
		c = sh.newCallbackConn(sc, h, 0)
		sh.applyDefaults(sc)
	})
	if err != nil {
		return nil, opError("dial", "tcp", nil, net.TCPAddrFromAddrPort(raddr), err)
	}
	return c, nil
}
