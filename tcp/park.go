package tcp

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/minmax"
	"github.com/ustack/ustack/tcp/cc"
	"github.com/ustack/ustack/wire"
)

// Parking (docs/ARCHITECTURE.md, "Parking idle connections"): an
// established connection that has been quiescent for Config.ParkIdle (and
// at least parkRTOs RTOs) may be parked by its owner. Park gives the Conn,
// its loss-recovery algorithm and its congestion controller back to the
// Env's pools and returns a Parked record holding what the connection
// needs to answer its next segment, timer or call exactly as before;
// Env.Unpark takes a Conn from the pool and rebuilds it from the record.
//
// What a parked connection does not keep, and why that changes nothing a
// peer can see: the timers other than keep-alive (none is armed when it
// parks), the buffers and queues (empty), the ACK being processed, the
// send records and SACK scoreboard (nothing in flight), the pacing clock
// (in the past), the rate limit of out-of-window ACKs (expired). What it
// does lose: the congestion controller's state beyond cwnd and ssthresh
// (CUBIC's W_max and epoch, HyStart++'s round, BBR's model): the
// controller is made again from the two, as when TCP_CONGESTION switches
// it. The next data sent more than an RTO after the last restarts the
// window anyway (RFC 5681 §4.1: cwnd = min(IW, cwnd), in sendData), parked
// or not; and a late D-SACK that would undo the last reduction finds no
// undo snapshot in the new controller.

// parkRTOs is how many RTOs a connection must be idle, beyond
// Config.ParkIdle, before it may park: a connection is never parked
// between the transactions of a busy request-response exchange.
const parkRTOs = 3

// parkPoolMax bounds each of the Env's pools: they absorb the churn of
// parking and unparking; beyond it, a Conn goes to the garbage collector
// (a pool that kept every Conn ever parked would save nothing).
const parkPoolMax = 64

// Parked is the compact record of a parked connection (Conn.Park). Its
// owner keeps it in place of the Conn until Env.Unpark.
type Parked struct {
	// Times. TS.Recent's time is in cold unless it is lastRecv (or zero
	// without timestamps): coldBase. The keep-alive timer's deadline is
	// kept as it is: re-armed only when it fires, it is not lastRecv +
	// keepIdle after data or a peer's probe.
	lastRecv, lastSend, lastDataRecv clock.Instant
	keepAt                           clock.Instant // the keep-alive timer's deadline, or Never
	srtt, rttvar                     time.Duration // the RTO is in cold unless SRTT and RTTVAR give it (pfRTOCalc)
	// The minimum-RTT filter's sample when its three are one and taken
	// when the auto-tuner's measurement began (as after the handshake;
	// otherwise the filter is in cold: pfMinRTT), and the receive
	// auto-tuner's measurement (autotune.go) in its usual state.
	minRTT             uint64
	rtuneAt            clock.Instant
	rtuneRTT           time.Duration
	rtuneSpace         uint32
	quickAcks          int16       // at most 16 (quickAckCount)
	dupAcks            uint16      // RFC 5681's count: a keep-alive's answer is one
	cold               *parkedCold // nil when everything in it is as coldBase says
	prof               *parkProfile
	advMSS             uint16
	sndWScale          uint8
	rcvWScale          uint8
	sndMSS, rcvMSS     uint32
	tsRecent, tsOffset uint32
	sndBufSize         int32
	rcvBufSize         int32
	// Sequence variables (RFC 9293 §3.3.1): SND.UNA = SND.NXT = SND.MAX
	// while parked. Last.ACK.sent (RFC 7323 §4.3) is in cold unless it is
	// RCV.NXT (everything received acknowledged): coldBase.
	iss, snd, sndWl1, sndWl2, irs, rcvNxt, rcvAdv wire.Seq
	sndWnd, maxSndWnd                             uint32
	segsIn, segsOut                               uint32
	cwnd, ssthresh                                uint32
	// recover and cwrUntil of the recovery algorithm (RFC 6582, RFC
	// 3168 §6.1.2).
	recover, cwrUntil wire.Seq
	flags             parkFlags
	epPathMTU         int32 // Endpoints.PathMTU
}

