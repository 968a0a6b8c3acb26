package tcp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/siphash"
	"github.com/ustack/ustack/wire"
)

var (
	cookieLocal  = netip.MustParseAddrPort("10.0.0.1:80")
	cookieRemote = netip.MustParseAddrPort("198.18.7.9:40000")
)

func newTestCookies(cfg Config) (*Env, *SynCookies) {
	env := NewEnv(cfg)
	return env, NewSynCookies(env, siphash.Key{K0: 1, K1: 2}, siphash.Key{K0: 3, K1: 4})
}

// cookieHandshake sends syn to a cookie listener at t0 and returns the
// SYN-ACK and the final ACK the peer would send at t1 (echoing the
// timestamp if the SYN-ACK has one).
func cookieHandshake(g *SynCookies, ep Endpoints, syn *wire.TCPFields, t0 clock.Instant) (synack, ack wire.TCPFields) {
	g.SynAck(t0, ep, syn, &synack)
	ack = wire.TCPFields{
		SrcPort: syn.SrcPort, DstPort: syn.DstPort,
		Seq: syn.Seq.Add(1), Ack: synack.Seq.Add(1), Flags: wire.TCPFlagACK, Window: 1000,
	}
	if synack.Options.HasTimestamp {
		ack.Options.HasTimestamp = true
		ack.Options.TSVal = syn.Options.TSVal + 7
		ack.Options.TSEcr = synack.Options.TSVal
	}
	return synack, ack
}

// TestSynCookieRoundTrip: for every entry of the MSS table (and the peer
// MSS values around each) and every combination of window scale (none,
// 0, 7, 14, and 15 clamped to 14), SACK-permitted and timestamps, the
// cookie SYN-ACK offers what a connection's SYN-ACK offers, and the final
// ACK gives back the table MSS and — with timestamps only — the options;
// the connection opened from it has them (RFC 4987 §3.6, Linux's
// cookie_init_timestamp / cookie_timestamp_decode).
func TestSynCookieRoundTrip(t *testing.T) {
	env, g := newTestCookies(Config{})
	t0 := clock.Instant(1234567 * time.Millisecond)
	peerMSS := []struct{ sent, want uint16 }{
		{0, 536}, {100, 536}, {536, 536}, {1299, 536}, {1300, 1300}, {1439, 1300},
		{1440, 1440}, {1459, 1440}, {1460, 1460}, {8960, 1460},
	}
	ws := []struct {
		has     bool
		sent    uint8
		applied uint8
	}{{false, 0, 0}, {true, 0, 0}, {true, 7, 7}, {true, 14, 14}, {true, 15, 14}}
	n := 0
	for _, m := range peerMSS {
		for _, w := range ws {
			for _, sack := range []bool{false, true} {
				for _, ts := range []bool{false, true} {
					name := fmt.Sprintf("mss%d/ws%v%d/sack%v/ts%v", m.sent, w.has, w.sent, sack, ts)
					syn := wire.TCPFields{SrcPort: cookieRemote.Port(), DstPort: cookieLocal.Port(), Seq: wire.Seq(0x9abc0000 + n), Flags: wire.TCPFlagSYN, Window: 29200}
					syn.Options = wire.TCPOptions{MSS: m.sent, HasWScale: w.has, WScale: w.sent, SACKPermitted: sack, HasTimestamp: ts, TSVal: 5000}
					ep := Endpoints{Local: cookieLocal, Remote: cookieRemote, TSOffset: 0xfffff000 + uint32(n), MTU: 1500}
					synack, ack := cookieHandshake(g, ep, &syn, t0)

					// The SYN-ACK is a connection's, but for the ISS
					// and TSval, and for the options it cannot keep
					// without timestamps.
					want := passiveSynAck(t, Config{}, ep, &syn, t0)
					if !ts {
						want.Options = wire.TCPOptions{MSS: want.Options.MSS}
					}
					want.Seq, want.Options.TSVal = synack.Seq, synack.Options.TSVal
					if synack.Options != want.Options || synack.Window != want.Window || synack.Ack != want.Ack || synack.Flags != want.Flags ||
						synack.SrcPort != want.SrcPort || synack.DstPort != want.DstPort {
						t.Errorf("%s: cookie SYN-ACK %+v, a connection's %+v", name, synack, want)
					}

					o, ok := g.Check(t0.Add(300*time.Millisecond), ep, &ack)
					if !ok {
						t.Errorf("%s: the cookie was refused", name)
						continue
					}
					exp := CookieOptions{MSS: m.want}
					if ts {
						exp = CookieOptions{MSS: m.want, Timestamps: true, HasWScale: w.has, WScale: w.applied, SACK: sack}
					}
					if o != exp {
						t.Errorf("%s: cookie gave %+v, want %+v", name, o, exp)
					}

					c := NewConn(env)
					ep.ISS = ack.Ack - 1
					if err := c.OpenCookie(t0.Add(300*time.Millisecond), ep, &ack, o); err != nil {
						t.Errorf("%s: OpenCookie: %v", name, err)
						continue
					}
					i := c.Info()
					wantMSS := uint32(m.want)
					if ts {
						wantMSS -= 12
					}
					wantWS := int8(-1)
					if ts && w.has {
						wantWS = int8(w.applied)
					}
					if i.State != Established || i.SndMSS != wantMSS || i.SndWScale != wantWS || i.SACK != (ts && sack) || i.Timestamps != ts ||
						i.SndUna != ack.Ack || i.RcvNxt != ack.Seq {
						t.Errorf("%s: connection %v SndMSS %d SndWScale %d SACK %v TS %v SndUna %d RcvNxt %d; want ESTABLISHED %d %d %v %v %d %d",
							name, i.State, i.SndMSS, i.SndWScale, i.SACK, i.Timestamps, i.SndUna, i.RcvNxt, wantMSS, wantWS, ts && sack, ts, ack.Ack, ack.Seq)
					}
					n++
				}
			}
		}
	}
	st := env.Stats
	if st.SyncookiesSent != uint64(n) || st.SyncookiesRecv != uint64(n) || st.SyncookiesFailed != 0 {
		t.Errorf("SyncookiesSent %d Recv %d Failed %d, want %d %d 0", st.SyncookiesSent, st.SyncookiesRecv, st.SyncookiesFailed, n, n)
	}
}

