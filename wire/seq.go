package wire

// Seq is a TCP sequence number. Comparisons work modulo 2³² (RFC 9293 §3.4,
// RFC 1982): s is before t when the signed distance t-s is positive, which is
// meaningful while the two are less than 2³¹ apart.
type Seq uint32

// Add returns s advanced by n bytes.
func (s Seq) Add(n uint32) Seq { return s + Seq(n) }

// Sub returns the signed distance s-t.
func (s Seq) Sub(t Seq) int32 { return int32(s - t) }

// Size returns the number of bytes from t up to s, which must not be before t.
func (s Seq) Size(t Seq) uint32 { return uint32(s - t) }

// LessThan reports whether s is before t.
func (s Seq) LessThan(t Seq) bool { return int32(s-t) < 0 }

// LessEq reports whether s is before or equal to t.
func (s Seq) LessEq(t Seq) bool { return int32(s-t) <= 0 }

// GreaterThan reports whether s is after t.
func (s Seq) GreaterThan(t Seq) bool { return int32(s-t) > 0 }

// GreaterEq reports whether s is after or equal to t.
func (s Seq) GreaterEq(t Seq) bool { return int32(s-t) >= 0 }

// InRange reports whether a <= s < b.
func (s Seq) InRange(a, b Seq) bool { return uint32(s-a) < uint32(b-a) }

// InWindow reports whether start <= s < start+size.
func (s Seq) InWindow(start Seq, size uint32) bool { return uint32(s-start) < size }

// MaxSeq returns the later of a and b.
func MaxSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return b
	}
	return a
}

// MinSeq returns the earlier of a and b.
func MinSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return a
	}
	return b
}
