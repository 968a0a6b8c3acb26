package eval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/sim"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/tcp/cc"
)

// FrameBytes is the size of a full-sized frame on the bench's links: a
// 1500-byte IP packet in an Ethernet header.
const FrameBytes = 1514

// MinQueue is the least bottleneck queue, in frames, that Path gives when
// it sizes the queue by the bandwidth-delay product.
const MinQueue = 64

// Path is the bottleneck between the sender and the receiver.
type Path struct {
	// Rate is the bottleneck's bandwidth in bits per second.
	Rate uint64
	// RTT is the round-trip propagation delay, split evenly between the
	// two directions.
	RTT time.Duration
	// Loss is the probability that a frame from the sender is lost after
	// the bottleneck (random, independent loss); ACKs are not lost unless
	// AckLoss says so.
	Loss float64
	// AckLoss is the probability that a frame from the receiver (an ACK)
	// is lost, as netem's loss in both directions of interop's
	// TestImpaired loses them.
	AckLoss float64
	// Queue is the bottleneck queue in frames; 0 means one
	// bandwidth-delay product, at least MinQueue.
	Queue int
	// AQM is the queue's discipline (drop-tail by default).
	AQM impair.AQM
	// Jitter spreads the data direction's delay uniformly over
	// ±Jitter, which reorders frames closer together than that.
	Jitter time.Duration
	// Reorder is the probability that a data frame skips the delay
	// (netem's reorder) and overtakes the frames in flight.
	Reorder float64
}

// BDPFrames returns the bandwidth-delay product in full-sized frames.
func (p Path) BDPFrames() int {
	return int(float64(p.Rate) * p.RTT.Seconds() / 8 / FrameBytes)
}

// QueueFrames returns the depth of the bottleneck queue.
func (p Path) QueueFrames() int {
	if p.Queue > 0 {
		return p.Queue
	}
	return max(p.BDPFrames(), MinQueue)
}

// configs returns the impairments of the data and the ACK directions.
func (p Path) configs() (data, ack impair.Config) {
	data = impair.Config{
		Rate: p.Rate, Queue: p.QueueFrames(), AQM: p.AQM,
		Delay: p.RTT / 2, Jitter: p.Jitter, Reorder: p.Reorder, Loss: p.Loss,
	}
	ack = impair.Config{Delay: p.RTT - p.RTT/2, Loss: p.AckLoss}
	return data, ack
}

// String describes the path briefly.
func (p Path) String() string {
	s := fmt.Sprintf("%s, RTT %s, queue %d frames", fmtRate(p.Rate), fmtDur(p.RTT), p.QueueFrames())
	if p.AQM.Kind != impair.DropTail {
		s += " " + p.AQM.Kind.String()
		if p.AQM.ECN {
			s += "+ecn"
		}
	}
	if p.Loss > 0 {
		s += fmt.Sprintf(", loss %g%%", p.Loss*100)
	}
	if p.AckLoss > 0 {
		s += fmt.Sprintf(", ACK loss %g%%", p.AckLoss*100)
	}
	if p.Jitter > 0 {
		s += ", jitter ±" + fmtDur(p.Jitter)
	}
	if p.Reorder > 0 {
		s += fmt.Sprintf(", reorder %g%%", p.Reorder*100)
	}
	return s
}

// Controllers returns the names of the registered congestion controllers
// (cc.Names), the ones every experiment runs.
func Controllers() []string { return cc.Names() }

// DefaultController returns the controller a connection of a stack with
// the default configuration runs.
func DefaultController() string { return tcp.NewEnv(tcp.Config{}).Config().Congestion }

// RequestECN turns on ECN for outgoing connections in cfg: tcp.Config.ECN
// set to ECNRequest, as Linux's net.ipv4.tcp_ecn=1 (request ECN on
// outgoing connections, accept it on incoming ones). The experiments
// count the ECN-capable data frames on the wire, so a negotiation that
// fails shows in the tables as 0 % ECT.
func RequestECN(cfg *stack.Config) { cfg.TCP.ECN = tcp.ECNRequest }

// Addresses on the bench.
var (
	senderAddr   = "10.0.0.1/24"
	receiverAddr = "10.0.0.2/24"
	serverPort   = netip.MustParseAddrPort("10.0.0.2:5001")
)

