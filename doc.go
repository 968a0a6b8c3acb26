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
// # The callback API
//
// For servers that cannot afford a goroutine per connection, a listener
// (Stack.ListenCallback) or a dial (Stack.DialCallback) takes a Handler
// instead: its methods are called for accept or connect (OnOpen), data
// to read (OnReadable), room to write (OnWritable), the peer's half-close
// (OnPeerClose) and the end (OnClose), and a CallbackConn's calls never
// wait. The rules:
//
//   - Handlers run on the stack's goroutines: a NIC's reader, the timer,
//     Stack.Close, or any goroutine whose call into the stack made the
//     event (a Write on another connection, a Dial). They run with no
//     lock held, so they may call into the stack: Read, Write,
//     CloseWrite, Close and Abort of this or any other CallbackConn,
//     DialCallback, ListenCallback, and the non-blocking calls of
//     TCPConn (Close, CloseWrite, setters). They must not block: no
//     blocking Read, Write or Accept of a TCPConn or Listener, no
//     blocking Dial, no Stack.Close, no waiting on a channel the stack's
//     goroutines would have to fill. A handler that blocks holds up
//     every connection whose events its goroutine was to deliver.
//   - For one connection, handler methods are never called two at a time
//     nor nested: an event that comes while one runs (from another
//     goroutine, or made by the handler's own call) is delivered when it
//     returns. So a connection's state (SetContext) needs no lock in its
//     handler. Different connections' handlers run concurrently.
//   - Order for one connection: OnOpen first (not at all for a dial that
//     fails or a connection that ends before it is opened); then
//     OnReadable, OnPeerClose (once, after every byte before the peer's
//     FIN was read) and OnWritable as things happen, and maybe when
//     nothing new happened; OnClose once, last. Within one delivery the
//     order is readable, peer close, writable.
//   - Read, Write, CloseWrite and Close never wait. Read returns
//     ErrWouldBlock when nothing is buffered and Write returns
//     ErrWouldBlock (with the count it took) when the send buffer is
//     full; both are the bare sentinel, which matches syscall.EAGAIN with
//     errors.Is. Other errors are package net's (*net.OpError with
//     ECONNRESET, EPIPE, …; io.EOF after the peer's FIN; net.ErrClosed
//     after Close). They are safe from any goroutine, not only handlers.
//   - Back pressure is not reading: data stays in the receive buffer,
//     the advertised window closes and the peer's writes stall until
//     Read is called again, from a handler or any goroutine (OnReadable
//     is not repeated for data already announced).
//   - Close sends what was written and shuts down in the background (a
//     reset if received data was left unread, as the kernel does);
//     OnClose(nil) follows at once, and the connection's events end.
//     Stack.Close ends every callback connection with
//     OnClose(net.ErrClosed) before it returns (one whose handler runs
//     at that moment on a goroutine of the program gets it when that
//     handler returns), and leaves no goroutine behind; a
//     CallbackListener's Close stops accepting and resets connections
//     not yet accepted.
//
// Errors look like package net's: *net.OpError values that satisfy
// errors.Is with syscall.ECONNREFUSED, ECONNRESET, ETIMEDOUT,
// EHOSTUNREACH, EADDRINUSE, os.ErrDeadlineExceeded and net.ErrClosed.
package ustack
