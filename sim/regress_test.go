package sim

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// pairNet returns two hosts, a (10.0.0.1) and b (10.0.0.2), on one link
// with the given impairments in both directions.
func pairNet(seed uint64, cfgA, cfgB stack.Config, ab, ba impair.Config) (*Network, *Node, *Node, *Link) {
	n := New(seed)
	a := n.AddHost("a", cfgA)
	b := n.AddHost("b", cfgB)
	l := n.Link(a.AddNIC(stack.NICConfig{}, "10.0.0.1/24"), b.AddNIC(stack.NICConfig{}, "10.0.0.2/24"), ab, ba)
	return n, a, b, l
}

// runFlows runs the applications until they are done, checks every flow,
// closes the sockets and runs until the network is quiet.
func runFlows(t *testing.T, n *Network, apps *Apps, limit time.Duration) {
	t.Helper()
	if err := n.Run(limit, apps.Done); err != nil {
		t.Errorf("run: %v", err)
	}
	for _, err := range apps.Check() {
		t.Error(err)
	}
	apps.CloseAll()
	if err := n.RunQuiet(limit); err != nil {
		t.Errorf("quiet: %v", err)
	}
	for _, v := range n.Violations() {
		t.Error(v)
	}
}

// TestRegressSACKBlocksOnData: data segments that also carry SACK blocks
// (both directions send, both lose) must shrink their data by the SACK
// option's length, or the segment outgrows the MTU (RFC 9293 §3.7.1: the
// MSS counts no TCP options). Before the fix the sender wrote past the
// end of its frame buffer and panicked.
func TestRegressSACKBlocksOnData(t *testing.T) {
	loss := impair.Config{Delay: 10 * time.Millisecond, Loss: 0.02, MTU: 1500}
	n, a, b, _ := pairNet(1, stack.Config{}, stack.Config{}, loss, loss)
	apps := NewApps(n)
	if _, err := apps.Serve(b, netip.MustParseAddrPort("0.0.0.0:80"), ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		apps.Dial(0, a, netip.MustParseAddrPort("10.0.0.2:80"), FlowConfig{Up: 300_000, Down: 300_000})
	}
	runFlows(t, n, apps, time.Hour)
	for _, l := range n.Links() {
		if d := l.AB.Model.Counters().DroppedMTU + l.BA.Model.Counters().DroppedMTU; d != 0 {
			t.Errorf("%d frames larger than the MTU", d)
		}
	}
}

