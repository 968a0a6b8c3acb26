package ustack

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/ustack/ustack/stack"
)

// UDPConn is a UDP socket on a Stack. It implements net.PacketConn, and
// net.Conn when made by Dial (connected: Read and Write use the dialed
// peer, and datagrams from other sources are discarded).
type UDPConn struct {
	sh       *shard
	ep       *stack.UDPEndpoint
	laddr    *net.UDPAddr
	peer     netip.AddrPort // set for a connected socket
	rmu      sync.Mutex
	rsig     signal
	rdl, wdl deadline
	once     closeFlag
	closing  chan struct{}
}

var (
	_ net.PacketConn = (*UDPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
)

// newUDPConn wraps ep; the caller holds sh.mu.
func (sh *shard) newUDPConn(ep *stack.UDPEndpoint, peer netip.AddrPort) *UDPConn {
	u := &UDPConn{sh: sh, ep: ep, laddr: net.UDPAddrFromAddrPort(ep.LocalAddr()), peer: peer, rsig: newSignal(), closing: make(chan struct{})}
	ep.SetOwner(u)
	sh.register(u)
	return u
}

func (u *UDPConn) wake(ev stack.Events) { u.rsig.notify() }

func (u *UDPConn) opErr(op string, addr net.Addr, err error) error {
	return opError(op, "udp", u.laddr, addr, err)
}

func (u *UDPConn) isClosing() bool { return isDone(u.closing) }

// ReadFromUDPAddrPort reads one datagram into p (truncating it if p is
// short) and returns its length and sender. It does not allocate.
func (u *UDPConn) ReadFromUDPAddrPort(p []byte) (int, netip.AddrPort, error) {
	u.rmu.Lock()
	defer u.rmu.Unlock()
	var n int
	var from netip.AddrPort
	var err error
	if werr := block(u.sh.self[:], 0, &waitOn{sig: u.rsig, dl: &u.rdl, closing: u.closing}, func(int) tryResult {
		for {
			n, from, err = u.ep.ReadFrom(p)
			switch {
			case err == nil && u.peer.IsValid() && !samePeer(from, u.peer):
				continue // a connected socket takes only its peer's datagrams
			case wouldBlock(err):
				return tryWait
			}
			return tryDone
		}
	}); werr != nil {
		return 0, netip.AddrPort{}, u.opErr("read", nil, werr)
	}
	if err != nil {
		return 0, netip.AddrPort{}, u.opErr("read", nil, err)
	}
	return n, from, nil
}

// ReadFrom reads one datagram (net.PacketConn).
func (u *UDPConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := u.ReadFromUDPAddrPort(p)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToUDPAddrPort sends p as one datagram to addr. It does not
// allocate. Datagrams larger than the MTU are fragmented.
func (u *UDPConn) WriteToUDPAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if u.isClosing() {
		return 0, u.opErr("write", net.UDPAddrFromAddrPort(addr), net.ErrClosed)
	}
	if u.wdl.expired() {
		return 0, u.opErr("write", net.UDPAddrFromAddrPort(addr), os.ErrDeadlineExceeded)
	}
	sh := u.sh
	sh.mu.Lock()
	if u.isClosing() {
		sh.mu.Unlock()
		return 0, u.opErr("write", net.UDPAddrFromAddrPort(addr), net.ErrClosed)
	}
	n, err := u.ep.WriteTo(sh.s.now(), p, netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()))
	sh.unlock()
	if err != nil {
		return n, u.opErr("write", net.UDPAddrFromAddrPort(addr), err)
	}
	return n, nil
}

// WriteTo sends one datagram (net.PacketConn).
func (u *UDPConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, u.opErr("write", addr, &net.AddrError{Err: "not a UDP address", Addr: addrString(addr)})
	}
	ap := ua.AddrPort()
	if u.peer.IsValid() {
		return 0, u.opErr("write", addr, errors.New("use of WriteTo with pre-connected connection"))
	}
	return u.WriteToUDPAddrPort(p, ap)
}

func addrString(a net.Addr) string {
	if a == nil {
		return "<nil>"
	}
	return a.String()
}

// Read reads a datagram from the connected peer (net.Conn).
func (u *UDPConn) Read(p []byte) (int, error) {
	n, _, err := u.ReadFromUDPAddrPort(p)
	return n, err
}

// Write sends a datagram to the connected peer (net.Conn).
func (u *UDPConn) Write(p []byte) (int, error) {
	if !u.peer.IsValid() {
		return 0, u.opErr("write", nil, errors.New("destination address required"))
	}
	return u.WriteToUDPAddrPort(p, u.peer)
}

// Close closes the socket; blocked reads return net.ErrClosed.
func (u *UDPConn) Close() error {
	if !u.once.claim() {
		return u.opErr("close", nil, net.ErrClosed)
	}
	close(u.closing)
	u.rsig.notify() // a waiting read sees the close
	u.sh.mu.Lock()
	u.ep.Close()
	u.sh.unregister(u)
	u.sh.unlock()
	u.rdl.stop()
	u.wdl.stop()
	return nil
}

func (u *UDPConn) closeFromStack() {
	if u.once.claim() {
		close(u.closing)
		u.rdl.stop()
		u.wdl.stop()
	}
}

// LocalAddr returns the bound address.
func (u *UDPConn) LocalAddr() net.Addr { return u.laddr }

// RemoteAddr returns the connected peer, or nil.
func (u *UDPConn) RemoteAddr() net.Addr {
	if !u.peer.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(u.peer)
}

// SetDeadline sets both deadlines, as net.UDPConn: a deadline applies to
// a read already waiting as well as to later calls (see
// TCPConn.SetDeadline). It fails with net.ErrClosed after Close.
func (u *UDPConn) SetDeadline(t time.Time) error {
	if u.isClosing() {
		return u.opErr("set", nil, net.ErrClosed)
	}
	u.rdl.set(t)
	u.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline of ReadFrom and Read.
func (u *UDPConn) SetReadDeadline(t time.Time) error {
	if u.isClosing() {
		return u.opErr("set", nil, net.ErrClosed)
	}
	u.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline of WriteTo and Write. They never
// wait on ustack, so only a deadline already passed matters: it makes
// them fail with os.ErrDeadlineExceeded.
func (u *UDPConn) SetWriteDeadline(t time.Time) error {
	if u.isClosing() {
		return u.opErr("set", nil, net.ErrClosed)
	}
	u.wdl.set(t)
	return nil
}

// samePeer reports whether a datagram from from comes from peer: the same
// address and port, zones aside (a peer dialed as "[fe80::1%1]:53" sends
// from "[fe80::1%eth0]:53", the NIC's name).
func samePeer(from, peer netip.AddrPort) bool {
	return from.Port() == peer.Port() && from.Addr().WithZone("") == peer.Addr().WithZone("")
}
