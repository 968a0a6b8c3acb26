package pcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
)

// record is one packet record of a pcap file.
type record struct {
	ts   time.Time
	data []byte
	orig int
}

// readPcap is a minimal reader of the nanosecond little-endian format this
// package writes; it fails the test on anything malformed.
func readPcap(t *testing.T, b []byte) (linktype uint32, recs []record) {
	t.Helper()
	if len(b) < 24 {
		t.Fatalf("file of %d bytes has no header", len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != MagicNanoseconds {
		t.Fatalf("magic %#x", m)
	}
	if le.Uint16(b[4:]) != 2 || le.Uint16(b[6:]) != 4 || le.Uint32(b[16:]) != SnapLen {
		t.Fatalf("header % x", b[:24])
	}
	linktype = le.Uint32(b[20:])
	b = b[24:]
	for len(b) > 0 {
		if len(b) < 16 {
			t.Fatalf("truncated record header (%d bytes)", len(b))
		}
		sec, nsec, incl, orig := le.Uint32(b), le.Uint32(b[4:]), int(le.Uint32(b[8:])), int(le.Uint32(b[12:]))
		if nsec >= 1e9 || incl > SnapLen || incl > orig || len(b) < 16+incl {
			t.Fatalf("bad record header % x (%d bytes left)", b[:16], len(b))
		}
		recs = append(recs, record{time.Unix(int64(sec), int64(nsec)), b[16 : 16+incl], orig})
		b = b[16+incl:]
	}
	return linktype, recs
}

// udpPacket builds an IPv4/UDP packet from 10.0.0.1:1000+seq to
// 10.0.0.2:9999 with payload bytes, preceded by an Ethernet header if eth.
func udpPacket(eth bool, seq uint16, payload int) []byte {
	var b []byte
	if eth {
		b = append(b, 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00)
	}
	ip := len(b)
	total := 20 + 8 + payload
	b = append(b, 0x45, 0, byte(total>>8), byte(total), byte(seq>>8), byte(seq), 0x40, 0, 64, 17, 0, 0,
		10, 0, 0, 1, 10, 0, 0, 2)
	var sum uint32
	for i := ip; i < ip+20; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[ip+10:], ^uint16(sum))
	sport := 1000 + seq
	b = append(b, byte(sport>>8), byte(sport), 0x27, 0x0f, byte((8+payload)>>8), byte(8+payload), 0, 0)
	for i := range payload {
		b = append(b, byte(i))
	}
	return b
}

func TestWriterFormat(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 123456789)
	big := make([]byte, SnapLen+100)
	big[SnapLen-1] = 7
	for i, p := range [][]byte{udpPacket(true, 1, 10), {}, big} {
		if err := w.WritePacket(ts.Add(time.Duration(i)), p); err != nil {
			t.Fatal(err)
		}
	}
	w.WritePacket(time.Unix(-5, 0), []byte{1}) // before 1970
	lt, recs := readPcap(t, buf.Bytes())
	if lt != 1 || len(recs) != 4 {
		t.Fatalf("linktype %d, %d records", lt, len(recs))
	}
	if !recs[0].ts.Equal(ts) || !bytes.Equal(recs[0].data, udpPacket(true, 1, 10)) || recs[0].orig != 52 {
		t.Errorf("record 0: %v %x", recs[0].ts, recs[0].data)
	}
	if len(recs[1].data) != 0 || !recs[1].ts.Equal(ts.Add(1)) {
		t.Errorf("record 1: %+v", recs[1])
	}
	if len(recs[2].data) != SnapLen || recs[2].orig != SnapLen+100 || recs[2].data[SnapLen-1] != 7 {
		t.Errorf("record 2: %d of %d bytes", len(recs[2].data), recs[2].orig)
	}
	if recs[3].ts.Unix() != 0 {
		t.Errorf("record 3 time %v", recs[3].ts)
	}
}

