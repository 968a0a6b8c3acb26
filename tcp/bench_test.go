package tcp

import (
	"testing"

	"github.com/ustack/ustack/wire"
)

// connBulk is a bulk transfer between two connections with nothing in
// between: no IP, no checksums, no link, no delay, so that the cost of the
// TCP core itself shows.
type connBulk struct {
	snd, rcv         *Conn
	data, buf, rbuf  []byte
	ack              []byte
	f                wire.TCPFields
	received, rounds int
}

func newConnBulk(tb testing.TB) *connBulk {
	p := newPair(tb, Config{}, Config{}, 0)
	p.connect()
	x := &connBulk{snd: p.a, rcv: p.b, data: make([]byte, 64<<10), rbuf: make([]byte, 256<<10)}
	x.buf = make([]byte, x.snd.MaxSegmentLen())
	x.ack = make([]byte, x.rcv.MaxSegmentLen())
	return x
}

// round writes 64 KiB and moves it across: every data segment to the
// receiver, which reads and acknowledges as it goes.
func (x *connBulk) round() {
	x.rounds++
	now := x.snd.lastSend + 1000
	x.snd.Write(x.data)
	for {
		n := x.snd.PollTransmit(now, x.buf)
		if n == 0 {
			break
		}
		v, _ := wire.ParseTCP(x.buf[:n])
		x.f.Decode(v)
		x.rcv.HandleSegment(now, &x.f)
		for {
			k, _ := x.rcv.Read(x.rbuf)
			x.received += k
			if k == 0 {
				break
			}
		}
		for {
			n := x.rcv.PollTransmit(now, x.ack)
			if n == 0 {
				break
			}
			v, _ := wire.ParseTCP(x.ack[:n])
			x.f.Decode(v)
			x.snd.HandleSegment(now, &x.f)
		}
	}
}

// BenchmarkConnBulk measures the TCP core alone in a bulk transfer
// (PollTransmit one segment at a time, HandleSegment, Read, Write), in
// bytes of payload per second.
func BenchmarkConnBulk(b *testing.B) {
	x := newConnBulk(b)
	for range 20 {
		x.round()
	}
	b.ReportAllocs()
	start := x.received
	b.ResetTimer()
	for range b.N {
		x.round()
	}
	b.SetBytes(int64(x.received-start) / int64(b.N))
}