// parkedCold is the part of a parked record made out of line. Its
// fields are ordered so that its only padding is the 4 bytes before
// rack: it fits the 384-byte size class (TestParkRoundTripHandshakeOnly).
type parkedCold struct {
	rto                       time.Duration // when not pfRTOCalc
	tsRecentAt                clock.Instant // TS.Recent's time (RFC 7323 §5.5)
	bytesSent, bytesRetrans   uint64
	bytesAcked, bytesReceived uint64
	bytesRead                 uint64
	rcvUnacked                uint32
	keepProbes, rexmitCount   int32
	probeBackoff              int32
	totalRetrans              uint32
	recWord                   uint32 // NewReno's recCwnd, RFC 6675's HighRxt
	synRetries                int32
	lastAckSent               wire.Seq // Last.ACK.sent (RFC 7323 §4.3)
	rcvFinSeq                 wire.Seq
	// What the recovery algorithm's last episode and duplicate ACKs
	// left; each is reset when the next begins.
	ltSent, prrOut uint32
	prr            prr
	rack           rackPersist
	plp            plpmtud
	rtune          rcvTuner
	rs             rateSampler
	minRTT         minmax.Filter
}

// parkProfile is what the connections of an application usually share:
// the controller's name and the keep-alive times. The Env interns one per
// combination (Env.profile), and a record points at it.
type parkProfile struct {
	ccName              *string
	keepIdle, keepIntvl time.Duration
	keepCount           int32
}

// profile returns the Env's interned copy of pp (allocating the first
// time a combination is seen).
func (e *Env) profile(pp parkProfile) *parkProfile {
	if q := e.pools.profiles[pp]; q != nil {
		return q
	}
	if e.pools.profiles == nil {
		e.pools.profiles = make(map[parkProfile]*parkProfile)
	}
	q := new(parkProfile)
	*q = pp
	e.pools.profiles[pp] = q
	return q
}

// rackPersist is the RACK state (RFC 8985 §6.1) that outlives an
// episode.
type rackPersist struct {
	// The undo state of the last episode, which a late D-SACK may still
	// undo (rack.go, tryUndo).
	retransAt              clock.Instant
	undoRetrans            int64
	undoMarker, retransEnd wire.Seq
	undoOn, retransOn      bool

	xmit                  clock.Instant
	rtt                   time.Duration
	end, fack, dsackRound wire.Seq
	reoWndMult            uint32
	reoWndPersist         int
	has, hasFack          bool
	reorderingSeen        bool
	dsackRoundOn          bool
	tlpRetrans            bool
	frtoNewSeq            bool
}

// parkFlags are the Conn's flags a parked record keeps.
type parkFlags uint32

const (
	pfPassive parkFlags = 1 << iota
	pfRdShut
	pfNoDelay
	pfKeepAlive
	pfStuneOn
	pfEcnOK
	pfEcnAsked
	pfEcnEcho
	pfCwrPending
	pfEcnIP
	pfWsOK
	pfTsOK
	pfSackOK
	pfRtuneOn
	pfMinRTT           // minRTT holds the filter's one sample, taken at rtuneAt
	pfRTOCalc          // the RTO is what SRTT and RTTVAR give (no back-off)
	pfEcnInShift  = 16 // two bits: ecnIn
	pfEcnOutShift = 18 // two bits: ecnOut
	// pfOOWAck (parkseg.go) is bit 20.
	pfKeepShift = 21 // eight bits: keep-alive probes unanswered, when at most pfKeepMax
)

// pfKeepMax bounds the keep-alive probe count the flags hold; a larger
// one is in parkedCold.
const pfKeepMax = 255

// keepProbes returns the keep-alive probes sent and unanswered, from the
// flags or cold.
func (p *Parked) keepProbes() int32 {
	n := int32(p.flags>>pfKeepShift) & pfKeepMax
	if p.cold != nil {
		n += p.cold.keepProbes
	}
	return n
}

// setKeepProbes sets the count keepProbes returns; false if the flags
// cannot hold n and a cold part would have to be made.
func (p *Parked) setKeepProbes(n int32) bool {
	if n < 0 || n > pfKeepMax {
		if p.cold == nil {
			return false
		}
		p.flags &^= pfKeepMax << pfKeepShift
		p.cold.keepProbes = n
		return true
	}
	if p.cold != nil {
		p.cold.keepProbes = 0
	}
	p.flags = p.flags&^(pfKeepMax<<pfKeepShift) | parkFlags(n)<<pfKeepShift
	return true
}

func (f parkFlags) has(b parkFlags) bool { return f&b != 0 }

// NextDeadline is the Conn's NextDeadline while it is parked: its
// keep-alive timer's deadline, or clock.Never. The owner calls
// Env.TimeoutParked then, and if that cannot run the timer, unparks the
// connection and calls HandleTimeout.
func (p *Parked) NextDeadline() clock.Instant { return p.keepAt }

