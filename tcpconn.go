package ustack

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// TCPConn is a TCP connection on a Stack. It implements net.Conn and the
// extra methods of *net.TCPConn. Its methods are safe for concurrent use;
// one Read and one Write can block at the same time, as with package net.
//
// An idle TCPConn is small (docs/ARCHITECTURE.md, "Memory per
// connection"): its wake-up channels are made by the first call that
// waits, its deadlines by the first Set*Deadline, and its close is a flag.
type TCPConn struct {
	sh *shard
	sc *stack.TCPConn

	// laddr and raddr are the addresses as package net has them, made
	// on first use (LocalAddr, RemoteAddr, an error): a connection that
	// never asks (crr) saves four of its thirty allocations.
	laddr, raddr atomic.Pointer[net.TCPAddr]

	rmu, wmu sync.Mutex // one reader, one writer at a time
	// rsig and wsig are the waiting reader's and writer's signals, made
	// when a call first waits. (The stack wakes connections after it
	// unlocks, so they are atomic rather than guarded by the lock.)
	rsig, wsig lazySignal
	// rdl and wdl are the deadlines, nil until first set.
	rdl, wdl  atomic.Pointer[deadline]
	closed    atomic.Bool // Close or the stack closed it
	lingerSet bool
	// listed: c is in its shard's socks, where it goes when its core
	// connection ends before its Close (shard.endedLocked); guarded by
	// the shard lock.
	listed       bool
	lingerSecond int32
}

var _ net.Conn = (*TCPConn)(nil)

// newTCPConn wraps sc; the caller holds sh.mu. A connection still in its
// handshake (a dial, TCPRequest.Accept) has its write signal made at once,
// for the call that waits for the handshake.
func (sh *shard) newTCPConn(sc *stack.TCPConn, handshake bool) *TCPConn {
	c := &TCPConn{sh: sh, sc: sc}
	if handshake {
		c.wsig.get()
	}
	sc.SetOwner(c) // Stack.Close finds c through it (shard.close)
	return c
}

// unlistLocked takes c out of its shard's socks if shard.endedLocked
// put it there. The caller holds the shard lock.
func (c *TCPConn) unlistLocked() {
	if c.listed {
		c.listed = false
		c.sh.unregister(c)
	}
}

// abandonLocked forgets a connection whose handshake failed (a dial, a
// TCPRequest.Accept): nothing waits on c any more, so the core's
// connection, ended, no longer reports to it. The caller holds the shard
// lock.
func (c *TCPConn) abandonLocked() {
	c.sc.SetOwner(nil)
	c.unlistLocked()
}

// wake implements waker.
func (c *TCPConn) wake(ev stack.Events) {
	if ev&(stack.EventReadable|stack.EventClosed|stack.EventEstablished) != 0 {
		c.rsig.notify()
	}
	if ev&(stack.EventWritable|stack.EventClosed|stack.EventEstablished) != 0 {
		c.wsig.notify()
	}
}

// lazySignal is a signal made on first use: an idle connection has none.
type lazySignal struct{ p atomic.Pointer[signal] }

// get returns the signal, made on the first call.
func (l *lazySignal) get() signal {
	if p := l.p.Load(); p != nil {
		return *p
	}
	s := newSignal()
	l.p.CompareAndSwap(nil, &s)
	return *l.p.Load()
}

// notify notifies the signal, if it was made: a call that makes it later
// tries before it waits, so it misses nothing.
func (l *lazySignal) notify() {
	if p := l.p.Load(); p != nil {
		p.notify()
	}
}

// drop forgets the signal (its last waiter is gone).
func (l *lazySignal) drop() { l.p.Store(nil) }

// deadlineOf returns *p, made on first use.
func deadlineOf(p *atomic.Pointer[deadline]) *deadline {
	if d := p.Load(); d != nil {
		return d
	}
	p.CompareAndSwap(nil, new(deadline))
	return p.Load()
}

