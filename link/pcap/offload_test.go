package pcap

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/internal/gso/gsotest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/wire"
)

// offloadFrames returns the packets of TestSuperFrame*: a TCP/IPv4 TSO
// super-frame of 44 segments and a short one, a TCP/IPv6 one, a UDP
// super-datagram, a single segment with a partial checksum, and a plain
// frame — and the wire frames each must be recorded as.
func offloadFrames(t *testing.T, m link.Medium) (pkts []link.Packet, want [][]byte) {
	t.Helper()
	add := func(s gsotest.Seg, mss int, super bool) {
		s.Medium = m
		f := s.Frame()
		off := s.TSO(f, mss)
		if !super {
			off.GSOType, off.GSOSize = link.GSONone, 0
		}
		pkts = append(pkts, link.Packet{Buf: f, N: len(f), Offload: off})
		var sg gso.Segmenter
		if err := sg.Init(f, m, off); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		for {
			n, ok := sg.Next(buf, gso.Complete)
			if !ok {
				break
			}
			want = append(want, append([]byte(nil), buf[:n]...))
		}
	}
	psh := wire.TCPFlagACK | wire.TCPFlagPSH
	add(gsotest.Seg{Seq: 1000, Ack: 5, ID: 300, Flags: psh, Payload: gsotest.Bytes(44*1448, 1)}, 1448, true)
	add(gsotest.Seg{Seq: 1000 + 44*1448, Ack: 5, ID: 344, Flags: psh, Payload: gsotest.Bytes(2*1448+3, 2)}, 1448, true)
	add(gsotest.Seg{V6: true, Seq: 7, Ack: 5, Flags: psh, Payload: gsotest.Bytes(5*1428, 3)}, 1428, true)
	add(gsotest.Seg{UDP: true, SrcPort: 40000, DstPort: 40001, ID: 9, Payload: gsotest.Bytes(3*1400+20, 4)}, 1400, true)
	add(gsotest.Seg{Seq: 1, Ack: 5, Flags: psh, Payload: []byte("partial checksum")}, 1448, false)
	plain := gsotest.Seg{Medium: m, Seq: 2, Ack: 5, Payload: []byte("complete")}.Frame()
	pkts = append(pkts, link.Packet{Buf: plain, N: len(plain)})
	want = append(want, plain)
	return pkts, want
}

// TestSuperFrameRecordedAsSegments: super-frames written through a link
// with offloads are recorded as the wire frames a device would cut from
// them, every checksum complete; frames with a partial checksum are
// recorded completed; what the link carries is not changed.
func TestSuperFrameRecordedAsSegments(t *testing.T) {
	for _, m := range []link.Medium{link.Ethernet, link.IP} {
		a, b := pipe.New(pipe.Config{Medium: m})
		var buf bytes.Buffer
		pa, err := New(a, &buf)
		if err != nil {
			t.Fatal(err)
		}
		pkts, want := offloadFrames(t, m)
		before := make([][]byte, len(pkts))
		for i := range pkts {
			before[i] = append([]byte(nil), pkts[i].Frame()...)
		}
		if n, err := pa.WriteBatch(pkts); n != len(pkts) || err != nil {
			t.Fatal(n, err)
		}
		in := make([]link.Packet, len(pkts))
		for i := range in {
			in[i].Buf = make([]byte, link.MaxSuperFrame)
		}
		if n, err := b.ReadBatch(in); n != len(pkts) || err != nil {
			t.Fatal(n, err)
		}
		for i := range pkts {
			if !bytes.Equal(pkts[i].Frame(), before[i]) || !bytes.Equal(in[i].Frame(), before[i]) {
				t.Errorf("%v: frame %d changed by the capture", m, i)
			}
		}
		pa.Close()
		b.Close()
		_, recs := readPcap(t, buf.Bytes())
		if len(recs) != len(want) {
			t.Fatalf("%v: %d records, want %d", m, len(recs), len(want))
		}
		for i := range recs {
			if !bytes.Equal(recs[i].data, want[i]) {
				t.Errorf("%v: record %d is not the wire frame", m, i)
			}
			if err := gsotest.Check(recs[i].data, m); err != nil {
				t.Errorf("%v: record %d: %v", m, i, err)
			}
		}
	}
}

