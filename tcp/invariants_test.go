package tcp

import (
	"fmt"
)

// checkInvariants returns an error if the connection's internal state is
// inconsistent. It is the oracle of FuzzConn and is meant to hold after
// every call of the Handle/Poll contract, whatever segments arrived.
func (c *Conn) checkInvariants() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%v: "+format, append([]any{c.state}, a...)...)
	}
	// Send sequence space: SND.UNA ≤ SND.NXT ≤ SND.MAX (RFC 9293 §3.3.1;
	// SND.MAX is where SND.NXT was before an RTO rewound it).
	if c.sndNxt.LessThan(c.sndUna) {
		return bad("SND.NXT %d < SND.UNA %d", c.sndNxt, c.sndUna)
	}
	if c.sndMax.LessThan(c.sndNxt) {
		return bad("SND.MAX %d < SND.NXT %d", c.sndMax, c.sndNxt)
	}
	// Everything outstanding is in the send buffer, plus SYN and FIN.
	out := c.sndMax.Size(c.sndUna)
	extra := uint32(0)
	if c.sndUna == c.iss {
		extra++ // our SYN is unacknowledged
	}
	if c.finQueued {
		extra++
	}
	if c.state != Closed && c.state != TimeWait && out > uint32(c.snd.n)+extra {
		return bad("%d bytes outstanding, only %d buffered (+%d for SYN/FIN)", out, c.snd.n, extra)
	}
	if c.snd.n < 0 || c.rcv.n < 0 {
		return bad("negative buffer count: snd %d rcv %d", c.snd.n, c.rcv.n)
	}
	// The FIN follows the last byte written.
	if c.finQueued && c.sndUna.LessEq(c.finSeq) {
		want := c.sndUna.Add(uint32(c.snd.n))
		if c.sndUna == c.iss {
			want = want.Add(1)
		}
		if c.state != Closed && c.state != TimeWait && c.finSeq != want {
			return bad("FIN at %d, data ends at %d", c.finSeq, want)
		}
	}
	// Out-of-order data: sorted, disjoint, non-adjacent ranges above
	// RCV.NXT, at most maxOOORanges of them.
	if len(c.ooo.set) > maxOOORanges {
		return bad("%d out-of-order ranges", len(c.ooo.set))
	}
	prev := c.rcvNxt
	for i, r := range c.ooo.set {
		if !r.start.LessThan(r.end) {
			return bad("empty out-of-order range %d: %v", i, r)
		}
		if !prev.LessThan(r.start) {
			return bad("out-of-order range %d %v not above %d", i, r, prev)
		}
		prev = r.end
	}
	// The SACK scoreboard: within [SND.UNA, SND.MAX], its byte count
	// right; and only a connection that negotiated SACK has one.
	sb := &c.sack.sb
	if len(sb.ranges) > maxOOORanges {
		return bad("%d scoreboard ranges", len(sb.ranges))
	}
	prev = c.sndUna
	var sackedBytes uint32
	for i, r := range sb.ranges {
		if !r.start.LessThan(r.end) || r.start.LessThan(prev) || (i > 0 && r.start == prev) || r.end.GreaterThan(c.sndMax) {
			return bad("scoreboard range %d %v (SND.UNA %d, SND.MAX %d)", i, r, c.sndUna, c.sndMax)
		}
		prev = r.end
		sackedBytes += r.end.Size(r.start)
	}
	if sb.bytes != sackedBytes {
		return bad("scoreboard counts %d bytes, its ranges hold %d", sb.bytes, sackedBytes)
	}
	if c.state != SynSent && c.state != Closed {
		if want := lossRecovery(&c.reno); c.sackOK {
			if c.rec != lossRecovery(&c.sack) || c.lr != &c.sack.recoveryBase {
				return bad("SACK negotiated, recovery %T", c.rec)
			}
		} else if c.rec != want || c.lr != &c.reno.recoveryBase || len(sb.ranges) > 0 {
			return bad("no SACK, recovery %T, %d scoreboard ranges", c.rec, len(sb.ranges))
		}
	}
	// Timers and the RTO.
	if c.rto <= 0 || c.rto > c.env.cfg.MaxRTO {
		return bad("RTO %v outside (0, %v]", c.rto, c.env.cfg.MaxRTO)
	}
	switch c.state {
	case Closed:
		for t := timer(0); t < numTimers; t++ {
			if c.timers.armed(t) {
				return bad("timer %v armed in CLOSED", t)
			}
		}
		if c.snd.n != 0 || c.snd.q.held() != 0 {
			return bad("send buffer holds %d bytes in CLOSED", c.snd.n)
		}
		if !c.ooo.empty() {
			return bad("out-of-order data held in CLOSED")
		}
	case TimeWait:
		for t := timer(0); t < numTimers; t++ {
			if t != timerLife && c.timers.armed(t) {
				return bad("timer %v armed in TIME-WAIT", t)
			}
		}
		if !c.timers.armed(timerLife) {
			return bad("TIME-WAIT without its 2*MSL timer")
		}
		if c.snd.n != 0 {
			return bad("send buffer holds %d bytes in TIME-WAIT", c.snd.n)
		}
		if c.sndUna != c.sndMax {
			return bad("TIME-WAIT with data or FIN unacknowledged (SND.UNA %d, SND.MAX %d)", c.sndUna, c.sndMax)
		}
	}
	if c.state.synchronized() && c.state != Closed && (c.cc == nil || c.sndMSS == 0 || c.cwnd() == 0) {
		return bad("no congestion window or MSS")
	}
	if c.sndWnd > 65535<<14 {
		return bad("SND.WND %d beyond what a scaled window can say", c.sndWnd)
	}
	if c.maxSndWnd < c.sndWnd {
		return bad("MAX.SND.WND %d < SND.WND %d", c.maxSndWnd, c.sndWnd)
	}
	if c.sndWScale > 14 || c.rcvWScale > 14 {
		return bad("window scale beyond 14: %d, %d", c.sndWScale, c.rcvWScale)
	}
	return nil
}

// rcvHeld returns how many bytes of receive buffer the connection's data
// occupies: the readable bytes and the out-of-order ones up to the end of
// the highest range.
func (c *Conn) rcvHeld() int {
	n := c.rcv.n
	if !c.ooo.empty() && !c.rdShut {
		n += int(c.ooo.set[len(c.ooo.set)-1].end.Size(c.rcvNxt))
	}
	return n
}
