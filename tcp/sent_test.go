package tcp

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// TestSentQueueLists checks the send records' lists on their own: push,
// SACK, lose, resend and acknowledge keep the flight list in transmission
// order, the lost list in the order of loss, and the byte counts right;
// blocks are taken and given back as records come and go.
func TestSentQueueLists(t *testing.T) {
	var q sentQueue
	q.init()
	const n = 3 * recBlockLen
	for i := range n {
		q.push(wire.Seq(1000*i), wire.Seq(1000*(i+1)), 1+clockAt(i))
	}
	if q.count() != n || q.flight.bytes != n*1000 || q.held() != 3 {
		t.Fatalf("after %d pushes: %d records, %d in flight, %d blocks", n, q.count(), q.flight.bytes, q.held())
	}
	if got := q.find(1500); got != 1 || q.find(0) != 0 || q.find(1000*n) != q.tail {
		t.Fatalf("find: %d %d %d", q.find(1500), q.find(0), q.find(1000*n))
	}
	// Lose records 5 and 2 (in that order), SACK 3, resend 5.
	q.markLost(5, q.at(5))
	q.markLost(2, q.at(2))
	q.sack(3, q.at(3))
	if q.lost.head != 5 || q.at(5).next != 2 || q.lost.bytes != 2000 || q.flight.bytes != (n-3)*1000 {
		t.Fatalf("lost list head %d, bytes %d, flight %d", q.lost.head, q.lost.bytes, q.flight.bytes)
	}
	q.resent(5, q.at(5), 1+clockAt(n))
	if q.flight.tail != 5 || q.lost.head != 2 || q.at(5).flags&recRetrans == 0 {
		t.Fatalf("resent record not at the flight list's tail: tail %d, lost head %d", q.flight.tail, q.lost.head)
	}
	// Undo: the lost record goes back in flight, in its place by send
	// time: after record 1, before record 4 (3 is SACKed).
	q.unmarkLost()
	if q.at(1).next != 2 || q.at(2).next != 4 || q.at(4).prev != 2 || q.lost.head != noRec || q.lost.bytes != 0 || q.flight.bytes != (n-1)*1000 {
		t.Fatalf("unmarkLost: 1 -> %d -> %d, lost head %d, flight %d bytes", q.at(1).next, q.at(2).next, q.lost.head, q.flight.bytes)
	}
	var last clock.Instant
	for i := q.flight.head; i != noRec; i = q.at(i).next {
		if q.at(i).xmit < last || q.at(i).next != noRec && q.at(q.at(i).next).prev != i {
			t.Fatalf("flight list out of send order or badly linked at record %d", i)
		}
		last = q.at(i).xmit
	}
	if q.flight.tail != 5 {
		t.Fatalf("flight tail %d, want the resent record 5", q.flight.tail)
	}
	// Acknowledge the first block's worth and a half: a block goes back.
	for range recBlockLen {
		q.popFront()
	}
	q.trimFront(wire.Seq(1000*recBlockLen + 500))
	if q.held() != 2 || q.first().start != wire.Seq(1000*recBlockLen+500) {
		t.Fatalf("after acknowledging a block: %d blocks, first starts at %d", q.held(), q.first().start)
	}
	for !q.empty() {
		q.popFront()
	}
	if q.held() != 0 || q.flight.bytes != 0 || q.flight.head != noRec {
		t.Fatalf("empty queue holds %d blocks, %d bytes in flight", q.held(), q.flight.bytes)
	}
}

func clockAt(i int) clock.Instant { return clock.Instant(i) * clock.Instant(time.Millisecond) }

// FuzzScoreboard drives a SACK connection with a large flight and ACKs
// whose SACK blocks the fuzzer chooses — repeated, overlapping, growing
// by a byte, reversed, out of range, D-SACKs — interleaved with time
// steps (RACK's timers, probes, RTOs), writes and cumulative ACKs. After
// every step the records, the lists and the scoreboard agree
// (checkRecords, with the rest of the core's invariants), and the work
// SACK tagging did stays within a constant per block processed plus a
// constant per record ever sent: whatever a peer sends, an ACK costs
// O(log n) plus what it newly SACKs (sim TestAttackACKFlood measures
// the same in time).
func FuzzScoreboard(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{1, 10, 0, 20, 0, 1, 30, 0, 40, 0, 2, 50, 0, 60, 0, 3, 5, 0})
	f.Add([]byte{1, 0, 0, 255, 255, 1, 0, 0, 255, 255, 4, 9, 1, 0, 1, 0, 1, 0, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := runFuzzScoreboard(data); err != nil {
			t.Fatal(err)
		}
	})
}

func runFuzzScoreboard(data []byte) error {
	// SACK and timestamps on, large buffers, the peer's window wide.
	d := newFuzzDriver(0xe3)
	d.env.cfg.SndBuf = 1 << 20
	d.maxSndBuf = d.env.cfg.SndBuf
	if err := d.open(true, Established, 0xe3); err != nil {
		return err
	}
	c := d.c
	if !c.sackOK {
		return fmt.Errorf("SACK not negotiated")
	}
	blocks := 0
	ops := 0
	for len(data) >= 5 && ops < 400 {
		op, b := data[0], data[1:5]
		data = data[5:]
		ops++
		d.sentSegs, d.sent = 0, d.sent[:0]
		var err error
		switch op % 6 {
		case 0:
			err = d.write(int(binary.BigEndian.Uint16(b)) + 1)
		case 1, 2, 3:
			// An ACK at or a little above SND.UNA, with blocks.
			flight := c.sndMax.Size(c.sndUna)
			ack := c.sndUna
			if op%6 == 3 && flight > 0 {
				ack = ack.Add(uint32(b[0]) * flight / 256)
			}
			seg := d.peerSeg(c.rcvNxt, ack, wire.TCPFlagACK, 65535, 0)
			nb := int(op>>4)%4 + 1
			room := wire.TCPMaxSACKBlocks
			if c.tsOK {
				room = 3
			}
			nb = min(nb, room)
			for i := range nb {
				x := binary.BigEndian.Uint16(b[(i%2)*2:])
				start := c.sndUna.Add(uint32(x) * max(flight, 1) / 65536)
				size := uint32(b[(i+1)%4]) * 97
				if op&0x8 != 0 && i == 0 {
					start = c.sndUna.Add(^uint32(0) - size) // below SND.UNA: a D-SACK
				}
				seg.Options.SACK[i] = wire.SACKBlock{Start: start, End: start.Add(size)}
				if op&0x4 != 0 {
					seg.Options.SACK[i].Start, seg.Options.SACK[i].End = seg.Options.SACK[i].End, seg.Options.SACK[i].Start
				}
			}
			seg.Options.NumSACK = uint8(nb)
			blocks += nb
			d.peerTS++
			err = d.deliver(seg)
		case 4:
			err = d.advance(time.Duration(b[0]) * time.Millisecond)
		case 5:
			err = d.ackAll(65535)
		}
		if err != nil {
			return fmt.Errorf("op %d (%d): %v", ops, op%6, err)
		}
		if err := d.check(); err != nil {
			return fmt.Errorf("op %d (%d): %v", ops, op%6, err)
		}
		if c.state != Established {
			return nil
		}
		sent := c.sent.tail // records ever pushed
		if bound := 8*uint64(blocks) + 4*sent + 64; c.env.sackWork > bound {
			return fmt.Errorf("op %d: SACK tagging visited %d ranges and records for %d blocks and %d records", ops, c.env.sackWork, blocks, sent)
		}
	}
	return nil
}
