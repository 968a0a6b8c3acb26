package eval

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// TailSegments is the size, in full segments of 1448 bytes (an MSS of
// 1460 less the timestamp option), of the transfer whose tail is lost.
const TailSegments = 138

// TailRate is the bottleneck of the tail-loss runs.
const TailRate = 100e6

// TailCase is one tail-loss run: a transfer of TailSegments segments on
// a TailRate path of the given RTT, whose last Lost segments are lost on
// their first transmission.
type TailCase struct {
	CC   string
	RTT  time.Duration
	Lost int
}

// TailResult is what a tail-loss run measured.
type TailResult struct {
	TailCase
	// Size is the transfer in bytes.
	Size int64
	// Completion is the time from the dial to the receiver reading the
	// last byte.
	Completion time.Duration
	// Dropped is how many segments the link dropped (the first
	// transmissions of the last Lost segments).
	Dropped int
	// Retrans is the segments the sender retransmitted and RTOs its
	// retransmission timeouts; Counters names the sender's other
	// loss-recovery counters that moved (probes, undos), as "name n".
	Retrans, RTOs uint64
	Counters      string
	Err           error
}

// tailFilter drops the first transmission of the last tail bytes of a
// stream of size bytes: every data segment that carries a byte of them
// not dropped before (so retransmissions pass, however they are cut).
type tailFilter struct {
	size, tail int64
	isn        wire.Seq
	synSeen    bool
	dropped    []bool // per byte of the tail
	count      int
}

func (t *tailFilter) drop(_ clock.Instant, frame []byte) bool {
	if len(frame) < 14 || binary.BigEndian.Uint16(frame[12:]) != uint16(wire.EtherTypeIPv4) {
		return false
	}
	ip, err := wire.ParseIPv4(frame[14:])
	if err != nil || ip.Protocol() != wire.ProtoTCP || ip.IsFragment() {
		return false
	}
	seg, err := wire.ParseTCP(ip.Payload())
	if err != nil {
		return false
	}
	if seg.Flags()&wire.TCPFlagSYN != 0 {
		t.isn, t.synSeen = seg.Seq(), true
		return false
	}
	n := int64(len(seg.Payload()))
	if !t.synSeen || n == 0 {
		return false
	}
	off := int64(uint32(seg.Seq() - t.isn - 1)) // stream offset of the first byte
	from, to := max(off, t.size-t.tail)-(t.size-t.tail), min(off+n, t.size)-(t.size-t.tail)
	fresh := false
	for i := from; i < to; i++ {
		fresh = fresh || !t.dropped[i]
		t.dropped[i] = true
	}
	if fresh {
		t.count++
	}
	return fresh
}

// tailMSS is the payload of a full segment with timestamps.
const tailMSS = 1448

// RunTailLoss runs one tail-loss case.
func RunTailLoss(seed uint64, c TailCase) TailResult {
	r := TailResult{TailCase: c, Size: TailSegments * tailMSS}
	p := Path{Rate: TailRate, RTT: c.RTT}
	b, err := newBench(seed, p, benchConfig{cc: c.CC})
	if err != nil {
		r.Err = err
		return r
	}
	tf := &tailFilter{size: r.Size, tail: int64(c.Lost) * tailMSS, dropped: make([]bool, c.Lost*tailMSS)}
	if c.Lost > 0 {
		b.data().Filter = tf.drop
	}
	f := b.dial(FlowSpec{Size: r.Size})
	limit := 200*c.RTT + 2*time.Minute // several backed-off RTOs
	r.Err = b.run(limit, func() bool { return f.Done != clock.Never })
	if r.Err == nil && f.Done == clock.Never {
		r.Err = fmt.Errorf("transfer not done in %v", limit)
	}
	if r.Err != nil {
		return r
	}
	r.Completion = f.Done.Sub(f.Dialed)
	r.Dropped = tf.count
	st := b.senderStats()
	r.Retrans, r.RTOs = st.TCP.RetransSegs, st.TCP.Timeouts
	r.Counters = recoveryCounters(st)
	return r
}

// recoveryCounters lists the sender's loss-recovery counters that are not
// zero, besides retransmissions and RTOs (reported on their own): fast
// retransmits and recoveries, and any counter whose name speaks of
// probes, RACK, TLP, undo, spurious events, F-RTO or D-SACK, so that
// counters the TCP core gains later appear without a change here.
func recoveryCounters(st stack.Stats) string {
	var out []string
	st.Each(func(name string, v uint64) {
		if v == 0 || !strings.HasPrefix(name, "TCP.") {
			return
		}
		n := strings.TrimPrefix(name, "TCP.")
		switch n {
		case "RetransSegs", "Timeouts", "ZeroWindowProbes", "KeepAliveProbes", "DSACKSent":
			return
		case "FastRetrans", "Recoveries", "SACKRecoveries", "PartialACKs":
			out = append(out, fmt.Sprintf("%s %d", n, v))
			return
		}
		for _, k := range []string{"Probe", "RACK", "TLP", "Undo", "Spurious", "FRTO", "DSACK", "Reorder"} {
			if strings.Contains(n, k) {
				out = append(out, fmt.Sprintf("%s %d", n, v))
				return
			}
		}
	})
	sort.Strings(out)
	if len(out) == 0 {
		return "–"
	}
	return strings.Join(out, ", ")
}
