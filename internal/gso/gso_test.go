package gso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

var (
	src4 = netip.MustParseAddr("10.0.0.1")
	dst4 = netip.MustParseAddr("10.0.0.2")
	src6 = netip.MustParseAddr("fd00::1")
	dst6 = netip.MustParseAddr("fd00::2")
)

// superFrame builds an Ethernet frame carrying a TCP super-segment of
// payload (with a timestamp option) from src to dst, its checksum left
// partial as a stack hands it to a segmenting NIC, and the offload.
func superFrame(t *testing.T, src, dst netip.Addr, flags wire.TCPFlags, payload []byte, mss int) ([]byte, link.Offload) {
	t.Helper()
	tf := wire.TCPFields{SrcPort: 80, DstPort: 40000, Seq: 0xfffff000, Ack: 77, Flags: flags, Window: 500}
	tf.Options.HasTimestamp, tf.Options.TSVal, tf.Options.TSEcr = true, 1, 2
	thl := tf.HeaderLen()
	tcpSeg := make([]byte, thl+len(payload))
	tf.EncodeHeader(tcpSeg[:thl])
	copy(tcpSeg[thl:], payload)
	binary.BigEndian.PutUint16(tcpSeg[16:], wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(tcpSeg)))
	var ip []byte
	gsoType := uint8(link.GSOTCPv4)
	et := wire.EtherTypeIPv4
	if src.Is4() {
		h := wire.IPv4Fields{TotalLen: uint16(20 + len(tcpSeg)), ID: 0xfffe, DF: true, TTL: 64, Protocol: wire.ProtoTCP, Src: src, Dst: dst}
		ip = make([]byte, 20+len(tcpSeg))
		h.Encode(ip)
	} else {
		h := wire.IPv6Fields{PayloadLen: uint16(len(tcpSeg)), NextHeader: wire.ProtoTCP, HopLimit: 64, Src: src, Dst: dst}
		ip = make([]byte, 40+len(tcpSeg))
		h.Encode(ip)
		gsoType, et = link.GSOTCPv6, wire.EtherTypeIPv6
	}
	hl := len(ip) - len(tcpSeg)
	copy(ip[hl:], tcpSeg)
	eth := wire.EthernetFields{Dst: wire.MAC{2, 0, 0, 0, 0, 2}, Src: wire.MAC{2, 0, 0, 0, 0, 1}, EtherType: et}
	frame := make([]byte, 14+len(ip))
	eth.Encode(frame)
	copy(frame[14:], ip)
	o := link.Offload{GSOType: gsoType, GSOSize: uint16(mss), HdrLen: uint16(14 + hl + thl), NeedsCsum: true, CsumStart: uint16(14 + hl), CsumOffset: 16}
	return frame, o
}

// cutAll cuts frame with a Segmenter into frames of at most dstLen bytes,
// checksums complete.
func cutAll(frame []byte, o link.Offload, dstLen int) ([][]byte, error) {
	var s Segmenter
	if err := s.Init(frame, link.Ethernet, o); err != nil {
		return nil, err
	}
	var out [][]byte
	for !s.Done() {
		dst := make([]byte, dstLen)
		m, ok := s.Next(dst, Complete)
		if !ok {
			return out, ErrShort
		}
		out = append(out, dst[:m])
	}
	return out, nil
}

// ErrShort is cutAll's report of a segment Next skipped.
var ErrShort = errors.New("destination too short")

