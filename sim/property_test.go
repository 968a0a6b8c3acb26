package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Property tests over seeds (issue 4 item 2): each seed builds a random
// network (two hosts on a link, or three or four on a switch) of a random
// family (IPv4, IPv6, or both: each flow then picks one, and every server
// listens on a dual-stack socket), random stack options (DAD on or off,
// router solicitations or not), random impairments on every link direction, links that
// go down and come back, and random applications (bulk both ways, echo,
// half-close, aborts, slow readers, small buffers, busy listeners with
// full backlogs, many connections at once, UDP with fragmentation, ISNs
// and TSvals just below 2³²). After each run:
//
//   - every byte read is the byte written at that offset, and every flow
//     nobody aborted delivered all its bytes both ways and ended cleanly;
//   - the network goes quiet within a bounded virtual time and leaves no
//     connection (TIME-WAIT included), no deadline, no buffer behind;
//   - nothing panicked, and no invariant broke on the way (no deadline in
//     the past, sequence space outstanding within what is buffered);
//   - the counters agree with the links: frames delivered are frames
//     received, frames sent are frames offered, every corrupted frame
//     was counted as dropped (CheckCorrupt) and checksum errors come only
//     from corruption, PAWS dropped only copies a link delivered late or
//     twice, and a host whose data segments a link lost retransmitted.
//
// `go test ./sim` runs -sim.seeds (2000) seeds; -sim.seeds=100000 runs a
// longer sweep; a failing seed prints the command that replays it.

// Bounds of a run, in virtual time: the applications must be done within
// flowLimit (the worst case is a few link outages of up to 8 s, each
// costing an RTO back-off, plus slow readers' pauses), and the network
// must then go quiet within quietLimit (TIME-WAIT of up to 60 s,
// FIN-WAIT-2 of 60 s, keep-alive of a half-open peer: 15 s + 9 × 15 s).
const (
	flowLimit  = 30 * time.Minute
	quietLimit = 30 * time.Minute
)

func TestProperties(t *testing.T) {
	forSeeds(t, *flagSeeds, func(t *testing.T, seed uint64) {
		runScenario(t, seed)
	})
}

// scenario is one random run.
type scenario struct {
	t     *testing.T
	seed  uint64
	r     *rand.Rand
	n     *Network
	apps  *Apps
	hosts []*Node
	desc  []string
	// sent holds every data segment a host sent, arrived those that
	// reached a host intact: a segment sent and never arrived was lost.
	sent, arrived map[segKey]bool
	// synAcked holds the clients a SYN-ACK reached.
	synAcked map[netip.AddrPort]bool
	// flippedFrags counts corrupted fragments delivered, by destination,
	// source and IP ID; doubleFlipped marks destinations that got two of
	// one datagram.
	flippedFrags  map[fragKey]int
	doubleFlipped map[netip.Addr]bool
	// start is when the applications may start: after DAD, with IPv6.
	start time.Duration
	// heard holds, for each pair of hosts, when a frame from the first
	// reached the second, in order.
	heard         map[[2]netip.Addr][]clock.Instant
	flaps, static bool
}

// segKey identifies a data segment.
type segKey struct {
	src, dst netip.AddrPort
	seq      uint32
	n        int
}

func keyOf(frame []byte) (segKey, bool) {
	src, dst, k, seg, ok := tcpData(frame)
	if !ok || k == 0 {
		return segKey{}, false
	}
	return segKey{netip.AddrPortFrom(src, seg.SrcPort()), netip.AddrPortFrom(dst, seg.DstPort()), uint32(seg.Seq()), k}, true
}

func (s *scenario) say(format string, args ...any) {
	s.desc = append(s.desc, fmt.Sprintf(format, args...))
}

