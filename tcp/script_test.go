package tcp_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ustack/ustack/tcp/tcptest"
)

// TestScripts runs every packetdrill-style script in testdata against the
// connection core in virtual time (see package tcptest for the syntax).
// Each script checks one behaviour and names the RFC rule it checks in its
// header comment.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.pkt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in testdata")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pkt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// The header comment must say which rule the script checks.
			header, _, _ := strings.Cut(string(src), "\n\n")
			if !strings.HasPrefix(header, "//") || !strings.Contains(header, "RFC") {
				t.Fatalf("%s: the script must start with a comment naming the RFC section it checks", f)
			}
			tcptest.RunFile(t, f)
		})
	}
}
