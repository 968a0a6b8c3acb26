package tcp

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// sackRecovery is SACK-based loss recovery for the sender (RFC 6675),
// used when both sides negotiated SACK (RFC 2018). Its scoreboard
// (scoreboard.go) gives the three functions of RFC 6675 §4: IsLost,
// SetPipe and NextSeg.
type sackRecovery struct {
	recoveryBase
	sb *scoreboard // the connection's
	// highRxt is HighRxt: one past the highest byte retransmitted in
	// recovery (RFC 6675 §2).
	highRxt wire.Seq
}

var _ lossRecovery = (*sackRecovery)(nil)

func (s *sackRecovery) init(c *Conn) {
	*s = sackRecovery{sb: &c.sb}
	s.recoveryBase.init(c)
}

// onAck implements lossRecovery.
func (s *sackRecovery) onAck(now clock.Instant, a *ackEvent) {
	c := s.c
	st := &c.env.Stats
	if a.acked > 0 {
		s.highRxt = wire.MaxSeq(s.highRxt, a.ack)
		s.newAck()
		if s.inRecovery {
			if a.ack.GreaterEq(s.recover) {
				// RecoveryPoint acknowledged: the episode ends (RFC 6675
				// §5) with cwnd at ssthresh, which OnRecoveryEnd gives a
				// window-based controller for a flight at least as
				// large as the window of the episode.
				s.inRecovery = false
				c.cc.OnRecoveryEnd(now, max(c.sndMax.Size(c.sndUna), c.cc.Cwnd()))
			} else {
				// A partial ACK: pipe is recomputed and the next holes
				// go out as cwnd allows (RFC 6675 §5 step C).
				st.PartialACKs++
			}
		}
	}
	// RFC 6675 §2: with SACK, an ACK is a duplicate when it SACKs octets
	// not SACKed before, "even if it carries new data, changes the
	// advertised window, or moves the cumulative acknowledgment point";
	// a cumulative ACK resets DupAcks first (§5). RFC 5681's
	// unchanged-window rule would miss every duplicate from a receiver
	// whose window moves as its application reads, and with them limited
	// transmit.
	if a.newSACK && c.sndMax.GreaterThan(c.sndUna) {
		st.DupACKsIn++
		s.dupAcks++
	}
	if len(s.sb.ranges) > 0 {
		s.checkReneging()
	}
	// RFC 6675 §5: recovery starts on DupThresh duplicate ACKs or as
	// soon as the scoreboard deems the first unacknowledged segment
	// lost, but not before the previous episode's RecoveryPoint is
	// acknowledged (§5.1).
	if !s.inRecovery && c.sndMax.GreaterThan(c.sndUna) && c.sndUna.GreaterEq(s.recover) &&
		(s.dupAcks >= dupThresh || s.sb.headLost(c.sndUna, c.sndMSS)) {
		s.enter(now)
	}
	s.ecnResponse(now, a)
}

// checkReneging drops the scoreboard, and resends from SND.UNA, when the
// cumulative ACK points at the start of a SACKed range: the receiver does
// not hold what it SACKed (it reneged, RFC 2018 §8, or the SACK was
// forged), since a receiver holding it would acknowledge past it. The
// scoreboard outlives RTOs (RFC 6675 §5.1 allows that only "as long as
// robust tests for reneging are present"); without this test the data it
// wrongly shows as received would never be resent. Linux detects reneging
// the same way (tcp_check_sack_reneging).
func (s *sackRecovery) checkReneging() {
	c := s.c
	if len(s.sb.ranges) > 0 && s.sb.ranges[0].start.LessEq(c.sndUna) {
		c.reneged()
		// What the scoreboard let a resend skip is not at the receiver:
		// go back to SND.UNA, as after a timeout (Linux enters loss).
		c.sndNxt = c.sndUna
		s.highRxt = c.sndUna
	}
}

// enter starts a recovery episode (RFC 6675 §5, steps 4.1 to 4.3):
// RecoveryPoint is HighData, ssthresh and cwnd become half the flight,
// and the first unacknowledged segment is resent at once.
func (s *sackRecovery) enter(now clock.Instant) {
	c := s.c
	st := &c.env.Stats
	flight := s.flightForEpisode()
	s.inRecovery = true
	s.recover = c.sndMax
	s.highRxt = c.sndUna
	c.cc.OnRecoveryStart(now, flight)
	c.rexmitNow = true
	st.FastRetrans++
	st.Recoveries++
	st.SACKRecoveries++
}

// onTimeout implements lossRecovery: the scoreboard itself is kept (RFC
// 6675 §5.1), and resending starts again from SND.UNA.
func (s *sackRecovery) onTimeout(now clock.Instant) {
	s.timeout()
	s.highRxt = s.c.sndUna
	s.c.sndNxt = s.c.sndUna
}

// send implements lossRecovery. In recovery: RFC 6675 §5's transmission
// rules (one segment at a time). Otherwise the segment at SND.UNA if one
// is due (a zero-window probe after an RTO), then data, skipping what the
// peer SACKed when resending after an RTO.
func (s *sackRecovery) send(now clock.Instant, dst []byte, maxSegs int) int {
	c := s.c
	if s.inRecovery {
		return s.sendRecovery(now, dst)
	}
	if c.rexmitNow {
		c.rexmitNow = false
		if n := c.retransmitHead(now, dst); n > 0 {
			return n
		}
	}
	if len(s.sb.ranges) > 0 {
		s.skipSACKed()
	}
	return c.sendData(now, dst, maxSegs)
}

