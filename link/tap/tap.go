//go:build linux

package tap

import (
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

// Config describes the device to open. Name and MTU are the usual
// settings: tap.Open(tap.Config{Name: "tap0", MTU: 1500}).
type Config struct {
	// Name is the device's name. If a device of that name exists (a
	// persistent one made by `ip tuntap add`, or one another process
	// holds with IFF_MULTI_QUEUE), Open attaches to it; otherwise it
	// creates it. "" lets the kernel pick one (tap0, tap1, ... or tun0,
	// ...); Name reports it.
	Name string
	// TUN opens a TUN device (bare IP packets, link.IP) instead of a TAP
	// device (Ethernet frames, link.Ethernet).
	TUN bool
	// MTU, if not 0, is set on the device (SIOCSIFMTU). 0 keeps the
	// device's MTU (1500 for a new one).
	MTU int
	// TxQueueLen is the device's transmit queue length (txqueuelen):
	// the frames the kernel holds for the endpoint to read, beyond which
	// it drops what it sends. 0 means DefaultTxQueueLen for a device
	// Open creates and leaves an existing device's as it is.
	TxQueueLen int
	// Netns, if not "", opens the device inside that network namespace:
	// a name under /var/run/netns (as `ip netns add` makes) or a path
	// such as /proc/PID/ns/net. The device lives there, and the
	// descriptor keeps working from this process's namespace.
	Netns string
	// Persist keeps the device after Close (TUNSETPERSIST). Without it, a
	// device Open created disappears on Close, and a persistent device
	// Open attached to stays as it was.
	Persist bool
	// BatchSize is the most frames one ReadBatch returns; 0 means 64.
	BatchSize int
	// NoOffloads opens the device without the virtio-net header and with
	// every offload off (TUNSETOFFLOAD 0): frames of at most MTU plus the
	// link header, with complete checksums, both ways; Caps is 0.
	//
	// By default the device is opened with IFF_VNET_HDR and the kernel's
	// offloads on — checksum offload, TSO for IPv4 and IPv6 with ECN,
	// and, on kernels that have them (6.2 and later), UDP segmentation
	// for both (TUNSETOFFLOAD TUN_F_CSUM|TSO4|TSO6|TSO_ECN|USO4|USO6) —
	// and each frame's virtio-net header is carried in link.Offload: the
	// kernel sends TCP super-frames of up to 64 KiB with partial
	// checksums (read buffers need room for link.MaxSuperFrame), and
	// takes them (CapTSO, CapTxChecksum, and CapUSO where the kernel has
	// it). See the package documentation.
	NoOffloads bool
	// NoGRO leaves received TCP segments as the kernel sent them: without
	// it, consecutive segments of a flow within a batch are merged into
	// one super-frame (package internal/gro) before the stack sees them.
	// It has no effect with NoOffloads.
	NoGRO bool
	// Queues, if more than 1, opens the device with IFF_MULTI_QUEUE and
	// that many descriptors (queues): the kernel spreads the frames it
	// sends over them by flow, and each queue is an Endpoint with its own
	// reader and writer state (Queues, link.MultiQueue). The Endpoint
	// Open returns is queue 0; closing it closes them all.
	Queues int
}

// Stats are the counters of an Endpoint.
type Stats struct {
	RxFrames, RxBytes uint64 // frames ReadBatch returned
	TxFrames, TxBytes uint64 // frames WriteBatch wrote
	// RxTooBig counts frames dropped because they did not fit the
	// caller's buffer (for example GSO super-frames from a device whose
	// offloads another process turned on).
	RxTooBig uint64
	// RxErrors counts failed reads other than "would block".
	RxErrors uint64
	// TxDropped counts frames WriteBatch dropped: the device refused
	// them, or it stayed unwritable for WriteTimeout.
	TxDropped uint64
	// TxTooBig counts frames longer than MTU plus the link header that
	// WriteBatch refused with link.ErrFrameTooBig.
	TxTooBig uint64
	// RxGSO counts the super-frames the kernel sent (its TSO or UDP
	// segmentation left to the device), TxGSO those written.
	RxGSO, TxGSO uint64
	// RxCoalesced counts the segments GRO merged into the one before
	// them (so RxFrames minus RxCoalesced frames reached the stack).
	RxCoalesced uint64
	// RxSplit counts UDP super-datagrams cut into datagrams here (a UDP
	// socket takes them one at a time), RxBadOffload frames dropped
	// because their virtio-net header did not match them.
	RxSplit, RxBadOffload uint64
}

// DefaultTxQueueLen is the transmit queue length Open gives a device it
// creates: room for a whole 4 MiB window of full-sized frames (the
// stack's default receive buffer), about what an AF_PACKET socket's
// 8 MiB receive buffer holds. The kernel's own default for TUN and TAP
// devices, 500 frames, overflows whenever the kernel sends a window
// faster than a reader that works in batches of 64 drains it; the frames
// it drops cost the sender loss recovery, and while the reader is short
// of CPU, one retransmission timeout after another (see
// TestBurstNotDropped).
const DefaultTxQueueLen = 4096

// WriteTimeout is how long WriteBatch waits for a device that cannot take
// a frame (EAGAIN) before dropping the rest of the batch.
const WriteTimeout = 50 * time.Millisecond

// Endpoint is an open TAP or TUN device.
type Endpoint struct {
	fd      *rawfd.FD
	name    string
	medium  link.Medium
	mtu     int
	batch   int
	vnet    bool
	uso     bool // the kernel took TUN_F_USO4|USO6
	created bool

	// Reader state: one ReadBatch at a time (the link contract), so the
	// function handed to the poller is made once and keeps its state
	// here, and a read allocates nothing.
	rmu    sync.Mutex
	rpkts  []link.Packet
	rn     int
	rerr   error
	riov   [3]unix.Iovec
	rhdr   [vnet.Len]byte
	spill  []byte // catches the part of a frame too big for its buffer
	readFn func(fd int) bool
	gro    *gro.Coalescer // nil: no GRO
	// UDP super-datagrams being cut into datagrams, kept across
	// ReadBatch calls when the batch fills first; made on first use.
	split *gso.Queue

	// Writer state, the same way.
	wmu     sync.Mutex
	wpkts   []link.Packet
	wn      int
	werr    error
	wiov    [2]unix.Iovec
	whdr    [vnet.Len]byte
	writeFn func(fd int) bool

	rxFrames, rxBytes, txFrames, txBytes,
	rxTooBig, rxErrors, txDropped, txTooBig,
	rxGSO, txGSO, rxSplit, rxBadOffload, merged atomic.Uint64

	// queues are the device's queues (Config.Queues), this one first;
	// nil on a single-queue device and on the queues after the first.
	queues []link.Endpoint
}

var (
	_ link.Endpoint   = (*Endpoint)(nil)
	_ link.MultiQueue = (*Endpoint)(nil)
)

// Queues returns the device's queues (link.MultiQueue): e and, with
// Config.Queues, the others; on a single-queue device just e.
func (e *Endpoint) Queues() []link.Endpoint {
	if e.queues == nil {
		return []link.Endpoint{e}
	}
	return e.queues
}

// Open opens (creating it if needed) the TAP or TUN device cfg describes,
// sets its MTU when cfg.MTU is set, and brings it up. It needs
// CAP_NET_ADMIN in the device's namespace (root, or a user namespace of
// one's own with /dev/net/tun readable and writable: see the package
// documentation).
func Open(cfg Config) (*Endpoint, error) {
	if len(cfg.Name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tap: name %q longer than %d bytes", cfg.Name, unix.IFNAMSIZ-1)
	}
	e := &Endpoint{medium: link.Ethernet, batch: cfg.BatchSize, vnet: !cfg.NoOffloads}
	if cfg.TUN {
		e.medium = link.IP
	}
	if e.batch <= 0 {
		e.batch = 64
	}
	fds := []int{}
	err := netns.Do(cfg.Netns, func() error {
		fd, name, mtu, created, uso, err := openDevice(cfg)
		if err != nil {
			return err
		}
		e.name, e.mtu, e.created, e.uso = name, mtu, created, uso
		fds = append(fds, fd)
		// The other queues attach to the device by its name.
		for len(fds) < cfg.Queues {
			fd, err := openQueue(cfg, name)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
		}
		return nil
	})
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, err
	}
	qs := make([]*Endpoint, len(fds))
	for i, fd := range fds {
		q := e
		if i > 0 {
			q = &Endpoint{medium: e.medium, batch: e.batch, vnet: e.vnet,
				name: e.name, mtu: e.mtu, uso: e.uso}
		}
		if q.fd, err = rawfd.New(fd, fmt.Sprintf("tap %s queue %d", e.name, i)); err != nil {
			for _, p := range qs[:i] {
				p.fd.Close()
			}
			for _, fd := range fds[i+1:] {
				unix.Close(fd)
			}
			return nil, err
		}
		q.spill = make([]byte, 65536+vnet.Len)
		q.readFn = q.readSome
		q.writeFn = q.writeSome
		if q.vnet && !cfg.NoGRO {
			q.gro = gro.New(q.medium)
		}
		qs[i] = q
	}
	if len(qs) > 1 {
		for _, q := range qs {
			e.queues = append(e.queues, q)
		}
	}
	return e, nil
}

