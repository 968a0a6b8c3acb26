// Package sim is a deterministic discrete-event network simulator: whole
// ustack hosts — the very stack.Stack values the goroutine runtime drives,
// not a copy of their logic — joined by impaired links and driven
// single-threaded in virtual time.
//
// # The network
//
// A Network holds nodes and links. A node is a host (a stack.Stack with one
// or more NICs, see AddHost and Node.AddNIC), a learning Ethernet switch
// (AddSwitch), or a raw node whose frames a function receives and which
// sends frames of its own (AddRaw: an attacker, a sink, a scripted peer).
// A Link joins two ports; each of its directions is an impair.Model — loss
// (Bernoulli and Gilbert–Elliott), delay and jitter, reordering,
// duplication, bit-flip corruption, a bandwidth limit with a drop-tail
// queue, an MTU — and a delay line (impair.Line). Links go down and come
// back with Link.SetUp. Every random choice derives from the network's
// seed (New): link models, stack seeds, application choices
// (Network.Rand). The same seed therefore gives the same run, frame for
// frame and byte for byte; EnableDigest and Digest check that.
//
// # The event loop
//
// Step advances virtual time to the earliest of: the next frame due on any
// link, any stack's NextDeadline, any application timer (At, After). At
// that instant it delivers the frames due (HandleFrame), runs the stacks'
// timers (HandleTimeout) and the application timers, then polls every
// stack's output into its links (PollTransmit) and dispatches its events
// (PollEvent) to the Handler watching each socket (Watch), until nothing
// more happens at that instant. Run, RunFor and RunQuiet step until a
// condition holds, and stop with ErrLivelock after MaxSteps steps (or when
// one instant needs an unbounded number of output rounds), so a livelock
// fails a test instead of hanging it. Nothing waits for wall-clock time: a
// minute of a simulated transfer takes milliseconds.
//
// Invariants are checked as the loop goes: no stack may leave a deadline
// in the past after HandleTimeout, and with CheckCorrupt every corrupted
// frame a stack receives must raise one of its drop counters. Broken
// invariants are recorded (Violations) rather than panicking, so a test
// reports them with its seed.
//
// # Applications
//
// Apps runs applications as small state machines on the same non-blocking
// socket calls the net.Conn layer uses (stack.TCPConn Read, Write,
// CloseWrite, Close, Abort; TCPListener.Accept; UDPEndpoint ReadFrom and
// WriteTo): servers with a given accept backlog and accept rate, clients
// whose flows send and receive given amounts with random write and read
// sizes, half-close (CloseWrite when their data is written), echo, slow
// readers that pause, aborts after a given number of bytes, and UDP
// senders and sinks. Every byte read is checked, in order, against the
// byte written at that offset (Pattern); Apps.Check reports every flow
// whose bytes differ, or that did not complete although nobody aborted it.
//
// # Captures and replay
//
// Capture and CaptureFile write every frame delivered on any link (or on
// the links given) to one pcap file, timestamped in virtual time from the
// Unix epoch; see Capture for what is recorded. The property tests of this
// package print, for every failing seed, a command that replays exactly
// that run and writes its capture:
//
//	go test ./sim -run 'TestProperties' -sim.seed=12345 -sim.pcap=/tmp/seed12345.pcap
package sim
