package eval

import (
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
)

// TestTargetOneFlowGigabit: issue 10's simulator target. One flow with
// the stacks' defaults (no configuration at all: the default controller,
// default buffers) on a 1 Gbit/s path with 100 ms of RTT and one
// bandwidth-delay product of queue reaches at least 90 % of the link,
// measured from 3 s (30 round trips, for slow start) to 5 s.
//
// It needs buffer auto-tuning (12.5 MB in flight) and a controller that
// keeps such a window (CUBIC, the default, with HyStart++).
func TestTargetOneFlowGigabit(t *testing.T) {
	const (
		warm = 3 * time.Second
		end  = 5 * time.Second
	)
	p := Path{Rate: 1e9, RTT: 100 * time.Millisecond}
	b, err := newBench(1, p, benchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f := b.dial(FlowSpec{})
	var at int64
	b.net.At(clock.Instant(warm), func() { at = f.Received })
	if err := b.run(end, nil); err != nil {
		t.Fatal(err)
	}
	goodput := float64(f.Received-at) * 8 / (end - warm).Seconds()
	info := f.Info()
	st := b.senderStats()
	t.Logf("%s on %s: %.0f Mbit/s from %v to %v (%.1f %% of the link); cwnd %d segments, send window %d bytes, %d retransmitted, %d RTOs",
		info.CongestionControl, p, goodput/1e6, warm, end, goodput/float64(p.Rate)*100, info.Cwnd/max(info.SndMSS, 1), info.SndWnd, st.TCP.RetransSegs, st.TCP.Timeouts)
	if goodput < 0.9*float64(p.Rate) {
		t.Errorf("goodput %.0f Mbit/s, want at least 90 %% of %s", goodput/1e6, fmtRate(p.Rate))
	}
}
