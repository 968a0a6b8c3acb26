package ustack

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// TCPConn is a TCP connection on a Stack. It implements net.Conn and the
// extra methods of *net.TCPConn. Its methods are safe for concurrent use;
// one Read and one Write can block at the same time, as with package net.
type TCPConn struct {
	s  *Stack
	sc *stack.TCPConn

	laddr, raddr *net.TCPAddr

	rmu, wmu     sync.Mutex // one reader, one writer at a time
	rsig, wsig   signal
	rdl, wdl     deadline
	closeOnce    sync.Once
	closing      chan struct{} // closed by Close
	lingerSet    bool
	lingerSecond int
}

var _ net.Conn = (*TCPConn)(nil)

// newTCPConn wraps sc; the caller holds s.mu.
func (s *Stack) newTCPConn(sc *stack.TCPConn) *TCPConn {
	c := &TCPConn{
		s:       s,
		sc:      sc,
		laddr:   net.TCPAddrFromAddrPort(sc.LocalAddr()),
		raddr:   net.TCPAddrFromAddrPort(sc.RemoteAddr()),
		rsig:    newSignal(),
		wsig:    newSignal(),
		closing: make(chan struct{}),
	}
	sc.SetOwner(c)
	s.register(c)
	return c
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

func (c *TCPConn) opErr(op string, err error) error {
	return opError(op, "tcp", c.laddr, c.raddr, err)
}

func (c *TCPConn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// Read reads data from the connection (net.Conn). It returns io.EOF after
// the peer's FIN, and errors that satisfy errors.Is with
// syscall.ECONNRESET, syscall.ETIMEDOUT, os.ErrDeadlineExceeded or
// net.ErrClosed.
func (c *TCPConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	s := c.s
	for {
		if c.isClosing() {
			return 0, c.opErr("read", net.ErrClosed)
		}
		dl, passed := c.rdl.wait()
		if passed {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		s.mu.Lock()
		if c.isClosing() {
			s.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		}
		n, err := c.sc.Read(p)
		if !errors.Is(err, stack.ErrWouldBlock) {
			s.flushLocked() // reading may open the window: send the update
			s.mu.Unlock()
			return n, c.opErr("read", err)
		}
		s.mu.Unlock()
		select {
		case <-c.rsig:
		case <-dl:
		case <-c.closing:
		}
	}
}

// Write writes p to the connection (net.Conn), blocking until all of it is
// in the send buffer or an error occurs.
func (c *TCPConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	s := c.s
	total := 0
	for {
		if c.isClosing() {
			return total, c.opErr("write", net.ErrClosed)
		}
		dl, passed := c.wdl.wait()
		if passed {
			return total, c.opErr("write", os.ErrDeadlineExceeded)
		}
		s.mu.Lock()
		if c.isClosing() {
			s.mu.Unlock()
			return total, c.opErr("write", net.ErrClosed)
		}
		n, err := c.sc.Write(p[total:])
		total += n
		if n > 0 {
			s.flushLocked()
		}
		s.mu.Unlock()
		if total == len(p) {
			return total, nil
		}
		if err != nil && !errors.Is(err, stack.ErrWouldBlock) {
			return total, c.opErr("write", err)
		}
		select {
		case <-c.wsig:
		case <-dl:
		case <-c.closing:
		}
	}
}

// Close closes the connection (net.Conn). It returns at once and the
// connection shuts down in the background, unless SetLinger set a positive
// linger time (then Close waits up to that long for the data to be sent
// and acknowledged) or zero (then the connection is reset).
func (c *TCPConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = nil
		close(c.closing)
		s := c.s
		s.mu.Lock()
		if c.lingerSet && c.lingerSecond == 0 {
			c.sc.Abort()
		} else {
			c.sc.Close()
		}
		s.unregister(c)
		s.flushLocked()
		s.mu.Unlock()
		c.rdl.stop()
		c.wdl.stop()
		if c.lingerSet && c.lingerSecond > 0 {
			c.linger(time.Duration(c.lingerSecond) * time.Second)
		}
	})
	if err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// linger waits until everything sent was acknowledged, the connection
// ended, or d passed (SO_LINGER with a positive time).
func (c *TCPConn) linger(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		c.s.mu.Lock()
		info := c.sc.Info()
		c.s.mu.Unlock()
		if info.State == tcp.Closed || info.SndBuffered == 0 && info.Unacked == 0 {
			return
		}
		select {
		case <-c.wsig:
		case <-t.C:
			return
		case <-c.s.done:
			return
		}
	}
}

// closeFromStack is Stack.Close's way of closing the connection: blocked
// calls return net.ErrClosed; the core already reset it.
func (c *TCPConn) closeFromStack() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.rdl.stop()
		c.wdl.stop()
	})
}

