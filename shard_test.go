package ustack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"

	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

// gate is a link whose WriteBatch, once closed, blocks until it is opened
// again, as a TAP's write waits for room in a full queue; it records every
// frame written, in the order written.
type gate struct {
	link.Endpoint
	mu      sync.Mutex
	shut    chan struct{} // not nil: writes wait until it is closed
	entered chan struct{} // closed when a write first waits at the gate
	who     string        // the stack of the goroutine that first waited
	frames  [][]byte
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut, g.entered = make(chan struct{}), make(chan struct{})
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

func (g *gate) WriteBatch(pkts []link.Packet) (int, error) {
	g.mu.Lock()
	for i := range pkts {
		g.frames = append(g.frames, bytes.Clone(pkts[i].Frame()))
	}
	shut, entered := g.shut, g.entered
	if shut != nil {
		select {
		case <-entered:
		default:
			b := make([]byte, 64<<10)
			g.who = string(b[:runtime.Stack(b, false)])
			close(entered)
		}
	}
	g.mu.Unlock()
	if shut != nil {
		<-shut
	}
	return g.Endpoint.WriteBatch(pkts)
}

// hostOn makes a stack with one NIC on ep at addr (a /24), closed by
// t.Cleanup.
func hostOn(t *testing.T, ep link.Endpoint, addr string) (*Stack, *NIC) {
	t.Helper()
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	nic, err := s.AddNIC(ep, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix(addr + "/24")}})
	if err != nil {
		t.Fatal(err)
	}
	return s, nic
}

