package tcp

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/siphash"
	"github.com/ustack/ustack/wire"
)

// SYN cookies (RFC 4987 §3.6), built as Linux builds them
// (net/ipv4/syncookies.c): a listener whose SYN queue is full answers a
// SYN with a SYN-ACK whose sequence number encodes what it needs to
// rebuild the connection, and keeps nothing. The peer's final ACK brings
// the cookie back (SEG.ACK − 1), and a valid one opens the connection in
// ESTABLISHED.
//
// The cookie, for a SYN with sequence number S from remote to local:
//
//	cookie = H0(tuple) + S + count·2²⁴ + ((H1(tuple, count) + m) mod 2²⁴)
//
// where H0 and H1 are SipHash-2-4 under two secret keys, count is a clock
// that ticks every CookiePeriod (Linux's tcp_cookie_time), and m the index
// of the MSS in a table of four (Linux's msstab). Checking it strips H0 and
// S, reads count's low 8 bits back from the top, accepts the cookie only if
// it is less than cookieMaxAge periods old, and recovers m from the low 24
// bits with H1 of that count; m must be a table index, so a guessed cookie
// passes with odds of about 2·4/2²⁴ (a guessed ACK needs the peer's
// sequence number as well: RFC 4987 §3.6).
//
// When the SYN carried timestamps, the SYN-ACK's TSval carries the peer's
// window scale, SACK-permitted and ECN in its low six bits (Linux's
// cookie_init_timestamp); the peer echoes it in TSecr, and the options
// come back with it. Without timestamps they are lost, as in Linux: the
// SYN-ACK then offers only the MSS.

// The cookie's constants, Linux's names in comments.
const (
	// CookiePeriod is how often the cookie clock ticks
	// (TCP_SYNCOOKIE_PERIOD, 60 s).
	CookiePeriod = 60 * time.Second
	// cookieMaxAge is how many ticks old a cookie may be
	// (MAX_SYNCOOKIE_AGE): a cookie is valid for 60 to 120 s.
	cookieMaxAge = 2
	// CookieValid is how long a listener goes on checking cookies after
	// it last sent one (TCP_SYNCOOKIE_VALID): before that, or long after,
	// an ACK for no connection is not a cookie (tcp_synq_no_recent_overflow).
	CookieValid = cookieMaxAge * CookiePeriod

	cookieBits = 24 // COOKIEBITS: the count is in the top 8 bits
	cookieMask = 1<<cookieBits - 1

	cookieTSBits       = 6 // the options take TSval's low 6 bits
	cookieTSWScaleMask = 0xf
	cookieTSSACK       = 1 << 4
	cookieTSECN        = 1 << 5
)

// cookieMSS is the table of MSS values a cookie can carry (Linux's msstab
// for IPv4): the largest not above the peer's MSS is used.
var cookieMSS = [4]uint16{536, 1300, 1440, 1460}

// CookieOptions are what a SYN cookie keeps of the peer's SYN.
type CookieOptions struct {
	// MSS is the peer's MSS, rounded down to the cookie's table (536 if
	// the SYN had no MSS option or a smaller one, as Linux).
	MSS uint16
	// Timestamps says the peer uses timestamps (the final ACK carried
	// one); the rest is known only then.
	Timestamps bool
	// HasWScale and WScale are the peer's window scale option (clamped to
	// 14, RFC 7323 §2.3).
	HasWScale bool
	WScale    uint8
	// SACK is the SACK-permitted option (RFC 2018 §2).
	SACK bool
	// ECN says the SYN asked for ECN and the SYN-ACK agreed (RFC 3168
	// §6.1.1). It is kept only with timestamps: without them the cookie
	// SYN-ACK does not agree to ECN (Linux's does, and then opens the
	// connection without it; ustack keeps the two sides in accord).
	ECN bool
}

// SynCookies makes and checks the SYN cookies of one stack. It holds the
// two secret keys (the stack derives them from its seed) and counts into
// an Env's Stats: SyncookiesSent, SyncookiesRecv, SyncookiesFailed.
type SynCookies struct {
	env    *Env
	k0, k1 siphash.Key
}

// NewSynCookies returns a cookie maker for env's connections keyed by k0
// and k1.
func NewSynCookies(env *Env, k0, k1 siphash.Key) *SynCookies {
	return &SynCookies{env: env, k0: k0, k1: k1}
}

