//go:build ignore

// A program written for wireguard-go's tun/netstack, in the shape of its
// examples (http_client.go, http_server.go, ping_client.go), with both
// ends in one process: two WireGuard devices, peers over loopback UDP,
// each on a netstack Net. It serves HTTP, fetches it, pings, echoes UDP
// and exercises every method of the Net and of what they return, then
// prints "ok".
//
// wgnet's TestImportSwap builds and runs it with the import of
// tun/netstack replaced by `netstack "github.com/ustack/ustack/wgnet"`
// and nothing else changed; the bench module's TestNetstackProgram
// builds and runs it as it is, on gVisor.
package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

type end struct {
	dev        *device.Device
	tnet       *netstack.Net
	priv, pub  string
	listenPort string
}

func newEnd(addr string) *end {
	tun, tnet, err := netstack.CreateNetTUN(
		[]netip.Addr{netip.MustParseAddr(addr)},
		[]netip.Addr{netip.MustParseAddr("192.168.4.1")},
		1420)
	if err != nil {
		log.Panic(err)
	}
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		log.Panic(err)
	}
	e := &end{tnet: tnet, priv: hex.EncodeToString(k.Bytes()), pub: hex.EncodeToString(k.PublicKey().Bytes())}
	e.dev = device.NewDevice(tun, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, addr+" "))
	if err := e.dev.IpcSet("private_key=" + e.priv + "\nlisten_port=0\n"); err != nil {
		log.Panic(err)
	}
	if err := e.dev.Up(); err != nil {
		log.Panic(err)
	}
	cfg, err := e.dev.IpcGet()
	if err != nil {
		log.Panic(err)
	}
	for _, line := range strings.Split(cfg, "\n") {
		if p, ok := strings.CutPrefix(line, "listen_port="); ok {
			e.listenPort = p
		}
	}
	return e
}

func (e *end) peer(o *end, allowed string) {
	err := e.dev.IpcSet(`public_key=` + o.pub + `
endpoint=127.0.0.1:` + o.listenPort + `
allowed_ip=` + allowed + `
persistent_keepalive_interval=25
`)
	if err != nil {
		log.Panic(err)
	}
}

