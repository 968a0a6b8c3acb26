package ustack

import (
	"net"
	"sync"
	"time"

	"github.com/ustack/ustack/stack"
)

// Listener is a TCP listener on a Stack; it implements net.Listener.
type Listener struct {
	// The core's listener in each shard (one per shard: a SYN goes to
	// the shard its flow hashes to), sls[i] in shards[i].
	shards  []*shard
	sls     []*stack.TCPListener
	addr    *net.TCPAddr
	mu      sync.Mutex // one Accept waits at a time
	next    int        // the shard Accept looks at first; guarded by mu
	sig     signal
	once    closeFlag
	closing chan struct{}
	dl      deadline
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
	var c *TCPConn
	first := l.next
	l.next = (l.next + 1) % len(l.shards) // shards take turns being first
	if err := block(l.shards, first, &waitOn{sig: l.sig, dl: &l.dl, closing: l.closing}, func(i int) tryResult {
		sc := l.sls[i].Accept()
		if sc == nil {
			return tryWait
		}
		sh := l.shards[i]
		c = sh.newTCPConn(sc, false)
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
	if !l.once.claim() {
		return opError("close", "tcp", nil, l.addr, net.ErrClosed)
	}
	close(l.closing)
	l.sig.notify() // a waiting Accept sees the close
	for i, sh := range l.shards {
		sh.mu.Lock()
		l.sls[i].Close()
		sh.unregister(l)
		sh.unlock()
	}
	l.dl.stop()
	return nil
}

func (l *Listener) closeFromStack() {
	if l.once.claim() {
		close(l.closing)
		l.dl.stop()
	}
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