// Writable is the Conn's Writable while it is parked: its send buffer is
// empty.
func (p *Parked) Writable() bool { return p.sndBufSize > 0 }

// parkDelay is how long a connection must be idle to park.
func (c *Conn) parkDelay() time.Duration {
	return max(c.env.cfg.ParkIdle, parkRTOs*c.rto)
}

// idleSince is when the connection last sent or received a segment.
func (c *Conn) idleSince() clock.Instant { return max(c.lastRecv, c.lastSend) }

// armIdle arms the idle timer, which finds when the connection may park,
// if parking is on; the owner asks Parkable after every HandleTimeout.
func (c *Conn) armIdle() {
	if c.env.cfg.ParkIdle <= 0 || c.state != Established {
		c.timers.stop(timerIdle)
		return
	}
	c.timers.set(timerIdle, c.idleSince().Add(c.parkDelay()))
}

// onIdleTimeout re-arms the idle timer: at the end of the idle period
// that began at the last segment, or a delay from now if that is past
// (the owner parks the connection now if it can; if it cannot, the
// timer looks again later).
//
// A connection holding unread data stops the timer instead: it stays
// unparkable until the application reads, and Read arms the timer again
// when it empties the queue (rearmIdle) — so a connection whose reader
// stopped costs no timer at all.
func (c *Conn) onIdleTimeout(now clock.Instant) {
	if c.env.cfg.ParkIdle <= 0 || c.state != Established || c.rcv.n > 0 {
		return
	}
	at := c.idleSince().Add(c.parkDelay())
	if at <= now {
		at = now.Add(c.parkDelay())
	}
	c.timers.set(timerIdle, at)
}

// rearmIdle arms the idle timer after Read emptied the receive queue, if
// it had stopped (onIdleTimeout).
func (c *Conn) rearmIdle() {
	if c.rcv.n == 0 && c.state == Established && !c.timers.armed(timerIdle) && c.env.cfg.ParkIdle > 0 {
		c.armIdle()
	}
}

// Parkable reports whether Park would park the connection now: it is
// established and quiescent — nothing unsent or in flight, no
// out-of-order or unread data, no FIN either way, no recovery episode or
// probe, nothing to send, no timer armed but keep-alive and the idle
// timer — and has been idle for ParkIdle and parkRTOs RTOs. Parking is
// off while ParkIdle is not positive.
func (c *Conn) Parkable(now clock.Instant) bool { return c.parkBlock(now) == "" }

// parkBlock returns why the connection may not park now, or "".
func (c *Conn) parkBlock(now clock.Instant) string {
	switch {
	case c.env.cfg.ParkIdle <= 0:
		return "parking off"
	case c.state != Established:
		return "not established"
	case now.Sub(c.idleSince()) < c.parkDelay():
		return "not idle long enough"
	case c.finQueued || c.rcvFinOOO || c.orphan:
		return "a FIN queued or held, or closed"
	case c.rttTiming || c.dsackNow || c.ackNow || c.pacingBehind || c.tlpProbe ||
		c.synPending || c.rexmitNow || c.probeNow || c.keepNow || c.forceSend || c.reply.pending:
		return "something to send"
	case c.events != 0:
		return "events not taken"
	case c.snd.n != 0 || c.snd.q != nil:
		return "data unsent or unacknowledged"
	case c.rcv.n != 0 || c.rcv.q != nil || c.ooo != nil:
		return "data unread or out of order"
	case c.sndUna != c.sndNxt || c.sndUna != c.sndMax || !c.sent.empty() || len(c.sb.ranges) != 0 || c.sb.bytes != 0:
		return "data in flight"
	case c.pacingNext > now:
		return "pacing"
	case c.lastOOWAck != 0 && now.Sub(c.lastOOWAck) < c.env.cfg.InvalidRateLimit:
		return "out-of-window ACK rate limit"
	case c.cc == nil || c.rec == nil:
		return "no controller"
	case c.quickAcks < 0 || c.quickAcks > math.MaxInt16 || c.lr.dupAcks < 0 || c.lr.dupAcks > math.MaxUint16:
		return "a counter out of the record's range"
	}
	for t := timer(0); t < numTimers; t++ {
		if t != timerKeepAlive && t != timerIdle && c.timers.armed(t) {
			return "timer armed"
		}
	}
	if lr := c.lr; lr.inRecovery || lr.pending {
		return "recovery"
	}
	if r := c.rack; r != nil {
		if r.tlpOn || r.probeNow || r.cwr || r.loss || r.frto {
			return "RACK episode"
		}
	}
	return ""
}

