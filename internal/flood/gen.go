// Package flood generates hostile TCP traffic at line rate, in process:
// spoofed SYNs, ACKs for no connection or near a real connection's
// window, in-window RST guesses (RFC 5961 §3) and ACKs with bogus SACK
// blocks (RFC 2018). A Gen writes the frames straight into buffers
// (link.Packet), without a syscall or an allocation, so a test or the
// bench can offer a stack more than a million segments a second on one
// core; an Injector puts them on a link.Endpoint beside the frames of a
// real peer, and counts what the stack answers to the spoofed sources.
//
// Frames are Ethernet II, IPv4, TCP with complete checksums. Sources are
// drawn from the prefixes of Config.Sources, in turn, at random inside
// each (an address outside the victim's prefix and one inside it make
// the stack route one answer and resolve the other's neighbour).
package flood

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"github.com/ustack/ustack/wire"
)

// Kind is a kind of flood segment.
type Kind uint8

const (
	// SYN is a connection request from a random spoofed source and port,
	// with Linux's SYN options (MSS, SACK-permitted, timestamps, window
	// scale): a listener answers it with a SYN-ACK (a SYN cookie once its
	// SYN queue is full).
	SYN Kind = iota
	// ACK is a bare ACK. Without a Target it comes from a random spoofed
	// source to the listener's port, with random sequence and
	// acknowledgment numbers: the listener checks it as a SYN cookie
	// (while cookies are in use) and answers a RST. With a Target it
	// comes from the connection's peer, near the connection's windows
	// but never acknowledging anything the victim could take as new.
	ACK
	// RST is a reset from a Target's peer with a sequence number inside
	// the receive window but not RCV.NXT: RFC 5961 §3.2 answers it with a
	// challenge ACK, within the stack's rate limit.
	RST
	// SACK is an ACK from a Target's peer carrying as many SACK blocks as
	// fit beside a timestamp (three): blocks outside the window,
	// overlapping, reversed, and inside it claiming data never received.
	SACK
	numKinds
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case SYN:
		return "SYN"
	case ACK:
		return "ACK"
	case RST:
		return "RST"
	case SACK:
		return "SACK"
	}
	return "unknown"
}

// Target is a real connection a flood aims at, as its victim sees it:
// Local is the victim's end, Remote the peer's (the spoofed source of
// every segment). RcvNxt and RcvWnd are the victim's receive window and
// SndUna, SndNxt its send sequence space, as last read (Conn.Info); the
// generator draws around them.
type Target struct {
	Local, Remote  netip.AddrPort
	RcvNxt         wire.Seq
	RcvWnd         uint32
	SndUna, SndNxt wire.Seq
}

// Config describes a flood.
type Config struct {
	// Kind is what to send.
	Kind Kind
	// DstMAC and SrcMAC address the frames (the victim's MAC, and the
	// router's or the peer's the spoofed packets seem to come through).
	DstMAC, SrcMAC wire.MAC
	// Dst is the victim's listening address (SYN, and ACK without a
	// Target).
	Dst netip.AddrPort
	// Sources are the prefixes spoofed sources are drawn from, in turn
	// (SYN, and ACK without a Target). IPv4 only.
	Sources []netip.Prefix
	// Targets are the connections RST, SACK (and ACK, when given) aim
	// at, in turn.
	Targets []Target
	// Seed seeds the generator's random numbers.
	Seed uint64
}

// Gen makes the frames of one flood. It is not safe for concurrent use;
// make one per goroutine.
type Gen struct {
	cfg  Config
	r    *rand.Rand
	next int // the next source prefix or target, in turn
	ts   uint32
}

// FrameLen is the length of every frame a Gen makes: Ethernet (14), IPv4
// (20), TCP (20) and 40 bytes of options at most. Buffers must be at
// least this long.
const FrameLen = 14 + 20 + 20 + 40

// New returns a generator for cfg.
func New(cfg Config) *Gen {
	return &Gen{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), ts: 1}
}

// source draws a spoofed source address and port.
func (g *Gen) source() netip.AddrPort {
	p := g.cfg.Sources[g.next%len(g.cfg.Sources)]
	g.next++
	a := p.Masked().Addr().As4()
	base := binary.BigEndian.Uint32(a[:])
	host := uint32(0)
	if bits := p.Bits(); bits < 32 {
		host = g.r.Uint32() & (1<<(32-bits) - 1)
		if host == 0 {
			host = 1 // not the network's own address
		}
	}
	binary.BigEndian.PutUint32(a[:], base|host)
	return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(1024+g.r.IntN(64512)))
}

// target returns the next target in turn.
func (g *Gen) target() *Target {
	t := &g.cfg.Targets[g.next%len(g.cfg.Targets)]
	g.next++
	return t
}

