// Package bench measures ustack beside gVisor's netstack and the Linux
// kernel, in one process and one run, and renders the figures as the
// Markdown tables of BENCHMARKS.md.
//
// It is its own module (github.com/ustack/ustack/bench) so that the
// library never depends on gVisor; it uses only ustack's public API.
//
// # The model
//
// A Net is two ends that can reach each other: a server side that listens
// and a client side that dials, each giving net.Listener and net.Conn
// values. Every system under test is a Net: two ustack stacks over
// link/pipe, two gVisor stacks over an in-memory channel link (through
// gonet), the kernel's loopback TCP or a Unix-domain socket, ustack on a
// TAP device or an AF_PACKET socket against the kernel in a namespace the
// bench creates, the kernel on both ends of a veth pair.
//
// A workload (Bulk, RR, CRR, Mem) runs over any Net and returns a Sample:
// named figures such as Gbit/s and CPU seconds per GiB, plus the counts
// that prove the run was sound (bytes received equal bytes sent, at least
// one transaction). A Cell is one workload on one Net; a Table arranges
// cells in rows and columns (the Plan). Run measures every cell once per
// round, in order, so the systems alternate (ustack, gVisor, kernel,
// ustack, …), and a cell shows the median with the min–max over rounds.
//
// New systems (wgnet beside wireguard-go's netstack, `ustack forward`
// beside slirp4netns and pasta) are new Nets and new columns or tables;
// new measurements (memory with the callback API, a million connections,
// floods) are new workloads and rows. A cell that cannot run here says why
// (Unsupported) instead of a figure.
package bench
