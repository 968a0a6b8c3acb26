package network

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

func TestErrorMessageQuote(t *testing.T) {
	for _, c := range []struct {
		name      string
		payload   int
		opts      int
		pad       int // link padding after the packet
		wantQuote int
	}{
		{"small", 8, 0, 0, 28},
		{"header and 8 bytes", 100, 0, 0, 120},
		{"exactly 548", 528, 0, 0, 548},
		{"truncated to 576 in all", 1480, 0, 0, ICMPErrorQuoteMax},
		{"with options", 1480, 40, 0, ICMPErrorQuoteMax},
		{"padding not quoted", 10, 0, 30, 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := wire.IPv4Fields{ID: 1, TTL: 64, Protocol: wire.ProtoUDP, Src: srcA, Dst: dstB, Options: bytes.Repeat([]byte{1}, c.opts)}
			payload := make([]byte, c.payload)
			for i := range payload {
				payload[i] = byte(i)
			}
			orig := append(buildIPv4(f, payload), make([]byte, c.pad)...)
			dst := make([]byte, 1500)
			n := ErrorMessage(dst, wire.ICMPv4DestUnreachable, wire.ICMPv4PortUnreachable, 0, orig)
			m, err := wire.ParseICMPv4(dst[:n])
			if err != nil || !m.ChecksumValid() {
				t.Fatalf("parse %v, checksum valid %v", err, err == nil && m.ChecksumValid())
			}
			if n != 8+c.wantQuote || !bytes.Equal(m.Payload(), orig[:c.wantQuote]) {
				t.Fatalf("quote of %d bytes, want %d", n-8, c.wantQuote)
			}
			// The reply, in a 20-byte IP header, stays within 576 bytes.
			if 20+n > 576 {
				t.Fatalf("reply of %d bytes", 20+n)
			}
			if m.Type() != 3 || m.Code() != 3 || binary.BigEndian.Uint32(dst[4:]) != 0 {
				t.Fatalf("type %d code %d unused %x", m.Type(), m.Code(), dst[4:8])
			}
			var qf wire.IPv4Fields
			if _, err := m.Quote(&qf); err != nil || qf.Src != srcA || qf.Dst != dstB {
				t.Fatalf("quoted header: %v %+v", err, qf)
			}
		})
	}
}

func TestErrorMessageFields(t *testing.T) {
	f := wire.IPv4Fields{ID: 1, TTL: 64, DF: true, Protocol: wire.ProtoTCP, Src: srcA, Dst: dstB}
	orig := buildIPv4(f, make([]byte, 1480))
	dst := make([]byte, 576)
	// RFC 1191 §4: the next-hop MTU in the low half of the second word.
	n := ErrorMessage(dst, wire.ICMPv4DestUnreachable, wire.ICMPv4FragmentationNeeded, 1400, orig)
	m := wire.ICMPv4(dst[:n])
	if m.NextHopMTU() != 1400 || !m.ChecksumValid() || binary.BigEndian.Uint16(dst[4:]) != 0 {
		t.Fatalf("frag needed: mtu %d", m.NextHopMTU())
	}
	// RFC 792: parameter problem carries its pointer in the first byte.
	n = ErrorMessage(dst, wire.ICMPv4ParameterProblem, 0, 20, orig)
	m = wire.ICMPv4(dst[:n])
	if m.Pointer() != 20 || !m.ChecksumValid() || dst[5] != 0 || dst[6] != 0 || dst[7] != 0 {
		t.Fatalf("parameter problem: pointer %d, word %x", m.Pointer(), dst[4:8])
	}
	// Time exceeded: no MTU even if one is passed.
	n = ErrorMessage(dst, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, 1400, orig)
	if binary.BigEndian.Uint32(dst[4:]) != 0 || !wire.ICMPv4(dst[:n]).ChecksumValid() {
		t.Fatalf("time exceeded: word %x", dst[4:8])
	}
	// A small dst: the quote is cut to fit; too small for a header: 0.
	if n := ErrorMessage(dst[:40], 3, 1, 0, orig); n != 40 || !wire.ICMPv4(dst[:n]).ChecksumValid() {
		t.Fatalf("short dst: %d", n)
	}
	if n := ErrorMessage(dst[:7], 3, 1, 0, orig); n != 0 {
		t.Fatalf("7-byte dst: %d", n)
	}
	// An unparseable original is quoted as it is (the reassembler's
	// quotes are truncated datagrams).
	if n := ErrorMessage(dst, 11, 1, 0, orig[:28]); n != 36 || !bytes.Equal(dst[8:36], orig[:28]) {
		t.Fatalf("truncated original: %d", n)
	}
}