// Frame writes the next flood frame into b and returns its length
// (FrameLen at most). It allocates nothing.
func (g *Gen) Frame(b []byte) int {
	var src, dst netip.AddrPort
	var seq, ack wire.Seq
	var flags byte
	var wnd uint16 = 65535
	opts := b[54:54:94]
	g.ts += 1 + g.r.Uint32N(8)
	switch g.cfg.Kind {
	case SYN:
		src, dst = g.source(), g.cfg.Dst
		seq, flags = wire.Seq(g.r.Uint32()), 0x02
		opts = append(opts, 2, 4, 0x05, 0xb4, 4, 2, 8, 10)
		opts = binary.BigEndian.AppendUint32(opts, g.ts)
		opts = append(opts, 0, 0, 0, 0, 1, 3, 3, 7)
	case ACK:
		flags = 0x10
		if len(g.cfg.Targets) == 0 {
			src, dst = g.source(), g.cfg.Dst
			seq, ack = wire.Seq(g.r.Uint32()), wire.Seq(g.r.Uint32())
			break
		}
		t := g.target()
		src, dst = t.Remote, t.Local
		// Near the windows: sequence numbers up to a window either side
		// of RCV.NXT; acknowledgments just below SND.UNA (old) or above
		// SND.NXT (too new: RFC 5961 §5.2 answers a challenge ACK). Never
		// one the victim could accept as new ([SND.UNA, SND.NXT]): that
		// would make it drop data the peer has not received, the
		// residual risk RFC 5961 §5 leaves to a blind attacker's odds,
		// and a flood that succeeds at it measures the peer, not the
		// victim's cost per segment.
		w := max(t.RcvWnd, 1)
		seq = t.RcvNxt - wire.Seq(w) + wire.Seq(g.r.Uint32N(2*w))
		if g.r.Uint32N(2) == 0 {
			ack = t.SndUna - 1 - wire.Seq(g.r.Uint32N(w))
		} else {
			ack = t.SndNxt + 1 + wire.Seq(g.r.Uint32N(1<<30))
		}
		opts = g.timestamp(opts)
	case RST:
		t := g.target()
		src, dst = t.Remote, t.Local
		flags = 0x04
		seq = t.RcvNxt + 1
		if t.RcvWnd > 1 {
			seq += wire.Seq(g.r.Uint32N(t.RcvWnd - 1))
		}
	case SACK:
		t := g.target()
		src, dst = t.Remote, t.Local
		flags = 0x10
		seq, ack = t.RcvNxt, t.SndUna
		opts = g.timestamp(opts)
		opts = append(opts, 1, 1, 5, 26)
		span := max(uint32(t.SndNxt-t.SndUna), 1)
		for i := range 3 {
			var l, r wire.Seq
			switch (g.r.Uint32N(4) + uint32(i)) % 4 {
			case 0: // outside the window: above SND.NXT
				l = t.SndNxt + wire.Seq(1+g.r.Uint32N(1<<30))
				r = l + wire.Seq(1+g.r.Uint32N(65536))
			case 1: // below SND.UNA
				r = t.SndUna - wire.Seq(g.r.Uint32N(1<<30))
				l = r - wire.Seq(1+g.r.Uint32N(65536))
			case 2: // reversed
				l = t.SndUna + wire.Seq(g.r.Uint32N(span))
				r = l - wire.Seq(1+g.r.Uint32N(1000))
			default: // inside the flight: many small overlapping holes
				l = t.SndUna + wire.Seq(g.r.Uint32N(span))
				r = l + wire.Seq(1+g.r.Uint32N(3000))
			}
			opts = binary.BigEndian.AppendUint32(opts, uint32(l))
			opts = binary.BigEndian.AppendUint32(opts, uint32(r))
		}
	}
	for len(opts)%4 != 0 {
		opts = append(opts, 1) // NOP; never reached with the layouts above
	}
	return writeFrame(b, g.cfg.DstMAC, g.cfg.SrcMAC, src, dst, seq, ack, flags, wnd, len(opts))
}

// timestamp appends NOP, NOP and a timestamp option (RFC 7323 §3.2) whose
// TSecr is zero: the victim does not check TSecr against what it sent
// (RFC 7323 leaves that to the sender, which no attacker is).
func (g *Gen) timestamp(opts []byte) []byte {
	opts = append(opts, 1, 1, 8, 10)
	opts = binary.BigEndian.AppendUint32(opts, g.ts)
	return append(opts, 0, 0, 0, 0)
}

// writeFrame writes the headers in front of optLen bytes of options
// already at b[54:], with both checksums, and returns the frame's length.
func writeFrame(b []byte, dstMAC, srcMAC wire.MAC, src, dst netip.AddrPort, seq, ack wire.Seq, flags byte, wnd uint16, optLen int) int {
	_ = b[FrameLen-1]
	copy(b[0:6], dstMAC[:])
	copy(b[6:12], srcMAC[:])
	b[12], b[13] = 0x08, 0x00
	ip := b[14:34]
	tcpLen := 20 + optLen
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(20+tcpLen))
	binary.BigEndian.PutUint16(ip[4:], uint16(seq)) // any identification
	ip[6], ip[7] = 0x40, 0                          // DF
	ip[8], ip[9] = 64, wire.ProtoTCP
	ip[10], ip[11] = 0, 0
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], wire.Checksum(ip, 0))
	tcp := b[34 : 34+tcpLen]
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], uint32(seq))
	binary.BigEndian.PutUint32(tcp[8:], uint32(ack))
	tcp[12], tcp[13] = byte(tcpLen/4)<<4, flags
	binary.BigEndian.PutUint16(tcp[14:], wnd)
	tcp[16], tcp[17], tcp[18], tcp[19] = 0, 0, 0, 0
	pseudo := wire.PseudoHeaderSum(src.Addr(), dst.Addr(), wire.ProtoTCP, tcpLen)
	binary.BigEndian.PutUint16(tcp[16:], wire.Checksum(tcp, pseudo))
	return 34 + tcpLen
}