func (c *TCPConn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err // before the addresses are made
	}
	return opError(op, "tcp", c.localTCPAddr(), c.remoteTCPAddr(), err)
}

// localTCPAddr and remoteTCPAddr return laddr and raddr, made on the
// first call (the core connection's addresses never change).
func (c *TCPConn) localTCPAddr() *net.TCPAddr {
	return tcpAddrOnce(&c.laddr, c.sc.LocalAddr)
}

func (c *TCPConn) remoteTCPAddr() *net.TCPAddr {
	return tcpAddrOnce(&c.raddr, c.sc.RemoteAddr)
}

func tcpAddrOnce(p *atomic.Pointer[net.TCPAddr], get func() netip.AddrPort) *net.TCPAddr {
	if a := p.Load(); a != nil {
		return a
	}
	a := net.TCPAddrFromAddrPort(get())
	if p.CompareAndSwap(nil, a) {
		return a
	}
	return p.Load()
}

func (c *TCPConn) isClosing() bool { return c.closed.Load() }

// Read reads data from the connection (net.Conn). It returns io.EOF after
// the peer's FIN, and errors that satisfy errors.Is with
// syscall.ECONNRESET, syscall.ETIMEDOUT, os.ErrDeadlineExceeded or
// net.ErrClosed.
func (c *TCPConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	var n int
	var err error
	werr := block(c.sh.self[:], 0, &waitOn{sig: c.rsig.get(), dlp: &c.rdl, closed: &c.closed}, func(int) tryResult {
		n, err = c.sc.Read(p) // reading may open the window: unlock sends the update
		if wouldBlock(err) {
			return tryWait
		}
		return tryDone
	})
	c.rmu.Unlock()
	return c.result("read", n, err, werr)
}

// result is what a call that waited in block returns: n and the call's
// error, or the wait's, wrapped. It is out of line so that the callers'
// frames, where blocked goroutines sit, stay small.
//
//go:noinline
func (c *TCPConn) result(op string, n int, err, werr error) (int, error) {
	if werr != nil {
		return n, c.opErr(op, werr)
	}
	return n, c.opErr(op, err)
}

// Write writes p to the connection (net.Conn), blocking until all of it is
// in the send buffer or an error occurs.
func (c *TCPConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	total := 0
	var err error
	// The write signal is made only if the Write has to wait (waitOn.lazy):
	// most find room at once (crr's two Writes made a signal each).
	if werr := block(c.sh.self[:], 0, &waitOn{lazy: &c.wsig, dlp: &c.wdl, closed: &c.closed}, func(int) tryResult {
		var n int
		n, err = c.sc.Write(p[total:])
		total += n
		switch {
		case total == len(p) || err != nil && !wouldBlock(err):
			return tryDone
		case n > 0:
			return tryMoved
		}
		return tryWait
	}); werr != nil {
		return total, c.opErr("write", werr)
	}
	if total == len(p) {
		return total, nil
	}
	return total, c.opErr("write", err)
}

// Close closes the connection (net.Conn). It returns at once and the
// connection shuts down in the background, unless SetLinger set a positive
// linger time (then Close waits up to that long for the data to be sent
// and acknowledged) or zero (then the connection is reset).
func (c *TCPConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opErr("close", net.ErrClosed)
	}
	{
		sh := c.sh
		sh.mu.Lock()
		c.rsig.notify() // waiting calls see the close
		c.wsig.notify()
		if c.lingerSet && c.lingerSecond == 0 {
			c.sc.Abort()
		} else {
			c.sc.Close()
		}
		if !c.lingerSet || c.lingerSecond == 0 {
			// Nothing waits on this wrapper any more (blocked calls see
			// the close channel): the core's connection, which lives on
			// through FIN-WAIT and TIME-WAIT (60 s), no longer keeps it
			// alive or wakes it. Linger waits for the wake-ups.
			c.sc.SetOwner(nil)
		}
		c.unlistLocked()
		sh.unlock()
		c.stopDeadlines()
		if c.lingerSet && c.lingerSecond > 0 {
			c.linger(time.Duration(c.lingerSecond) * time.Second)
		}
	}
	return nil
}