// TestBlockedLinkWrite: while a link's write is blocked (a full TAP queue
// waits up to 50 ms; this one waits until the test lets it go) — and the
// goroutine it blocks is the timer's, sending a keep-alive probe — the
// shard lock is free, so other sockets read, write and accept over
// another NIC and the timer fires again (a retransmission). The blocked
// NIC's output queue fills, which first holds the core's output back;
// once the write has been stuck for stallDrop, frames for that NIC are
// dropped and counted so that the other NIC's frames go out. Once the
// link is released, TCP delivers the stream written meanwhile.
func TestBlockedLinkWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// NIC 1's output queue holds 4 frames, so the block fills it (with
		// frames of one segment each: no offloads).
		p1a, p1b := pipe.New(pipe.Config{Delay: time.Millisecond, BatchSize: 4, NoOffloads: true})
		p2a, p2b := pipe.New(pipe.Config{Delay: time.Millisecond})
		g := &gate{Endpoint: p1a}
		// One shard: the test looks into its queues.
		a, err := New(Config{Shards: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		t.Cleanup(g.open) // runs first: a failed test must not leave a write waiting
		var nics []*NIC
		for _, nc := range []struct {
			ep   link.Endpoint
			addr string
		}{{g, "10.0.1.1/24"}, {p2a, "10.0.2.1/24"}} {
			nic, err := a.AddNIC(nc.ep, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix(nc.addr)}})
			if err != nil {
				t.Fatal(err)
			}
			nics = append(nics, nic)
		}
		b1, _ := hostOn(t, p1b, "10.0.1.2")
		b2, _ := hostOn(t, p2b, "10.0.2.2")

		// Over NIC 1 (the gate): a stream x.
		ln1, err := b1.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		acc1 := acceptOne(t, ln1)
		x, err := a.Dial("tcp", "10.0.1.2:80")
		if err != nil {
			t.Fatal(err)
		}
		xPeer := <-acc1
		// Over NIC 2: a stream y, and a listener on a.
		ln2, err := b2.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		acc2 := acceptOne(t, ln2)
		y, err := a.Dial("tcp", "10.0.2.2:80")
		if err != nil {
			t.Fatal(err)
		}
		yPeer := <-acc2
		lnA, err := a.Listen("tcp", "10.0.2.1:81")
		if err != nil {
			t.Fatal(err)
		}

		// Block NIC 1. x is idle; its keep-alive probe, sent by a run of
		// the timer, is the first frame to wait at the gate.
		xc := x.(*TCPConn)
		if err := xc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 9}); err != nil {
			t.Fatal(err)
		}
		g.close()
		<-g.entered
		synctest.Wait()
		if !strings.Contains(g.who, "(*shard).fire") {
			t.Fatalf("the first write to wait at the gate was not the timer's:\n%s", g.who)
		}
		if a.Stats().TCP.KeepAliveProbes == 0 {
			t.Fatal("no keep-alive probe sent")
		}
		sh := a.shards[0]
		if !sh.mu.TryLock() {
			t.Fatal("the shard lock is held while a link write waits")
		}
		sh.mu.Unlock()

		// A stream to the blocked link: Write returns once the data is in
		// x's send buffer (4 MiB, set here: an auto-tuned one starts at
		// 64 KiB and grows with a window the blocked link never opens),
		// without waiting for the link; what the window lets out fills
		// NIC 1's queue.
		if err := xc.SetWriteBuffer(4 << 20); err != nil {
			t.Fatal(err)
		}
		before := a.Stats().TCP.RetransSegs
		data := make([]byte, 256<<10)
		for i := range data {
			data[i] = byte(i * 7)
		}
		if _, err := x.Write(data); err != nil {
			t.Fatalf("x.Write: %v", err)
		}
		sh.mu.Lock()
		held := sh.held
		sh.mu.Unlock()
		if held == nil {
			t.Fatal("NIC 1's queue is not full: the test does not reach the push back on the core")
		}

		// Read and Write on y, both ways, and an Accept on a.
		if _, err := yPeer.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		if k, err := io.ReadFull(y, buf[:4]); err != nil || string(buf[:k]) != "ping" {
			t.Fatalf("y read %q, %v", buf[:k], err)
		}
		start := time.Now()
		if _, err := y.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		if k, err := io.ReadFull(yPeer, buf[:4]); err != nil || string(buf[:k]) != "pong" {
			t.Fatalf("y's peer read %q, %v", buf[:k], err)
		}
		// pong waited behind x's segment for NIC 1 until the writer had
		// been stuck for stallDrop, not for the link.
		if d := time.Since(start); d > stallDrop+10*time.Millisecond {
			t.Errorf("y's write took %v to arrive, with NIC 1 blocked", d)
		}
		accA := acceptOne(t, lnA)
		z, err := b2.Dial("tcp", "10.0.2.1:81")
		if err != nil {
			t.Fatalf("dial a's listener during the block: %v", err)
		}
		zPeer := <-accA
		if zPeer == nil {
			t.Fatal("no connection accepted during the block")
		}
		// The timer fires again though its last run still waits at the
		// gate: x's segments are stuck there, so its retransmission timer
		// runs out and resends them.
		time.Sleep(time.Second)
		if got := a.Stats().TCP.RetransSegs; got == before {
			t.Errorf("no retransmission in a second of blocked link: the timer did not fire")
		}
		if s1, s2 := nics[0].Stats(), nics[1].Stats(); s1.TxStallDrops == 0 || s2.TxStallDrops != 0 {
			t.Errorf("stall drops: NIC 1 %d (want some), NIC 2 %d (want none)", s1.TxStallDrops, s2.TxStallDrops)
		}

		// Release: TCP delivers x's stream.
		g.open()
		got := make([]byte, len(data))
		if _, err := io.ReadFull(xPeer, got); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("x's peer read %v; the stream differs: %v", err, !bytes.Equal(got, data))
		}
		for _, c := range []io.Closer{x, xPeer, y, yPeer, z, zPeer, ln1, ln2, lnA} {
			c.Close()
		}
	})
}

// TestBlockedLinkOrder: frames made while a link's write is blocked —
// more than its output queue holds — leave in the order they were made
// once it is released: the queue, then the frame that waited for room,
// then what the core held back. Nothing is dropped: on a stack with one
// NIC however long the block lasts (there is no other NIC's traffic to let
// through), on one with two when the block is shorter than stallDrop.
func TestBlockedLinkOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nics  int
		block time.Duration
	}{
		{"one NIC, a long block", 1, 3 * stallDrop},
		{"two NICs, a short block", 2, stallDrop / 2},
	} {
		t.Run(tc.name, func(t *testing.T) { blockedLinkOrder(t, tc.nics, tc.block) })
	}
}

