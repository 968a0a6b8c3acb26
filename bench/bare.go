package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/afpacket"
)

// The bare device path: no stack, only what a TCP peer of the kernel must
// do to move bulk data through a link.Endpoint — answer ARP, accept or open
// one connection, and acknowledge (sink) or send at the offered window
// (source). Its figure is the ceiling of the device for a stack on it.

// bareDevice is a link.Endpoint with the kernel on its other side.
type bareDevice struct {
	ep     link.Endpoint
	kernel kernelEnd
	nss    []*netns
}

func (b *bareDevice) Close() error {
	err := b.ep.Close()
	for _, n := range b.nss {
		err = errors.Join(err, n.Close())
	}
	return err
}

// bareTAP opens the TAP device of the device cases for the bare path.
func bareTAP() (*bareDevice, error) {
	ns, ep, err := tapKernel()
	if err != nil {
		return nil, err
	}
	return &bareDevice{ep: ep, kernel: kernelEnd{ns, devKernelIP}, nss: []*netns{ns}}, nil
}

// bareAFPacket opens the AF_PACKET socket of the device cases for the bare
// path.
func bareAFPacket() (*bareDevice, error) {
	kns, dns, err := vethPair(false)
	if err != nil {
		return nil, err
	}
	ep, err := afpacket.Open(AFPacketConfig(dns.path()))
	if err != nil {
		kns.Close()
		dns.Close()
		return nil, err
	}
	return &bareDevice{ep: ep, kernel: kernelEnd{kns, devKernelIP}, nss: []*netns{kns, dns}}, nil
}

// bareRun measures a bulk transfer between the kernel and the bare path:
// into the bare sink (the kernel sends), or out of the bare source (the
// kernel receives). It fails unless the receiver got every byte sent.
func bareRun(ctx context.Context, o Options, open func() (*bareDevice, error), source bool) (Sample, error) {
	dev, err := open()
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	if dev.ep.Medium() != link.Ethernet {
		return nil, fmt.Errorf("bare path: %v links are not supported", dev.ep.Medium())
	}
	node := newBareNode(dev.ep)
	node.source = source
	go node.read()
	defer func() { dev.ep.Close(); <-node.done }()
	if source {
		return node.runSource(ctx, o, dev.kernel)
	}
	return node.runSink(ctx, o, dev.kernel)
}

// tcpPeer is the other end of the bare path's connection: the kernel in a
// namespace (kernelEnd), or in tests a ustack stack over a lossy pipe.
type tcpPeer interface {
	listen() (net.Listener, error)
	dial(ctx context.Context, addr net.Addr) (net.Conn, error)
}

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

const (
	barePort    = 5001
	bareISS     = 1_000_000
	bareWScale  = 7 // the sink's window: 65535 << 7, about 8 MiB
	bareRTO     = 200 * time.Millisecond
	bareTries   = int(grace / bareRTO) // ARP, SYN and FIN are retried this often
	ethHdr      = 14
	ipHdr       = 20
	tcpHdr      = 20
	etherTypeIP = 0x0800
	etherARP    = 0x0806
)

// bareNode is the bare path's one TCP endpoint on the device.
type bareNode struct {
	ep      link.Endpoint
	mac     [6]byte
	ip      [4]byte
	peerIP  [4]byte
	mss     int
	source  bool          // the node sends (else it is the sink)
	done    chan struct{} // closed when the reader ends
	readErr error

	wmu  sync.Mutex // WriteBatch is called by one goroutine at a time
	ctrl []link.Packet

	mu       sync.Mutex
	peerMAC  [6]byte
	haveMAC  chan struct{} // closed once peerMAC is known
	port     uint16        // ours
	peerPort uint16
	// the sink's receive side
	rcvNxt   uint32
	synced   bool
	received uint64
	finished chan struct{} // sink: the peer's FIN arrived; source: the peer's FIN after ours
	// the source's send side
	una, wnd  uint32
	wscale    uint8
	dupAcks   int
	est       chan struct{} // source: the SYN-ACK arrived
	kick      chan struct{} // source: an ACK arrived
	finSent   bool
	closeOnce sync.Once
}

