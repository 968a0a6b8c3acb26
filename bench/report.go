package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Machine describes where the figures were taken.
type Machine struct {
	NProc      int
	CPU        string
	Kernel     string
	Go         string
	Date       time.Time
	Congestion string // the kernel's tcp_congestion_control
	Root       bool
}

// ThisMachine reads the machine's description.
func ThisMachine() Machine {
	m := Machine{
		NProc:  runtime.NumCPU(),
		CPU:    "unknown",
		Kernel: "unknown",
		Go:     runtime.Version(),
		Date:   time.Now().UTC(),
		Root:   os.Geteuid() == 0,
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control"); err == nil {
		m.Congestion = strings.TrimSpace(string(b))
	}
	return m
}

func (m Machine) String() string {
	s := fmt.Sprintf("nproc %d, %s, Linux %s, %s, %s", m.NProc, m.CPU, m.Kernel, m.Go, m.Date.Format("2006-01-02 15:04 UTC"))
	if m.Congestion != "" {
		s += ", kernel congestion control " + m.Congestion
	}
	if m.Root {
		s += ", as root"
	} else {
		s += ", not root"
	}
	return s
}

// Render writes the tables as Markdown: each with its title, the figures
// (median over rounds, min–max in brackets), why a cell was not run, the
// issue's target and the notes.
func Render(w io.Writer, tables []*Table, o Options) {
	for _, t := range tables {
		if !kept(t, o) {
			continue
		}
		fmt.Fprintf(w, "### %s\n\n", t.Title)
		hasTarget := false
		for _, r := range t.Rows {
			hasTarget = hasTarget || r.Target != ""
		}
		head := append([]string{t.Corner}, t.Cols...)
		if hasTarget {
			head = append(head, "target")
		}
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
		for _, r := range t.Rows {
			line := []string{r.Name}
			for i, c := range r.Cells {
				if o.Only != nil && c != nil && !o.Only.MatchString(t.Title+"/"+r.Name+"/"+t.Cols[i]) {
					c = nil
				}
				line = append(line, cellText(c))
			}
			if hasTarget {
				line = append(line, r.Target)
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(line, " | "))
		}
		fmt.Fprintln(w)
		for _, n := range t.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
		if len(t.Notes) > 0 {
			fmt.Fprintln(w)
		}
	}
}

func kept(t *Table, o Options) bool {
	any := false
	each([]*Table{t}, o, func(*Table, *Row, string, *Cell) { any = true })
	return any
}

func cellText(c *Cell) string {
	switch {
	case c == nil:
		return "—"
	case c.err != nil:
		msg := strings.Join(dedupe(strings.Split(c.err.Error(), "\n")), "; ")
		return "**failed**: " + strings.ReplaceAll(msg, "|", "/")
	case c.na != "":
		return "— (" + c.na + ")"
	case c.reason != "":
		return "not run: " + c.reason
	case len(c.samples) == 0:
		return "not run"
	}
	return c.Show(c.samples)
}

// Section markers: WriteSection replaces what is between them.
const (
	BeginMarker = "<!-- bench:begin (written by `make bench`; edits inside are lost) -->"
	EndMarker   = "<!-- bench:end -->"
)

// Section renders the whole generated section: the machine, the command,
// the options, a note, and the tables.
func Section(tables []*Table, o Options, m Machine, command, note string, took time.Duration) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Machine: %s.\n\n", m)
	fmt.Fprintf(&b, "Command: `%s` (%d round%s of %s per throughput/rate measurement, %d pairs for memory; took %s).\n\n",
		command, o.Rounds, plural(o.Rounds), o.Duration, o.Pairs, took.Round(time.Second))
	if note != "" {
		fmt.Fprintf(&b, "%s\n\n", note)
	}
	fmt.Fprintf(&b, "Each cell is the median over the rounds with the min–max in brackets; within a row the systems were measured in turn, round after round.\n\n")
	Render(&b, tables, o)
	return b.String()
}

// WriteSection replaces the generated section of the Markdown file at path
// (between BeginMarker and EndMarker) with body, or appends the section
// under heading when the file has none.
func WriteSection(path, heading, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	block := BeginMarker + "\n\n" + strings.TrimSpace(body) + "\n\n" + EndMarker
	s := string(old)
	i := strings.Index(s, BeginMarker)
	j := strings.Index(s, EndMarker)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(EndMarker):]
	case i >= 0 || j >= 0:
		return fmt.Errorf("%s: only one of the bench markers is present", path)
	default:
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		if s != "" {
			s += "\n"
		}
		s += heading + "\n\n" + block + "\n"
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Heading is the Markdown heading WriteSection gives a new section.
const Heading = "## ustack, gVisor netstack and the kernel side by side (`make bench`, issue 12)"

// dedupe drops repeated lines (errors.Join of the same failure from
// several goroutines).
func dedupe(lines []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}
