package ustack

import (
	"net"
	"os"
	"sync"
	"time"

	"github.com/ustack/ustack/stack"
)

// Listener is a TCP listener on a Stack; it implements net.Listener.
type Listener struct {
	s         *Stack
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
	s := l.s
	for {
		select {
		case <-l.closing:
			return nil, opError("accept", "tcp", nil, l.addr, net.ErrClosed)
		default:
		}
		dl, passed := l.dl.wait()
		if passed {
			return nil, opError("accept", "tcp", nil, l.addr, os.ErrDeadlineExceeded)
		}
		s.mu.Lock()
		if sc := l.sl.Accept(); sc != nil {
			c := s.newTCPConn(sc)
			s.applyDefaults(sc)
			s.flushLocked()
			s.mu.Unlock()
			return c, nil
		}
		s.mu.Unlock()
		select {
		case <-l.sig:
		case <-l.closing:
		case <-dl:
		}
	}
}

// applyDefaults gives a new connection package net's socket defaults
// (TCP_NODELAY, keep-alive every 15 s) unless the Config says otherwise.
// The caller holds s.mu.
func (s *Stack) applyDefaults(sc *stack.TCPConn) {
	sc.SetNoDelay(!s.cfg.Nagle)
	if ka := s.cfg.KeepAlive; ka >= 0 {
		if ka == 0 {
			ka = 15 * time.Second
		}
		sc.SetKeepAlive(s.now(), true, ka, ka, 9)
	}
}

// Close stops listening (net.Listener); connections not yet accepted are
// reset, and a blocked Accept returns net.ErrClosed.
func (l *Listener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		close(l.closing)
		l.s.mu.Lock()
		l.sl.Close()
		l.s.unregister(l)
		l.s.flushLocked()
		l.s.mu.Unlock()
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
	select {
	case <-l.closing:
		return opError("set", "tcp", nil, l.addr, net.ErrClosed)
	default:
	}
	l.dl.set(t)
	return nil
}
