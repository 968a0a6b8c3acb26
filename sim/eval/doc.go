// Package eval measures loss recovery and congestion control in the
// simulator (package sim): whole ustack hosts on a simulated bottleneck, in
// virtual time, every run determined by its seed.
//
// Each experiment runs every congestion controller registered in package
// tcp/cc (cc.Names()), so a controller that registers itself is measured
// without a change here:
//
//   - Goodput over a grid of bandwidth × RTT × random loss (RunGoodput).
//   - Tail-loss recovery: the last segments of a transfer are lost on
//     their first transmission; the time to complete is compared with the
//     same transfer without the loss, whatever recovers it (a probe, an
//     RTO) (RunTailLoss).
//   - Heavy reordering on a lossless path: the congestion window over
//     time, how often it was cut, and the spurious retransmissions the
//     receiver got (RunReorder).
//   - Jain's fairness index of 2, 4 and 8 flows sharing one bottleneck,
//     with one controller and with two mixed (RunFairness).
//   - Queue delay at the bottleneck with a deep drop-tail queue, with
//     CoDel dropping, and with CoDel marking ECN (RunQueue).
//
// The command sim/cmd/evalcc runs them all and writes the tables that
// BENCHMARKS.md links (`make eval`).
//
// # The bench
//
// Two hosts — a sender and a receiver — are joined by one link whose
// direction from the sender is the bottleneck (Path): a rate, half the
// RTT of propagation delay, random loss, a queue (one bandwidth-delay
// product by default, drop-tail or CoDel), and optionally jitter or
// netem-style reordering. The other direction carries the ACKs with the
// other half of the RTT and no other impairment. Each flow is a TCP
// connection from the sender to a server on the receiver; the sender
// writes as fast as the connection takes data, and the receiver reads
// everything at once and checks every byte against what was written.
// Goodput is what the receiving application read, per unit of virtual
// time.
//
// Nothing here is configured beyond the stacks' defaults except the
// controller (tcp.Config.Congestion, or SetCongestionControl for mixed
// flows) and, for the ECN rows, ECN itself: so buffer auto-tuning, pacing
// or ECN defaults show in the tables when they land.
package eval
