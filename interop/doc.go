// Package interop tests ustack against the Linux kernel's own TCP/IP
// stack and the programs people use every day — ping, curl, nginx, socat,
// tshark — over real links: a TAP device, and a veth pair with the stack
// on an AF_PACKET socket, and, for impaired links, a veth chain with
// `ustack netem` in the middle.
//
// The package has only tests. Each test builds its own topology in network
// namespaces with names unique to the test (internal/netns), talks only to
// those namespaces, and tears everything down when it ends, failed or not
// (t.Cleanup): the namespaces, the devices in them, and the processes it
// started, each killed by its PID. Every test captures the stack's side of
// the link to a pcap file, and tshark reads it afterwards: a malformed
// frame or a bad checksum in its expert information fails the test (the
// capture is kept, and its path logged, when a test fails, or always with
// USTACK_INTEROP_KEEP=1 in the environment).
//
// The tests need root (namespaces, TAP devices and AF_PACKET sockets) and
// the tools; `make test` installs the tools (scripts/install-test-tools.sh)
// and runs this package as root in CI. Elsewhere each test skips, saying
// what it lacks. Run them alone with
//
//	sudo go test -v -count=1 ./interop
//	sudo go test -v -count=1 -run 'Impair' ./interop   # the impaired transfers
//
// The kernel's side uses CUBIC on every socket the tests open themselves
// (TCP_CONGESTION, which root may set whatever the host allows), and each
// namespace's default congestion control is set explicitly too — CUBIC
// when the host's net.ipv4.tcp_allowed_congestion_control permits it in a
// namespace, Reno otherwise — never the machine's default (bbr on the
// project's machines), so results do not depend on the host.
//
// The impaired-transfer tests log how long each transfer took beside the
// kernel talking to itself through the same impairment in the same run
// ("impair: ..." log lines); BENCHMARKS.md keeps a table of them. Times
// are logged, never asserted. TestImpaired also puts each of the stack's
// congestion controllers beside the kernel's of the same name (the
// kernel's set per socket with TCP_CONGESTION, and per namespace with
// sysctl where the host allows it), and runs stack and kernel flows
// through one rate limit, reporting each side's share and Jain's index:
// a smoke subset by default, every controller and pairing with
// USTACK_INTEROP_CC=full.
package interop
