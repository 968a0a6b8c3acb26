package tcptest

import (
	"encoding"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Script is a parsed script: its settings (the % lines) and its events, in
// order. Make one with Parse or ParseFile and run it with Harness.Run.
type Script struct {
	Name   string // the file name, used in error messages
	events []*event
	// settings, in the order they appear: applied by the harness before
	// the first event runs.
	settings []setting
}

// setting is one % line.
type setting struct {
	line  int
	apply func(h *Harness) error
}

// timeKind says how an event's time is written.
type timeKind uint8

const (
	timeAbs timeKind = iota // "1.5": seconds since the script started
	timeRel                 // "+0.1": seconds since the previous event
	timeAny                 // "*": whenever it happens
)

// timeSpec is an event's time, possibly a range "a~b".
type timeSpec struct {
	kind       timeKind
	start, end time.Duration // end == start unless a range was written
}

// eventKind is what a line does.
type eventKind uint8

const (
	evInbound  eventKind = iota // "< ...": a segment arrives from the peer
	evOutbound                  // "> ...": the connection must send this segment
	evNone                      // "> none": the connection must send nothing
	evCall                      // "name(args) = result": an application call or an assertion
	evICMP                      // "< icmp unreachable CODE [...]": an ICMP error about the connection arrives
)

type event struct {
	line int
	text string // the line as written, without its comment
	when timeSpec
	kind eventKind
	seg  *segSpec
	call *callSpec
	icmp string // the unreachable code of an evICMP
	// icmpMTU is the MTU a frag_needed names ("mtu N"), icmpSeq the
	// sequence number of the quoted segment (relative to our ISS).
	icmpMTU int
	icmpSeq uint32
}

// Error is a script failure: parse or run, with the script line that
// caused it.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ParseFile reads and parses the script at path. Error messages name the
// file by its base name.
func ParseFile(path string) (*Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(filepath.Base(path), string(b))
}

// Parse parses a script. name is used in error messages.
func Parse(name, src string) (*Script, error) {
	s := &Script{Name: name}
	for i, raw := range strings.Split(src, "\n") {
		lineNo := i + 1
		text := stripComment(raw)
		if text == "" {
			continue
		}
		fail := func(format string, a ...any) error {
			return &Error{File: name, Line: lineNo, Msg: fmt.Sprintf(format, a...)}
		}
		if strings.HasPrefix(text, "%") {
			st, err := parseSetting(text)
			if err != nil {
				return nil, fail("%v", err)
			}
			if len(s.events) > 0 {
				return nil, fail("%% settings must come before the first event")
			}
			st.line = lineNo
			s.settings = append(s.settings, st)
			continue
		}
		ev, err := parseEvent(text)
		if err != nil {
			return nil, fail("%v", err)
		}
		ev.line = lineNo
		ev.text = text
		s.events = append(s.events, ev)
	}
	return s, nil
}

// stripComment removes a "//" comment and surrounding blanks.
func stripComment(s string) string {
	if i := strings.Index(s, "//"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// parseEvent parses "time event".
func parseEvent(text string) (*event, error) {
	tok, rest, _ := strings.Cut(text, " ")
	rest = strings.TrimSpace(rest)
	if tok == "" || rest == "" {
		return nil, fmt.Errorf("want \"<time> <event>\", got %q", text)
	}
	when, err := parseTime(tok)
	if err != nil {
		return nil, err
	}
	ev := &event{when: when}
	switch rest[0] {
	case '<', '>':
		dir := rest[0]
		body := strings.TrimSpace(rest[1:])
		if dir == '>' && body == "none" {
			if when.kind == timeAny {
				return nil, fmt.Errorf("\"> none\" needs a time")
			}
			ev.kind = evNone
			return ev, nil
		}
		if dir == '<' && strings.HasPrefix(body, "icmp ") {
			code, mtu, seq, err := parseICMP(body)
			if err != nil {
				return nil, err
			}
			ev.icmpMTU, ev.icmpSeq = mtu, seq
			if when.kind == timeAny || when.start != when.end {
				return nil, fmt.Errorf("an inbound ICMP message needs an exact time")
			}
			ev.kind, ev.icmp = evICMP, code
			return ev, nil
		}
		seg, err := parseSegment(body, dir == '<')
		if err != nil {
			return nil, err
		}
		ev.seg = seg
		ev.kind = evOutbound
		if dir == '<' {
			ev.kind = evInbound
			if when.kind == timeAny || when.start != when.end {
				return nil, fmt.Errorf("an inbound segment needs an exact time")
			}
		}
		return ev, nil
	}
	call, err := parseCall(rest)
	if err != nil {
		return nil, err
	}
	if when.kind == timeAny || when.start != when.end {
		return nil, fmt.Errorf("a call needs an exact time")
	}
	ev.kind = evCall
	ev.call = call
	return ev, nil
}

// parseTime parses "0", "1.25", "+0", "+.04", "*", or a range "+1~+1.2".
func parseTime(tok string) (timeSpec, error) {
	if tok == "*" {
		return timeSpec{kind: timeAny}, nil
	}
	a, b, isRange := strings.Cut(tok, "~")
	kind := timeAbs
	if strings.HasPrefix(a, "+") {
		kind = timeRel
	}
	start, err := parseSeconds(strings.TrimPrefix(a, "+"))
	if err != nil {
		return timeSpec{}, fmt.Errorf("bad time %q: %v", tok, err)
	}
	end := start
	if isRange {
		if strings.HasPrefix(b, "+") != (kind == timeRel) {
			return timeSpec{}, fmt.Errorf("bad time range %q: both ends must be relative (+) or both absolute", tok)
		}
		end, err = parseSeconds(strings.TrimPrefix(b, "+"))
		if err != nil {
			return timeSpec{}, fmt.Errorf("bad time %q: %v", tok, err)
		}
		if end < start {
			return timeSpec{}, fmt.Errorf("bad time range %q: end before start", tok)
		}
	}
	return timeSpec{kind: kind, start: start, end: end}, nil
}

// parseSeconds parses a non-negative decimal number of seconds exactly (no
// floating point): "1", "0.5", ".04", "2.000001".
func parseSeconds(s string) (time.Duration, error) {
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" && fp == "" {
		return 0, fmt.Errorf("empty number")
	}
	if len(fp) > 9 {
		return 0, fmt.Errorf("more than nanosecond precision")
	}
	var d time.Duration
	if ip != "" {
		n, err := strconv.ParseUint(ip, 10, 31)
		if err != nil {
			return 0, err
		}
		d = time.Duration(n) * time.Second
	}
	if fp != "" {
		n, err := strconv.ParseUint(fp+strings.Repeat("0", 9-len(fp)), 10, 32)
		if err != nil {
			return 0, err
		}
		d += time.Duration(n)
	}
	return d, nil
}

// segSpec is a segment as a script writes it. Sequence and acknowledgment
// numbers are relative: to the peer's ISN for the peer's numbers, to the
// connection's ISS for the connection's.
type segSpec struct {
	// ecn is the IP ECN codepoint ("[ect0]", "[ce]"...) when hasECN:
	// the one an inbound segment arrives with, or the one an outbound
	// segment must carry.
	hasECN     bool
	ecn        tcp.ECN
	flags      wire.TCPFlags
	start, end uint32 // relative sequence range of the data ("start:end(len)")
	hasAck     bool
	ackAny     bool
	ack        uint32
	hasWin     bool
	winAny     bool
	win        uint16
	hasUrg     bool
	urg        uint16   // the urgent pointer ("urg N"; inbound only)
	opts       *optSpec // nil: no options at all
}

// optSpec is an option list "<...>".
type optSpec struct {
	ignore bool // "<...>": any options
	items  []optItem
}

type optItem struct {
	kind           byte // a wire.TCPOpt* kind
	mss            uint16
	wscale         uint8
	tsVal, tsEcr   uint32
	valAny, ecrAny bool
	sack           [][2]uint32 // relative
	rawLen         int         // "opt KIND len N": an option of that kind and length, zero-filled
}

// ecnNames are packetdrill's names of the IP ECN codepoints.
var ecnNames = map[string]tcp.ECN{"noecn": tcp.NotECT, "ect0": tcp.ECT0, "ect1": tcp.ECT1, "ce": tcp.CE}

// parseSegment parses "[ecn] flags start:end(len) [ack N] [win N]
// [<options>]".
func parseSegment(body string, inbound bool) (*segSpec, error) {
	s := &segSpec{}
	if strings.HasPrefix(body, "[") {
		i := strings.IndexByte(body, ']')
		if i < 0 {
			return nil, fmt.Errorf("unclosed ECN codepoint %q", body)
		}
		e, ok := ecnNames[body[1:i]]
		if !ok {
			return nil, fmt.Errorf("unknown ECN codepoint %q (noecn, ect0, ect1, ce)", body[1:i])
		}
		s.hasECN, s.ecn = true, e
		body = strings.TrimSpace(body[i+1:])
	}
	if i := strings.IndexByte(body, '<'); i >= 0 {
		if !strings.HasSuffix(body, ">") {
			return nil, fmt.Errorf("option list must end the line with '>'")
		}
		o, err := parseOptions(body[i+1:len(body)-1], inbound)
		if err != nil {
			return nil, err
		}
		s.opts = o
		body = strings.TrimSpace(body[:i])
	}
	f := strings.Fields(body)
	if len(f) < 2 {
		return nil, fmt.Errorf("want \"flags start:end(len) ...\", got %q", body)
	}
	flags, err := parseFlags(f[0])
	if err != nil {
		return nil, err
	}
	s.flags = flags
	if err := parseRange(f[1], s); err != nil {
		return nil, err
	}
	for i := 2; i < len(f); i += 2 {
		if i+1 >= len(f) {
			return nil, fmt.Errorf("%q needs a value", f[i])
		}
		key, val := f[i], f[i+1]
		switch key {
		case "ack":
			if s.hasAck {
				return nil, fmt.Errorf("ack given twice")
			}
			s.hasAck = true
			if val == "*" && !inbound {
				s.ackAny = true
				continue
			}
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad ack %q", val)
			}
			s.ack = uint32(n)
		case "win":
			if s.hasWin {
				return nil, fmt.Errorf("win given twice")
			}
			s.hasWin = true
			if val == "*" && !inbound {
				s.winAny = true
				continue
			}
			n, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("bad win %q", val)
			}
			s.win = uint16(n)
		case "urg":
			if !inbound || s.hasUrg {
				return nil, fmt.Errorf("\"urg\" is for inbound segments, once")
			}
			n, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("bad urg %q", val)
			}
			s.hasUrg, s.urg = true, uint16(n)
		default:
			return nil, fmt.Errorf("unknown segment field %q", key)
		}
	}
	if s.hasAck != (s.flags&wire.TCPFlagACK != 0) {
		if s.hasAck {
			return nil, fmt.Errorf("\"ack\" given without the '.' flag")
		}
		return nil, fmt.Errorf("the '.' flag needs \"ack N\" (or \"ack *\" on an outbound segment)")
	}
	if inbound && !s.hasWin {
		if s.flags&wire.TCPFlagRST == 0 {
			return nil, fmt.Errorf("an inbound segment needs \"win N\"")
		}
		s.hasWin = true // a RST's window defaults to 0
	}
	return s, nil
}

