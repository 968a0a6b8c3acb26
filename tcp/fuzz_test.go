package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/chunk"
	"github.com/ustack/ustack/wire"
)

// FuzzConn drives one connection into a state chosen by the input's first
// bytes, through the real handshake and close sequences, then applies
// operations decoded from the rest of the input: segments from the peer
// (sequence and acknowledgment numbers mostly near the connection's
// windows, arbitrary flags, windows, options and payloads), time steps
// that fire the timers as an owner would, and application calls. After
// every operation it checks:
//
//   - checkInvariants (SND.UNA ≤ SND.NXT ≤ SND.MAX, the send buffer holds
//     all that is outstanding, out-of-order and SACK ranges well formed,
//     no timer in CLOSED, the RTO within bounds, ...);
//   - the buffers stay within the largest sizes ever configured;
//   - after HandleTimeout(now) no deadline is at or before now;
//   - every segment PollTransmit writes parses with package wire, carries
//     the right ports, no MSS option outside a SYN (MUST-65), timestamps
//     iff negotiated, SACK blocks only if negotiated, ACK = RCV.NXT, data
//     that is the application's bytes at that stream offset, no segment
//     larger than the MSS, no new data beyond the peer's window (only
//     retransmissions may go beyond it: probes, MAY-7), no byte sent
//     twice in one burst, and a bounded number of segments per operation;
//   - Read returns the peer's bytes in order;
//   - Read, Write, CloseRead, SetNoDelay and the buffer setters leave
//     NextDeadline as it was, as its documentation promises.
//
// The input format is documented in testdata/fuzz/FuzzConn/README.md.
func FuzzConn(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := runFuzzConn(data); err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzSeeds are the seeds of FuzzConn besides the committed corpus: one
// per state, with and without options, and a few operation mixes.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for st := byte(0); st < 10; st++ {
		for _, opt := range []byte{0x00, 0x07, 0x0f, 0x1f} {
			seeds = append(seeds, []byte{st, opt, 0x10, 0x20, 0x30, 0x40})
		}
	}
	return seeds
}

// Operation kinds: the low 4 bits of an operation's first byte.
const (
	fzSegment = iota
	fzSegment2
	fzSegment3
	fzSegment4
	fzTime
	fzTime2
	fzWrite
	fzRead
	fzCloseWrite
	fzCloseRead
	fzClose
	fzAbort
	fzOption
	fzBufSize
	fzICMP
	fzAckAll
)

const fuzzOpLen = 8 // bytes per operation

// fuzzPattern is byte k of either direction's stream (different per side).
func fuzzPattern(side byte, k uint64) byte { return byte(k*7+k>>8+k>>16) ^ side }

type fuzzDriver struct {
	now  clock.Instant
	env  *Env
	c    *Conn
	buf  []byte
	rbuf []byte

	local, remote netip.AddrPort
	peerISN       wire.Seq
	peerTS        uint32
	wrote         uint64 // bytes the application wrote
	read          uint64 // bytes the application read
	ourData       wire.Seq
	maxSndBuf     int
	maxRcvBuf     int
	reopened      bool
	// SND.UNA and RCV.NXT after the previous step, to check they only
	// move forward.
	prevConn          *Conn
	prevUna, prevNext wire.Seq
	// What the connection sent in the current operation.
	sentSegs int
	sent     []seqRange
	// ecn is the IP codepoint the next delivered segment arrives with.
	ecn ECN
}

func newFuzzDriver(opt byte) *fuzzDriver {
	cfg := Config{
		RcvBuf: 4096 + int(opt>>5)*8192,
		SndBuf: 4096 + int(opt>>5)*16384,
		// Auto-tuning may grow them fourfold (opt bit 3 turns it off:
		// maxima no larger than the starting sizes).
		RcvBufMax:     (4096 + int(opt>>5)*8192) * int(1+3*(1-opt>>3&1)),
		SndBufMax:     (4096 + int(opt>>5)*16384) * int(1+3*(1-opt>>3&1)),
		NoTimestamps:  opt&1 == 0,
		NoSACK:        opt&2 == 0,
		NoWindowScale: opt&4 == 0,
		Retries2:      4,
		SynRetries:    3,
		SynAckRetries: 3,
		KeepCount:     2,
	}
	if opt&0x10 != 0 {
		cfg.DelayedACK = -1
	}
	if opt&4 != 0 {
		// With window scaling, ECN too: asked for by an active open,
		// offered by the peer's SYN to a passive one.
		cfg.ECN = ECNRequest
	}
	d := &fuzzDriver{
		env:     NewEnv(cfg),
		buf:     make([]byte, 70000),
		rbuf:    make([]byte, 70000),
		local:   netip.MustParseAddrPort("10.0.0.1:80"),
		remote:  netip.MustParseAddrPort("10.0.0.2:40000"),
		peerISN: 0xffff_fc00,
		peerTS:  1000,
	}
	d.maxSndBuf = max(d.env.cfg.SndBuf, d.env.cfg.SndBufMax)
	d.maxRcvBuf = max(d.env.cfg.RcvBuf, d.env.cfg.RcvBufMax)
	d.c = NewConn(d.env)
	return d
}

