package wgnet

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/ustack/ustack/internal/gro"
	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/internal/ring"
	"github.com/ustack/ustack/link"
)

// The link between the stack and wireguard-go. wireguard-go drives the
// device from its own goroutines: it writes the packets it decrypted
// (Write) and reads the packets to encrypt (Read). The stack drives its
// link from its goroutines too: a reader (ReadBatch) and whoever flushes
// (WriteBatch). Two queues join them:
//
//	device.Write ─▶ in ─▶ ReadBatch (GRO) ─▶ stack
//	stack ─▶ WriteBatch ─▶ out ─▶ device.Read (TSO frames cut here)
//
// A full `in` makes Write wait (wireguard-go's receive goroutine slows
// down, as gVisor's netstack, which delivers in that goroutine, does);
// a full `out` drops, as a device's full queue does, because WriteBatch
// runs under the stack's lock.
//
// Offloads: packets from the tunnel were authenticated by WireGuard, so
// their checksums are trusted (Linux's wireguard marks them
// CHECKSUM_UNNECESSARY, receive.c), and consecutive TCP segments of a
// batch are merged (internal/gro) so the stack handles one segment where
// the tunnel carried many. The stack hands the link TCP super-segments
// with partial checksums (TSO): the device's Read cuts them into packets
// of the MTU with complete checksums, which is what must cross the
// tunnel (Linux's wireguard completes checksums before encrypting,
// send.c), straight into wireguard-go's buffers.

// Queue bounds.
const (
	// inQueueLen is the most packets Write leaves for the stack's reader
	// before it waits (gVisor's netstack channel holds 1024).
	inQueueLen = 1024
	// outQueueBytes and outQueueLen bound what the stack has sent and
	// the device has not read yet; beyond them frames are dropped.
	outQueueBytes = 4 << 20
	outQueueLen   = 2048
	// linkBatch is the link's batch size: the frames one ReadBatch
	// returns, the segments GRO can merge into one. The stack keeps a
	// 64 KiB buffer per frame of a batch each way (for GRO's and TSO's
	// super-frames), so this is also 4 MiB of an idle stack's memory.
	linkBatch = 32
	// Buffers kept for reuse once their packet or frame has moved on:
	// packets from the device, frames up to the MTU and super-frames
	// from the stack. Beyond these, buffers go to the garbage collector.
	keepIn, keepOut, keepBig = 256, 256, 16
)

// tunLink is the link.Endpoint of the stack's one NIC.
type tunLink struct {
	mtu int

	mu      sync.Mutex
	inReady sync.Cond // ReadBatch waits for packets
	inRoom  sync.Cond // Write waits for room
	outWait sync.Cond // Read waits for frames
	closed  bool

	in     ring.Ring[qbuf]
	inFree [][]byte

	out      ring.Ring[qframe]
	outBytes int
	outFree  [][]byte // buffers of up to the MTU
	bigFree  [][]byte // buffers of super-frames

	// Owned by the device's reader (Read), one at a time.
	rd struct {
		taken   []qframe // frames moved out of `out`, not yet read
		seg     gso.Segmenter
		cutting bool // seg holds taken[0], partly read
	}

	gro *gro.Coalescer // owned by the stack's reader (ReadBatch)

	stats linkStats
}

// linkStats are the link's counters.
type linkStats struct {
	inPackets  atomic.Uint64 // packets the device was given (Write)
	inDropped  atomic.Uint64 // of those, too long for the stack's buffers
	inWaits    atomic.Uint64 // Writes that waited for room
	outFrames  atomic.Uint64 // frames the stack sent (WriteBatch)
	outDropped atomic.Uint64 // of those, dropped: queue full
	outPackets atomic.Uint64 // packets the device's Read returned
	outBad     atomic.Uint64 // frames that could not be cut or were too long for Read's buffer
}

// qbuf is a packet in `in`.
type qbuf struct {
	b []byte
	n int
}

// qframe is a frame in `out`, with its offload.
type qframe struct {
	b   []byte
	n   int
	off link.Offload
}

