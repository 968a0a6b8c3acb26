package stack_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// impairment is a seeded random impairment of every frame: loss,
// duplication, reordering (extra delay) and corruption, in percent.
type impairment struct {
	loss, dup, reorder, corrupt int
	// smallBuf makes the buffers 8 KiB, so that windows fill and close.
	smallBuf bool
	// slowRead reads at most 500 bytes a step: windows close, and the
	// zero-window probes and window updates of RFC 9293 §3.8.6 run.
	slowRead bool
}

func (im impairment) hook(seed uint64) func(f *stacktest.Frame) stacktest.Action {
	r := rand.New(rand.NewPCG(seed, 7))
	return func(f *stacktest.Frame) stacktest.Action {
		var a stacktest.Action
		if r.IntN(100) < im.loss {
			a.Drop = true
			return a
		}
		if r.IntN(100) < im.dup {
			a.Dups = 1
		}
		if r.IntN(100) < im.reorder {
			a.Delay = time.Duration(r.IntN(3000)) * time.Microsecond
		}
		if r.IntN(100) < im.corrupt && len(f.Data) > 14 && f.Data[12] == 0x08 && f.Data[13] == 0x00 {
			// Flip a bit of an IPv4 packet: the IP or transport checksum
			// must catch it. (ARP has no checksum: a corrupted reply
			// poisons the cache until the entry goes stale, 30 s, on a
			// real link too.)
			i := 14 + r.IntN(len(f.Data)-14)
			f.Data[i] ^= 1 << r.IntN(8)
		}
		return a
	}
}

// TestTransferImpaired: bulk transfers both ways, over several
// connections at once, through loss, duplication, reordering and
// corruption: every byte arrives once and in order (RFC 9293 §3.10.7.4,
// §3.8), corrupted frames are dropped by the checksums and counted,
// and after an orderly close every connection ends.
func TestTransferImpaired(t *testing.T) {
	for _, tc := range []struct {
		im    impairment
		seeds int
	}{
		{impairment{loss: 2}, 3},
		{impairment{dup: 5}, 2},
		{impairment{reorder: 10}, 2},
		{impairment{corrupt: 3}, 2},
		{impairment{loss: 3, dup: 2, reorder: 5, corrupt: 1}, 5},
		{impairment{loss: 10, dup: 5, reorder: 20, corrupt: 3}, 20},
		{impairment{loss: 5, dup: 5, reorder: 20, corrupt: 1, smallBuf: true}, 20},
		{impairment{loss: 3, reorder: 5, smallBuf: true, slowRead: true}, 10},
	} {
		if testing.Short() {
			tc.seeds = 1
		}
		for seed := range uint64(tc.seeds) {
			t.Run(fmt.Sprintf("%+v/seed%d", tc.im, seed), func(t *testing.T) {
				impairedRun(t, tc.im, seed)
			})
		}
	}
}

