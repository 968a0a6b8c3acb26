package tcp

import (
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/tcp/cc"
	"github.com/ustack/ustack/wire"
)

// Verdict tells the owner what to do after HandleSegment.
type Verdict uint8

const (
	// Consumed: the segment was handled (or dropped and counted).
	Consumed Verdict = iota
	// Reopen: a SYN arrived in TIME-WAIT that may start a new incarnation
	// of the connection (RFC 9293 §3.10.7.4, RFC 6191). The connection is
	// now CLOSED; the owner gives the SYN to the listener, using
	// ReopenISS as the new connection's ISS.
	Reopen
)

// pawsIdle is how long TS.Recent stays valid without segments (RFC 7323
// §5.5: 24 days).
const pawsIdle = 24 * 24 * time.Hour

// tsBefore reports whether timestamp a is before b (RFC 7323 §5.2,
// modulo 2³²).
func tsBefore(a, b uint32) bool { return int32(a-b) < 0 }

// HandleSegment processes a segment addressed to this connection (RFC 9293
// §3.10.7). The caller has verified the checksum and decoded seg; the
// payload is copied, so seg may be reused once this returns.
func (c *Conn) HandleSegment(now clock.Instant, seg *wire.TCPFields) Verdict {
	c.segsIn++
	c.env.tick(now)
	switch c.state {
	case Closed:
		return Consumed
	case SynSent:
		c.handleSynSent(now, seg)
		return Consumed
	case TimeWait:
		return c.handleTimeWait(now, seg)
	}
	c.handleSynchronized(now, seg)
	return Consumed
}

// handleSynSent is RFC 9293 §3.10.7.3.
func (c *Conn) handleSynSent(now clock.Instant, seg *wire.TCPFields) {
	f := seg.Flags
	// First: the ACK bit.
	if f&wire.TCPFlagACK != 0 {
		if seg.Ack.LessEq(c.iss) || seg.Ack.GreaterThan(c.sndMax) {
			if f&wire.TCPFlagRST == 0 {
				c.sendReply(seg.Ack, 0, wire.TCPFlagRST)
			}
			return
		}
	}
	// Second: the RST bit. Acceptable only if it acknowledges our SYN
	// (RFC 5961 §3.2 keeps this rule for SYN-SENT).
	if f&wire.TCPFlagRST != 0 {
		if f&wire.TCPFlagACK != 0 {
			c.finish(ErrConnRefused)
		}
		return
	}
	// Fourth: the SYN bit.
	if f&wire.TCPFlagSYN == 0 {
		return
	}
	c.irs = seg.Seq
	c.rcvNxt = seg.Seq.Add(1)
	// The window our SYN offered, unscaled (RFC 7323 §2.2), is the one
	// advertised so far: RCV.ADV starts from it. Left at zero, RCV.ADV
	// compares modulo 2^32 with RCV.NXT and, for half of all IRS values,
	// lies far beyond it, so the first ACK would announce the largest
	// window the field holds, whatever the buffer (RFC 9293 §3.8.6).
	c.rcvAdv = c.rcvNxt.Add(min(c.rcvFree(), 65535))
	c.negotiate(now, seg)
	c.lastRecv = now
	if f&wire.TCPFlagACK != 0 {
		c.sndUna = seg.Ack
		c.establish(now, seg, c.takeRTTSample(now, seg))
		c.ackNow = true
		// Data on a SYN-ACK (not sent by Linux, allowed by the RFC).
		c.receiveData(now, seg, seg.Seq.Add(1), seg.Payload, f&wire.TCPFlagFIN != 0)
		return
	}
	// Simultaneous open (RFC 9293 §3.5, figure 8): answer with SYN-ACK.
	c.state = SynReceived
	c.sndWnd = uint32(seg.Window)
	c.maxSndWnd = c.sndWnd
	c.sndWl1, c.sndWl2 = seg.Seq, c.iss
	c.synPending = true
	c.sndNxt = c.iss
}

