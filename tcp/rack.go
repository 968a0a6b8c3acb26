package tcp

import (
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// rackRecovery is loss recovery with SACK by RACK-TLP (RFC 8985), the
// default when both sides agreed on SACK: a segment is deemed lost when a
// segment sent after it was delivered and a reordering window has passed
// since it was sent, so a lost retransmission is found as any other
// segment, without waiting for an RTO; a tail loss is probed (TLP) after
// about two round trips instead of an RTO. The window during an episode
// is Proportional Rate Reduction's (RFC 9937, prr.go). Reductions that
// prove spurious are undone: when D-SACK shows every retransmission of an
// episode was a duplicate (RFC 3708 §3), when the timestamp echo shows an
// ACK was for the original transmission (Eifel detection, RFC 3522, with
// the Eifel response of RFC 4015), and, after an RTO, by F-RTO (RFC
// 5682, SACK-enhanced as Linux does it). After an RTO the connection does
// not rewind SND.NXT: the RTO marks records lost (RFC 8985 §6.3) and they
// are resent from the lost list as the window allows.
//
// The states follow Linux's: open (with SACKed data or not), recovery
// (fast recovery, PRR), CWR (a reduction after ECN-Echo, PRR, nothing to
// resend), and loss (after an RTO; the window grows from the controller's
// restart window). recoveryBase.inRecovery is set in recovery and CWR.
type rackRecovery struct {
	recoveryBase

	// RACK's state (RFC 8985 §6.1).
	has            bool          // a segment was delivered since the last RTO
	xmit           clock.Instant // RACK.xmit_ts
	end            wire.Seq      // RACK.end_seq
	rtt            time.Duration // RACK.rtt
	fack           wire.Seq      // RACK.fack, when hasFack
	hasFack        bool
	reorderingSeen bool     // RACK.reordering_seen
	reoWndMult     uint32   // RACK.reo_wnd_mult
	reoWndPersist  int      // RACK.reo_wnd_persist
	dsackRound     wire.Seq // RACK.dsack_round, when dsackRoundOn
	dsackRoundOn   bool

	// TLP (RFC 8985 §7).
	tlpOn      bool     // a probe is outstanding: TLP.end_seq is set
	tlpEnd     wire.Seq // TLP.end_seq
	tlpRetrans bool     // TLP.is_retrans
	probeNow   bool     // the PTO fired: send a probe

	// The episode: CWR or loss (after an RTO), the window by PRR, F-RTO
	// (RFC 5682) after an RTO.
	cwr        bool
	loss       bool
	prr        prr
	frto       bool
	frtoNewSeq bool // step 2b was taken: new data was offered after the RTO

	// Undo (RFC 3708 §3, RFC 4015): an episode may be undone while
	// undoOn; undoRetrans is the bytes resent in it not yet reported
	// duplicate by D-SACK; retransAt the first resend's time (Eifel's
	// RetransmitTS, RFC 3522 §2).
	undoOn      bool
	undoMarker  wire.Seq
	undoRetrans int64
	retransAt   clock.Instant
	retransEnd  wire.Seq // the end of the first resend
	retransOn   bool
}

var _ lossRecovery = (*rackRecovery)(nil)

// The constants of RFC 8985 and of Linux where the RFC leaves room.
const (
	// reoWndPersistRounds is how many recoveries a grown reordering
	// window lasts without D-SACK (RFC 8985 §6.2: 16).
	reoWndPersistRounds = 16
	// wcDelAckT is the worst-case delayed-ACK time a probe timeout
	// allows for when one segment is in flight (RFC 8985 §7.2: 200 ms,
	// Linux's TCP_RTO_MIN).
	wcDelAckT = 200 * time.Millisecond
)

func (r *rackRecovery) init(c *Conn) {
	*r = rackRecovery{reoWndMult: 1}
	r.recoveryBase.init(c)
}

// sentAfter is RACK_sent_after (RFC 8985 §6.2): whether the segment sent
// at t1 ending at s1 was sent after the one sent at t2 ending at s2.
func sentAfter(t1 clock.Instant, s1 wire.Seq, t2 clock.Instant, s2 wire.Seq) bool {
	return t1 > t2 || t1 == t2 && s1.GreaterThan(s2)
}

// onAck implements lossRecovery: RFC 8985 §6.2 steps 1 to 6, TLP's ACK
// processing (§7.4), the undo checks, then the episode's start, window
// (PRR) and end.
func (r *rackRecovery) onAck(now clock.Instant, a *ackEvent) {
	c := r.c
	st := &c.env.Stats
	if a.acked > 0 {
		r.newAck()
	}
	if a.ece {
		r.undoOn = false // an ECN-Echo's reduction is needed (Linux)
	}
	if a.newSACK && c.sndMax.GreaterThan(c.sndUna) {
		st.DupACKsIn++
		r.dupAcks++
	}
	if len(c.sb.ranges) > 0 && c.sb.ranges[0].start.LessEq(c.sndUna) {
		r.onReneging()
	}
	// Step 2: the most recently sent segment delivered.
	if a.rackOK && (!r.has || sentAfter(a.rackXmit, a.rackEnd, r.xmit, r.end)) {
		r.has, r.xmit, r.end, r.rtt = true, a.rackXmit, a.rackEnd, a.rackRTT
	} else if a.rackOK {
		r.rtt = a.rackRTT
	}
	// Step 3: reordering, if a segment never resent was delivered below
	// the highest one delivered before.
	if a.hasOrig && r.hasFack && a.origLowEnd.LessThan(r.fack) {
		if !r.reorderingSeen {
			st.Reordering++
		}
		r.reorderingSeen = true
	}
	if a.hasHigh && (!r.hasFack || a.highEnd.GreaterThan(r.fack)) {
		r.fack, r.hasFack = a.highEnd, true
	}
	if a.dsack {
		r.onDSACK(a)
	}
	if r.undoOn {
		r.tryUndo(now, a)
	}
	if r.tlpOn {
		r.tlpAck(now, a)
	}
	// Step 5: detect losses.
	a.newlyLost = r.detectLoss(now)
	switch {
	case r.loss:
		r.onLossAck(now, a)
	case r.inRecovery:
		if c.sndUna.GreaterEq(r.recover) {
			r.endEpisode(now)
		} else {
			if a.acked > 0 && !r.cwr {
				st.PartialACKs++
			}
			if a.newlyLost > 0 && r.cwr {
				// A loss during CWR: the reduction under way serves
				// (Linux tcp_enter_recovery in a cwnd reduction).
				r.cwr = false
				r.recover = c.sndMax
				st.FastRetrans++
				st.Recoveries++
				st.SACKRecoveries++
			}
			r.prrAck(a)
		}
	case a.newlyLost > 0:
		r.enterRecovery(now, a)
	case a.ece:
		r.enterCWR(now, a)
	}
	r.pending = r.probeNow || c.sent.lost.head != noRec
	if a.acked > 0 || !c.timers.armed(timerTLP) {
		r.armTimers(now)
	}
}

// onDSACK is RFC 8985 §6.2 step 4's D-SACK part (the reordering window
// grows by min_RTT/4 per round trip that sees a D-SACK) and RFC 3708's
// count of the episode's resends reported as duplicates.
func (r *rackRecovery) onDSACK(a *ackEvent) {
	c := r.c
	if r.dsackRoundOn && c.sndUna.GreaterEq(r.dsackRound) {
		r.dsackRoundOn = false
	}
	if !r.dsackRoundOn {
		r.dsackRoundOn, r.dsackRound = true, c.sndMax
		r.reoWndMult++
		r.reoWndPersist = reoWndPersistRounds
	}
	if r.undoOn && r.retransOn && a.dsackEnd.GreaterThan(r.undoMarker) {
		r.undoRetrans -= int64(a.dsackEnd.Size(a.dsackStart))
		if r.undoRetrans < 0 {
			r.undoRetrans = 0
		}
	}
}

// tryUndo undoes the last reduction when it proved spurious: every byte
// resent since it began was reported duplicate by D-SACK (RFC 3708 §3;
// also after the episode ended, until another begins, as Linux's
// tcp_try_undo_dsack in the open state: reordering shows itself that
// way), or, during the episode, the first ACK to acknowledge the first
// resend echoes a timestamp older than it — the original arrived (Eifel
// detection, RFC 3522 §2, with RFC 4015's response: restore the window).
// An earlier ACK that moves SND.UNA (a resend of an earlier episode
// arriving) says nothing about this one.
func (r *rackRecovery) tryUndo(now clock.Instant, a *ackEvent) {
	if !r.retransOn {
		return
	}
	c := r.c
	switch {
	case a.dsack && r.undoRetrans == 0:
		c.env.Stats.DSACKUndo++
		r.undo(now, false)
	case (r.inRecovery || r.loss) && a.acked > 0 && a.ack.GreaterEq(r.retransEnd) &&
		a.tsEcrOK && tsBefore(a.tsEcr, c.tsVal(r.retransAt)):
		c.env.Stats.EifelUndo++
		r.undo(now, true)
	}
}

// undo ends the episode as if it had not happened: the controller
// restores its window (OnUndo), the records deemed lost are back in
// flight, and after an RTO the timer's back-off goes (Linux
// tcp_undo_cwnd_reduction and tcp_try_undo_loss).
func (r *rackRecovery) undo(now clock.Instant, unmark bool) {
	c := r.c
	c.cc.OnUndo(now)
	if unmark {
		c.sent.unmarkLost()
	}
	if r.loss {
		c.rexmitCount = 0
		c.rto = c.rtt.rto(c.env.cfg.InitialRTO, c.env.cfg.MinRTO, c.env.cfg.MaxRTO)
	}
	r.inRecovery, r.cwr, r.loss, r.frto = false, false, false, false
	r.undoOn, r.retransOn = false, false
	r.prr = prr{}
}

// tlpAck is TLP's ACK processing (RFC 8985 §7.4, as Linux's
// tcp_process_tlp_ack): once the probe is acknowledged, either it was new
// data or it and the original both arrived (a D-SACK for it) — no loss —
// or it repaired a loss, which costs a window reduction.
func (r *rackRecovery) tlpAck(now clock.Instant, a *ackEvent) {
	c := r.c
	if a.ack.LessThan(r.tlpEnd) {
		return
	}
	switch {
	case !r.tlpRetrans:
		r.tlpOn = false
	case a.dsack && a.dsackEnd == r.tlpEnd:
		r.tlpOn = false
	case a.ack.GreaterThan(r.tlpEnd):
		// The probe repaired a tail loss: reduce as for a loss, at once
		// (Linux: CWR entered and ended on this ACK).
		// The window it reduces is cwnd, not what is outstanding now
		// (Linux's tcp_init_cwnd_reduction: ssthresh from cwnd).
		r.tlpOn = false
		c.env.Stats.TLPRecoveries++
		w := c.cc.Cwnd()
		c.cc.OnRecoveryStart(now, w)
		c.cc.OnRecoveryEnd(now, max(w, c.cc.Ssthresh()))
		c.queueCWR()
	case a.acked == 0 && !a.newSACK:
		r.tlpOn = false
	}
}

// reoWnd is RACK_update_reo_wnd's window (RFC 8985 §6.2 step 4): zero
// until reordering was seen, while recovering or once DupThresh segments
// are SACKed (then a lost segment is found as soon as RFC 6675 would find
// it); otherwise min_RTT/4 times the multiplier D-SACKs grew, at most
// SRTT.
func (r *rackRecovery) reoWnd() time.Duration {
	c := r.c
	if !r.reorderingSeen {
		if r.inRecovery && !r.cwr || r.loss {
			return 0
		}
		if c.sb.bytes >= dupThresh*c.sndMSS {
			return 0
		}
	}
	w := time.Duration(r.reoWndMult) * time.Duration(c.minRTT.Get()) / 4
	if c.rtt.valid() {
		w = min(w, c.rtt.srtt)
	}
	return w
}

// detectLoss is RACK_detect_loss (RFC 8985 §6.2 step 5): walking the
// records in flight from the least recently sent, each sent before the
// most recently sent segment delivered (RACK.xmit_ts) is lost once
// RACK.rtt plus the reordering window has passed since it was sent. The
// walk stops at the first record that is not (yet): every later one was
// sent later. It returns the bytes newly deemed lost and arms the
// reordering timer for the first record that may still be; the RFC arms
// it for the last such record, which is the same once the walk ends
// there, and waits longer for the others. The work is O(1) per record
// deemed lost.
func (r *rackRecovery) detectLoss(now clock.Instant) uint32 {
	c := r.c
	c.timers.stop(timerRACK)
	if !r.has {
		return 0
	}
	q := &c.sent
	wnd := r.reoWnd()
	var lost uint32
	for i := q.flight.head; i != noRec; {
		rec := q.at(i)
		next := rec.next
		if !sentAfter(r.xmit, r.end, rec.xmit, rec.end) {
			break
		}
		remaining := rec.xmit.Add(r.rtt + wnd).Sub(now)
		if remaining > 0 {
			c.timers.set(timerRACK, now.Add(remaining))
			break
		}
		q.markLost(i, rec)
		if !c.plpLost(rec) {
			// A lost probe is resent but is no congestion (RFC
			// 4821 §7.5).
			lost += rec.len()
			c.lostRecord(now, rec)
		}
		i = next
	}
	if lost > 0 {
		c.env.Stats.RACKLost += uint64(lost)
	}
	return lost
}

// onReoTimeout is RACK_reo_timeout (RFC 8985 §6.3): the reordering
// window of a segment passed with no ACK; detect losses again.
func (r *rackRecovery) onReoTimeout(now clock.Instant) {
	c := r.c
	lost := r.detectLoss(now)
	if lost == 0 {
		return
	}
	if !r.inRecovery && !r.loss {
		a := &c.env.ackEv
		*a = ackEvent{ack: c.sndUna, newlyLost: lost}
		r.enterRecovery(now, a)
	} else if r.cwr {
		r.cwr = false
		r.recover = c.sndMax
	}
	r.pending = r.probeNow || c.sent.lost.head != noRec
}

// enterRecovery starts a fast-recovery episode on the ACK (or reordering
// timeout) that found a loss: the controller reduces (its ssthresh is
// PRR's target), PRR starts (RFC 9937 §6.1) and takes this ACK (§6.2), and
// the episode may be undone later.
func (r *rackRecovery) enterRecovery(now clock.Instant, a *ackEvent) {
	c := r.c
	st := &c.env.Stats
	flight := r.flightForEpisode()
	r.inRecovery = true
	r.cwr = false
	r.recover = c.sndMax
	r.tlpOn = false
	c.timers.stop(timerTLP)
	r.startUndo()
	c.cc.OnRecoveryStart(now, flight)
	c.queueCWR()
	out := c.sndMax.Size(c.sndUna)
	r.prr.start(out, c.sb.bytes-min(a.sacked, c.sb.bytes), a.acked)
	r.prrOut = 0
	r.prrAck(a)
	st.FastRetrans++
	st.Recoveries++
	st.SACKRecoveries++
}

// enterCWR starts a CWR episode (RFC 3168 §6.1.2, as Linux's
// tcp_enter_cwr): the controller reduces once for the ECN-Echo, PRR
// brings the flight down to its ssthresh, and nothing is resent.
func (r *rackRecovery) enterCWR(now clock.Instant, a *ackEvent) {
	c := r.c
	if c.sndUna.LessThan(r.cwrUntil) {
		return // one reduction per window of data (RFC 3168 §6.1.2)
	}
	r.inRecovery, r.cwr = true, true
	r.undoOn = false
	r.recover = c.sndMax
	r.cwrUntil = c.sndMax
	c.cc.OnECE(now, c.sndMax.Size(c.sndUna))
	c.queueCWR()
	c.env.Stats.ECNReductions++
	out := c.sndMax.Size(c.sndUna)
	r.prr.start(out, c.sb.bytes-min(a.sacked, c.sb.bytes), a.acked)
	r.prrOut = 0
	r.prrAck(a)
}

// prrAck is PRR's per-ACK step (RFC 9937 §6.2).
func (r *rackRecovery) prrAck(a *ackEvent) {
	c := r.c
	r.prr.out = r.prrOut
	safe := a.acked > 0 && a.newlyLost == 0
	r.prr.onAck(a.delivered, c.sent.flight.bytes, c.cc.Ssthresh(), safe, c.sndMSS)
}

// endEpisode ends recovery or CWR once the data outstanding when it began
// is acknowledged: the window is ssthresh (RFC 9937 §6.3), or what a
// reduction shown spurious by then restores (RFC 3708).
func (r *rackRecovery) endEpisode(now clock.Instant) {
	c := r.c
	if r.undoOn && r.retransOn && r.undoRetrans == 0 {
		c.env.Stats.DSACKUndo++
		r.undo(now, false)
		return
	}
	r.inRecovery, r.cwr = false, false
	c.cc.OnRecoveryEnd(now, max(c.sndMax.Size(c.sndUna), c.cc.Ssthresh()))
	r.prr = prr{}
	r.episodeDone()
}

// episodeDone counts a recovery without D-SACK against the grown
// reordering window (RFC 8985 §6.2 step 4: reset after 16).
func (r *rackRecovery) episodeDone() {
	if r.reoWndMult > 1 {
		r.reoWndPersist--
		if r.reoWndPersist <= 0 {
			r.reoWndMult = 1
		}
	}
}

// startUndo opens an episode that may be undone.
func (r *rackRecovery) startUndo() {
	r.undoOn = true
	r.undoMarker = r.c.sndUna
	r.undoRetrans = 0
	r.retransOn = false
}

// onTimeout implements lossRecovery (RFC 8985 §6.3, RACK's RTO; RFC 5682
// F-RTO): the episode becomes loss recovery; the first unacknowledged
// record, and every record sent longer than RACK.rtt ago, are deemed
// lost; the rest may still arrive. SND.NXT stays.
func (r *rackRecovery) onTimeout(now clock.Instant) {
	c := r.c
	first := c.rexmitCount <= 1
	if first || !r.undoOn {
		r.startUndo()
	}
	r.timeout()
	r.loss, r.cwr = true, false
	r.tlpOn, r.probeNow = false, false
	r.prr = prr{}
	// F-RTO on the first timeout of an episode only (RFC 5682 §2.1).
	r.frto = first && !c.env.cfg.NoFRTO
	r.frtoNewSeq = false
	q := &c.sent
	// Every record deemed lost goes on the lost list in sequence order,
	// those deemed lost before included, so that resending starts at
	// SND.UNA (as Linux's tcp_xmit_retransmit_queue walks the queue):
	// one walk of all the records, once per RTO.
	var lost uint32
	for i := q.head; i < q.tail; i++ {
		rec := q.at(i)
		switch {
		case rec.flags&recSACKed != 0:
		case rec.list == listLost:
			q.unlink(i, rec)
			q.link(&q.lost, i, rec, listLost)
		case i == q.head || !r.has || rec.xmit.Add(r.rtt) <= now:
			// The first record, and those sent longer than RACK.rtt
			// ago; the others may yet arrive.
			lost += rec.len()
			q.markLost(i, rec)
			c.lostRecord(now, rec)
		}
	}
	c.timers.stop(timerRACK)
	c.timers.stop(timerTLP)
	r.pending = q.lost.head != noRec
}

// onLossAck handles an ACK in loss recovery (after an RTO): F-RTO
// (RFC 5682 §3, SACK-enhanced §4, as Linux's tcp_process_loss), and the
// end of loss recovery once the data outstanding at the RTO is
// acknowledged.
func (r *rackRecovery) onLossAck(now clock.Instant, a *ackEvent) {
	c := r.c
	if r.frto {
		// Step 3b: data never resent, sent before the RTO, arrived: not
		// everything was lost, the timeout was spurious.
		if a.hasOrig && a.origLowEnd.LessEq(r.recover) && r.undoOn {
			c.env.Stats.SpuriousRTOs++
			r.undo(now, true)
			return
		}
		if r.frtoNewSeq {
			// Step 3a: duplicate ACKs or SACKs after new data went
			// out: the loss was real, resend as usual.
			if a.newSACK || a.acked == 0 {
				r.frto = false
			}
		} else if a.acked > 0 && c.sndUna.LessThan(r.recover) {
			// Step 2b: the resend was acknowledged and more is
			// outstanding: send new data instead of resending, if any
			// may go, and see what the next ACK says.
			if c.dataPending() && c.sndNxt.LessThan(c.sndUna.Add(c.sndWnd)) {
				r.frtoNewSeq = true
				r.recover = c.sndMax
			} else {
				r.frto = false
			}
		}
	}
	if c.sndUna.GreaterEq(r.recover) {
		r.loss, r.frto = false, false
		r.episodeDone()
	}
}

// onReneging: the cumulative ACK reached the start of SACKed data, which
// the receiver therefore does not hold (RFC 2018 §8: it reneged, or the
// SACK blocks were forged). The scoreboard goes, and every record it
// showed SACKed is put on the lost list, to be resent first as the window
// allows, without a window reduction: nothing says the network dropped
// them. (Linux instead arms a short RTO, which collapses the window; an
// on-path forger of SACK blocks could then do that at will.)
func (r *rackRecovery) onReneging() {
	r.c.reneged()
}

// armTimers arms TLP's probe timeout (RFC 8985 §7.2, as Linux's
// tcp_schedule_loss_probe) after data was sent or an ACK moved SND.UNA:
// only in the open state with nothing SACKed and no probe outstanding,
// for two SRTT (plus the worst-case delayed ACK with one segment in
// flight), never after the RTO.
func (r *rackRecovery) armTimers(now clock.Instant) {
	c := r.c
	if r.inRecovery || r.loss || r.tlpOn || c.sb.bytes > 0 || c.sndUna == c.sndMax || c.env.cfg.NoTLP {
		c.timers.stop(timerTLP)
		return
	}
	pto := time.Second
	if c.rtt.valid() {
		pto = 2 * c.rtt.srtt
		if c.sent.count() == 1 {
			pto += wcDelAckT
		} else {
			pto += 2 * time.Millisecond // Linux's TCP_TIMEOUT_MIN
		}
	}
	at := now.Add(pto)
	if rto := c.timers.get(timerRexmit); rto != clock.Never && rto < at {
		at = rto
	}
	c.timers.set(timerTLP, at)
}

// onProbeTimeout is the PTO firing (RFC 8985 §7.3): send a probe on the
// next PollTransmit.
func (r *rackRecovery) onProbeTimeout(now clock.Instant) {
	c := r.c
	if r.inRecovery || r.loss || r.tlpOn || c.sndUna == c.sndMax {
		return
	}
	r.probeNow = true
	r.pending = true
	// The probe goes on the PollTransmit that follows; the RTO due now
	// too is rearmed already, so that it does not run first (§7.3: the
	// RTO is rearmed after the probe).
	c.timers.set(timerRexmit, now.Add(c.rto))
}

// sendProbe is TLP_send_probe (RFC 8985 §7.3): one segment of new data if
// the peer's window allows it, else the last segment sent again; either
// way regardless of cwnd; then the RTO is rearmed.
func (r *rackRecovery) sendProbe(now clock.Instant, dst []byte) int {
	c := r.c
	r.probeNow = false
	r.pending = c.sent.lost.head != noRec
	var n int
	retrans := false
	if c.dataPending() {
		c.tlpProbe = true
		n = c.sendData(now, dst, 1)
		c.tlpProbe = false
	}
	if n == 0 && !c.sent.empty() {
		n = r.resend(now, dst, c.sent.tail-1, true)
		retrans = n > 0
	}
	if n == 0 {
		return 0
	}
	r.tlpOn, r.tlpEnd, r.tlpRetrans = true, c.sndMax, retrans
	c.env.Stats.TLPProbes++
	c.timers.set(timerRexmit, now.Add(c.rto))
	c.timers.stop(timerTLP)
	return n
}

// send implements lossRecovery: a zero-window probe after an RTO, a TLP
// probe, the lost records as the window allows, then new data.
func (r *rackRecovery) send(now clock.Instant, dst []byte, maxSegs int) int {
	c := r.c
	q := &c.sent
	if c.rexmitNow {
		c.rexmitNow = false
		if !q.empty() {
			if n := r.resend(now, dst, q.head, true); n > 0 {
				return n
			}
		}
	}
	if r.probeNow {
		if n := r.sendProbe(now, dst); n > 0 {
			return n
		}
	}
	if i := q.lost.head; i != noRec && !(r.frto && r.frtoNewSeq) {
		// As Linux's tcp_xmit_retransmit_queue: while what is in
		// flight is below the window.
		if q.flight.bytes < r.window() {
			if n := r.resend(now, dst, i, false); n > 0 {
				return n
			}
		}
		return 0 // resends go before new data
	}
	n := c.sendData(now, dst, maxSegs)
	if n > 0 && !r.inRecovery && !r.loss {
		r.armTimers(now)
	}
	return n
}

// resend sends record i again (all of it, with its FIN): a lost record,
// the last one as a probe, or the first as a zero-window probe. A record
// starting beyond the peer's window waits (unless it is the first, or
// force is set), as Linux's tcp_retransmit_skb. If the record and the SACK
// blocks we would add do not fit one segment (the record was cut before
// we held out-of-order data), fewer blocks go: the record is the unit of
// loss detection and goes whole.
func (r *rackRecovery) resend(now clock.Instant, dst []byte, i uint64, force bool) int {
	c := r.c
	rec := c.sent.at(i)
	if !force && i != c.sent.head && !rec.start.LessThan(c.sndUna.Add(c.sndWnd)) {
		return 0
	}
	if data := rec.len() - uint32(rec.flags&recFIN/recFIN); data > c.sndMSS {
		// Sent before the MSS fell (a probe, a packet too big, a black
		// hole): resent in pieces that fit.
		c.sent.split(i, c.sndMSS)
		rec = c.sent.at(i)
	}
	n := rec.len()
	fin := rec.flags&recFIN != 0
	if fin {
		n--
	}
	seg := segment{seq: rec.start, flags: wire.TCPFlagACK, dataOff: int(rec.start.Size(c.sndUna)), dataLen: int(n)}
	if fin {
		seg.flags |= wire.TCPFlagFIN
	}
	if rec.flags&recPSH != 0 {
		seg.flags |= wire.TCPFlagPSH
	}
	if room := c.sndMSS - n; n > c.effMSS() {
		seg.sackLimited, seg.sackRoom = true, 0
		if room >= 12 {
			seg.sackRoom = int(room-4) / 8
		}
	}
	if c.rttTiming && c.rttSeq.GreaterThan(rec.start) {
		c.rttTiming = false // Karn's rule (RFC 6298 §3)
	}
	out := c.build(now, dst, seg, c.rcvNxt)
	c.countRetransmit(n)
	if !c.timers.armed(timerRexmit) {
		c.timers.set(timerRexmit, now.Add(c.rto))
	}
	if r.undoOn {
		if !r.retransOn {
			r.retransOn, r.retransAt, r.retransEnd = true, now, rec.end
		}
		r.undoRetrans += int64(n)
	}
	c.noteSent(now, rec.start, n, fin, rec.flags&recPSH != 0, true)
	return out
}

// window implements lossRecovery: PRR's window in recovery and CWR,
// unless the controller sets the window itself; the controller's
// otherwise.
func (r *rackRecovery) window() uint32 {
	c := r.c
	if r.inRecovery && !c.ccSetsWindow && r.prr.cwnd > 0 {
		return r.prr.cwnd
	}
	return c.cc.Cwnd()
}

// sendRoom implements lossRecovery: the window less what is in flight —
// sent, and neither acknowledged, SACKed nor deemed lost (Linux's
// tcp_packets_in_flight).
func (r *rackRecovery) sendRoom(outstanding uint32) uint32 {
	w, used := r.window(), r.c.sent.flight.bytes
	if used < w {
		return w - used
	}
	return 0
}

// release implements lossRecovery: the connection frees the records and
// the scoreboard.
func (r *rackRecovery) release() {}

// onMSSDrop implements lossRecovery: every record in flight larger than
// the new MSS is deemed lost, without the controller hearing of it (the
// network did not drop it for congestion), and resent in pieces (resend
// splits it), as Linux's tcp_simple_retransmit.
func (r *rackRecovery) onMSSDrop(now clock.Instant) {
	c := r.c
	q := &c.sent
	for i := q.head; i < q.tail; i++ {
		rec := q.at(i)
		if rec.list == listFlight && rec.len()-uint32(rec.flags&recFIN/recFIN) > c.sndMSS {
			q.markLost(i, rec)
		}
	}
	r.pending = q.lost.head != noRec
}