func impairedRun(t *testing.T, im impairment, seed uint64) {
	var tc tcp.Config
	if im.smallBuf {
		tc.RcvBuf, tc.SndBuf = 8<<10, 8<<10
	}
	n, a, b := pair(t, stack.Config{Seed: seed + 1, TCP: tc}, stack.Config{Seed: seed + 100, TCP: tc})
	l, err := b.Stack.Listen(ap(ipB, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	n.Impair = im.hook(seed)
	type flow struct {
		c, s         *stack.TCPConn
		ab, ba       []byte
		sentA, sentB int
		gotA, gotB   []byte
	}
	var flows []*flow
	for i := range 3 {
		c, s := dialRetry(t, n, a, l, ap(ipB, 80))
		size := 100000 * (i + 1)
		flows = append(flows, &flow{c: c, s: s, ab: payload(seed*10+uint64(i), size), ba: payload(seed*10+uint64(i)+5, size/2)})
	}
	buf := make([]byte, 65536)
	io := func(c *stack.TCPConn, data []byte, sent *int, got *[]byte) {
		if *sent < len(data) {
			k, _ := c.Write(data[*sent:])
			*sent += k
			if *sent == len(data) {
				c.CloseWrite()
			}
		}
		rb := buf
		if im.slowRead {
			rb = buf[:500]
		}
		for {
			k, _ := c.Read(rb)
			if k == 0 {
				break
			}
			*got = append(*got, rb[:k]...)
			if im.slowRead && n.Pending() > 0 {
				break // one small read per step while frames fly
			}
		}
	}
	ok := n.TryRunUntil(10*time.Minute, func() bool {
		done := true
		for _, f := range flows {
			io(f.c, f.ab, &f.sentA, &f.gotA)
			io(f.s, f.ba, &f.sentB, &f.gotB)
			done = done && len(f.gotA) == len(f.ba) && len(f.gotB) == len(f.ab)
		}
		n.Flush()
		return done
	})
	for i, f := range flows {
		if !ok || !bytes.Equal(f.gotA, f.ba) || !bytes.Equal(f.gotB, f.ab) {
			t.Errorf("flow %d: A got %d/%d, B got %d/%d (intact: %v %v) by %v; states %v %v (%v %v)", i,
				len(f.gotA), len(f.ba), len(f.gotB), len(f.ab), bytes.Equal(f.gotA, f.ba[:min(len(f.gotA), len(f.ba))]),
				bytes.Equal(f.gotB, f.ab[:min(len(f.gotB), len(f.ab))]), n.Now, f.c.State(), f.s.State(), f.c.Err(), f.s.Err())
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, f := range flows {
		f.c.Close()
		f.s.Close()
	}
	n.RunUntil(10*time.Minute, func() bool { return len(a.Stack.Conns()) == 0 && len(b.Stack.Conns()) == 0 })
	for i, f := range flows {
		if f.c.Err() != nil || f.s.Err() != nil {
			t.Errorf("flow %d ended with %v / %v, want an orderly close", i, f.c.Err(), f.s.Err())
		}
	}
	sa, sb := a.Stack.Stats(), b.Stack.Stats()
	if im.corrupt > 0 {
		drops := func(s stack.Stats) uint64 {
			return s.TCP.InCsumErrors + s.Net.InHdrErrors + s.Net.InTruncated + s.TCP.InBadHeader + s.Net.InAddrErrors +
				s.Link.RxNotForUs + s.Link.RxMulticast + s.Link.RxUnknownEtherType + s.Link.RxVLANMismatch + s.Net.ARPBad + s.TCP.NoListener
		}
		if drops(sa)+drops(sb) == 0 {
			t.Errorf("corruption went unnoticed")
		}
	}
	if sa.TCP.CurrEstab != 0 || sb.TCP.CurrEstab != 0 {
		t.Errorf("CurrEstab %d %d after everything closed", sa.TCP.CurrEstab, sb.TCP.CurrEstab)
	}
	_ = tcp.Closed
	_ = wire.ProtoTCP
}

// TestSimultaneousRetransmission: both ends send a flight of data at
// once; the data arrives but every ACK is lost, so both time out and
// retransmit their first segment, which the other already has. The
// acknowledgments each then sends must be acceptable to the other (RFC
// 9293 §3.10.7.4: a segment whose sequence number is below RCV.NXT is
// dropped, its ACK field unread): a pure ACK carries the highest sequence
// number sent, not SND.NXT rewound by the retransmission timeout (RFC
// 6298 §5.4 resends from SND.UNA), as Linux's tcp_acceptable_seq does.
// Otherwise each ignores the other's ACKs until Retries2 kills both.
func TestSimultaneousRetransmission(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	c, s, _ := connect(t, n, a, b, 80)
	n.RunFor(time.Second)
	start := n.Now
	n.Impair = func(f *stacktest.Frame) stacktest.Action {
		d := f.Decode()
		lost := d.TCP != nil && len(d.TCP.Payload) == 0 && f.Sent < start.Add(100*time.Millisecond)
		return stacktest.Action{Drop: lost}
	}
	ab, ba := payload(1, 10*1448), payload(2, 10*1448)
	if _, err := c.Write(ab); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ba); err != nil {
		t.Fatal(err)
	}
	n.RunUntil(5*time.Second, func() bool {
		return c.Info().Unacked == 0 && s.Info().Unacked == 0
	})
	gotA, _ := readAll(c)
	gotB, _ := readAll(s)
	if !bytes.Equal(gotA, ba) || !bytes.Equal(gotB, ab) {
		t.Errorf("data differs")
	}
	if c.Info().TotalRetrans > 2 || s.Info().TotalRetrans > 2 {
		t.Errorf("retransmissions %d %d: the ACKs after the first timeout were not taken", c.Info().TotalRetrans, s.Info().TotalRetrans)
	}
}

// dialRetry connects as connectTo does, dialing again when a connect
// fails, as an application would: under heavy loss ARP (three requests)
// or the SYN retries may give up.
func dialRetry(t *testing.T, n *stacktest.Net, a *stacktest.Node, l *stack.TCPListener, to netip.AddrPort) (*stack.TCPConn, *stack.TCPConn) {
	t.Helper()
	for range 5 {
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, to)
		if err != nil {
			t.Fatal(err)
		}
		n.RunUntil(5*time.Minute, func() bool { return c.State() == tcp.Closed || c.State() == tcp.Established && l.Pending() > 0 })
		if c.State() == tcp.Closed {
			t.Logf("connect failed (%v), dialing again", c.Err())
			continue
		}
		return c, l.Accept()
	}
	t.Fatal("five connects failed")
	return nil, nil
}