// failWriter fails every write after the first ok bytes.
type failWriter struct{ ok int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(b []byte) (int, error) {
	if len(b) > f.ok {
		n := f.ok
		f.ok = 0
		return n, errDisk
	}
	f.ok -= len(b)
	return len(b), nil
}

func TestWriterErrors(t *testing.T) {
	if _, err := NewWriter(nil, 1); err == nil {
		t.Error("NewWriter(nil) succeeded")
	}
	if _, err := NewWriter(&failWriter{ok: 10}, 1); !errors.Is(err, errDisk) {
		t.Errorf("NewWriter on a failing writer: %v", err)
	}
	w, _ := NewWriter(&failWriter{ok: 24 + 20}, 1)
	if err := w.WritePacket(time.Now(), make([]byte, 100)); !errors.Is(err, errDisk) {
		t.Errorf("WritePacket: %v", err)
	}
	if err := w.WritePacket(time.Now(), nil); !errors.Is(err, errDisk) {
		t.Errorf("WritePacket after an error: %v", err)
	}
	w, _ = NewWriter(&failWriter{ok: 24 + 10}, 1)
	if err := w.WritePacket(time.Now(), make([]byte, 100)); !errors.Is(err, errDisk) {
		t.Errorf("WritePacket (header): %v", err)
	}
}

func pkts(frames ...[]byte) []link.Packet {
	p := make([]link.Packet, len(frames))
	for i, f := range frames {
		p[i] = link.Packet{Buf: f, N: len(f)}
	}
	return p
}

func readBufs(n int) []link.Packet {
	p := make([]link.Packet, n)
	for i := range p {
		p[i].Buf = make([]byte, 2048)
	}
	return p
}

func TestEndpointCapturesBothWays(t *testing.T) {
	leaktest.Check(t)
	a, b := pipe.New(pipe.Config{})
	var buf bytes.Buffer
	pa, err := New(a, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if pa.MTU() != 1500 || pa.Medium() != link.Ethernet || pa.BatchSize() != 64 || pa.Caps() != a.Caps() || pa.Caps() == 0 {
		t.Error("pcap.Endpoint does not pass the wrapped endpoint's properties")
	}
	before := time.Now()
	if n, err := pa.WriteBatch(pkts(udpPacket(true, 1, 10), udpPacket(true, 2, 20))); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	b.WriteBatch(pkts(udpPacket(true, 3, 30)))
	if n, err := pa.ReadBatch(readBufs(4)); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	// A refused frame is not captured.
	if n, err := pa.WriteBatch(pkts(make([]byte, 3000))); n != 0 || err == nil {
		t.Fatal(n, err)
	}
	// Flushed after every batch: the records are there before Close.
	_, recs := readPcap(t, buf.Bytes())
	if len(recs) != 3 {
		t.Fatalf("%d records before Close", len(recs))
	}
	for i, r := range recs {
		if want := udpPacket(true, uint16(i+1), 10*(i+1)); !bytes.Equal(r.data, want) {
			t.Errorf("record %d: %x, want %x", i, r.data, want)
		}
		if r.ts.Before(before.Truncate(time.Microsecond)) || r.ts.After(time.Now()) {
			t.Errorf("record %d time %v", i, r.ts)
		}
	}
	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pa.ReadBatch(readBufs(1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch after Close: %v", err)
	}
	if err := pa.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

func TestConcurrentCapture(t *testing.T) {
	leaktest.Check(t)
	a, b := pipe.New(pipe.Config{QueueLen: 1 << 14})
	path := filepath.Join(t.TempDir(), "c.pcap")
	pa, err := Create(a, path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var wg sync.WaitGroup
	wg.Go(func() { // pa writes
		for i := range n {
			pa.WriteBatch(pkts(udpPacket(true, uint16(i), i%200)))
		}
	})
	wg.Go(func() { // b writes, pa reads
		for i := range n {
			b.WriteBatch(pkts(udpPacket(true, uint16(i), 300+i%200)))
		}
	})
	wg.Go(func() {
		in := readBufs(16)
		for got := 0; got < n; {
			k, err := pa.ReadBatch(in)
			if err != nil {
				t.Error(err)
				return
			}
			got += k
		}
	})
	wg.Wait()
	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := readPcap(t, data)
	if len(recs) != 2*n {
		t.Fatalf("%d records, want %d", len(recs), 2*n)
	}
	for i, r := range recs {
		seq := binary.BigEndian.Uint16(r.data[14+20:]) - 1000
		payload := len(r.data) - 14 - 28
		if want := udpPacket(true, seq, payload); !bytes.Equal(r.data, want) {
			t.Fatalf("record %d corrupt", i)
		}
	}
}

func TestCaptureErrorDoesNotBreakLink(t *testing.T) {
	a, b := pipe.New(pipe.Config{})
	pa, err := New(a, &failWriter{ok: 24 + 16 + 10})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if n, err := pa.WriteBatch(pkts(udpPacket(true, 1, 100))); n != 1 || err != nil {
			t.Fatal(n, err)
		}
	}
	if n, _ := b.ReadBatch(readBufs(4)); n != 3 {
		t.Errorf("read %d frames", n)
	}
	if !errors.Is(pa.Err(), errDisk) {
		t.Errorf("Err() = %v", pa.Err())
	}
	if err := pa.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close() = %v", err)
	}
	if _, err := New(a, &failWriter{}); !errors.Is(err, errDisk) {
		t.Errorf("New on a failing writer: %v", err)
	}
	if _, err := Create(a, filepath.Join(t.TempDir(), "no", "such", "dir")); err == nil {
		t.Error("Create in a missing directory succeeded")
	}
}

func TestLinkType(t *testing.T) {
	if lt, _ := LinkType(link.Ethernet); lt != 1 {
		t.Error(lt)
	}
	if lt, _ := LinkType(link.IP); lt != 101 {
		t.Error(lt)
	}
	if _, err := LinkType(0); err == nil {
		t.Error("medium 0 has a link type")
	}
	a, _ := pipe.New(pipe.Config{Medium: 9})
	defer a.Close()
	if _, err := New(a, &bytes.Buffer{}); err == nil {
		t.Error("New accepted an unknown medium")
	}
}

// captureFile writes frames of medium m through a pcap.Endpoint into a file
// and returns its path and the first frame's timestamp as recorded.
func captureFile(t *testing.T, m link.Medium, count int) (string, time.Time) {
	t.Helper()
	a, b := pipe.New(pipe.Config{Medium: m})
	defer b.Close()
	path := filepath.Join(t.TempDir(), "cap.pcap")
	pa, err := Create(a, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range count {
		pa.WriteBatch(pkts(udpPacket(m == link.Ethernet, uint16(i), 18)))
	}
	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	_, recs := readPcap(t, data)
	return path, recs[0].ts
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (apt-get install %s; make test installs it)", name, name)
		if os.Getenv("USTACK_TEST_STRICT") != "" {
			t.Fatal(msg + " (USTACK_TEST_STRICT is set: every test must run here)")
		}
		t.Skip(msg)
	}
	return p
}

func TestTcpdumpReads(t *testing.T) {
	tcpdump := lookTool(t, "tcpdump")
	for _, m := range []link.Medium{link.Ethernet, link.IP} {
		path, ts0 := captureFile(t, m, 5)
		out, err := exec.Command(tcpdump, "-nn", "-tt", "--time-stamp-precision=nano", "-r", path).CombinedOutput()
		if err != nil {
			t.Fatalf("tcpdump: %v\n%s", err, out)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.Contains(l, " IP ") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 5 {
			t.Fatalf("%v: tcpdump printed:\n%s", m, out)
		}
		want := fmt.Sprintf("%d.%09d IP 10.0.0.1.1000 > 10.0.0.2.9999: UDP, length 18", ts0.Unix(), ts0.Nanosecond())
		if lines[0] != want || !strings.Contains(lines[4], "10.0.0.1.1004 > 10.0.0.2.9999") {
			t.Errorf("%v: tcpdump printed %q, want %q", m, lines[0], want)
		}
		t.Logf("%v: %s", m, lines[0])
	}
}

func TestTsharkReads(t *testing.T) {
	tshark := lookTool(t, "tshark")
	for _, m := range []link.Medium{link.Ethernet, link.IP} {
		path, _ := captureFile(t, m, 3)
		cmd := exec.Command(tshark, "-n", "-r", path, "-T", "fields", "-e", "ip.src", "-e", "udp.srcport", "-e", "udp.length")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no profile of the user's
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark: %v\n%s", err, stderr.String())
		}
		want := "10.0.0.1\t1000\t26\n10.0.0.1\t1001\t26\n10.0.0.1\t1002\t26\n"
		if string(out) != want {
			t.Errorf("%v: tshark printed %q, want %q (stderr %s)", m, out, want, stderr.String())
		}
	}
}

// echoLink is a pipe end whose WriteBatch returns only after the frames
// it wrote have been answered and the answer read from it (by another
// goroutine): a slow write system call, during which the peer replies.
type echoLink struct {
	*pipe.Endpoint
	read chan struct{} // a ReadBatch returned frames
}

func (l *echoLink) WriteBatch(pkts []link.Packet) (int, error) {
	n, err := l.Endpoint.WriteBatch(pkts)
	select {
	case <-l.read:
		time.Sleep(20 * time.Millisecond) // room for the reader to record the reply
	case <-time.After(2 * time.Second):
	}
	return n, err
}

func (l *echoLink) ReadBatch(pkts []link.Packet) (int, error) {
	n, err := l.Endpoint.ReadBatch(pkts)
	if n > 0 {
		l.read <- struct{}{}
	}
	return n, err
}

// TestCausalOrder: a reply read while the write of the frame it answers
// is still in progress is recorded after that frame, with a later time,
// so that a capture never shows an answer before its question (tshark
// took such segments for spurious retransmissions).
func TestCausalOrder(t *testing.T) {
	leaktest.Check(t)
	a, b := pipe.New(pipe.Config{})
	defer b.Close()
	el := &echoLink{Endpoint: a, read: make(chan struct{}, 1)}
	var buf bytes.Buffer
	pa, err := New(el, &buf)
	if err != nil {
		t.Fatal(err)
	}
	// The peer answers every frame at once.
	go func() {
		in := readBufs(4)
		for {
			n, err := b.ReadBatch(in)
			if err != nil {
				return
			}
			for range n {
				b.WriteBatch(pkts(udpPacket(true, 2, 20)))
			}
		}
	}()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		pa.ReadBatch(readBufs(4))
	}()
	if n, err := pa.WriteBatch(pkts(udpPacket(true, 1, 10))); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	<-readDone
	pa.Close()
	_, recs := readPcap(t, buf.Bytes())
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if !bytes.Equal(recs[0].data, udpPacket(true, 1, 10)) || !bytes.Equal(recs[1].data, udpPacket(true, 2, 20)) {
		t.Error("the reply was recorded before the frame it answers")
	}
	if recs[1].ts.Before(recs[0].ts) {
		t.Errorf("times go backwards: %v then %v", recs[0].ts, recs[1].ts)
	}
}
