// Package gsotest builds TCP and UDP frames over IPv4 and IPv6, and checks
// them, for the tests of the offload code (internal/gso, internal/gro and
// the links). Only tests import it.
package gsotest

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// Default addresses.
var (
	V4Src = netip.MustParseAddr("10.0.0.1")
	V4Dst = netip.MustParseAddr("10.0.0.2")
	V6Src = netip.MustParseAddr("fd00::1")
	V6Dst = netip.MustParseAddr("fd00::2")
)

// Seg describes one frame. The zero value (with Payload) is a TCP/IPv4
// segment in an Ethernet frame from V4Src:1000 to V4Dst:2000, ACK set,
// TTL 64, DF set.
type Seg struct {
	Medium           link.Medium // 0: Ethernet
	VLAN             bool        // an 802.1Q tag (Ethernet only)
	V6               bool
	UDP              bool
	Src, Dst         netip.Addr // zero: the defaults above
	SrcPort, DstPort uint16     // zero: 1000, 2000
	Seq, Ack         uint32
	Flags            wire.TCPFlags // zero: ACK
	Window           uint16        // zero: 1000
	Options          []byte        // TCP options, padded to 4 bytes with NOPs
	TOS              uint8         // IPv4 TOS or IPv6 traffic class
	TTL              uint8         // zero: 64
	ID               uint16
	NoDF             bool
	FlowLabel        uint32
	Payload          []byte
}

// Frame returns the frame with complete, correct checksums.
func (s Seg) Frame() []byte {
	if s.Medium == 0 {
		s.Medium = link.Ethernet
	}
	if !s.Src.IsValid() {
		s.Src, s.Dst = V4Src, V4Dst
		if s.V6 {
			s.Src, s.Dst = V6Src, V6Dst
		}
	}
	if s.SrcPort == 0 {
		s.SrcPort, s.DstPort = 1000, 2000
	}
	if s.Flags == 0 {
		s.Flags = wire.TCPFlagACK
	}
	if s.Window == 0 {
		s.Window = 1000
	}
	if s.TTL == 0 {
		s.TTL = 64
	}
	opts := append([]byte(nil), s.Options...)
	for len(opts)%4 != 0 {
		opts = append(opts, 1)
	}
	var l4 []byte
	proto := uint8(6)
	if s.UDP {
		proto = 17
		l4 = make([]byte, 8+len(s.Payload))
		binary.BigEndian.PutUint16(l4[0:], s.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], s.DstPort)
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		copy(l4[8:], s.Payload)
	} else {
		l4 = make([]byte, 20+len(opts)+len(s.Payload))
		binary.BigEndian.PutUint16(l4[0:], s.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], s.DstPort)
		binary.BigEndian.PutUint32(l4[4:], s.Seq)
		binary.BigEndian.PutUint32(l4[8:], s.Ack)
		l4[12] = uint8((20+len(opts))/4) << 4
		l4[13] = uint8(s.Flags)
		binary.BigEndian.PutUint16(l4[14:], s.Window)
		copy(l4[20:], opts)
		copy(l4[20+len(opts):], s.Payload)
	}
	var ip []byte
	if s.V6 {
		ip = make([]byte, 40)
		binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(s.TOS)<<20|s.FlowLabel&0xfffff)
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6], ip[7] = proto, s.TTL
		a, b := s.Src.As16(), s.Dst.As16()
		copy(ip[8:], a[:])
		copy(ip[24:], b[:])
	} else {
		ip = make([]byte, 20)
		ip[0], ip[1] = 0x45, s.TOS
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		binary.BigEndian.PutUint16(ip[4:], s.ID)
		if !s.NoDF {
			ip[6] = 0x40
		}
		ip[8], ip[9] = s.TTL, proto
		a, b := s.Src.As4(), s.Dst.As4()
		copy(ip[12:], a[:])
		copy(ip[16:], b[:])
		binary.BigEndian.PutUint16(ip[10:], wire.Checksum(ip, 0))
	}
	ps := wire.PseudoHeaderSum(s.Src, s.Dst, proto, len(l4))
	at := 16
	if s.UDP {
		at = 6
	}
	c := wire.Checksum(l4, ps)
	if s.UDP && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[at:], c)
	var f []byte
	if s.Medium == link.Ethernet {
		f = []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}
		if s.VLAN {
			f = append(f, 0x81, 0x00, 0x00, 0x05)
		}
		if s.V6 {
			f = append(f, 0x86, 0xdd)
		} else {
			f = append(f, 0x08, 0x00)
		}
	}
	f = append(f, ip...)
	return append(f, l4...)
}

// TSO returns the Offload that asks a device to cut the frame of s into
// segments of mss bytes, with the checksum field holding the pseudo-header
// sum (it rewrites that field in frame).
func (s Seg) TSO(frame []byte, mss int) link.Offload {
	m := s.Medium
	if m == 0 {
		m = link.Ethernet
	}
	l, err := gso.Parse(frame, m)
	if err != nil {
		panic(err)
	}
	gso.SetChecksum(frame, &l, gso.Partial)
	t := uint8(link.GSOTCPv4)
	switch {
	case s.UDP:
		t = link.GSOUDPL4
	case s.V6:
		t = link.GSOTCPv6
	}
	off := 16
	if s.UDP {
		off = 6
	}
	return link.Offload{GSOType: t, GSOSize: uint16(mss), HdrLen: uint16(l.Payload),
		NeedsCsum: true, CsumStart: uint16(l.L4), CsumOffset: uint16(off)}
}

// Check verifies a frame of medium m as a receiver that trusts nothing
// would: the IPv4 header checksum and the transport checksum.
func Check(frame []byte, m link.Medium) error {
	l, err := gso.Parse(frame, m)
	if err != nil {
		return err
	}
	if !l.V6 && wire.Checksum(frame[l.L3:l.L4], 0) != 0 {
		return fmt.Errorf("bad IPv4 header checksum")
	}
	if c := wire.Checksum(frame[l.L4:l.End], gso.PseudoSum(frame, &l, l.End-l.L4)); c != 0 {
		return fmt.Errorf("bad transport checksum (sum %#04x)", ^c)
	}
	return nil
}

// Payload returns the transport payload of a frame of medium m.
func Payload(frame []byte, m link.Medium) []byte {
	l, err := gso.Parse(frame, m)
	if err != nil {
		return nil
	}
	return frame[l.Payload:l.End]
}

// Bytes returns n bytes of a pattern that starts at seed.
func Bytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/251)
	}
	return b
}
