// Package leaktest checks that a test leaves no goroutines behind: that
// Close really stops what an endpoint, a stack or a connection started.
//
//	func TestSomething(t *testing.T) {
//		leaktest.Check(t)
//		a, b := pipe.New(pipe.Config{})
//		defer a.Close()
//		...
//	}
//
// Check remembers the goroutines that exist when it is called. When the
// test ends (t.Cleanup, which runs after the test's deferred calls), it waits
// up to about five seconds for every newer goroutine to exit, and fails the
// test listing the stacks of those that did not.
//
// Goroutines of the testing package itself (other tests running in
// parallel, the test runner) are not counted. A test that uses t.Parallel
// can still see goroutines of its parallel siblings that are not tests
// themselves; call Check only in tests that do not run in parallel with
// tests that start goroutines, or pass the siblings' function names as
// ignore.
//
// Inside a testing/synctest bubble there is no need for Check:
// synctest.Test itself fails if a goroutine of the bubble is still blocked
// when the test function returns.
package leaktest

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Timeout is how long the cleanup waits for goroutines to exit.
const Timeout = 5 * time.Second

// timeout is Timeout, shortened by this package's own tests.
var timeout = Timeout

// Check fails t if goroutines started after the call are still running
// when the test ends. A goroutine whose stack contains any of the ignore
// strings (for example a function name) is not counted.
func Check(t testing.TB, ignore ...string) {
	t.Helper()
	before := snapshot()
	t.Cleanup(func() {
		t.Helper()
		if leaked := wait(before, ignore, timeout); len(leaked) > 0 {
			t.Errorf("leaktest: %d goroutine(s) still running after the test:\n\n%s", len(leaked), format(leaked))
		}
	})
}

// goroutine is one entry of a runtime.Stack dump.
type goroutine struct {
	id    uint64
	stack string // the whole entry, header line included
}

// snapshot returns the IDs of the goroutines that exist now.
func snapshot() map[uint64]bool {
	ids := make(map[uint64]bool)
	for _, g := range stacks() {
		ids[g.id] = true
	}
	return ids
}

// stacks parses runtime.Stack(all=true): entries separated by blank lines,
// each starting "goroutine N [state]:".
func stacks() []goroutine {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return parse(buf)
}

func parse(dump []byte) []goroutine {
	var gs []goroutine
	for _, entry := range bytes.Split(dump, []byte("\n\n")) {
		entry = bytes.TrimSpace(entry)
		rest, ok := bytes.CutPrefix(entry, []byte("goroutine "))
		if !ok {
			continue
		}
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			continue
		}
		id, err := strconv.ParseUint(string(rest[:end]), 10, 64)
		if err != nil {
			continue
		}
		gs = append(gs, goroutine{id: id, stack: string(entry)})
	}
	return gs
}

// system lists stack fragments of goroutines that belong to the testing
// package or the runtime's helpers rather than to the code under test.
var system = []string{
	"testing.tRunner(",
	"testing.(*T).Run(",
	"testing.(*M).",
	"testing.runTests",
	"testing.runFuzzTests",
	"testing.runFuzzing",
	"testing.(*F).Fuzz",
	"os/signal.signal_recv",
	"os/signal.loop",
	"runtime.ensureSigM",
	"runtime/trace.Start",
	"runtime.goexit0",
}

// leaked returns the goroutines in gs that are not in before and not
// ignored.
func leaked(gs []goroutine, before map[uint64]bool, ignore []string) []goroutine {
	var out []goroutine
next:
	for _, g := range gs {
		if before[g.id] {
			continue
		}
		for _, s := range system {
			if strings.Contains(g.stack, s) {
				continue next
			}
		}
		for _, s := range ignore {
			if s != "" && strings.Contains(g.stack, s) {
				continue next
			}
		}
		out = append(out, g)
	}
	return out
}

// wait polls until no goroutine has leaked or timeout has passed, and
// returns the leaked goroutines of the last poll.
func wait(before map[uint64]bool, ignore []string, timeout time.Duration) []goroutine {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		l := leaked(stacks(), before, ignore)
		if len(l) == 0 || time.Now().After(deadline) {
			return l
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

func format(gs []goroutine) string {
	var b strings.Builder
	for _, g := range gs {
		b.WriteString(g.stack)
		b.WriteString("\n\n")
	}
	return b.String()
}
