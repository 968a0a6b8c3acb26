package tcp

import (
	"fmt"
	"io"
	"math"
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/minmax"
	"github.com/ustack/ustack/tcp/cc"
	"github.com/ustack/ustack/wire"
)

// Env is what the connections of one stack (or one shard of it) share: the
// configuration, the counters, and the global challenge-ACK budget of RFC
// 5961 §7. It is not safe for concurrent use; its owner serialises access,
// as it does for the connections.
type Env struct {
	cfg Config
	// Stats are the counters every connection of this Env adds to.
	Stats Stats

	challengeWindow clock.Instant // start of the current one-second window
	challengeCount  int

	// Scratch state of one call into one connection, kept here rather
	// than in every Conn (docs/ARCHITECTURE.md, "Memory per connection"):
	// the Env's owner serialises the calls, and none of it outlives the
	// call that fills it. ackEv is the ACK being processed (processACK,
	// and RACK's reordering timeout); super is the shape of the
	// super-segment sendData just wrote, for PollTransmitBatch
	// (segs ≤ 1: an ordinary segment).
	ackEv ackEvent
	super superShape
	// sackWork counts the scoreboard ranges and records SACK tagging
	// visited, for the tests that bound it.
	sackWork uint64

	// mem is this Env's share of the stack-wide buffer budget
	// (memory.go).
	mem envMem

	// pools hold the Conns, records and controllers parking gives back
	// (park.go); ccDefault is cfg.Congestion, interned.
	pools     parkPools
	ccDefault *string
	// oow holds the out-of-window ACK times of parked records
	// (parkseg.go).
	oow oowQueue
}

// superShape is the shape of a super-segment: segments, header length,
// segment size.
type superShape struct{ segs, hdr, size int }

// NewEnv returns an Env with cfg, missing fields set to their defaults. Its
// connections charge cfg.Memory, or a new account with cfg.Mem's limits.
func NewEnv(cfg Config) *Env {
	cfg.setDefaults()
	m := cfg.Memory
	if m == nil {
		m = NewMemory(cfg.Mem)
		cfg.Memory = m
	}
	cfg.Mem = m.Limits()
	return &Env{cfg: cfg, challengeWindow: -1 << 62, mem: envMem{m: m}, ccDefault: internCC(cfg.Congestion)}
}

// Config returns the Env's configuration, with defaults filled in.
func (e *Env) Config() *Config { return &e.cfg }

// allowChallenge reports whether one more challenge ACK fits this second's
// budget (RFC 5961 §7).
func (e *Env) allowChallenge(now clock.Instant) bool {
	if now.Sub(e.challengeWindow) >= time.Second {
		e.challengeWindow = now
		e.challengeCount = 0
	}
	if e.challengeCount >= e.cfg.ChallengeACKLimit {
		return false
	}
	e.challengeCount++
	return true
}

// Events are the things a connection reports to its owner through
// TakeEvents, so that blocked readers, writers and dialers can be woken.
type Events uint8

// The events.
const (
	// EventEstablished: the handshake completed.
	EventEstablished Events = 1 << iota
	// EventReadable: data or the peer's FIN arrived.
	EventReadable
	// EventWritable: send buffer space was freed.
	EventWritable
	// EventClosed: the connection reached CLOSED; Err says why if it
	// failed. The owner may forget it once the application has too.
	EventClosed
)

// ctlReply is a one-off control segment to send, such as a RST in answer to
// an unacceptable ACK (RFC 9293 §3.10.7.3).
type ctlReply struct {
	seq     wire.Seq
	ack     wire.Seq
	flags   wire.TCPFlags
	pending bool
}