func runScenario(t *testing.T, seed uint64) {
	s := buildScenario(t, seed)
	startCapture(t, s.n)
	defer func() {
		if t.Failed() || *flagV {
			t.Logf("scenario of seed %d:\n\t%s", seed, strings.Join(s.desc, "\n\t"))
			for _, f := range s.apps.Flows() {
				t.Logf("%v", f)
			}
			logStats(t, s.n)
		}
	}()
	n, apps := s.n, s.apps
	if err := n.Run(flowLimit, apps.Done); err != nil {
		t.Errorf("applications not done: %v", err)
	}
	for _, f := range apps.Flows() {
		// ARP gives up after three requests a second apart (RFC 1122
		// §2.3.2.1's flood limit, Linux's mcast_solicit): a connect made
		// while a link is down for longer, or while bursty loss eats the
		// requests or replies, fails with EHOSTUNREACH, as on Linux.
		if st := f.Client.Stack.Stats().Net; !s.static && f.Up.Written == 0 && errors.Is(f.C.Err, syscall.EHOSTUNREACH) && st.ARPResolveFailed+st.NDPResolveFailed > 0 {
			continue
		}
		// A connect times out (ETIMEDOUT after SynRetries) when the links
		// lose every SYN or every SYN-ACK: a Gilbert–Elliott chain moves
		// per frame, so on an otherwise idle link its bad state can
		// outlast the two minutes of SYN retries.
		if errors.Is(f.C.Err, syscall.ETIMEDOUT) && f.Up.Written == 0 && f.S.Conn == nil && f.C.Conn != nil && !s.synAcked[f.C.Conn.LocalAddr()] {
			continue
		}
		// An established connection times out (RTO retries or
		// keep-alive, ETIMEDOUT; its peer then sees a reset) only if the
		// links let nothing through from the peer for a long time: a
		// Gilbert–Elliott chain stuck in its bad state on a link gone
		// quiet can do that. Allowed if the side that timed out had heard
		// nothing from its peer for a minute.
		if s.cutOff(f.C) || s.cutOff(f.S) {
			continue
		}
		if err := f.Check(); err != nil {
			t.Error(err)
		}
	}
	for _, u := range apps.UDPFlows() {
		// Fragments are flipped independently: two flips in one
		// datagram's fragments can cancel in its checksum (RFC 1071), so
		// a damaged datagram is allowed where that happened.
		for _, a := range u.To.Port(0).Addrs {
			if u.Bad > 0 && s.doubleFlipped[a.Addr()] {
				u.Bad = 0
			}
		}
		if err := u.Check(); err != nil {
			t.Error(err)
		}
	}
	apps.CloseAll()
	if err := n.RunQuiet(quietLimit); err != nil {
		t.Errorf("network not quiet: %v", err)
	}
	for _, v := range n.Violations() {
		t.Error(v)
	}
	checkIdle(t, n, apps)
	checkCounters(t, n)
	checkPAWS(t, n)
	aborted := false
	for _, f := range apps.Flows() {
		aborted = aborted || f.Aborted()
	}
	if !aborted {
		lost := map[netip.Addr][]segKey{}
		for k := range s.sent {
			if !s.arrived[k] {
				lost[k.src.Addr()] = append(lost[k.src.Addr()], k)
			}
		}
		for _, h := range s.hosts {
			for _, a := range h.Port(0).Addrs {
				if l := lost[a.Addr()]; len(l) > 0 && h.Stack.Stats().TCP.RetransSegs == 0 {
					t.Errorf("%s: links lost its data segments (%d, such as %+v), but it retransmitted none", h.Name, len(l), l[0])
				}
			}
		}
	}
}

// cutOff reports whether side timed out (ETIMEDOUT) after a minute in
// which no TCP segment from its peer reached it.
func (s *scenario) cutOff(side Side) bool {
	if !errors.Is(side.Err, syscall.ETIMEDOUT) || side.Conn == nil {
		return false
	}
	h := s.heard[[2]netip.Addr{side.Conn.RemoteAddr().Addr(), side.Conn.LocalAddr().Addr()}]
	i, _ := slices.BinarySearch(h, side.At)
	last := clock.Instant(0)
	if i > 0 {
		last = h[i-1]
	}
	return side.At.Sub(last) >= time.Minute
}