// openQueue opens another queue of the multi-queue device name: the
// TUNSETIFF of the first with the same flags, then the same virtio-net
// header and offloads (tuntap.rst, "Multiqueue tuntap interface").
func openQueue(cfg Config, name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("tap: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(tunFlags(cfg))
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		if err != nil {
			err = fmt.Errorf("tap: TUNSETIFF %q (another queue): %w", name, err)
		}
	}
	if err == nil && !cfg.NoOffloads {
		err = unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnet.Len)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// tunFlags are the TUNSETIFF flags cfg asks for.
func tunFlags(cfg Config) uint16 {
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if cfg.TUN {
		flags = unix.IFF_TUN | unix.IFF_NO_PI
	}
	if !cfg.NoOffloads {
		flags |= unix.IFF_VNET_HDR
	}
	if cfg.Queues > 1 {
		flags |= unix.IFF_MULTI_QUEUE
	}
	return flags
}

// openDevice does the work of Open in the device's namespace: the calls
// of Documentation/networking/tuntap.rst.
func openDevice(cfg Config) (fd int, name string, mtu int, created, uso bool, err error) {
	existed := false
	if cfg.Name != "" {
		_, ierr := netns.Index(cfg.Name)
		existed = ierr == nil
	}
	fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, "", 0, false, false, fmt.Errorf("tap: open /dev/net/tun: %w (needs CAP_NET_ADMIN and access to /dev/net/tun)", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
			fd = -1
		}
	}()
	ifr, err := unix.NewIfreq(cfg.Name)
	if err != nil {
		return
	}
	ifr.SetUint16(tunFlags(cfg))
	if err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		err = fmt.Errorf("tap: TUNSETIFF %q: %w", cfg.Name, err)
		return
	}
	name = ifr.Name()
	created = !existed
	if !cfg.NoOffloads {
		if err = unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnet.Len); err != nil {
			err = fmt.Errorf("tap: TUNSETVNETHDRSZ: %w", err)
			return
		}
		// USO first; kernels before 6.2 refuse the flags they do not
		// know with EINVAL (drivers/net/tun.c set_offload).
		off := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN
		uso = true
		if unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, off|unix.TUN_F_USO4|unix.TUN_F_USO6) != nil {
			uso = false
			if err = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, off); err != nil {
				err = fmt.Errorf("tap: TUNSETOFFLOAD: %w", err)
				return
			}
		}
	} else {
		// Always: a persistent device keeps the offloads its previous
		// user set, and without a virtio header nothing would tell us
		// a frame's checksum is partial (environment notes §2).
		if err = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0); err != nil {
			err = fmt.Errorf("tap: TUNSETOFFLOAD 0: %w", err)
			return
		}
	}
	if cfg.Persist {
		if err = unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
			err = fmt.Errorf("tap: TUNSETPERSIST: %w", err)
			return
		}
	}
	if cfg.MTU > 0 {
		if err = netns.SetMTU(name, cfg.MTU); err != nil {
			return
		}
	}
	qlen := cfg.TxQueueLen
	if qlen == 0 && created {
		qlen = DefaultTxQueueLen
	}
	if qlen > 0 {
		if err = netns.SetTxQueueLen(name, qlen); err != nil {
			return
		}
	}
	if mtu, err = netns.MTU(name); err != nil {
		return
	}
	err = netns.SetUp(name)
	return
}