func TestErrorAllowed(t *testing.T) {
	type pkt struct {
		src, dst string
		proto    uint8
		off      uint16
		mf       bool
		payload  []byte
	}
	icmpType := func(t byte) []byte { return []byte{t, 0, 0, 0, 0, 0, 0, 0} }
	for _, c := range []struct {
		name  string
		p     pkt
		bcast bool
		want  bool
	}{
		{"unicast UDP", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoUDP, 0, false, nil}, false, true},
		{"first fragment", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoUDP, 0, true, nil}, false, true},
		{"non-first fragment", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoUDP, 8, true, nil}, false, false},
		{"last fragment", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoUDP, 1480, false, nil}, false, false},
		{"link broadcast", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoUDP, 0, false, nil}, true, false},
		{"to limited broadcast", pkt{"198.51.100.1", "255.255.255.255", wire.ProtoUDP, 0, false, nil}, false, false},
		{"to multicast", pkt{"198.51.100.1", "224.0.0.251", wire.ProtoUDP, 0, false, nil}, false, false},
		{"to zero", pkt{"198.51.100.1", "0.0.0.0", wire.ProtoUDP, 0, false, nil}, false, false},
		{"to class E", pkt{"198.51.100.1", "240.0.0.1", wire.ProtoUDP, 0, false, nil}, false, false},
		{"from zero", pkt{"0.0.0.0", "203.0.113.2", wire.ProtoUDP, 0, false, nil}, false, false},
		{"from multicast", pkt{"239.1.1.1", "203.0.113.2", wire.ProtoUDP, 0, false, nil}, false, false},
		{"from broadcast", pkt{"255.255.255.255", "203.0.113.2", wire.ProtoUDP, 0, false, nil}, false, false},
		{"from class E", pkt{"250.1.2.3", "203.0.113.2", wire.ProtoUDP, 0, false, nil}, false, false},
		{"from loopback on a wire", pkt{"127.0.0.1", "203.0.113.2", wire.ProtoUDP, 0, false, nil}, false, false},
		{"to loopback from a wire", pkt{"198.51.100.1", "127.0.0.1", wire.ProtoUDP, 0, false, nil}, false, false},
		{"loopback to loopback", pkt{"127.0.0.1", "127.0.0.1", wire.ProtoUDP, 0, false, nil}, false, true},
		{"about echo request", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(8)}, false, true},
		{"about echo reply", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(0)}, false, true},
		{"about timestamp", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(13)}, false, true},
		{"about address mask reply", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(18)}, false, true},
		{"about dest unreachable", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(3)}, false, false},
		{"about source quench", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(4)}, false, false},
		{"about redirect", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(5)}, false, false},
		{"about time exceeded", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(11)}, false, false},
		{"about parameter problem", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(12)}, false, false},
		{"about unknown type 42", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, icmpType(42)}, false, false},
		{"about empty ICMP", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, false, []byte{}}, false, false},
		{"about ICMP fragment 0", pkt{"198.51.100.1", "203.0.113.2", wire.ProtoICMP, 0, true, icmpType(8)}, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			payload := c.p.payload
			if payload == nil {
				payload = make([]byte, 8)
			}
			f := wire.IPv4Fields{ID: 1, TTL: 64, Protocol: c.p.proto, FragOffset: c.p.off, MF: c.p.mf,
				Src: netip.MustParseAddr(c.p.src), Dst: netip.MustParseAddr(c.p.dst)}
			b := buildIPv4(f, payload)
			p, err := wire.ParseIPv4(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := ErrorAllowed(p, c.bcast); got != c.want {
				t.Errorf("ErrorAllowed = %v, want %v", got, c.want)
			}
		})
	}
	// An empty ICMP message followed by link padding: the padding is not
	// a type.
	f := wire.IPv4Fields{ID: 1, TTL: 64, Protocol: wire.ProtoICMP, Src: srcA, Dst: dstB}
	padded := append(buildIPv4(f, nil), 8, 0, 0, 0, 0, 0)
	if p, _ := wire.ParseIPv4(padded); ErrorAllowed(p, false) {
		t.Error("padding read as an ICMP type")
	}
	if ErrorAllowed(wire.IPv4{0x45, 0}, false) || ErrorAllowed(nil, false) {
		t.Error("short view allowed")
	}
}

