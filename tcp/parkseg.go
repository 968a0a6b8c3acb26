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
// Today that is keep-alive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6) both
// ways: the peer's probe, answered (HandleParked); our own probe, sent at
// the keep-alive deadline (TimeoutParked); and the peer's answer to it,
// or any ACK that acknowledges nothing, taken (HandleParked, parkedAck).
// To add a case: find every field the Conn's path changes
// (HandleSegment or HandleTimeout, then PollTransmit for what it
// queued), check that the
// record holds each of them in its main part — a change to something in
// parkedCold, or that would make a cold part where there was none, must
// unpark instead —, do the same to the record, and add the case to
// TestParkedKeepAliveFromRecord, which compares every segment with a
// twin that never parked.

// pfOOWAck marks a record that sent an ACK to an unacceptable segment
// within the last Config.InvalidRateLimit: the time is in the Env's
// oowQueue (Conn.lastOOWAck, the rate limit of oowAllowed), not in the
// record, which would grow for what only matters half a second.
const pfOOWAck parkFlags = 1 << 20

// What a parked record owes its peer, as the Conn's ackNow, dsackNow
// (the D-SACK of a 1-byte probe: RCV.NXT − 1 to RCV.NXT) and keepNow:
// written when its owner polls (PollParked), as the Conn's are by
// PollTransmit, and handed to the Conn by Unpark if it is rebuilt first.
const (
	pfOweAck   parkFlags = 1 << 29
	pfOweDSACK parkFlags = 1 << 30
	pfOweProbe parkFlags = 1 << 31
	pfOwe                = pfOweAck | pfOweDSACK | pfOweProbe
)

// oowEntry is a record's out-of-window ACK time (Conn.lastOOWAck).
type oowEntry struct {
	p  *Parked
	at clock.Instant
}

// oowQueue keeps the times of the out-of-window ACKs parked records sent
// within the rate limit: by record (at, for a look-up in constant time),
// and oldest first (q from head), whence they expire, their records'
// pfOOWAck cleared. It holds at most the records that answered in the
// last InvalidRateLimit. An entry of q whose record's time in at is not
// its own (taken back by Unpark, or flagged again since) is passed over.
// Keep-alive probes may come in bursts (connections set up together
// probe together): what a burst grew is given back once it has expired
// (oowShrink).
type oowQueue struct {
	at   map[*Parked]clock.Instant
	q    []oowEntry
	head int
	peak int // the most entries at held since it was made
}

// oowSmall is the size the queue keeps however little it holds: a
// steady rate of answers allocates nothing.
const oowSmall = 1024

// oowAdd notes p's out-of-window ACK at now, flagging p.
func (e *Env) oowAdd(p *Parked, now clock.Instant) {
	o := &e.oow
	if o.at == nil {
		o.at = make(map[*Parked]clock.Instant)
	}
	now = max(now, 1) // as oowAllowed: 0 is "none"
	o.at[p] = now
	o.peak = max(o.peak, len(o.at))
	o.q = append(o.q, oowEntry{p, now})
	p.flags |= pfOOWAck
}

// oowExpire drops the entries whose rate limit is over at now. Every
// call on a parked record (HandleParked, TimeoutParked, Unpark) runs it:
// at constant cost when nothing expires.
func (e *Env) oowExpire(now clock.Instant) {
	o := &e.oow
	if o.head == len(o.q) || now.Sub(o.q[o.head].at) < e.cfg.InvalidRateLimit {
		return
	}
	for o.head < len(o.q) && now.Sub(o.q[o.head].at) >= e.cfg.InvalidRateLimit {
		if x := o.q[o.head]; x.p.flags.has(pfOOWAck) && o.at[x.p] == x.at {
			x.p.flags &^= pfOOWAck
			delete(o.at, x.p)
		}
		o.q[o.head] = oowEntry{}
		o.head++
	}
	n := len(o.q) - o.head
	switch {
	case o.peak > oowSmall && len(o.at) < o.peak/4:
		// A burst expired: make the queue again at the size it holds
		// (a map never shrinks).
		q := make([]oowEntry, n, max(2*n, 16))
		copy(q, o.q[o.head:])
		at := make(map[*Parked]clock.Instant, len(o.at))
		for p, t := range o.at {
			at[p] = t
		}
		o.q, o.head, o.at, o.peak = q, 0, at, len(at)
	case n == 0:
		o.q, o.head = o.q[:0], 0
	case o.head >= 64 && o.head*2 >= len(o.q):
		copy(o.q, o.q[o.head:])
		clear(o.q[n:])
		o.q, o.head = o.q[:n], 0
	}
}

// oowTake returns p's out-of-window ACK time and forgets it, clearing
// pfOOWAck; p must have the flag.
func (e *Env) oowTake(p *Parked) clock.Instant {
	p.flags &^= pfOOWAck
	at := e.oow.at[p]
	delete(e.oow.at, p)
	return at
}

