package stack_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// rawTCP sends segment f from R (port rport) to A's port aport, and
// returns the TCP segments A sends back within 10 ms.
func rawTCP(t *testing.T, n *stacktest.Net, a, r *stacktest.Node, rport, aport uint16, f wire.TCPFields) []*wire.TCPFields {
	t.Helper()
	r.Send(r.TCPFrame(a.MAC, ap(ipRaw, rport), ap(ipA, aport), f))
	n.RunFor(10 * time.Millisecond)
	var out []*wire.TCPFields
	for _, fr := range r.Take() {
		d := decodeOne(t, fr)
		if d.TCP == nil {
			t.Fatalf("non-TCP answer %v", d)
		}
		if wire.TCPChecksum(d.IPv4.Payload(), d.IP.Src, d.IP.Dst) != 0 {
			t.Errorf("bad checksum on %v", d)
		}
		out = append(out, d.TCP)
	}
	return out
}

// TestClosedPortSYN: RFC 9293 §3.10.7.1: a segment without ACK to a port
// with no connection and no listener gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
// <CTL=RST,ACK>, where SYN and FIN count in SEG.LEN.
func TestClosedPortSYN(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	for _, tc := range []struct {
		flags wire.TCPFlags
		data  int
		ack   wire.Seq
	}{
		{wire.TCPFlagSYN, 0, 1001},
		{wire.TCPFlagSYN, 10, 1011},
		{wire.TCPFlagSYN | wire.TCPFlagFIN, 10, 1012},
		{wire.TCPFlagFIN, 0, 1001},
		{0, 5, 1005},
	} {
		out := rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 1000, Flags: tc.flags, Window: 100, Payload: payload(1, tc.data)})
		if len(out) != 1 {
			t.Fatalf("%v+%d: %d answers", tc.flags, tc.data, len(out))
		}
		rst := out[0]
		if rst.Flags != wire.TCPFlagRST|wire.TCPFlagACK || rst.Seq != 0 || rst.Ack != tc.ack || rst.SrcPort != 80 || rst.DstPort != 1000 || len(rst.Payload) != 0 {
			t.Errorf("%v+%d: answer %v, want RST/ACK seq 0 ack %d", tc.flags, tc.data, rst, tc.ack)
		}
	}
	if st := a.Stack.Stats().TCP; st.NoListener != 5 || st.OutRsts != 5 {
		t.Errorf("NoListener %d OutRsts %d, want 5 5", st.NoListener, st.OutRsts)
	}
}

// TestClosedPortACK: RFC 9293 §3.10.7.1: a segment with ACK gets
// <SEQ=SEG.ACK><CTL=RST>.
func TestClosedPortACK(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	out := rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 1000, Ack: 0xdeadbeef, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 100, Payload: []byte("hi")})
	if len(out) != 1 || out[0].Flags != wire.TCPFlagRST || out[0].Seq != 0xdeadbeef {
		t.Fatalf("answers %v, want one RST seq 0xdeadbeef", out)
	}
	// The same rule for a segment that reaches a listener with an ACK
	// (RFC 9293 §3.10.7.2, LISTEN: "any acknowledgment is bad").
	if _, err := a.Stack.Listen(ap(ipA, 80), 0); err != nil {
		t.Fatal(err)
	}
	out = rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 1000, Ack: 77, Flags: wire.TCPFlagACK, Window: 100})
	if len(out) != 1 || out[0].Flags != wire.TCPFlagRST || out[0].Seq != 77 {
		t.Fatalf("listener: answers %v, want one RST seq 77", out)
	}
}

// TestNoRSTForRST: RFC 9293 §3.10.7.1 and §3.10.7.2: an incoming RST is
// never answered, with or without ACK, closed port or listener.
func TestNoRSTForRST(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	if _, err := a.Stack.Listen(ap(ipA, 81), 0); err != nil {
		t.Fatal(err)
	}
	for _, port := range []uint16{80, 81} {
		for _, f := range []wire.TCPFlags{wire.TCPFlagRST, wire.TCPFlagRST | wire.TCPFlagACK, wire.TCPFlagRST | wire.TCPFlagSYN} {
			if out := rawTCP(t, n, a, r, 1000, port, wire.TCPFields{Seq: 1000, Ack: 5, Flags: f}); len(out) != 0 {
				t.Errorf("port %d %v answered with %v", port, f, out[0])
			}
		}
	}
	if st := a.Stack.Stats().TCP; st.OutRsts != 0 || st.PassiveOpens != 0 {
		t.Errorf("OutRsts %d PassiveOpens %d", st.OutRsts, st.PassiveOpens)
	}
}

