package tcp

import (
	"fmt"
	"time"

	"github.com/ustack/ustack/tcp/cc"
)

// Config holds the tunables of every connection of a stack. The zero value
// gives the Linux kernel's defaults (as of 6.x) wherever the kernel has one;
// each field says which sysctl it mirrors.
type Config struct {
	// RcvBuf and SndBuf are the receive and send buffer sizes a
	// connection starts with (net.ipv4.tcp_rmem and tcp_wmem's middle
	// values): 128 KiB and 64 KiB by default. Auto-tuning (autotune.go)
	// grows them — the receive buffer with what the application reads
	// per round trip (Linux's dynamic right-sizing), the send buffer to
	// twice the congestion window — up to RcvBufMax and SndBufMax
	// (tcp_rmem's and tcp_wmem's last values); a maximum no larger than
	// the starting size turns it off, as SetReadBuffer and SetWriteBuffer
	// do for one connection (SO_RCVBUF, SO_SNDBUF). Memory is only taken
	// while data is buffered, whatever the sizes.
	RcvBuf, SndBuf int
	// RcvBufMax and SndBufMax bound auto-tuning: 32 MiB each by default.
	// The receive maximum is Linux 6.18's tcp_rmem[2] (this machine's
	// default; older kernels had 6 MiB); the send maximum is above
	// Linux's 4 MiB tcp_wmem[2], so that one connection fills a 1 Gbit/s
	// path with a 100 ms RTT (12.5 MB in flight) without configuration.
	// The window scale announced in the SYN is the one RcvBufMax needs
	// (RFC 7323 §2.3; Linux sizes it from tcp_rmem[2] too).
	RcvBufMax, SndBufMax int
	// Mem is the stack-wide budget of buffer memory, over every
	// connection and every shard (net.ipv4.tcp_mem, in bytes): above
	// Mem.Pressure the stack is under memory pressure until it is back
	// at Mem.Low — windows and buffers stop growing and new windows
	// shrink to four segments — and no buffer grows past Mem.High but by
	// the charges that keep each connection moving (memory.go). Zero
	// fields are derived from the machine's memory as Linux does
	// (DefaultMemLimits: 3/64, 1/16 and 3/32 of it); a negative High
	// counts without limiting.
	Mem MemLimits
	// Memory, when set, is the account the connections charge, shared
	// with every stack whose Config names it (Mem is then ignored: the
	// account's limits apply). Nil: each stack (all its shards) gets its
	// own, made from Mem.
	Memory *Memory
	// InitialRTO is the RTO before any RTT sample (RFC 6298 §2.1: 1 s).
	InitialRTO time.Duration
	// MinRTO and MaxRTO bound the RTO (kernel: TCP_RTO_MIN 200 ms,
	// TCP_RTO_MAX 120 s).
	MinRTO, MaxRTO time.Duration
	// DelayedACK is how long an ACK may be delayed (kernel: TCP_DELACK_MIN
	// 40 ms). Negative disables delayed ACKs.
	DelayedACK time.Duration
	// SynRetries is how many times a SYN is retransmitted before a connect
	// fails with ETIMEDOUT (net.ipv4.tcp_syn_retries, 6).
	SynRetries int
	// SynAckRetries is how many times a SYN-ACK is retransmitted before a
	// half-open connection is dropped (net.ipv4.tcp_synack_retries, 5).
	SynAckRetries int
	// Retries2 is how many RTO retransmissions of data (or unanswered
	// zero-window probes) end the connection with ETIMEDOUT
	// (net.ipv4.tcp_retries2, 15).
	Retries2 int
	// TimeWait is how long TIME-WAIT lasts, 2×MSL (kernel: 60 s).
	TimeWait time.Duration
	// FinTimeout is how long an orphaned connection may stay in
	// FIN-WAIT-2 (net.ipv4.tcp_fin_timeout, 60 s).
	FinTimeout time.Duration
	// KeepIdle, KeepInterval and KeepCount are the keep-alive defaults
	// (tcp_keepalive_time 2 h, tcp_keepalive_intvl 75 s,
	// tcp_keepalive_probes 9). Keep-alive itself is off until enabled per
	// connection (SO_KEEPALIVE).
	KeepIdle, KeepInterval time.Duration
	KeepCount              int
	// NoWindowScale, NoTimestamps and NoSACK turn off the options of RFC
	// 7323 and RFC 2018 (net.ipv4.tcp_window_scaling, tcp_timestamps,
	// tcp_sack all default on).
	NoWindowScale, NoTimestamps, NoSACK bool
	// NoRACK turns RACK-TLP (RFC 8985) off: with SACK, losses are found
	// by RFC 6675's DupThresh rule and resent by its NextSeg, without
	// tail-loss probes, PRR or undo (net.ipv4.tcp_recovery = 0; Linux's
	// default 1 is RACK). NoTLP keeps RACK but sends no tail-loss probes
	// (net.ipv4.tcp_early_retrans = 0). NoFRTO turns F-RTO (RFC 5682)
	// off, so every RTO is taken as a real loss (net.ipv4.tcp_frto = 0;
	// default on).
	NoRACK, NoTLP, NoFRTO bool
	// ECN is the use of Explicit Congestion Notification (RFC 3168),
	// net.ipv4.tcp_ecn: ECNAccept (the default, Linux's 2) accepts it
	// when a peer asks in its SYN; ECNRequest (1) also asks for it on
	// outgoing connections; ECNOff (0) neither.
	ECN ECNMode
	// InitialCwnd is the initial congestion window in segments (RFC 6928:
	// 10).
	InitialCwnd int
	// ChallengeACKLimit is how many challenge ACKs (RFC 5961 §7) the stack
	// sends per second, over all connections
	// (net.ipv4.tcp_challenge_ack_limit, 1000).
	ChallengeACKLimit int
	// ParkIdle turns parking on (park.go; docs/ARCHITECTURE.md, "Parking
	// idle connections"): an established connection quiescent for
	// ParkIdle, and for three RTOs, may be parked by its owner — its
	// Conn, recovery algorithm and controller go back to pools and a
	// compact record stands for it. Zero or negative: off (package tcp's
	// default; package stack turns it on with 1 s).
	ParkIdle time.Duration
	// InvalidRateLimit is the least time between two ACKs a connection
	// sends in answer to out-of-window segments
	// (net.ipv4.tcp_invalid_ratelimit, 500 ms).
	InvalidRateLimit time.Duration
	// Congestion is the name of the congestion controller new
	// connections use, as registered in package cc
	// (net.ipv4.tcp_congestion_control): "cubic" (RFC 9438 with
	// HyStart++, cc.Default, as Linux's), "reno" (RFC 5681), "bbr". A
	// connection can switch with SetCongestionControl. Validate
	// reports an unknown name; NewEnv, which cannot fail, uses
	// cc.Default instead.
	Congestion string
	// Pacing paces the controllers that do not need it (CUBIC, Reno) at
	// Linux's rates, as Linux does with the fq qdisc; BBR paces
	// regardless. Off by default, as Linux without fq: measured in the
	// simulator on one 1 Gbit/s flow with a 10 ms RTT, unpaced slow
	// start ends at the path's capacity by HyStart's ACK train (no
	// retransmission with a one-BDP buffer, against about 280 paced),
	// while pacing wins with shallow buffers (a 0.12-BDP buffer: 854
	// Mbit/s paced, 471 unpaced). See BENCHMARKS.md.
	Pacing bool
	// MTUProbing is when packetization-layer path MTU discovery runs
	// (RFC 4821, RFC 8899; net.ipv4.tcp_mtu_probing): by default
	// (MTUProbingBlackHole, Linux's 1) once full-sized segments keep
	// timing out — the MSS drops to BaseMSS and probes search upward;
	// MTUProbingAlways (2) from the start of every connection;
	// MTUProbingOff (0) never, leaving ICMP's packet too big as the
	// only way the MSS falls (Linux's default). See plpmtud.go.
	MTUProbing MTUProbingMode
	// BaseMSS is the MSS probing starts from and a black hole drops to
	// (net.ipv4.tcp_base_mss, 1024).
	BaseMSS int
	// ProbeInterval is how long after a search ends it starts again, to
	// find a path that grew (net.ipv4.tcp_probe_interval, 600 s; RFC
	// 8899's PMTU_RAISE_TIMER).
	ProbeInterval time.Duration
}