// stopDeadlines releases the deadlines' timers (the connection closed).
func (c *TCPConn) stopDeadlines() {
	if d := c.rdl.Load(); d != nil {
		d.stop()
	}
	if d := c.wdl.Load(); d != nil {
		d.stop()
	}
}

// linger waits until everything sent was acknowledged, the connection
// ended, or d passed (SO_LINGER with a positive time).
func (c *TCPConn) linger(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	wsig := c.wsig.get()
	for {
		c.sh.mu.Lock()
		info := c.sc.Info()
		c.sh.mu.Unlock()
		if info.State == tcp.Closed || info.SndBuffered == 0 && info.Unacked == 0 {
			return
		}
		select {
		case <-wsig:
		case <-t.C:
			return
		case <-c.sh.s.done:
			return
		}
	}
}

// closeFromStack is Stack.Close's way of closing the connection, under
// the shard lock before the core resets it: blocked calls return
// net.ErrClosed once woken (after the lock, with EventClosed).
func (c *TCPConn) closeFromStack() {
	if c.closed.CompareAndSwap(false, true) {
		c.stopDeadlines()
	}
}

// CloseWrite shuts down the sending half (a FIN follows the data written);
// reading goes on.
func (c *TCPConn) CloseWrite() error {
	if c.isClosing() {
		return c.opErr("close", net.ErrClosed)
	}
	c.sh.mu.Lock()
	err := c.sc.CloseWrite()
	c.sh.unlock()
	return c.opErr("close", err)
}

// CloseRead shuts down the receiving half: Read returns io.EOF.
func (c *TCPConn) CloseRead() error {
	if c.isClosing() {
		return c.opErr("close", net.ErrClosed)
	}
	c.sh.mu.Lock()
	err := c.sc.CloseRead()
	c.rsig.notify()
	c.sh.unlock()
	return c.opErr("close", err)
}

// LocalAddr returns the local address (net.Conn).
func (c *TCPConn) LocalAddr() net.Addr { return c.localTCPAddr() }

// RemoteAddr returns the peer's address (net.Conn).
func (c *TCPConn) RemoteAddr() net.Addr { return c.remoteTCPAddr() }

// LocalAddrPort returns the local address as a netip.AddrPort.
func (c *TCPConn) LocalAddrPort() netip.AddrPort { return c.sc.LocalAddr() }

// RemoteAddrPort returns the peer's address as a netip.AddrPort.
func (c *TCPConn) RemoteAddrPort() netip.AddrPort { return c.sc.RemoteAddr() }

// SetDeadline sets the read and write deadlines (net.Conn). As in
// package net, a deadline applies to calls already waiting as well as to
// later ones: one not in the future makes them fail at once with
// os.ErrDeadlineExceeded, a later one extends them, and the zero time
// lets them wait for good. It fails with net.ErrClosed after Close.
func (c *TCPConn) SetDeadline(t time.Time) error {
	if c.isClosing() {
		return c.opErr("set", net.ErrClosed)
	}
	c.setDeadline(&c.rdl, &c.rsig, t)
	c.setDeadline(&c.wdl, &c.wsig, t)
	return nil
}

// setDeadline sets one direction's deadline. The first set makes it, and
// then wakes a call already waiting in that direction, which saw no
// deadline when it began and checks again (block loads the deadline on
// every round).
func (c *TCPConn) setDeadline(p *atomic.Pointer[deadline], sig *lazySignal, t time.Time) {
	d := p.Load()
	if d == nil {
		if t.IsZero() {
			return // nothing to clear
		}
		d = deadlineOf(p)
		d.set(t)
		sig.notify()
		return
	}
	d.set(t)
}

