package fault

import (
	"bytes"
	"testing"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/internal/gso/gsotest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
)

// superFrame returns a TSO frame of segs segments of mss bytes.
func superFrame(seq uint32, segs, mss int) (link.Packet, []byte) {
	s := gsotest.Seg{Seq: seq, Ack: 1, Payload: gsotest.Bytes(segs*mss, byte(seq))}
	f := s.Frame()
	off := s.TSO(f, mss)
	p := link.Packet{Buf: make([]byte, link.MaxSuperFrame), Offload: off}
	p.N = copy(p.Buf, f)
	return p, s.Payload
}

// readN reads n frames from e.
func readN(t *testing.T, e link.Endpoint, n int) []link.Packet {
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

// TestOffloadTx: on a link with TSO, a per-frame impairment (loss) sees
// the wire frames of a super-frame, which reach the link cut, with partial
// checksums; a corrupting one completes every checksum first, so that the
// receiver catches the flipped bits; a delay alone passes the super-frame
// whole.
func TestOffloadTx(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     impair.Config
		frames  int
		partial bool
	}{
		{"loss", impair.Config{Loss: 1e-9}, 30, true},
		{"corrupt", impair.Config{Corrupt: 0.5, CorruptOffset: 54}, 30, false},
		{"delay", impair.Config{Delay: time.Millisecond}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pipe.New(pipe.Config{})
			defer b.Close()
			f := New(a, tc.cfg, 1)
			defer f.Close()
			p, payload := superFrame(1, 30, 1000)
			if n, err := f.WriteBatch([]link.Packet{p}); n != 1 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			got := readN(t, b, tc.frames)
			var all []byte
			bad := 0
			for i := range got {
				o := got[i].Offload
				if tc.partial != o.NeedsCsum || tc.partial != o.DataValid {
					t.Fatalf("frame %d: offload %+v", i, o)
				}
				c := append([]byte(nil), got[i].Frame()...)
				gso.Finish(c, link.Ethernet, o)
				if o.GSOType == link.GSONone && gsotest.Check(c, link.Ethernet) != nil {
					bad++
				}
				all = append(all, gsotest.Payload(c, link.Ethernet)...)
			}
			st := f.Stats()
			if st.Tx.Offered != uint64(tc.frames) {
				t.Errorf("the impairment saw %d frames, want %d", st.Tx.Offered, tc.frames)
			}
			if uint64(bad) != st.Tx.Corrupted {
				t.Errorf("%d frames fail their checksum, %d corrupted", bad, st.Tx.Corrupted)
			}
			if st.Tx.Corrupted == 0 && !bytes.Equal(all, payload) {
				t.Error("payload differs")
			}
			if tc.frames > 1 && st.TxSegmented != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestOffloadRx: frames read from a link with GRO (super-frames) are cut
// before a per-frame receive impairment, each arriving with DataValid;
// with corruption, checksums are completed and nothing is trusted, not
// even a frame the link said was valid.
func TestOffloadRx(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		a, b := pipe.New(pipe.Config{})
		cfg := impair.Config{Loss: 1e-9}
		if corrupt {
			cfg = impair.Config{Corrupt: 1e-9}
		}
		f := NewWith(a, Options{Rx: &cfg, Seed: 1})
		p, payload := superFrame(1, 20, 1200)
		plain := gsotest.Seg{Seq: 99, Payload: []byte("x")}.Frame()
		// A frame the link says is valid.
		q := link.Packet{Buf: plain, N: len(plain), Offload: link.Offload{}}
		if _, err := b.WriteBatch([]link.Packet{p, q}); err != nil {
			t.Fatal(err)
		}
		got := readN(t, f, 21)
		var all []byte
		for i := range got[:20] {
			o := got[i].Offload
			if corrupt && o != (link.Offload{}) || !corrupt && (!o.DataValid || !o.NeedsCsum) {
				t.Fatalf("corrupt %v: frame %d: offload %+v", corrupt, i, o)
			}
			if corrupt && gsotest.Check(got[i].Frame(), link.Ethernet) != nil {
				t.Fatalf("frame %d: checksum not completed", i)
			}
			all = append(all, gsotest.Payload(got[i].Frame(), link.Ethernet)...)
		}
		if !bytes.Equal(all, payload) {
			t.Errorf("corrupt %v: payload differs", corrupt)
		}
		if st := f.Stats(); st.Rx.Offered != 21 || st.RxSegmented != 1 {
			t.Errorf("corrupt %v: stats %+v", corrupt, st)
		}
		f.Close()
	}
}

// TestOffloadAllocs: cutting super-frames for a per-frame impairment
// allocates nothing.
func TestOffloadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	a, b := pipe.New(pipe.Config{})
	f := New(a, impair.Config{Loss: 0.01, Corrupt: 0.01, Dup: 0.01}, 1)
	defer f.Close()
	p, _ := superFrame(1, 40, 1000)
	out, in := []link.Packet{p}, batch(64, 1514)
	allocs := testing.AllocsPerRun(500, func() {
		f.WriteBatch(out)
		for n := 0; n < 38; {
			k, _ := b.ReadBatch(in)
			n += k
		}
	})
	if allocs != 0 {
		t.Errorf("write+read of a super-frame allocates %v times", allocs)
	}
}
