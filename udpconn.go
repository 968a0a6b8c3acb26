package ustack

import (
	"errors"
	"net"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/stack"
)

// UDPConn is a UDP socket on a Stack. It implements net.PacketConn, and
// net.Conn when made by Dial (connected: Read and Write use the dialed
// peer, and datagrams from other sources are discarded).
type UDPConn struct {
	dgramSock
	ep   *stack.UDPEndpoint
	peer netip.AddrPort // set for a connected socket
}

var (
	_ net.PacketConn = (*UDPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
)

// newUDPConn wraps ep; the caller holds sh.mu.
func (sh *shard) newUDPConn(ep *stack.UDPEndpoint, peer netip.AddrPort) *UDPConn {
	u := &UDPConn{ep: ep, peer: peer}
	u.init(sh, "udp", net.UDPAddrFromAddrPort(ep.LocalAddr()), nil)
	ep.SetOwner(u)
	sh.register(u)
	return u
}

// ReadFromUDPAddrPort reads one datagram into p (truncating it if p is
// short) and returns its length and sender. It does not allocate.
func (u *UDPConn) ReadFromUDPAddrPort(p []byte) (int, netip.AddrPort, error) {
	var n int
	var from netip.AddrPort
	var err error
	if werr := u.read(func(int) tryResult {
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
		return 0, netip.AddrPort{}, werr
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
	n, err := u.write(func(now clock.Instant) (int, error) {
		return u.ep.WriteTo(now, p, netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()))
	})
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
func (u *UDPConn) Close() error { return u.close(u, u.ep) }

// LocalAddr returns the bound address.
func (u *UDPConn) LocalAddr() net.Addr { return u.laddr }

// RemoteAddr returns the connected peer, or nil.
func (u *UDPConn) RemoteAddr() net.Addr {
	if !u.peer.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(u.peer)
}

// samePeer reports whether a datagram from from comes from peer: the same
// address and port, zones aside (a peer dialed as "[fe80::1%1]:53" sends
// from "[fe80::1%eth0]:53", the NIC's name).
func samePeer(from, peer netip.AddrPort) bool {
	return from.Port() == peer.Port() && from.Addr().WithZone("") == peer.Addr().WithZone("")
}
