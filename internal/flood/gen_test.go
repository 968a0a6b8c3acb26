package flood

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

var (
	victim  = netip.MustParseAddrPort("10.0.0.1:80")
	outside = netip.MustParsePrefix("198.18.0.0/15")
	inside  = netip.MustParsePrefix("10.0.0.0/24")
	target  = Target{
		Local:  victim,
		Remote: netip.MustParseAddrPort("10.0.0.2:40000"),
		RcvNxt: 1000, RcvWnd: 65535,
		SndUna: 5000, SndNxt: 90000,
	}
)

func config(k Kind) Config {
	return Config{
		Kind: k, DstMAC: wire.MAC{2, 0, 0, 0, 0, 1}, SrcMAC: wire.MAC{2, 0, 0, 0, 0, 2},
		Dst: victim, Sources: []netip.Prefix{outside, inside}, Targets: []Target{target}, Seed: 7,
	}
}

// TestFrames: every kind's frames decode, carry correct IPv4 and TCP
// checksums, and are what their kind promises: SYNs from the source
// prefixes in turn (never the same source twice in a thousand), with
// Linux's options; RSTs inside the target's window but never at RCV.NXT;
// SACK ACKs with three blocks.
func TestFrames(t *testing.T) {
	buf := make([]byte, FrameLen)
	for k := range numKinds {
		g := New(config(k))
		seen := map[netip.AddrPort]bool{}
		for i := range 1000 {
			n := g.Frame(buf)
			f := buf[:n]
			d := stacktest.Decode(f)
			if d.Err != nil || d.TCP == nil {
				t.Fatalf("%v: frame %d does not decode: %v", k, i, d.Err)
			}
			ip := f[14:34]
			if wire.Checksum(ip, 0) != 0 {
				t.Fatalf("%v: bad IPv4 checksum", k)
			}
			src, dst := d.IP.Src, d.IP.Dst
			if wire.Checksum(f[34:], wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, n-34)) != 0 {
				t.Fatalf("%v: bad TCP checksum", k)
			}
			from := netip.AddrPortFrom(src, d.TCP.SrcPort)
			tc := d.TCP
			switch k {
			case SYN:
				want := outside
				if i%2 == 1 {
					want = inside
				}
				if !want.Contains(src) || dst != victim.Addr() || tc.DstPort != victim.Port() {
					t.Fatalf("SYN %d from %v to %v:%d, want from %v", i, src, dst, tc.DstPort, want)
				}
				if seen[from] {
					t.Fatalf("SYN source %v twice", from)
				}
				seen[from] = true
				o := tc.Options
				if tc.Flags != wire.TCPFlagSYN || o.MSS != 1460 || !o.SACKPermitted || !o.HasTimestamp || !o.HasWScale || o.WScale != 7 {
					t.Fatalf("SYN %v options %+v", tc.Flags, o)
				}
			case ACK:
				if tc.Flags != wire.TCPFlagACK || from != target.Remote {
					t.Fatalf("ACK %v from %v", tc.Flags, from)
				}
				if tc.Ack.InRange(target.SndUna, target.SndNxt+1) {
					t.Fatalf("ACK of %d, acceptable in [%d, %d]", tc.Ack, target.SndUna, target.SndNxt)
				}
			case RST:
				off := uint32(tc.Seq - target.RcvNxt)
				if tc.Flags != wire.TCPFlagRST || off == 0 || off >= target.RcvWnd {
					t.Fatalf("RST %v at RCV.NXT%+d", tc.Flags, off)
				}
			case SACK:
				if tc.Flags != wire.TCPFlagACK || tc.Options.NumSACK != 3 || !tc.Options.HasTimestamp || tc.Ack != target.SndUna {
					t.Fatalf("SACK %v %+v", tc.Flags, tc.Options)
				}
			}
		}
	}
	// Without targets an ACK comes from a spoofed source to the listener.
	c := config(ACK)
	c.Targets = nil
	n := New(c).Frame(buf)
	if d := stacktest.Decode(buf[:n]); !outside.Contains(d.IP.Src) || d.TCP.DstPort != victim.Port() {
		t.Fatalf("ACK without a target from %v to port %d", d.IP.Src, d.TCP.DstPort)
	}
}

// TestFrameAllocs: making a frame allocates nothing.
func TestFrameAllocs(t *testing.T) {
	buf := make([]byte, FrameLen)
	for k := range numKinds {
		g := New(config(k))
		if a := testing.AllocsPerRun(1000, func() { g.Frame(buf) }); a != 0 {
			t.Errorf("%v: %v allocations a frame", k, a)
		}
	}
}

