package stack_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// offloadPair is pair with A's NIC given offload capabilities.
func offloadPair(t testing.TB, caps link.Caps) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	t.Helper()
	n := stacktest.New(t)
	a := n.AddStack("A", stack.New(stack.Config{Seed: 1}), stack.NICConfig{
		MAC: stacktest.MAC(1), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}, Caps: caps,
	})
	b := n.AddHost("B", stack.Config{Seed: 2}, "10.0.0.2/24")
	return n, a, b
}

// offloadRun is the exchange the offload tests compare: a connection
// from A to B, 2 MiB from A, 100 kB back, both ends closing, a ping
// and a UDP datagram.
func offloadRun(t *testing.T, caps link.Caps) *stacktest.Net {
	n, a, b := offloadPair(t, caps)
	c, s, _ := connect(t, n, a, b, 80)
	transfer(t, n, c, s, payload(1, 2<<20), time.Minute)
	transfer(t, n, s, c, payload(2, 100_000), time.Minute)
	c.Close()
	s.Close()
	ub, err := b.Stack.BindUDP(ap(ipB, 53))
	if err != nil {
		t.Fatal(err)
	}
	ua, err := a.Stack.BindUDP(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ua.WriteTo(n.Now, payload(3, 3000), ap(ipB, 53)); err != nil {
		t.Fatal(err)
	}
	n.RunQuiet(5 * time.Minute)
	if k, _, err := ub.ReadFrom(make([]byte, 4000)); k != 3000 || err != nil {
		t.Fatalf("datagram: %d bytes, %v", k, err)
	}
	if cs := a.Stack.Conns(); len(cs) != 0 {
		t.Fatalf("connections left: %+v", cs)
	}
	return n
}

// sameWire fails unless two runs put the same frames on the wire at the
// same instants, byte for byte.
func sameWire(t *testing.T, plain, off *stacktest.Net) {
	t.Helper()
	for i, f := range plain.Log {
		if i >= len(off.Log) {
			break
		}
		g := off.Log[i]
		if f.Sent != g.Sent || f.From.Name != g.From.Name || !bytes.Equal(f.Data, g.Data) {
			t.Fatalf("frame %d differs:\nwithout offloads %v\nwith offloads    %v", i, f, g)
		}
	}
	if len(plain.Log) != len(off.Log) {
		t.Fatalf("%d frames on the wire, %d without offloads", len(off.Log), len(plain.Log))
	}
}

// TestTSOSuperFrames: on a NIC that segments TCP (link.CapTSO with
// CapTxChecksum) the stack hands over super-frames of up to 64 KiB with
// the GSO fields and a partial checksum set, and the NIC's segmentation
// of them (done here in software, as the NIC would) puts on the wire
// exactly the frames the same run puts there without offloads: the same
// bytes at the same instants, IP IDs included.
func TestTSOSuperFrames(t *testing.T) {
	plain := offloadRun(t, 0)
	tso := offloadRun(t, link.CapTSO|link.CapTxChecksum)
	sameWire(t, plain, tso)
	if len(plain.Offloaded) != 0 {
		t.Fatalf("without offloads the stack asked for %d", len(plain.Offloaded))
	}
	supers, largest := 0, 0
	for _, f := range tso.Offloaded {
		o := f.Offload
		if !o.NeedsCsum || o.CsumStart != 34 || o.CsumOffset != 16 {
			t.Fatalf("frame %d: offload %+v, want a partial TCP checksum at 34+16", f.N, o)
		}
		seg := f.Data[34:]
		src, dst := netip.AddrFrom4([4]byte(f.Data[26:30])), netip.AddrFrom4([4]byte(f.Data[30:34]))
		if got, want := binary.BigEndian.Uint16(seg[16:]), wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(seg)); got != want {
			t.Fatalf("frame %d: checksum field %#x, want the pseudo-header sum %#x", f.N, got, want)
		}
		if o.GSOType == link.GSONone {
			continue
		}
		supers++
		largest = max(largest, len(f.Data))
		if o.GSOType != link.GSOTCPv4 || o.GSOSize != 1448 || o.HdrLen != 14+20+32 {
			t.Fatalf("frame %d: offload %+v, want TCPv4 segments of 1448 bytes behind 66 bytes of headers", f.N, o)
		}
		if len(f.Data)-int(o.HdrLen) <= int(o.GSOSize) {
			t.Fatalf("frame %d: a super-frame of one segment (%d bytes)", f.N, len(f.Data))
		}
	}
	if supers < 20 || largest < 60000 || largest > 14+65535 {
		t.Errorf("%d super-frames, the largest %d bytes: want many, up to 64 KiB", supers, largest)
	}
	t.Logf("%d frames on the wire; the stack handed over %d offloaded frames, %d of them super-frames (largest %d bytes)",
		len(tso.Log), len(tso.Offloaded), supers, largest)
}

