package pcap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/link"
)

// Endpoint wraps a link.Endpoint and captures every frame read from it or
// written to it.
//
// Records go through a bufio.Writer that is flushed at the end of every
// ReadBatch and WriteBatch, so a file is complete up to the last batch (a
// tcpdump reading it while the program runs sees every batch) and a batch
// costs one write to the file. A mutex serialises the captures of
// concurrent ReadBatch and WriteBatch calls.
//
// The records are in causal order, as a capture must be for Wireshark's
// TCP analysis to make sense of it: a frame read is never recorded before
// a frame written earlier that it may answer. WriteBatch therefore holds
// the mutex from before it hands the frames to the wrapped endpoint until
// it has recorded the ones taken, and every record is time-stamped under
// the mutex, so times never go backwards either. (Recording the written
// frames after the write, without the mutex, let the peer's ACK to a
// segment be read and recorded first; tshark then took the segment for a
// retransmission of data already acknowledged.)
//
// Frames are recorded as a wire would carry them: a super-frame
// (link.Offload with a GSO type, from a link with TSO or GRO) as the
// segments it stands for, and every partial checksum (Offload.NeedsCsum)
// completed, in a copy; the frames the link carries are not changed.
//
// A failure to write the capture does not fail the link: capturing stops,
// Err reports the error and Close returns it.
type Endpoint struct {
	ep     link.Endpoint
	medium link.Medium

	mu      sync.Mutex
	bw      *bufio.Writer
	pw      *Writer
	file    io.Closer // the file Create opened, closed by Close
	err     error     // the first capture error
	closing bool      // Close was called
	closed  bool      // the capture is finished

	seg     gso.Segmenter
	scratch []byte // a segment or a frame whose checksum is completed
}

var _ link.Endpoint = (*Endpoint)(nil)

// LinkType returns the pcap link type for m: LinkTypeEthernet for
// link.Ethernet, LinkTypeRaw for link.IP.
func LinkType(m link.Medium) (uint32, error) {
	switch m {
	case link.Ethernet:
		return LinkTypeEthernet, nil
	case link.IP:
		return LinkTypeRaw, nil
	}
	return 0, fmt.Errorf("pcap: no link type for medium %v", m)
}

// New wraps ep and writes its capture to w, starting with the file header.
// Close closes ep but not w.
func New(ep link.Endpoint, w io.Writer) (*Endpoint, error) {
	lt, err := LinkType(ep.Medium())
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	pw, err := NewWriter(bw, lt)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return nil, fmt.Errorf("pcap: writing file header: %w", err)
	}
	return &Endpoint{ep: ep, medium: ep.Medium(), bw: bw, pw: pw}, nil
}

// Create wraps ep and writes its capture to a new file at path
// (truncating an existing one). Close closes ep and the file.
func Create(ep link.Endpoint, path string) (*Endpoint, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	e, err := New(ep, f)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	e.file = f
	return e, nil
}

// Medium returns the wrapped endpoint's medium.
func (e *Endpoint) Medium() link.Medium { return e.ep.Medium() }

// MTU returns the wrapped endpoint's MTU.
func (e *Endpoint) MTU() int { return e.ep.MTU() }

// Caps returns the wrapped endpoint's capabilities.
func (e *Endpoint) Caps() link.Caps { return e.ep.Caps() }

// BatchSize returns the wrapped endpoint's batch size.
func (e *Endpoint) BatchSize() int { return e.ep.BatchSize() }

// ReadBatch reads from the wrapped endpoint and captures the frames read,
// time-stamped when they are recorded (after any write in progress).
func (e *Endpoint) ReadBatch(pkts []link.Packet) (int, error) {
	n, err := e.ep.ReadBatch(pkts)
	if n > 0 {
		e.mu.Lock()
		e.capture(time.Now(), pkts[:n])
		e.mu.Unlock()
	}
	return n, err
}

// WriteBatch writes to the wrapped endpoint and captures the frames it
// accepted, time-stamped when the write began. No frame read meanwhile is
// recorded before them (see Endpoint).
func (e *Endpoint) WriteBatch(pkts []link.Packet) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ts := time.Now()
	for i := range pkts {
		// The frames are recorded after the write: the link must not
		// take them by exchanging buffers (link.Packet.Swap).
		pkts[i].Swap = false
	}
	n, err := e.ep.WriteBatch(pkts)
	if n > 0 {
		e.capture(ts, pkts[:min(n, len(pkts))])
	}
	return n, err
}

// capture records pkts; e.mu is held.
func (e *Endpoint) capture(ts time.Time, pkts []link.Packet) {
	if e.closed || e.err != nil {
		return
	}
	for i := range pkts {
		p := &pkts[i]
		if p.N < 0 || p.N > len(p.Buf) {
			continue
		}
		if err := e.record(ts, p); err != nil {
			e.err = err
			return
		}
	}
	e.err = e.bw.Flush()
}

// record writes the wire frames of one packet; e.mu is held.
func (e *Endpoint) record(ts time.Time, p *link.Packet) error {
	f := p.Buf[:p.N]
	if p.Offload.GSOType == link.GSONone && !p.Offload.NeedsCsum {
		return e.pw.WritePacket(ts, f)
	}
	if e.scratch == nil {
		e.scratch = make([]byte, link.MaxSuperFrame)
	}
	if e.seg.Init(f, e.medium, p.Offload) != nil {
		// Not TCP or UDP over IP: complete what the Offload says, if
		// it can, and record the frame as it is.
		n := copy(e.scratch, f)
		gso.Finish(e.scratch[:n], e.medium, p.Offload)
		return e.pw.WritePacket(ts, e.scratch[:n])
	}
	for {
		n, ok := e.seg.Next(e.scratch, gso.Complete)
		if !ok {
			return nil
		}
		if err := e.pw.WritePacket(ts, e.scratch[:n]); err != nil {
			return err
		}
	}
}

// Err returns the error that stopped the capture, if any.
func (e *Endpoint) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Close closes the wrapped endpoint, flushes the capture and, for an
// Endpoint made by Create, closes the file. It returns the first error of
// these steps or of the capture. A second Close returns an error wrapping
// net.ErrClosed.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return &net.OpError{Op: "close", Net: "pcap", Err: net.ErrClosed}
	}
	e.closing = true
	e.mu.Unlock()
	// Close the wrapped endpoint first, without the lock: that unblocks a
	// ReadBatch, whose capture then finds the file still open or closed.
	err := e.ep.Close()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if ferr := e.bw.Flush(); e.err == nil {
		e.err = ferr
	}
	if e.file != nil {
		if cerr := e.file.Close(); e.err == nil {
			e.err = cerr
		}
	}
	return errors.Join(err, e.err)
}
