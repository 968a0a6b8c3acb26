package wire

import (
	"math/rand/v2"
	"testing"
)

func TestSeqCompare(t *testing.T) {
	// RFC 9293 §3.4 and RFC 1982 §3.2: s is before t when t-s, taken
	// modulo 2³², is in (0, 2³¹).
	for _, tc := range []struct {
		s, t Seq
		less bool // s before t
		more bool // s after t
		sub  int32
	}{
		{0, 0, false, false, 0},
		{0, 1, true, false, -1},
		{1, 0, false, true, 1},
		// Around 2³²: 0xffffffff is just before 0.
		{0xffffffff, 0, true, false, -1},
		{0, 0xffffffff, false, true, 1},
		{0xfffffff0, 0x10, true, false, -0x20},
		{0x10, 0xfffffff0, false, true, 0x20},
		{0xffffffff, 0xffffffff, false, false, 0},
		// Around 2³¹: 0x7fffffff and 0x80000000 are neighbours.
		{0x7fffffff, 0x80000000, true, false, -1},
		{0x80000000, 0x7fffffff, false, true, 1},
		{0x80000000, 0x80000001, true, false, -1},
		// The farthest apart two numbers can be and still compare.
		{0, 0x7fffffff, true, false, -0x7fffffff},
		{0x7fffffff, 0, false, true, 0x7fffffff},
		{0x80000001, 0, true, false, -0x7fffffff},
		{0x10, 0x8000000f, true, false, -0x7fffffff},
		// Exactly 2³¹ apart the order is undefined (RFC 1982 §3.2); this
		// implementation calls each before the other. TCP never compares
		// numbers that far apart, since windows are below 2³⁰.
		{0, 0x80000000, true, false, -0x80000000},
		{0x80000000, 0, true, false, -0x80000000},
	} {
		s, u := tc.s, tc.t
		if got := s.LessThan(u); got != tc.less {
			t.Errorf("%#x.LessThan(%#x) = %v", s, u, got)
		}
		if got := s.GreaterThan(u); got != tc.more {
			t.Errorf("%#x.GreaterThan(%#x) = %v", s, u, got)
		}
		if got := s.LessEq(u); got != (tc.less || s == u) {
			t.Errorf("%#x.LessEq(%#x) = %v", s, u, got)
		}
		if got := s.GreaterEq(u); got != (tc.more || s == u) {
			t.Errorf("%#x.GreaterEq(%#x) = %v", s, u, got)
		}
		if got := s.Sub(u); got != tc.sub {
			t.Errorf("%#x.Sub(%#x) = %d, want %d", s, u, got, tc.sub)
		}
		if tc.less && tc.sub != -0x80000000 {
			if got := u.Size(s); got != uint32(-tc.sub) {
				t.Errorf("%#x.Size(%#x) = %d, want %d", u, s, got, -tc.sub)
			}
			if MaxSeq(s, u) != u || MinSeq(s, u) != s || MaxSeq(u, s) != u || MinSeq(u, s) != s {
				t.Errorf("MaxSeq/MinSeq(%#x, %#x) wrong", s, u)
			}
		}
	}
}

func TestSeqAdd(t *testing.T) {
	for _, tc := range []struct {
		s    Seq
		n    uint32
		want Seq
	}{
		{0, 1, 1},
		{0xffffffff, 1, 0},
		{0xffffffff, 2, 1},
		{0xfffffff0, 0x20, 0x10},
		{0x7fffffff, 1, 0x80000000},
		{5, 0xffffffff, 4}, // adding 2³²-1 steps back by one
	} {
		if got := tc.s.Add(tc.n); got != tc.want {
			t.Errorf("%#x.Add(%#x) = %#x, want %#x", tc.s, tc.n, got, tc.want)
		}
		if got := tc.want.Size(tc.s); got != tc.n {
			t.Errorf("%#x.Size(%#x) = %#x, want %#x", tc.want, tc.s, got, tc.n)
		}
	}
}

