package stack_test

import (
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// tsSYN is a SYN from the raw node with timestamps, SACK and window
// scale, as Linux sends.
func tsSYN(seq wire.Seq, tsval uint32) wire.TCPFields {
	return wire.TCPFields{Seq: seq, Flags: wire.TCPFlagSYN, Window: 64240,
		Options: wire.TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: tsval, HasWScale: true, WScale: 7}}
}

// finalACK is the peer's answer to synack (for its SYN syn).
func finalACK(syn wire.TCPFields, synack *wire.TCPFields) wire.TCPFields {
	a := wire.TCPFields{Seq: syn.Seq + 1, Ack: synack.Seq + 1, Flags: wire.TCPFlagACK, Window: 502}
	if synack.Options.HasTimestamp {
		a.Options.HasTimestamp = true
		a.Options.TSVal = syn.Options.TSVal + 1
		a.Options.TSEcr = synack.Options.TSVal
	}
	return a
}

// onlySYNACK returns the one segment out, failing unless it is a SYN-ACK.
func onlySYNACK(t *testing.T, what string, out []*wire.TCPFields) *wire.TCPFields {
	t.Helper()
	if len(out) != 1 || out[0].Flags != wire.TCPFlagSYN|wire.TCPFlagACK {
		t.Fatalf("%s: %v, want one SYN-ACK", what, out)
	}
	return out[0]
}