// buildScenario draws the network, the impairments and the applications
// of a seed.
func buildScenario(t *testing.T, seed uint64) *scenario {
	r := rand.New(rand.NewPCG(seed, 0x73696d))
	s := &scenario{t: t, seed: seed, r: r, n: New(seed), sent: map[segKey]bool{}, arrived: map[segKey]bool{}, synAcked: map[netip.AddrPort]bool{}, heard: map[[2]netip.Addr][]clock.Instant{},
		flippedFrags: map[fragKey]int{}, doubleFlipped: map[netip.Addr]bool{}}
	n := s.n
	n.CheckCorrupt = true
	n.OnStep = s.invariants
	n.OnFrame = func(ev *FrameEvent) {
		switch {
		case ev.Kind == FrameOffered && ev.Dir.From.Node.Stack != nil:
			if k, ok := keyOf(ev.Frame); ok {
				s.sent[k] = true
			}
		case ev.Kind == FrameDelivered && ev.Dir.To.Node.Stack != nil && ev.Corrupt && fragmentPayload(ev.Frame, ev.Bit):
			if k, ok := fragOf(ev.Frame); ok {
				s.flippedFrags[k]++
				if s.flippedFrags[k] >= 2 {
					s.doubleFlipped[k.dst] = true
				}
			}
		case ev.Kind == FrameDelivered && ev.Dir.To.Node.Stack != nil && (!ev.Corrupt || ev.Bit >= 48 && ev.Bit < 96 || unchecked6(ev.Frame, ev.Bit)):
			// (A flipped bit in the source MAC goes unnoticed, and so
			// does one in the fields of IPv6's header nothing checks.)
			if k, ok := keyOf(ev.Frame); ok {
				s.arrived[k] = true
			}
			if src, dst, _, seg, ok := tcpData(ev.Frame); ok {
				if seg.Flags()&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN|wire.TCPFlagACK {
					s.synAcked[netip.AddrPortFrom(dst, seg.DstPort())] = true
				}
				k := [2]netip.Addr{src, dst}
				s.heard[k] = append(s.heard[k], ev.At)
			}
		}
	}
	s.apps = NewApps(n)

	nh := 2
	if r.IntN(10) < 4 {
		nh = 3 + r.IntN(2)
	}
	mtu := []int{1500, 1500, 1500, 1280, 576, 9000}[r.IntN(6)]
	// The family: IPv4, IPv6 (a link of at least 1280 bytes, RFC 8200
	// §5), or both.
	fam := []string{"IPv4", "IPv4", "IPv4", "IPv4", "IPv6", "IPv6", "IPv6", "dual", "dual", "dual"}[r.IntN(10)]
	if fam != "IPv4" && mtu < 1280 {
		mtu = 1280
	}
	// Three or four hosts share a switch, or each has a link of its own
	// to a router (its own subnet, the default routes through the
	// router).
	routed := nh > 2 && r.IntN(3) == 0
	s.say("%d hosts, %s, MTU %d, routed %v", nh, fam, mtu, routed)
	var ports []*Port
	var router *Router
	if routed {
		router = n.AddRouter("router", RouterConfig{})
	}
	for i := range nh {
		cfg := s.stackConfig(i, fam != "IPv4")
		h := n.AddHost(fmt.Sprintf("h%d", i+1), cfg)
		var addrs, raddrs []string
		subnet := 0
		if routed {
			subnet = i + 1
		}
		if fam != "IPv6" {
			addrs = append(addrs, fmt.Sprintf("10.0.%d.%d/24", subnet, i+1))
			raddrs = append(raddrs, fmt.Sprintf("10.0.%d.254/24", subnet))
		}
		if fam != "IPv4" {
			addrs = append(addrs, fmt.Sprintf("2001:db8:%x::%x/64", subnet, i+1))
			raddrs = append(raddrs, fmt.Sprintf("2001:db8:%x::fe/64", subnet))
		}
		p := h.AddNIC(stack.NICConfig{MTU: mtu}, addrs...)
		ports = append(ports, p)
		s.hosts = append(s.hosts, h)
		if routed {
			rp := router.AddPort(mtu, raddrs...)
			for _, ra := range rp.Addrs {
				all := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
				if ra.Addr().Is6() {
					all = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
				}
				if err := h.Stack.AddRoute(all, ra.Addr(), p.NIC); err != nil {
					s.t.Fatal(err)
				}
			}
			l := n.Link(p, rp, s.impairment(mtu), s.impairment(mtu))
			s.say("link %s: %v / %v", l.Name, l.AB.Model.Config(), l.BA.Model.Config())
		}
	}
	if routed {
		// Linked above.
	} else if nh == 2 {
		l := n.Link(ports[0], ports[1], s.impairment(mtu), s.impairment(mtu))
		s.say("link %s: %v / %v", l.Name, l.AB.Model.Config(), l.BA.Model.Config())
	} else {
		sw := n.AddSwitch("sw")
		for _, p := range ports {
			l := n.Link(p, sw.AddPort(), s.impairment(mtu), s.impairment(mtu))
			s.say("link %s: %v / %v", l.Name, l.AB.Model.Config(), l.BA.Model.Config())
		}
	}
	if r.IntN(2) == 0 {
		s.static = true
		s.say("static neighbours (no ARP)")
		for i, h := range s.hosts {
			if routed {
				rp := router.Node().Port(i)
				for _, a := range rp.Addrs {
					h.Stack.AddNeighbor(h.Port(0).NIC, a.Addr(), rp.MAC)
				}
				continue
			}
			for _, p := range ports {
				if p.Node != h {
					for _, a := range p.Addrs {
						h.Stack.AddNeighbor(h.Port(0).NIC, a.Addr(), p.MAC)
					}
				}
			}
		}
	}
	for _, l := range n.Links() {
		if r.IntN(7) != 0 {
			continue
		}
		s.flaps = true
		for range 1 + r.IntN(2) {
			at := time.Duration(r.IntN(10_000)) * time.Millisecond
			d := time.Duration(100+r.IntN(8_000)) * time.Millisecond
			s.say("link %s down at %v for %v", l.Name, at, d)
			n.At(n.Now().Add(at), func() { l.SetUp(false) })
			n.At(n.Now().Add(at+d), func() { l.SetUp(true) })
		}
	}
	s.applications()
	return s
}

