package ustack_test

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"

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