// TestSuperFrameTsharkExpert: tshark, checking every checksum, finds
// nothing to flag (no malformed frame, no bad checksum, no error) in a
// capture of super-frames both written and read — the check the interop
// tests run on every capture (interop/pcapcheck_test.go).
func TestSuperFrameTsharkExpert(t *testing.T) {
	tshark := lookTool(t, "tshark")
	for _, m := range []link.Medium{link.Ethernet, link.IP} {
		a, b := pipe.New(pipe.Config{Medium: m})
		path := filepath.Join(t.TempDir(), "super.pcap")
		pa, err := Create(a, path)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := Create(b, path+".b")
		if err != nil {
			t.Fatal(err)
		}
		pkts, want := offloadFrames(t, m)
		if _, err := pa.WriteBatch(pkts); err != nil {
			t.Fatal(err)
		}
		in := make([]link.Packet, len(pkts))
		for i := range in {
			in[i].Buf = make([]byte, link.MaxSuperFrame)
		}
		if n, err := pb.ReadBatch(in); n != len(pkts) || err != nil {
			t.Fatal(n, err)
		}
		pa.Close()
		pb.Close()
		for _, p := range []string{path, path + ".b"} {
			cmd := exec.Command(tshark, "-n", "-r", p,
				"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
				"-o", "tcp.desegment_tcp_streams:FALSE", "-d", "tcp.port==1-65535,data", "-d", "udp.port==1-65535,data",
				"-T", "fields", "-e", "frame.number", "-e", "_ws.expert.group", "-e", "_ws.expert.severity", "-e", "_ws.expert.message")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(want) {
				t.Errorf("%v %s: tshark read %d frames, want %d", m, filepath.Base(p), len(lines), len(want))
			}
			for _, l := range lines {
				f := strings.Split(l, "\t")
				if len(f) < 4 || f[1] == "" {
					continue
				}
				// Groups: checksum 0x01000000, malformed 0x07000000;
				// severity error 0x00800000 (epan/proto.h). Notes and
				// chats (a FIN, a window update) are fine.
				if strings.Contains(f[1], "16777216") || strings.Contains(f[1], "117440512") || strings.Contains(f[2], "8388608") {
					t.Errorf("%v %s: tshark flags frame %s: %s", m, filepath.Base(p), f[0], f[3])
				}
			}
		}
	}
}

// TestSwapNotTakenUnderCapture: a link that could take a frame by
// exchanging buffers (link.Packet.Swap on a pipe) is not let to under a
// capture, which records the frames after they are written: the record
// is the frame, and the writer keeps its buffer.
func TestSwapNotTakenUnderCapture(t *testing.T) {
	a, b := pipe.New(pipe.Config{})
	defer b.Close()
	var buf bytes.Buffer
	pa, err := New(a, &buf)
	if err != nil {
		t.Fatal(err)
	}
	s := gsotest.Seg{Seq: 1, Ack: 1, Payload: gsotest.Bytes(20*1448, 3)}
	f := s.Frame()
	off := s.TSO(f, 1448)
	in := []link.Packet{{Buf: make([]byte, link.MaxSuperFrame), Swap: true}}
	for round := 0; round < 2; round++ {
		// Round 0 leaves the pipe a spare buffer (the reader's, by
		// exchange), with which round 1 could take the writer's.
		p := []link.Packet{{Buf: make([]byte, link.MaxSuperFrame), Swap: true, Offload: off}}
		p[0].N = copy(p[0].Buf, f)
		mine := &p[0].Buf[0]
		if n, err := pa.WriteBatch(p); n != 1 || err != nil {
			t.Fatal(n, err)
		}
		if &p[0].Buf[0] != mine {
			t.Fatalf("round %d: the link took the writer's buffer under a capture", round)
		}
		if n, err := b.ReadBatch(in); n != 1 || err != nil || !bytes.Equal(in[0].Frame(), f) {
			t.Fatalf("round %d: read %d, %v", round, n, err)
		}
	}
	pa.Close()
	_, recs := readPcap(t, buf.Bytes())
	if len(recs) != 40 {
		t.Fatalf("%d records, want 40", len(recs))
	}
	for i, r := range recs {
		if err := gsotest.Check(r.data, link.Ethernet); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}