func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestSegmentIPv4: a super-frame becomes the frames a TSO NIC sends: full
// MSS pieces and a short last one, the sequence number advanced by each
// piece's offset (across the wrap), PSH and FIN on the last piece only,
// consecutive IP IDs (wrapping too), each piece's lengths and checksums
// right, and the payloads together the original.
func TestSegmentIPv4(t *testing.T) {
	data := payloadOf(5*1000 + 300)
	frame, o := superFrame(t, src4, dst4, wire.TCPFlagACK|wire.TCPFlagPSH|wire.TCPFlagFIN, data, 1000)
	segs, err := cutAll(frame, o, 2000)
	k := len(segs)
	if err != nil || k != 6 {
		t.Fatalf("%d segments, %v; want 6", k, err)
	}
	var got []byte
	for i, dst := range segs {
		m := len(dst)
		ip, err := wire.ParseIPv4(dst[14:m])
		if err != nil || !ip.ChecksumValid() {
			t.Fatalf("segment %d: IP header %v, checksum valid %v", i, err, err == nil && ip.ChecksumValid())
		}
		if int(ip.TotalLen()) != m-14 || ip.ID() != uint16(0xfffe+i) || !ip.DF() {
			t.Errorf("segment %d: total length %d (frame %d), ID %#x, DF %v", i, ip.TotalLen(), m, ip.ID(), ip.DF())
		}
		seg := ip.Payload()
		if wire.TCPChecksum(seg, src4, dst4) != 0 {
			t.Errorf("segment %d: bad TCP checksum", i)
		}
		var f wire.TCPFields
		if err := f.Decode(wire.TCP(seg)); err != nil {
			t.Fatal(err)
		}
		wantLen := 1000
		wantFlags := wire.TCPFlagACK
		if i == k-1 {
			wantLen, wantFlags = 300, wire.TCPFlagACK|wire.TCPFlagPSH|wire.TCPFlagFIN
		}
		if len(f.Payload) != wantLen || f.Flags != wantFlags || f.Seq != wire.Seq(0xfffff000).Add(uint32(1000*i)) || f.Ack != 77 || f.Options.TSVal != 1 {
			t.Errorf("segment %d: %d bytes, flags %v, seq %d", i, len(f.Payload), f.Flags, f.Seq)
		}
		if !bytes.Equal(dst[:14], frame[:14]) {
			t.Errorf("segment %d: Ethernet header changed", i)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, data) {
		t.Error("the pieces' payloads are not the super-segment's")
	}
	if segs, err := cutAll(frame, o, 500); len(segs) != 0 || err != ErrShort {
		t.Errorf("short destination: %d segments, %v", len(segs), err)
	}
}

// TestSegmentIPv6: the same over IPv6, where each piece's payload length
// is set and the checksum uses the IPv6 pseudo-header.
func TestSegmentIPv6(t *testing.T) {
	data := payloadOf(3 * 1200)
	frame, o := superFrame(t, src6, dst6, wire.TCPFlagACK, data, 1200)
	segs, err := cutAll(frame, o, 2000)
	if err != nil || len(segs) != 3 {
		t.Fatalf("%d segments, %v; want 3", len(segs), err)
	}
	for i, dst := range segs {
		m := len(dst)
		ip, err := wire.ParseIPv6(dst[14:m])
		if err != nil || int(ip.PayloadLen()) != m-14-40 {
			t.Fatalf("segment %d: %v, payload length %d of %d", i, err, ip.PayloadLen(), m-54)
		}
		if wire.TCPChecksum(ip.Payload(), src6, dst6) != 0 {
			t.Errorf("segment %d: bad TCP checksum", i)
		}
		if !bytes.Equal(ip.Payload()[ip.Payload()[12]>>4*4:], data[i*1200:(i+1)*1200]) {
			t.Errorf("segment %d: wrong payload", i)
		}
	}
}

// TestCompleteChecksum: a single frame with a partial checksum (no GSO)
// comes out with the checksum a full computation gives, for TCP and for
// UDP (where a computed 0 is sent as all ones).
func TestCompleteChecksum(t *testing.T) {
	frame, o := superFrame(t, src4, dst4, wire.TCPFlagACK, payloadOf(700), 1460)
	o.GSOType, o.GSOSize, o.HdrLen = link.GSONone, 0, 0
	segs, err := cutAll(frame, o, len(frame))
	if err != nil || len(segs) != 1 || len(segs[0]) != len(frame) {
		t.Fatalf("%d segments, %v", len(segs), err)
	}
	seg := segs[0][34:]
	if wire.TCPChecksum(seg, src4, dst4) != 0 {
		t.Error("completed TCP checksum does not verify")
	}
	full := append([]byte(nil), frame[34:]...)
	binary.BigEndian.PutUint16(full[16:], 0)
	binary.BigEndian.PutUint16(full[16:], wire.TCPChecksum(full, src4, dst4))
	if !bytes.Equal(seg, full) {
		t.Error("completed segment differs from one checksummed in full")
	}
	if segs, err := cutAll(frame, o, 10); len(segs) != 0 || err != ErrShort {
		t.Errorf("short destination: %d segments, %v", len(segs), err)
	}
	bad := o
	bad.CsumOffset = 5000
	if _, err := cutAll(frame, bad, len(frame)); !errors.Is(err, ErrGSO) {
		t.Errorf("checksum offset past the frame: %v", err)
	}
	// Without NeedsCsum the frame is the NIC's to send as it is, even
	// with a checksum that would not verify.
	plain := bytes.Clone(frame)
	if segs, err := cutAll(plain, link.Offload{DataValid: true}, len(frame)); err != nil || len(segs) != 1 || !bytes.Equal(segs[0], frame) {
		t.Errorf("a frame without a partial checksum changed: %v", err)
	}
}

// TestMalformed: offloads that do not match the frame are refused with
// an error, never a panic or a wrong frame.
func TestMalformed(t *testing.T) {
	frame, o := superFrame(t, src4, dst4, wire.TCPFlagACK, payloadOf(3000), 1000)
	dst := make([]byte, 70000)
	cases := map[string]struct {
		frame []byte
		o     link.Offload
		want  error
	}{
		"udp gso":          {frame, link.Offload{GSOType: link.GSOUDPL4, GSOSize: 1000}, ErrGSO},
		"zero size":        {frame, link.Offload{GSOType: link.GSOTCPv4}, ErrGSO},
		"v6 type, v4 data": {frame, link.Offload{GSOType: link.GSOTCPv6, GSOSize: 1000}, ErrGSO},
		"wrong csum start": {frame, func() link.Offload { x := o; x.CsumStart = 20; return x }(), ErrGSO},
		"truncated":        {frame[:len(frame)-5], o, ErrTransport},
		"no link header":   {frame[:10], o, ErrNotIP},
		"not tcp":          {func() []byte { f := bytes.Clone(frame); f[14+9] = wire.ProtoUDP; return f }(), o, ErrGSO},
		"short tcp header": {frame[:14+20+10], func() link.Offload { x := o; return x }(), ErrTransport},
	}
	for name, c := range cases {
		if segs, err := cutAll(c.frame, c.o, len(dst)); !errors.Is(err, c.want) || len(segs) != 0 {
			t.Errorf("%s: %d segments, %v, want %v", name, len(segs), err, c.want)
		}
	}
}

// TestZeroAllocsSegment: cutting a super-frame allocates nothing.
func TestZeroAllocsSegment(t *testing.T) {
	frame, o := superFrame(t, src4, dst4, wire.TCPFlagACK, payloadOf(44*1448), 1448)
	dst := make([]byte, 1600)
	var s Segmenter
	if allocs := testing.AllocsPerRun(100, func() {
		if err := s.Init(frame, link.Ethernet, o); err != nil {
			panic(err)
		}
		for !s.Done() {
			if _, ok := s.Next(dst, Complete); !ok {
				panic("short")
			}
		}
	}); allocs != 0 {
		t.Errorf("%.1f allocations per super-frame", allocs)
	}
}
