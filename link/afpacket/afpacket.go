//go:build linux

package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack/internal/gro"
	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/rawfd"
	"github.com/ustack/ustack/internal/vnet"
	"github.com/ustack/ustack/link"
)

// Mode chooses how frames are received.
type Mode uint8

const (
	// ModeDefault is ModeMmsg, the faster of the two on the benchmarks
	// in BENCHMARKS.md ("AF_PACKET: recvmmsg or TPACKET_V3").
	ModeDefault Mode = iota
	// ModeMmsg receives with recvmmsg(2), a batch of frames per system
	// call copied into the caller's buffers, with PACKET_VNET_HDR so that
	// partial checksums and GSO frames are recognised.
	ModeMmsg
	// ModeRing receives through a TPACKET_V3 ring shared with the kernel
	// (Documentation/networking/packet_mmap.rst): no system call while
	// frames are waiting, but the kernel hands a block over only when it
	// is full or its retire timeout (Config.BlockTimeout) expires, which
	// delays frames of request/response traffic.
	ModeRing
)

// String returns "default", "mmsg" or "ring".
func (m Mode) String() string {
	switch m {
	case ModeDefault:
		return "default"
	case ModeMmsg:
		return "mmsg"
	case ModeRing:
		return "ring"
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ParseMode reads "mmsg", "ring" or "default" (or "").
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "default":
		return ModeDefault, nil
	case "mmsg", "recvmmsg":
		return ModeMmsg, nil
	case "ring", "tpacket", "tpacket_v3", "v3":
		return ModeRing, nil
	}
	return 0, fmt.Errorf("afpacket: unknown mode %q (want mmsg or ring)", s)
}

// Config describes the socket to open:
// afpacket.Open(afpacket.Config{Interface: "veth1"}).
type Config struct {
	// Interface is the name of an existing interface (a veth end, a NIC).
	// Open brings it up if it is down.
	Interface string
	// Netns, if not "", is the network namespace the interface is in (a
	// name under /var/run/netns, or a path such as /proc/PID/ns/net).
	Netns string
	// Mode is how frames are received (ModeDefault: see there).
	Mode Mode
	// BatchSize is the most frames one ReadBatch or WriteBatch handles;
	// 0 means 64.
	BatchSize int
	// RcvBuf is the socket's receive buffer in bytes (ModeMmsg), set
	// with SO_RCVBUFFORCE so that it may exceed net.core.rmem_max; 0
	// means 8 MiB. The default ~208 KiB overflows under a burst from the
	// kernel (environment notes §3).
	RcvBuf int
	// BlockSize and Blocks size the TPACKET_V3 ring (ModeRing); 0 means
	// 1 MiB blocks and 16 of them.
	BlockSize, Blocks int
	// BlockTimeout is the ring's retire_blk_tov (ModeRing), rounded to
	// whole milliseconds: how long the kernel keeps a partly filled block
	// before handing it over. 0 means 1 ms.
	BlockTimeout time.Duration
	// NoPromisc leaves the interface's promiscuous mode alone. By default
	// the socket joins PACKET_MR_PROMISC (undone when it closes): the
	// stack has a MAC address of its own, which a NIC would otherwise
	// filter out. A veth delivers every frame either way.
	NoPromisc bool
	// NoOffloads makes an endpoint without offloads (Caps 0): it
	// completes the partial checksums of frames it receives and drops
	// (and counts) the kernel's GSO super-frames, so the peer must have
	// segmentation offloads off (see the package documentation), and it
	// sends frames of at most the MTU. By default the socket takes the
	// kernel's frames as they are, with PACKET_VNET_HDR: super-frames up
	// to 64 KiB (read buffers need room for link.MaxSuperFrame) and
	// partial checksums reach the stack with their link.Offload, and it
	// sends super-frames and partial checksums for the kernel to finish.
	NoOffloads bool
	// NoGRO leaves received TCP segments as the kernel sent them: without
	// it, consecutive segments of a flow within a batch are merged into
	// one super-frame (package internal/gro) before the stack sees them.
	// It has no effect with NoOffloads.
	NoGRO bool
	// Queues, if more than 1, opens that many sockets on the interface
	// in one PACKET_FANOUT group of type PACKET_FANOUT_HASH: the kernel
	// hands each received frame to one of them by its flow hash, as a
	// NIC's RSS does, and each is an Endpoint with its own reader and
	// writer state (Queues, link.MultiQueue). The Endpoint Open returns
	// is queue 0; closing it closes them all.
	Queues int
}

