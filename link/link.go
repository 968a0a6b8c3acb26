// Package link defines the boundary between the stack and the medium that
// carries its frames: a TAP or TUN device, an AF_PACKET or AF_XDP socket, an
// in-memory pipe, or middleware (pcap capture, fault injection) wrapped
// around any of them.
//
// An Endpoint moves frames in batches. The stack owns the goroutines: it
// calls ReadBatch from one reader goroutine per endpoint and WriteBatch from
// whichever goroutine has output ready. An Endpoint never calls into the
// stack.
//
// Buffer ownership is simple: both calls work on buffers the caller owns and
// keeps. ReadBatch fills them; WriteBatch has finished with them (copied or
// sent them) when it returns. Nothing is reference-counted.
package link

import "errors"

// Medium says what a frame is.
type Medium uint8

const (
	// Ethernet frames start with a 14-byte Ethernet II header (or 18 with
	// an 802.1Q tag); neighbours are resolved with ARP.
	Ethernet Medium = iota + 1
	// IP frames are bare IP packets, as on a TUN device; there is no link
	// header and no neighbour resolution.
	IP
)

// String returns "ethernet" or "ip".
func (m Medium) String() string {
	switch m {
	case Ethernet:
		return "ethernet"
	case IP:
		return "ip"
	}
	return "unknown"
}

// HeaderLen returns the link header length of a frame of this medium.
func (m Medium) HeaderLen() int {
	if m == Ethernet {
		return 14
	}
	return 0
}

// Caps is a set of offload capabilities.
type Caps uint32

const (
	// CapRxChecksumValid: received frames may carry Offload.DataValid,
	// meaning their transport checksum was already verified.
	CapRxChecksumValid Caps = 1 << iota
	// CapTxChecksum: the endpoint completes transport checksums of frames
	// whose Offload.NeedsCsum is set (virtio-net NEEDS_CSUM semantics).
	CapTxChecksum
	// CapTSO: the endpoint segments TCP frames larger than the MTU that
	// carry Offload.GSOSize.
	CapTSO
	// CapGRO: received frames may be coalesced TCP segments larger than the
	// MTU, described by Offload.
	CapGRO
)

// Has reports whether every capability in d is in c.
func (c Caps) Has(d Caps) bool { return c&d == d }

// GSO types, as in virtio-net (struct virtio_net_hdr).
const (
	GSONone  = 0
	GSOTCPv4 = 1
	GSOUDPL4 = 5
	GSOTCPv6 = 4
)

// Offload describes a frame whose checksum or segmentation is left to (or
// was done by) the other side of the link. The zero value means a complete,
// ordinary frame.
type Offload struct {
	// GSOType is one of the GSO constants; GSONone for a single segment.
	GSOType uint8
	// GSOSize is the payload size of each segment when GSOType is set.
	GSOSize uint16
	// HdrLen is the length of all headers in front of the payload.
	HdrLen uint16
	// NeedsCsum means the transport checksum must be completed: the sum
	// from CsumStart to the end goes at CsumStart+CsumOffset, which holds
	// the pseudo-header sum.
	NeedsCsum  bool
	CsumStart  uint16
	CsumOffset uint16
	// DataValid means the receiving side already verified the checksum.
	DataValid bool
}

// Packet is one frame in a batch. Buf is the caller's buffer; ReadBatch sets
// N to the frame's length and may set Offload; WriteBatch sends Buf[:N].
type Packet struct {
	Buf     []byte
	N       int
	Offload Offload
}

// Frame returns the frame bytes, Buf[:N].
func (p *Packet) Frame() []byte { return p.Buf[:p.N] }

// Endpoint is a link the stack can attach a NIC to.
//
// ReadBatch and WriteBatch may be called concurrently with each other; each
// of them is called by one goroutine at a time. After Close, ReadBatch and
// WriteBatch return an error that satisfies errors.Is(err, net.ErrClosed).
type Endpoint interface {
	// Medium returns the kind of frames the endpoint carries.
	Medium() Medium
	// MTU returns the largest IP packet the link carries (without any link
	// header), e.g. 1500.
	MTU() int
	// Caps returns the endpoint's offload capabilities. They do not change
	// after the endpoint is made.
	Caps() Caps
	// BatchSize returns the most packets one ReadBatch or WriteBatch call
	// handles; it does not change.
	BatchSize() int
	// ReadBatch blocks until at least one frame has arrived, fills up to
	// len(pkts) packets, and returns how many it filled. Each Buf must
	// have room for MTU()+Medium().HeaderLen() bytes (more if the endpoint
	// has CapGRO: see its documentation). A frame larger than its buffer
	// is dropped and counted by the endpoint.
	ReadBatch(pkts []Packet) (n int, err error)
	// WriteBatch sends the packets and returns how many were accepted. It
	// does not keep any Buf after it returns. A full transmit queue drops
	// frames (as a NIC does) rather than blocking for long.
	WriteBatch(pkts []Packet) (n int, err error)
	// Close releases the endpoint and unblocks ReadBatch.
	Close() error
}

// ErrFrameTooBig is returned by WriteBatch for a frame larger than the link
// carries.
var ErrFrameTooBig = errors.New("link: frame larger than the MTU")
