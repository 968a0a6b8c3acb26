package ustack

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link/pipe"
)

// TestHTTPConcurrent serves net/http on stack A and runs 100 concurrent
// requests from stack B, bodies from 0 B to 64 MiB, each checked by
// SHA-256.
func TestHTTPConcurrent(t *testing.T) {
	leaktest.Check(t)
	// A queue deep enough that drops come from congestion, not from a
	// reader starved of CPU on a loaded 2-CPU machine (each drop of a
	// retransmission costs an RTO back-off).
	n := newTestNet(t, pipe.Config{MTU: 1500, Delay: 200 * time.Microsecond, QueueLen: 4096}, Config{})
	ln, err := n.A.Listen("tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
		seed, _ := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.Copy(w, newPayload(seed, size))
	})}
	go srv.Serve(ln)
	defer srv.Close()

	tr := &http.Transport{DialContext: n.B.DialContext, MaxConnsPerHost: 0, MaxIdleConnsPerHost: 100}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	sizes := []int64{0, 1, 1460, 1461, 4096, 65535, 65536, 100_000, 1 << 20, 3 << 20}
	const requests = 100
	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for i := 0; i < requests; i++ {
		size := sizes[i%len(sizes)]
		switch i {
		case 7:
			size = 64 << 20
		case 8, 9:
			size = 16 << 20
		}
		wg.Add(1)
		go func(i int, size int64) {
			defer wg.Done()
			resp, err := client.Get(fmt.Sprintf("http://10.0.0.1/?size=%d&seed=%d", size, i))
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			got, err := io.Copy(h, resp.Body)
			if err != nil {
				errs <- fmt.Errorf("request %d: body after %d bytes: %w", i, got, err)
				return
			}
			if got != size || !bytes.Equal(h.Sum(nil), sumSlice(payloadSum(uint64(i), size))) {
				errs <- fmt.Errorf("request %d: %d bytes (want %d) or SHA-256 mismatch", i, got, size)
			}
		}(i, size)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := n.B.Stats()
	sa, sb := n.ea.Stats(), n.eb.Stats()
	ss := n.A.Stats()
	t.Logf("client TCP: in %d out %d; server: out %d retrans %d timeouts %d recoveries %d; link drops %d", st.TCP.InSegs, st.TCP.OutSegs, ss.TCP.OutSegs, ss.TCP.RetransSegs, ss.TCP.Timeouts, ss.TCP.Recoveries, sa.Dropped()+sb.Dropped())
}

func sumSlice(s [32]byte) []byte { return s[:] }

// selfSigned returns a TLS certificate for 10.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ustack test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(10, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLS runs crypto/tls over a TCPConn, both ways, with a verified
// certificate.
func TestTLS(t *testing.T) {
	leaktest.Check(t)
	n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
	cert := selfSigned(t)
	ln, err := n.A.Listen("tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	defer tln.Close()
	const size = 2 << 20
	go func() {
		c, err := tln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		// Echo everything back.
		if _, err := io.Copy(c, io.LimitReader(c, size)); err != nil {
			t.Error("server:", err)
		}
	}()
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool.AddCert(leaf)
	raw, err := n.B.Dial("tcp", "10.0.0.1:443")
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "10.0.0.1"})
	defer c.Close()
	go func() {
		io.Copy(c, newPayload(42, size))
	}()
	h := sha256.New()
	if got, err := io.Copy(h, io.LimitReader(c, size)); err != nil || got != size {
		t.Fatalf("echo: %d bytes, %v", got, err)
	}
	if !bytes.Equal(h.Sum(nil), sumSlice(payloadSum(42, size))) {
		t.Fatal("TLS echo: SHA-256 mismatch")
	}
	if !c.ConnectionState().HandshakeComplete {
		t.Fatal("handshake not complete")
	}
}

