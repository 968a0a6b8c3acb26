package tcp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/siphash"
	"github.com/ustack/ustack/wire"
)

// TestISN checks the generator of RFC 6528 §3 (SHLD-1, MUST-8, MUST-9):
// ISN = M + F(4-tuple, secret key), M ticking every 4 µs.
func TestISN(t *testing.T) {
	key := siphash.Key{K0: 0x0706050403020100, K1: 0x0f0e0d0c0b0a0908}
	g := NewISNGenerator(key)
	l := netip.MustParseAddrPort("10.0.0.1:40000")
	r := netip.MustParseAddrPort("10.0.0.2:80")
	t0 := clock.Instant(123 * time.Second)

	// Deterministic for the same inputs.
	if g.ISN(t0, l, r) != NewISNGenerator(key).ISN(t0, l, r) {
		t.Fatal("ISN is not a function of key, time and 4-tuple")
	}
	// MUST-8: the clock component advances by one every 4 µs.
	for _, d := range []time.Duration{4 * time.Microsecond, 40 * time.Microsecond, time.Second} {
		if got, want := g.ISN(t0.Add(d), l, r)-g.ISN(t0, l, r), wire.Seq(d/(4*time.Microsecond)); got != want {
			t.Errorf("ISN after %v advanced by %d, want %d", d, got, want)
		}
	}
	if g.ISN(t0.Add(3*time.Microsecond), l, r) != g.ISN(t0, l, r) {
		t.Error("ISN changed within one 4 µs tick")
	}
	// The clock wraps the 32-bit space every 4.77 hours (RFC 9293 §3.4.1).
	wrap := time.Duration(1<<32) * 4 * time.Microsecond
	if g.ISN(t0.Add(wrap), l, r) != g.ISN(t0, l, r) {
		t.Error("the ISN clock does not wrap after 2^32 ticks")
	}
	// SHLD-1: F depends on every element of the 4-tuple...
	base := g.ISN(t0, l, r)
	for _, c := range []struct{ l, r string }{
		{"10.0.0.3:40000", "10.0.0.2:80"},
		{"10.0.0.1:40001", "10.0.0.2:80"},
		{"10.0.0.1:40000", "10.0.0.4:80"},
		{"10.0.0.1:40000", "10.0.0.2:81"},
		{"10.0.0.2:80", "10.0.0.1:40000"}, // the reverse direction
		{"[2001:db8::1]:40000", "[2001:db8::2]:80"},
	} {
		if g.ISN(t0, netip.MustParseAddrPort(c.l), netip.MustParseAddrPort(c.r)) == base {
			t.Errorf("ISN for %s > %s equals that of %v > %v", c.l, c.r, l, r)
		}
	}
	// ... and MUST-9, on the secret key, which an outsider cannot know.
	if NewISNGenerator(siphash.Key{K0: 1}).ISN(t0, l, r) == base {
		t.Error("ISN does not depend on the key")
	}
}

// TestTSOffset checks the per-connection timestamp offset (RFC 7323 §7.1,
// as Linux since 4.10): stable for a 4-tuple, different across 4-tuples,
// and unrelated to the ISN's hash.
func TestTSOffset(t *testing.T) {
	g := NewISNGenerator(siphash.Key{K0: 42, K1: 43})
	l := netip.MustParseAddrPort("10.0.0.1:40000")
	r := netip.MustParseAddrPort("10.0.0.2:80")
	r2 := netip.MustParseAddrPort("10.0.0.2:81")
	if g.TSOffset(l, r) != g.TSOffset(l, r) {
		t.Fatal("TSOffset is not stable")
	}
	if g.TSOffset(l, r) == g.TSOffset(l, r2) {
		t.Error("TSOffset does not depend on the 4-tuple")
	}
	if g.TSOffset(l, r) == uint32(g.ISN(0, l, r)) {
		t.Error("TSOffset equals the ISN's hash: the ISN would leak it")
	}
}
