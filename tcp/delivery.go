package tcp

import (
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/tcp/cc"
	"github.com/ustack/ustack/wire"
)

// What every ACK tells the connection about its data in flight, whatever
// loss-recovery algorithm runs: the scoreboard and the send records take
// its SACK blocks (tagSACK, Linux's tcp_sacktag_write_queue) and its
// cumulative acknowledgment (ackRecords), and the delivery-rate sampler
// (draft-cheng-iccrg-delivery-rate-estimation) counts what it delivered.
// The loss-recovery algorithm and the congestion controller then read the
// results from the ackEvent.

// minRTTWindow is how long the connection's minimum RTT is remembered
// (Linux's net.ipv4.tcp_min_rtt_wlen, 300 s), for RACK's reordering
// window (RFC 8985 §6.2) and the rate sampler.
const minRTTWindow = 300 * time.Second

// rateSampler is the connection's side of the delivery-rate estimation
// (draft-cheng-iccrg-delivery-rate-estimation §3.1): C.delivered,
// C.delivered_time, C.first_sent_time, C.app_limited, plus the bytes
// deemed lost so far (C.lost, for BBR). The sample being built for the
// ACK in progress (§3.3) is the ackEvent's rateSample, which lives in the
// Env, not in every connection.
type rateSampler struct {
	delivered     uint64
	deliveredTime clock.Instant
	firstSent     clock.Instant
	appLimited    uint64 // 0, or the delivered count at which the app-limited phase ends
	lost          uint64
}

// rateSample is the sample of the ACK in progress: from the most recently
// sent record it delivered (§3.3).
type rateSample struct {
	has            bool
	priorDelivered uint64
	priorTime      clock.Instant
	priorLost      uint64
	txInFlight     uint32
	xmit           clock.Instant
	end            wire.Seq
	sendElapsed    time.Duration
	ackElapsed     time.Duration
	isAppLimited   bool
	isRetrans      bool
}

// recordSent is the bookkeeping of a transmission of [seq, end) (a FIN
// included in end): a new record for new data, or the records covering
// a retransmission marked resent (RFC 8985's Segment.xmit_ts and
// retransmitted), and the rate sampler's snapshot (§3.2).
func (c *Conn) recordSent(now clock.Instant, seq, end wire.Seq, resend, psh bool) {
	q := &c.sent
	rs := &c.rs
	if q.empty() {
		// Nothing in flight: the send and delivery clocks start here
		// (§3.2, "if there are no packets in flight").
		rs.firstSent, rs.deliveredTime = now, now
	}
	// Records overlapping a retransmission were resent now; what lies
	// beyond the last record (new data, possibly behind resent bytes in
	// one segment after an RTO rewound SND.NXT) gets a new record.
	lastEnd := seq
	if !q.empty() {
		lastEnd = q.last().end
		if resend || seq.LessThan(lastEnd) {
			for i := q.find(seq); i < q.tail; i++ {
				r := q.at(i)
				if !r.start.LessThan(end) {
					break
				}
				q.resent(i, r, now)
				c.snapshot(r, now)
			}
		}
	}
	if end.GreaterThan(lastEnd) {
		_, r := q.push(wire.MaxSeq(seq, lastEnd), end, now)
		if c.finQueued && end == c.finSeq.Add(1) {
			r.flags |= recFIN
		}
		if psh {
			r.flags |= recPSH
		}
		c.snapshot(r, now)
	}
}

// snapshot is the rate sampler's record of a transmission (§3.2).
func (c *Conn) snapshot(r *txRecord, now clock.Instant) {
	rs := &c.rs
	r.delivered = rs.delivered
	r.deliveredTime = rs.deliveredTime
	r.firstSent = rs.firstSent
	r.lostAtSend = rs.lost
	r.inFlight = c.sent.flight.bytes
	r.flags &^= recAppLimited | recDelivered
	if rs.appLimited != 0 {
		r.flags |= recAppLimited
	}
}