// Name returns the device's name.
func (e *Endpoint) Name() string { return e.name }

// Created reports whether Open created the device (rather than attaching
// to an existing one).
func (e *Endpoint) Created() bool { return e.created }

// Medium returns link.Ethernet for a TAP device, link.IP for a TUN device.
func (e *Endpoint) Medium() link.Medium { return e.medium }

// MTU returns the device's MTU when it was opened.
func (e *Endpoint) MTU() int { return e.mtu }

// Caps returns the virtio-net offloads — link.CapRxChecksumValid,
// CapGRO, CapTxChecksum, CapTSO, and CapUSO where the kernel has it — or
// 0 with Config.NoOffloads.
func (e *Endpoint) Caps() link.Caps {
	if !e.vnet {
		return 0
	}
	c := link.CapRxChecksumValid | link.CapGRO | link.CapTxChecksum | link.CapTSO
	if e.uso {
		c |= link.CapUSO
	}
	return c
}

// BatchSize returns Config.BatchSize (64 by default).
func (e *Endpoint) BatchSize() int { return e.batch }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	return Stats{
		RxFrames: e.rxFrames.Load(), RxBytes: e.rxBytes.Load(),
		TxFrames: e.txFrames.Load(), TxBytes: e.txBytes.Load(),
		RxTooBig: e.rxTooBig.Load(), RxErrors: e.rxErrors.Load(),
		TxDropped: e.txDropped.Load(), TxTooBig: e.txTooBig.Load(),
		RxGSO: e.rxGSO.Load(), TxGSO: e.txGSO.Load(), RxCoalesced: e.rxCoalesced(),
		RxSplit: e.rxSplit.Load(), RxBadOffload: e.rxBadOffload.Load(),
	}
}

