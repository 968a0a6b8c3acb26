package network

import (
	"encoding/binary"
	"math"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// ICMPErrorQuoteMax is the most of the offending datagram an ICMP error
// quotes: as much as keeps the error's IP packet within 576 bytes (RFC 1812
// §4.3.2.3; Linux icmp_send: 576 − a 20-byte IP header − the 8-byte ICMP
// header). RFC 792 requires only the header and 8 bytes.
const ICMPErrorQuoteMax = 576 - wire.IPv4HeaderLen - wire.ICMPv4HeaderLen

// ErrorAllowed reports whether an ICMP error may be sent about packet p
// (RFC 1122 §3.2.2: not about an ICMP error message, not about a non-first
// fragment, not about a packet to/from a broadcast/multicast/zero/loopback
// address); linkBroadcast says the frame was link-level broadcast (or
// multicast).
//
// p must be a view wire.ParseIPv4 accepted; a shorter one is refused. ICMP
// messages of unknown types count as errors, as in Linux (icmp_send:
// "assume any unknown ICMP type is an error"): only echo, timestamp,
// information and address-mask requests and replies (types 0, 8, 13–18)
// may cause an error. Class E (240.0.0.0/4) addresses do not define a
// single host either. The directed broadcast addresses of the stack's
// subnets are the stack's to check: p does not say what they are.
//
// Loopback: a datagram from or to 127.0.0.0/8 is refused unless both its
// addresses are loopback. Such a datagram never leaves a host (RFC 1122
// §3.2.1.3), so this one was sent by the stack to itself, and Linux
// answers it (a UDP send to a closed port on 127.0.0.1 gets ECONNREFUSED
// from the port unreachable); one that arrived from a wire with a single
// loopback address is martian.
func ErrorAllowed(p wire.IPv4, linkBroadcast bool) bool {
	if linkBroadcast || len(p) < wire.IPv4HeaderLen {
		return false
	}
	src, dst := p.Src(), p.Dst()
	if !singleHost(src) || !singleHost(dst) {
		return false
	}
	if src.IsLoopback() != dst.IsLoopback() {
		return false
	}
	if p.FragOffset() != 0 {
		return false
	}
	if p.Protocol() == wire.ProtoICMP {
		hl := p.HeaderLen()
		if hl >= len(p) || hl >= int(p.TotalLen()) {
			return false // no type to look at (Linux: skb_header_pointer fails)
		}
		switch p[hl] {
		case wire.ICMPv4EchoReply, wire.ICMPv4EchoRequest, 13, 14, 15, 16, 17, 18:
		default:
			return false
		}
	}
	return true
}

// singleHost reports whether a is an IPv4 address of one host: not zero,
// not multicast, not broadcast or otherwise in class E (RFC 1122
// §3.2.1.3, §3.2.2).
func singleHost(a netip.Addr) bool {
	b := a.As4()
	return !a.IsUnspecified() && !a.IsMulticast() && b[0] < 240
}

// ErrorMessage writes an ICMPv4 error message (header + quote of the
// offending packet orig: its IP header and as much payload as keeps the
// whole reply IP packet within 576 bytes, as Linux does) into dst and
// returns its length; it computes the ICMP checksum. mtu is the next-hop
// MTU for fragmentation-needed (RFC 1191), else 0.
//
// For parameter problem (type 12) the low byte of mtu is the pointer (RFC
// 792). The quote stops at orig's total length if orig parses as IPv4 (so
// link padding is not quoted), and at the room in dst. It returns 0 if dst
// cannot hold the 8-byte header.
func ErrorMessage(dst []byte, typ, code uint8, mtu uint16, orig []byte) int {
	if len(dst) < wire.ICMPv4HeaderLen {
		return 0
	}
	if p, err := wire.ParseIPv4(orig); err == nil {
		orig = p.Packet()
	}
	q := min(len(orig), ICMPErrorQuoteMax, len(dst)-wire.ICMPv4HeaderLen)
	f := wire.ICMPv4Fields{Type: typ, Code: code, MTU: mtu, Pointer: uint8(mtu), Payload: orig[:q]}
	return f.Encode(dst)
}

// EchoReply writes the reply to echo request req (an ICMP message,
// header+data) into dst and returns its length (RFC 792: the type becomes
// echo reply, identifier, sequence number and data are returned as
// received). dst may be req itself, for a reply in place. It returns 0 if
// req is shorter than the ICMP header or dst shorter than req; it does not
// check req's type or checksum, which the stack has done.
func EchoReply(dst []byte, req []byte) int {
	n := len(req)
	if n < wire.ICMPv4HeaderLen || len(dst) < n {
		return 0
	}
	copy(dst, req)
	dst[0], dst[1] = wire.ICMPv4EchoReply, 0
	dst[2], dst[3] = 0, 0
	binary.BigEndian.PutUint16(dst[2:], wire.Checksum(dst[:n], 0))
	return n
}

// TokenBucket rate-limits ICMP errors (Linux icmp_ratelimit 1000 ms with
// burst icmp_msgs_burst 50, icmp_msgs_per_sec 1000). Zero value → those
// defaults.
//
// RFC 1812 §4.3.2.8 asks routers to limit the rate of ICMP errors; RFC 1122
// §3.2.2 allows hosts to. The defaults are Linux's global limit
// (icmp_global_allow: icmp_msgs_per_sec, icmp_msgs_burst). Linux also
// limits each destination to one error per icmp_ratelimit (1000 ms) with a
// burst of 6 (XRLIM_BURST_FACTOR); a stack that wants that keeps a
// TokenBucket{Rate: 1, Burst: 6} per destination. The bucket starts full.
type TokenBucket struct {
	Rate  float64 // tokens per second; 0 means 1000 (icmp_msgs_per_sec)
	Burst int     // bucket size; 0 means 50 (icmp_msgs_burst)

	nanotokens int64 // tokens × 1e9: fixed point, so refills add up exactly
	last       clock.Instant
	started    bool
}

// Defaults of TokenBucket.
const (
	DefaultICMPRate  = 1000
	DefaultICMPBurst = 50
)

// Allow reports whether one more message may be sent at now, and if so
// takes a token. Time going backwards adds no tokens.
func (b *TokenBucket) Allow(now clock.Instant) bool {
	const one = int64(1e9)
	rate := b.Rate
	if !(rate > 0) || math.IsInf(rate, 0) {
		rate = DefaultICMPRate
	}
	burst := int64(DefaultICMPBurst)
	if b.Burst > 0 {
		burst = int64(min(b.Burst, math.MaxInt32))
	}
	full := burst * one
	switch {
	case !b.started:
		b.started = true
		b.nanotokens = full
		b.last = now
	case now > b.last:
		// elapsed ns × tokens/s = nanotokens.
		add := float64(now.Sub(b.last)) * rate
		if add >= float64(full-b.nanotokens) {
			b.nanotokens = full
		} else {
			b.nanotokens += int64(math.Round(add))
		}
		b.last = now
	}
	b.nanotokens = min(b.nanotokens, full) // Burst may have shrunk
	if b.nanotokens < one {
		return false
	}
	b.nanotokens -= one
	return true
}