// peerSeg builds a segment from the peer.
func (d *fuzzDriver) peerSeg(seq, ack wire.Seq, flags wire.TCPFlags, win uint16, n int) *wire.TCPFields {
	s := &wire.TCPFields{SrcPort: d.remote.Port(), DstPort: d.local.Port(), Seq: seq, Ack: ack, Flags: flags, Window: win}
	if d.c.tsOK || flags&wire.TCPFlagSYN != 0 && !d.env.cfg.NoTimestamps {
		s.Options.HasTimestamp = true
		s.Options.TSVal = d.peerTS
		s.Options.TSEcr = d.c.tsVal(d.now)
	}
	if n > 0 {
		p := make([]byte, n)
		// The peer's stream starts after its ISN: the one the
		// connection knows, or this SYN's.
		start, base := seq, d.c.irs.Add(1)
		if flags&wire.TCPFlagSYN != 0 {
			start = start.Add(1)
			if d.c.state == SynSent || d.c.state == Closed {
				base = start
			}
		}
		off := uint64(start.Size(base))
		for i := range p {
			p[i] = fuzzPattern(0x5a, off+uint64(i))
		}
		s.Payload = p
	}
	return s
}

func (d *fuzzDriver) synOptions(s *wire.TCPFields, opt byte) {
	if opt&4 != 0 && s.Flags&wire.TCPFlagSYN != 0 {
		// An ECN-setup SYN, or SYN-ACK (RFC 3168 §6.1.1).
		s.Flags |= wire.TCPFlagECE
		if s.Flags&wire.TCPFlagACK == 0 {
			s.Flags |= wire.TCPFlagCWR
		}
	}
	s.Options.MSS = 536 + uint16(opt>>5)*200
	s.Options.SACKPermitted = true
	s.Options.HasWScale = true
	s.Options.WScale = opt >> 5 * 2
}

// deliver hands a segment to the connection, playing the stack for a
// Reopen, then drains its output.
func (d *fuzzDriver) deliver(s *wire.TCPFields) error {
	// Encode and decode, as the stack would: the connection sees only
	// what a wire segment can say.
	b := make([]byte, s.HeaderLen()+len(s.Payload))
	s.Encode(b)
	t, err := wire.ParseTCP(b)
	if err != nil {
		return fmt.Errorf("driver built a bad segment: %v", err)
	}
	var f wire.TCPFields
	if err := f.Decode(t); err != nil {
		return fmt.Errorf("driver built bad options: %v", err)
	}
	ecn := d.ecn
	d.ecn = NotECT
	if d.c.HandleSegmentECN(d.now, &f, ecn) == Reopen {
		if d.c.State() != Closed {
			return fmt.Errorf("Reopen in state %v", d.c.State())
		}
		// The stack's listener opens the next incarnation.
		iss := d.c.ReopenISS()
		d.c = NewConn(d.env)
		d.reopened = true
		d.ourData = iss.Add(1)
		d.wrote, d.read = 0, 0
		if err := d.c.OpenPassive(d.now, Endpoints{Local: d.local, Remote: d.remote, ISS: iss, MTU: 1500, ECN: true}, &f); err != nil {
			return fmt.Errorf("OpenPassive after Reopen: %v", err)
		}
	}
	return d.drain()
}