// TestTCPBadChecksum: RFC 9293 §3.1 (MUST-2, MUST-3): a segment with a
// bad checksum is dropped, counted in InCsumErrors and InErrs, and not
// answered, not even with a RST.
func TestTCPBadChecksum(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	f := r.TCPFrame(a.MAC, ap(ipRaw, 1000), ap(ipA, 80), wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN})
	f[len(f)-1] ^= 0x40
	expectDrop(t, n, a, f, map[string]int64{"Net.InDelivers": 1, "TCP.InSegs": 1, "TCP.InCsumErrors": 1, "TCP.InErrs": 1})
}

// TestTCPMalformed: a header whose data offset is below 5 or past the
// data, or whose options are malformed (RFC 9293 §3.2: MUST-68 lets a
// receiver drop such a segment, as long as it does not crash), is
// dropped and counted in InBadHeader.
func TestTCPMalformed(t *testing.T) {
	mk := func(mutate func(seg []byte) []byte) []byte {
		seg := stacktest.TCPSeg(ap(ipRaw, 1000), ap(ipA, 80), wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN, Options: wire.TCPOptions{MSS: 1460}})
		seg = mutate(seg)
		seg[16], seg[17] = 0, 0
		binary.BigEndian.PutUint16(seg[16:], wire.TCPChecksum(seg, ipRaw, ipA))
		return stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoTCP), seg)
	}
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"data offset 4", mk(func(s []byte) []byte { s[12] = 4 << 4; return s })},
		{"data offset past the segment", mk(func(s []byte) []byte { s[12] = 15 << 4; return s })},
		{"shorter than a header", mk(func(s []byte) []byte { return s[:19] })},
		{"option length 0", mk(func(s []byte) []byte { s[21] = 0; return s })},
		{"option length 1", mk(func(s []byte) []byte { s[21] = 1; return s })},
		{"option past the header", mk(func(s []byte) []byte { s[21] = 40; return s })},
		{"MSS option of length 3", mk(func(s []byte) []byte { s[21] = 3; s[23] = 1; return s })},
		{"option kind with no length byte", mk(func(s []byte) []byte { s[20], s[21], s[22], s[23] = 1, 1, 1, 2; return s })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, a, r := withRaw(t, stack.Config{})
			expectDrop(t, n, a, r.IPFrame(a.MAC, tt.pkt), map[string]int64{"Net.InDelivers": 1, "TCP.InSegs": 1, "TCP.InBadHeader": 1, "TCP.InErrs": 1})
		})
	}
}

// TestTCPToBroadcast: TCP is unicast only (RFC 1122 §4.2.3.10: a SYN to
// a broadcast or multicast address is discarded); Linux drops any
// segment that is not PACKET_HOST.
func TestTCPToBroadcast(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	if _, err := a.Stack.Listen(ap(netip.IPv4Unspecified(), 80), 0); err != nil {
		t.Fatal(err)
	}
	syn := wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN}
	expectDrop(t, n, a, r.TCPFrame(wire.BroadcastMAC, ap(ipRaw, 1000), ap(bcast, 80), syn), map[string]int64{"Net.InAddrErrors": 1})
	expectDrop(t, n, a, r.TCPFrame(wire.BroadcastMAC, ap(ipRaw, 1000), ap(ipA, 80), syn), map[string]int64{"Net.InAddrErrors": 1})
}