// parseFlags parses packetdrill's flag letters: F S R P . U E W.
func parseFlags(tok string) (wire.TCPFlags, error) {
	var f wire.TCPFlags
	for _, c := range tok {
		var b wire.TCPFlags
		switch c {
		case 'F':
			b = wire.TCPFlagFIN
		case 'S':
			b = wire.TCPFlagSYN
		case 'R':
			b = wire.TCPFlagRST
		case 'P':
			b = wire.TCPFlagPSH
		case '.':
			b = wire.TCPFlagACK
		case 'U':
			b = wire.TCPFlagURG
		case 'E':
			b = wire.TCPFlagECE
		case 'W':
			b = wire.TCPFlagCWR
		default:
			return 0, fmt.Errorf("bad flags %q: want letters of \"FSRP.UEW\"", tok)
		}
		if f&b != 0 {
			return 0, fmt.Errorf("bad flags %q: %c twice", tok, c)
		}
		f |= b
	}
	return f, nil
}

// parseRange parses "start:end(len)".
func parseRange(tok string, s *segSpec) error {
	a, rest, ok1 := strings.Cut(tok, ":")
	b, l, ok2 := strings.Cut(rest, "(")
	if !ok1 || !ok2 || !strings.HasSuffix(l, ")") {
		return fmt.Errorf("bad sequence range %q: want start:end(len)", tok)
	}
	start, err1 := strconv.ParseUint(a, 10, 32)
	end, err2 := strconv.ParseUint(b, 10, 32)
	n, err3 := strconv.ParseUint(strings.TrimSuffix(l, ")"), 10, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("bad sequence range %q", tok)
	}
	if uint32(end)-uint32(start) != uint32(n) {
		return fmt.Errorf("bad sequence range %q: end-start is not len", tok)
	}
	s.start, s.end = uint32(start), uint32(end)
	return nil
}

