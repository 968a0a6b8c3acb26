package tcptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/siphash"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Harness runs scripts against one tcp.Conn (the connection under test) in
// virtual time, playing the peer and the stack around the connection: it
// delivers the script's inbound segments, makes the application calls,
// fires the connection's timers when virtual time reaches them, and checks
// every segment the connection sends against the script.
//
// A Harness may run several scripts in turn (Run, Exec); virtual time and
// the connection carry over from one to the next, so a Go test can reach a
// state with a script and then inspect the connection.
type Harness struct {
	// Tolerance is how far from its scripted time an outbound segment may
	// leave (packetdrill's --tolerance_usecs). Default 10 ms.
	Tolerance time.Duration
	// ISS is the initial sequence number of the connection under test,
	// RemoteISN the peer's: the script's sequence numbers are relative to
	// them. TSOffset is the connection's timestamp offset (TSval is then
	// the virtual time in milliseconds plus TSOffset).
	ISS, RemoteISN wire.Seq
	TSOffset       uint32
	// MTU is the IP MTU of the connection's route (MSS = MTU - 40).
	MTU int
	// Local and Remote are the connection's addresses; listen(port) and
	// connect(addr) change their ports and the remote.
	Local, Remote netip.AddrPort

	// SynCookies makes the listener answer every SYN with a SYN cookie
	// (RFC 4987 §3.6, as Linux with net.ipv4.tcp_syncookies = 2) and
	// open the connection under test from a valid cookie ACK.
	SynCookies bool

	cfg  tcp.Config
	env  *tcp.Env
	conn *tcp.Conn

	cookies    *tcp.SynCookies
	cookieSent clock.Instant // when the last cookie SYN-ACK left
	cookieISS  bool          // iss is a cookie SYN-ACK's, with no connection for it yet

	listening   bool
	listenOpts  []func(*tcp.Conn) // socket options a new connection inherits
	established bool              // EventEstablished was seen

	now  clock.Instant
	base clock.Instant // where relative times count from
	out  []sent        // segments sent and not yet matched
	buf  []byte
	rbuf []byte

	iss      wire.Seq // ISS of the current incarnation
	ourData  wire.Seq // sequence number of the connection's first data byte
	peerData wire.Seq // sequence number of the peer's first data byte
	wrote    uint64   // bytes the application wrote so far
	read     uint64   // bytes the application read so far

	trace []string
}

type sent struct {
	at  clock.Instant
	b   []byte
	ecn tcp.ECN
}

// New returns a harness with the default settings: packetdrill's addresses
// (local 192.168.0.1:8080, remote 192.0.2.1:49152), MTU 1500, and initial
// sequence numbers near the top of the sequence space (so every script
// also checks wrap-around arithmetic).
func New() *Harness {
	return &Harness{
		Tolerance: 10 * time.Millisecond,
		ISS:       0xffff_f000,
		RemoteISN: 0x7fff_ff00,
		MTU:       1500,
		Local:     netip.MustParseAddrPort("192.168.0.1:8080"),
		Remote:    netip.MustParseAddrPort("192.0.2.1:49152"),
		buf:       make([]byte, 70000),
	}
}

// Config returns the configuration the connection's Env will be made with;
// change it before the first connection opens.
func (h *Harness) Config() *tcp.Config { return &h.cfg }

// Env returns the Env of the connection under test, making it if needed.
func (h *Harness) Env() *tcp.Env {
	if h.env == nil {
		h.env = tcp.NewEnv(h.cfg)
	}
	return h.env
}

// Conn returns the connection under test, or nil before one opened.
func (h *Harness) Conn() *tcp.Conn { return h.conn }

// Now returns the current virtual time.
func (h *Harness) Now() clock.Instant { return h.now }

// Trace returns the events run so far, one line each, with the virtual time
// and, for segments the connection sent, the segment as it was.
func (h *Harness) Trace() []string { return h.trace }

func (h *Harness) logf(format string, a ...any) {
	h.trace = append(h.trace, fmt.Sprintf("%9.6f ", time.Duration(h.now).Seconds())+fmt.Sprintf(format, a...))
}

