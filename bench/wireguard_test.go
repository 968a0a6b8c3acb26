package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestNetstackProgram: the program wgnet's TestImportSwap builds against
// wgnet (../wgnet/testdata/netstack_program.go) builds and runs as it is
// against wireguard-go's own tun/netstack: the same source, the two
// stacks, one import line apart.
func TestNetstackProgram(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "wgnet", "testdata", "netstack_program.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `"golang.zx2c4.com/wireguard/tun/netstack"`) {
		t.Fatal("the program does not import tun/netstack")
	}
	dir := t.TempDir()
	prog := filepath.Join(dir, "main.go")
	if err := os.WriteFile(prog, src, 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "prog")
	build := exec.Command(goCmd, "build", "-o", bin, prog)
	build.Dir = "." // the bench module resolves wireguard-go and gVisor
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the program does not build against netstack: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "ok\n") {
		t.Fatalf("the program failed on netstack: %v\n%s", err, out)
	}
	t.Logf("its output:\n%s", out)
}

// TestHTTPGet: the HTTP workload moves the body it says, checked by its
// hash, through both tunnels, and its peak memory is above nothing.
func TestHTTPGet(t *testing.T) {
	for name, setup := range map[string]Setup{"wgnet": WGnet(), "netstack": WGNetstack()} {
		n, err := setup(Options{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := HTTPGet(context.Background(), n, Options{Duration: 50 * time.Millisecond})
		n.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s[MBytes] != float64(HTTPSize(Options{Duration: 50 * time.Millisecond})) || !(s[MGbps] > 0) || !(s[MPeakMiB] > 0) {
			t.Errorf("%s: sample %v", name, s)
		}
	}
	// The body's pattern depends on positions only, not on read sizes.
	a, b := make([]byte, 100000), make([]byte, 100000)
	r1, r2 := &constReader{size: 100000}, &constReader{size: 100000}
	for off := 0; off < len(a); {
		k, _ := r1.Read(a[off:min(len(a), off+7777)])
		off += k
	}
	for off := 0; off < len(b); {
		k, _ := r2.Read(b[off:])
		off += k
	}
	if string(a) != string(b) {
		t.Error("constReader's bytes depend on the read sizes")
	}
}
