package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
)

// strict is set by `make test` as root (CI): a cell that cannot run here
// fails the test instead of being reported as not run.
var strict = os.Getenv("USTACK_TEST_STRICT") != ""

// TestQuickPlan runs every cell of the plan once, briefly (the -quick smoke
// run), and checks that each produced sound figures. It asserts no speed:
// figures belong in BENCHMARKS.md, not in pass/fail.
func TestQuickPlan(t *testing.T) {
	leaktest.Check(t)
	if err := RaiseFileLimit(); err != nil {
		t.Logf("file limit: %v", err)
	}
	o := Quick()
	if testing.Short() {
		o.Duration = 50 * time.Millisecond
		o.Pairs = 100
		o.Conns = 1000
		o.Idle = 200 * time.Millisecond
	}
	tables := Plan()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	Run(ctx, tables, o)
	each(tables, o, func(tb *Table, r *Row, col string, c *Cell) {
		name := tb.Title + " / " + r.Name + " / " + col
		if c.Err() != nil {
			t.Errorf("%s: %v", name, c.Err())
			return
		}
		if c.NotApplicable() != "" {
			return
		}
		if c.Reason() != "" {
			if strict {
				t.Errorf("%s: not run (USTACK_TEST_STRICT is set, so every case must run): %s", name, c.Reason())
			} else {
				t.Logf("%s: not run: %s", name, c.Reason())
			}
			return
		}
		if want := o.Rounds; len(c.Samples()) != want && !(tb.OneRound && len(c.Samples()) == 1) {
			t.Errorf("%s: %d samples, want %d", name, len(c.Samples()), want)
			return
		}
		for _, s := range c.Samples() {
			checkSample(t, name, s)
		}
		t.Logf("%s: %s", name, c.Show(c.Samples()))
	})
	var b strings.Builder
	Render(&b, tables, o)
	if strings.Contains(b.String(), "failed") || strings.Contains(b.String(), "| not run |") {
		t.Errorf("rendered table has failures or cells never measured:\n%s", b.String())
	}
}

// checkSample checks the figures that say a measurement was sound: data
// moved, transactions and connections completed, memory was used.
func checkSample(t *testing.T, name string, s Sample) {
	t.Helper()
	positive := func(keys ...string) {
		for _, k := range keys {
			if v, ok := s[k]; !ok || !(v > 0) {
				t.Errorf("%s: %s = %v, want > 0 (sample %v)", name, k, v, s)
			}
		}
	}
	switch {
	case has(s, MGbps):
		positive(MGbps, MBytes, MCPUPerGiB)
	case has(s, MTPS):
		positive(MTPS, MCount, MMean, MP50, MP99, MP999)
		if !(s[MP50] <= s[MP99] && s[MP99] <= s[MP999]) {
			t.Errorf("%s: percentiles out of order: %v", name, s)
		}
	case has(s, MCPS):
		positive(MCPS, MCount)
	case has(s, MBytesEnd):
		positive(MBytesEnd, MPairs)
	case has(s, MConns):
		positive(MConns, MSetup, MSetupCPU, MRSS, MLive, MLiveEnd, MIdleCPU, MIdleSpan)
	case has(s, MEndMiB):
		positive(MEndMiB)
	case has(s, MFloodOffered):
		positive(MFloodOffered, MFloodBase, MFloodRatio, MFloodConns)
		if !(s[MFloodAnswered]+s[MFloodShed] > 0) {
			t.Errorf("%s: the flood reached neither the listener nor the shedding: %v", name, s)
		}
	case has(s, MNsPerSeg):
		positive(MNsPerSeg, MSegs)
	default:
		t.Errorf("%s: unknown sample %v", name, s)
	}
}

func has(s Sample, k string) bool { _, ok := s[k]; return ok }

func TestWriteSection(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "B.md")
	if err := os.WriteFile(path, []byte("# Benchmarks\n\nintro\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "## H", "first"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# Benchmarks\n\nintro\n\n## H\n\n" + BeginMarker + "\n\nfirst\n\n" + EndMarker + "\n"
	if string(b) != want {
		t.Fatalf("appended:\n%q\nwant\n%q", b, want)
	}
	if err := os.WriteFile(path, append(b, "\n## After\n\nkept\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "## H", "second"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	want = "# Benchmarks\n\nintro\n\n## H\n\n" + BeginMarker + "\n\nsecond\n\n" + EndMarker + "\n\n## After\n\nkept\n"
	if string(b) != want {
		t.Fatalf("replaced:\n%q\nwant\n%q", b, want)
	}
	if err := os.WriteFile(path, []byte("x\n"+BeginMarker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "## H", "third"); err == nil {
		t.Fatal("a file with one marker was overwritten")
	}
}

func TestShow(t *testing.T) {
	ss := []Sample{{"x": 3}, {"x": 1}, {"x": 2}}
	if got := show(ss, "x", sig); got != "2.00 (1.00–3.00)" {
		t.Errorf("show = %q", got)
	}
	if got := show(ss[:1], "x", sig); got != "3.00" {
		t.Errorf("one round: %q", got)
	}
	if got := show(ss, "y", sig); got != "?" {
		t.Errorf("missing metric: %q", got)
	}
	if got := bytesInt(1856.4); got != "1,856" {
		t.Errorf("bytesInt = %q", got)
	}
	if got := kilo(159_300); got != "159k" {
		t.Errorf("kilo = %q", got)
	}
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if quantile(d, 0.5) != 5 || quantile(d, 0.99) != 10 || quantile(d, 0) != 1 {
		t.Errorf("quantile: %v %v %v", quantile(d, 0.5), quantile(d, 0.99), quantile(d, 0))
	}
}

// TestMain removes what the bench built (cmd/ustack for `ustack forward`).
func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBuilt()
	os.Exit(code)
}
