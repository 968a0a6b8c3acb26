package netem

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/wire"
)

// ecnFrame returns an Ethernet frame of size bytes carrying an IPv4
// packet with ECN codepoint ecn and a valid header checksum, seq after
// the Ethernet header's 14 bytes as frame's (in the IP header's ID and
// fragment fields, which nothing here reads).
func ecnFrame(seq uint32, size int, ecn uint8) []byte {
	f := make([]byte, size)
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := f[14:]
	ip[0], ip[1] = 0x45, ecn
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	ip[8], ip[9] = 64, wire.ProtoUDP
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint32(ip[20:], seq)
	binary.BigEndian.PutUint16(ip[10:], wire.Checksum(ip[:20], 0))
	return f
}

// TestCoDelMarks: `ustack netem`'s rate limit with CoDel and ECN marks
// ECN-capable packets CE once the queue stands above target for an
// interval, keeps their header checksums valid, and counts the marks.
func TestCoDelMarks(t *testing.T) {
	leaktest.Check(t)
	r := newRig(t, Config{AB: impair.Config{Rate: 10_000_000, AQM: impair.AQM{Kind: impair.CoDel, ECN: true}}})
	var frames [][]byte
	for i := range 300 { // 1 ms each at 10 Mbit/s: the last waits 300 ms
		frames = append(frames, ecnFrame(uint32(i), 1250, 1))
	}
	send(t, r.hostA, frames...)
	got, _ := r.atB.receive(len(frames), 5*time.Second)
	if len(got) != len(frames) {
		t.Fatalf("got %d of %d frames (CoDel with ECN drops no ECN-capable frame)", len(got), len(frames))
	}
	marked := 0
	for _, f := range got {
		ip := wire.IPv4(f[14:])
		if !ip.ChecksumValid() {
			t.Fatalf("frame %d: bad header checksum", binary.BigEndian.Uint32(f[34:]))
		}
		if ip.TOS()&3 == 3 {
			marked++
		}
	}
	st := r.br.Stats().AB.Impair
	t.Logf("%d of %d frames marked; counters %+v", marked, len(got), st)
	if marked == 0 || uint64(marked) != st.Marked || st.DroppedAQM != 0 {
		t.Errorf("%d frames arrived marked; counters %+v", marked, st)
	}
}