// TestHalfClose: the client sends a request and shuts down writing; the
// server reads to EOF, then answers and closes; the client reads the
// answer to EOF (RFC 9293 §3.6: half-close).
func TestHalfClose(t *testing.T) {
	leaktest.Check(t)
	n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
	ln, err := n.A.Listen("tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := acceptOne(t, ln)
	c, err := n.B.Dial("tcp", "10.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-accepted
	defer srv.Close()
	req := bytes.Repeat([]byte("request "), 100_000)
	go func() {
		c.Write(req)
		c.(*TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(srv)
	if err != nil || !bytes.Equal(got, req) {
		t.Fatalf("server read %d bytes, %v", len(got), err)
	}
	// The server can still write after the client's FIN. The client
	// reads meanwhile: 450 KB is more than the buffers hold before the
	// application reads (auto-tuning grows them with what it reads).
	resp := bytes.Repeat([]byte("response "), 50_000)
	werr := make(chan error, 1)
	go func() {
		_, err := srv.Write(resp)
		srv.Close()
		werr <- err
	}()
	got, err = io.ReadAll(c)
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if err != nil || !bytes.Equal(got, resp) {
		t.Fatalf("client read %d bytes, %v", len(got), err)
	}
	// Writing after CloseWrite is a broken pipe.
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write after CloseWrite: %v, want EPIPE", err)
	}
}

// TestSlowReader: the receiver stops reading until its window is zero;
// the sender probes the zero window (RFC 9293 §3.8.6.1); when the reader
// resumes, every byte arrives intact. In a synctest bubble the pause costs
// no wall time.
func TestSlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: 5 * time.Millisecond}, Config{})
		ln, err := n.A.Listen("tcp", ":9")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		// More than the 4 MiB window announced at the handshake, which a
		// later SetReadBuffer cannot shrink (RFC 9293 §3.8.6).
		const size = 16 << 20
		go func() {
			c, err := ln.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			io.Copy(c, newPayload(7, size))
		}()
		c, err := n.B.Dial("tcp", "10.0.0.1:9")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*TCPConn).SetReadBuffer(64 << 10)
		// Not reading for a minute: the window closes and the sender
		// probes it.
		time.Sleep(time.Minute)
		if w := c.(*TCPConn).Info().RcvWnd; w != 0 {
			t.Errorf("receive window after a minute without reading: %d, want 0", w)
		}
		probes := n.A.Stats().TCP.ZeroWindowProbes
		if probes == 0 {
			t.Errorf("no zero-window probes sent")
		}
		h := sha256.New()
		if got, err := io.Copy(h, c); err != nil || got != size {
			t.Fatalf("read %d bytes, %v", got, err)
		}
		if !bytes.Equal(h.Sum(nil), sumSlice(payloadSum(7, size))) {
			t.Fatal("SHA-256 mismatch")
		}
		t.Logf("zero-window probes: %d", probes)
	})
}

// TestKeepAliveDeadPeer: with keep-alive on, a connection whose peer
// disappears (the link goes down, no RST) ends with ETIMEDOUT after the
// probes (RFC 1122 §4.2.3.6).
func TestKeepAliveDeadPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{KeepAlive: -1})
		ln, _ := n.A.Listen("tcp", ":9")
		defer ln.Close()
		accepted := acceptOne(t, ln)
		c, err := n.B.Dial("tcp", "10.0.0.1:9")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		srv := <-accepted
		defer srv.Close()
		tc := c.(*TCPConn)
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 2 * time.Second, Count: 3})
		n.ea.SetUp(false) // the peer vanishes
		start := time.Now()
		_, err = c.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("read: %v, want ETIMEDOUT", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("read error %v is not a net.Error timeout", err)
		}
		// 10 s idle (counted from the last segment received, the
		// handshake's, a millisecond before start), then 3 probes 2 s
		// apart, then 2 s more.
		if el := time.Since(start); el < 16*time.Second-5*time.Millisecond || el > 16*time.Second {
			t.Errorf("dead peer detected after %v, want 16 s", el)
		}
		if p := n.B.Stats().TCP.KeepAliveProbes; p != 3 {
			t.Errorf("keep-alive probes: %d, want 3", p)
		}
	})
}

// TestErrors produces every error of the API and checks it with errors.Is,
// the way callers of package net do.
func TestErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{}
		cfg.TCP.SynRetries = 2
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, cfg)

		// ECONNREFUSED: nobody listens on the port.
		_, err := n.B.Dial("tcp", "10.0.0.1:1")
		checkErr(t, "dial closed port", err, syscall.ECONNREFUSED)

		// EADDRINUSE: the port already has a listener.
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.A.Listen("tcp", "10.0.0.1:80")
		checkErr(t, "listen twice", err, syscall.EADDRINUSE)

		// ECONNRESET: the peer aborts (SO_LINGER 0).
		accepted := acceptOne(t, ln)
		c, err := n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		srv := (<-accepted).(*TCPConn)
		srv.SetLinger(0)
		srv.Close()
		_, err = c.Read(make([]byte, 10))
		checkErr(t, "read after peer reset", err, syscall.ECONNRESET)
		c.Close()

		// os.ErrDeadlineExceeded: a read deadline passes.
		accepted = acceptOne(t, ln)
		c, err = n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		srv = (<-accepted).(*TCPConn)
		c.SetReadDeadline(time.Now().Add(time.Second))
		start := time.Now()
		_, err = c.Read(make([]byte, 10))
		checkErr(t, "read past deadline", err, os.ErrDeadlineExceeded)
		if el := time.Since(start); el != time.Second {
			t.Errorf("deadline fired after %v, want 1s", el)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%v is not a timeout", err)
		}
		// Clearing the deadline makes the conn usable again.
		c.SetReadDeadline(time.Time{})
		srv.Write([]byte("hello"))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("read after clearing the deadline: %q %v", buf, err)
		}
		// A write deadline in the past fails at once.
		c.SetWriteDeadline(time.Now().Add(-time.Second))
		_, err = c.Write([]byte("x"))
		checkErr(t, "write past deadline", err, os.ErrDeadlineExceeded)

		// net.ErrClosed: using a closed conn and a closed listener.
		c.Close()
		_, err = c.Read(buf)
		checkErr(t, "read closed conn", err, net.ErrClosed)
		_, err = c.Write(buf)
		checkErr(t, "write closed conn", err, net.ErrClosed)
		checkErr(t, "close twice", c.Close(), net.ErrClosed)
		srv.Close()
		ln.Close()
		_, err = ln.Accept()
		checkErr(t, "accept closed listener", err, net.ErrClosed)

		// ETIMEDOUT: SYNs into a black hole (2 retries: 1+2+4 s).
		n.eb.SetUp(false)
		start = time.Now()
		_, err = n.B.Dial("tcp", "10.0.0.1:80")
		checkErr(t, "dial black hole", err, syscall.ETIMEDOUT)
		if el := time.Since(start); el != 7*time.Second {
			t.Errorf("SYN retries took %v, want 7s", el)
		}
		n.eb.SetUp(true)

		// EHOSTUNREACH: an on-link address nobody answers ARP for.
		_, err = n.B.Dial("tcp", "10.0.0.99:80")
		checkErr(t, "dial unresolvable host", err, syscall.EHOSTUNREACH)

		// ENETUNREACH: no route at all.
		_, err = n.B.Dial("tcp", "192.0.2.1:80")
		checkErr(t, "dial without route", err, syscall.ENETUNREACH)

		// The context: a cancelled dial.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		n.eb.SetUp(false)
		_, err = n.B.DialContext(ctx, "tcp", "10.0.0.1:80")
		checkErr(t, "dial with expired context", err, os.ErrDeadlineExceeded)
		n.eb.SetUp(true)
	})
}