// Park parks the connection if Parkable(now): it returns the record that
// stands for it and gives c, its recovery algorithm and its controller to
// the Env's pools (the caller must forget c). Otherwise it returns nil and
// changes nothing. The Env's Stats count it (Parked, Parks).
func (c *Conn) Park(now clock.Instant) *Parked {
	if !c.Parkable(now) {
		return nil
	}
	e := c.env
	p := e.takeParked()
	p.lastRecv, p.lastSend, p.lastDataRecv = c.lastRecv, c.lastSend, c.lastDataRecv
	p.keepAt = c.timers.get(timerKeepAlive)
	p.srtt, p.rttvar = c.rtt.srtt, c.rtt.rttvar
	p.iss, p.snd, p.sndWl1, p.sndWl2 = c.iss, c.sndUna, c.sndWl1, c.sndWl2
	p.irs, p.rcvNxt, p.rcvAdv = c.irs, c.rcvNxt, c.rcvAdv
	p.sndWnd, p.maxSndWnd = c.sndWnd, c.maxSndWnd
	p.tsRecent, p.tsOffset = c.tsRecent, c.tsOffset
	p.sndMSS, p.rcvMSS, p.advMSS = c.sndMSS, c.rcvMSS, c.advMSS
	p.sndBufSize, p.rcvBufSize = c.sndBufSize, c.rcvBufSize
	p.quickAcks, p.dupAcks = int16(c.quickAcks), uint16(c.lr.dupAcks)
	p.segsIn, p.segsOut = c.segsIn, c.segsOut
	p.cwnd, p.ssthresh = c.cc.Cwnd(), c.cc.Ssthresh()
	p.recover, p.cwrUntil = c.lr.recover, c.lr.cwrUntil
	p.sndWScale, p.rcvWScale = c.sndWScale, c.rcvWScale
	p.prof = e.profile(parkProfile{ccName: c.ccName, keepIdle: c.keepIdle, keepIntvl: c.keepIntvl, keepCount: c.keepCount})
	p.rtuneAt, p.rtuneRTT, p.rtuneSpace = c.rtune.at, c.rtune.rtt, c.rtune.space
	var f parkFlags
	set := func(b parkFlags, on bool) {
		if on {
			f |= b
		}
	}
	set(pfPassive, c.passive)
	set(pfRdShut, c.rdShut)
	set(pfNoDelay, c.noDelay)
	set(pfKeepAlive, c.keepAlive)
	set(pfStuneOn, c.stuneOn)
	set(pfEcnOK, c.ecnOK)
	set(pfEcnAsked, c.ecnAsked)
	set(pfEcnEcho, c.ecnEcho)
	set(pfCwrPending, c.cwrPending)
	set(pfEcnIP, c.ecnIP)
	set(pfWsOK, c.wsOK)
	set(pfTsOK, c.tsOK)
	set(pfSackOK, c.sackOK)
	set(pfRtuneOn, c.rtune.on)
	if m := &c.minRTT; !m.Empty() && m.Samples() == [3]minmax.Sample{{T: int64(c.rtune.at), V: m.Get()}, {T: int64(c.rtune.at), V: m.Get()}, {T: int64(c.rtune.at), V: m.Get()}} {
		f |= pfMinRTT
		p.minRTT = m.Get()
	}
	rtoCalc := c.rto == c.rtt.rto(e.cfg.InitialRTO, e.cfg.MinRTO, e.cfg.MaxRTO)
	set(pfRTOCalc, rtoCalc)
	f |= parkFlags(c.ecnIn&3)<<pfEcnInShift | parkFlags(c.ecnOut&3)<<pfEcnOutShift
	p.flags = f

	// The cold part: made only when something in it differs from what a
	// rebuilt Conn would have anyway.
	var cold parkedCold
	p.epPathMTU = c.epPathMTU
	if !rtoCalc {
		cold.rto = c.rto
	}
	cold.tsRecentAt, cold.lastAckSent = c.tsRecentAt, c.lastAckSent
	cold.rcvUnacked = c.rcvUnacked
	cold.rexmitCount, cold.probeBackoff = c.rexmitCount, c.probeBackoff
	if c.keepProbes >= 0 && c.keepProbes <= pfKeepMax {
		// In the flags: a probe sent from the record makes no cold part.
		p.flags |= parkFlags(c.keepProbes) << pfKeepShift
	} else {
		cold.keepProbes = c.keepProbes
	}
	cold.totalRetrans = c.totalRetrans
	switch r := c.rec.(type) {
	case *renoRecovery:
		cold.recWord = r.recCwnd
	case *sackRecovery:
		cold.recWord = uint32(r.highRxt)
	}
	cold.synRetries = c.synRetries
	cold.bytesSent, cold.bytesRetrans = c.bytesSent, c.bytesRetrans
	cold.bytesAcked, cold.bytesReceived, cold.bytesRead = c.bytesAcked, c.bytesReceived, c.bytesRead
	cold.rcvFinSeq = c.rcvFinSeq
	cold.ltSent, cold.prrOut = c.lr.ltSent, c.lr.prrOut
	if r := c.rack; r != nil {
		cold.prr = r.prr
		cold.rack = rackPersist{
			xmit: r.xmit, rtt: r.rtt, end: r.end, fack: r.fack, dsackRound: r.dsackRound,
			reoWndMult: r.reoWndMult, reoWndPersist: r.reoWndPersist,
			has: r.has, hasFack: r.hasFack, reorderingSeen: r.reorderingSeen,
			dsackRoundOn: r.dsackRoundOn, tlpRetrans: r.tlpRetrans, frtoNewSeq: r.frtoNewSeq,
			retransAt: r.retransAt, undoRetrans: r.undoRetrans, undoMarker: r.undoMarker,
			retransEnd: r.retransEnd, undoOn: r.undoOn, retransOn: r.retransOn,
		}
	}
	cold.plp = c.plp
	cold.rtune = c.rtune
	cold.rtune.on = false // in the flags
	cold.rs = c.rs
	cold.minRTT = c.minRTT
	if cold == e.coldBase(c.rack != nil, p) {
		p.cold = nil
	} else {
		p.cold = e.takeCold()
		*p.cold = cold
	}

	// An empty send-record queue may still hold its last block: back to
	// its pool (a pooled Conn keeps only the slice).
	c.sent.release()
	e.Stats.Parked++
	e.Stats.Parks++
	e.putConn(c)
	return p
}

