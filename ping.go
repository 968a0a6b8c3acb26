package ustack

import (
	"errors"
	"net"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/stack"
)

// PingConn is an ICMP echo socket on a Stack — a "ping socket", as
// Linux's unprivileged SOCK_DGRAM IPPROTO_ICMP (and IPPROTO_ICMPV6)
// sockets: WriteTo sends an echo request written whole (ICMP header
// and data; the stack puts in the socket's identifier and the checksum),
// ReadFrom returns the echo replies that carry the socket's identifier,
// header first. It implements net.PacketConn, and net.Conn when made by
// DialPing. Addresses are *net.IPAddr; WriteTo also takes the
// *net.UDPAddr that golang.org/x/net/icmp passes for such sockets.
//
// As on Linux, a dialed socket takes replies to its identifier from any
// source: the identifier is what matches them.
type PingConn struct {
	dgramSock
	ep   *stack.PingEndpoint
	peer netip.Addr // set for a dialed socket
}

var (
	_ net.PacketConn = (*PingConn)(nil)
	_ net.Conn       = (*PingConn)(nil)
)

// ListenPing opens a ping socket bound to laddr — an address of the
// stack, or the unspecified address of a family for all of them; an
// invalid laddr means IPv4's — with echo identifier id (0: a free one is
// picked, Linux's ping_get_port). An identifier belongs to one ping
// socket at a time (EADDRINUSE).
func (s *Stack) ListenPing(laddr netip.Addr, id uint16) (*PingConn, error) {
	return s.openPing(laddr, netip.Addr{}, id)
}

// DialPing opens a ping socket whose Write sends to raddr and whose
// RemoteAddr is raddr; laddr may be invalid (every address of raddr's
// family).
func (s *Stack) DialPing(laddr, raddr netip.Addr) (*PingConn, error) {
	raddr = raddr.Unmap()
	if !raddr.IsValid() || raddr.IsUnspecified() {
		return nil, &net.OpError{Op: "dial", Net: "ping", Err: errors.New("missing address")}
	}
	return s.openPing(laddr, raddr, 0)
}

func (s *Stack) openPing(laddr, raddr netip.Addr, id uint16) (*PingConn, error) {
	laddr = laddr.Unmap()
	if !laddr.IsValid() {
		laddr = netip.IPv4Unspecified()
		if raddr.Is6() {
			laddr = netip.IPv6Unspecified()
		}
	}
	network := "ping4"
	if laddr.Is6() {
		network = "ping6"
	}
	op, addr := "listen", net.Addr(&net.IPAddr{IP: laddr.AsSlice()})
	if raddr.IsValid() {
		op, addr = "dial", &net.IPAddr{IP: raddr.AsSlice()}
		if raddr.Is6() != laddr.Is6() {
			return nil, opError(op, network, nil, addr, stack.ErrAFNoSupport)
		}
	}
	// Like a UDP socket, a ping socket lives in one shard: the echo
	// replies it takes carry no port to steer them by flow hash.
	sh, err := s.shardForUDP()
	if err != nil {
		return nil, opError(op, network, nil, addr, err)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return nil, opError(op, network, nil, addr, net.ErrClosed)
	}
	ep, err := sh.core.BindPing(laddr, id)
	if err != nil {
		return nil, opError(op, network, nil, addr, err)
	}
	c := &PingConn{ep: ep, peer: raddr}
	c.init(sh, network, &net.IPAddr{IP: laddr.AsSlice()}, nil)
	ep.SetOwner(c)
	sh.register(c)
	return c, nil
}

// ID returns the socket's echo identifier.
func (c *PingConn) ID() uint16 { return c.ep.ID() }

// ReadFromAddr reads one echo reply — ICMP header and data — into p
// (truncating it if p is short) and returns its length and sender. It
// does not allocate.
func (c *PingConn) ReadFromAddr(p []byte) (int, netip.Addr, error) {
	var n int
	var from netip.Addr
	var err error
	if werr := c.read(func(int) tryResult {
		n, from, err = c.ep.ReadFrom(p)
		if wouldBlock(err) {
			return tryWait
		}
		return tryDone
	}); werr != nil {
		return 0, netip.Addr{}, werr
	}
	if err != nil {
		return 0, netip.Addr{}, c.opErr("read", nil, err)
	}
	return n, from, nil
}

// ReadFrom reads one echo reply (net.PacketConn); the address is a
// *net.IPAddr.
func (c *PingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddr(p)
	if err != nil {
		return n, nil, err
	}
	return n, &net.IPAddr{IP: from.AsSlice()}, nil
}

// Read reads one echo reply (net.Conn).
func (c *PingConn) Read(p []byte) (int, error) {
	n, _, err := c.ReadFromAddr(p)
	return n, err
}

// WriteToAddr sends p, an echo request (ICMPv4 type 8 or ICMPv6 type
// 128, code 0: EINVAL otherwise), to addr. It does not allocate.
// Requests larger than the MTU are fragmented.
func (c *PingConn) WriteToAddr(p []byte, addr netip.Addr) (int, error) {
	n, err := c.write(func(now clock.Instant) (int, error) { return c.ep.WriteTo(now, p, addr) })
	if err != nil {
		return n, c.opErr("write", &net.IPAddr{IP: addr.AsSlice()}, err)
	}
	return n, nil
}

// WriteTo sends an echo request to addr, a *net.IPAddr or a *net.UDPAddr
// (whose port is ignored) (net.PacketConn).
func (c *PingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	var a netip.Addr
	switch v := addr.(type) {
	case *net.IPAddr:
		if v != nil {
			a, _ = netip.AddrFromSlice(v.IP)
		}
	case *net.UDPAddr:
		if v != nil {
			a, _ = netip.AddrFromSlice(v.IP)
		}
	default:
		return 0, c.opErr("write", addr, &net.AddrError{Err: "not an IP address", Addr: addrString(addr)})
	}
	if c.peer.IsValid() {
		return 0, c.opErr("write", addr, errors.New("use of WriteTo with pre-connected connection"))
	}
	if !a.IsValid() {
		return 0, c.opErr("write", addr, &net.AddrError{Err: "missing address", Addr: addrString(addr)})
	}
	return c.WriteToAddr(p, a.Unmap())
}

// Write sends an echo request to the dialed address (net.Conn).
func (c *PingConn) Write(p []byte) (int, error) {
	if !c.peer.IsValid() {
		return 0, c.opErr("write", nil, errors.New("destination address required"))
	}
	return c.WriteToAddr(p, c.peer)
}

// Close closes the socket and frees its identifier; blocked reads return
// net.ErrClosed.
func (c *PingConn) Close() error { return c.close(c, c.ep) }

// LocalAddr returns the bound address, a *net.IPAddr.
func (c *PingConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the dialed address, or nil.
func (c *PingConn) RemoteAddr() net.Addr {
	if !c.peer.IsValid() {
		return nil
	}
	return &net.IPAddr{IP: c.peer.AsSlice()}
}
