package ustack

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/ustack/ustack/stack"
)

// UDPFlow is a flow of a UDP forwarder: the datagrams of one client
// (RFC 4787 endpoint-independent mapping) or of one client to one
// destination (per-tuple mapping), which no socket of the stack took.
// ReadTo and WriteFrom work with either mapping; as a net.Conn (Read,
// Write) it is the client's conversation with its first destination,
// which is the whole flow under per-tuple mapping. Its methods are safe
// for concurrent use.
type UDPFlow struct {
	sh       *shard
	ep       *stack.UDPEndpoint
	client   netip.AddrPort
	dst      netip.AddrPort
	rmu      sync.Mutex
	rsig     signal
	rdl, wdl deadline
	once     closeFlag
	closing  chan struct{}
}

var _ net.Conn = (*UDPFlow)(nil)

// newUDPFlow wraps a forwarder's flow; the caller holds sh.mu.
func (sh *shard) newUDPFlow(ep *stack.UDPEndpoint) *UDPFlow {
	f := &UDPFlow{sh: sh, ep: ep, client: ep.Client(), dst: ep.LocalAddr(), rsig: newSignal(), closing: make(chan struct{})}
	ep.SetOwner(f)
	sh.register(f)
	return f
}

func (f *UDPFlow) wake(stack.Events) { f.rsig.notify() }

func (f *UDPFlow) opErr(op string, err error) error {
	return opError(op, "udp", net.UDPAddrFromAddrPort(f.dst), net.UDPAddrFromAddrPort(f.client), err)
}

func (f *UDPFlow) isClosing() bool { return isDone(f.closing) }

// Client returns the client's address and port: where the flow's
// datagrams come from.
func (f *UDPFlow) Client() netip.AddrPort { return f.client }

// Dst returns the destination of the flow's first datagram (under
// per-tuple mapping, of all of them).
func (f *UDPFlow) Dst() netip.AddrPort { return f.dst }

// ReadTo reads the client's next datagram into p (truncating it if p is
// short) and returns its length and destination.
func (f *UDPFlow) ReadTo(p []byte) (int, netip.AddrPort, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	var n int
	var to netip.AddrPort
	var err error
	if werr := block(f.sh.self[:], 0, &waitOn{sig: f.rsig, dl: &f.rdl, closing: f.closing}, func(int) tryResult {
		n, _, to, err = f.ep.ReadFromTo(p)
		if wouldBlock(err) {
			return tryWait
		}
		return tryDone
	}); werr != nil {
		return 0, netip.AddrPort{}, f.opErr("read", werr)
	}
	if err != nil {
		return 0, netip.AddrPort{}, f.opErr("read", err)
	}
	return n, to, nil
}

// WriteFrom sends p to the client as one datagram from src: under
// endpoint-independent mapping, whichever address and port the answer
// came from. Src must be the stack's or leave through a NIC with
// Spoofing.
func (f *UDPFlow) WriteFrom(p []byte, src netip.AddrPort) (int, error) {
	if f.isClosing() {
		return 0, f.opErr("write", net.ErrClosed)
	}
	if f.wdl.expired() {
		return 0, f.opErr("write", os.ErrDeadlineExceeded)
	}
	sh := f.sh
	sh.mu.Lock()
	if f.isClosing() {
		sh.mu.Unlock()
		return 0, f.opErr("write", net.ErrClosed)
	}
	n, err := f.ep.WriteFrom(sh.s.now(), p, src, f.client)
	sh.unlock()
	if err != nil {
		return n, f.opErr("write", err)
	}
	return n, nil
}

// Read reads the client's next datagram (net.Conn); under
// endpoint-independent mapping, whatever its destination (ReadTo says).
func (f *UDPFlow) Read(p []byte) (int, error) {
	n, _, err := f.ReadTo(p)
	return n, err
}

// Write sends p to the client from Dst (net.Conn).
func (f *UDPFlow) Write(p []byte) (int, error) { return f.WriteFrom(p, f.dst) }

// Close ends the flow: its later datagrams open a new one. A blocked
// ReadTo returns net.ErrClosed.
func (f *UDPFlow) Close() error {
	if !f.once.claim() {
		return f.opErr("close", net.ErrClosed)
	}
	close(f.closing)
	f.rsig.notify() // a waiting read sees the close
	f.sh.mu.Lock()
	f.ep.Close()
	f.sh.unregister(f)
	f.sh.unlock()
	f.rdl.stop()
	f.wdl.stop()
	return nil
}

func (f *UDPFlow) closeFromStack() {
	if f.once.claim() {
		close(f.closing)
		f.rdl.stop()
		f.wdl.stop()
	}
}

// LocalAddr returns Dst (net.Conn).
func (f *UDPFlow) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(f.dst) }

// RemoteAddr returns the client (net.Conn).
func (f *UDPFlow) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(f.client) }

// SetDeadline sets both deadlines (net.Conn): an idle flow's reader
// typically sets one to close the flow after a time without traffic.
func (f *UDPFlow) SetDeadline(t time.Time) error {
	if f.isClosing() {
		return f.opErr("set", net.ErrClosed)
	}
	f.rdl.set(t)
	f.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline of ReadTo and Read.
func (f *UDPFlow) SetReadDeadline(t time.Time) error {
	if f.isClosing() {
		return f.opErr("set", net.ErrClosed)
	}
	f.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline of WriteFrom and Write, which never
// wait: only a deadline already passed matters.
func (f *UDPFlow) SetWriteDeadline(t time.Time) error {
	if f.isClosing() {
		return f.opErr("set", net.ErrClosed)
	}
	f.wdl.set(t)
	return nil
}
