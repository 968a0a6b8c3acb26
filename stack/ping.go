package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/ring"
	"github.com/ustack/ustack/wire"
)

// Ping sockets: ICMP echo sockets as Linux's unprivileged ones
// (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) and AF_INET6 with
// IPPROTO_ICMPV6, net/ipv4/ping.c). The owner writes whole echo
// requests — ICMP header and data — and the stack puts the socket's
// identifier in them and checksums them; echo replies carrying that
// identifier come back whole, header first. The identifier plays the
// part of a port: it is bound once (or picked), and it is what a reply
// is matched by. Echo requests that arrive are the host's business
// (handleICMPv4 answers them); only replies reach these sockets.

// PingStats count what the ping sockets send and receive (Linux counts
// them among Icmp*; these say what happened to the replies).
type PingStats struct {
	OutRequests  uint64 // echo requests sent from ping sockets
	InReplies    uint64 // echo replies queued on a ping socket
	NoSocket     uint64 // echo replies matching no ping socket (identifier or address)
	RcvbufErrors uint64 // echo replies dropped: the socket's receive queue was full
}

// PingEndpoint is an ICMP echo socket bound to an identifier (see above).
type PingEndpoint struct {
	sockBase
	s      *Stack
	addr   netip.Addr // bound address; unspecified: every address of its family
	id     uint16
	q      ring.Ring[datagram]
	qBytes int
	closed bool
}

// BindPing opens a ping socket on addr — an IPv4 or IPv6 address of the
// stack, or the unspecified address of the family (every address) — with
// echo identifier id; 0 picks a free one. As on Linux (ping_get_port),
// an identifier belongs to one ping socket at a time, whatever its
// address or family: binding a busy one fails with ErrAddrInUse.
func (s *Stack) BindPing(addr netip.Addr, id uint16) (*PingEndpoint, error) {
	if s.closed {
		return nil, ErrClosed
	}
	addr = addr.Unmap()
	if !addr.IsValid() {
		return nil, ErrInvalid
	}
	if !supported(addr) {
		return nil, ErrAFNoSupport
	}
	if !addr.IsUnspecified() && !s.isLocal(addr) {
		return nil, ErrAddrNotAvail
	}
	f := &s.flows
	if id == 0 {
		// Linux's rover: the identifier after the last one picked,
		// skipping zero and those in use. Its start comes from the seed.
		for i := 0; i < 1<<16 && id == 0; i++ {
			f.pingNext++
			if cand := f.pingNext; cand != 0 && f.ping[cand] == nil {
				id = cand
			}
		}
		if id == 0 {
			return nil, ErrNoPorts
		}
	} else if f.ping[id] != nil {
		return nil, ErrAddrInUse
	}
	ep := &PingEndpoint{s: s, addr: addr, id: id}
	f.ping[id] = ep
	return ep, nil
}

// LocalAddr returns the bound address (unspecified for every address).
func (e *PingEndpoint) LocalAddr() netip.Addr { return e.addr }

// ID returns the echo identifier the socket puts in its requests and
// takes replies by.
func (e *PingEndpoint) ID() uint16 { return e.id }

// is6 reports whether the socket speaks ICMPv6.
func (e *PingEndpoint) is6() bool { return e.addr.Is6() }

