package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
)

// forwarder is a running `ustack forward`: the stack on the namespace's
// TUN, in forwarder mode, and the relays between it and this process's
// kernel sockets.
type forwarder struct {
	cfg  *forwardConfig
	logf func(string, ...any)
	s    *ustack.Stack
	nic  *ustack.NIC

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closer []io.Closer // host listeners and sockets to close on Close
	pings  map[pingKey]*pinger
	work   chan func() // hands work to idle workers (spawn)
}

// newForwarder starts the stack on ep with the gateway and DNS
// addresses, promiscuous and spoofing, and the relays.
func newForwarder(cfg *forwardConfig, ep link.Endpoint, logf func(string, ...any)) (*forwarder, error) {
	// The relay is the guest's router: like Linux forwarding, it sends
	// no router solicitations and takes no advertisements. Shards as
	// the default has them (GOMAXPROCS): the TCP relay has a part in
	// each, UDP and echo are shard 0's (ustack.Stack.ForwardTCP).
	scfg := ustack.Config{}
	scfg.IPv6.IgnoreRA = true
	s, err := ustack.New(scfg)
	if err != nil {
		ep.Close()
		return nil, err
	}
	f := &forwarder{cfg: cfg, logf: logf, s: s, pings: map[pingKey]*pinger{}, work: make(chan func())}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	bits := cfg.cidr.Bits()
	addrs := []netip.Prefix{netip.PrefixFrom(cfg.gateway(), bits), netip.PrefixFrom(cfg.dnsAddr(), bits)}
	if cfg.ipv6() {
		// A TUN is IP-only: the addresses are usable at once (no DAD),
		// and the guest's kernel resolves no neighbours on it.
		bits6 := cfg.cidr6.Bits()
		addrs = append(addrs, netip.PrefixFrom(cfg.gateway6(), bits6), netip.PrefixFrom(cfg.dnsAddr6(), bits6))
	}
	f.nic, err = s.AddNIC(ep, ustack.NICConfig{
		Name:        cfg.tunName,
		Addrs:       addrs,
		Promiscuous: true, Spoofing: true,
	})
	if err != nil {
		ep.Close()
		s.Close()
		return nil, err
	}
	if err := f.start(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *forwarder) start() error {
	if _, err := f.s.ForwardTCP(f.cfg.maxInFlight, f.relayTCP); err != nil {
		return err
	}
	if _, err := f.s.ForwardUDP(f.cfg.udpMapping, 0, f.relayUDP); err != nil {
		return err
	}
	if _, err := f.s.ForwardEcho(0, f.relayEcho); err != nil {
		return err
	}
	if !f.cfg.noDNS {
		if err := f.startDNS(); err != nil {
			return err
		}
	}
	for _, pf := range f.cfg.tcpFwds {
		if err := f.startTCPPortForward(pf); err != nil {
			return err
		}
	}
	for _, pf := range f.cfg.udpFwds {
		if err := f.startUDPPortForward(pf); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every relay and the stack.
func (f *forwarder) Close() {
	f.cancel()
	f.mu.Lock()
	for _, c := range f.closer {
		c.Close()
	}
	f.closer = nil
	f.mu.Unlock()
	f.s.Close()
	f.wg.Wait()
}

func (f *forwarder) track(c io.Closer) {
	f.mu.Lock()
	f.closer = append(f.closer, c)
	f.mu.Unlock()
}

// spawn runs fn on an idle worker, or a new one; a worker waits up to
// workerIdle for more work, keeping the stack it grew (a new goroutine
// per connection regrows one to the copy loop's depth).
func (f *forwarder) spawn(fn func()) {
	select {
	case f.work <- fn:
		return
	default:
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		idle := time.NewTimer(workerIdle)
		defer idle.Stop()
		for {
			fn()
			fn = nil
			idle.Reset(workerIdle)
			select {
			case fn = <-f.work:
			case <-idle.C:
				return
			case <-f.ctx.Done():
				return
			}
		}
	}()
}

// workerIdle is how long an idle relay worker waits for work.
const workerIdle = 10 * time.Second

func (f *forwarder) goRun(fn func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
}

// hostAddr maps a destination the guest asked for to the one this
// process connects to: the gateway of either family stands for the
// host's loopback of that family, 127.0.0.1 or ::1 (as in slirp4netns),
// unless --disable-host-loopback; ok is false for what is refused (the
// gateway then, the namespace's own networks otherwise, and link-local
// IPv6 addresses, which name no host beyond the TUN).
func (f *forwarder) hostAddr(dst netip.AddrPort) (netip.AddrPort, bool) {
	a := dst.Addr()
	switch {
	case f.cfg.isGateway(a):
		if f.cfg.noLoopback {
			return dst, false
		}
		if a.Is6() {
			return netip.AddrPortFrom(netip.IPv6Loopback(), dst.Port()), true
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), dst.Port()), true
	case f.cfg.inNetwork(a), a.IsLoopback(), a.IsMulticast(), a.IsUnspecified(), a.Is6() && a.IsLinkLocalUnicast():
		return dst, false
	}
	return dst, true
}

// guestAddr is hostAddr's inverse for the sources of answers.
func (f *forwarder) guestAddr(src netip.AddrPort) netip.AddrPort {
	if a := src.Addr(); a.IsLoopback() {
		if a.Is6() && f.cfg.ipv6() {
			return netip.AddrPortFrom(f.cfg.gateway6(), src.Port())
		}
		return netip.AddrPortFrom(f.cfg.gateway(), src.Port())
	}
	return src
}

// family returns the network name of a's family: network+"4" or +"6",
// so that the host's sockets never mix the guest's families.
func family(network string, a netip.Addr) string {
	if a.Is6() {
		return network + "6"
	}
	return network + "4"
}

// dialTimeout bounds an upstream connect; the guest's own connect gives
// up after about two minutes of SYN retransmissions anyway.
const dialTimeout = 30 * time.Second

// relayTCP opens the upstream connection first, and only then answers
// the guest's SYN: with a SYN-ACK once the upstream accepted, with what
// the upstream said otherwise (RST for refused, ICMP unreachable for
// unreachable), or not at all when it did not answer.
func (f *forwarder) relayTCP(r *ustack.TCPRequest) {
	dst, ok := f.hostAddr(r.LocalAddr())
	if !ok {
		r.Reject(stack.RejectReset)
		return
	}
	ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	up, err := d.DialContext(ctx, family("tcp", dst.Addr()), dst.String())
	if err != nil {
		if how, ok := rejectFor(err); ok {
			r.Reject(how)
		} else {
			r.Drop()
		}
		return
	}
	c, err := r.Accept(ctx)
	if err != nil {
		up.(*net.TCPConn).SetLinger(0)
		up.Close()
		return
	}
	f.splice(c, up.(*net.TCPConn))
}

// rejectFor maps an upstream connect's error to the answer the guest
// gets, as a router between would give it.
func rejectFor(err error) (stack.Reject, bool) {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return stack.RejectReset, true
	case errors.Is(err, syscall.EHOSTUNREACH):
		return stack.RejectHostUnreachable, true
	case errors.Is(err, syscall.ENETUNREACH):
		return stack.RejectNetUnreachable, true
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return stack.RejectAdminProhibited, true
	}
	return 0, false
}

// halfCloser is a TCP connection of either kind.
type halfCloser interface {
	net.Conn
	CloseWrite() error
	SetLinger(int) error
}

// splice relays between the guest's connection and the upstream one
// until both directions end: a FIN passes on as a FIN (half-close), a
// RST as a RST.
func (f *forwarder) splice(a, b halfCloser) {
	var wg sync.WaitGroup
	var once sync.Once
	abort := func() {
		once.Do(func() {
			a.SetLinger(0)
			b.SetLinger(0)
			a.Close()
			b.Close()
		})
	}
	pipe := func(dst, src halfCloser) {
		defer wg.Done()
		bp := relayBufs.Get().(*[]byte)
		defer relayBufs.Put(bp)
		_, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, *bp)
		if err != nil {
			// A reset (or a failed write: the other side reset) on
			// one side is a reset on the other.
			abort()
			return
		}
		dst.CloseWrite()
	}
	wg.Add(2)
	f.spawn(func() { pipe(a, b) })
	pipe(b, a) // on the caller's goroutine
	wg.Wait()
	a.Close()
	b.Close()
}

