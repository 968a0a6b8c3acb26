package gso_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/internal/gso/gsotest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// TestSegment cuts super-frames of every kind as Linux's software GSO does
// and checks each segment field by field: lengths, IPv4 IDs, sequence
// numbers, flags (FIN and PSH on the last, CWR on the first), UDP
// lengths, checksums complete and correct; the payloads put together are
// the original. (gopacket's decoding of such segments is in package gro's
// tests: importing it here slows the fuzz target a thousandfold.)
func TestSegment(t *testing.T) {
	opts := []byte{1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9} // NOP NOP TS
	cases := []struct {
		name string
		seg  gsotest.Seg
		mss  int
		want int // segments
	}{
		{"tcp4", gsotest.Seg{Seq: 4000, Ack: 77, ID: 100, Options: opts, Flags: wire.TCPFlagACK | wire.TCPFlagPSH | wire.TCPFlagFIN | wire.TCPFlagCWR, Payload: gsotest.Bytes(10*1448+100, 1)}, 1448, 11},
		{"tcp4 exact", gsotest.Seg{Seq: 1, ID: 0xfffe, Payload: gsotest.Bytes(4*1000, 2)}, 1000, 4},
		{"tcp4 one", gsotest.Seg{Seq: 1, Payload: gsotest.Bytes(500, 3)}, 1448, 1},
		{"tcp4 vlan", gsotest.Seg{VLAN: true, Seq: 0xfffffff0, Payload: gsotest.Bytes(3*1400+1, 4)}, 1400, 4},
		{"tcp4 tun", gsotest.Seg{Medium: link.IP, Seq: 9, Payload: gsotest.Bytes(65535-40, 5)}, 1460, 45},
		{"tcp6", gsotest.Seg{V6: true, Seq: 5, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Payload: gsotest.Bytes(5*1440-1, 6)}, 1440, 5},
		{"udp4", gsotest.Seg{UDP: true, SrcPort: 40000, DstPort: 40001, ID: 7, Payload: gsotest.Bytes(3*1400+10, 7)}, 1400, 4},
		{"udp6 tun", gsotest.Seg{Medium: link.IP, V6: true, UDP: true, SrcPort: 40000, DstPort: 40001, Payload: gsotest.Bytes(2*1200, 8)}, 1200, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.seg.Medium
			if m == 0 {
				m = link.Ethernet
			}
			frame := tc.seg.Frame()
			off := tc.seg.TSO(frame, tc.mss)
			orig := append([]byte(nil), frame...)
			var s gso.Segmenter
			if err := s.Init(frame, m, off); err != nil {
				t.Fatal(err)
			}
			if s.Count() != tc.want {
				t.Fatalf("Count %d, want %d", s.Count(), tc.want)
			}
			l := s.Layout()
			var all []byte
			buf := make([]byte, 2000)
			for i := 0; ; i++ {
				n, ok := s.Next(buf, gso.Complete)
				if !ok {
					if i != tc.want {
						t.Fatalf("%d segments, want %d", i, tc.want)
					}
					break
				}
				f := buf[:n]
				if n != s.SegmentLen(i) {
					t.Errorf("segment %d: length %d, SegmentLen %d", i, n, s.SegmentLen(i))
				}
				if err := gsotest.Check(f, m); err != nil {
					t.Errorf("segment %d: %v", i, err)
				}
				pl := gsotest.Payload(f, m)
				if i < tc.want-1 && len(pl) != tc.mss {
					t.Errorf("segment %d: payload %d, want %d", i, len(pl), tc.mss)
				}
				all = append(all, pl...)
				ip := f[l.L3:]
				if !tc.seg.V6 {
					if id := binary.BigEndian.Uint16(ip[4:]); id != tc.seg.ID+uint16(i) {
						t.Errorf("segment %d: IP ID %d, want %d", i, id, tc.seg.ID+uint16(i))
					}
					if tl := int(binary.BigEndian.Uint16(ip[2:])); tl != n-l.L3 {
						t.Errorf("segment %d: total length %d, want %d", i, tl, n-l.L3)
					}
				} else if pl := int(binary.BigEndian.Uint16(ip[4:])); pl != n-l.L4 {
					t.Errorf("segment %d: payload length %d, want %d", i, pl, n-l.L4)
				}
				if tc.seg.UDP {
					if ul := int(binary.BigEndian.Uint16(f[l.L4+4:])); ul != n-l.L4 {
						t.Errorf("segment %d: UDP length %d, want %d", i, ul, n-l.L4)
					}
				} else {
					seq := binary.BigEndian.Uint32(f[l.L4+4:])
					if want := tc.seg.Seq + uint32(i*tc.mss); seq != want {
						t.Errorf("segment %d: seq %d, want %d", i, seq, want)
					}
					fl := wire.TCPFlags(f[l.L4+13])
					want := tc.seg.Flags
					if want == 0 {
						want = wire.TCPFlagACK
					}
					if i < tc.want-1 {
						want &^= wire.TCPFlagFIN | wire.TCPFlagPSH
					}
					if i > 0 {
						want &^= wire.TCPFlagCWR
					}
					if fl != want {
						t.Errorf("segment %d: flags %v, want %v", i, fl, want)
					}
					if !bytes.Equal(f[l.L4+20:l.Payload], frame[l.L4+20:l.Payload]) {
						t.Errorf("segment %d: options changed", i)
					}
				}
			}
			if !bytes.Equal(all, tc.seg.Payload) {
				t.Errorf("payloads put together differ from the original")
			}
			if !bytes.Equal(frame, orig) {
				t.Errorf("the super-frame was changed")
			}
		})
	}
}

