package tcp

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// What a parked record does itself (docs/ARCHITECTURE.md, "Parking idle
// connections"): the segments an idle connection gets most, handled from
// the record with exactly the effect the unparked Conn would have, so
// that keep-alive costs neither end an unpark, a rebuild and a park a
// second later. Everything else unparks (Env.HandleParked says which).
//
// Today that is the peer's keep-alive probe (RFC 9293 §3.8.4, RFC 1122
// §4.2.3.6). To add a case: find every field the Conn's path changes
// (HandleSegment, then PollTransmit for what it queued), check that the
// record holds each of them in its main part — a change to something in
// parkedCold, or that would make a cold part where there was none, must
// unpark instead —, do the same to the record, and add the case to
// TestParkedAnswersAsUnparked's keep-alive cases, which compare every
// segment with a twin that never parked.

// pfOOWAck marks a record that sent an ACK to an unacceptable segment
// within the last Config.InvalidRateLimit: the time is in the Env's
// oowQueue (Conn.lastOOWAck, the rate limit of oowAllowed), not in the
// record, which would grow for what only matters half a second.
const pfOOWAck parkFlags = 1 << 20

// oowEntry is a record's out-of-window ACK time (Conn.lastOOWAck).
type oowEntry struct {
	p  *Parked // nil once taken back (Unpark)
	at clock.Instant
}

// oowQueue keeps the times of the out-of-window ACKs parked records sent
// within the rate limit, oldest first: entries leave at the front when
// they expire (their records' pfOOWAck cleared), so it holds at most the
// records that answered in the last InvalidRateLimit. Looking a record up
// scans it, which only a second unacceptable segment within the limit,
// or an unpark within it, needs.
type oowQueue struct {
	q    []oowEntry
	head int
}

// expire drops the entries whose rate limit is over at now.
func (e *Env) oowExpire(now clock.Instant) {
	o := &e.oow
	for o.head < len(o.q) && now.Sub(o.q[o.head].at) >= e.cfg.InvalidRateLimit {
		if p := o.q[o.head].p; p != nil {
			p.flags &^= pfOOWAck
		}
		o.q[o.head] = oowEntry{}
		o.head++
	}
	switch {
	case o.head == len(o.q):
		o.q, o.head = o.q[:0], 0
	case o.head >= 64 && o.head*2 >= len(o.q):
		n := copy(o.q, o.q[o.head:])
		clear(o.q[n:])
		o.q, o.head = o.q[:n], 0
	}
}

// oowAt returns the time of p's entry; p must have pfOOWAck.
func (e *Env) oowAt(p *Parked) clock.Instant {
	if i := e.oowFind(p); i >= 0 {
		return e.oow.q[i].at
	}
	return 0
}

// oowTake returns p's out-of-window ACK time and forgets it, clearing
// pfOOWAck; p must have the flag.
func (e *Env) oowTake(p *Parked) clock.Instant {
	p.flags &^= pfOOWAck
	if i := e.oowFind(p); i >= 0 {
		e.oow.q[i].p = nil
		return e.oow.q[i].at
	}
	return 0 // not reached: a flagged record has its entry
}

// oowFind returns the index of p's entry, or -1.
func (e *Env) oowFind(p *Parked) int {
	o := &e.oow
	for i := len(o.q) - 1; i >= o.head; i-- {
		if o.q[i].p == p {
			return i
		}
	}
	return -1
}