// table is the data every flow sends: a pseudo-random table, repeated,
// each flow starting at its own offset. Its length is not a power of two
// so that writes and segments meet it at every alignment.
var table = func() []byte {
	b := make([]byte, 1<<20+13)
	r := rand.New(rand.NewPCG(0x5eed, 0xda7a))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// bench is one simulated bottleneck with a sender and a receiver host.
type bench struct {
	net  *sim.Network
	snd  *sim.Node
	rcv  *sim.Node
	link *sim.Link
	path Path

	flows  []*Flow
	byAddr map[netip.AddrPort]*Flow
	rbuf   []byte
	errs   []error
}

// benchConfig varies a bench.
type benchConfig struct {
	// cc is the sender stack's default controller ("" : the stack's).
	cc string
	// ecn requests ECN on both stacks (RequestECN).
	ecn bool
}

// newBench builds the bench: hosts, the link, and the server.
func newBench(seed uint64, p Path, bc benchConfig) (*bench, error) {
	n := sim.New(seed)
	n.MaxSteps = 0 // long runs; each experiment bounds virtual time
	var scfg, rcfg stack.Config
	scfg.TCP.Congestion = bc.cc
	if bc.ecn {
		RequestECN(&scfg)
		RequestECN(&rcfg)
	}
	if err := scfg.TCP.Validate(); err != nil {
		return nil, err
	}
	b := &bench{net: n, path: p, byAddr: map[netip.AddrPort]*Flow{}, rbuf: make([]byte, 256<<10)}
	b.snd = n.AddHost("sender", scfg)
	b.rcv = n.AddHost("receiver", rcfg)
	data, ack := p.configs()
	b.link = n.Link(b.snd.AddNIC(stack.NICConfig{}, senderAddr), b.rcv.AddNIC(stack.NICConfig{}, receiverAddr), data, ack)
	l, err := b.rcv.Stack.Listen(serverPort, 0)
	if err != nil {
		return nil, err
	}
	sim.Watch(l, func(stack.Events) {
		for {
			c := l.Accept()
			if c == nil {
				return
			}
			b.accepted(c)
		}
	})
	return b, nil
}

// data returns the bench's data direction (sender to receiver).
func (b *bench) data() *sim.Dir { return b.link.AB }

// FlowSpec describes one flow.
type FlowSpec struct {
	// CC is the flow's controller; "" uses the sender stack's default.
	CC string
	// Start is when the flow dials, from the start of the run.
	Start time.Duration
	// Size is how many bytes the flow sends; 0 means without end. The
	// sender never closes: a FIN after the last byte would be one more
	// segment to tell a tail loss by.
	Size int64
}

// Flow is one connection of a bench and what happened to it.
type Flow struct {
	Spec FlowSpec
	// Sent is the bytes the sender's Write took; Received the bytes the
	// receiver read, each checked.
	Sent, Received int64
	// Dialed, Established and Done are when the flow dialled, when its
	// sender could first write, and when the receiver had read Size
	// bytes (clock.Never until then).
	Dialed, Established, Done clock.Instant
	// Err is the first error of either side, or a byte that differs.
	Err error

	c, s  *stack.TCPConn
	shift int // where in the table the flow's data starts
	b     *bench
}

// Conn returns the sender's connection.
func (f *Flow) Conn() *stack.TCPConn { return f.c }

// Info returns the sender's TCP_INFO (the zero Info before it dials).
func (f *Flow) Info() tcp.Info {
	if f.c == nil {
		return tcp.Info{}
	}
	return f.c.Info()
}

// dial schedules the flow.
func (b *bench) dial(spec FlowSpec) *Flow {
	f := &Flow{Spec: spec, Done: clock.Never, Established: clock.Never, b: b,
		shift: (len(b.flows)*7919 + 1) % len(table)}
	b.flows = append(b.flows, f)
	b.net.At(clock.Instant(spec.Start), func() {
		now := b.net.Now()
		f.Dialed = now
		c, err := b.snd.Stack.Connect(now, netip.AddrPort{}, serverPort)
		if err != nil {
			f.fail(fmt.Errorf("connect: %w", err))
			return
		}
		if spec.CC != "" {
			if err := c.SetCongestionControl(spec.CC); err != nil {
				f.fail(err)
				return
			}
		}
		c.SetNoDelay(true)
		f.c = c
		b.byAddr[c.LocalAddr()] = f
		sim.Watch(c, func(stack.Events) { f.write() })
	})
	return f
}

func (f *Flow) fail(err error) {
	if f.Err == nil {
		f.Err = err
		f.b.errs = append(f.b.errs, fmt.Errorf("flow %d: %w", f.index(), err))
	}
}

func (f *Flow) index() int {
	for i, g := range f.b.flows {
		if g == f {
			return i
		}
	}
	return -1
}

// write writes what the connection takes.
func (f *Flow) write() {
	c := f.c
	switch st := c.State(); st {
	case tcp.SynSent, tcp.SynReceived:
		return
	case tcp.Closed:
		if err := c.Err(); err != nil {
			f.fail(err)
		}
		return
	}
	if f.Established == clock.Never {
		f.Established = f.b.net.Now()
	}
	for f.Spec.Size == 0 || f.Sent < f.Spec.Size {
		pos := int((f.Sent + int64(f.shift)) % int64(len(table)))
		chunk := table[pos:min(pos+64<<10, len(table))]
		if f.Spec.Size > 0 {
			chunk = chunk[:min(int64(len(chunk)), f.Spec.Size-f.Sent)]
		}
		n, err := c.Write(chunk)
		f.Sent += int64(n)
		if errors.Is(err, stack.ErrWouldBlock) || (err == nil && n < len(chunk)) {
			return
		}
		if err != nil {
			f.fail(err)
			return
		}
	}
}

// accepted takes a connection the server accepted.
func (b *bench) accepted(s *stack.TCPConn) {
	f := b.byAddr[s.RemoteAddr()]
	if f == nil {
		b.errs = append(b.errs, fmt.Errorf("server accepted %v, which no flow dialled", s.RemoteAddr()))
		s.Abort()
		return
	}
	f.s = s
	sim.Watch(s, func(stack.Events) { f.read() })
	f.read()
}

// read reads everything the connection has and checks it.
func (f *Flow) read() {
	s := f.s
	for {
		n, err := s.Read(f.b.rbuf)
		if n > 0 {
			f.check(f.b.rbuf[:n])
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, stack.ErrWouldBlock):
		case err == io.EOF:
			if f.Spec.Size == 0 || f.Received < f.Spec.Size {
				f.fail(errors.New("EOF before the end of the data"))
			}
		default:
			f.fail(err)
		}
		return
	}
}

