package stack_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/flood"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
)

// Floods at the core (issue 13 item 6), with the frames of package
// internal/flood handed straight to A's HandleFrame as if they came from
// B's side of the link: B, the real peer, never sees them. Time is
// virtual; what these tests assert does not depend on speed. The
// benchmarks below give the cost of each kind in ns a segment.

var (
	spoofOut = netip.MustParsePrefix("198.18.0.0/15")
	spoofIn  = netip.MustParsePrefix("10.0.0.128/26")
)

// floodNet is A (the victim, listening on port 80) and B with conns
// established connections from B to A.
type floodNet struct {
	n      *stacktest.Net
	a, b   *stacktest.Node
	l      *stack.TCPListener
	c, s   []*stack.TCPConn // B's ends, A's ends
	frames uint64
}

func newFloodNet(t testing.TB, cfg stack.Config, conns int) *floodNet {
	t.Helper()
	n, a, b := pair(t, cfg, stack.Config{})
	f := &floodNet{n: n, a: a, b: b}
	var err error
	if f.l, err = a.Stack.Listen(ap(netip.IPv4Unspecified(), 80), 0); err != nil {
		t.Fatal(err)
	}
	for range conns {
		c, s := connectTo(t, n, b, f.l, ap(ipA, 80))
		f.c, f.s = append(f.c, c), append(f.s, s)
	}
	// A answers spoofed sources off the link through B (which drops
	// what is not its own), those on it after ARP, which no one answers.
	if err := a.Stack.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), ipB, a.NIC); err != nil {
		t.Fatal(err)
	}
	return f
}

// targets returns A's ends as the flood's targets.
func (f *floodNet) targets() []flood.Target {
	var ts []flood.Target
	for _, s := range f.s {
		i := s.Info()
		ts = append(ts, flood.Target{Local: s.LocalAddr(), Remote: s.RemoteAddr(),
			RcvNxt: i.RcvNxt, RcvWnd: i.RcvWnd, SndUna: i.SndUna, SndNxt: i.SndMax})
	}
	return ts
}

// gen returns a generator of kind k aimed at A.
func (f *floodNet) gen(k flood.Kind) *flood.Gen {
	return flood.New(flood.Config{Kind: k, DstMAC: f.a.MAC, SrcMAC: f.b.MAC, Dst: ap(ipA, 80),
		Sources: []netip.Prefix{spoofOut, spoofIn}, Targets: f.targets(), Seed: 11})
}

// run floods A with g's frames, perMS a millisecond of virtual time, for
// d, running the network (and so A's output and timers) in between.
func (f *floodNet) run(g *flood.Gen, perMS int, d time.Duration) {
	pkt := link.Packet{Buf: make([]byte, 2048)}
	for end := f.n.Now.Add(d); f.n.Now < end; {
		for range perMS {
			pkt.N = g.Frame(pkt.Buf)
			f.a.Stack.HandleFrame(f.n.Now, f.a.NIC, &pkt)
			f.frames++
		}
		f.n.RunFor(time.Millisecond)
	}
}

// checkIntact asserts that every connection is established and carries
// data both ways, byte for byte.
func (f *floodNet) checkIntact(t *testing.T) {
	t.Helper()
	for i := range f.c {
		if f.s[i].State() != tcp.Established || f.c[i].State() != tcp.Established {
			t.Fatalf("connection %d: %v / %v", i, f.c[i].State(), f.s[i].State())
		}
	}
	for _, i := range []int{0, len(f.c) / 2, len(f.c) - 1} {
		data := payload(uint64(i), 20000)
		if got := transfer(t, f.n, f.c[i], f.s[i], data, 10*time.Second); !bytes.Equal(got, data) {
			t.Fatalf("connection %d: upload damaged", i)
		}
		if got := transfer(t, f.n, f.s[i], f.c[i], data, 10*time.Second); !bytes.Equal(got, data) {
			t.Fatalf("connection %d: download damaged", i)
		}
	}
}

// TestFloodChallengeACKLimit: in-window RSTs (RFC 5961 §3.2) and ACKs
// outside the acceptable range (§5.2) at 100 connections, 50,000 a
// second for three seconds. Each would earn a challenge ACK; the stack
// sends at most ChallengeACKLimit a second (RFC 5961 §7, Linux's
// tcp_challenge_ack_limit) over all connections, and the limit is what
// held them back. No connection is reset or harmed.
func TestFloodChallengeACKLimit(t *testing.T) {
	for _, k := range []flood.Kind{flood.RST, flood.ACK} {
		t.Run(k.String(), func(t *testing.T) {
			cfg := stack.Config{}
			cfg.TCP.ChallengeACKLimit = 20
			f := newFloodNet(t, cfg, 100)
			before := f.a.Stack.Stats().TCP
			const secs = 3
			f.run(f.gen(k), 50, secs*time.Second)
			st := f.a.Stack.Stats().TCP
			sent, held := st.ChallengeACKs-before.ChallengeACKs, st.ChallengeLimit-before.ChallengeLimit
			t.Logf("%d %v segments: %d challenge ACKs, %d held back by the limit, %d by the per-connection rate (OOWRateLimited)",
				f.frames, k, sent, held, st.OOWRateLimited-before.OOWRateLimited)
			// The budget's one-second windows may straddle the run's
			// ends: one more second's worth.
			if max := uint64(cfg.TCP.ChallengeACKLimit) * (secs + 1); sent > max || sent == 0 {
				t.Errorf("%d challenge ACKs in %d s, want 1 to %d", sent, secs, max)
			}
			if held == 0 {
				t.Error("the limit never held a challenge ACK back")
			}
			if st.EstabResets != 0 {
				t.Errorf("%d connections reset", st.EstabResets)
			}
			f.checkIntact(t)
		})
	}
}