func blockedLinkOrder(t *testing.T, nics int, block time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		pa, pb := pipe.New(pipe.Config{Delay: time.Millisecond, BatchSize: 4})
		g := &gate{Endpoint: pa}
		t.Cleanup(g.open)
		a, nic := hostOn(t, g, "10.0.0.1")
		if nics == 2 {
			other, _ := pipe.New(pipe.Config{})
			if _, err := a.AddNIC(other, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.9.1/24")}}); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := hostOn(t, pb, "10.0.0.2")
		srv, err := b.ListenUDP("udp", ":7")
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		var us []net.Conn
		for range 2 {
			u, err := a.Dial("udp", "10.0.0.2:7")
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			us = append(us, u)
		}
		send := func(i int) {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(i))
			if _, err := us[i%2].Write(b[:]); err != nil {
				t.Errorf("datagram %d: %v", i, err)
			}
		}
		send(0) // resolves b's address before the block
		k, _, err := srv.ReadFromUDPAddrPort(make([]byte, 4))
		if err != nil || k != 4 {
			t.Fatal(k, err)
		}
		g.close()
		go send(1) // its goroutine ends up writing, and waits at the gate
		<-g.entered
		const n = 200
		for i := 2; i < n; i++ {
			send(i) // from two sockets, one goroutine: the order is i's
		}
		a.shards[0].mu.Lock()
		held := a.shards[0].held
		a.shards[0].mu.Unlock()
		if held == nil {
			t.Fatal("the output queue is not full: the test does not reach the push back on the core")
		}
		time.Sleep(block)
		g.open()
		srv.SetReadDeadline(time.Now().Add(time.Second)) // a lost datagram fails, not hangs
		buf := make([]byte, 16)
		for i := 1; i < n; i++ {
			k, _, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil || k != 4 || binary.BigEndian.Uint32(buf) != uint32(i) {
				t.Fatalf("datagram %d: read %x, %v", i, buf[:k], err)
			}
		}
		g.mu.Lock()
		var seen []uint32
		for _, f := range g.frames {
			if d, ok := udpPayload(f); ok && len(d) == 4 {
				seen = append(seen, binary.BigEndian.Uint32(d))
			}
		}
		g.mu.Unlock()
		for i, v := range seen {
			if v != uint32(i) {
				t.Fatalf("datagrams written to the link in the order %v", seen)
			}
		}
		if len(seen) != n {
			t.Errorf("%d datagrams written to the link, want %d", len(seen), n)
		}
		if d := nic.Stats().TxStallDrops; d != 0 {
			t.Errorf("%d frames dropped", d)
		}
	})
}

// udpPayload returns the payload of an Ethernet frame carrying IPv4 UDP.
func udpPayload(f []byte) ([]byte, bool) {
	eth, err := wire.ParseEthernet(f)
	if err != nil || eth.EtherType() != wire.EtherTypeIPv4 {
		return nil, false
	}
	ip, err := wire.ParseIPv4(eth.Payload())
	if err != nil || ip.Protocol() != wire.ProtoUDP {
		return nil, false
	}
	udp, err := wire.ParseUDP(ip.Payload())
	if err != nil {
		return nil, false
	}
	return udp.Payload(), true
}

// callbackOwner stands in for the callback API's handlers (issue 13): its
// wake reads the socket from inside the wake-up, under the shard lock it
// takes itself, as a handler calling back into the stack would.
type callbackOwner struct {
	c       *TCPConn
	got     []byte
	waits   int // wake-ups that found the lock held
	inLock  bool
	handled chan struct{}
}

func (o *callbackOwner) wake(ev stack.Events) {
	sh := o.c.sh
	// Another goroutine may hold the lock for a moment; the one that
	// delivers this wake-up must not.
	for i := 0; !sh.mu.TryLock(); i++ {
		if i == 100000 {
			o.inLock = true
			return
		}
		o.waits++
		runtime.Gosched()
	}
	buf := make([]byte, 64)
	n, _ := o.c.sc.Read(buf)
	o.got = append(o.got, buf[:n]...)
	sh.unlock() // nests: this unlock may deliver more wake-ups
	if n > 0 {
		o.handled <- struct{}{}
	}
}