// establish enters ESTABLISHED from SYN-SENT or SYN-RECEIVED; rtt is the
// handshake's RTT sample, or 0.
func (c *Conn) establish(now clock.Instant, seg *wire.TCPFields, rtt time.Duration) {
	c.state = Established
	c.env.Stats.CurrEstab++
	// The window of the segment that completes the handshake (RFC 9293
	// §3.10.7.3 and §3.10.7.4: SND.WND, SND.WL1, SND.WL2 from it). A
	// SYN-ACK's window is never scaled (RFC 7323 §2.2).
	w := uint32(seg.Window)
	if seg.Flags&wire.TCPFlagSYN == 0 {
		w <<= c.sndWScale
	}
	c.sndWnd = w
	c.maxSndWnd = max(c.maxSndWnd, w)
	c.sndWl1, c.sndWl2 = seg.Seq, seg.Ack
	c.synPending = false
	c.rexmitCount = 0
	if c.sndNxt.LessThan(c.sndUna) {
		c.sndNxt = c.sndUna
	}
	c.timers.stop(timerRexmit)
	c.rto = c.rtt.rto(c.env.cfg.InitialRTO, c.env.cfg.MinRTO, c.env.cfg.MaxRTO)
	if c.synRetries > 0 && !c.rtt.valid() {
		// RFC 6298 §5.7: the SYN's timer expired (so Karn's rule left no
		// RTT sample): data transmission MUST start with an RTO of at
		// least 3 s (Linux: TCP_TIMEOUT_FALLBACK in tcp_init_metrics).
		c.rto = min(max(c.rto, 3*time.Second), c.env.cfg.MaxRTO)
	}
	if c.synRetries > 1 {
		// RFC 5681 §3.1: after a lost SYN or SYN-ACK the initial window
		// MUST be one segment; RFC 6928 §2 keeps IW10 for a single,
		// perhaps spurious, retransmission (Linux tcp_init_transfer).
		// Nothing was sent with the controller yet: it starts over.
		p := c.ccParams()
		p.Cwnd = c.sndMSS
		c.cc.Init(p)
	}
	c.synRetries = 0
	if rtt > 0 {
		// The controller hears the handshake's RTT (a pacing one needs
		// it before the first data is acknowledged).
		c.cc.OnAck(now, cc.AckSample{RTT: rtt})
	}
	c.initRcvTuner(now)
	c.quickAcks = 16
	c.events |= EventEstablished | EventWritable
	c.armKeepAlive(now)
	c.armIdle()
}

// handleTimeWait is RFC 9293 §3.10.7.4 for TIME-WAIT, as Linux refines it
// (tcp_timewait_state_process): PAWS, RST assassination only with an exact
// sequence number, and a SYN that may reopen the connection (RFC 6191).
func (c *Conn) handleTimeWait(now clock.Instant, seg *wire.TCPFields) Verdict {
	f := seg.Flags
	paws := c.tsOK && seg.Options.HasTimestamp && tsBefore(seg.Options.TSVal, c.tsRecent) && f&wire.TCPFlagRST == 0
	if !paws && seg.Seq == c.rcvNxt && (seg.SegLen() == 0 || f&wire.TCPFlagRST != 0) && f&wire.TCPFlagSYN == 0 {
		if f&wire.TCPFlagRST != 0 {
			c.env.Stats.TWKilled++
			c.finish(nil)
			return Consumed
		}
		// Linux (tcp_timewait_state_process) takes the timestamp of an
		// in-window bare ACK as TS.Recent: ReuseTimeWait's delay counts
		// from the newest one.
		if c.tsOK && seg.Options.HasTimestamp {
			c.tsRecent = seg.Options.TSVal
			c.tsRecentAt = now
		}
		return Consumed
	}
	if f&wire.TCPFlagSYN != 0 && f&(wire.TCPFlagRST|wire.TCPFlagACK) == 0 && !paws {
		newer := seg.Seq.GreaterThan(c.rcvNxt)
		if c.tsOK && seg.Options.HasTimestamp {
			newer = newer || tsBefore(c.tsRecent, seg.Options.TSVal)
		}
		if newer {
			c.env.Stats.TWRecycled++
			c.finish(nil)
			return Reopen
		}
	}
	if f&wire.TCPFlagRST == 0 {
		if paws {
			c.env.Stats.PAWSEstab++
		}
		// A retransmitted FIN (or anything else): acknowledge it and
		// restart the 2×MSL timer (RFC 9293 §3.10.7.4, eighth step).
		c.ackNow = true
		if f&wire.TCPFlagACK != 0 {
			c.timers.set(timerLife, now.Add(c.env.cfg.TimeWait))
		}
	}
	return Consumed
}