// TestConnectToBroadcast: RFC 9293 MUST-46 (RFC 1122 §4.2.3.10): an
// active open to a broadcast or multicast address, or to 0.0.0.0, is
// refused (ENETUNREACH, as Linux's connect) and sends nothing.
func TestConnectToBroadcast(t *testing.T) {
	n, a, _ := pair(t, stack.Config{}, stack.Config{})
	for _, dst := range []string{"10.0.0.255", "255.255.255.255", "224.0.0.1", "239.1.2.3", "0.0.0.0"} {
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(netip.MustParseAddr(dst), 80))
		if !errors.Is(err, syscall.ENETUNREACH) || c != nil {
			t.Errorf("Connect to %s: %v, %v; want ENETUNREACH", dst, c, err)
		}
	}
	if st := a.Stack.Stats(); st.TCP.ActiveOpens != 0 || st.TCP.OutSegs != 0 {
		t.Errorf("after refused connects: ActiveOpens %d, OutSegs %d", st.TCP.ActiveOpens, st.TCP.OutSegs)
	}
}

// twoAddrs returns a segment where B has 10.0.0.2 and 10.0.0.3.
func twoAddrs(t *testing.T) (*stacktest.Net, *stacktest.Node, *stacktest.Node, netip.Addr) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	ipB2 := netip.MustParseAddr("10.0.0.3")
	if err := b.Stack.AddAddress(b.NIC, netip.PrefixFrom(ipB2, 24)); err != nil {
		t.Fatal(err)
	}
	return n, a, b, ipB2
}

// TestListenConflicts: binding rules as in Linux without SO_REUSEADDR: a
// wildcard listener and a specific one on the same port conflict either
// way round (EADDRINUSE); two specific addresses do not; a non-local
// address is EADDRNOTAVAIL; after Close the port is free again.
func TestListenConflicts(t *testing.T) {
	_, _, b, ipB2 := twoAddrs(t)
	st := b.Stack
	mustListen := func(a netip.AddrPort) *stack.TCPListener {
		t.Helper()
		l, err := st.Listen(a, 0)
		if err != nil {
			t.Fatalf("Listen(%v): %v", a, err)
		}
		return l
	}
	expectErr := func(a netip.AddrPort, errno syscall.Errno) {
		t.Helper()
		if _, err := st.Listen(a, 0); !errors.Is(err, errno) {
			t.Errorf("Listen(%v) = %v, want %v", a, err, errno)
		}
	}
	any := netip.IPv4Unspecified()
	l80 := mustListen(ap(any, 80))
	expectErr(ap(ipB, 80), syscall.EADDRINUSE)
	expectErr(ap(any, 80), syscall.EADDRINUSE)
	mustListen(ap(ipB, 81))
	expectErr(ap(any, 81), syscall.EADDRINUSE)
	expectErr(ap(ipB, 81), syscall.EADDRINUSE)
	mustListen(ap(ipB, 82))
	mustListen(ap(ipB2, 82))
	expectErr(ap(any, 82), syscall.EADDRINUSE)
	expectErr(ap(netip.MustParseAddr("10.0.0.50"), 83), syscall.EADDRNOTAVAIL)
	l80.Close()
	mustListen(ap(ipB, 80))
}

// TestListenSpecificAndWildcard: segments go to the listener of their
// destination address (RFC 9293 §3.10.7.2 via the demultiplexing of
// §3.10.7); a wildcard listener takes every local address.
func TestListenSpecificAndWildcard(t *testing.T) {
	n, a, b, ipB2 := twoAddrs(t)
	l1, err := b.Stack.Listen(ap(ipB, 82), 0)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := b.Stack.Listen(ap(ipB2, 82), 0)
	if err != nil {
		t.Fatal(err)
	}
	lw, err := b.Stack.Listen(ap(netip.IPv4Unspecified(), 90), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		l  *stack.TCPListener
		to netip.AddrPort
	}{{l1, ap(ipB, 82)}, {l2, ap(ipB2, 82)}, {lw, ap(ipB, 90)}, {lw, ap(ipB2, 90)}} {
		c, s := connectTo(t, n, a, tc.l, tc.to)
		if s.LocalAddr() != tc.to || c.RemoteAddr() != tc.to || s.RemoteAddr() != c.LocalAddr() {
			t.Errorf("to %v: server %v<-%v client %v->%v", tc.to, s.LocalAddr(), s.RemoteAddr(), c.LocalAddr(), c.RemoteAddr())
		}
		transfer(t, n, c, s, []byte("ping"), time.Second)
		if l1.Pending()+l2.Pending()+lw.Pending() != 0 {
			t.Errorf("to %v: a listener holds another connection", tc.to)
		}
	}
}