// WriteTo sends msg, an ICMP echo request (ICMPv4 type 8 or ICMPv6 type
// 128, code 0, then the identifier, the sequence number and data) to
// `to`, of the socket's family. The identifier is replaced by the
// socket's and the checksum computed, as Linux's ping_common_sendmsg
// does; msg itself is not changed. A message that is not an echo
// request, or shorter than its 8-byte header, fails with ErrInvalid (as
// EINVAL), one too long for an IP packet with ErrMsgSize, an address of
// the other family with ErrAFNoSupport. Long requests leave in
// fragments (RFC 791 §3.2).
func (e *PingEndpoint) WriteTo(now clock.Instant, msg []byte, to netip.Addr) (int, error) {
	s := e.s
	if e.closed {
		return 0, ErrClosed
	}
	to = to.Unmap()
	if !to.IsValid() || to.IsUnspecified() {
		return 0, ErrInvalid
	}
	if to.Is6() != e.is6() {
		return 0, ErrAFNoSupport
	}
	if len(msg) < wire.ICMPv4HeaderLen {
		return 0, ErrInvalid
	}
	want, proto := uint8(wire.ICMPv4EchoRequest), uint8(wire.ProtoICMP)
	if e.is6() {
		want, proto = wire.ICMPv6EchoRequest, wire.ProtoICMPv6
	}
	if msg[0] != want || msg[1] != 0 {
		return 0, ErrInvalid
	}
	hl := ipHeaderLen(to)
	if hl+len(msg) > maxIPPacket && !e.is6() || len(msg) > 0xffff {
		return 0, ErrMsgSize
	}
	rt, err := s.routeTo(to, nil) // a link-local address's zone names the NIC
	if err != nil {
		*s.host.ctr(to).outNoRoutes++
		return 0, err
	}
	to = to.WithZone("")
	if !e.addr.IsUnspecified() {
		rt.src = e.addr
	}
	buf := s.getBuf(hl + len(msg))
	defer s.putBuf(buf)
	m := buf[hl : hl+len(msg)]
	copy(m, msg)
	binary.BigEndian.PutUint16(m[4:], e.id)
	m[2], m[3] = 0, 0
	var c uint16
	if e.is6() {
		c = wire.ICMPv6Checksum(m, rt.src, to)
		s.host.net.Icmp6OutMsgs++
		s.host.net.Icmp6OutEchos++
	} else {
		c = wire.Checksum(m, 0)
		s.host.net.OutMsgs++
		s.host.net.OutEchos++
	}
	binary.BigEndian.PutUint16(m[2:], c)
	s.flows.pingStats.OutRequests++
	if !s.sendPacket(now, &rt, to, proto, buf, len(msg), false) {
		return 0, ErrMsgSize
	}
	return len(msg), nil
}

// pingReply hands an echo reply — msg, whose checksum the ICMP layer has
// checked — to the ping socket its identifier names, if that socket is of
// the reply's family and bound to its destination or to every address
// (Linux's ping_lookup); a reply to an address that is not the stack's
// (a promiscuous NIC's, in forwarder mode) is no socket's. It is the one
// hook of ping sockets in the input path, for ICMPv4 and ICMPv6 alike.
func (s *Stack) pingReply(p *ipRepr, msg []byte) {
	st := &s.flows.pingStats
	ep := s.flows.ping[binary.BigEndian.Uint16(msg[4:])]
	if ep == nil || ep.closed || p.foreign || ep.is6() != p.dst.Is6() ||
		!ep.addr.IsUnspecified() && ep.addr != p.dst {
		st.NoSocket++
		return
	}
	if ep.qBytes+len(msg) > s.cfg.UDPRecvBuffer {
		st.RcvbufErrors++
		return
	}
	buf := s.getBuf(len(msg))
	copy(buf, msg)
	ep.q.PushBack(datagram{from: netip.AddrPortFrom(p.src, 0), to: netip.AddrPortFrom(p.dst, 0), nic: p.nic, buf: buf, n: len(msg)})
	ep.qBytes += len(msg)
	st.InReplies++
	s.notify(ep, EventReadable)
}

// ReadFrom reads the next echo reply — ICMP header and data — into p,
// truncating it if p is short, and returns its sender. It returns
// ErrWouldBlock if none is queued.
func (e *PingEndpoint) ReadFrom(p []byte) (int, netip.Addr, error) {
	if e.closed {
		return 0, netip.Addr{}, ErrClosed
	}
	d, ok := e.q.PopFront()
	if !ok {
		return 0, netip.Addr{}, ErrWouldBlock
	}
	e.qBytes -= d.n
	n := copy(p, d.buf[:d.n])
	e.s.putBuf(d.buf)
	return n, withZone(d.from, d.nic).Addr(), nil
}

// Readable reports whether a reply is queued (or the socket closed).
func (e *PingEndpoint) Readable() bool { return e.q.Len() > 0 || e.closed }

// Close closes the socket and frees its identifier; queued replies are
// dropped.
func (e *PingEndpoint) Close() {
	if e.closed {
		return
	}
	e.closed = true
	f := &e.s.flows
	if f.ping[e.id] == e {
		delete(f.ping, e.id)
	}
	for {
		d, ok := e.q.PopFront()
		if !ok {
			break
		}
		e.s.putBuf(d.buf)
	}
	e.q.Free()
	e.qBytes = 0
	e.s.notify(e, EventClosed|EventReadable)
}
