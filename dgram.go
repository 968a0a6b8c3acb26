package ustack

import (
	"net"
	"os"
	"sync"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/stack"
)

// dgramSock is what the datagram sockets — UDPConn, PingConn and a
// forwarder's UDPFlow — share: the shard their endpoint lives in, one
// reader at a time, a read signal, read and write deadlines, and a close
// claimed once by Close or Stack.Close. Each socket embeds one and adds
// its endpoint and addresses; reads wait in block, writes never wait.
type dgramSock struct {
	sh       *shard
	network  string   // for errors: "udp", "ping4", "ping6"
	laddr    net.Addr // the error's source and LocalAddr
	remote   net.Addr // the error's address when the call names none (a flow's client), or nil
	rmu      sync.Mutex
	rsig     signal
	rdl, wdl deadline
	once     closeFlag
	closing  chan struct{}
}

func (d *dgramSock) init(sh *shard, network string, laddr, remote net.Addr) {
	d.sh, d.network, d.laddr, d.remote = sh, network, laddr, remote
	d.rsig = newSignal()
	d.closing = make(chan struct{})
}

func (d *dgramSock) wake(stack.Events) { d.rsig.notify() }

func (d *dgramSock) isClosing() bool { return isDone(d.closing) }

func (d *dgramSock) opErr(op string, addr net.Addr, err error) error {
	if addr == nil {
		addr = d.remote
	}
	return opError(op, d.network, d.laddr, addr, err)
}

// read waits, one reader at a time, until try (under the shard lock)
// is done, the read deadline passes or the socket closes; the error is
// the wait's, as an *net.OpError.
func (d *dgramSock) read(try func(int) tryResult) error {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if err := block(d.sh.self[:], 0, &waitOn{sig: d.rsig, dl: &d.rdl, closing: d.closing}, try); err != nil {
		return d.opErr("read", nil, err)
	}
	return nil
}

// write runs send under the shard lock unless the socket is closing or
// its write deadline passed; the caller wraps the error with the
// destination.
func (d *dgramSock) write(send func(now clock.Instant) (int, error)) (int, error) {
	if d.isClosing() {
		return 0, net.ErrClosed
	}
	if d.wdl.expired() {
		return 0, os.ErrDeadlineExceeded
	}
	sh := d.sh
	sh.mu.Lock()
	if d.isClosing() {
		sh.mu.Unlock()
		return 0, net.ErrClosed
	}
	n, err := send(sh.s.now())
	sh.unlock()
	return n, err
}

// close is Close for socket self on endpoint ep: blocked reads return
// net.ErrClosed, the endpoint is closed, and a second Close (or one
// after Stack.Close) fails with net.ErrClosed.
func (d *dgramSock) close(self sockCloser, ep interface{ Close() }) error {
	if !d.once.claim() {
		return d.opErr("close", nil, net.ErrClosed)
	}
	close(d.closing)
	d.rsig.notify() // a waiting read sees the close
	d.sh.mu.Lock()
	ep.Close()
	d.sh.unregister(self)
	d.sh.unlock()
	d.rdl.stop()
	d.wdl.stop()
	return nil
}

// closeFromStack implements sockCloser.
func (d *dgramSock) closeFromStack() {
	if d.once.claim() {
		close(d.closing)
		d.rdl.stop()
		d.wdl.stop()
	}
}

// SetDeadline sets both deadlines, as package net's sockets: a deadline
// applies to a read already waiting as well as to later calls (see
// TCPConn.SetDeadline). It fails with net.ErrClosed after Close.
func (d *dgramSock) SetDeadline(t time.Time) error {
	if d.isClosing() {
		return d.opErr("set", nil, net.ErrClosed)
	}
	d.rdl.set(t)
	d.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline of the socket's reads, including one
// already waiting.
func (d *dgramSock) SetReadDeadline(t time.Time) error {
	if d.isClosing() {
		return d.opErr("set", nil, net.ErrClosed)
	}
	d.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline of the socket's writes. They never
// wait, so only a deadline already passed matters: they fail with
// os.ErrDeadlineExceeded.
func (d *dgramSock) SetWriteDeadline(t time.Time) error {
	if d.isClosing() {
		return d.opErr("set", nil, net.ErrClosed)
	}
	d.wdl.set(t)
	return nil
}
