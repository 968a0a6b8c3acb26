package tcp

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// NextDeadline returns when HandleTimeout must next be called, or
// clock.Never if no timer is armed.
func (c *Conn) NextDeadline() clock.Instant {
	d := clock.Never
	for _, t := range c.timers {
		d = clock.Min(d, t)
	}
	return d
}

// HandleTimeout runs every timer whose deadline is at or before now.
func (c *Conn) HandleTimeout(now clock.Instant) {
	for i := range c.timers {
		if c.timers[i] > now || c.state == Closed {
			continue
		}
		c.timers[i] = clock.Never
		switch i {
		case timerRexmit:
			c.onRexmitTimeout(now)
		case timerPersist:
			c.onPersistTimeout(now)
		case timerDelAck:
			c.ackNow = true
			c.env.Stats.DelayedACKs++
		case timerKeepAlive:
			c.onKeepAliveTimeout(now)
		case timerLife:
			// TIME-WAIT's 2×MSL is over (RFC 9293 §3.10.8), or an orphaned
			// connection spent FinTimeout in FIN-WAIT-2 (Linux
			// tcp_fin_timeout): the connection ends quietly.
			c.finish(nil)
		}
	}
}

// backoff doubles the RTO, up to MaxRTO (RFC 6298 §5.5).
func (c *Conn) backoff() {
	c.rto = min(2*c.rto, c.env.cfg.MaxRTO)
}

// onRexmitTimeout is RFC 6298 §5.4–5.7 for data, and the SYN and SYN-ACK
// retries (RFC 9293 §3.8.1, RFC 1122 §4.2.3.5).
func (c *Conn) onRexmitTimeout(now clock.Instant) {
	st := &c.env.Stats
	c.rttTiming = false // Karn's rule: no sample from a retransmission
	switch c.state {
	case SynSent, SynReceived:
		limit := c.env.cfg.SynRetries
		if c.state == SynReceived {
			limit = c.env.cfg.SynAckRetries
		}
		if c.synRetries >= limit {
			st.AbortOnTimeout++
			if c.passive {
				c.finish(nil)
			} else {
				c.finish(ErrTimedOut)
			}
			return
		}
		c.synRetries++
		st.SynRetrans++
		c.backoff()
		c.synPending = true
		c.sndNxt = c.iss
		return
	}
	if c.sndUna == c.sndMax {
		return
	}
	// The peer closed its window with data in flight (RFC 9293 §3.8.6,
	// MUST-34): the window holds back every resend, so the retransmission
	// must serve as the zero-window probe (MUST-36), and the connection
	// must not time out while the peer answers (SHLD-17). As Linux's
	// tcp_retransmit_timer: give up only after MaxRTO of silence, unless
	// the connection is orphaned.
	zeroWindow := c.sndWnd == 0 && !c.orphan
	if zeroWindow && now.Sub(c.lastRecv) > c.env.cfg.MaxRTO ||
		!zeroWindow && c.rexmitCount+1 > c.env.cfg.Retries2 {
		// Linux ends the connection without a RST (tcp_write_err).
		st.AbortOnTimeout++
		c.finish(ErrTimedOut)
		return
	}
	if !zeroWindow {
		c.rexmitCount++
	}
	st.Timeouts++
	// RFC 5681 §3.1 (equations 4, 5), RFC 6582 §3.2 step 6 ("recover"
	// after a timeout), then go back to SND.UNA and resend from there.
	c.cc.OnTimeout(now, c.sndMax.Size(c.sndUna))
	c.inRecovery = false
	c.recover = c.sndMax
	c.highRxt = c.sndUna // the scoreboard itself is kept (RFC 6675 §5.1)
	c.dupAcks = 0
	c.ltSent = 0
	c.rexmitNow = false
	c.sndNxt = c.sndUna
	c.backoff()
	c.timers[timerRexmit] = now.Add(c.rto)
	if c.sndWnd == 0 {
		// The first segment goes whatever the window, orphaned or not:
		// it is the zero-window probe (MUST-36), and Linux's
		// tcp_retransmit_skb always sends the segment at SND.UNA. Only
		// the time-out rule above differs for an orphan.
		c.rexmitNow = true
	}
}

// onPersistTimeout fires while data is held back with nothing in flight.
// With a zero window it sends a probe and backs off (RFC 9293 §3.8.6.1,
// RFC 1122 §4.2.2.17): probes go on as long as the peer answers them (each
// answer resets rexmitCount), and Retries2 unanswered ones end the
// connection, as Linux's tcp_probe_timer does. With a window smaller than
// a segment it is the override timeout of sender SWS avoidance (RFC 9293
// §3.8.6.2.1): what fits is sent.
func (c *Conn) onPersistTimeout(now clock.Instant) {
	dataEnd := c.sndUna.Add(uint32(c.snd.n))
	pending := c.sndNxt.LessThan(dataEnd) || c.finQueued && c.sndNxt.LessEq(c.finSeq)
	if !pending || c.sndMax != c.sndUna {
		return
	}
	if c.sndWnd > 0 {
		c.forceSend = true
		return
	}
	c.rexmitCount++
	if c.rexmitCount > c.env.cfg.Retries2 {
		c.env.Stats.AbortOnTimeout++
		c.finish(ErrTimedOut)
		return
	}
	c.probeNow = true
	// The interval doubles after every probe (SHLD-30), answered or not,
	// until the window opens: RTO, 2*RTO, 4*RTO... as Linux's
	// icsk_backoff (rexmitCount counts only unanswered probes).
	c.probeBackoff++
	d := c.rto
	for i := 0; i < c.probeBackoff && d < c.env.cfg.MaxRTO; i++ {
		d *= 2
	}
	c.timers[timerPersist] = now.Add(min(d, c.env.cfg.MaxRTO))
}

// armKeepAlive schedules the keep-alive check (RFC 1122 §4.2.3.6) if
// keep-alive is on and the state allows it.
func (c *Conn) armKeepAlive(now clock.Instant) {
	if !c.keepAlive || c.state == Closed || c.state == SynSent || c.state == SynReceived || c.state == TimeWait {
		c.timers[timerKeepAlive] = clock.Never
		return
	}
	c.timers[timerKeepAlive] = c.lastRecv.Add(c.keepIdle)
	if c.timers[timerKeepAlive] < now {
		c.timers[timerKeepAlive] = now
	}
}

// onKeepAliveTimeout probes an idle connection, and ends it after
// KeepCount unanswered probes with a RST and ETIMEDOUT, as Linux does
// (tcp_keepalive_timer).
func (c *Conn) onKeepAliveTimeout(now clock.Instant) {
	if !c.keepAlive {
		return
	}
	if c.sndMax != c.sndUna || c.snd.n > 0 {
		// Data outstanding: the retransmission timer watches the peer.
		c.timers[timerKeepAlive] = now.Add(c.keepIdle)
		return
	}
	idle := now.Sub(c.lastRecv)
	if idle < c.keepIdle {
		c.keepProbes = 0
		c.timers[timerKeepAlive] = c.lastRecv.Add(c.keepIdle)
		return
	}
	if c.keepProbes >= c.keepCount {
		c.env.Stats.AbortOnTimeout++
		c.sendReply(c.ctlSeq(), c.rcvNxt, wire.TCPFlagRST|wire.TCPFlagACK)
		c.finish(ErrTimedOut)
		return
	}
	c.keepProbes++
	c.keepNow = true
	c.timers[timerKeepAlive] = now.Add(c.keepIntvl)
}