// Stats are the counters of an Endpoint.
type Stats struct {
	RxFrames, RxBytes uint64 // frames ReadBatch returned
	TxFrames, TxBytes uint64 // frames the kernel accepted
	// RxTooBig counts frames dropped because they did not fit the
	// caller's buffer (with NoOffloads, GSO super-frames included).
	RxTooBig uint64
	// RxGSO counts the GSO super-frames the kernel handed over (the peer
	// sends with TSO or GSO on); with NoOffloads they are dropped.
	RxGSO uint64
	// RxCoalesced counts the segments GRO merged into the one before
	// them.
	RxCoalesced uint64
	// RxSplit counts UDP super-datagrams cut into datagrams here (a UDP
	// socket takes them one at a time); RxBadOffload counts frames
	// dropped because their virtio-net header did not match them, or
	// because too many UDP super-datagrams waited to be cut.
	RxSplit, RxBadOffload uint64
	// RxCsumCompleted counts frames whose partial checksum (the peer has
	// checksum offload on) was completed here (NoOffloads only).
	RxCsumCompleted uint64
	// RxKernelDrops counts frames the kernel dropped because the receive
	// buffer or ring was full (PACKET_STATISTICS tp_drops).
	RxKernelDrops uint64
	// RxErrors counts failed receive calls other than "would block".
	RxErrors uint64
	// TxDropped counts frames the kernel refused, or that waited for room
	// in the send buffer longer than WriteTimeout.
	TxDropped uint64
	// TxTooBig counts frames larger than MTU plus the Ethernet header,
	// refused with link.ErrFrameTooBig.
	TxTooBig uint64
	// TxGSO counts the super-frames written, for the kernel to segment.
	TxGSO uint64
}

// WriteTimeout is how long WriteBatch waits for room in the socket's send
// buffer before dropping the rest of the batch.
const WriteTimeout = 50 * time.Millisecond

// Endpoint is an AF_PACKET socket bound to one interface.
type Endpoint struct {
	fd      *rawfd.FD
	ifname  string
	ifindex int
	hwaddr  net.HardwareAddr
	mtu     int
	batch   int
	mode    Mode
	vnet    bool // PACKET_VNET_HDR is on
	offload bool // !Config.NoOffloads

	rmu    sync.Mutex
	rpkts  []link.Packet
	rn     int
	rerr   error
	readFn func(fd int) bool
	gro    *gro.Coalescer // nil: no GRO
	// UDP super-datagrams waiting to be cut into datagrams, and the UDP
	// frames behind them (which must not overtake them); made on first
	// use.
	split *gso.Queue
	// ModeMmsg
	rmsgs []unix.Mmsghdr
	riov  []unix.Iovec
	rhdrs []byte // one virtio-net header per message
	// ModeRing
	ring      []byte
	blockSize int
	blocks    int
	cur       int    // the block being read or waited for
	left      uint32 // frames of cur not yet read; 0: cur not held
	off       int    // offset in cur of the next frame

	wmu     sync.Mutex
	wpkts   []link.Packet
	wn      int
	werr    error
	writeFn func(fd int) bool
	wmsgs   []unix.Mmsghdr
	wiov    []unix.Iovec
	whdrs   []byte // one virtio-net header per message

	rxFrames, rxBytes, txFrames, txBytes, rxTooBig, rxGSO, rxCsum,
	rxKernelDrops, rxErrors, txDropped, txTooBig,
	rxSplit, rxBadOffload, txGSO, merged atomic.Uint64
	statsMu sync.Mutex

	// queues are the fanout group's sockets (Config.Queues), this one
	// first; nil without fanout and on the sockets after the first.
	queues []link.Endpoint
}

