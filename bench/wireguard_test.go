package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"

	"github.com/ustack/ustack/wgnet"
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

// TestWgnetMethodSets: every exported method of netstack's types and of
// what its methods return (gVisor's gonet types) exists on wgnet's
// counterpart with the same signature, the netstack and gonet types in
// it read as their wgnet counterparts — what makes the import swap
// compile whatever a program calls.
func TestWgnetMethodSets(t *testing.T) {
	pairs := []struct{ theirs, ours reflect.Type }{
		{reflect.TypeFor[*netstack.Net](), reflect.TypeFor[*wgnet.Net]()},
		{reflect.TypeFor[*gonet.TCPConn](), reflect.TypeFor[*wgnet.TCPConn]()},
		{reflect.TypeFor[*gonet.TCPListener](), reflect.TypeFor[*wgnet.TCPListener]()},
		{reflect.TypeFor[*gonet.UDPConn](), reflect.TypeFor[*wgnet.UDPConn]()},
		{reflect.TypeFor[*netstack.PingConn](), reflect.TypeFor[*wgnet.PingConn]()},
		{reflect.TypeFor[netstack.PingAddr](), reflect.TypeFor[wgnet.PingAddr]()},
		{reflect.TypeFor[*netstack.PingAddr](), reflect.TypeFor[*wgnet.PingAddr]()},
	}
	counterpart := map[reflect.Type]reflect.Type{}
	for _, p := range pairs {
		counterpart[p.theirs] = p.ours
	}
	same := func(a, b reflect.Type) bool {
		if c, ok := counterpart[a]; ok {
			return c == b
		}
		return a == b
	}
	compared := 0
	for _, p := range pairs {
		for i := range p.theirs.NumMethod() {
			compared++
			m := p.theirs.Method(i)
			o, ok := p.ours.MethodByName(m.Name)
			if !ok {
				t.Errorf("%v has no method %s (%v has)", p.ours, m.Name, p.theirs)
				continue
			}
			mt, ot := m.Type, o.Type
			ok = mt.NumIn() == ot.NumIn() && mt.NumOut() == ot.NumOut() && mt.IsVariadic() == ot.IsVariadic()
			for j := 1; ok && j < mt.NumIn(); j++ { // 0 is the receiver
				ok = same(mt.In(j), ot.In(j))
			}
			for j := 0; ok && j < mt.NumOut(); j++ {
				ok = same(mt.Out(j), ot.Out(j))
			}
			if !ok {
				t.Errorf("%v.%s is %v; %v's is %v", p.ours, m.Name, ot, p.theirs, mt)
			}
		}
	}
	if compared < 58 {
		t.Errorf("compared %d methods; netstack's Net alone has 18", compared)
	}
	// The package-level functions.
	if !same(reflect.TypeOf(netstack.PingAddrFromAddr).Out(0), reflect.TypeOf(wgnet.PingAddrFromAddr).Out(0)) {
		t.Error("PingAddrFromAddr differs")
	}
	if a, b := reflect.TypeOf(netstack.CreateNetTUN), reflect.TypeOf(wgnet.CreateNetTUN); a.NumIn() != b.NumIn() || a.In(0) != b.In(0) || a.In(1) != b.In(1) ||
		a.In(2) != b.In(2) || a.Out(0) != b.Out(0) || !same(a.Out(1), b.Out(1)) || a.Out(2) != b.Out(2) {
		t.Errorf("CreateNetTUN is %v, netstack's %v", b, a)
	}
}