func newTunLink(mtu int) *tunLink {
	l := &tunLink{mtu: mtu, gro: gro.New(link.IP)}
	l.inReady.L = &l.mu
	l.inRoom.L = &l.mu
	l.outWait.L = &l.mu
	return l
}

// Medium implements link.Endpoint: bare IP packets.
func (l *tunLink) Medium() link.Medium { return link.IP }

// MTU implements link.Endpoint.
func (l *tunLink) MTU() int { return l.mtu }

// Caps implements link.Endpoint (see the comment above).
func (l *tunLink) Caps() link.Caps {
	return link.CapTxChecksum | link.CapTSO | link.CapRxChecksumValid | link.CapGRO
}

// BatchSize implements link.Endpoint.
func (l *tunLink) BatchSize() int { return linkBatch }

// Close implements link.Endpoint: every waiting call returns.
func (l *tunLink) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.inReady.Broadcast()
	l.inRoom.Broadcast()
	l.outWait.Broadcast()
	return nil
}

// put queues copies of the packets bufs[i][offset:] for the stack, in
// order, waiting while `in` is full. It returns how many it took: all of
// them, unless the link closed.
func (l *tunLink) put(bufs [][]byte, offset int) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, b := range bufs {
		if len(b) <= offset {
			continue // empty
		}
		p := b[offset:]
		if len(p) > link.MaxSuperFrame {
			l.stats.inDropped.Add(1)
			continue
		}
		if l.in.Len() >= inQueueLen && !l.closed {
			l.stats.inWaits.Add(1)
			for l.in.Len() >= inQueueLen && !l.closed {
				l.inRoom.Wait()
			}
		}
		if l.closed {
			return i, net.ErrClosed
		}
		var buf []byte
		if k := len(l.inFree); k > 0 && cap(l.inFree[k-1]) >= len(p) {
			buf, l.inFree = l.inFree[k-1], l.inFree[:k-1]
		} else {
			buf = make([]byte, max(len(p), l.mtu))
		}
		buf = buf[:cap(buf)]
		l.in.PushBack(qbuf{buf, copy(buf, p)})
		l.stats.inPackets.Add(1)
		if l.in.Len() == 1 {
			l.inReady.Signal()
		}
	}
	return len(bufs), nil
}

// ReadBatch implements link.Endpoint: it waits for packets the device was
// given, copies up to len(pkts) of them, and merges their TCP segments.
func (l *tunLink) ReadBatch(pkts []link.Packet) (int, error) {
	l.mu.Lock()
	for l.in.Len() == 0 && !l.closed {
		l.inReady.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return 0, net.ErrClosed
	}
	n := 0
	for n < len(pkts) {
		q, ok := l.in.PopFront()
		if !ok {
			break
		}
		p := &pkts[n]
		if q.n > len(p.Buf) {
			l.stats.inDropped.Add(1)
		} else {
			p.N = copy(p.Buf, q.b[:q.n])
			p.Offload = link.Offload{DataValid: true}
			n++
		}
		if len(l.inFree) < keepIn {
			l.inFree = append(l.inFree, q.b)
		}
	}
	l.inRoom.Broadcast()
	l.mu.Unlock()
	if n > 1 {
		n = l.gro.Coalesce(pkts[:n])
	}
	return n, nil
}

