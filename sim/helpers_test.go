package sim

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"runtime/debug"
	"sort"
	"strings"
	"testing"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Flags of the seeded tests. A failing seed prints the command that
// replays it with these.
var (
	flagSeed  = flag.Uint64("sim.seed", 0, "run only this seed (replays a failure)")
	flagSeeds = flag.Int("sim.seeds", 2000, "number of seeds the seeded tests run")
	flagFrom  = flag.Uint64("sim.from", 1, "first seed the seeded tests run")
	flagPcap  = flag.String("sim.pcap", "", "with -sim.seed: write every frame of the run to this pcap file")
	flagV     = flag.Bool("sim.v", false, "log each run's scenario, flows and counters")
)

// replayCmd is the one-line command that replays seed of test and writes
// its capture.
func replayCmd(test string, seed uint64) string {
	return fmt.Sprintf("go test ./sim -run '^%s$' -sim.seed=%d -sim.pcap=/tmp/seed%d.pcap -sim.v", test, seed, seed)
}

// forSeeds runs f for seeds -sim.from… (-sim.seeds of them) as parallel
// subtests, or for -sim.seed alone. A failure or panic prints the replay
// command.
func forSeeds(t *testing.T, seeds int, f func(t *testing.T, seed uint64)) {
	test := t.Name()
	one := func(t *testing.T, seed uint64) {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("panic: %v\n%s", p, debug.Stack())
			}
			if t.Failed() {
				t.Logf("seed %d failed; replay with:\n\t%s", seed, replayCmd(test, seed))
			}
		}()
		f(t, seed)
	}
	if *flagSeed != 0 {
		one(t, *flagSeed)
		return
	}
	for i := range uint64(seeds) {
		seed := *flagFrom + i
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			one(t, seed)
		})
	}
}

// startCapture starts the -sim.pcap capture of a replayed run.
func startCapture(t *testing.T, n *Network) {
	if *flagPcap == "" || *flagSeed == 0 {
		return
	}
	closeFn, err := n.CaptureFile(*flagPcap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := closeFn(); err != nil {
			t.Error(err)
		}
		t.Logf("captures: every frame delivered in %s, every frame sent in the .sent file beside it", *flagPcap)
	})
}

// checkIdle checks that a network that went quiet left no state behind:
// no connection in any table (TIME-WAIT included), no deadline, and every
// connection the applications held CLOSED with no buffer chunk.
func checkIdle(t *testing.T, n *Network, apps *Apps) {
	t.Helper()
	for _, nd := range n.Nodes() {
		if nd.Stack == nil {
			continue
		}
		if cs := nd.Stack.Conns(); len(cs) > 0 {
			var s []string
			for _, c := range cs {
				s = append(s, fmt.Sprintf("%v->%v %v", c.Local, c.Remote, c.Info.State))
			}
			sort.Strings(s)
			t.Errorf("%s: %d connections left after the network went quiet: %s", nd.Name, len(cs), strings.Join(s, ", "))
		}
		if d := nd.Stack.NextDeadline(); d != clock.Never {
			t.Errorf("%s: deadline %v left after the network went quiet", nd.Name, d)
		}
	}
	if apps == nil {
		return
	}
	for _, c := range apps.Conns() {
		if c.State() != tcp.Closed || c.BufferedChunks() != 0 {
			t.Errorf("connection %v->%v: %v with %d buffer chunks at the end", c.LocalAddr(), c.RemoteAddr(), c.State(), c.BufferedChunks())
		}
	}
}

// checkCounters checks the stacks' counters against what the links did:
// every frame a link delivered to a host is in its Link.RxFrames, every
// frame it sent in Link.TxFrames; and checksum errors come only from
// frames a link corrupted.
func checkCounters(t *testing.T, n *Network) {
	t.Helper()
	// A router forwards what was corrupted on its way in (without
	// always knowing, for IPv6, which has no header checksum): that
	// damage may reach any host behind it.
	var routed uint64
	for _, nd := range n.Nodes() {
		if nd.router != nil {
			for _, p := range nd.Ports() {
				if p.Link() != nil {
					routed += p.in.CorruptDelivered
				}
			}
		}
	}
	for _, nd := range n.Nodes() {
		if nd.Stack == nil {
			continue
		}
		var rx, tx, corrupt uint64
		for _, p := range nd.Ports() {
			tx += p.Unattached
			rx += p.Injected
			if p.Link() != nil {
				rx += p.in.Delivered
				tx += p.out.Offered
				corrupt += p.in.CorruptDelivered
			}
		}
		st := nd.Stack.Stats()
		if st.Link.RxFrames != rx {
			t.Errorf("%s: Link.RxFrames %d, links delivered %d", nd.Name, st.Link.RxFrames, rx)
		}
		if st.Link.TxFrames != tx {
			t.Errorf("%s: Link.TxFrames %d, links were offered %d", nd.Name, st.Link.TxFrames, tx)
		}
		csum := st.TCP.InCsumErrors + st.UDP.InCsumErrors + st.Net.InHdrErrors + st.Net.InCsumErrors +
			st.UDP6.InCsumErrors + st.Net.Icmp6InCsumErrors + st.Net.Ip6InHdrErrors
		if csum > corrupt+routed {
			t.Errorf("%s: %d checksum errors, but links corrupted only %d frames to it", nd.Name, csum, corrupt)
		}
	}
}

