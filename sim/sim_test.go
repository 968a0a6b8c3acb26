package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// TestDeterminism: the same seed gives the same run, frame for frame and
// byte for byte (the SHA-256 of every frame offered to and delivered by
// every link, with its time and link), and different seeds give
// different runs.
func TestDeterminism(t *testing.T) {
	seeds := []uint64{1, 2, 3, 7, 42, 1000, 12345}
	if testing.Short() {
		seeds = seeds[:3]
	}
	seen := map[[32]byte]uint64{}
	for _, seed := range seeds {
		var digests [2][32]byte
		var frames [2]uint64
		for i := range digests {
			s := buildScenario(t, seed)
			s.n.EnableDigest()
			if err := s.n.Run(flowLimit, s.apps.Done); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			s.apps.CloseAll()
			if err := s.n.RunQuiet(quietLimit); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			digests[i] = s.n.Digest()
			for _, l := range s.n.Links() {
				frames[i] += l.AB.Delivered + l.BA.Delivered
			}
		}
		if digests[0] != digests[1] || frames[0] != frames[1] {
			t.Errorf("seed %d: two runs differ: %x (%d frames) and %x (%d frames)", seed, digests[0], frames[0], digests[1], frames[1])
		}
		if other, dup := seen[digests[0]]; dup {
			t.Errorf("seeds %d and %d gave the same run", other, seed)
		}
		seen[digests[0]] = seed
		t.Logf("seed %d: %d frames delivered, digest %x", seed, frames[0], digests[0][:8])
	}
}

// TestSpeed: a transfer of a few megabytes over a 500 kbit/s link with
// 1 % loss takes a minute of virtual time, and must take well under a
// second of wall time (without the race detector).
func TestSpeed(t *testing.T) {
	link := impair.Config{Delay: 20 * time.Millisecond, Rate: 500_000, Queue: 50, Loss: 0.01}
	back := impair.Config{Delay: 20 * time.Millisecond}
	n, a, b, _ := pairNet(1, stack.Config{}, stack.Config{}, link, back)
	apps := NewApps(n)
	if _, err := apps.Serve(b, netip.MustParseAddrPort("0.0.0.0:80"), ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	const size = 3_600_000
	f := apps.Dial(0, a, netip.MustParseAddrPort("10.0.0.2:80"), FlowConfig{Up: size})
	start := time.Now()
	if err := n.Run(time.Hour, apps.Done); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}
	virtual := f.S.At.Sub(f.Start) // the server has read every byte
	frames := n.Links()[0].AB.Delivered + n.Links()[0].BA.Delivered
	t.Logf("%d bytes in %v of virtual time, %v of wall time (%.0f× real time), %d frames, %d steps",
		size, virtual, wall, float64(virtual)/float64(wall), frames, n.Steps())
	if virtual < 50*time.Second {
		t.Errorf("transfer took %v of virtual time; the test wants about a minute", virtual)
	}
	if !raceEnabled && wall > time.Second {
		t.Errorf("a minute of simulated transfer took %v of wall time, want well under a second", wall)
	}
}

// wrapConfig returns stack options whose connections start their sequence
// numbers iss below 2³² and their timestamps tsBefore ms below 2³².
func wrapConfig(iss, tsBefore uint32) stack.Config {
	var c stack.Config
	c.InitialSeq = func(_, _ netip.AddrPort) (wire.Seq, uint32) { return wire.Seq(-iss), -tsBefore }
	return c
}