// Conn is one TCP connection. The zero value is not usable: make one with
// NewConn and open it with Connect or OpenPassive. A Conn is not safe for
// concurrent use.
type Conn struct {
	env *Env

	// Flags, packed together (docs/ARCHITECTURE.md, "Memory per
	// connection"); each is described where its group below would have
	// it.
	state        State
	passive      bool // opened by a listener (SYN-RECEIVED goes back to LISTEN on RST)
	finQueued    bool // the application closed the sending half
	rcvFinOOO    bool // a FIN arrived out of order (rcvFinSeq)
	rdShut       bool // the application shut down reading
	orphan       bool // the application closed the connection
	rttTiming    bool // a segment is being timed (rttSeq, rttStart)
	ccSetsWindow bool // cc.SetsRecoveryWindow(), asked once
	dsackNow     bool // dsack is to be reported
	ackNow       bool // an ACK is due at once
	// pacingBehind: data waited for the pacing clock and has not caught
	// up with it since (see pace).
	pacingBehind bool
	// tlpProbe: the segment being built is a tail-loss probe of new data
	// (RFC 8985 §7.3), which goes whatever cwnd allows.
	tlpProbe  bool
	noDelay   bool // set by the application
	keepAlive bool // set by the application
	stuneOn   bool // the send buffer follows cwnd (autotune.go)
	events    Events
	// Send side (below).
	synPending bool // a SYN or SYN-ACK is due (first or retransmitted)
	rexmitNow  bool // resend one segment at SND.UNA (fast retransmit, partial ACK, zero-window probe after an RTO)
	probeNow   bool // a zero-window probe is due
	keepNow    bool // a keep-alive probe is due
	forceSend  bool // send what fits, despite SWS avoidance (override timeout)
	// ECN (below).
	ecnOK, ecnAsked, ecnEcho, cwrPending bool
	ecnIP                                bool // Endpoints.ECN
	ecnIn, ecnOut                        ECN
	totalRetrans                         uint32 // TCP_INFO (below), here to fill the flags' last word

	local, remote netip.AddrPort

	// Send sequence variables (RFC 9293 §3.3.1).
	iss    wire.Seq // initial send sequence number
	sndUna wire.Seq // oldest unacknowledged sequence number
	sndNxt wire.Seq // next sequence number to send (rewound to SND.UNA by an RTO)
	sndMax wire.Seq // one past the highest sequence number ever sent
	sndWnd uint32   // send window the peer offered, scaled
	sndWl1 wire.Seq // segment sequence number used for the last window update
	sndWl2 wire.Seq // segment acknowledgment number used for the last window update
	// maxSndWnd is the largest window the peer has offered (sender SWS
	// avoidance, RFC 9293 §3.8.6.2.1; ACK acceptability, RFC 5961 §5.2).
	maxSndWnd uint32

	// Receive sequence variables.
	irs    wire.Seq // initial receive sequence number
	rcvNxt wire.Seq // next sequence number expected
	rcvAdv wire.Seq // right edge of the last window advertised (RCV.NXT + RCV.WND when sent)

	// Options (RFC 9293 §3.7.1, RFC 7323, RFC 2018).
	sndWScale, rcvWScale uint8   // window shifts: the peer's, and ours
	wsOK, tsOK, sackOK   bool    // options both sides agreed on
	advMSS               uint16  // the MSS we announced (from our MTU)
	sndMSS               uint32  // data bytes in a full segment we send (options excluded)
	rcvMSS               uint32  // largest data size the peer has sent us
	epPathMTU            int32   // Endpoints.PathMTU
	plp                  plpmtud // path MTU: PTB and PLPMTUD (plpmtud.go)
	tsRecent             uint32  // TS.Recent (RFC 7323 §4.3)
	tsOffset             uint32  // added to our TSval
	tsRecentAt           clock.Instant
	lastAckSent          wire.Seq // Last.ACK.sent (RFC 7323 §4.3)
	finSeq               wire.Seq // sequence number of our FIN, once queued (send side)

	// Send side.
	snd sendBuf
	// sndBufSize and rcvBufSize are the buffer sizes (SO_SNDBUF,
	// SO_RCVBUF), 32-bit as Linux's sk_sndbuf and sk_rcvbuf.
	sndBufSize, rcvBufSize int32
	reply                  ctlReply
	rcvFinSeq              wire.Seq // sequence number of a FIN that arrived out of order (receive side)

	// Receive side.
	rcv         recvBuf
	ooo         *ooo     // out-of-order data held: nil while there is none (ranges.go)
	dsack       seqRange // a duplicate range to report (RFC 2883)
	rcvUnacked  uint32   // bytes received since the last ACK we sent
	quickAcks   int32    // segments still to ACK at once (slow-start of the peer)
	lastOOWAck  clock.Instant
	lastRecv    clock.Instant
	lastSend    clock.Instant
	keepProbes  int32
	synRetries  int32 // SYN or SYN-ACK retransmissions so far
	rexmitCount int32 // consecutive RTOs or unanswered probes without progress
	// probeBackoff counts the zero-window probes sent since the window
	// closed: the exponent of their back-off.
	probeBackoff int32
	rttSeq       wire.Seq // the timed segment's end (RTT timing below)
	keepCount    int32    // set by the application (options below)

	// Retransmission timer (RFC 6298) and RTT timing (one segment at a
	// time, Karn's rule: RFC 6298 §3).
	rtt      rttEstimator
	rto      time.Duration // current RTO, including back-off
	rttStart clock.Instant

	// Congestion control (tcp/cc), made by name when the handshake fixes
	// the MSS, and the time the next data segment may go at its pacing
	// rate.
	cc         cc.Controller
	ccName     *string // interned (internCC): 8 bytes, not 16
	pacingNext clock.Instant

	// What is in flight (delivery.go): the SACK scoreboard, a record of
	// every segment sent and not yet acknowledged (sent.go), the
	// delivery-rate sampler, and the minimum RTT seen.
	sb     scoreboard
	sent   sentQueue
	rs     rateSampler
	minRTT minmax.Filter

	// Loss recovery (recovery.go): rec is a *renoRecovery,
	// *sackRecovery or *rackRecovery, made when the handshake settles
	// SACK (selectRecovery), out of line so that a connection carries
	// only the algorithm it runs; nil before. rack is rec when it is
	// RACK (for its timers), else nil.
	rec  lossRecovery
	lr   *recoveryBase // rec's recoveryBase
	rack *rackRecovery

	// ECN (RFC 3168, ecn.go): negotiated; asked for in our SYN; CE
	// seen and not yet answered by CWR (ECE on every segment); CWR owed
	// on the next new data segment; the codepoint of the segment being
	// handled, and of the segment last written.

	// Buffer auto-tuning (autotune.go): the receive side's measurement,
	// whether the send buffer follows cwnd, the bytes the application
	// read.
	rtune        rcvTuner
	bytesRead    uint64
	lastDataRecv clock.Instant // when in-order data last arrived

	// Per-connection options set by the application.
	keepIdle, keepIntvl       time.Duration
	timers                    timerTable
	err                       error
	bytesSent, bytesRetrans   uint64
	bytesAcked, bytesReceived uint64
	segsIn, segsOut           uint32 // 32 bits, as Linux's tcp_info
}