// drain collects and checks every segment the connection has to send.
func (d *fuzzDriver) drain() error {
	c := d.c
	for {
		sndUna, sndMax, sndWnd := c.sndUna, c.sndMax, c.sndWnd
		tr := c.PollTransmitBatch(d.now, d.buf, 1)
		n := tr.Len
		if n == 0 {
			break
		}
		d.sentSegs++
		if d.sentSegs > 2000 {
			return fmt.Errorf("more than 2000 segments for one operation")
		}
		if n > c.MaxSegmentLen() {
			return fmt.Errorf("segment of %d bytes, MaxSegmentLen %d", n, c.MaxSegmentLen())
		}
		t, err := wire.ParseTCP(d.buf[:n])
		if err != nil {
			return fmt.Errorf("malformed segment: %v", err)
		}
		var f wire.TCPFields
		if err := f.Decode(t); err != nil {
			return fmt.Errorf("malformed options: %v", err)
		}
		// RFC 3168 §6.1.2, §6.1.5: ECT(0) only on new data of a
		// connection that agreed to ECN; never CE.
		if tr.ECN != NotECT && (tr.ECN != ECT0 || !c.ecnOK || len(f.Payload) == 0 || f.Seq.LessThan(sndMax) || f.Flags&(wire.TCPFlagSYN|wire.TCPFlagRST) != 0) {
			return fmt.Errorf("%v: segment %v seq %d len %d (SND.MAX %d) sent %v", c.state, f.Flags, f.Seq, len(f.Payload), sndMax, tr.ECN)
		}
		if err := d.checkSegment(&f, sndUna, sndMax, sndWnd); err != nil {
			return fmt.Errorf("%v: segment %v seq %d ack %d len %d win %d: %v",
				c.state, f.Flags, f.Seq, f.Ack, len(f.Payload), f.Window, err)
		}
	}
	c.TakeEvents()
	return nil
}

func (d *fuzzDriver) checkSegment(f *wire.TCPFields, sndUna, sndMax wire.Seq, sndWnd uint32) error {
	c := d.c
	if f.SrcPort != d.local.Port() || f.DstPort != d.remote.Port() {
		return errors.New("wrong ports")
	}
	if f.Checksum != 0 || f.Urgent != 0 {
		return errors.New("checksum or urgent pointer set")
	}
	syn := f.Flags&wire.TCPFlagSYN != 0
	rst := f.Flags&wire.TCPFlagRST != 0
	if f.Options.MSS != 0 && !syn {
		return errors.New("MSS option on a non-SYN segment (MUST-65)")
	}
	if syn && (rst || f.Flags&wire.TCPFlagFIN != 0 || f.Seq != c.iss) {
		return errors.New("bad SYN")
	}
	if rst {
		if len(f.Payload) > 0 {
			return errors.New("RST with data")
		}
		return nil
	}
	if !syn && f.Flags&wire.TCPFlagACK == 0 {
		return errors.New("no ACK on a segment after the SYN")
	}
	if !syn && f.Options.HasTimestamp != c.tsOK {
		return fmt.Errorf("timestamps %v, negotiated %v", f.Options.HasTimestamp, c.tsOK)
	}
	if f.Options.NumSACK > 0 && !c.sackOK {
		return errors.New("SACK blocks without SACK-permitted")
	}
	if f.Flags&wire.TCPFlagACK != 0 && c.state != Closed && f.Ack != c.rcvNxt {
		return fmt.Errorf("ACK %d, RCV.NXT %d", f.Ack, c.rcvNxt)
	}
	if len(f.Payload) == 0 {
		return nil
	}
	if syn {
		return errors.New("data on our SYN")
	}
	if uint32(len(f.Payload)) > c.sndMSS {
		return fmt.Errorf("%d bytes of data, MSS %d", len(f.Payload), c.sndMSS)
	}
	// The bytes are the application's at that stream offset.
	off := uint64(f.Seq.Size(d.ourData))
	if off+uint64(len(f.Payload)) > d.wrote {
		return fmt.Errorf("data at stream offset %d+%d, only %d written", off, len(f.Payload), d.wrote)
	}
	for i, b := range f.Payload {
		if b != fuzzPattern(0xa5, off+uint64(i)) {
			return fmt.Errorf("payload byte %d is not the stream's byte %d", i, off+uint64(i))
		}
	}
	end := f.Seq.Add(f.SegLen())
	// New data stays inside the peer's window (RFC 9293 §3.8.6); only
	// retransmissions, which may serve as probes, may go beyond it.
	if end.GreaterThan(sndMax) && end.GreaterThan(sndUna.Add(sndWnd)) {
		return fmt.Errorf("new data up to %d beyond the window %d+%d", end, sndUna, sndWnd)
	}
	if f.Seq.LessThan(sndUna) {
		return fmt.Errorf("data below SND.UNA %d", sndUna)
	}
	// No byte twice in one burst.
	for _, r := range d.sent {
		if f.Seq.LessThan(r.end) && r.start.LessThan(f.Seq.Add(uint32(len(f.Payload)))) {
			return fmt.Errorf("bytes %d..%d sent twice in one burst", f.Seq, f.Seq.Add(uint32(len(f.Payload))))
		}
	}
	d.sent = append(d.sent, seqRange{f.Seq, f.Seq.Add(uint32(len(f.Payload)))})
	return nil
}

