// Package tcptest runs packetdrill-style scripts against the TCP connection
// core (package tcp) in virtual time.
//
// A script plays the peer and the application of one connection, the
// connection under test: it says which segments arrive and when, which
// calls the application makes, and which segments the connection must
// send, at what time. The harness checks every segment the connection
// sends against the script, strictly: flags, sequence and acknowledgment
// numbers, window, options, payload length and bytes, and timing. A segment
// the script did not expect fails the script, including one still waiting
// when the script ends. Scripts take microseconds to run, whatever virtual
// time they span.
//
// The format follows packetdrill's (github.com/google/packetdrill) closely,
// so that the same scripts can be run against the Linux kernel over a TUN
// device by a translator that maps the calls below onto socket system calls
// on one fd.
//
// # Lines
//
// Every event line starts with a time, then the event; "//" starts a
// comment; blank lines are skipped:
//
//	0      listen(8080)
//	+0     < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
//	+0     > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 0 ecr 100,nop,wscale 7>
//	+.1    < . 1:1(0) ack 1 win 257 <nop,nop,TS val 200 ecr 0>
//	+0     accept()
//	+0     write(2000)
//	+0     > . 1:1449(1448) ack 1 <nop,nop,TS val 100 ecr 200>
//
// # Time
//
//   - "1.25": seconds since the script started (virtual time 0);
//   - "+0.1", "+.04": seconds after the previous event. As in packetdrill,
//     "previous" is the time the previous event actually happened: for an
//     outbound segment, the time it left.
//   - "+0.9~+1.1" or "0.9~1.1": an outbound segment expected in a range;
//   - "*": an outbound segment expected whenever it leaves.
//
// An outbound segment must leave within Tolerance (default 10 ms, as
// packetdrill's --tolerance_usecs; "%tolerance" changes it) of its time.
// Inbound segments and calls happen exactly at their time, before any timer
// of the connection due at that same instant.
//
// # Segments
//
//	< flags start:end(len) [ack N] [win N] [<options>]   arrives from the peer
//	> flags start:end(len) [ack N] [win N] [<options>]   the connection sends it
//	> none                                               the connection sends nothing up to this time
//
//	< icmp unreachable CODE [start:end(len)]             an ICMP destination unreachable about the connection arrives
//
// A segment may start with its IP ECN codepoint, as in packetdrill:
// "[noecn]", "[ect0]", "[ect1]" or "[ce]" (RFC 3168 §5). An inbound
// segment arrives with it (Not-ECT without one); an outbound segment must
// carry it (without one, its codepoint is not checked):
//
//	+0    < [ce] . 1:1001(1000) ack 1 win 257
//	+0    > [ect0] . 1:1001(1000) ack 1
//
// CODE is one of packetdrill's names (net_unreachable, host_unreachable,
// protocol_unreachable, port_unreachable, frag_needed, ...); the quoted
// segment in brackets is not checked. The harness hands the error to the
// connection as the stack does.
//
// Flags are packetdrill's letters: F S R P . U E W (FIN, SYN, RST, PSH, ACK,
// URG, ECE, CWR); "." (ACK) requires "ack N" and "ack" requires ".".
// Sequence numbers are relative, as packetdrill's: the peer's to its ISN
// (Harness.RemoteISN, "%remote_isn"), the connection's to its ISS
// (Harness.ISS, "%iss"), and "start:end(len)" counts data only (a SYN or
// FIN takes no room in it: "S 0:0(0)", "F. 1:1(0)"). After a SYN reopens a
// connection from TIME-WAIT (RFC 6191), the connection's numbers are
// relative to the new incarnation's ISS.
//
// On an inbound segment "win" is required (a RST defaults to 0), and "urg N"
// sets the urgent pointer (packetdrill's syntax); on an outbound one, "win" omitted is not checked, and "ack *" and "win *" match
// anything. Options are checked byte for byte, in order, nops included:
// outbound without "<...>" must carry no options; "<...>" (three dots)
// matches any. The option items are
//
//	nop  eol  mss N  sackOK  wscale N  TS val X ecr Y  sack a:b c:d ...
//	opt K len N      (inbound only; ustack's) an option of kind K and length N, value bytes zero
//
// where "TS val *" and "ecr *" are wildcards on outbound segments, and SACK
// blocks are relative to the ISN of the side whose data they acknowledge.
// Inbound option lists must be a multiple of 4 bytes (pad with nop).
// "opt K len N" is how a script sends an option ustack does not know
// (RFC 9293 MUST-6) or a known one with a length it cannot have (MUST-7);
// packetdrill has no generic option item, so a translator for the kernel
// writes those bytes itself. A segment whose options do not decode is
// dropped as the stack drops it, before any connection sees it, and
// counted in Stats.InBadHeader and InErrs.
//
// Payloads are not written in scripts: the bytes at stream offset k of
// either direction are Pattern(k). Inbound segments carry the peer's
// pattern; write(N) writes the next N bytes of the application's; read
// checks what it returns and the harness checks every outbound payload,
// so data corruption in reassembly or retransmission fails the script.
//
// # Calls
//
// A call may end with "= result": a number, "EOF", or an errno name
// (EAGAIN, ECONNRESET, ECONNREFUSED, ECONNABORTED, ETIMEDOUT, EPIPE,
// ENOTCONN, EINVAL, EHOSTUNREACH); packetdrill's "= -1 EAGAIN (text)" is
// accepted too. Without a result the call must succeed (and read(N) and
// write(N) must move exactly N bytes).
//
//	listen(8080)              the next SYN opens the connection under test (passive open); the port is optional
//	accept()                  the connection completed its handshake ("= EAGAIN": not yet)
//	connect(10.0.0.2:80)      active open; the connection sends its SYN
//	write(N)                  the application writes N bytes
//	read(N), read()           the application reads N bytes, or all that is buffered; "= 0" and "= EOF" mean end of stream
//	shutdown(SHUT_WR|SHUT_RD|SHUT_RDWR)
//	close()                   close(2): orphans the connection
//	abort()                   close(2) with SO_LINGER 0: RST
//	setsockopt(TCP_NODELAY, 1)
//	setsockopt(SO_KEEPALIVE, 1), setsockopt(SO_KEEPALIVE, idle 10s intvl 1s cnt 3)
//	setsockopt(SO_RCVBUF, N), setsockopt(SO_SNDBUF, N)
//	getsockopt(SO_ERROR) = ETIMEDOUT     the connection's error (= 0: none)
//
// Socket options set before the connection exists (or after it closed)
// are set on the listener and inherited by the connections it opens.
//
// Assertions, which ustack adds to packetdrill's calls:
//
//	state(ESTABLISHED)                    the RFC 9293 state (LISTEN when listening and no connection is open)
//	stats(OutRsts=1, ChallengeACKs=2)     fields of tcp.Env.Stats
//	info(SndMSS=1448, RTO=200ms)          fields of tcp.Conn.Info()
//	chunks() = 0                          tcp.Conn.BufferedChunks()
//	readable() = 1, writable() = 0        tcp.Conn.Readable(), Writable()
//
// # Settings
//
// Lines starting with "%" come before the first event:
//
//	%config RcvBuf=65536 MinRTO=200ms NoSACK=true   tcp.Config fields (int, bool, duration)
//	%config Mem.Pressure=32768                      a field of a struct field
//	%tolerance 4ms
//	%iss 1000           the connection's ISS (default 0xfffff000: scripts cross the 2^32 wrap)
//	%remote_isn 0       the peer's ISN (default 0x7fffff00)
//	%tsoffset 0         added to the connection's TSval (TSval = virtual ms + offset)
//	%mtu 1500
//	%syncookies always  the listener answers every SYN with a SYN cookie and opens the connection from the cookie ACK
//	%local 192.168.0.1:8080
//	%remote 192.0.2.1:49152
//
// # Running the scripts against Linux
//
// Everything above is packetdrill's syntax except: the assertions
// (state, stats, info, chunks, readable, writable), which a translator
// maps to getsockopt(TCP_INFO) fields or /proc/net/netstat counters
// where Linux has an equivalent and drops otherwise; the "%" settings,
// which map to sysctls (%config DelayedACK, MinRTO, Retries2, SynRetries,
// ... name the sysctl they mirror in tcp.Config), to the TUN device's MTU
// and addresses, or (%iss, %remote_isn, %tsoffset) to packetdrill's own
// handling of relative sequence numbers and timestamps, which makes them
// unnecessary there; abort(), which is SO_LINGER {1, 0} then close; and
// "opt K len N". Scripts whose header comment says ustack follows the RFC
// rather than Linux, or differs from Linux, are expected to fail on Linux
// at the line the comment names; docs/CONFORMANCE.md lists them.
//
// # The stack around the connection
//
// The harness plays the parts of the stack the core leaves to its owner: a
// SYN for a listening port opens a connection with OpenPassive (or, with
// %syncookies, gets a cookie SYN-ACK from tcp.SynCookies and no
// connection; sequence numbers are then relative to the cookie, and an
// ACK that Check accepts opens the connection with OpenCookie); a SYN that
// reopens a connection from TIME-WAIT (HandleSegment returns tcp.Reopen)
// opens the next incarnation with the ISS from ReopenISS; and a segment
// for no connection is answered as RFC 9293 §3.10.7.1 says for CLOSED (a
// RST unless it is one).
//
// # Go tests
//
// RunFile runs a script file and fails the test with the script's
// file:line and a trace of the run. A Go test can also drive a Harness
// with script snippets (Exec) and inspect the connection between them
// (Harness.Conn, Harness.Env).
package tcptest