// HandleParked handles seg, a segment for the parked connection p, from
// the record when it can: it returns ok and, if the Conn would have
// answered, the answer written into dst (n bytes; dst must hold
// wire.TCPMaxHeaderLen; the checksum field is zero, the IP header's ECN
// field Not-ECT). When it cannot (ok false), it changed nothing: the
// owner unparks the connection and gives it seg as before.
//
// The record takes the peer's keep-alive probe (RFC 9293 §3.8.4, RFC
// 1122 §4.2.3.6): an ACK carrying SEG.SEQ = RCV.NXT − 1 with no data or
// one byte, SEG.ACK = SND.NXT and no SACK blocks, whose timestamp (if
// timestamps are on) passes PAWS (RFC 7323 §5). It is unacceptable (RFC
// 9293 §3.10.7.4, "first: check sequence number"), and the Conn answers
// it with an ACK of RCV.NXT, rate-limited (Config.InvalidRateLimit), with
// a D-SACK block for a byte it already had (RFC 2883 §4); it changes
// nothing else, not even the time it last heard from the peer.
func (e *Env) HandleParked(now clock.Instant, p *Parked, seg *wire.TCPFields, dst []byte) (n int, ok bool) {
	f := p.flags
	tsOK, sackOK := f.has(pfTsOK), f.has(pfSackOK)
	if seg.Flags&^wire.TCPFlagPSH != wire.TCPFlagACK || len(seg.Payload) > 1 ||
		seg.Seq != p.rcvNxt-1 || seg.Ack != p.snd || seg.Options.NumSACK != 0 ||
		tsOK && seg.Options.HasTimestamp && tsBefore(seg.Options.TSVal, p.tsRecent) {
		return 0, false
	}
	e.oowExpire(now)
	if f.has(pfOOWAck) && now.Sub(e.oowAt(p)) < e.cfg.InvalidRateLimit {
		// An ACK went out to an unacceptable segment within the rate
		// limit: the Conn sends none now (oowAllowed) — unless it has a
		// D-SACK to send, which goes anyway, and which only the Conn
		// keeps.
		if len(seg.Payload) > 0 && sackOK {
			return 0, false
		}
		p.segsIn++
		e.tick(now)
		e.Stats.OutOfWindow++
		e.Stats.OOWRateLimited++
		e.Stats.KeepAliveParked++
		return 0, true
	}
	p.segsIn++
	e.tick(now)
	e.Stats.OutOfWindow++

	// The answer, as Conn.sendOOWAck and build make it.
	if f.has(pfOOWAck) {
		e.oowTake(p)
	}
	e.oow.q = append(e.oow.q, oowEntry{p: p, at: max(now, 1)})
	p.flags |= pfOOWAck
	out := wire.TCPFields{
		SrcPort: seg.DstPort,
		DstPort: seg.SrcPort,
		Seq:     p.snd, // ctlSeq: SND.MAX, inside the peer's window
		Ack:     p.rcvNxt,
		Flags:   wire.TCPFlagACK,
	}
	if f.has(pfEcnOK) && f.has(pfEcnEcho) {
		out.Flags |= wire.TCPFlagECE
	}
	p.flags &^= 3 << pfEcnOutShift // Not-ECT: a segment without data
	var wnd uint32
	out.Window, wnd = p.windowField(e)
	if tsOK {
		out.Options.HasTimestamp = true
		out.Options.TSVal = tsValAt(now, p.tsOffset)
		out.Options.TSEcr = p.tsRecent
	}
	if len(seg.Payload) > 0 && sackOK {
		// An old duplicate byte: reported with a D-SACK (RFC 2883 §4).
		e.Stats.DupData++
		e.Stats.DSACKSent++
		out.Options.NumSACK = 1
		out.Options.SACK[0] = wire.SACKBlock{Start: seg.Seq, End: p.rcvNxt}
	}
	hl := out.HeaderLen()
	out.EncodeHeader(dst[:hl])
	// Last.ACK.sent and the unacknowledged count are RCV.NXT and 0
	// already (a parked connection owes no ACK); RCV.ADV follows the
	// window sent.
	if k := p.cold; k != nil {
		k.lastAckSent, k.rcvUnacked = p.rcvNxt, 0
	}
	p.rcvAdv = p.rcvNxt.Add(wnd)
	p.segsOut++
	e.Stats.OutSegs++
	e.Stats.KeepAliveParked++
	return hl, true
}

// windowField is Conn.windowField for the parked connection: nothing is
// buffered.
func (p *Parked) windowField(e *Env) (uint16, uint32) {
	free := uint32(max(p.rcvBufSize, 0))
	if e.memPressure() {
		free = min(free, 4*uint32(p.advMSS))
	}
	cur := uint32(0)
	if p.rcvNxt.LessThan(p.rcvAdv) {
		cur = p.rcvAdv.Size(p.rcvNxt)
	}
	return windowFor(free, cur, uint32(p.rcvBufSize), p.rcvMSS, p.rcvWScale)
}
