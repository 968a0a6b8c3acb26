package stack_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// fuzzFixture is stack A with an established connection to B carrying
// data both ways (some of it in flight), a listener on A:80 and a UDP
// socket on A:53: the state FuzzStackInput throws frames at. It is built
// the same way every time (fixed seeds, virtual time), so frames captured
// from it make seeds that hit the connection's sequence space.
type fuzzFixture struct {
	n     *stacktest.Net
	a, b  *stacktest.Node
	c, s  *stack.TCPConn // c on A, dialed to B:8080; s on B
	l     *stack.TCPListener
	u     *stack.UDPEndpoint
	ab    []byte // what c sends to s
	ba    []byte // what s sends to c
	sentA int
	sentB int
	gotA  []byte // what c received
	gotB  []byte // what s received
}

const fuzzData = 60000

func newFuzzFixture(t testing.TB) *fuzzFixture {
	cfg := stack.Config{TCP: tcp.Config{RcvBuf: 16 << 10, SndBuf: 16 << 10}}
	n, a, b := pair(t, cfg, cfg)
	a.Stack.AddNeighbor(a.NIC, ipB, b.MAC)
	b.Stack.AddNeighbor(b.NIC, ipA, a.MAC)
	x := &fuzzFixture{n: n, a: a, b: b, ab: payload(10, fuzzData), ba: payload(11, fuzzData)}
	var err error
	if x.l, err = a.Stack.Listen(ap(netip.IPv4Unspecified(), 80), 0); err != nil {
		t.Fatal(err)
	}
	if x.u, err = a.Stack.BindUDP(ap(netip.IPv4Unspecified(), 53)); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Stack.Listen(ap(ipB, 8080), 0)
	if err != nil {
		t.Fatal(err)
	}
	x.c, x.s = connectTo(t, n, a, lb, ap(ipB, 8080))
	// Both write; after 1.5 ms (the delay is 1 ms) the first flights have
	// arrived and their ACKs are on the way.
	x.pump()
	n.RunFor(1500 * time.Microsecond)
	x.pump()
	return x
}

// pump writes what the send buffers take and reads what arrived.
func (x *fuzzFixture) pump() {
	write := func(c *stack.TCPConn, data []byte, sent *int) {
		for *sent < len(data) {
			k, err := c.Write(data[*sent:])
			*sent += k
			if err != nil || k == 0 {
				return
			}
		}
	}
	read := func(c *stack.TCPConn, got *[]byte) {
		var buf [8192]byte
		for {
			k, err := c.Read(buf[:])
			*got = append(*got, buf[:k]...)
			if err != nil || k == 0 {
				return
			}
		}
	}
	write(x.c, x.ab, &x.sentA)
	write(x.s, x.ba, &x.sentB)
	read(x.c, &x.gotA)
	read(x.s, &x.gotB)
	x.n.Flush()
}

// aimedAtConn reports whether frame is a TCP segment of the fixture's
// connection that passes the checksum: such a frame may legitimately
// reset the connection or put its own bytes into the stream.
func (x *fuzzFixture) aimedAtConn(frame []byte) bool {
	d := stacktest.Decode(frame)
	if d.IP == nil || d.IP.Protocol != wire.ProtoTCP || d.IP.MF || d.IP.FragOffset != 0 {
		return false
	}
	p := d.IPv4.Payload()
	if len(p) < wire.TCPHeaderLen || wire.TCPChecksum(p, d.IP.Src, d.IP.Dst) != 0 {
		return false
	}
	t := wire.TCP(p)
	return netip.AddrPortFrom(d.IP.Src, t.SrcPort()) == x.c.RemoteAddr() &&
		netip.AddrPortFrom(d.IP.Dst, t.DstPort()) == x.c.LocalAddr()
}