// TestSegmentPartial: Partial leaves the pseudo-header sum in each
// segment's checksum field, which Finish then completes to the checksum
// Complete writes.
func TestSegmentPartial(t *testing.T) {
	for _, udp := range []bool{false, true} {
		seg := gsotest.Seg{UDP: udp, Seq: 1, Payload: gsotest.Bytes(3*1000+5, 9)}
		frame := seg.Frame()
		off := seg.TSO(frame, 1000)
		var a, b gso.Segmenter
		if err := a.Init(frame, link.Ethernet, off); err != nil {
			t.Fatal(err)
		}
		b.Init(frame, link.Ethernet, off)
		pa, pb := make([]byte, 1100), make([]byte, 1100)
		for {
			n, ok := a.Next(pa, gso.Partial)
			m, _ := b.Next(pb, gso.Complete)
			if !ok {
				break
			}
			l, _ := gso.Parse(pa[:n], link.Ethernet)
			at := l.L4 + 16
			if udp {
				at = l.L4 + 6
			}
			if got, want := binary.BigEndian.Uint16(pa[at:]), gso.PseudoSum(pa, &l, l.End-l.L4); got != want {
				t.Fatalf("partial checksum field %#04x, want the pseudo-header sum %#04x", got, want)
			}
			if gsotest.Check(pa[:n], link.Ethernet) == nil {
				t.Fatalf("a partial checksum passed as complete")
			}
			o := link.Offload{NeedsCsum: true, CsumStart: uint16(l.L4), CsumOffset: uint16(at - l.L4)}
			if !gso.Finish(pa[:n], link.Ethernet, o) {
				t.Fatal("Finish failed")
			}
			if !bytes.Equal(pa[:n], pb[:m]) {
				t.Fatalf("finished partial segment differs from the complete one")
			}
		}
	}
}

// TestSegmentPlainFrame: a frame without a GSO type is one segment, with
// its partial checksum completed.
func TestSegmentPlainFrame(t *testing.T) {
	seg := gsotest.Seg{Seq: 3, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Payload: gsotest.Bytes(100, 1)}
	want := seg.Frame()
	frame := append([]byte(nil), want...)
	off := seg.TSO(frame, 1448)
	off.GSOType, off.GSOSize = link.GSONone, 0
	var s gso.Segmenter
	if err := s.Init(frame, link.Ethernet, off); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1514)
	n, ok := s.Next(buf, gso.Complete)
	if !ok || !bytes.Equal(buf[:n], want) {
		t.Fatalf("got %x, want %x", buf[:n], want)
	}
	if _, ok := s.Next(buf, gso.Complete); ok {
		t.Fatal("a second segment")
	}
}

