// Package cc holds TCP congestion controllers behind one interface, so the
// connection core does not care which one runs (RFC 5681 §3 describes the
// window arithmetic every window-based controller must respect), and a
// registry that picks them by name, as Linux's TCP_CONGESTION does.
//
// A Controller is pure, like the rest of the TCP core: it is told about
// segments sent, ACKs, losses and timeouts, with the current time, and
// answers with a congestion window and a pacing rate. Loss recovery itself
// (which segment to resend, when recovery starts and ends) stays in
// package tcp; the controller only hears of it.
//
// # Writing a controller
//
// Embed Base, which gives every hook a no-op default, and implement Name
// and Cwnd; then override the hooks the algorithm needs. Register it
// under its name (usually from an init function), and select it per stack
// (tcp.Config.Congestion) or per connection (SetCongestionControl on a
// connection). Reno, in this package, is the reference.
package cc

import (
	"math"
	"time"

	"github.com/ustack/ustack/clock"
)

// Controller decides the congestion window, and optionally the pacing
// rate, of one connection. The connection calls its methods from one
// goroutine at a time (its owner's), never concurrently.
type Controller interface {
	// Name returns the algorithm's name as Linux spells it ("reno"),
	// the name it is registered under.
	Name() string
	// Init is called once the connection knows its MSS (the handshake
	// negotiated it), before any other hook. It may be called again
	// before any data has been sent with the controller, when the window
	// must start elsewhere: after a lost SYN (p.Cwnd is then one
	// segment). A controller that replaces another on an open
	// connection gets the old one's window in p.Cwnd and p.Ssthresh.
	Init(p Params)
	// Cwnd returns the congestion window in bytes. It must not be zero.
	Cwnd() uint32
	// Ssthresh returns the slow-start threshold in bytes, or
	// math.MaxUint32 when the controller has none (or it is infinite);
	// it is reported in tcp.Info.
	Ssthresh() uint32
	// PacingRate returns the rate in bytes per second at which the
	// connection spaces out its data segments, or 0 for no pacing
	// (segments go as soon as the windows allow).
	PacingRate() uint64
	// SetMSS tells the controller that the send MSS changed.
	SetMSS(mss uint32)
	// OnSent reports a data segment of bytes payload bytes sent at now
	// (new data or a retransmission; 0 bytes for a FIN alone), with
	// inFlight bytes outstanding after it (SND.NXT − SND.UNA).
	OnSent(now clock.Instant, bytes, inFlight uint32)
	// OnAck reports an ACK that acknowledged or SACKed new data; and,
	// once, the ACK that completed the handshake with its RTT sample
	// (RFC 6298 §3) and nothing acknowledged or delivered.
	OnAck(now clock.Instant, s AckSample)
	// OnRecoveryStart reports that loss was detected and fast recovery
	// starts (RFC 5681 §3.2 step 2, RFC 6675 §5 step 4): the congestion
	// event of the episode, with flight bytes outstanding.
	OnRecoveryStart(now clock.Instant, flight uint32)
	// OnRecoveryEnd reports the ACK that ended recovery (RFC 6582 §3.2
	// step 3, RFC 6675 §5: RecoveryPoint acknowledged), with flight bytes
	// outstanding after it; for RFC 6675 recovery flight is at least the
	// window recovery ran with, so a window-based controller that sets
	// cwnd = min(ssthresh, flight + SMSS) ends at ssthresh as §5 says.
	OnRecoveryEnd(now clock.Instant, flight uint32)
	// OnTimeout reports a retransmission timeout with flight bytes
	// outstanding (RFC 5681 §3.1, equation 4).
	OnTimeout(now clock.Instant, flight uint32)
	// OnIdleRestart reports that the sender is about to send after an
	// idle period longer than the RTO (RFC 5681 §4.1).
	OnIdleRestart(now clock.Instant)
	// OnUndo reports that the last window reduction (a recovery or a
	// timeout) was spurious — the data was not lost (RFC 3708 D-SACK,
	// RFC 4015 Eifel, RFC 5682 F-RTO): the controller restores the window
	// it had before it, as Linux's undo_cwnd.
	OnUndo(now clock.Instant)
	// OnECE reports that the peer echoed a Congestion Experienced mark
	// (RFC 3168 §6.1.2: an ACK with ECN-Echo) outside loss recovery, at
	// most once per window of data: the connection enters CWR, a window
	// reduction without retransmissions that ends with OnRecoveryEnd
	// once the data in flight now is acknowledged, with the window
	// during it ruled as in recovery. A window-based controller reduces
	// as for a loss ("the congestion control algorithm ... the same as
	// for a dropped packet", RFC 3168 §6.1.2).
	OnECE(now clock.Instant, flight uint32)
	// OnLost reports a segment deemed lost (by RACK, RFC 8985, or an RTO),
	// with what was in flight when it was sent: BBR bounds its model by
	// the loss rate it shows (draft-ietf-ccwg-bbr's BBRHandleLostPacket).
	// It is called once per segment, before the OnAck of the ACK that
	// found it, if any.
	OnLost(now clock.Instant, l LostSegment)
	// SetsRecoveryWindow reports that the controller sets the congestion
	// window itself during loss recovery and CWR (BBR does: Linux's
	// cong_control hook); then Cwnd rules throughout and Proportional
	// Rate Reduction (RFC 9937) does not apply. Otherwise the recovery
	// algorithm sets the window from Ssthresh while an episode lasts.
	SetsRecoveryWindow() bool
}