// TestSequenceWrap: connections whose ISNs lie just below 2³² move data
// both ways across the wrap, through loss, reordering and duplication
// (RFC 9293 §3.4: all sequence arithmetic is modulo 2³²), with and
// without SACK and timestamps.
func TestSequenceWrap(t *testing.T) {
	for _, opts := range []struct {
		name           string
		nosack, nots   bool
		iss, tsv, size uint32
	}{
		{"sack+ts", false, false, 100_000, 1000, 1_000_000},
		{"nosack", true, false, 1, 1000, 500_000},
		{"nots", false, true, 1460 * 3, 1000, 500_000},
		{"plain", true, true, 70_000, 1000, 500_000},
	} {
		t.Run(opts.name, func(t *testing.T) {
			ca, cb := wrapConfig(opts.iss, opts.tsv), wrapConfig(opts.iss/2, opts.tsv)
			for _, c := range []*stack.Config{&ca, &cb} {
				c.TCP.NoSACK, c.TCP.NoTimestamps = opts.nosack, opts.nots
			}
			link := impair.Config{Delay: 15 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.02, Dup: 0.01, Reorder: 0.02}
			n, a, b, _ := pairNet(3, ca, cb, link, link)
			var low, high bool
			n.OnFrame = func(ev *FrameEvent) {
				if _, _, _, seg, ok := tcpData(ev.Frame); ok && ev.Kind == FrameOffered {
					low = low || seg.Seq() < 1<<31
					high = high || seg.Seq() > 1<<31
				}
			}
			apps := NewApps(n)
			if _, err := apps.Serve(b, netip.MustParseAddrPort("0.0.0.0:80"), ServerConfig{}); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				apps.Dial(0, a, netip.MustParseAddrPort("10.0.0.2:80"), FlowConfig{Up: int64(opts.size), Down: int64(opts.size)})
			}
			runFlows(t, n, apps, time.Hour)
			checkIdle(t, n, apps)
			if !low || !high {
				t.Errorf("segments did not cross the wrap (below 2³¹: %v, above: %v)", low, high)
			}
			checkPAWS(t, n)
		})
	}
}

// checkPAWS checks that PAWS (RFC 7323 §5.3) dropped only segments the
// links delivered late (overtaken by a segment sent after them, or a
// second copy): an older TSval than TS.Recent comes from such a copy,
// never from a wrap of the timestamp clock.
func checkPAWS(t *testing.T, n *Network) {
	t.Helper()
	// A router's links bring it frames late too, and it may send them on
	// in a new order after resolving the next hop (its neighbour queue
	// keeps packets, not their lateness): any host behind it may see them.
	var routed uint64
	for _, nd := range n.Nodes() {
		if nd.router != nil {
			for _, p := range nd.Ports() {
				if p.Link() != nil {
					routed += p.in.Late
				}
			}
		}
	}
	for _, h := range n.Nodes() {
		if h.Stack == nil {
			continue
		}
		late := routed
		for _, p := range h.Ports() {
			late += p.in.Late
		}
		if p := h.Stack.Stats().TCP.PAWSEstab; p > late {
			t.Errorf("%s: %d segments dropped by PAWS, but links delivered only %d late or twice", h.Name, p, late)
		}
	}
}

