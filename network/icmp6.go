package network

import (
	"encoding/binary"
	"net/netip"

	"github.com/ustack/ustack/wire"
)

// ErrorAllowed6 reports whether an ICMPv6 error may be sent about the
// IPv6 packet p (RFC 4443 §2.4 (e)): not about an ICMPv6 error message or
// a redirect (e.1, e.2), not about a packet whose source does not name a
// single node — unspecified or multicast (e.6) —, and, unless exception
// is true, not about a packet to a multicast address (e.3) or one that
// came as link-layer multicast or broadcast, which linkMulticast says
// (e.4, e.5). The exception is the packet too big message and the
// parameter problem, code 2, about an option whose type asks for one
// whatever the destination (RFC 8200 §4.2, action 10): the caller says
// whether the error it means to send is one of those.
//
// The rate limit (f) is the caller's. p may be a truncated quote (a
// reassembly timeout's): what it holds is read, no further.
func ErrorAllowed6(p []byte, linkMulticast, exception bool) bool {
	if len(p) < wire.IPv6HeaderLen {
		return false
	}
	ip := wire.IPv6(p)
	src, dst := ip.Src(), ip.Dst()
	if src.IsUnspecified() || src.IsMulticast() {
		return false
	}
	if (dst.IsMulticast() || linkMulticast) && !exception {
		return false
	}
	end := len(p)
	if n := wire.IPv6HeaderLen + int(ip.PayloadLen()); n < end {
		end = n
	}
	proto, off, err := wire.SkipIPv6Ext(p[wire.IPv6HeaderLen:end], ip.NextHeader())
	if proto != wire.ProtoICMPv6 {
		return true
	}
	if err != nil || wire.IPv6HeaderLen+off >= end {
		return false // no type to look at: assume an error, as Linux does
	}
	t := p[wire.IPv6HeaderLen+off]
	return !wire.ICMPv6IsError(t) && t != wire.ICMPv6Redirect
}

// ErrorMessage6 writes an ICMPv6 error message of type typ and code code
// into dst — the second word (the MTU of a packet too big, the pointer of
// a parameter problem) set to word, then as much of the invoking packet
// orig as keeps the error within the minimum IPv6 MTU (RFC 4443 §2.4 (c))
// and fits dst — with its checksum for the addresses src and to, and
// returns its length. The quote stops at orig's payload length if orig
// parses as IPv6, so link padding is not quoted. It returns 0 if dst
// cannot hold the 8-byte header.
func ErrorMessage6(dst []byte, typ, code uint8, word uint32, orig []byte, src, to netip.Addr) int {
	if len(dst) < wire.ICMPv6HeaderLen {
		return 0
	}
	if p, err := wire.ParseIPv6(orig); err == nil {
		orig = p.Packet()
	}
	q := min(len(orig), wire.ICMPv6ErrorQuoteMax, len(dst)-wire.ICMPv6HeaderLen)
	n := wire.ICMPv6HeaderLen + q
	dst[0], dst[1], dst[2], dst[3] = typ, code, 0, 0
	binary.BigEndian.PutUint32(dst[4:], word)
	copy(dst[wire.ICMPv6HeaderLen:n], orig[:q])
	binary.BigEndian.PutUint16(dst[2:], wire.ICMPv6Checksum(dst[:n], src, to))
	return n
}

// EchoReply6 writes the reply to the ICMPv6 echo request req into dst,
// from src to to, and returns its length (RFC 4443 §4.2: the identifier,
// sequence number and data of the request, returned). dst may be req
// itself. It returns 0 if req is shorter than the header or dst shorter
// than req.
func EchoReply6(dst, req []byte, src, to netip.Addr) int {
	n := len(req)
	if n < wire.ICMPv6HeaderLen || len(dst) < n {
		return 0
	}
	copy(dst, req)
	dst[0], dst[1], dst[2], dst[3] = wire.ICMPv6EchoReply, 0, 0, 0
	binary.BigEndian.PutUint16(dst[2:], wire.ICMPv6Checksum(dst[:n], src, to))
	return n
}