// coldBase returns the cold state a record without a cold part stands
// for: nothing counted, the RACK state of
// a connection before its first delivery, path MTU discovery where the
// handshake left it, the auto-tuner's measurement and the minimum RTT
// from the record's own fields; TS.Recent's time that of the last
// segment received (RFC 7323 §4.3: TS.Recent is taken from a segment
// that covers Last.ACK.sent, as every one does while the connection
// acknowledges each segment it gets, as through a handshake and
// keep-alive exchanges), or zero without timestamps; and Last.ACK.sent
// = RCV.NXT (a quiescent connection has no ACK pending: everything
// received is acknowledged).
func (e *Env) coldBase(rack bool, p *Parked) parkedCold {
	b := parkedCold{minRTT: minmax.NewMin(), lastAckSent: p.rcvNxt}
	if p.flags.has(pfTsOK) {
		b.tsRecentAt = p.lastRecv
	}
	if rack {
		b.rack.reoWndMult = 1
	}
	b.plp = plpmtud{maxMSS: p.sndMSS, low: p.sndMSS, high: p.sndMSS}
	b.rtune = rcvTuner{at: p.rtuneAt, rtt: p.rtuneRTT, space: p.rtuneSpace}
	if p.flags.has(pfMinRTT) {
		b.minRTT.Reset(int64(p.rtuneAt), p.minRTT)
	}
	return b
}

