package wgnet

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/ustack/ustack"
)

// PingAddr is the address of a PingConn, as netstack's: an IP address
// whose Network is "ping4" or "ping6".
type PingAddr struct{ addr netip.Addr }

// PingAddrFromAddr returns addr as a *PingAddr.
func PingAddrFromAddr(addr netip.Addr) *PingAddr { return &PingAddr{addr} }

// String returns the address.
func (a PingAddr) String() string { return a.addr.String() }

// Network returns "ping4" or "ping6" by the address's family, "ping"
// for the zero address.
func (a PingAddr) Network() string {
	switch {
	case a.addr.Is4():
		return "ping4"
	case a.addr.Is6():
		return "ping6"
	}
	return "ping"
}

// Addr returns the address.
func (a PingAddr) Addr() netip.Addr { return a.addr }

// PingConn is an ICMP echo socket of a Net, with the methods of
// netstack's: WriteTo and Write send an echo request written whole (the
// ICMP header and data; the stack puts in the socket's identifier and
// the checksum), ReadFrom and Read return the echo replies to the
// socket's identifier, header first. Unlike netstack's, SetWriteDeadline
// works (a passed deadline fails writes). It wraps ustack's PingConn.
type PingConn struct {
	c            *ustack.PingConn
	laddr, raddr PingAddr
}

var (
	_ net.PacketConn = (*PingConn)(nil)
	_ net.Conn       = (*PingConn)(nil)
)

// DialPingAddr opens a ping socket on laddr (invalid: every address of
// raddr's family) that sends to raddr; with an invalid raddr it is
// unconnected, and WriteTo chooses. At least one must be valid; the
// socket is ICMPv6 if either is IPv6.
func (n *Net) DialPingAddr(laddr, raddr netip.Addr) (*PingConn, error) {
	laddr, raddr = laddr.Unmap(), raddr.Unmap()
	if !laddr.IsValid() && !raddr.IsValid() {
		return nil, errors.New("ping dial: invalid address")
	}
	local := laddr
	if !local.IsValid() {
		local = netip.IPv4Unspecified()
		if raddr.Is6() {
			local = netip.IPv6Unspecified()
		}
	}
	var c *ustack.PingConn
	var err error
	if raddr.IsValid() {
		c, err = n.s.DialPing(local, raddr)
	} else {
		c, err = n.s.ListenPing(local, 0)
	}
	if err != nil {
		return nil, err
	}
	return &PingConn{c: c, laddr: PingAddr{local}, raddr: PingAddr{raddr}}, nil
}

// ListenPingAddr opens an unconnected ping socket on laddr.
func (n *Net) ListenPingAddr(laddr netip.Addr) (*PingConn, error) {
	return n.DialPingAddr(laddr, netip.Addr{})
}

// DialPing is DialPingAddr with *PingAddr arguments; nil is the zero
// address.
func (n *Net) DialPing(laddr, raddr *PingAddr) (*PingConn, error) {
	var la, ra netip.Addr
	if laddr != nil {
		la = laddr.addr
	}
	if raddr != nil {
		ra = raddr.addr
	}
	return n.DialPingAddr(la, ra)
}

// ListenPing is ListenPingAddr with a *PingAddr; nil is the zero
// address (and fails).
func (n *Net) ListenPing(laddr *PingAddr) (*PingConn, error) {
	var la netip.Addr
	if laddr != nil {
		la = laddr.addr
	}
	return n.ListenPingAddr(la)
}

// LocalAddr returns the local address, a PingAddr.
func (pc *PingConn) LocalAddr() net.Addr { return pc.laddr }

// RemoteAddr returns the dialed address, a PingAddr (the zero one if
// none was dialed).
func (pc *PingConn) RemoteAddr() net.Addr { return pc.raddr }

// ID returns the socket's echo identifier.
func (pc *PingConn) ID() uint16 { return pc.c.ID() }

// Close closes the socket; blocked reads return.
func (pc *PingConn) Close() error { return pc.c.Close() }

// WriteTo sends p, an echo request (type 8 for ICMPv4, 128 for ICMPv6,
// code 0), to addr: a *PingAddr, a PingAddr or a *net.IPAddr of the
// socket's family.
func (pc *PingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	var a netip.Addr
	switch v := addr.(type) {
	case *PingAddr:
		if v != nil {
			a = v.addr
		}
	case PingAddr:
		a = v.addr
	case *net.IPAddr:
		if v != nil {
			a, _ = netip.AddrFromSlice(v.IP)
		}
	default:
		return 0, errors.New("ping write: wrong net.Addr type")
	}
	a = a.Unmap()
	if a.Is4() != pc.laddr.addr.Is4() || !a.IsValid() {
		return 0, errors.New("ping write: mismatched protocols")
	}
	return pc.c.WriteToAddr(p, a)
}

// Write sends p to the dialed address.
func (pc *PingConn) Write(p []byte) (int, error) { return pc.WriteTo(p, &pc.raddr) }

// ReadFrom reads one echo reply, ICMP header first, and returns its
// sender as a *PingAddr.
func (pc *PingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := pc.c.ReadFromAddr(p)
	if err != nil {
		return 0, nil, err
	}
	return n, &PingAddr{from}, nil
}

// Read reads one echo reply.
func (pc *PingConn) Read(p []byte) (int, error) {
	n, _, err := pc.c.ReadFromAddr(p)
	return n, err
}

// SetDeadline sets the read and write deadlines.
func (pc *PingConn) SetDeadline(t time.Time) error { return pc.c.SetDeadline(t) }

// SetReadDeadline sets the deadline of ReadFrom and Read, including a
// call already waiting.
func (pc *PingConn) SetReadDeadline(t time.Time) error { return pc.c.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of WriteTo and Write (netstack's
// returns "not implemented").
func (pc *PingConn) SetWriteDeadline(t time.Time) error { return pc.c.SetWriteDeadline(t) }