var (
	_ link.Endpoint   = (*Endpoint)(nil)
	_ link.MultiQueue = (*Endpoint)(nil)
)

// Queues returns the sockets of the fanout group (link.MultiQueue): e and,
// with Config.Queues, the others; without fanout just e.
func (e *Endpoint) Queues() []link.Endpoint {
	if e.queues == nil {
		return []link.Endpoint{e}
	}
	return e.queues
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Open opens an AF_PACKET socket bound to cfg.Interface. It needs
// CAP_NET_RAW in the interface's namespace (root, or a user namespace of
// one's own: `unshare -rn`).
func Open(cfg Config) (*Endpoint, error) {
	if cfg.Interface == "" {
		return nil, errors.New("afpacket: no interface")
	}
	if cfg.Queues <= 1 {
		return open1(cfg, nil)
	}
	// The first socket makes a fanout group with an ID the kernel picks
	// (PACKET_FANOUT_FLAG_UNIQUEID), the others join it.
	group := -1
	var e *Endpoint
	for range cfg.Queues {
		q, err := open1(cfg, &group)
		if err != nil {
			if e != nil {
				e.Close()
			}
			return nil, err
		}
		if e == nil {
			e = q
		}
		e.queues = append(e.queues, q)
	}
	return e, nil
}

// open1 opens one socket; with group, it joins that fanout group (-1:
// makes a new one, and sets *group to its ID).
func open1(cfg Config, group *int) (*Endpoint, error) {
	e := &Endpoint{ifname: cfg.Interface, batch: cfg.BatchSize, mode: cfg.Mode, offload: !cfg.NoOffloads}
	if e.batch <= 0 {
		e.batch = 64
	}
	if e.mode == ModeDefault {
		e.mode = ModeMmsg
	}
	var fd int = -1
	err := netns.Do(cfg.Netns, func() error {
		var err error
		fd, err = e.open(cfg, group)
		return err
	})
	if err != nil {
		return nil, err
	}
	e.fd, err = rawfd.New(fd, "afpacket "+e.ifname)
	if err != nil {
		e.unmap()
		return nil, err
	}
	e.rmsgs = make([]unix.Mmsghdr, e.batch)
	e.riov = make([]unix.Iovec, 2*e.batch)
	e.rhdrs = make([]byte, vnet.Len*e.batch)
	e.wmsgs = make([]unix.Mmsghdr, e.batch)
	e.wiov = make([]unix.Iovec, 2*e.batch)
	e.whdrs = make([]byte, vnet.Len*e.batch)
	if e.offload && !cfg.NoGRO {
		e.gro = gro.New(link.Ethernet)
	}
	if e.mode == ModeRing {
		e.readFn = e.readRing
	} else {
		e.readFn = e.readMmsg
	}
	e.writeFn = e.writeMmsg
	return e, nil
}

// open makes and binds the socket, in the interface's namespace, following
// packet(7) and Documentation/networking/packet_mmap.rst.
func (e *Endpoint) open(cfg Config, group *int) (fd int, err error) {
	if e.ifindex, err = netns.Index(cfg.Interface); err != nil {
		return -1, fmt.Errorf("afpacket: %w", err)
	}
	if err = netns.SetUp(cfg.Interface); err != nil {
		return -1, fmt.Errorf("afpacket: %w", err)
	}
	if e.mtu, err = netns.MTU(cfg.Interface); err != nil {
		return -1, fmt.Errorf("afpacket: %w", err)
	}
	if e.hwaddr, err = netns.HardwareAddr(cfg.Interface); err != nil {
		return -1, fmt.Errorf("afpacket: %w", err)
	}
	// Protocol 0: no frame is queued until bind names the interface, so
	// none from another interface slips in first.
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("afpacket: socket: %w (needs CAP_NET_RAW)", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
			e.unmap()
			fd = -1
		}
	}()
	// Our own transmissions are not looped back to us.
	if err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fd, fmt.Errorf("afpacket: PACKET_IGNORE_OUTGOING: %w", err)
	}
	rcvbuf := cfg.RcvBuf
	if rcvbuf <= 0 {
		rcvbuf = 8 << 20
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		// Without CAP_NET_ADMIN: as much as net.core.rmem_max allows.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	// The virtio-net header says which frames are super-frames and which
	// checksums are partial. The ring has it too (tpacket_rcv), with
	// offloads; it must be set before the ring is (EBUSY after).
	if e.mode != ModeRing || e.offload {
		if err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return fd, fmt.Errorf("afpacket: PACKET_VNET_HDR: %w", err)
		}
		e.vnet = true
	}
	if e.mode == ModeRing {
		if err = e.setupRing(fd, cfg); err != nil {
			return fd, err
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: e.ifindex}
	if err = unix.Bind(fd, sa); err != nil {
		return fd, fmt.Errorf("afpacket: bind to %s: %w", cfg.Interface, err)
	}
	if !cfg.NoPromisc {
		mr := unix.PacketMreq{Ifindex: int32(e.ifindex), Type: unix.PACKET_MR_PROMISC}
		if err = unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
			return fd, fmt.Errorf("afpacket: promiscuous mode: %w", err)
		}
	}
	if group != nil {
		// packet(7) PACKET_FANOUT: the group ID in the low 16 bits, the
		// mode and flags above.
		arg := unix.PACKET_FANOUT_HASH << 16
		if *group < 0 {
			arg |= unix.PACKET_FANOUT_FLAG_UNIQUEID << 16
		} else {
			arg |= *group
		}
		if err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
			return fd, fmt.Errorf("afpacket: PACKET_FANOUT: %w", err)
		}
		if *group < 0 {
			v, gerr := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
			if gerr != nil {
				err = fmt.Errorf("afpacket: PACKET_FANOUT's group: %w", gerr)
				return fd, err
			}
			*group = v & 0xffff
		}
	}
	return fd, nil
}