// Unpark rebuilds the connection p stands for, with a Conn, a recovery
// algorithm and a controller from the Env's pools (allocating only when
// they are empty), and gives p back to its pool (the caller must forget
// it). The Conn answers everything exactly as it would have had it never
// parked, but for the controller's state beyond cwnd and ssthresh (see
// Park).
//
// now is the owner's time, or the latest it knows: the idle timer is not
// due before a delay from it, so a connection an application polls is
// not parked and unparked at every call.
//
// The record does not keep the connection's addresses: its owner has them
// (its flow table is keyed by them) and passes them back.
func (e *Env) Unpark(now clock.Instant, p *Parked, local, remote netip.AddrPort) *Conn {
	e.oowExpire(now)
	c := e.takeConn()
	rec, ctl := c.rec, c.cc
	blocks := c.sent.blocks
	ranges := c.sb.ranges
	*c = Conn{env: e, sent: sentQueue{blocks: blocks[:0]}, sb: scoreboard{ranges: ranges[:0]}}
	c.sent.init()
	c.timers.stopAll()
	f := p.flags
	c.state = Established
	c.passive = f.has(pfPassive)
	c.rdShut = f.has(pfRdShut)
	c.noDelay = f.has(pfNoDelay)
	c.keepAlive = f.has(pfKeepAlive)
	c.stuneOn = f.has(pfStuneOn)
	c.ecnOK, c.ecnAsked, c.ecnEcho = f.has(pfEcnOK), f.has(pfEcnAsked), f.has(pfEcnEcho)
	c.cwrPending, c.ecnIP = f.has(pfCwrPending), f.has(pfEcnIP)
	c.wsOK, c.tsOK, c.sackOK = f.has(pfWsOK), f.has(pfTsOK), f.has(pfSackOK)
	c.ecnIn, c.ecnOut = ECN(f>>pfEcnInShift)&3, ECN(f>>pfEcnOutShift)&3
	c.local, c.remote = local, remote
	c.iss, c.sndUna, c.sndNxt, c.sndMax = p.iss, p.snd, p.snd, p.snd
	c.sndWnd, c.sndWl1, c.sndWl2, c.maxSndWnd = p.sndWnd, p.sndWl1, p.sndWl2, p.maxSndWnd
	c.irs, c.rcvNxt, c.rcvAdv = p.irs, p.rcvNxt, p.rcvAdv
	c.sndWScale, c.rcvWScale = p.sndWScale, p.rcvWScale
	c.advMSS, c.sndMSS, c.rcvMSS = p.advMSS, p.sndMSS, p.rcvMSS
	c.tsRecent, c.tsOffset = p.tsRecent, p.tsOffset
	c.sndBufSize, c.rcvBufSize = p.sndBufSize, p.rcvBufSize
	c.quickAcks = int32(p.quickAcks)
	c.lastRecv, c.lastSend, c.lastDataRecv = p.lastRecv, p.lastSend, p.lastDataRecv
	c.rtt = rttEstimator{srtt: p.srtt, rttvar: p.rttvar}
	c.ccName = p.prof.ccName
	c.keepIdle, c.keepIntvl, c.keepCount = p.prof.keepIdle, p.prof.keepIntvl, p.prof.keepCount
	c.segsIn, c.segsOut = p.segsIn, p.segsOut

	// The recovery algorithm: the one the handshake chose, from the pool.
	cold := e.coldBase(c.sackOK && !e.cfg.NoRACK, p)
	if p.cold != nil {
		cold = *p.cold
	}
	c.tsRecentAt, c.lastAckSent = cold.tsRecentAt, cold.lastAckSent
	c.epPathMTU, c.rcvUnacked, c.totalRetrans = p.epPathMTU, cold.rcvUnacked, cold.totalRetrans
	if f.has(pfRTOCalc) {
		c.rto = c.rtt.rto(e.cfg.InitialRTO, e.cfg.MinRTO, e.cfg.MaxRTO)
	} else {
		c.rto = cold.rto
	}
	c.rexmitCount, c.probeBackoff = cold.rexmitCount, cold.probeBackoff
	c.keepProbes = cold.keepProbes + int32(f>>pfKeepShift)&pfKeepMax
	if f.has(pfOOWAck) {
		// The record answered an unacceptable segment within the rate
		// limit (HandleParked).
		c.lastOOWAck = e.oowTake(p)
	}
	// What the record owes and its owner has not polled yet.
	c.ackNow, c.keepNow = f.has(pfOweAck), f.has(pfOweProbe)
	if f.has(pfOweDSACK) {
		c.setDSACK(p.rcvNxt-1, p.rcvNxt)
	}
	switch {
	case c.sackOK && !e.cfg.NoRACK:
		r, _ := rec.(*rackRecovery)
		if r == nil {
			r = new(rackRecovery)
		}
		r.init(c)
		{
			k := &cold.rack
			r.xmit, r.rtt, r.end, r.fack, r.dsackRound = k.xmit, k.rtt, k.end, k.fack, k.dsackRound
			r.reoWndMult, r.reoWndPersist = k.reoWndMult, k.reoWndPersist
			r.has, r.hasFack, r.reorderingSeen = k.has, k.hasFack, k.reorderingSeen
			r.dsackRoundOn, r.tlpRetrans, r.frtoNewSeq = k.dsackRoundOn, k.tlpRetrans, k.frtoNewSeq
			r.retransAt, r.undoRetrans, r.undoMarker = k.retransAt, k.undoRetrans, k.undoMarker
			r.retransEnd, r.undoOn, r.retransOn = k.retransEnd, k.undoOn, k.retransOn
		}
		c.rec, c.lr, c.rack = r, &r.recoveryBase, r
	case c.sackOK:
		s, _ := rec.(*sackRecovery)
		if s == nil {
			s = new(sackRecovery)
		}
		s.init(c)
		s.highRxt = wire.Seq(cold.recWord)
		c.rec, c.lr = s, &s.recoveryBase
	default:
		r, _ := rec.(*renoRecovery)
		if r == nil {
			r = new(renoRecovery)
		}
		r.init(c)
		r.recCwnd = cold.recWord
		c.rec, c.lr = r, &r.recoveryBase
	}
	c.lr.recover, c.lr.cwrUntil = p.recover, p.cwrUntil
	c.lr.dupAcks, c.lr.ltSent, c.lr.prrOut = int(p.dupAcks), cold.ltSent, cold.prrOut
	if c.rack != nil {
		c.rack.prr = cold.prr
	}

	// The controller, from cwnd and ssthresh (as TCP_CONGESTION's switch).
	if ctl == nil || ctl.Name() != *c.ccName || !cc.IsReusable(ctl) {
		var err error
		if ctl, err = cc.New(*c.ccName); err != nil {
			ctl = cc.NewReno(c.sndMSS)
		}
	}
	params := c.ccParams()
	params.Cwnd, params.Ssthresh = p.cwnd, p.ssthresh
	ctl.Init(params)
	c.cc = ctl
	c.ccSetsWindow = ctl.SetsRecoveryWindow()

	c.synRetries = cold.synRetries
	c.bytesSent, c.bytesRetrans = cold.bytesSent, cold.bytesRetrans
	c.bytesAcked, c.bytesReceived, c.bytesRead = cold.bytesAcked, cold.bytesReceived, cold.bytesRead
	c.rcvFinSeq = cold.rcvFinSeq
	c.plp = cold.plp
	c.rtune = cold.rtune
	c.rtune.on = f.has(pfRtuneOn)
	c.rs = cold.rs
	c.minRTT = cold.minRTT

	if p.keepAt != clock.Never {
		c.timers.set(timerKeepAlive, p.keepAt)
	}
	c.timers.set(timerIdle, max(c.idleSince(), now).Add(c.parkDelay()))
	e.Stats.Parked--
	e.Stats.Unparks++
	e.putParked(p)
	return c
}

