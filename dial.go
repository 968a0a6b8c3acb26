package ustack

import (
	"context"
	"net"
	"net/netip"
	"strconv"

	"github.com/ustack/ustack/tcp"
)

// proto is the transport a network name selects.
type proto int

const (
	protoTCP proto = iota + 1
	protoUDP
)

// parseNetwork accepts package net's names for the networks ustack
// supports: "tcp", "tcp4", "udp", "udp4".
func parseNetwork(network string) (proto, error) {
	switch network {
	case "tcp", "tcp4":
		return protoTCP, nil
	case "udp", "udp4":
		return protoUDP, nil
	case "tcp6", "udp6":
		return 0, net.UnknownNetworkError(network + " (IPv6 is not supported yet)")
	}
	return 0, net.UnknownNetworkError(network)
}

// parseAddr parses "host:port" as package net does, where host is an IPv4
// literal or empty (every address, for listening). ustack does not
// resolve names: "localhost" and other host names are rejected.
func parseAddr(address string, listen bool) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, &net.AddrError{Err: "invalid port", Addr: address}
	}
	if host == "" {
		if !listen {
			return netip.AddrPort{}, &net.AddrError{Err: "missing address", Addr: address}
		}
		return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, &net.DNSError{Err: "ustack resolves no host names; use an IP address", Name: host, IsNotFound: true}
	}
	a = a.Unmap()
	if !a.Is4() {
		return netip.AddrPort{}, &net.AddrError{Err: "IPv6 is not supported yet", Addr: host}
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// Dial connects to address on the named network ("tcp", "tcp4", "udp",
// "udp4"), as net.Dial.
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	return s.DialContext(context.Background(), network, address)
}

// DialContext connects to address on the named network using ctx, as
// net.Dialer.DialContext. A TCP dial returns a *TCPConn; a UDP dial
// returns a connected *UDPConn.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	p, err := parseNetwork(network)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	raddr, err := parseAddr(address, false)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	// A nil *TCPConn or *UDPConn must come back as a nil net.Conn, as
	// package net's do, so the results are returned one by one.
	if p == protoUDP {
		u, err := s.dialUDP(network, raddr)
		if err != nil {
			return nil, err
		}
		return u, nil
	}
	c, err := s.DialTCP(ctx, netip.AddrPort{}, raddr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DialTCP connects from laddr (zero: any address, an ephemeral port) to
// raddr.
func (s *Stack) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (*TCPConn, error) {
	ta := net.TCPAddrFromAddrPort(raddr)
	fail := func(err error) (*TCPConn, error) {
		return nil, opError("dial", "tcp", nil, ta, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctxError(err))
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(net.ErrClosed)
	}
	sc, err := s.core.Connect(s.now(), laddr, raddr)
	if err != nil {
		s.mu.Unlock()
		return fail(err)
	}
	c := s.newTCPConn(sc)
	s.flushLocked()
	s.mu.Unlock()

	for {
		s.mu.Lock()
		st, cerr := sc.State(), sc.Err()
		if st != tcp.SynSent && st != tcp.SynReceived {
			if st == tcp.Closed && cerr != nil {
				s.unregister(c)
				s.mu.Unlock()
				c.closeFromStack()
				return fail(cerr)
			}
			s.applyDefaults(sc)
			s.flushLocked()
			s.mu.Unlock()
			if c.isClosing() {
				return fail(net.ErrClosed)
			}
			return c, nil
		}
		s.mu.Unlock()
		select {
		case <-c.wsig:
		case <-c.closing:
			return fail(net.ErrClosed)
		case <-ctx.Done():
			c.Close() // abandon the attempt; a SYN-SENT connection just ends
			return fail(ctxError(ctx.Err()))
		}
	}
}

// Listen listens for TCP connections on address, as net.Listen; network
// is "tcp" or "tcp4". A host-less address ("":80) listens on every
// address of the stack; port 0 picks a free port.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	l, err := s.ListenTCP(network, address, 0)
	if err != nil {
		return nil, err // a nil net.Listener, not one holding a nil *Listener
	}
	return l, nil
}

// ListenTCP is Listen with an explicit accept backlog (0: the stack's
// maximum, like net's use of somaxconn), returning the concrete type.
func (s *Stack) ListenTCP(network, address string, backlog int) (*Listener, error) {
	p, err := parseNetwork(network)
	if err == nil && p != protoTCP {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	addr, err := parseAddr(address, true)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, opError("listen", network, nil, net.TCPAddrFromAddrPort(addr), net.ErrClosed)
	}
	sl, err := s.core.Listen(addr, backlog)
	if err != nil {
		return nil, opError("listen", network, nil, net.TCPAddrFromAddrPort(addr), err)
	}
	l := &Listener{s: s, sl: sl, addr: net.TCPAddrFromAddrPort(sl.Addr()), sig: newSignal(), closing: make(chan struct{})}
	sl.SetOwner(l)
	s.register(l)
	return l, nil
}

// ListenPacket opens a UDP socket on address, as net.ListenPacket;
// network is "udp" or "udp4".
func (s *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	u, err := s.ListenUDP(network, address)
	if err != nil {
		return nil, err // a nil net.PacketConn, not one holding a nil *UDPConn
	}
	return u, nil
}

// ListenUDP is ListenPacket returning the concrete type.
func (s *Stack) ListenUDP(network, address string) (*UDPConn, error) {
	p, err := parseNetwork(network)
	if err == nil && p != protoUDP {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	addr, err := parseAddr(address, true)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, opError("listen", network, nil, net.UDPAddrFromAddrPort(addr), net.ErrClosed)
	}
	ep, err := s.core.BindUDP(addr)
	if err != nil {
		return nil, opError("listen", network, nil, net.UDPAddrFromAddrPort(addr), err)
	}
	return s.newUDPConn(ep, netip.AddrPort{}), nil
}

func (s *Stack) dialUDP(network string, raddr netip.AddrPort) (*UDPConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ua := net.UDPAddrFromAddrPort(raddr)
	if s.closed {
		return nil, opError("dial", network, nil, ua, net.ErrClosed)
	}
	ep, err := s.core.BindUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	if err != nil {
		return nil, opError("dial", network, nil, ua, err)
	}
	return s.newUDPConn(ep, raddr), nil
}
