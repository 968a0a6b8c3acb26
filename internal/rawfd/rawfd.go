// Package rawfd puts a non-blocking file descriptor (a TUN/TAP device, an
// AF_PACKET socket) under the Go runtime's network poller, so that a link
// can wait for it without a goroutine or a blocked thread of its own, and
// so that Close wakes a blocked reader at once.
//
// This is what package net does for sockets and what wireguard-go does
// for its TUN device: os.NewFile on a non-blocking descriptor registers it
// with epoll (edge-triggered); RawConn.Read and RawConn.Write run a
// function that makes the system calls, and park the goroutine when it
// reports that the descriptor would block. Closing the file evicts the
// waiters, and the descriptor itself is closed only after the last
// in-flight call on it has returned, so a closed descriptor number is
// never reused under a reader's feet.
package rawfd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FD is a pollable descriptor.
type FD struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	// The Read call in progress (calls must not overlap).
	rfn   func(fd int) bool
	rstep func(fd uintptr) bool // d.readStep, bound once

	// The WriteBounded call in progress (calls must not overlap).
	wfn      func(fd int) bool
	wtimeout time.Duration
	warmed   bool                  // a write deadline is set
	wstep    func(fd uintptr) bool // d.boundedStep, bound once
}

// New takes ownership of fd, makes it non-blocking and registers it with
// the poller. name is for error messages.
func New(fd int, name string) (*FD, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: set non-blocking: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	d := &FD{f: f, rc: rc}
	d.wstep = d.boundedStep
	d.rstep = d.readStep
	return d, nil
}

// Read calls fn with the descriptor until fn returns true, waiting for the
// descriptor to become readable each time fn returns false. fn must
// return false only after a system call said EAGAIN (edge-triggered
// polling reports only new readiness). After Close, Read returns an error
// wrapping net.ErrClosed. Calls must not overlap (the links hold their
// read lock); a call allocates nothing.
func (d *FD) Read(fn func(fd int) (done bool)) error {
	d.rfn = fn
	err := d.rc.Read(d.rstep)
	d.rfn = nil
	return d.mapErr(err)
}

func (d *FD) readStep(fd uintptr) bool { return d.rfn(int(fd)) }

// Write is Read for writability.
func (d *FD) Write(fn func(fd int) (done bool)) error {
	err := d.rc.Write(func(fd uintptr) bool { return fn(int(fd)) })
	return d.mapErr(err)
}

// Control calls fn with the descriptor, which stays open during the call.
func (d *FD) Control(fn func(fd int)) error {
	return d.mapErr(d.rc.Control(func(fd uintptr) { fn(int(fd)) }))
}

// WriteBounded is Write with every wait for room bounded, as a NIC's
// full queue bounds it: each time fn reports the descriptor full (returns
// false after EAGAIN), a write deadline is set timeout ahead; if it
// passes before the descriptor takes more, WriteBounded returns
// timedOut, and the caller drops what is left. The deadline is cleared
// before it returns. Calls must not overlap (the links hold their write
// lock).
func (d *FD) WriteBounded(timeout time.Duration, fn func(fd int) (done bool)) (timedOut bool, err error) {
	d.wfn, d.wtimeout, d.warmed = fn, timeout, false
	err = d.mapErr(d.rc.Write(d.wstep))
	d.wfn = nil
	if d.warmed {
		d.f.SetWriteDeadline(time.Time{})
		d.warmed = false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true, nil
	}
	return false, err
}

func (d *FD) boundedStep(fd uintptr) bool {
	if d.wfn(int(fd)) {
		return true
	}
	d.f.SetWriteDeadline(time.Now().Add(d.wtimeout))
	d.warmed = true
	return false
}

func (d *FD) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if d.closed.Load() {
		return net.ErrClosed
	}
	return err
}

// Closed reports whether Close was called.
func (d *FD) Closed() bool { return d.closed.Load() }

// Close wakes every waiting Read and Write (they return net.ErrClosed)
// and closes the descriptor once no call is using it. A second Close
// returns an error wrapping net.ErrClosed.
func (d *FD) Close() error {
	if d.closed.Swap(true) {
		return net.ErrClosed
	}
	if err := d.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}