// TestInjector: the flood and a peer share the link; what the victim
// sends to spoofed addresses is counted and kept from the peer, the rest
// reaches it; Flood counts what the link accepted.
func TestInjector(t *testing.T) {
	a, b := pipe.New(pipe.Config{QueueLen: 4096})
	t.Cleanup(func() { a.Close(); b.Close() })
	in := NewInjector(a, outside)
	res := in.Flood(New(config(SYN)), nil, 64, 1000, 0)
	if res.Offered != 1000 || res.Refused != 0 || res.Rate() <= 0 {
		t.Fatalf("offered %d refused %d rate %v, want 1000 0 >0", res.Offered, res.Refused, res.Rate())
	}
	pkts := make([]link.Packet, 64)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	got := 0
	for got < 1000 {
		n, err := b.ReadBatch(pkts)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	// The victim answers two spoofed sources and the peer.
	buf := make([]byte, FrameLen)
	w := func(src netip.AddrPort) {
		f := wire.TCPFields{Flags: wire.TCPFlagSYN | wire.TCPFlagACK}
		copy(buf, stacktest.Ether(wire.MAC{2}, wire.MAC{1}, 0, wire.EtherTypeIPv4,
			stacktest.IP(stacktest.IPHeader(victim.Addr(), src.Addr(), wire.ProtoTCP), stacktest.TCPSeg(victim, src, f))))
		if _, err := b.WriteBatch([]link.Packet{{Buf: buf, N: 54}}); err != nil {
			t.Fatal(err)
		}
	}
	w(netip.MustParseAddrPort("198.18.3.4:1000"))
	w(netip.MustParseAddrPort("198.19.3.4:1000"))
	w(target.Remote)
	n, err := in.ReadBatch(pkts)
	if err != nil || n != 1 || in.Answered() != 2 {
		t.Fatalf("read %d (%v), answered %d: want 1 frame for the peer and 2 answers", n, err, in.Answered())
	}
	if d := stacktest.Decode(pkts[0].Frame()); d.IP.Dst != target.Remote.Addr() {
		t.Fatalf("peer got a frame for %v", d.IP.Dst)
	}
}

// BenchmarkGen: the cost of making one frame of each kind.
func BenchmarkGen(b *testing.B) {
	buf := make([]byte, FrameLen)
	for k := range numKinds {
		b.Run(k.String(), func(b *testing.B) {
			g := New(config(k))
			for b.Loop() {
				g.Frame(buf)
			}
		})
	}
}

// TestFloodRate logs the rate at which Flood offers SYNs to a link that
// discards them (a pipe nobody reads drops what its queue cannot hold);
// the figure is for the reader, the bench asserts none.
func TestFloodRate(t *testing.T) {
	a, b := pipe.New(pipe.Config{QueueLen: 1})
	t.Cleanup(func() { a.Close(); b.Close() })
	stop := make(chan struct{})
	time.AfterFunc(200*time.Millisecond, func() { close(stop) })
	res := NewInjector(a).Flood(New(config(SYN)), stop, 64, 0, 0)
	if res.Offered == 0 {
		t.Fatal("nothing offered")
	}
	t.Logf("offered %d SYNs in %v: %.2f M/s", res.Offered, res.Elapsed, res.Rate()/1e6)
}

// TestFloodPaced: a paced flood offers about the rate asked for, and
// says what it offered.
func TestFloodPaced(t *testing.T) {
	a, b := pipe.New(pipe.Config{QueueLen: 1})
	t.Cleanup(func() { a.Close(); b.Close() })
	stop := make(chan struct{})
	time.AfterFunc(300*time.Millisecond, func() { close(stop) })
	res := NewInjector(a).Flood(New(config(SYN)), stop, 64, 0, 100_000)
	t.Logf("asked for 100k/s: offered %d in %v, %.0f/s", res.Offered, res.Elapsed, res.Rate())
	// Never more than asked (a burst of slack); less only if the
	// machine starved the generator.
	if res.Rate() > 100_000*1.1 || res.Offered == 0 {
		t.Errorf("offered %.0f/s, asked for 100000/s", res.Rate())
	}
}

// TestMerge: the wrapped link's frames and the flood's come out of one
// ring; a full ring refuses flood frames (counted); frames the victim
// sends to spoofed addresses are counted; Close ends the reader.
func TestMerge(t *testing.T) {
	leaktest.Check(t)
	a, b := pipe.New(pipe.Config{})
	defer b.Close()
	m := NewMerge(a, 100, outside)
	wire1 := make([]byte, FrameLen)
	n := New(config(ACK)).Frame(wire1)
	if _, err := b.WriteBatch([]link.Packet{{Buf: wire1, N: n}}); err != nil {
		t.Fatal(err)
	}
	pkts := make([]link.Packet, 64)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	k, err := m.ReadBatch(pkts)
	if err != nil || k != 1 || string(pkts[0].Frame()) != string(wire1[:n]) {
		t.Fatalf("read %d (%v), want the wire's frame", k, err)
	}
	// About 500 SYNs offered in 50 ms into a ring of 100 nobody reads.
	stop := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(stop) })
	res := m.Offer(New(config(SYN)), stop, 10000)
	if res.Offered != 100 || res.Refused == 0 {
		t.Fatalf("offered %d, refused %d: want 100 taken, the rest refused", res.Offered, res.Refused)
	}
	got := 0
	for got < 100 {
		k, err := m.ReadBatch(pkts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts[:k] {
			if d := stacktest.Decode(p.Frame()); d.TCP == nil || d.TCP.Flags != wire.TCPFlagSYN {
				t.Fatal("not a flood SYN")
			}
		}
		got += k
	}
	// An answer to a spoofed source, and one to the peer.
	for _, dst := range []netip.Addr{netip.MustParseAddr("198.18.0.9"), target.Remote.Addr()} {
		f := stacktest.Ether(wire.MAC{2}, wire.MAC{1}, 0, wire.EtherTypeIPv4, stacktest.IP(stacktest.IPHeader(victim.Addr(), dst, wire.ProtoTCP),
			stacktest.TCPSeg(victim, netip.AddrPortFrom(dst, 9), wire.TCPFields{Flags: wire.TCPFlagACK})))
		if _, err := m.WriteBatch([]link.Packet{{Buf: f, N: len(f)}}); err != nil {
			t.Fatal(err)
		}
	}
	if m.Answered() != 1 {
		t.Fatalf("answered %d, want 1", m.Answered())
	}
	m.Close()
	if _, err := m.ReadBatch(pkts); err == nil {
		t.Fatal("ReadBatch after Close")
	}
}
