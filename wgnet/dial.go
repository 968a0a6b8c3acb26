package wgnet

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Dial connects to address on network, as DialContext with a background
// context.
func (n *Net) Dial(network, address string) (net.Conn, error) {
	return n.DialContext(context.Background(), network, address)
}

// DialContext connects to address on network, as netstack's does:
// network is "tcp", "udp" or "ping", optionally with "4" or "6" to keep
// to one family; address is "host:port" ("host" alone for ping), where
// host is an IP literal or a name LookupContextHost resolves through the
// tunnel. The addresses found are tried in turn (each with an equal
// share of the time ctx leaves, at least 2 s, as package net's dialer)
// until one answers; the first error is returned if none does. A dial
// returns a *TCPConn, a connected *UDPConn or a *PingConn.
func (n *Net) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if ctx == nil {
		panic("nil context")
	}
	proto, fam := network, byte(0)
	if k := len(network); k > 0 && (network[k-1] == '4' || network[k-1] == '6') {
		proto, fam = network[:k-1], network[k-1]
	}
	if proto != "tcp" && proto != "udp" && proto != "ping" {
		return nil, &net.OpError{Op: "dial", Err: net.UnknownNetworkError(network)}
	}
	host, port := address, 0
	if proto != "ping" {
		h, p, err := net.SplitHostPort(address)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Err: err}
		}
		port, err = strconv.Atoi(p)
		if err != nil || port < 0 || port > 65535 {
			return nil, &net.OpError{Op: "dial", Err: errNumericPort}
		}
		host = h
	}
	found, err := n.LookupContextHost(ctx, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Err: err}
	}
	var addrs []netip.AddrPort
	for _, s := range found {
		ip, err := netip.ParseAddr(s)
		if err != nil || fam == '4' && !ip.Is4() || fam == '6' && !ip.Is6() {
			continue
		}
		addrs = append(addrs, netip.AddrPortFrom(ip, uint16(port)))
	}
	if len(addrs) == 0 && len(found) > 0 {
		return nil, &net.OpError{Op: "dial", Err: errNoSuitableAddress}
	}
	var firstErr error
	for i, a := range addrs {
		if err := ctx.Err(); err != nil {
			e := errTimeout
			if err == context.Canceled {
				e = errCanceled
			}
			return nil, &net.OpError{Op: "dial", Err: e}
		}
		dctx := ctx
		if dl, ok := ctx.Deadline(); ok {
			part, err := partialDeadline(time.Now(), dl, len(addrs)-i)
			if err != nil {
				if firstErr == nil {
					firstErr = &net.OpError{Op: "dial", Err: err}
				}
				break
			}
			if part.Before(dl) {
				var cancel context.CancelFunc
				dctx, cancel = context.WithDeadline(ctx, part)
				defer cancel()
			}
		}
		var c net.Conn
		switch proto {
		case "tcp":
			var tc *TCPConn
			if tc, err = n.DialContextTCPAddrPort(dctx, a); err == nil {
				c = tc
			}
		case "udp":
			var uc *UDPConn
			if uc, err = n.DialUDPAddrPort(netip.AddrPort{}, a); err == nil {
				c = uc
			}
		case "ping":
			var pc *PingConn
			if pc, err = n.DialPingAddr(netip.Addr{}, a.Addr()); err == nil {
				c = pc
			}
		}
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = &net.OpError{Op: "dial", Err: errMissingAddress}
	}
	return nil, firstErr
}

// partialDeadline returns the deadline of one of addrsLeft attempts
// that share the time until deadline, at least 2 s where there is that
// much (package net's dialer does the same).
func partialDeadline(now, deadline time.Time, addrsLeft int) (time.Time, error) {
	left := deadline.Sub(now)
	if left <= 0 {
		return time.Time{}, errTimeout
	}
	share := left / time.Duration(addrsLeft)
	const floor = 2 * time.Second
	if share < floor {
		share = min(left, floor)
	}
	return now.Add(share), nil
}
