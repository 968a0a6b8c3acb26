package tcp

import "github.com/ustack/ustack/clock"

// renoRecovery is loss recovery without SACK: fast retransmit on the third
// duplicate ACK and fast recovery with window inflation (RFC 5681 §3.2),
// refined by NewReno's partial acknowledgments (RFC 6582 §3.2).
type renoRecovery struct {
	recoveryBase
	// recCwnd is the window during recovery, with inflation (RFC 6582
	// §3.2 steps 2, 4 and 5).
	recCwnd uint32
}

var _ lossRecovery = (*renoRecovery)(nil)

func (r *renoRecovery) init(c *Conn) {
	*r = renoRecovery{}
	r.recoveryBase.init(c)
}

// onAck implements lossRecovery.
func (r *renoRecovery) onAck(now clock.Instant, a *ackEvent) {
	c := r.c
	if a.acked > 0 {
		r.newAck()
		if r.inRecovery {
			if a.ack.GreaterEq(r.recover) {
				// Full acknowledgment: recovery ends (RFC 6582 §3.2
				// step 3).
				r.inRecovery = false
				c.cc.OnRecoveryEnd(now, c.sndMax.Size(c.sndUna))
			} else {
				// Partial acknowledgment (RFC 6582 §3.2 step 4): resend
				// the next segment, deflate the window by the amount
				// acked and add back one MSS.
				c.env.Stats.PartialACKs++
				c.rexmitNow = true
				r.recCwnd -= min(r.recCwnd, a.acked)
				if a.acked >= c.sndMSS {
					r.recCwnd += c.sndMSS
				}
				r.recCwnd = max(r.recCwnd, c.sndMSS)
			}
		}
	}
	if a.dup5681 {
		r.dupAck(now)
	}
	r.ecnResponse(now, a)
}

// dupAck handles a duplicate ACK: fast retransmit on the third and window
// inflation during recovery (RFC 5681 §3.2, RFC 6582 §3.2).
func (r *renoRecovery) dupAck(now clock.Instant) {
	c := r.c
	st := &c.env.Stats
	st.DupACKsIn++
	r.dupAcks++
	if r.inRecovery {
		r.recCwnd += c.sndMSS // step 4: inflate by one segment
		return
	}
	if r.dupAcks != dupThresh {
		return
	}
	// RFC 6582 §3.2 step 2: only if this ACK covers more than "recover"
	// (the end of the previous recovery), so one loss episode gives one
	// window reduction.
	if c.sndUna.LessThan(r.recover) {
		return
	}
	flight := r.flightForEpisode()
	r.inRecovery = true
	r.recover = c.sndMax
	c.cc.OnRecoveryStart(now, flight)
	// RFC 6582 §3.2 step 2: cwnd = ssthresh + 3·SMSS. The controller has
	// just set the window of the episode (Reno: cwnd = ssthresh), so that
	// is the base; a controller without a threshold gets its own window.
	r.recCwnd = c.cc.Cwnd() + 3*c.sndMSS
	c.rexmitNow = true
	st.FastRetrans++
	st.Recoveries++
}

// onTimeout implements lossRecovery: go back to SND.UNA and resend from
// there (RFC 5681 §3.1, RFC 6298 §5.4).
func (r *renoRecovery) onTimeout(now clock.Instant) {
	r.timeout()
	r.c.sndNxt = r.c.sndUna
}

// send implements lossRecovery: the segment at SND.UNA when fast
// retransmit or a partial ACK asked for it, then new data.
func (r *renoRecovery) send(now clock.Instant, dst []byte, maxSegs int) int {
	c := r.c
	if c.rexmitNow {
		c.rexmitNow = false
		if n := c.retransmitHead(now, dst); n > 0 {
			return n
		}
	}
	return c.sendData(now, dst, maxSegs)
}

// window implements lossRecovery: the inflated window in recovery.
func (r *renoRecovery) window() uint32 {
	if r.inRecovery {
		return r.recCwnd
	}
	return r.limitedWindow()
}

// sendRoom implements lossRecovery: everything outstanding counts against
// the window.
func (r *renoRecovery) sendRoom(outstanding uint32) uint32 {
	if w := r.window(); outstanding < w {
		return w - outstanding
	}
	return 0
}

// release implements lossRecovery: NewReno holds nothing.
func (r *renoRecovery) release() {}

// onMSSDrop implements lossRecovery: go back to SND.UNA, the window
// unchanged.
func (r *renoRecovery) onMSSDrop(now clock.Instant) { r.c.sndNxt = r.c.sndUna }
