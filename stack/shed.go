package stack

import (
	"encoding/binary"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// SynFloodHold is how long after a listener's last SYN cookie the stack
// counts as SYN-flooded (SynFlooded).
const SynFloodHold = time.Second

// SynFlooded reports whether a listener of the stack answered a SYN with
// a SYN cookie in the last SynFloodHold: its SYN queue overflowed (or
// Config.SynCookies is SynCookiesAlways and SYNs keep coming), the
// moment Linux logs "Possible SYN flooding". The runtime reads it to
// shed excess SYNs before they reach the core (docs/ARCHITECTURE.md,
// "Shedding load").
func (s *Stack) SynFlooded(now clock.Instant) bool {
	return s.flows.cookieAny && now.Sub(s.flows.cookieAt) < SynFloodHold
}

// IsConnRequest reports whether a received frame (an Ethernet frame,
// VLAN-tagged or not, or a bare IP packet) is a TCP connection request: a
// segment with SYN set and ACK and RST clear, in an unfragmented IPv4
// packet or an IPv6 packet without extension headers. Like ParseFlowKey
// it is a pure parse, without allocation, meant to run before any lock;
// it checks no checksum, so a frame it names may still be dropped by the
// core.
func IsConnRequest(m link.Medium, frame []byte) bool {
	p := frame
	if m == link.Ethernet {
		if len(p) < 14 {
			return false
		}
		et := binary.BigEndian.Uint16(p[12:])
		p = p[14:]
		if et == uint16(wire.EtherTypeVLAN) {
			if len(p) < 4 {
				return false
			}
			et = binary.BigEndian.Uint16(p[2:])
			p = p[4:]
		}
		if et != uint16(wire.EtherTypeIPv4) && et != uint16(wire.EtherTypeIPv6) {
			return false
		}
	}
	if len(p) < 1 {
		return false
	}
	var l4 []byte
	switch p[0] >> 4 {
	case 4:
		hl := int(p[0]&15) * 4
		if hl < 20 || len(p) < hl || p[9] != wire.ProtoTCP ||
			binary.BigEndian.Uint16(p[6:])&0x3fff != 0 { // MF or an offset: a fragment
			return false
		}
		l4 = p[hl:]
	case 6:
		if len(p) < 40 || p[6] != wire.ProtoTCP {
			return false
		}
		l4 = p[40:]
	default:
		return false
	}
	if len(l4) < 20 {
		return false
	}
	f := wire.TCPFlags(l4[13])
	return f&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST) == wire.TCPFlagSYN
}
