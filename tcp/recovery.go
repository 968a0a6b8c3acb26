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
//   - sackRecovery (sack.go): RFC 6675 on a scoreboard (scoreboard.go),
//     when both sides agreed on SACK (RFC 2018).
//
// Another algorithm (RACK-TLP, RFC 8985; PRR, RFC 6937, for the window
// during recovery) is a new type implementing lossRecovery, in its own
// file, and one more case in selectRecovery; docs/ARCHITECTURE.md says how.

// lossRecovery is a loss-recovery algorithm. The connection calls it from
// processACK (onSACK, then onAck; not for an ACK that acknowledges
// nothing while nothing is outstanding: there is nothing to recover
// then), onRexmitTimeout (onTimeout), PollTransmit (send) and nextPiece
// (sendRoom). What every algorithm keeps — whether an episode is under way,
// the duplicate-ACK count, limited transmit's count — is its
// recoveryBase, which the connection reads directly (Conn.lr) where a
// call per segment would cost more than the answer.
type lossRecovery interface {
	// onSACK is the first thing an acceptable ACK does (RFC 9293
	// §3.10.7.4, fifth step, after the window update), before SND.UNA
	// moves: record its SACK information, and fill in a.priorInFlight,
	// a.newSACK and a.sacked.
	onSACK(a *ackEvent)
	// onAck follows once SND.UNA has moved to the ACK (when it moved:
	// a.acked > 0): count duplicate ACKs, start or end a recovery
	// episode, handle partial ACKs, and fill in a.delivered. It raises
	// the controller's OnRecoveryStart and OnRecoveryEnd; the connection
	// raises OnAck afterwards.
	onAck(now clock.Instant, a *ackEvent)
	// onTimeout reports a retransmission timeout (RFC 6298 §5.4): the
	// episode ends (RFC 6582 §3.2 step 6, RFC 6675 §5.1). The connection
	// has told the controller, and rewinds SND.NXT to SND.UNA after it.
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
	// Set by the connection when SND.UNA moves (newlyAcked).
	acked uint32        // sequence space newly acknowledged
	rtt   time.Duration // the RTT sample taken, or 0
	// Set by the recovery algorithm.
	priorInFlight uint32 // sent and neither acknowledged nor SACKed, on arrival
	newSACK       bool   // the ACK SACKed data not SACKed before
	sacked        uint32 // bytes newly SACKed
	delivered     uint32 // bytes newly acknowledged or SACKed (RFC 6937 DeliveredData)
	// wasRecovering: an episode was under way when the ACK arrived.
	wasRecovering bool
}

// selectRecovery chooses the connection's loss recovery once the
// handshake has settled SACK (RFC 2018 §2).
func (c *Conn) selectRecovery() {
	if c.sackOK {
		c.sack.init(c)
		c.rec, c.lr = &c.sack, &c.sack.recoveryBase
	} else {
		c.reno.init(c)
		c.rec, c.lr = &c.reno, &c.reno.recoveryBase
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
}

func (r *recoveryBase) init(c *Conn) {
	*r = recoveryBase{c: c, recover: c.iss}
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
