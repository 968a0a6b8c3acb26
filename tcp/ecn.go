package tcp

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// Explicit Congestion Notification (RFC 3168), as Linux does it:
//
//   - Negotiation (§6.1.1): an outgoing connection asks with ECE and CWR
//     on its SYN when Config.ECN is ECNRequest (not on a retransmitted
//     SYN: §6.1.1.1, Linux's tcp_ecn_fallback); a SYN that asks is
//     answered with ECE on the SYN-ACK unless Config.ECN is ECNOff; ECN is
//     on when the SYN-ACK has ECE without CWR. SYN cookies carry the
//     answer in the timestamp (syncookie.go).
//   - The sender (§6.1.2) marks new data segments ECT(0) — not pure ACKs,
//     not retransmissions, not probes (§6.1.5, §6.1.6) — reduces its
//     window once per window of data on ECN-Echo (the controller's
//     OnECE; RACK's CWR state, with PRR), and sets CWR on the first new
//     data segment after any reduction.
//   - The receiver (§6.1.3) sets ECE on every segment after a data
//     segment arrived marked CE, until a segment with CWR arrives, and
//     acknowledges a CE mark at once.
//
// The IP layer's share is the codepoint: HandleSegmentECN takes the one a
// segment arrived with, and Transmit.ECN (PollTransmitBatch) gives the one
// for the segment written (TransmitECN after PollTransmit);
// Endpoints.ECN says the owner does both (no negotiation otherwise).

// ECN is an IP ECN codepoint (RFC 3168 §5): the low two bits of the IPv4
// TOS octet or the IPv6 Traffic Class.
type ECN uint8

// The codepoints.
const (
	NotECT ECN = 0 // not ECN-capable
	ECT1   ECN = 1 // ECN-capable, ECT(1)
	ECT0   ECN = 2 // ECN-capable, ECT(0)
	CE     ECN = 3 // Congestion Experienced
)

// String returns the codepoint's name.
func (e ECN) String() string {
	switch e & 3 {
	case ECT1:
		return "ECT(1)"
	case ECT0:
		return "ECT(0)"
	case CE:
		return "CE"
	}
	return "Not-ECT"
}

// HandleSegmentECN is HandleSegment for a segment whose IP header carried
// the ECN codepoint ecn (RFC 3168 §5). HandleSegment is
// HandleSegmentECN with NotECT.
func (c *Conn) HandleSegmentECN(now clock.Instant, seg *wire.TCPFields, ecn ECN) Verdict {
	c.ecnIn = ecn & 3
	v := c.HandleSegment(now, seg)
	c.ecnIn = NotECT
	return v
}

// TransmitECN returns the ECN codepoint for the IP header of the segment
// the last PollTransmit wrote: Transmit.ECN, for a caller of PollTransmit.
func (c *Conn) TransmitECN() ECN { return c.ecnOut }

// ECNEnabled reports whether ECN was negotiated for the connection.
func (c *Conn) ECNEnabled() bool { return c.ecnOK }

// queueCWR notes a window reduction: CWR goes on the next new data segment
// (RFC 3168 §6.1.2), if ECN is in use.
func (c *Conn) queueCWR() {
	if c.ecnOK {
		c.cwrPending = true
	}
}

// ecnSYNOffer reports whether an ECN-setup SYN carries ECE and CWR (RFC
// 3168 §6.1.1).
func ecnSetupSYN(f wire.TCPFlags) bool {
	return f&(wire.TCPFlagECE|wire.TCPFlagCWR) == wire.TCPFlagECE|wire.TCPFlagCWR
}

// ecnNegotiate applies the ECN flags of the peer's SYN (passive open) or
// SYN-ACK (active open).
func (c *Conn) ecnNegotiate(syn *wire.TCPFields) {
	if c.state == SynSent || syn.Flags&wire.TCPFlagACK != 0 {
		// Our SYN asked (and was not a retry without ECN); an
		// ECN-setup SYN-ACK has ECE and not CWR.
		c.ecnOK = c.ecnAsked && syn.Flags&(wire.TCPFlagECE|wire.TCPFlagCWR) == wire.TCPFlagECE
		return
	}
	c.ecnOK = ecnSetupSYN(syn.Flags) && c.env.cfg.ECN != ECNOff && c.ecnIP
}

// ecnReceived is the receiver's part (RFC 3168 §6.1.3) for an acceptable
// segment: CWR stops the echo, then a CE mark on data starts it (and is
// acknowledged at once, as Linux's tcp_ecn_check_ce).
func (c *Conn) ecnReceived(seg *wire.TCPFields) {
	if !c.ecnOK {
		return
	}
	if seg.Flags&wire.TCPFlagCWR != 0 {
		c.ecnEcho = false
	}
	if c.ecnIn == CE && len(seg.Payload) > 0 {
		if !c.ecnEcho {
			c.env.Stats.ECNCEReceived++
		}
		c.ecnEcho = true
		c.ackNow = true
	}
}

// ecnFlags returns the ECN flags and codepoint of a non-SYN segment being
// built (Linux tcp_ecn_send): new data is ECT(0) and takes a pending CWR;
// anything else is not ECT; every segment echoes CE while the receiver
// side owes it.
func (c *Conn) ecnFlags(s *segment) (wire.TCPFlags, ECN) {
	if !c.ecnOK || s.flags&wire.TCPFlagRST != 0 {
		return 0, NotECT
	}
	var f wire.TCPFlags
	ecn := NotECT
	if s.dataLen > 0 && !s.seq.LessThan(c.sndMax) {
		ecn = ECT0
		if c.cwrPending {
			c.cwrPending = false
			f |= wire.TCPFlagCWR
		}
	}
	if c.ecnEcho {
		f |= wire.TCPFlagECE
	}
	return f, ecn
}
