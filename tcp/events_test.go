package tcp_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ustack/ustack/tcp/tcptest"
)

// stateFixture reaches one RFC 9293 state through the real handshake and
// close (a script snippet, passive open, no timestamps), and says where the
// sequence spaces stand then: rn is the connection's RCV.NXT and sn its
// SND.NXT, both relative.
type stateFixture struct {
	state  string
	script string
	rn, sn int
}

const fixtureOpen = `
0     listen(8080)
+0    < S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0    > S. 0:0(0) ack 1 win 65535 <mss 1460,nop,nop,sackOK,nop,wscale 10>
`

const fixtureEstab = fixtureOpen + `
+.1   < . 1:1(0) ack 1 win 257
+0    accept()
`

// shutdown(SHUT_WR), not close(): an orphaned connection resets on data.
const fixtureFinWait1 = fixtureEstab + `
+.1   shutdown(SHUT_WR)
+0    > F. 1:1(0) ack 1
`

const fixtureCloseWait = fixtureEstab + `
+.1   < F. 1:1(0) ack 1 win 257
+0    > . 1:1(0) ack 2
`

var stateFixtures = []stateFixture{
	{"SYN-RECEIVED", fixtureOpen, 1, 1},
	{"ESTABLISHED", fixtureEstab, 1, 1},
	{"FIN-WAIT-1", fixtureFinWait1, 1, 2},
	{"FIN-WAIT-2", fixtureFinWait1 + "+.1 < . 1:1(0) ack 2 win 257\n", 1, 2},
	{"CLOSE-WAIT", fixtureCloseWait, 2, 1},
	{"CLOSING", fixtureFinWait1 + "+.1 < F. 1:1(0) ack 1 win 257\n+0 > . 2:2(0) ack 2\n", 2, 2},
	{"LAST-ACK", fixtureCloseWait + "+.1 close()\n+0 > F. 1:1(0) ack 2\n", 2, 2},
	{"TIME-WAIT", fixtureFinWait1 + "+.1 < . 1:1(0) ack 2 win 257\n+.1 < F. 1:1(0) ack 2 win 257\n+0 > . 2:2(0) ack 2\n", 2, 2},
}

// stateEvent is one kind of arriving segment, and what each state must do
// with it: the script lines that follow the segment ({rn}, {sn} and
// {rn+N}/{sn+N} are replaced), by state; a state not listed is skipped.
type stateEvent struct {
	name    string
	rule    string
	segment string
	expect  map[string]string
}

var (
	challengeACK = "+0 > . {sn}:{sn}(0) ack {rn}\n"
	resetByPeer  = "+0 > none\n+0 state(CLOSED)\n+0 getsockopt(SO_ERROR) = ECONNRESET\n"
	closedQuiet  = "+0 > none\n+0 state(CLOSED)\n+0 getsockopt(SO_ERROR) = 0\n"
)