// acceptable is the segment acceptability test of RFC 9293 §3.10.7.4
// (table in "first: check sequence number").
func (c *Conn) acceptable(seq wire.Seq, segLen uint32) bool {
	wnd := c.rcvAdv.Size(c.rcvNxt)
	if c.rcvAdv.LessThan(c.rcvNxt) {
		wnd = 0
	}
	switch {
	case segLen == 0 && wnd == 0:
		return seq == c.rcvNxt
	case segLen == 0:
		return seq.InWindow(c.rcvNxt, wnd)
	case wnd == 0:
		return false
	}
	return seq.InWindow(c.rcvNxt, wnd) || seq.Add(segLen-1).InWindow(c.rcvNxt, wnd)
}

// handleSynchronized is RFC 9293 §3.10.7.4 for SYN-RECEIVED and every
// synchronized state but TIME-WAIT.
func (c *Conn) handleSynchronized(now clock.Instant, seg *wire.TCPFields) {
	st := &c.env.Stats
	f := seg.Flags
	segLen := seg.SegLen()

	// A retransmitted SYN in SYN-RECEIVED: resend the SYN-ACK, as Linux
	// does for a request socket (tcp_check_req).
	if c.state == SynReceived && f&wire.TCPFlagSYN != 0 && f&(wire.TCPFlagACK|wire.TCPFlagRST) == 0 && seg.Seq == c.irs {
		if c.oowAllowed(now) {
			c.synPending = true
		}
		return
	}

	// Simultaneous open (RFC 9293 §3.5 figure 8, line 6; MUST-10): in
	// SYN-RECEIVED reached from SYN-SENT, the peer's SYN-ACK carries its
	// ISN again, below RCV.NXT, so the acceptability test would reject
	// it and answer with an ACK, leaving the connection half-open until
	// the peer answers that. Like Linux (tcp_validate_incoming), let a
	// SYN-ACK that repeats the peer's ISN and acknowledges our SYN
	// through: it completes the handshake, and needs no reply.
	simOpen := c.state == SynReceived && !c.passive &&
		f&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST) == wire.TCPFlagSYN|wire.TCPFlagACK &&
		seg.Seq == c.irs && seg.Ack == c.sndNxt

	// PAWS (RFC 7323 §5.3, R1): a segment with an older TSval than
	// TS.Recent is a duplicate from an earlier wrap of the sequence space,
	// unless TS.Recent is more than 24 days old (§5.5).
	if c.tsOK && seg.Options.HasTimestamp && f&wire.TCPFlagRST == 0 && tsBefore(seg.Options.TSVal, c.tsRecent) {
		if now.Sub(c.tsRecentAt) <= pawsIdle {
			st.PAWSEstab++
			c.sendOOWAck(now)
			return
		}
		c.tsRecent = seg.Options.TSVal // §5.5: invalidate the stale TS.Recent
		c.tsRecentAt = now
	}

	// First: check the sequence number.
	ctlOnly := false
	if !simOpen && !c.acceptable(seg.Seq, segLen) {
		// RFC 9293 MUST-66 (§3.10.7.4): with a zero window, still
		// process the ACK, URG and RST of a segment at RCV.NXT.
		if c.rcvAdv.Size(c.rcvNxt) == 0 && seg.Seq == c.rcvNxt || c.rcvAdv.LessThan(c.rcvNxt) && seg.Seq == c.rcvNxt {
			ctlOnly = true
			if len(seg.Payload) > 0 {
				st.ZeroWindowDrop++
			}
		} else {
			if f&wire.TCPFlagRST != 0 {
				st.RSTOutOfWindow++
				return
			}
			st.OutOfWindow++
			// An old duplicate: report it with a D-SACK (RFC 2883 §4).
			if len(seg.Payload) > 0 && seg.Seq.Add(uint32(len(seg.Payload))).LessEq(c.rcvNxt) && c.sackOK {
				c.setDSACK(seg.Seq, seg.Seq.Add(uint32(len(seg.Payload))))
				st.DupData++
			}
			c.sendOOWAck(now)
			return
		}
	}

	// Second: the RST bit (RFC 5961 §3.2): reset only on an exact match
	// of RCV.NXT; any other in-window RST gets a challenge ACK.
	if f&wire.TCPFlagRST != 0 {
		if seg.Seq != c.rcvNxt {
			c.sendChallengeACK(now)
			return
		}
		c.handleReset()
		return
	}

	// Fourth: the SYN bit (RFC 5961 §4.2, RFC 9293 §3.10.7.4): a SYN in a
	// synchronized state gets a challenge ACK, wherever it falls.
	if f&wire.TCPFlagSYN != 0 && !simOpen {
		st.SYNChallenge++
		c.sendChallengeACK(now)
		return
	}

	// Fifth: the ACK field.
	if f&wire.TCPFlagACK == 0 {
		return
	}
	c.lastRecv = now
	c.keepProbes = 0
	if c.state == SynReceived {
		if !seg.Ack.GreaterThan(c.sndUna) || seg.Ack.GreaterThan(c.sndMax) {
			c.sendReply(seg.Ack, 0, wire.TCPFlagRST)
			return
		}
		c.sndUna = c.iss.Add(1)
		c.establish(now, seg, c.takeRTTSample(now, seg))
	}
	if !c.processACK(now, seg) {
		return
	}
	if c.state == Closed {
		return
	}

	// RFC 7323 §4.3 (2): remember TS.Recent from a segment that covers
	// Last.ACK.sent.
	if c.tsOK && seg.Options.HasTimestamp && !tsBefore(seg.Options.TSVal, c.tsRecent) && seg.Seq.LessEq(c.lastAckSent) {
		c.tsRecent = seg.Options.TSVal
		c.tsRecentAt = now
	}
	if simOpen {
		return // its SYN was acknowledged by our SYN-ACK already
	}
	c.ecnReceived(seg)

	if ctlOnly {
		// A bare FIN at RCV.NXT is taken even with a zero window, as
		// Linux does (tcp_data_queue): it needs no buffer space.
		if f&wire.TCPFlagFIN != 0 && len(seg.Payload) == 0 {
			c.receiveData(now, seg, seg.Seq, nil, true)
		}
		c.ackNow = true
		return
	}
	// Seventh and eighth: the segment text and the FIN bit.
	c.receiveData(now, seg, seg.Seq, seg.Payload, f&wire.TCPFlagFIN != 0)
}

