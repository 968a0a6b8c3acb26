package pipe

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/internal/gso/gsotest"
	"github.com/ustack/ustack/link"
	wirefmt "github.com/ustack/ustack/wire"
)

// superFrame returns a packet holding a TSO frame of segs segments of mss
// bytes (the last extra bytes longer), with a buffer of MaxSuperFrame, and
// the payload.
func superFrame(seq uint32, segs, mss, extra int, medium link.Medium) (link.Packet, []byte) {
	s := gsotest.Seg{Medium: medium, Seq: seq, Ack: 1, Flags: wirefmt.TCPFlagACK | wirefmt.TCPFlagPSH,
		Payload: gsotest.Bytes(segs*mss+extra, byte(seq))}
	f := s.Frame()
	off := s.TSO(f, mss)
	p := link.Packet{Buf: make([]byte, link.MaxSuperFrame), Offload: off}
	p.N = copy(p.Buf, f)
	return p, s.Payload
}

// TestOffloadSuperFrame: with the default offloads a 64 KiB TSO frame
// crosses whole, its Offload kept and DataValid added (checksum partial on
// one side is data valid on the other, as on a veth); a frame with a
// complete checksum gets no DataValid; with NoOffloads the super-frame is
// refused as too big.
func TestOffloadSuperFrame(t *testing.T) {
	for _, m := range []link.Medium{link.Ethernet, link.IP} {
		a, b := New(Config{Medium: m})
		p, payload := superFrame(1, 44, 1460, 100, m)
		want := append([]byte(nil), p.Frame()...)
		plain := gsotest.Seg{Medium: m, Seq: 9, Payload: []byte("complete")}.Frame()
		out := []link.Packet{p, {Buf: plain, N: len(plain)}}
		if n, err := a.WriteBatch(out); n != 2 || err != nil {
			t.Fatalf("%v: WriteBatch = %d, %v", m, n, err)
		}
		in := batch(2, link.MaxSuperFrame)
		if n, err := b.ReadBatch(in); n != 2 || err != nil {
			t.Fatalf("%v: ReadBatch = %d, %v", m, n, err)
		}
		if !bytes.Equal(in[0].Frame(), want) {
			t.Errorf("%v: the super-frame changed on the way", m)
		}
		wantOff := p.Offload
		wantOff.DataValid = true
		if in[0].Offload != wantOff {
			t.Errorf("%v: offload %+v, want %+v", m, in[0].Offload, wantOff)
		}
		if !bytes.Equal(gsotest.Payload(in[0].Frame(), m), payload) {
			t.Errorf("%v: payload differs", m)
		}
		if in[1].Offload != (link.Offload{}) || !bytes.Equal(in[1].Frame(), plain) {
			t.Errorf("%v: complete frame: offload %+v", m, in[1].Offload)
		}
		a.Close()
	}
	a, b := New(Config{NoOffloads: true})
	defer a.Close()
	if a.Caps() != 0 || b.Caps() != 0 {
		t.Errorf("NoOffloads: caps %b", a.Caps())
	}
	p, _ := superFrame(1, 3, 1460, 0, link.Ethernet)
	if n, err := a.WriteBatch([]link.Packet{p}); n != 0 || !errors.Is(err, link.ErrFrameTooBig) {
		t.Errorf("NoOffloads: super-frame WriteBatch = %d, %v", n, err)
	}
}

// readAll reads until n frames have come (the pipe has no delay).
func readAll(t *testing.T, e *Endpoint, n int) []link.Packet {
	t.Helper()
	var got []link.Packet
	for len(got) < n {
		in := batch(64, link.MaxSuperFrame)
		k, err := e.ReadBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, in[:k]...)
	}
	return got
}