// check compares bytes read with the table and advances Received.
func (f *Flow) check(p []byte) {
	for len(p) > 0 {
		pos := int((f.Received + int64(f.shift)) % int64(len(table)))
		k := min(len(p), len(table)-pos)
		if !bytes.Equal(p[:k], table[pos:pos+k]) {
			f.fail(fmt.Errorf("byte at offset about %d differs from the byte written", f.Received))
		}
		f.Received += int64(k)
		p = p[k:]
	}
	if f.Spec.Size > 0 && f.Received >= f.Spec.Size && f.Done == clock.Never {
		f.Done = f.b.net.Now()
	}
}

// every calls fn every d of virtual time from the next instant on, as
// long as the network runs.
func (b *bench) every(d time.Duration, fn func(now clock.Instant)) {
	var tick func()
	tick = func() {
		fn(b.net.Now())
		b.net.After(d, tick)
	}
	b.net.After(d, tick)
}

// run runs the network for d of virtual time from its start, or until
// stop reports true, whichever comes first. It returns the error of any
// flow, or the simulator's.
func (b *bench) run(d time.Duration, stop func() bool) error {
	end := clock.Instant(d)
	if stop == nil {
		stop = func() bool { return false }
	}
	err := b.net.Run(end.Sub(b.net.Now()), func() bool { return len(b.errs) > 0 || stop() || b.net.Now() >= end })
	if err != nil && !errors.Is(err, sim.ErrTimeLimit) {
		return err
	}
	if len(b.errs) > 0 {
		return b.errs[0]
	}
	if v := b.net.Violations(); len(v) > 0 {
		return fmt.Errorf("simulator: %s", v[0])
	}
	return nil
}

// senderStats returns the sender stack's counters.
func (b *bench) senderStats() stack.Stats { return b.snd.Stack.Stats() }

// receiverStats returns the receiver stack's counters.
func (b *bench) receiverStats() stack.Stats { return b.rcv.Stack.Stats() }

// fmtDur formats a duration for tables: "10 ms", "2 s", "1.5 ms".
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second && d%time.Second == 0:
		return fmt.Sprintf("%d s", d/time.Second)
	case d >= time.Millisecond && d%time.Millisecond == 0:
		return fmt.Sprintf("%d ms", d/time.Millisecond)
	case d >= time.Millisecond:
		return fmt.Sprintf("%g ms", d.Seconds()*1e3)
	}
	return d.String()
}

// fmtRate formats bits per second with the largest whole unit.
func fmtRate(r uint64) string {
	switch {
	case r >= 1e9 && r%1e9 == 0:
		return fmt.Sprintf("%d Gbit/s", r/1e9)
	case r >= 1e6 && r%1e6 == 0:
		return fmt.Sprintf("%d Mbit/s", r/1e6)
	case r >= 1e3 && r%1e3 == 0:
		return fmt.Sprintf("%d kbit/s", r/1e3)
	}
	return fmt.Sprintf("%d bit/s", r)
}

// Jain returns Jain's fairness index of xs, (Σx)² / (n·Σx²): 1 when all
// are equal, 1/n when one has everything. It is 0 for no values or all
// zero.
func Jain(xs []float64) float64 {
	var s, s2 float64
	for _, x := range xs {
		s += x
		s2 += x * x
	}
	if s2 == 0 {
		return 0
	}
	return s * s / (float64(len(xs)) * s2)
}
