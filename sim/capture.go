package sim

import (
	"bufio"
	"io"
	"os"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link/pcap"
)

// capture writes the frames some link directions deliver to a pcap file.
type capture struct {
	w    *pcap.Writer
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
	pw, err := pcap.NewWriter(w, pcap.LinkTypeEthernet)
	if err != nil {
		return err
	}
	c := &capture{w: pw}
	if len(links) > 0 {
		c.dirs = map[*Dir]bool{}
		for _, l := range links {
			c.dirs[l.AB], c.dirs[l.BA] = true, true
		}
	}
	n.captures = append(n.captures, c)
	return nil
}

// CaptureFile is Capture into a new file at path; the returned function
// flushes and closes it.
func (n *Network) CaptureFile(path string, links ...*Link) (closeFn func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := n.Capture(bw, links...); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}
