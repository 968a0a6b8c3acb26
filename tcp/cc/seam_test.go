package cc_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/tcp/cc"
	"github.com/ustack/ustack/wire"
)

// These tests plug controllers of their own into real connections through
// the public API only (cc.Register, tcp.Config.Congestion,
// SetCongestionControl): the proof that the seam is one.

// fixed is a controller with a constant window: Base gives every hook.
type fixed struct {
	cc.Base
	w uint32
}

func (f *fixed) Name() string { return "test-fixed" }
func (f *fixed) Cwnd() uint32 { return f.w }

// paced has a window too large to matter and a constant pacing rate.
type paced struct {
	cc.Base
	rate uint64
}

func (p *paced) Name() string       { return "test-paced" }
func (p *paced) Cwnd() uint32       { return 1 << 30 }
func (p *paced) PacingRate() uint64 { return p.rate }

const (
	fixedWindow = 4 * 1448 // less than the initial window of ten segments
	pacingRate  = 2_000_000
)

func init() {
	for name, f := range map[string]cc.Factory{
		"test-fixed": func() cc.Controller { return &fixed{w: fixedWindow} },
		"test-paced": func() cc.Controller { return &paced{rate: pacingRate} },
	} {
		if err := cc.Register(name, f); err != nil {
			panic(err)
		}
	}
}

// link joins a sender and a receiver with a one-way delay, in virtual
// time, using only package tcp's exported API.
type link struct {
	t     *testing.T
	now   clock.Instant
	snd   *tcp.Conn
	rcv   *tcp.Conn
	delay time.Duration
	queue []packet
	buf   []byte
	// onSend sees every segment the sender writes, with its time.
	onSend func(now clock.Instant, seg *wire.TCPFields)
	// late delays the sender's timers: its owner handles each deadline
	// that much after it passed, as a real runtime's timers fire late.
	late time.Duration
}

// sndDeadline is when the sender's owner handles its next deadline.
func (l *link) sndDeadline() clock.Instant {
	d := l.snd.NextDeadline()
	if d == clock.Never {
		return d
	}
	return d.Add(l.late)
}

type packet struct {
	at   clock.Instant
	to   *tcp.Conn
	data []byte
}

var (
	sndAddr = netip.MustParseAddrPort("10.0.0.1:40000")
	rcvAddr = netip.MustParseAddrPort("10.0.0.2:80")
)

func newLink(t *testing.T, cfg tcp.Config) *link {
	l := &link{
		t:     t,
		snd:   tcp.NewConn(tcp.NewEnv(cfg)),
		rcv:   tcp.NewConn(tcp.NewEnv(tcp.Config{})),
		delay: 10 * time.Millisecond,
		buf:   make([]byte, 70000),
	}
	return l
}

func (l *link) connect() {
	l.t.Helper()
	if err := l.snd.Connect(l.now, tcp.Endpoints{Local: sndAddr, Remote: rcvAddr, ISS: 1, MTU: 1500}); err != nil {
		l.t.Fatal(err)
	}
	n := l.snd.PollTransmit(l.now, l.buf)
	var syn wire.TCPFields
	v, err := wire.ParseTCP(l.buf[:n])
	if err != nil {
		l.t.Fatal(err)
	}
	syn.Decode(v)
	l.now = l.now.Add(l.delay)
	if err := l.rcv.OpenPassive(l.now, tcp.Endpoints{Local: rcvAddr, Remote: sndAddr, ISS: 1000, MTU: 1500}, &syn); err != nil {
		l.t.Fatal(err)
	}
	l.flush(l.rcv)
	l.run(l.now.Add(time.Second), nil)
	if l.snd.State() != tcp.Established || l.rcv.State() != tcp.Established {
		l.t.Fatalf("handshake: %v, %v", l.snd.State(), l.rcv.State())
	}
}

func (l *link) flush(c *tcp.Conn) {
	to := l.snd
	if c == l.snd {
		to = l.rcv
	}
	for {
		n := c.PollTransmit(l.now, l.buf)
		if n == 0 {
			return
		}
		data := append([]byte(nil), l.buf[:n]...)
		if c == l.snd && l.onSend != nil {
			var f wire.TCPFields
			v, _ := wire.ParseTCP(data)
			f.Decode(v)
			l.onSend(l.now, &f)
		}
		l.queue = append(l.queue, packet{at: l.now.Add(l.delay), to: to, data: data})
	}
}

