package tcp_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestConformanceDoc keeps docs/CONFORMANCE.md in sync with the scripts:
// every script it names exists, every script in testdata is named in it,
// and its table has a row for every label of RFC 9293's requirement
// summary (Appendix B).
func TestConformanceDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/CONFORMANCE.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([A-Za-z0-9_.-]+\\.pkt)`").FindAllStringSubmatch(text, -1) {
		named[m[1]] = true
	}
	files, err := filepath.Glob("testdata/*.pkt")
	if err != nil {
		t.Fatal(err)
	}
	exists := map[string]bool{}
	for _, f := range files {
		exists[filepath.Base(f)] = true
	}
	var missing, unnamed []string
	for n := range named {
		if !exists[n] {
			missing = append(missing, n)
		}
	}
	for n := range exists {
		if !named[n] {
			unnamed = append(unnamed, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(unnamed)
	if len(missing) > 0 {
		t.Errorf("docs/CONFORMANCE.md names scripts that do not exist: %s", strings.Join(missing, ", "))
	}
	if len(unnamed) > 0 {
		t.Errorf("scripts not named in docs/CONFORMANCE.md: %s", strings.Join(unnamed, ", "))
	}

	// Every requirement label of RFC 9293 Appendix B has a table row.
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| ((?:MUST|SHLD|MAY|REC)-\d+) \|`).FindAllStringSubmatch(text, -1) {
		rows[m[1]] = true
	}
	var labels []string
	for kind, n := range map[string]int{"MUST": 69, "SHLD": 31, "MAY": 18, "REC": 1} {
		for i := 1; i <= n; i++ {
			labels = append(labels, fmt.Sprintf("%s-%d", kind, i))
		}
	}
	sort.Strings(labels)
	for _, l := range labels {
		if !rows[l] {
			t.Errorf("docs/CONFORMANCE.md: no row for RFC 9293 %s", l)
		}
	}
}
