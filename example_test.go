package ustack_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link/pipe"
)

// An HTTP server on one stack and a client on another, joined by an
// in-memory cable: the README's example.
func Example_httpServer() {
	a, b := pipe.New(pipe.Config{MTU: 1500}) // an in-memory cable

	server, _ := ustack.New(ustack.Config{})
	defer server.Close()
	server.AddNIC(a, ustack.NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})

	client, _ := ustack.New(ustack.Config{})
	defer client.Close()
	client.AddNIC(b, ustack.NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})

	ln, _ := server.Listen("tcp", ":80")
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from a user-space stack")
	}))

	tr := &http.Transport{DialContext: client.DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	resp, err := hc.Get("http://10.0.0.1/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(body))
	// Output: hello from a user-space stack
}

// One listener on "tcp" ":80" answers both families: the server sees an
// IPv4 client as an IPv4 address and an IPv6 one as IPv6. The IPv6
// addresses are usable once duplicate address detection is done (a
// second or two): the example waits for it as a program would.
func Example_dualStack() {
	a, b := pipe.New(pipe.Config{MTU: 1500})
	server, _ := ustack.New(ustack.Config{})
	defer server.Close()
	snic, _ := server.AddNIC(a, ustack.NICConfig{Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("2001:db8::1/64")}})
	client, _ := ustack.New(ustack.Config{})
	defer client.Close()
	cnic, _ := client.AddNIC(b, ustack.NICConfig{Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("2001:db8::2/64")}})
	for _, nic := range []*ustack.NIC{snic, cnic} {
		for tentative := true; tentative; {
			tentative = false
			for _, a := range nic.Addresses() {
				tentative = tentative || a.State == "tentative"
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	ln, _ := server.Listen("tcp", ":80")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "you are %s\n", host)
			c.Close()
		}
	}()
	for _, addr := range []string{"10.0.0.1:80", "[2001:db8::1]:80"} {
		c, err := client.Dial("tcp", addr)
		if err != nil {
			panic(err)
		}
		line, _ := io.ReadAll(c)
		c.Close()
		fmt.Print(string(line))
	}
	// Output:
	// you are 10.0.0.2
	// you are 2001:db8::2
}