// run delivers segments and fires timers until limit or until done says
// to stop; the receiver reads everything.
func (l *link) run(limit clock.Instant, done func() bool) {
	rbuf := make([]byte, 1<<20)
	for done == nil || !done() {
		next := clock.Min(l.sndDeadline(), l.rcv.NextDeadline())
		qi := -1
		for i, p := range l.queue {
			if p.at <= next && (qi < 0 || p.at < l.queue[qi].at) {
				qi, next = i, p.at
			}
		}
		if next > limit || next == clock.Never {
			return
		}
		l.now = max(l.now, next)
		if qi >= 0 {
			p := l.queue[qi]
			l.queue = append(l.queue[:qi], l.queue[qi+1:]...)
			var f wire.TCPFields
			v, _ := wire.ParseTCP(p.data)
			f.Decode(v)
			p.to.HandleSegment(l.now, &f)
		}
		if l.sndDeadline() <= l.now {
			l.snd.HandleTimeout(l.now)
		}
		if l.rcv.NextDeadline() <= l.now {
			l.rcv.HandleTimeout(l.now)
		}
		for {
			n, _ := l.rcv.Read(rbuf)
			if n == 0 {
				break
			}
		}
		l.flush(l.rcv)
		l.flush(l.snd)
	}
}

// TestFixedWindowController plugs a fixed-window controller into a
// connection by name — per stack (Config.Congestion) and per connection
// (SetCongestionControl, before the handshake and on an open connection)
// — and checks that the flight never exceeds its window and fills it,
// where the default controller's initial window alone would exceed it.
func TestFixedWindowController(t *testing.T) {
	for _, how := range []string{"config", "before connect", "after connect", "default"} {
		cfg := tcp.Config{}
		if how == "config" {
			cfg.Congestion = "test-fixed"
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
		}
		l := newLink(t, cfg)
		if how == "before connect" {
			if err := l.snd.SetCongestionControl("test-fixed"); err != nil {
				t.Fatal(err)
			}
		}
		l.connect()
		if how == "after connect" {
			if err := l.snd.SetCongestionControl("test-fixed"); err != nil {
				t.Fatal(err)
			}
		}
		maxFlight := uint32(0)
		l.onSend = func(now clock.Instant, seg *wire.TCPFields) {
			info := l.snd.Info()
			maxFlight = max(maxFlight, info.SndMax.Size(info.SndUna))
		}
		data := make([]byte, 1<<20)
		sent := 0
		l.run(l.now.Add(time.Minute), func() bool {
			if sent < len(data) {
				n, _ := l.snd.Write(data[sent:])
				sent += n
				l.flush(l.snd)
			}
			info := l.snd.Info()
			return sent == len(data) && info.SndUna == info.SndMax
		})
		info := l.snd.Info()
		if sent != len(data) || info.BytesAcked != uint64(len(data)) {
			t.Fatalf("%s: %d of %d bytes acknowledged", how, info.BytesAcked, len(data))
		}
		if how == "default" {
			if info.CongestionControl != cc.Default || maxFlight <= fixedWindow {
				t.Errorf("default: %q, largest flight %d, want more than %d", info.CongestionControl, maxFlight, fixedWindow)
			}
			continue
		}
		if info.CongestionControl != "test-fixed" || l.snd.CongestionControl() != "test-fixed" || info.Cwnd != fixedWindow {
			t.Errorf("%s: controller %q, cwnd %d", how, info.CongestionControl, info.Cwnd)
		}
		if maxFlight != fixedWindow {
			t.Errorf("%s: largest flight %d bytes, want the window %d", how, maxFlight, fixedWindow)
		}
	}
}

// TestSwitchController switches an open connection from the default
// controller (CUBIC) to the fixed window in the middle of a transfer:
// once what it let out is acknowledged, the flight stays within the new
// window; and a name nothing is registered under is refused with ENOENT,
// changing nothing.
func TestSwitchController(t *testing.T) {
	l := newLink(t, tcp.Config{})
	l.connect()
	err := l.snd.SetCongestionControl("no-such-algorithm")
	if !errors.Is(err, tcp.ErrUnknownCongestion) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("unknown name: %v", err)
	}
	if l.snd.Info().CongestionControl != cc.Default {
		t.Fatalf("controller %q after a refused switch", l.snd.Info().CongestionControl)
	}
	data := make([]byte, 4<<20)
	sent := 0
	write := func() {
		if sent < len(data) {
			n, _ := l.snd.Write(data[sent:])
			sent += n
			l.flush(l.snd)
		}
	}
	l.run(l.now.Add(time.Minute), func() bool {
		write()
		return l.snd.Info().BytesAcked > 512<<10
	})
	before := l.snd.Info()
	if before.Cwnd <= fixedWindow {
		t.Fatalf("window %d before the switch: too small to show anything", before.Cwnd)
	}
	if err := l.snd.SetCongestionControl("test-fixed"); err != nil {
		t.Fatal(err)
	}
	drained := false
	violations := 0
	l.onSend = func(now clock.Instant, seg *wire.TCPFields) {
		info := l.snd.Info()
		if info.SndUna.GreaterEq(before.SndMax) {
			drained = true
		}
		if drained && info.SndMax.Size(info.SndUna) > fixedWindow {
			violations++
		}
	}
	l.run(l.now.Add(time.Minute), func() bool {
		write()
		info := l.snd.Info()
		return sent == len(data) && info.SndUna == info.SndMax
	})
	if !drained || violations > 0 || l.snd.Info().BytesAcked != uint64(len(data)) {
		t.Fatalf("after the switch: drained %v, %d segments beyond the window, %d of %d bytes acknowledged", drained, violations, l.snd.Info().BytesAcked, len(data))
	}
}