// parseOptions parses the inside of "<...>".
func parseOptions(list string, inbound bool) (*optSpec, error) {
	list = strings.TrimSpace(list)
	o := &optSpec{}
	if list == "..." {
		if inbound {
			return nil, fmt.Errorf("\"<...>\" is only for outbound segments")
		}
		o.ignore = true
		return o, nil
	}
	if list == "" {
		return o, nil
	}
	for _, item := range strings.Split(list, ",") {
		f := strings.Fields(item)
		if len(f) == 0 {
			return nil, fmt.Errorf("empty option in %q", list)
		}
		var it optItem
		bad := func() error { return fmt.Errorf("bad option %q", strings.TrimSpace(item)) }
		switch f[0] {
		case "nop":
			it.kind = wire.TCPOptNOP
		case "eol":
			it.kind = wire.TCPOptEOL
		case "sackOK":
			it.kind = wire.TCPOptSACKPermitted
		case "mss":
			n, err := oneNumber(f, 16)
			if err != nil {
				return nil, bad()
			}
			it.kind, it.mss = wire.TCPOptMSS, uint16(n)
		case "wscale":
			n, err := oneNumber(f, 8)
			if err != nil {
				return nil, bad()
			}
			it.kind, it.wscale = wire.TCPOptWindowScale, uint8(n)
		case "TS":
			// TS val X ecr Y
			if len(f) != 5 || f[1] != "val" || f[3] != "ecr" {
				return nil, bad()
			}
			it.kind = wire.TCPOptTimestamp
			var err error
			if it.tsVal, it.valAny, err = numOrAny(f[2], inbound); err != nil {
				return nil, bad()
			}
			if it.tsEcr, it.ecrAny, err = numOrAny(f[4], inbound); err != nil {
				return nil, bad()
			}
		case "sack":
			if len(f) < 2 {
				return nil, bad()
			}
			it.kind = wire.TCPOptSACK
			for _, blk := range f[1:] {
				a, b, ok := strings.Cut(blk, ":")
				x, err1 := strconv.ParseUint(a, 10, 32)
				y, err2 := strconv.ParseUint(b, 10, 32)
				if !ok || err1 != nil || err2 != nil {
					return nil, bad()
				}
				it.sack = append(it.sack, [2]uint32{uint32(x), uint32(y)})
			}
		case "opt":
			// opt KIND len N: any option, its N-2 value bytes zero
			// (inbound only; how unknown or malformed options arrive).
			if len(f) != 4 || f[2] != "len" || !inbound {
				return nil, bad()
			}
			k, err1 := strconv.ParseUint(f[1], 10, 8)
			n, err2 := strconv.ParseUint(f[3], 10, 8)
			if err1 != nil || err2 != nil {
				return nil, bad()
			}
			it.kind, it.rawLen = byte(k), int(n)
		default:
			return nil, fmt.Errorf("unknown option %q", strings.TrimSpace(item))
		}
		o.items = append(o.items, it)
	}
	return o, nil
}

