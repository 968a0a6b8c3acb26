package stack

import (
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/ring"
	"github.com/ustack/ustack/wire"
)

// datagram is a received UDP datagram waiting to be read.
type datagram struct {
	from, to netip.AddrPort
	nic      *nic // where it came in, for a link-local sender's zone
	buf      []byte
	n        int
}

// UDPEndpoint is a bound UDP socket (RFC 768).
type UDPEndpoint struct {
	sockBase
	s      *Stack
	addr   netip.AddrPort
	v6only bool
	q      ring.Ring[datagram]
	qBytes int
	closed bool
	// fwd and fkey are set for a forwarder's flow (forward.go), which
	// is found in fwd's table under fkey rather than bound.
	fwd  *UDPForwarder
	fkey tuple
}

// Largest UDP payloads: over IPv4 65535 − 20 − 8, over IPv6 65535 − 8
// (RFC 8200 §3: the payload length excludes the header; jumbograms
// aside).
const (
	maxUDPPayload  = 65507
	maxUDPPayload6 = 65527
)

// BindUDP opens a UDP socket on addr (an unspecified address means every
// address: 0.0.0.0 every IPv4 one, :: every one of either family; port 0
// picks a free ephemeral port).
func (s *Stack) BindUDP(addr netip.AddrPort) (*UDPEndpoint, error) {
	return s.BindUDPOpts(addr, BindOptions{})
}

// BindUDPOpts is BindUDP with options.
func (s *Stack) BindUDPOpts(addr netip.AddrPort, o BindOptions) (*UDPEndpoint, error) {
	if s.closed {
		return nil, ErrClosed
	}
	a := addr.Addr().Unmap().WithZone("")
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	if !supported(a) {
		return nil, ErrAFNoSupport
	}
	if o.V6Only && !a.Is6() {
		return nil, ErrInvalid
	}
	if !a.IsUnspecified() && !s.isLocal(a) && !s.spoofing() {
		return nil, ErrAddrNotAvail
	}
	port := addr.Port()
	udp := &s.flows.udp
	if port == 0 {
		lo, num := s.ephemeralRange()
		start := s.rng.Uint32()
		for i := uint32(0); i < num; i++ {
			if p := uint16(lo + (start+i)%num); !udp.conflicts(netip.AddrPortFrom(a, p), o.V6Only) {
				port = p
				break
			}
		}
		if port == 0 {
			return nil, ErrNoPorts
		}
	} else if udp.conflicts(netip.AddrPortFrom(a, port), o.V6Only) {
		return nil, ErrAddrInUse
	}
	u := &UDPEndpoint{s: s, addr: netip.AddrPortFrom(a, port), v6only: o.V6Only}
	udp.add(u.addr, u, o.V6Only)
	return u, nil
}

// udpStats returns the UDP counters of a's family.
func (s *Stack) udpStats(a netip.Addr) *UDPStats {
	if a.Is4() {
		return &s.flows.udpStats
	}
	return &s.flows.udp6Stats
}

// handleUDP delivers a datagram to its socket, or answers with a port
// unreachable (RFC 768, RFC 1122 §4.1.3.1).
func (s *Stack) handleUDP(now clock.Instant, p *ipRepr) {
	st := s.udpStats(p.dst)
	u, err := wire.ParseUDP(p.payload)
	if err != nil {
		st.InErrors++
		return
	}
	if u.Checksum() == 0 && p.dst.Is6() {
		// RFC 8200 §8.1: an IPv6 receiver discards UDP without a
		// checksum (RFC 6936's exception is for tunnels that ask).
		st.InCsumErrors++
		st.InErrors++
		return
	}
	if u.Checksum() != 0 && !p.dataValid && wire.UDPChecksum(u.Datagram(), p.src, p.dst) != 0 {
		st.InCsumErrors++
		st.InErrors++
		return
	}
	local := netip.AddrPortFrom(p.dst, u.DstPort())
	ep := s.udpSocketFor(p, local)
	if ep == nil || ep.closed {
		if f := s.flows.udpFwd; f != nil && !p.bcast && f.offer(p, u, local) {
			return // a forwarder's flow took it (forward.go)
		}
		st.NoPorts++
		if !p.bcast {
			if p.dataValid && u.Checksum() != 0 {
				// The checksum was not verified here: it may be partial
				// (the sender left it to the link, and the link vouched
				// for the data). Quote the datagram as the wire would
				// carry it; a checksum that was right stays the same.
				// (Linux quotes a partial sum as it is.)
				seg := u.Datagram()
				seg[6], seg[7] = 0, 0
				c := wire.UDPChecksum(seg, p.src, p.dst)
				if c == 0 {
					c = 0xffff
				}
				u.SetChecksum(c)
			}
			s.sendUnreachable(now, p, unreachPort)
		}
		return
	}
	if !ep.deliver(netip.AddrPortFrom(p.src, u.SrcPort()), local, p.nic, u.Payload()) {
		st.RcvbufErrors++
		st.InErrors++
		return
	}
	st.InDatagrams++
	s.notify(ep, EventReadable)
}

