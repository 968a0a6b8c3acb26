package tcp

import "github.com/ustack/ustack/wire"

// scoreboard is the sender's record of what the peer SACKed (RFC 6675 §3):
// the SACKed ranges above SND.UNA, and their total size. From it come
// IsLost, SetPipe and NextSeg (RFC 6675 §4). Every walk is bounded by
// maxOOORanges, so the work per ACK is bounded whatever SACK blocks a peer
// invents.
//
// It knows sequence ranges only, not transmissions: a time-based loss
// detection (RACK, RFC 8985) keeps its per-segment send times beside it,
// in a structure of its own, and uses it unchanged for what was SACKed.
type scoreboard struct {
	ranges rangeSet // SACKed ranges, sorted, disjoint, within [SND.UNA, SND.MAX]
	bytes  uint32   // total size of ranges
}

// update records the SACK blocks of an ACK of ack (RFC 6675 §5,
// "Update()"). Blocks outside [SND.UNA, SND.MAX], a D-SACK first block
// (RFC 2883 §4: below the cumulative ACK, or inside the second block),
// and blocks beyond the scoreboard's bound are ignored. It reports whether
// anything new was SACKed, and how many bytes.
func (sb *scoreboard) update(ack wire.Seq, blocks []wire.SACKBlock, sndUna, sndMax wire.Seq) (news bool, added uint32) {
	for i, b := range blocks {
		if i == 0 {
			if b.End.LessEq(ack) {
				continue // D-SACK of data below the cumulative ACK
			}
			if len(blocks) > 1 && blocks[1].Start.LessEq(b.Start) && b.End.LessEq(blocks[1].End) {
				continue // D-SACK of data inside the second block
			}
		}
		// A block reports data above the cumulative ACK (RFC 2018 §4);
		// one reaching down to it contradicts the ACK it came with.
		start, end := b.Start, b.End
		if !ack.LessThan(start) || !start.LessThan(end) || end.GreaterThan(sndMax) || start.LessThan(sndUna) {
			continue
		}
		// Only what is not already SACKed counts as new information.
		if i := sb.ranges.find(start); i < 0 || sb.ranges[i].end.LessThan(end) {
			if sb.ranges.add(start, end, maxOOORanges) {
				news = true
			}
		}
	}
	if news {
		before := sb.bytes
		sb.recount()
		added = sb.bytes - before
	}
	return news, added
}

// recount recomputes bytes from the ranges.
func (sb *scoreboard) recount() {
	var n uint32
	for _, r := range sb.ranges {
		n += r.end.Size(r.start)
	}
	sb.bytes = n
}

// trimBelow drops what the cumulative ACK seq covers, and returns how
// many of those bytes had been SACKed.
func (sb *scoreboard) trimBelow(seq wire.Seq) uint32 {
	if len(sb.ranges) == 0 {
		return 0
	}
	before := sb.bytes
	sb.ranges.trimBelow(seq)
	sb.recount()
	return before - sb.bytes
}

// reset forgets everything.
func (sb *scoreboard) reset() {
	sb.ranges = nil
	sb.bytes = 0
}

// skip returns seq moved past every SACKed range holding it.
func (sb *scoreboard) skip(seq wire.Seq) wire.Seq {
	for _, r := range sb.ranges {
		if seq.InRange(r.start, r.end) {
			seq = r.end
		}
	}
	return seq
}

// holeLost is IsLost (RFC 6675 §4) for every byte of the hole below range
// i: the SACK information above a hole is the same for all of its bytes.
func (sb *scoreboard) holeLost(i int, mss uint32) bool {
	blocks := len(sb.ranges) - i
	if blocks >= dupThresh {
		return true
	}
	var bytes uint32
	for _, r := range sb.ranges[i:] {
		bytes += r.end.Size(r.start)
	}
	return bytes > (dupThresh-1)*mss
}

// headLost reports whether the first unacknowledged byte is lost by the
// scoreboard's rule: RFC 6675 §5 (b) starts recovery on it even before
// DupThresh duplicate ACKs.
func (sb *scoreboard) headLost(sndUna wire.Seq, mss uint32) bool {
	return len(sb.ranges) > 0 && sb.ranges[0].start.GreaterThan(sndUna) && sb.holeLost(0, mss)
}

// pipe is SetPipe (RFC 6675 §4): the bytes of the holes not deemed lost,
// plus the bytes retransmitted in this recovery (below highRxt) and not
// yet SACKed or acknowledged, plus everything sent above the highest
// SACKed byte, up to sndNxt.
func (sb *scoreboard) pipe(sndUna, sndNxt, highRxt wire.Seq, mss uint32) uint32 {
	var pipe uint32
	prev := sndUna
	for i, r := range sb.ranges {
		if prev.LessThan(r.start) {
			if !sb.holeLost(i, mss) {
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
	prev := sndUna
	for i, r := range sb.ranges {
		start := wire.MaxSeq(prev, highRxt)
		if start.LessThan(r.start) && sb.holeLost(i, mss) {
			return start, min(r.start.Size(start), mss), true
		}
		prev = r.end
	}
	return 0, 0, false
}
