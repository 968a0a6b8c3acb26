// Package netem is a network emulator in user space: a Bridge forwards
// frames between two links and impairs each direction — loss, delay and
// jitter, reordering, duplication, corruption, a rate limit — with the
// models of package impair, seeded, so a run can be repeated.
//
// It is what `ustack netem` runs between two AF_PACKET sockets, for machines
// and containers whose kernel lacks sch_netem: put the bridge in a namespace
// of its own between two veth pairs and everything that crosses it is
// impaired, whoever sends it (the kernel's TCP, a user-space stack, a
// container).
//
//	a, _ := afpacket.Open(afpacket.Config{Interface: "ma", Netns: "mid", NoOffloads: true})
//	b, _ := afpacket.Open(afpacket.Config{Interface: "mb", Netns: "mid", NoOffloads: true})
//	cfg, _ := impair.ParseConfig("loss=1%,delay=50ms,jitter=10ms")
//	br, err := netem.New(a, b, netem.Config{AB: cfg, BA: cfg, Seed: 1})
//	...
//	defer br.Close()
//
// # How a frame crosses
//
// Each direction has one goroutine that reads batches from its source
// link. For every frame it asks the direction's impair.Model what becomes
// of it (Model.Offer): dropped, or one or two copies (duplication), each
// with a due time and perhaps a bit to flip. A copy that is due at once,
// intact, while nothing is held goes straight out, written from the read
// buffer in the same batch (the passthrough path: no copy, one write call
// per batch). Every other copy is copied into the direction's
// impair.Line — a time-ordered queue of at most Config.Limit frames, like
// netem's limit — and a second goroutine per direction sleeps until the
// earliest held copy is due and writes all the copies that are due, in
// order of due time. Corruption is applied to the held copy, never to the
// buffer read.
//
// One lock per direction serialises the model, the line and the writes to
// the destination link, so frames leave in due-time order. Nothing is
// allocated per frame: the read and write batches are made once, the Line
// keeps its buffers in pools, and the one timer per direction is reset,
// not replaced.
//
// # What the models mean
//
// The semantics are impair's (see its documentation), which follow
// netem's: "reorder" sends a frame at once while the others wait out the
// delay, jitter larger than the gap between frames reorders them too,
// duplication makes a second copy that is impaired on its own, "rate"
// serialises frames through a drop-tail queue. Delays are as precise as
// the Go runtime's timers (well under a millisecond late on an idle
// machine); a rate limit therefore releases frames in short bursts rather
// than one at a time.
package netem