// stackConfig draws a host's options; v6 draws the IPv6 ones too.
func (s *scenario) stackConfig(i int, v6 bool) stack.Config {
	r := s.r
	var c stack.Config
	var opts []string
	if v6 {
		// DAD on (the applications start once it is done) or off;
		// router solicitations sent (nobody answers) or not.
		if r.IntN(2) == 0 {
			c.IPv6.DADTransmits = -1
			opts = append(opts, "nodad")
		} else {
			s.start = 2 * time.Second
		}
		if r.IntN(2) == 0 {
			c.IPv6.IgnoreRA = true
			opts = append(opts, "accept_ra=0")
		}
	}
	if r.IntN(5) == 0 {
		c.TCP.NoSACK = true
		opts = append(opts, "nosack")
	}
	if r.IntN(5) == 0 {
		c.TCP.NoTimestamps = true
		opts = append(opts, "nots")
	}
	if r.IntN(6) == 0 {
		c.TCP.NoWindowScale = true
		opts = append(opts, "nows")
	}
	if r.IntN(3) == 0 {
		c.TCP.RcvBuf = 4096 << r.IntN(8)
		c.TCP.SndBuf = 4096 << r.IntN(8)
		opts = append(opts, fmt.Sprintf("rcvbuf=%d sndbuf=%d", c.TCP.RcvBuf, c.TCP.SndBuf))
	}
	switch r.IntN(4) {
	case 0:
		c.TCP.DelayedACK = -1
		opts = append(opts, "nodelack")
	case 1:
		c.TCP.DelayedACK = time.Duration(1+r.IntN(200)) * time.Millisecond
		opts = append(opts, fmt.Sprintf("delack=%v", c.TCP.DelayedACK))
	}
	c.TCP.TimeWait = time.Duration(1+r.IntN(60)) * time.Second
	c.TCP.FinTimeout = time.Duration(1+r.IntN(60)) * time.Second
	if r.IntN(4) == 0 {
		c.TCP.InitialCwnd = 1 + r.IntN(10)
		opts = append(opts, fmt.Sprintf("iw=%d", c.TCP.InitialCwnd))
	}
	if r.IntN(4) == 0 {
		// Sequence numbers and timestamps start just below 2³², so both
		// wrap during the run (RFC 9293 §3.4 arithmetic, RFC 7323 §5.2).
		wr := s.n.Rand("wrap", uint64(i))
		c.InitialSeq = func(_, _ netip.AddrPort) (wire.Seq, uint32) {
			return wire.Seq(-uint32(1 + wr.IntN(300_000))), -uint32(1 + wr.IntN(30_000))
		}
		opts = append(opts, "wrap")
	}
	s.say("h%d: tw=%v fin=%v %s", i+1, c.TCP.TimeWait, c.TCP.FinTimeout, strings.Join(opts, " "))
	return c
}

