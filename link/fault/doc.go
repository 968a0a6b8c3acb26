// Package fault is middleware that impairs the frames passing through any
// link.Endpoint, in real time, with the models of package impair: loss,
// delay, jitter, reordering, duplication, corruption, a bandwidth limit,
// an MTU and link down.
//
//	ep := fault.New(tap, impair.Config{Loss: 0.01, Delay: 20 * time.Millisecond}, seed)
//
// New impairs the frames written (the transmit direction); NewWith can
// impair the frames read too, each direction with its own Config and its
// own random stream from the one seed (impair.NewPair).
//
// # Transmit
//
// WriteBatch asks the transmit Model about each frame. A copy that is due
// now goes straight to the wrapped endpoint, without a copy of the bytes
// unless it is to be corrupted (the caller's buffer is never changed). A
// copy due later is copied into a pooled buffer and held in an
// impair.Line; one goroutine, started when the first frame is held and
// stopped by Close, sleeps on a single timer until the earliest held frame
// is due and writes the due frames to the wrapped endpoint. Frames are
// written in order of due time; WriteBatch and the goroutine serialise
// their writes to the wrapped endpoint with one mutex, so the wrapped
// endpoint sees one writer at a time, as link.Endpoint requires.
//
// # Receive
//
// With a receive Config, one goroutine (started by the first ReadBatch,
// stopped by Close) reads the wrapped endpoint, asks the receive Model
// about each frame and holds the copies in a Line; ReadBatch returns the
// frames that are due, sleeping on a timer until the next one is, like
// link/pipe. Without a receive Config, ReadBatch reads the wrapped
// endpoint directly.
//
// # Offloads
//
// Caps are the wrapped endpoint's. Impairments act on wire frames: where a
// direction's impairments act per frame (anything but a fixed delay, the
// same rule as link/pipe's), a super-frame written (on a link with TSO)
// or read (from a link with GRO) is cut into the segments a NIC would
// send or the wire carried (package internal/gso) before the model sees
// them, each with a partial checksum (trusted: DataValid on receive). With
// corruption every checksum is completed first and nothing is passed on
// as valid — not even a frame the wrapped link said was — so the stack
// verifies and catches the flipped bits.
//
// Time is real time (time.Now, time.Timer), so the endpoint also runs on a
// testing/synctest bubble's fake clock when made inside the bubble.
//
// # Closing
//
// Close closes the wrapped endpoint, stops the goroutines and discards the
// held frames. ReadBatch and WriteBatch then return errors satisfying
// errors.Is(err, net.ErrClosed).
package fault
