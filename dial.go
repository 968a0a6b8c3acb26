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

// family is the address family a network name allows: both (0), or only
// IPv4 or IPv6, as package net's "tcp4" and "tcp6".
type family int

const (
	familyAny family = iota
	family4
	family6
)

// parseNetwork accepts package net's names for the networks ustack
// supports: "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6".
func parseNetwork(network string) (proto, family, error) {
	switch network {
	case "tcp":
		return protoTCP, familyAny, nil
	case "tcp4":
		return protoTCP, family4, nil
	case "tcp6":
		return protoTCP, family6, nil
	case "udp":
		return protoUDP, familyAny, nil
	case "udp4":
		return protoUDP, family4, nil
	case "udp6":
		return protoUDP, family6, nil
	}
	return 0, 0, net.UnknownNetworkError(network)
}

// bindAddr is where a socket binds: the address and IPV6_V6ONLY.
type bindAddr struct {
	addr   netip.AddrPort
	v6only bool
}

// errNoSuitable is package net's error for an address of the wrong
// family ("tcp4" with an IPv6 address, say).
const errNoSuitable = "no suitable address found"

// parseAddr parses "host:port" as package net does, for network family
// fam: host is an IPv4 or IPv6 literal (an IPv6 one with a zone naming a
// NIC by name or number: "[fe80::1%eth0]:80"), or, to listen, empty or
// unspecified. ustack does not resolve names: "localhost" and other host
// names are refused. An IPv4-mapped IPv6 address is its IPv4 address.
//
// To listen, a wildcard host (empty, 0.0.0.0 or ::) means both families
// for "tcp" and "udp" — a socket on :: with IPV6_V6ONLY off, as package
// net makes for them —, 0.0.0.0 for "tcp4", and :: with IPV6_V6ONLY on
// for "tcp6".
func parseAddr(address string, listen bool, fam family) (bindAddr, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return bindAddr{}, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return bindAddr{}, &net.AddrError{Err: "invalid port", Addr: address}
	}
	var a netip.Addr
	if host != "" {
		a, err = netip.ParseAddr(host)
		if err != nil {
			return bindAddr{}, &net.DNSError{Err: "ustack resolves no host names; use an IP address", Name: host, IsNotFound: true}
		}
		a = a.Unmap()
	}
	if !a.IsValid() || a.IsUnspecified() {
		if !listen {
			return bindAddr{}, &net.AddrError{Err: "missing address", Addr: address}
		}
		switch fam {
		case family4:
			return bindAddr{addr: netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port))}, nil
		case family6:
			return bindAddr{addr: netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port)), v6only: true}, nil
		}
		return bindAddr{addr: netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port))}, nil
	}
	if fam == family4 && !a.Is4() || fam == family6 && a.Is4() {
		return bindAddr{}, &net.AddrError{Err: errNoSuitable, Addr: host}
	}
	return bindAddr{addr: netip.AddrPortFrom(a, uint16(port)), v6only: fam == family6}, nil
}

// Dial connects to address on the named network ("tcp", "tcp4",
// "tcp6", "udp", "udp4", "udp6"), as net.Dial. The address is an IP
// literal with a port ("192.0.2.1:80", "[2001:db8::1]:80", and for a
// link-local address a zone naming the NIC, "[fe80::1%eth0]:80"): ustack
// resolves no names.
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	return s.DialContext(context.Background(), network, address)
}