func newBareNode(ep link.Endpoint) *bareNode {
	n := &bareNode{
		ep:       ep,
		mac:      [6]byte{0x02, 0xb3, 0, 0, 0, 0x02},
		ip:       devDUTIP.As4(),
		peerIP:   devKernelIP.As4(),
		mss:      ep.MTU() - ipHdr - tcpHdr,
		done:     make(chan struct{}),
		haveMAC:  make(chan struct{}),
		finished: make(chan struct{}),
		est:      make(chan struct{}),
		kick:     make(chan struct{}, 1),
		port:     barePort,
	}
	n.ctrl = []link.Packet{{Buf: make([]byte, ethHdr+ipHdr+tcpHdr+40)}}
	return n
}

func (n *bareNode) bufSize() int {
	size := n.ep.MTU() + n.ep.Medium().HeaderLen() + 4
	if n.ep.Caps().Has(link.CapGRO) {
		size = max(size, 65536+n.ep.Medium().HeaderLen()+4)
	}
	return size
}

// read handles every frame until the endpoint is closed.
func (n *bareNode) read() {
	defer close(n.done)
	pkts := make([]link.Packet, n.ep.BatchSize())
	for i := range pkts {
		pkts[i].Buf = make([]byte, n.bufSize())
	}
	for {
		k, err := n.ep.ReadBatch(pkts)
		if err != nil {
			n.readErr = err
			return
		}
		n.mu.Lock()
		ack := false
		for i := range pkts[:k] {
			ack = n.handle(pkts[i].Frame()) || ack
		}
		n.mu.Unlock()
		if ack {
			n.sendAck()
		}
	}
}

// handle takes one frame (n.mu held); it reports whether the sink should
// acknowledge at the end of the batch.
func (n *bareNode) handle(f []byte) bool {
	if len(f) < ethHdr {
		return false
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case etherARP:
		n.handleARP(f[ethHdr:], [6]byte(f[6:12]))
		return false
	case etherTypeIP:
	default:
		return false
	}
	ip := f[ethHdr:]
	if len(ip) < ipHdr || ip[0]>>4 != 4 || ip[9] != 6 || [4]byte(ip[16:20]) != n.ip {
		return false
	}
	if [4]byte(ip[12:16]) == n.peerIP {
		n.learnMAC([6]byte(f[6:12])) // in case no ARP came first
	}
	ihl := int(ip[0]&0xf) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if tot > len(ip) || tot < ihl+tcpHdr {
		return false
	}
	t := ip[ihl:tot]
	thl := int(t[12]>>4) * 4
	if thl < tcpHdr || thl > len(t) || binary.BigEndian.Uint16(t[2:]) != n.port {
		return false
	}
	flags := t[13]
	seq := binary.BigEndian.Uint32(t[4:])
	ackNo := binary.BigEndian.Uint32(t[8:])
	win := uint32(binary.BigEndian.Uint16(t[14:]))
	payload := len(t) - thl
	if flags&tcpRST != 0 {
		n.finish()
		return false
	}
	if n.source && flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK { // source: the SYN-ACK
		if !n.synced {
			n.synced = true
			n.rcvNxt = seq + 1
			n.una = ackNo
			n.wnd = win
			n.wscale = wscaleOption(t[tcpHdr:thl])
			close(n.est)
		}
		return false
	}
	if flags&tcpSYN != 0 {
		if n.source {
			return false
		}
		// sink: a SYN; answer it (again)
		n.peerPort = binary.BigEndian.Uint16(t[0:])
		n.rcvNxt = seq + 1
		n.synced = true
		n.sendCtrlLocked(tcpSYN|tcpACK, bareISS, n.rcvNxt, synOptions(n.mss, bareWScale))
		return false
	}
	if !n.synced || binary.BigEndian.Uint16(t[0:]) != n.peerPort {
		return false
	}
	ack := false
	if payload > 0 || flags&tcpFIN != 0 {
		ack = true // in order or not, the sink acknowledges what it holds
		if seq == n.rcvNxt {
			n.rcvNxt += uint32(payload)
			n.received += uint64(payload)
			if flags&tcpFIN != 0 {
				n.rcvNxt++
				if !n.source { // sink: answer the FIN with ours
					n.sendCtrlLocked(tcpFIN|tcpACK, bareISS+1, n.rcvNxt, nil)
					ack = false
				}
				n.finish()
			}
		}
	}
	if n.source && flags&tcpACK != 0 { // source: an acknowledgment
		w := win << n.wscale
		switch d := int32(ackNo - n.una); {
		case d > 0:
			n.una, n.wnd, n.dupAcks = ackNo, w, 0
		case d == 0 && payload == 0 && w == n.wnd:
			n.dupAcks++
		default:
			n.wnd = w
		}
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
	return ack && !n.source
}

func (n *bareNode) finish() { n.closeOnce.Do(func() { close(n.finished) }) }

// handleARP answers a request for our address and learns the peer's MAC.
func (n *bareNode) handleARP(a []byte, src [6]byte) {
	if len(a) < 28 || binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != etherTypeIP {
		return
	}
	if [4]byte(a[14:18]) == n.peerIP {
		n.learnMAC([6]byte(a[8:14]))
	}
	if binary.BigEndian.Uint16(a[6:]) == 1 && [4]byte(a[24:28]) == n.ip { // a request for us
		n.sendARP(2, [6]byte(a[8:14]), [4]byte(a[14:18]))
	}
}

func (n *bareNode) learnMAC(m [6]byte) {
	select {
	case <-n.haveMAC:
	default:
		n.peerMAC = m
		close(n.haveMAC)
	}
}

// sendARP sends an ARP request (op 1, to the broadcast address) or reply.
func (n *bareNode) sendARP(op uint16, tha [6]byte, tpa [4]byte) {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	b := n.ctrl[0].Buf
	dst := tha
	if op == 1 {
		dst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	copy(b[0:6], dst[:])
	copy(b[6:12], n.mac[:])
	binary.BigEndian.PutUint16(b[12:], etherARP)
	a := b[ethHdr:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], etherTypeIP)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:14], n.mac[:])
	copy(a[14:18], n.ip[:])
	copy(a[18:24], tha[:])
	copy(a[24:28], tpa[:])
	n.ctrl[0].N = ethHdr + 28
	n.ctrl[0].Offload = link.Offload{}
	n.ep.WriteBatch(n.ctrl)
}

