package tcp

import (
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// Buffer auto-tuning, as Linux does it.
//
// The receive buffer (and so the window, which is its free space) starts
// at Config.RcvBuf and grows with what the application actually reads per
// round trip — dynamic right-sizing, Linux's tcp_rcv_space_adjust: once
// per receiver-side RTT, if the application read more than in the last
// one, the buffer becomes twice that plus sixteen segments, plus twice
// the growth (a sender in slow start doubles each round trip), up to
// Config.RcvBufMax. A slow reader keeps a small buffer; a fast one lets
// the window track the bandwidth-delay product. The send buffer follows
// the congestion window: twice it (a window in flight and one queued
// behind it, as tcp_sndbuf_expand), up to Config.SndBufMax. Neither ever
// shrinks (Linux does not), and neither holds memory for what is not
// buffered: the chunks come and go with the data. SetReadBuffer and
// SetWriteBuffer fix the size and turn auto-tuning off for that
// direction, as SO_RCVBUF and SO_SNDBUF lock it on Linux.

// rcvTuner is the receive side's state: rcvq_space and rcv_rtt_est.
type rcvTuner struct {
	on        bool
	winMeasOn bool
	space     uint32        // bytes read in the last measured round trip
	read      uint64        // Conn.bytesRead when the measurement began
	at        clock.Instant // when it began
	// The receiver's RTT estimate: from the timestamp echoes of the
	// data (RFC 7323's RTTM) or, without timestamps, the time a window
	// of data takes to arrive; smoothed by 1/8.
	rtt     time.Duration
	lastEcr uint32
	winSeq  wire.Seq
	winAt   clock.Instant
}

// initRcvTuner starts the measurement when the connection is established:
// ten segments read per round trip is the baseline (tcp_init_buffer_space).
func (c *Conn) initRcvTuner(now clock.Instant) {
	t := &c.rtune
	t.space = 10 * uint32(c.advMSS)
	t.read = c.bytesRead
	t.at = now
	if c.rtt.valid() {
		t.rtt = c.rtt.srtt
	}
}

// rcvRTTSample takes the receiver's RTT sample from an arriving data
// segment (Linux's tcp_rcv_rtt_measure_ts and tcp_rcv_rtt_measure).
func (c *Conn) rcvRTTSample(now clock.Instant, seg *wire.TCPFields) {
	t := &c.rtune
	var sample time.Duration
	switch {
	case c.tsOK && seg.Options.HasTimestamp:
		ecr := seg.Options.TSEcr
		if ecr == t.lastEcr || ecr == 0 {
			return
		}
		t.lastEcr = ecr
		d := int32(c.tsVal(now) - ecr)
		if d <= 0 {
			return
		}
		sample = time.Duration(d) * time.Millisecond
	default:
		// The time a window of data takes to arrive.
		if t.winMeasOn && c.rcvNxt.LessThan(t.winSeq) {
			return
		}
		if t.winMeasOn {
			sample = now.Sub(t.winAt)
		}
		t.winMeasOn, t.winSeq, t.winAt = true, c.rcvNxt.Add(c.advertisedRemaining()), now
		if sample <= 0 {
			return
		}
		if t.rtt == 0 || sample < t.rtt {
			t.rtt = sample // a window's time only bounds the RTT from above
		}
		return
	}
	if t.rtt == 0 {
		t.rtt = sample
	} else {
		t.rtt += (sample - t.rtt) / 8
	}
}

// rcvSpaceAdjust is dynamic right-sizing (tcp_rcv_space_adjust), run as
// in-order data arrives.
func (c *Conn) rcvSpaceAdjust(now clock.Instant) {
	t := &c.rtune
	if !t.on || t.rtt <= 0 || now.Sub(t.at) < t.rtt {
		return
	}
	copied := uint32(min(c.bytesRead-t.read, 1<<31))
	if copied > t.space {
		rcvwin := 2*uint64(copied) + 16*uint64(c.advMSS)
		rcvwin += 2 * rcvwin * uint64(copied-t.space) / uint64(max(t.space, 1))
		want := int(min(rcvwin, uint64(c.env.cfg.RcvBufMax)))
		if want > int(c.rcvBufSize) {
			if want >= 2*int(c.rcvBufSize) {
				// A large window update: tell the sender soon (Linux
				// ACKs at once when the window can double).
				c.quickAcks = max(c.quickAcks, 1)
			}
			c.rcvBufSize = clampInt32(want)
			c.env.Stats.RcvBufGrown++
		}
		t.space = copied
	}
	t.read = c.bytesRead
	t.at = now
}

// sndAutotune grows the send buffer to twice the congestion window
// (tcp_sndbuf_expand), after an ACK.
func (c *Conn) sndAutotune() {
	if !c.stuneOn {
		return
	}
	want := min(2*int(c.cwnd()), c.env.cfg.SndBufMax)
	if want > int(c.sndBufSize) {
		c.sndBufSize = clampInt32(want)
		c.events |= EventWritable
	}
}
