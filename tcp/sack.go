package tcp

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// SACK-based loss recovery for the sender (RFC 6675), used when both sides
// negotiated SACK (RFC 2018); NewReno (RFC 6582) remains for peers without
// it.
//
// The scoreboard is the set of sequence ranges above SND.UNA that the
// peer has SACKed. From it come the three functions of RFC 6675 §4:
// IsLost (a hole with DupThresh SACKed blocks, or more than
// (DupThresh−1)·SMSS SACKed bytes, above it), SetPipe (the bytes still in
// the network) and NextSeg (what to send next). All of them walk the
// scoreboard, which is bounded by maxOOORanges, so the work per ACK is
// bounded whatever SACK blocks a peer invents.

// dupThresh is DupThresh (RFC 6675 §2, RFC 5681 §3.2).
const dupThresh = 3

// sackRecovery reports whether a loss recovery episode driven by the
// scoreboard is under way.
func (c *Conn) sackRecovery() bool { return c.inRecovery && c.sackOK }

// updateScoreboard records the SACK blocks of an ACK (RFC 6675 §5,
// "Update()"). Blocks outside [SND.UNA, SND.MAX], a D-SACK first block
// (RFC 2883 §4: below the cumulative ACK, or inside the second block),
// and blocks beyond the scoreboard's bound are ignored. It reports whether
// anything new was SACKed.
func (c *Conn) updateScoreboard(seg *wire.TCPFields) bool {
	o := &seg.Options
	news := false
	for i := 0; i < int(o.NumSACK); i++ {
		b := o.SACK[i]
		if i == 0 {
			if b.End.LessEq(seg.Ack) {
				continue // D-SACK of data below the cumulative ACK
			}
			if o.NumSACK > 1 && o.SACK[1].Start.LessEq(b.Start) && b.End.LessEq(o.SACK[1].End) {
				continue // D-SACK of data inside the second block
			}
		}
		// A block reports data above the cumulative ACK (RFC 2018 §4);
		// one reaching down to it contradicts the ACK it came with.
		start, end := b.Start, b.End
		if !seg.Ack.LessThan(start) || !start.LessThan(end) || end.GreaterThan(c.sndMax) || start.LessThan(c.sndUna) {
			continue
		}
		// Only what is not already SACKed counts as new information.
		if i := c.sacked.find(start); i < 0 || c.sacked[i].end.LessThan(end) {
			if c.sacked.add(start, end, maxOOORanges) {
				news = true
			}
		}
	}
	return news
}

// checkReneging drops the scoreboard, and resends from SND.UNA, when the
// cumulative ACK points at the start of a SACKed range: the receiver does not hold what it SACKed
// (it reneged, RFC 2018 §8, or the SACK was forged), since a receiver
// holding it would acknowledge past it. The scoreboard outlives RTOs
// (RFC 6675 §5.1 allows that only "as long as robust tests for reneging
// are present"); without this test the data it wrongly shows as received
// would never be resent. Linux detects reneging the same way
// (tcp_check_sack_reneging).
func (c *Conn) checkReneging() {
	if len(c.sacked) > 0 && c.sacked[0].start.LessEq(c.sndUna) {
		c.sacked = nil
		c.env.Stats.SACKReneging++
		// What the scoreboard let a resend skip is not at the receiver:
		// go back to SND.UNA, as after a timeout (Linux enters loss).
		c.sndNxt = c.sndUna
		c.highRxt = c.sndUna
	}
}

// holeLost is IsLost (RFC 6675 §4) for every byte of the hole below
// scoreboard range i: the SACK information above a hole is the same for
// all of its bytes.
func (c *Conn) holeLost(i int) bool {
	blocks := len(c.sacked) - i
	if blocks >= dupThresh {
		return true
	}
	var bytes uint32
	for _, r := range c.sacked[i:] {
		bytes += r.end.Size(r.start)
	}
	return bytes > (dupThresh-1)*c.sndMSS
}

// headLost reports whether the first unacknowledged byte is lost by the
// scoreboard's rule: RFC 6675 §5 (b) starts recovery on it even before
// DupThresh duplicate ACKs.
func (c *Conn) headLost() bool {
	return len(c.sacked) > 0 && c.sacked[0].start.GreaterThan(c.sndUna) && c.holeLost(0)
}

