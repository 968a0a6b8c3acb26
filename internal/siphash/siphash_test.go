package siphash

import "testing"

// The reference vectors of the SipHash paper (appendix A / vectors.h):
// key 00 01 .. 0f, messages 00, 00 01, ..., for lengths 0..63.
func TestVectors(t *testing.T) {
	k := Key{K0: 0x0706050403020100, K1: 0x0f0e0d0c0b0a0908}
	want := map[int]uint64{
		0:  0x726fdb47dd0e0e31,
		1:  0x74f839c593dc67fd,
		7:  0xab0200f58b01d137,
		8:  0x93f5f5799a932462,
		15: 0xa129ca6149be45e5,
		63: 0x958a324ceb064572,
	}
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for n, w := range want {
		if got := k.Sum64(msg[:n]); got != w {
			t.Errorf("len %d: got %#x, want %#x", n, got, w)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	k := Key{1, 2}
	var b [37]byte
	if n := testing.AllocsPerRun(100, func() { sink = k.Sum64(b[:]) }); n != 0 {
		t.Fatalf("Sum64 allocates %v times", n)
	}
}

var sink uint64