// The Env's pools. The Env's owner serialises every call, so they need no
// lock. A pooled Conn keeps its recovery algorithm and controller (Unpark
// reuses them); NewConn, which takes a pooled Conn for a new connection,
// moves them to recs and ccs, from which that connection's handshake
// takes them (selectRecovery, startCongestionControl).
type parkPools struct {
	profiles map[parkProfile]*parkProfile
	conns    []*Conn
	parked   []*Parked
	cold     []*parkedCold
	recs     []lossRecovery
	ccs      []cc.Controller
}

// freshConn returns a zero Conn for NewConn: a pooled one (its send
// records' and scoreboard's slices kept, its recovery algorithm and
// controller moved to their pools) or a new one.
func (e *Env) freshConn() *Conn {
	c := e.takeConn()
	if c.rec != nil {
		if len(e.pools.recs) < parkPoolMax {
			e.pools.recs = append(e.pools.recs, c.rec)
		} else {
			spareRecs.Put(c.rec)
		}
	}
	if c.cc != nil && cc.IsReusable(c.cc) {
		if len(e.pools.ccs) < parkPoolMax {
			e.pools.ccs = append(e.pools.ccs, c.cc)
		} else {
			spareCCs.Put(c.cc)
		}
	}
	blocks, ranges := c.sent.blocks, c.sb.ranges
	*c = Conn{env: e, sent: sentQueue{blocks: blocks[:0]}, sb: scoreboard{ranges: ranges[:0]}}
	return c
}

// takeRec returns a pooled recovery algorithm (of any kind; the caller
// uses it if it is of the kind it wants), or nil.
func (e *Env) takeRec() lossRecovery {
	n := len(e.pools.recs)
	if n == 0 {
		r, _ := spareRecs.Get().(lossRecovery)
		return r
	}
	r := e.pools.recs[n-1]
	e.pools.recs[n-1] = nil
	e.pools.recs = e.pools.recs[:n-1]
	return r
}