// setupRing maps a TPACKET_V3 receive ring.
func (e *Endpoint) setupRing(fd int, cfg Config) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("afpacket: TPACKET_V3: %w", err)
	}
	e.blockSize, e.blocks = cfg.BlockSize, cfg.Blocks
	if e.blockSize <= 0 {
		e.blockSize = 1 << 20
	}
	if e.blocks <= 0 {
		e.blocks = 16
	}
	tov := uint32(cfg.BlockTimeout / time.Millisecond)
	if tov == 0 {
		tov = 1
	}
	const frameSize = 2048 // only a hint for V3: frames are packed in blocks
	req := unix.TpacketReq3{
		Block_size:     uint32(e.blockSize),
		Block_nr:       uint32(e.blocks),
		Frame_size:     frameSize,
		Frame_nr:       uint32(e.blockSize / frameSize * e.blocks),
		Retire_blk_tov: tov,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("afpacket: PACKET_RX_RING: %w", err)
	}
	ring, err := unix.Mmap(fd, 0, e.blockSize*e.blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_LOCKED)
	if err != nil {
		// MAP_LOCKED can fail under RLIMIT_MEMLOCK; it only avoids page
		// faults.
		ring, err = unix.Mmap(fd, 0, e.blockSize*e.blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}
	if err != nil {
		return fmt.Errorf("afpacket: mmap ring: %w", err)
	}
	e.ring = ring
	return nil
}

func (e *Endpoint) unmap() {
	if e.ring != nil {
		unix.Munmap(e.ring)
		e.ring = nil
	}
}

// Interface returns the name of the interface the socket is bound to.
func (e *Endpoint) Interface() string { return e.ifname }

// HardwareAddr returns the interface's own MAC address (the kernel's; a
// stack on the endpoint normally uses a different one).
func (e *Endpoint) HardwareAddr() net.HardwareAddr { return e.hwaddr }

// Mode returns the receive mode in use (never ModeDefault).
func (e *Endpoint) Mode() Mode { return e.mode }

// Medium returns link.Ethernet.
func (e *Endpoint) Medium() link.Medium { return link.Ethernet }

// MTU returns the interface's MTU when the socket was opened.
func (e *Endpoint) MTU() int { return e.mtu }