// NewConn returns a closed connection that will use env. The Conn comes
// from env's pool of those parking gave back when it holds one (a server
// taking connections while others park reuses their memory instead of
// making garbage), else it is allocated.
func NewConn(env *Env) *Conn {
	c := env.freshConn()
	c.ccName, c.minRTT = env.ccDefault, minmax.NewMin()
	c.timers.stopAll()
	c.sent.init()
	c.sndBufSize = clampInt32(env.cfg.SndBuf)
	c.rcvBufSize = clampInt32(env.cfg.RcvBuf)
	c.rtune.on = env.cfg.RcvBufMax > env.cfg.RcvBuf
	c.stuneOn = env.cfg.SndBufMax > env.cfg.SndBuf
	c.keepIdle = env.cfg.KeepIdle
	c.keepIntvl = env.cfg.KeepInterval
	c.keepCount = clampInt32(env.cfg.KeepCount)
	return c
}

// Endpoints are what the stack decides when a connection opens.
type Endpoints struct {
	// Local and Remote are the connection's addresses.
	Local, Remote netip.AddrPort
	// ISS is the initial send sequence number (from an ISNGenerator).
	ISS wire.Seq
	// TSOffset is added to every TSval this connection sends.
	TSOffset uint32
	// MTU is the IP MTU of the route to Remote; the MSS announced is MTU
	// minus the fixed IP and TCP headers: 40 bytes over IPv4 (RFC 9293
	// §3.7.1), 60 over IPv6 (RFC 8200 §8.3), by Remote's family.
	MTU int
	// PathMTU, when not 0, is a smaller MTU path MTU discovery learned
	// for Remote (RFC 1191, RFC 8201): it lowers the MSS sent, not the
	// one announced (as Linux's tcp_sync_mss and tcp_advertise_mss).
	PathMTU int
	// ECN says the owner carries the IP header's ECN field both ways for
	// this connection: it passes each arriving segment's codepoint to
	// HandleSegmentECN and writes each Transmit.ECN into the packet it
	// sends. Without it ECN is neither asked for nor agreed to, whatever
	// Config.ECN says: a connection that agreed to ECN but never saw the
	// CE marks would not hear of congestion at all (RFC 3168 §6.1.1).
	ECN bool
}