// TestWakeAfterUnlock: socket owners are woken after the shard lock is
// released, so an owner can call into the stack from its wake-up (the
// callback API will), here reading the data that woke it.
func TestWakeAfterUnlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		acc := acceptOne(t, ln)
		c, err := n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := (<-acc).(*TCPConn)
		defer s.Close()
		o := &callbackOwner{c: s, handled: make(chan struct{}, 16)}
		s.sh.mu.Lock()
		s.sc.SetOwner(o)
		s.sh.mu.Unlock()
		for i := range 5 {
			if _, err := c.Write([]byte{'a' + byte(i)}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-o.handled:
			case <-time.After(time.Second):
				t.Fatalf("write %d: the owner read nothing (inLock %v)", i, o.inLock)
			}
		}
		if o.inLock {
			t.Fatal("an owner was woken with the shard lock held")
		}
		if string(o.got) != "abcde" {
			t.Fatalf("the owner read %q, want abcde", o.got)
		}
		s.sh.mu.Lock()
		s.sc.SetOwner(s)
		s.sh.mu.Unlock()
	})
}

// TestTwoShards: a stack with two shards (the configuration N shards by
// flow hash will use) over a link without ARP: frames are parsed up to
// their flow and handed to the shard it hashes to, so every connection
// lives in that shard's core; accepted connections and dials spread over
// both; data flows both ways; counters and connection lists add up over
// the shards; each shard's timer ends its connections' TIME-WAIT.
func TestTwoShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pa, pb := pipe.New(pipe.Config{Medium: link.IP, Delay: time.Millisecond})
		two, err := newStack(Config{Config: stack.Config{Seed: 1}}, 2)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { two.Close() })
		if _, err := two.AddNIC(pa, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
			t.Fatal(err)
		}
		one, err := New(Config{Config: stack.Config{Seed: 2}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { one.Close() })
		if _, err := one.AddNIC(pb, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
			t.Fatal(err)
		}
		echo := func(ln net.Listener) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					io.Copy(c, c)
					c.Close()
				}()
			}
		}
		// exchange writes a message on c, half-closes, and checks the echo.
		exchange := func(c net.Conn, i int) {
			msg := bytes.Repeat([]byte{byte(i)}, 3000+i)
			if _, err := c.Write(msg); err != nil {
				t.Errorf("conn %d: write: %v", i, err)
			}
			c.(*TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("conn %d: echo of %d bytes: %d bytes, %v", i, len(msg), len(got), err)
			}
			c.Close()
		}
		// placed checks that every connection of two lives in the shard
		// its flow hashes to, and counts them per shard.
		placed := func() [2]int {
			var per [2]int
			for i, sh := range two.shards {
				sh.mu.Lock()
				conns := sh.core.Conns()
				sh.mu.Unlock()
				for _, ci := range conns {
					if want := two.shardOfFlow(ci.Local, ci.Remote); want != i {
						t.Errorf("%v-%v in shard %d, its flow hashes to %d", ci.Local, ci.Remote, i, want)
					}
					per[i]++
				}
			}
			return per
		}

		// Into the two-shard stack: one listener, parts in both shards.
		ln, err := two.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		for i, sh := range two.shards {
			sh.mu.Lock()
			got := len(sh.core.Listeners())
			sh.mu.Unlock()
			if got != 1 {
				t.Errorf("shard %d: %d core listeners, want one", i, got)
			}
		}
		if li := two.Listeners(); len(li) != 1 || li[0].Backlog != 2*4096 {
			t.Errorf("listeners %+v, want one (its parts merged, backlogs added)", li)
		}
		go echo(ln)
		const n = 16
		var conns []net.Conn
		for i := range n {
			c, err := one.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		synctest.Wait()
		if per := placed(); per[0] == 0 || per[1] == 0 || per[0]+per[1] != n {
			t.Errorf("connections per shard %v, want %d over both", per, n)
		}
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				exchange(c, i)
			}()
		}
		wg.Wait()

		// Out of it: each dial picks a port whose flow hashes to the
		// shard whose turn it is.
		ln1, err := one.Listen("tcp", ":90")
		if err != nil {
			t.Fatal(err)
		}
		go echo(ln1)
		conns = conns[:0]
		var per [2]int
		for i := range n {
			c, err := two.DialTCP(t.Context(), netip.MustParseAddrPort("10.0.0.1:0"), netip.MustParseAddrPort("10.0.0.2:90"))
			if err != nil {
				t.Fatalf("dial %d out of the two-shard stack: %v", i, err)
			}
			k := two.shardOfFlow(c.LocalAddrPort(), c.RemoteAddrPort())
			if c.sh != two.shards[k] {
				t.Errorf("dial %d: %v-%v in another shard than %d, its flow's", i, c.LocalAddrPort(), c.RemoteAddrPort(), k)
			}
			per[k]++
			conns = append(conns, c)
		}
		if per[0] != n/2 || per[1] != n/2 {
			t.Errorf("dials per shard %v, want them in turn", per)
		}
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				exchange(c, i)
			}()
		}
		wg.Wait()
		placed()

		st := two.Stats()
		if st.TCP.PassiveOpens != n || st.TCP.ActiveOpens != n || st.TCP.OutRsts != 0 {
			t.Errorf("summed counters: %d passive opens, %d active, %d RSTs; want %d, %d, 0", st.TCP.PassiveOpens, st.TCP.ActiveOpens, st.TCP.OutRsts, n, n)
		}
		// A dial without a local address takes the route's source and
		// still lands in its flow's shard: the peer's RST finds it.
		if _, err := two.Dial("tcp", "10.0.0.2:99"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial without a local address to a closed port: %v, want ECONNREFUSED", err)
		}
		// UDP lives in shard 0, where all UDP traffic goes.
		pc, err := two.ListenPacket("udp", ":53")
		if err != nil {
			t.Fatalf("UDP socket: %v", err)
		}
		defer pc.Close()
		uc, err := one.Dial("udp", "10.0.0.1:53")
		if err != nil {
			t.Fatal(err)
		}
		defer uc.Close()
		for i := range 8 { // from several ports: every one reaches shard 0's socket
			u, err := one.Dial("udp", "10.0.0.1:53")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(u, "datagram %d", i)
			buf := make([]byte, 64)
			pc.SetReadDeadline(time.Now().Add(time.Second))
			k, _, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:k]) != fmt.Sprintf("datagram %d", i) {
				t.Errorf("UDP datagram %d: %q, %v", i, buf[:k], err)
			}
			u.Close()
		}
		// Forwarders: a TCP forwarder has a part in each shard, the UDP
		// one lives in shard 0 with the UDP traffic.
		fw, err := two.ForwardTCP(0, func(*TCPRequest) {})
		if err != nil || len(fw.parts) != 2 {
			t.Errorf("TCP forwarder: %v, %v; want one part per shard", fw, err)
		} else {
			fw.Close()
			fw.Wait()
		}
		uf, err := two.ForwardUDP(stack.UDPEndpointIndependent, 0, func(*UDPFlow) {})
		if err != nil || uf.sh != two.shards[0] {
			t.Errorf("UDP forwarder: %v, want one in shard 0", err)
		} else {
			uf.Close()
		}
		// Each shard's timer ends the TIME-WAIT of its connections.
		ln.Close()
		ln1.Close()
		time.Sleep(2 * time.Minute)
		if c := two.Conns(); len(c) != 0 {
			t.Errorf("%d connections left after TIME-WAIT: %v", len(c), c)
		}
	})
}

