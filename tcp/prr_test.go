package tcp

import "testing"

// TestPRRProportional checks RFC 9937 §6.2's proportional part: with the
// flight above ssthresh, after every ACK prr_out may reach
// ceil(prr_delivered·ssthresh/RecoverFS) and no more. Here ssthresh is
// half of RecoverFS: one segment per two delivered, and over the whole
// episode exactly ssthresh is sent.
func TestPRRProportional(t *testing.T) {
	const mss = 1000
	var p prr
	p.start(20*mss, 0, 0)
	if p.recoverFS != 20*mss {
		t.Fatalf("RecoverFS %d, want %d", p.recoverFS, 20*mss)
	}
	ssthresh := uint32(10 * mss)
	inflight := uint32(20 * mss)
	for k := 1; k <= 20; k++ {
		inflight -= mss // one segment delivered
		cwnd := p.onAck(mss, inflight, ssthresh, false, mss)
		sndcnt := cwnd - inflight
		want := (uint64(k)*mss*uint64(ssthresh)+uint64(p.recoverFS)-1)/uint64(p.recoverFS) - uint64(p.out)
		if inflight > ssthresh && uint64(sndcnt) != want {
			t.Fatalf("ACK %d: sndcnt %d, want %d", k, sndcnt, want)
		}
		// The sender sends what it may, in whole segments.
		for sndcnt >= mss {
			p.out += mss
			inflight += mss
			sndcnt -= mss
		}
	}
	if p.out != 10*mss {
		t.Fatalf("sent %d over the episode, want ssthresh %d", p.out, 10*mss)
	}
}

// TestPRRBelowSsthresh checks PRR-CRB and PRR-SSRB (RFC 9937 §6.2): at or
// below ssthresh, sndcnt is what was delivered and not yet matched by
// sends (at least this ACK's delivery), plus one segment on a safe ACK
// (SND.UNA advanced, no new loss), and never more than brings the flight
// to ssthresh.
func TestPRRBelowSsthresh(t *testing.T) {
	const mss = 1000
	var p prr
	p.start(10*mss, 0, 0)
	p.out = 1 * mss
	// 3000 delivered, 2000 in flight, ssthresh 5000: CRB gives
	// max(3000−1000, 3000) = 3000.
	if got := p.onAck(3*mss, 2*mss, 5*mss, false, mss); got != 5*mss {
		t.Fatalf("CRB: cwnd %d, want %d", got, 5*mss)
	}
	// A safe ACK adds a segment (SSRB), bounded by ssthresh − inflight.
	var q prr
	q.start(10*mss, 0, 0)
	q.out = 1 * mss
	if got := q.onAck(mss, 1*mss, 5*mss, true, mss); got != 3*mss {
		// max(1000−1000, 1000) + 1000 = 2000, below 5000−1000.
		t.Fatalf("SSRB: cwnd %d, want %d", got, 3*mss)
	}
	if got := q.onAck(mss, 4*mss, 5*mss, true, mss); got != 5*mss {
		t.Fatalf("SSRB bounded by ssthresh: cwnd %d, want %d", got, 5*mss)
	}
}

// TestPRRFirstRetransmit checks that the first ACK of an episode always
// lets the fast retransmit go (RFC 9937 §6.2: sndcnt = SMSS when prr_out
// is 0 and sndcnt would be 0), and that an episode begun without an ACK
// (RACK's reordering timeout) does too.
func TestPRRFirstRetransmit(t *testing.T) {
	const mss = 1000
	var p prr
	p.start(100*mss, 0, 0)
	// The flight is at ssthresh: PRR-CRB allows nothing, but nothing was
	// sent yet.
	if got := p.onAck(mss, 5*mss, 5*mss, false, mss); got != 6*mss {
		t.Fatalf("first ACK: cwnd %d, want inflight + one segment", got)
	}
	p.out = mss
	if got := p.onAck(mss, 5*mss, 5*mss, false, mss); got != 5*mss {
		t.Fatalf("second ACK at ssthresh: cwnd %d, want inflight", got)
	}
	var q prr
	q.start(10*mss, 0, 0)
	if got := q.onAck(0, 4*mss, 5*mss, false, mss); got != 5*mss {
		t.Fatalf("episode without an ACK: cwnd %d, want inflight + one segment", got)
	}
	// An ACK that delivered nothing changes nothing after that.
	if got := q.onAck(0, 2*mss, 5*mss, false, mss); got != 5*mss {
		t.Fatalf("ACK delivering nothing: cwnd %d, want it unchanged", got)
	}
}