func (c *Conn) setEndpoints(now clock.Instant, ep Endpoints) {
	c.local, c.remote = ep.Local, ep.Remote
	c.iss = ep.ISS
	c.sndUna, c.sndNxt, c.sndMax = ep.ISS, ep.ISS, ep.ISS
	c.tsOffset = ep.TSOffset
	c.ecnIP = ep.ECN
	c.advMSS = advMSS(ep)
	c.epPathMTU = clampInt32(ep.PathMTU)
	c.rcvMSS = min(uint32(c.advMSS), 536)
	c.rcvWScale = 0
	if !c.env.cfg.NoWindowScale {
		c.rcvWScale = windowShift(c.maxRcvBuf())
	}
	c.rto = c.env.cfg.InitialRTO
	c.lastRecv, c.lastSend = now, now
}

// maxRcvBuf is the largest receive buffer the connection may have: the
// window scale must be able to announce it (RFC 7323 §2.3).
func (c *Conn) maxRcvBuf() int {
	if c.rtune.on {
		return max(c.env.cfg.RcvBufMax, int(c.rcvBufSize))
	}
	return int(c.rcvBufSize)
}

// windowShift returns the smallest shift that lets a 16-bit window field
// describe a buffer of size n (RFC 7323 §2.3), at most 14.
func windowShift(n int) uint8 {
	s := uint8(0)
	for s < 14 && (65535<<s) < n {
		s++
	}
	return s
}

// Connect starts an active open (RFC 9293 §3.10.1): the connection goes to
// SYN-SENT and its SYN is ready for PollTransmit.
func (c *Conn) Connect(now clock.Instant, ep Endpoints) error {
	if c.state != Closed || c.local.IsValid() {
		return ErrInvalid
	}
	c.setEndpoints(now, ep)
	c.state = SynSent
	c.synPending = true
	c.env.Stats.ActiveOpens++
	return nil
}

// OpenPassive opens a connection for a SYN that arrived at a listener
// (RFC 9293 §3.10.7.2): the connection goes to SYN-RECEIVED with its
// SYN-ACK ready for PollTransmit. The caller has checked that syn has SYN
// set and neither ACK nor RST.
func (c *Conn) OpenPassive(now clock.Instant, ep Endpoints, syn *wire.TCPFields) error {
	if c.state != Closed || c.local.IsValid() {
		return ErrInvalid
	}
	c.setEndpoints(now, ep)
	c.passive = true
	c.state = SynReceived
	c.irs = syn.Seq
	c.rcvNxt = syn.Seq.Add(1)
	c.negotiate(now, syn)
	c.sndWnd = uint32(syn.Window) // RFC 7323 §2.2: never scaled in a SYN
	c.maxSndWnd = c.sndWnd
	c.sndWl1, c.sndWl2 = syn.Seq, c.iss
	c.synPending = true
	c.lastRecv = now
	c.env.Stats.PassiveOpens++
	return nil
}

// negotiate applies the options of the peer's SYN (passive open, before
// our SYN-ACK, which then offers only what the peer offered) or SYN-ACK
// (active open).
func (c *Conn) negotiate(now clock.Instant, syn *wire.TCPFields) {
	o := &syn.Options
	cfg := &c.env.cfg
	// MSS (RFC 9293 §3.7.1, MUST-15: when the option is absent, 536
	// over IPv4, 1220 over IPv6).
	peerMSS := uint32(defaultMSS(c.remote))
	if o.MSS != 0 {
		peerMSS = uint32(o.MSS)
	}
	mss := min(peerMSS, uint32(c.advMSS))
	if mss < 64 {
		mss = 64 // as Linux's TCP_MIN_MSS (88) guards, refuse absurd MSS
	}
	// Window scale (RFC 7323 §2.2): both sides must send the option.
	c.wsOK = o.HasWScale && !cfg.NoWindowScale
	if c.wsOK {
		c.sndWScale = min(o.WScale, 14) // RFC 7323 §2.3: clamp to 14
	} else {
		c.sndWScale, c.rcvWScale = 0, 0
	}
	// Timestamps (RFC 7323 §3.2).
	c.tsOK = o.HasTimestamp && !cfg.NoTimestamps
	if c.tsOK {
		c.tsRecent = o.TSVal
		c.tsRecentAt = now
		mss -= 12 // every segment carries the 12-byte option (RFC 9293 §3.7.1)
	}
	// SACK-permitted (RFC 2018 §2).
	c.sackOK = o.SACKPermitted && !cfg.NoSACK
	// ECN (RFC 3168 §6.1.1).
	c.ecnNegotiate(syn)
	c.sndMSS = mss
	c.plpInit()
	c.selectRecovery()
	c.startCongestionControl()
}