// TestTwoShardsAllocs: with two shards, handing received frames to the
// shard of their flow (the parse up to the flow key, the grouping per
// shard) allocates nothing per frame: 1 KiB written each way over a
// connection into the two-shard stack makes no allocation.
func TestTwoShardsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random; make allocs runs this without it")
	}
	pa, pb := pipe.New(pipe.Config{Medium: link.IP, QueueLen: 4096, Delay: 50 * time.Microsecond})
	two, err := newStack(Config{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer two.Close()
	if _, err := two.AddNIC(pa, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
		t.Fatal(err)
	}
	one, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if _, err := one.AddNIC(pb, NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	ln, err := two.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := acceptOne(t, ln)
	c, err := one.Dial("tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-accepted
	defer srv.Close()
	out, in := make([]byte, 1024), make([]byte, 1024)
	roundTrip := func() {
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(srv, in); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Write(in); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		roundTrip()
	}
	if a := testing.AllocsPerRun(1000, roundTrip); a != 0 {
		t.Errorf("%v allocations per round trip into a two-shard stack, want 0", a)
	}
}

// TestBlockedReaderStackAllocs: a goroutine blocked in Read keeps the
// stack it started with, 2 KiB unless the runtime's adaptive start chose
// more (a deeper blocking loop once doubled it, adding 2 KiB to every
// idle connection with a reader): 400 blocked readers take less than 1.5
// times the stack of as many goroutines blocked on a channel.
func TestBlockedReaderStackAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes every frame larger; make allocs runs this without it")
	}
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var conns []net.Conn
		for range 200 {
			acc := acceptOne(t, ln)
			c, err := n.B.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c, <-acc)
		}
		synctest.Wait()
		// The stack a new goroutine starts with is the runtime's
		// (adaptive: the average it saw at the last GCs, 2 KiB at
		// first), so the readers are compared with as many goroutines
		// blocked on a bare channel receive.
		var before, mid, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		park := make(chan struct{})
		parked := make(chan struct{}, len(conns))
		for range conns {
			go func() {
				parked <- struct{}{}
				<-park
			}()
		}
		for range conns {
			<-parked
		}
		synctest.Wait()
		runtime.ReadMemStats(&mid)
		base := (int64(mid.StackInuse) - int64(before.StackInuse)) / int64(len(conns))
		done := make(chan error, len(conns))
		for _, c := range conns {
			go func() {
				var b [1]byte
				_, err := c.Read(b[:])
				done <- err
			}()
		}
		synctest.Wait() // every reader is blocked in Read
		runtime.ReadMemStats(&after)
		close(park)
		per := (int64(after.StackInuse) - int64(mid.StackInuse)) / int64(len(conns))
		t.Logf("%d B of stack per blocked reader, %d B per goroutine blocked on a channel", per, base)
		if per >= base+base/2 {
			t.Errorf("%d B of stack per goroutine blocked in Read, want the %d B a goroutine starts with", per, base)
		}
		for _, c := range conns {
			c.Close()
		}
		for range conns {
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Errorf("blocked Read after Close: %v", err)
			}
		}
	})
}

