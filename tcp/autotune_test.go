package tcp

import (
	"testing"
	"time"

	"github.com/ustack/ustack/internal/chunk"
)

// bulk runs a one-way transfer from p.a to p.b for d of virtual time: the
// sender writes whenever it may, the receiver reads everything as it
// arrives, or, with perRead, perRead bytes every 10 ms of virtual time.
// It returns the bytes read and the largest flight seen.
func (p *pair) bulk(d time.Duration, perRead int) (read int64, maxFlight uint32) {
	data := make([]byte, 256<<10)
	rbuf := make([]byte, 1<<20)
	deadline := p.now.Add(d)
	nextRead := p.now
	for p.now < deadline {
		for {
			n, _ := p.a.Write(data)
			if n == 0 {
				break
			}
		}
		p.flush(p.a)
		for perRead == 0 || p.now >= nextRead {
			buf := rbuf
			if perRead > 0 {
				buf = rbuf[:perRead]
				nextRead = p.now.Add(10 * time.Millisecond)
			}
			n, _ := p.b.Read(buf)
			read += int64(n)
			if n == 0 || perRead > 0 {
				break
			}
		}
		p.flush(p.b)
		maxFlight = max(maxFlight, p.a.sndMax.Size(p.a.sndUna))
		limit := deadline
		if perRead > 0 {
			limit = min(deadline, nextRead)
		}
		if !p.step(limit) {
			if limit == deadline {
				break
			}
			p.now = max(p.now, limit) // nothing until the next read
		}
	}
	return read, maxFlight
}

// TestAutotuneGrows: on a 20 ms path that does not limit the rate, with a
// reader that keeps up, dynamic right-sizing grows the receive buffer
// round trip by round trip from 128 KiB towards its maximum, the send
// buffer follows twice the congestion window, and the flight grows well
// past what the old fixed 4 MiB buffers allowed. The SYN announced the
// window scale the maximum needs (RFC 7323 §2.3).
func TestAutotuneGrows(t *testing.T) {
	p := newPair(t, Config{}, Config{}, 10*time.Millisecond)
	p.connect()
	if ib := p.b.Info(); ib.RcvBuf != 128<<10 || ib.RcvWScale != 10 {
		t.Fatalf("receiver starts with %d bytes, window scale %d; want 131072 and 10", ib.RcvBuf, ib.RcvWScale)
	}
	if ia := p.a.Info(); ia.SndBuf != 64<<10 {
		t.Fatalf("sender starts with %d bytes", ia.SndBuf)
	}
	_, maxFlight := p.bulk(time.Second, 0)
	ia, ib := p.a.Info(), p.b.Info()
	if ib.RcvBuf <= 8<<20 || ib.RcvBuf > 32<<20 {
		t.Errorf("receive buffer %d after 1 s of a fast reader, want between 8 and 32 MiB", ib.RcvBuf)
	}
	if ia.SndBuf < 2*int(ia.Cwnd) && ia.SndBuf < 32<<20 {
		t.Errorf("send buffer %d, want twice cwnd %d (or the maximum)", ia.SndBuf, ia.Cwnd)
	}
	if maxFlight < 8<<20 {
		t.Errorf("largest flight %d bytes, want over 8 MiB", maxFlight)
	}
	if p.b.env.Stats.RcvBufGrown == 0 {
		t.Error("RcvBufGrown not counted")
	}
	t.Logf("rcvbuf %d, sndbuf %d, cwnd %d, largest flight %d", ib.RcvBuf, ia.SndBuf, ia.Cwnd, maxFlight)
}

// TestAutotuneSlowReader: dynamic right-sizing grows the buffer with what
// the application reads, not with what arrives. A reader that takes 10 KB
// every 10 ms (about 100 KB per 100 ms round trip) gets, from the first
// measured round trip, twice that plus sixteen segments, times the growth
// term for a reader that went from the initial ten segments to 100 KB
// (tcp_rcv_space_adjust gives the same on Linux): about 2 to 3 MB. Then,
// its rate steady, the buffer stops growing — where a fast reader's grows
// to the maximum — and what waits unread never exceeds it.
func TestAutotuneSlowReader(t *testing.T) {
	p := newPair(t, Config{}, Config{}, 50*time.Millisecond)
	p.connect()
	read, _ := p.bulk(2*time.Second, 10<<10)
	early := p.b.Info().RcvBuf
	more, _ := p.bulk(3*time.Second, 10<<10)
	read += more
	ib := p.b.Info()
	if ib.RcvBuf > 4<<20 {
		t.Errorf("receive buffer %d for a reader of 100 KB per round trip, want under 4 MiB", ib.RcvBuf)
	}
	if ib.RcvBuf != early {
		t.Errorf("receive buffer grew from %d to %d while the reader's rate stayed the same", early, ib.RcvBuf)
	}
	if held := p.b.rcv.n; held > ib.RcvBuf {
		t.Errorf("%d bytes held for the slow reader, more than its buffer %d", held, ib.RcvBuf)
	}
	if read < 4<<20 {
		t.Errorf("read %d bytes in 5 s, want the reader's 1 MB/s", read)
	}
	t.Logf("read %d bytes, receive buffer %d", read, ib.RcvBuf)
}

// TestAutotuneLocked: SetReadBuffer and SetWriteBuffer fix the sizes and
// turn auto-tuning off for their direction (SO_RCVBUF, SO_SNDBUF lock the
// buffer on Linux); a size set before the handshake also sets the window
// scale.
func TestAutotuneLocked(t *testing.T) {
	p := newPair(t, Config{}, Config{}, 50*time.Millisecond)
	p.a.SetWriteBuffer(200 << 10)
	p.b.SetReadBuffer(300 << 10)
	p.connect()
	if ib := p.b.Info(); ib.RcvWScale != 3 {
		t.Errorf("window scale %d for a 300 KiB buffer, want 3", ib.RcvWScale)
	}
	p.bulk(3*time.Second, 0)
	ia, ib := p.a.Info(), p.b.Info()
	if ia.SndBuf != 200<<10 || ib.RcvBuf != 300<<10 {
		t.Errorf("buffers %d and %d, want the sizes set, 204800 and 307200", ia.SndBuf, ib.RcvBuf)
	}
}

// TestAutotuneIdleHoldsNothing: however large auto-tuning made the
// buffers, a connection whose data is all read and acknowledged holds no
// buffer chunk and no send-record block.
func TestAutotuneIdleHoldsNothing(t *testing.T) {
	before := chunk.InUse()
	p := newPair(t, Config{}, Config{}, 10*time.Millisecond)
	p.connect()
	p.bulk(500*time.Millisecond, 0)
	// Stop writing; let everything drain.
	rbuf := make([]byte, 1<<20)
	for p.step(p.now.Add(5 * time.Second)) {
		for {
			n, _ := p.b.Read(rbuf)
			if n == 0 {
				break
			}
		}
		p.flush(p.b)
	}
	if p.b.Info().RcvBuf <= 1<<20 {
		t.Fatalf("the transfer did not grow the receive buffer (%d): the test tests nothing", p.b.Info().RcvBuf)
	}
	if p.a.BufferedChunks() != 0 || p.b.BufferedChunks() != 0 || p.a.sent.held() != 0 {
		t.Errorf("idle connection holds %d and %d chunks, %d record blocks", p.a.BufferedChunks(), p.b.BufferedChunks(), p.a.sent.held())
	}
	if chunk.InUse() != before {
		t.Errorf("%d chunks in use after the transfer, %d before", chunk.InUse(), before)
	}
}