// ccParams returns what a new controller starts from.
func (c *Conn) ccParams() cc.Params {
	return cc.Params{MSS: c.sndMSS, InitialWindow: cc.InitialWindow(c.sndMSS, c.env.cfg.InitialCwnd), Pacing: c.env.cfg.Pacing}
}

// startCongestionControl makes the connection's controller once the MSS
// is known.
func (c *Conn) startCongestionControl() {
	ctl := c.env.takeCC(*c.ccName)
	if ctl == nil {
		var err error
		if ctl, err = cc.New(*c.ccName); err != nil {
			// Names are checked when set; the registry forgets none.
			ctl = cc.NewReno(c.sndMSS)
		}
	}
	ctl.Init(c.ccParams())
	c.cc = ctl
	c.ccSetsWindow = ctl.SetsRecoveryWindow()
}

// SetCongestionControl selects the connection's congestion controller by
// the name it is registered under in package cc, as Linux's TCP_CONGESTION
// socket option does. Before the handshake the choice takes effect when
// the connection starts; on an open connection the new controller starts
// from the current window and slow-start threshold (Linux keeps snd_cwnd
// and snd_ssthresh across a switch). An unknown name changes nothing and
// fails with an error that matches ErrUnknownCongestion and
// syscall.ENOENT, as the kernel's setsockopt does.
func (c *Conn) SetCongestionControl(name string) error {
	if name == "" {
		return fmt.Errorf("%w %q", ErrUnknownCongestion, name)
	}
	ctl, err := cc.New(name)
	if err != nil {
		return fmt.Errorf("%w %q", ErrUnknownCongestion, name)
	}
	if *c.ccName != name {
		c.ccName = internCC(name)
	}
	if c.cc == nil || c.cc.Name() == name {
		return nil
	}
	p := c.ccParams()
	p.Cwnd, p.Ssthresh = c.cc.Cwnd(), c.cc.Ssthresh()
	ctl.Init(p)
	c.cc = ctl
	c.ccSetsWindow = ctl.SetsRecoveryWindow()
	return nil
}

// CongestionControl returns the name of the connection's congestion
// controller (TCP_CONGESTION).
func (c *Conn) CongestionControl() string { return *c.ccName }

// State returns the connection's state.
func (c *Conn) State() State { return c.state }

// LocalAddr returns the local address and port.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// RemoteAddr returns the peer's address and port.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// Err returns the error that ended the connection, or nil.
func (c *Conn) Err() error { return c.err }

// TakeEvents returns the events since the last call and clears them.
func (c *Conn) TakeEvents() Events {
	e := c.events
	c.events = 0
	return e
}

// Readable reports whether Read would return without ErrWouldBlock.
func (c *Conn) Readable() bool {
	return c.rcv.n > 0 || c.rdShut || c.eof() || c.err != nil
}

// eof reports whether the peer's FIN has been received (and so no more data
// will arrive).
func (c *Conn) eof() bool {
	switch c.state {
	case CloseWait, LastAck, Closing, TimeWait:
		return true
	case Closed:
		return true
	}
	return false
}

// Writable reports whether Write would accept at least one byte, or fail
// without ErrWouldBlock.
func (c *Conn) Writable() bool {
	if !c.state.canSendData() || c.finQueued {
		return c.state != SynSent && c.state != SynReceived
	}
	return c.sndRoom() > 0
}

// Read copies received data into p (RFC 9293 §3.10.3). It returns
// ErrWouldBlock when nothing is buffered and more may come, io.EOF once the
// peer's FIN has been read up to, and the connection's error after a RST or
// timeout, once buffered data has been read.
func (c *Conn) Read(p []byte) (int, error) {
	if c.rdShut {
		return 0, io.EOF
	}
	if c.rcv.n > 0 {
		if len(p) == 0 {
			return 0, nil
		}
		n := c.rcv.read(c.env, p, !c.ooo.empty())
		c.bytesRead += uint64(n)
		c.afterRead()
		c.rearmIdle()
		return n, nil
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.eof():
		return 0, io.EOF
	case c.state == SynSent || c.state == SynReceived:
		return 0, ErrWouldBlock
	}
	return 0, ErrWouldBlock
}