// TestSegmentErrors: frames that are not TCP or UDP over IP, GSO types that
// do not match the packet, a zero segment size, a truncated packet and a
// short destination are refused, never a panic.
func TestSegmentErrors(t *testing.T) {
	good := gsotest.Seg{Seq: 1, Payload: gsotest.Bytes(3000, 1)}
	tcp := good.Frame()
	udp := gsotest.Seg{UDP: true, Payload: gsotest.Bytes(3000, 1)}.Frame()
	frag := gsotest.Seg{NoDF: true, Payload: gsotest.Bytes(100, 1)}.Frame()
	frag[14+6] = 0x20 // MF
	arp := append(make([]byte, 12), 0x08, 0x06, 0, 1)
	cases := []struct {
		name  string
		frame []byte
		off   link.Offload
		err   error
	}{
		{"arp", arp, link.Offload{}, gso.ErrNotIP},
		{"short", tcp[:30], link.Offload{}, gso.ErrNotIP},
		{"truncated", tcp[:200], link.Offload{}, gso.ErrTransport},
		{"fragment", frag, link.Offload{}, gso.ErrTransport},
		{"tcp as udp", tcp, link.Offload{GSOType: link.GSOUDPL4, GSOSize: 1000}, gso.ErrGSO},
		{"tcp4 as tcp6", tcp, link.Offload{GSOType: link.GSOTCPv6, GSOSize: 1000}, gso.ErrGSO},
		{"udp as tcp", udp, link.Offload{GSOType: link.GSOTCPv4, GSOSize: 1000}, gso.ErrGSO},
		{"size 0", tcp, link.Offload{GSOType: link.GSOTCPv4}, gso.ErrGSO},
		{"type 3 (UFO)", udp, link.Offload{GSOType: 3, GSOSize: 1000}, gso.ErrGSO},
	}
	for _, tc := range cases {
		var s gso.Segmenter
		if err := s.Init(tc.frame, link.Ethernet, tc.off); err != tc.err {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	var s gso.Segmenter
	if err := s.Init(tcp, link.Ethernet, link.Offload{GSOType: link.GSOTCPv4, GSOSize: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Next(make([]byte, 100), gso.Complete); ok {
		t.Error("Next wrote into a destination too short")
	}
	if n, ok := s.Next(make([]byte, 2000), gso.Complete); !ok || n != 14+20+20+1000 {
		t.Errorf("after a skipped segment: %d %v", n, ok)
	}
	if gso.Finish(tcp[:60], link.Ethernet, link.Offload{NeedsCsum: true, CsumStart: 58, CsumOffset: 16}) {
		t.Error("Finish with offsets beyond the frame")
	}
}

// TestSegmentAllocs: segmenting allocates nothing.
func TestSegmentAllocs(t *testing.T) {
	seg := gsotest.Seg{Seq: 1, Payload: gsotest.Bytes(40*1448, 1)}
	frame := seg.Frame()
	off := seg.TSO(frame, 1448)
	buf := make([]byte, 1514)
	var s gso.Segmenter
	allocs := testing.AllocsPerRun(100, func() {
		s.Init(frame, link.Ethernet, off)
		for {
			if _, ok := s.Next(buf, gso.Complete); !ok {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per super-frame", allocs)
	}
}

// FuzzSegment: any frame and Offload either fails Init or segments into
// frames that parse, without a panic.
func FuzzSegment(f *testing.F) {
	seg := gsotest.Seg{Seq: 1, Payload: gsotest.Bytes(3000, 1)}
	fr := seg.Frame()
	f.Add(fr, uint8(link.GSOTCPv4), uint16(1000), true)
	f.Add(gsotest.Seg{V6: true, UDP: true, Payload: gsotest.Bytes(100, 1)}.Frame(), uint8(link.GSOUDPL4), uint16(1), false)
	buf := make([]byte, 70000)
	f.Fuzz(func(t *testing.T, frame []byte, typ uint8, size uint16, eth bool) {
		m := link.IP
		if eth {
			m = link.Ethernet
		}
		var s gso.Segmenter
		if s.Init(frame, m, link.Offload{GSOType: typ, GSOSize: size}) != nil {
			return
		}
		if s.Count() > 65536 {
			t.Fatalf("%d segments", s.Count())
		}
		for i := 0; i < s.Count(); i++ {
			n, ok := s.Next(buf, gso.Complete)
			if !ok {
				t.Fatalf("segment %d missing", i)
			}
			if _, err := gso.Parse(buf[:n], m); err != nil {
				t.Fatalf("segment %d does not parse: %v", i, err)
			}
		}
	})
}

// TestQueue: frames come out of a Queue in the order they went in, super-
// datagrams cut into their datagrams (partial checksums trusted, complete
// ones complete), plain frames as they were, across Fill calls smaller
// than a super-datagram; a full queue and an unparseable super-frame are
// refused.
func TestQueue(t *testing.T) {
	q := gso.NewQueue(link.Ethernet, 3)
	big := gsotest.Seg{UDP: true, SrcPort: 40000, DstPort: 40001, Payload: gsotest.Bytes(5*1000+1, 1)}
	bf := big.Frame()
	boff := big.TSO(bf, 1000)
	boff.DataValid = true
	plain := gsotest.Seg{UDP: true, SrcPort: 40000, DstPort: 40001, Payload: []byte("after")}.Frame()
	if !q.Push(bf, boff) || !q.Push(plain, link.Offload{}) {
		t.Fatal("Push refused")
	}
	if q.Push(tcpFrameWithUDPOffload(), link.Offload{GSOType: link.GSOUDPL4, GSOSize: 100}) {
		t.Error("Push took a super-frame that does not parse as one")
	}
	if !q.Push(plain, link.Offload{}) || q.Push(plain, link.Offload{}) {
		t.Error("the queue does not hold exactly 3")
	}
	pkts := make([]link.Packet, 4)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 1514)
	}
	var payload []byte
	var got [][]byte
	for q.Len() > 0 {
		n, tooBig := q.Fill(pkts)
		if tooBig != 0 || n == 0 {
			t.Fatalf("Fill = %d, %d", n, tooBig)
		}
		for _, p := range pkts[:n] {
			got = append(got, append([]byte(nil), p.Frame()...))
			if p.Offload.NeedsCsum != p.Offload.DataValid {
				t.Errorf("offload %+v", p.Offload)
			}
			c := append([]byte(nil), p.Frame()...)
			gso.Finish(c, link.Ethernet, p.Offload)
			if err := gsotest.Check(c, link.Ethernet); err != nil {
				t.Error(err)
			}
		}
	}
	if len(got) != 8 {
		t.Fatalf("%d frames, want 6 datagrams and 2 plain frames", len(got))
	}
	for _, f := range got[:6] {
		payload = append(payload, gsotest.Payload(f, link.Ethernet)...)
	}
	if !bytes.Equal(payload, big.Payload) || !bytes.Equal(got[6], plain) || !bytes.Equal(got[7], plain) {
		t.Error("frames out of order or changed")
	}
	// Buffers too short for a datagram: the datagrams are skipped and
	// counted, the short last one (1 byte of payload) fits.
	q.Push(bf, boff)
	small := []link.Packet{{Buf: make([]byte, 100)}, {Buf: make([]byte, 100)}}
	if n, tooBig := q.Fill(small); n != 1 || tooBig != 5 || q.Len() != 0 {
		t.Errorf("short buffers: Fill = %d, %d (%d left)", n, tooBig, q.Len())
	}
}

func tcpFrameWithUDPOffload() []byte {
	return gsotest.Seg{Seq: 1, Payload: gsotest.Bytes(3000, 1)}.Frame()
}