// passiveSynAck returns the SYN-ACK an ordinary passive open sends for syn.
func passiveSynAck(t *testing.T, cfg Config, ep Endpoints, syn *wire.TCPFields, now clock.Instant) wire.TCPFields {
	t.Helper()
	c := NewConn(NewEnv(cfg))
	if err := c.OpenPassive(now, ep, syn); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	k := c.PollTransmit(now, buf)
	v, err := wire.ParseTCP(buf[:k])
	if err != nil {
		t.Fatal(err)
	}
	var f wire.TCPFields
	if err := f.Decode(v); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSynCookieAge: a cookie is accepted while the cookie clock (a tick
// every 60 s) has moved on by less than two ticks, and refused after
// (Linux's MAX_SYNCOOKIE_AGE 2): made at the start of a tick it lives
// 120 s, made at its end 60 s. Refusals count SyncookiesFailed.
func TestSynCookieAge(t *testing.T) {
	for _, tc := range []struct {
		made        time.Duration
		lastOK, bad time.Duration
	}{
		{600 * time.Second, 720*time.Second - time.Nanosecond, 720 * time.Second},
		{660*time.Second - time.Millisecond, 720*time.Second - time.Nanosecond, 720 * time.Second},
		{0, 120*time.Second - time.Nanosecond, 120 * time.Second},
	} {
		for _, ts := range []bool{false, true} {
			env, g := newTestCookies(Config{})
			syn := wire.TCPFields{SrcPort: cookieRemote.Port(), DstPort: cookieLocal.Port(), Seq: 77, Flags: wire.TCPFlagSYN, Window: 1000,
				Options: wire.TCPOptions{MSS: 1460, HasTimestamp: ts, TSVal: 1}}
			ep := Endpoints{Local: cookieLocal, Remote: cookieRemote, TSOffset: 12345, MTU: 1500}
			_, ack := cookieHandshake(g, ep, &syn, clock.Instant(tc.made))
			for _, at := range []time.Duration{tc.made, tc.lastOK} {
				if _, ok := g.Check(clock.Instant(at), ep, &ack); !ok {
					t.Errorf("ts %v: cookie made at %v refused at %v", ts, tc.made, at)
				}
			}
			for _, at := range []time.Duration{tc.bad, tc.bad + CookiePeriod, tc.bad + 200*CookiePeriod} {
				if _, ok := g.Check(clock.Instant(at), ep, &ack); ok {
					t.Errorf("ts %v: cookie made at %v accepted at %v", ts, tc.made, at)
				}
			}
			if st := env.Stats; st.SyncookiesRecv != 2 || st.SyncookiesFailed != 3 {
				t.Errorf("ts %v: SyncookiesRecv %d Failed %d, want 2 3", ts, st.SyncookiesRecv, st.SyncookiesFailed)
			}
		}
	}
	// A cookie from before the clock wrapped its 8 bits in the cookie
	// (256 ticks) is no better than any other old one.
	_, g := newTestCookies(Config{})
	syn := wire.TCPFields{Seq: 5, Flags: wire.TCPFlagSYN, Options: wire.TCPOptions{MSS: 1460}}
	ep := Endpoints{Local: cookieLocal, Remote: cookieRemote, MTU: 1500}
	_, ack := cookieHandshake(g, ep, &syn, clock.Instant(10*time.Second))
	if _, ok := g.Check(clock.Instant(10*time.Second+256*CookiePeriod), ep, &ack); ok {
		t.Error("a cookie 256 ticks old was accepted")
	}
}

// TestSynCookieForged: a final ACK that does not echo the cookie exactly
// is refused and counted (SyncookiesFailed): every acknowledgment number
// up to 64 above the cookie or 4 to 64 below it (1 to 3 below give a
// smaller MSS index, as in Linux), the cookie for another 4-tuple, a peer
// sequence number far off, and 200,000 random acknowledgment numbers
// (a blind attacker's guesses: each passes with odds of about 2⁻²¹). With
// timestamps, an echo from the future or older than any cookie can be is
// refused too, and so are options the configuration turned off.
func TestSynCookieForged(t *testing.T) {
	env, g := newTestCookies(Config{})
	now := clock.Instant(3600 * time.Second)
	syn := wire.TCPFields{SrcPort: cookieRemote.Port(), DstPort: cookieLocal.Port(), Seq: 0x12345678, Flags: wire.TCPFlagSYN, Window: 1000,
		Options: wire.TCPOptions{MSS: 1460, HasTimestamp: true, TSVal: 9, SACKPermitted: true, HasWScale: true, WScale: 7}}
	ep := Endpoints{Local: cookieLocal, Remote: cookieRemote, TSOffset: 999, MTU: 1500}
	_, ack := cookieHandshake(g, ep, &syn, now)
	later := now.Add(time.Second)
	refused := 0
	try := func(what string, a wire.TCPFields, e Endpoints) {
		t.Helper()
		if _, ok := g.Check(later, e, &a); ok {
			t.Errorf("%s: accepted", what)
			return
		}
		refused++
	}
	for d := int32(-64); d <= 64; d++ {
		if d == 0 {
			continue
		}
		a := ack
		a.Ack += wire.Seq(d)
		if d < 0 && d >= -3 {
			// The MSS index is added into the cookie, so an ACK up to
			// three below it decodes to a smaller index, as in Linux: it
			// takes knowing the cookie, which only the peer does.
			if o, ok := g.Check(later, ep, &a); !ok || o.MSS != cookieMSS[3+d] {
				t.Errorf("ack %+d: %+v %v, want MSS %d", d, o, ok, cookieMSS[3+d])
			}
			continue
		}
		try(fmt.Sprintf("ack %+d", d), a, ep)
	}
	for _, e := range []Endpoints{
		{Local: cookieLocal, Remote: netip.MustParseAddrPort("198.18.7.10:40000"), TSOffset: 999},
		{Local: cookieLocal, Remote: netip.MustParseAddrPort("198.18.7.9:40001"), TSOffset: 999},
		{Local: netip.MustParseAddrPort("10.0.0.1:81"), Remote: cookieRemote, TSOffset: 999},
		{Local: netip.MustParseAddrPort("10.0.0.3:80"), Remote: cookieRemote, TSOffset: 999},
	} {
		try(fmt.Sprintf("tuple %v->%v", e.Remote, e.Local), ack, e)
	}
	a := ack
	a.Seq += 1 << 20
	try("peer sequence number far off", a, ep)
	for _, ecr := range []uint32{
		ack.Options.TSEcr + 1100,    // 100 ms in the future
		ack.Options.TSEcr - 121_000, // older than any cookie
		ack.Options.TSEcr + 1<<31,
	} {
		a := ack
		a.Options.TSEcr = ecr
		try(fmt.Sprintf("TS echo %d (sent %d)", ecr, ack.Options.TSEcr), a, ep)
	}
	r := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	const guesses = 200_000
	for range guesses {
		a := ack
		a.Ack = wire.Seq(r.Uint32())
		a.Options.HasTimestamp = false
		if a.Ack == ack.Ack {
			continue
		}
		if _, ok := g.Check(later, ep, &a); ok {
			accepted++
		}
	}
	if accepted != 0 {
		t.Errorf("%d of %d random acknowledgment numbers passed as cookies", accepted, guesses)
	}
	st := env.Stats
	if st.SyncookiesFailed != uint64(refused+guesses-accepted) || st.SyncookiesRecv != 3 {
		t.Errorf("SyncookiesFailed %d Recv %d, want %d 3", st.SyncookiesFailed, st.SyncookiesRecv, refused+guesses-accepted)
	}
	if _, ok := g.Check(later, ep, &ack); !ok {
		t.Error("the true ACK was refused after the forgeries")
	}

	// Options the configuration turned off since (or never offered) are
	// refused, as Linux's cookie_timestamp_decode does.
	for _, cfg := range []Config{{NoSACK: true}, {NoWindowScale: true}, {NoTimestamps: true}} {
		env2 := NewEnv(cfg)
		g2 := &SynCookies{env: env2, k0: g.k0, k1: g.k1}
		if _, ok := g2.Check(later, ep, &ack); ok {
			t.Errorf("%+v: a cookie with options now turned off was accepted", cfg)
		}
		if env2.Stats.SyncookiesFailed != 1 {
			t.Errorf("%+v: SyncookiesFailed %d, want 1", cfg, env2.Stats.SyncookiesFailed)
		}
	}
}

// TestCookieTimestamp: cookie_init_timestamp's arithmetic. The TSval is
// the clock with its low six bits replaced by the options (window scale
// in bits 0–3, 15 for none; SACK bit 4; ECN bit 5), never in the future
// and less than 64 ms behind; decoding gives the options back, ECN
// included (ustack never sets it, having no ECN, but keeps Linux's
// encoding).
func TestCookieTimestamp(t *testing.T) {
	for _, now := range []uint32{0, 5, 63, 64, 1000, 1023, 1024, 0xffffffc0, 0xffffffff, 123456789} {
		for wsv := 0; wsv <= 15; wsv++ {
			for bits := range 4 {
				o := CookieOptions{Timestamps: true, HasWScale: wsv < 15, SACK: bits&1 != 0, ECN: bits&2 != 0}
				if o.HasWScale {
					o.WScale = uint8(wsv)
				}
				ts := cookieTSVal(now, o)
				if d := int32(now - ts); d < 0 || d >= 64 {
					t.Errorf("now %d %+v: TSval %d is %d ms behind", now, o, ts, d)
				}
				wantLow := uint32(wsv) | uint32(bits&1)<<4 | uint32(bits&2)<<4
				if ts&63 != wantLow {
					t.Errorf("now %d %+v: low bits %06b, want %06b", now, o, ts&63, wantLow)
				}
				if got := decodeCookieTS(ts); got != o {
					t.Errorf("now %d: decoded %+v, want %+v", now, got, o)
				}
			}
		}
	}
	// Linux's worked case: 1000 ms with wscale 7 and SACK is 960|23.
	if got := cookieTSVal(1000, CookieOptions{HasWScale: true, WScale: 7, SACK: true}); got != 983 {
		t.Errorf("cookieTSVal(1000, ws 7, SACK) = %d, want 983", got)
	}
}

// TestCookieMSSTable: the MSS index is the largest table entry not above
// the peer's MSS (Linux's msstab: 536, 1300, 1440, 1460), and the
// sequence arithmetic gives back every index it was given.
func TestCookieMSSTable(t *testing.T) {
	_, g := newTestCookies(Config{})
	for mss := range 10000 {
		i := cookieMSSIndex(uint16(mss))
		want := 0
		for j, m := range cookieMSS {
			if uint16(mss) >= m {
				want = j
			}
		}
		if i != want {
			t.Fatalf("MSS %d: index %d, want %d", mss, i, want)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for k := range 4000 {
		data := uint32(k % len(cookieMSS))
		isn := wire.Seq(r.Uint32())
		count := r.Uint32()
		c := g.cookieSeq(cookieLocal, cookieRemote, isn, count, data)
		for d := uint32(0); d < cookieMaxAge; d++ {
			if got, ok := g.checkCookieSeq(cookieLocal, cookieRemote, c, isn, count+d); !ok || got != data {
				t.Fatalf("cookie of count %d data %d checked at count %d: %d %v", count, data, count+d, got, ok)
			}
		}
		if _, ok := g.checkCookieSeq(cookieLocal, cookieRemote, c, isn, count+cookieMaxAge); ok {
			t.Fatalf("cookie of count %d accepted at count %d", count, count+cookieMaxAge)
		}
	}
}

// TestCookiesRecent: a listener checks ACKs as cookies only up to
// CookieValid after it last sent one (Linux's tcp_synq_no_recent_overflow).
func TestCookiesRecent(t *testing.T) {
	sent := clock.Instant(50 * time.Second)
	for _, tc := range []struct {
		now  clock.Instant
		last clock.Instant
		want bool
	}{
		{sent, clock.Never, false},
		{sent, sent, true},
		{sent.Add(CookieValid), sent, true},
		{sent.Add(CookieValid + 1), sent, false},
		{sent.Add(-1), sent, false},
	} {
		if got := CookiesRecent(tc.now, tc.last); got != tc.want {
			t.Errorf("CookiesRecent(%v, %v) = %v, want %v", tc.now, tc.last, got, tc.want)
		}
	}
}

// TestOpenCookieMisuse: OpenCookie refuses a segment that is not a bare
// ACK, an ISS that is not the cookie, and a connection already open.
func TestOpenCookieMisuse(t *testing.T) {
	env, g := newTestCookies(Config{})
	syn := wire.TCPFields{Seq: 5, Flags: wire.TCPFlagSYN, Options: wire.TCPOptions{MSS: 1460}}
	ep := Endpoints{Local: cookieLocal, Remote: cookieRemote, MTU: 1500}
	now := clock.Instant(time.Second)
	_, ack := cookieHandshake(g, ep, &syn, now)
	o, ok := g.Check(now, ep, &ack)
	if !ok {
		t.Fatal("cookie refused")
	}
	ep.ISS = ack.Ack - 1
	for _, f := range []wire.TCPFlags{wire.TCPFlagACK | wire.TCPFlagRST, wire.TCPFlagACK | wire.TCPFlagSYN, 0} {
		a := ack
		a.Flags = f
		if err := NewConn(env).OpenCookie(now, ep, &a, o); err != ErrInvalid {
			t.Errorf("flags %v: %v, want ErrInvalid", f, err)
		}
	}
	bad := ep
	bad.ISS++
	if err := NewConn(env).OpenCookie(now, bad, &ack, o); err != ErrInvalid {
		t.Errorf("wrong ISS: %v, want ErrInvalid", err)
	}
	c := NewConn(env)
	if err := c.OpenCookie(now, ep, &ack, o); err != nil {
		t.Fatal(err)
	}
	if err := c.OpenCookie(now, ep, &ack, o); err != ErrInvalid {
		t.Errorf("second OpenCookie: %v, want ErrInvalid", err)
	}
}

// FuzzSynCookie: arbitrary final ACKs at a cookie listener (sequence and
// acknowledgment numbers near a real cookie's or anywhere, timestamps,
// data, FIN, time): Check never panics, and whatever it accepts,
// OpenCookie turns into a synchronized connection that holds the core's
// invariants.
func FuzzSynCookie(f *testing.F) {
	_, g := newTestCookies(Config{})
	syn := wire.TCPFields{SrcPort: cookieRemote.Port(), DstPort: cookieLocal.Port(), Seq: 1000, Flags: wire.TCPFlagSYN, Window: 1000,
		Options: wire.TCPOptions{MSS: 1460, HasTimestamp: true, TSVal: 5, SACKPermitted: true, HasWScale: true, WScale: 7}}
	ep := Endpoints{Local: cookieLocal, Remote: cookieRemote, TSOffset: 77, MTU: 1500}
	t0 := clock.Instant(90 * time.Second)
	_, ack := cookieHandshake(g, ep, &syn, t0)
	f.Add(uint32(0), uint32(0), uint8(0), true, uint32(0), uint32(0), uint16(0), int64(0))
	f.Add(uint32(0), uint32(0), uint8(wire.TCPFlagFIN|wire.TCPFlagPSH), true, uint32(0), uint32(0), uint16(100), int64(time.Second))
	f.Add(uint32(2), uint32(0), uint8(0), false, uint32(0), uint32(0), uint16(0), int64(-time.Second))
	f.Add(uint32(0), uint32(0xffffffff), uint8(0), true, uint32(1<<31), uint32(63), uint16(65535), int64(100*time.Second))
	f.Fuzz(func(t *testing.T, dseq, dack uint32, flags uint8, ts bool, dtsval, dtsecr uint32, plen uint16, dt int64) {
		env, g := newTestCookies(Config{})
		a := ack
		a.Seq += wire.Seq(dseq)
		a.Ack += wire.Seq(dack)
		a.Flags = wire.TCPFlagACK | wire.TCPFlags(flags)&(wire.TCPFlagFIN|wire.TCPFlagPSH|wire.TCPFlagURG)
		a.Options.HasTimestamp = ts
		a.Options.TSVal += dtsval
		a.Options.TSEcr += dtsecr
		a.Payload = make([]byte, plen)
		now := t0.Add(time.Duration(dt))
		o, ok := g.Check(now, ep, &a)
		if !ok {
			if env.Stats.SyncookiesFailed != 1 {
				t.Fatalf("refused without counting: %+v", env.Stats)
			}
			return
		}
		e := ep
		e.ISS = a.Ack - 1
		c := NewConn(env)
		if err := c.OpenCookie(now, e, &a, o); err != nil {
			t.Fatalf("Check accepted %+v but OpenCookie failed: %v", a, err)
		}
		if s := c.State(); s != Established && s != CloseWait {
			t.Fatalf("cookie connection in %v", s)
		}
		if err := c.checkInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}