// TestSynBacklog: Config.SynBacklog bounds each listener's half-open
// connections (net.ipv4.tcp_max_syn_backlog); with SYN cookies off
// (tcp_syncookies = 0) further SYNs are dropped, not answered, and
// counted (SynQueueDrops, ListenDrops). TestSynCookiesOnOverflow has the
// default, cookies.
func TestSynBacklog(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{SynBacklog: 2, SynCookies: stack.SynCookiesOff})
	if _, err := a.Stack.Listen(ap(ipA, 80), 0); err != nil {
		t.Fatal(err)
	}
	answered := 0
	for port := uint16(1000); port < 1004; port++ {
		out := rawTCP(t, n, a, r, port, 80, wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000})
		answered += len(out)
		if port < 1002 && (len(out) != 1 || out[0].Flags != wire.TCPFlagSYN|wire.TCPFlagACK) {
			t.Errorf("SYN from %d: %v, want a SYN-ACK", port, out)
		}
	}
	if answered != 2 {
		t.Errorf("%d SYN-ACKs, want 2", answered)
	}
	st := a.Stack.Stats().TCP
	if st.SynQueueDrops != 2 || st.ListenDrops != 2 {
		t.Errorf("SynQueueDrops %d ListenDrops %d, want 2 2", st.SynQueueDrops, st.ListenDrops)
	}
	// A retransmitted SYN of a queued connection is no new one: it gets
	// the SYN-ACK again (RFC 9293 §3.10.7.4 via Linux's request sockets),
	// not a drop.
	n.RunFor(time.Second)
	r.Take()
	out := rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000})
	if len(out) != 1 || out[0].Flags != wire.TCPFlagSYN|wire.TCPFlagACK {
		t.Errorf("retransmitted SYN: %v, want a SYN-ACK", out)
	}
	// Completing one handshake frees a place in the SYN queue.
	isn := out[0].Seq
	rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 2, Ack: isn + 1, Flags: wire.TCPFlagACK, Window: 1000})
	out = rawTCP(t, n, a, r, 1004, 80, wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000})
	if len(out) != 1 || out[0].Flags != wire.TCPFlagSYN|wire.TCPFlagACK {
		t.Errorf("SYN after a handshake completed: %v, want a SYN-ACK", out)
	}
}

// TestAcceptQueueFull: when the accept queue is full, Linux drops SYNs
// (ListenOverflows) and drops the handshake's final ACK, so that the
// SYN-ACK is retransmitted and the connection completes once the
// application has accepted (tcp_check_req, tcp_v4_syn_recv_sock).
func TestAcceptQueueFull(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	l, err := a.Stack.Listen(ap(ipA, 80), 1)
	if err != nil {
		t.Fatal(err)
	}
	// Two clients dial at once: both SYNs find the queue empty.
	c1, err := b.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipA, 80))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := b.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipA, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(100 * time.Millisecond)
	if c1.State() != tcp.Established || c2.State() != tcp.Established {
		t.Fatalf("clients %v %v, want both ESTABLISHED", c1.State(), c2.State())
	}
	if l.Pending() != 1 {
		t.Fatalf("accept queue %d, want 1", l.Pending())
	}
	st := a.Stack.Stats().TCP
	if st.ListenOverflows != 1 {
		t.Errorf("ListenOverflows %d, want 1 (the second final ACK)", st.ListenOverflows)
	}
	// A third client's SYN is dropped while the queue is full.
	c3, err := b.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipA, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(100 * time.Millisecond)
	if c3.State() != tcp.SynSent {
		t.Errorf("third client %v, want SYN-SENT", c3.State())
	}
	if got := a.Stack.Stats().TCP.ListenOverflows; got != 2 {
		t.Errorf("ListenOverflows %d, want 2", got)
	}
	s1 := l.Accept()
	// The SYN-ACK retransmission (1 s) draws an ACK that now completes
	// the second connection; the third client's SYN is retransmitted too.
	n.RunUntil(5*time.Second, func() bool { return l.Pending() == 1 })
	s2 := l.Accept()
	n.RunUntil(5*time.Second, func() bool { return l.Pending() == 1 && c3.State() == tcp.Established })
	s3 := l.Accept()
	if a.Stack.Stats().TCP.SynRetrans == 0 {
		t.Error("no SYN-ACK retransmitted")
	}
	for i, p := range [][2]*stack.TCPConn{{c1, s1}, {c2, s2}, {c3, s3}} {
		if p[1] == nil || p[1].RemoteAddr() != p[0].LocalAddr() {
			t.Fatalf("connection %d not accepted in order", i+1)
		}
		transfer(t, n, p[0], p[1], payload(uint64(i), 3000), 10*time.Second)
		transfer(t, n, p[1], p[0], payload(uint64(i), 3000), 10*time.Second)
	}
}