// TestTimestampWrap: TSval starts two seconds below 2³² and wraps during
// a transfer of half a minute over a slow link: PAWS (RFC 7323 §5.3)
// compares timestamps modulo 2³² (§5.2), so nothing is dropped as old
// and RTT samples stay sane.
func TestTimestampWrap(t *testing.T) {
	link := impair.Config{Delay: 25 * time.Millisecond, Rate: 1_000_000, Queue: 30, Loss: 0.01}
	n, a, b, _ := pairNet(4, wrapConfig(5000, 2000), wrapConfig(5000, 2000), link, link)
	var before, after bool
	n.OnFrame = func(ev *FrameEvent) {
		if _, _, _, seg, ok := tcpData(ev.Frame); ok && ev.Kind == FrameOffered {
			var f wire.TCPFields
			if f.Decode(seg) == nil && f.Options.HasTimestamp {
				before = before || f.Options.TSVal > 1<<31
				after = after || f.Options.TSVal < 1<<31
			}
		}
	}
	apps := NewApps(n)
	if _, err := apps.Serve(b, netip.MustParseAddrPort("0.0.0.0:80"), ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	f := apps.Dial(clock.Instant(500*time.Millisecond), a, netip.MustParseAddrPort("10.0.0.2:80"), FlowConfig{Up: 2_000_000, Down: 2_000_000})
	runFlows(t, n, apps, time.Hour)
	if !before || !after {
		t.Errorf("TSvals did not wrap (seen above 2³¹: %v, below: %v)", before, after)
	}
	checkPAWS(t, n)
	if rtt := f.C.Info.RTT; rtt < 25*time.Millisecond || rtt > 10*time.Second {
		t.Errorf("client's smoothed RTT %v after the wrap", rtt)
	}
	t.Logf("transfer took %v; client RTT %v, RTO %v", f.C.At.Sub(f.Start), f.C.Info.RTT, f.C.Info.RTO)
}

// TestLinkDownUp: a link that goes down for longer than several RTOs and
// comes back: the transfer resumes (RTO back-off, RFC 6298 §5.5) and
// completes.
func TestLinkDownUp(t *testing.T) {
	link := impair.Config{Delay: 10 * time.Millisecond, Rate: 10_000_000, Queue: 100}
	n, a, b, l := pairNet(5, stack.Config{}, stack.Config{}, link, link)
	apps := NewApps(n)
	if _, err := apps.Serve(b, netip.MustParseAddrPort("0.0.0.0:80"), ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	f := apps.Dial(0, a, netip.MustParseAddrPort("10.0.0.2:80"), FlowConfig{Up: 3_000_000, Down: 1_000_000})
	for i, at := range []time.Duration{300 * time.Millisecond, 5 * time.Second} {
		d := time.Duration(4+3*i) * time.Second
		n.At(clock.Instant(at), func() { l.SetUp(false) })
		n.At(clock.Instant(at+d), func() { l.SetUp(true) })
	}
	runFlows(t, n, apps, time.Hour)
	if down := l.AB.Model.Counters().DroppedDown + l.BA.Model.Counters().DroppedDown; down == 0 {
		t.Error("no frame was dropped while the link was down")
	}
	if f.C.Info.TotalRetrans == 0 {
		t.Error("no retransmission after the outage")
	}
	t.Logf("transfer took %v", f.C.At.Sub(f.Start))
}

// TestSwitchTopology: four hosts on a switch, every host talking to every
// other at once through impaired links; the switch learns where each MAC
// is and floods only the first frames (ARP broadcasts).
func TestSwitchTopology(t *testing.T) {
	n := New(9)
	sw := n.AddSwitch("sw")
	var hosts []*Node
	for i := range 4 {
		h := n.AddHost(fmt.Sprintf("h%d", i+1), stack.Config{})
		p := h.AddNIC(stack.NICConfig{}, fmt.Sprintf("10.0.0.%d/24", i+1))
		imp := impair.Config{Delay: time.Duration(i+1) * 5 * time.Millisecond, Loss: 0.01, Reorder: 0.01}
		n.Link(p, sw.AddPort(), imp, imp)
		hosts = append(hosts, h)
	}
	apps := NewApps(n)
	for _, h := range hosts {
		if _, err := apps.Serve(h, netip.MustParseAddrPort("0.0.0.0:80"), ServerConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range hosts {
		for j, g := range hosts {
			if i != j {
				apps.Dial(0, h, netip.AddrPortFrom(g.Port(0).Addr(), 80), FlowConfig{Up: 50_000, Down: 80_000})
			}
		}
	}
	runFlows(t, n, apps, time.Hour)
	checkCounters(t, n)
	for _, h := range hosts {
		if nfu := h.Stack.Stats().Link.RxNotForUs; nfu > 10 {
			t.Errorf("%s: %d frames not for it: the switch floods", h.Name, nfu)
		}
	}
}

// TestPattern: Pattern gives the same bytes whatever the offsets and
// lengths it is asked for (the writer and the reader cut the stream
// differently).
func TestPattern(t *testing.T) {
	const id = 0x0123456789abcdef
	whole := make([]byte, 1000)
	for i := range whole {
		Pattern(id, int64(i), whole[i:i+1])
	}
	if binary.BigEndian.Uint64(whole) != id {
		t.Fatalf("header %x, want the flow ID", whole[:8])
	}
	for off := 0; off < 40; off++ {
		for n := 0; n < 100; n += 7 {
			p := make([]byte, n)
			Pattern(id, int64(off), p)
			if !bytes.Equal(p, whole[off:off+n]) {
				t.Fatalf("Pattern(%d, %d bytes) = %x, want %x", off, n, p, whole[off:off+n])
			}
		}
	}
}
