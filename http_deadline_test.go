package ustack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link/pipe"
)

// What programs do with deadlines set while a call is blocked (issue 8
// part 1): net/http's server stops its background read after every
// response with SetReadDeadline(aLongTimeAgo) and waits for it, so
// IdleTimeout, ReadTimeout and Shutdown depend on that; proxies cancel a
// blocked copy with SetReadDeadline(time.Now()). All in synctest bubbles:
// the times asserted are virtual and exact.

// getOnce sends a GET on c and reads the whole response.
func getOnce(t *testing.T, c net.Conn, br *bufio.Reader, path string) {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: ustack\r\n\r\n", path); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s, %v", path, resp.Status, err)
	}
}

// TestHTTPIdleTimeout: a net/http server on a ustack listener closes an
// idle keep-alive connection when IdleTimeout (or, without it,
// ReadTimeout) has passed since the last response — not earlier, and
// within a millisecond's link delay of it — while a connection that
// sends its next request in time stays open.
func TestHTTPIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, tc := range []struct {
		name      string
		idle, rto time.Duration
	}{
		{"IdleTimeout", idle, 0},
		{"ReadTimeout", 0, idle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
				ln, err := n.A.Listen("tcp", ":80")
				if err != nil {
					t.Fatal(err)
				}
				// The handler takes its time, as real ones do, so the
				// server's background read is blocked by the time the
				// server stops it after the response.
				srv := &http.Server{
					Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						time.Sleep(10 * time.Millisecond)
						io.WriteString(w, "hello")
					}),
					IdleTimeout: tc.idle,
					ReadTimeout: tc.rto,
				}
				go srv.Serve(ln)
				defer srv.Close()

				// A connection idle after its first response, and one
				// whose requests come idle/2 apart before it goes idle.
				for _, requests := range []int{1, 5} {
					c, err := n.B.Dial("tcp", "10.0.0.1:80")
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					br := bufio.NewReader(c)
					for i := range requests {
						if i > 0 {
							time.Sleep(idle / 2)
						}
						getOnce(t, c, br, "/")
					}
					last := time.Now()
					c.SetReadDeadline(last.Add(10 * time.Second))
					_, err = br.ReadByte()
					el := time.Since(last)
					if err != io.EOF {
						t.Fatalf("idle connection after %d requests, %v later: %v, want EOF (the server's FIN)", requests, el, err)
					}
					// The server arms its timer when it has written the
					// response; its FIN takes one link delay to arrive.
					if el < idle || el > idle+5*time.Millisecond {
						t.Errorf("after %d requests, the server closed the idle connection %v after the last response, want %v (+ a link delay)", requests, el, idle)
					}
				}
			})
		})
	}
}

// TestHTTPShutdown: Server.Shutdown closes idle keep-alive connections at
// once and returns as soon as the active request has been answered.
func TestHTTPShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		const work = 300 * time.Millisecond
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(10 * time.Millisecond) // the background read blocks meanwhile
			if r.URL.Path == "/slow" {
				time.Sleep(work)
			}
			io.WriteString(w, "done")
		})}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()

		// Two idle keep-alive connections, each after a request.
		var idle []net.Conn
		for range 2 {
			c, err := n.B.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			getOnce(t, c, bufio.NewReader(c), "/")
			idle = append(idle, c)
		}
		// One active connection: a keep-alive that served a request
		// and now waits for a slow one.
		active, err := n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer active.Close()
		abr := bufio.NewReader(active)
		getOnce(t, active, abr, "/")
		slow := make(chan struct{})
		go func() {
			defer close(slow)
			getOnce(t, active, abr, "/slow")
		}()
		time.Sleep(100 * time.Millisecond)

		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown after %v: %v", time.Since(start), err)
		}
		// The slow request ends 200 ms after Shutdown began; Shutdown
		// polls its connections at most every 500 ms.
		if el := time.Since(start); el < work-100*time.Millisecond || el > work+500*time.Millisecond {
			t.Errorf("Shutdown returned after %v, want after the active request (%v) and within its poll interval", el, work-100*time.Millisecond)
		}
		<-slow
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v, want ErrServerClosed", err)
		}
		// Every connection was closed by the server.
		for i, c := range append(idle, active) {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("connection %d after Shutdown: %v, want EOF", i, err)
			}
		}
	})
}

