package tcptest

import (
	"strings"
	"testing"
)

func runSrc(t *testing.T, src string) error {
	t.Helper()
	h := New()
	return h.Exec("t.pkt", src)
}

const handshake = `
0     listen(8080)
+0    < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0    > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 0 ecr 100,nop,wscale 10>
+.1   < . 1:1(0) ack 1 win 257 <nop,nop,TS val 200 ecr 0>
+0    accept()
`

// TestStrict checks that the runner rejects every kind of wrong
// expectation, with the script line in the message.
func TestStrict(t *testing.T) {
	for _, tc := range []struct{ name, tail, want string }{
		{"ok", "+0 write(10)\n+0 > P. 1:11(10) ack 1 <nop,nop,TS val 100 ecr 200>", ""},
		{"flags", "+0 write(10)\n+0 > . 1:11(10) ack 1 <nop,nop,TS val 100 ecr 200>", "t.pkt:8: outbound segment mismatch at 0.100000: flags P., want ."},
		{"seq", "+0 write(10)\n+0 > P. 2:12(10) ack 1 <nop,nop,TS val 100 ecr 200>", "seq 1, want 2"},
		{"len", "+0 write(10)\n+0 > P. 1:10(9) ack 1 <nop,nop,TS val 100 ecr 200>", "length 10, want 9"},
		{"ack", "+0 write(10)\n+0 > P. 1:11(10) ack 2 <nop,nop,TS val 100 ecr 200>", "ack 1, want 2"},
		{"win", "+0 write(10)\n+0 > P. 1:11(10) ack 1 win 5 <nop,nop,TS val 100 ecr 200>", "win 128, want 5"},
		{"opt", "+0 write(10)\n+0 > P. 1:11(10) ack 1 <nop,nop,TS val 101 ecr 200>", "options <nop,nop,TS val 100 ecr 200>, want <nop,nop,TS val 101 ecr 200>"},
		{"noopt", "+0 write(10)\n+0 > P. 1:11(10) ack 1", "want none"},
		{"ts*", "+0 write(10)\n+0 > P. 1:11(10) ack 1 <nop,nop,TS val * ecr 200>", ""},
		{"ignore", "+0 write(10)\n+0 > P. 1:11(10) ack * <...>", ""},
		{"early", "+0 write(10)\n+.5 > P. 1:11(10) ack 1 <...>", "timing error: segment sent at 0.100000, expected at 0.600000"},
		{"late", "+.5 write(10)\n+0 > P. 1:11(10) ack 1 <...>\n+0 > P. 11:12(1) ack 1 <...>", "expected segment at 0.600000, nothing sent by 0.610000"},
		{"tolerance", "+0 write(10)\n+.009 > P. 1:11(10) ack 1 <...>", ""},
		{"unexpected", "+0 write(10)\n+.1 read() = EAGAIN", "t.pkt:8: unexpected outbound segment at 0.100000: > P. 1:11(10) ack 1 win 128 <nop,nop,TS val 100 ecr 200>"},
		{"end", "+0 write(10)", "t.pkt:7: after the last event: unexpected outbound segment"},
		{"none", "+0 write(10)\n+1 > none", "unexpected outbound segment"},
		{"read", "+0 read(10) = 10", "read returned error operation would block, want 10"},
		{"state", "+0 state(CLOSE_WAIT)", "state ESTABLISHED, want CLOSE-WAIT"},
		{"stats", "+0 stats(OutSegs=7, PassiveOpens=1)", "stats: OutSegs=1, want 7"},
		{"info", "+0 info(SndMSS=1460)", "info: SndMSS=1448, want 1460"},
		{"range", "+0 write(10)\n+0 > P. 1:11(10) ack 1 <...>\n+.2~+.4 > P. 1:11(10) ack 1 <...>", ""},
		{"range-early", "+0 write(10)\n+0 > P. 1:11(10) ack 1 <...>\n+.4~+.5 > P. 1:11(10) ack 1 <...>", "timing error: segment sent at 0.400000"},
		{"any", "+0 write(10)\n+0 > P. 1:11(10) ack 1 <...>\n* > P. 1:11(10) ack 1 <...>\n* > P. 1:11(10) ack 1 <...>", ""},
		{"abs", "+0 write(10)\n0.1 > P. 1:11(10) ack 1 <...>\n0.4 > P. 1:11(10) ack 1 <...>", ""},
		{"none-ok", "+0 write(10)\n+0 > P. 1:11(10) ack 1 <...>\n+.29 > none", ""},
		{"none-fail", "+0 write(10)\n+0 > P. 1:11(10) ack 1 <...>\n+.3 > none", "unexpected outbound segment at 0.400000"},
		{"delack", "+0 < . 1:11(10) ack 1 win 257 <nop,nop,TS val 300 ecr 100>\n+0 > . 1:1(0) ack 11 <nop,nop,TS val 100 ecr 300>\n+0 read(10)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runSrc(t, handshake+tc.tail)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected failure: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("passed, want failure %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestParseErrors checks that malformed lines are rejected with their line
// number.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"0 < S 0:0(0)", "t.pkt:1: an inbound segment needs \"win N\""},
		{"0 < S. 0:0(0) win 1", "the '.' flag needs"},
		{"0 < S 0:0(0) ack 1 win 1", "\"ack\" given without the '.' flag"},
		{"0 < X 0:0(0) win 1", "bad flags"},
		{"0 < S 0:5(4) win 1", "end-start is not len"},
		{"0 < S 0:0(0) win 1 <mss>", "bad option"},
		{"0 < S 0:0(0) win 1 <...>", "only for outbound"},
		{"0 frob()", "unknown call"},
		{"0 write()", "takes 1 to 1 arguments"},
		{"\n\n0 read() = EFOO", "t.pkt:3: bad result"},
		{"%config Foo=1", "no field"},
		{"%config MinRTO=abc", "bad duration"},
		{"x listen()", "bad time"},
		{"0 listen()\n%mtu 1500", "must come before"},
	} {
		_, err := Parse("t.pkt", tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.src, err, tc.want)
		}
	}
}