func main() {
	client, server := newEnd("192.168.4.28"), newEnd("192.168.4.29")
	client.peer(server, "0.0.0.0/0")
	server.peer(client, "192.168.4.28/32")
	defer client.dev.Close()
	defer server.dev.Close()

	// http_server.go
	listener, err := server.tnet.ListenTCP(&net.TCPAddr{Port: 80})
	if err != nil {
		log.Panicln(err)
	}
	var _ net.Listener = listener
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(writer http.ResponseWriter, request *http.Request) {
		io.WriteString(writer, "Hello from userspace TCP!")
	})
	go http.Serve(listener, mux)

	// http_client.go
	httpClient := http.Client{
		Transport: &http.Transport{
			DialContext: client.tnet.DialContext,
		},
		Timeout: time.Minute,
	}
	resp, err := httpClient.Get("http://192.168.4.29/")
	if err != nil {
		log.Panic(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "Hello from userspace TCP!" {
		log.Panicf("body %q, %v", body, err)
	}

	// ping_client.go
	socket, err := client.tnet.Dial("ping4", "192.168.4.29")
	if err != nil {
		log.Panic(err)
	}
	requestPing := icmp.Echo{
		Seq:  7,
		Data: []byte("gopher burrow"),
	}
	icmpBytes, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Code: 0, Body: &requestPing}).Marshal(nil)
	socket.SetReadDeadline(time.Now().Add(time.Second * 10))
	if _, err := socket.Write(icmpBytes); err != nil {
		log.Panic(err)
	}
	n, err := socket.Read(icmpBytes[:])
	if err != nil {
		log.Panic(err)
	}
	replyPacket, err := icmp.ParseMessage(1, icmpBytes[:n])
	if err != nil {
		log.Panic(err)
	}
	replyPing, ok := replyPacket.Body.(*icmp.Echo)
	if !ok || !bytes.Equal(replyPing.Data, requestPing.Data) || replyPing.Seq != requestPing.Seq {
		log.Panicf("invalid ping reply: %v", replyPacket)
	}
	socket.Close()

	// The other ping calls and PingAddr.
	pc, err := client.tnet.ListenPing(netstack.PingAddrFromAddr(netip.MustParseAddr("192.168.4.28")))
	if err != nil {
		log.Panic(err)
	}
	if pc.LocalAddr().Network() != "ping4" {
		log.Panicf("ping local address %v", pc.LocalAddr())
	}
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := pc.WriteTo(icmpBytes[:n-len(requestPing.Data)], &netstack.PingAddr{}); err == nil {
		log.Panic("ping to the zero address worked")
	}
	pc.Close()
	pd, err := client.tnet.DialPingAddr(netip.Addr{}, netip.MustParseAddr("192.168.4.29"))
	if err != nil {
		log.Panic(err)
	}
	pd.Close()
	if _, err := client.tnet.DialPing(nil, nil); err == nil {
		log.Panic("DialPing(nil, nil) worked")
	}
	if _, err := client.tnet.ListenPingAddr(netip.MustParseAddr("192.168.4.28")); err != nil {
		log.Panic(err)
	}

	// TCP: the AddrPort and *net.TCPAddr forms, and the conn's methods.
	ln2, err := server.tnet.ListenTCPAddrPort(netip.AddrPortFrom(netip.MustParseAddr("192.168.4.29"), 8080))
	if err != nil {
		log.Panic(err)
	}
	go func() {
		c, err := ln2.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc, err := client.tnet.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(netip.MustParseAddr("192.168.4.29"), 8080))
	if err != nil {
		log.Panic(err)
	}
	tc.SetDeadline(time.Now().Add(time.Minute))
	tc.Write([]byte("echo"))
	tc.CloseWrite()
	got, err := io.ReadAll(tc)
	if err != nil || string(got) != "echo" {
		log.Panicf("TCP echo %q, %v", got, err)
	}
	fmt.Println("tcp", tc.LocalAddr().Network(), tc.RemoteAddr())
	tc.CloseRead()
	tc.Close()
	ln2.Shutdown()
	ln2.Close()
	if c, err := client.tnet.DialTCPAddrPort(netip.AddrPortFrom(netip.MustParseAddr("192.168.4.29"), 80)); err == nil {
		c.Close()
	} else {
		log.Panic(err)
	}
	if c, err := client.tnet.DialTCP(&net.TCPAddr{IP: net.ParseIP("192.168.4.29"), Port: 80}); err == nil {
		c.Close()
	} else {
		log.Panic(err)
	}
	if c, err := client.tnet.DialContextTCP(ctx, &net.TCPAddr{IP: net.ParseIP("192.168.4.29"), Port: 80}); err == nil {
		c.Close()
	} else {
		log.Panic(err)
	}
	if l, err := server.tnet.ListenTCPAddrPort(netip.AddrPort{}); err == nil {
		fmt.Println("listening on", l.Addr().Network())
		l.Close()
	} else {
		log.Panic(err)
	}

	// UDP: every form.
	us, err := server.tnet.ListenUDPAddrPort(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		log.Panic(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := us.ReadFrom(buf)
			if err != nil {
				return
			}
			us.WriteTo(buf[:n], from)
		}
	}()
	uc, err := client.tnet.DialUDP(nil, &net.UDPAddr{IP: net.ParseIP("192.168.4.29"), Port: 7})
	if err != nil {
		log.Panic(err)
	}
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	uc.Write([]byte("datagram"))
	buf := make([]byte, 100)
	n, err = uc.Read(buf)
	if err != nil || string(buf[:n]) != "datagram" {
		log.Panicf("UDP echo %q, %v", buf[:n], err)
	}
	fmt.Println("udp", uc.LocalAddr().Network(), uc.RemoteAddr())
	uc.Close()
	ul, err := client.tnet.ListenUDP(&net.UDPAddr{Port: 4000})
	if err != nil {
		log.Panic(err)
	}
	ul.SetDeadline(time.Now().Add(10 * time.Second))
	ul.WriteTo([]byte("again"), &net.UDPAddr{IP: net.ParseIP("192.168.4.29"), Port: 7})
	if n, from, err := ul.ReadFrom(buf); err != nil || string(buf[:n]) != "again" {
		log.Panicf("UDP echo %q from %v, %v", buf[:n], from, err)
	}
	ul.Close()
	if u, err := client.tnet.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(netip.MustParseAddr("192.168.4.29"), 7)); err == nil {
		u.Close()
	} else {
		log.Panic(err)
	}
	us.Close()

	// Lookups: literals need no server.
	addrs, err := client.tnet.LookupHost("192.168.4.29")
	if err != nil || len(addrs) != 1 {
		log.Panicf("LookupHost: %v, %v", addrs, err)
	}
	if _, err := client.tnet.LookupContextHost(ctx, "bad..name"); err == nil {
		log.Panic("bad name resolved")
	}
	fmt.Println("ok")
}