// relayBufs are the buffers splice copies through: large, so that a
// bulk transfer moves a window per call, and pooled, so that a
// connection does not cost an allocation of its own.
var relayBufs = sync.Pool{New: func() any {
	b := make([]byte, 128<<10)
	return &b
}}

// onlyReader and onlyWriter hide ReadFrom and WriteTo, so io.CopyBuffer
// uses the large buffer it is given.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// relayUDP relays a flow through a host UDP socket of its own: one
// unconnected socket per guest port under endpoint-independent mapping
// (so answers from anywhere reach the guest, from where they came), a
// connected one per 4-tuple otherwise. A flow ends after --udp-timeout
// without traffic either way.
func (f *forwarder) relayUDP(fl *ustack.UDPFlow) {
	var hc *net.UDPConn
	var err error
	eim := f.cfg.udpMapping == stack.UDPEndpointIndependent
	// A flow's datagrams are all of its client's family.
	network := family("udp", fl.Client().Addr())
	if eim {
		hc, err = net.ListenUDP(network, nil)
	} else {
		dst, ok := f.hostAddr(fl.Dst())
		if !ok {
			fl.Close()
			return
		}
		hc, err = net.DialUDP(network, nil, net.UDPAddrFromAddrPort(dst))
	}
	if err != nil {
		fl.Close()
		return
	}
	var last atomicTime
	last.touch()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // host → guest
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			hc.SetReadDeadline(time.Now().Add(f.cfg.udpTimeout))
			n, src, err := hc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) && !last.idle(f.cfg.udpTimeout) {
					continue
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					continue // a port unreachable for an earlier datagram
				}
				fl.Close()
				return
			}
			last.touch()
			from := f.guestAddr(netip.AddrPortFrom(src.Addr().Unmap(), src.Port()))
			if !eim {
				from = fl.Dst()
			}
			fl.WriteFrom(buf[:n], from)
		}
	}()
	buf := make([]byte, 65536)
	for { // guest → host
		fl.SetReadDeadline(time.Now().Add(f.cfg.udpTimeout))
		n, dst, err := fl.ReadTo(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !last.idle(f.cfg.udpTimeout) {
				continue
			}
			break
		}
		last.touch()
		if !eim {
			hc.Write(buf[:n])
			continue
		}
		if h, ok := f.hostAddr(dst); ok {
			hc.WriteToUDPAddrPort(buf[:n], h)
		}
	}
	fl.Close()
	hc.Close()
	wg.Wait()
}