var stateEvents = []stateEvent{
	{
		name:    "rst_exact",
		rule:    "RFC 9293 §3.10.7.4 second, RFC 5961 §3.2: a RST at RCV.NXT",
		segment: "< R {rn}:{rn}(0) win 0",
		expect: map[string]string{
			"SYN-RECEIVED": "+0 > none\n+0 state(LISTEN)\n", // passive OPEN: back to LISTEN
			"ESTABLISHED":  resetByPeer,
			"FIN-WAIT-1":   resetByPeer,
			"FIN-WAIT-2":   resetByPeer,
			"CLOSE-WAIT":   resetByPeer,
			"CLOSING":      closedQuiet,
			"LAST-ACK":     closedQuiet,
			"TIME-WAIT":    closedQuiet,
		},
	},
	{
		name:    "rst_in_window",
		rule:    "RFC 5961 §3.2: a RST in the window but not at RCV.NXT gets a challenge ACK",
		segment: "< R {rn+100}:{rn+100}(0) win 0",
		expect: map[string]string{
			"SYN-RECEIVED": challengeACK, "ESTABLISHED": challengeACK, "FIN-WAIT-1": challengeACK,
			"FIN-WAIT-2": challengeACK, "CLOSE-WAIT": challengeACK, "CLOSING": challengeACK,
			"LAST-ACK": challengeACK,
			// Linux (tcp_timewait_state_process) ignores it.
			"TIME-WAIT": "+0 > none\n+0 state(TIME_WAIT)\n",
		},
	},
	{
		name:    "rst_out_of_window",
		rule:    "RFC 9293 §3.10.7.4 first, RFC 5961 §3.2: a RST outside the window is dropped",
		segment: "< R {rn+50000000}:{rn+50000000}(0) win 0",
		expect: map[string]string{
			"SYN-RECEIVED": "+0 > none\n", "ESTABLISHED": "+0 > none\n", "FIN-WAIT-1": "+0 > none\n",
			"FIN-WAIT-2": "+0 > none\n", "CLOSE-WAIT": "+0 > none\n", "CLOSING": "+0 > none\n",
			"LAST-ACK": "+0 > none\n", "TIME-WAIT": "+0 > none\n",
		},
	},
	{
		name:    "syn_in_window",
		rule:    "RFC 5961 §4.2, RFC 9293 §3.10.7.4 fourth: a SYN in a synchronized state gets a challenge ACK",
		segment: "< S {rn+100}:{rn+100}(0) win 65535",
		expect: map[string]string{
			// SYN-RECEIVED and TIME-WAIT have their own rules (and scripts).
			"ESTABLISHED": challengeACK, "FIN-WAIT-1": challengeACK, "FIN-WAIT-2": challengeACK,
			"CLOSE-WAIT": challengeACK, "CLOSING": challengeACK, "LAST-ACK": challengeACK,
		},
	},
	{
		name:    "ack_too_new",
		rule:    "RFC 9293 §3.10.7.4 fifth, RFC 5961 §5.2: an ACK of data not yet sent",
		segment: "< . {rn}:{rn}(0) ack {sn+100} win 257",
		expect: map[string]string{
			// SYN-RECEIVED: <SEQ=SEG.ACK><CTL=RST>.
			"SYN-RECEIVED": "+0 > R {sn+100}:{sn+100}(0) win 0\n",
			"ESTABLISHED":  challengeACK, "FIN-WAIT-1": challengeACK, "FIN-WAIT-2": challengeACK,
			"CLOSE-WAIT": challengeACK, "CLOSING": challengeACK, "LAST-ACK": challengeACK,
			// An ACK at RCV.NXT is dropped in TIME-WAIT (Linux).
			"TIME-WAIT": "+0 > none\n",
		},
	},
	{
		name:    "data",
		rule:    "RFC 9293 §3.10.7.4 seventh: segment text",
		segment: "< P. {rn}:{rn+10}(10) ack {sn} win 257",
		expect: map[string]string{
			"SYN-RECEIVED": "+0 > . {sn}:{sn}(0) ack {rn+10}\n+0 state(ESTABLISHED)\n+0 read() = 10\n",
			"ESTABLISHED":  "+0 > . {sn}:{sn}(0) ack {rn+10}\n+0 read() = 10\n",
			"FIN-WAIT-1":   "+0 > . {sn}:{sn}(0) ack {rn+10}\n+0 read() = 10\n",
			"FIN-WAIT-2":   "+0 > . {sn}:{sn}(0) ack {rn+10}\n+0 read() = 10\n",
			// After the peer's FIN: "Ignore the segment text."
			"CLOSE-WAIT": "+0 > none\n+0 read() = EOF\n",
			"CLOSING":    "+0 > none\n+0 read() = EOF\n",
			"LAST-ACK":   "+0 > none\n+0 read() = EOF\n",
			// TIME-WAIT: acknowledged (and the 2 MSL timer restarted).
			"TIME-WAIT": "+0 > . {sn}:{sn}(0) ack {rn}\n",
		},
	},
	{
		name:    "fin",
		rule:    "RFC 9293 §3.10.7.4 eighth: the FIN bit",
		segment: "< F. {rn}:{rn}(0) ack {sn} win 257",
		expect: map[string]string{
			"SYN-RECEIVED": "+0 > . {sn}:{sn}(0) ack {rn+1}\n+0 state(CLOSE_WAIT)\n",
			"ESTABLISHED":  "+0 > . {sn}:{sn}(0) ack {rn+1}\n+0 state(CLOSE_WAIT)\n+0 read() = EOF\n",
			// Our FIN is acknowledged by this segment: TIME-WAIT.
			"FIN-WAIT-1": "+0 > . {sn}:{sn}(0) ack {rn+1}\n+0 state(TIME_WAIT)\n",
			"FIN-WAIT-2": "+0 > . {sn}:{sn}(0) ack {rn+1}\n+0 state(TIME_WAIT)\n",
			// A FIN beyond the peer's first one is out of the window's
			// data: text past the FIN is ignored, the state stays.
			"CLOSE-WAIT": "+0 > none\n+0 state(CLOSE_WAIT)\n",
		},
	},
}

// expand replaces {rn}, {sn}, {rn+N} and {sn+N}.
func expand(s string, rn, sn int) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}') + i
		b.WriteString(s[:i])
		expr := s[i+1 : j]
		base, off := expr, 0
		if k := strings.IndexByte(expr, '+'); k >= 0 {
			base = expr[:k]
			fmt.Sscan(expr[k+1:], &off)
		}
		v := rn
		if base == "sn" {
			v = sn
		}
		fmt.Fprint(&b, v+off)
		s = s[j+1:]
	}
}

// TestStateEvents runs every kind of segment of stateEvents against every
// state of stateFixtures (RFC 9293 §3.10.7.4, event processing in the
// synchronized states), each from a fresh connection.
func TestStateEvents(t *testing.T) {
	for _, ev := range stateEvents {
		for _, fx := range stateFixtures {
			want, ok := ev.expect[fx.state]
			if !ok {
				continue
			}
			t.Run(ev.name+"/"+fx.state, func(t *testing.T) {
				h := tcptest.New()
				tcptest.Exec(t, h, fx.script+"+0 state("+strings.ReplaceAll(fx.state, "-", "_")+")\n")
				tcptest.Exec(t, h, "// "+ev.rule+"\n+.1 "+expand(ev.segment, fx.rn, fx.sn)+"\n"+expand(want, fx.rn, fx.sn))
			})
		}
	}
}