// afterRead sends a window update if reading opened the window enough
// (RFC 9293 §3.8.6.2.2; Linux tcp_cleanup_rbuf's rule: when the window
// could now more than double and it had shrunk to half the buffer or less).
func (c *Conn) afterRead() {
	if !c.state.canRecvData() {
		return
	}
	cur := c.advertisedRemaining()
	// Only what the window field can announce counts: without window
	// scaling a large buffer cannot open the window past 65535, and an
	// ACK repeating the same window would be a useless window update
	// (Linux compares with the window it would select, bounded by
	// window_clamp).
	free := min(c.rcvOffer(), uint32(65535)<<c.rcvWScale)
	if 2*cur <= uint32(c.rcvBufSize) && free >= 2*cur && free-cur >= min(uint32(c.rcvBufSize)/2, c.rcvMSS) {
		c.ackNow = true
		c.env.Stats.WindowUpdates++
	}
}

// Write queues p for sending (RFC 9293 §3.10.2) and returns how much it
// took: less than len(p) when the send buffer filled, and ErrWouldBlock if
// it took nothing. Data is sent by PollTransmit.
func (c *Conn) Write(p []byte) (int, error) {
	switch {
	case c.err != nil:
		return 0, c.err
	case c.finQueued || c.orphan:
		return 0, ErrBrokenPipe
	case c.state == SynSent || c.state == SynReceived:
		return 0, ErrWouldBlock
	case !c.state.canSendData():
		return 0, ErrNotConnected
	}
	if len(p) == 0 {
		return 0, nil
	}
	room := c.sndRoom()
	if room <= 0 {
		return 0, ErrWouldBlock
	}
	c.checkAppLimited()
	n := c.snd.write(c.env, p, room)
	return n, nil
}

// CloseWrite closes the sending half (shutdown(SHUT_WR), RFC 9293 §3.10.4):
// a FIN follows the data already written. Reading goes on.
func (c *Conn) CloseWrite() error {
	switch c.state {
	case Closed:
		if c.err != nil {
			return c.err
		}
		return ErrNotConnected
	case SynSent:
		// Nothing was sent but a SYN: the connection just ends.
		c.finish(nil)
		return nil
	case SynReceived, Established:
		c.queueFIN()
		c.state = FinWait1
	case CloseWait:
		c.queueFIN()
		c.state = LastAck
	}
	return nil
}

func (c *Conn) queueFIN() {
	if c.finQueued {
		return
	}
	c.finQueued = true
	if c.state == SynReceived {
		c.finSeq = c.iss.Add(1)
	} else {
		c.finSeq = c.sndUna.Add(uint32(c.snd.n))
	}
	if c.state == Established || c.state == CloseWait {
		c.env.Stats.CurrEstab--
	}
}

// CloseRead shuts down the receiving half (shutdown(SHUT_RD)): Read returns
// io.EOF from now on; data that arrives is acknowledged and dropped.
func (c *Conn) CloseRead() error {
	c.rdShut = true
	c.rcv.discard(c.env, c.rcv.n, !c.ooo.empty())
	return nil
}

// Close is the application's close(2): the connection is orphaned and shuts
// down in the background (RFC 9293 §3.10.4). If unread data is buffered,
// or data arrives later, the connection is reset instead, as Linux does
// (RFC 2525 §2.17).
func (c *Conn) Close() error {
	if c.orphan {
		return nil
	}
	c.orphan = true
	if c.state == Closed {
		// Already CLOSED (after a reset, a timeout, or TIME-WAIT ended
		// while data stayed readable): nothing goes out, and the unread
		// data goes with the TCB (RFC 9293 §3.10.4; Linux tcp_close sends
		// no reset for a socket already in TCP_CLOSE).
		c.rcv.discard(c.env, c.rcv.n, false)
		c.rcv.free(c.env)
		return nil
	}
	if c.rcv.n > 0 && !c.rdShut {
		c.env.Stats.AbortOnClose++
		c.abort()
		return nil
	}
	switch c.state {
	case SynSent:
		c.finish(nil)
		return nil
	case Established, SynReceived, CloseWait:
		c.CloseWrite()
	}
	if c.state == FinWait2 {
		c.timers.set(timerLife, c.lastRecv.Add(c.env.cfg.FinTimeout))
	}
	return nil
}

// Abort resets the connection (SO_LINGER with a zero timeout, RFC 9293
// §3.10.5): a RST goes out and the connection is closed.
func (c *Conn) Abort() {
	if c.state == Closed {
		c.Close() // nothing to reset; free what is unread
		return
	}
	c.orphan = true
	c.env.Stats.AbortOnLinger++
	c.abort()
}