// atomicTime is the time of a flow's last datagram.
type atomicTime struct {
	mu sync.Mutex
	t  time.Time
}

func (a *atomicTime) touch() {
	a.mu.Lock()
	a.t = time.Now()
	a.mu.Unlock()
}

func (a *atomicTime) idle(d time.Duration) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Since(a.t) >= d
}

// startDNS serves DNS at the DNS addresses (.3, and ::3 with IPv6), UDP
// and TCP, by passing each query to the host's resolver (over its own
// family, whichever the guest asked in) and its answer back.
func (f *forwarder) startDNS() error {
	if err := f.serveDNS(netip.AddrPortFrom(f.cfg.dnsAddr(), 53)); err != nil {
		return err
	}
	if f.cfg.ipv6() {
		return f.serveDNS(netip.AddrPortFrom(f.cfg.dnsAddr6(), 53))
	}
	return nil
}

func (f *forwarder) serveDNS(addr netip.AddrPort) error {
	u, err := f.s.ListenUDP("udp", addr.String())
	if err != nil {
		return err
	}
	f.track(u)
	f.goRun(func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := u.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			f.goRun(func() {
				hc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(f.cfg.dnsUpstream))
				if err != nil {
					return
				}
				defer hc.Close()
				hc.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := hc.Write(q); err != nil {
					return
				}
				ans := make([]byte, 65536)
				k, err := hc.Read(ans)
				if err != nil {
					return
				}
				u.WriteToUDPAddrPort(ans[:k], from)
			})
		}
	})
	ln, err := f.s.ListenTCP("tcp", addr.String(), 0)
	if err != nil {
		return err
	}
	f.track(ln)
	f.goRun(func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			f.goRun(func() {
				var d net.Dialer
				ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
				up, err := d.DialContext(ctx, "tcp", f.cfg.dnsUpstream.String())
				cancel()
				if err != nil {
					c.SetLinger(0)
					c.Close()
					return
				}
				f.splice(c, up.(*net.TCPConn))
			})
		}
	})
	return nil
}

