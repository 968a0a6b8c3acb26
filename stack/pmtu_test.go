package stack_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// TestPMTUFragNeeded: RFC 1191 through the stack. A "fragmentation
// needed" naming MTU 1200 and quoting A's data segment in flight lowers
// the connection's MSS (1200 − 20 − 20 − 12 = 1148) and teaches the cache
// (PathMTU); A's TCP segments carry DF; the transfer completes in
// segments that fit. One quoting a sequence number not in flight is
// rejected (RFC 5927) and teaches nothing. UDP datagrams to B leave in
// fragments of the path MTU; a new connection sends at the smaller MSS
// while announcing the NIC's; an MTU below 552 is raised to it; after ten
// minutes the entry expires, PathMTU is the NIC's again and the old
// connection's MSS rises back (RFC 1191 §6.3).
func TestPMTUFragNeeded(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	c, s, l := connect(t, n, a, b, 80)
	// The path beyond takes 1200 bytes: larger packets from A vanish
	// where a router would send the error this test forges.
	n.Impair = func(f *stacktest.Frame) stacktest.Action {
		return stacktest.Action{Drop: f.From == a && len(f.Data) > 14+1200}
	}
	i := len(n.Log)
	if _, err := c.Write(payload(1, 3000)); err != nil {
		t.Fatal(err)
	}
	n.Flush()
	var data wire.IPv4
	for _, f := range frames(n, i, from(a)) {
		if d := decodeOne(t, f); d.TCP != nil && len(d.TCP.Payload) > 0 {
			data = d.IPv4
			if !d.IP.DF {
				t.Error("TCP segment without DF")
			}
			break
		}
	}
	if data == nil {
		t.Fatal("no data segment from A")
	}
	fragNeeded := func(mtu uint16, quote []byte) {
		b.Send(b.ICMPFrame(a.MAC, ipB, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4FragmentationNeeded, MTU: mtu, Payload: quote}))
		n.RunFor(time.Millisecond)
	}
	// Out of window first: the quoted sequence number moved far ahead.
	bogus := bytes.Clone(data[:48])
	bogus[20+4] ^= 0x80
	fragNeeded(1200, bogus)
	st := a.Stack.Stats()
	if st.TCP.PTBRejected != 1 || st.TCP.OutOfWindowICMPs != 1 || st.PMTU.Learned != 0 || c.Info().SndMSS != 1448 {
		t.Fatalf("out-of-window error acted on: %+v %+v, MSS %d", st.TCP, st.PMTU, c.Info().SndMSS)
	}
	fragNeeded(1200, data[:48])
	st = a.Stack.Stats()
	if st.TCP.PTBAccepted != 1 || st.PMTU.Learned != 1 || st.PMTU.Entries != 1 || c.Info().SndMSS != 1148 || c.Info().PMTU != 1200 {
		t.Fatalf("after the error: %+v %+v, MSS %d", st.TCP, st.PMTU, c.Info().SndMSS)
	}
	if m, err := a.Stack.PathMTU(n.Now, ipB); err != nil || m != 1200 {
		t.Fatalf("PathMTU %d, %v", m, err)
	}
	i = len(n.Log)
	n.RunFor(time.Second)
	buf := make([]byte, 5000)
	if k, _ := s.Read(buf); k != 3000 || !bytes.Equal(buf[:k], payload(1, 3000)) {
		t.Fatalf("the data in flight when the error came: %d bytes read", k)
	}
	if got := transfer(t, n, c, s, payload(2, 100_000), time.Minute); len(got) != 100_000 {
		t.Fatalf("transfer after the error: %d bytes", len(got))
	}
	for _, f := range frames(n, i, from(a)) {
		if d := decodeOne(t, f); d.IP != nil && int(d.IP.TotalLen) > 1200 {
			t.Fatalf("packet of %d bytes after the path MTU fell to 1200", d.IP.TotalLen)
		}
	}
	// UDP: fragments of at most 1200 bytes.
	u, err := a.Stack.BindUDP(ap(netip.IPv4Unspecified(), 0))
	if err != nil {
		t.Fatal(err)
	}
	i = len(n.Log)
	if _, err := u.WriteTo(n.Now, make([]byte, 1400), ap(ipB, 9)); err != nil {
		t.Fatal(err)
	}
	n.Flush()
	frags := frames(n, i, from(a))
	if len(frags) != 2 {
		t.Fatalf("datagram of 1400 bytes left in %d packets, want 2 fragments", len(frags))
	}
	for _, f := range frags {
		if d := decodeOne(t, f); int(d.IP.TotalLen) > 1200 {
			t.Errorf("fragment of %d bytes", d.IP.TotalLen)
		}
	}
	// A new connection: sends at 1148, announces 1460.
	c2, s2 := connectTo(t, n, a, l, ap(ipB, 80))
	if c2.Info().SndMSS != 1148 || c2.Info().AdvMSS != 1460 {
		t.Errorf("new connection: MSS %d, announced %d", c2.Info().SndMSS, c2.Info().AdvMSS)
	}
	_ = s2
	// Below the minimum: raised to 552.
	fragNeeded(300, append(bytes.Clone(data[:20]), c2SegHeader(t, n, a, c2)...))
	if st := a.Stack.Stats().PMTU; st.Clamped != 1 {
		t.Errorf("MTU 300 not clamped: %+v", st)
	}
	if m, _ := a.Stack.PathMTU(n.Now, ipB); m != 552 {
		t.Errorf("PathMTU %d after an error naming 300, want 552", m)
	}
	// Expiry.
	n.RunFor(11 * time.Minute)
	if m, _ := a.Stack.PathMTU(n.Now, ipB); m != 1500 || a.Stack.Stats().PMTU.Entries != 0 || a.Stack.Stats().PMTU.Expired == 0 {
		t.Fatalf("after 11 minutes: PathMTU %d, %+v", m, a.Stack.Stats().PMTU)
	}
	transfer(t, n, c, s, []byte("more"), time.Second)
	if got := c.Info().SndMSS; got != 1448 {
		t.Errorf("MSS %d after the entry expired, want 1448 again", got)
	}
}