// TestPayloadChecked checks that data is verified end to end: the peer's
// bytes by read, and ours in every outbound segment.
func TestPayloadChecked(t *testing.T) {
	h := New()
	if err := h.Exec("t.pkt", handshake+"+0 < P. 1:11(10) ack 1 win 257 <nop,nop,TS val 300 ecr 100>\n+0 > . 1:1(0) ack 11 <...>\n+0 read(4) = 4"); err != nil {
		t.Fatal(err)
	}
	// Skipping ahead in the stream is caught: make the harness believe
	// two bytes were already read.
	h.read += 2
	err := h.Exec("t2.pkt", "+0 read(6) = 6")
	if err == nil || !strings.Contains(err.Error(), "not the peer's bytes") {
		t.Fatalf("corrupted read not detected: %v", err)
	}
	h = New()
	if err := h.Exec("t.pkt", handshake); err != nil {
		t.Fatal(err)
	}
	h.wrote = 3 // the next write claims another stream offset
	err = h.Exec("t2.pkt", "+0 write(10)\n+0 > P. 1:11(10) ack 1 <...>")
	if err == nil || !strings.Contains(err.Error(), "payload is not the bytes written") {
		t.Fatalf("corrupted payload not detected: %v", err)
	}
}

// TestClosedPort checks the harness's stand-in for the stack: a segment
// for no connection is answered as RFC 9293 §3.10.7.1 says.
func TestClosedPort(t *testing.T) {
	for _, src := range []string{
		"0 < . 1:1(0) ack 100 win 10\n+0 > R 100:100(0) win 0",
		// <SEQ=0>: absolute, so relative to an ISS of 0.
		"%iss 0\n0 < S 0:0(0) win 10\n+0 > R. 0:0(0) ack 1 win 0",
		"0 < P. 1:11(10) ack 5 win 10\n+0 > R 5:5(0) win 0",
		"0 < R 1:1(0) win 0\n+0 > none",
	} {
		if err := New().Exec("t.pkt", src); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}