// TestPacingController checks that a controller's pacing rate spaces the
// data segments (the pacing timer of the timer table): every data segment
// leaves at least its predecessor's size at the rate after it, and the
// transfer as a whole runs at the rate, not slower.
func TestPacingController(t *testing.T) {
	l := newLink(t, tcp.Config{Congestion: "test-paced"})
	l.connect()
	l.snd.SetNoDelay(true) // Nagle would hold the last, short segment for an RTT
	var last clock.Instant
	var lastLen, segs int
	var first clock.Instant
	var bytes int
	l.onSend = func(now clock.Instant, seg *wire.TCPFields) {
		if len(seg.Payload) == 0 {
			return
		}
		if segs > 0 {
			gap := now.Sub(last)
			if want := time.Duration(int64(lastLen) * int64(time.Second) / pacingRate); gap < want {
				t.Errorf("segment %d %v after the previous one of %d bytes, want at least %v", segs, gap, lastLen, want)
			}
		} else {
			first = now
		}
		segs++
		bytes += len(seg.Payload)
		last, lastLen = now, len(seg.Payload)
	}
	data := make([]byte, 1<<20)
	sent := 0
	l.run(l.now.Add(time.Minute), func() bool {
		if sent < len(data) {
			n, _ := l.snd.Write(data[sent:])
			sent += n
			l.flush(l.snd)
		}
		info := l.snd.Info()
		return sent == len(data) && info.SndUna == info.SndMax
	})
	if bytes != len(data) {
		t.Fatalf("%d of %d bytes sent", bytes, len(data))
	}
	// The last segment leaves (bytes - lastLen)/rate after the first.
	want := time.Duration(int64(bytes-lastLen) * int64(time.Second) / pacingRate)
	if got := last.Sub(first); got > want+want/100 {
		t.Errorf("%d bytes in %v, want %v at %d B/s", bytes, got, want, pacingRate)
	}
	t.Logf("%d segments, %d bytes in %v", segs, bytes, last.Sub(first))
}

// TestPacingLateOwner: when the owner handles the pacing timer late (here
// always 1.5 ms after it was due, as Go's timers on a loaded machine do),
// the segments that became due meanwhile leave together, so the transfer
// still runs at the pacing rate — not at one segment per late wake-up —
// and no burst is larger than the 2 ms of data the pacing clock may fall
// behind by (plus the segment that was due).
func TestPacingLateOwner(t *testing.T) {
	l := newLink(t, tcp.Config{Congestion: "test-paced"})
	l.connect()
	l.late = 1500 * time.Microsecond
	l.snd.SetNoDelay(true)
	var first, last, burstAt clock.Instant
	var lastLen, bytes, burst, maxBurst int
	l.onSend = func(now clock.Instant, seg *wire.TCPFields) {
		if len(seg.Payload) == 0 {
			return
		}
		if bytes == 0 {
			first = now
		}
		if now != burstAt {
			burstAt, burst = now, 0
		}
		burst += len(seg.Payload)
		maxBurst = max(maxBurst, burst)
		bytes += len(seg.Payload)
		last, lastLen = now, len(seg.Payload)
	}
	data := make([]byte, 1<<20)
	sent := 0
	l.run(l.now.Add(time.Minute), func() bool {
		if sent < len(data) {
			n, _ := l.snd.Write(data[sent:])
			sent += n
			l.flush(l.snd)
		}
		info := l.snd.Info()
		return sent == len(data) && info.SndUna == info.SndMax
	})
	if bytes != len(data) {
		t.Fatalf("%d of %d bytes sent", bytes, len(data))
	}
	want := time.Duration(int64(bytes-lastLen) * int64(time.Second) / pacingRate)
	if got := last.Sub(first); got > want+want/20 {
		t.Errorf("%d bytes in %v with the timer 1.5 ms late, want %v at %d B/s", bytes, got, want, pacingRate)
	}
	mss := int(l.snd.Info().SndMSS)
	if limit := int(pacingRate*2/1000) + mss; maxBurst > limit {
		t.Errorf("a burst of %d bytes, more than 2 ms at the rate (%d bytes) and a segment", maxBurst, limit-mss)
	}
	if maxBurst < 2*mss {
		t.Errorf("largest burst %d bytes: the late wake-ups did not send what was due", maxBurst)
	}
	t.Logf("%d bytes in %v, largest burst %d bytes", bytes, last.Sub(first), maxBurst)
}
