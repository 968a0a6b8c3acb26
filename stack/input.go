package stack

import (
	"slices"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// HandleFrame processes one frame that arrived on NIC id. The frame is not
// kept: what the stack needs is copied. Frames that are not for the stack
// (other MACs, unknown EtherTypes, runts, bad headers) are counted and
// dropped.
func (s *Stack) HandleFrame(now clock.Instant, id NICID, pkt *link.Packet) {
	s.handleFrame(now, id, pkt)
	if s.host.v6dirty {
		s.publish6() // a router advertisement, DAD's evidence (shared6.go)
	}
}

func (s *Stack) handleFrame(now clock.Instant, id NICID, pkt *link.Packet) {
	st := &s.host.link
	n := s.nic(id)
	if n == nil {
		st.RxNoNIC++
		return
	}
	frame := pkt.Frame()
	st.RxFrames++
	st.RxBytes += uint64(len(frame))
	if n.cfg.Medium == link.IP {
		switch {
		case len(frame) > 0 && frame[0]>>4 == 4:
			s.handleIPv4(now, n, frame, false, pkt.Offload)
		case len(frame) > 0 && frame[0]>>4 == 6 && n.v6 != nil:
			s.handleIPv6(now, n, frame, false, pkt.Offload)
		default:
			st.RxUnknownEtherType++
		}
		return
	}
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		st.RxRunts++
		return
	}
	dst := eth.Dst()
	bcast := dst.IsBroadcast()
	switch {
	case dst == n.cfg.MAC || bcast:
	case dst.IsMulticast():
		// A group the NIC listens to (IPv6's, RFC 2464 §7) is taken as
		// a NIC's multicast filter would.
		if n.v6 == nil || !slices.Contains(n.v6.macs, dst) {
			st.RxMulticast++
			return
		}
		bcast = true
	default:
		st.RxNotForUs++
		return
	}
	tci, tagged := eth.VLAN()
	if tagged != (n.cfg.VLAN != 0) || tagged && tci&0x0fff != n.cfg.VLAN {
		st.RxVLANMismatch++
		return
	}
	switch eth.EtherType() {
	case wire.EtherTypeIPv4:
		s.handleIPv4(now, n, eth.Payload(), bcast, pkt.Offload)
	case wire.EtherTypeARP:
		s.handleARP(now, n, eth.Payload())
	case wire.EtherTypeIPv6:
		if n.v6 == nil {
			st.RxUnknownEtherType++
			return
		}
		s.handleIPv6(now, n, eth.Payload(), bcast, pkt.Offload)
	default:
		st.RxUnknownEtherType++
	}
}

// handleARP answers requests for our addresses and learns senders
// (RFC 826, "Packet Reception").
func (s *Stack) handleARP(now clock.Instant, n *nic, b []byte) {
	st := &s.host.net
	a, err := wire.ParseARP(b)
	if err != nil {
		st.ARPBad++
		return
	}
	var f wire.ARPFields
	f.Decode(a)
	if f.SenderMAC.IsMulticast() || f.SenderMAC.IsZero() || !f.SenderIP.IsValid() {
		st.ARPBad++
		return
	}
	forUs := s.nicHas(n, f.TargetIP)
	// RFC 826: update an existing entry (the merge flag); create one only
	// if the packet is addressed to us. A probe (sender 0.0.0.0) is not
	// learned (RFC 5227).
	if !f.SenderIP.IsUnspecified() {
		s.nlock()
		s.host.neigh.Learn(now, n.id, f.SenderIP, f.SenderMAC, forUs)
		s.nunlock()
	}
	switch f.Op {
	case wire.ARPRequest:
		st.ARPInRequests++
		if !forUs {
			return
		}
		reply := wire.ARPFields{
			Op:        wire.ARPReply,
			SenderMAC: n.cfg.MAC, SenderIP: f.TargetIP,
			TargetMAC: f.SenderMAC, TargetIP: f.SenderIP,
		}
		buf, hdr := s.ctlFrame(n, f.SenderMAC, wire.EtherTypeARP)
		if buf == nil {
			return
		}
		reply.Encode(buf[hdr:])
		s.pushCtl(n.id, buf, hdr+wire.ARPLen)
		st.ARPOutReplies++
	case wire.ARPReply:
		st.ARPInReplies++
	}
	s.flushNeighbors()
}
