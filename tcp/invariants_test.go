package tcp

import (
	"fmt"

	"github.com/ustack/ustack/clock"
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
	// The queue is held only while it holds something.
	if c.ooo != nil && c.ooo.empty() {
		return bad("an empty out-of-order queue is held")
	}
	if c.ooo.len() > maxOOORanges {
		return bad("%d out-of-order ranges", c.ooo.len())
	}
	var oooSet rangeSet
	if c.ooo != nil {
		oooSet = c.ooo.set
	}
	prev := c.rcvNxt
	for i, r := range oooSet {
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
	sb := &c.sb
	if len(sb.ranges) > maxSACKRanges {
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
		switch {
		case c.sackOK && !c.env.cfg.NoRACK:
			r, ok := c.rec.(*rackRecovery)
			if !ok || c.lr != &r.recoveryBase || c.rack != r {
				return bad("SACK negotiated, recovery %T", c.rec)
			}
		case c.sackOK:
			s, ok := c.rec.(*sackRecovery)
			if !ok || c.lr != &s.recoveryBase || c.rack != nil {
				return bad("SACK negotiated without RACK, recovery %T", c.rec)
			}
		default:
			r, ok := c.rec.(*renoRecovery)
			if !ok || c.lr != &r.recoveryBase || c.rack != nil || len(sb.ranges) > 0 {
				return bad("no SACK, recovery %T, %d scoreboard ranges", c.rec, len(sb.ranges))
			}
		}
	}
	if err := c.checkRecords(); err != nil {
		return bad("%v", err)
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

// checkRecords checks the send records (sent.go): they cover what is
// outstanding, from the first data byte not acknowledged to SND.MAX, one
// after the other; each is on the list its flags say, the lists' byte
// counts are right, and a record is SACKed exactly when a scoreboard
// range holds it.
func (c *Conn) checkRecords() error {
	q := &c.sent
	if c.state == Closed || c.state == TimeWait {
		if !q.empty() || q.held() != 0 {
			return fmt.Errorf("%d records (%d blocks) in %v", q.count(), q.held(), c.state)
		}
		return nil
	}
	start := c.sndUna
	if c.sndUna == c.iss {
		start = c.iss.Add(1) // the SYN has no record
	}
	if q.empty() {
		if start.LessThan(c.sndMax) {
			return fmt.Errorf("no records, %d..%d outstanding", start, c.sndMax)
		}
		return nil
	}
	if q.first().start != start || q.last().end != c.sndMax {
		return fmt.Errorf("records cover %d..%d, outstanding %d..%d", q.first().start, q.last().end, start, c.sndMax)
	}
	var flight, lost uint32
	prev := start
	for i := q.head; i < q.tail; i++ {
		r := q.at(i)
		if r.start != prev || !r.start.LessThan(r.end) {
			return fmt.Errorf("record %d is %d..%d after %d", i, r.start, r.end, prev)
		}
		prev = r.end
		want := listFlight
		switch {
		case r.flags&recSACKed != 0:
			want = listNone
		case r.flags&recLost != 0:
			want = listLost
			lost += r.len()
		default:
			flight += r.len()
		}
		if r.list != want {
			return fmt.Errorf("record %d..%d flags %b on list %d", r.start, r.end, r.flags, r.list)
		}
		if covered := c.sb.covered(r.start, r.end); covered != (r.flags&recSACKed != 0) {
			return fmt.Errorf("record %d..%d SACKed %v, scoreboard holds it %v", r.start, r.end, r.flags&recSACKed != 0, covered)
		}
	}
	if flight != q.flight.bytes || lost != q.lost.bytes {
		return fmt.Errorf("lists count %d in flight and %d lost, records say %d and %d", q.flight.bytes, q.lost.bytes, flight, lost)
	}
	// The flight list is in transmission order.
	var last clock.Instant
	n := 0
	for i := q.flight.head; i != noRec; i = q.at(i).next {
		if x := q.at(i).xmit; x < last {
			return fmt.Errorf("flight list out of transmission order at %d..%d", q.at(i).start, q.at(i).end)
		} else {
			last = x
		}
		n++
	}
	for i := q.lost.head; i != noRec; i = q.at(i).next {
		n++
	}
	sacked := 0
	for i := q.head; i < q.tail; i++ {
		if q.at(i).flags&recSACKed != 0 {
			sacked++
		}
	}
	if n+sacked != q.count() {
		return fmt.Errorf("%d records, %d on lists and %d SACKed", q.count(), n, sacked)
	}
	return nil
}
