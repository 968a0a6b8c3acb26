package wgnet

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// netstackImport is the import line a program written for wireguard-go's
// netstack has, and wgnetImport what replaces it.
const (
	netstackImport = `"golang.zx2c4.com/wireguard/tun/netstack"`
	wgnetImport    = `netstack "github.com/ustack/ustack/wgnet"`
)

// goTool returns the go command that runs the tests.
func goTool(t *testing.T) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command on PATH or in GOROOT (%s)", p)
	}
	return p
}

// TestImportSwap: a program written for wireguard-go's tun/netstack
// (testdata/netstack_program.go, in the shape of its examples, calling
// every method of the Net and of what they return) builds against wgnet
// with its import line changed and nothing else, and runs: HTTP, ping,
// TCP and UDP echo between two wireguard-go devices in its process. The
// bench module builds and runs the same file as it is, on gVisor.
func TestImportSwap(t *testing.T) {
	src, err := os.ReadFile("testdata/netstack_program.go")
	if err != nil {
		t.Fatal(err)
	}
	if k := bytes.Count(src, []byte(netstackImport)); k != 1 {
		t.Fatalf("the program imports tun/netstack %d times, want once", k)
	}
	swapped := bytes.Replace(src, []byte(netstackImport), []byte(wgnetImport), 1)
	if bytes.Contains(swapped, []byte("gvisor")) {
		t.Fatal("the program names gVisor")
	}
	dir := t.TempDir()
	prog := filepath.Join(dir, "main.go")
	if err := os.WriteFile(prog, swapped, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog")
	build := exec.Command(goTool(t), "build", "-o", bin, prog)
	build.Dir = "." // the wgnet module: its go.mod resolves the imports
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the program does not build against wgnet: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "ok\n") {
		t.Fatalf("the program failed: %v\n%s", err, out)
	}
	t.Logf("its output:\n%s", out)
}
