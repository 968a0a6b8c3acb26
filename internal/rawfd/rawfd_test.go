package rawfd

import (
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipe returns the write end of a pipe as an FD, and the read end.
func pipe(t *testing.T) (*FD, int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	w, err := New(p[1], "pipe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); unix.Close(p[0]) })
	return w, p[0]
}

// fill writes until the pipe is full; it reports false after EAGAIN.
func fill(fd int) bool {
	buf := make([]byte, 4096)
	for {
		if _, err := unix.Write(fd, buf); err == unix.EAGAIN {
			return false
		} else if err != nil {
			panic(err)
		}
	}
}

// TestWriteBoundedTimesOut: a descriptor that stays full ends the write
// after the timeout, as timedOut with no error, and the deadline is gone
// afterwards (the next call waits its own timeout again).
func TestWriteBoundedTimesOut(t *testing.T) {
	w, _ := pipe(t)
	for i := range 2 {
		t0 := time.Now()
		timedOut, err := w.WriteBounded(30*time.Millisecond, fill)
		d := time.Since(t0)
		if !timedOut || err != nil {
			t.Fatalf("call %d: WriteBounded = %v, %v; want timed out", i, timedOut, err)
		}
		if d < 30*time.Millisecond {
			t.Fatalf("call %d: returned after %v, before the timeout", i, d)
		}
	}
}

// TestWriteBoundedResumes: room made within the timeout lets the write
// finish.
func TestWriteBoundedResumes(t *testing.T) {
	w, r := pipe(t)
	calls := 0
	step := func(fd int) bool {
		calls++
		if calls == 1 {
			return fill(fd)
		}
		return true
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		buf := make([]byte, 1<<16)
		unix.Read(r, buf)
	}()
	timedOut, err := w.WriteBounded(10*time.Second, step)
	if timedOut || err != nil || calls != 2 {
		t.Fatalf("WriteBounded = %v, %v after %d calls; want done after 2", timedOut, err, calls)
	}
}

// TestWriteBoundedClosed: Close wakes a waiting write with net.ErrClosed.
func TestWriteBoundedClosed(t *testing.T) {
	w, _ := pipe(t)
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.Close()
	}()
	timedOut, err := w.WriteBounded(10*time.Second, fill)
	if timedOut || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBounded = %v, %v; want net.ErrClosed", timedOut, err)
	}
}