// TestReverseProxyCancelByDeadline: an httputil.ReverseProxy forwarding
// an upload the client has stopped sending is cancelled by
// SetReadDeadline(time.Now()) on the request (http.ResponseController):
// the proxy's blocked read of the body fails, it answers 502, and the
// backend sees the body cut short.
func TestReverseProxyCancelByDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		backLn, err := n.A.Listen("tcp", "10.0.0.1:8080")
		if err != nil {
			t.Fatal(err)
		}
		gotSome := make(chan struct{})
		backendErr := make(chan error, 1)
		backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 100)
			_, err := io.ReadFull(r.Body, buf)
			close(gotSome)
			if err == nil {
				_, err = io.Copy(io.Discard, r.Body)
			}
			backendErr <- err
		})}
		go backend.Serve(backLn)
		defer backend.Close()

		target, _ := url.Parse("http://10.0.0.1:8080")
		tr := &http.Transport{DialContext: n.A.DialContext}
		defer tr.CloseIdleConnections()
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.Transport = tr
		proxy.ErrorLog = log.New(io.Discard, "", 0) // the 502 is checked below
		cancelNow := make(chan struct{})
		proxyDone := make(chan time.Time, 1)
		front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			go func() {
				select {
				case <-cancelNow:
					if err := rc.SetReadDeadline(time.Now()); err != nil {
						t.Errorf("SetReadDeadline: %v", err)
					}
				case <-r.Context().Done():
				}
			}()
			proxy.ServeHTTP(w, r)
			proxyDone <- time.Now()
		})}
		frontLn, err := n.A.Listen("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		go front.Serve(frontLn)
		defer front.Close()

		// The client announces a megabyte, sends 100 bytes and stalls.
		c, err := n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: ustack\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat("x", 100))
		<-gotSome
		time.Sleep(time.Second)
		select {
		case <-proxyDone:
			t.Fatal("the proxy returned before it was cancelled")
		default:
		}
		start := time.Now()
		close(cancelNow)
		select {
		case at := <-proxyDone:
			if el := at.Sub(start); el > 10*time.Millisecond {
				t.Errorf("the proxy returned %v after SetReadDeadline(now)", el)
			}
		case <-time.After(time.Minute):
			t.Fatal("the proxy still waits for the body a minute after SetReadDeadline(now)")
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("client got %s, want 502 from the proxy", resp.Status)
		}
		if err := <-backendErr; err == nil {
			t.Error("the backend read the whole body; want it cut short")
		}
		// The servers close the connections whose bodies were left
		// unread after a 500 ms linger (net/http's RST avoidance); the
		// bubble must not end before their goroutines do.
		front.Close()
		backend.Close()
		time.Sleep(time.Second)
	})
}

// TestCopyCancelByDeadline: io.Copy from a connection (one direction of
// a TCP proxy) is cancelled by SetReadDeadline(time.Now()) from another
// goroutine; it returns what it copied and a timeout, and the connection
// goes on working once the deadline is cleared.
func TestCopyCancelByDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		c, srv := connPair(t, n)
		type res struct {
			n   int64
			err error
		}
		var got bytes.Buffer
		done := make(chan res, 1)
		go func() {
			k, err := io.Copy(&got, srv)
			done <- res{k, err}
		}()
		c.Write([]byte("first part"))
		time.Sleep(time.Second)
		srv.SetReadDeadline(time.Now())
		var r res
		select {
		case r = <-done:
		case <-time.After(time.Minute):
			t.Fatal("io.Copy still blocked a minute after SetReadDeadline(now)")
		}
		if !errors.Is(r.err, os.ErrDeadlineExceeded) || r.n != 10 || got.String() != "first part" {
			t.Fatalf("io.Copy: %d bytes %q, %v; want the 10 bytes sent and a timeout", r.n, got.String(), r.err)
		}
		srv.SetReadDeadline(time.Time{})
		c.Write([]byte("more"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "more" {
			t.Fatalf("read after clearing the deadline: %q, %v", buf, err)
		}
	})
}

// BenchmarkHTTPIdleTimeout measures how long after its last response a
// net/http server with IdleTimeout = 200 ms closes an idle keep-alive
// connection on a ustack listener, in real time: each iteration dials,
// makes one request and waits (at most 2 s) for the server's FIN. It
// reports the median and the largest delay, and how many connections
// were still open after 2 s (the server never noticed they were idle).
// The handler answers at once, or after 1 ms of work (by then the
// server's background read is blocked, which is where a deadline set
// while a call waits matters).
//
//	go test -run '^$' -bench HTTPIdleTimeout -benchtime 50x .
func BenchmarkHTTPIdleTimeout(b *testing.B) {
	for _, work := range []time.Duration{0, time.Millisecond} {
		b.Run("handler="+work.String(), func(b *testing.B) { benchIdleTimeout(b, work) })
	}
}

func benchIdleTimeout(b *testing.B, work time.Duration) {
	const idle, wait = 200 * time.Millisecond, 2 * time.Second
	n := newTestNet(b, pipe.Config{QueueLen: 4096}, Config{})
	ln, err := n.A.Listen("tcp", ":80")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if work > 0 {
				time.Sleep(work)
			}
			io.WriteString(w, "hello")
		}),
		IdleTimeout: idle,
	}
	go srv.Serve(ln)
	defer srv.Close()
	var delays []time.Duration
	open := 0
	for range b.N { // not b.Loop: go1.26.8's compiler crashed on this body under it
		c, err := n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReader(c)
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: ustack\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.ReadAll(resp.Body)
		last := time.Now()
		c.SetReadDeadline(last.Add(wait))
		_, err = br.ReadByte()
		switch {
		case err == io.EOF:
			delays = append(delays, time.Since(last))
		case errors.Is(err, os.ErrDeadlineExceeded):
			open++
		default:
			b.Fatalf("waiting for the server's FIN: %v", err)
		}
		c.Close()
	}
	b.ReportMetric(float64(open), "still-open")
	if len(delays) > 0 {
		slices.Sort(delays)
		b.ReportMetric(float64(delays[len(delays)/2])/1e6, "ms-to-FIN-median")
		b.ReportMetric(float64(delays[len(delays)-1])/1e6, "ms-to-FIN-max")
	}
}