// c2SegHeader returns the first 28 bytes of a segment c2 sends now (the
// transport header an ICMP error quotes), from the log.
func c2SegHeader(t *testing.T, n *stacktest.Net, a *stacktest.Node, c2 *stack.TCPConn) []byte {
	t.Helper()
	i := len(n.Log)
	if _, err := c2.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	n.Flush()
	for _, f := range frames(n, i, from(a)) {
		if d := decodeOne(t, f); d.TCP != nil && len(d.TCP.Payload) > 0 {
			return bytes.Clone(d.IPv4[20:28])
		}
	}
	t.Fatal("no segment from the second connection")
	return nil
}

// TestPMTUWhileConnecting: a "fragmentation needed" quoting the SYN (in
// flight: RFC 5927's check passes) is learned by the cache; the
// connection, whose MSS is not fixed yet, sends at what the path takes
// once the handshake fixes it, while its SYN announced the NIC's.
func TestPMTUWhileConnecting(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipRaw, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(time.Millisecond)
	in := r.Take()
	if len(in) != 1 {
		t.Fatalf("want the SYN, got %v", in)
	}
	d := decodeOne(t, in[0])
	r.Send(r.ICMPFrame(a.MAC, ipRaw, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4FragmentationNeeded, MTU: 1000, Payload: d.IPv4[:48]}))
	n.RunFor(time.Millisecond)
	if st := a.Stack.Stats(); st.TCP.PTBAccepted != 1 || st.PMTU.Learned != 1 {
		t.Fatalf("error about the SYN: %+v %+v", st.TCP, st.PMTU)
	}
	syn := d.TCP
	r.Send(r.TCPFrame(a.MAC, ap(ipRaw, 80), ap(ipA, syn.SrcPort), wire.TCPFields{
		Seq: 5000, Ack: syn.Seq + 1, Flags: wire.TCPFlagSYN | wire.TCPFlagACK, Window: 65535,
		Options: wire.TCPOptions{MSS: 1460}}))
	n.RunFor(time.Millisecond)
	if i := c.Info(); i.State != tcp.Established || i.SndMSS != 1000-40 || i.AdvMSS != 1460 {
		t.Fatalf("after the handshake: %v, MSS %d, announced %d; want 960 and 1460", i.State, i.SndMSS, i.AdvMSS)
	}
}
