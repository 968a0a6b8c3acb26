package tcp

import (
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// Loss recovery: how duplicate ACKs and SACK information are read, when a
// recovery episode starts and ends, what is resent, and how much the
// window lets out meanwhile. The connection chooses one algorithm when
// SACK is negotiated (selectRecovery) and from then on only raises the
// events below; nothing else in the core asks which algorithm runs.
//
//   - renoRecovery (newreno.go): RFC 5681 fast retransmit and RFC 6582
//     NewReno, for peers without SACK;
//   - rackRecovery (rack.go): RACK-TLP (RFC 8985) with PRR (RFC 9937)
//     and the undo of spurious reductions (RFC 3708, RFC 4015, RFC 5682),
//     when both sides agreed on SACK (RFC 2018): the default;
//   - sackRecovery (sack.go): RFC 6675 on the scoreboard (scoreboard.go),
//     with SACK when Config.NoRACK asks for it (Linux's tcp_recovery = 0).
//
// Another algorithm is a new type implementing lossRecovery, in its own
// file, and one more case in selectRecovery; docs/ARCHITECTURE.md says how.

// lossRecovery is a loss-recovery algorithm. The connection calls it from
// processACK (onAck; not for an ACK that acknowledges nothing while
// nothing is outstanding: there is nothing to recover then),
// onRexmitTimeout (onTimeout), PollTransmit (send), nextPiece
// (sendRoom), and path MTU's MSS changes (onMSSDrop, plpmtud.go). What every algorithm keeps — whether an episode is under way,
// the duplicate-ACK count, limited transmit's count — is its
// recoveryBase, which the connection reads directly (Conn.lr) where a
// call per segment would cost more than the answer.
type lossRecovery interface {
	// onAck follows once the connection has recorded the ACK's SACK
	// blocks (Conn.tagSACK: the scoreboard, the send records, a.newSACK,
	// a.sacked, a.dsack) and moved SND.UNA to it (when it moved:
	// a.acked > 0; the records it covers are gone and a.delivered
	// counts them): count duplicate ACKs, detect losses, start or end a
	// recovery episode, handle partial ACKs. It raises the controller's
	// OnRecoveryStart and OnRecoveryEnd; the connection raises OnAck
	// afterwards.
	onAck(now clock.Instant, a *ackEvent)
	// onTimeout reports a retransmission timeout (RFC 6298 §5.4): the
	// episode ends (RFC 6582 §3.2 step 6, RFC 6675 §5.1), and what is
	// resent next is the algorithm's choice: NewReno and RFC 6675 rewind
	// SND.NXT to SND.UNA (go-back-N), RACK marks records lost. The
	// connection has told the controller.
	onTimeout(now clock.Instant)
	// send writes the next data segment or super-segment into dst (up to
	// maxSegs segments of one MSS): retransmissions the algorithm wants
	// first, then new data through the connection's sendData. It returns
	// the length written, 0 when nothing may go now. The connection calls
	// it only when there can be something: rexmitNow set, an episode
	// under way (recoveryBase.inRecovery), or data or a FIN waiting; an
	// algorithm with other reasons to send (a tail-loss probe) sets
	// rexmitNow or widens that test in poll.
	send(now clock.Instant, dst []byte, maxSegs int) int
	// window returns the congestion window in effect: the controller's,
	// or the algorithm's own during recovery (NewReno's inflated window),
	// with limited transmit's extra room (RFC 3042).
	window() uint32
	// sendRoom returns how many more bytes the window lets into the
	// network, given the outstanding SND.NXT − SND.UNA: window less what
	// counts against it (RFC 6675's pipe in SACK recovery).
	sendRoom(outstanding uint32) uint32
	// release drops what the algorithm holds (the scoreboard): the
	// connection closed or entered TIME-WAIT.
	release()
	// onMSSDrop reports that the send MSS fell below the size segments
	// in flight were sent at (a packet too big, RFC 1191 §6.5): they
	// are resent at the new size with no congestion response, as
	// Linux's tcp_simple_retransmit. NewReno and RFC 6675 go back to
	// SND.UNA; RACK marks the records larger than the MSS lost and
	// resends them in pieces.
	onMSSDrop(now clock.Instant)
}

// ackEvent carries one acceptable ACK through processACK, from the
// connection to the recovery algorithm and on to the congestion
// controller's sample. It holds what the algorithms need of the segment,
// copied: the connection keeps one in its own struct and passes that, so
// that neither it nor the segment escapes to the heap through the
// interface call.
type ackEvent struct {
	ack wire.Seq
	// dupCandidate: the ACK did not move SND.UNA (ack == SND.UNA on
	// arrival); dup5681: it is also a duplicate ACK by RFC 5681 §2's
	// definition (isDupAck).
	dupCandidate, dup5681 bool
	// The SACK blocks of the segment (RFC 2018), as received.
	numSACK uint8
	sack    [wire.TCPMaxSACKBlocks]wire.SACKBlock
	// The segment's timestamp echo, when timestamps are in use.
	tsEcr   uint32
	tsEcrOK bool
	// ECE: the segment carried ECN-Echo (RFC 3168 §6.1.2) on a
	// connection that negotiated ECN.
	ece bool
	// priorInFlight: sent and neither acknowledged nor SACKed, on
	// arrival.
	priorInFlight uint32

	// Set by the connection's SACK tagging (tagSACK): whether the ACK
	// SACKed data not SACKed before, and how many bytes; its D-SACK
	// block (RFC 2883), if one was believed.
	newSACK              bool
	sacked               uint32
	dsack                bool
	dsackStart, dsackEnd wire.Seq
	// Set by the connection when SND.UNA moves (newlyAcked).
	acked uint32        // sequence space newly acknowledged
	rtt   time.Duration // the RTT sample taken for the RTO (Karn), or 0
	// Set as records are delivered (deliveredRecord): bytes newly
	// acknowledged or SACKed (RFC 6937 DeliveredData); the newest
	// delivered record that passed RACK's checks (RFC 8985 §6.2 step 2);
	// the lowest end of a newly delivered record never resent
	// (reordering, step 3) and the highest end delivered (RACK.fack);
	// the RTT of the newest record never resent (the controller's).
	delivered  uint32
	rackOK     bool
	rackXmit   clock.Instant
	rackEnd    wire.Seq
	rackRTT    time.Duration
	hasOrig    bool
	origLowEnd wire.Seq
	hasHigh    bool
	highEnd    wire.Seq
	hasCA      bool
	caXmit     clock.Instant
	caRTT      time.Duration
	// Set by the recovery algorithm: bytes it newly deemed lost.
	newlyLost uint32
	// wasRecovering: an episode was under way when the ACK arrived.
	wasRecovering bool
	// rs is the delivery-rate sample the ACK makes (delivery.go).
	rs rateSample
}

// selectRecovery chooses the connection's loss recovery once the
// handshake has settled SACK (RFC 2018 §2).
// Only the chosen algorithm's state is allocated (once per connection,
// at the handshake; never per segment), or taken from the Env's pool of
// those parked connections gave back.
func (c *Conn) selectRecovery() {
	c.rack = nil
	spare := c.env.takeRec()
	switch {
	case c.sackOK && !c.env.cfg.NoRACK:
		r, _ := spare.(*rackRecovery)
		if r == nil {
			r = new(rackRecovery)
		}
		r.init(c)
		c.rec, c.lr, c.rack = r, &r.recoveryBase, r
	case c.sackOK:
		s, _ := spare.(*sackRecovery)
		if s == nil {
			s = new(sackRecovery)
		}
		s.init(c)
		c.rec, c.lr = s, &s.recoveryBase
	default:
		r, _ := spare.(*renoRecovery)
		if r == nil {
			r = new(renoRecovery)
		}
		r.init(c)
		c.rec, c.lr = r, &r.recoveryBase
	}
}

// releaseRecovery drops what the recovery algorithm holds (the connection
// closed or entered TIME-WAIT); a connection that never finished its
// handshake has none.
func (c *Conn) releaseRecovery() {
	if c.rec != nil {
		c.rec.release()
	}
}

// dupThresh is DupThresh (RFC 6675 §2, RFC 5681 §3.2).
const dupThresh = 3

// recoveryBase is the state every algorithm keeps about episodes and
// duplicate ACKs, and the rules they share: RFC 5681's duplicate-ACK
// counter, RFC 3042's limited transmit, and RFC 6582's "recover". Every
// algorithm embeds one; the connection points Conn.lr at it.
type recoveryBase struct {
	c          *Conn
	inRecovery bool
	// recover is one past the highest sequence number sent when the
	// last episode (or timeout) began: RFC 6582's "recover", RFC 6675's
	// RecoveryPoint. A new episode waits until SND.UNA passes it.
	recover wire.Seq
	dupAcks int
	// ltSent counts bytes sent beyond cwnd by limited transmit (RFC
	// 3042) since the last new ACK.
	ltSent uint32
	// pending: the algorithm has something of its own to send — a
	// resend of a segment it deemed lost, a probe — so the connection
	// asks it even with no new data waiting.
	pending bool
	// prrOut counts the bytes sent while inRecovery (RFC 9937's
	// prr_out); the connection adds to it, the algorithm resets it.
	prrOut uint32
	// cwrUntil: a reduction for ECN-Echo waits until SND.UNA passes it
	// (RFC 3168 §6.1.2: at most one per window of data).
	cwrUntil wire.Seq
}

func (r *recoveryBase) init(c *Conn) {
	*r = recoveryBase{c: c, recover: c.iss, cwrUntil: c.iss}
}

// ecnResponse is the reduction for an ECN-Echo (RFC 3168 §6.1.2) of an
// algorithm without a CWR state of its own (NewReno, RFC 6675): outside
// recovery, at most once per window of data, the controller reduces at
// once (its OnECE), and CWR goes on the next new data segment.
func (r *recoveryBase) ecnResponse(now clock.Instant, a *ackEvent) {
	c := r.c
	if !a.ece || r.inRecovery || c.sndUna.LessThan(r.cwrUntil) || c.sndUna.LessThan(r.recover) {
		return
	}
	r.cwrUntil = c.sndMax
	c.cc.OnECE(now, c.sndMax.Size(c.sndUna))
	c.queueCWR()
	c.env.Stats.ECNReductions++
}

// limitedWindow returns cwnd with room for limited transmit (RFC 3042
// §2) on the first two duplicate ACKs. Limited transmit is for
// "previously unsent data" (RFC 5681 §3.2 step 1): not for the go-back-N
// resending after an RTO, which would repeat segments the duplicate ACKs
// say arrived.
func (r *recoveryBase) limitedWindow() uint32 {
	w := r.c.cc.Cwnd()
	if r.dupAcks > 0 {
		w = r.limitedTransmit(w)
	}
	return w
}

func (r *recoveryBase) limitedTransmit(w uint32) uint32 {
	c := r.c
	if r.dupAcks < dupThresh && c.sndNxt == c.sndMax {
		w += uint32(r.dupAcks) * c.sndMSS
	}
	return w
}

// onSent counts what limited transmit (RFC 3042) sent beyond cwnd, to
// leave it out of FlightSize when recovery starts (RFC 5681 §3.2 step 2).
// The connection calls it for n bytes of new data from seq sent while
// duplicate ACKs are counted.
func (r *recoveryBase) onSent(seq wire.Seq, n uint32) {
	if r.inRecovery {
		return
	}
	c := r.c
	if end := seq.Size(c.sndUna) + n; end > c.cc.Cwnd() {
		r.ltSent += min(n, end-c.cc.Cwnd())
	}
}

// newAck resets the duplicate-ACK state on an ACK that moves SND.UNA.
func (r *recoveryBase) newAck() {
	r.dupAcks = 0
	r.ltSent = 0
}

// flightForEpisode is FlightSize at the start of an episode: "additional
// data sent in limited transmit MUST NOT be included in this
// calculation" (RFC 5681 §3.2 step 2). It consumes ltSent.
func (r *recoveryBase) flightForEpisode() uint32 {
	c := r.c
	out := c.sndMax.Size(c.sndUna)
	flight := out - min(r.ltSent, out)
	r.ltSent = 0
	return flight
}

// timeout ends an episode on an RTO: "recover" becomes SND.MAX (RFC 6582
// §3.2 step 6), and the duplicate-ACK count starts over.
func (r *recoveryBase) timeout() {
	c := r.c
	r.inRecovery = false
	r.recover = c.sndMax
	r.dupAcks = 0
	r.ltSent = 0
}
