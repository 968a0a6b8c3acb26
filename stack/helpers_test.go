package stack_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
)

// The test network: A is 10.0.0.1, B is 10.0.0.2, both in 10.0.0.0/24;
// raw nodes (peers played frame by frame) take 10.0.0.9 and up.
var (
	ipA   = netip.MustParseAddr("10.0.0.1")
	ipB   = netip.MustParseAddr("10.0.0.2")
	ipRaw = netip.MustParseAddr("10.0.0.9")
	bcast = netip.MustParseAddr("10.0.0.255")
)

// pair returns a segment with stacks A and B on it.
func pair(t testing.TB, cfgA, cfgB stack.Config) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n := stacktest.New(t)
	if cfgA.Seed == 0 {
		cfgA.Seed = 1
	}
	if cfgB.Seed == 0 {
		cfgB.Seed = 2
	}
	a := n.AddHost("A", cfgA, "10.0.0.1/24")
	b := n.AddHost("B", cfgB, "10.0.0.2/24")
	return n, a, b
}

// withRaw returns a segment with stack A and a raw node R (10.0.0.9) that
// A already knows (a permanent neighbour entry), so that A's answers to R
// need no ARP.
func withRaw(t testing.TB, cfg stack.Config) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n := stacktest.New(t)
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	a := n.AddHost("A", cfg, "10.0.0.1/24")
	r := n.AddRaw("R", stacktest.MAC(9), ipRaw)
	a.Stack.AddNeighbor(a.NIC, ipRaw, r.MAC)
	return n, a, r
}

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// connect opens a connection from client to server's port (listening
// there first unless l is given) and returns both ends once accepted.
func connect(t testing.TB, n *stacktest.Net, client, server *stacktest.Node, port uint16) (c, s *stack.TCPConn, l *stack.TCPListener) {
	t.Helper()
	l, err := server.Stack.Listen(ap(netip.IPv4Unspecified(), port), 0)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	c, s = connectTo(t, n, client, l, ap(server.Addr, port))
	return c, s, l
}

// connectTo dials raddr from client and accepts the connection from l.
func connectTo(t testing.TB, n *stacktest.Net, client *stacktest.Node, l *stack.TCPListener, raddr netip.AddrPort) (c, s *stack.TCPConn) {
	t.Helper()
	c, err := client.Stack.Connect(n.Now, netip.AddrPort{}, raddr)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	n.RunUntil(10*time.Second, func() bool { return c.State() == tcp.Established && l.Pending() > 0 })
	s = l.Accept()
	if s == nil {
		t.Fatal("Accept: nothing")
	}
	n.Flush()
	return c, s
}

// payload returns n deterministic pseudo-random bytes.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// transfer writes data on from and reads it on to, running the network,
// until every byte has arrived; it returns what arrived.
func transfer(t testing.TB, n *stacktest.Net, from, to *stack.TCPConn, data []byte, limit time.Duration) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	sent := 0
	step := func() bool {
		for sent < len(data) {
			k, err := from.Write(data[sent:])
			if errors.Is(err, stack.ErrWouldBlock) {
				break
			}
			if err != nil {
				t.Fatalf("Write after %d bytes: %v", sent, err)
			}
			sent += k
		}
		// What was written may arrive at once (over loopback, the whole
		// window in one flush, ACKed at once: nothing is left to step
		// through), so read after sending it.
		n.Flush()
		for {
			k, err := to.Read(buf)
			got = append(got, buf[:k]...)
			if err != nil || k == 0 {
				break
			}
		}
		n.Flush()
		return len(got) >= len(data)
	}
	// The condition is the application: it writes and reads as the
	// buffers allow. Over loopback a whole exchange can finish inside
	// one Flush with no timer left armed, so the network goes idle while
	// the application still has work: run it again while it progresses.
	ok := false
	for start := n.Now; !ok; {
		before := sent + len(got)
		ok = n.TryRunUntil(limit-n.Now.Sub(start), step)
		if sent+len(got) == before {
			break
		}
	}
	if !ok {
		t.Fatalf("transfer: %d of %d bytes sent, %d received by %v", sent, len(data), len(got), n.Now)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("transfer: received bytes differ from those sent (%d bytes)", len(data))
	}
	return got
}

// readAll reads what is readable on c.
func readAll(c *stack.TCPConn) ([]byte, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		k, err := c.Read(buf)
		out = append(out, buf[:k]...)
		if err != nil {
			if errors.Is(err, stack.ErrWouldBlock) {
				err = nil
			}
			return out, err
		}
		if k == 0 {
			return out, nil
		}
	}
}

// frames returns the logged frames from index i that match pred.
func frames(n *stacktest.Net, i int, pred func(f *stacktest.Frame, d *stacktest.Decoded) bool) []*stacktest.Frame {
	var out []*stacktest.Frame
	for _, f := range n.Since(i) {
		if pred(f, f.Decode()) {
			out = append(out, f)
		}
	}
	return out
}

// from is a frame predicate: sent by node nd.
func from(nd *stacktest.Node) func(f *stacktest.Frame, d *stacktest.Decoded) bool {
	return func(f *stacktest.Frame, d *stacktest.Decoded) bool { return f.From == nd }
}

// decodeOne decodes frame f and fails the test if it does not parse.
func decodeOne(t testing.TB, f *stacktest.Frame) *stacktest.Decoded {
	t.Helper()
	d := f.Decode()
	if d.Err != nil {
		t.Fatalf("frame %v: %v", f, d.Err)
	}
	return d
}

// counters returns every counter of st by name.
func counters(st stack.Stats) map[string]uint64 {
	m := map[string]uint64{}
	st.Each(func(n string, v uint64) { m[n] = v })
	return m
}

// diff returns the counters that changed between two snapshots, as
// after-before.
func diff(before, after stack.Stats) map[string]int64 {
	b, a := counters(before), counters(after)
	out := map[string]int64{}
	for k, v := range a {
		if v != b[k] {
			out[k] = int64(v) - int64(b[k])
		}
	}
	return out
}

// expectDrop injects frame into nd's stack and checks that nothing is
// sent in answer, that the counters in want grew by exactly their value,
// and that no other drop counter moved.
func expectDrop(t *testing.T, n *stacktest.Net, nd *stacktest.Node, frame []byte, want map[string]int64) {
	t.Helper()
	before := nd.Stack.Stats()
	i := len(n.Log)
	nd.Inject(frame)
	if out := n.Since(i); len(out) != 0 {
		t.Errorf("frame answered: %v", out[0])
	}
	got := diff(before, nd.Stack.Stats())
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s grew by %d, want %d (all changes: %v)", k, got[k], v, got)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && !benign[k] {
			t.Errorf("%s also changed by %d (all changes: %v)", k, v, got)
		}
	}
}

// benign are counters every received frame moves.
var benign = map[string]bool{"Link.RxFrames": true, "Link.RxBytes": true, "Net.InReceives": true, "Net.Ip6InReceives": true}

func isErr(err, target error) bool { return errors.Is(err, target) }

// newPacket wraps frame in a link.Packet.
func newPacket(frame []byte) *link.Packet {
	return &link.Packet{Buf: frame, N: len(frame)}
}