// TestClosedStackCollected: once closed and dropped, a stack's memory is
// garbage: no goroutine, timer or table of the runtime keeps its shards or
// cores reachable (the shard's timer, which may stay in the runtime's
// timer heap for a while after Stop, reaches the shard only through a
// reference Close clears).
func TestClosedStackCollected(t *testing.T) {
	collected := make(chan string, 4)
	func() {
		ea, eb := pipe.New(pipe.Config{})
		var stacks []*Stack
		for i, ep := range []link.Endpoint{ea, eb} {
			s, err := New(Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			addr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24)
			if _, err := s.AddNIC(ep, NICConfig{Addrs: []netip.Prefix{addr}}); err != nil {
				t.Fatal(err)
			}
			stacks = append(stacks, s)
		}
		ln, err := stacks[0].Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		acc := acceptOne(t, ln)
		c, err := stacks[1].Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		srv := <-acc
		defer srv.Close()
		if _, err := c.Write([]byte("x")); err != nil { // timers armed
			t.Fatal(err)
		}
		if _, err := io.ReadFull(srv, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		// Let the short timers (delayed ACK) pass: the timers are left
		// set for the keep-alives, 15 s away, when the stacks close.
		time.Sleep(300 * time.Millisecond)
		for _, s := range stacks {
			runtime.AddCleanup(s.shards[0].core, func(name string) { collected <- name }, "core")
			runtime.AddCleanup(s.shards[0], func(name string) { collected <- name }, "shard")
		}
	}()
	deadline := time.After(5 * time.Second)
	for got := 0; got < 4; {
		runtime.GC()
		select {
		case <-collected:
			got++
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of the closed stacks' 2 shards and 2 cores collected", got)
		}
	}
}

// TestAddStats: the sum over shards covers every counter of every group
// (Link, Net, UDP, UDP6, TCP, Fwd, PMTU, Ping, and any added later), not
// a list of groups that a new one would silently miss.
func TestAddStats(t *testing.T) {
	var one, sum stack.Stats
	ones := 0
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				fill(v.Field(i))
			}
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			v.SetUint(1)
			ones++
		}
	}
	fill(reflect.ValueOf(&one).Elem())
	addStats(&sum, &one)
	addStats(&sum, &one)
	n := 0
	sum.Each(func(name string, v uint64) {
		n++
		if v != 2 {
			t.Errorf("%s = %d after adding 1 twice, want 2", name, v)
		}
	})
	if n != ones || n == 0 {
		t.Errorf("Each saw %d counters, fill set %d", n, ones)
	}
}
