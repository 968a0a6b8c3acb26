package stacktest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ustack/ustack/wire"
)

// Decoded is a frame's headers, decoded as far as they parse. Fields of
// layers the frame does not have are nil.
type Decoded struct {
	Eth wire.EthernetFields
	// Err is the first parse error, if any.
	Err  error
	ARP  *wire.ARPFields
	IP   *wire.IPv4Fields
	IPv4 wire.IPv4 // the IP packet's view, cut at its total length
	// IP6 is an IPv6 packet's fixed header, IPv6 its view (cut at its
	// payload length), Chain its extension headers as a destination
	// walks them.
	IP6   *wire.IPv6Fields
	IPv6  wire.IPv6
	Chain wire.IPv6Chain
	// Transport headers, for unfragmented packets and first fragments
	// whose header is whole (IPv4), or packets that are not fragments
	// (IPv6).
	TCP  *wire.TCPFields
	UDP  *wire.UDPFields
	ICMP *wire.ICMPv4Fields
	// ICMP6 is an ICMPv6 message's header; NDP and MLD the message
	// decoded as those protocols' when it is one of theirs (an MLDv2
	// report is in ICMP6 only).
	ICMP6 *wire.ICMPv6Fields
	NDP   *wire.NDPFields
	MLD   *wire.MLDFields
}

// Decode decodes an Ethernet frame.
func Decode(b []byte) *Decoded {
	d := &Decoded{}
	eth, err := wire.ParseEthernet(b)
	if err != nil {
		d.Err = err
		return d
	}
	d.Eth.Decode(eth)
	switch d.Eth.EtherType {
	case wire.EtherTypeARP:
		a, err := wire.ParseARP(eth.Payload())
		if err != nil {
			d.Err = err
			return d
		}
		d.ARP = new(wire.ARPFields)
		d.ARP.Decode(a)
	case wire.EtherTypeIPv4:
		d.decodeIP(eth.Payload())
	case wire.EtherTypeIPv6:
		d.decodeIP6(eth.Payload())
	}
	return d
}

// DecodeIP decodes a bare IP packet (a frame of a link.IP NIC).
func DecodeIP(b []byte) *Decoded {
	d := &Decoded{}
	if len(b) > 0 && b[0]>>4 == 6 {
		d.decodeIP6(b)
	} else {
		d.decodeIP(b)
	}
	return d
}

func (d *Decoded) decodeIP6(b []byte) {
	ip, err := wire.ParseIPv6(b)
	if err != nil {
		d.Err = err
		return
	}
	d.IPv6 = wire.IPv6(ip.Packet())
	d.IP6 = new(wire.IPv6Fields)
	d.IP6.Decode(ip)
	if err := d.Chain.Walk(ip); err != nil {
		d.Err = err
		return
	}
	if d.Chain.Fragmented() {
		return
	}
	p := d.Chain.Upper(ip)
	switch d.Chain.Proto {
	case wire.ProtoTCP, wire.ProtoUDP:
		d.decodeTransport(d.Chain.Proto, p)
	case wire.ProtoICMPv6:
		m, err := wire.ParseICMPv6(p)
		if err != nil {
			d.Err = err
			return
		}
		d.ICMP6 = new(wire.ICMPv6Fields)
		d.ICMP6.Decode(m)
		if nd, err := wire.ParseNDP(m); err == nil {
			d.NDP = new(wire.NDPFields)
			d.NDP.Decode(nd)
		} else if ml, err := wire.ParseMLD(m); err == nil {
			d.MLD = new(wire.MLDFields)
			d.MLD.Decode(ml)
		}
	}
}

