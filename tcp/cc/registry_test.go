package cc

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ustack/ustack/clock"
)

// constant is the smallest controller there is: Base plus Name and Cwnd.
type constant struct {
	Base
	w uint32
}

func (c *constant) Name() string { return "constant" }
func (c *constant) Cwnd() uint32 { return c.w }

// TestBase checks the defaults Base gives a controller that embeds it:
// infinite ssthresh, no pacing, and hooks that change nothing.
func TestBase(t *testing.T) {
	var ctl Controller = &constant{w: 5000}
	ctl.Init(Params{MSS: 1000, InitialWindow: 10000})
	ctl.SetMSS(500)
	ctl.OnSent(1, 1000, 5000)
	ctl.OnAck(2, AckSample{Acked: 1000, Delivered: 1000})
	ctl.OnRecoveryStart(3, 5000)
	ctl.OnRecoveryEnd(4, 5000)
	ctl.OnTimeout(5, 5000)
	ctl.OnIdleRestart(6)
	ctl.OnUndo(7)
	if ctl.Cwnd() != 5000 || ctl.Ssthresh() != math.MaxUint32 || ctl.PacingRate() != 0 {
		t.Fatalf("cwnd %d ssthresh %d pacing %d, want 5000, infinite, 0", ctl.Cwnd(), ctl.Ssthresh(), ctl.PacingRate())
	}
}

// TestRegistry checks Register's checks, New for known and unknown names
// (a fresh controller each time), Registered and Names.
func TestRegistry(t *testing.T) {
	if !Registered("reno") || !Registered("cubic") || !Registered("") || Registered("nope") {
		t.Fatalf("Registered: reno %v, cubic %v, empty %v, nope %v", Registered("reno"), Registered("cubic"), Registered(""), Registered("nope"))
	}
	for name, want := range map[string]string{"": "cubic", "cubic": "cubic", "reno": "reno"} {
		c, err := New(name)
		if err != nil || c.Name() != want {
			t.Fatalf("New(%q) = %v, %v; want %s", name, c, err, want)
		}
	}
	_, err := New("nope")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("New(nope) error %v, want ErrUnknown naming it", err)
	}
	f := func() Controller { return &constant{w: 1} }
	for _, c := range []struct {
		name string
		f    Factory
		ok   bool
	}{
		{"", f, false},
		{"reno", f, false},
		{"sixteen-bytes-xx", f, false},
		{"test-nilfactory", nil, false},
		{"test-constant", f, true},
		{"test-constant", f, false}, // taken now
	} {
		if err := Register(c.name, c.f); (err == nil) != c.ok {
			t.Errorf("Register(%q) = %v, want ok %v", c.name, err, c.ok)
		}
	}
	a, err := New("test-constant")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New("test-constant")
	if a == b {
		t.Error("New returned the same controller twice")
	}
	if names := Names(); !slices.Contains(names, "reno") || !slices.Contains(names, "test-constant") || !slices.IsSorted(names) {
		t.Errorf("Names() = %v", names)
	}
	if err := Register("test-nil", func() Controller { return nil }); err != nil {
		t.Fatal(err)
	}
	if c, err := New("test-nil"); err == nil {
		t.Errorf("New of a factory returning nil: %v, no error", c)
	}
}

// TestRenoUndo checks OnUndo (Linux tcp_undo_cwnd_reduction): after a
// spurious recovery or timeout the window and threshold go back to what
// they were, and an undo with nothing to undo changes nothing.
func TestRenoUndo(t *testing.T) {
	r := NewReno(1000)
	r.OnUndo(0)
	if r.Cwnd() != 10000 || r.Ssthresh() != math.MaxUint32 {
		t.Fatalf("undo of nothing: cwnd %d ssthresh %d", r.Cwnd(), r.Ssthresh())
	}
	r.OnAck(0, AckSample{Acked: 10000})
	r.OnRecoveryStart(0, 20000)
	if r.Cwnd() != 10000 || r.Ssthresh() != 10000 {
		t.Fatalf("in recovery: cwnd %d ssthresh %d", r.Cwnd(), r.Ssthresh())
	}
	r.OnUndo(clock.Instant(1))
	if r.Cwnd() != 20000 || r.Ssthresh() != math.MaxUint32 {
		t.Fatalf("after undo: cwnd %d ssthresh %d, want 20000 and infinite", r.Cwnd(), r.Ssthresh())
	}
	r.OnTimeout(0, 20000)
	r.OnUndo(0)
	if r.Cwnd() != 20000 || r.Ssthresh() != math.MaxUint32 {
		t.Fatalf("after undoing an RTO: cwnd %d ssthresh %d", r.Cwnd(), r.Ssthresh())
	}
	r.OnUndo(0) // once only
	if r.Cwnd() != 20000 {
		t.Fatalf("second undo: cwnd %d", r.Cwnd())
	}
}

// TestRenoInRecovery checks that an ACK taken during loss recovery, or
// one that only SACKed, leaves Reno's window alone (RFC 6582 §3.2 and
// RFC 6675 §5 rule the window then; RFC 3465 counts cumulative ACKs).
func TestRenoInRecovery(t *testing.T) {
	r := NewReno(1000)
	r.OnAck(0, AckSample{Acked: 3000, InRecovery: true})
	r.OnAck(0, AckSample{Delivered: 3000})
	if r.Cwnd() != 10000 {
		t.Fatalf("cwnd %d, want 10000", r.Cwnd())
	}
}
