package sim

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link/pcap"
)

// capture writes the frames some link directions deliver (or are
// offered) to a pcap file.
type capture struct {
	w    *pcap.Writer
	sent bool          // record frames when offered, not when delivered
	dirs map[*Dir]bool // nil: every direction
}

func (c *capture) write(d *Dir, now clock.Instant, frame []byte) {
	if c.dirs != nil && !c.dirs[d] {
		return
	}
	c.w.WritePacket(Timestamp(now), frame)
}

// Timestamp turns a virtual instant into the time a capture records:
// the Unix epoch plus the virtual time, so a run starts at
// 1970-01-01 00:00:00 in tcpdump and Wireshark, and relative times read
// as the simulation's.
func Timestamp(t clock.Instant) time.Time { return time.Unix(0, 0).Add(time.Duration(t)) }

// Capture records every frame any link delivers from now on into w, as a
// pcap file (LINKTYPE_ETHERNET, nanosecond timestamps in virtual time).
// A frame is recorded when it reaches the far end of a link, as the
// receiving node sees it (after corruption); frames a link drops are not
// in the file. With several links, a frame that crosses a switch is
// recorded once per hop, as `tcpdump -i any` on every node would show it.
// If links are given, only their frames are recorded.
func (n *Network) Capture(w io.Writer, links ...*Link) error {
	return n.capture(w, false, links)
}

// CaptureSent is Capture at the other end of the links: it records every
// frame when a node sends it into a link, intact, including the frames
// the link then drops. Side by side with Capture it shows what was lost,
// delayed and reordered.
func (n *Network) CaptureSent(w io.Writer, links ...*Link) error {
	return n.capture(w, true, links)
}

func (n *Network) capture(w io.Writer, sent bool, links []*Link) error {
	pw, err := pcap.NewWriter(w, pcap.LinkTypeEthernet)
	if err != nil {
		return err
	}
	c := &capture{w: pw, sent: sent}
	if len(links) > 0 {
		c.dirs = map[*Dir]bool{}
		for _, l := range links {
			c.dirs[l.AB], c.dirs[l.BA] = true, true
		}
	}
	n.captures = append(n.captures, c)
	return nil
}

// CaptureFile writes two captures: every frame delivered (Capture) to
// path, and every frame sent (CaptureSent) to path with ".sent" inserted
// before its extension ("run.pcap" and "run.sent.pcap"). The returned
// function flushes and closes both.
func (n *Network) CaptureFile(path string, links ...*Link) (closeFn func() error, err error) {
	ext := filepath.Ext(path)
	sentPath := strings.TrimSuffix(path, ext) + ".sent" + ext
	var closers []func() error
	closeAll := func() error {
		var first error
		for _, c := range closers {
			if err := c(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for i, p := range []string{path, sentPath} {
		f, err := os.Create(p)
		if err != nil {
			closeAll()
			return nil, err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		closers = append(closers, func() error {
			if err := bw.Flush(); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		})
		if err := n.capture(bw, i == 1, links); err != nil {
			closeAll()
			return nil, err
		}
	}
	return closeAll, nil
}