// tcpData returns the source and destination addresses, payload length
// and header of a TCP segment in an Ethernet frame, IPv4 or IPv6 (not a
// fragment), or false.
func tcpData(frame []byte) (src, dst netip.Addr, payload int, seg wire.TCP, ok bool) {
	if len(frame) < 14+20 {
		return src, dst, 0, nil, false
	}
	var l4 []byte
	switch binary.BigEndian.Uint16(frame[12:]) {
	case uint16(wire.EtherTypeIPv4):
		ip, err := wire.ParseIPv4(frame[14:])
		if err != nil || ip.Protocol() != wire.ProtoTCP || ip.IsFragment() {
			return src, dst, 0, nil, false
		}
		src, dst, l4 = ip.Src(), ip.Dst(), ip.Payload()
	case uint16(wire.EtherTypeIPv6):
		ip, err := wire.ParseIPv6(frame[14:])
		if err != nil {
			return src, dst, 0, nil, false
		}
		var c wire.IPv6Chain
		if c.Walk(ip) != nil || c.Fragmented() || c.Proto != wire.ProtoTCP {
			return src, dst, 0, nil, false
		}
		src, dst, l4 = ip.Src(), ip.Dst(), c.Upper(ip)
	default:
		return src, dst, 0, nil, false
	}
	t, err := wire.ParseTCP(l4)
	if err != nil {
		return src, dst, 0, nil, false
	}
	return src, dst, len(t.Payload()), t, true
}

// fragKey identifies a fragment's packet: destination, source and
// identification, of either family.
type fragKey struct {
	dst, src netip.Addr
	id       uint32
}

// fragOf returns the key of the packet a fragment in an Ethernet frame
// belongs to, or false.
func fragOf(frame []byte) (fragKey, bool) {
	if len(frame) < 14+20 {
		return fragKey{}, false
	}
	switch binary.BigEndian.Uint16(frame[12:]) {
	case uint16(wire.EtherTypeIPv4):
		ip, err := wire.ParseIPv4(frame[14:])
		if err != nil || !ip.IsFragment() {
			return fragKey{}, false
		}
		return fragKey{ip.Dst(), ip.Src(), uint32(ip.ID())}, true
	case uint16(wire.EtherTypeIPv6):
		ip, err := wire.ParseIPv6(frame[14:])
		if err != nil {
			return fragKey{}, false
		}
		var c wire.IPv6Chain
		c.Walk(ip)
		if c.FragHeader == 0 {
			return fragKey{}, false
		}
		return fragKey{ip.Dst(), ip.Src(), c.Frag.ID}, true
	}
	return fragKey{}, false
}

// logStats logs every non-zero counter of every host.
func logStats(t *testing.T, n *Network) {
	for _, nd := range n.Nodes() {
		if nd.Stack == nil {
			continue
		}
		st := nd.Stack.Stats()
		m := st.Map()
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%d", k, m[k])
		}
		t.Logf("%s:%s", nd.Name, b.String())
	}
	for _, l := range n.Links() {
		for _, d := range []*Dir{l.AB, l.BA} {
			c := d.Model.Counters()
			t.Logf("%v: offered %d delivered %d lost %d queue %d down %d mtu %d dup %d corrupt %d reordered %d",
				d, d.Offered, d.Delivered, c.DroppedLoss, c.DroppedQueue, c.DroppedDown, c.DroppedMTU, c.Duplicated, d.CorruptDelivered, c.Reordered)
		}
	}
}

// end is one end of a connection the attacker aims at.
type end struct {
	node *Node
	c    *stack.TCPConn
}

// spoof returns a frame from the peer of e's connection (as if), to e.
func spoof(e end, f wire.TCPFields) []byte {
	from, to := e.c.RemoteAddr(), e.c.LocalAddr()
	p := e.node.Port(0)
	return stacktest.Ether(p.MAC, MAC(99, 1), 0, wire.EtherTypeIPv4,
		stacktest.IP(stacktest.IPHeader(from.Addr(), to.Addr(), wire.ProtoTCP), stacktest.TCPSeg(from, to, f)))
}