// portForwardHosts returns the host addresses a port forward listens
// on: the one given, or, for none, 0.0.0.0 and, with IPv6, [::] (which
// may fail on a host without IPv6: then it is left out, logged).
func (f *forwarder) portForwardHosts(pf portForward) []netip.AddrPort {
	hosts := []netip.AddrPort{pf.host}
	if pf.anyAddr && f.cfg.ipv6() {
		hosts = append(hosts, netip.AddrPortFrom(netip.IPv6Unspecified(), pf.host.Port()))
	}
	return hosts
}

// guestEnd returns the guest's address and port and the gateway address
// a port forward's connections come from inside, in host's family.
func (f *forwarder) guestEnd(host netip.Addr, port uint16) (guest netip.AddrPort, from netip.Addr) {
	if host.Is6() {
		return netip.AddrPortFrom(f.cfg.guest6(), port), f.cfg.gateway6()
	}
	return netip.AddrPortFrom(f.cfg.guest(), port), f.cfg.gateway()
}

// startTCPPortForward listens on the host (each family's listener in
// that family) and connects each connection to the guest's port over
// the same family, from the gateway address (as slirp4netns's port
// forwards appear inside).
func (f *forwarder) startTCPPortForward(pf portForward) error {
	for i, h := range f.portForwardHosts(pf) {
		if err := f.listenTCPForward(h, pf.guest); err != nil {
			if i == 0 {
				return err
			}
			f.logf("-t %d: not on IPv6: %v", pf.host.Port(), err)
		}
	}
	return nil
}

func (f *forwarder) listenTCPForward(host netip.AddrPort, guestPort uint16) error {
	ln, err := net.ListenTCP(family("tcp", host.Addr()), net.TCPAddrFromAddrPort(host))
	if err != nil {
		return err
	}
	f.track(ln)
	guest, gw := f.guestEnd(host.Addr(), guestPort)
	f.goRun(func() {
		for {
			hc, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			f.goRun(func() {
				ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
				gc, err := f.s.DialTCP(ctx, netip.AddrPortFrom(gw, 0), guest)
				cancel()
				if err != nil {
					hc.SetLinger(0)
					hc.Close()
					return
				}
				f.splice(hc, gc)
			})
		}
	})
	return nil
}

// startUDPPortForward relays datagrams to a host port to the guest's
// port, a stack socket per host client (idle ones end after
// --udp-timeout), each family's to the guest's address of its family.
func (f *forwarder) startUDPPortForward(pf portForward) error {
	for i, h := range f.portForwardHosts(pf) {
		if err := f.listenUDPForward(h, pf.guest); err != nil {
			if i == 0 {
				return err
			}
			f.logf("-u %d: not on IPv6: %v", pf.host.Port(), err)
		}
	}
	return nil
}

func (f *forwarder) listenUDPForward(host netip.AddrPort, guestPort uint16) error {
	hc, err := net.ListenUDP(family("udp", host.Addr()), net.UDPAddrFromAddrPort(host))
	if err != nil {
		return err
	}
	f.track(hc)
	guest, gw := f.guestEnd(host.Addr(), guestPort)
	f.goRun(func() {
		var mu sync.Mutex
		socks := map[netip.AddrPort]*ustack.UDPConn{}
		buf := make([]byte, 65536)
		for {
			n, client, err := hc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			mu.Lock()
			gs := socks[client]
			if gs == nil {
				gs, err = f.s.ListenUDP("udp", netip.AddrPortFrom(gw, 0).String())
				if err != nil {
					mu.Unlock()
					continue
				}
				socks[client] = gs
				f.goRun(func() {
					rb := make([]byte, 65536)
					for {
						gs.SetReadDeadline(time.Now().Add(f.cfg.udpTimeout))
						k, from, err := gs.ReadFromUDPAddrPort(rb)
						if err != nil {
							break
						}
						if from == guest {
							hc.WriteToUDPAddrPort(rb[:k], client)
						}
					}
					mu.Lock()
					delete(socks, client)
					mu.Unlock()
					gs.Close()
				})
			}
			mu.Unlock()
			gs.WriteToUDPAddrPort(buf[:n], guest)
		}
	})
	return nil
}

// Pings: each guest (source, identifier) pinging a destination gets a
// host ICMP socket of the ping's family — a ping socket (SOCK_DGRAM,
// IPPROTO_ICMP or IPPROTO_ICMPV6: no privilege where
// net.ipv4.ping_group_range allows the group, which rules both), else a
// raw one (root) — whose replies go back with the guest's identifier.