// Params are what a controller starts from (see Controller.Init).
type Params struct {
	// MSS is the send MSS: the data bytes of a full segment.
	MSS uint32
	// InitialWindow is the configured initial window in bytes (RFC 6928:
	// ten segments by default, tcp.Config.InitialCwnd): where the window
	// starts, and to what it restarts after idle (RFC 5681 §4.1).
	InitialWindow uint32
	// Cwnd, when not zero, is the window to start from instead of
	// InitialWindow: one segment after a lost SYN (RFC 5681 §3.1), or
	// the window of the controller this one replaces.
	Cwnd uint32
	// Ssthresh, when not zero, is the slow-start threshold to start
	// from instead of an infinite one (RFC 5681 §3.1): that of the
	// controller this one replaces.
	Ssthresh uint32
	// Pacing asks a controller that does not need pacing (a
	// window-based one) to pace anyway, as Linux paces every flow with
	// the fq qdisc (tcp.Config.Pacing says whether ustack does). A
	// controller that needs it (BBR) paces regardless.
	Pacing bool
}

// AckSample describes one ACK to the controller (Controller.OnAck): what
// it delivered and what it says about the path.
type AckSample struct {
	// Acked is how far the cumulative acknowledgment moved, in bytes of
	// sequence space (RFC 3465 byte counting).
	Acked uint32
	// Delivered is the bytes newly delivered to the peer by this ACK:
	// those newly acknowledged cumulatively that had not been SACKed,
	// plus those newly SACKed (RFC 6937's DeliveredData).
	Delivered uint32
	// PriorInFlight is the bytes sent and neither acknowledged nor
	// SACKed when the ACK arrived.
	PriorInFlight uint32
	// InFlight is the bytes in the network once the ACK is processed:
	// sent, and neither acknowledged, SACKed nor deemed lost (Linux's
	// tcp_packets_in_flight, in bytes; RFC 9937's inflight).
	InFlight uint32
	// RTT is an RTT sample from this ACK: the time since the most
	// recently sent segment it newly acknowledged or SACKed left, if that
	// segment was never resent (Karn's rule, RFC 6298 §3), or 0.
	RTT time.Duration
	// TotalDelivered is the bytes delivered over the connection's life,
	// this ACK included (draft-cheng-iccrg-delivery-rate-estimation's
	// C.delivered).
	TotalDelivered uint64
	// NewlyLost is the bytes loss recovery deemed lost on this ACK.
	NewlyLost uint32

	// The delivery-rate sample of this ACK
	// (draft-cheng-iccrg-delivery-rate-estimation §3.3), taken from the
	// most recently sent segment it delivered. DeliveryRate is
	// SampleDelivered over Interval, in bytes per second, or 0 when the
	// ACK gives no valid sample (nothing newly delivered, or an interval
	// shorter than the minimum RTT). PriorDelivered is TotalDelivered
	// when that segment was sent (BBR counts round trips with it);
	// TxInFlight the bytes in flight just after it was sent; SampleLost
	// the bytes deemed lost between its sending and this ACK.
	// AppLimited says the sample was taken while the application, not
	// the network, limited the sending rate: it shows no more than what
	// the application offered.
	DeliveryRate    uint64
	Interval        time.Duration
	SampleDelivered uint64
	PriorDelivered  uint64
	TxInFlight      uint32
	SampleLost      uint64
	AppLimited      bool

	// CE is the bytes this ACK delivered that the peer reported as
	// Congestion Experienced: with RFC 3168 ECN, whose ECN-Echo flag
	// cannot count marks, every byte delivered by an ACK that carries ECE
	// (as DCTCP counts them, RFC 8257 §3.3); 0 without ECN.
	CE uint32
	// InRecovery reports that the ACK was taken during loss recovery:
	// recovery was under way when it arrived, or began on it. A
	// window-based controller leaves cwnd alone then: the recovery
	// algorithm (RFC 6582, RFC 6675, RFC 9937's PRR) rules the window
	// until it ends, unless the controller sets it itself
	// (SetsRecoveryWindow).
	InRecovery bool
}