// Caps returns the offloads of the virtio-net header — link.CapRxChecksumValid,
// CapGRO, CapTxChecksum, CapTSO and CapUSO — or 0 with Config.NoOffloads
// (frames are then complete: partial checksums are completed, GSO
// super-frames dropped).
func (e *Endpoint) Caps() link.Caps {
	if !e.offload {
		return 0
	}
	return link.CapRxChecksumValid | link.CapGRO | link.CapTxChecksum | link.CapTSO | link.CapUSO
}

// BatchSize returns Config.BatchSize (64 by default).
func (e *Endpoint) BatchSize() int { return e.batch }

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "afpacket", Err: err}
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	e.fd.Control(func(fd int) {
		// PACKET_STATISTICS resets the kernel's counters as it reads
		// them; they are added up here.
		if e.mode == ModeRing {
			if st, err := unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
				e.rxKernelDrops.Add(uint64(st.Drops))
			}
		} else if st, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			e.rxKernelDrops.Add(uint64(st.Drops))
		}
	})
	return Stats{
		RxFrames: e.rxFrames.Load(), RxBytes: e.rxBytes.Load(),
		TxFrames: e.txFrames.Load(), TxBytes: e.txBytes.Load(),
		RxTooBig: e.rxTooBig.Load(), RxGSO: e.rxGSO.Load(), RxCsumCompleted: e.rxCsum.Load(),
		RxCoalesced: e.merged.Load(), RxSplit: e.rxSplit.Load(), RxBadOffload: e.rxBadOffload.Load(),
		RxKernelDrops: e.rxKernelDrops.Load(), RxErrors: e.rxErrors.Load(),
		TxDropped: e.txDropped.Load(), TxTooBig: e.txTooBig.Load(), TxGSO: e.txGSO.Load(),
	}
}

// ReadBatch blocks until at least one frame has arrived and returns up to
// len(pkts) frames. Frames that do not fit their buffer are dropped and
// counted. With offloads, super-frames and partial checksums reach the
// caller with their link.Offload, UDP super-datagrams are cut into
// datagrams, and TCP segments are coalesced (GRO); with NoOffloads,
// partial checksums are completed and super-frames dropped. After Close
// it returns an error wrapping net.ErrClosed.
func (e *Endpoint) ReadBatch(pkts []link.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	e.rmu.Lock()
	defer e.rmu.Unlock()
	if e.fd.Closed() {
		return 0, opError("read", net.ErrClosed)
	}
	e.rpkts, e.rn, e.rerr = pkts, 0, nil
	if e.split != nil && e.split.Len() > 0 {
		// What waits to be cut goes first; read more (without
		// waiting) only once it has all gone.
		e.fillSplit()
	}
	var err error
	if e.rn < len(pkts) && (e.split == nil || e.split.Len() == 0) {
		err = e.fd.Read(e.readFn)
	}
	n := e.rn
	e.rpkts = nil
	if err == nil {
		err = e.rerr
	}
	if n > 1 && e.gro != nil {
		n = e.gro.Coalesce(pkts[:n])
		e.merged.Store(e.gro.Merged)
	}
	if n > 0 {
		return n, nil
	}
	if err != nil {
		return 0, opError("read", err)
	}
	return 0, nil
}

// fillSplit hands out what waits in e.split into e.rpkts[e.rn:].
func (e *Endpoint) fillSplit() {
	n, tooBig := e.split.Fill(e.rpkts[e.rn:])
	e.rn += n
	e.rxTooBig.Add(uint64(tooBig))
}