func oneNumber(f []string, bits int) (uint64, error) {
	if len(f) != 2 {
		return 0, fmt.Errorf("want one number")
	}
	return strconv.ParseUint(f[1], 10, bits)
}

func numOrAny(s string, inbound bool) (uint32, bool, error) {
	if s == "*" && !inbound {
		return 0, true, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), false, err
}

// callSpec is an application call or an assertion: "name(args) = result".
type callSpec struct {
	name string
	args []string
	// result is what the script expects, or nil when it wrote none.
	result *result
}

// result is "= N", "= EOF" or "= ERRNO".
type result struct {
	n     int
	errno string // "" for a number; "EOF" for end of stream
}

func (r *result) String() string {
	if r.errno != "" {
		return r.errno
	}
	return strconv.Itoa(r.n)
}

// parseCall parses "name(arg, arg) [= result]". The result may also be
// written as packetdrill does, "-1 EAGAIN (Resource temporarily
// unavailable)".
func parseCall(text string) (*callSpec, error) {
	open := strings.IndexByte(text, '(')
	if open <= 0 {
		return nil, fmt.Errorf("want \"< seg\", \"> seg\" or \"call(args) [= result]\", got %q", text)
	}
	// The call's arguments end at the parenthesis that balances the
	// first; a packetdrill errno comment "(...)" may follow the result.
	closing, depth := -1, 0
	for i := open; i < len(text) && closing < 0; i++ {
		switch text[i] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				closing = i
			}
		}
	}
	if closing < 0 {
		return nil, fmt.Errorf("unbalanced parentheses in %q", text)
	}
	c := &callSpec{name: strings.TrimSpace(text[:open])}
	inside := strings.TrimSpace(text[open+1 : closing])
	rest := strings.TrimSpace(text[closing+1:])
	if inside != "" {
		for _, a := range strings.Split(inside, ",") {
			c.args = append(c.args, strings.TrimSpace(a))
		}
	}
	if rest == "" {
		return c, checkCall(c)
	}
	if !strings.HasPrefix(rest, "=") {
		return nil, fmt.Errorf("unexpected %q after the call", rest)
	}
	rest = strings.TrimSpace(rest[1:])
	if i := strings.IndexByte(rest, '('); i >= 0 {
		rest = strings.TrimSpace(rest[:i]) // "(Resource temporarily unavailable)"
	}
	f := strings.Fields(rest)
	if len(f) == 2 && f[0] == "-1" {
		f = f[1:]
	}
	if len(f) != 1 {
		return nil, fmt.Errorf("bad result %q", rest)
	}
	r := &result{}
	if n, err := strconv.Atoi(f[0]); err == nil {
		r.n = n
	} else if f[0] == "EOF" || errnoByName(f[0]) != 0 {
		r.errno = f[0]
	} else {
		return nil, fmt.Errorf("bad result %q: want a number, EOF or an errno name", f[0])
	}
	c.result = r
	return c, checkCall(c)
}

