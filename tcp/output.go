package tcp

import (
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// MaxSegmentLen returns the largest segment PollTransmit can write: a full
// header with options and one MSS of data. A dst of this size always fits.
func (c *Conn) MaxSegmentLen() int {
	return wire.TCPMaxHeaderLen + int(max(c.sndMSS, uint32(c.advMSS)))
}

// ctlSeq returns the sequence number of a segment that carries no data
// (an ACK, or a RST we send on our own): the highest sequence number sent,
// SND.MAX, unless that lies beyond the peer's window (then its right
// edge, but never below SND.NXT), as Linux's tcp_acceptable_seq. After a
// retransmission timeout SND.NXT is rewound to SND.UNA (RFC 6298 §5.4,
// resending from there); an ACK carrying it is below the peer's RCV.NXT
// when the peer already holds the data, and the peer drops it unread
// (RFC 9293 §3.10.7.4, "first: check sequence number"). With both ends
// retransmitting at once, each then ignores the other's ACKs until
// Retries2 ends the connection.
func (c *Conn) ctlSeq() wire.Seq {
	seq := c.sndMax
	if end := c.sndUna.Add(c.sndWnd); end.LessThan(seq) {
		seq = wire.MaxSeq(end, c.sndNxt)
	}
	return seq
}

// effMSS returns the most data the next segment may carry: the send MSS
// less the SACK option build will put in it (RFC 9293 §3.7.1, MUST-16:
// Eff.snd.MSS = min(SendMSS+20, MMS_S) − TCPhdrsize − IPoptionsize, where
// TCPhdrsize counts the options; sndMSS already leaves out the fixed
// timestamps option). Without this, a data segment sent while we hold
// out-of-order data carries SACK blocks on top of a full MSS and exceeds
// the MTU. Linux shrinks mss_now the same way (tcp_current_mss).
func (c *Conn) effMSS() uint32 {
	if !c.sackOK || !c.dsackNow && c.ooo.empty() {
		return c.sndMSS
	}
	room := wire.TCPMaxSACKBlocks
	if c.tsOK {
		room = 3
	}
	k := c.ooo.len()
	if c.dsackNow {
		k++
	}
	k = min(k, room)
	// sndMSS is at least 64 − 12 and the option at most 4 + 8·4 bytes.
	return c.sndMSS - uint32(4+8*k)
}

// rcvFree returns the receive buffer space not taken by readable data:
// the largest window that can be offered.
func (c *Conn) rcvFree() uint32 {
	if c.rdShut {
		return uint32(c.rcvBufSize)
	}
	return uint32(max(int(c.rcvBufSize)-c.rcv.n, 0))
}

// advertisedRemaining returns how much of the last advertised window is
// still open: RCV.ADV − RCV.NXT.
func (c *Conn) advertisedRemaining() uint32 {
	if c.rcvAdv.LessEq(c.rcvNxt) {
		return 0
	}
	return c.rcvAdv.Size(c.rcvNxt)
}

// windowField returns the window field for a non-SYN segment, and the
// window in bytes it announces.
func (c *Conn) windowField() (uint16, uint32) {
	return windowFor(c.rcvOffer(), c.advertisedRemaining(), uint32(c.rcvBufSize), c.rcvMSS, c.rcvWScale)
}

// windowFor is windowField from its inputs: free, the window that can be
// offered (rcvOffer); cur, what is still open of the last one
// (advertisedRemaining); the receive buffer's size, the receive MSS and
// the window scale. A parked record computes it from its own fields.
func windowFor(free, cur, bufSize, rcvMSS uint32, rcvWScale uint8) (uint16, uint32) {
	// Receiver silly-window avoidance (RFC 9293 §3.8.6.2.2): grow the
	// window only by at least min(RCV.BUFF/2, one MSS).
	if free > cur && free-cur < min(bufSize/2, rcvMSS) {
		free = cur
	}
	// Never shrink the window (RFC 9293 §3.8.6, SHLD-14; RFC 7323 §2.4).
	free = max(free, cur)
	limit := uint32(65535) << rcvWScale
	free = min(free, limit)
	field := free >> rcvWScale
	if field<<rcvWScale < cur {
		field++ // round up rather than shrink below what was announced
	}
	return uint16(min(field, 65535)), field << rcvWScale
}

// tsVal returns our timestamp clock: milliseconds, as Linux uses, plus the
// connection's random offset (RFC 7323 §5.4).
func (c *Conn) tsVal(now clock.Instant) uint32 { return tsValAt(now, c.tsOffset) }

// tsValAt is the timestamp clock at now with offset off.
func tsValAt(now clock.Instant, off uint32) uint32 {
	return uint32(time.Duration(now)/time.Millisecond) + off
}

// cwnd returns the congestion window in effect, as loss recovery sees it
// (the inflated window during NewReno recovery, room for limited
// transmit on the first duplicate ACKs).
func (c *Conn) cwnd() uint32 { return c.rec.window() }

// segment describes one segment to build.
type segment struct {
	seq     wire.Seq
	flags   wire.TCPFlags
	dataOff int // position of the data in the send buffer
	dataLen int
	// sackLimited: at most sackRoom SACK blocks fit beside the data
	// (a resent record cut before we held out-of-order data).
	sackLimited bool
	sackRoom    int
}

// Transmit describes what PollTransmitBatch wrote into its buffer: one
// TCP header (with options) followed by the payload of Segments wire
// segments (a super-segment, like quinn-proto's Transmit with its
// segment_size, or what a NIC's TSO takes). Cut the payload into pieces
// of SegmentSize bytes — the last may be shorter — and give each the
// header, its sequence number advanced by its offset, and the flags less
// FIN and PSH except on the last piece: each piece is then exactly the
// segment a call with maxSegs 1 would have written (SplitSegment does
// this). The checksum field is zero.
type Transmit struct {
	// Len is the number of bytes written, header and payload; 0 when
	// there is nothing to send now.
	Len int
	// HeaderLen is the length of the TCP header with options.
	HeaderLen int
	// SegmentSize is the payload size of every wire segment but the
	// last. With one segment, it is that segment's payload size (0 for
	// a control segment), and there is nothing to cut.
	SegmentSize int
	// Segments is the number of wire segments (1 unless a super-segment
	// was written; 0 when Len is 0).
	Segments int
	// ECN is the ECN codepoint for the IP header of every wire segment
	// (RFC 3168 §6.1.2: ECT(0) on new data when ECN is in use, not ECT
	// on anything else).
	ECN ECN
}

// PollTransmit writes the next segment the connection wants to send into
// dst — the TCP header with options, then data — and returns its length,
// or 0 when there is nothing to send now. The checksum field is zero: the
// caller, who knows the IP header, fills it in. dst must have room for
// MaxSegmentLen bytes. Call it until it returns 0.
//
// It is PollTransmitBatch with maxSegs 1.
func (c *Conn) PollTransmit(now clock.Instant, dst []byte) int {
	return c.poll(now, dst, 1)
}

// PollTransmitBatch is PollTransmit for a caller that can send up to
// maxSegs segments of new data as one super-segment (Transmit says how to
// cut it): a link with TCP segmentation offload, a peer in the same
// process, or software segmentation (SplitSegment). The segments are the
// ones maxSegs calls of PollTransmit would have written, in order, with
// the same bookkeeping: the windows, Nagle's algorithm and the congestion
// window hold for the whole. Only consecutive full-sized segments of new
// data are combined; retransmissions, control segments, a segment after
// which a D-SACK block would no longer be sent, and paced data go one at a
// time. dst must have room for MaxSegmentLen bytes; fewer segments are
// combined when it cannot hold maxSegs MSS of payload. The caller keeps
// maxSegs × MSS within what its link takes at once (64 KiB with IPv4
// TSO).
func (c *Conn) PollTransmitBatch(now clock.Instant, dst []byte, maxSegs int) Transmit {
	sup := &c.env.super
	sup.segs = 0
	n := c.poll(now, dst, max(maxSegs, 1))
	switch {
	case n == 0:
		return Transmit{}
	case sup.segs > 1:
		return Transmit{Len: n, HeaderLen: sup.hdr, SegmentSize: sup.size, Segments: sup.segs, ECN: c.ecnOut}
	}
	hl := wire.TCP(dst).HeaderLen()
	return Transmit{Len: n, HeaderLen: hl, SegmentSize: n - hl, Segments: 1, ECN: c.ecnOut}
}

// poll writes what goes next into dst and returns its length; a
// super-segment (sendData) leaves its shape in Env.super.
func (c *Conn) poll(now clock.Instant, dst []byte, maxSegs int) int {
	if c.reply.pending {
		c.reply.pending = false
		r := c.reply
		return c.build(now, dst, segment{seq: r.seq, flags: r.flags}, r.ack)
	}
	switch c.state {
	case Closed:
		return 0
	case SynSent, SynReceived:
		if c.synPending {
			return c.sendSYN(now, dst)
		}
		if c.state == SynSent {
			return 0
		}
	case TimeWait:
		if c.ackNow {
			return c.build(now, dst, segment{seq: c.ctlSeq(), flags: wire.TCPFlagACK}, c.rcvNxt)
		}
		return 0
	}
	if c.state != SynReceived {
		// Loss recovery sends only a retransmission asked for, what an
		// episode under way resends, or data waiting: ask it only then.
		if (c.rexmitNow || c.lr.inRecovery || c.lr.pending || c.dataPending()) && (c.pacingNext <= now || !c.pacingHold(now)) {
			if n := c.rec.send(now, dst, maxSegs); n > 0 {
				return n
			}
		}
		if c.pacingBehind && c.pacingNext <= now {
			// Nothing went though the pacing clock allowed it: the
			// sender is limited by something else, and owes nothing.
			c.pacingBehind = false
		}
		if c.probeNow || c.keepNow {
			// A zero-window or keep-alive probe: an ACK carrying the
			// already acknowledged sequence number SND.UNA−1, which the
			// peer must answer (Linux tcp_xmit_probe_skb; RFC 1122
			// §4.2.3.6 allows this form).
			if c.probeNow {
				c.env.Stats.ZeroWindowProbes++
			} else {
				c.env.Stats.KeepAliveProbes++
			}
			c.probeNow, c.keepNow = false, false
			return c.build(now, dst, segment{seq: c.sndUna - 1, flags: wire.TCPFlagACK}, c.rcvNxt)
		}
	}
	if c.ackNow || c.dsackNow {
		return c.build(now, dst, segment{seq: c.ctlSeq(), flags: wire.TCPFlagACK}, c.rcvNxt)
	}
	return 0
}

// pacingHold reports whether data must wait for the time the pacing rate
// releases it, and arms the pacing timer for that time if so. With a
// controller that does not pace, nothing waits. (Callers test
// pacingNext <= now first, which is all a connection that is not paced
// pays.)
func (c *Conn) pacingHold(now clock.Instant) bool {
	if c.pacingNext <= now || c.cc.PacingRate() == 0 {
		return false
	}
	c.timers.set(timerPacing, c.pacingNext)
	c.pacingBehind = true
	return true
}

// maxPacingLag is how far the pacing clock may fall behind the time a
// late owner sends at (pace).
const maxPacingLag = 2 * time.Millisecond

// noteSent is the bookkeeping every transmission of n data bytes from seq
// (and our FIN after them if fin) shares, once SND.NXT has moved: the send
// records and the rate sampler (recordSent), loss recovery's (limited
// transmit), the controller's OnSent, and the pacing clock (Linux
// tcp_update_skb_after_send: the next segment goes n bytes' time later at
// the pacing rate).
func (c *Conn) noteSent(now clock.Instant, seq wire.Seq, n uint32, fin, psh, resend bool) {
	end := seq.Add(n)
	if fin {
		end = end.Add(1)
	}
	c.recordSent(now, seq, end, resend, psh)
	c.lastSend = now // any data sent, resends too (Linux's lsndtime)
	if c.lr.dupAcks > 0 && !resend {
		c.lr.onSent(seq, n)
	}
	if c.lr.inRecovery {
		c.lr.prrOut += end.Size(seq)
	}
	c.cc.OnSent(now, n, c.sndNxt.Size(c.sndUna))
	if rate := c.cc.PacingRate(); rate > 0 {
		c.pace(now, n, rate)
	}
}

// pace moves the time the next data segment may go by n bytes at rate.
//
// Data that waited for the pacing clock keeps its place when the owner
// comes late: the clock goes on from when the segment was due, not from
// now, so the segments due meanwhile leave at once, up to maxPacingLag's
// worth. Timers fire late — Go's sleep on an idle Linux thread is a
// millisecond at least, and a loaded machine adds more — and a pacer that
// restarted from now on every late wake would send one segment per wake:
// a millisecond apart, 12 Mbit/s of 1448-byte segments whatever the rate.
// Linux gets the same tolerance from TSO autosizing (a millisecond of data
// per burst, tcp_tso_autosize) and the lateness credit of
// tcp_update_skb_after_send; quinn's pacer allows 2 ms bursts. After idle
// or application-limited time the clock restarts from now.
func (c *Conn) pace(now clock.Instant, n uint32, rate uint64) {
	from := max(c.pacingNext, now)
	if c.pacingBehind {
		from = max(c.pacingNext, now.Add(-maxPacingLag))
	}
	c.pacingNext = from.Add(time.Duration(uint64(n) * uint64(time.Second) / rate))
	c.pacingBehind = c.pacingBehind && c.pacingNext <= now
}

// sendSYN sends the SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED).
func (c *Conn) sendSYN(now clock.Instant, dst []byte) int {
	c.synPending = false
	seg := segment{seq: c.iss, flags: wire.TCPFlagSYN}
	if c.state == SynReceived {
		seg.flags |= wire.TCPFlagACK
		if c.ecnOK {
			seg.flags |= wire.TCPFlagECE // ECN-setup SYN-ACK (RFC 3168 §6.1.1)
		}
	} else {
		// An ECN-setup SYN, but not when resending it: a peer or a
		// middlebox may drop such SYNs (RFC 3168 §6.1.1.1; Linux's
		// tcp_ecn_fallback).
		c.ecnAsked = c.env.cfg.ECN == ECNRequest && c.synRetries == 0 && c.ecnIP
		if c.ecnAsked {
			seg.flags |= wire.TCPFlagECE | wire.TCPFlagCWR
		}
	}
	if c.synRetries == 0 && !c.rttTiming {
		c.rttTiming, c.rttSeq, c.rttStart = true, c.iss.Add(1), now
	}
	n := c.build(now, dst, seg, c.rcvNxt)
	c.sndNxt = c.iss.Add(1)
	c.sndMax = wire.MaxSeq(c.sndMax, c.sndNxt)
	c.timers.set(timerRexmit, now.Add(c.rto))
	return n
}

// retransmitHead resends the first unacknowledged segment (fast
// retransmit, RFC 5681 §3.2 step 2; a NewReno partial ACK, RFC 6582 §3.2
// step 4; the zero-window probe after an RTO, RFC 9293 MUST-36).
func (c *Conn) retransmitHead(now clock.Instant, dst []byte) int {
	if c.sndMax == c.sndUna {
		return 0
	}
	sent := c.sndMax.Size(c.sndUna) // sequence space outstanding
	n := min(sent, c.effMSS(), uint32(c.snd.n))
	seg := segment{seq: c.sndUna, flags: wire.TCPFlagACK, dataLen: int(n)}
	if c.finQueued && c.sndUna.Add(n) == c.finSeq && c.finSeq.LessThan(c.sndMax) {
		seg.flags |= wire.TCPFlagFIN
	}
	if n == 0 && seg.flags&wire.TCPFlagFIN == 0 {
		return 0
	}
	if c.rttTiming && c.rttSeq.LessEq(c.sndUna.Add(n+1)) {
		c.rttTiming = false // Karn's rule (RFC 6298 §3)
	}
	out := c.build(now, dst, seg, c.rcvNxt)
	c.countRetransmit(n)
	if end := c.sndUna.Add(n); c.sndNxt.LessThan(end) {
		c.sndNxt = end
	}
	if !c.timers.armed(timerRexmit) {
		c.timers.set(timerRexmit, now.Add(c.rto))
	}
	c.noteSent(now, c.sndUna, n, seg.flags&wire.TCPFlagFIN != 0, false, true)
	return out
}

func (c *Conn) countRetransmit(n uint32) {
	c.totalRetrans++
	c.bytesRetrans += uint64(n)
	c.env.Stats.RetransSegs++
	c.env.Stats.OutSegs-- // build counted it; RFC 4022 excludes retransmissions
}

// piece is one segment of data (or a FIN) that sendData may send.
type piece struct {
	seg    segment
	n      uint32
	fin    bool
	resend bool // data sent before an RTO rewound SND.NXT
	probe  bool // a PLPMTUD probe: larger than the MSS (plpmtud.go)
}

// dataPending reports whether data or a FIN waits to be sent: the quick
// test before nextPiece.
func (c *Conn) dataPending() bool {
	return c.sndNxt.LessThan(c.sndUna.Add(uint32(c.snd.n))) || c.finQueued && c.sndNxt.LessEq(c.finSeq)
}

// nextPiece decides the next segment of new (or, after an RTO, resent)
// data and/or the FIN, if the windows, Nagle's algorithm and sender-side
// SWS avoidance allow it (RFC 9293 §3.8.6.2.1, §3.7.4), into p. When
// nothing may go with nothing in flight, it arms the persist timer.
func (c *Conn) nextPiece(now clock.Instant, p *piece) bool {
	dataEnd := c.sndUna.Add(uint32(c.snd.n))
	var avail uint32
	if c.sndNxt.LessThan(dataEnd) {
		avail = dataEnd.Size(c.sndNxt)
	}
	finDue := c.finQueued && c.sndNxt.LessEq(c.finSeq)
	if avail == 0 && !finDue {
		return false
	}
	inflight := c.sndNxt.Size(c.sndUna)
	wndLeft := uint32(0)
	if inflight < c.sndWnd {
		wndLeft = c.sndWnd - inflight
	}
	// The congestion window limits what is in the network, as loss
	// recovery counts it (RFC 6675 §4's pipe in SACK recovery).
	cwndLeft := c.rec.sendRoom(inflight)
	mss := c.effMSS()
	if c.tlpProbe {
		// A tail-loss probe of new data goes whatever cwnd and Nagle
		// say (RFC 8985 §7.3).
		cwndLeft = max(cwndLeft, mss)
	}
	// Path MTU discovery decides whether this piece is a probe, larger
	// than the MSS (plpmtud.go): it asks only while its search is on.
	probe := false
	if c.plp.state >= PLPMTUDSearch && !c.tlpProbe {
		if size := c.plpProbeSize(now, avail, wndLeft, cwndLeft); size > 0 {
			mss, probe = size, true
		}
	}
	n := min(avail, wndLeft, cwndLeft, mss)
	probe = probe && n == mss
	resend := c.sndNxt.LessThan(c.sndMax) // data sent before an RTO rewound SND.NXT
	force := c.forceSend || c.tlpProbe    // the SWS override timeout fired, or a probe
	c.forceSend = false
	if n < avail && n < mss && !resend && !force {
		// Window-limited with more data waiting: sender SWS avoidance
		// sends a small segment only if it is at least half the largest
		// window the peer has offered.
		if n < c.maxSndWnd/2 || n == 0 {
			n = 0
		}
	}
	if n > 0 && n == avail && n < mss && !resend && !force && !c.noDelay && !finDue && c.sndNxt != c.sndUna {
		// Nagle (RFC 9293 §3.7.4, RFC 896): hold a small final segment
		// while data is unacknowledged.
		n = 0
	}
	// The FIN goes with the last data, or alone, if it fits the peer's
	// window as a byte would (Linux tcp_snd_wnd_test); a FIN-only segment
	// also needs room in the congestion window while data is in flight.
	fin := finDue && c.sndNxt.Add(n) == c.finSeq && n < wndLeft
	if fin && n == 0 && cwndLeft == 0 && c.sndNxt != c.sndUna {
		fin = false
	}
	if n == 0 && !fin {
		if c.sndUna == c.sndMax && !c.timers.armed(timerPersist) && !c.timers.armed(timerRexmit) {
			// Data (or a FIN) is held back with nothing in flight: by a
			// zero window, or by sender SWS avoidance in front of a
			// window smaller than a segment. The persist timer probes
			// the zero window (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17)
			// and is the override timeout of RFC 9293 §3.8.6.2.1 for a
			// small one, as Linux's probe timer is (tcp_probe_timer).
			c.timers.set(timerPersist, now.Add(c.rto))
		}
		return false
	}
	flags := wire.TCPFlagACK
	if n > 0 && n == avail {
		flags |= wire.TCPFlagPSH
	}
	if fin {
		flags |= wire.TCPFlagFIN
	}
	*p = piece{seg: segment{seq: c.sndNxt, flags: flags, dataOff: int(c.sndNxt.Size(c.sndUna)), dataLen: int(n)}, n: n, fin: fin, resend: resend, probe: probe}
	return true
}

// sentData does the bookkeeping of piece p once it is written.
func (c *Conn) sentData(now clock.Instant, p *piece) {
	if p.resend {
		c.countRetransmit(p.n)
	} else if p.n > 0 && !c.rttTiming {
		c.rttTiming, c.rttSeq, c.rttStart = true, c.sndNxt.Add(p.n), now
	}
	if p.probe {
		c.plpProbeSent(p.seg.seq, p.n)
	}
	c.bytesSent += uint64(p.n)
	c.sndNxt = c.sndNxt.Add(p.n)
	if p.fin {
		c.sndNxt = c.sndNxt.Add(1)
	}
	c.sndMax = wire.MaxSeq(c.sndMax, c.sndNxt)
	if !c.timers.armed(timerRexmit) {
		c.timers.set(timerRexmit, now.Add(c.rto)) // RFC 6298 §5.1
	}
	c.timers.stop(timerPersist)
	c.noteSent(now, p.seg.seq, p.n, p.fin, p.seg.flags&wire.TCPFlagPSH != 0, p.resend)
}

// sendData sends the next segment of new (or, after an RTO, resent) data
// and/or the FIN (nextPiece decides), and, when maxSegs allows, the full
// segments of new data that follow it, as one super-segment (see
// Transmit; its shape goes to Env.super). It returns
// the length written.
func (c *Conn) sendData(now clock.Instant, dst []byte, maxSegs int) int {
	if !c.dataPending() {
		return 0
	}
	var p piece
	if !c.nextPiece(now, &p) {
		return 0
	}
	if c.sndUna == c.sndMax && now.Sub(c.lastSend) > c.rto && p.n > 0 {
		c.cc.OnIdleRestart(now) // RFC 5681 §4.1
	}
	// A super-segment starts with a full segment of new data and nothing
	// but ACK set, and needs the same header on every piece: not the
	// first after a D-SACK block, which only the first would carry.
	mss := c.effMSS()
	grow := maxSegs > 1 && !p.resend && p.seg.flags == wire.TCPFlagACK && p.n == mss && !c.dsackNow
	out := c.build(now, dst, p.seg, c.rcvNxt)
	c.sentData(now, &p)
	if !grow {
		return out
	}
	hl := out - p.seg.dataLen
	maxSegs = min(maxSegs, (len(dst)-hl)/int(mss))
	t := Transmit{Len: out, HeaderLen: hl, SegmentSize: int(mss), Segments: 1}
	last := p
	var q piece
	// Each further piece is what the next PollTransmit would send: the
	// same decision, after the same bookkeeping. Pacing holds it back.
	for t.Segments < maxSegs && last.n == mss && last.seg.flags == wire.TCPFlagACK {
		if c.pacingNext > now && c.cc.PacingRate() > 0 {
			break
		}
		if !c.nextPiece(now, &q) || q.resend || q.n == 0 || q.probe {
			break
		}
		c.snd.peek(q.seg.dataOff, dst[t.Len:t.Len+int(q.n)])
		t.Len += int(q.n)
		t.Segments++
		c.segsOut++ // as build counts every segment
		c.env.Stats.OutSegs++
		c.sentData(now, &q)
		last = q
	}
	if t.Segments > 1 {
		wire.TCP(dst[:hl]).SetFlags(last.seg.flags) // PSH and FIN as the last piece has them
		c.env.super = superShape{t.Segments, hl, int(mss)}
	}
	return t.Len
}

// build writes segment s with ack as its acknowledgment number (when ACK is
// set) into dst, and does the bookkeeping of a segment leaving.
func (c *Conn) build(now clock.Instant, dst []byte, s segment, ack wire.Seq) int {
	f := wire.TCPFields{
		SrcPort: c.local.Port(),
		DstPort: c.remote.Port(),
		Seq:     s.seq,
		Flags:   s.flags,
	}
	c.ecnOut = NotECT
	if s.flags&wire.TCPFlagSYN == 0 {
		var ef wire.TCPFlags
		ef, c.ecnOut = c.ecnFlags(&s)
		f.Flags |= ef
	}
	var wndBytes uint32
	keepDSACK := false
	if s.flags&wire.TCPFlagACK != 0 {
		f.Ack = ack
	}
	if s.flags&wire.TCPFlagRST != 0 && s.flags&wire.TCPFlagACK == 0 {
		// A RST answering a segment carries no options or window.
	} else if s.flags&wire.TCPFlagSYN != 0 {
		wndBytes = min(c.rcvFree(), 65535) // RFC 7323 §2.2: a SYN's window is not scaled
		f.Window = uint16(wndBytes)
		c.synOptions(now, &f.Options)
	} else {
		f.Window, wndBytes = c.windowField()
		if c.tsOK {
			f.Options.HasTimestamp = true
			f.Options.TSVal = c.tsVal(now)
			f.Options.TSEcr = c.tsRecent
		}
		if c.sackOK && s.flags&wire.TCPFlagACK != 0 && (c.dsackNow || !c.ooo.empty()) {
			room := wire.TCPMaxSACKBlocks
			if c.tsOK {
				room = 3
			}
			if s.sackLimited {
				room = min(room, s.sackRoom)
			}
			var d *seqRange
			if c.dsackNow && room > 0 {
				d = &c.dsack
				c.env.Stats.DSACKSent++
			}
			keepDSACK = c.dsackNow && d == nil
			f.Options.NumSACK = uint8(c.ooo.sackBlocks(f.Options.SACK[:room], d))
		}
	}
	hl := f.HeaderLen()
	f.EncodeHeader(dst[:hl])
	if s.dataLen > 0 {
		c.snd.peek(s.dataOff, dst[hl:hl+s.dataLen])
	}
	if s.flags&wire.TCPFlagACK != 0 && s.flags&wire.TCPFlagRST == 0 {
		c.lastAckSent = ack
		c.ackNow, c.dsackNow = false, keepDSACK
		c.rcvUnacked = 0
		c.timers.stop(timerDelAck)
		c.rcvAdv = ack.Add(wndBytes)
	}
	c.segsOut++
	c.env.Stats.OutSegs++
	return hl + s.dataLen
}

// synOptions fills the options of our SYN or SYN-ACK. A SYN offers what
// the configuration allows; a SYN-ACK only what the peer offered too
// (RFC 7323 §1.3, RFC 2018 §2).
func (c *Conn) synOptions(now clock.Instant, o *wire.TCPOptions) {
	cfg := &c.env.cfg
	o.MSS = c.advMSS
	active := c.state == SynSent
	if active && !cfg.NoWindowScale || !active && c.wsOK {
		o.HasWScale, o.WScale = true, c.rcvWScale
	}
	if active && !cfg.NoSACK || !active && c.sackOK {
		o.SACKPermitted = true
	}
	if active && !cfg.NoTimestamps || !active && c.tsOK {
		o.HasTimestamp = true
		o.TSVal = c.tsVal(now)
		if !active {
			o.TSEcr = c.tsRecent
		}
	}
}