// Run runs a script: its settings, then its events. It stops at the first
// failure, which it returns as an *Error naming the script line.
func (h *Harness) Run(s *Script) error {
	for _, st := range s.settings {
		if err := st.apply(h); err != nil {
			return &Error{File: s.Name, Line: st.line, Msg: err.Error()}
		}
	}
	last := 0
	for _, ev := range s.events {
		last = ev.line
		if err := h.step(ev); err != nil {
			return &Error{File: s.Name, Line: ev.line, Msg: err.Error()}
		}
	}
	// At the end nothing may be waiting to leave: run the timers due now
	// too, then check.
	if err := h.advance(h.now, true); err != nil {
		return &Error{File: s.Name, Line: last, Msg: "after the last event: " + err.Error()}
	}
	return nil
}

// Exec parses src as a script named name and runs it.
func (h *Harness) Exec(name, src string) error {
	s, err := Parse(name, src)
	if err != nil {
		return err
	}
	return h.Run(s)
}

// times returns the window an event's time allows: [lo, hi].
func (h *Harness) times(w timeSpec) (lo, hi clock.Instant) {
	switch w.kind {
	case timeAbs:
		return clock.Instant(w.start), clock.Instant(w.end)
	case timeRel:
		return h.base.Add(w.start), h.base.Add(w.end)
	}
	return h.now, clock.Never
}

func (h *Harness) step(ev *event) error {
	lo, hi := h.times(ev.when)
	switch ev.kind {
	case evOutbound:
		return h.expect(ev, lo, hi)
	case evNone:
		if err := h.advance(lo, true); err != nil {
			return err
		}
		h.now = max(h.now, lo)
		h.base = h.now
		h.logf("> none")
		return nil
	}
	// Inbound segments and calls happen at their time, before any timer
	// due at that same instant.
	if err := h.advance(lo, false); err != nil {
		return err
	}
	h.now = max(h.now, lo)
	h.base = h.now
	if ev.kind == evInbound {
		h.logf("%s", ev.text)
		return h.inbound(ev.seg)
	}
	if ev.kind == evICMP {
		h.logf("%s", ev.text)
		return h.icmp(ev.icmp, ev.icmpMTU, ev.icmpSeq)
	}
	h.logf("%s", ev.text)
	if err := h.call(ev.call); err != nil {
		return err
	}
	return h.poll()
}

// advance fires the connection's timers up to t (at t too if inclusive),
// and fails if a segment leaves meanwhile or was left unmatched.
func (h *Harness) advance(t clock.Instant, inclusive bool) error {
	if err := h.unexpected(); err != nil {
		return err
	}
	for h.conn != nil {
		d := h.conn.NextDeadline()
		if d == clock.Never || d > t || !inclusive && d == t {
			break
		}
		if err := h.fire(d); err != nil {
			return err
		}
		if err := h.unexpected(); err != nil {
			return err
		}
	}
	return nil
}

// unexpected fails if a sent segment is waiting to be matched.
func (h *Harness) unexpected() error {
	if len(h.out) == 0 {
		return nil
	}
	s := h.out[0]
	return fmt.Errorf("unexpected outbound segment at %.6f: %s", time.Duration(s.at).Seconds(), h.formatSent(s))
}

// fire runs the timers due at d and collects what they send.
func (h *Harness) fire(d clock.Instant) error {
	h.now = max(h.now, d)
	for i := 0; ; i++ {
		h.conn.HandleTimeout(h.now)
		if err := h.poll(); err != nil {
			return err
		}
		if h.conn.NextDeadline() > h.now {
			return nil
		}
		// A deadline at or before now after HandleTimeout(now): tolerate
		// a timer re-armed for now once or twice, not a loop.
		if i == 10 {
			return fmt.Errorf("core invariant: NextDeadline %v is not after now %v after HandleTimeout", h.conn.NextDeadline(), h.now)
		}
	}
}