// deliver queues a datagram; false if the receive buffer is full.
func (u *UDPEndpoint) deliver(from, to netip.AddrPort, n *nic, p []byte) bool {
	if u.qBytes+len(p) > u.s.cfg.UDPRecvBuffer {
		return false
	}
	buf := u.s.getBuf(len(p))
	copy(buf, p)
	u.q.PushBack(datagram{from: from, to: to, nic: n, buf: buf, n: len(p)})
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
	d, ok := u.q.PopFront()
	if !ok {
		return 0, netip.AddrPort{}, ErrWouldBlock
	}
	u.qBytes -= d.n
	n := copy(p, d.buf[:d.n])
	u.s.putBuf(d.buf)
	return n, withZone(d.from, d.nic), nil
}

// Readable reports whether a datagram is queued (or the socket closed).
func (u *UDPEndpoint) Readable() bool { return u.q.Len() > 0 || u.closed }

// LocalAddr returns the bound address.
func (u *UDPEndpoint) LocalAddr() netip.AddrPort { return u.addr }

// WriteTo sends p as one datagram to `to`, fragmenting it if it exceeds
// the MTU (RFC 791 §3.2, the DF bit not set; RFC 8200 §4.5). A socket
// bound to an IPv4 address sends to IPv4 only (EAFNOSUPPORT); one bound to
// :: sends to either family unless V6Only (ENETUNREACH for IPv4, as
// Linux); one bound to an IPv6 address sends to IPv6 only. A link-local
// destination needs a zone naming the NIC.
func (u *UDPEndpoint) WriteTo(now clock.Instant, p []byte, to netip.AddrPort) (int, error) {
	if u.closed {
		return 0, ErrClosed
	}
	dst := to.Addr()
	if !supported(dst) || to.Port() == 0 {
		return 0, ErrInvalid
	}
	if la := u.addr.Addr(); la.Is4() && !dst.Is4() || la.Is6() && dst.Is4() && (u.v6only || !la.IsUnspecified()) {
		if la.Is4() {
			return 0, ErrAFNoSupport
		}
		return 0, ErrNetUnreachable
	}
	return u.send(now, p, u.addr, to)
}

// send sends p as one datagram from src (an unspecified address: the
// route's) to `to` (a link-local one with a zone naming its NIC).
func (u *UDPEndpoint) send(now clock.Instant, p []byte, src, to netip.AddrPort) (int, error) {
	s := u.s
	dst := to.Addr()
	if dst.Is4() && len(p) > maxUDPPayload || len(p) > maxUDPPayload6 {
		return 0, ErrMsgSize
	}
	st := s.udpStats(dst)
	rt, err := s.routeTo(dst, nil)
	if err != nil {
		st.SndbufErrors++
		*s.host.ctr(dst).outNoRoutes++
		return 0, err
	}
	dst = dst.WithZone("")
	if a := src.Addr().WithZone(""); !a.IsUnspecified() {
		if a.Is4() != dst.Is4() || !s.isLocal(a) && !rt.nic.cfg.Spoofing {
			// A source the stack does not hold leaves only a NIC
			// that may spoof (forwarder mode).
			return 0, ErrAddrNotAvail
		}
		rt.src = a
	}
	hl := ipHeaderLen(dst)
	buf := s.getBuf(hl + wire.UDPHeaderLen + len(p))
	defer s.putBuf(buf)
	f := wire.UDPFields{SrcPort: src.Port(), DstPort: to.Port(), Payload: p}
	l := f.Encode(buf[hl:], rt.src, dst)
	st.OutDatagrams++
	if !s.sendPacket(now, &rt, dst, wire.ProtoUDP, buf, l, false) {
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
	if u.fwd != nil {
		u.fwd.forget(u)
	} else if cur, _ := u.s.flows.udp.get(u.addr); cur == u {
		u.s.flows.udp.remove(u.addr)
	}
	for {
		d, ok := u.q.PopFront()
		if !ok {
			break
		}
		u.s.putBuf(d.buf)
	}
	u.q.Free()
	u.qBytes = 0
	u.s.notify(u, EventClosed|EventReadable)
}