// WriteBatch implements link.Endpoint: it queues copies of the frames for
// the device's Read, dropping what does not fit.
func (l *tunLink) WriteBatch(pkts []link.Packet) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, net.ErrClosed
	}
	for i := range pkts {
		p := &pkts[i]
		if p.N > l.mtu && p.Offload.GSOType == link.GSONone {
			return i, link.ErrFrameTooBig
		}
		l.stats.outFrames.Add(1)
		if l.out.Len() >= outQueueLen || l.outBytes+p.N > outQueueBytes {
			l.stats.outDropped.Add(1)
			continue
		}
		var buf []byte
		free := &l.outFree
		if p.N > l.mtu {
			free = &l.bigFree
		}
		if k := len(*free); k > 0 && cap((*free)[k-1]) >= p.N {
			buf, *free = (*free)[k-1], (*free)[:k-1]
		} else if p.N > l.mtu {
			buf = make([]byte, link.MaxSuperFrame)
		} else {
			buf = make([]byte, l.mtu)
		}
		buf = buf[:cap(buf)]
		l.out.PushBack(qframe{buf, copy(buf, p.Frame()), p.Offload})
		l.outBytes += p.N
		if l.out.Len() == 1 {
			l.outWait.Signal()
		}
	}
	return len(pkts), nil
}

// get is the device's Read: it waits for frames the stack sent and
// writes up to len(bufs) packets into bufs[i][offset:], cutting
// super-frames and completing checksums. It reports net.ErrClosed once
// the link is closed.
func (l *tunLink) get(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(sizes) < len(bufs) {
		bufs = bufs[:len(sizes)]
	}
	if len(bufs) > DeviceBatchSize {
		bufs = bufs[:DeviceBatchSize]
	}
	rd := &l.rd
	l.mu.Lock()
	for len(rd.taken) == 0 && l.out.Len() == 0 && !l.closed {
		l.outWait.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return 0, net.ErrClosed
	}
	// Take frames for about as many packets as there are buffers.
	want := len(bufs)
	for _, f := range rd.taken {
		want -= packetsOf(f, l.mtu)
	}
	for want > 0 {
		f, ok := l.out.PopFront()
		if !ok {
			break
		}
		l.outBytes -= f.n
		rd.taken = append(rd.taken, f)
		want -= packetsOf(f, l.mtu)
	}
	l.mu.Unlock()

	n, done := 0, 0
	for n < len(bufs) && done < len(rd.taken) {
		f := &rd.taken[done]
		dst := bufs[n][min(offset, len(bufs[n])):]
		if f.off.GSOType == link.GSONone && !f.off.NeedsCsum {
			if f.n > len(dst) {
				l.stats.outBad.Add(1)
			} else {
				sizes[n] = copy(dst, f.b[:f.n])
				n++
			}
			done++
			continue
		}
		if !rd.cutting {
			if err := rd.seg.Init(f.b[:f.n], link.IP, f.off); err != nil {
				// Not TCP or UDP: nothing to cut; complete the checksum
				// where the frame says it is.
				if f.n > len(dst) || !gso.Finish(f.b[:f.n], link.IP, f.off) {
					l.stats.outBad.Add(1)
				} else {
					sizes[n] = copy(dst, f.b[:f.n])
					n++
				}
				done++
				continue
			}
			rd.cutting = true
		}
		if size, ok := rd.seg.Next(dst, gso.Complete); ok {
			sizes[n] = size
			n++
		} else if !rd.seg.Done() {
			l.stats.outBad.Add(1)
		}
		if rd.seg.Done() {
			rd.cutting = false
			done++
		}
	}
	l.stats.outPackets.Add(uint64(n))

	// Give back the buffers of the frames read whole.
	l.mu.Lock()
	for _, f := range rd.taken[:done] {
		if cap(f.b) > l.mtu {
			if len(l.bigFree) < keepBig {
				l.bigFree = append(l.bigFree, f.b)
			}
		} else if len(l.outFree) < keepOut {
			l.outFree = append(l.outFree, f.b)
		}
	}
	l.mu.Unlock()
	k := copy(rd.taken, rd.taken[done:])
	clear(rd.taken[k:])
	rd.taken = rd.taken[:k]
	return n, nil
}

// packetsOf estimates the packets frame f gives: one, or as many
// segments as a super-frame's payload fills.
func packetsOf(f qframe, mtu int) int {
	if f.off.GSOType == link.GSONone || f.off.GSOSize == 0 {
		return 1
	}
	return max((f.n-int(f.off.HdrLen)+int(f.off.GSOSize)-1)/int(f.off.GSOSize), 1)
}
