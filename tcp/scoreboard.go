package tcp

import "github.com/ustack/ustack/wire"

// scoreboard is the sender's record of what the peer SACKed (RFC 6675 §3):
// the SACKed ranges above SND.UNA, and their total size. It belongs to the
// connection (Conn.sb), which keeps it up to date for every loss-recovery
// algorithm and marks the send records (sent.go) a range covers entirely
// as SACKed. From it come RFC 6675's IsLost, SetPipe and NextSeg (§4).
// It holds at most maxSACKRanges ranges, and every search in it is a
// binary search, so the work per ACK is bounded whatever SACK blocks a
// peer invents.
type scoreboard struct {
	ranges rangeSet // SACKed ranges, sorted, disjoint, within [SND.UNA, SND.MAX]
	bytes  uint32   // total size of ranges
}

// sackBlockValid reports whether block b (not a D-SACK) can be recorded
// for an ACK of ack: it reports data above the cumulative ACK (RFC 2018
// §4; one reaching down to it contradicts the ACK it came with), and
// inside what was sent.
func sackBlockValid(b wire.SACKBlock, ack, sndUna, sndMax wire.Seq) bool {
	return ack.LessThan(b.Start) && b.Start.LessThan(b.End) && !b.End.GreaterThan(sndMax) && !b.Start.LessThan(sndUna)
}

// isDSACK reports whether the first SACK block of an ACK of ack is a
// D-SACK (RFC 2883 §4): below the cumulative ACK, or inside the second
// block.
func isDSACK(blocks []wire.SACKBlock, ack wire.Seq) bool {
	if len(blocks) == 0 {
		return false
	}
	b := blocks[0]
	if b.Start.LessThan(ack) {
		return true
	}
	return len(blocks) > 1 && blocks[1].Start.LessEq(b.Start) && b.End.LessEq(blocks[1].End)
}

// covered reports whether [start, end) is SACKed already, entirely.
func (sb *scoreboard) covered(start, end wire.Seq) bool {
	i := sb.ranges.find(start)
	return i >= 0 && end.LessEq(sb.ranges[i].end)
}

// fits reports whether adding [start, end) stays within maxSACKRanges.
func (sb *scoreboard) fits(start, end wire.Seq) bool {
	i, j := sb.ranges.touching(start, end)
	return i < j || len(sb.ranges) < maxSACKRanges
}

// trimBelow drops what the cumulative ACK seq covers, and returns how
// many of those bytes had been SACKed.
func (sb *scoreboard) trimBelow(seq wire.Seq) uint32 {
	var gone uint32
	for _, r := range sb.ranges {
		if !r.start.LessThan(seq) {
			break
		}
		gone += wire.MinSeq(r.end, seq).Size(r.start)
	}
	sb.ranges.trimBelow(seq)
	sb.bytes -= gone
	return gone
}

// reset forgets everything.
func (sb *scoreboard) reset() {
	sb.ranges = sb.ranges[:0]
	sb.bytes = 0
}

// free forgets everything and lets the ranges' memory go.
func (sb *scoreboard) free() {
	sb.ranges = nil
	sb.bytes = 0
}

// skip returns seq moved past the SACKed range holding it.
func (sb *scoreboard) skip(seq wire.Seq) wire.Seq {
	if i := sb.ranges.find(seq); i >= 0 {
		return sb.ranges[i].end
	}
	return seq
}

// lostBelow returns k such that the holes below ranges 0..k are lost by
// IsLost (RFC 6675 §4: DupThresh SACKed ranges above them, or more than
// (DupThresh−1)·SMSS bytes SACKed above them), and those above range k
// are not; -1 when none is. The SACK information above a hole is the
// same for all of its bytes, and shrinks going up, so the lost holes are
// the lowest ones. O(k) from the top.
func (sb *scoreboard) lostBelow(mss uint32) int {
	var bytes uint32
	for i := len(sb.ranges) - 1; i >= 0; i-- {
		r := sb.ranges[i]
		bytes += r.end.Size(r.start)
		if len(sb.ranges)-i >= dupThresh || bytes > (dupThresh-1)*mss {
			return i
		}
	}
	return -1
}

// headLost reports whether the first unacknowledged byte is lost by the
// scoreboard's rule: RFC 6675 §5 (b) starts recovery on it even before
// DupThresh duplicate ACKs.
func (sb *scoreboard) headLost(sndUna wire.Seq, mss uint32) bool {
	return len(sb.ranges) > 0 && sb.ranges[0].start.GreaterThan(sndUna) && sb.lostBelow(mss) >= 0
}

// pipe is SetPipe (RFC 6675 §4): the bytes of the holes not deemed lost,
// plus the bytes retransmitted in this recovery (below highRxt) and not
// yet SACKed or acknowledged, plus everything sent above the highest
// SACKed byte, up to sndNxt.
func (sb *scoreboard) pipe(sndUna, sndNxt, highRxt wire.Seq, mss uint32) uint32 {
	var pipe uint32
	k := sb.lostBelow(mss)
	prev := sndUna
	for i, r := range sb.ranges {
		if prev.LessThan(r.start) {
			if i > k {
				pipe += r.start.Size(prev)
			}
			if highRxt.GreaterThan(prev) {
				pipe += wire.MinSeq(r.start, highRxt).Size(prev)
			}
		}
		prev = r.end
	}
	if prev.LessThan(sndNxt) {
		pipe += sndNxt.Size(prev)
	}
	return pipe
}

// nextLostHole is NextSeg's rule 1 (RFC 6675 §4): the first bytes at or
// above highRxt that are lost and not SACKed, at most one MSS of them.
func (sb *scoreboard) nextLostHole(sndUna, highRxt wire.Seq, mss uint32) (wire.Seq, uint32, bool) {
	k := sb.lostBelow(mss)
	prev := sndUna
	for _, r := range sb.ranges[:k+1] {
		start := wire.MaxSeq(prev, highRxt)
		if start.LessThan(r.start) {
			return start, min(r.start.Size(start), mss), true
		}
		prev = r.end
	}
	return 0, 0, false
}
