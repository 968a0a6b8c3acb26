package netem

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
)

// rig is hostA —pipe— [bridge] —pipe— hostB.
type rig struct {
	hostA, hostB *pipe.Endpoint
	br           *Bridge
	atA, atB     *reader // what hostA and hostB receive
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	hostA, brA := pipe.New(pipe.Config{QueueLen: 100000, NoOffloads: true})
	brB, hostB := pipe.New(pipe.Config{QueueLen: 100000, NoOffloads: true})
	br, err := New(brA, brB, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		br.Close()
		hostA.Close()
		hostB.Close()
	})
	return &rig{hostA: hostA, hostB: hostB, br: br, atA: newReader(hostA), atB: newReader(hostB)}
}

// frame returns an Ethernet frame of size bytes carrying seq after the
// header, the rest filled with a pattern.
func frame(seq uint32, size int) []byte {
	f := make([]byte, size)
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5}) // local experimental EtherType
	binary.BigEndian.PutUint32(f[14:], seq)
	for i := 18; i < size; i++ {
		f[i] = byte(i)
	}
	return f
}

func send(t *testing.T, ep link.Endpoint, frames ...[]byte) {
	t.Helper()
	if err := sendAll(ep, frames); err != nil {
		t.Fatal(err)
	}
}

// sendAll is send for goroutines other than the test's.
func sendAll(ep link.Endpoint, frames [][]byte) error {
	for _, f := range frames {
		if _, err := ep.WriteBatch([]link.Packet{{Buf: f, N: len(f)}}); err != nil {
			return err
		}
	}
	return nil
}

// reader collects the frames a host's link receives, with their arrival
// times, from one goroutine that lives as long as the test.
type reader struct {
	ch chan arrival
}

type arrival struct {
	frame []byte
	at    time.Time
}

func newReader(ep link.Endpoint) *reader {
	r := &reader{ch: make(chan arrival, 100000)}
	go func() {
		defer close(r.ch)
		pkts := make([]link.Packet, 64)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 2048)
		}
		for {
			n, err := ep.ReadBatch(pkts)
			if err != nil {
				return
			}
			now := time.Now()
			for _, p := range pkts[:n] {
				r.ch <- arrival{bytes.Clone(p.Frame()), now}
			}
		}
	}()
	return r
}

// receive returns the frames that arrive until want have or quiet passes
// without one, with their arrival times.
func (r *reader) receive(want int, quiet time.Duration) ([][]byte, []time.Time) {
	var got [][]byte
	var at []time.Time
	for len(got) < want {
		select {
		case a, ok := <-r.ch:
			if !ok {
				return got, at
			}
			got = append(got, a.frame)
			at = append(at, a.at)
		case <-time.After(quiet):
			return got, at
		}
	}
	return got, at
}

func seqs(frames [][]byte) []uint32 {
	s := make([]uint32, len(frames))
	for i, f := range frames {
		s[i] = binary.BigEndian.Uint32(f[14:])
	}
	return s
}

func TestPassthrough(t *testing.T) {
	leaktest.Check(t)
	r := newRig(t, Config{})
	var frames [][]byte
	for i := range 2000 {
		frames = append(frames, frame(uint32(i), 60+i%1400))
	}
	go sendAll(r.hostA, frames)
	got, _ := r.atB.receive(len(frames), 5*time.Second)
	if len(got) != len(frames) {
		t.Fatalf("got %d of %d frames", len(got), len(frames))
	}
	for i := range got {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d differs or is out of order", i)
		}
	}
	// And the other way.
	send(t, r.hostB, frame(7, 100))
	if got, _ := r.atA.receive(1, 5*time.Second); len(got) != 1 || !bytes.Equal(got[0], frame(7, 100)) {
		t.Fatalf("b->a: got %d frames", len(got))
	}
	st := r.br.Stats()
	if st.AB.RxFrames != 2000 || st.AB.TxFrames != 2000 || st.BA.TxFrames != 1 || st.AB.Impair.Offered != 2000 {
		t.Errorf("stats %+v", st)
	}
}

func TestDelay(t *testing.T) {
	leaktest.Check(t)
	const delay = 30 * time.Millisecond
	r := newRig(t, Config{AB: impair.Config{Delay: delay}})
	for i := range 5 {
		t0 := time.Now()
		send(t, r.hostA, frame(uint32(i), 100))
		got, at := r.atB.receive(1, 5*time.Second)
		if len(got) != 1 {
			t.Fatalf("frame %d did not arrive", i)
		}
		// Only a lower bound: a loaded machine may be late, never early.
		if d := at[0].Sub(t0); d < delay {
			t.Errorf("frame %d took %v, want at least %v", i, d, delay)
		}
	}
	// The other direction is not delayed (the lower bound is all that
	// can be checked; it must merely arrive).
	send(t, r.hostB, frame(9, 100))
	if got, _ := r.atA.receive(1, 5*time.Second); len(got) != 1 {
		t.Fatal("b->a frame did not arrive")
	}
}