// ECNMode is Config.ECN, Linux's net.ipv4.tcp_ecn.
type ECNMode uint8

// The ECN modes. The zero value is ECNAccept.
const (
	// ECNAccept: answer an ECN-setup SYN with an ECN-setup SYN-ACK;
	// never ask (tcp_ecn = 2, Linux's default).
	ECNAccept ECNMode = iota
	// ECNRequest: ask for ECN in the SYN of an outgoing connection, and
	// accept it on incoming ones (tcp_ecn = 1).
	ECNRequest
	// ECNOff: neither ask nor accept (tcp_ecn = 0).
	ECNOff
)

// String returns the mode's name.
func (m ECNMode) String() string {
	switch m {
	case ECNAccept:
		return "accept"
	case ECNRequest:
		return "request"
	case ECNOff:
		return "off"
	}
	return fmt.Sprintf("ECNMode(%d)", uint8(m))
}

// UnmarshalText sets the mode from its name ("off", "request", "accept")
// or from the value net.ipv4.tcp_ecn gives it ("0", "1", "2").
func (m *ECNMode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "accept", "2":
		*m = ECNAccept
	case "request", "1":
		*m = ECNRequest
	case "off", "0":
		*m = ECNOff
	default:
		return fmt.Errorf("tcp: unknown ECN mode %q (off, request, accept; or 0, 1, 2 as net.ipv4.tcp_ecn)", b)
	}
	return nil
}

