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
// # Offloads
//
// A pipe offers what a Linux veth does (unless Config.NoOffloads): TCP and
// UDP segmentation offload, checksum offload and large receive (Caps:
// link.CapTSO, CapUSO, CapTxChecksum, CapRxChecksumValid, CapGRO). A
// super-frame of up to link.MaxSuperFrame bytes crosses whole, with its
// Offload; a frame whose checksum is partial (Offload.NeedsCsum) arrives
// with DataValid as well — checksum partial on one side is data valid on
// the other, as on a veth, where the kernel never computes a checksum no
// wire will see. A frame with a complete checksum arrives without
// DataValid (Linux's veth stopped trusting those in 2016, so that
// corrupted frames injected into one are caught).
//
// Impairments act on wire frames. Where one acts per frame — loss,
// Gilbert–Elliott loss, jitter, reordering, duplication, corruption, a
// rate (its queue counts frames), an MTU — every super-frame is cut into
// the segments a NIC would send (package internal/gso) before the model
// sees them, each with a partial checksum and so DataValid at the reader;
// with corruption every checksum is completed first and nothing arrives
// with DataValid, so the receiver verifies and catches the flipped bit, as
// it would behind a real wire. (Linux's netem acts on whole GSO packets
// except when it corrupts; the pipe follows the wire instead, so that a
// loss rate means the same with offloads as without.) A fixed delay alone
// acts on super-frames whole.
//
// # Buffers and allocation
//
// A pipe without impairment and delay hands frames over through a queue
// per direction, and where the callers allow it (link.Packet.Swap) by
// exchanging buffers rather than copying: WriteBatch keeps the writer's
// buffer, frame and all, and gives it a spare one at least as long;
// ReadBatch gives the reader that buffer and keeps the reader's as the
// next spare. A frame of more than 2 KiB whose writer and reader both
// allow it crosses without a copy; otherwise it is copied once into a
// spare buffer (small frames into small ones) and, unless the reader
// allows the exchange, once out. Spare buffers are kept up to a bound and
// made when there are none, so in steady state nothing is allocated.
//
// An end given a receive function (SetReceiver, link.Receiver) gets the
// frames written to it by a call of that function from the writer's
// WriteBatch instead, without a copy or a queue, whenever the pipe has
// no impairment, nothing is queued ahead and its reader is parked; a
// frame written the other way from inside that call is queued for the
// reader rather than delivered by a nested call.
//
// WriteBatch may be called by several goroutines at once
// (link.ConcurrentWriter): each call's frames keep their order, and the
// direction's lock is released while frames go to the receive function,
// so a writer never waits for another's delivery; the receive function
// may then be in several calls at once, one per writer.
//
// With impairments or a delay, WriteBatch copies every frame into a
// buffer from a pool of fixed-size arrays (impair.Line) and never keeps
// the caller's buffer; ReadBatch copies it out into the caller's buffer
// and returns the pooled one. In steady state neither call allocates.
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
// WriteBatch never blocks for long. On a link with a bandwidth limit, the
// frames a direction holds are bounded as on a real one: QueueLen frames
// in the drop-tail queue in front of the limit (Impair.DroppedQueue when
// full), what the wire holds during the delay (not counted: a 1 Gbit/s,
// 5 ms link carries some 410 full frames besides its queue), and QueueLen
// frames that have arrived but are not yet read — a frame arriving when
// that receive ring is full is dropped and counted (DroppedUnread), as a
// NIC drops it. Without a bandwidth limit there is no queue, and a
// direction holds at most QueueLen frames in flight or waiting to be read
// (TxQueueFull), as netem's limit counts the frames it delays.
//
// # Closing
//
// Closing either end closes the link for both, like pulling the cable:
// every blocked and later ReadBatch and WriteBatch on either end returns an
// error satisfying errors.Is(err, net.ErrClosed), and frames in flight are
// discarded.
package pipe
