package eval

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/sim"
	"github.com/ustack/ustack/wire"
)

// Discipline is a bottleneck queue of the queue-delay runs.
type Discipline struct {
	Name string
	AQM  impair.AQM
	// ECN asks the stacks for ECN (RequestECN).
	ECN bool
}

// QueueSetup is the path and the timing of the queue-delay runs.
type QueueSetup struct {
	// Path is the bottleneck; its AQM is the Discipline's.
	Path Path
	// Flows start Stagger apart; the queue is measured from Warmup to
	// Duration, sampled every Sample.
	Duration, Warmup, Sample, Stagger time.Duration
}

// DefaultQueueSetup is the published setup: 100 Mbit/s, 20 ms, and a
// deep queue of 1000 frames (121 ms at the rate: a bloated buffer,
// Linux's default txqueuelen), which CoDel keeps as its hard limit;
// measured from 5 s to 20 s.
var DefaultQueueSetup = QueueSetup{
	Path:     Path{Rate: 100e6, RTT: 20 * time.Millisecond, Queue: 1000},
	Duration: 20 * time.Second, Warmup: 5 * time.Second, Sample: time.Millisecond, Stagger: 100 * time.Millisecond,
}

// DefaultDisciplines are the published disciplines.
var DefaultDisciplines = []Discipline{
	{Name: "drop-tail"},
	{Name: "CoDel, drop", AQM: impair.AQM{Kind: impair.CoDel}},
	{Name: "CoDel, ECN", AQM: impair.AQM{Kind: impair.CoDel, ECN: true}, ECN: true},
}

// QueueFlowCounts are the numbers of flows of the published runs.
var QueueFlowCounts = []int{1, 4}

// QueueResult is what a queue-delay run measured, after the warmup.
type QueueResult struct {
	CC         string
	Flows      int
	Discipline Discipline
	// Goodput is the flows' total, bits per second; Utilization over
	// the rate.
	Goodput, Utilization float64
	// Delay is the queue's wait sampled every Sample (time average):
	// mean, median, 99th percentile and maximum. PacketMean is
	// the mean wait of the frames that passed the queue.
	DelayMean, DelayP50, DelayP99, DelayMax time.Duration
	PacketMean                              time.Duration
	// AQMDrops, Marks and QueueDrops are the bottleneck's CoDel drops,
	// CE marks and full-queue drops; Retrans the sender's retransmitted
	// segments.
	AQMDrops, Marks, QueueDrops, Retrans uint64
	// ECT is the fraction of data frames offered to the bottleneck that
	// were ECN-capable.
	ECT float64
	Err error
}

// RunQueue runs n bulk flows of controller name through the discipline
// d on the setup's path.
func RunQueue(seed uint64, name string, n int, d Discipline, setup QueueSetup) QueueResult {
	r := QueueResult{CC: name, Flows: n, Discipline: d}
	p := setup.Path
	p.AQM = d.AQM
	b, err := newBench(seed, p, benchConfig{cc: name, ecn: d.ECN})
	if err != nil {
		r.Err = err
		return r
	}
	flows := make([]*Flow, n)
	for i := range flows {
		flows[i] = b.dial(FlowSpec{Start: time.Duration(i) * setup.Stagger})
	}
	data := b.data()
	var ect, dataFrames uint64
	measuring := false
	b.net.OnFrame = func(ev *sim.FrameEvent) {
		if !measuring || ev.Kind != sim.FrameOffered || ev.Dir != data {
			return
		}
		if e, ok := dataECN(ev.Frame); ok {
			dataFrames++
			if e != 0 {
				ect++
			}
		}
	}
	var waits []time.Duration
	var start impair.Counters
	var at []int64
	b.net.At(clock.Instant(setup.Warmup), func() {
		measuring = true
		start = data.Model.Counters()
		for _, f := range flows {
			at = append(at, f.Received)
		}
		b.every(setup.Sample, func(now clock.Instant) {
			_, _, w := data.Model.Backlog(now)
			waits = append(waits, w)
		})
	})
	if r.Err = b.run(setup.Duration, nil); r.Err != nil {
		return r
	}
	var bytes int64
	for i, f := range flows {
		bytes += f.Received - at[i]
	}
	r.Goodput = float64(bytes) * 8 / (setup.Duration - setup.Warmup).Seconds()
	r.Utilization = r.Goodput / float64(p.Rate)
	if len(waits) > 0 {
		var sum time.Duration
		for _, w := range waits {
			sum += w
		}
		r.DelayMean = sum / time.Duration(len(waits))
		slices.Sort(waits)
		r.DelayP50 = waits[len(waits)/2]
		r.DelayP99 = waits[len(waits)*99/100]
		r.DelayMax = waits[len(waits)-1]
	}
	end := data.Model.Counters()
	if q := end.Queued - start.Queued; q > 0 {
		r.PacketMean = (end.QueueDelay - start.QueueDelay) / time.Duration(q)
	}
	r.AQMDrops = end.DroppedAQM - start.DroppedAQM
	r.Marks = end.Marked - start.Marked
	r.QueueDrops = end.DroppedQueue - start.DroppedQueue
	r.Retrans = b.senderStats().TCP.RetransSegs
	if dataFrames > 0 {
		r.ECT = float64(ect) / float64(dataFrames)
	}
	return r
}

// dataECN returns the ECN codepoint of an IPv4 TCP segment carrying data
// in an Ethernet frame.
func dataECN(frame []byte) (uint8, bool) {
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) != uint16(wire.EtherTypeIPv4) {
		return 0, false
	}
	ip, err := wire.ParseIPv4(frame[14:])
	if err != nil || ip.Protocol() != wire.ProtoTCP {
		return 0, false
	}
	seg, err := wire.ParseTCP(ip.Payload())
	if err != nil || len(seg.Payload()) == 0 {
		return 0, false
	}
	return ip.TOS() & 3, true
}