// delivered counts record r as delivered by the ACK in progress, once
// (§3.3 UpdateRateSample), and takes the RTT and RACK information of the
// most recently sent record delivered.
func (c *Conn) deliveredRecord(now clock.Instant, a *ackEvent, r *txRecord, n uint32) {
	c2, rs := &c.rs, &a.rs
	if r.flags&recDelivered != 0 {
		return
	}
	r.flags |= recDelivered
	c2.delivered += uint64(n)
	c2.deliveredTime = now
	a.delivered += n
	retrans := r.flags&recRetrans != 0
	if !rs.has || r.xmit > rs.xmit || r.xmit == rs.xmit && r.end.GreaterThan(rs.end) {
		rs.has = true
		rs.priorDelivered = r.delivered
		rs.priorTime = r.deliveredTime
		rs.priorLost = r.lostAtSend
		rs.txInFlight = r.inFlight
		rs.xmit, rs.end = r.xmit, r.end
		rs.sendElapsed = r.xmit.Sub(r.firstSent)
		rs.ackElapsed = c2.deliveredTime.Sub(r.deliveredTime)
		rs.isAppLimited = r.flags&recAppLimited != 0
		rs.isRetrans = retrans
		c2.firstSent = r.xmit
	}
	// RFC 8985 §6.2 step 2: RACK takes its RTT and its newest
	// transmission from segments whose ACK cannot be for an earlier
	// transmission: not resent, or resent and acknowledged no faster
	// than the minimum RTT. As Linux (tcp_rack_advance), not by the
	// timestamp echo the RFC also allows: a receiver echoes the TSval of
	// the last in-order segment (RFC 7323 §4.3), so the ACK of a
	// resend above a hole — a tail loss probe's, with more lost before
	// it — echoes an older one, and RACK would never learn that the
	// probe arrived, leaving the hole to the RTO.
	rtt := now.Sub(r.xmit)
	if retrans {
		if !c.minRTT.Empty() && rtt < time.Duration(c.minRTT.Get()) {
			return
		}
	} else {
		if !a.hasOrig || r.end.LessThan(a.origLowEnd) {
			a.origLowEnd, a.hasOrig = r.end, true
		}
		// The RTT sample for the controller, Karn's rule applied
		// (Linux's ca_rtt_us: the newest segment newly delivered).
		if !a.hasCA || r.xmit > a.caXmit {
			a.caXmit, a.hasCA = r.xmit, true
			a.caRTT = rtt
		}
	}
	if !a.rackOK || r.xmit > a.rackXmit || r.xmit == a.rackXmit && r.end.GreaterThan(a.rackEnd) {
		a.rackOK, a.rackXmit, a.rackEnd, a.rackRTT = true, r.xmit, r.end, rtt
	}
	if !a.hasHigh || r.end.GreaterThan(a.highEnd) {
		a.highEnd, a.hasHigh = r.end, true
	}
}

// tagSACK records the SACK blocks of the ACK in a (Linux
// tcp_sacktag_write_queue): a D-SACK first block (RFC 2883 §4) is noted
// for loss recovery (RFC 3708) and left out of the scoreboard; every other
// valid block goes into the scoreboard, and the records a new part of it
// covers entirely become SACKed and delivered. Only the parts of a block
// not SACKed before are walked, so a block repeated on every ACK (as
// receivers do, and as attackers may) costs a binary search; the work is
// O(log n) per block plus O(1) per record newly SACKed.
func (c *Conn) tagSACK(now clock.Instant, a *ackEvent) {
	blocks := a.sack[:a.numSACK]
	if isDSACK(blocks, a.ack) {
		b := blocks[0]
		// A D-SACK of more than a window, or of data never sent, is
		// not believed (Linux tcp_dsack_seen).
		if b.Start.LessThan(b.End) && b.End.Size(b.Start) <= c.maxSndWnd && !b.End.GreaterThan(c.sndMax) {
			a.dsack, a.dsackStart, a.dsackEnd = true, b.Start, b.End
			c.env.Stats.DSACKRecv++
		}
		blocks = blocks[1:]
	}
	sb := &c.sb
	q := &c.sent
	for _, b := range blocks {
		if !sackBlockValid(b, a.ack, c.sndUna, c.sndMax) || sb.covered(b.Start, b.End) || !sb.fits(b.Start, b.End) {
			continue
		}
		a.newSACK = true
		// The parts of [b.Start, b.End) not SACKed before, and the
		// range they merge into.
		i, j := sb.ranges.touching(b.Start, b.End)
		merged := seqRange{b.Start, b.End}
		if i < j {
			merged.start = wire.MinSeq(merged.start, sb.ranges[i].start)
			merged.end = wire.MaxSeq(merged.end, sb.ranges[j-1].end)
		}
		cur := b.Start
		for k := i; k <= j; k++ {
			c.env.sackWork++
			gapEnd := b.End
			if k < j {
				gapEnd = wire.MinSeq(b.End, sb.ranges[k].start)
			}
			if cur.LessThan(gapEnd) {
				a.sacked += gapEnd.Size(cur)
				c.sackRecords(now, a, q, cur, gapEnd, merged)
			}
			if k < j {
				cur = wire.MaxSeq(cur, sb.ranges[k].end)
			}
		}
		sb.ranges.add(b.Start, b.End, maxSACKRanges)
	}
	sb.bytes += a.sacked
}

