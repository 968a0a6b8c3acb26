package ustack_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link/pipe"
)

// twoStacks returns a server stack (10.0.0.1) and a client stack
// (10.0.0.2) joined by an in-memory cable.
func twoStacks() (server, client *ustack.Stack) {
	a, b := pipe.New(pipe.Config{MTU: 1500})
	server, _ = ustack.New(ustack.Config{})
	server.AddNIC(a, ustack.NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	client, _ = ustack.New(ustack.Config{})
	client.AddNIC(b, ustack.NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	return server, client
}

// echoHandler echoes on the callback API: it reads what came, writes it
// back, keeps what the send buffer had no room for until OnWritable, and
// closes once the peer has closed and everything is written.
type echoHandler struct{ ustack.NopHandler }

type echoState struct {
	pending []byte
	eof     bool
}

func (echoHandler) OnOpen(c *ustack.CallbackConn) { c.SetContext(&echoState{}) }

func (h echoHandler) OnReadable(c *ustack.CallbackConn) {
	st := c.Context().(*echoState)
	var buf [4096]byte
	for {
		n, err := c.Read(buf[:])
		st.pending = append(st.pending, buf[:n]...)
		if err != nil { // ErrWouldBlock: nothing more for now; io.EOF: OnPeerClose follows
			break
		}
	}
	h.flush(c)
}

func (h echoHandler) OnWritable(c *ustack.CallbackConn) { h.flush(c) }

func (h echoHandler) OnPeerClose(c *ustack.CallbackConn) {
	c.Context().(*echoState).eof = true
	h.flush(c)
}

func (echoHandler) flush(c *ustack.CallbackConn) {
	st := c.Context().(*echoState)
	n, err := c.Write(st.pending)
	st.pending = st.pending[n:]
	if err == ustack.ErrWouldBlock {
		return // OnWritable comes when there is room
	}
	if st.eof && len(st.pending) == 0 {
		c.Close()
	}
}

// A TCP echo server on the callback API: no goroutine per connection, the
// handler runs on the stack's own goroutines. The client is an ordinary
// net.Conn.
func Example_callbackEcho() {
	server, client := twoStacks()
	defer server.Close()
	defer client.Close()

	ln, err := server.ListenCallback("tcp", ":7", echoHandler{})
	if err != nil {
		panic(err)
	}
	defer ln.Close()

	c, err := client.Dial("tcp", "10.0.0.1:7")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("hello, callbacks"))
	c.(*ustack.TCPConn).CloseWrite()
	got, _ := io.ReadAll(c)
	fmt.Println(string(got))
	// Output: hello, callbacks
}

// httpHandler is a small HTTP/1.1 server on the callback API: requests
// with Content-Length bodies, persistent connections (keep-alive) unless
// the client asks for "Connection: close".
type httpHandler struct{ ustack.NopHandler }

type httpConn struct {
	in, out []byte
	closing bool // close once out is written
}

func (httpHandler) OnOpen(c *ustack.CallbackConn) { c.SetContext(&httpConn{}) }

func (h httpHandler) OnReadable(c *ustack.CallbackConn) {
	hc := c.Context().(*httpConn)
	var buf [4096]byte
	for {
		n, err := c.Read(buf[:])
		hc.in = append(hc.in, buf[:n]...)
		if err != nil {
			break
		}
	}
	for !hc.closing {
		used, ok := serveOne(hc)
		if !ok {
			break
		}
		hc.in = hc.in[used:]
	}
	h.flush(c)
}

func (h httpHandler) OnWritable(c *ustack.CallbackConn) { h.flush(c) }

func (h httpHandler) OnPeerClose(c *ustack.CallbackConn) {
	c.Context().(*httpConn).closing = true
	h.flush(c)
}

func (httpHandler) flush(c *ustack.CallbackConn) {
	hc := c.Context().(*httpConn)
	n, err := c.Write(hc.out)
	hc.out = hc.out[n:]
	if err == nil && hc.closing {
		c.Close()
	}
}

// serveOne answers the first request in hc.in if all of it is there: it
// returns how many bytes it used, or false if the request is incomplete.
// A malformed request gets a 400 and the connection closes.
func serveOne(hc *httpConn) (int, bool) {
	end := bytes.Index(hc.in, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, false
	}
	lines := strings.Split(string(hc.in[:end]), "\r\n")
	method, target, ok := parseRequestLine(lines[0])
	length := 0
	for _, l := range lines[1:] {
		name, value, found := strings.Cut(l, ":")
		value = strings.TrimSpace(value)
		switch {
		case !found:
			ok = false
		case strings.EqualFold(name, "Content-Length"):
			n, err := strconv.Atoi(value)
			ok = ok && err == nil && n >= 0
			length = n
		case strings.EqualFold(name, "Connection") && strings.EqualFold(value, "close"):
			hc.closing = true
		}
	}
	if !ok {
		hc.out = append(hc.out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"...)
		hc.closing = true
		return len(hc.in), true
	}
	if len(hc.in) < end+4+length {
		return 0, false // the body is still coming
	}
	body := hc.in[end+4 : end+4+length]
	reply := fmt.Sprintf("%s %s", method, target)
	if length > 0 {
		reply += fmt.Sprintf(" with %d bytes: %s", length, body)
	}
	hc.out = fmt.Appendf(hc.out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(reply), reply)
	return end + 4 + length, true
}

func parseRequestLine(l string) (method, target string, ok bool) {
	f := strings.Fields(l)
	if len(f) != 3 || !strings.HasPrefix(f[2], "HTTP/1.") {
		return "", "", false
	}
	return f[0], f[1], true
}

// A small HTTP/1.1 server on the callback API, used by net/http's client
// over a ustack dialer: three requests, a body, and one connection kept
// alive for all of them.
func Example_callbackHTTP() {
	server, client := twoStacks()
	defer server.Close()
	defer client.Close()

	ln, err := server.ListenCallback("tcp", ":80", httpHandler{})
	if err != nil {
		panic(err)
	}
	defer ln.Close()

	tr := &http.Transport{DialContext: client.DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	reused := 0
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if i.Reused {
			reused++
		}
	}}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"POST", "/form", "a=1&b=2"},
		{"GET", "/again", ""},
	} {
		req, _ := http.NewRequestWithContext(ctx, r.method, "http://10.0.0.1"+r.path, strings.NewReader(r.body))
		resp, err := hc.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, string(body))
	}
	fmt.Println("requests on a reused connection:", reused)
	// Output:
	// 200 OK GET /
	// 200 OK POST /form with 7 bytes: a=1&b=2
	// 200 OK GET /again
	// requests on a reused connection: 2
}