// cookieCount is the cookie clock at now (tcp_cookie_time).
func cookieCount(now clock.Instant) uint32 {
	return uint32(time.Duration(now) / CookiePeriod)
}

// hash is cookie_hash: SipHash-2-4 of the 4-tuple and count under k.
func (g *SynCookies) hash(k siphash.Key, local, remote netip.AddrPort, count uint32) uint32 {
	var b [40]byte
	r, l := remote.Addr().As16(), local.Addr().As16()
	copy(b[0:], r[:])
	copy(b[16:], l[:])
	binary.BigEndian.PutUint16(b[32:], remote.Port())
	binary.BigEndian.PutUint16(b[34:], local.Port())
	binary.BigEndian.PutUint32(b[36:], count)
	return uint32(k.Sum64(b[:]))
}

// cookieSeq is secure_tcp_syn_cookie: the cookie for a SYN with sequence
// number peerISN, at cookie clock count, carrying data (< 2²⁴).
func (g *SynCookies) cookieSeq(local, remote netip.AddrPort, peerISN wire.Seq, count, data uint32) wire.Seq {
	return wire.Seq(g.hash(g.k0, local, remote, 0) + uint32(peerISN) + count<<cookieBits +
		(g.hash(g.k1, local, remote, count)+data)&cookieMask)
}

// checkCookieSeq is check_tcp_syn_cookie: the data a cookie carries, if it
// was made for this tuple and peerISN less than cookieMaxAge ticks before
// count.
func (g *SynCookies) checkCookieSeq(local, remote netip.AddrPort, cookie, peerISN wire.Seq, count uint32) (uint32, bool) {
	c := uint32(cookie) - (g.hash(g.k0, local, remote, 0) + uint32(peerISN))
	diff := (count - c>>cookieBits) & (1<<(32-cookieBits) - 1)
	if diff >= cookieMaxAge {
		return 0, false
	}
	return (c - g.hash(g.k1, local, remote, count-diff)) & cookieMask, true
}

// cookieMSSIndex returns the index of the largest table MSS not above mss
// (0 if all are: Linux's __cookie_v4_init_sequence).
func cookieMSSIndex(mss uint16) int {
	i := len(cookieMSS) - 1
	for ; i > 0; i-- {
		if mss >= cookieMSS[i] {
			break
		}
	}
	return i
}

// cookieTSVal is cookie_init_timestamp: our timestamp clock nowMS (before
// the connection's offset) with its low six bits replaced by the options,
// moved one step back if that put it in the future.
func cookieTSVal(nowMS uint32, o CookieOptions) uint32 {
	opts := uint32(cookieTSWScaleMask)
	if o.HasWScale {
		opts = uint32(min(o.WScale, 14))
	}
	if o.SACK {
		opts |= cookieTSSACK
	}
	if o.ECN {
		opts |= cookieTSECN
	}
	ts := nowMS>>cookieTSBits<<cookieTSBits | opts
	if int32(ts-nowMS) > 0 {
		ts -= 1 << cookieTSBits
	}
	return ts
}

// decodeCookieTS is cookie_timestamp_decode: the options in the low bits
// of an echoed cookie TSval (offset removed). A window scale field of 15
// (no shift can be above 14) means the SYN had no window scale option.
func decodeCookieTS(echo uint32) CookieOptions {
	o := CookieOptions{Timestamps: true, SACK: echo&cookieTSSACK != 0, ECN: echo&cookieTSECN != 0}
	if ws := echo & cookieTSWScaleMask; ws != cookieTSWScaleMask {
		o.HasWScale, o.WScale = true, uint8(ws)
	}
	return o
}

