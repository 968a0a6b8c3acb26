package interop

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/tcp"
)

// ssInfo is what `ss -tino` says about one kernel socket.
type ssInfo struct {
	line                 string
	ts, sack, cubic      bool
	sndWScale, rcvWScale int // -1: no window scaling
	mss, advmss          int
}

var (
	reWScale = regexp.MustCompile(`\bwscale:(\d+),(\d+)`)
	reMSS    = regexp.MustCompile(`\bmss:(\d+)`)
	reAdvMSS = regexp.MustCompile(`\badvmss:(\d+)`)
)

// kernelView runs `ss -tin` in the kernel's namespace for the
// established socket whose peer is the stack's port and parses it.
func kernelView(t *testing.T, e *env, stackPort int) ssInfo {
	t.Helper()
	// -o too: ss 6.1 prints the "ts sack ecn" flags only with it.
	out, err := run(e.kernel, 10*time.Second, "ss", "-Htino", "state", "established", "dst", fmt.Sprintf("%v:%d", stackAddr.Addr(), stackPort))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(strings.Fields(out), " ")
	if line == "" {
		t.Fatalf("ss shows no connection to the stack's port %d", stackPort)
	}
	v := ssInfo{line: line, sndWScale: -1, rcvWScale: -1}
	for _, f := range strings.Fields(line) {
		switch f {
		case "ts":
			v.ts = true
		case "sack":
			v.sack = true
		case "cubic":
			v.cubic = true
		}
	}
	if m := reWScale.FindStringSubmatch(line); m != nil {
		v.sndWScale, _ = strconv.Atoi(m[1])
		v.rcvWScale, _ = strconv.Atoi(m[2])
	}
	if m := reMSS.FindStringSubmatch(line); m != nil {
		v.mss, _ = strconv.Atoi(m[1])
	}
	if m := reAdvMSS.FindStringSubmatch(line); m != nil {
		v.advmss, _ = strconv.Atoi(m[1])
	}
	return v
}

// TestKernelView: the kernel's view of connections with the stack (`ss
// -tin` in its namespace) shows what the handshake negotiated — window
// scaling with the stack's shift (RFC 7323 §2), timestamps (RFC 7323 §3),
// SACK (RFC 2018), the MSS the stack announced for its MTU less the
// timestamp option (RFC 9293 §3.7.1, RFC 7323 §3.2) — and CUBIC, which the
// test set; it agrees with the stack's own view of the same connection;
// and with the options turned off in the stack, the kernel shows them
// off. Both directions of opening, over each link kind and MTU.
func TestKernelView(t *testing.T) {
	type variant struct {
		name string
		kind linkKind
		mtu  int
		cfg  ustack.Config
		opts bool // window scaling, timestamps and SACK on
	}
	var off ustack.Config
	off.TCP = tcp.Config{NoWindowScale: true, NoTimestamps: true, NoSACK: true}
	variants := []variant{
		{"tap", tapLink, 1500, ustack.Config{}, true},
		{"afpacket", afpacketLink, 1500, ustack.Config{}, true},
		{"tun-mtu1400", tunLink, 1400, ustack.Config{}, true},
		{"afpacket-options-off", afpacketLink, 1500, off, false},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			need(t, v.kind, "ss")
			e := newEnv(t, v.kind, envConfig{mtu: v.mtu, stack: v.cfg})
			mss := v.mtu - 40 // the MSS option each side sends (IPv4, TCP without options)
			effective := mss  // the segment payload with the options each segment carries
			if v.opts {
				effective -= 12 // timestamps: 10 bytes, padded to 12
			}
			check := func(what string, kv ssInfo, si tcp.Info) {
				t.Helper()
				t.Logf("%s: kernel: %s", what, kv.line)
				t.Logf("%s: stack: wscale snd %d rcv %d, ts %v, sack %v, mss snd %d adv %d", what, si.SndWScale, si.RcvWScale, si.Timestamps, si.SACK, si.SndMSS, si.AdvMSS)
				if kv.ts != v.opts || kv.sack != v.opts || si.Timestamps != v.opts || si.SACK != v.opts {
					t.Errorf("%s: timestamps/SACK: kernel %v/%v, stack %v/%v, want %v", what, kv.ts, kv.sack, si.Timestamps, si.SACK, v.opts)
				}
				if !kv.cubic {
					t.Errorf("%s: the kernel's socket does not use CUBIC", what)
				}
				if v.opts {
					// The kernel sends with the shift the stack announced
					// and receives with its own, which the stack uses to
					// send.
					if kv.sndWScale != int(si.RcvWScale) || kv.rcvWScale != int(si.SndWScale) || kv.sndWScale < 0 {
						t.Errorf("%s: window scale: kernel wscale:%d,%d, stack snd %d rcv %d", what, kv.sndWScale, kv.rcvWScale, si.SndWScale, si.RcvWScale)
					}
				} else if kv.sndWScale != -1 || si.SndWScale != -1 {
					t.Errorf("%s: window scaling on though the stack turned it off (kernel wscale:%d,%d)", what, kv.sndWScale, kv.rcvWScale)
				}
				if kv.mss != effective || kv.advmss != effective || int(si.AdvMSS) != mss || int(si.SndMSS) != effective {
					t.Errorf("%s: MSS: kernel mss:%d advmss:%d, stack announced %d sends %d; want %d announced, %d per segment",
						what, kv.mss, kv.advmss, si.AdvMSS, si.SndMSS, mss, effective)
				}
			}

			// The kernel opens.
			ln, err := e.s.ListenTCP("tcp", ":5008", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			kc, err := kernelDial(e.kernel, fmt.Sprintf("%v:5008", stackAddr.Addr()), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			sc, err := ln.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			// A little traffic both ways, so both views are settled.
			exchange(t, kc, sc)
			check("kernel to stack", kernelView(t, e, 5008), sc.Info())

			// The stack opens.
			kln := kernelListen(t, e.kernel, fmt.Sprintf("%v:5009", kernelAddr.Addr()))
			conn, err := e.s.Dial("tcp", kln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c2 := conn.(*ustack.TCPConn)
			defer c2.Close()
			k2, err := kln.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			defer k2.Close()
			exchange(t, k2, c2)
			check("stack to kernel", kernelView(t, e, int(c2.LocalAddrPort().Port())), c2.Info())
		})
	}
}

// exchange sends a few kilobytes each way between two connected ends.
func exchange(t *testing.T, a, b interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
}) {
	t.Helper()
	msg := make([]byte, 5000)
	buf := make([]byte, len(msg))
	for _, p := range [][2]interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
	}{{a, b}, {b, a}} {
		if _, err := p[0].Write(msg); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(msg); {
			n, err := p[1].Read(buf[got:])
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
}