// check runs the invariants after an operation.
func (d *fuzzDriver) check() error {
	c := d.c
	if err := c.checkInvariants(); err != nil {
		return err
	}
	// SND.UNA and RCV.NXT never move backwards.
	if c.state != SynSent && c.state != Closed {
		if d.prevConn == c && (c.sndUna.LessThan(d.prevUna) || c.rcvNxt.LessThan(d.prevNext)) {
			return fmt.Errorf("went backwards: SND.UNA %d -> %d, RCV.NXT %d -> %d", d.prevUna, c.sndUna, d.prevNext, c.rcvNxt)
		}
		d.prevConn, d.prevUna, d.prevNext = c, c.sndUna, c.rcvNxt
	}
	// Liveness: once the output is drained, anything still to send or
	// to be acknowledged has a timer that will act on it, so no
	// connection can stall for ever.
	switch c.state {
	case SynSent, SynReceived:
		if !c.timers.armed(timerRexmit) {
			return fmt.Errorf("%v without a retransmission timer", c.state)
		}
	case Established, FinWait1, CloseWait, Closing, LastAck:
		unsent := c.sndNxt.LessThan(c.sndUna.Add(uint32(c.snd.n))) || c.finQueued && c.sndNxt.LessEq(c.finSeq)
		switch {
		case c.sndMax != c.sndUna && !c.timers.armed(timerRexmit):
			return fmt.Errorf("%d bytes outstanding and no retransmission timer", c.sndMax.Size(c.sndUna))
		case c.sndMax == c.sndUna && unsent && !c.timers.armed(timerPersist) && !c.timers.armed(timerRexmit):
			return fmt.Errorf("data or FIN held back with nothing in flight and no persist timer (SND.WND %d)", c.sndWnd)
		}
	case FinWait2:
		if c.orphan && !c.timers.armed(timerLife) {
			return fmt.Errorf("orphaned FIN-WAIT-2 without its timer")
		}
	}
	if c.snd.n > d.maxSndBuf {
		return fmt.Errorf("send buffer %d > largest size set %d", c.snd.n, d.maxSndBuf)
	}
	slack := 1 << c.rcvWScale
	if held := c.rcvHeld(); held > d.maxRcvBuf+slack {
		return fmt.Errorf("receive data %d > largest buffer set %d", held, d.maxRcvBuf)
	}
	if c.state.synchronized() && c.state != Closed && !c.rdShut {
		if w := int(c.advertisedRemaining()) + c.rcv.n; w > d.maxRcvBuf+slack {
			return fmt.Errorf("window offered up to %d bytes beyond what was read, largest buffer set %d", w, d.maxRcvBuf)
		}
	}
	maxChunks := (d.maxSndBuf+chunk.Size-1)/chunk.Size + (d.maxRcvBuf+slack+chunk.Size-1)/chunk.Size + 2
	if n := c.BufferedChunks(); n > maxChunks {
		return fmt.Errorf("%d chunks held, at most %d expected", n, maxChunks)
	}
	return nil
}

// keepsDeadline runs call, which NextDeadline's documentation says cannot
// change its answer, and checks that it did not.
func (d *fuzzDriver) keepsDeadline(name string, call func()) error {
	before := d.c.NextDeadline()
	call()
	if after := d.c.NextDeadline(); after != before {
		return fmt.Errorf("%s moved NextDeadline from %v to %v", name, before, after)
	}
	return nil
}

