package cc

import (
	"math"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
)

// TestBBRInflightFromLost checks BBRInflightLongtermFromLostPacket
// (draft-ietf-ccwg-bbr §5.5.10.2): the flight at which the loss rate of
// the segments sent crosses BBRLossThresh (2%), counting the lost segment
// byte by byte from the flight before it.
func TestBBRInflightFromLost(t *testing.T) {
	// 300 bytes lost of 10000 in flight (3%), the segment of 1000 the
	// last: before it 0 of 9000 were lost, so the rate crosses 2% after
	// x lost bytes of it where x/(9000+x) = 0.02: x = 180/0.98.
	got := inflightLongtermFromLost(10000, 300, 1000)
	if want := uint64(9000 + 183); got != want {
		t.Fatalf("inflight_longterm %d, want %d", got, want)
	}
	if r := float64(got-9000) / float64(got); math.Abs(r-bbrLossThresh) > 0.001 {
		t.Fatalf("loss rate at the bound %.4f, want %.2f", r, bbrLossThresh)
	}
	// Already above the threshold before the segment: the flight before.
	if got := inflightLongtermFromLost(10000, 1500, 1000); got != 9000 {
		t.Fatalf("inflight_longterm %d, want 9000", got)
	}
	if !inflightTooHigh(201, 10000) || inflightTooHigh(200, 10000) {
		t.Fatal("IsInflightTooHigh: the threshold is more than 2%")
	}
}

// TestBBRStartupEnds checks BBRCheckFullBWReached (§5.3.1.2): Startup
// paces at 2.77 × bw and ends after three rounds in which the delivery
// rate grew by less than 25%, then Drain paces at 0.5 × bw until the
// flight is down to one BDP, then ProbeBW_DOWN, which, the flight being
// below the BDP already, gives way to ProbeBW_CRUISE (gain 1) on the same
// ACK (BBRIsTimeToCruise).
func TestBBRStartupEnds(t *testing.T) {
	const mss = 1000
	b := NewBBR(mss)
	if b.State() != "Startup" || b.pacingGain != bbrStartupPacingGain {
		t.Fatalf("initial state %s gain %v", b.State(), b.pacingGain)
	}
	var delivered uint64
	now := clock.Instant(0)
	rate := uint64(1_000_000) // 1 MB/s, 10 ms RTT: BDP 10000
	ack := func(inflight uint32) {
		prior := delivered
		delivered += 10 * mss
		now = now.Add(10 * time.Millisecond)
		b.OnAck(now, AckSample{Acked: 10 * mss, Delivered: 10 * mss, RTT: 10 * time.Millisecond, InFlight: inflight,
			DeliveryRate: rate, SampleDelivered: 10 * mss, PriorDelivered: prior, TotalDelivered: delivered, TxInFlight: inflight})
	}
	for round := 0; round < 3; round++ {
		ack(50000)
		if b.State() != "Startup" {
			t.Fatalf("left Startup after %d flat rounds", round+1)
		}
	}
	ack(50000)
	if b.State() != "Drain" || b.pacingGain != bbrDrainPacingGain {
		t.Fatalf("after 4 flat rounds: %s gain %v, want Drain 0.5", b.State(), b.pacingGain)
	}
	if got, want := b.PacingRate(), uint64(bbrDrainPacingGain*float64(rate)*(1-bbrPacingMargin)); got != want {
		t.Fatalf("Drain pacing rate %d, want %d", got, want)
	}
	ack(9000) // the flight is below one BDP (plus the quantization budget)
	if b.State() != "ProbeBW_CRUISE" || b.pacingGain != 1 || b.bwProbeWait < 2*time.Second || b.bwProbeWait > 3*time.Second {
		t.Fatalf("after Drain: %s gain %v, probe wait %v", b.State(), b.pacingGain, b.bwProbeWait)
	}
	if b.BtlBw() != rate || b.MinRTT() != 10*time.Millisecond {
		t.Fatalf("model: bw %d min_rtt %v", b.BtlBw(), b.MinRTT())
	}
}