// accept decides what becomes of a frame just received into p with the
// virtio-net header's Offload off (decoded, or the zero Offload with the
// ring's TP_STATUS_CSUMNOTREADY said in csumNotReady). It reports whether
// p is to be handed to the caller; otherwise the frame was dropped
// (counted) or queued for cutting.
func (e *Endpoint) accept(p *link.Packet, off link.Offload) bool {
	if off.GSOType != link.GSONone {
		e.rxGSO.Add(1)
		if !e.offload {
			e.rxTooBig.Add(1)
			return false
		}
	}
	switch off.GSOType {
	case link.GSONone, link.GSOTCPv4, link.GSOTCPv6:
	case link.GSOUDPL4:
		e.queueSplit(p, off)
		return false
	default:
		e.rxBadOffload.Add(1)
		return false
	}
	if e.split != nil && e.split.Len() > 0 && isUDP(p.Frame()) {
		// Behind a super-datagram still being cut: wait in line.
		e.queueSplit(p, off)
		return false
	}
	p.Offload = off
	if off.NeedsCsum && !e.offload {
		if !vnet.CompleteChecksum(p.Frame(), int(off.CsumStart), int(off.CsumOffset)) {
			e.rxErrors.Add(1)
			return false
		}
		e.rxCsum.Add(1)
		p.Offload = link.Offload{}
	}
	e.rxFrames.Add(1)
	e.rxBytes.Add(uint64(p.N))
	return true
}

// queueSplit puts a UDP frame in line to be cut into datagrams.
func (e *Endpoint) queueSplit(p *link.Packet, off link.Offload) {
	if e.split == nil {
		e.split = gso.NewQueue(link.Ethernet, 8)
	}
	if !e.split.Push(p.Frame(), off) {
		e.rxBadOffload.Add(1)
		return
	}
	if off.GSOType != link.GSONone {
		e.rxSplit.Add(1)
	}
	e.rxFrames.Add(1)
	e.rxBytes.Add(uint64(p.N))
}

// isUDP reports whether an Ethernet frame carries UDP over IPv4 or IPv6
// (without an 802.1Q tag, as the kernel hands frames to a packet socket).
func isUDP(f []byte) bool {
	if len(f) < 34 {
		return false
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		return f[23] == unix.IPPROTO_UDP
	case 0x86dd:
		return len(f) >= 54 && f[20] == unix.IPPROTO_UDP
	}
	return false
}

// readMmsg receives one batch with recvmmsg(2) into e.rpkts[e.rn:]:
// iovecs of a virtio-net header and the caller's buffer per frame.
func (e *Endpoint) readMmsg(fd int) bool {
	for {
		free := e.rpkts[e.rn:]
		k := min(len(free), len(e.rmsgs))
		for i := 0; i < k; i++ {
			p := &free[i]
			iov := e.riov[2*i : 2*i+2]
			iov[0].Base = &e.rhdrs[vnet.Len*i]
			iov[0].SetLen(vnet.Len)
			iov[1].Base = nil
			if len(p.Buf) > 0 {
				iov[1].Base = &p.Buf[0]
			}
			iov[1].SetLen(len(p.Buf))
			m := &e.rmsgs[i]
			m.Hdr = unix.Msghdr{Iov: &iov[0]}
			m.Hdr.SetIovlen(2)
			m.Len = 0
		}
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&e.rmsgs[0])), uintptr(k), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN:
			return e.rn > 0
		case unix.EINTR:
			continue
		default:
			e.rxErrors.Add(1)
			e.rerr = os.NewSyscallError("recvmmsg", errno)
			return true
		}
		// Compact the good frames to the front of the batch.
		n := 0
		for i := 0; i < int(r); i++ {
			m := &e.rmsgs[i]
			size := int(m.Len) - vnet.Len
			if size < 0 {
				continue
			}
			off := vnet.Decode(e.rhdrs[vnet.Len*i:])
			if m.Hdr.Flags&unix.MSG_TRUNC != 0 || size > len(free[i].Buf) {
				if off.GSOType != link.GSONone {
					e.rxGSO.Add(1)
				}
				e.rxTooBig.Add(1)
				continue
			}
			free[i].N = size
			if !e.accept(&free[i], off) {
				continue
			}
			if n != i {
				// Swap buffers so the caller's batch keeps all of its
				// own buffers, good frames first.
				free[n], free[i] = free[i], free[n]
			}
			n++
		}
		e.rn += n
		if e.split != nil && e.split.Len() > 0 {
			e.fillSplit()
		}
		if e.rn == 0 {
			continue // only bad or queued frames: read again
		}
		return true
	}
}

