package tcp

import (
	"errors"

	"github.com/ustack/ustack/wire"
)

// Software segmentation: what a NIC's TCP segmentation offload does with
// a super-segment (PollTransmitBatch), for links that cannot. As Linux's
// tcp_gso_segment, every piece gets the super-segment's header with its
// sequence number advanced by its offset; FIN and PSH stay on the last
// piece only, CWR on the first only; the checksum field is left as it was
// (PollTransmitBatch leaves it zero), for the caller to fill in per piece
// (wire.TCPChecksum) as for any segment.

// Errors of SegmentCount and SplitSegment.
var (
	errSegSize  = errors.New("tcp: segment size not positive")
	errSegShort = errors.New("tcp: super-segment shorter than its header")
	errSegIndex = errors.New("tcp: segment index out of range")
	errSegDst   = errors.New("tcp: destination too small for the segment")
)

// SegmentCount returns how many wire segments super, a TCP header and its
// payload as PollTransmitBatch writes them, makes when cut into pieces of
// segSize payload bytes: at least one (a segment without payload is one
// segment).
func SegmentCount(super []byte, segSize int) (int, error) {
	hl, err := superHeaderLen(super, segSize)
	if err != nil {
		return 0, err
	}
	payload := len(super) - hl
	if payload == 0 {
		return 1, nil
	}
	return (payload + segSize - 1) / segSize, nil
}

// SplitSegment writes wire segment i (from 0) of super, cut into pieces of
// segSize payload bytes, into dst and returns its length. It fails, writing
// nothing, if super is not a TCP header with its payload, segSize is not
// positive, i is out of range or dst cannot hold the segment.
func SplitSegment(dst, super []byte, segSize, i int) (int, error) {
	hl, err := superHeaderLen(super, segSize)
	if err != nil {
		return 0, err
	}
	payload := len(super) - hl
	count := 1
	if payload > 0 {
		count = (payload + segSize - 1) / segSize
	}
	if i < 0 || i >= count {
		return 0, errSegIndex
	}
	off := i * segSize
	n := min(segSize, payload-off)
	if payload == 0 {
		n = 0
	}
	if len(dst) < hl+n {
		return 0, errSegDst
	}
	copy(dst[:hl], super[:hl])
	copy(dst[hl:hl+n], super[hl+off:hl+off+n])
	h := wire.TCP(dst[:hl])
	h.SetSeq(h.Seq().Add(uint32(off)))
	flags := h.Flags()
	if i < count-1 {
		flags &^= wire.TCPFlagFIN | wire.TCPFlagPSH
	}
	if i > 0 {
		flags &^= wire.TCPFlagCWR
	}
	h.SetFlags(flags)
	return hl + n, nil
}

// superHeaderLen checks super and segSize and returns the header length.
func superHeaderLen(super []byte, segSize int) (int, error) {
	if segSize <= 0 {
		return 0, errSegSize
	}
	if len(super) < wire.TCPHeaderLen {
		return 0, errSegShort
	}
	hl := wire.TCP(super).HeaderLen()
	if hl < wire.TCPHeaderLen || hl > len(super) {
		return 0, errSegShort
	}
	return hl, nil
}
