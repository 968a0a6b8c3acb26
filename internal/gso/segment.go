// Package gso is generic segmentation offload in software: it cuts a
// super-frame (link.Offload with a GSO type) into the frames a wire would
// carry, and completes the partial checksums of frames that ask for it.
// The links use it where a frame must be handled as the wire would see
// it — an impairment that acts per frame (link/pipe, link/fault), a
// capture (link/pcap), UDP super-datagrams the kernel hands a TAP or
// AF_PACKET socket (a UDP socket takes datagrams one at a time) — and
// package gro uses Parse.
//
// This is the one segmenter of the repository: the links, the captures,
// and the test networks that stand for a segmenting NIC (stack/stacktest,
// sim) all cut with Segmenter.
//
// Segmentation follows what Linux's software GSO does (tcp_gso_segment,
// inet_gso_segment, ipv6_gso_segment, __udp_gso_segment): every segment
// gets the super-frame's headers with the IPv4 total length or IPv6
// payload length of its own size, an IPv4 ID one more than the previous
// segment's and a fresh header checksum; TCP segments get consecutive
// sequence numbers, FIN and PSH only on the last and CWR only on the
// first; UDP segments get their own length. The transport checksum is
// either complete (Complete) or left partial (Partial: the pseudo-header
// sum, as virtio-net's NEEDS_CSUM has it, for a receiver that trusts the
// frame).
//
// Nothing here allocates; the caller owns every buffer.
package gso

import (
	"encoding/binary"
	"errors"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// IP protocol numbers.
const (
	protoTCP = 6
	protoUDP = 17
)

// Errors of Parse and Segmenter.Init.
//
// A frame never gets a wrong segment for bad input: Init refuses what it
// cannot cut, and Next writes nothing into a destination too short.
var (
	// ErrNotIP: the frame is not an IPv4 or IPv6 packet (or too short to
	// tell).
	ErrNotIP = errors.New("gso: not an IP packet")
	// ErrTransport: the packet is not TCP or UDP, has IPv6 extension
	// headers, is an IPv4 fragment, or its headers are truncated or
	// inconsistent.
	ErrTransport = errors.New("gso: not a whole TCP or UDP packet")
	// ErrGSO: the Offload's GSO type does not match the packet, its
	// segment size is zero, or its partial checksum (NeedsCsum) is not
	// where the packet's transport checksum is.
	ErrGSO = errors.New("gso: GSO type or size does not match the packet")
)

// Layout is where the headers of a frame are.
type Layout struct {
	// L3 is the offset of the IP header: the link header's length.
	L3 int
	// L4 is the offset of the TCP or UDP header.
	L4 int
	// Payload is the offset of the transport payload (L4 plus the TCP
	// header with options, or the 8-byte UDP header).
	Payload int
	// End is where the IP packet ends (L3 plus the IPv4 total length or
	// the IPv6 header and payload length); bytes after it are link
	// padding.
	End int
	// V6 is set for IPv6.
	V6 bool
	// Proto is 6 (TCP) or 17 (UDP).
	Proto uint8
}

// PayloadLen returns the transport payload's length.
func (l *Layout) PayloadLen() int { return l.End - l.Payload }

// Parse finds the IP and transport headers of frame, an Ethernet frame
// (with at most one 802.1Q tag) or a bare IP packet as m says. It accepts
// IPv4 (with options; not a fragment) and IPv6 without extension headers,
// carrying TCP or UDP, whose lengths fit in the frame.
func Parse(frame []byte, m link.Medium) (Layout, error) {
	var l Layout
	if m == link.Ethernet {
		if len(frame) < 14 {
			return l, ErrNotIP
		}
		l.L3 = 14
		et := binary.BigEndian.Uint16(frame[12:])
		if et == uint16(wire.EtherTypeVLAN) {
			if len(frame) < 18 {
				return l, ErrNotIP
			}
			l.L3 = 18
			et = binary.BigEndian.Uint16(frame[16:])
		}
		if et != uint16(wire.EtherTypeIPv4) && et != uint16(wire.EtherTypeIPv6) {
			return l, ErrNotIP
		}
	}
	ip := frame[l.L3:]
	if len(ip) < 20 {
		return l, ErrNotIP
	}
	switch ip[0] >> 4 {
	case 4:
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ihl < 20 || total < ihl || total > len(ip) {
			return l, ErrTransport
		}
		if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // MF or an offset
			return l, ErrTransport
		}
		l.Proto = ip[9]
		l.L4 = l.L3 + ihl
		l.End = l.L3 + total
	case 6:
		if len(ip) < 40 {
			return l, ErrNotIP
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+plen > len(ip) {
			return l, ErrTransport
		}
		l.V6 = true
		l.Proto = ip[6]
		l.L4 = l.L3 + 40
		l.End = l.L4 + plen
	default:
		return l, ErrNotIP
	}
	switch l.Proto {
	case protoTCP:
		if l.End-l.L4 < 20 {
			return l, ErrTransport
		}
		thl := int(frame[l.L4+12]>>4) * 4
		if thl < 20 || l.L4+thl > l.End {
			return l, ErrTransport
		}
		l.Payload = l.L4 + thl
	case protoUDP:
		if l.End-l.L4 < 8 {
			return l, ErrTransport
		}
		l.Payload = l.L4 + 8
	default:
		return l, ErrTransport
	}
	return l, nil
}

// PseudoSum returns the partial sum (not complemented) of the transport
// pseudo-header of the packet l describes, for a transport length of n
// bytes (RFC 9293 §3.1, RFC 768; RFC 8200 §8.1 for IPv6).
func PseudoSum(frame []byte, l *Layout, n int) uint16 {
	var addrs []byte
	if l.V6 {
		addrs = frame[l.L3+8 : l.L3+40]
	} else {
		addrs = frame[l.L3+12 : l.L3+20]
	}
	s := wire.PartialSum(addrs, 0)
	return wire.AddSum(wire.AddSum(s, uint16(l.Proto)), uint16(n))
}

// csumOffset is where in the transport header its checksum is.
func (l *Layout) csumOffset() int {
	if l.Proto == protoTCP {
		return 16
	}
	return 6
}

// CsumMode says how Segmenter.Next leaves each segment's transport
// checksum.
type CsumMode uint8

const (
	// Complete computes the whole checksum: the frame stands alone.
	Complete CsumMode = iota
	// Partial writes the pseudo-header sum only (virtio-net NEEDS_CSUM):
	// for a receiver that trusts the frame (link.Offload.DataValid) or a
	// device that finishes the checksum. Cheaper: the payload is not
	// summed.
	Partial
)

// SetChecksum writes the transport checksum of the packet l describes
// into frame, complete or partial as mode says. A UDP checksum that
// computes to zero is written as 0xffff (RFC 768).
func SetChecksum(frame []byte, l *Layout, mode CsumMode) {
	n := l.End - l.L4
	at := l.L4 + l.csumOffset()
	ps := PseudoSum(frame, l, n)
	if mode == Partial {
		binary.BigEndian.PutUint16(frame[at:], ps)
		return
	}
	frame[at], frame[at+1] = 0, 0
	c := wire.Checksum(frame[l.L4:l.End], ps)
	if c == 0 && l.Proto == protoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[at:], c)
}