// LostSegment describes a segment deemed lost (Controller.OnLost).
type LostSegment struct {
	// Bytes is its size in sequence space.
	Bytes uint32
	// TxInFlight is the bytes in flight just after it was (last) sent,
	// and LostAtSend the bytes deemed lost over the connection's life at
	// that moment; TotalLost is that count now, this segment included,
	// so TotalLost − LostAtSend were lost while it was in flight.
	TxInFlight uint32
	LostAtSend uint64
	TotalLost  uint64
	// AppLimited says it was sent while the application limited the
	// sending rate.
	AppLimited bool
}

// Reusable is implemented by a Controller whose Init sets all of its
// state, as a new controller's would be. The TCP core may then hand a
// controller that a parked connection gave back to another connection,
// after Init, instead of allocating one. A controller that does not
// implement it is never reused: each connection gets its own from New,
// so a controller registered from outside keeps nothing of another
// connection's (Linux zeroes a socket's congestion-control area before
// the algorithm's init for the same reason).
type Reusable interface {
	Controller
	// ReusableAfterInit marks the controller; it does nothing.
	ReusableAfterInit()
}

// IsReusable reports whether ctl may be handed to another connection
// after its Init (Reusable).
func IsReusable(ctl Controller) bool {
	_, ok := ctl.(Reusable)
	return ok
}

// Base gives every optional hook of Controller a default: Init, SetMSS,
// OnSent, OnAck, OnRecoveryStart, OnRecoveryEnd, OnTimeout,
// OnIdleRestart, OnUndo, OnECE and OnLost do nothing, Ssthresh is infinite,
// there is no pacing, and the recovery algorithm rules the window during
// recovery. Embed it and implement Name and Cwnd.
type Base struct{}

// Init implements Controller: it does nothing.
func (Base) Init(Params) {}

// Ssthresh implements Controller: infinite.
func (Base) Ssthresh() uint32 { return math.MaxUint32 }

// PacingRate implements Controller: no pacing.
func (Base) PacingRate() uint64 { return 0 }

// SetMSS implements Controller: it does nothing.
func (Base) SetMSS(uint32) {}

// OnSent implements Controller: it does nothing.
func (Base) OnSent(clock.Instant, uint32, uint32) {}

// OnAck implements Controller: it does nothing.
func (Base) OnAck(clock.Instant, AckSample) {}

// OnRecoveryStart implements Controller: it does nothing.
func (Base) OnRecoveryStart(clock.Instant, uint32) {}

// OnRecoveryEnd implements Controller: it does nothing.
func (Base) OnRecoveryEnd(clock.Instant, uint32) {}

// OnTimeout implements Controller: it does nothing.
func (Base) OnTimeout(clock.Instant, uint32) {}

// OnIdleRestart implements Controller: it does nothing.
func (Base) OnIdleRestart(clock.Instant) {}

// OnUndo implements Controller: it does nothing.
func (Base) OnUndo(clock.Instant) {}

// OnECE implements Controller: it does nothing.
func (Base) OnECE(clock.Instant, uint32) {}

// OnLost implements Controller: it does nothing.
func (Base) OnLost(clock.Instant, LostSegment) {}

// SetsRecoveryWindow implements Controller: no.
func (Base) SetsRecoveryWindow() bool { return false }

// InitialWindow returns the initial window for mss (RFC 6928 §2: ten
// segments; RFC 3390's byte cap is not applied, as Linux does not).
func InitialWindow(mss uint32, segs int) uint32 {
	return mss * uint32(segs)
}

// satAdd adds without wrapping past math.MaxUint32.
func satAdd(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint32
}