func (d *Decoded) decodeIP(b []byte) {
	ip, err := wire.ParseIPv4(b)
	if err != nil {
		d.Err = err
		return
	}
	d.IPv4 = ip[:ip.TotalLen()]
	d.IP = new(wire.IPv4Fields)
	d.IP.Decode(ip)
	if d.IP.FragOffset != 0 || d.IP.MF {
		return
	}
	p := ip.Payload()
	switch d.IP.Protocol {
	case wire.ProtoTCP, wire.ProtoUDP:
		d.decodeTransport(d.IP.Protocol, p)
	case wire.ProtoICMP:
		m, err := wire.ParseICMPv4(p)
		if err != nil {
			d.Err = err
			return
		}
		d.ICMP = new(wire.ICMPv4Fields)
		d.ICMP.Decode(m)
	}
}

// decodeTransport decodes p as a TCP segment or a UDP datagram (proto),
// the same over either IP family.
func (d *Decoded) decodeTransport(proto uint8, p []byte) {
	switch proto {
	case wire.ProtoTCP:
		t, err := wire.ParseTCP(p)
		if err != nil {
			d.Err = err
			return
		}
		d.TCP = new(wire.TCPFields)
		d.Err = d.TCP.Decode(t)
	case wire.ProtoUDP:
		u, err := wire.ParseUDP(p)
		if err != nil {
			d.Err = err
			return
		}
		d.UDP = new(wire.UDPFields)
		d.UDP.Decode(u)
	}
}

// IsTCP reports whether the frame is a TCP segment with all of flags set.
func (d *Decoded) IsTCP(flags wire.TCPFlags) bool {
	return d.TCP != nil && d.TCP.Flags&flags == flags
}

// String prints the headers in one line.
func (d *Decoded) String() string {
	var b strings.Builder
	b.WriteString(d.Eth.String())
	switch {
	case d.ARP != nil:
		b.WriteString(": " + d.ARP.String())
	case d.IP6 != nil:
		fmt.Fprintf(&b, ": %v > %v hlim %d nh %d", d.IP6.Src, d.IP6.Dst, d.IP6.HopLimit, d.Chain.Proto)
		switch {
		case d.TCP != nil:
			b.WriteString(": " + d.TCP.String())
		case d.UDP != nil:
			b.WriteString(": " + d.UDP.String())
		case d.NDP != nil:
			fmt.Fprintf(&b, ": ndp type %d target %v", d.NDP.Type, d.NDP.Target)
		case d.MLD != nil:
			fmt.Fprintf(&b, ": mld type %d group %v", d.MLD.Type, d.MLD.Multicast)
		case d.ICMP6 != nil:
			fmt.Fprintf(&b, ": icmp6 type %d code %d", d.ICMP6.Type, d.ICMP6.Code)
		}
	case d.IP != nil:
		b.WriteString(": " + d.IP.String())
		switch {
		case d.TCP != nil:
			b.WriteString(": " + d.TCP.String())
		case d.UDP != nil:
			b.WriteString(": " + d.UDP.String())
		case d.ICMP != nil:
			b.WriteString(": " + d.ICMP.String())
		}
	}
	if d.Err != nil {
		fmt.Fprintf(&b, " [%v]", d.Err)
	}
	return b.String()
}

// Builders of frames for tests. They compute lengths and checksums, so a
// test states only the fields it cares about; it corrupts the result
// afterwards if it wants a bad one.

// Ether returns an Ethernet frame (with an 802.1Q tag if vlan is not 0).
func Ether(dst, src wire.MAC, vlan uint16, et wire.EtherType, payload []byte) []byte {
	h := wire.EthernetFields{Dst: dst, Src: src, EtherType: et, HasVLAN: vlan != 0, VLAN: vlan}
	b := make([]byte, h.HeaderLen()+len(payload))
	n := h.Encode(b)
	copy(b[n:], payload)
	return b
}

// ARP returns an ARP packet.
func ARP(op uint16, senderMAC wire.MAC, senderIP netip.Addr, targetMAC wire.MAC, targetIP netip.Addr) []byte {
	f := wire.ARPFields{Op: op, SenderMAC: senderMAC, SenderIP: senderIP, TargetMAC: targetMAC, TargetIP: targetIP}
	b := make([]byte, wire.ARPLen)
	f.Encode(b)
	return b
}