// TestSeedRepeats: the same seed drops, duplicates and corrupts the same
// frames; another seed does not.
func TestSeedRepeats(t *testing.T) {
	leaktest.Check(t)
	cfg, err := impair.ParseConfig("loss=10%,dup=5%,corrupt=5%,corruptoff=18")
	if err != nil {
		t.Fatal(err)
	}
	run := func(seed uint64) ([]uint32, []int) {
		r := newRig(t, Config{AB: cfg, Seed: seed})
		var frames [][]byte
		for i := range 1000 {
			frames = append(frames, frame(uint32(i), 200))
		}
		send(t, r.hostA, frames...)
		deadline := time.Now().Add(10 * time.Second)
		for r.br.Stats().AB.Impair.Offered < 1000 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		c := r.br.Stats().AB.Impair
		got, _ := r.atB.receive(int(c.Delivered), 5*time.Second)
		if len(got) != int(c.Delivered) || c.DroppedLoss == 0 || c.Duplicated == 0 || c.Corrupted == 0 {
			t.Fatalf("seed %d: got %d frames, counters %+v", seed, len(got), c)
		}
		var flipped []int
		corrupt := 0
		for i, f := range got {
			want := frame(binary.BigEndian.Uint32(f[14:]), 200)
			diff := 0
			for j := range f {
				diff += bits.OnesCount8(f[j] ^ want[j])
			}
			switch diff {
			case 0:
			case 1:
				corrupt++
				flipped = append(flipped, i)
			default:
				t.Fatalf("seed %d: frame %d has %d bits flipped", seed, i, diff)
			}
		}
		if corrupt != int(c.Corrupted) {
			t.Errorf("seed %d: %d corrupted frames arrived, model corrupted %d", seed, corrupt, c.Corrupted)
		}
		return seqs(got), flipped
	}
	s1, c1 := run(42)
	s2, c2 := run(42)
	s3, _ := run(43)
	if !slices.Equal(s1, s2) || !slices.Equal(c1, c2) {
		t.Error("the same seed gave different fates")
	}
	if slices.Equal(s1, s3) {
		t.Error("seeds 42 and 43 gave the same fates")
	}
}

// TestReorder: with a delay and reorder=50%, about half the frames
// overtake those in flight, and all arrive.
func TestReorder(t *testing.T) {
	leaktest.Check(t)
	r := newRig(t, Config{AB: impair.Config{Delay: 20 * time.Millisecond, Reorder: 0.5}, Seed: 1})
	var frames [][]byte
	for i := range 200 {
		frames = append(frames, frame(uint32(i), 100))
	}
	send(t, r.hostA, frames...)
	got, _ := r.atB.receive(len(frames), 5*time.Second)
	if len(got) != len(frames) {
		t.Fatalf("got %d of %d", len(got), len(frames))
	}
	s := seqs(got)
	if slices.IsSorted(s) {
		t.Error("no frame was reordered")
	}
	slices.Sort(s)
	for i, v := range s {
		if v != uint32(i) {
			t.Fatalf("frame %d missing or duplicated", i)
		}
	}
	if c := r.br.Stats().AB.Impair; c.Reordered == 0 || c.Overtook == 0 {
		t.Errorf("counters %+v", c)
	}
}