// TestListenerCloseResets: closing a listener resets the connections in
// its queues, half-open or established but not accepted, as Linux does
// (inet_csk_listen_stop); the peers see ECONNRESET.
func TestListenerCloseResets(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	l, err := a.Stack.Listen(ap(ipA, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs []*stack.TCPConn
	for range 2 {
		c, err := b.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipA, 80))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	n.RunUntil(time.Second, func() bool { return l.Pending() == 2 })
	// A third one stays half-open: its final ACK is lost.
	n.Impair = func(f *stacktest.Frame) stacktest.Action {
		return stacktest.Action{Drop: f.From == b && f.Decode().IsTCP(wire.TCPFlagACK)}
	}
	c3, err := b.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipA, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	n.Impair = nil
	cs = append(cs, c3)
	if len(a.Stack.Conns()) != 3 {
		t.Fatalf("A has %d connections, want 3", len(a.Stack.Conns()))
	}
	l.Close()
	n.RunFor(10 * time.Millisecond)
	for i, c := range cs {
		if c.State() != tcp.Closed || !errors.Is(c.Err(), syscall.ECONNRESET) {
			t.Errorf("client %d: %v, %v; want CLOSED, ECONNRESET", i, c.State(), c.Err())
		}
	}
	if len(a.Stack.Conns()) != 0 || len(a.Stack.Listeners()) != 0 {
		t.Errorf("left: %+v %+v", a.Stack.Conns(), a.Stack.Listeners())
	}
	if s := l.Accept(); s != nil {
		t.Errorf("Accept after Close: %v", s.RemoteAddr())
	}
	// The port is closed now: a new SYN is refused.
	c, err := b.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipA, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	if !errors.Is(c.Err(), syscall.ECONNREFUSED) {
		t.Errorf("connect after listener close: %v, want ECONNREFUSED", c.Err())
	}
}

// TestTimeWaitReopen: RFC 9293 §3.10.7.4 and RFC 6191: a SYN that
// arrives for a connection in TIME-WAIT, with a sequence number (or
// timestamp) beyond the old connection's, may open a new one; its ISS
// then starts past everything the old one sent (Linux: SND.NXT+65535+2,
// tcp.Conn.ReopenISS), so old duplicates cannot be taken for new data.
func TestTimeWaitReopen(t *testing.T) {
	for _, noTS := range []bool{false, true} {
		cfg := stack.Config{TCP: tcp.Config{NoTimestamps: noTS}}
		n, a, b := pair(t, cfg, cfg)
		c, s, l := connect(t, n, a, b, 80)
		transfer(t, n, c, s, payload(1, 10000), time.Second)
		transfer(t, n, s, c, payload(2, 7000), time.Second)
		// The server closes first, so it is the one in TIME-WAIT.
		s.Close()
		n.RunFor(10 * time.Millisecond)
		c.Close()
		n.RunFor(100 * time.Millisecond)
		if s.State() != tcp.TimeWait || c.State() != tcp.Closed {
			t.Fatalf("noTS %v: server %v client %v, want TIME-WAIT, CLOSED", noTS, s.State(), c.State())
		}
		var oldFin wire.Seq
		for _, f := range frames(n, 0, from(b)) {
			if d := f.Decode(); d.IsTCP(wire.TCPFlagFIN) {
				oldFin = d.TCP.Seq
			}
		}
		mark := len(n.Log)
		n.RunFor(time.Second) // the new ISN must be beyond the old RCV.NXT
		c2, err := a.Stack.Connect(n.Now, c.LocalAddr(), c.RemoteAddr())
		if err != nil {
			t.Fatal(err)
		}
		n.RunUntil(time.Second, func() bool { return c2.State() == tcp.Established && l.Pending() == 1 })
		s2 := l.Accept()
		var synack *wire.TCPFields
		for _, f := range frames(n, mark, from(b)) {
			if d := f.Decode(); d.IsTCP(wire.TCPFlagSYN | wire.TCPFlagACK) {
				synack = d.TCP
				break
			}
		}
		if synack == nil || synack.Seq != oldFin+1+65535+2 {
			t.Errorf("noTS %v: SYN-ACK %v, want ISS %d (old SND.NXT + 65537)", noTS, synack, oldFin+1+65537)
		}
		if got := b.Stack.Stats().TCP.TWRecycled; got != 1 {
			t.Errorf("noTS %v: TWRecycled %d, want 1", noTS, got)
		}
		transfer(t, n, c2, s2, payload(3, 5000), time.Second)
		transfer(t, n, s2, c2, payload(4, 5000), time.Second)
	}
}

// TestSimultaneousOpen: RFC 9293 §3.5 figure 8: two stacks dial each
// other at the same time from the ports the other dials; both SYNs cross,
// both ends answer with SYN-ACKs, and both reach ESTABLISHED without a
// listener.
func TestSimultaneousOpen(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	a.Stack.AddNeighbor(a.NIC, ipB, b.MAC)
	b.Stack.AddNeighbor(b.NIC, ipA, a.MAC)
	ca, err := a.Stack.Connect(n.Now, ap(ipA, 5000), ap(ipB, 6000))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Stack.Connect(n.Now, ap(ipB, 6000), ap(ipA, 5000))
	if err != nil {
		t.Fatal(err)
	}
	n.RunUntil(time.Second, func() bool { return ca.State() == tcp.Established && cb.State() == tcp.Established })
	if n.Now > 10*clock1ms {
		t.Errorf("established at %v: it took retransmissions", n.Now)
	}
	var syns, synacks, rsts int
	for _, f := range n.Log {
		d := decodeOne(t, f)
		switch {
		case d.IsTCP(wire.TCPFlagRST):
			rsts++
		case d.IsTCP(wire.TCPFlagSYN | wire.TCPFlagACK):
			synacks++
		case d.IsTCP(wire.TCPFlagSYN):
			syns++
		}
	}
	if syns != 2 || synacks != 2 || rsts != 0 {
		t.Errorf("%d SYNs, %d SYN-ACKs, %d RSTs; want 2 2 0", syns, synacks, rsts)
	}
	transfer(t, n, ca, cb, payload(1, 20000), time.Second)
	transfer(t, n, cb, ca, payload(2, 20000), time.Second)
}

// TestLoopback: a connection to one of the stack's own addresses works
// without touching the wire (Linux routes it through lo), including a
// bulk transfer and an orderly close from both ends.
func TestLoopback(t *testing.T) {
	n, a, _ := pair(t, stack.Config{}, stack.Config{})
	c, s, _ := connect(t, n, a, a, 80)
	transfer(t, n, c, s, payload(1, 1<<20), time.Minute)
	transfer(t, n, s, c, payload(2, 100000), time.Minute)
	c.Close()
	s.Close()
	n.RunQuiet(5 * time.Minute)
	if len(n.Log) != 0 {
		t.Errorf("loopback traffic on the wire: %v", n.Log[0])
	}
	if cs := a.Stack.Conns(); len(cs) != 0 {
		t.Errorf("connections left: %+v", cs)
	}
	if st := a.Stack.Stats().Link; st.TxLoopback == 0 || st.TxFrames != 0 {
		t.Errorf("TxLoopback %d TxFrames %d", st.TxLoopback, st.TxFrames)
	}
	// UDP too, and a datagram to a closed port of our own is refused
	// with a port unreachable that comes back to us.
	u, err := a.Stack.BindUDP(ap(ipA, 7))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteTo(n.Now, payload(3, 3000), ap(ipA, 7)); err != nil {
		t.Fatal(err)
	}
	n.Flush()
	var buf [4000]byte
	if k, from, err := u.ReadFrom(buf[:]); err != nil || k != 3000 || from != ap(ipA, 7) {
		t.Errorf("loopback datagram: %d bytes from %v, %v", k, from, err)
	}
}

// TestSegmentsFitMTU: RFC 9293 §3.7.1 (MUST-16): the data a segment
// carries is the effective send MSS less its TCP options, SACK blocks
// included, so that data segments sent while holding out-of-order data
// (and thus carrying SACK blocks, RFC 2018) still fit the MTU. Data flows
// both ways while frames are lost both ways.
func TestSegmentsFitMTU(t *testing.T) {
	for _, noTS := range []bool{false, true} {
		cfg := stack.Config{TCP: tcp.Config{NoTimestamps: noTS}}
		n, a, b := pair(t, cfg, cfg)
		c, s, _ := connect(t, n, a, b, 80)
		k := 0
		n.Impair = func(f *stacktest.Frame) stacktest.Action {
			if d := f.Decode(); d.TCP != nil && len(d.TCP.Payload) > 0 {
				k++
				return stacktest.Action{Drop: k%7 == 3}
			}
			return stacktest.Action{}
		}
		ab, ba := payload(1, 300000), payload(2, 300000)
		var gotA, gotB []byte
		sentA, sentB := 0, 0
		buf := make([]byte, 65536)
		n.RunUntil(time.Minute, func() bool {
			if sentA < len(ab) {
				w, _ := c.Write(ab[sentA:])
				sentA += w
			}
			if sentB < len(ba) {
				w, _ := s.Write(ba[sentB:])
				sentB += w
			}
			r, _ := c.Read(buf)
			gotA = append(gotA, buf[:r]...)
			r, _ = s.Read(buf)
			gotB = append(gotB, buf[:r]...)
			n.Flush()
			return len(gotA) == len(ba) && len(gotB) == len(ab)
		})
		if string(gotA) != string(ba) || string(gotB) != string(ab) {
			t.Fatalf("noTS %v: data corrupted", noTS)
		}
		sacked := 0
		for _, f := range n.Log {
			if len(f.Data) > 1514 {
				t.Fatalf("noTS %v: frame of %d bytes: %v", noTS, len(f.Data), f)
			}
			if d := f.Decode(); d.TCP != nil && len(d.TCP.Payload) > 0 && d.TCP.Options.NumSACK > 0 {
				sacked++
			}
		}
		if sacked == 0 {
			t.Errorf("noTS %v: no data segment carried SACK blocks: the test tests nothing", noTS)
		}
	}
}

// TestWindowWithinBuffer: the window a connection advertises never
// exceeds its receive buffer (RFC 9293 §3.8.6: the window is the buffer
// space available), from the first ACK of the handshake on, on both
// sides, whatever the initial sequence numbers.
func TestWindowWithinBuffer(t *testing.T) {
	for seed := range uint64(6) {
		for _, buf := range []int{16 << 10, 1 << 20} {
			// A fixed buffer: auto-tuning would grow it (RcvBuf is where
			// it starts).
			cfg := stack.Config{Seed: seed + 1, TCP: tcp.Config{RcvBuf: buf, RcvBufMax: buf}}
			n, a, b := pair(t, cfg, stack.Config{Seed: seed + 50, TCP: tcp.Config{RcvBuf: buf, RcvBufMax: buf}})
			c, s, _ := connect(t, n, a, b, 80)
			size := min(3*buf, 256<<10)
			transfer(t, n, c, s, payload(1, size), time.Minute)
			transfer(t, n, s, c, payload(2, size), time.Minute)
			scale := map[*stacktest.Node]uint8{}
			for _, f := range n.Log {
				d := f.Decode()
				if d.TCP == nil {
					continue
				}
				if d.TCP.Flags&wire.TCPFlagSYN != 0 {
					scale[f.From] = d.TCP.Options.WScale
					continue
				}
				if w := int(d.TCP.Window) << scale[f.From]; w > buf {
					t.Fatalf("seed %d buffer %d: %s advertises %d bytes: %v", seed, buf, f.From.Name, w, f)
				}
			}
		}
	}
}

// TestTimeWaitOldSYN: RFC 9293 §3.10.7.4 and RFC 6191: a SYN for a
// TIME-WAIT connection whose sequence number and timestamp are not newer
// is an old duplicate: it is acknowledged, opens nothing, and the
// TIME-WAIT goes on. A newer SYN when the listener is gone is refused
// with a RST.
func TestTimeWaitOldSYN(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{TCP: tcp.Config{NoTimestamps: true}})
	l, err := a.Stack.Listen(ap(ipA, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 5000, Flags: wire.TCPFlagSYN, Window: 65535})
	iss := out[0].Seq
	rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 5001, Ack: iss + 1, Flags: wire.TCPFlagACK, Window: 65535})
	s := l.Accept()
	s.Close() // A's FIN
	n.RunFor(10 * time.Millisecond)
	r.Take()
	// R acknowledges the FIN and sends its own: A is in TIME-WAIT.
	rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 5001, Ack: iss + 2, Flags: wire.TCPFlagACK | wire.TCPFlagFIN, Window: 65535})
	if s.State() != tcp.TimeWait {
		t.Fatalf("state %v, want TIME-WAIT", s.State())
	}
	// An old SYN (below RCV.NXT = 5002).
	out = rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 4000, Flags: wire.TCPFlagSYN, Window: 65535})
	if len(out) != 1 || out[0].Flags != wire.TCPFlagACK || out[0].Ack != 5002 {
		t.Errorf("old SYN answered with %v, want an ACK of 5002", out)
	}
	if len(a.Stack.Conns()) != 1 || l.Pending() != 0 {
		t.Errorf("old SYN opened a connection")
	}
	// A newer SYN, with the listener closed: the TIME-WAIT ends and the
	// SYN finds no listener.
	l.Close()
	out = rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 90000, Flags: wire.TCPFlagSYN, Window: 65535})
	if len(out) != 1 || out[0].Flags != wire.TCPFlagRST|wire.TCPFlagACK || out[0].Ack != 90001 {
		t.Errorf("new SYN without a listener: %v, want RST/ACK ack 90001", out)
	}
	if len(a.Stack.Conns()) != 0 {
		t.Errorf("connections left: %+v", a.Stack.Conns())
	}
}