// abort sends a RST if the peer may know of the connection, then closes it
// with ErrConnAborted.
func (c *Conn) abort() {
	switch c.state {
	case SynReceived, Established, FinWait1, FinWait2, CloseWait:
		c.reply = ctlReply{pending: true, seq: c.ctlSeq(), ack: c.rcvNxt, flags: wire.TCPFlagRST | wire.TCPFlagACK}
		c.env.Stats.OutRsts++
	}
	c.finish(ErrConnAborted)
}

// finish moves the connection to CLOSED with err (nil for an orderly end),
// frees its buffers and stops its timers. A pending RST is still sent.
func (c *Conn) finish(err error) {
	if c.state == Closed {
		return
	}
	if (c.state == Established || c.state == CloseWait) && !c.finQueued {
		c.env.Stats.CurrEstab--
	}
	if c.state == SynSent || c.state == SynReceived {
		c.env.Stats.AttemptFails++
	}
	c.state = Closed
	if c.err == nil {
		c.err = err
	}
	c.snd.ack(c.env, c.snd.n)
	c.snd.free(c.env)
	// Data already received stays readable for the application (then
	// Read reports err), unless nobody will read it.
	if c.orphan || c.rdShut || c.rcv.n == 0 {
		c.rcv.discard(c.env, c.rcv.n, false)
		c.rcv.free(c.env)
	}
	c.oooRelease()
	c.releaseRecovery()
	c.sent.free()
	c.sb.free()
	c.timers.stopAll()
	c.synPending, c.rexmitNow, c.probeNow, c.keepNow, c.ackNow = false, false, false, false, false
	c.events |= EventClosed | EventReadable | EventWritable
}

// SetNoDelay turns Nagle's algorithm off (TCP_NODELAY) or back on (RFC 9293
// §3.7.4).
func (c *Conn) SetNoDelay(on bool) { c.noDelay = on }

// SetKeepAlive turns keep-alive probes on or off (SO_KEEPALIVE, RFC 1122
// §4.2.3.6); idle, interval and count replace the defaults when positive.
func (c *Conn) SetKeepAlive(now clock.Instant, on bool, idle, interval time.Duration, count int) {
	c.keepAlive = on
	if idle > 0 {
		c.keepIdle = idle
	}
	if interval > 0 {
		c.keepIntvl = interval
	}
	if count > 0 {
		c.keepCount = clampInt32(count)
	}
	c.armKeepAlive(now)
}

// KeepAlive reports whether keep-alive is on.
func (c *Conn) KeepAlive() bool { return c.keepAlive }

// SetReadBuffer sets the receive buffer size (SO_RCVBUF) and turns its
// auto-tuning off, as SO_RCVBUF locks it on Linux. The window never
// shrinks below what was already advertised; the window scale, fixed at
// the handshake, limits how large a window can be announced.
func (c *Conn) SetReadBuffer(n int) {
	c.rcvBufSize = clampInt32(min(max(n, minBuf), maxBuf))
	c.rtune.on = false
}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF) and turns its
// auto-tuning off.
func (c *Conn) SetWriteBuffer(n int) {
	c.sndBufSize = clampInt32(min(max(n, minBuf), maxBuf))
	c.stuneOn = false
}

// ReopenISS returns the initial sequence number a new connection should use
// when a SYN reopens this one from TIME-WAIT (Linux: SND.NXT + 65535 + 2),
// so its segments cannot be mistaken for the old connection's.
func (c *Conn) ReopenISS() wire.Seq { return c.sndNxt.Add(65535 + 2) }

// TimeWaitReusable reports whether ReuseTimeWait(now, delay) would end
// the connection.
func (c *Conn) TimeWaitReusable(now clock.Instant, delay time.Duration) bool {
	return c.state == TimeWait && c.tsOK && now.Sub(c.tsRecentAt) >= delay
}

// ReuseTimeWait ends a connection in TIME-WAIT so that a new outgoing
// connection may take its 4-tuple, and returns the ISS that connection
// should use (ReopenISS), as Linux's tcp_twsk_unique does with
// net.ipv4.tcp_tw_reuse. It does so only if timestamps are in use and at
// least delay has passed since TS.Recent was last updated: the peer's
// timestamp clock ticks at least once a second (RFC 7323 §5.4), so after
// a delay of a second the new connection's first TS.Recent (from the
// SYN-ACK) is above every TSval of the old incarnation, and PAWS drops
// any old duplicate still in the network (RFC 7323 §5, RFC 6191 §2);
// the ISS above the old SND.NXT keeps the old incarnation's ACKs out of
// SYN-SENT. Otherwise it reports false and changes nothing.
func (c *Conn) ReuseTimeWait(now clock.Instant, delay time.Duration) (wire.Seq, bool) {
	if !c.TimeWaitReusable(now, delay) {
		return 0, false
	}
	iss := c.ReopenISS()
	c.env.Stats.TWRecycled++
	c.finish(nil)
	return iss, true
}