// sendRecovery sends what recovery allows (RFC 6675 §5 step 4.4 and §5
// step (C)): while cwnd − pipe ≥ SMSS, lost holes above HighRxt first,
// then new data. The first segment of the episode goes regardless of
// pipe.
func (s *sackRecovery) sendRecovery(now clock.Instant, dst []byte) int {
	c := s.c
	if c.rexmitNow {
		c.rexmitNow = false
		n := min(c.sndMSS, uint32(c.snd.n))
		if len(s.sb.ranges) > 0 && s.sb.ranges[0].start.GreaterThan(c.sndUna) {
			n = min(n, s.sb.ranges[0].start.Size(c.sndUna))
		}
		if out := s.retransmit(now, dst, c.sndUna, n); out > 0 {
			return out
		}
	}
	if c.cc.Cwnd() < s.pipe()+c.sndMSS {
		return 0
	}
	if seq, n, ok := s.sb.nextLostHole(c.sndUna, s.highRxt, c.sndMSS); ok {
		if out := s.retransmit(now, dst, seq, n); out > 0 {
			return out
		}
	}
	s.skipSACKed()
	return c.sendData(now, dst, 1)
}

// retransmit resends n bytes from seq (with the FIN if they end at it and
// it was sent), moves HighRxt, and keeps Karn's rule.
func (s *sackRecovery) retransmit(now clock.Instant, dst []byte, seq wire.Seq, n uint32) int {
	c := s.c
	n = min(n, c.effMSS()) // room for our own SACK blocks (RFC 9293 §3.7.1)
	dataEnd := c.sndUna.Add(uint32(c.snd.n))
	if seq.Add(n).GreaterThan(dataEnd) {
		n = dataEnd.Size(seq)
	}
	seg := segment{seq: seq, flags: wire.TCPFlagACK, dataOff: int(seq.Size(c.sndUna)), dataLen: int(n)}
	if c.finQueued && seq.Add(n) == c.finSeq && c.finSeq.LessThan(c.sndMax) {
		seg.flags |= wire.TCPFlagFIN
	}
	if n == 0 && seg.flags&wire.TCPFlagFIN == 0 {
		return 0
	}
	if c.rttTiming && c.rttSeq.GreaterThan(seq) {
		c.rttTiming = false // Karn's rule (RFC 6298 §3)
	}
	out := c.build(now, dst, seg, c.rcvNxt)
	c.countRetransmit(n)
	end := seq.Add(n)
	if seg.flags&wire.TCPFlagFIN != 0 {
		end = end.Add(1)
	}
	s.highRxt = wire.MaxSeq(s.highRxt, end)
	if c.sndNxt.LessThan(end) {
		c.sndNxt = end
	}
	if !c.timers.armed(timerRexmit) {
		c.timers.set(timerRexmit, now.Add(c.rto))
	}
	c.noteSent(now, seq, n, seg.flags&wire.TCPFlagFIN != 0, false, true)
	return out
}

// skipSACKed moves SND.NXT past SACKed data when it was rewound by an
// RTO: RFC 6675 §5.1 keeps the scoreboard across the timeout, so data the
// peer holds is not sent again.
func (s *sackRecovery) skipSACKed() {
	c := s.c
	if len(s.sb.ranges) > 0 && c.sndNxt.LessThan(c.sndMax) {
		c.sndNxt = s.sb.skip(c.sndNxt)
	}
}

// pipe is SetPipe (RFC 6675 §4).
func (s *sackRecovery) pipe() uint32 {
	c := s.c
	return s.sb.pipe(c.sndUna, c.sndNxt, s.highRxt, c.sndMSS)
}

// window implements lossRecovery: in recovery the controller's window
// against pipe (RFC 6675 §5), without inflation.
func (s *sackRecovery) window() uint32 {
	if s.inRecovery {
		return s.c.cc.Cwnd()
	}
	return s.limitedWindow()
}

// sendRoom implements lossRecovery. The congestion window limits what is
// in the network: in recovery that is pipe (RFC 6675 §4), otherwise all
// that was sent — except, when resending after an RTO, what the peer
// SACKed below SND.NXT, which was skipped and is not in the network
// (RFC 6675 §5.1 keeps the scoreboard); counting it would hold the next
// hole back until another timeout.
func (s *sackRecovery) sendRoom(outstanding uint32) uint32 {
	w, used := s.c.cc.Cwnd(), outstanding
	switch {
	case s.inRecovery:
		used = s.pipe()
	case s.dupAcks > 0:
		w = s.limitedTransmit(w)
		fallthrough
	case len(s.sb.ranges) > 0:
		if c := s.c; c.sndNxt.LessThan(c.sndMax) {
			for _, r := range s.sb.ranges {
				if r.start.LessThan(c.sndNxt) {
					used -= min(used, wire.MinSeq(r.end, c.sndNxt).Size(r.start))
				}
			}
		}
	}
	if used < w {
		return w - used
	}
	return 0
}

// release implements lossRecovery: the connection frees the scoreboard.
func (s *sackRecovery) release() {}

// onMSSDrop implements lossRecovery: go back to SND.UNA, as after a
// timeout but with the window unchanged; SACKed data is skipped.
func (s *sackRecovery) onMSSDrop(now clock.Instant) {
	s.highRxt = s.c.sndUna
	s.c.sndNxt = s.c.sndUna
}
