package leaktest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// leakyWorker is the function of the deliberately leaked goroutine; its
// name must show in the report.
func leakyWorker(stop chan struct{}) { <-stop }

func TestDetectsLeak(t *testing.T) {
	before := snapshot()
	stop := make(chan struct{})
	go leakyWorker(stop)

	l := wait(before, nil, 50*time.Millisecond)
	if len(l) != 1 || !strings.Contains(l[0].stack, "leaktest.leakyWorker") {
		t.Fatalf("leaked = %v, want the leakyWorker goroutine", l)
	}
	if !strings.Contains(format(l), "leakyWorker") {
		t.Error("report does not name the function")
	}
	if l := wait(before, []string{"leakyWorker"}, 10*time.Millisecond); len(l) != 0 {
		t.Errorf("ignored goroutine reported: %v", l)
	}

	// Once it exits, nothing is reported; wait polls until then.
	time.AfterFunc(20*time.Millisecond, func() { close(stop) })
	if l := wait(before, nil, 5*time.Second); len(l) != 0 {
		t.Errorf("still leaked after exit: %v", l)
	}
}

// fakeTB records what Check reports instead of failing the real test.
type fakeTB struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Cleanup(fn func())         { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(s string, a ...any) { f.errors = append(f.errors, fmt.Sprintf(s, a...)) }

func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestCheckCleanGoroutines(t *testing.T) {
	f := &fakeTB{TB: t}
	Check(f)
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
	f.runCleanups()
	if len(f.errors) != 0 {
		t.Errorf("Check reported a goroutine that exited: %v", f.errors)
	}
}

func TestCheckReportsLeak(t *testing.T) {
	defer func(d time.Duration) { timeout = d }(timeout)
	timeout = 200 * time.Millisecond
	f := &fakeTB{TB: t}
	Check(f)
	stop := make(chan struct{})
	defer close(stop)
	go leakyWorker(stop)
	start := time.Now()
	f.runCleanups()
	if len(f.errors) != 1 || !strings.Contains(f.errors[0], "leakyWorker") ||
		!strings.Contains(f.errors[0], "1 goroutine(s)") {
		t.Errorf("Check reported %q", f.errors)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("gave up after %v, before the timeout", d)
	}
}

func TestParse(t *testing.T) {
	dump := "goroutine 1 [running]:\nmain.main()\n\t/x.go:1 +0x1\n\n" +
		"goroutine 17 [chan receive, 2 minutes]:\npkg.f()\n\t/y.go:2\ncreated by pkg.g in goroutine 1\n\n" +
		"garbage\n\ngoroutine x [bad]:\n"
	gs := parse([]byte(dump))
	if len(gs) != 2 || gs[0].id != 1 || gs[1].id != 17 || !strings.Contains(gs[1].stack, "pkg.f()") {
		t.Errorf("parse = %+v", gs)
	}
	l := leaked(gs, map[uint64]bool{1: true}, nil)
	if len(l) != 1 || l[0].id != 17 {
		t.Errorf("leaked = %+v", l)
	}
}
