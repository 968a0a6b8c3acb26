package ustack

import (
	"context"
	"net"
	"net/netip"
	"strconv"

	"github.com/ustack/ustack/stack"
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
	sh, c, err := s.connect(laddr, raddr)
	if err != nil {
		return fail(err)
	}
	sc := c.sc

	var cerr error // the connection failed: refused, timed out, unreachable
	err = block(sh.self[:], 0, &waitOn{sig: c.wsig, closing: c.closing, cancel: ctx.Done()}, func(int) tryResult {
		switch st := sc.State(); {
		case st == tcp.SynSent || st == tcp.SynReceived:
			return tryWait
		case st == tcp.Closed && sc.Err() != nil:
			cerr = sc.Err()
			sh.unregister(c)
		default:
			sh.applyDefaults(sc)
		}
		return tryDone
	})
	switch {
	case err == errWaitCanceled:
		c.Close() // abandon the attempt; a SYN-SENT connection just ends
		return fail(ctxError(ctx.Err()))
	case err != nil:
		return fail(err)
	case cerr != nil:
		c.closeFromStack()
		return fail(cerr)
	case c.isClosing():
		return fail(net.ErrClosed)
	}
	return c, nil
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
	l := &Listener{shards: s.shards, sig: newSignal(), closing: make(chan struct{})}
	// A listener has a part in every shard, since a SYN goes to the shard
	// its flow hashes to; the first picks the port the others take.
	for i, sh := range s.shards {
		sh.mu.Lock()
		var sl *stack.TCPListener
		err := error(net.ErrClosed)
		if !sh.closed {
			sl, err = sh.core.Listen(addr, partBacklog(backlog, i, len(s.shards)))
		}
		if err != nil {
			sh.mu.Unlock()
			for i, sl := range l.sls {
				l.shards[i].mu.Lock()
				sl.Close()
				l.shards[i].unregister(l)
				l.shards[i].mu.Unlock()
			}
			return nil, opError("listen", network, nil, net.TCPAddrFromAddrPort(addr), err)
		}
		sl.SetOwner(l)
		sh.register(l)
		sh.mu.Unlock()
		l.sls = append(l.sls, sl)
		addr = sl.Addr()
	}
	l.addr = net.TCPAddrFromAddrPort(addr)
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
	sh, err := s.shardForUDP()
	if err != nil {
		return nil, opError("listen", network, nil, net.UDPAddrFromAddrPort(addr), err)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return nil, opError("listen", network, nil, net.UDPAddrFromAddrPort(addr), net.ErrClosed)
	}
	ep, err := sh.core.BindUDP(addr)
	if err != nil {
		return nil, opError("listen", network, nil, net.UDPAddrFromAddrPort(addr), err)
	}
	return sh.newUDPConn(ep, netip.AddrPort{}), nil
}

func (s *Stack) dialUDP(network string, raddr netip.AddrPort) (*UDPConn, error) {
	ua := net.UDPAddrFromAddrPort(raddr)
	sh, err := s.shardForUDP()
	if err != nil {
		return nil, opError("dial", network, nil, ua, err)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return nil, opError("dial", network, nil, ua, net.ErrClosed)
	}
	ep, err := sh.core.BindUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	if err != nil {
		return nil, opError("dial", network, nil, ua, err)
	}
	return sh.newUDPConn(ep, raddr), nil
}