// checkCall rejects unknown calls and argument counts at parse time.
func checkCall(c *callSpec) error {
	want := map[string][2]int{ // min and max argument counts
		"listen": {0, 1}, "accept": {0, 0}, "connect": {1, 1},
		"write": {1, 1}, "read": {0, 1}, "shutdown": {1, 1},
		"close": {0, 0}, "abort": {0, 0}, "setsockopt": {2, 2},
		"getsockopt": {1, 1}, "state": {1, 1}, "stats": {1, 99},
		"info": {1, 99}, "chunks": {0, 0}, "readable": {0, 0},
		"writable": {0, 0},
	}
	n, ok := want[c.name]
	if !ok {
		return fmt.Errorf("unknown call %q", c.name)
	}
	if len(c.args) < n[0] || len(c.args) > n[1] {
		return fmt.Errorf("%s takes %d to %d arguments, got %d", c.name, n[0], n[1], len(c.args))
	}
	return nil
}

// parseSetting parses a "%name value..." line.
func parseSetting(text string) (setting, error) {
	name, val, _ := strings.Cut(strings.TrimPrefix(text, "%"), " ")
	val = strings.TrimSpace(val)
	if val == "" {
		return setting{}, fmt.Errorf("%%%s needs a value", name)
	}
	switch name {
	case "config":
		var sets []func(*tcp.Config)
		for _, kv := range strings.Fields(val) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return setting{}, fmt.Errorf("%%config: want Field=value, got %q", kv)
			}
			set, err := configSetter(k, v)
			if err != nil {
				return setting{}, err
			}
			sets = append(sets, set)
		}
		return setting{apply: func(h *Harness) error {
			if h.env != nil {
				return fmt.Errorf("%%config after the connection's environment was made")
			}
			for _, s := range sets {
				s(&h.cfg)
			}
			return nil
		}}, nil
	case "tolerance":
		d, err := parseDuration(val)
		if err != nil {
			return setting{}, err
		}
		return setting{apply: func(h *Harness) error { h.Tolerance = d; return nil }}, nil
	case "iss", "remote_isn", "tsoffset":
		n, err := strconv.ParseUint(val, 0, 32)
		if err != nil {
			return setting{}, fmt.Errorf("%%%s: %v", name, err)
		}
		return setting{apply: func(h *Harness) error {
			switch name {
			case "iss":
				h.ISS = wire.Seq(n)
			case "remote_isn":
				h.RemoteISN = wire.Seq(n)
			default:
				h.TSOffset = uint32(n)
			}
			return nil
		}}, nil
	case "syncookies":
		if val != "always" {
			return setting{}, fmt.Errorf("%%syncookies: want \"always\", got %q", val)
		}
		return setting{apply: func(h *Harness) error { h.SynCookies = true; return nil }}, nil
	case "mtu":
		n, err := strconv.Atoi(val)
		if err != nil || n < 68 {
			return setting{}, fmt.Errorf("%%mtu: bad value %q", val)
		}
		return setting{apply: func(h *Harness) error { h.MTU = n; return nil }}, nil
	case "local", "remote":
		ap, err := netip.ParseAddrPort(val)
		if err != nil {
			return setting{}, fmt.Errorf("%%%s: %v", name, err)
		}
		return setting{apply: func(h *Harness) error {
			if name == "local" {
				h.Local = ap
			} else {
				h.Remote = ap
			}
			return nil
		}}, nil
	}
	return setting{}, fmt.Errorf("unknown setting %%%s", name)
}