// TestLimit: a direction holds at most Limit frames; the rest are dropped
// and counted.
func TestLimit(t *testing.T) {
	leaktest.Check(t)
	r := newRig(t, Config{AB: impair.Config{Delay: time.Hour}, Limit: 10})
	for i := range 25 {
		send(t, r.hostA, frame(uint32(i), 100))
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.br.Stats().AB.RxFrames < 25 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.br.Stats().AB; st.Held != 10 || st.LimitDrops != 15 || st.TxFrames != 0 {
		t.Errorf("stats %+v, want 10 held, 15 dropped", st)
	}
}

// TestRate: 100 frames of 1250 bytes at 1 Mbit/s take at least a second
// minus the first frame.
func TestRate(t *testing.T) {
	leaktest.Check(t)
	r := newRig(t, Config{AB: impair.Config{Rate: 1e6}})
	var frames [][]byte
	for i := range 100 {
		frames = append(frames, frame(uint32(i), 1250))
	}
	t0 := time.Now()
	send(t, r.hostA, frames...)
	got, at := r.atB.receive(len(frames), 5*time.Second)
	if len(got) != len(frames) {
		t.Fatalf("got %d of %d", len(got), len(frames))
	}
	if d := at[len(at)-1].Sub(t0); d < 990*time.Millisecond {
		t.Errorf("100 × 10 kbit at 1 Mbit/s took %v", d)
	}
	if !slices.IsSorted(seqs(got)) {
		t.Error("a rate limit alone reordered frames")
	}
}

// TestTooBig: a frame larger than the far link's MTU is counted and
// skipped; the ones around it pass.
func TestTooBig(t *testing.T) {
	leaktest.Check(t)
	hostA, brA := pipe.New(pipe.Config{MTU: 1500, NoOffloads: true})
	brB, hostB := pipe.New(pipe.Config{MTU: 500, NoOffloads: true})
	br, err := New(brA, brB, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	defer hostA.Close()
	defer hostB.Close()
	send(t, hostA, frame(1, 100), frame(2, 1000), frame(3, 100))
	got, _ := newReader(hostB).receive(2, 5*time.Second)
	if !slices.Equal(seqs(got), []uint32{1, 3}) {
		t.Errorf("got %v, want [1 3]", seqs(got))
	}
	if st := br.Stats().AB; st.TxErrors != 1 {
		t.Errorf("stats %+v, want 1 TxError", st)
	}
}

func TestCloseClosesLinks(t *testing.T) {
	leaktest.Check(t)
	hostA, brA := pipe.New(pipe.Config{NoOffloads: true})
	brB, hostB := pipe.New(pipe.Config{NoOffloads: true})
	defer hostA.Close()
	defer hostB.Close()
	br, err := New(brA, brB, Config{AB: impair.Config{Delay: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	send(t, hostA, frame(1, 100))
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if err := br.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := brA.WriteBatch([]link.Packet{{Buf: frame(1, 60), N: 60}}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("link A after Close: %v", err)
	}
	if br.Err() != nil {
		t.Errorf("Err after Close: %v", br.Err())
	}
}

func TestMediaMustMatch(t *testing.T) {
	a, _ := pipe.New(pipe.Config{NoOffloads: true})
	b, _ := pipe.New(pipe.Config{Medium: link.IP, NoOffloads: true})
	if _, err := New(a, b, Config{}); err == nil {
		t.Error("New accepted an Ethernet and an IP link")
	}
	bad := impair.Config{Loss: 2}
	if _, err := New(a, a, Config{AB: bad}); err == nil {
		t.Error("New accepted loss=200%")
	}
	// A link with offloads would hand over super-frames the bridge
	// cannot forward as wire frames.
	c, _ := pipe.New(pipe.Config{})
	if _, err := New(a, c, Config{}); err == nil {
		t.Error("New accepted a link with offloads")
	}
}

// sink is a link that takes and forgets frames, and reads nothing.
type sink struct{ n int }

func (s *sink) Medium() link.Medium                     { return link.Ethernet }
func (s *sink) MTU() int                                { return 1500 }
func (s *sink) Caps() link.Caps                         { return 0 }
func (s *sink) BatchSize() int                          { return 64 }
func (s *sink) ReadBatch([]link.Packet) (int, error)    { select {} }
func (s *sink) WriteBatch(p []link.Packet) (int, error) { s.n += len(p); return len(p), nil }
func (s *sink) Close() error                            { return nil }

// TestZeroAllocs: handling a batch allocates nothing, on the passthrough
// path and through the line (delay, duplication, corruption), once the
// line's pools are warm.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("skipped: sync.Pool drops items at random under the race detector")
	}
	for _, spec := range []string{"none", "delay=1ms,jitter=500us,dup=10%,corrupt=10%,loss=5%,reorder=10%", "rate=1gbit"} {
		cfg, err := impair.ParseConfig(spec)
		if err != nil {
			t.Fatal(err)
		}
		cfg.LinkHeader = 14
		out := &sink{}
		m, _ := impair.NewPair(cfg, cfg, 1)
		d := newDir(&Bridge{}, "test", &sink{}, out, m, 100000, 1518)
		for i := range d.rbuf {
			f := frame(uint32(i), 1514)
			copy(d.rbuf[i].Buf, f)
			d.rbuf[i].N = len(f)
		}
		step := func() {
			d.handle(len(d.rbuf))
			// Let the line drain as time passes.
			d.release(d.clk.Now().Add(time.Second))
		}
		for range 50 {
			step()
		}
		if a := testing.AllocsPerRun(200, step); a != 0 {
			t.Errorf("%s: %v allocations per batch of %d frames", spec, a, len(d.rbuf))
		}
		if out.n == 0 {
			t.Errorf("%s: nothing written", spec)
		}
	}
}
