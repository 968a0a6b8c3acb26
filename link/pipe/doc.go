// Package pipe is an in-memory duplex link: two link.Endpoints joined by a
// virtual cable, the backbone of the stack's tests.
//
//	a, b := pipe.New(pipe.Config{MTU: 1500, Delay: 10 * time.Millisecond})
//	defer a.Close()
//
// Frames written to one end are read from the other, after the configured
// one-way delay and serialization time (Bandwidth), and subject to the
// optional impairments of package impair (loss, jitter, reordering,
// duplication, corruption, ...), seeded by Config.Seed so that a run can be
// replayed. Each direction has its own impair.Model (impair.NewPair).
//
// # Buffers and allocation
//
// WriteBatch copies every frame into a buffer from a pool of fixed-size
// arrays (impair.Line) and never keeps the caller's buffer; ReadBatch
// copies it out into the caller's buffer and returns the pooled one. In
// steady state neither call allocates.
//
// # Blocking and time
//
// There is no goroutine per pipe. Each direction holds its frames in a
// queue ordered by due time. ReadBatch returns at once the frames that are
// due; if none is, it sleeps on the direction's one time.Timer until the
// earliest due time, waking early when a writer adds a frame (which may be
// due sooner) or the pipe is closed. Time is real time (time.Now and
// time.Timer), so inside a testing/synctest bubble the pipe runs on the
// bubble's fake clock: a 50 ms delay takes no wall time and is exact.
//
// WriteBatch never blocks for long: when the pipe already holds QueueLen
// frames in a direction (the reader is slow, or the bandwidth-delay product
// is larger than QueueLen), further frames are dropped and counted, as a
// full NIC ring drops them.
//
// # Closing
//
// Closing either end closes the link for both, like pulling the cable:
// every blocked and later ReadBatch and WriteBatch on either end returns an
// error satisfying errors.Is(err, net.ErrClosed), and frames in flight are
// discarded.
package pipe
