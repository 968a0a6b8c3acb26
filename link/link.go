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
// sent them) when it returns. Nothing is reference-counted. A caller may
// allow an exchange instead (Packet.Swap): the endpoint then keeps a
// buffer the caller passed and gives it another in its place, so a frame
// changes hands without a copy and every buffer still has one owner.
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

// Caps is a set of offload capabilities: what an endpoint does for the
// stack (and lets the stack skip) when frames cross it, as a NIC's
// features do for Linux. The stack reads them once, when it attaches.
type Caps uint32

const (
	// CapRxChecksumValid: received frames may carry Offload.DataValid,
	// meaning their transport checksum was already verified or need not
	// be (the frame never left the machine, or the other end's checksum
	// is partial: Offload.NeedsCsum).
	CapRxChecksumValid Caps = 1 << iota
	// CapTxChecksum: the endpoint completes transport checksums of frames
	// whose Offload.NeedsCsum is set (virtio-net NEEDS_CSUM semantics),
	// or carries them to a receiver that does not need them (an
	// in-memory link).
	CapTxChecksum
	// CapTSO: the endpoint segments TCP frames larger than the MTU that
	// carry Offload.GSOType GSOTCPv4 or GSOTCPv6 and GSOSize, up to
	// MaxSuperFrame bytes (and NeedsCsum, which TSO requires).
	CapTSO
	// CapGRO: received frames may be TCP super-frames larger than the
	// MTU, up to MaxSuperFrame bytes, described by Offload (a GSO type and
	// the size of the segments they were made of): the device's own
	// (a kernel's TSO frames through a TAP) or coalesced by the endpoint
	// (package internal/gro). Read buffers must have room for
	// MaxSuperFrame bytes.
	CapGRO
	// CapUSO: the endpoint segments UDP frames that carry Offload.GSOType
	// GSOUDPL4 into datagrams of GSOSize payload bytes each (UDP
	// segmentation offload; Linux's UDP_SEGMENT).
	CapUSO
)

// Has reports whether every capability in d is in c.
func (c Caps) Has(d Caps) bool { return c&d == d }

// MaxSuperFrame is the longest frame an endpoint with CapGRO returns or one
// with CapTSO takes: an IP packet of 65535 bytes (the IPv4 total length
// and IPv6 payload length are 16 bits) behind an Ethernet header with an
// 802.1Q tag.
const MaxSuperFrame = 65535 + 18

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
//
// On transmit, the stack sets GSOType and GSOSize only on an endpoint with
// CapTSO (TCP) or CapUSO (UDP), and NeedsCsum only with CapTxChecksum; the
// frame's headers are those of the first segment, with the IP length
// fields covering the whole frame. On receive, a super-frame (CapGRO)
// carries the GSO type and segment size it was made of, and a frame whose
// checksum the sender left partial keeps NeedsCsum, CsumStart and
// CsumOffset (the checksum field holds the pseudo-header sum) and has
// DataValid: "checksum partial" on one side is "data valid" on the other,
// as with Linux's CHECKSUM_PARTIAL on a veth or from a virtio-net device.
// Package internal/gso turns either kind back into the frames a wire would
// carry.
type Offload struct {
	// GSOType is one of the GSO constants; GSONone for a single segment.
	GSOType uint8
	// GSOSize is the payload size of each segment when GSOType is set
	// (the last may be shorter).
	GSOSize uint16
	// HdrLen is the length of all headers in front of the payload (a
	// hint, as in virtio-net).
	HdrLen uint16
	// NeedsCsum means the transport checksum must be completed: the sum
	// from CsumStart to the end goes at CsumStart+CsumOffset, which holds
	// the pseudo-header sum.
	NeedsCsum  bool
	CsumStart  uint16
	CsumOffset uint16
	// DataValid means the frame's transport checksum need not be
	// verified: the receiving side verified it, or it is partial
	// (NeedsCsum) because the frame never crossed a wire.
	DataValid bool
}