// Block descriptor and frame header offsets of TPACKET_V3
// (include/uapi/linux/if_packet.h: struct tpacket_block_desc with struct
// tpacket_hdr_v1, and struct tpacket3_hdr).
const (
	blkStatus   = 8  // block_status
	blkNumPkts  = 12 // num_pkts
	blkFirstOff = 16 // offset_to_first_pkt
)

func (e *Endpoint) blockStatus(b int) *uint32 {
	return (*uint32)(unsafe.Pointer(&e.ring[b*e.blockSize+blkStatus]))
}

// readRing copies frames out of the ring's blocks the kernel has handed
// over, and gives each block back as soon as it is read.
func (e *Endpoint) readRing(fd int) bool {
	for e.rn < len(e.rpkts) {
		base := e.cur * e.blockSize
		if e.left == 0 {
			if atomic.LoadUint32(e.blockStatus(e.cur))&unix.TP_STATUS_USER == 0 {
				break
			}
			e.left = binary.NativeEndian.Uint32(e.ring[base+blkNumPkts:])
			e.off = int(binary.NativeEndian.Uint32(e.ring[base+blkFirstOff:]))
			if e.left == 0 {
				e.releaseBlock()
				continue
			}
		}
		h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&e.ring[base+e.off]))
		start := base + e.off + int(h.Mac)
		frame := e.ring[start : start+int(h.Snaplen)]
		status, wireLen := h.Status, int(h.Len)
		var off link.Offload
		if e.vnet && start-vnet.Len >= base {
			// tpacket_rcv puts the header right before the frame.
			off = vnet.Decode(e.ring[start-vnet.Len : start])
		}
		e.off += int(h.Next_offset)
		e.left--
		p := &e.rpkts[e.rn]
		switch {
		case !e.vnet && status&unix.TP_STATUS_GSO_TCP != 0:
			e.rxGSO.Add(1)
			e.rxTooBig.Add(1)
		case wireLen > len(frame) || len(frame) > len(p.Buf):
			if off.GSOType != link.GSONone || status&unix.TP_STATUS_GSO_TCP != 0 {
				e.rxGSO.Add(1)
			}
			e.rxTooBig.Add(1)
		default:
			p.N = copy(p.Buf, frame)
			if !e.vnet && status&unix.TP_STATUS_CSUMNOTREADY != 0 {
				if !completeIPv4(p.Buf[:p.N]) {
					e.rxErrors.Add(1)
					break
				}
				e.rxCsum.Add(1)
			}
			if e.accept(p, off) {
				e.rn++
			} else if e.split != nil && e.split.Len() > 0 {
				e.fillSplit()
			}
		}
		if e.left == 0 {
			e.releaseBlock()
		}
		if e.split != nil && e.split.Len() > 0 {
			break // the rest of the batch is the cut datagrams'
		}
	}
	// Wait (return false) only when nothing was read; the kernel's
	// wake-up comes when it retires a block (prb_close_block calls
	// sk_data_ready), after the poller was armed for this call.
	return e.rn > 0
}

// releaseBlock gives the current block back to the kernel and moves on.
func (e *Endpoint) releaseBlock() {
	atomic.StoreUint32(e.blockStatus(e.cur), unix.TP_STATUS_KERNEL)
	e.cur = (e.cur + 1) % e.blocks
	e.left = 0
}

// completeIPv4 finishes the partial TCP or UDP checksum of an
// Ethernet/IPv4 frame (the ring reports TP_STATUS_CSUMNOTREADY without
// the offsets a virtio-net header would give).
func completeIPv4(f []byte) bool {
	if len(f) < 34 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return false
	}
	start := 14 + int(f[14]&0x0f)*4
	switch f[23] {
	case unix.IPPROTO_TCP:
		return vnet.CompleteChecksum(f, start, 16)
	case unix.IPPROTO_UDP:
		return vnet.CompleteChecksum(f, start, 6)
	}
	return false
}

