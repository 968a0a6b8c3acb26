package stack

import (
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// datagram is a received UDP datagram waiting to be read.
type datagram struct {
	from, to netip.AddrPort
	buf      []byte
	n        int
}

// UDPEndpoint is a bound UDP socket (RFC 768).
type UDPEndpoint struct {
	sockBase
	s      *Stack
	addr   netip.AddrPort
	q      []datagram
	qBytes int
	closed bool
}

// maxUDPPayload is the largest UDP payload over IPv4: 65535 − 20 − 8.
const maxUDPPayload = 65507

// BindUDP opens a UDP socket on addr (an unspecified address means every
// address; port 0 picks a free ephemeral port).
func (s *Stack) BindUDP(addr netip.AddrPort) (*UDPEndpoint, error) {
	if s.closed {
		return nil, ErrClosed
	}
	a := addr.Addr()
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	if !a.Is4() {
		return nil, ErrAFNoSupport
	}
	if !a.IsUnspecified() && !s.isLocal(a) {
		return nil, ErrAddrNotAvail
	}
	port := addr.Port()
	conflict := func(p uint16) bool {
		for other := range s.udp {
			if other.Port() == p && (other.Addr() == a || other.Addr().IsUnspecified() || a.IsUnspecified()) {
				return true
			}
		}
		return false
	}
	if port == 0 {
		lo, num := s.ephemeralRange()
		start := s.rng.Uint32()
		for i := uint32(0); i < num; i++ {
			if p := uint16(lo + (start+i)%num); !conflict(p) {
				port = p
				break
			}
		}
		if port == 0 {
			return nil, ErrNoPorts
		}
	} else if conflict(port) {
		return nil, ErrAddrInUse
	}
	u := &UDPEndpoint{s: s, addr: netip.AddrPortFrom(a, port)}
	s.udp[u.addr] = u
	return u, nil
}

// deliver queues a datagram; false if the receive buffer is full.
func (u *UDPEndpoint) deliver(from, to netip.AddrPort, p []byte) bool {
	if u.qBytes+len(p) > u.s.cfg.UDPRecvBuffer {
		return false
	}
	buf := u.s.getBuf(len(p))
	copy(buf, p)
	u.q = append(u.q, datagram{from: from, to: to, buf: buf, n: len(p)})
	u.qBytes += len(p)
	return true
}

// ReadFrom reads the next datagram into p, truncating it if p is short (as
// recvfrom(2) without MSG_TRUNC does), and returns its sender. It returns
// ErrWouldBlock if none is queued.
func (u *UDPEndpoint) ReadFrom(p []byte) (int, netip.AddrPort, error) {
	if u.closed {
		return 0, netip.AddrPort{}, ErrClosed
	}
	if len(u.q) == 0 {
		return 0, netip.AddrPort{}, ErrWouldBlock
	}
	d := u.q[0]
	copy(u.q, u.q[1:])
	u.q[len(u.q)-1] = datagram{}
	u.q = u.q[:len(u.q)-1]
	u.qBytes -= d.n
	n := copy(p, d.buf[:d.n])
	u.s.putBuf(d.buf)
	return n, d.from, nil
}

// Readable reports whether a datagram is queued (or the socket closed).
func (u *UDPEndpoint) Readable() bool { return len(u.q) > 0 || u.closed }

// LocalAddr returns the bound address.
func (u *UDPEndpoint) LocalAddr() netip.AddrPort { return u.addr }

// WriteTo sends p as one datagram to `to`, fragmenting it if it exceeds
// the MTU (RFC 791 §3.2; the DF bit is not set).
func (u *UDPEndpoint) WriteTo(now clock.Instant, p []byte, to netip.AddrPort) (int, error) {
	s := u.s
	if u.closed {
		return 0, ErrClosed
	}
	if len(p) > maxUDPPayload {
		return 0, ErrMsgSize
	}
	if !to.Addr().Is4() || to.Port() == 0 {
		return 0, ErrInvalid
	}
	n, nextHop, src, err := s.route(to.Addr())
	if err != nil {
		s.stats.UDP.SndbufErrors++
		s.stats.Net.OutNoRoutes++
		return 0, err
	}
	if !u.addr.Addr().IsUnspecified() {
		src = u.addr.Addr()
	}
	total := wire.IPv4HeaderLen + wire.UDPHeaderLen + len(p)
	buf := s.getBuf(total)
	defer s.putBuf(buf)
	f := wire.UDPFields{SrcPort: u.addr.Port(), DstPort: to.Port(), Payload: p}
	l := f.Encode(buf[wire.IPv4HeaderLen:], src, to.Addr())
	s.ipHeader(buf, src, to.Addr(), wire.ProtoUDP, l, false)
	s.stats.Net.OutRequests++
	s.stats.UDP.OutDatagrams++
	pkt := buf[:total]
	if total <= n.cfg.MTU || s.isLocal(to.Addr()) {
		s.sendIP(now, n, nextHop, pkt)
		return len(p), nil
	}
	if !s.sendFragments(now, n, nextHop, pkt) {
		return 0, ErrMsgSize
	}
	return len(p), nil
}

// Close closes the socket; queued datagrams are dropped.
func (u *UDPEndpoint) Close() {
	if u.closed {
		return
	}
	u.closed = true
	if u.s.udp[u.addr] == u {
		delete(u.s.udp, u.addr)
	}
	for _, d := range u.q {
		u.s.putBuf(d.buf)
	}
	u.q, u.qBytes = nil, 0
	u.s.notify(u, EventClosed|EventReadable)
}