// impairment draws one link direction's impairments.
func (s *scenario) impairment(mtu int) impair.Config {
	r := s.r
	c := impair.Config{MTU: mtu}
	c.Delay = time.Duration(r.IntN(50_000)) * time.Microsecond
	if r.IntN(3) == 0 {
		c.Jitter = time.Duration(r.IntN(10_000)) * time.Microsecond
		c.KeepOrder = r.IntN(2) == 0
	}
	if r.IntN(2) == 0 {
		c.Loss = r.Float64() * 0.05
	}
	if r.IntN(7) == 0 {
		c.GE = impair.GilbertElliott{P: 0.01 * r.Float64(), R: 0.3 + 0.5*r.Float64(), LossBad: 1}
	}
	if r.IntN(5) == 0 {
		c.Reorder = r.Float64() * 0.1
	}
	if r.IntN(5) == 0 {
		c.Dup = r.Float64() * 0.05
	}
	if r.IntN(5) == 0 {
		c.Corrupt = r.Float64() * 0.02
		c.CorruptOffset = 14 * r.IntN(2)
	}
	if r.IntN(4) == 0 {
		c.Rate = uint64(1+r.IntN(100)) * 1_000_000
		c.Queue = 5 + r.IntN(100)
	}
	return c
}

// size draws a stream length: mostly small, sometimes large.
func (s *scenario) size() int64 {
	r := s.r
	switch k := r.IntN(40); {
	case k < 4:
		return 0
	case k < 30:
		return r.Int64N(20_000)
	case k < 39:
		return r.Int64N(100_000)
	default:
		return r.Int64N(500_000)
	}
}

// behavior draws how one side uses a connection.
func (s *scenario) behavior(total int64) Behavior {
	r := s.r
	sizes := []int{1, 100, 1000, 1460, 16 << 10, 64 << 10}
	b := Behavior{MaxWrite: sizes[r.IntN(len(sizes))], MaxRead: sizes[r.IntN(len(sizes))]}
	if total > 20_000 {
		// Byte-sized calls on a large stream only cost CPU time.
		b.MaxWrite, b.MaxRead = max(b.MaxWrite, 100), max(b.MaxRead, 100)
	}
	if r.IntN(8) == 0 {
		// A slow reader: about 30 pauses of up to 3 s over the stream,
		// so the pauses add up to a minute or less.
		reads := float64(total)/float64(b.MaxRead/2+1) + 1
		b.Pause = min(0.3, 30/reads) * (0.2 + 0.8*r.Float64())
		b.MaxPause = time.Duration(r.IntN(3000)) * time.Millisecond
	}
	if r.IntN(10) == 0 {
		b.ReadBuffer = 4096 << r.IntN(5)
	}
	if r.IntN(12) == 0 {
		b.AbortAfter = 1 + r.Int64N(total+16)
	}
	b.Nagle = r.IntN(5) == 0
	return b
}