// IP returns an IPv4 packet with header h (TotalLen computed, TTL 64 if
// zero) and payload.
func IP(h wire.IPv4Fields, payload []byte) []byte {
	if h.TTL == 0 {
		h.TTL = 64
	}
	hl := h.HeaderLen()
	h.TotalLen = uint16(hl + len(payload))
	b := make([]byte, hl+len(payload))
	h.Encode(b)
	copy(b[hl:], payload)
	return b
}

// IPHeader returns the header fields of a plain packet from src to dst.
func IPHeader(src, dst netip.Addr, proto uint8) wire.IPv4Fields {
	return wire.IPv4Fields{Src: src, Dst: dst, Protocol: proto, TTL: 64, ID: 1}
}

// TCPSeg returns the TCP segment f from src to dst (ports from the
// addresses) with its checksum.
func TCPSeg(src, dst netip.AddrPort, f wire.TCPFields) []byte {
	f.SrcPort, f.DstPort = src.Port(), dst.Port()
	f.Checksum = 0
	b := make([]byte, f.HeaderLen()+len(f.Payload))
	f.Encode(b)
	binary.BigEndian.PutUint16(b[16:], wire.TCPChecksum(b, src.Addr(), dst.Addr()))
	return b
}

// UDPDgram returns a UDP datagram from src to dst with its checksum.
func UDPDgram(src, dst netip.AddrPort, payload []byte) []byte {
	f := wire.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Payload: payload}
	b := make([]byte, f.Len())
	f.Encode(b, src.Addr(), dst.Addr())
	return b
}

// ICMPMsg returns the ICMP message f with its checksum.
func ICMPMsg(f wire.ICMPv4Fields) []byte {
	b := make([]byte, f.Len())
	f.Encode(b)
	return b
}

// IP6 returns an IPv6 packet with header h (PayloadLen computed, hop
// limit 64 if zero) and payload (extension headers included).
func IP6(h wire.IPv6Fields, payload []byte) []byte {
	if h.HopLimit == 0 {
		h.HopLimit = 64
	}
	h.PayloadLen = uint16(len(payload))
	b := make([]byte, wire.IPv6HeaderLen+len(payload))
	h.Encode(b)
	copy(b[wire.IPv6HeaderLen:], payload)
	return b
}

// ICMP6Msg returns the ICMPv6 message f from src to dst with its
// checksum.
func ICMP6Msg(f wire.ICMPv6Fields, src, dst netip.Addr) []byte {
	b := make([]byte, f.Len())
	f.Encode(b, src, dst)
	return b
}

// IPFrame wraps an IP packet from node nd to MAC dst, with the IPv4
// EtherType whatever the packet says.
func (nd *Node) IPFrame(dst wire.MAC, pkt []byte) []byte {
	return Ether(dst, nd.MAC, 0, wire.EtherTypeIPv4, pkt)
}

// IP6Frame wraps an IPv6 packet from node nd to MAC dst.
func (nd *Node) IP6Frame(dst wire.MAC, pkt []byte) []byte {
	return Ether(dst, nd.MAC, 0, wire.EtherTypeIPv6, pkt)
}

// frameFor wraps an IP packet with the EtherType of its version.
func (nd *Node) frameFor(dst wire.MAC, pkt []byte) []byte {
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		return nd.IP6Frame(dst, pkt)
	}
	return nd.IPFrame(dst, pkt)
}

// ipPacket returns an IPv4 or IPv6 packet, by src's family, of protocol
// proto from src to dst.
func ipPacket(src, dst netip.Addr, proto uint8, payload []byte) []byte {
	if src.Is6() {
		return IP6(wire.IPv6Fields{Src: src, Dst: dst, NextHeader: proto}, payload)
	}
	return IP(IPHeader(src, dst, proto), payload)
}