// handleReset is the "second" step for an acceptable RST (RFC 9293
// §3.10.7.4).
func (c *Conn) handleReset() {
	switch c.state {
	case SynReceived:
		if c.passive {
			c.finish(nil) // back to LISTEN: the listener forgets it
		} else {
			c.finish(ErrConnRefused)
		}
	case Established, CloseWait:
		c.env.Stats.EstabResets++
		c.finish(ErrConnReset)
	case FinWait1, FinWait2:
		c.finish(ErrConnReset)
	default: // Closing, LastAck
		c.finish(nil)
	}
}

// processACK is the "fifth" step: it returns false when the segment must be
// dropped.
func (c *Conn) processACK(now clock.Instant, seg *wire.TCPFields) bool {
	st := &c.env.Stats
	ack := seg.Ack
	// RFC 5961 §5.2: acceptable when
	// SND.UNA − MAX.SND.WND ≤ SEG.ACK ≤ SND.NXT; otherwise send an ACK
	// and drop.
	if ack.GreaterThan(c.sndMax) {
		st.ACKTooNew++
		c.sendChallengeACK(now)
		return false
	}
	if ack.LessThan(c.sndUna - wire.Seq(c.maxSndWnd)) {
		st.ACKTooOld++
		c.sendChallengeACK(now)
		return false
	}

	// Window update (RFC 9293 §3.10.7.4, fifth step, ESTABLISHED).
	oldWnd := c.sndWnd
	if c.sndUna.LessEq(ack) && (c.sndWl1.LessThan(seg.Seq) || c.sndWl1 == seg.Seq && c.sndWl2.LessEq(ack)) {
		c.sndWnd = uint32(seg.Window)
		if seg.Flags&wire.TCPFlagSYN == 0 {
			c.sndWnd <<= c.sndWScale // RFC 7323 §2.2: never in a SYN-ACK
		}
		c.sndWl1, c.sndWl2 = seg.Seq, ack
		c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
		if c.sndWnd > 0 && c.timers.armed(timerPersist) {
			// The window opened: stop probing (RFC 9293 §3.8.6.1).
			c.timers.stop(timerPersist)
			c.rexmitCount = 0
			c.probeBackoff = 0
			c.rto = c.rtt.rto(c.env.cfg.InitialRTO, c.env.cfg.MinRTO, c.env.cfg.MaxRTO)
		}
	}

	if c.timers.armed(timerPersist) && c.sndUna == c.sndMax {
		// An acceptable ACK while probing a zero window answers the
		// probes: only unanswered ones count towards Retries2, so the
		// window may stay zero indefinitely (RFC 9293 §3.8.6.1, MUST-37;
		// Linux resets icsk_probes_out in tcp_ack).
		c.rexmitCount = 0
	}
	// With nothing outstanding and nothing acknowledged (the ACK on the
	// data of a peer we send nothing to) there is nothing for loss
	// recovery or the controller to hear, unless the ACK carries SACK
	// blocks: a D-SACK then reports a resend the peer did not need (RFC
	// 2883), which RACK-TLP and the undo of RFC 3708 listen for.
	if ack != c.sndUna || c.sndUna != c.sndMax || seg.Options.NumSACK > 0 && c.sackOK {
		c.ackSeg(now, seg, ack, oldWnd)
	}
	if c.sndWnd > 0 {
		c.probeNow = false
	}

	// State changes caused by the ACK of our FIN.
	if c.finQueued && c.sndUna.GreaterThan(c.finSeq) {
		switch c.state {
		case FinWait1:
			c.state = FinWait2
			if c.orphan {
				c.timers.set(timerLife, now.Add(c.env.cfg.FinTimeout))
			}
		case Closing:
			c.enterTimeWait(now)
		case LastAck:
			c.finish(nil)
			return false
		}
	}
	return true
}