// finish completes the transfer both ways, then closes both ends and
// waits until every connection of both stacks is gone. If strict, the
// bytes must arrive exactly; otherwise the connection may have been
// reset (by a frame that was aimed at it).
func (x *fuzzFixture) finish(t testing.TB, strict bool) {
	t.Helper()
	ok := x.n.TryRunUntil(10*time.Minute, func() bool {
		x.pump()
		if x.c.State() == tcp.Closed || x.s.State() == tcp.Closed {
			return true
		}
		return len(x.gotA) >= fuzzData && len(x.gotB) >= fuzzData
	})
	if strict {
		if !ok || x.c.State() == tcp.Closed || x.s.State() == tcp.Closed {
			t.Fatalf("transfer did not complete: A got %d, B got %d of %d; states %v %v (%v %v)",
				len(x.gotA), len(x.gotB), fuzzData, x.c.State(), x.s.State(), x.c.Err(), x.s.Err())
		}
		if !bytes.Equal(x.gotA, x.ba) || !bytes.Equal(x.gotB, x.ab) {
			t.Fatal("received bytes differ from those sent")
		}
	}
	x.c.Close()
	x.s.Close()
	x.l.Close()
	x.u.Close()
	if !x.n.TryRunUntil(10*time.Minute, func() bool {
		return len(x.a.Stack.Conns()) == 0 && len(x.b.Stack.Conns()) == 0
	}) {
		t.Fatalf("connections left: A %+v, B %+v", x.a.Stack.Conns(), x.b.Stack.Conns())
	}
}

// FuzzStackInput feeds arbitrary frames to a stack that holds an
// established connection with data in flight, a listener and a UDP
// socket. The input is a sequence of frames, each preceded by its length
// (two bytes, big-endian; see splitFrames), so that sequences such as
// fragments, handshakes or bursts are reachable too. Properties: no panic;
// no counter goes down; and unless a frame is a valid segment of the
// connection itself, the connection still delivers every byte both ways,
// in order, and closes cleanly. Each input runs twice: as it is, and with
// its checksums made valid, so that the fuzzer reaches past the checksum
// checks into the protocols. Seeds are frames captured from the fixture's
// own traffic, edits of them and inputs the fuzzer found
// (testdata/fuzz/FuzzStackInput, see testdata/fuzz/README.md).
func FuzzStackInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := splitFrames(data)
		for fix := range 2 {
			if fix == 1 {
				changed := false
				for i, fr := range frames {
					fixed := bytes.Clone(fr)
					stacktest.FixChecksums(fixed)
					changed = changed || !bytes.Equal(fixed, fr)
					frames[i] = fixed
				}
				if !changed {
					break
				}
			}
			x := newFuzzFixture(t)
			aimed := false
			for _, fr := range frames {
				before := x.a.Stack.Stats()
				x.a.Inject(fr)
				checkGrowth(t, before, x.a.Stack.Stats())
				aimed = aimed || x.aimedAtConn(fr)
				x.n.RunFor(100 * time.Microsecond)
			}
			x.finish(t, !aimed)
		}
	})
}

// splitFrames cuts a fuzz input into frames: each is preceded by its
// length, two bytes big-endian; the last one takes what is left if it is
// shorter than its length says. At most 64 frames are taken.
func splitFrames(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 && len(out) < 64 {
		n := int(data[0])<<8 | int(data[1])
		data = data[2:]
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// joinFrames is the inverse of splitFrames, for seeds.
func joinFrames(frames ...[]byte) []byte {
	var out []byte
	for _, f := range frames {
		out = append(out, byte(len(f)>>8), byte(len(f)))
		out = append(out, f...)
	}
	return out
}

// checkGrowth fails if a counter of after is below its value in before;
// CurrEstab, a gauge, may go down.
func checkGrowth(t testing.TB, before, after stack.Stats) {
	t.Helper()
	b := counters(before)
	for k, v := range counters(after) {
		if k != "TCP.CurrEstab" && v < b[k] {
			t.Errorf("counter %s went down from %d to %d", k, b[k], v)
		}
	}
}

// TestFuzzFixture checks the fixture without a fuzz frame: the data is
// really in flight when the frame comes, and the transfer completes.
func TestFuzzFixture(t *testing.T) {
	x := newFuzzFixture(t)
	if x.c.Info().Unacked == 0 || x.s.Info().Unacked == 0 {
		t.Errorf("no data in flight: unacked %d %d", x.c.Info().Unacked, x.s.Info().Unacked)
	}
	if x.sentA == fuzzData {
		t.Errorf("the whole transfer fits the buffers: the window is not exercised")
	}
	x.finish(t, true)
	_ = errors.Is
}
