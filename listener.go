package ustack

import (
	"net"
	"sync"
	"time"

	"github.com/ustack/ustack/stack"
)

// Listener is a TCP listener on a Stack; it implements net.Listener.
type Listener struct {
	sh        *shard
	sl        *stack.TCPListener
	addr      *net.TCPAddr
	mu        sync.Mutex // one Accept waits at a time
	sig       signal
	closeOnce sync.Once
	closing   chan struct{}
	dl        deadline
}

var _ net.Listener = (*Listener)(nil)

func (l *Listener) wake(ev stack.Events) { l.sig.notify() }

// Accept waits for and returns the next connection (net.Listener).
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err // a nil net.Conn, not one holding a nil *TCPConn
	}
	return c, nil
}

// AcceptTCP is Accept returning the concrete type.
func (l *Listener) AcceptTCP() (*TCPConn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sh := l.sh
	var c *TCPConn
	if err := sh.block(waitOn{sig: l.sig, dl: &l.dl, closing: l.closing}, func() tryResult {
		sc := l.sl.Accept()
		if sc == nil {
			return tryWait
		}
		c = sh.newTCPConn(sc)
		sh.applyDefaults(sc)
		return tryDone
	}); err != nil {
		return nil, opError("accept", "tcp", nil, l.addr, err)
	}
	return c, nil
}

// Close stops listening (net.Listener); connections not yet accepted are
// reset, and a blocked Accept returns net.ErrClosed.
func (l *Listener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		close(l.closing)
		l.sh.mu.Lock()
		l.sl.Close()
		l.sh.unregister(l)
		l.sh.unlock()
		l.dl.stop()
	})
	if !first {
		return opError("close", "tcp", nil, l.addr, net.ErrClosed)
	}
	return nil
}

func (l *Listener) closeFromStack() {
	l.closeOnce.Do(func() {
		close(l.closing)
		l.dl.stop()
	})
}

// Addr returns the listener's address (net.Listener).
func (l *Listener) Addr() net.Addr { return l.addr }

// SetDeadline sets a deadline for Accept, like net.TCPListener: it
// applies to an Accept already waiting as well as to later ones (see
// TCPConn.SetDeadline). It fails with net.ErrClosed after Close.
func (l *Listener) SetDeadline(t time.Time) error {
	if isDone(l.closing) {
		return opError("set", "tcp", nil, l.addr, net.ErrClosed)
	}
	l.dl.set(t)
	return nil
}