// sendAck acknowledges everything received in order (the sink).
func (n *bareNode) sendAck() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sendCtrlLocked(tcpACK, bareISS+1, n.rcvNxt, nil)
}

// sendCtrlLocked sends a segment without data (n.mu held).
func (n *bareNode) sendCtrlLocked(flags uint8, seq, ack uint32, opts []byte) {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	p := &n.ctrl[0]
	p.N = n.build(p.Buf, flags, seq, ack, 0xffff, opts, 0, 0)
	p.Offload = link.Offload{}
	n.ep.WriteBatch(n.ctrl)
}

// build writes an Ethernet/IPv4/TCP frame into b: headers, then payload
// bytes already in place after them, whose checksum contribution is
// paySum. It returns the frame's length.
func (n *bareNode) build(b []byte, flags uint8, seq, ack uint32, wnd uint16, opts []byte, payload int, paySum uint32) int {
	copy(b[0:6], n.peerMAC[:])
	copy(b[6:12], n.mac[:])
	binary.BigEndian.PutUint16(b[12:], etherTypeIP)
	ip := b[ethHdr:]
	thl := tcpHdr + len(opts)
	tot := ipHdr + thl + payload
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(tot))
	binary.BigEndian.PutUint16(ip[4:], 0)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8], ip[9] = 64, 6
	binary.BigEndian.PutUint16(ip[10:], 0)
	copy(ip[12:16], n.ip[:])
	copy(ip[16:20], n.peerIP[:])
	binary.BigEndian.PutUint16(ip[10:], fold(sum16(0, ip[:ipHdr])))
	t := ip[ipHdr:]
	binary.BigEndian.PutUint16(t[0:], n.port)
	binary.BigEndian.PutUint16(t[2:], n.peerPort)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = byte(thl/4) << 4
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:], wnd)
	binary.BigEndian.PutUint32(t[16:], 0) // checksum, urgent pointer
	copy(t[tcpHdr:], opts)
	// RFC 9293 §3.1: the checksum covers a pseudo-header, the TCP header
	// and the payload.
	s := sum16(0, n.ip[:]) + sum16(0, n.peerIP[:]) + 6 + uint32(thl+payload)
	s = sum16(s, t[:thl]) + paySum
	binary.BigEndian.PutUint16(t[16:], fold(s))
	return ethHdr + tot
}

// int32max returns a sequence-space difference, or 0 if it is negative.
func int32max(d uint32) uint32 {
	if int32(d) < 0 {
		return 0
	}
	return d
}