// poll collects every segment the connection has to send now.
func (h *Harness) poll() error {
	if h.conn == nil {
		return nil
	}
	for i := 0; ; i++ {
		tx := h.conn.PollTransmitBatch(h.now, h.buf, 1)
		n := tx.Len
		if n == 0 {
			break
		}
		if i == 100000 {
			return fmt.Errorf("core invariant: PollTransmit keeps returning segments")
		}
		b := append([]byte(nil), h.buf[:n]...)
		t, err := wire.ParseTCP(b)
		if err != nil {
			return fmt.Errorf("the connection sent a malformed segment: %v", err)
		}
		var f wire.TCPFields
		if err := f.Decode(t); err != nil {
			return fmt.Errorf("the connection sent malformed options: %v", err)
		}
		if f.Checksum != 0 {
			return fmt.Errorf("the connection filled in the checksum field (%#04x); the caller does", f.Checksum)
		}
		h.out = append(h.out, sent{at: h.now, b: b, ecn: tx.ECN})
	}
	if ev := h.conn.TakeEvents(); ev&tcp.EventEstablished != 0 {
		h.established = true
	}
	return nil
}

// ourISS returns the ISS the connection's sequence numbers are relative to:
// the current incarnation's, or the configured one before any opened.
func (h *Harness) ourISS() wire.Seq {
	if h.conn == nil && !h.cookieISS {
		return h.ISS
	}
	return h.iss
}

// formatOut formats a segment the connection sent.
func (h *Harness) formatOut(b []byte) string { return formatSegment(">", b, h.ourISS(), h.RemoteISN) }

// formatSent formats a segment the connection sent, with its ECN
// codepoint when it is ECN-capable.
func (h *Harness) formatSent(s sent) string {
	out := h.formatOut(s.b)
	if s.ecn != tcp.NotECT {
		for name, e := range ecnNames {
			if e == s.ecn {
				out = "> [" + name + "]" + out[1:]
			}
		}
	}
	return out
}

// expect finds the next segment the connection sends, which must leave in
// [lo-Tolerance, hi+Tolerance], and matches it against ev.
func (h *Harness) expect(ev *event, lo, hi clock.Instant) error {
	tol := h.Tolerance
	early, late := lo.Add(-tol), hi.Add(tol)
	if ev.when.kind == timeAny {
		early = -1 << 62
	}
	for i := 0; len(h.out) == 0; i++ {
		d := clock.Never
		if h.conn != nil {
			d = h.conn.NextDeadline()
		}
		if d == clock.Never || d > late || i > 1_000_000 {
			next := "no timer armed"
			if d != clock.Never {
				next = fmt.Sprintf("next timer at %.6f", time.Duration(d).Seconds())
			}
			return fmt.Errorf("expected segment at %.6f, nothing sent by %.6f (%s)\n  script: %s",
				time.Duration(lo).Seconds(), time.Duration(late).Seconds(), next, ev.text)
		}
		if err := h.fire(d); err != nil {
			return err
		}
	}
	s := h.out[0]
	if s.at < early {
		return fmt.Errorf("timing error: segment sent at %.6f, expected at %.6f (tolerance %v)\n  script: %s\n  actual: %s",
			time.Duration(s.at).Seconds(), time.Duration(lo).Seconds(), tol, ev.text, h.formatSent(s))
	}
	h.out = h.out[1:]
	h.trace = append(h.trace, fmt.Sprintf("%9.6f %s", time.Duration(s.at).Seconds(), h.formatSent(s)))
	if err := h.match(ev.seg, s.b, s.ecn); err != nil {
		return fmt.Errorf("outbound segment mismatch at %.6f: %v\n  script: %s\n  actual: %s",
			time.Duration(s.at).Seconds(), err, ev.text, h.formatSent(s))
	}
	h.base = s.at
	return nil
}

