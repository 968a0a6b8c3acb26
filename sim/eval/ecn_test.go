package eval

import (
	"testing"
	"time"
)

// TestECNThroughStacks: ECN end to end through two stacks (RFC 3168):
// with ECN asked for, every data frame the sender offers the bottleneck
// is ECN-capable; CoDel marks instead of dropping, the receiver's stack
// passes the CE marks to TCP, which echoes them, and the sender's
// controller reduces as it would for a drop — so the queue stays near
// CoDel's target with no CoDel drop and no retransmission, where a sender
// that ignored the marks would fill the queue to its hard limit and lose
// from its tail. BBR, which ignores ECN (the draft's ECN response is not
// implemented), is left out.
func TestECNThroughStacks(t *testing.T) {
	for _, name := range Controllers() {
		if name == "bbr" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			ecn := RunQueue(1, name, 1, DefaultDisciplines[2], testQueue)
			drop := RunQueue(1, name, 1, DefaultDisciplines[1], testQueue)
			for _, r := range []QueueResult{ecn, drop} {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				t.Logf("%s: %.2f Mbit/s, wait mean %v p99 %v, ECT %.3f, %d marks, %d CoDel drops, %d tail drops, %d retransmitted",
					r.Discipline.Name, r.Goodput/1e6, r.DelayMean, r.DelayP99, r.ECT, r.Marks, r.AQMDrops, r.QueueDrops, r.Retrans)
			}
			if ecn.ECT < 0.99 || ecn.Marks == 0 || ecn.AQMDrops != 0 || ecn.QueueDrops != 0 || ecn.Retrans != 0 {
				t.Errorf("with ECN: ECT %.3f, %d marks, %d CoDel drops, %d tail drops, %d retransmitted",
					ecn.ECT, ecn.Marks, ecn.AQMDrops, ecn.QueueDrops, ecn.Retrans)
			}
			if ecn.DelayMean > 10*time.Millisecond || ecn.Utilization < 0.8 {
				t.Errorf("with ECN: mean wait %v, utilization %.2f; want CoDel's few milliseconds at most of the link", ecn.DelayMean, ecn.Utilization)
			}
			if drop.ECT != 0 || drop.AQMDrops == 0 {
				t.Errorf("without ECN: ECT %.3f, %d CoDel drops", drop.ECT, drop.AQMDrops)
			}
		})
	}
}