func TestSeqInRange(t *testing.T) {
	// RFC 9293 §3.4's acceptance tests are all of the form a <= s < b.
	for _, tc := range []struct {
		s, a, b Seq
		want    bool
	}{
		{5, 0, 10, true},
		{0, 0, 10, true},
		{10, 0, 10, false},
		{0xffffffff, 0, 10, false},
		// Across 2³².
		{0xfffffff0, 0xfffffff0, 0x10, true},
		{0xffffffff, 0xfffffff0, 0x10, true},
		{0, 0xfffffff0, 0x10, true},
		{0xf, 0xfffffff0, 0x10, true},
		{0x10, 0xfffffff0, 0x10, false},
		{0xffffffef, 0xfffffff0, 0x10, false},
		// Across 2³¹.
		{0x80000000, 0x7ffffff0, 0x80000010, true},
		{0x7fffffef, 0x7ffffff0, 0x80000010, false},
		{0x80000010, 0x7ffffff0, 0x80000010, false},
		// An empty range holds nothing.
		{7, 7, 7, false},
		{0, 0, 0, false},
		// A range of 2³²-1 holds everything but b.
		{0x12345678, 1, 0, true},
		{0, 1, 0, false},
	} {
		if got := tc.s.InRange(tc.a, tc.b); got != tc.want {
			t.Errorf("%#x.InRange(%#x, %#x) = %v, want %v", tc.s, tc.a, tc.b, got, tc.want)
		}
		if got := tc.s.InWindow(tc.a, tc.b.Size(tc.a)); got != tc.want {
			t.Errorf("%#x.InWindow(%#x, %#x) = %v, want %v", tc.s, tc.a, tc.b.Size(tc.a), got, tc.want)
		}
	}
}

func TestSeqInWindow(t *testing.T) {
	for _, tc := range []struct {
		s, start Seq
		size     uint32
		want     bool
	}{
		{0xffffff00, 0xffffff00, 0x200, true},
		{0xffffffff, 0xffffff00, 0x200, true},
		{0, 0xffffff00, 0x200, true},
		{0xff, 0xffffff00, 0x200, true},
		{0x100, 0xffffff00, 0x200, false},
		{0xfffffeff, 0xffffff00, 0x200, false},
		// A zero window holds nothing (RFC 9293 §3.10.7.4 treats it
		// separately).
		{0xffffff00, 0xffffff00, 0, false},
		// The largest scaled window, 2³⁰ - 2¹⁴ (RFC 7323 §2.3), from just
		// before 2³¹.
		{0x7fffffff + 0x3fff0000 - 1, 0x7fffffff, 0x3fffc000, true},
		{0x7fffffff + 0x3fffc000, 0x7fffffff, 0x3fffc000, false},
	} {
		if got := tc.s.InWindow(tc.start, tc.size); got != tc.want {
			t.Errorf("%#x.InWindow(%#x, %#x) = %v, want %v", tc.s, tc.start, tc.size, got, tc.want)
		}
	}
}

func TestSeqProperties(t *testing.T) {
	// For any s and any 0 < d < 2³¹, s is before s+d, and the helpers
	// agree with each other.
	r := rand.New(rand.NewPCG(1982, 0))
	edges := []Seq{0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe}
	for i := 0; i < 100000; i++ {
		s := Seq(r.Uint32())
		if i < len(edges) {
			s = edges[i]
		}
		d := 1 + r.Uint32N(0x7fffffff)
		u := s.Add(d)
		if !s.LessThan(u) || u.LessThan(s) || !u.GreaterThan(s) || s.GreaterEq(u) || !s.LessEq(u) {
			t.Fatalf("s %#x, d %#x: order wrong", s, d)
		}
		if u.Sub(s) != int32(d) || s.Sub(u) != -int32(d) || u.Size(s) != d {
			t.Fatalf("s %#x, d %#x: distance wrong", s, d)
		}
		if MaxSeq(s, u) != u || MinSeq(u, s) != s {
			t.Fatalf("s %#x, d %#x: MaxSeq/MinSeq wrong", s, d)
		}
		x := s.Add(r.Uint32N(d))
		if !x.InRange(s, u) || !x.InWindow(s, d) || u.InRange(s, u) || s.Add(d+r.Uint32N(1<<20)).InWindow(s, d) {
			t.Fatalf("s %#x, d %#x, x %#x: InRange/InWindow wrong", s, d, x)
		}
	}
}