// tsoFrame turns a frame build wrote into one the device segments into
// mss-sized segments and checksums (virtio-net GSO_TCPV4 with NEEDS_CSUM):
// the TCP checksum field holds the pseudo-header sum, uncomplemented.
func (n *bareNode) tsoFrame(b []byte, payload int) link.Offload {
	t := b[ethHdr+ipHdr:]
	s := sum16(0, n.ip[:]) + sum16(0, n.peerIP[:]) + 6 + uint32(tcpHdr+payload)
	binary.BigEndian.PutUint16(t[16:], ^fold(s))
	return link.Offload{
		GSOType:    link.GSOTCPv4,
		GSOSize:    uint16(n.mss),
		HdrLen:     ethHdr + ipHdr + tcpHdr,
		NeedsCsum:  true,
		CsumStart:  ethHdr + ipHdr,
		CsumOffset: 16,
	}
}

// sum16 adds b as big-endian 16-bit words to s (RFC 1071), without folding.
func sum16(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold folds a sum to 16 bits and complements it.
func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// synOptions are the options of a SYN: MSS, then window scale.
func synOptions(mss int, ws uint8) []byte {
	return []byte{2, 4, byte(mss >> 8), byte(mss), 1, 3, 3, ws}
}

// wscaleOption returns the window scale option's shift, or 0.
func wscaleOption(o []byte) uint8 {
	for len(o) > 0 {
		switch o[0] {
		case 0:
			return 0
		case 1:
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			return 0
		}
		if o[0] == 3 && o[1] == 3 {
			return min(o[2], 14)
		}
		o = o[o[1]:]
	}
	return 0
}

// runSink lets the kernel connect to the sink and send for o.Duration.
func (n *bareNode) runSink(ctx context.Context, o Options, k tcpPeer) (Sample, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := k.dial(dctx, &net.TCPAddr{IP: n.ip[:], Port: barePort})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("kernel dial to the bare sink: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(o.Duration + grace))
	buf := make([]byte, BulkWrite)
	cpu0, start := cpuTime(), time.Now()
	var sent int64
	for time.Since(start) < o.Duration && ctx.Err() == nil {
		w, err := c.Write(buf)
		sent += int64(w)
		if err != nil {
			return nil, fmt.Errorf("kernel write after %d bytes: %w", sent, err)
		}
	}
	if err := c.(closeWriter).CloseWrite(); err != nil {
		return nil, err
	}
	select {
	case <-n.finished:
	case <-time.After(grace):
		return nil, fmt.Errorf("the sink saw no FIN in %v", grace)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	n.mu.Lock()
	got := n.received
	n.mu.Unlock()
	if int64(got) != sent {
		return nil, fmt.Errorf("the sink received %d bytes, the kernel sent %d", got, sent)
	}
	return bulkSample(got, elapsed, cpu), nil
}

func bulkSample(bytes uint64, elapsed, cpu time.Duration) Sample {
	return Sample{
		MGbps:      float64(bytes) * 8 / elapsed.Seconds() / 1e9,
		MCPUPerGiB: cpu.Seconds() / (float64(bytes) / (1 << 30)),
		MBytes:     float64(bytes),
	}
}

// runSource connects to a kernel listener and sends full-sized segments
// for o.Duration at the window the kernel offers.
func (n *bareNode) runSource(ctx context.Context, o Options, k tcpPeer) (Sample, error) {
	ln, err := k.listen()
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	type res struct {
		n   int64
		err error
	}
	got := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- res{0, err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(o.Duration + grace))
		k, err := io.CopyBuffer(io.Discard, onlyReader{c}, make([]byte, BulkWrite))
		got <- res{k, err}
	}()
	n.mu.Lock()
	n.peerPort = uint16(ln.Addr().(*net.TCPAddr).Port)
	n.port = barePort
	n.mu.Unlock()

	// Resolve the kernel's MAC, then connect.
	for try := 0; ; try++ {
		n.sendARP(1, [6]byte{}, n.peerIP)
		select {
		case <-n.haveMAC:
		case <-time.After(200 * time.Millisecond):
			if try < bareTries {
				continue
			}
			return nil, errors.New("the kernel did not answer ARP")
		}
		break
	}
	for try := 0; ; try++ {
		n.mu.Lock()
		n.sendCtrlLocked(tcpSYN, bareISS, 0, synOptions(n.mss, 0))
		n.mu.Unlock()
		select {
		case <-n.est:
		case <-time.After(bareRTO):
			if try < bareTries {
				continue
			}
			return nil, errors.New("no SYN-ACK from the kernel")
		}
		break
	}
	n.mu.Lock()
	n.sendCtrlLocked(tcpACK, bareISS+1, n.rcvNxt, nil)
	n.mu.Unlock()

	// Frames: the payload is constant and stays in place, so only the
	// headers are written and summed per frame. Where the device segments
	// and checksums (TSO), a frame carries as many whole segments as fit
	// in an IPv4 packet and leaves the checksum to the device.
	tso := n.ep.Caps().Has(link.CapTSO | link.CapTxChecksum)
	step := n.mss
	if tso {
		step = (65535 - ipHdr - tcpHdr) / n.mss * n.mss
	}
	batch := make([]link.Packet, n.ep.BatchSize())
	hdr := ethHdr + ipHdr + tcpHdr
	payload := make([]byte, step)
	for i := range payload {
		payload[i] = byte(i*7 + 3)
	}
	paySum := sum16(0, payload)
	for i := range batch {
		batch[i].Buf = make([]byte, hdr+step)
		copy(batch[i].Buf[hdr:], payload)
	}
	mss := uint32(n.mss)
	nxt := uint32(bareISS + 1) // next to send
	end := nxt                 // the highest sequence sent so far
	var total uint64           // bytes up to end: past 4 GiB the sequence wraps
	recover := nxt             // no new fast retransmit until una passes it
	cpu0, start := cpuTime(), time.Now()
	stop := false // the time is up: only what was sent is (re)sent
	for {
		stop = stop || time.Since(start) >= o.Duration || ctx.Err() != nil
		n.mu.Lock()
		una, wnd, rcv := n.una, n.wnd, n.rcvNxt
		if n.dupAcks >= 3 && int32(una-recover) >= 0 { // a hole: go back to it
			recover, nxt = end, una
			n.dupAcks = 0
		}
		n.mu.Unlock()
		if int32(nxt-una) < 0 {
			nxt = una
		}
		if stop && una == end {
			break
		}
		k := 0
		for k < len(batch) {
			// As much as the window allows, in whole segments, up to a
			// frame's worth; after the time is up, only resends.
			seg := min(uint32(step), int32max(una+wnd-nxt)/mss*mss)
			if stop {
				seg = min(seg, int32max(end-nxt))
			}
			if seg < mss {
				break
			}
			// (paySum is the sum of step bytes: right for every frame
			// without TSO, where seg is always step; with TSO the
			// device computes the checksum and tsoFrame rewrites it.)
			batch[k].N = n.build(batch[k].Buf, tcpACK, nxt, rcv, 0xffff, nil, int(seg), paySum)
			if tso {
				batch[k].Offload = n.tsoFrame(batch[k].Buf, int(seg))
			}
			k++
			nxt += seg
			if d := int32(nxt - end); d > 0 {
				total += uint64(d)
				end = nxt
			}
		}
		if k > 0 {
			n.wmu.Lock()
			n.ep.WriteBatch(batch[:k])
			n.wmu.Unlock()
			continue
		}
		select {
		case <-n.kick:
		case <-time.After(bareRTO): // no ACK for a while: go back N
			n.mu.Lock()
			if n.una == una {
				nxt = una
			}
			n.mu.Unlock()
		case <-n.finished:
			return nil, errors.New("the kernel reset the connection")
		}
	}
	nxt = end
	sent := total
	// Close: our FIN, then the kernel's EOF, FIN and our last ACK.
	var r res
	for try := 0; ; try++ {
		n.mu.Lock()
		n.sendCtrlLocked(tcpFIN|tcpACK, nxt, n.rcvNxt, nil)
		n.mu.Unlock()
		select {
		case r = <-got:
		case <-time.After(bareRTO):
			if try < bareTries {
				continue
			}
			return nil, errors.New("the kernel did not see our FIN")
		}
		break
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	select {
	case <-n.finished:
		n.mu.Lock()
		n.sendCtrlLocked(tcpACK, nxt+1, n.rcvNxt, nil)
		n.mu.Unlock()
	case <-time.After(time.Second):
	}
	if r.err != nil {
		return nil, fmt.Errorf("kernel read after %d of %d bytes: %w", r.n, sent, r.err)
	}
	if uint64(r.n) != sent {
		return nil, fmt.Errorf("the kernel received %d bytes, the source sent %d", r.n, sent)
	}
	return bulkSample(sent, elapsed, cpu), nil
}