// Packet is one frame in a batch. Buf is the caller's buffer; ReadBatch sets
// N to the frame's length and may set Offload; WriteBatch sends Buf[:N].
type Packet struct {
	Buf     []byte
	N       int
	Offload Offload
	// Swap, set by the caller, lets the endpoint hand the frame over by
	// exchanging buffers instead of copying it: WriteBatch may keep Buf,
	// frame and all, and put in its place a buffer of at least len(Buf)
	// bytes; ReadBatch may put in place of Buf a buffer that holds the
	// frame, with room for what ReadBatch requires of Bufs, and keep the
	// caller's. Each buffer still has one owner: what the caller finds in
	// Buf after the call is the caller's, what it passed in is no longer.
	// So a caller that sets Swap uses pkts[i].Buf afresh after every call
	// and keeps no other reference to a buffer it passed; middleware that
	// passes packets on and needs their frames afterwards clears it.
	// Endpoints that cannot exchange ignore it (link/pipe exchanges).
	Swap bool
}

// Frame returns the frame bytes, Buf[:N].
func (p *Packet) Frame() []byte { return p.Buf[:p.N] }

// Endpoint is a link the stack can attach a NIC to.
//
// ReadBatch and WriteBatch may be called concurrently with each other; each
// of them is called by one goroutine at a time (WriteBatch by several at
// once where the endpoint says it may: ConcurrentWriter). After Close, ReadBatch and
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
	// have room for MTU()+Medium().HeaderLen() bytes, plus an 802.1Q tag
	// on Ethernet, or MaxSuperFrame if the endpoint has CapGRO. A frame
	// larger than its buffer is dropped and counted by the endpoint.
	// ReadBatch may reorder the Bufs of pkts among themselves (an endpoint
	// that drops or merges frames moves their buffers behind the ones it
	// returns), so the caller must use pkts[i].Buf afresh after each call.
	ReadBatch(pkts []Packet) (n int, err error)
	// WriteBatch sends the packets and returns how many were accepted. It
	// does not keep any Buf after it returns. A full transmit queue drops
	// frames (as a NIC does) rather than blocking for long. A frame longer
	// than MTU()+Medium().HeaderLen() is refused with
	// ErrFrameTooBig unless it is a super-frame (Offload.GSOType) on an
	// endpoint with CapTSO or CapUSO.
	WriteBatch(pkts []Packet) (n int, err error)
	// Close releases the endpoint and unblocks ReadBatch.
	Close() error
}

// Receiver is implemented by an Endpoint that can hand the frames its
// peer writes straight to a function, in the writer's goroutine, instead
// of queueing them for ReadBatch — as the kernel's loopback and veth run
// the receive path in the sender's context (netif_rx). A round trip
// between two stacks then costs two goroutine hand-offs (each
// application's) instead of four (a NIC reader's each way as well).
type Receiver interface {
	// SetReceiver makes the endpoint call f with received frames
	// whenever none are queued ahead of them (ReadBatch returns the
	// others, as before); nil turns that off. f is called in the
	// peer writer's goroutine, during its WriteBatch, with frames in
	// the order they were written; never concurrently with itself,
	// unless the peer is a ConcurrentWriter that several goroutines
	// write to at once (then each call has one writer's frames, in
	// that writer's order); pkts are the writer's, so f must not keep them or their
	// buffers after it returns, and may change their N and Offload. f
	// must not write to this endpoint's peer from the same goroutine
	// into the call it runs in (a stack that does, as its reply to a
	// frame, must leave that frame to its current writer).
	SetReceiver(f func(pkts []Packet))
}

// ConcurrentWriter is implemented by an Endpoint whose WriteBatch may be
// called by several goroutines at once, each call's frames kept in
// order (frames of different calls may interleave). A runtime with
// several shards then lets each shard's writer write on its own instead
// of taking turns on a lock around WriteBatch. An endpoint that is also
// a Receiver holds no lock of its own across a call of its peer's
// receive function, so that a writer delivering into the peer's stack
// (which may write back, from another shard) never holds up another
// writer: taking turns there could deadlock, one shard's writer holding
// the turn while it delivers into the peer, the peer's writer holding
// its own turn while it delivers back into a second shard, whose reply
// waits for the first turn.
type ConcurrentWriter interface {
	// ConcurrentWrites reports whether WriteBatch is safe for
	// concurrent use; it does not change.
	ConcurrentWrites() bool
}

// ErrFrameTooBig is returned by WriteBatch for a frame larger than the link
// carries.
var ErrFrameTooBig = errors.New("link: frame larger than the MTU")