// CloseWrite shuts down the sending half (a FIN follows the data written);
// reading goes on.
func (c *TCPConn) CloseWrite() error {
	if c.isClosing() {
		return c.opErr("close", net.ErrClosed)
	}
	c.s.mu.Lock()
	err := c.sc.CloseWrite()
	c.s.flushLocked()
	c.s.mu.Unlock()
	return c.opErr("close", err)
}

// CloseRead shuts down the receiving half: Read returns io.EOF.
func (c *TCPConn) CloseRead() error {
	if c.isClosing() {
		return c.opErr("close", net.ErrClosed)
	}
	c.s.mu.Lock()
	err := c.sc.CloseRead()
	c.s.flushLocked()
	c.s.mu.Unlock()
	c.rsig.notify()
	return c.opErr("close", err)
}

// LocalAddr returns the local address (net.Conn).
func (c *TCPConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer's address (net.Conn).
func (c *TCPConn) RemoteAddr() net.Addr { return c.raddr }

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
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline of Read (net.Conn; see SetDeadline).
func (c *TCPConn) SetReadDeadline(t time.Time) error {
	if c.isClosing() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline of Write (net.Conn; see
// SetDeadline). A Write that times out returns how much it queued.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	if c.isClosing() {
		return c.opErr("set", net.ErrClosed)
	}
	c.wdl.set(t)
	return nil
}

// SetNoDelay turns Nagle's algorithm off (true, package net's default) or
// on (false).
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.sc.SetNoDelay(noDelay)
	c.s.flushLocked()
	return nil
}

// SetKeepAlive turns keep-alive probes on or off.
func (c *TCPConn) SetKeepAlive(on bool) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.sc.SetKeepAlive(c.s.now(), on, 0, 0, 0)
	c.s.flushLocked()
	return nil
}

// SetKeepAlivePeriod sets the idle time before the first probe and the
// interval between probes, as package net does.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	if d <= 0 {
		return c.opErr("set", errors.New("invalid keep-alive period"))
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	// Setting the period does not turn keep-alive on by itself (as in net).
	c.sc.SetKeepAlive(c.s.now(), c.sc.KeepAlive(), d, d, 0)
	c.s.flushLocked()
	return nil
}

// SetKeepAliveConfig sets keep-alive as net.TCPConn.SetKeepAliveConfig.
func (c *TCPConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.sc.SetKeepAlive(c.s.now(), cfg.Enable, cfg.Idle, cfg.Interval, cfg.Count)
	c.s.flushLocked()
	return nil
}

// SetLinger sets SO_LINGER: negative (the default) closes in the
// background, zero resets the connection on Close, positive makes Close
// wait up to sec seconds for the data to be delivered.
func (c *TCPConn) SetLinger(sec int) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.lingerSet = sec >= 0
	c.lingerSecond = sec
	return nil
}

// SetReadBuffer sets the receive buffer size (SO_RCVBUF) and, as on
// Linux, turns off its auto-tuning for this connection.
func (c *TCPConn) SetReadBuffer(bytes int) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.sc.SetReadBuffer(bytes)
	return nil
}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF) and, as on
// Linux, turns off its auto-tuning for this connection.
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.sc.SetWriteBuffer(bytes)
	return nil
}

// SetCongestionControl selects the connection's congestion controller by
// the name it is registered under in package tcp/cc ("cubic", the
// default, "bbr", "reno", or one registered with cc.Register), as the
// TCP_CONGESTION socket option does.
// The new controller starts from the current window. An unknown name
// fails with an error matching syscall.ENOENT, changing nothing.
func (c *TCPConn) SetCongestionControl(name string) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if err := c.sc.SetCongestionControl(name); err != nil {
		return c.opErr("set", err)
	}
	c.s.flushLocked()
	return nil
}

// CongestionControl returns the name of the connection's congestion
// controller.
func (c *TCPConn) CongestionControl() string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.sc.CongestionControl()
}

// Info returns a snapshot of the connection's TCP state (like TCP_INFO).
func (c *TCPConn) Info() tcp.Info {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.sc.Info()
}
