// Package impair models an imperfect network link: loss (independent and
// bursty), delay with jitter, reordering, duplication, bit-flip corruption,
// a bandwidth limit with a drop-tail or CoDel queue (which can mark ECN
// instead of dropping), an MTU, and the link going down.
//
// It is the one implementation of these models. The in-memory pipe
// (link/pipe), the fault-injecting middleware (link/fault), the
// deterministic simulator (package sim, virtual time) and the user-space
// netem bridge (real time, AF_PACKET) all drive the same Model, so an
// impairment behaves the same way in a unit test, a simulation and an
// interop test.
//
// The package is pure: it starts no goroutines and reads no clock. The
// caller passes the current time as a clock.Instant to every call, and all
// randomness comes from a math/rand/v2 PCG seeded by the caller, so the same
// seed and the same sequence of calls give the same decisions.
//
// # How a frame travels
//
// Model.Offer decides the fate of one frame offered to the link at time
// now. The stages, in order, are:
//
//  1. Link down (SetUp(false)): the frame is dropped (DropDown).
//  2. MTU: a frame longer than MTU+LinkHeader bytes is dropped (DropMTU).
//  3. Duplication: with probability Dup the frame becomes two copies. Each
//     copy then goes through the remaining stages on its own, as netem's
//     duplicate does (it re-enters the qdisc).
//  4. Bottleneck (only when Rate > 0): the copy joins a drop-tail FIFO
//     queue of Queue frames (and QueueBytes bytes); when full it is dropped
//     (DropQueue). Otherwise it is serialized after the frames ahead of it,
//     taking len*8/Rate, and leaves the bottleneck at its departure time.
//     Frames lost on the wire afterwards still used the bandwidth.
//     With AQM set to CoDel (RFC 8289) the queue also drops a copy that
//     waited too long (DropAQM) — or, with AQM.ECN, marks it Congestion
//     Experienced instead when it is an ECN-capable IP packet (OfferFrame
//     reads the ECN field; Copy.Apply writes the mark). See codel.go for
//     how a dequeue-time algorithm runs when a frame is offered.
//  5. Loss on the wire: the copy is lost (DropLoss) with probability Loss,
//     or by the Gilbert–Elliott chain when GE is enabled (either may lose
//     it; the chain decides by its current state, then moves, as netem's
//     gemodel does).
//  6. Corruption: with probability Corrupt, one random bit at or after
//     byte CorruptOffset is to be flipped (smoltcp's argument: a single bit
//     flip is the likeliest error and the hardest to detect).
//  7. Propagation delay: the copy is due at departure + Delay + jitter,
//     where jitter is drawn uniformly from [-Jitter, +Jitter] (the default,
//     as netem without a distribution table) or from a normal distribution
//     with standard deviation Jitter clipped to ±4 Jitter (Dist = Normal).
//     A due time never precedes the departure time.
//
// # Reordering semantics (netem's)
//
// With probability Reorder a copy skips the propagation delay and jitter:
// it is due at its departure time (now, without a bandwidth limit), so it
// overtakes the frames still in flight, as netem's "reorder" puts a packet
// at the head of its queue. It still passes the bottleneck (a frame cannot
// overtake the serialization of the frame ahead of it on the wire).
//
// Copies are delivered in order of due time (ties in order of offer). As
// with netem's time-sorted queue, jitter larger than the spacing between
// frames therefore reorders them too. Set KeepOrder to keep FIFO order
// despite jitter: a copy that did not take the reorder path is then never
// due before the copy offered before it (the due time is raised to that of
// its predecessor), so only Reorder reorders.
//
// Counters.Reordered counts copies that took the reorder path;
// Counters.Overtook counts copies that will actually arrive before a copy
// offered earlier, whatever the cause (reorder or jitter).
//
// # Delivering frames
//
// Backlog reports what the bottleneck queue holds at a given time, and
// Counters the mean and largest wait of the copies that passed it, for
// measuring queueing delay.
//
// Offer only decides. The caller holds each copy until its due time and
// delivers the held copies in due-time order. Line is a time-ordered queue
// of frame copies for that purpose; it is pure too.
package impair
