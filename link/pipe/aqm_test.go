package pipe

import (
	"encoding/binary"
	"testing"
	"testing/synctest"

	"github.com/ustack/ustack/impair"
	uwire "github.com/ustack/ustack/wire"
)

// ipv4Frame fills p with an Ethernet frame of n bytes carrying an IPv4
// packet with ECN codepoint ecn, a valid header checksum and seq in its
// payload.
func ipv4Frame(p []byte, n int, ecn uint8, seq uint32) {
	clear(p[:n])
	binary.BigEndian.PutUint16(p[12:], uint16(uwire.EtherTypeIPv4))
	ip := p[14:]
	ip[0], ip[1] = 0x45, ecn
	binary.BigEndian.PutUint16(ip[2:], uint16(n-14))
	ip[8], ip[9] = 64, uwire.ProtoUDP
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], uwire.Checksum(ip[:20], 0))
	binary.BigEndian.PutUint32(ip[20:], seq)
}

// TestCoDelQueue: CoDel on a pipe's bottleneck queue (impair.AQM) marks
// ECN-capable packets CE, with a valid header checksum, once the queue
// has stood above target for an interval, and drops the same packets
// when they are not ECN-capable.
func TestCoDelQueue(t *testing.T) {
	for _, ecn := range []uint8{0, 2} {
		synctest.Test(t, func(t *testing.T) {
			// 10 Mbit/s: a 1250-byte frame takes 1 ms, so the 300 frames
			// written at once wait up to 300 ms.
			a, b := New(Config{Impair: &impair.Config{Rate: 10_000_000, AQM: impair.AQM{Kind: impair.CoDel, ECN: true}}})
			defer a.Close()
			out := batch(300, 1250)
			for i := range out {
				ipv4Frame(out[i].Buf, 1250, ecn, uint32(i))
				out[i].N = 1250
			}
			if n, err := a.WriteBatch(out); n != 300 || err != nil {
				t.Fatal(n, err)
			}
			in := batch(64, 1514)
			var got, marked int
			st := a.Stats()
			for got < 300-int(st.Impair.DroppedAQM) {
				n, err := b.ReadBatch(in)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range in[:n] {
					ip := uwire.IPv4(p.Buf[14:p.N])
					if !ip.ChecksumValid() {
						t.Fatalf("frame %d: bad header checksum", binary.BigEndian.Uint32(ip[20:]))
					}
					if ip.TOS()&3 == 3 {
						marked++
					}
					got++
				}
			}
			st = a.Stats()
			t.Logf("ECN %d: %d delivered, %d marked, %d dropped by CoDel", ecn, got, marked, st.Impair.DroppedAQM)
			if ecn == 0 {
				if marked != 0 || st.Impair.DroppedAQM == 0 || st.Impair.Marked != 0 {
					t.Errorf("not ECN-capable: %d marked, stats %+v", marked, st.Impair)
				}
				return
			}
			if marked == 0 || uint64(marked) != st.Impair.Marked || st.Impair.DroppedAQM != 0 {
				t.Errorf("ECN-capable: %d marked, stats %+v", marked, st.Impair)
			}
		})
	}
}