// SynAck fills out with the SYN-ACK a listener sends, keeping no state,
// in answer to syn, a SYN from ep.Remote to ep.Local (RFC 4987 §3.6): its
// sequence number is a cookie, and it offers what a connection's SYN-ACK
// would (RFC 7323 §1.3, RFC 2018 §2), except that without timestamps in
// the SYN it offers only the MSS, as Linux's does (nothing could bring the
// other options back). ep.ISS is not used. It counts SyncookiesSent and
// OutSegs; the caller computes the checksum.
func (g *SynCookies) SynAck(now clock.Instant, ep Endpoints, syn *wire.TCPFields, out *wire.TCPFields) {
	cfg := &g.env.cfg
	so := &syn.Options
	peerMSS := so.MSS
	if peerMSS == 0 {
		peerMSS = defaultMSS(ep.Remote) // RFC 9293 §3.7.1, MUST-15
	}
	idx := cookieMSSIndex(peerMSS)
	var o CookieOptions
	ts := so.HasTimestamp && !cfg.NoTimestamps
	if ts {
		o.HasWScale = so.HasWScale && !cfg.NoWindowScale
		o.WScale = min(so.WScale, 14)
		o.SACK = so.SACKPermitted && !cfg.NoSACK
		o.ECN = ecnSetupSYN(syn.Flags) && cfg.ECN != ECNOff && ep.ECN
	}
	*out = wire.TCPFields{
		SrcPort: ep.Local.Port(),
		DstPort: ep.Remote.Port(),
		Seq:     g.cookieSeq(ep.Local, ep.Remote, syn.Seq, cookieCount(now), uint32(idx)),
		Ack:     syn.Seq.Add(1),
		Flags:   wire.TCPFlagSYN | wire.TCPFlagACK,
		// RFC 7323 §2.2: a SYN's window is not scaled.
		Window: uint16(min(cfg.RcvBuf, 65535)),
	}
	oo := &out.Options
	oo.MSS = advMSS(ep)
	if o.HasWScale {
		oo.HasWScale, oo.WScale = true, windowShift(max(cfg.RcvBuf, cfg.RcvBufMax))
	}
	oo.SACKPermitted = o.SACK
	if o.ECN {
		out.Flags |= wire.TCPFlagECE // an ECN-setup SYN-ACK (RFC 3168 §6.1.1)
	}
	if ts {
		oo.HasTimestamp = true
		oo.TSVal = cookieTSVal(msClock(now), o) + ep.TSOffset
		oo.TSEcr = so.TSVal
	}
	g.env.Stats.SyncookiesSent++
	g.env.Stats.OutSegs++
}

// Check validates ack, a segment with ACK set (and neither SYN nor RST)
// that arrived at a listener for no connection, as the answer to a cookie
// SYN-ACK from ep.Local to ep.Remote (ep.TSOffset is the one SynAck used).
// It returns what the cookie kept, and counts SyncookiesRecv; a segment
// that carries no valid cookie counts SyncookiesFailed, and the caller
// treats it as any stray ACK (RFC 9293 §3.10.7.2: a RST).
//
// The cookie is SEG.ACK − 1 for the peer's SYN SEG.SEQ − 1, and must be
// less than two clock ticks old. With a timestamp, TSecr must be a cookie
// TSval SynAck could have sent in that time (not in the future, not older
// than the cookie can be); the options come from its low bits. Linux
// checks only the options bits of the echo; the age check refuses echoes
// the cookie could not have produced.
func (g *SynCookies) Check(now clock.Instant, ep Endpoints, ack *wire.TCPFields) (CookieOptions, bool) {
	cfg := &g.env.cfg
	o, ok := g.check(now, ep, ack)
	if ok && (o.Timestamps && cfg.NoTimestamps || o.SACK && cfg.NoSACK || o.HasWScale && cfg.NoWindowScale || o.ECN && cfg.ECN == ECNOff) {
		// cookie_timestamp_decode: options we would not have offered.
		ok = false
	}
	if !ok {
		g.env.Stats.SyncookiesFailed++
		return CookieOptions{}, false
	}
	g.env.Stats.SyncookiesRecv++
	return o, true
}

func (g *SynCookies) check(now clock.Instant, ep Endpoints, ack *wire.TCPFields) (CookieOptions, bool) {
	idx, ok := g.checkCookieSeq(ep.Local, ep.Remote, ack.Ack.Add(^uint32(0)), ack.Seq.Add(^uint32(0)), cookieCount(now))
	if !ok || idx >= uint32(len(cookieMSS)) {
		return CookieOptions{}, false
	}
	var o CookieOptions
	if ack.Options.HasTimestamp {
		echo := ack.Options.TSEcr - ep.TSOffset
		age := int64(int32(msClock(now) - echo))
		if age < 0 || age >= int64((CookieValid+(1<<cookieTSBits)*time.Millisecond)/time.Millisecond) {
			return CookieOptions{}, false
		}
		o = decodeCookieTS(echo)
	}
	o.MSS = cookieMSS[idx]
	return o, true
}