// SetReadDeadline sets the deadline of Read (net.Conn; see SetDeadline).
func (c *TCPConn) SetReadDeadline(t time.Time) error {
	if c.isClosing() {
		return c.opErr("set", net.ErrClosed)
	}
	c.setDeadline(&c.rdl, &c.rsig, t)
	return nil
}

// SetWriteDeadline sets the deadline of Write (net.Conn; see
// SetDeadline). A Write that times out returns how much it queued.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	if c.isClosing() {
		return c.opErr("set", net.ErrClosed)
	}
	c.setDeadline(&c.wdl, &c.wsig, t)
	return nil
}

// SetNoDelay turns Nagle's algorithm off (true, package net's default) or
// on (false).
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	c.sh.mu.Lock()
	c.sc.SetNoDelay(noDelay)
	c.sh.unlock()
	return nil
}

// SetKeepAlive turns keep-alive probes on or off.
func (c *TCPConn) SetKeepAlive(on bool) error {
	c.sh.mu.Lock()
	c.sc.SetKeepAlive(c.sh.s.now(), on, 0, 0, 0)
	c.sh.unlock()
	return nil
}

// SetKeepAlivePeriod sets the idle time before the first probe and the
// interval between probes, as package net does.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	if d <= 0 {
		return c.opErr("set", errors.New("invalid keep-alive period"))
	}
	c.sh.mu.Lock()
	// Setting the period does not turn keep-alive on by itself (as in net).
	c.sc.SetKeepAlive(c.sh.s.now(), c.sc.KeepAlive(), d, d, 0)
	c.sh.unlock()
	return nil
}

// SetKeepAliveConfig sets keep-alive as net.TCPConn.SetKeepAliveConfig.
func (c *TCPConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	c.sh.mu.Lock()
	c.sc.SetKeepAlive(c.sh.s.now(), cfg.Enable, cfg.Idle, cfg.Interval, cfg.Count)
	c.sh.unlock()
	return nil
}

// SetLinger sets SO_LINGER: negative (the default) closes in the
// background, zero resets the connection on Close, positive makes Close
// wait up to sec seconds for the data to be delivered.
func (c *TCPConn) SetLinger(sec int) error {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	c.lingerSet = sec >= 0
	c.lingerSecond = int32(min(max(sec, -1), 1<<30))
	return nil
}

// SetReadBuffer sets the receive buffer size (SO_RCVBUF) and, as on
// Linux, turns off its auto-tuning for this connection.
func (c *TCPConn) SetReadBuffer(bytes int) error {
	c.sh.mu.Lock()
	c.sc.SetReadBuffer(bytes)
	c.sh.unlock() // the call may have unparked the connection: its timers go back into the shard's
	return nil
}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF) and, as on
// Linux, turns off its auto-tuning for this connection.
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	c.sh.mu.Lock()
	c.sc.SetWriteBuffer(bytes)
	c.sh.unlock()
	return nil
}

// SetCongestionControl selects the connection's congestion controller by
// the name it is registered under in package tcp/cc ("cubic", the
// default, "bbr", "reno", or one registered with cc.Register), as the
// TCP_CONGESTION socket option does.
// The new controller starts from the current window. An unknown name
// fails with an error matching syscall.ENOENT, changing nothing.
func (c *TCPConn) SetCongestionControl(name string) error {
	c.sh.mu.Lock()
	err := c.sc.SetCongestionControl(name)
	c.sh.unlock()
	if err != nil {
		return c.opErr("set", err)
	}
	return nil
}

// CongestionControl returns the name of the connection's congestion
// controller.
func (c *TCPConn) CongestionControl() string {
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	return c.sc.CongestionControl()
}

// Info returns a snapshot of the connection's TCP state (like TCP_INFO).
//
// A parked connection is unparked to answer (and parks again when it has
// been idle for a while): unlock rearms the shard's timer for it.
func (c *TCPConn) Info() tcp.Info {
	c.sh.mu.Lock()
	i := c.sc.Info()
	c.sh.unlock()
	return i
}