// TestOffloadPerFrameImpairment: where an impairment acts per frame (here
// a rate limit, which also queues per frame), super-frames are cut into
// wire frames before it, each with a partial checksum the reader trusts;
// the impairment sees every wire frame; put together they are the
// original.
func TestOffloadPerFrameImpairment(t *testing.T) {
	a, b := New(Config{Impair: &impair.Config{Rate: 100e9}, QueueLen: 10000})
	defer a.Close()
	p, payload := superFrame(1000, 20, 1460, 7, link.Ethernet)
	if n, err := a.WriteBatch([]link.Packet{p}); n != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	got := readAll(t, b, 21)
	var all []byte
	for i := range got {
		f := got[i].Frame()
		if len(f) > 1514 {
			t.Fatalf("frame %d: %d bytes on a 1500-byte link", i, len(f))
		}
		o := got[i].Offload
		if o.GSOType != link.GSONone || !o.NeedsCsum || !o.DataValid || o.CsumStart != 34 || o.CsumOffset != 16 {
			t.Fatalf("frame %d: offload %+v", i, o)
		}
		c := append([]byte(nil), f...)
		if !gso.Finish(c, link.Ethernet, o) || gsotest.Check(c, link.Ethernet) != nil {
			t.Fatalf("frame %d: the partial checksum does not complete to a valid one", i)
		}
		all = append(all, gsotest.Payload(f, link.Ethernet)...)
	}
	if !bytes.Equal(all, payload) {
		t.Error("the wire frames put together differ from the super-frame")
	}
	st := a.Stats()
	if st.Impair.Offered != 21 || st.TxSegmented != 1 || st.TxSegments != 21 || st.TxFrames != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestOffloadLossPerSegment: loss acts on wire frames, not on the
// super-frame: over many super-frames about the configured share of the
// wire frames is lost, and what arrives is whole segments.
func TestOffloadLossPerSegment(t *testing.T) {
	a, b := New(Config{Impair: &impair.Config{Loss: 0.25}, Seed: 7, QueueLen: 100000})
	defer a.Close()
	const supers, segs = 50, 40
	for i := 0; i < supers; i++ {
		p, _ := superFrame(uint32(1+i*segs*1000), segs, 1000, 0, link.Ethernet)
		if _, err := a.WriteBatch([]link.Packet{p}); err != nil {
			t.Fatal(err)
		}
	}
	st := a.Stats()
	if st.Impair.Offered != supers*segs {
		t.Fatalf("the impairment saw %d frames, want %d", st.Impair.Offered, supers*segs)
	}
	lost := st.Impair.DroppedLoss
	if lost < supers*segs/5 || lost > supers*segs*3/10 {
		t.Errorf("lost %d of %d wire frames at 25%%", lost, supers*segs)
	}
	got := readAll(t, b, int(supers*segs-lost))
	for i := range got {
		if n := len(gsotest.Payload(got[i].Frame(), link.Ethernet)); n != 1000 {
			t.Fatalf("frame %d: payload %d", i, n)
		}
	}
}

// TestOffloadCorruption: a corrupting link completes every checksum before
// it corrupts (as a NIC does before the wire), and the reader gets no
// DataValid, so the stack finds the corruption.
func TestOffloadCorruption(t *testing.T) {
	a, b := New(Config{Impair: &impair.Config{Corrupt: 0.5, CorruptOffset: 54}, Seed: 3})
	defer a.Close()
	p, _ := superFrame(1, 30, 1000, 0, link.Ethernet)
	plain := gsotest.Seg{Seq: 5, Payload: gsotest.Bytes(500, 1)}
	pf := plain.Frame()
	poff := plain.TSO(pf, 1000)
	poff.GSOType, poff.GSOSize = link.GSONone, 0 // partial checksum only
	out := []link.Packet{p, {Buf: pf, N: len(pf), Offload: poff}}
	if _, err := a.WriteBatch(out); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, b, 31)
	bad := 0
	for i := range got {
		if got[i].Offload != (link.Offload{}) {
			t.Fatalf("frame %d: offload %+v on a corrupting link", i, got[i].Offload)
		}
		if gsotest.Check(got[i].Frame(), link.Ethernet) != nil {
			bad++
		}
	}
	if c := a.Stats().Impair.Corrupted; uint64(bad) != c || c == 0 {
		t.Errorf("%d frames fail their checksum, %d were corrupted", bad, c)
	}
}

// TestOffloadBadFrames: a super-frame whose Offload does not match it is
// dropped and counted; one whose segments would not fit the MTU is refused
// as too big; a super-frame beyond MaxSuperFrame is too big.
func TestOffloadBadFrames(t *testing.T) {
	a, b := New(Config{Impair: &impair.Config{Loss: 0.0001}})
	defer a.Close()
	_ = b
	arp := link.Packet{Buf: make([]byte, 3000), N: 3000, Offload: link.Offload{GSOType: link.GSOTCPv4, GSOSize: 1000}}
	if n, err := a.WriteBatch([]link.Packet{arp}); n != 1 || err != nil {
		t.Errorf("mismatched offload: WriteBatch = %d, %v", n, err)
	}
	if st := a.Stats(); st.TxBadOffload != 1 || st.Impair.Offered != 0 {
		t.Errorf("stats %+v", st)
	}
	p, _ := superFrame(1, 3, 1460, 0, link.Ethernet)
	p.Offload.GSOSize = 3000
	if _, err := a.WriteBatch([]link.Packet{p}); !errors.Is(err, link.ErrFrameTooBig) {
		t.Errorf("segments beyond the MTU: %v", err)
	}
	a2, _ := New(Config{})
	defer a2.Close()
	huge := link.Packet{Buf: make([]byte, link.MaxSuperFrame+1), N: link.MaxSuperFrame + 1, Offload: link.Offload{GSOType: link.GSOTCPv4, GSOSize: 1000}}
	if _, err := a2.WriteBatch([]link.Packet{huge}); !errors.Is(err, link.ErrFrameTooBig) {
		t.Errorf("beyond MaxSuperFrame: %v", err)
	}
}

// TestOffloadAllocs: super-frames cross a pipe with offloads, and are cut
// per frame on an impaired one, without allocating.
func TestOffloadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	for _, cfg := range []Config{{}, {Impair: &impair.Config{Rate: 1e12}, QueueLen: 10000}} {
		a, b := New(cfg)
		p, _ := superFrame(1, 44, 1460, 0, link.Ethernet)
		out := []link.Packet{p}
		in := batch(64, link.MaxSuperFrame)
		want := 1
		if cfg.Impair != nil {
			want = 44
		}
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := a.WriteBatch(out); err != nil {
				t.Fatal(err)
			}
			for got := 0; got < want; {
				n, err := b.ReadBatch(in)
				if err != nil {
					t.Fatal(err)
				}
				got += n
			}
		})
		if allocs > 0.05 { // a timer, once, where the rate delays
			t.Errorf("impaired %v: %v allocations per super-frame", cfg.Impair != nil, allocs)
		}
		a.Close()
	}
}

// BenchmarkSuperFrame measures a 64 KiB super-frame across a pipe.
func BenchmarkSuperFrame(b *testing.B) {
	x, y := New(Config{})
	defer x.Close()
	p, _ := superFrame(1, 44, 1460, 0, link.Ethernet)
	out := []link.Packet{p}
	in := batch(1, link.MaxSuperFrame)
	b.SetBytes(int64(p.N))
	b.ReportAllocs()
	for b.Loop() {
		x.WriteBatch(out)
		y.ReadBatch(in)
	}
}