// ackSeg is what an acceptable ACK means for the data in flight: the
// scoreboard and the send records take its SACK blocks, SND.UNA moves,
// loss recovery counts duplicate ACKs, detects losses and starts or ends
// its episode, and the congestion controller hears last, with the
// delivery-rate sample.
func (c *Conn) ackSeg(now clock.Instant, seg *wire.TCPFields, ack wire.Seq, oldWnd uint32) {
	a := &c.env.ackEv
	*a = ackEvent{ack: ack, dupCandidate: ack == c.sndUna, wasRecovering: c.lr.inRecovery}
	a.dup5681 = a.dupCandidate && c.isDupAck(seg, oldWnd)
	a.tsEcr, a.tsEcrOK = seg.Options.TSEcr, c.tsOK && seg.Options.HasTimestamp
	a.ece = c.ecnOK && seg.Flags&wire.TCPFlagECE != 0
	out := c.sndMax.Size(c.sndUna)
	a.priorInFlight = out - min(c.sb.bytes, out)
	if n := seg.Options.NumSACK; n > 0 && c.sackOK {
		a.numSACK = min(n, wire.TCPMaxSACKBlocks)
		a.sack = seg.Options.SACK
		c.tagSACK(now, a)
	}
	if ack.GreaterThan(c.sndUna) {
		c.newlyAcked(now, seg, a)
	}
	if a.hasCA {
		c.minRTT.Update(int64(minRTTWindow), int64(now), uint64(max(a.caRTT, 1)))
	}
	c.rec.onAck(now, a)
	if a.delivered > 0 || a.acked > 0 {
		s := cc.AckSample{
			Acked:          a.acked,
			Delivered:      a.delivered,
			PriorInFlight:  a.priorInFlight,
			InFlight:       c.sent.flight.bytes,
			RTT:            a.caRTT,
			TotalDelivered: c.rs.delivered,
			NewlyLost:      a.newlyLost,
			InRecovery:     a.wasRecovering || c.lr.inRecovery,
		}
		defer c.sndAutotune()
		if s.RTT == 0 {
			s.RTT = a.rtt
		}
		var delivered uint64
		s.DeliveryRate, s.Interval, delivered, s.AppLimited = c.rateSample(a)
		if a.rs.has {
			s.PriorDelivered = a.rs.priorDelivered
			s.SampleDelivered = delivered
			s.TxInFlight = a.rs.txInFlight
			s.SampleLost = c.rs.lost - min(a.rs.priorLost, c.rs.lost)
		}
		if a.ece {
			s.CE = max(a.delivered, 1)
		}
		c.cc.OnAck(now, s)
	}
}

