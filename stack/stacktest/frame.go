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
	// Transport headers, for unfragmented packets and first fragments
	// whose header is whole.
	TCP  *wire.TCPFields
	UDP  *wire.UDPFields
	ICMP *wire.ICMPv4Fields
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
	}
	return d
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

// IPFrame wraps an IP packet from node from to MAC dst.
func (nd *Node) IPFrame(dst wire.MAC, pkt []byte) []byte {
	return Ether(dst, nd.MAC, 0, wire.EtherTypeIPv4, pkt)
}

// TCPFrame returns a whole frame carrying segment f from src to dst, sent
// by nd to MAC to.
func (nd *Node) TCPFrame(to wire.MAC, src, dst netip.AddrPort, f wire.TCPFields) []byte {
	return nd.IPFrame(to, IP(IPHeader(src.Addr(), dst.Addr(), wire.ProtoTCP), TCPSeg(src, dst, f)))
}

// UDPFrame returns a whole frame carrying a UDP datagram.
func (nd *Node) UDPFrame(to wire.MAC, src, dst netip.AddrPort, payload []byte) []byte {
	return nd.IPFrame(to, IP(IPHeader(src.Addr(), dst.Addr(), wire.ProtoUDP), UDPDgram(src, dst, payload)))
}

// ICMPFrame returns a whole frame carrying an ICMP message.
func (nd *Node) ICMPFrame(to wire.MAC, src, dst netip.Addr, f wire.ICMPv4Fields) []byte {
	return nd.IPFrame(to, IP(IPHeader(src, dst, wire.ProtoICMP), ICMPMsg(f)))
}

// FixChecksums recomputes, in place, the IPv4 header checksum of frame and
// the checksum of its TCP, UDP or ICMP payload, as far as the headers
// parse, so that a fuzzed or edited frame gets past checksum checks. It
// leaves fragments' transport checksums alone.
func FixChecksums(frame []byte) {
	eth, err := wire.ParseEthernet(frame)
	if err != nil || eth.EtherType() != wire.EtherTypeIPv4 {
		return
	}
	ip, err := wire.ParseIPv4(eth.Payload())
	if err != nil {
		return
	}
	ip.SetChecksum(0)
	ip.SetChecksum(wire.Checksum(ip[:ip.HeaderLen()], 0))
	if ip.IsFragment() {
		return
	}
	p := ip.Payload()
	switch ip.Protocol() {
	case wire.ProtoTCP:
		if len(p) >= wire.TCPHeaderLen {
			p[16], p[17] = 0, 0
			binary.BigEndian.PutUint16(p[16:], wire.TCPChecksum(p, ip.Src(), ip.Dst()))
		}
	case wire.ProtoUDP:
		if u, err := wire.ParseUDP(p); err == nil {
			u.SetChecksum(0)
			c := wire.UDPChecksum(u.Datagram(), ip.Src(), ip.Dst())
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
	}
}