func TestEchoReply(t *testing.T) {
	req := make([]byte, 100)
	f := wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 0x1234, Seq: 7, Payload: []byte("abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstu")}
	n := f.Encode(req)
	req = req[:n]
	dst := make([]byte, 128)
	if got := EchoReply(dst, req); got != n {
		t.Fatalf("EchoReply = %d, want %d", got, n)
	}
	m, _ := wire.ParseICMPv4(dst[:n])
	var rf wire.ICMPv4Fields
	rf.Decode(m)
	if !m.ChecksumValid() || rf.Type != wire.ICMPv4EchoReply || rf.Code != 0 || rf.ID != 0x1234 || rf.Seq != 7 || !bytes.Equal(rf.Payload, f.Payload) {
		t.Fatalf("reply %+v", rf)
	}
	// In place, and odd lengths.
	for _, l := range []int{8, 9, 63, 1473} {
		b := make([]byte, l)
		for i := 8; i < l; i++ {
			b[i] = byte(i * 3)
		}
		f := wire.ICMPv4Fields{Type: 8, ID: 1, Seq: 2, Payload: b[8:]}
		f.Encode(b)
		want := bytes.Clone(b)
		if EchoReply(b, b) != l || !wire.ICMPv4(b).ChecksumValid() || b[0] != 0 || !bytes.Equal(b[4:], want[4:]) {
			t.Fatalf("in place, %d bytes", l)
		}
	}
	if EchoReply(dst, req[:7]) != 0 || EchoReply(dst[:10], req) != 0 {
		t.Fatal("short request or buffer accepted")
	}
}

func TestTokenBucket(t *testing.T) {
	// Defaults: a burst of 50, then 1000 per second (Linux
	// icmp_msgs_burst, icmp_msgs_per_sec).
	var b TokenBucket
	now := at(time.Hour)
	n := 0
	for b.Allow(now) {
		n++
	}
	if n != 50 {
		t.Fatalf("burst %d, want 50", n)
	}
	// One token per millisecond.
	for i := 1; i <= 10; i++ {
		now = now.Add(time.Millisecond)
		if !b.Allow(now) || b.Allow(now) {
			t.Fatalf("ms %d: not exactly one token", i)
		}
	}
	// Half a millisecond twice makes one token.
	now = now.Add(500 * time.Microsecond)
	if b.Allow(now) {
		t.Fatal("a token after 0.5 ms")
	}
	now = now.Add(500 * time.Microsecond)
	if !b.Allow(now) {
		t.Fatal("no token after 2 × 0.5 ms")
	}
	// The bucket refills to the burst, no more.
	now = now.Add(time.Minute)
	n = 0
	for b.Allow(now) {
		n++
	}
	if n != 50 {
		t.Fatalf("refill to %d, want 50", n)
	}
	// Time going backwards neither adds nor takes tokens.
	b = TokenBucket{Rate: 1000, Burst: 3}
	b.Allow(now)
	b.Allow(now)
	if !b.Allow(now.Add(-time.Second)) || b.Allow(now.Add(-time.Second)) || b.Allow(now) {
		t.Fatal("time going backwards changed the tokens")
	}
	// A smaller Burst takes effect at once.
	b = TokenBucket{Burst: 50}
	b.Allow(now)
	b.Burst = 5
	n = 0
	for b.Allow(now) {
		n++
	}
	if n != 5 {
		t.Fatalf("after shrinking Burst to 5: %d tokens", n)
	}
}

func TestTokenBucketRate(t *testing.T) {
	// Over a long run in virtual time the rate is exact: burst + rate × T.
	for _, c := range []struct {
		rate  float64
		burst int
		step  time.Duration
	}{
		{1, 6, time.Millisecond}, // Linux per-destination: 1/s, burst 6
		{1000, 50, 100 * time.Microsecond},
		{1000, 50, 7 * time.Millisecond},
		{3.3, 2, 13 * time.Millisecond},
	} {
		t.Run(fmt.Sprint(c.rate, "/", c.burst), func(t *testing.T) {
			b := TokenBucket{Rate: c.rate, Burst: c.burst}
			start := clock.Instant(12345)
			const T = 100 * time.Second
			n := 0
			last := start
			for now := start; now <= start.Add(T); now = now.Add(c.step) {
				for b.Allow(now) {
					n++
				}
				last = now
			}
			want := float64(c.burst) + c.rate*last.Sub(start).Seconds()
			if float64(n) < want-1 || float64(n) > want {
				t.Fatalf("%d messages in %v, want %.1f", n, T, want)
			}
		})
	}
}

func BenchmarkErrorMessage(b *testing.B) {
	f := wire.IPv4Fields{ID: 1, TTL: 64, Protocol: wire.ProtoUDP, Src: srcA, Dst: dstB}
	orig := buildIPv4(f, make([]byte, 1480))
	dst := make([]byte, 576)
	b.ReportAllocs()
	for b.Loop() {
		ErrorMessage(dst, 3, 3, 0, orig)
	}
}