// isDupAck is the duplicate-ACK definition of RFC 5681 §2: outstanding
// data, no data and no SYN or FIN in the segment, an unchanged window. It
// is the definition for a connection without SACK; with SACK, RFC 6675
// §2's applies (sackRecovery.onAck).
func (c *Conn) isDupAck(seg *wire.TCPFields, oldWnd uint32) bool {
	return c.sndMax.GreaterThan(c.sndUna) && len(seg.Payload) == 0 &&
		seg.Flags&(wire.TCPFlagSYN|wire.TCPFlagFIN) == 0 && c.sndWnd == oldWnd
}

// newlyAcked handles an ACK that acknowledges new data: the send buffer,
// SND.UNA, the RTT sample and the retransmission timer. What it means for
// loss recovery and congestion control is processACK's next step.
func (c *Conn) newlyAcked(now clock.Instant, seg *wire.TCPFields, a *ackEvent) {
	ack := a.ack
	acked := ack.Size(c.sndUna)
	// Bytes of data (not SYN or FIN) acknowledged.
	data := acked
	if c.finQueued && ack.GreaterThan(c.finSeq) {
		data--
	}
	data = min(data, uint32(c.snd.n))
	if data > 0 {
		c.snd.ack(c.env, int(data))
		c.bytesAcked += uint64(data)
		c.events |= EventWritable
	}
	c.sndUna = ack
	if c.sndNxt.LessThan(c.sndUna) {
		c.sndNxt = c.sndUna
	}
	a.acked = acked
	c.sb.trimBelow(ack)
	c.ackRecords(now, a)
	a.rtt = c.takeRTTSample(now, seg)
	c.rexmitCount = 0
	c.plp.bhAt = 0
	if c.plp.state != PLPMTUDDisabled {
		c.plpAcked(ack)
	}

	// RFC 6298 §5.2 and §5.3: stop the timer when everything is
	// acknowledged, restart it otherwise.
	if c.sndUna == c.sndMax {
		c.timers.stop(timerRexmit)
	} else {
		c.timers.set(timerRexmit, now.Add(c.rto))
	}
}

// takeRTTSample measures the RTT from the timed segment if this ACK covers
// it (RFC 6298 §3: one measurement at a time, none from a retransmitted
// segment) and updates the RTO. It returns the sample, or 0.
func (c *Conn) takeRTTSample(now clock.Instant, seg *wire.TCPFields) time.Duration {
	if !c.rttTiming || seg.Ack.LessThan(c.rttSeq) {
		return 0
	}
	c.rttTiming = false
	r := now.Sub(c.rttStart)
	c.rtt.sample(r)
	c.minRTT.Update(int64(minRTTWindow), int64(now), uint64(max(r, 1)))
	c.rto = c.rtt.rto(c.env.cfg.InitialRTO, c.env.cfg.MinRTO, c.env.cfg.MaxRTO)
	return r
}

