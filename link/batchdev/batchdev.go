// Package batchdev makes a link.Endpoint of any packet device with the
// shape of wireguard-go's tun.Device — Read(bufs, sizes, offset),
// Write(bufs, offset), BatchSize, MTU — so that a stack can sit where
// wireguard-go's netstack (or another program's TUN reader) sits. The
// interface is declared here, with only the methods a link needs, so
// neither this module nor its users depend on wireguard-go: a
// tun.Device satisfies Device as it is.
//
// Frames are bare IP packets (link.IP). Such devices hand over one
// segment per packet with complete checksums (wireguard-go's Linux TUN
// cuts the kernel's super-frames before Read returns them, and merges
// what it writes itself), so the endpoint offers the stack GRO: the TCP
// segments of a read batch are merged by package internal/gro, as
// link/tap merges its reads, unless Config.NoGRO. Nothing else is
// offloaded: written packets are plain segments.
package batchdev

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/ustack/ustack/internal/gro"
	"github.com/ustack/ustack/link"
)

// Device is a packet device in batches, as wireguard-go's tun.Device
// (golang.zx2c4.com/wireguard/tun) has it.
type Device interface {
	// Read reads up to len(bufs) packets, each into bufs[i][offset:],
	// their sizes into sizes, and returns how many; it blocks until at
	// least one is there or the device fails or closes.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// Write writes the packets bufs[i][offset:]; the device may use the
	// bytes before offset for a header of its own.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the most packets one Read or Write takes.
	BatchSize() int
	// MTU is the device's MTU.
	MTU() (int, error)
	// Close closes the device; a blocked Read returns.
	Close() error
}

// Config configures an Endpoint.
type Config struct {
	// Offset is the room left in front of each packet in the buffers
	// passed to Read and Write; a device that writes a header of its
	// own there needs it (wireguard-go's Linux TUN with its virtio-net
	// header needs 10; wireguard-go itself passes 16). With 0 the
	// endpoint reads into and writes from the stack's buffers without a
	// copy; otherwise each packet is copied once.
	Offset int
	// NoGRO hands the stack each segment as read, without merging.
	NoGRO bool
}

// Stats are the endpoint's counters.
type Stats struct {
	RxPackets, RxBytes, TxPackets, TxBytes uint64
	// RxBad counts packets dropped on read: empty, not IP, or longer
	// than the caller's buffer.
	RxBad uint64
	// RxCoalesced counts segments GRO merged into the one before them.
	RxCoalesced uint64
	// TxErrors counts Write calls that failed (their packets are lost,
	// as a full device drops them).
	TxErrors uint64
}

// Endpoint is a link.Endpoint over a Device.
type Endpoint struct {
	dev    Device
	mtu    int
	batch  int
	offset int
	closed atomic.Bool

	rmu   sync.Mutex
	rbufs [][]byte
	rstg  [][]byte // staging buffers with Offset in front (Offset > 0)
	sizes []int
	gro   *gro.Coalescer

	wmu   sync.Mutex
	wbufs [][]byte
	wstg  [][]byte

	rxPackets, rxBytes, txPackets, txBytes, rxBad, rxMerged, txErrors atomic.Uint64
}

var _ link.Endpoint = (*Endpoint)(nil)

// New returns an endpoint over dev, which it owns from now on (Close
// closes it).
func New(dev Device, cfg Config) (*Endpoint, error) {
	mtu, err := dev.MTU()
	if err != nil {
		return nil, fmt.Errorf("batchdev: MTU: %w", err)
	}
	if mtu < 68 || mtu > 65535 {
		return nil, fmt.Errorf("batchdev: MTU %d out of range", mtu)
	}
	if cfg.Offset < 0 {
		return nil, errors.New("batchdev: negative offset")
	}
	e := &Endpoint{dev: dev, mtu: mtu, batch: max(dev.BatchSize(), 1), offset: cfg.Offset}
	e.rbufs = make([][]byte, e.batch)
	e.sizes = make([]int, e.batch)
	e.wbufs = make([][]byte, e.batch)
	if e.offset > 0 {
		e.rstg = make([][]byte, e.batch)
		e.wstg = make([][]byte, e.batch)
	}
	if !cfg.NoGRO {
		e.gro = gro.New(link.IP)
	}
	return e, nil
}

// Medium returns link.IP.
func (e *Endpoint) Medium() link.Medium { return link.IP }

// MTU returns the device's MTU.
func (e *Endpoint) MTU() int { return e.mtu }

// Caps returns link.CapGRO and CapRxChecksumValid (merged segments come
// with their checksum vouched for), or 0 with Config.NoGRO.
func (e *Endpoint) Caps() link.Caps {
	if e.gro == nil {
		return 0
	}
	return link.CapGRO | link.CapRxChecksumValid
}

