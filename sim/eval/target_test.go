package eval

import (
	"fmt"
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

// TestRTOsCubicNotWorseThanReno is issue 10's RTO question in the
// simulator: interop's TestImpaired saw the stack's CUBIC take 7 RTOs at
// 1 % loss where Reno took 1 through the same seeded netem. Here the two
// controllers cross the same short path with TestImpaired's losses —
// random, in both directions (data and ACKs), 1 % and 5 % — at 2 Gbit/s
// with an RTT of 1 ms and of 100 µs (the bridge's is well under a
// millisecond), four seeds each, 8 MiB or 3 s (Reno at 5 % does not
// always finish). Were CUBIC's extra RTOs a recovery bug — a lost
// retransmission or tail that RACK-TLP misses when the window is larger
// — CUBIC would time out more often than Reno through the same losses
// here. It does not (BENCHMARKS.md has the counts).
func TestRTOsCubicNotWorseThanReno(t *testing.T) {
	for _, loss := range []float64{0.01, 0.05} {
		for _, rtt := range []time.Duration{time.Millisecond, 100 * time.Microsecond} {
			p := Path{Rate: 2e9, RTT: rtt, Loss: loss, AckLoss: loss}
			rtos := map[string]uint64{}
			for _, cc := range []string{"cubic", "reno"} {
				for seed := uint64(1); seed <= 4; seed++ {
					n, err := runRTOs(seed, p, cc, 8<<20, 3*time.Second)
					if err != nil {
						t.Fatalf("%s, %v, seed %d: %v", cc, p, seed, err)
					}
					rtos[cc] += n
				}
			}
			t.Logf("%v: RTOs cubic %d, reno %d", p, rtos["cubic"], rtos["reno"])
			if loss == 0.01 && rtos["cubic"] > 1 {
				t.Errorf("%v: CUBIC took %d RTOs in four 8 MiB transfers; RACK-TLP should recover 1%% random loss without them", p, rtos["cubic"])
			}
			if rtos["cubic"] > rtos["reno"] {
				t.Errorf("%v: CUBIC took %d RTOs, Reno %d through the same losses", p, rtos["cubic"], rtos["reno"])
			}
		}
	}
}

// runRTOs runs one bulk flow with controller cc on p until the receiver
// has read size bytes or d has passed, and returns the sender's RTOs.
func runRTOs(seed uint64, p Path, cc string, size int64, d time.Duration) (uint64, error) {
	b, err := newBench(seed, p, benchConfig{cc: cc})
	if err != nil {
		return 0, err
	}
	f := b.dial(FlowSpec{})
	if err := b.run(d, func() bool { return f.Received >= size }); err != nil {
		return 0, err
	}
	if f.Received == 0 {
		return 0, fmt.Errorf("nothing received in %v", d)
	}
	return b.senderStats().TCP.Timeouts, nil
}