// pipe is SetPipe (RFC 6675 §4): the bytes of the holes not deemed lost,
// plus the bytes retransmitted in this recovery and not yet SACKed or
// acknowledged, plus everything sent above the highest SACKed byte.
func (c *Conn) pipe() uint32 {
	var pipe uint32
	prev := c.sndUna
	for i, r := range c.sacked {
		if prev.LessThan(r.start) {
			if !c.holeLost(i) {
				pipe += r.start.Size(prev)
			}
			if c.highRxt.GreaterThan(prev) {
				pipe += wire.MinSeq(r.start, c.highRxt).Size(prev)
			}
		}
		prev = r.end
	}
	if prev.LessThan(c.sndNxt) {
		pipe += c.sndNxt.Size(prev)
	}
	return pipe
}

// nextLostHole is NextSeg's rule 1 (RFC 6675 §4): the first bytes at or
// above HighRxt that are lost and not SACKed, at most one MSS of them.
func (c *Conn) nextLostHole() (wire.Seq, uint32, bool) {
	prev := c.sndUna
	for i, r := range c.sacked {
		start := wire.MaxSeq(prev, c.highRxt)
		if start.LessThan(r.start) && c.holeLost(i) {
			return start, min(r.start.Size(start), c.sndMSS), true
		}
		prev = r.end
	}
	return 0, 0, false
}

// enterSACKRecovery starts a recovery episode (RFC 6675 §5, steps 4.1 to
// 4.3): RecoveryPoint is HighData, ssthresh and cwnd become half the
// flight, and the first unacknowledged segment is resent at once.
func (c *Conn) enterSACKRecovery(now clock.Instant) {
	st := &c.env.Stats
	flight := c.sndMax.Size(c.sndUna) - min(c.ltSent, c.sndMax.Size(c.sndUna))
	c.ltSent = 0
	c.inRecovery = true
	c.recover = c.sndMax
	c.highRxt = c.sndUna
	c.cc.OnRecoveryStart(now, flight)
	c.rexmitNow = true
	st.FastRetrans++
	st.Recoveries++
	st.SACKRecoveries++
}

// sendSACKRecovery sends what recovery allows (RFC 6675 §5 step 4.4 and
// §5 step (C)): while cwnd − pipe ≥ SMSS, lost holes above HighRxt first,
// then new data. The first segment of the episode goes regardless of
// pipe.
func (c *Conn) sendSACKRecovery(now clock.Instant, dst []byte) int {
	if c.rexmitNow {
		c.rexmitNow = false
		n := min(c.sndMSS, uint32(c.snd.n))
		if len(c.sacked) > 0 && c.sacked[0].start.GreaterThan(c.sndUna) {
			n = min(n, c.sacked[0].start.Size(c.sndUna))
		}
		if out := c.retransmit(now, dst, c.sndUna, n); out > 0 {
			return out
		}
	}
	if c.cc.Cwnd() < c.pipe()+c.sndMSS {
		return 0
	}
	if seq, n, ok := c.nextLostHole(); ok {
		if out := c.retransmit(now, dst, seq, n); out > 0 {
			return out
		}
	}
	return c.sendData(now, dst)
}

// retransmit resends n bytes from seq (with the FIN if they end at it and
// it was sent), moves HighRxt, and keeps Karn's rule.
func (c *Conn) retransmit(now clock.Instant, dst []byte, seq wire.Seq, n uint32) int {
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
	c.highRxt = wire.MaxSeq(c.highRxt, end)
	if c.sndNxt.LessThan(end) {
		c.sndNxt = end
	}
	if c.timers[timerRexmit] == clock.Never {
		c.timers[timerRexmit] = now.Add(c.rto)
	}
	return out
}

// skipSACKed moves SND.NXT past SACKed data when it was rewound by an
// RTO: RFC 6675 §5.1 keeps the scoreboard across the timeout, so data the
// peer holds is not sent again.
func (c *Conn) skipSACKed() {
	for _, r := range c.sacked {
		if c.sndNxt.InRange(r.start, r.end) {
			c.sndNxt = r.end
		}
	}
}