// TestBBRRecoveryConservation checks §5.6.4.4: on entering loss recovery
// the window is what is in flight plus what the ACK delivered (packet
// conservation), and the window saved then comes back when recovery
// ends.
func TestBBRRecoveryConservation(t *testing.T) {
	const mss = 1000
	b := NewBBR(mss)
	b.cwnd = 100 * mss
	b.OnRecoveryStart(0, 100*mss)
	b.OnAck(0, AckSample{Acked: 0, Delivered: 2 * mss, InFlight: 40 * mss, TotalDelivered: 2 * mss})
	if b.Cwnd() != 42*mss {
		t.Fatalf("cwnd in recovery %d, want in flight + delivered = 42000", b.Cwnd())
	}
	b.OnRecoveryEnd(0, 40*mss)
	if b.Cwnd() < 100*mss {
		t.Fatalf("cwnd after recovery %d, want the saved 100000 back", b.Cwnd())
	}
	if !b.SetsRecoveryWindow() || b.Ssthresh() != math.MaxUint32 {
		t.Fatal("BBR must set its own window in recovery and have no ssthresh")
	}
}

// FuzzBBR feeds BBR arbitrary sequences of samples, losses and events
// with extreme values — rates to 2⁶⁴, RTTs from 0 to an hour, flights of
// any size, time jumping by days — and checks that its window stays
// within [1 MSS, MaxCwnd] and its pacing rate positive, after every
// event: no overflow, no division by zero, no NaN.
func FuzzBBR(f *testing.F) {
	f.Add(uint16(1448), []byte{1, 0, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f.Add(uint16(1), []byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Add(uint16(65535), []byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 4, 9, 9, 9, 9, 9, 9, 1, 1, 1})
	f.Fuzz(func(t *testing.T, mss uint16, ops []byte) {
		b := &BBR{}
		b.Init(Params{MSS: uint32(mss)})
		now := clock.Instant(0)
		var delivered, lost uint64
		for len(ops) >= 9 {
			op := ops[0]
			v := uint64(0)
			for _, x := range ops[1:9] {
				v = v<<8 | uint64(x)
			}
			ops = ops[9:]
			v32 := uint32(v)
			switch op % 8 {
			case 0:
				now = now.Add(time.Duration(v % uint64(100*24*time.Hour)))
			case 1, 2:
				prior := delivered
				delivered += uint64(v32)
				b.OnAck(now, AckSample{Acked: v32, Delivered: v32, RTT: time.Duration(v % uint64(time.Hour)),
					InFlight: uint32(v >> 32), PriorInFlight: v32, DeliveryRate: v, Interval: time.Duration(v32),
					SampleDelivered: v >> 8, PriorDelivered: prior - min(prior, v>>40), TotalDelivered: delivered,
					TxInFlight: uint32(v >> 16), SampleLost: v >> 24, AppLimited: v&1 == 0, InRecovery: v&2 == 0})
			case 3:
				b.OnSent(now, v32%65536, uint32(v>>32))
			case 4:
				lost += uint64(v32 % 70000)
				b.OnLost(now, LostSegment{Bytes: v32 % 70000, TxInFlight: uint32(v >> 32), LostAtSend: lost - min(lost, v>>40), TotalLost: lost, AppLimited: v&1 == 0})
			case 5:
				b.OnRecoveryStart(now, v32)
			case 6:
				b.OnRecoveryEnd(now, v32)
			case 7:
				switch v % 4 {
				case 0:
					b.OnTimeout(now, v32)
				case 1:
					b.OnUndo(now)
				case 2:
					b.OnIdleRestart(now)
				default:
					b.Init(Params{MSS: v32 % 70000, Cwnd: uint32(v >> 32)})
				}
			}
			if w := b.Cwnd(); w < min(b.mss, MaxCwnd) || w > MaxCwnd {
				t.Fatalf("cwnd %d (MSS %d) after op %d", w, b.mss, op%8)
			}
			if b.PacingRate() == 0 {
				t.Fatalf("pacing rate 0 after op %d", op%8)
			}
		}
	})
}