// TestRegressAckSeqAfterRTO: after an RTO, SND.NXT goes back to SND.UNA,
// but the peer may already hold everything up to SND.MAX. A pure ACK
// sent with SEQ=SND.NXT then falls below the peer's RCV.NXT, is
// unacceptable (RFC 9293 §3.10.7.4) and is dropped with the
// acknowledgment it carries. When both sides went back (each lost the
// other's ACKs for a while), each ignored the other's ACKs, and dropped
// the other's retransmissions as old, until the connection timed out.
// Pure ACKs (and RSTs) now carry SND.MAX, as Linux's tcp_acceptable_seq
// does.
func TestRegressAckSeqAfterRTO(t *testing.T) {
	cfg := stack.Config{}
	cfg.TCP.NoSACK, cfg.TCP.NoTimestamps = true, true
	link := impair.Config{Delay: 10 * time.Millisecond}
	n, a, b, l := pairNet(1, cfg, cfg, link, link)
	ln, err := b.Stack.Listen(netip.MustParseAddrPort("0.0.0.0:80"), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Stack.Connect(n.Now(), netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(time.Minute, func() bool { return ln.Pending() > 0 }); err != nil {
		t.Fatal(err)
	}
	s := ln.Accept()
	// Both sides send a window of data at once; every pure ACK is lost
	// for three seconds, so both time out and go back to SND.UNA while
	// the peer holds the whole window.
	pureACK := func(_ clock.Instant, f []byte) bool {
		_, _, k, seg, ok := tcpData(f)
		return ok && k == 0 && seg.Flags() == wire.TCPFlagACK
	}
	l.AB.Filter, l.BA.Filter = pureACK, pureACK
	data := make([]byte, 10*1460)
	Pattern(1, 0, data)
	for _, x := range []*stack.TCPConn{c, s} {
		if k, err := x.Write(data); k != len(data) || err != nil {
			t.Fatalf("write: %d, %v", k, err)
		}
	}
	if err := n.RunFor(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	l.AB.Filter, l.BA.Filter = nil, nil
	acked := func() bool { return c.Info().Unacked == 0 && s.Info().Unacked == 0 }
	if err := n.Run(time.Minute, acked); err != nil {
		t.Errorf("data not acknowledged a minute after the ACKs came back: %v (client %+v, server %+v)", err, c.Info(), s.Info())
	}
	for _, x := range []*stack.TCPConn{c, s} {
		if x.Info().TotalRetrans == 0 {
			t.Errorf("%v: no retransmission; the scenario needs both sides to time out", x.LocalAddr())
		}
	}
}

// TestRegressCloseFreesReceiveBuffer: a connection that reached CLOSED in
// an orderly way (TIME-WAIT over) keeps its unread data for the
// application, as Linux does. Closing or aborting it then must give the
// buffer back; before the fix Close took the "unread data: reset" path,
// counted AbortOnClose and kept the chunks, and Abort did nothing at all
// (RFC 9293 §3.10.4: in CLOSED, close just deletes the TCB).
func TestRegressCloseFreesReceiveBuffer(t *testing.T) {
	for _, abort := range []bool{false, true} {
		t.Run(fmt.Sprintf("abort=%v", abort), func(t *testing.T) {
			cfg := stack.Config{}
			cfg.TCP.TimeWait = time.Second
			link := impair.Config{Delay: 10 * time.Millisecond}
			n, a, b, _ := pairNet(1, cfg, cfg, link, link)
			ln, err := b.Stack.Listen(netip.MustParseAddrPort("0.0.0.0:80"), 0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := a.Stack.Connect(n.Now(), netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:80"))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Run(time.Minute, func() bool { return ln.Pending() > 0 }); err != nil {
				t.Fatal(err)
			}
			s := ln.Accept()
			c.CloseWrite()
			s.Write(make([]byte, 10000))
			s.Close()
			if err := n.Run(time.Minute, func() bool { return c.State() == tcp.Closed }); err != nil {
				t.Fatal(err)
			}
			if got := c.Info().RcvBuffered; got != 10000 {
				t.Fatalf("%d bytes readable after TIME-WAIT, want 10000", got)
			}
			if abort {
				c.Abort()
			} else {
				c.Close()
			}
			if err := n.RunFor(time.Second); err != nil {
				t.Fatal(err)
			}
			if k := c.BufferedChunks(); k != 0 {
				t.Errorf("%d buffer chunks held after Close", k)
			}
			if st := a.Stack.Stats().TCP; st.AbortOnClose != 0 || st.OutRsts != 0 {
				t.Errorf("Close of a CLOSED connection counted AbortOnClose %d, OutRsts %d", st.AbortOnClose, st.OutRsts)
			}
		})
	}
}

// TestRegressOrphanZeroWindowRetransmits: an orphaned connection (closed
// by its application) with data in flight learns of a zero window — here
// from an ACK that a reordering link delivered after a newer one — and
// the data in flight is lost. The RTO must still resend the first
// segment, which serves as the zero-window probe (RFC 9293 §3.8.6.1,
// MUST-36; Linux's tcp_retransmit_skb always sends the segment at
// SND.UNA, whatever the window). Before the fix only a connection with an
// owner did; an orphan backed off in silence until it timed out and
// reset the peer.
func TestRegressOrphanZeroWindowRetransmits(t *testing.T) {
	link := impair.Config{Delay: 10 * time.Millisecond}
	n, a, b, l := pairNet(1, stack.Config{}, stack.Config{}, link, link)
	var lastACK []byte
	n.OnFrame = func(ev *FrameEvent) {
		if _, _, k, seg, ok := tcpData(ev.Frame); ok && ev.Kind == FrameOffered && ev.Dir == l.BA && k == 0 && seg.Flags() == wire.TCPFlagACK {
			lastACK = append(lastACK[:0], ev.Frame...)
		}
	}
	ln, err := b.Stack.Listen(netip.MustParseAddrPort("0.0.0.0:80"), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Stack.Connect(n.Now(), netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(time.Minute, func() bool { return ln.Pending() > 0 }); err != nil {
		t.Fatal(err)
	}
	s := ln.Accept()
	data := make([]byte, 20100)
	Pattern(7, 0, data)
	var got []byte
	buf := make([]byte, 64<<10)
	n.OnStep = func() {
		for {
			k, _ := s.Read(buf)
			if k == 0 {
				return
			}
			got = append(got, buf[:k]...)
		}
	}
	c.Write(data[:100])
	if err := n.RunFor(time.Second); err != nil || lastACK == nil {
		t.Fatalf("no pure ACK from the server: %v", err)
	}
	// The rest is written and the connection closed; every data segment
	// is lost, then the old ACK arrives again, with a zero window.
	l.AB.Filter = func(_ clock.Instant, f []byte) bool { _, _, k, _, _ := tcpData(f); return k > 0 }
	c.Write(data[100:])
	c.Close()
	if err := n.RunFor(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	seg := wire.TCP(lastACK[14+20:])
	seg.SetWindow(0)
	seg.SetChecksum(0)
	seg.SetChecksum(wire.TCPChecksum(seg, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")))
	b.Port(0).Send(lastACK)
	if err := n.RunFor(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if w := c.Info().SndWnd; w != 0 {
		t.Fatalf("send window %d after the zero-window ACK, want 0", w)
	}
	l.AB.Filter = nil
	if err := n.Run(5*time.Minute, func() bool { return len(got) == len(data) }); err != nil {
		t.Fatalf("%d of %d bytes arrived: %v (sender %+v)", len(got), len(data), err, c.Info())
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data differs")
	}
}

// TestDeterministicListenerClose: closing a listener resets the
// connections waiting in its queues, and closing a stack resets every
// connection; the RSTs must leave in the same order in every run (the
// stack keeps its connections in a map).
func TestDeterministicListenerClose(t *testing.T) {
	run := func() [32]byte {
		n, a, b, _ := pairNet(5, stack.Config{}, stack.Config{}, impair.Config{Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond})
		n.EnableDigest()
		ln, err := b.Stack.Listen(netip.MustParseAddrPort("0.0.0.0:80"), 0)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if _, err := a.Stack.Connect(n.Now(), netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:80")); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.Run(time.Minute, func() bool { return ln.Pending() == 20 }); err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if err := n.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if _, err := b.Stack.Connect(n.Now(), netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.1:9")); err != nil {
				t.Fatal(err)
			}
		}
		n.RunFor(time.Millisecond)
		a.Stack.Close()
		b.Stack.Close()
		if err := n.RunQuiet(time.Hour); err != nil {
			t.Fatal(err)
		}
		return n.Digest()
	}
	first := run()
	for i := range 5 {
		if d := run(); d != first {
			t.Fatalf("run %d differs from the first", i+2)
		}
	}
}

// TestRegressBogusSACK: a forged ACK claims, with a SACK block, data the
// receiver never got (the link lost it). RFC 2018 §8 and RFC 6675 §5.1:
// SACK information is advisory; a sender that keeps it across a
// retransmission timeout needs a test for reneging, or it never resends
// what the receiver lacks. Two cases: a block starting at the cumulative
// ACK (which a receiver never sends: it is not above the ACK, RFC 2018
// §4) must be ignored; a block above it is found out when the cumulative
// ACK reaches its start (the receiver "reneged", as Linux's
// tcp_check_sack_reneging sees it) and the scoreboard is dropped. Before
// the fix the sender skipped the claimed data after every timeout until
// Retries2 ended the connection.
func TestRegressBogusSACK(t *testing.T) {
	for _, atACK := range []bool{true, false} {
		t.Run(fmt.Sprintf("atACK=%v", atACK), func(t *testing.T) {
			link := impair.Config{Delay: 5 * time.Millisecond}
			// The server writes its 90 KB at once: a send buffer that
			// holds it (auto-tuning starts at 64 KiB).
			big := stack.Config{TCP: tcp.Config{SndBuf: 1 << 20}}
			n, a, b, l := pairNet(11, big, big, link, link)
			ln, err := b.Stack.Listen(netip.MustParseAddrPort("0.0.0.0:80"), 0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := a.Stack.Connect(n.Now(), netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:80"))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Run(time.Minute, func() bool { return ln.Pending() > 0 }); err != nil {
				t.Fatal(err)
			}
			s := ln.Accept()
			data := make([]byte, 100_000)
			Pattern(3, 0, data)
			var got []byte
			buf := make([]byte, 64<<10)
			n.OnStep = func() {
				for {
					k, _ := c.Read(buf)
					if k == 0 {
						return
					}
					got = append(got, buf[:k]...)
				}
			}
			s.Write(data[:10_000])
			if err := n.RunFor(time.Second); err != nil {
				t.Fatal(err)
			}
			// The first transmission of the next three segments is lost,
			// and a forged ACK claims them (or the last two) received.
			const mss = 1448
			x := s.Info().SndMax
			dropped := map[wire.Seq]bool{}
			l.BA.Filter = func(_ clock.Instant, fr []byte) bool {
				_, _, k, seg, ok := tcpData(fr)
				if !ok || k == 0 || !seg.Seq().InRange(x, x+3*mss) || dropped[seg.Seq()] {
					return false
				}
				dropped[seg.Seq()] = true
				return true
			}
			s.Write(data[10_000:])
			if err := n.RunFor(time.Microsecond); err != nil {
				t.Fatal(err)
			}
			if len(dropped) != 3 {
				t.Fatalf("%d segments lost, want 3", len(dropped))
			}
			start := x
			if !atACK {
				start = x + mss
			}
			seg := wire.TCPFields{Seq: c.Info().SndMax, Ack: x, Flags: wire.TCPFlagACK, Window: 65535}
			seg.Options.NumSACK = 1
			seg.Options.SACK[0] = wire.SACKBlock{Start: start, End: x + 3*mss}
			b.Port(0).Inject(spoof(end{b, s}, seg))
			if err := n.Run(10*time.Minute, func() bool { return len(got) == len(data) }); err != nil {
				t.Fatalf("%d of %d bytes arrived: %v (sender %+v)", len(got), len(data), err, s.Info())
			}
			if !bytes.Equal(got, data) {
				t.Fatal("data differs")
			}
			if d := n.Time(); d > 5*time.Second {
				t.Errorf("transfer took until %v", d)
			}
		})
	}
}