func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want errors.Is(err, %v)", what, err, want)
		return
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("%s: %T is not a *net.OpError", what, err)
	}
}

// TestCloseUnblocks: Close of a conn unblocks its Read and Write; Close
// of a listener unblocks Accept; Close of the stack unblocks everything
// and leaves no goroutine.
func TestCloseUnblocks(t *testing.T) {
	leaktest.Check(t)
	n := newTestNet(t, pipe.Config{}, Config{})
	ln, _ := n.A.Listen("tcp", ":80")
	accepted := acceptOne(t, ln)
	c, err := n.B.Dial("tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	// A blocked Read.
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.Close()
	within(t, 5*time.Second, "Read after Close", func() { checkErr(t, "blocked read", <-errc, net.ErrClosed) })
	srv.Close()
	// A blocked Write: the peer does not read, the windows fill.
	accepted = acceptOne(t, ln)
	cw, err := n.B.Dial("tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Close()
	srv = <-accepted
	cw.(*TCPConn).SetReadBuffer(8192)
	go func() {
		_, err := srv.Write(make([]byte, 64<<20))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	srv.Close()
	within(t, 5*time.Second, "Write after Close", func() { checkErr(t, "blocked write", <-errc, net.ErrClosed) })
	// A blocked Accept.
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	ln.Close()
	within(t, 5*time.Second, "Accept after Close", func() { checkErr(t, "blocked accept", <-errc, net.ErrClosed) })

	// Stack.Close unblocks a Read on a live connection.
	ln2, _ := n.A.Listen("tcp", ":81")
	accepted = acceptOne(t, ln2)
	c2, err := n.B.Dial("tcp", "10.0.0.1:81")
	if err != nil {
		t.Fatal(err)
	}
	<-accepted
	go func() {
		_, err := c2.Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	n.B.Close()
	within(t, 5*time.Second, "Read after Stack.Close", func() { checkErr(t, "read on closed stack", <-errc, net.ErrClosed) })
	n.A.Close()
}

// TestUDP exchanges datagrams, including an 8 KiB one that is fragmented
// and reassembled, and checks ICMP port unreachable for a closed port.
func TestUDP(t *testing.T) {
	leaktest.Check(t)
	n := newTestNet(t, pipe.Config{}, Config{})
	srv, err := n.A.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			k, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:k], from)
		}
	}()
	c, err := n.B.Dial("udp", "10.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int{0, 1, 1472, 1473, 8192, 65507} {
		msg := make([]byte, size)
		newPayload(uint64(size), int64(size)).Read(msg)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("write %d: %v", size, err)
		}
		got := make([]byte, 70000)
		k, err := c.Read(got)
		if err != nil || !bytes.Equal(got[:k], msg) {
			t.Fatalf("echo of %d bytes: got %d, %v", size, k, err)
		}
	}
	if _, err := c.Write(make([]byte, 65508)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("oversized datagram: %v, want EMSGSIZE", err)
	}
	st := n.A.Stats()
	if st.Net.ReasmOKs == 0 {
		t.Errorf("no datagram was reassembled: %+v", st.Net)
	}
	// A closed port answers with ICMP port unreachable.
	before := n.A.Stats().Net.OutDestUnreachs
	c2, _ := n.B.Dial("udp", "10.0.0.1:54")
	c2.Write([]byte("anyone?"))
	c2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for n.A.Stats().Net.OutDestUnreachs == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n.A.Stats().Net.OutDestUnreachs == before || n.A.Stats().UDP.NoPorts == 0 {
		t.Errorf("no ICMP port unreachable for a closed port")
	}
}
