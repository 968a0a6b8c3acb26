// Package ustack is a TCP/IP stack that runs in user space. A program
// makes a Stack, attaches it to links (a TAP or TUN device, an AF_PACKET
// socket, an in-memory pipe) and gets net.Conn, net.Listener and
// net.PacketConn values that behave like the kernel's, so net/http,
// crypto/tls and the rest of the standard library run on it unchanged.
//
//	a, b := pipe.New(pipe.Config{MTU: 1500})
//	s, _ := ustack.New(ustack.Config{})
//	nic, _ := s.AddNIC(a, ustack.NICConfig{
//		MAC:   net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
//		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
//	})
//	ln, _ := s.Listen("tcp", "10.0.0.1:80")
//	go http.Serve(ln, handler)
//
// # How it runs
//
// The protocol work is done by package stack, a pure state machine. A
// Stack drives it from a shard: one mutex held only for calls into the
// state machine, one timer at the stack's next deadline, and output
// queues whose frames are written to the links, and sockets woken, after
// the mutex is released, so a slow link holds up no other socket. One
// reader goroutine per NIC feeds received frames in batches. Inbound
// work runs on the reader's goroutine and outbound work on the goroutine
// that wrote; there is no goroutine per connection. Blocking calls wait on a
// per-socket channel that the stack signals when the socket's state
// changes, and on their deadline, which behaves as package net's: a
// deadline set, moved or cleared while a call waits applies to that call.
//
// Errors look like package net's: *net.OpError values that satisfy
// errors.Is with syscall.ECONNREFUSED, ECONNRESET, ETIMEDOUT,
// EHOSTUNREACH, EADDRINUSE, os.ErrDeadlineExceeded and net.ErrClosed.
package ustack
