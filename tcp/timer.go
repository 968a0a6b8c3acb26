package tcp

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// timer names one of a connection's timers. Each has one deadline in the
// connection's timerTable; HandleTimeout runs the expired ones in the
// order declared here.
type timer uint8

// The timers.
const (
	// RACK-TLP's probe timeout (RFC 8985 §7.2) comes first: never armed
	// later than the RTO, it takes the RTO's place when both are due at
	// once, as in Linux, where the probe replaces the RTO on the one
	// timer they share (sending the probe rearms the RTO).
	timerTLP       timer = iota
	timerRexmit          // retransmission of SYN, SYN-ACK, data or FIN (RFC 6298)
	timerPersist         // zero-window probe, or SWS override (RFC 9293 §3.8.6.1, §3.8.6.2.1)
	timerDelAck          // delayed ACK (RFC 1122 §4.2.3.2)
	timerKeepAlive       // keep-alive (RFC 1122 §4.2.3.6)
	timerLife            // TIME-WAIT (2×MSL) or orphaned FIN-WAIT-2
	timerPacing          // release of the next data segment at the pacing rate
	timerRACK            // RACK's reordering timeout (RFC 8985 §6.3)
	timerPLPMTU          // PLPMTUD's raise timer: search again (RFC 8899 §5.1.1)
	timerIdle            // the connection has been idle long enough to park (park.go)
	numTimers
)

var timerNames = [numTimers]string{"tlp", "rexmit", "persist", "delack", "keepalive", "life", "pacing", "rack", "plpmtud", "idle"}

// String returns the timer's name.
func (t timer) String() string {
	if t < numTimers {
		return timerNames[t]
	}
	return "invalid"
}

// timerTable holds one deadline per timer, clock.Never when it is not
// armed (quinn-proto's TimerTable is the model). The zero value is not
// valid: NewConn stops every timer.
type timerTable struct {
	at [numTimers]clock.Instant
}

// set arms t for at, replacing any earlier deadline.
func (tt *timerTable) set(t timer, at clock.Instant) { tt.at[t] = at }

// stop disarms t.
func (tt *timerTable) stop(t timer) { tt.at[t] = clock.Never }

// stopAll disarms every timer.
func (tt *timerTable) stopAll() {
	for i := range tt.at {
		tt.at[i] = clock.Never
	}
}

// get returns t's deadline, clock.Never if it is not armed.
func (tt *timerTable) get(t timer) clock.Instant { return tt.at[t] }

// armed reports whether t is armed.
func (tt *timerTable) armed(t timer) bool { return tt.at[t] != clock.Never }

// expired reports whether t is armed for now or earlier.
func (tt *timerTable) expired(t timer, now clock.Instant) bool { return tt.at[t] <= now }

// next returns the earliest deadline, clock.Never if none is armed.
func (tt *timerTable) next() clock.Instant {
	d := clock.Never
	for _, at := range tt.at {
		d = clock.Min(d, at)
	}
	return d
}

// NextDeadline returns when HandleTimeout must next be called, or
// clock.Never if no timer is armed.
//
// Only these calls can change the answer: HandleSegment, HandleTimeout,
// HandleICMPError, HandlePacketTooBig and SetPathMTU (a smaller MSS
// resends what is in flight), OpenCookie (it handles the cookie's ACK),
// PollTransmit and PollTransmitBatch (sending arms the
// retransmission, persist and pacing timers, an ACK stops the delayed-ACK
// timer), Close, CloseWrite, Abort and SetKeepAlive; Read when it
// empties the receive queue with parking on (Config.ParkIdle: the idle
// timer, stopped while data waited unread, starts again); and Connect and
// OpenPassive only by way of the PollTransmit that sends their SYN. Read
// otherwise, Write, CloseRead, the other setters and the getters never
// do, so an
// owner that keeps the deadlines of many connections in one structure
// (package stack's heap) re-reads NextDeadline only after the calls
// above.
func (c *Conn) NextDeadline() clock.Instant { return c.timers.next() }

// HandleTimeout runs every timer whose deadline is at or before now.
func (c *Conn) HandleTimeout(now clock.Instant) {
	c.env.tick(now)
	for t := timer(0); t < numTimers; t++ {
		if !c.timers.expired(t, now) || c.state == Closed {
			continue
		}
		c.timers.stop(t)
		switch t {
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
		case timerPacing:
			// The next data segment may go: the owner's PollTransmit,
			// which follows every HandleTimeout, sends it.
		case timerRACK:
			if c.rack != nil {
				c.rack.onReoTimeout(now)
			}
		case timerTLP:
			if c.rack != nil {
				c.rack.onProbeTimeout(now)
			}
		case timerPLPMTU:
			c.plpRaise()
		case timerIdle:
			c.onIdleTimeout(now)
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
		if int(c.synRetries) >= limit {
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
		!zeroWindow && int(c.rexmitCount)+1 > c.env.cfg.Retries2 {
		// Linux ends the connection without a RST (tcp_write_err).
		st.AbortOnTimeout++
		c.finish(ErrTimedOut)
		return
	}
	if !zeroWindow {
		c.rexmitCount++
		c.plpTimeout(now)
	}
	st.Timeouts++
	// RFC 5681 §3.1 (equations 4, 5), RFC 6582 §3.2 step 6 ("recover"
	// after a timeout); then loss recovery decides what is resent.
	c.cc.OnTimeout(now, c.sndMax.Size(c.sndUna))
	c.rexmitNow = false
	c.rec.onTimeout(now)
	c.backoff()
	c.timers.set(timerRexmit, now.Add(c.rto))
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
	if int(c.rexmitCount) > c.env.cfg.Retries2 {
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
	for i := 0; i < int(c.probeBackoff) && d < c.env.cfg.MaxRTO; i++ {
		d *= 2
	}
	c.timers.set(timerPersist, now.Add(min(d, c.env.cfg.MaxRTO)))
}

// armKeepAlive schedules the keep-alive check (RFC 1122 §4.2.3.6) if
// keep-alive is on and the state allows it.
func (c *Conn) armKeepAlive(now clock.Instant) {
	if !c.keepAlive || c.state == Closed || c.state == SynSent || c.state == SynReceived || c.state == TimeWait {
		c.timers.stop(timerKeepAlive)
		return
	}
	c.timers.set(timerKeepAlive, max(c.lastRecv.Add(c.keepIdle), now))
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
		c.timers.set(timerKeepAlive, now.Add(c.keepIdle))
		return
	}
	idle := now.Sub(c.lastRecv)
	if idle < c.keepIdle {
		c.keepProbes = 0
		c.timers.set(timerKeepAlive, c.lastRecv.Add(c.keepIdle))
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
	c.timers.set(timerKeepAlive, now.Add(c.keepIntvl))
}