// advance moves virtual time forward by dt, firing timers as an owner
// does: at each deadline, HandleTimeout then PollTransmit.
func (d *fuzzDriver) advance(dt time.Duration) error {
	target := d.now.Add(dt)
	for i := 0; ; i++ {
		dl := d.c.NextDeadline()
		if dl > target {
			break
		}
		if i > 200 {
			break // a long idle period: enough timers for one step
		}
		d.now = max(d.now, dl)
		d.sentSegs, d.sent = 0, d.sent[:0]
		d.c.HandleTimeout(d.now)
		if err := d.drain(); err != nil {
			return err
		}
		if dl := d.c.NextDeadline(); dl <= d.now {
			return fmt.Errorf("deadline %v not after now %v after HandleTimeout", dl, d.now)
		}
		if err := d.check(); err != nil {
			return err
		}
	}
	d.now = max(d.now, target)
	return nil
}

// handshake opens the connection, actively (SYN-SENT, then ESTABLISHED)
// or passively (SYN-RECEIVED, then ESTABLISHED), and stops at stop.
func (d *fuzzDriver) open(active bool, stop State, opt byte) error {
	c := d.c
	ep := Endpoints{Local: d.local, Remote: d.remote, ISS: 0xffff_ff00 - wire.Seq(opt)*0x1000, MTU: 1500, ECN: true}
	d.ourData = ep.ISS.Add(1)
	if active {
		if err := c.Connect(d.now, ep); err != nil {
			return err
		}
		if err := d.drain(); err != nil {
			return err
		}
		if stop == SynSent {
			return nil
		}
		if stop == SynReceived {
			// Simultaneous open.
			s := d.peerSeg(d.peerISN, 0, wire.TCPFlagSYN, 65535, 0)
			d.synOptions(s, opt)
			return d.deliver(s)
		}
		d.now = d.now.Add(50 * time.Millisecond)
		s := d.peerSeg(d.peerISN, c.iss.Add(1), wire.TCPFlagSYN|wire.TCPFlagACK, 65535, 0)
		d.synOptions(s, opt)
		return d.deliver(s)
	}
	syn := d.peerSeg(d.peerISN, 0, wire.TCPFlagSYN, 65535, 0)
	d.synOptions(syn, opt)
	if err := c.OpenPassive(d.now, ep, syn); err != nil {
		return err
	}
	if err := d.drain(); err != nil {
		return err
	}
	if stop == SynReceived {
		return nil
	}
	d.now = d.now.Add(50 * time.Millisecond)
	d.peerTS++
	return d.deliver(d.peerSeg(d.peerISN.Add(1), c.iss.Add(1), wire.TCPFlagACK, 1000, 0))
}

// ackAll has the peer acknowledge everything sent, with window win.
func (d *fuzzDriver) ackAll(win uint16) error {
	c := d.c
	d.peerTS++
	return d.deliver(d.peerSeg(c.rcvNxt, c.sndMax, wire.TCPFlagACK, win, 0))
}

// peerFIN has the peer send its FIN at RCV.NXT, acknowledging ack.
func (d *fuzzDriver) peerFIN(ack wire.Seq) error {
	c := d.c
	d.peerTS++
	return d.deliver(d.peerSeg(c.rcvNxt, ack, wire.TCPFlagFIN|wire.TCPFlagACK, 1000, 0))
}

// setup reaches the state the first byte chooses. Bit 4 of it puts data
// in flight first.
func (d *fuzzDriver) setup(sel, opt byte) error {
	c := d.c
	active := sel&0x20 != 0
	states := [...]State{SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait, Established}
	stop := states[int(sel&0x0f)%len(states)]
	if stop == SynSent {
		active = true
	}
	if err := d.open(active, stop, opt); err != nil {
		return err
	}
	if stop == SynSent || stop == SynReceived {
		return nil
	}
	if sel&0x10 != 0 {
		// Data in flight and some received.
		if err := d.write(3000); err != nil {
			return err
		}
		d.peerTS++
		if err := d.deliver(d.peerSeg(c.rcvNxt, c.sndUna, wire.TCPFlagACK|wire.TCPFlagPSH, 1000, 700)); err != nil {
			return err
		}
	}
	switch stop {
	case FinWait1, FinWait2, Closing, TimeWait:
		c.CloseWrite()
		if err := d.drain(); err != nil {
			return err
		}
		// Acknowledge everything up to and including the FIN, which
		// may need several rounds when the peer's window is small.
		ackFIN := func() error {
			for i := 0; i < 50 && c.state == FinWait1; i++ {
				if err := d.ackAll(65535); err != nil {
					return err
				}
			}
			return nil
		}
		switch stop {
		case FinWait2:
			return ackFIN()
		case Closing:
			return d.peerFIN(c.sndUna)
		case TimeWait:
			if err := ackFIN(); err != nil {
				return err
			}
			return d.peerFIN(c.sndMax)
		}
	case CloseWait, LastAck:
		if err := d.peerFIN(c.sndUna); err != nil {
			return err
		}
		if stop == LastAck {
			c.CloseWrite()
			return d.drain()
		}
	}
	return nil
}