// HandleParked handles seg, a segment for the parked connection p, from
// the record when it can: it returns ok, and send if the record now has
// a segment to send (the owner then calls PollParked, as it would call
// the Conn's PollTransmit). When it cannot (ok false), it changed
// nothing: the owner unparks the connection and gives it seg as before.
//
// The record takes the peer's keep-alive probe (RFC 9293 §3.8.4, RFC
// 1122 §4.2.3.6): an ACK carrying SEG.SEQ = RCV.NXT − 1 with no data or
// one byte, SEG.ACK = SND.NXT and no SACK blocks, whose timestamp (if
// timestamps are on) passes PAWS (RFC 7323 §5). It is unacceptable (RFC
// 9293 §3.10.7.4, "first: check sequence number"), and the Conn answers
// it with an ACK of RCV.NXT, rate-limited (Config.InvalidRateLimit), with
// a D-SACK block for a byte it already had (RFC 2883 §4); it changes
// nothing else, not even the time it last heard from the peer. It also
// takes an ACK at RCV.NXT that acknowledges nothing, such as the answer
// to our own probe (parkedAck says which), which the Conn takes without
// answering.
func (e *Env) HandleParked(now clock.Instant, p *Parked, seg *wire.TCPFields) (send, ok bool) {
	e.oowExpire(now)
	f := p.flags
	tsOK, sackOK := f.has(pfTsOK), f.has(pfSackOK)
	if seg.Seq == p.rcvNxt {
		return false, e.parkedAck(now, p, seg)
	}
	if seg.Flags&^wire.TCPFlagPSH != wire.TCPFlagACK || len(seg.Payload) > 1 ||
		seg.Seq != p.rcvNxt-1 || seg.Ack != p.snd || seg.Options.NumSACK != 0 ||
		tsOK && seg.Options.HasTimestamp && tsBefore(seg.Options.TSVal, p.tsRecent) {
		return false, false
	}
	if f.has(pfOOWAck) && now.Sub(e.oow.at[p]) < e.cfg.InvalidRateLimit {
		// An ACK went out to an unacceptable segment within the rate
		// limit: the Conn sends none now (oowAllowed) — unless it has a
		// D-SACK to send, which goes anyway, and which only the Conn
		// keeps.
		if len(seg.Payload) > 0 && sackOK {
			return false, false
		}
		p.segsIn++
		e.tick(now)
		e.Stats.OutOfWindow++
		e.Stats.OOWRateLimited++
		e.Stats.KeepAliveParked++
		return false, true
	}
	p.segsIn++
	e.tick(now)
	e.Stats.OutOfWindow++

	// The answer, as Conn.sendOOWAck and build make it.
	e.oowAdd(p, now)
	if len(seg.Payload) > 0 && sackOK {
		// An old duplicate byte: reported with a D-SACK (RFC 2883 §4).
		e.Stats.DupData++
		p.flags |= pfOweDSACK
	}
	p.flags |= pfOweAck
	e.Stats.KeepAliveParked++
	return true, true
}

// parkedAck takes seg, a segment at RCV.NXT, if it is an ACK the Conn
// would take without sending anything or changing what the record does
// not hold: no data, SYN, FIN, RST or CWR, SEG.ACK = SND.NXT (nothing
// acknowledged: nothing is in flight), no SACK blocks, our window open
// (a zero one makes the Conn answer, MUST-66), and with timestamps on a
// timestamp that passes PAWS (which then becomes TS.Recent, RFC 7323
// §4.3, at the time the record keeps as the last arrival). The peer's
// answer to our keep-alive probe is such an ACK, as is a window update.
// The Conn then notes that it heard from the peer (the time, and no
// probe unanswered), takes the window (RFC 9293 §3.10.7.4, fifth step:
// SND.WND, SND.WL1, SND.WL2; nothing waits to be sent), and sends
// nothing.
func (e *Env) parkedAck(now clock.Instant, p *Parked, seg *wire.TCPFields) bool {
	f := p.flags
	wnd := uint32(seg.Window) << p.sndWScale
	if seg.Flags&^(wire.TCPFlagPSH|wire.TCPFlagECE) != wire.TCPFlagACK || len(seg.Payload) != 0 ||
		seg.Ack != p.snd || seg.Options.NumSACK != 0 ||
		!p.rcvNxt.LessThan(p.rcvAdv) {
		return false
	}
	if f.has(pfTsOK) {
		if !seg.Options.HasTimestamp || tsBefore(seg.Options.TSVal, p.tsRecent) {
			// Without one, TS.Recent's time would no longer be the
			// last arrival (coldBase); a PAWS failure is answered.
			return false
		}
		if p.cold != nil && p.cold.lastAckSent != p.rcvNxt {
			return false
		}
	}
	if !p.setKeepProbes(0) {
		return false
	}
	p.segsIn++
	e.tick(now)
	p.lastRecv = now
	// The window update (RFC 9293 §3.10.7.4, fifth step; processACK).
	if p.sndWl1.LessThan(seg.Seq) || p.sndWl1 == seg.Seq && p.sndWl2.LessEq(seg.Ack) {
		p.sndWnd = wnd
		p.sndWl1, p.sndWl2 = seg.Seq, seg.Ack
		p.maxSndWnd = max(p.maxSndWnd, wnd)
	}
	if f.has(pfTsOK) {
		p.tsRecent = seg.Options.TSVal
		if p.cold != nil {
			p.cold.tsRecentAt = now
		}
	}
	e.Stats.KeepAliveParked++
	return true
}