// parseDuration accepts Go durations ("200ms", "1m") and plain seconds
// ("0.2").
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	neg := strings.HasPrefix(s, "-")
	d, err := parseSeconds(strings.TrimPrefix(s, "-"))
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	if neg {
		d = -d
	}
	return d, nil
}

// configSetter returns a function setting field k of tcp.Config to v; a
// dotted name (Mem.High) names a field of a struct field. Only int, bool,
// string, time.Duration and text-unmarshalling fields can be set.
func configSetter(k, v string) (func(*tcp.Config), error) {
	t := reflect.TypeOf(tcp.Config{})
	var index []int
	for _, name := range strings.Split(k, ".") {
		if t.Kind() != reflect.Struct {
			return nil, fmt.Errorf("%%config: tcp.Config has no field %q", k)
		}
		ft, ok := t.FieldByName(name)
		if !ok || !ft.IsExported() {
			return nil, fmt.Errorf("%%config: tcp.Config has no field %q", k)
		}
		index = append(index, ft.Index...)
		t = ft.Type
	}
	val, err := parseValue(t, v)
	if err != nil {
		return nil, fmt.Errorf("%%config %s: %v", k, err)
	}
	return func(c *tcp.Config) {
		reflect.ValueOf(c).Elem().FieldByIndex(index).Set(val)
	}, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// parseValue parses v as a value of type t (int kinds, uint kinds, bool,
// time.Duration, or a type that unmarshals text).
func parseValue(t reflect.Type, v string) (reflect.Value, error) {
	out := reflect.New(t).Elem()
	if u, ok := out.Addr().Interface().(encoding.TextUnmarshaler); ok {
		// A type with names of its own (tcp.ECNMode).
		return out, u.UnmarshalText([]byte(v))
	}
	switch {
	case t == durationType:
		d, err := parseDuration(v)
		if err != nil {
			return out, err
		}
		out.SetInt(int64(d))
	case t.Kind() == reflect.String:
		out.SetString(v)
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return out, fmt.Errorf("bad bool %q", v)
		}
		out.SetBool(b)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(v, 0, t.Bits())
		if err != nil {
			return out, fmt.Errorf("bad number %q", v)
		}
		out.SetInt(n)
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		n, err := strconv.ParseUint(v, 0, t.Bits())
		if err != nil {
			return out, fmt.Errorf("bad number %q", v)
		}
		out.SetUint(n)
	default:
		return out, fmt.Errorf("cannot set a %v from a script", t)
	}
	return out, nil
}