// TestSynCookiesOnOverflow: with the default tcp_syncookies = 1, SYNs
// that find the SYN queue full (Config.SynBacklog) are answered with
// SYN cookies (RFC 4987 §3.6) and leave no state: the queue holds only
// the half-open connections it had room for, nothing is dropped. A
// cookie ACK opens a connection straight into the accept queue, with the
// options its SYN offered (timestamps carried them); an ACK with a wrong
// cookie gets a RST. The half-open connections expire after their
// SYN-ACK retries (tcp_synack_retries 5: 63 s) and the listener is as it
// was.
func TestSynCookiesOnOverflow(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{SynBacklog: 2})
	l, err := a.Stack.Listen(ap(ipA, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	syns := map[uint16]wire.TCPFields{}
	synacks := map[uint16]*wire.TCPFields{}
	for port := uint16(1000); port < 1006; port++ {
		syns[port] = tsSYN(wire.Seq(port)<<16, uint32(port))
		synacks[port] = onlySYNACK(t, "SYN", rawTCP(t, n, a, r, port, 80, syns[port]))
	}
	st := a.Stack.Stats().TCP
	if st.SyncookiesSent != 4 || st.SynQueueDrops != 0 || st.ListenDrops != 0 || st.PassiveOpens != 2 {
		t.Errorf("SyncookiesSent %d SynQueueDrops %d ListenDrops %d PassiveOpens %d, want 4 0 0 2",
			st.SyncookiesSent, st.SynQueueDrops, st.ListenDrops, st.PassiveOpens)
	}
	if li := a.Stack.Listeners()[0]; li.SynQueue != 2 || len(a.Stack.Conns()) != 2 {
		t.Errorf("SYN queue %d, %d connections; want 2 2", li.SynQueue, len(a.Stack.Conns()))
	}
	// A cookie SYN-ACK offers what the queued ones do.
	q, c := synacks[1000], synacks[1005]
	if q.Options.MSS != c.Options.MSS || q.Options.WScale != c.Options.WScale || !c.Options.HasWScale ||
		!c.Options.SACKPermitted || !c.Options.HasTimestamp || c.Options.TSEcr != 1005 || c.Window != q.Window {
		t.Errorf("cookie SYN-ACK %+v, queued one %+v", c, q)
	}

	// A wrong cookie: a RST <SEQ=SEG.ACK> (RFC 9293 §3.10.7.2).
	bad := finalACK(syns[1004], synacks[1004])
	bad.Ack += 1000
	out := rawTCP(t, n, a, r, 1004, 80, bad)
	if len(out) != 1 || out[0].Flags != wire.TCPFlagRST || out[0].Seq != bad.Ack {
		t.Errorf("ACK with a wrong cookie: %v, want RST seq %d", out, bad.Ack)
	}
	// The right one: a connection, accepted, ESTABLISHED, with the
	// SYN's options.
	if out := rawTCP(t, n, a, r, 1005, 80, finalACK(syns[1005], synacks[1005])); len(out) != 0 {
		t.Errorf("cookie ACK answered with %v", out)
	}
	s := l.Accept()
	if s == nil {
		t.Fatal("no connection from the cookie")
	}
	i := s.Info()
	if i.State != tcp.Established || !i.Timestamps || !i.SACK || i.SndWScale != 7 || i.SndMSS != 1448 || s.RemoteAddr() != ap(ipRaw, 1005) {
		t.Errorf("cookie connection %v: %+v", s.RemoteAddr(), i)
	}
	st = a.Stack.Stats().TCP
	if st.SyncookiesRecv != 1 || st.SyncookiesFailed != 1 || st.PassiveOpens != 3 || st.CurrEstab != 1 {
		t.Errorf("SyncookiesRecv %d Failed %d PassiveOpens %d CurrEstab %d, want 1 1 3 1", st.SyncookiesRecv, st.SyncookiesFailed, st.PassiveOpens, st.CurrEstab)
	}
	// It carries data both ways.
	if k, err := s.Write([]byte("hello")); k != 5 || err != nil {
		t.Fatalf("Write: %d %v", k, err)
	}
	n.RunFor(10 * time.Millisecond)
	got := false
	for _, f := range r.Take() {
		if d := decodeOne(t, f); d.TCP != nil && string(d.TCP.Payload) == "hello" && d.TCP.Seq == synacks[1005].Seq+1 {
			got = true
		}
	}
	if !got {
		t.Error("the cookie connection's data did not arrive at SND.NXT = cookie + 1")
	}

	// The queued half-open connections expire; the listener is as before.
	n.RunFor(70 * time.Second)
	r.Take()
	s.Abort()
	n.RunFor(time.Second)
	if li := a.Stack.Listeners()[0]; li.SynQueue != 0 || li.AcceptQueue != 0 || len(a.Stack.Conns()) != 0 {
		t.Errorf("after 70 s: SYN queue %d accept queue %d connections %d, want none", li.SynQueue, li.AcceptQueue, len(a.Stack.Conns()))
	}
	if st := a.Stack.Stats().TCP; st.SynRetrans != 10 || st.AttemptFails != 2 {
		t.Errorf("SynRetrans %d AttemptFails %d, want 10 2 (5 SYN-ACK retries each, tcp_synack_retries)", st.SynRetrans, st.AttemptFails)
	}
}

// TestSynCookiesAlways: with tcp_syncookies = 2 every SYN gets a cookie
// and the SYN queue is never used; the cookie ACK opens the connection.
// Without timestamps in the SYN the SYN-ACK offers only the MSS, and the
// connection has no window scale or SACK (as Linux).
func TestSynCookiesAlways(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{SynCookies: stack.SynCookiesAlways})
	l, err := a.Stack.Listen(ap(ipA, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	syn := wire.TCPFields{Seq: 4242, Flags: wire.TCPFlagSYN, Window: 64240,
		Options: wire.TCPOptions{MSS: 1400, SACKPermitted: true, HasWScale: true, WScale: 7}}
	synack := onlySYNACK(t, "SYN", rawTCP(t, n, a, r, 2000, 80, syn))
	if o := synack.Options; o.HasWScale || o.SACKPermitted || o.HasTimestamp || o.MSS != 1460 {
		t.Errorf("cookie SYN-ACK to a SYN without timestamps offers %+v, want only MSS 1460", o)
	}
	if li := a.Stack.Listeners()[0]; li.SynQueue != 0 || len(a.Stack.Conns()) != 0 {
		t.Errorf("SYN queue %d, %d connections after a cookie; want none", li.SynQueue, len(a.Stack.Conns()))
	}
	rawTCP(t, n, a, r, 2000, 80, finalACK(syn, synack))
	s := l.Accept()
	if s == nil {
		t.Fatal("no connection from the cookie")
	}
	if i := s.Info(); i.State != tcp.Established || i.SndMSS != 1300 || i.SndWScale != -1 || i.SACK || i.Timestamps {
		t.Errorf("cookie connection: %+v, want MSS 1300 (table), no options", i)
	}
	if st := a.Stack.Stats().TCP; st.SyncookiesSent != 1 || st.SyncookiesRecv != 1 || st.SynQueueDrops != 0 {
		t.Errorf("SyncookiesSent %d Recv %d SynQueueDrops %d, want 1 1 0", st.SyncookiesSent, st.SyncookiesRecv, st.SynQueueDrops)
	}
}

// TestSynCookiesNotRecent: a listener that has sent no cookie for
// tcp.CookieValid (120 s, Linux's TCP_SYNCOOKIE_VALID) does not check
// ACKs as cookies at all (tcp_synq_no_recent_overflow): they get a RST
// as any ACK for no connection, and SyncookiesFailed does not move. With
// cookies off, none is ever checked.
func TestSynCookiesNotRecent(t *testing.T) {
	for _, mode := range []stack.SynCookieMode{stack.SynCookiesOnOverflow, stack.SynCookiesAlways, stack.SynCookiesOff} {
		n, a, r := withRaw(t, stack.Config{SynCookies: mode})
		if _, err := a.Stack.Listen(ap(ipA, 80), 0); err != nil {
			t.Fatal(err)
		}
		ack := wire.TCPFields{Seq: 1, Ack: 12345, Flags: wire.TCPFlagACK, Window: 100}
		if out := rawTCP(t, n, a, r, 3000, 80, ack); len(out) != 1 || out[0].Flags != wire.TCPFlagRST {
			t.Errorf("%v: stray ACK: %v, want a RST", mode, out)
		}
		if mode == stack.SynCookiesAlways {
			// A cookie, then 121 s: its ACK is no longer checked.
			syn := tsSYN(77, 1)
			synack := onlySYNACK(t, "SYN", rawTCP(t, n, a, r, 3001, 80, syn))
			n.RunFor(121 * time.Second)
			if out := rawTCP(t, n, a, r, 3001, 80, finalACK(syn, synack)); len(out) != 1 || out[0].Flags != wire.TCPFlagRST {
				t.Errorf("%v: cookie ACK after 121 s: %v, want a RST", mode, out)
			}
		}
		if st := a.Stack.Stats().TCP; st.SyncookiesFailed != 0 || st.SyncookiesRecv != 0 {
			t.Errorf("%v: SyncookiesFailed %d Recv %d: an ACK was checked as a cookie", mode, st.SyncookiesFailed, st.SyncookiesRecv)
		}
	}
}

// TestSynCookieAcceptQueueFull: a valid cookie ACK that finds the accept
// queue full is dropped without an answer and counted (ListenOverflows,
// ListenDrops), as Linux's tcp_v4_syn_recv_sock does; the peer's next
// segment brings the cookie again and opens the connection once the
// application has accepted.
func TestSynCookieAcceptQueueFull(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{SynCookies: stack.SynCookiesAlways})
	l, err := a.Stack.Listen(ap(ipA, 80), 1)
	if err != nil {
		t.Fatal(err)
	}
	syn1, syn2 := tsSYN(100, 1), tsSYN(200, 2)
	sa1 := onlySYNACK(t, "SYN 1", rawTCP(t, n, a, r, 4001, 80, syn1))
	sa2 := onlySYNACK(t, "SYN 2", rawTCP(t, n, a, r, 4002, 80, syn2))
	rawTCP(t, n, a, r, 4001, 80, finalACK(syn1, sa1))
	if l.Pending() != 1 {
		t.Fatalf("accept queue %d, want 1", l.Pending())
	}
	before := a.Stack.Stats()
	ack2 := finalACK(syn2, sa2)
	if out := rawTCP(t, n, a, r, 4002, 80, ack2); len(out) != 0 {
		t.Errorf("cookie ACK into a full accept queue answered: %v", out)
	}
	d := diff(before, a.Stack.Stats())
	if d["TCP.ListenOverflows"] != 1 || d["TCP.ListenDrops"] != 1 || d["TCP.SyncookiesRecv"] != 1 || d["TCP.PassiveOpens"] != 0 {
		t.Errorf("counters changed by %v, want ListenOverflows, ListenDrops and SyncookiesRecv 1, no PassiveOpens", d)
	}
	if len(a.Stack.Conns()) != 1 {
		t.Errorf("%d connections, want 1", len(a.Stack.Conns()))
	}
	if l.Accept() == nil {
		t.Fatal("Accept: nothing")
	}
	// The peer, established on its side, sends data: the cookie again.
	data := ack2
	data.Flags |= wire.TCPFlagPSH
	data.Payload = []byte("GET /")
	out := rawTCP(t, n, a, r, 4002, 80, data)
	s := l.Accept()
	if s == nil {
		t.Fatal("no connection from the second cookie segment")
	}
	if b, _ := readAll(s); string(b) != "GET /" {
		t.Errorf("read %q, want the segment's data", b)
	}
	if len(out) != 1 || out[0].Flags != wire.TCPFlagACK || out[0].Ack != data.Seq+5 {
		t.Errorf("answer to the data: %v, want an ACK of it", out)
	}
}

// TestSynCookieModeFromSysctl maps net.ipv4.tcp_syncookies values.
func TestSynCookieModeFromSysctl(t *testing.T) {
	for v, want := range map[int]stack.SynCookieMode{0: stack.SynCookiesOff, 1: stack.SynCookiesOnOverflow, 2: stack.SynCookiesAlways} {
		if m, err := stack.SynCookieModeFromSysctl(v); err != nil || m != want {
			t.Errorf("%d: %v %v, want %v", v, m, err, want)
		}
	}
	for _, v := range []int{-1, 3} {
		if _, err := stack.SynCookieModeFromSysctl(v); err == nil {
			t.Errorf("%d accepted", v)
		}
	}
}

// TestZeroAllocsSynCookie: answering a SYN with a cookie allocates
// nothing (a flood is exactly when it must not), nor does refusing a bad
// cookie ACK.
func TestZeroAllocsSynCookie(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	n, a, r := withRaw(t, stack.Config{SynCookies: stack.SynCookiesAlways})
	if _, err := a.Stack.Listen(ap(ipA, 80), 0); err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for i := range 512 {
		src := ap(ipRaw, uint16(10000+i))
		f := tsSYN(wire.Seq(i*7919), uint32(i))
		if i%2 == 1 {
			f = wire.TCPFields{Seq: wire.Seq(i), Ack: wire.Seq(i * 31), Flags: wire.TCPFlagACK, Window: 100}
		}
		frames = append(frames, stacktest.Ether(a.MAC, r.MAC, 0, wire.EtherTypeIPv4,
			stacktest.IP(stacktest.IPHeader(src.Addr(), ipA, wire.ProtoTCP), stacktest.TCPSeg(src, ap(ipA, 80), f))))
	}
	out := link.Packet{Buf: make([]byte, a.Stack.MaxFrameLen())}
	var in link.Packet
	now := n.Now
	k := 0
	step := func() {
		now = now.Add(time.Microsecond)
		fr := frames[k%len(frames)]
		k++
		in.Buf, in.N = fr, len(fr)
		a.Stack.HandleFrame(now, a.NIC, &in)
		for {
			if _, ok := a.Stack.PollTransmit(now, &out); !ok {
				break
			}
		}
	}
	for range 2000 {
		step()
	}
	before := a.Stack.Stats().TCP
	if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
		t.Errorf("%.2f allocations per SYN or bad cookie ACK", allocs)
	}
	st := a.Stack.Stats().TCP
	if st.SyncookiesSent == before.SyncookiesSent || st.SyncookiesFailed == before.SyncookiesFailed || len(a.Stack.Conns()) != 0 {
		t.Errorf("SyncookiesSent %d→%d Failed %d→%d, %d connections: the loop did not exercise cookies",
			before.SyncookiesSent, st.SyncookiesSent, before.SyncookiesFailed, st.SyncookiesFailed, len(a.Stack.Conns()))
	}
}