// TCPFrame returns a whole frame carrying segment f from src to dst, sent
// by nd to MAC to.
func (nd *Node) TCPFrame(to wire.MAC, src, dst netip.AddrPort, f wire.TCPFields) []byte {
	return nd.frameFor(to, ipPacket(src.Addr(), dst.Addr(), wire.ProtoTCP, TCPSeg(src, dst, f)))
}

// UDPFrame returns a whole frame carrying a UDP datagram (over IPv4 or
// IPv6, by the addresses' family).
func (nd *Node) UDPFrame(to wire.MAC, src, dst netip.AddrPort, payload []byte) []byte {
	return nd.frameFor(to, ipPacket(src.Addr(), dst.Addr(), wire.ProtoUDP, UDPDgram(src, dst, payload)))
}

// ICMP6Frame returns a whole frame carrying an ICMPv6 message with hop
// limit hop (255 for NDP).
func (nd *Node) ICMP6Frame(to wire.MAC, src, dst netip.Addr, hop uint8, f wire.ICMPv6Fields) []byte {
	return nd.IP6Frame(to, IP6(wire.IPv6Fields{Src: src, Dst: dst, NextHeader: wire.ProtoICMPv6, HopLimit: hop}, ICMP6Msg(f, src, dst)))
}

// ICMPFrame returns a whole frame carrying an ICMP message.
func (nd *Node) ICMPFrame(to wire.MAC, src, dst netip.Addr, f wire.ICMPv4Fields) []byte {
	return nd.IPFrame(to, IP(IPHeader(src, dst, wire.ProtoICMP), ICMPMsg(f)))
}

// FixChecksums recomputes, in place, the IPv4 header checksum of frame and
// the checksum of its TCP, UDP, ICMP or ICMPv6 payload, as far as the
// headers parse (IPv6's extension headers walked), so that a fuzzed or
// edited frame gets past checksum checks. It leaves fragments' transport
// checksums alone.
func FixChecksums(frame []byte) {
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		return
	}
	var src, dst netip.Addr
	var proto uint8
	var p []byte
	switch eth.EtherType() {
	case wire.EtherTypeIPv4:
		ip, err := wire.ParseIPv4(eth.Payload())
		if err != nil {
			return
		}
		ip.SetChecksum(0)
		ip.SetChecksum(wire.Checksum(ip[:ip.HeaderLen()], 0))
		if ip.IsFragment() {
			return
		}
		src, dst, proto, p = ip.Src(), ip.Dst(), ip.Protocol(), ip.Payload()
	case wire.EtherTypeIPv6:
		ip, err := wire.ParseIPv6(eth.Payload())
		if err != nil {
			return
		}
		var c wire.IPv6Chain
		if c.Walk(ip) != nil || c.Fragmented() {
			return
		}
		src, dst, proto, p = ip.Src(), ip.Dst(), c.Proto, c.Upper(ip)
	default:
		return
	}
	switch proto {
	case wire.ProtoTCP:
		if len(p) >= wire.TCPHeaderLen {
			p[16], p[17] = 0, 0
			binary.BigEndian.PutUint16(p[16:], wire.TCPChecksum(p, src, dst))
		}
	case wire.ProtoUDP:
		if u, err := wire.ParseUDP(p); err == nil {
			u.SetChecksum(0)
			c := wire.UDPChecksum(u.Datagram(), src, dst)
			if c == 0 {
				c = 0xffff
			}
			u.SetChecksum(c)
		}
	case wire.ProtoICMP:
		if len(p) >= wire.ICMPv4HeaderLen {
			p[2], p[3] = 0, 0
			binary.BigEndian.PutUint16(p[2:], wire.Checksum(p, 0))
		}
	case wire.ProtoICMPv6:
		if len(p) >= wire.ICMPv6HeaderLen {
			p[2], p[3] = 0, 0
			binary.BigEndian.PutUint16(p[2:], wire.ICMPv6Checksum(p, src, dst))
		}
	}
}