// icmpCodes are the destination-unreachable codes a script may name
// (packetdrill's names, RFC 792).
var icmpCodes = map[string]bool{
	"net_unreachable": true, "host_unreachable": true, "protocol_unreachable": true,
	"port_unreachable": true, "frag_needed": true, "source_route_failed": true,
	"net_unknown": true, "host_unknown": true, "net_prohibited": true, "host_prohibited": true,
}

// parseICMP parses packetdrill's "icmp unreachable CODE [mtu N]
// [start:end(len)]": the code, the MTU a frag_needed names, and the
// sequence number of the quoted segment (relative to our ISS), which the
// connection checks (RFC 5927); the rest of the quote is not checked (the
// stack matches the quote to the connection before the core sees the
// error).
func parseICMP(body string) (code string, mtu int, seq uint32, err error) {
	f := strings.Fields(body)
	if len(f) < 3 || f[1] != "unreachable" || !icmpCodes[f[2]] {
		return "", 0, 0, fmt.Errorf("want \"icmp unreachable CODE [...]\" with a code such as host_unreachable, got %q", body)
	}
	rest := f[3:]
	if len(rest) >= 2 && rest[0] == "mtu" {
		if mtu, err = strconv.Atoi(rest[1]); err != nil || mtu <= 0 {
			return "", 0, 0, fmt.Errorf("bad MTU in %q", body)
		}
		rest = rest[2:]
	}
	if len(rest) > 0 {
		q := strings.Trim(strings.Join(rest, " "), "[]")
		if i := strings.IndexByte(q, ':'); i > 0 {
			n, err := strconv.ParseUint(q[:i], 10, 32)
			if err != nil {
				return "", 0, 0, fmt.Errorf("bad quoted segment in %q", body)
			}
			seq = uint32(n)
		}
	}
	return f[2], mtu, seq, nil
}