// DialContext connects to address on the named network using ctx, as
// net.Dialer.DialContext. A TCP dial returns a *TCPConn; a UDP dial
// returns a connected *UDPConn. A TCP dial in progress ends when ctx
// does, with ctx's error, and leaves nothing behind: a caller racing
// dials to several addresses (Happy Eyeballs, RFC 8305) cancels the
// losers.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	p, fam, err := parseNetwork(network)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	ba, err := parseAddr(address, false, fam)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	raddr := ba.addr
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
// raddr. IPv4-mapped IPv6 addresses are taken as the IPv4 addresses they
// map, as package net does.
func (s *Stack) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (*TCPConn, error) {
	laddr = netip.AddrPortFrom(laddr.Addr().Unmap(), laddr.Port())
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	fail := func(err error) (*TCPConn, error) {
		// The address is made only for an error: a dial that succeeds
		// made it for nothing (one of crr's allocations per connection).
		return nil, opError("dial", "tcp", nil, net.TCPAddrFromAddrPort(raddr), err)
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
	err = block(sh.self[:], 0, &waitOn{sig: c.wsig.get(), closed: &c.closed, cancel: ctx.Done()}, func(int) tryResult {
		switch st := sc.State(); {
		case st == tcp.SynSent || st == tcp.SynReceived:
			return tryWait
		case st == tcp.Closed && sc.Err() != nil:
			cerr = sc.Err()
			c.abandonLocked()
		default:
			sh.applyDefaults(sc)
		}
		c.wsig.drop() // made for the handshake; the first Write that waits makes another
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
// is "tcp", "tcp4" or "tcp6". A host-less or unspecified address (":80",
// "[::]:80", "0.0.0.0:80") listens on every address of the stack: of
// both families for "tcp" (IPv4 peers reported as IPv4 addresses), of
// one for "tcp4" and "tcp6", as package net does. Port 0 picks a free
// port.
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
	p, fam, err := parseNetwork(network)
	if err == nil && p != protoTCP {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ba, err := parseAddr(address, true, fam)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	return s.listenTCP(network, ba.addr, backlog, ba.v6only)
}

// ListenTCPAddrPort listens for TCP connections on laddr with an accept
// backlog (0: the stack's maximum); 0.0.0.0 listens on every IPv4
// address, :: on every address of both families (as Listen's "tcp"), an
// invalid address on every IPv4 address; port 0 picks a free port.
func (s *Stack) ListenTCPAddrPort(laddr netip.AddrPort, backlog int) (*Listener, error) {
	return s.listenTCP("tcp", anyIfInvalid(laddr), backlog, false)
}

// anyIfInvalid returns a with its address unmapped (an IPv4-mapped IPv6
// address is IPv4), or IPv4's unspecified address if it has none.
func anyIfInvalid(a netip.AddrPort) netip.AddrPort {
	if !a.Addr().IsValid() {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), a.Port())
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// listenTCP listens on addr; v6only keeps a listener on :: to IPv6
// (IPV6_V6ONLY).
func (s *Stack) listenTCP(network string, addr netip.AddrPort, backlog int, v6only bool) (*Listener, error) {
	l := &Listener{shards: s.shards, sig: newSignal(), closing: make(chan struct{})}
	// A listener has a part in every shard, since a SYN goes to the shard
	// its flow hashes to; the first picks the port the others take.
	for i, sh := range s.shards {
		sh.mu.Lock()
		var sl *stack.TCPListener
		err := error(net.ErrClosed)
		if !sh.closed {
			sl, err = sh.core.ListenOpts(addr, partBacklog(backlog, i, len(s.shards)), stack.BindOptions{V6Only: v6only})
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
// network is "udp", "udp4" or "udp6", with Listen's rules for the
// address.
func (s *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	u, err := s.ListenUDP(network, address)
	if err != nil {
		return nil, err // a nil net.PacketConn, not one holding a nil *UDPConn
	}
	return u, nil
}

// ListenUDP is ListenPacket returning the concrete type.
func (s *Stack) ListenUDP(network, address string) (*UDPConn, error) {
	p, fam, err := parseNetwork(network)
	if err == nil && p != protoUDP {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ba, err := parseAddr(address, true, fam)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	return s.bindUDP("listen", network, ba.addr, netip.AddrPort{}, ba.v6only)
}

// ListenUDPAddrPort opens a UDP socket on laddr: 0.0.0.0 takes datagrams
// to every IPv4 address, :: to every address of both families (as
// ListenPacket's "udp"), an invalid address to every IPv4 address; port
// 0 picks a free port.
func (s *Stack) ListenUDPAddrPort(laddr netip.AddrPort) (*UDPConn, error) {
	return s.bindUDP("listen", "udp", anyIfInvalid(laddr), netip.AddrPort{}, false)
}

// DialUDPAddrPort opens a UDP socket on laddr (an invalid address: every
// address of raddr's family; port 0: a free port) connected to raddr,
// as net.DialUDP: Read and Write use raddr, and datagrams from other
// sources are discarded.
func (s *Stack) DialUDPAddrPort(laddr, raddr netip.AddrPort) (*UDPConn, error) {
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	if !raddr.Addr().IsValid() || raddr.Port() == 0 {
		return nil, &net.OpError{Op: "dial", Net: "udp", Err: &net.AddrError{Err: "missing address", Addr: raddr.String()}}
	}
	v6only := false
	if !laddr.Addr().IsValid() && raddr.Addr().Is6() {
		laddr, v6only = netip.AddrPortFrom(netip.IPv6Unspecified(), laddr.Port()), true
	}
	return s.bindUDP("dial", "udp", anyIfInvalid(laddr), raddr, v6only)
}

// bindUDP opens a UDP socket on addr, connected to peer if it is valid;
// v6only keeps a socket on :: to IPv6 (IPV6_V6ONLY).
func (s *Stack) bindUDP(op, network string, addr, peer netip.AddrPort, v6only bool) (*UDPConn, error) {
	ea := net.Addr(net.UDPAddrFromAddrPort(addr))
	if peer.IsValid() {
		ea = net.UDPAddrFromAddrPort(peer)
	}
	sh, err := s.shardForUDP()
	if err != nil {
		return nil, opError(op, network, nil, ea, err)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return nil, opError(op, network, nil, ea, net.ErrClosed)
	}
	ep, err := sh.core.BindUDPOpts(addr, stack.BindOptions{V6Only: v6only})
	if err != nil {
		return nil, opError(op, network, nil, ea, err)
	}
	return sh.newUDPConn(ep, peer), nil
}

func (s *Stack) dialUDP(network string, raddr netip.AddrPort) (*UDPConn, error) {
	// The local end: an ephemeral port on the wildcard of the peer's
	// family.
	wild := netip.IPv4Unspecified()
	if raddr.Addr().Is6() {
		wild = netip.IPv6Unspecified()
	}
	return s.bindUDP("dial", network, netip.AddrPortFrom(wild, 0), raddr, raddr.Addr().Is6())
}
