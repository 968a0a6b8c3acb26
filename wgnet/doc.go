// Package wgnet is wireguard-go's userspace network stack on ustack: the
// API of golang.zx2c4.com/wireguard/tun/netstack — CreateNetTUN, and on
// its *Net the Dial, Listen, Ping and Lookup methods — with ustack in
// place of gVisor's netstack. A program written for tun/netstack switches
// by changing one import line:
//
//	import netstack "github.com/ustack/ustack/wgnet" // was "golang.zx2c4.com/wireguard/tun/netstack"
//
//	tun, tnet, err := netstack.CreateNetTUN(
//		[]netip.Addr{netip.MustParseAddr("192.168.4.28")},
//		[]netip.Addr{netip.MustParseAddr("192.168.4.1")}, 1420)
//	dev := device.NewDevice(tun, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, ""))
//	// dev.IpcSet(...); dev.Up()
//	client := http.Client{Transport: &http.Transport{DialContext: tnet.DialContext}}
//
// The methods return ustack's types where netstack returns gVisor's:
// *TCPConn and *UDPConn (aliases of ustack's, with every method of gonet's
// and of package net's), *TCPListener (with gonet's Shutdown) and
// *PingConn (netstack's methods, on ustack's ping sockets). Errors are
// package net's *net.OpError with the kernel's errno, as ustack's are.
//
// The tun.Device is a link of the stack: wireguard-go writes decrypted
// packets to it and reads the packets to encrypt from it, in batches
// (of at most DeviceBatchSize packets a Read). Packets from the
// tunnel are trusted to have good checksums (WireGuard authenticated
// them, as Linux's wireguard trusts them) and their TCP segments merged
// per batch; the stack sends 64 KiB TCP super-segments that the device
// cuts into packets of the MTU, with complete checksums, as it is read.
// Closing the device closes the stack, every socket of the Net and every
// goroutine.
package wgnet