// match checks a segment the connection sent against the script.
func (h *Harness) match(want *segSpec, b []byte, ecn tcp.ECN) error {
	t, _ := wire.ParseTCP(b)
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if want.hasECN && ecn != want.ecn {
		bad("ECN %v, want %v", ecn, want.ecn)
	}
	if t.SrcPort() != h.Local.Port() || t.DstPort() != h.Remote.Port() {
		bad("ports %d > %d, want %d > %d", t.SrcPort(), t.DstPort(), h.Local.Port(), h.Remote.Port())
	}
	if t.Flags() != want.flags {
		bad("flags %s, want %s", flagString(t.Flags()), flagString(want.flags))
	}
	payload := t.Payload()
	if got := uint32(t.Seq() - h.ourISS()); got != want.start {
		bad("seq %d, want %d", got, want.start)
	}
	if got := uint32(len(payload)); got != want.end-want.start {
		bad("length %d, want %d", got, want.end-want.start)
	}
	if want.hasAck && !want.ackAny && t.Flags()&wire.TCPFlagACK != 0 {
		if got := uint32(t.Ack() - h.RemoteISN); got != want.ack {
			bad("ack %d, want %d", got, want.ack)
		}
	}
	if want.hasWin && !want.winAny && t.Window() != want.win {
		bad("win %d, want %d", t.Window(), want.win)
	}
	if t.Urgent() != 0 {
		bad("urgent pointer %d, want 0", t.Urgent())
	}
	switch opts := t.Options(); {
	case want.opts == nil:
		if len(opts) != 0 {
			bad("options %s, want none (write <...> to ignore them)", formatOptions(opts, h.RemoteISN))
		}
	case want.opts.ignore:
	default:
		exp, mask := encodeOptions(want.opts, h.RemoteISN)
		ok := len(exp) == len(opts)
		for i := 0; ok && i < len(exp); i++ {
			ok = exp[i]&mask[i] == opts[i]&mask[i]
		}
		if !ok {
			bad("options %s, want %s", formatOptions(opts, h.RemoteISN), formatOptions(exp, h.RemoteISN))
		}
	}
	if len(payload) > 0 {
		off := uint64(uint32(t.Seq() - h.ourData))
		exp := make([]byte, len(payload))
		fillPattern(exp, off)
		if !bytes.Equal(exp, payload) {
			bad("payload is not the bytes written at stream offset %d", off)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

// inbound delivers a segment from the peer.
func (h *Harness) inbound(s *segSpec) error {
	iss := h.ourISS()
	peerData := h.peerData
	if s.flags&wire.TCPFlagSYN != 0 {
		peerData = h.RemoteISN.Add(s.start + 1)
	}
	first := h.RemoteISN.Add(s.start)
	if s.flags&wire.TCPFlagSYN != 0 {
		first = first.Add(1)
	}
	b, err := buildInbound(s, h.Remote.Port(), h.Local.Port(), h.RemoteISN, iss, uint64(uint32(first-peerData)))
	if err != nil {
		return err
	}
	var f wire.TCPFields
	t, err := wire.ParseTCP(b)
	if err != nil {
		return fmt.Errorf("the segment does not decode: %v", err)
	}
	if err := f.Decode(t); err != nil {
		// Malformed options ("opt KIND len N" with a length the kind
		// cannot have): the stack drops the segment before any
		// connection sees it, and counts it (RFC 9293 MUST-7).
		h.logf("  dropped by the stack: %v", err)
		st := &h.Env().Stats
		st.InBadHeader++
		st.InErrs++
		return nil
	}
	if h.conn != nil && h.conn.State() != tcp.Closed {
		if s.flags&wire.TCPFlagSYN != 0 && h.conn.State() == tcp.SynSent {
			h.peerData = peerData
		}
		v := h.conn.HandleSegmentECN(h.now, &f, s.ecn)
		if err := h.poll(); err != nil {
			return err
		}
		if v != tcp.Reopen {
			return nil
		}
		if h.conn.State() != tcp.Closed {
			return fmt.Errorf("core invariant: HandleSegment returned Reopen in state %v", h.conn.State())
		}
		// RFC 6191: the stack gives the SYN to the listener, and the new
		// incarnation starts above the old one's sequence space.
		return h.noConnection(&f, h.conn.ReopenISS(), peerData)
	}
	return h.noConnection(&f, h.ISS, peerData)
}

// icmp delivers an ICMP destination unreachable about the connection,
// quoting our segment with relative sequence number seq, as the stack
// does (stack.tcpError): "fragmentation needed" goes to
// HandlePacketTooBig with its MTU; for the others the sequence number
// must be in flight (RFC 5927; else OutOfWindowICMPs counts it), then
// port and protocol unreachable become ECONNREFUSED, the others
// EHOSTUNREACH.
func (h *Harness) icmp(code string, mtu int, seq uint32) error {
	if h.conn == nil {
		return nil
	}
	q := h.ourISS().Add(seq)
	if code == "frag_needed" {
		// The stack raises an MTU below the family's least to it
		// (IPv4 552, IPv6 1280: stack.clampPMTU).
		least := 552
		if h.Remote.Addr().Is6() {
			least = 1280
		}
		h.conn.HandlePacketTooBig(h.now, q, max(mtu, least))
		return h.poll()
	}
	if !h.conn.ICMPInWindow(q) {
		h.Env().Stats.OutOfWindowICMPs++
		return nil
	}
	err := tcp.ErrHostUnreachable
	if code == "port_unreachable" || code == "protocol_unreachable" {
		err = tcp.ErrConnRefused
	}
	h.conn.HandleICMPError(h.now, err)
	return h.poll()
}

// noConnection plays the stack for a segment no open connection takes: a
// listener opens a connection for a SYN; anything else is answered as RFC
// 9293 §3.10.7.1 says for a CLOSED connection.
func (h *Harness) noConnection(f *wire.TCPFields, iss wire.Seq, peerData wire.Seq) error {
	ctl := f.Flags & (wire.TCPFlagSYN | wire.TCPFlagACK | wire.TCPFlagRST)
	if h.listening && h.SynCookies {
		if h.cookies == nil {
			h.cookies = tcp.NewSynCookies(h.Env(), cookieKeys[0], cookieKeys[1])
			h.cookieSent = clock.Never
		}
		ep := tcp.Endpoints{Local: h.Local, Remote: h.Remote, TSOffset: h.TSOffset, MTU: h.MTU, ECN: true}
		switch {
		case ctl == wire.TCPFlagSYN:
			// The stack's cookie path (stack.listen): a SYN-ACK and no
			// state.
			var out wire.TCPFields
			h.cookies.SynAck(h.now, ep, f, &out)
			h.cookieSent = h.now
			h.iss, h.cookieISS = out.Seq, true
			h.peerData = peerData
			b := make([]byte, out.HeaderLen())
			out.Encode(b)
			b[16], b[17] = 0, 0 // the caller's checksum, as PollTransmit leaves it
			h.out = append(h.out, sent{at: h.now, b: b})
			return nil
		case ctl == wire.TCPFlagACK && tcp.CookiesRecent(h.now, h.cookieSent):
			if o, ok := h.cookies.Check(h.now, ep, f); ok {
				ep.ISS = f.Ack.Add(^uint32(0))
				c := h.newConn(ep.ISS)
				if err := c.OpenCookie(h.now, ep, f, o); err != nil {
					return fmt.Errorf("OpenCookie: %v", err)
				}
				h.cookieISS = false
				return h.poll()
			}
		}
	}
	if h.listening && ctl == wire.TCPFlagSYN {
		c := h.newConn(iss)
		h.peerData = peerData
		ep := tcp.Endpoints{Local: h.Local, Remote: h.Remote, ISS: iss, TSOffset: h.TSOffset, MTU: h.MTU, ECN: true}
		if err := c.OpenPassive(h.now, ep, f); err != nil {
			return fmt.Errorf("OpenPassive: %v", err)
		}
		return h.poll()
	}
	if f.Flags&wire.TCPFlagRST != 0 {
		return nil
	}
	rst := wire.TCPFields{SrcPort: f.DstPort, DstPort: f.SrcPort}
	if f.Flags&wire.TCPFlagACK != 0 {
		rst.Seq, rst.Flags = f.Ack, wire.TCPFlagRST
	} else {
		rst.Ack, rst.Flags = f.Seq.Add(f.SegLen()), wire.TCPFlagRST|wire.TCPFlagACK
	}
	b := make([]byte, rst.HeaderLen())
	rst.Encode(b)
	h.out = append(h.out, sent{at: h.now, b: b})
	return nil
}

// cookieKeys are the harness's SYN cookie secrets.
var cookieKeys = [2]siphash.Key{{K0: 0x0706050403020100, K1: 0x0f0e0d0c0b0a0908}, {K0: 0x1716151413121110, K1: 0x1f1e1d1c1b1a1918}}

// newConn makes the connection under test (a new incarnation if one
// existed) with ISS iss.
func (h *Harness) newConn(iss wire.Seq) *tcp.Conn {
	c := tcp.NewConn(h.Env())
	for _, o := range h.listenOpts {
		o(c)
	}
	h.conn = c
	h.iss = iss
	h.ourData = iss.Add(1)
	h.established = false
	h.wrote, h.read = 0, 0
	return c
}

// errnoByName maps the errno names a script may use.
func errnoByName(name string) syscall.Errno {
	switch name {
	case "EAGAIN", "EWOULDBLOCK":
		return syscall.EAGAIN
	case "ECONNRESET":
		return syscall.ECONNRESET
	case "ECONNREFUSED":
		return syscall.ECONNREFUSED
	case "ECONNABORTED":
		return syscall.ECONNABORTED
	case "ETIMEDOUT":
		return syscall.ETIMEDOUT
	case "EPIPE":
		return syscall.EPIPE
	case "ENOTCONN":
		return syscall.ENOTCONN
	case "EINVAL":
		return syscall.EINVAL
	case "EHOSTUNREACH":
		return syscall.EHOSTUNREACH
	}
	return 0
}

// checkResult compares a call's outcome with the script's "= result".
// Without one, the call must succeed, returning want if want >= 0.
func checkResult(c *callSpec, n int, err error, want int) error {
	got := func() string {
		if err != nil {
			return fmt.Sprintf("error %v", err)
		}
		return strconv.Itoa(n)
	}
	r := c.result
	switch {
	case r == nil:
		if err != nil || want >= 0 && n != want {
			w := "success"
			if want >= 0 {
				w = strconv.Itoa(want)
			}
			return fmt.Errorf("%s returned %s, want %s", c.name, got(), w)
		}
	case r.errno == "EOF" || r.errno == "" && r.n == 0 && c.name == "read":
		if !errors.Is(err, io.EOF) || n != 0 {
			return fmt.Errorf("%s returned %s, want EOF", c.name, got())
		}
	case r.errno != "":
		if !errors.Is(err, errnoByName(r.errno)) {
			return fmt.Errorf("%s returned %s, want %s", c.name, got(), r.errno)
		}
	default:
		if err != nil || n != r.n {
			return fmt.Errorf("%s returned %s, want %d", c.name, got(), r.n)
		}
	}
	return nil
}

// needConn fails a call that needs the connection under test.
func (h *Harness) needConn(c *callSpec) error {
	if h.conn == nil {
		return fmt.Errorf("%s: no connection yet", c.name)
	}
	return nil
}

// call runs an application call or an assertion.
func (h *Harness) call(c *callSpec) error {
	arg := func(i int) string {
		if i < len(c.args) {
			return c.args[i]
		}
		return ""
	}
	switch c.name {
	case "listen":
		p := strings.TrimSpace(strings.TrimPrefix(arg(0), "port"))
		if p != "" {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return fmt.Errorf("listen: bad port %q", p)
			}
			h.Local = netip.AddrPortFrom(h.Local.Addr(), uint16(n))
		}
		h.listening = true
		return checkResult(c, 0, nil, 0)

	case "accept":
		if c.result != nil && c.result.errno == "EAGAIN" {
			if h.established {
				return fmt.Errorf("accept: a connection is ready (state %v), want EAGAIN", h.conn.State())
			}
			return nil
		}
		if !h.listening || h.conn == nil || !h.established {
			st := "no connection"
			if h.conn != nil {
				st = "state " + h.conn.State().String()
			}
			return fmt.Errorf("accept: no established connection to accept (%s)", st)
		}
		return checkResult(c, 0, nil, 0)

	case "connect":
		ap, err := netip.ParseAddrPort(arg(0))
		if err != nil {
			return fmt.Errorf("connect: %v", err)
		}
		h.Remote = ap
		if h.conn == nil || h.conn.State() == tcp.Closed {
			h.newConn(h.ISS)
		}
		ep := tcp.Endpoints{Local: h.Local, Remote: h.Remote, ISS: h.iss, TSOffset: h.TSOffset, MTU: h.MTU, ECN: true}
		return checkResult(c, 0, h.conn.Connect(h.now, ep), 0)

	case "write":
		if err := h.needConn(c); err != nil {
			return err
		}
		n, err := strconv.Atoi(arg(0))
		if err != nil || n < 0 {
			return fmt.Errorf("write: bad size %q", arg(0))
		}
		p := make([]byte, n)
		fillPattern(p, h.wrote)
		k, werr := h.conn.Write(p)
		h.wrote += uint64(k)
		return checkResult(c, k, werr, n)

	case "read":
		if err := h.needConn(c); err != nil {
			return err
		}
		// read() reads everything buffered.
		n, want := max(h.conn.Info().RcvBuffered, 1), -1
		if a := arg(0); a != "" {
			var err error
			if n, err = strconv.Atoi(a); err != nil || n < 0 {
				return fmt.Errorf("read: bad size %q", a)
			}
			want = n
		}
		if len(h.rbuf) < n {
			h.rbuf = make([]byte, n)
		}
		k, rerr := h.conn.Read(h.rbuf[:n])
		exp := make([]byte, k)
		fillPattern(exp, h.read)
		if !bytes.Equal(exp, h.rbuf[:k]) {
			return fmt.Errorf("read: the %d bytes read are not the peer's bytes at stream offset %d", k, h.read)
		}
		h.read += uint64(k)
		return checkResult(c, k, rerr, want)

	case "shutdown":
		if err := h.needConn(c); err != nil {
			return err
		}
		var err error
		switch arg(0) {
		case "SHUT_WR":
			err = h.conn.CloseWrite()
		case "SHUT_RD":
			err = h.conn.CloseRead()
		case "SHUT_RDWR":
			err = h.conn.CloseRead()
			if err == nil {
				err = h.conn.CloseWrite()
			}
		default:
			return fmt.Errorf("shutdown: want SHUT_WR, SHUT_RD or SHUT_RDWR")
		}
		return checkResult(c, 0, err, 0)

	case "close":
		if err := h.needConn(c); err != nil {
			return err
		}
		return checkResult(c, 0, h.conn.Close(), 0)

	case "abort":
		if err := h.needConn(c); err != nil {
			return err
		}
		h.conn.Abort()
		return checkResult(c, 0, nil, 0)

	case "setsockopt":
		return h.setsockopt(c, arg(0), arg(1))

	case "getsockopt":
		if arg(0) != "SO_ERROR" {
			return fmt.Errorf("getsockopt: only SO_ERROR")
		}
		if err := h.needConn(c); err != nil {
			return err
		}
		err := h.conn.Err()
		if c.result == nil || c.result.errno == "" && c.result.n == 0 {
			if err != nil {
				return fmt.Errorf("SO_ERROR is %v, want 0", err)
			}
			return nil
		}
		return checkResult(c, 0, err, 0)

	case "state":
		want := strings.ReplaceAll(strings.ToUpper(arg(0)), "_", "-")
		got := "CLOSED"
		if h.conn != nil {
			got = h.conn.State().String()
		}
		if got == "CLOSED" && h.listening {
			got = "LISTEN"
			if want == "CLOSED" && h.conn != nil && h.conn.State() == tcp.Closed {
				got = "CLOSED" // the connection under test is closed; the listener stays
			}
		}
		if got != want {
			return fmt.Errorf("state %s, want %s", got, want)
		}
		return nil

	case "stats":
		return checkFields("stats", reflect.ValueOf(h.Env().Stats), c.args)

	case "info":
		if err := h.needConn(c); err != nil {
			return err
		}
		return checkFields("info", reflect.ValueOf(h.conn.Info()), c.args)

	case "chunks":
		if err := h.needConn(c); err != nil {
			return err
		}
		want := 0
		if c.result != nil {
			want = c.result.n
		}
		if got := h.conn.BufferedChunks(); got != want {
			return fmt.Errorf("BufferedChunks() = %d, want %d", got, want)
		}
		return nil

	case "readable", "writable":
		if err := h.needConn(c); err != nil {
			return err
		}
		got := h.conn.Readable()
		if c.name == "writable" {
			got = h.conn.Writable()
		}
		want := c.result == nil || c.result.n != 0
		if got != want {
			return fmt.Errorf("%s() = %v, want %v", c.name, got, want)
		}
		return nil
	}
	return fmt.Errorf("unknown call %q", c.name)
}

// setsockopt sets an option on the connection, or, before there is one (or
// after it closed), on the listener, from which new connections inherit it.
func (h *Harness) setsockopt(c *callSpec, name, val string) error {
	var set func(*tcp.Conn)
	switch name {
	case "TCP_NODELAY":
		on := val != "0"
		set = func(k *tcp.Conn) { k.SetNoDelay(on) }
	case "SO_RCVBUF", "SO_SNDBUF":
		n, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("setsockopt %s: bad size %q", name, val)
		}
		if name == "SO_RCVBUF" {
			set = func(k *tcp.Conn) { k.SetReadBuffer(n) }
		} else {
			set = func(k *tcp.Conn) { k.SetWriteBuffer(n) }
		}
	case "SO_KEEPALIVE":
		// "1", "0", or "idle 10s intvl 1s cnt 3" (which turns it on).
		on := val != "0"
		var idle, intvl time.Duration
		var cnt int
		if f := strings.Fields(val); len(f) > 1 {
			if len(f)%2 != 0 {
				return fmt.Errorf("setsockopt SO_KEEPALIVE: want \"idle D intvl D cnt N\"")
			}
			for i := 0; i < len(f); i += 2 {
				var err error
				switch f[i] {
				case "idle":
					idle, err = parseDuration(f[i+1])
				case "intvl":
					intvl, err = parseDuration(f[i+1])
				case "cnt":
					cnt, err = strconv.Atoi(f[i+1])
				default:
					err = fmt.Errorf("unknown keep-alive parameter %q", f[i])
				}
				if err != nil {
					return fmt.Errorf("setsockopt SO_KEEPALIVE: %v", err)
				}
			}
		}
		set = func(k *tcp.Conn) { k.SetKeepAlive(h.now, on, idle, intvl, cnt) }
	default:
		return fmt.Errorf("setsockopt: unknown option %q", name)
	}
	if h.conn == nil || h.conn.State() == tcp.Closed {
		h.listenOpts = append(h.listenOpts, set)
	} else {
		set(h.conn)
	}
	return checkResult(c, 0, nil, 0)
}

// checkFields checks "Field=value" assertions against the fields of a
// struct value (tcp.Stats, tcp.Info).
func checkFields(what string, v reflect.Value, args []string) error {
	var errs []string
	for _, a := range args {
		k, val, ok := strings.Cut(a, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok {
			return fmt.Errorf("%s: want Field=value, got %q", what, a)
		}
		fv := v.FieldByName(k)
		if !fv.IsValid() {
			return fmt.Errorf("%s: no field %q", what, k)
		}
		var want reflect.Value
		if st, ok := fv.Interface().(tcp.State); ok {
			if name := strings.ReplaceAll(strings.ToUpper(val), "_", "-"); st.String() != name {
				errs = append(errs, fmt.Sprintf("%s=%v, want %s", k, st, name))
			}
			continue
		}
		want, err := parseValue(fv.Type(), val)
		if err != nil {
			return fmt.Errorf("%s %s: %v", what, k, err)
		}
		if !reflect.DeepEqual(fv.Interface(), want.Interface()) {
			errs = append(errs, fmt.Sprintf("%s=%v, want %v", k, fv.Interface(), want.Interface()))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s", what, strings.Join(errs, ", "))
	}
	return nil
}