// applications draws the servers, flows and UDP traffic.
func (s *scenario) applications() {
	r, n, apps := s.r, s.n, s.apps
	for _, h := range s.hosts {
		cfg := ServerConfig{}
		if r.IntN(5) == 0 {
			cfg.Backlog = 1 + r.IntN(4)
			cfg.AcceptDelay = time.Duration(10+r.IntN(500)) * time.Millisecond
		}
		// :: takes both families (a dual-stack socket).
		if _, err := apps.Serve(h, netip.AddrPortFrom(netip.IPv6Unspecified(), 80), cfg); err != nil {
			s.t.Fatal(err)
		}
		s.say("%s serves :80 backlog %d accept delay %v", h.Name, cfg.Backlog, cfg.AcceptDelay)
	}
	nf := 1 + r.IntN(5)
	if r.IntN(12) == 0 {
		nf = 10 + r.IntN(20) // many connections at once
	}
	for range nf {
		ci := r.IntN(len(s.hosts))
		si := (ci + 1 + r.IntN(len(s.hosts)-1)) % len(s.hosts)
		fc := FlowConfig{Up: s.size(), Down: s.size(), Echo: r.IntN(5) == 0}
		fc.Client = s.behavior(fc.Up + fc.Down)
		fc.Server = s.behavior(fc.Up + fc.Down)
		at := n.Now().Add(s.start + time.Duration(r.IntN(3000))*time.Millisecond)
		f := apps.Dial(at, s.hosts[ci], netip.AddrPortFrom(s.addrOf(s.hosts[si]), 80), fc)
		s.say("flow %d at %v %s->%s %+v", f.ID, at, s.hosts[ci].Name, s.hosts[si].Name, fc)
	}
	if r.IntN(5) == 0 {
		si := r.IntN(len(s.hosts))
		dst := netip.AddrPortFrom(s.addrOf(s.hosts[si]), 53)
		// The sink listens on :: (its addresses may still be tentative).
		if _, err := apps.UDPSink(s.hosts[si], netip.AddrPortFrom(netip.IPv6Unspecified(), 53)); err != nil {
			s.t.Fatal(err)
		}
		for range 1 + r.IntN(2) {
			ci := (si + 1 + r.IntN(len(s.hosts)-1)) % len(s.hosts)
			count, size := 1+r.IntN(50), 12+r.IntN(4000)
			apps.SendUDP(n.Now().Add(s.start+time.Duration(r.IntN(2000))*time.Millisecond), s.hosts[ci], dst, count, size, time.Duration(1+r.IntN(50))*time.Millisecond)
			s.say("udp %s->%s: %d datagrams up to %d bytes", s.hosts[ci].Name, s.hosts[si].Name, count, size)
		}
	}
}

// addrOf draws one of a host's addresses: of its only family, or, on a
// dual-stack host, of either.
func (s *scenario) addrOf(h *Node) netip.Addr {
	a := h.Port(0).Addrs
	return a[s.r.IntN(len(a))].Addr()
}

// invariants runs after every step: no connection has more sequence
// space outstanding than its buffered data, SYN and FIN account for.
func (s *scenario) invariants() {
	for _, c := range s.apps.Conns() {
		if c.State() == tcp.Closed {
			continue
		}
		i := c.Info()
		if int(i.Unacked) > i.SndBuffered+2 {
			s.n.Violation("%v->%v %v: %d bytes unacknowledged but %d buffered", c.LocalAddr(), c.RemoteAddr(), i.State, i.Unacked, i.SndBuffered)
		}
	}
}
