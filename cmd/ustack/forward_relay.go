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
	// One shard: forwarders see every flow no socket took, which the
	// stack gathers in one shard (ustack.Stack.ForwardTCP).
	s, err := ustack.New(ustack.Config{Shards: 1})
	if err != nil {
		ep.Close()
		return nil, err
	}
	f := &forwarder{cfg: cfg, logf: logf, s: s, pings: map[pingKey]*pinger{}, work: make(chan func())}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	bits := cfg.cidr.Bits()
	f.nic, err = s.AddNIC(ep, ustack.NICConfig{
		Name:        cfg.tunName,
		Addrs:       []netip.Prefix{netip.PrefixFrom(cfg.gateway(), bits), netip.PrefixFrom(cfg.dnsAddr(), bits)},
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
// process connects to: the gateway stands for the host's loopback (as in
// slirp4netns) unless --disable-host-loopback; ok is false for what is
// refused (the gateway then, the namespace's own network otherwise).
func (f *forwarder) hostAddr(dst netip.AddrPort) (netip.AddrPort, bool) {
	a := dst.Addr()
	switch {
	case a == f.cfg.gateway():
		if f.cfg.noLoopback {
			return dst, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), dst.Port()), true
	case f.cfg.cidr.Contains(a), a.IsLoopback(), a.IsMulticast(), a.IsUnspecified():
		return dst, false
	}
	return dst, true
}

// guestAddr is hostAddr's inverse for the sources of answers.
func (f *forwarder) guestAddr(src netip.AddrPort) netip.AddrPort {
	if src.Addr().IsLoopback() {
		return netip.AddrPortFrom(f.cfg.gateway(), src.Port())
	}
	return src
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
	up, err := d.DialContext(ctx, "tcp4", dst.String())
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
	if eim {
		hc, err = net.ListenUDP("udp4", nil)
	} else {
		dst, ok := f.hostAddr(fl.Dst())
		if !ok {
			fl.Close()
			return
		}
		hc, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
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

// startDNS serves DNS at the DNS address (.3), UDP and TCP, by passing
// each query to the host's resolver and its answer back.
func (f *forwarder) startDNS() error {
	addr := netip.AddrPortFrom(f.cfg.dnsAddr(), 53)
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
				hc, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(f.cfg.dnsUpstream))
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
				up, err := d.DialContext(ctx, "tcp4", f.cfg.dnsUpstream.String())
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

// startTCPPortForward listens on the host and connects each connection
// to the guest's port, from the gateway address (as slirp4netns's
// port forwards appear inside).
func (f *forwarder) startTCPPortForward(pf portForward) error {
	ln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(pf.host))
	if err != nil {
		return err
	}
	f.track(ln)
	guest := netip.AddrPortFrom(f.cfg.guest(), pf.guest)
	f.goRun(func() {
		for {
			hc, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			f.goRun(func() {
				ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
				gc, err := f.s.DialTCP(ctx, netip.AddrPortFrom(f.cfg.gateway(), 0), guest)
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
// --udp-timeout).
func (f *forwarder) startUDPPortForward(pf portForward) error {
	hc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(pf.host))
	if err != nil {
		return err
	}
	f.track(hc)
	guest := netip.AddrPortFrom(f.cfg.guest(), pf.guest)
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
				gs, err = f.s.ListenUDP("udp", netip.AddrPortFrom(f.cfg.gateway(), 0).String())
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
// host ICMP socket — a ping socket (SOCK_DGRAM, IPPROTO_ICMP: no
// privilege where net.ipv4.ping_group_range allows the group), else a
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
	f.mu.Lock()
	p := f.pings[k]
	if p == nil {
		var err error
		p, err = newPinger()
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
	// Echo request: type 8, code 0, checksum (the kernel fills it for a
	// ping socket; computed here for a raw one), identifier, sequence.
	msg := make([]byte, 8+len(req.Data))
	msg[0] = 8
	msg[4], msg[5] = byte(req.ID>>8), byte(req.ID)
	msg[6], msg[7] = byte(req.Seq>>8), byte(req.Seq)
	copy(msg[8:], req.Data)
	if p.raw {
		cs := icmpChecksum(msg)
		msg[2], msg[3] = byte(cs>>8), byte(cs)
	}
	unix.Sendto(p.fd, msg, unix.MSG_DONTWAIT, &unix.SockaddrInet4{Addr: dst.Addr().As4()})
}

func newPinger() (*pinger, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	raw := false
	if err != nil {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
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
		if p.raw {
			// A raw socket gets every ICMP message with its IP header.
			if n < 20 || int(m[0]&0xf)*4+8 > n {
				continue
			}
			m = m[int(m[0]&0xf)*4:]
			if id := uint16(m[4])<<8 | uint16(m[5]); id != k.id {
				continue
			}
		}
		sa, ok := from.(*unix.SockaddrInet4)
		if !ok || len(m) < 8 || m[0] != 0 || netip.AddrFrom4(sa.Addr) != mustHost(f, k.dst) {
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