// TestFloodSYNNoState: 200,000 spoofed SYNs (half from off the link,
// half from unanswered addresses on it) at 100,000 a second leave no
// state beyond the SYN queue's bound: every SYN past it gets a cookie, the
// connection table holds the established connections and SynBacklog
// half-open ones, the neighbour table its bound of unresolved entries,
// and the established connections are unharmed. A real client connects
// meanwhile with a cookie.
func TestFloodSYNNoState(t *testing.T) {
	cfg := stack.Config{SynBacklog: 64}
	f := newFloodNet(t, cfg, 50)
	g := f.gen(flood.SYN)
	maxConns, maxNeigh := 0, 0
	var late *stack.TCPConn
	for i := range 20 {
		f.run(g, 100, 100*time.Millisecond)
		maxConns = max(maxConns, len(f.a.Stack.Conns()))
		maxNeigh = max(maxNeigh, len(f.a.Stack.Neighbors()))
		if i == 10 {
			c, err := f.b.Stack.Connect(f.n.Now, netip.AddrPort{}, ap(ipA, 80))
			if err != nil {
				t.Fatal(err)
			}
			late = c
		}
	}
	st := f.a.Stack.Stats().TCP
	t.Logf("%d SYNs: SyncookiesSent %d, at most %d connections and %d neighbour entries; ARP queue drops %d",
		f.frames, st.SyncookiesSent, maxConns, maxNeigh, f.a.Stack.Stats().Net.ARPQueueDrops)
	// Every SYN past the queue's 64 gets a cookie, but for the few that
	// repeat the source of one of those 64 (the on-link sources are
	// 64 addresses: a repeat of address and port has odds of about one
	// in four million a SYN), which meet their half-open connection.
	if want := f.frames - 64 - 10; st.SyncookiesSent < want || st.SynQueueDrops != 0 || st.ListenDrops != 0 {
		t.Errorf("SyncookiesSent %d SynQueueDrops %d ListenDrops %d, want at least %d 0 0", st.SyncookiesSent, st.SynQueueDrops, st.ListenDrops, want)
	}
	if maxConns > 50+64+1 {
		t.Errorf("%d connections at once, want at most %d", maxConns, 50+64+1)
	}
	if lim := 1024; maxNeigh > lim {
		t.Errorf("%d neighbour entries", maxNeigh)
	}
	f.n.RunFor(time.Second)
	if late.State() != tcp.Established || st.SyncookiesRecv == 0 && f.a.Stack.Stats().TCP.SyncookiesRecv == 0 {
		t.Errorf("the client's connection during the flood: %v, SyncookiesRecv %d", late.State(), f.a.Stack.Stats().TCP.SyncookiesRecv)
	}
	f.checkIntact(t)
}

// BenchmarkFlood gives the cost of one flood segment of each kind at
// the core (HandleFrame and draining what it sends): a SYN answered with
// a cookie, an ACK for no connection at the listener (checked as a
// cookie, answered with a RST), an ACK near a connection's window, an
// in-window RST, and an ACK with three bogus SACK blocks at a connection
// with data in flight (1 MB written, of which the first windows are sent
// and never acknowledged). Virtual time moves 1 µs a segment (a million a
// second), so the challenge-ACK limit and the per-connection rate
// apply as in a real flood.
func BenchmarkFlood(b *testing.B) {
	for _, c := range []struct {
		name string
		kind flood.Kind
		noTg bool
	}{
		{"SYNCookie", flood.SYN, true},
		{"ACKNoConn", flood.ACK, true},
		{"ACKConn", flood.ACK, false},
		{"RST", flood.RST, false},
		{"SACK", flood.SACK, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := newFloodNet(b, stack.Config{SynBacklog: 16}, 100)
			// Data in flight that B never acknowledges: A's sends
			// are taken from it below and dropped.
			for _, s := range f.s {
				s.Write(make([]byte, 10000))
			}
			a := f.a.Stack
			now := f.n.Now
			out := link.Packet{Buf: make([]byte, 65536)}
			drain := func() {
				for {
					if _, ok := a.PollTransmit(now, &out); !ok {
						return
					}
				}
			}
			drain()
			f.s[0].Write(make([]byte, 1<<20))
			drain()
			ts := f.targets()
			if c.kind == flood.SACK {
				ts = ts[:1]
			}
			cfg := flood.Config{Kind: c.kind, DstMAC: f.a.MAC, SrcMAC: f.b.MAC, Dst: ap(ipA, 80),
				Sources: []netip.Prefix{spoofOut}, Targets: ts, Seed: 5}
			if c.noTg {
				cfg.Targets = nil
			}
			if c.kind == flood.ACK && c.noTg {
				// Cookies in use: the listener checks ACKs as cookies.
				g := flood.New(flood.Config{Kind: flood.SYN, DstMAC: f.a.MAC, SrcMAC: f.b.MAC, Dst: ap(ipA, 80), Sources: []netip.Prefix{spoofOut}})
				pkt := link.Packet{Buf: make([]byte, 2048)}
				for range 100 {
					pkt.N = g.Frame(pkt.Buf)
					a.HandleFrame(now, f.a.NIC, &pkt)
				}
				drain()
			}
			g := flood.New(cfg)
			pkt := link.Packet{Buf: make([]byte, 2048)}
			b.ReportAllocs()
			for b.Loop() {
				pkt.N = g.Frame(pkt.Buf)
				a.HandleFrame(now, f.a.NIC, &pkt)
				drain()
				now = now.Add(time.Microsecond)
				if a.NextDeadline() <= now {
					a.HandleTimeout(now)
					drain()
				}
			}
		})
	}
}
