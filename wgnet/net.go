package wgnet

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/ustack/ustack"
)

// TCPConn is a TCP connection of a Net: ustack's, which has every method
// of netstack's (gVisor's gonet.TCPConn) and those of *net.TCPConn.
type TCPConn = ustack.TCPConn

// UDPConn is a UDP socket of a Net: ustack's, which has every method of
// netstack's (gVisor's gonet.UDPConn) and those of *net.UDPConn.
type UDPConn = ustack.UDPConn

// TCPListener is a TCP listener of a Net: ustack's, with Shutdown as
// gVisor's gonet.TCPListener has it.
type TCPListener struct {
	*ustack.Listener
	once sync.Once
	err  error
}

// Close stops listening; pending and later Accepts fail. It returns nil
// after Shutdown, which closed the listener already, as gonet's does.
func (l *TCPListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// Shutdown stops listening, as gonet's does (net/http's Server calls it
// to stop a server): pending Accepts return, connections that were not
// accepted yet are reset.
func (l *TCPListener) Shutdown() { l.Close() }

// wildcard returns addr, or, if it has no address and the Net has IPv6,
// the IPv6 unspecified address with addr's port: a socket on every
// address of both families (no IPV6_V6ONLY), as netstack's is — it
// takes an address-less AddrPort as IPv6's, and gVisor's IPv6 sockets
// take IPv4 too. A Net with IPv4 only keeps 0.0.0.0.
func (n *Net) wildcard(addr netip.AddrPort) netip.AddrPort {
	if !addr.Addr().IsValid() && n.hasV6 {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), addr.Port())
	}
	return addr
}

// addrPort converts addr, as netstack does: a nil address is the zero
// AddrPort, an IPv4 address in IPv6 form is the IPv4 address.
func addrPort(ip net.IP, port int) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

// DialContextTCPAddrPort connects to addr over TCP, as netstack's does.
func (n *Net) DialContextTCPAddrPort(ctx context.Context, addr netip.AddrPort) (*TCPConn, error) {
	return n.s.DialTCP(ctx, netip.AddrPort{}, addr)
}

// DialContextTCP connects to addr over TCP; a nil addr is the zero
// address (and fails).
func (n *Net) DialContextTCP(ctx context.Context, addr *net.TCPAddr) (*TCPConn, error) {
	if addr == nil {
		return n.DialContextTCPAddrPort(ctx, netip.AddrPort{})
	}
	return n.DialContextTCPAddrPort(ctx, addrPort(addr.IP, addr.Port))
}

// DialTCPAddrPort connects to addr over TCP, with no deadline but the
// stack's (SYN retries).
func (n *Net) DialTCPAddrPort(addr netip.AddrPort) (*TCPConn, error) {
	return n.DialContextTCPAddrPort(context.Background(), addr)
}

// DialTCP connects to addr over TCP.
func (n *Net) DialTCP(addr *net.TCPAddr) (*TCPConn, error) {
	return n.DialContextTCP(context.Background(), addr)
}

// ListenTCPAddrPort listens for TCP connections on addr: an address of
// the Net, or none (every address of both families); port 0 picks one.
// The accept queue holds 4096 connections (somaxconn, as gonet's
// listeners).
func (n *Net) ListenTCPAddrPort(addr netip.AddrPort) (*TCPListener, error) {
	l, err := n.s.ListenTCPAddrPort(n.wildcard(addr), 0)
	if err != nil {
		return nil, err
	}
	return &TCPListener{Listener: l}, nil
}

// ListenTCP listens for TCP connections on addr; nil listens on every
// address, on a port the stack picks.
func (n *Net) ListenTCP(addr *net.TCPAddr) (*TCPListener, error) {
	if addr == nil {
		return n.ListenTCPAddrPort(netip.AddrPort{})
	}
	return n.ListenTCPAddrPort(addrPort(addr.IP, addr.Port))
}

// DialUDPAddrPort opens a UDP socket on laddr (zero: every address, a
// port the stack picks), connected to raddr unless raddr is zero, as
// netstack's does.
func (n *Net) DialUDPAddrPort(laddr, raddr netip.AddrPort) (*UDPConn, error) {
	if raddr.Addr().IsValid() || raddr.Port() > 0 {
		return n.s.DialUDPAddrPort(laddr, raddr)
	}
	return n.s.ListenUDPAddrPort(n.wildcard(laddr))
}

// ListenUDPAddrPort opens an unconnected UDP socket on laddr.
func (n *Net) ListenUDPAddrPort(laddr netip.AddrPort) (*UDPConn, error) {
	return n.DialUDPAddrPort(laddr, netip.AddrPort{})
}

// DialUDP opens a UDP socket on laddr (nil: any), connected to raddr
// unless it is nil.
func (n *Net) DialUDP(laddr, raddr *net.UDPAddr) (*UDPConn, error) {
	var la, ra netip.AddrPort
	if laddr != nil {
		la = addrPort(laddr.IP, laddr.Port)
	}
	if raddr != nil {
		ra = addrPort(raddr.IP, raddr.Port)
	}
	return n.DialUDPAddrPort(la, ra)
}

// ListenUDP opens an unconnected UDP socket on laddr (nil: any).
func (n *Net) ListenUDP(laddr *net.UDPAddr) (*UDPConn, error) {
	return n.DialUDP(laddr, nil)
}
