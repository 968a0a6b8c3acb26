package tcptest

import (
	"errors"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// RunFile runs the script at path on a new harness and fails t, with the
// script's file and line and a trace of the run, if the script fails. It
// returns the harness, for further checks.
func RunFile(t testing.TB, path string) *Harness {
	t.Helper()
	s, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := New()
	if err := h.Run(s); err != nil {
		fail(t, h, err)
	}
	return h
}

// Exec runs the script text src on h and fails t if it fails. Error
// messages name the Go file and line of the call, and the script line
// within src.
func Exec(t testing.TB, h *Harness, src string) {
	t.Helper()
	name := "script"
	if _, file, line, ok := runtime.Caller(1); ok {
		name = filepath.Base(file) + ":" + strconv.Itoa(line) + ": script"
	}
	if err := h.Exec(name, src); err != nil {
		fail(t, h, err)
	}
}

func fail(t testing.TB, h *Harness, err error) {
	t.Helper()
	var b strings.Builder
	b.WriteString(err.Error())
	var se *Error
	if errors.As(err, &se) && len(h.Trace()) > 0 {
		b.WriteString("\ntrace:\n")
		for _, l := range h.Trace() {
			b.WriteString("  ")
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	t.Fatal(b.String())
}