// TimeoutParked runs the parked connection p's keep-alive timer
// (Parked.NextDeadline) from the record when it can, as Conn's
// HandleTimeout would: it returns ok, and send if the record now has a
// keep-alive probe to send (the owner then calls PollParked). When the
// probes are used up (the Conn resets the connection) it changes
// nothing and returns false: the owner unparks the connection and calls
// HandleTimeout.
//
// The probe is an ACK carrying SND.NXT − 1 (RFC 1122 §4.2.3.6, RFC 9293
// §3.8.4); the peer's answer, an ACK at RCV.NXT, is taken by
// HandleParked.
func (e *Env) TimeoutParked(now clock.Instant, p *Parked) (send, ok bool) {
	e.tick(now) // as HandleTimeout
	e.oowExpire(now)
	pr := p.prof
	switch {
	case p.keepAt > now:
		return false, true // not due
	case !p.flags.has(pfKeepAlive):
		p.keepAt = clock.Never
		return false, true
	case now.Sub(p.lastRecv) < pr.keepIdle:
		// Heard from the peer since the probe: not idle long enough.
		p.setKeepProbes(0) // never fails: 0 is in the flags
		p.keepAt = p.lastRecv.Add(pr.keepIdle)
		return false, true
	}
	if k := p.keepProbes(); k >= pr.keepCount || !p.setKeepProbes(k+1) {
		return false, false // the Conn resets the connection
	}
	p.keepAt = now.Add(pr.keepIntvl)
	p.flags |= pfOweProbe
	e.Stats.KeepAliveParked++
	return true, true
}

// PollParked is the Conn's PollTransmit for the parked connection p: it
// writes the segment the record owes (HandleParked, TimeoutParked) into
// dst — from localPort to remotePort; dst must hold wire.TCPMaxHeaderLen;
// the checksum field is zero, the IP header's ECN field Not-ECT — and
// returns its length, or 0 when it owes none. As Conn.poll: a keep-alive
// probe (SND.NXT − 1) first, which carries the ACK and a D-SACK owed;
// else the ACK.
func (e *Env) PollParked(now clock.Instant, p *Parked, localPort, remotePort uint16, dst []byte) int {
	f := p.flags
	if f&pfOwe == 0 {
		return 0
	}
	p.flags &^= pfOwe
	var dsack *wire.SACKBlock
	if f.has(pfOweDSACK) {
		dsack = &wire.SACKBlock{Start: p.rcvNxt - 1, End: p.rcvNxt}
	}
	if f.has(pfOweProbe) {
		e.Stats.KeepAliveProbes++
		return p.build(e, now, localPort, remotePort, p.snd-1, dsack, dst)
	}
	// ctlSeq: SND.MAX, inside the peer's window.
	return p.build(e, now, localPort, remotePort, p.snd, dsack, dst)
}

// build writes the ACK the Conn's build would (a control segment:
// Conn.poll's keep-alive probe, or the ACK of sendOOWAck) with seq, and
// dsack as its one SACK block if not nil, and moves what it moves.
func (p *Parked) build(e *Env, now clock.Instant, localPort, remotePort uint16, seq wire.Seq, dsack *wire.SACKBlock, dst []byte) int {
	f := p.flags
	out := wire.TCPFields{
		SrcPort: localPort,
		DstPort: remotePort,
		Seq:     seq,
		Ack:     p.rcvNxt,
		Flags:   wire.TCPFlagACK,
	}
	if f.has(pfEcnOK) && f.has(pfEcnEcho) {
		out.Flags |= wire.TCPFlagECE
	}
	p.flags &^= 3 << pfEcnOutShift // Not-ECT: a segment without data
	var wnd uint32
	out.Window, wnd = p.windowField(e)
	if f.has(pfTsOK) {
		out.Options.HasTimestamp = true
		out.Options.TSVal = tsValAt(now, p.tsOffset)
		out.Options.TSEcr = p.tsRecent
	}
	if dsack != nil {
		e.Stats.DSACKSent++
		out.Options.NumSACK = 1
		out.Options.SACK[0] = *dsack
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
	return hl
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