// Info is a snapshot of a connection's state, like Linux's struct tcp_info.
type Info struct {
	State            State
	RTT, RTTVar, RTO time.Duration
	SndMSS, RcvMSS   uint32
	AdvMSS           uint16
	// PMTU is the path MTU the send MSS stands for (Linux's tcpi_pmtu),
	// and PLPMTUD where path MTU discovery by probing is (RFC 8899).
	PMTU           int
	PLPMTUD        PLPMTUDState
	Cwnd, Ssthresh uint32 // bytes
	SndWnd, RcvWnd uint32 // bytes
	// SndWScale and RcvWScale are -1 without window scaling.
	SndWScale, RcvWScale int8
	Timestamps, SACK     bool
	// ECN reports that ECN was negotiated (RFC 3168).
	ECN               bool
	CongestionControl string
	Unacked           uint32 // bytes sent and not acknowledged
	SndBuffered       int    // bytes in the send buffer
	RcvBuffered       int    // bytes readable
	// SndBuf and RcvBuf are the buffer sizes now (auto-tuned unless set).
	SndBuf, RcvBuf  int
	Retransmits     int    // RTOs in a row without progress
	TotalRetrans    uint64 // segments retransmitted
	BytesSent       uint64 // data bytes sent, retransmissions included
	BytesRetrans    uint64
	BytesAcked      uint64
	BytesReceived   uint64
	SegsIn, SegsOut uint64
	InRecovery      bool
	// SndUna, SndMax and RcvNxt are SND.UNA, the highest sequence number
	// sent plus one, and RCV.NXT (RFC 9293 §3.3.1): for ss-like tables
	// and for tests that need to know what the connection would accept.
	SndUna, SndMax, RcvNxt wire.Seq
}

// Info returns a snapshot of the connection's state.
func (c *Conn) Info() Info {
	i := Info{
		State:         c.state,
		RTT:           c.rtt.srtt,
		RTTVar:        c.rtt.rttvar,
		RTO:           c.rto,
		SndMSS:        c.sndMSS,
		RcvMSS:        c.rcvMSS,
		AdvMSS:        c.advMSS,
		PMTU:          c.pmtu(),
		PLPMTUD:       c.plp.state,
		SndWnd:        c.sndWnd,
		RcvWnd:        c.advertisedRemaining(),
		SndWScale:     -1,
		RcvWScale:     -1,
		Timestamps:    c.tsOK,
		SACK:          c.sackOK,
		ECN:           c.ecnOK,
		Unacked:       c.sndMax.Size(c.sndUna),
		SndBuffered:   c.snd.n,
		RcvBuffered:   c.rcv.n,
		SndBuf:        int(c.sndBufSize),
		RcvBuf:        int(c.rcvBufSize),
		Retransmits:   int(c.rexmitCount),
		TotalRetrans:  uint64(c.totalRetrans),
		BytesSent:     c.bytesSent,
		BytesRetrans:  c.bytesRetrans,
		BytesAcked:    c.bytesAcked,
		BytesReceived: c.bytesReceived,
		SegsIn:        uint64(c.segsIn),
		SegsOut:       uint64(c.segsOut),
		InRecovery:    c.lr != nil && c.lr.inRecovery,
		SndUna:        c.sndUna,
		SndMax:        c.sndMax,
		RcvNxt:        c.rcvNxt,
	}
	if c.wsOK {
		i.SndWScale, i.RcvWScale = int8(c.sndWScale), int8(c.rcvWScale)
	}
	if c.cc != nil {
		i.Cwnd, i.Ssthresh = c.cwnd(), c.cc.Ssthresh()
		i.CongestionControl = c.cc.Name()
	}
	return i
}

// BufferedChunks returns how many buffer chunks the connection holds (for
// memory accounting and tests of "an idle connection holds no buffers").
func (c *Conn) BufferedChunks() int { return c.snd.q.held() + c.rcv.q.held() }

// clampInt32 returns n, at most math.MaxInt32: counters set from an int
// that a connection keeps in 32 bits.
func clampInt32(n int) int32 { return int32(min(n, math.MaxInt32)) }