// setIPLength writes the IP length fields for a packet ending at end and,
// for IPv4, id and a fresh header checksum.
func setIPLength(frame []byte, l *Layout, end int, id uint16) {
	ip := frame[l.L3:]
	if l.V6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(end-l.L4))
		return
	}
	binary.BigEndian.PutUint16(ip[2:], uint16(end-l.L3))
	binary.BigEndian.PutUint16(ip[4:], id)
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], wire.Checksum(ip[:l.L4-l.L3], 0))
}

// SetIPLength rewrites the IP length fields of the packet l describes for
// a packet ending at end (l.End is set to end), with a fresh IPv4 header
// checksum; the IPv4 ID is kept.
func SetIPLength(frame []byte, l *Layout, end int) {
	var id uint16
	if !l.V6 {
		id = binary.BigEndian.Uint16(frame[l.L3+4:])
	}
	setIPLength(frame, l, end, id)
	l.End = end
}

// Finish completes frame's partial transport checksum as off describes it
// (off.NeedsCsum: the sum from CsumStart to the end of the IP packet goes
// at CsumStart+CsumOffset, which holds the pseudo-header sum). It reports
// false if the offsets lie outside the frame. A frame without NeedsCsum is
// left as it is.
func Finish(frame []byte, m link.Medium, off link.Offload) bool {
	if !off.NeedsCsum {
		return true
	}
	end := len(frame)
	if l, err := Parse(frame, m); err == nil {
		end = l.End // not Ethernet padding
	}
	start, at := int(off.CsumStart), int(off.CsumStart)+int(off.CsumOffset)
	if start >= end || at+2 > end {
		return false
	}
	c := wire.Checksum(frame[start:end], 0)
	if c == 0 && off.CsumOffset == 6 {
		c = 0xffff // UDP (RFC 768)
	}
	binary.BigEndian.PutUint16(frame[at:], c)
	return true
}