// Validate reports settings no connection can use: a Congestion name no
// controller is registered under (the error matches
// ErrUnknownCongestion), or Mem's thresholds out of order.
func (c *Config) Validate() error {
	if !cc.Registered(c.Congestion) {
		return fmt.Errorf("tcp: Config.Congestion: %w %q", ErrUnknownCongestion, c.Congestion)
	}
	if c.Memory == nil {
		return c.Mem.check()
	}
	return nil
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d == 0 {
			*d = v
		}
	}
	defInt(&c.RcvBuf, 128<<10)
	defInt(&c.SndBuf, 64<<10)
	defInt(&c.RcvBufMax, 32<<20)
	defInt(&c.SndBufMax, 32<<20)
	def(&c.InitialRTO, time.Second)
	def(&c.MinRTO, 200*time.Millisecond)
	def(&c.MaxRTO, 120*time.Second)
	def(&c.DelayedACK, 40*time.Millisecond)
	defInt(&c.SynRetries, 6)
	defInt(&c.SynAckRetries, 5)
	defInt(&c.Retries2, 15)
	def(&c.TimeWait, 60*time.Second)
	def(&c.FinTimeout, 60*time.Second)
	def(&c.KeepIdle, 2*time.Hour)
	def(&c.KeepInterval, 75*time.Second)
	defInt(&c.KeepCount, 9)
	defInt(&c.InitialCwnd, 10)
	defInt(&c.ChallengeACKLimit, 1000)
	def(&c.InvalidRateLimit, 500*time.Millisecond)
	defInt(&c.BaseMSS, 1024)
	c.BaseMSS = max(c.BaseMSS, mssFloor)
	def(&c.ProbeInterval, defaultProbeInterval)
	if c.Congestion == "" || !cc.Registered(c.Congestion) {
		c.Congestion = cc.Default
	}
	if c.RcvBuf < minBuf {
		c.RcvBuf = minBuf
	}
	if c.SndBuf < minBuf {
		c.SndBuf = minBuf
	}
	c.RcvBuf, c.SndBuf = min(c.RcvBuf, maxBuf), min(c.SndBuf, maxBuf)
	c.RcvBufMax, c.SndBufMax = min(c.RcvBufMax, maxBuf), min(c.SndBufMax, maxBuf)
}

// minBuf is the smallest buffer size accepted (the kernel's SOCK_MIN_RCVBUF
// is about 2.3 KiB; ustack needs room for one segment).
const minBuf = 4096

// maxBuf is the largest buffer: a window of 2^30 bytes (RFC 7323 §2.3:
// shift 14 on a 16-bit window).
const maxBuf = 1 << 30