// WriteBatch sends the frames with sendmmsg(2), each behind a virtio-net
// header that carries its link.Offload (with offloads). A frame longer
// than MTU plus the Ethernet header (and an 802.1Q tag) stops the batch
// with link.ErrFrameTooBig, unless it is a super-frame (TCP or UDP) of at
// most link.MaxSuperFrame bytes on an endpoint with offloads. If the socket's send buffer stays full for
// WriteTimeout the rest of the batch is dropped and counted. WriteBatch
// keeps no buffer.
func (e *Endpoint) WriteBatch(pkts []link.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	if e.fd.Closed() {
		return 0, opError("write", net.ErrClosed)
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	e.wpkts, e.wn, e.werr = pkts, 0, nil
	timedOut, err := e.fd.WriteBounded(WriteTimeout, e.writeFn)
	if timedOut {
		e.txDropped.Add(uint64(len(pkts) - e.wn))
		e.wn = len(pkts)
	}
	n := e.wn
	e.wpkts = nil
	if err == nil {
		err = e.werr
	}
	if err != nil {
		return n, opError("write", err)
	}
	return n, nil
}

// writeMmsg sends e.wpkts[e.wn:] in sendmmsg batches; it returns false
// (wait for room, then call again) when the send buffer is full.
func (e *Endpoint) writeMmsg(fd int) bool {
	maxLen := e.mtu + 14 + 4
	for e.wn < len(e.wpkts) {
		k := 0
		for e.wn+k < len(e.wpkts) && k < len(e.wmsgs) {
			p := &e.wpkts[e.wn+k]
			if p.N < 0 || p.N > len(p.Buf) {
				e.werr = errors.New("afpacket: packet length out of range")
				break
			}
			super := e.offload && p.Offload.GSOType != link.GSONone
			if p.N > maxLen && !(super && p.N <= link.MaxSuperFrame) {
				e.txTooBig.Add(1)
				e.werr = link.ErrFrameTooBig
				break
			}
			hdr := e.whdrs[vnet.Len*k : vnet.Len*(k+1)]
			if e.offload {
				vnet.Encode(hdr, p.Offload)
			} else {
				vnet.Encode(hdr, link.Offload{}) // a complete frame
			}
			iov := e.wiov[2*k : 2*k+2]
			iov[0].Base = &hdr[0]
			iov[0].SetLen(vnet.Len)
			iov[1].Base = nil
			if p.N > 0 {
				iov[1].Base = &p.Buf[0]
			}
			iov[1].SetLen(p.N)
			m := &e.wmsgs[k]
			if e.vnet {
				m.Hdr = unix.Msghdr{Iov: &iov[0]}
				m.Hdr.SetIovlen(2)
			} else {
				m.Hdr = unix.Msghdr{Iov: &iov[1]}
				m.Hdr.SetIovlen(1)
			}
			k++
		}
		if k == 0 {
			return true // e.werr says why
		}
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&e.wmsgs[0])), uintptr(k), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			for i := 0; i < int(r); i++ {
				p := &e.wpkts[e.wn+i]
				e.txFrames.Add(1)
				e.txBytes.Add(uint64(p.N))
				if e.offload && p.Offload.GSOType != link.GSONone {
					e.txGSO.Add(1)
				}
			}
			e.wn += int(r)
			if e.werr != nil && int(r) == k {
				return true
			}
		case unix.EAGAIN, unix.ENOBUFS:
			return false // WriteBounded waits, at most WriteTimeout
		case unix.EINTR:
		default:
			// The first frame was refused (ENETDOWN while the
			// interface is down, EINVAL, ...): drop it, go on.
			e.txDropped.Add(1)
			e.wn++
		}
	}
	return true
}

// Close closes the socket: a blocked ReadBatch returns net.ErrClosed, the
// promiscuous membership is dropped and the ring unmapped. A second Close
// returns an error wrapping net.ErrClosed.
func (e *Endpoint) Close() error {
	if err := e.fd.Close(); err != nil {
		return opError("close", err)
	}
	// Unmap only once no ReadBatch is looking at the ring.
	e.rmu.Lock()
	e.unmap()
	e.rmu.Unlock()
	for _, q := range e.queues {
		if q != link.Endpoint(e) {
			q.Close()
		}
	}
	return nil
}
