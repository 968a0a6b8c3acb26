package vnet

import (
	"encoding/binary"
	"testing"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// TestEncodeDecode: the header round-trips every field of a TSO frame's
// Offload; the zero Offload is the all-zero header.
func TestEncodeDecode(t *testing.T) {
	var h [Len]byte
	for i := range h {
		h[i] = 0xee
	}
	Encode(h[:], link.Offload{})
	if h != [Len]byte{} {
		t.Fatalf("zero Offload: header % x", h)
	}
	o := link.Offload{GSOType: link.GSOTCPv4, GSOSize: 1448, HdrLen: 66, NeedsCsum: true, CsumStart: 34, CsumOffset: 16}
	Encode(h[:], o)
	// The layout of struct virtio_net_hdr, host byte order.
	if h[0] != FlagNeedsCsum || h[1] != 1 || binary.NativeEndian.Uint16(h[2:]) != 66 ||
		binary.NativeEndian.Uint16(h[4:]) != 1448 || binary.NativeEndian.Uint16(h[6:]) != 34 ||
		binary.NativeEndian.Uint16(h[8:]) != 16 {
		t.Fatalf("header % x", h)
	}
	got := Decode(h[:])
	want := o
	want.DataValid = true // a partial checksum is data valid on receive
	if got != want {
		t.Fatalf("Decode = %+v, want %+v", got, want)
	}
}

// TestDecodeFlags: DATA_VALID gives DataValid; ECN is dropped from the
// GSO type; a segment size without a GSO type, and checksum offsets
// without NEEDS_CSUM, are ignored.
func TestDecodeFlags(t *testing.T) {
	h := []byte{FlagDataValid, link.GSOTCPv6 | GSOECN, 0, 0, 0xdc, 0x05, 1, 0, 2, 0}
	o := Decode(h)
	if !o.DataValid || o.NeedsCsum || o.GSOType != link.GSOTCPv6 || o.CsumStart != 0 || o.CsumOffset != 0 {
		t.Errorf("DATA_VALID, TCPv6|ECN: %+v", o)
	}
	h = []byte{0, 0, 0, 0, 0xdc, 0x05, 0, 0, 0, 0}
	if o := Decode(h); o != (link.Offload{}) {
		t.Errorf("gso_size without a type: %+v", o)
	}
}

// TestCompleteChecksum: a partial TCP checksum (the pseudo-header sum in
// the field) completes to the right one; offsets outside the frame are
// refused.
func TestCompleteChecksum(t *testing.T) {
	seg := make([]byte, 20+100)
	seg[12] = 5 << 4
	for i := 20; i < len(seg); i++ {
		seg[i] = byte(i)
	}
	ip := make([]byte, 20)
	ip[0], ip[9] = 0x45, 6
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	frame := append(ip, seg...)
	ps := wire.PartialSum(frame[12:20], 0)
	ps = wire.AddSum(wire.AddSum(ps, 6), uint16(len(seg)))
	binary.BigEndian.PutUint16(frame[20+16:], ps)
	if !CompleteChecksum(frame, 20, 16) {
		t.Fatal("CompleteChecksum failed")
	}
	if c := wire.Checksum(frame[20:], wire.AddSum(wire.AddSum(wire.PartialSum(frame[12:20], 0), 6), uint16(len(seg)))); c != 0 {
		t.Errorf("completed checksum does not verify (%#04x)", c)
	}
	if CompleteChecksum(frame, 20, len(frame)) || CompleteChecksum(frame, -1, 16) {
		t.Error("offsets outside the frame accepted")
	}
}