// receiveData is the "seventh" and "eighth" steps: the segment's text and
// FIN. seq is the sequence number of data's first byte; a FIN, if set,
// follows the data.
func (c *Conn) receiveData(now clock.Instant, seg *wire.TCPFields, seq wire.Seq, data []byte, fin bool) {
	st := &c.env.Stats
	if len(data) == 0 && !fin || !c.state.canRecvData() {
		// In CLOSE-WAIT, CLOSING and LAST-ACK the peer already sent its
		// FIN: more text is ignored (RFC 9293 §3.10.7.4, seventh step).
		return
	}
	end := seq.Add(uint32(len(data)))
	if c.orphan && len(data) > 0 && end.GreaterThan(c.rcvNxt) {
		// New data for a connection the application closed: reset it.
		// RFC 9293 is silent; Linux does this (TCPAbortOnData).
		st.AbortOnData++
		c.sendReply(c.ctlSeq(), c.rcvNxt, wire.TCPFlagRST|wire.TCPFlagACK)
		c.finish(ErrConnReset)
		return
	}
	// Drop what was already received; report it with a D-SACK (RFC 2883).
	if seq.LessThan(c.rcvNxt) {
		skip := c.rcvNxt.Size(seq)
		if skip >= uint32(len(data)) {
			if len(data) > 0 {
				st.DupData++
				if c.sackOK {
					c.setDSACK(seq, end)
				}
				c.ackNow = true
			}
			data = nil
			if end.LessThan(c.rcvNxt) {
				fin = false // an old FIN cannot be: ignore it
			}
		} else {
			if c.sackOK {
				c.setDSACK(seq, c.rcvNxt)
			}
			data = data[skip:]
		}
		seq = c.rcvNxt
	}
	// Trim to the window (RFC 9293 §3.10.7.4: text beyond it is dropped,
	// and a FIN after dropped text goes with it). Data inside the window
	// we announced is always taken, even if the buffer has since been
	// made smaller (SetReadBuffer): the peer was told it could send it.
	off := seq.Size(c.rcvNxt)
	room := max(c.rcvFree(), c.advertisedRemaining())
	if len(data) > 0 {
		if off >= room {
			st.RcvWindowTrims++
			c.ackNow = true
			return
		}
		if uint32(len(data)) > room-off {
			data = data[:room-off]
			fin = false
			st.RcvWindowTrims++
		}
	}
	if len(data) > 0 && !c.rdShut && !c.rcvSchedule(int(off), len(data)) {
		// No memory for it (memory.go): dropped, as Linux's TCPRcvQDrop;
		// the peer sends it again.
		return
	}
	if len(data) > 0 {
		c.bytesReceived += uint64(len(data))
		c.rcvMSS = max(c.rcvMSS, min(uint32(len(data)), uint32(c.advMSS)))
		c.rcvRTTSample(now, seg)
		if off == 0 {
			if c.lastDataRecv != 0 && now.Sub(c.lastDataRecv) > c.rto {
				// The first data after a pause longer than the RTO:
				// acknowledge quickly again (Linux's
				// tcp_event_data_recv, tcp_incr_quickack).
				c.quickAcks = max(c.quickAcks, int32(c.quickAckCount()))
			}
			c.lastDataRecv = now
			if !c.rdShut {
				c.rcv.writeAt(c.env, c.rcv.n, data)
				c.rcv.n += len(data)
			}
			c.rcvNxt = c.rcvNxt.Add(uint32(len(data)))
			c.rcvUnacked += uint32(len(data))
			if !c.ooo.empty() {
				// The segment filled (part of) a hole: acknowledge at once
				// (RFC 5681 §4.2).
				if newNxt := c.oooAdvance(c.rcvNxt); newNxt != c.rcvNxt {
					st.OFOMerge++
					if !c.rdShut {
						c.rcv.n += int(newNxt.Size(c.rcvNxt))
					}
					c.rcvNxt = newNxt
				}
				c.ackNow = true
			}
			c.events |= EventReadable
			c.rcvSpaceAdjust(now)
			c.scheduleACK(now)
		} else {
			// Out of order: hold it and send a duplicate ACK at once
			// (RFC 5681 §4.2, RFC 9293 §3.10.7.4).
			segEnd := seq.Add(uint32(len(data)))
			if c.sackOK {
				// Data already held out of order is reported with a
				// D-SACK block, before the block holding it (RFC 2883
				// §4; Linux's tcp_data_queue_ofo).
				if i := c.ooo.find(seq); i >= 0 {
					c.setDSACK(seq, wire.MinSeq(segEnd, c.ooo.set[i].end))
				} else if i := c.ooo.find(segEnd - 1); i >= 0 {
					c.setDSACK(c.ooo.set[i].start, segEnd)
				}
				if c.dsackNow && c.dsack == (seqRange{seq, segEnd}) {
					st.DupData++
				}
			}
			if c.oooAdd(seq, segEnd) {
				st.OFOQueue++
				if !c.rdShut {
					c.rcv.writeAt(c.env, c.rcv.n+int(off), data)
				}
			} else {
				st.OFODrop++
			}
			c.ackNow = true
		}
	}
	if fin {
		if finAt := seq.Add(uint32(len(data))); finAt.GreaterThan(c.rcvNxt) {
			// The FIN follows a hole: it takes effect when the hole fills.
			c.rcvFinSeq, c.rcvFinOOO = finAt, true
			c.ackNow = true
		} else {
			c.receiveFIN(now)
			return
		}
	}
	if c.rcvFinOOO && c.rcvFinSeq == c.rcvNxt {
		c.rcvFinOOO = false
		c.receiveFIN(now)
	}
}