func (d *fuzzDriver) write(n int) error {
	p := make([]byte, n)
	for i := range p {
		p[i] = fuzzPattern(0xa5, d.wrote+uint64(i))
	}
	var k int
	var err error
	if e := d.keepsDeadline("Write", func() { k, err = d.c.Write(p) }); e != nil {
		return e
	}
	if k < 0 || k > n || k > 0 && err != nil {
		return fmt.Errorf("Write(%d) = %d, %v", n, k, err)
	}
	d.wrote += uint64(k)
	return d.drain()
}

var fuzzSteps = [...]time.Duration{0, time.Millisecond, 10 * time.Millisecond, 40 * time.Millisecond,
	200 * time.Millisecond, 500 * time.Millisecond, time.Second, 3 * time.Second, 30 * time.Second,
	2 * time.Minute, 20 * time.Minute, 3 * time.Hour, 25 * 24 * time.Hour, 5 * time.Millisecond,
	100 * time.Millisecond, 61 * time.Second}

// segment builds a segment from an operation's bytes: b[0] high bits and
// b[1] the flags, b[2:4] the sequence number, b[4:6] the acknowledgment
// number, b[6] the window, b[7] the payload length and options.
func (d *fuzzDriver) segment(b []byte) *wire.TCPFields {
	c := d.c
	// Flags: mostly ACK, sometimes anything.
	flags := wire.TCPFlags(b[1]) & (wire.TCPFlagFIN | wire.TCPFlagSYN | wire.TCPFlagRST | wire.TCPFlagPSH | wire.TCPFlagACK)
	if b[0]&0x80 == 0 {
		flags |= wire.TCPFlagACK
		if b[1]&0x40 == 0 {
			flags &^= wire.TCPFlagSYN
		}
		if b[1]&0x80 == 0 {
			flags &^= wire.TCPFlagRST
		}
	}
	// ECN: ECE (and sometimes CWR) on some segments; the codepoint, CE
	// among them, from the same bits.
	if b[1]&0x20 != 0 {
		flags |= wire.TCPFlagECE
		if b[2]&1 != 0 {
			flags |= wire.TCPFlagCWR
		}
	}
	d.ecn = ECN(b[2]>>1) & 3
	// Sequence number: near RCV.NXT or the window's edges.
	sOff := int32(int8(b[2])) * int32(1+b[3]&0x0f)
	var seq wire.Seq
	switch b[3] >> 4 {
	case 0, 1, 2, 3, 4, 5:
		seq = c.rcvNxt
	case 6, 7:
		seq = c.rcvNxt.Add(uint32(sOff) * 8)
	case 8, 9:
		seq = c.rcvAdv.Add(uint32(sOff))
	case 10:
		seq = c.rcvNxt - 1
	case 11:
		seq = c.irs
	case 12:
		seq = c.rcvAdv - 1
	case 13:
		seq = c.rcvNxt.Add(uint32(sOff) << 16)
	case 14:
		seq = wire.Seq(binary.BigEndian.Uint32(b[2:6]))
	default:
		seq = c.rcvNxt.Add(uint32(sOff))
	}
	if b[3]>>4 <= 5 {
		seq = seq.Add(uint32(sOff))
		if b[3]>>4 <= 2 {
			seq = c.rcvNxt
		}
	}
	// Acknowledgment number: near SND.UNA, SND.NXT or SND.MAX.
	aOff := uint32(int32(int8(b[4])))
	var ack wire.Seq
	switch b[5] >> 5 {
	case 0, 1:
		ack = c.sndMax
	case 2:
		ack = c.sndUna
	case 3:
		ack = c.sndUna.Add(aOff * 64)
	case 4:
		ack = c.sndNxt.Add(aOff)
	case 5:
		ack = c.sndUna - wire.Seq(c.maxSndWnd) + wire.Seq(aOff)
	case 6:
		ack = c.sndUna.Add(uint32(b[5]&0x1f) * c.sndMSS)
	default:
		ack = wire.Seq(binary.BigEndian.Uint32(b[3:7]))
	}
	// Window.
	var win uint16
	switch b[6] >> 6 {
	case 0:
		win = 0
	case 1:
		win = uint16(b[6]&0x3f) * 16
	case 2:
		win = uint16(b[6]&0x3f) * 1024
	default:
		win = 0xffff - uint16(b[6]&0x3f)
	}
	// Payload: up to about two MSS.
	n := int(b[7]&0x1f) * 100
	if b[7]&0x1f == 0x1f {
		n = 1
	}
	if n > 0 && flags&wire.TCPFlagRST != 0 && b[0]&0x40 == 0 {
		n = 0
	}
	s := d.peerSeg(seq, ack, flags, win, n)
	// Options.
	switch b[7] >> 5 {
	case 0, 1:
		// As negotiated: a newer timestamp.
		d.peerTS += uint32(b[0] & 0x0f)
		s.Options.TSVal = d.peerTS
	case 2:
		// An older timestamp (PAWS).
		if s.Options.HasTimestamp {
			s.Options.TSVal = c.tsRecent - uint32(b[0]&0x3f)
		}
	case 3:
		// SACK blocks near SND.UNA, possibly bogus.
		s.Options.NumSACK = 1 + b[0]&1 + b[0]>>5&1
		if s.Options.HasTimestamp {
			s.Options.NumSACK = min(s.Options.NumSACK, 3)
		}
		// Mostly a duplicate ACK whose blocks leave holes above
		// SND.UNA, so that recovery, IsLost and NextSeg are reached.
		if b[0]&0x40 == 0 {
			s.Ack = c.sndUna
		}
		for i := 0; i < int(s.Options.NumSACK); i++ {
			st := c.sndUna.Add(uint32(1+b[2+i]&0x1f) * c.sndMSS / 2)
			s.Options.SACK[i] = wire.SACKBlock{Start: st, End: st.Add(uint32(1+b[4+i]&0x07) * c.sndMSS / 2)}
		}
	case 4:
		// No options at all.
		s.Options = wire.TCPOptions{}
	case 5:
		// SYN options on any segment, and a timestamp far ahead.
		d.synOptions(s, b[0])
		if s.Options.HasTimestamp {
			s.Options.TSVal = c.tsRecent + 1<<31 - 1
		}
	default:
		d.peerTS += uint32(b[0])
		s.Options.TSVal = d.peerTS
	}
	return s
}