type pingKey struct {
	src, dst netip.Addr
	id       uint16
}

type pinger struct {
	fd   int
	raw  bool
	last atomicTime
}

// pingIdle ends a pinger after this long without a request.
const pingIdle = 10 * time.Second

// relayEcho runs on the echo forwarder's goroutine: it must not block.
func (f *forwarder) relayEcho(req stack.EchoRequest) {
	dst, ok := f.hostAddr(netip.AddrPortFrom(req.Dst, 0))
	if !ok {
		return
	}
	k := pingKey{req.Src, req.Dst, req.ID}
	v6 := req.Dst.Is6()
	f.mu.Lock()
	p := f.pings[k]
	if p == nil {
		var err error
		p, err = newPinger(v6)
		if err != nil {
			f.mu.Unlock()
			f.logf("ping %v: %v", req.Dst, err)
			return
		}
		f.pings[k] = p
		f.goRun(func() { f.pingReplies(k, p) })
	}
	f.mu.Unlock()
	p.last.touch()
	// Echo request: type 8 (ICMPv6: 128), code 0, checksum (the kernel
	// fills it for a ping socket and for any ICMPv6 socket; computed
	// here for a raw ICMPv4 one), identifier, sequence.
	msg := make([]byte, 8+len(req.Data))
	msg[0] = 8
	if v6 {
		msg[0] = 128
	}
	msg[4], msg[5] = byte(req.ID>>8), byte(req.ID)
	msg[6], msg[7] = byte(req.Seq>>8), byte(req.Seq)
	copy(msg[8:], req.Data)
	if p.raw && !v6 {
		cs := icmpChecksum(msg)
		msg[2], msg[3] = byte(cs>>8), byte(cs)
	}
	var sa unix.Sockaddr
	if v6 {
		sa = &unix.SockaddrInet6{Addr: dst.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Addr: dst.Addr().As4()}
	}
	unix.Sendto(p.fd, msg, unix.MSG_DONTWAIT, sa)
}

func newPinger(v6 bool) (*pinger, error) {
	af, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		af, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(af, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
	raw := false
	if err != nil {
		fd, err = unix.Socket(af, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		raw = true
	}
	if err != nil {
		return nil, err
	}
	// Replies are read with a timeout, so the reader can see idleness.
	tv := unix.NsecToTimeval(int64(time.Second))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &pinger{fd: fd, raw: raw}, nil
}

// pingReplies reads a pinger's replies until it has been idle for
// pingIdle, and sends each to the guest as from the pinged address.
func (f *forwarder) pingReplies(k pingKey, p *pinger) {
	defer func() {
		f.mu.Lock()
		delete(f.pings, k)
		f.mu.Unlock()
		unix.Close(p.fd)
	}()
	buf := make([]byte, 65536)
	for f.ctx.Err() == nil && !p.last.idle(pingIdle) {
		n, from, err := unix.Recvfrom(p.fd, buf, 0)
		if err != nil {
			continue
		}
		m := buf[:n]
		v6 := k.dst.Is6()
		if p.raw {
			// A raw socket gets every ICMP message, an ICMPv4 one
			// with its IP header.
			if !v6 {
				if n < 20 || int(m[0]&0xf)*4+8 > n {
					continue
				}
				m = m[int(m[0]&0xf)*4:]
			}
			if len(m) < 8 {
				continue
			}
			if id := uint16(m[4])<<8 | uint16(m[5]); id != k.id {
				continue
			}
		}
		var src netip.Addr
		switch sa := from.(type) {
		case *unix.SockaddrInet4:
			src = netip.AddrFrom4(sa.Addr)
		case *unix.SockaddrInet6:
			src = netip.AddrFrom16(sa.Addr)
		}
		reply := byte(0) // ICMPv4 echo reply; ICMPv6's is 129
		if v6 {
			reply = 129
		}
		if len(m) < 8 || m[0] != reply || src != mustHost(f, k.dst) {
			continue
		}
		seq := uint16(m[6])<<8 | uint16(m[7])
		f.s.SendEchoReply(k.dst, k.src, k.id, seq, m[8:])
	}
}

func mustHost(f *forwarder, a netip.Addr) netip.Addr {
	h, _ := f.hostAddr(netip.AddrPortFrom(a, 0))
	return h.Addr()
}

// icmpChecksum is the Internet checksum of b (RFC 1071).
func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