// takeCC returns a pooled controller registered as name, or nil. The
// caller must Init it (every registered controller's Init resets all its
// state).
func (e *Env) takeCC(name string) cc.Controller {
	n := len(e.pools.ccs)
	if n == 0 {
		if ctl, _ := spareCCs.Get().(cc.Controller); ctl != nil && ctl.Name() == name {
			return ctl
		}
		return nil
	}
	if e.pools.ccs[n-1].Name() != name {
		return nil
	}
	ctl := e.pools.ccs[n-1]
	e.pools.ccs[n-1] = nil
	e.pools.ccs = e.pools.ccs[:n-1]
	return ctl
}

// spareConns takes the Conns parking gives back beyond an Env's pool of
// parkPoolMax: connections park in bursts (those whose handshakes ended
// together go idle together) while new ones open at a steadier rate, so
// a bounded pool alone lets most of a burst go to the garbage collector
// and the next connections allocate again. A sync.Pool keeps the rest
// of the burst for reuse by any Env (NewConn, Unpark: both reset the
// whole Conn) and gives what stays unused back to the collector within
// two cycles: it costs no memory once the connections are made. A Conn
// in it keeps its recovery algorithm and controller (freshConn, Unpark).
var spareConns sync.Pool

// spareRecs and spareCCs take the recovery algorithms and controllers
// of the pooled Conns NewConn reuses beyond the Env's pools (recs, ccs):
// a client has its connections' handshakes in flight between NewConn and
// the SYN-ACK that chooses them (selectRecovery), up to the dialler's
// window.
var spareRecs, spareCCs sync.Pool

func (e *Env) takeConn() *Conn {
	if n := len(e.pools.conns); n > 0 {
		c := e.pools.conns[n-1]
		e.pools.conns[n-1] = nil
		e.pools.conns = e.pools.conns[:n-1]
		return c
	}
	if c, _ := spareConns.Get().(*Conn); c != nil {
		return c
	}
	return new(Conn)
}

func (e *Env) putConn(c *Conn) {
	if len(e.pools.conns) < parkPoolMax {
		e.pools.conns = append(e.pools.conns, c)
		return
	}
	spareConns.Put(c)
}

func (e *Env) takeParked() *Parked {
	if n := len(e.pools.parked); n > 0 {
		p := e.pools.parked[n-1]
		e.pools.parked[n-1] = nil
		e.pools.parked = e.pools.parked[:n-1]
		return p
	}
	return new(Parked)
}

func (e *Env) putParked(p *Parked) {
	e.putCold(p.cold)
	*p = Parked{}
	if len(e.pools.parked) < parkPoolMax {
		e.pools.parked = append(e.pools.parked, p)
	}
}

func (e *Env) takeCold() *parkedCold {
	if n := len(e.pools.cold); n > 0 {
		k := e.pools.cold[n-1]
		e.pools.cold[n-1] = nil
		e.pools.cold = e.pools.cold[:n-1]
		return k
	}
	return new(parkedCold)
}

func (e *Env) putCold(k *parkedCold) {
	if k != nil && len(e.pools.cold) < parkPoolMax {
		e.pools.cold = append(e.pools.cold, k)
	}
}

// ccNames interns congestion controllers' names: a Conn keeps a pointer
// to its controller's name (8 bytes, not a string's 16).
var ccNames struct {
	sync.Mutex
	m map[string]*string
}

// internCC returns the interned copy of name.
func internCC(name string) *string {
	ccNames.Lock()
	defer ccNames.Unlock()
	if p := ccNames.m[name]; p != nil {
		return p
	}
	if ccNames.m == nil {
		ccNames.m = make(map[string]*string)
	}
	p := new(string)
	*p = name
	ccNames.m[name] = p
	return p
}

// KeepAlive is the Conn's KeepAlive while it is parked.
func (p *Parked) KeepAlive() bool { return p.flags.has(pfKeepAlive) }

// CongestionControl is the Conn's CongestionControl while it is parked.
func (p *Parked) CongestionControl() string { return *p.prof.ccName }

// Readable is the Conn's Readable while it is parked: nothing is
// buffered, so only a shut-down read side reads (io.EOF).
func (p *Parked) Readable() bool { return p.flags.has(pfRdShut) }