// TestHalfOpenExpires: a half-open connection whose SYN-ACK is never
// answered is retransmitted SynAckRetries times (RFC 9293 §3.8.1, Linux
// tcp_synack_retries 5: 1+2+4+8+16 s, then 32 s more) and then forgotten,
// freeing its place in the SYN queue.
func TestHalfOpenExpires(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{SynBacklog: 1})
	if _, err := a.Stack.Listen(ap(ipA, 80), 0); err != nil {
		t.Fatal(err)
	}
	rawTCP(t, n, a, r, 1000, 80, wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000})
	if q := a.Stack.Listeners()[0].SynQueue; q != 1 {
		t.Fatalf("SYN queue %d, want 1", q)
	}
	n.RunUntil(2*time.Minute, func() bool { return len(a.Stack.Conns()) == 0 })
	if got := n.Now.Sub(0); got < 63*time.Second || got > 64*time.Second {
		t.Errorf("forgotten after %v, want 63 s", got)
	}
	synacks := 0
	for _, f := range r.Take() {
		if decodeOne(t, f).IsTCP(wire.TCPFlagSYN | wire.TCPFlagACK) {
			synacks++
		}
	}
	if synacks != 5 {
		t.Errorf("%d SYN-ACK retransmissions, want 5", synacks)
	}
	if q := a.Stack.Listeners()[0].SynQueue; q != 0 {
		t.Errorf("SYN queue %d after the half-open connection expired", q)
	}
	if out := rawTCP(t, n, a, r, 1001, 80, wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000}); len(out) != 1 {
		t.Errorf("a new SYN: %v, want a SYN-ACK", out)
	}
}