// TestChecksumOffload: on a NIC that only completes checksums
// (link.CapTxChecksum) every TCP segment leaves with its checksum
// partial, one segment per frame, and the wire again carries exactly
// what it carries without offloads.
func TestChecksumOffload(t *testing.T) {
	plain := offloadRun(t, 0)
	csum := offloadRun(t, link.CapTxChecksum)
	sameWire(t, plain, csum)
	tcpFrames := 0
	for _, f := range csum.Log {
		if f.From.Name == "A" && f.Decode().TCP != nil {
			tcpFrames++
		}
	}
	// All but the first SYN, which waited for ARP in the neighbour
	// queue: a queued packet is checksummed whole.
	if len(csum.Offloaded) != tcpFrames-1 || tcpFrames < 100 {
		t.Errorf("%d frames offloaded, %d TCP frames from A", len(csum.Offloaded), tcpFrames)
	}
	if d := csum.Log[2].Decode(); csum.Log[2].From.Name != "A" || d.TCP == nil || d.TCP.Flags != wire.TCPFlagSYN {
		t.Errorf("frame 2 is %v, want A's SYN, sent after ARP", csum.Log[2])
	}
	for _, f := range csum.Offloaded {
		if f.Offload.GSOType != link.GSONone || !f.Offload.NeedsCsum {
			t.Fatalf("frame %d: offload %+v: a segmentation the NIC cannot do", f.N, f.Offload)
		}
	}
}

// TestMaxFrameLenTSO: a NIC that segments makes PollTransmit's buffers
// big enough for a 64 KiB IP packet; one that does not leaves them at
// the MTU.
func TestMaxFrameLenTSO(t *testing.T) {
	_, a, _ := offloadPair(t, link.CapTSO|link.CapTxChecksum)
	if got := a.Stack.MaxFrameLen(); got != 14+65535 {
		t.Errorf("MaxFrameLen with TSO %d, want %d", got, 14+65535)
	}
	_, a, _ = offloadPair(t, link.CapTSO) // TSO without checksum offload: not usable
	if got := a.Stack.MaxFrameLen(); got != 1514 {
		t.Errorf("MaxFrameLen with CapTSO alone %d, want 1514", got)
	}
}

// TestLoopbackSuperSegments: a connection to one of the stack's own
// addresses moves its data in super-segments of up to 64 KiB, as Linux's
// loopback does: far fewer packets loop than segments are counted.
func TestLoopbackSuperSegments(t *testing.T) {
	n, a, _ := pair(t, stack.Config{}, stack.Config{})
	c, s, _ := connect(t, n, a, a, 80)
	before := a.Stack.Stats()
	transfer(t, n, c, s, payload(1, 4<<20), time.Minute)
	after := a.Stack.Stats()
	packets := after.Link.TxLoopback - before.Link.TxLoopback
	segs := after.TCP.OutSegs - before.TCP.OutSegs
	if segs < 2900 || packets*8 > segs {
		t.Errorf("4 MiB in %d segments looped as %d packets: want super-segments", segs, packets)
	}
	if after.TCP.InCsumErrors != 0 || after.TCP.RetransSegs != 0 {
		t.Errorf("%d checksum errors, %d retransmissions", after.TCP.InCsumErrors, after.TCP.RetransSegs)
	}
}

// offloadRun6 is offloadRun over IPv6 (DAD and router solicitation off,
// so that nothing but the exchange is on the wire).
func offloadRun6(t *testing.T, caps link.Caps) *stacktest.Net {
	n := stacktest.New(t)
	cfg := stack.Config{Seed: 1, IPv6: stack.IPv6Config{DADTransmits: -1, IgnoreRA: true}}
	a := n.AddStack("A", stack.New(cfg), stack.NICConfig{MAC: stacktest.MAC(1), Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}, Caps: caps})
	cfg.Seed = 2
	b := n.AddStack("B", stack.New(cfg), stack.NICConfig{MAC: stacktest.MAC(2), Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::2/64")}})
	l, err := b.Stack.Listen(ap(netip.IPv6Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, s := connectTo(t, n, a, l, ap(ip6B, 80))
	transfer(t, n, c, s, payload(1, 2<<20), time.Minute)
	transfer(t, n, s, c, payload(2, 100_000), time.Minute)
	c.Close()
	s.Close()
	ub, err := b.Stack.BindUDP(ap(ip6B, 53))
	if err != nil {
		t.Fatal(err)
	}
	ua, err := a.Stack.BindUDP(ap(netip.IPv6Unspecified(), 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ua.WriteTo(n.Now, payload(3, 3000), ap(ip6B, 53)); err != nil {
		t.Fatal(err)
	}
	n.RunQuiet(5 * time.Minute)
	if k, _, err := ub.ReadFrom(make([]byte, 4000)); k != 3000 || err != nil {
		t.Fatalf("datagram: %d bytes, %v", k, err)
	}
	return n
}

// TestTSOSuperFramesIPv6: TestTSOSuperFrames over IPv6 — super-frames of
// GSO type TCPv6 with the partial checksum behind the 40-byte header,
// cut by the NIC into exactly the frames of the run without offloads.
func TestTSOSuperFramesIPv6(t *testing.T) {
	plain := offloadRun6(t, 0)
	tso := offloadRun6(t, link.CapTSO|link.CapTxChecksum)
	sameWire(t, plain, tso)
	supers := 0
	for _, f := range tso.Offloaded {
		o := f.Offload
		if !o.NeedsCsum || o.CsumStart != 54 || o.CsumOffset != 16 {
			t.Fatalf("frame %d: offload %+v, want a partial TCP checksum at 54+16", f.N, o)
		}
		if o.GSOType == link.GSONone {
			continue
		}
		supers++
		if o.GSOType != link.GSOTCPv6 || o.GSOSize != 1428 || o.HdrLen != 14+40+32 {
			t.Fatalf("frame %d: offload %+v, want TCPv6 segments of 1428 bytes behind 86 bytes of headers", f.N, o)
		}
	}
	if supers < 20 {
		t.Errorf("%d super-frames", supers)
	}
}