// sackRecords marks SACKed the records overlapping the newly SACKed part
// [start, end) that the SACKed range merged holds entirely.
func (c *Conn) sackRecords(now clock.Instant, a *ackEvent, q *sentQueue, start, end wire.Seq, merged seqRange) {
	for i := q.find(start); i < q.tail; i++ {
		c.env.sackWork++
		r := q.at(i)
		if !r.start.LessThan(end) {
			return
		}
		if r.flags&recSACKed != 0 || r.start.LessThan(merged.start) || r.end.GreaterThan(merged.end) {
			continue
		}
		q.sack(i, r)
		c.deliveredRecord(now, a, r, r.len())
	}
}

// ackRecords drops the records the cumulative ACK covers, counting those
// not SACKed before as delivered; a record the ACK covers in part is
// trimmed.
func (c *Conn) ackRecords(now clock.Instant, a *ackEvent) {
	q := &c.sent
	for !q.empty() {
		r := q.first()
		if r.end.LessEq(a.ack) {
			if r.flags&recSACKed == 0 {
				c.deliveredRecord(now, a, r, r.len())
			}
			q.popFront()
			continue
		}
		if r.start.LessThan(a.ack) {
			n := a.ack.Size(r.start)
			if r.flags&recSACKed == 0 {
				// Part of a record: its bytes are delivered, but it
				// stays for the rest (the rate sample waits for it).
				c.rs.delivered += uint64(n)
				c.rs.deliveredTime = now
				a.delivered += n
			}
			q.trimFront(a.ack)
			if r.flags&recSACKed == 0 && c.sb.covered(r.start, r.end) {
				// What is left of it was SACKed before.
				q.sack(q.head, r)
				r.flags |= recDelivered
			}
		}
		break
	}
}

// rateSample ends the rate sample of the ACK in progress (§3.3
// GenerateRateSample) and returns the delivery rate in bytes per second
// (0: no valid sample), the interval it spans, the bytes it delivered, and
// whether it was application-limited.
func (c *Conn) rateSample(a *ackEvent) (rate uint64, interval time.Duration, delivered uint64, appLimited bool) {
	cs, rs := &c.rs, &a.rs
	if cs.appLimited != 0 && cs.delivered > cs.appLimited {
		cs.appLimited = 0 // the app-limited phase is over (§3.4)
	}
	if !rs.has {
		return 0, 0, 0, false
	}
	interval = max(rs.sendElapsed, rs.ackElapsed)
	delivered = cs.delivered - rs.priorDelivered
	// An interval shorter than the minimum RTT comes from ACK
	// compression or a bad measurement: no rate from it (§3.3).
	if interval <= 0 || !c.minRTT.Empty() && interval < time.Duration(c.minRTT.Get()) {
		return 0, interval, delivered, rs.isAppLimited
	}
	rate = delivered * uint64(time.Second) / uint64(interval)
	return rate, interval, delivered, rs.isAppLimited
}

// checkAppLimited starts an application-limited phase (§3.4) when the
// application is about to write with less than a segment waiting, the
// window not full and nothing to resend: the rate samples until what is
// in flight now is delivered say so, and a controller does not take them
// for the path's capacity. As Linux, it is checked when the application
// writes (tcp_rate_check_app_limited in tcp_sendmsg).
func (c *Conn) checkAppLimited() {
	if c.cc == nil || !c.state.canSendData() {
		return
	}
	unsent := uint32(0)
	if dataEnd := c.sndUna.Add(uint32(c.snd.n)); c.sndNxt.LessThan(dataEnd) {
		unsent = dataEnd.Size(c.sndNxt)
	}
	if unsent < c.sndMSS && c.sent.flight.bytes < c.cwnd() && c.sent.lost.bytes == 0 {
		c.rs.appLimited = max(c.rs.delivered+uint64(c.sent.flight.bytes), 1)
	}
}

// reneged drops the scoreboard when the receiver showed it does not hold
// what it SACKed (RFC 2018 §8): every SACKed record goes back on the lost
// list, to be resent.
func (c *Conn) reneged() {
	c.sb.reset()
	c.sent.unsackAll()
	c.env.Stats.SACKReneging++
}

// lostRecord counts record r deemed lost (the rate sampler's C.lost) and
// tells the controller (cc.Controller.OnLost).
func (c *Conn) lostRecord(now clock.Instant, r *txRecord) {
	n := r.len()
	c.rs.lost += uint64(n)
	c.cc.OnLost(now, cc.LostSegment{
		Bytes:      n,
		TxInFlight: r.inFlight,
		LostAtSend: r.lostAtSend,
		TotalLost:  c.rs.lost,
		AppLimited: r.flags&recAppLimited != 0,
	})
}