// msClock is the timestamp clock before a connection's offset:
// milliseconds, as Linux's (and tsVal's).
func msClock(now clock.Instant) uint32 { return uint32(time.Duration(now) / time.Millisecond) }

// defaultMSS is the MSS assumed of a peer whose SYN carries no MSS
// option (RFC 9293 §3.7.1, MUST-15): 536 over IPv4, 1220 over IPv6 (the
// minimum MTU of 1280, RFC 8200 §5, less 60).
func defaultMSS(remote netip.AddrPort) uint16 {
	if a := remote.Addr(); a.Is6() && !a.Is4In6() {
		return 1220
	}
	return 536
}

// advMSS is the MSS announced for the IP MTU of ep's route: the MTU less
// the fixed IP and TCP headers (RFC 9293 §3.7.1: MTU − 40 over IPv4; RFC
// 8200 §8.3: MTU − 60 over IPv6).
func advMSS(ep Endpoints) uint16 {
	mtu := ep.MTU
	if mtu <= 0 {
		mtu = 1500
	}
	ipHdr := wire.IPv4HeaderLen
	if ep.Remote.Addr().Is6() && !ep.Remote.Addr().Is4In6() {
		ipHdr = wire.IPv6HeaderLen
	}
	return uint16(min(mtu-ipHdr-wire.TCPHeaderLen, 65535))
}

// OpenCookie opens a connection from a valid cookie (what Check
// returned): ack is the segment that carried it, ep.ISS must be SEG.ACK −
// 1. The connection is set up as if it had been in SYN-RECEIVED with the
// cookie SYN-ACK sent (the SYN's options restored from o), then ack is
// processed as the handshake's final ACK (RFC 9293 §3.10.7.4), with any
// data or FIN it carries: the connection is ESTABLISHED (or CLOSE-WAIT)
// when OpenCookie returns nil. Linux's cookie_v4_check does the same.
func (c *Conn) OpenCookie(now clock.Instant, ep Endpoints, ack *wire.TCPFields, o CookieOptions) error {
	if ack.Flags&(wire.TCPFlagACK|wire.TCPFlagSYN|wire.TCPFlagRST) != wire.TCPFlagACK || ep.ISS != ack.Ack.Add(^uint32(0)) {
		return ErrInvalid
	}
	flags := wire.TCPFlagSYN
	if o.ECN {
		flags |= wire.TCPFlagECE | wire.TCPFlagCWR // it was an ECN-setup SYN
	}
	syn := wire.TCPFields{
		SrcPort: ack.SrcPort,
		DstPort: ack.DstPort,
		Seq:     ack.Seq.Add(^uint32(0)),
		Flags:   flags,
		Options: wire.TCPOptions{
			MSS:           o.MSS,
			HasWScale:     o.HasWScale,
			WScale:        o.WScale,
			SACKPermitted: o.SACK,
			// TS.Recent starts from the final ACK's TSval, as Linux's
			// cookie connections' ts_recent does.
			HasTimestamp: o.Timestamps && ack.Options.HasTimestamp,
			TSVal:        ack.Options.TSVal,
		},
	}
	if err := c.OpenPassive(now, ep, &syn); err != nil {
		return err
	}
	// The SYN-ACK went out (SynAck built it): it took ISS, and announced
	// an unscaled window from RCV.NXT.
	c.synPending = false
	c.sndNxt = c.iss.Add(1)
	c.sndMax = c.sndNxt
	c.rcvAdv = c.rcvNxt.Add(min(c.rcvFree(), 65535))
	c.lastAckSent = c.rcvNxt
	c.HandleSegment(now, ack)
	switch c.state {
	case Established, CloseWait:
		return nil
	}
	// Not reachable with what Check accepts; leave nothing behind.
	c.finish(ErrInvalid)
	return ErrInvalid
}

// CookiesRecent reports whether a listener that last sent a cookie at
// lastSent (clock.Never: never) checks the ACKs it gets for no connection
// as cookies at now: for CookieValid after each cookie
// (tcp_synq_no_recent_overflow).
func CookiesRecent(now, lastSent clock.Instant) bool {
	return lastSent != clock.Never && lastSent <= now && now.Sub(lastSent) <= CookieValid
}
