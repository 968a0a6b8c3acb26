package tcp

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// ResetFor fills rst with the reset that answers seg, a segment for which no
// connection exists (RFC 9293 §3.10.7.1, "If the state is CLOSED"), and
// reports whether one is due: never for a RST. If seg has an ACK the reset
// is <SEQ=SEG.ACK><CTL=RST>, otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
// <CTL=RST,ACK>. Ports are swapped; rst carries no options or data.
func ResetFor(seg *wire.TCPFields, rst *wire.TCPFields) bool {
	if seg.Flags&wire.TCPFlagRST != 0 {
		return false
	}
	*rst = wire.TCPFields{SrcPort: seg.DstPort, DstPort: seg.SrcPort}
	if seg.Flags&wire.TCPFlagACK != 0 {
		rst.Seq = seg.Ack
		rst.Flags = wire.TCPFlagRST
	} else {
		rst.Ack = seg.Seq.Add(seg.SegLen())
		rst.Flags = wire.TCPFlagRST | wire.TCPFlagACK
	}
	return true
}

// HandleICMPError reports an ICMP destination-unreachable for this
// connection's peer, converted to err (ErrConnRefused for port unreachable,
// ErrHostUnreachable otherwise). While connecting it is a hard error and
// the connect fails, as in Linux (tcp_v4_err); RFC 1122 §4.2.3.9 makes it a
// soft error for an established connection, which ustack then ignores
// (the retransmission timer decides).
func (c *Conn) HandleICMPError(now clock.Instant, err error) {
	if c.state == SynSent {
		c.finish(err)
	}
}