// BatchSize returns the device's batch size.
func (e *Endpoint) BatchSize() int { return e.batch }

// Stats returns the counters.
func (e *Endpoint) Stats() Stats {
	return Stats{
		RxPackets: e.rxPackets.Load(), RxBytes: e.rxBytes.Load(), TxPackets: e.txPackets.Load(), TxBytes: e.txBytes.Load(),
		RxBad: e.rxBad.Load(), RxCoalesced: e.rxMerged.Load(), TxErrors: e.txErrors.Load(),
	}
}

func (e *Endpoint) err(op string, err error) error {
	if e.closed.Load() {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: "batchdev", Err: err}
}

// ReadBatch reads a batch of packets from the device (at least one,
// waiting for it), drops the malformed ones (RxBad) and merges TCP
// segments (GRO).
func (e *Endpoint) ReadBatch(pkts []link.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	e.rmu.Lock()
	defer e.rmu.Unlock()
	k := min(len(pkts), e.batch)
	for {
		if e.closed.Load() {
			return 0, e.err("read", net.ErrClosed)
		}
		bufs := e.rbufs[:k]
		for i := range bufs {
			if e.offset == 0 {
				bufs[i] = pkts[i].Buf
				continue
			}
			want := e.offset + min(len(pkts[i].Buf), link.MaxSuperFrame)
			if cap(e.rstg[i]) < want {
				e.rstg[i] = make([]byte, want)
			}
			bufs[i] = e.rstg[i][:want]
		}
		n, err := e.dev.Read(bufs, e.sizes[:k], e.offset)
		got := 0
		for i := 0; i < n && i < k; i++ {
			size := e.sizes[i]
			p := &pkts[got]
			if size <= 0 || size > len(p.Buf) || size > len(bufs[i])-e.offset {
				e.rxBad.Add(1)
				continue
			}
			if e.offset > 0 {
				copy(p.Buf, bufs[i][e.offset:e.offset+size])
			} else if got != i {
				// An earlier packet was dropped: move this one's
				// buffer up (the caller's buffers are only reordered).
				pkts[got].Buf, pkts[i].Buf = pkts[i].Buf, pkts[got].Buf
				p = &pkts[got]
			}
			if v := p.Buf[0] >> 4; v != 4 && v != 6 {
				e.rxBad.Add(1)
				continue
			}
			p.N = size
			p.Offload = link.Offload{}
			e.rxPackets.Add(1)
			e.rxBytes.Add(uint64(size))
			got++
		}
		if got > 1 && e.gro != nil {
			got = e.gro.Coalesce(pkts[:got])
			e.rxMerged.Store(e.gro.Merged)
		}
		if got > 0 {
			return got, nil
		}
		if err != nil {
			return 0, e.err("read", err)
		}
	}
}

// WriteBatch writes the packets to the device in one Write call. A
// packet longer than the MTU is refused with link.ErrFrameTooBig.
func (e *Endpoint) WriteBatch(pkts []link.Packet) (int, error) {
	if e.closed.Load() {
		return 0, e.err("write", net.ErrClosed)
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	done := 0
	for done < len(pkts) {
		k := min(len(pkts)-done, e.batch)
		bufs := e.wbufs[:k]
		for i := range bufs {
			p := &pkts[done+i]
			if p.N > e.mtu || p.N < 0 || p.N > len(p.Buf) {
				return done, link.ErrFrameTooBig
			}
			if e.offset == 0 {
				bufs[i] = p.Buf[:p.N]
				continue
			}
			want := e.offset + p.N
			if cap(e.wstg[i]) < e.offset+e.mtu {
				e.wstg[i] = make([]byte, e.offset+e.mtu)
			}
			bufs[i] = e.wstg[i][:want]
			copy(bufs[i][e.offset:], p.Buf[:p.N])
		}
		if _, err := e.dev.Write(bufs, e.offset); err != nil {
			if e.closed.Load() {
				return done, e.err("write", err)
			}
			// Some packets of the batch may be lost, as a full
			// device's are; TCP resends.
			e.txErrors.Add(1)
		}
		for i := range bufs {
			e.txPackets.Add(1)
			e.txBytes.Add(uint64(len(bufs[i]) - e.offset))
			bufs[i] = nil
		}
		done += k
	}
	return done, nil
}

// Close closes the device; a blocked ReadBatch returns net.ErrClosed.
func (e *Endpoint) Close() error {
	if e.closed.Swap(true) {
		return e.err("close", net.ErrClosed)
	}
	return e.dev.Close()
}
