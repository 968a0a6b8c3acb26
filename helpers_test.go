package ustack

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/link/pipe"
)

// testNet is two stacks joined by a pipe: A is 10.0.0.1, B is 10.0.0.2.
type testNet struct {
	A, B       *Stack
	ea, eb     *pipe.Endpoint
	nicA, nicB *NIC
}

var (
	ipA = netip.MustParseAddr("10.0.0.1")
	ipB = netip.MustParseAddr("10.0.0.2")
)

// newTestNet builds the two stacks; both are closed by t.Cleanup.
func newTestNet(t testing.TB, pc pipe.Config, cfg Config) *testNet {
	t.Helper()
	ea, eb := pipe.New(pc)
	n := &testNet{ea: ea, eb: eb}
	var err error
	if n.A, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if n.B, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.A.Close()
		n.B.Close()
	})
	n.nicA, err = n.A.AddNIC(ea, NICConfig{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	n.nicB, err = n.B.AddNIC(eb, NICConfig{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// payload is a deterministic byte stream of a given length: the same seed
// gives the same bytes, so both ends can compute the expected hash.
type payload struct {
	r    *rand.ChaCha8
	left int64
}

func newPayload(seed uint64, n int64) *payload {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return &payload{r: rand.NewChaCha8(key), left: n}
}

func (p *payload) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	p.r.Read(b)
	p.left -= int64(len(b))
	return len(b), nil
}

func payloadSum(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, newPayload(seed, n))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// acceptOne accepts one connection in the background.
func acceptOne(t testing.TB, ln net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

// within fails the test if f does not return within d of real time.
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %v", what, d)
	}
}
