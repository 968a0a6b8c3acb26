package tcp

// prr is Proportional Rate Reduction (RFC 9937, which obsoletes RFC
// 6937): the window during a recovery episode (and during CWR after an
// ECN-Echo, as Linux uses it), so that what is sent over the episode
// tracks what the peer delivers, scaled down to the controller's ssthresh,
// and the flight ends the episode close to ssthresh — neither the burst of
// RFC 6675's immediate halving when losses are few, nor the stall of
// waiting for the pipe to drain when they are many.
type prr struct {
	delivered uint32 // prr_delivered: bytes delivered during the episode
	out       uint32 // prr_out: bytes sent during the episode
	recoverFS uint32 // RecoverFS: what may be delivered during the episode
	cwnd      uint32 // the window PRR set on the last ACK
}

// start is RFC 9937 §6.1's initialisation, on the ACK that starts the
// episode, with outstanding = SND.NXT − SND.UNA once it is processed,
// sackedBefore the bytes the scoreboard held SACKed before it, and acked
// the bytes it acknowledged cumulatively: RecoverFS counts what may be
// delivered during the episode — what is outstanding, less what was
// SACKed before (it will not be delivered again), plus what this ACK
// acknowledged (the per-ACK step counts it as delivered in the episode,
// as it does what the ACK SACKed, which outstanding still holds).
func (p *prr) start(outstanding, sackedBefore, acked uint32) {
	fs := outstanding - min(sackedBefore, outstanding) + acked
	*p = prr{recoverFS: max(fs, 1)}
}

// onAck is RFC 9937 §6.2's per-ACK step: given the bytes this ACK
// delivered, the bytes in flight after it, the controller's ssthresh,
// whether the ACK is "safe" (it advanced SND.UNA and showed no new loss),
// and the MSS, it returns the window: inflight plus what may be sent now
// (sndcnt). An ACK that delivered nothing leaves the window as it was.
func (p *prr) onAck(delivered, inflight, ssthresh uint32, safe bool, mss uint32) uint32 {
	if delivered == 0 {
		if p.cwnd == 0 {
			// The episode began without an ACK (RACK's reordering
			// timeout): the first resend goes at once, as the rule
			// below would have it (Linux's tcp_rack_reo_timeout counts
			// one segment delivered for it).
			p.cwnd = satAdd32(inflight, mss)
		}
		return p.cwnd
	}
	p.delivered += delivered
	var sndcnt uint32
	if inflight > ssthresh {
		// Proportional Rate Reduction: send ssthresh/RecoverFS of what
		// is delivered.
		want := (uint64(p.delivered)*uint64(ssthresh) + uint64(p.recoverFS) - 1) / uint64(p.recoverFS)
		if want > uint64(p.out) {
			sndcnt = uint32(min(want-uint64(p.out), uint64(^uint32(0))))
		}
	} else {
		// PRR-CRB (conservative reduction bound): what was delivered
		// and not yet sent, at least what this ACK delivered; PRR-SSRB
		// (slow start reduction bound) adds a segment on a safe ACK; and
		// no more than the room left below ssthresh.
		sndcnt = max(p.delivered-min(p.out, p.delivered), delivered)
		if safe {
			sndcnt += mss
		}
		sndcnt = min(ssthresh-inflight, sndcnt)
	}
	// Force a fast retransmit on entering recovery.
	if p.out == 0 && sndcnt == 0 {
		sndcnt = mss
	}
	p.cwnd = satAdd32(inflight, sndcnt)
	return p.cwnd
}

// satAdd32 adds without wrapping past the largest uint32.
func satAdd32(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint32(0)
}
