// Package gso does in software what a link with TCP segmentation offload
// and checksum offload does with the frames the stack hands it: it cuts a
// super-frame (link.Offload with a GSO type) into the frames that go on
// the wire and completes partial checksums (Offload.NeedsCsum). A test
// link that stands for a segmenting NIC uses it, and so can anything
// that must see the wire's frames of an offloading link (a capture, a
// fallback for a link without the offload).
//
// The rules are Linux's for TSO/GSO (tcp_gso_segment, inet_gso_segment):
// every piece gets the super-frame's headers; TCP's sequence number
// advances by the piece's offset, FIN and PSH stay on the last piece and
// CWR on the first (tcp.SplitSegment); IPv4's total length, ID (the
// first piece keeps the super-frame's, each next one adds one) and header
// checksum, or IPv6's payload length, are set per piece; and each piece's
// TCP checksum is computed whole.
package gso

import (
	"encoding/binary"
	"errors"

	"github.com/ustack/ustack/internal/vnet"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Errors of Count and Segment.
var (
	ErrUnsupported = errors.New("gso: not a TCP super-frame over IPv4 or IPv6")
	ErrMalformed   = errors.New("gso: headers do not match the offload")
	ErrIndex       = errors.New("gso: segment index out of range")
	ErrShortDst    = errors.New("gso: destination too small")
)

// Count returns how many wire frames frame, sent with offload o on a link
// whose link header is l2 bytes long, becomes: 1 for a frame without a
// GSO type.
func Count(frame []byte, l2 int, o link.Offload) (int, error) {
	if o.GSOType == link.GSONone {
		return 1, nil
	}
	th, err := check(frame, l2, o)
	if err != nil {
		return 0, err
	}
	n, err := tcp.SegmentCount(frame[th:], int(o.GSOSize))
	if err != nil {
		return 0, ErrMalformed
	}
	return n, nil
}

// Segment writes wire frame i (from 0) of frame, sent with offload o on a
// link whose link header is l2 bytes long, into dst and returns its
// length. A frame without a GSO type is its only segment: it is copied,
// with its partial checksum completed if o.NeedsCsum.
func Segment(dst, frame []byte, l2 int, o link.Offload, i int) (int, error) {
	if o.GSOType == link.GSONone {
		if i != 0 {
			return 0, ErrIndex
		}
		if len(dst) < len(frame) {
			return 0, ErrShortDst
		}
		n := copy(dst, frame)
		if o.NeedsCsum && !vnet.CompleteChecksum(dst[:n], int(o.CsumStart), int(o.CsumOffset)) {
			return 0, ErrMalformed
		}
		return n, nil
	}
	th, err := check(frame, l2, o)
	if err != nil {
		return 0, err
	}
	count, err := tcp.SegmentCount(frame[th:], int(o.GSOSize))
	if err != nil {
		return 0, ErrMalformed
	}
	if i < 0 || i >= count {
		return 0, ErrIndex
	}
	if len(dst) < th {
		return 0, ErrShortDst
	}
	k, err := tcp.SplitSegment(dst[th:], frame[th:], int(o.GSOSize), i)
	if err != nil {
		return 0, ErrShortDst
	}
	copy(dst[:th], frame[:th])
	ip := dst[l2:th]
	seg := dst[th : th+k]
	if ip[0]>>4 == 4 {
		h := wire.IPv4(ip)
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)+k))
		binary.BigEndian.PutUint16(ip[4:], h.ID()+uint16(i))
		h.SetChecksum(0)
		h.SetChecksum(wire.Checksum(ip[:h.HeaderLen()], 0))
		binary.BigEndian.PutUint16(seg[16:], 0)
		binary.BigEndian.PutUint16(seg[16:], wire.TCPChecksum(seg, h.Src(), h.Dst()))
	} else {
		h := wire.IPv6(ip)
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-wire.IPv6HeaderLen+k))
		binary.BigEndian.PutUint16(seg[16:], 0)
		binary.BigEndian.PutUint16(seg[16:], wire.TCPChecksum(seg, h.Src(), h.Dst()))
	}
	return th + k, nil
}

// check validates a TCP super-frame's headers against its offload and
// returns the offset of its TCP header.
func check(frame []byte, l2 int, o link.Offload) (int, error) {
	if o.GSOType != link.GSOTCPv4 && o.GSOType != link.GSOTCPv6 || o.GSOSize == 0 {
		return 0, ErrUnsupported
	}
	if l2 < 0 || len(frame) <= l2 {
		return 0, ErrMalformed
	}
	ip := frame[l2:]
	var th int
	switch {
	case o.GSOType == link.GSOTCPv4 && ip[0]>>4 == 4:
		v, err := wire.ParseIPv4(ip)
		if err != nil || v.Protocol() != wire.ProtoTCP || v.IsFragment() || int(v.TotalLen()) != len(ip) {
			return 0, ErrMalformed
		}
		th = l2 + v.HeaderLen()
	case o.GSOType == link.GSOTCPv6 && ip[0]>>4 == 6:
		v, err := wire.ParseIPv6(ip)
		// Extension headers are not walked: the stack sends none.
		if err != nil || v.NextHeader() != wire.ProtoTCP || wire.IPv6HeaderLen+int(v.PayloadLen()) != len(ip) {
			return 0, ErrMalformed
		}
		th = l2 + wire.IPv6HeaderLen
	default:
		return 0, ErrMalformed
	}
	if o.NeedsCsum && int(o.CsumStart) != th {
		return 0, ErrMalformed
	}
	return th, nil
}