// op applies one operation.
func (d *fuzzDriver) op(b []byte) error {
	c := d.c
	d.sentSegs, d.sent = 0, d.sent[:0]
	switch b[0] & 0x0f {
	case fzSegment, fzSegment2, fzSegment3, fzSegment4:
		return d.deliver(d.segment(b))
	case fzTime, fzTime2:
		dt := fuzzSteps[b[1]&0x0f] + time.Duration(b[2])*time.Millisecond
		return d.advance(dt)
	case fzWrite:
		n := int(binary.BigEndian.Uint16(b[1:3])) % 20000
		return d.write(n)
	case fzRead:
		n := int(binary.BigEndian.Uint16(b[1:3])) % 20000
		var k int
		var err error
		if e := d.keepsDeadline("Read", func() { k, err = c.Read(d.rbuf[:n]) }); e != nil {
			return e
		}
		if k < 0 || k > n || k > 0 && err != nil {
			return fmt.Errorf("Read(%d) = %d, %v", n, k, err)
		}
		for i := 0; i < k; i++ {
			if d.rbuf[i] != fuzzPattern(0x5a, d.read+uint64(i)) {
				return fmt.Errorf("Read returned byte %d wrong (stream offset %d)", i, d.read+uint64(i))
			}
		}
		d.read += uint64(k)
		return d.drain()
	case fzCloseWrite:
		c.CloseWrite()
		return d.drain()
	case fzCloseRead:
		if err := d.keepsDeadline("CloseRead", func() { c.CloseRead() }); err != nil {
			return err
		}
		return d.drain()
	case fzClose:
		c.Close()
		return d.drain()
	case fzAbort:
		if b[1]&3 == 0 {
			c.Abort()
		}
		return d.drain()
	case fzOption:
		switch b[1] & 3 {
		case 0:
			if err := d.keepsDeadline("SetNoDelay", func() { c.SetNoDelay(b[2]&1 == 1) }); err != nil {
				return err
			}
		case 1:
			c.SetKeepAlive(d.now, b[2]&1 == 1, time.Duration(b[3])*time.Second, time.Duration(b[4])*100*time.Millisecond, int(b[5]&7))
		}
		return d.drain()
	case fzBufSize:
		n := int(binary.BigEndian.Uint16(b[2:4])) * 4
		if err := d.keepsDeadline("SetReadBuffer/SetWriteBuffer", func() {
			if b[1]&1 == 0 {
				c.SetReadBuffer(n)
			} else {
				c.SetWriteBuffer(n)
			}
		}); err != nil {
			return err
		}
		d.maxRcvBuf = max(d.maxRcvBuf, int(c.rcvBufSize))
		d.maxSndBuf = max(d.maxSndBuf, int(c.sndBufSize))
		return d.drain()
	case fzICMP:
		switch b[1] & 3 {
		case 1:
			// A packet too big quoting a sequence number near SND.UNA,
			// in flight or not (RFC 5927), naming an MTU from the least
			// the stack lets through (552) up.
			seq := c.sndUna.Add(uint32(binary.BigEndian.Uint16(b[2:4])) - 32768)
			c.HandlePacketTooBig(d.now, seq, 552+int(b[4])*4)
		case 2:
			// The owner's path MTU cache changed.
			c.SetPathMTU(d.now, 552+int(b[4])*4)
		default:
			c.HandleICMPError(d.now, ErrHostUnreachable)
		}
		return d.drain()
	case fzAckAll:
		return d.ackAll(binary.BigEndian.Uint16(b[1:3]))
	}
	return nil
}

