// Package tcp is the TCP connection as a pure state machine (sans-IO).
//
// Reading list, in the order the code follows it:
//   - RFC 9293 (TCP): states, segment arrival (§3.10.7), windows (§3.8.6),
//     and the requirement summary (MUST-n / SHLD-n labels cited in comments).
//   - RFC 1122 §4.2: keep-alive, delayed ACKs, Nagle, silly-window avoidance.
//   - RFC 6298: the retransmission timer; RFC 6928: initial window.
//   - RFC 7323: window scaling, timestamps, PAWS.
//   - RFC 2018 and RFC 2883: SACK and D-SACK blocks as a receiver;
//     RFC 6675: SACK-based loss recovery as a sender (sack.go, on the
//     scoreboard of scoreboard.go).
//   - RFC 5681 and RFC 6582: congestion control (package cc), fast
//     retransmit, NewReno (newreno.go).
//   - RFC 5961: blind RST, SYN and data injection (challenge ACKs).
//   - RFC 6528: initial sequence numbers; RFC 6191: SYN in TIME-WAIT.
//   - RFC 4987 §3.6: SYN cookies, as Linux builds them (syncookie.go).
//
// # The Handle/Poll contract
//
// A Conn never starts a goroutine, reads a clock, takes a lock or blocks.
// Its owner drives it with four kinds of methods:
//
//   - inputs: HandleSegment(now, seg) for every segment addressed to it,
//     HandleTimeout(now) when NextDeadline has passed;
//   - application commands, all non-blocking: Read, Write, CloseWrite,
//     Close, Abort and the option setters; they return ErrWouldBlock
//     instead of waiting;
//   - outputs, called after any input or command: PollTransmit(now, dst)
//     until it returns 0 (or PollTransmitBatch, which may combine
//     segments of new data into one super-segment that SplitSegment cuts
//     up again), then NextDeadline, then TakeEvents;
//   - getters: State, Info, Readable, Writable, Err.
//
// Time only moves forward: every now passed in must be at or after the
// previous one. The same sequence of calls with the same arguments produces
// the same segments, which is what lets the simulator replay a run from its
// seed.
//
// Buffers are taken from a shared pool of fixed-size chunks when data
// arrives and given back when it is read or acknowledged, so an idle
// connection holds no buffer memory. Retransmissions are rebuilt from the
// send buffer; no segment is kept.
//
// # Seams
//
// What the sending side does after a loss and how fast it sends are
// behind two interfaces, so that the next algorithm is a new file:
//
//   - loss recovery (recovery.go): the unexported lossRecovery, chosen
//     once when SACK is negotiated — NewReno (newreno.go) or RFC 6675
//     (sack.go) — told of each ACK and RTO, and asked what to send next
//     and how much may be in flight;
//   - congestion control: a cc.Controller made by name (Config.Congestion,
//     SetCongestionControl) from package cc's registry, told of segments
//     sent, ACK samples, recovery and timeouts, and asked for a window and
//     a pacing rate.
//
// Timers are named slots of one table (timer.go), the pacing timer among
// them. docs/ARCHITECTURE.md draws this and says how to add to it.
//
// A listening socket is not a Conn: the stack demultiplexes SYNs to its
// listeners and opens a Conn per SYN with OpenPassive, or, when it
// answers with a SYN cookie (SynCookies), keeps nothing and opens the
// Conn from the cookie ACK with OpenCookie.
package tcp
