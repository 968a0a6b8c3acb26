package wire

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

func BenchmarkChecksum(b *testing.B) {
	r := rand.New(rand.NewPCG(1071, 9))
	for _, n := range []int{64, 1500, 65536} {
		buf := randBytes(r, n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sinkU16 = Checksum(buf, 0)
			}
		})
	}
}

// BenchmarkParseDecodeTCPFrame is the receive path's per-frame work in this
// package: an Ethernet/IPv4/TCP frame (the two-block SACK segment, so the
// option decoder works too) parsed, header checksum and TCP checksum
// verified, and the TCP fields decoded.
func BenchmarkParseDecodeTCPFrame(b *testing.B) {
	frame := goldenTCPSACK2
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := ParseEthernet(frame)
		if err != nil {
			b.Fatal(err)
		}
		sinkEthF.Decode(e)
		p, err := ParseIPv4(e.Payload())
		if err != nil || !p.ChecksumValid() {
			b.Fatal(err)
		}
		sinkIPv4F.Decode(p)
		s, err := ParseTCP(p.Payload())
		if err != nil || TCPChecksum(s, sinkIPv4F.Src, sinkIPv4F.Dst) != 0 {
			b.Fatal(err)
		}
		if err := sinkTCPF.Decode(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeTCPFrame is the send path's work for a full-sized segment:
// Ethernet, IPv4 and TCP headers with timestamps written in front of 1448
// bytes of data, and both checksums computed.
func BenchmarkEncodeTCPFrame(b *testing.B) {
	eth := EthernetFields{Dst: macR0, Src: macA0, EtherType: EtherTypeIPv4}
	tcp := TCPFields{SrcPort: 40001, DstPort: 5001, Seq: 1, Ack: 2, Flags: TCPFlagACK | TCPFlagPSH, Window: 512,
		Options: TCPOptions{HasTimestamp: true, TSVal: 3, TSEcr: 4}, Payload: make([]byte, 1448)}
	ip := IPv4Fields{TotalLen: uint16(IPv4HeaderLen + tcp.HeaderLen() + len(tcp.Payload)), DF: true, TTL: 64, Protocol: ProtoTCP, Src: ipA, Dst: ipR}
	buf := make([]byte, EthernetHeaderLen+int(ip.TotalLen))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		n := eth.Encode(buf)
		n += ip.Encode(buf[n:])
		seg := buf[n:]
		tcp.Encode(seg)
		TCP(seg).SetChecksum(TCPChecksum(seg, ip.Src, ip.Dst))
	}
}

func BenchmarkTCPOptions(b *testing.B) {
	opts := mustTCPOptions(goldenTCPSYN)
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := sinkTCPOpts.Decode(opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Encode", func(b *testing.B) {
		o := TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, HasWScale: true, WScale: 7}
		buf := make([]byte, TCPMaxOptionLen)
		b.ReportAllocs()
		for b.Loop() {
			sinkInt = o.Encode(buf)
		}
	})
}

func BenchmarkParseUDPFrame(b *testing.B) {
	frame := goldenUDP
	b.ReportAllocs()
	for b.Loop() {
		e, _ := ParseEthernet(frame)
		p, _ := ParseIPv4(e.Payload())
		u, err := ParseUDP(p.Payload())
		if err != nil {
			b.Fatal(err)
		}
		sinkUDPF.Decode(u)
	}
}

// BenchmarkParseDecodeTCP6Frame is BenchmarkParseDecodeTCPFrame over IPv6:
// the captured TCP data segment parsed, its (empty) extension header chain
// walked, the TCP checksum verified with the IPv6 pseudo-header, and the
// TCP fields decoded.
func BenchmarkParseDecodeTCP6Frame(b *testing.B) {
	frame := g6("tcp-data")
	var c IPv6Chain
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := ParseEthernet(frame)
		if err != nil {
			b.Fatal(err)
		}
		p, err := ParseIPv6(e.Payload())
		if err != nil {
			b.Fatal(err)
		}
		sinkIPv6F.Decode(p)
		if err := c.Walk(p); err != nil || c.Proto != ProtoTCP {
			b.Fatal(err)
		}
		seg := c.Upper(p)
		s, err := ParseTCP(seg)
		if err != nil || TCPChecksum(seg, sinkIPv6F.Src, sinkIPv6F.Dst) != 0 {
			b.Fatal(err)
		}
		if err := sinkTCPF.Decode(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIPv6Chain walks the hop-by-hop header of an MLD report (Router
// Alert and PadN), as every MLD message and router-alert packet needs.
func BenchmarkIPv6Chain(b *testing.B) {
	p := mustIPv6(g6("mld-report-linkup"))
	var c IPv6Chain
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Walk(p); err != nil || !c.RouterAlert {
			b.Fatal(err)
		}
	}
}