// runFuzzConn runs one input: b[0] chooses the state (low 4 bits), data in
// flight (bit 4) and an active open (bit 5); b[1] the options (bit 0
// timestamps, bit 1 SACK, bit 2 window scaling, bit 4 no delayed ACKs,
// bits 5-7 buffer sizes and the peer's MSS); then operations of fuzzOpLen
// bytes each.
func runFuzzConn(data []byte) error {
	if len(data) < 2 {
		return nil
	}
	d := newFuzzDriver(data[1])
	if err := d.setup(data[0], data[1]); err != nil {
		return fmt.Errorf("setup: %v", err)
	}
	if err := d.check(); err != nil {
		return fmt.Errorf("after setup: %v", err)
	}
	ops := data[2:]
	for i := 0; i+fuzzOpLen <= len(ops) && i < 400*fuzzOpLen; i += fuzzOpLen {
		b := ops[i : i+fuzzOpLen]
		if err := d.op(b); err != nil {
			return fmt.Errorf("op %d (% x): %v", i/fuzzOpLen, b, err)
		}
		if err := d.check(); err != nil {
			return fmt.Errorf("after op %d (% x): %v", i/fuzzOpLen, b, err)
		}
	}
	return nil
}

// TestFuzzConnSetup checks that FuzzConn's first byte reaches the state it
// names, with and without data in flight and for both kinds of open, so
// the fuzzer starts from every state.
func TestFuzzConnSetup(t *testing.T) {
	want := [...]State{SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait, Established}
	for sel := byte(0); sel < 0x40; sel++ {
		if sel&0x0f >= byte(len(want)) {
			continue
		}
		for _, opt := range []byte{0x00, 0x07, 0xf7} {
			d := newFuzzDriver(opt)
			if err := d.setup(sel, opt); err != nil {
				t.Fatalf("sel %#x opt %#x: %v", sel, opt, err)
			}
			if err := d.check(); err != nil {
				t.Fatalf("sel %#x opt %#x: %v", sel, opt, err)
			}
			if got := d.c.State(); got != want[sel&0x0f] {
				t.Errorf("sel %#x opt %#x: state %v, want %v", sel, opt, got, want[sel&0x0f])
			}
		}
	}
}