// Segmenter cuts one super-frame into wire frames. Init it with the frame,
// then call Next until it reports false. It keeps a reference to the
// frame until then; the frame is not changed.
type Segmenter struct {
	frame  []byte
	asIs   bool // one segment whose checksum is not partial: Complete copies it as it is
	l      Layout
	mss    int
	count  int
	i      int
	seq    uint32
	id     uint16
	tflags wire.TCPFlags // the TCP flags of the super-frame
}

// Init prepares to cut frame (of medium m) as off says. A frame whose
// Offload has no GSO type, or whose payload fits one segment, gives one
// segment: itself, with its checksum as Next's mode asks. Init fails if
// the frame is not TCP or UDP over IP or off's GSO type does not match it.
func (s *Segmenter) Init(frame []byte, m link.Medium, off link.Offload) error {
	*s = Segmenter{}
	l, err := Parse(frame, m)
	if err != nil {
		return err
	}
	s.frame, s.l = frame, l
	s.id = binary.BigEndian.Uint16(frame[l.L3+4:])
	if l.Proto == protoTCP {
		s.seq = binary.BigEndian.Uint32(frame[l.L4+4:])
		s.tflags = wire.TCPFlags(frame[l.L4+13])
	}
	if off.NeedsCsum && (int(off.CsumStart) != l.L4 || int(off.CsumOffset) != l.csumOffset()) {
		return ErrGSO
	}
	payload := l.PayloadLen()
	switch off.GSOType {
	case link.GSONone:
		s.mss, s.count = max(payload, 1), 1
		s.asIs = !off.NeedsCsum
		return nil
	case link.GSOTCPv4:
		if l.Proto != protoTCP || l.V6 {
			return ErrGSO
		}
	case link.GSOTCPv6:
		if l.Proto != protoTCP || !l.V6 {
			return ErrGSO
		}
	case link.GSOUDPL4:
		if l.Proto != protoUDP {
			return ErrGSO
		}
	default:
		return ErrGSO
	}
	if off.GSOSize == 0 {
		return ErrGSO
	}
	s.mss = int(off.GSOSize)
	s.count = max((payload+s.mss-1)/s.mss, 1)
	return nil
}

// Done reports whether Next has gone through every segment.
func (s *Segmenter) Done() bool { return s.i >= s.count }

// Count returns the number of segments the frame gives.
func (s *Segmenter) Count() int { return s.count }

// Layout returns the layout of the super-frame (and of every segment up to
// its End).
func (s *Segmenter) Layout() Layout { return s.l }

// SegmentLen returns the length of segment i's frame (0 ≤ i < Count).
func (s *Segmenter) SegmentLen(i int) int {
	n := min(s.mss, s.l.PayloadLen()-i*s.mss)
	return s.l.Payload + max(n, 0)
}

// Next writes the next segment into dst and returns its length; ok is
// false when every segment has been written, or if dst is too short for
// the segment (SegmentLen), which is then skipped. A frame without a GSO
// type and without a partial checksum is copied as it is in Complete mode
// (a NIC leaves a checksum it was not asked for alone).
func (s *Segmenter) Next(dst []byte, mode CsumMode) (n int, ok bool) {
	if s.i >= s.count {
		return 0, false
	}
	i := s.i
	s.i++
	size := s.SegmentLen(i)
	if len(dst) < size {
		return 0, false
	}
	if s.asIs && mode == Complete {
		return copy(dst, s.frame[:size]), true
	}
	l := s.l
	hdr := l.Payload
	copy(dst[:hdr], s.frame[:hdr])
	off := hdr + i*s.mss
	copy(dst[hdr:size], s.frame[off:off+size-hdr])
	l.End = size
	id := s.id
	if !l.V6 {
		id += uint16(i) // Linux increments the ID per segment (inet_gso_segment)
	}
	setIPLength(dst, &l, size, id)
	switch l.Proto {
	case protoTCP:
		binary.BigEndian.PutUint32(dst[l.L4+4:], s.seq+uint32(i*s.mss))
		f := s.tflags
		if i < s.count-1 {
			f &^= wire.TCPFlagFIN | wire.TCPFlagPSH
		}
		if i > 0 {
			f &^= wire.TCPFlagCWR
		}
		dst[l.L4+13] = uint8(f)
	case protoUDP:
		binary.BigEndian.PutUint16(dst[l.L4+4:], uint16(size-l.L4))
	}
	SetChecksum(dst, &l, mode)
	return size, true
}