// receiveFIN is the "eighth" step for a FIN at RCV.NXT.
func (c *Conn) receiveFIN(now clock.Instant) {
	c.rcvNxt = c.rcvNxt.Add(1)
	c.ackNow = true
	c.events |= EventReadable
	switch c.state {
	case SynReceived, Established:
		c.state = CloseWait
	case FinWait1:
		if c.finQueued && c.sndUna.GreaterThan(c.finSeq) {
			c.enterTimeWait(now)
		} else {
			c.state = Closing
		}
	case FinWait2:
		c.enterTimeWait(now)
	}
}

// enterTimeWait moves to TIME-WAIT and starts the 2×MSL timer.
func (c *Conn) enterTimeWait(now clock.Instant) {
	c.state = TimeWait
	c.timers.stopAll()
	c.timers.set(timerLife, now.Add(c.env.cfg.TimeWait))
	c.snd.ack(c.env, c.snd.n)
	c.snd.free(c.env)
	c.oooRelease()
	c.releaseRecovery()
	c.sent.free()
	c.sb.free()
	c.events |= EventReadable | EventWritable
}

// quickAckCount is how many segments Linux acknowledges at once when it
// enters quick-ACK mode (tcp_incr_quickack): half the window in
// segments, at least 2, at most 16.
func (c *Conn) quickAckCount() int {
	n := int(c.advertisedRemaining() / (2 * max(c.rcvMSS, 1)))
	return min(max(n, 2), 16)
}

// scheduleACK decides how to acknowledge in-order data: at once for the
// first segments (quick ACKs) or every second full-sized segment (RFC 5681
// §4.2, RFC 1122 §4.2.3.2), otherwise after the delayed-ACK timeout.
func (c *Conn) scheduleACK(now clock.Instant) {
	switch {
	case c.env.cfg.DelayedACK < 0:
		c.ackNow = true
	case c.quickAcks > 0:
		c.quickAcks--
		c.ackNow = true
		c.env.Stats.QuickACKs++
	case c.rcvUnacked > c.rcvMSS:
		c.ackNow = true
	case !c.timers.armed(timerDelAck):
		c.timers.set(timerDelAck, now.Add(c.env.cfg.DelayedACK))
	}
}

// setDSACK records a duplicate range to report in the next ACK
// (RFC 2883 §4).
func (c *Conn) setDSACK(start, end wire.Seq) {
	c.dsack = seqRange{start, end}
	c.dsackNow = true
}

// oowAllowed rate-limits replies to unacceptable segments per connection
// (Linux tcp_oow_rate_limited, net.ipv4.tcp_invalid_ratelimit), so two
// confused peers cannot loop ACKs at full speed.
func (c *Conn) oowAllowed(now clock.Instant) bool {
	if c.lastOOWAck != 0 && now.Sub(c.lastOOWAck) < c.env.cfg.InvalidRateLimit {
		c.env.Stats.OOWRateLimited++
		return false
	}
	c.lastOOWAck = now
	if c.lastOOWAck == 0 {
		c.lastOOWAck = 1
	}
	return true
}

// sendOOWAck answers an unacceptable segment with an ACK (RFC 9293
// §3.10.7.4), rate-limited.
func (c *Conn) sendOOWAck(now clock.Instant) {
	if c.oowAllowed(now) {
		c.ackNow = true
	}
}

// sendChallengeACK sends a challenge ACK (RFC 5961 §3.2, §4.2, §5.2),
// within the connection's and the stack's rate limits (RFC 5961 §7).
func (c *Conn) sendChallengeACK(now clock.Instant) {
	if !c.oowAllowed(now) {
		return
	}
	if !c.env.allowChallenge(now) {
		c.env.Stats.ChallengeLimit++
		return
	}
	c.env.Stats.ChallengeACKs++
	c.ackNow = true
}

// sendReply queues a one-off control segment, such as a RST for an
// unacceptable ACK (RFC 9293 §3.10.7.3, §3.10.7.4).
func (c *Conn) sendReply(seq, ack wire.Seq, flags wire.TCPFlags) {
	c.reply = ctlReply{pending: true, seq: seq, ack: ack, flags: flags}
	if flags&wire.TCPFlagRST != 0 {
		c.env.Stats.OutRsts++
	}
}
