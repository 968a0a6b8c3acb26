package pcap

import (
	"encoding/binary"
	"errors"
	"io"
	"time"
)

// Link types (https://www.tcpdump.org/linktypes.html).
const (
	// LinkTypeEthernet is LINKTYPE_ETHERNET: Ethernet II frames.
	LinkTypeEthernet uint32 = 1
	// LinkTypeRaw is LINKTYPE_RAW: bare IPv4 or IPv6 packets.
	LinkTypeRaw uint32 = 101
)

// SnapLen is the largest number of bytes of a frame a file records.
const SnapLen = 262144

// MagicNanoseconds is the file magic of the nanosecond-resolution format.
const MagicNanoseconds = 0xa1b23c4d

// Writer writes a pcap file: the file header when it is made, then one
// record per WritePacket. It does no buffering of its own (wrap the
// io.Writer in a bufio.Writer for that) and is not safe for concurrent
// use. After a write error every later call returns that error.
type Writer struct {
	w   io.Writer
	hdr [16]byte
	err error
}

// NewWriter writes the file header for linktype (LinkTypeEthernet,
// LinkTypeRaw or any other LINKTYPE value) to w and returns a Writer for
// the records.
func NewWriter(w io.Writer, linktype uint32) (*Writer, error) {
	if w == nil {
		return nil, errors.New("pcap: nil io.Writer")
	}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], MagicNanoseconds)
	binary.LittleEndian.PutUint16(h[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	// thiszone and sigfigs are 0.
	binary.LittleEndian.PutUint32(h[16:], SnapLen)
	binary.LittleEndian.PutUint32(h[20:], linktype)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &Writer{w: w}, nil
}

// WritePacket writes one record: the frame b, captured at ts. Only the
// first SnapLen bytes are recorded; the record keeps the original length.
// Times before 1970 are written as 1970 (the format's seconds field is
// unsigned).
func (w *Writer) WritePacket(ts time.Time, b []byte) error {
	if w.err != nil {
		return w.err
	}
	sec, nsec := ts.Unix(), ts.Nanosecond()
	if sec < 0 {
		sec, nsec = 0, 0
	}
	incl := min(len(b), SnapLen)
	binary.LittleEndian.PutUint32(w.hdr[0:], uint32(sec))
	binary.LittleEndian.PutUint32(w.hdr[4:], uint32(nsec))
	binary.LittleEndian.PutUint32(w.hdr[8:], uint32(incl))
	binary.LittleEndian.PutUint32(w.hdr[12:], uint32(len(b)))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		w.err = err
		return err
	}
	if _, err := w.w.Write(b[:incl]); err != nil {
		w.err = err
		return err
	}
	return nil
}