// rxCoalesced reads the GRO counter (kept by the Coalescer, under rmu).
func (e *Endpoint) rxCoalesced() uint64 {
	if e.gro == nil {
		return 0
	}
	return e.merged.Load()
}

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tap", Err: err}
}

// ReadBatch blocks until at least one frame has arrived, then reads up to
// len(pkts) frames, one read(2) each, until the device has none ready. A
// frame that does not fit its buffer is dropped and counted (RxTooBig).
// With offloads, UDP super-datagrams are cut into datagrams and TCP
// segments are coalesced (GRO) before it returns. After Close it returns
// an error wrapping net.ErrClosed.
func (e *Endpoint) ReadBatch(pkts []link.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	e.rmu.Lock()
	defer e.rmu.Unlock()
	e.rpkts, e.rn, e.rerr = pkts, 0, nil
	if e.split != nil && e.split.Len() > 0 {
		// The rest of a super-datagram first; read more (without
		// waiting) only if it fits.
		e.fillSplit()
	}
	var err error
	if e.rn < len(pkts) {
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

// readSome reads frames into e.rpkts[e.rn:] until the batch is full or
// the device would block; it returns false (wait, then call again) only
// when it read nothing.
func (e *Endpoint) readSome(fd int) bool {
	// iovecs: [0] the virtio-net header (with offloads), [1] the
	// caller's buffer, [2] the spill buffer that tells a frame too big
	// for [1] from one that fits exactly.
	iov, hdr := e.riov[1:], 0
	if e.vnet {
		iov, hdr = e.riov[:], vnet.Len
		e.riov[0].Base = &e.rhdr[0]
		e.riov[0].SetLen(vnet.Len)
	}
	e.riov[2].Base = &e.spill[0]
	e.riov[2].SetLen(len(e.spill))
	for e.rn < len(e.rpkts) && (e.split == nil || e.split.Len() == 0) {
		p := &e.rpkts[e.rn]
		e.riov[1].Base = nil
		if len(p.Buf) > 0 {
			e.riov[1].Base = &p.Buf[0]
		}
		e.riov[1].SetLen(len(p.Buf))
		k, _, errno := unix.Syscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		switch errno {
		case 0:
		case unix.EAGAIN:
			return e.rn > 0
		case unix.EINTR:
			continue
		default:
			e.rxErrors.Add(1)
			e.rerr = os.NewSyscallError("readv", errno)
			return true
		}
		size := int(k) - hdr
		if size < 0 {
			continue
		}
		if size > len(p.Buf) {
			e.rxTooBig.Add(1)
			continue
		}
		e.rxFrames.Add(1)
		e.rxBytes.Add(uint64(size))
		p.N = size
		p.Offload = link.Offload{}
		if !e.vnet {
			e.rn++
			continue
		}
		p.Offload = vnet.Decode(e.rhdr[:])
		switch p.Offload.GSOType {
		case link.GSONone:
		case link.GSOTCPv4, link.GSOTCPv6:
			e.rxGSO.Add(1)
		case link.GSOUDPL4:
			// A UDP socket takes datagrams one at a time: cut it
			// here, into this slot and the ones after it.
			e.rxGSO.Add(1)
			if e.split == nil {
				e.split = gso.NewQueue(e.medium, 1)
			}
			if !e.split.Push(p.Frame(), p.Offload) {
				e.rxBadOffload.Add(1)
				continue
			}
			e.rxSplit.Add(1)
			e.fillSplit()
			continue
		default:
			e.rxBadOffload.Add(1)
			continue
		}
		e.rn++
	}
	return true
}

// fillSplit hands out datagrams of the super-datagram in progress into
// e.rpkts[e.rn:].
func (e *Endpoint) fillSplit() {
	n, tooBig := e.split.Fill(e.rpkts[e.rn:])
	e.rn += n
	e.rxTooBig.Add(uint64(tooBig))
}

// WriteBatch writes the frames, one write(2) each (writev with the
// virtio-net header when Config.VnetHdr is set). A frame longer than the
// MTU plus the link header stops the batch with link.ErrFrameTooBig,
// unless it is a super-frame the device segments (TCP, or UDP where the
// kernel has USO), of at most link.MaxSuperFrame bytes. If the device
// cannot take a frame for WriteTimeout, the rest of the batch is dropped
// and counted (TxDropped), as a full NIC queue drops. WriteBatch keeps no
// buffer.
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
		// Drop what is left, as a NIC does with a full queue.
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

// writeSome writes e.wpkts[e.wn:]; it returns false (wait until the
// device is writable, then call again) when the device would block.
func (e *Endpoint) writeSome(fd int) bool {
	maxLen := e.mtu + e.medium.HeaderLen()
	for e.wn < len(e.wpkts) {
		p := &e.wpkts[e.wn]
		if p.N < 0 || p.N > len(p.Buf) {
			e.werr = errors.New("tap: packet length out of range")
			return true
		}
		if p.N > maxLen && !e.superOK(p) {
			e.txTooBig.Add(1)
			e.werr = link.ErrFrameTooBig
			return true
		}
		var errno unix.Errno
		if e.vnet {
			if p.Offload.GSOType != link.GSONone {
				e.txGSO.Add(1)
			}
			vnet.Encode(e.whdr[:], p.Offload)
			e.wiov[0].Base = &e.whdr[0]
			e.wiov[0].SetLen(vnet.Len)
			e.wiov[1].Base = nil
			if p.N > 0 {
				e.wiov[1].Base = &p.Buf[0]
			}
			e.wiov[1].SetLen(p.N)
			_, _, errno = unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&e.wiov[0])), 2)
		} else {
			var b unsafe.Pointer
			if p.N > 0 {
				b = unsafe.Pointer(&p.Buf[0])
			}
			_, _, errno = unix.Syscall(unix.SYS_WRITE, uintptr(fd), uintptr(b), uintptr(p.N))
		}
		switch errno {
		case 0:
			e.txFrames.Add(1)
			e.txBytes.Add(uint64(p.N))
		case unix.EAGAIN:
			return false // WriteBounded waits, at most WriteTimeout
		case unix.EINTR:
			continue
		default:
			// The device refused this frame (EINVAL for a malformed
			// one, EIO while it is down): drop it and go on.
			e.txDropped.Add(1)
		}
		e.wn++
	}
	return true
}

// superOK reports whether p may exceed the MTU: a super-frame of a kind the
// device segments, no longer than link.MaxSuperFrame.
func (e *Endpoint) superOK(p *link.Packet) bool {
	if !e.vnet || p.N > link.MaxSuperFrame {
		return false
	}
	switch p.Offload.GSOType {
	case link.GSOTCPv4, link.GSOTCPv6:
		return true
	case link.GSOUDPL4:
		return e.uso
	}
	return false
}

// Close closes the device: a blocked ReadBatch returns net.ErrClosed, and
// a device Open created goes away unless Config.Persist was set. Close
// returns an error wrapping net.ErrClosed if called twice.
func (e *Endpoint) Close() error {
	if err := e.fd.Close(); err != nil {
		return opError("close", err)
	}
	for _, q := range e.queues {
		if q != link.Endpoint(e) {
			q.Close()
		}
	}
	return nil
}
