package tcp

import (
	"fmt"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// Path MTU for one connection. The MSS a connection sends (sndMSS) starts
// at what the handshake negotiated and then follows the path:
//
//   - down when the network says a segment was too big: an ICMP
//     "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC
//     8201) that quotes a sequence number in flight (RFC 5927 §4.1;
//     HandlePacketTooBig). What was in flight at the larger size is resent
//     in pieces that fit, without a congestion response (RFC 1191 §6.5,
//     Linux's tcp_simple_retransmit: the loss-recovery algorithm's
//     onMSSDrop);
//   - down to the base MSS when full-sized segments keep timing out and
//     no ICMP comes (a black hole, RFC 4821 §5 and RFC 8899 §4.3), and
//     then up again by probing: packetization-layer path MTU discovery
//     (RFC 4821, with RFC 8899's states). A probe is a segment of new
//     data larger than the MSS; acknowledged, it becomes the MSS; deemed
//     lost, it is resent in MSS-sized pieces and its loss is not taken
//     for congestion (RFC 4821 §7.5). The sizes are searched by halving
//     the interval between the largest that passed and the largest that
//     may (Linux's tcp_mtu_probe), and searched again ProbeInterval after
//     the search ends (RFC 8899's PMTU_RAISE_TIMER).
//
// Config.MTUProbing chooses when probing runs, as Linux's tcp_mtu_probing.
// The pieces plug into the core at its seams: the ACK (newlyAcked), RACK's
// loss detection (a lost probe is no congestion), the RTO (black-hole
// detection), the loss-recovery interface (onMSSDrop), the timer table
// (timerPLPMTU) and the size of the next piece of new data (nextPiece asks
// plpProbeSize).

// MTUProbingMode is Config.MTUProbing, Linux's net.ipv4.tcp_mtu_probing.
type MTUProbingMode uint8

// The modes. The zero value is MTUProbingBlackHole.
const (
	// MTUProbingBlackHole: probe only once a black hole was detected
	// (tcp_mtu_probing = 1). The default here; Linux's default is 0.
	MTUProbingBlackHole MTUProbingMode = iota
	// MTUProbingOff: never drop the MSS for a black hole nor probe; only
	// ICMP lowers it (tcp_mtu_probing = 0).
	MTUProbingOff
	// MTUProbingAlways: start every connection at the base MSS and probe
	// upward (tcp_mtu_probing = 2).
	MTUProbingAlways
)

// String returns the mode's name.
func (m MTUProbingMode) String() string {
	switch m {
	case MTUProbingBlackHole:
		return "blackhole"
	case MTUProbingOff:
		return "off"
	case MTUProbingAlways:
		return "always"
	}
	return fmt.Sprintf("MTUProbingMode(%d)", uint8(m))
}

// MarshalText returns the mode's name, so that flag.TextVar and
// encoding/json show it as UnmarshalText reads it.
func (m MTUProbingMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText sets the mode from its name ("off", "blackhole",
// "always") or from the value net.ipv4.tcp_mtu_probing gives it ("0",
// "1", "2").
func (m *MTUProbingMode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "off", "0":
		*m = MTUProbingOff
	case "blackhole", "1":
		*m = MTUProbingBlackHole
	case "always", "2":
		*m = MTUProbingAlways
	default:
		return fmt.Errorf("tcp: unknown MTU probing mode %q (off, blackhole, always; or 0, 1, 2 as net.ipv4.tcp_mtu_probing)", b)
	}
	return nil
}

// PLPMTUDState is where a connection's packetization-layer path MTU
// discovery is, in RFC 8899 §5.2's terms (Info.PLPMTUD).
type PLPMTUDState uint8

// The states.
const (
	// PLPMTUDDisabled: no probing (MTUProbingOff, or MTUProbingBlackHole
	// before a black hole). ICMP still lowers the MSS.
	PLPMTUDDisabled PLPMTUDState = iota
	// PLPMTUDBase: sending at the base MSS until it is confirmed (an ACK
	// of data sent at it).
	PLPMTUDBase
	// PLPMTUDSearch: probing for a larger MSS.
	PLPMTUDSearch
	// PLPMTUDSearchComplete: the search converged; it starts again after
	// Config.ProbeInterval.
	PLPMTUDSearchComplete
	// PLPMTUDError: a black hole at or below the base MSS: the MSS was
	// halved, not below what the family's minimum MTU carries (minMSS),
	// and the search goes on from there.
	PLPMTUDError
)

var plpStateNames = [...]string{"disabled", "base", "search", "search-complete", "error"}

// String returns the state's name.
func (s PLPMTUDState) String() string {
	if int(s) < len(plpStateNames) {
		return plpStateNames[s]
	}
	return fmt.Sprintf("PLPMTUDState(%d)", uint8(s))
}

// UnmarshalText sets the state from its name (String's).
func (s *PLPMTUDState) UnmarshalText(b []byte) error {
	for i, n := range plpStateNames {
		if n == string(b) {
			*s = PLPMTUDState(i)
			return nil
		}
	}
	return fmt.Errorf("tcp: unknown PLPMTUD state %q", b)
}

const (
	// probeThreshold ends a search when the sizes still unknown span
	// fewer bytes (Linux's tcp_probe_threshold, 8).
	probeThreshold = 8
	// blackHoleRTOs is how many RTOs in a row of a full-sized segment
	// make a black hole. Linux's rule is tcp_retries1 (3) counted as
	// time: (2⁴ − 1) × 200 ms = 3 s after the first retransmission,
	// which with a 200–300 ms RTO is reached at the fifth RTO; the
	// fourth here comes earlier (3 s after the first transmission at a
	// 200 ms RTO, against Linux's 6.2 s) while three in a row, which
	// random loss of a few percent produces, do not suffice.
	blackHoleRTOs = 4
	// blackHoleTime also makes a black hole: the time since the first
	// RTO of the run, once two RTOs in a row passed (Linux's rule, which
	// matters when the RTO is long: after a lost SYN the RTO stays at 1
	// s, and four RTOs in a row take 31 s).
	blackHoleTime = 3 * time.Second
	// mssFloor is the least MSS an ICMP error can set (Linux's
	// tcp_min_snd_mss, 48).
	mssFloor = 48
	// minPMTU4 and minPMTU6 are the least path MTUs a black hole drops
	// to: IPv4's as Linux's min_pmtu (552), IPv6's minimum link MTU
	// (1280, RFC 8200 §5). Linux lets repeated black holes halve the MSS
	// down to 48 bytes (tcp_mtu_probe_floor); with random loss high
	// enough for RTOs in a row that ratchets a connection without SACK
	// (which cannot probe back up here) down to 48-byte segments for
	// good, as the super-segment test at 15% loss showed.
	minPMTU4 = 552
	minPMTU6 = 1280
	// probeMinCwnd is the congestion window, in segments, below which no
	// probe goes (Linux's tcp_mtu_probe: 11).
	probeMinCwnd = 11
	// probeTrail is how many segments of data must be ready to follow a
	// probe, so that its loss is found by RACK rather than by an RTO
	// (Linux: the reordering degree plus one, 4).
	probeTrail = 4
)

// plpmtud is a connection's path MTU state (plpmtud.go's comment). Sizes
// are MSS values: data bytes per segment, without options, as sndMSS.
type plpmtud struct {
	state PLPMTUDState
	// maxMSS is the MSS the handshake negotiated: no search goes above
	// it.
	maxMSS uint32
	// low is the largest MSS known to pass the path; high the largest
	// that may (a failed probe or a packet too big lowers it).
	low, high uint32
	// probe is the size of the probe in flight (0: none), which covers
	// [probeStart, probeEnd).
	probe                uint32
	probeStart, probeEnd wire.Seq
	// bhAt is rexmitCount when the last black hole was detected: the
	// next needs blackHoleRTOs more; firstRTO is when the run of RTOs
	// since began.
	bhAt     int32
	firstRTO clock.Instant
}

// plpInit starts path MTU state once the handshake fixed the MSS, before
// the controller is made (it starts from the MSS set here).
func (c *Conn) plpInit() {
	p := &c.plp
	*p = plpmtud{maxMSS: c.sndMSS, low: c.sndMSS, high: c.sndMSS}
	if c.epPathMTU > 0 {
		// A path MTU known already (the owner's cache) caps what is
		// sent; a later search may go back up to the negotiated MSS.
		c.sndMSS = min(c.sndMSS, c.mtuToMSS(int(c.epPathMTU)))
		p.low, p.high = c.sndMSS, c.sndMSS
	}
	if c.env.cfg.MTUProbing == MTUProbingAlways {
		// As Linux with tcp_mtu_probing = 2: the base MSS first, then
		// probe upward.
		p.low = min(uint32(c.env.cfg.BaseMSS), c.sndMSS)
		p.state = PLPMTUDBase
		c.sndMSS = p.low
	}
}

// setMSS changes the send MSS after the handshake and tells the
// controller.
func (c *Conn) setMSS(mss uint32) {
	if mss == c.sndMSS {
		return
	}
	c.sndMSS = mss
	if c.cc != nil {
		c.cc.SetMSS(mss)
	}
}

// mtuToMSS returns the MSS that fits an IP MTU: less the fixed IP header
// of the peer's family, TCP's and the timestamps option if in use.
func (c *Conn) mtuToMSS(mtu int) uint32 {
	hdr := c.headerOverhead()
	if mtu <= hdr+mssFloor {
		return mssFloor
	}
	return uint32(mtu - hdr)
}

// pmtu returns the path MTU the MSS in use stands for (Info.PMTU, Linux's
// tcpi_pmtu): the MSS plus the headers mtuToMSS takes off.
func (c *Conn) pmtu() int {
	if c.sndMSS == 0 {
		return 0
	}
	return int(c.sndMSS) + c.headerOverhead()
}

// headerOverhead is what mtuToMSS subtracts from an MTU.
func (c *Conn) headerOverhead() int {
	hdr := wire.IPv4HeaderLen + wire.TCPHeaderLen
	if a := c.remote.Addr(); a.Is6() && !a.Is4In6() {
		hdr = wire.IPv6HeaderLen + wire.TCPHeaderLen
	}
	if c.tsOK {
		hdr += 12
	}
	return hdr
}

// ICMPInWindow reports whether an ICMP error quoting one of this
// connection's segments with sequence number seq may be acted on: the
// sequence number must be in flight, SND.UNA ≤ seq ≤ SND.NXT (RFC 5927
// §4.1; both ends included, as Linux's tcp_v4_err, whose snd_nxt is our
// SND.MAX: SND.NXT here is rewound by an RTO). Anything else is forged or
// stale and is dropped (the owner counts it, OutOfWindowICMPs).
func (c *Conn) ICMPInWindow(seq wire.Seq) bool {
	if c.state == Closed {
		return false
	}
	return c.sndUna.LessEq(seq) && seq.LessEq(c.sndMax)
}

// HandlePacketTooBig handles an ICMP "fragmentation needed" (RFC 1191) or
// ICMPv6 "packet too big" (RFC 8201) quoting a segment of this connection
// with sequence number seq, reporting the path's MTU (which the owner has
// already clamped to its family's minimum). It reports whether the error
// was accepted: only one quoting a sequence number in flight is (RFC 5927
// §4.1; ICMPInWindow), the others are counted (PTBRejected,
// OutOfWindowICMPs) and change nothing. An accepted one lowers the MSS if
// the MTU is below what it stands for and resends what was in flight at
// the larger size (RFC 1191 §6.5); it never raises it (RFC 1191 §6.3).
func (c *Conn) HandlePacketTooBig(now clock.Instant, seq wire.Seq, mtu int) bool {
	st := &c.env.Stats
	st.PTBReceived++
	if !c.ICMPInWindow(seq) {
		st.PTBRejected++
		st.OutOfWindowICMPs++
		return false
	}
	st.PTBAccepted++
	if c.sndMSS == 0 || c.state == SynSent || c.state == SynReceived {
		// The MSS is not fixed yet; the owner's path MTU cache gives the
		// next connection the smaller MTU.
		return true
	}
	mss := c.mtuToMSS(mtu)
	p := &c.plp
	if p.probe > mss {
		c.plpProbeFailed(mss)
	}
	p.high = min(p.high, mss)
	if mss >= c.sndMSS {
		return true
	}
	p.low = min(p.low, mss)
	c.setMSS(mss)
	c.rec.onMSSDrop(now)
	return true
}

// SetPathMTU tells the connection the path MTU its owner now knows for the
// peer, after the owner's cache learned one from another connection's
// packet too big, or forgot one that expired. A smaller MTU lowers the MSS
// as an accepted packet too big does (RFC 5927's check is for ICMP, not
// for what the owner knows); a larger one raises it, up to the negotiated
// MSS, unless probing runs (the search finds its own size; Linux clamps
// to its search_low likewise) — RFC 1191 §6.3's increase after the
// cache entry expires.
func (c *Conn) SetPathMTU(now clock.Instant, mtu int) {
	if c.sndMSS == 0 || c.state == SynSent || c.state == SynReceived || c.state == Closed {
		c.epPathMTU = clampInt32(mtu)
		return
	}
	p := &c.plp
	mss := min(c.mtuToMSS(mtu), p.maxMSS)
	switch {
	case mss < c.sndMSS:
		p.high = min(p.high, mss)
		p.low = min(p.low, mss)
		if p.probe > mss {
			c.plpProbeFailed(mss)
		}
		c.setMSS(mss)
		c.rec.onMSSDrop(now)
	case mss > c.sndMSS && p.state == PLPMTUDDisabled:
		p.low, p.high = mss, mss
		c.setMSS(mss)
	}
}

// plpProbeSize returns the size of the probe to send as the next piece of
// new data, or 0 for none. A probe goes when the search is on and no
// probe is in flight, outside loss recovery and with no SACK blocks to
// send (they would eat into it), with a congestion window of at least
// probeMinCwnd segments, and with the probe and probeTrail segments of
// data ready and within the peer's window (as Linux's tcp_mtu_probe), so
// that a lost probe is found by the segments behind it. Probing needs
// RACK (the default with SACK): it is what tells a lost probe from
// congestion. The search ends when fewer than probeThreshold sizes remain
// unknown; the raise timer restarts it.
func (c *Conn) plpProbeSize(now clock.Instant, avail, wndLeft, cwndLeft uint32) uint32 {
	p := &c.plp
	if p.state != PLPMTUDSearch && p.state != PLPMTUDError || p.probe != 0 {
		return 0
	}
	if p.high < p.low+probeThreshold {
		p.state = PLPMTUDSearchComplete
		c.timers.set(timerPLPMTU, now.Add(c.env.cfg.ProbeInterval))
		return 0
	}
	size := (p.low + p.high + 1) / 2
	mss := c.sndMSS
	if size <= mss || c.rack == nil || c.lr.inRecovery || c.lr.pending ||
		c.sndNxt != c.sndMax || c.dsackNow || !c.ooo.empty() || c.cc.Cwnd() < probeMinCwnd*mss {
		return 0
	}
	need := size + probeTrail*mss
	if avail < need || wndLeft < need || cwndLeft < size {
		return 0
	}
	return size
}

// plpProbeSent records the probe just sent over [seq, seq+n).
func (c *Conn) plpProbeSent(seq wire.Seq, n uint32) {
	p := &c.plp
	p.probe, p.probeStart, p.probeEnd = n, seq, seq.Add(n)
	c.env.Stats.MTUProbes++
}

// plpAcked follows an ACK that moved SND.UNA: the base MSS is confirmed,
// and an acknowledged probe becomes the MSS (RFC 4821 §7.6.1).
func (c *Conn) plpAcked(ack wire.Seq) {
	p := &c.plp
	if p.state == PLPMTUDBase {
		p.state = PLPMTUDSearch
	}
	if p.probe == 0 || ack.LessThan(p.probeEnd) {
		return
	}
	c.env.Stats.MTUProbeSuccess++
	p.low = max(p.low, p.probe)
	p.probe = 0
	if p.state == PLPMTUDError {
		p.state = PLPMTUDSearch
	}
	if p.low > c.sndMSS {
		c.setMSS(p.low)
	}
}

// plpLost reports whether record r, which loss detection just deemed
// lost, is the probe in flight: then the probe failed, and the loss is
// no sign of congestion (RFC 4821 §7.5). The record is resent in pieces
// of the MSS (rackRecovery.resend splits it).
func (c *Conn) plpLost(r *txRecord) bool {
	p := &c.plp
	if p.probe == 0 || r.start != p.probeStart {
		return false
	}
	c.plpProbeFailed(p.probe - 1)
	return true
}

// plpProbeFailed ends the probe in flight as lost: no size above high
// passes.
func (c *Conn) plpProbeFailed(high uint32) {
	p := &c.plp
	c.env.Stats.MTUProbeFail++
	p.high = max(min(p.high, high), p.low)
	p.probe = 0
}

// plpTimeout is black-hole detection, on a retransmission timeout of
// data (RFC 4821 §5, RFC 8899 §4.3; Linux's tcp_mtu_probing): a probe in
// flight failed; and when blackHoleRTOs timeouts in a row (or two and
// more, blackHoleTime after the first) found a full-sized segment
// unacknowledged, the MSS drops to the base MSS (to
// half the MSS if it was not above it) and the search starts from there.
// With MTUProbingOff nothing but the probe changes.
func (c *Conn) plpTimeout(now clock.Instant) {
	p := &c.plp
	if p.probe != 0 {
		c.plpProbeFailed(p.probe - 1)
	}
	if c.rexmitCount == p.bhAt+1 {
		p.firstRTO = now
	}
	n := c.rexmitCount - p.bhAt
	if c.env.cfg.MTUProbing == MTUProbingOff || c.sndMSS == 0 || c.sent.empty() ||
		n < blackHoleRTOs && (n < 2 || now.Sub(p.firstRTO) < blackHoleTime) {
		return
	}
	head := c.sent.first()
	data := head.len()
	if head.flags&recFIN != 0 {
		data--
	}
	if data < c.sndMSS {
		return // not a full-sized segment: no sign of a black hole
	}
	p.bhAt = c.rexmitCount
	mss := min(uint32(c.env.cfg.BaseMSS), p.maxMSS)
	state := PLPMTUDSearch
	if c.sndMSS <= mss {
		floor := minPMTU4
		if a := c.remote.Addr(); a.Is6() && !a.Is4In6() {
			floor = minPMTU6
		}
		least := min(c.mtuToMSS(floor), c.sndMSS)
		mss = max(c.sndMSS/2, least)
		if mss == c.sndMSS {
			return // at the floor already: nothing lower to try
		}
		state = PLPMTUDError
	}
	c.env.Stats.MTUBlackHoles++
	p.state = state
	p.low = mss
	p.high = max(p.high, p.low)
	c.timers.stop(timerPLPMTU)
	c.setMSS(mss)
	// What is in flight at the larger size will not arrive either: it
	// is resent in pieces, and its loss is no congestion.
	c.rec.onMSSDrop(now)
}

// plpRaise is the raise timer (RFC 8899 §5.1.1, PMTU_RAISE_TIMER; Linux's
// tcp_probe_interval): a finished search starts again, up to the
// negotiated MSS, in case the path now takes more.
func (c *Conn) plpRaise() {
	p := &c.plp
	if p.state != PLPMTUDSearchComplete {
		return
	}
	p.state = PLPMTUDSearch
	p.low = c.sndMSS
	p.high = p.maxMSS
}

// defaultProbeInterval is Linux's tcp_probe_interval, 600 s.
const defaultProbeInterval = 600 * time.Second
