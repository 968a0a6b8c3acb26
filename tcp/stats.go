package tcp

import (
	"reflect"
)

// Stats are the TCP counters of a stack, named after the Linux MIB counters
// (`nstat`, `netstat -s`) where one exists: the RFC 4022 Tcp* group, then
// TcpExt. The stack's owner reads them under the stack's lock, or through
// the stack's Stats snapshot.
type Stats struct {
	// RFC 4022 (TCP-MIB).
	ActiveOpens  uint64 // connections that sent a SYN (tcpActiveOpens)
	PassiveOpens uint64 // connections opened from a listener (tcpPassiveOpens)
	AttemptFails uint64 // SYN-SENT/SYN-RECEIVED → CLOSED or LISTEN (tcpAttemptFails)
	EstabResets  uint64 // ESTABLISHED/CLOSE-WAIT → CLOSED by a RST (tcpEstabResets)
	CurrEstab    uint64 // connections in ESTABLISHED or CLOSE-WAIT now (gauge)
	InSegs       uint64 // segments received, including errors (tcpInSegs)
	OutSegs      uint64 // segments sent, excluding retransmissions (tcpOutSegs)
	RetransSegs  uint64 // segments retransmitted (tcpRetransSegs)
	InErrs       uint64 // segments received in error (tcpInErrs)
	OutRsts      uint64 // segments sent with RST (tcpOutRsts)
	InCsumErrors uint64 // segments with a bad checksum (TcpInCsumErrors)

	// TcpExt: drops and anomalies on input.
	InBadHeader     uint64 // malformed header or options (ustack)
	NoListener      uint64 // segments for no connection and no listener: answered with a RST (ustack; the kernel counts them in OutRsts)
	ListenOverflows uint64 // SYNs or final ACKs dropped: accept queue full (ListenOverflows)
	ListenDrops     uint64 // SYNs dropped for any reason at a listener (ListenDrops)
	SynQueueDrops   uint64 // SYNs dropped: SYN queue full and SYN cookies off (ustack)
	PAWSEstab       uint64 // segments dropped by PAWS (PAWSEstab)
	OutOfWindow     uint64 // unacceptable segments, answered with an ACK (ustack)
	OOWRateLimited  uint64 // ACKs to unacceptable segments not sent: rate limit (TCPACKSkippedSeq)
	ChallengeACKs   uint64 // challenge ACKs sent (TCPChallengeACK)
	ChallengeLimit  uint64 // challenge ACKs not sent: global limit (ustack)
	SYNChallenge    uint64 // SYNs in a synchronized state that got a challenge ACK (TCPSYNChallenge)
	RSTOutOfWindow  uint64 // RSTs ignored: sequence outside the window (ustack)
	ACKTooNew       uint64 // ACKs of data never sent, dropped (ustack; TCPACKSkippedChallenge)
	ACKTooOld       uint64 // ACKs older than SND.UNA−MAX.SND.WND, dropped (RFC 5961 §5)
	OFOQueue        uint64 // segments queued out of order (TCPOFOQueue)
	OFODrop         uint64 // out-of-order segments dropped: too many ranges (TCPOFODrop)
	OFOMerge        uint64 // out-of-order segments that filled or joined a hole (TCPOFOMerge)
	OFOPruned       uint64 // out-of-order queues dropped for buffer memory (OfoPruned)
	RcvQDrop        uint64 // segments dropped: no buffer memory under the stack's budget (TCPRcvQDrop; Linux counts out-of-order ones in TCPOFODrop)
	RcvWindowTrims  uint64 // segments trimmed to the receive window (ustack)
	ZeroWindowDrop  uint64 // data dropped: receive window zero (TCPZeroWindowDrop)
	DupData         uint64 // segments carrying only data already received (ustack; DSACK is sent)
	DSACKSent       uint64 // D-SACK blocks sent (TCPDSACKOldSent)
	AbortOnData     uint64 // data arrived after close: RST sent (TCPAbortOnData)
	AbortOnClose    uint64 // close with unread data: RST sent (TCPAbortOnClose)
	AbortOnLinger   uint64 // close with linger 0: RST sent (TCPAbortOnLinger)
	AbortOnTimeout  uint64 // connections ended by retransmission/keep-alive timeouts (TCPAbortOnTimeout)
	TWRecycled      uint64 // TIME-WAIT connections reused by a new SYN, or by an outgoing connection (TWRecycled)
	TWKilled        uint64 // TIME-WAIT connections ended early by a RST (TWKilled)

	// TcpExt: SYN cookies (RFC 4987 §3.6).
	SyncookiesSent   uint64 // SYN-ACKs sent with a cookie (SyncookiesSent)
	SyncookiesRecv   uint64 // ACKs that carried a valid cookie (SyncookiesRecv)
	SyncookiesFailed uint64 // ACKs checked as cookies and refused, answered with a RST (SyncookiesFailed)

	// TcpExt: output and recovery.
	DelayedACKs      uint64 // ACKs sent by the delayed-ACK timer (DelayedACKs)
	QuickACKs        uint64 // ACKs sent at once (ustack)
	SynRetrans       uint64 // SYN and SYN-ACK retransmissions (TCPSynRetrans)
	Timeouts         uint64 // RTO expirations (TCPTimeouts)
	FastRetrans      uint64 // fast retransmissions (TCPFastRetrans)
	Recoveries       uint64 // fast-recovery episodes, NewReno or SACK (TCPRenoRecovery + TCPSackRecovery)
	SACKRecoveries   uint64 // recovery episodes driven by SACK (TCPSackRecovery)
	SACKReneging     uint64 // ACKs pointing at SACKed data: scoreboard dropped (TCPSACKReneging)
	PartialACKs      uint64 // partial ACKs in NewReno recovery (TCPRenoRecoveryFail... ustack)
	DupACKsIn        uint64 // duplicate ACKs received (ustack)
	DSACKRecv        uint64 // D-SACK blocks received and believed (TCPDSACKRecv)
	Reordering       uint64 // connections that saw reordering: RACK's reordering window opened (ustack; Linux counts TCPSACKReorder)
	RACKLost         uint64 // bytes RACK deemed lost (ustack; Linux counts segments in TCPLostRetransmit and others)
	TLPProbes        uint64 // tail-loss probes sent (TCPLossProbes)
	TLPRecoveries    uint64 // losses repaired by a tail-loss probe (TCPLossProbeRecovery)
	DSACKUndo        uint64 // recoveries undone: every resend reported duplicate by D-SACK (TCPDSACKUndo)
	EifelUndo        uint64 // recoveries or RTOs undone: the timestamp echo showed the original arrived (TCPPartialUndo + TCPFullUndo + TCPLossUndo)
	SpuriousRTOs     uint64 // RTOs found spurious by F-RTO and undone (TCPSpuriousRTOs)
	ECNReductions    uint64 // window reductions for ECN-Echo (ustack; Linux enters CWR)
	ECNCEReceived    uint64 // CE marks that started an ECN-Echo (ustack)
	ZeroWindowProbes uint64 // zero-window probes sent (ustack)
	KeepAliveProbes  uint64 // keep-alive probes sent (ustack)
	WindowUpdates    uint64 // pure window updates sent (ustack)
	RcvBufGrown      uint64 // receive buffers grown by auto-tuning (ustack; Linux's TCPRcvQDrop and friends count other things)

	// TcpExt: ICMP and path MTU (RFC 5927, RFC 1191, RFC 8201, RFC 4821).
	OutOfWindowICMPs uint64 // ICMP errors quoting a sequence number not in flight, dropped (RFC 5927 §4.1; OutOfWindowIcmps)
	PTBReceived      uint64 // packet too big / fragmentation needed errors that named a connection (ustack)
	PTBAccepted      uint64 // of those, quoting a sequence number in flight: acted on (ustack)
	PTBRejected      uint64 // of those, quoting one not in flight: dropped (ustack; also in OutOfWindowICMPs)
	MTUProbes        uint64 // PLPMTUD probes sent (ustack)
	MTUProbeSuccess  uint64 // probes acknowledged: the MSS grew (TCPMTUPSuccess)
	MTUProbeFail     uint64 // probes lost or refused by a packet too big (TCPMTUPFail)
	MTUBlackHoles    uint64 // black holes detected: the MSS dropped to the base MSS or below (ustack)

	// Parking of idle connections (park.go; ustack, no Linux
	// counterpart).
	Parked  uint64 // connections parked now (gauge)
	Parks   uint64 // connections parked
	Unparks uint64 // parked connections rebuilt (a segment, a timer or a call)
	// KeepAliveParked counts the keep-alive segments parked connections
	// handled without unparking: the peer's probes answered and the ACKs
	// taken (Env.HandleParked), their own probes sent
	// (Env.TimeoutParked).
	KeepAliveParked uint64
}

// Each calls f with the name and value of every counter, in declaration
// order. It is for printing and tests; it is not fast.
func (s *Stats) Each(f func(name string, v uint64)) {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f(t.Field(i).Name, v.Field(i).Uint())
	}
}
