package tap_test

import (
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/link/tap"
)

// TestStackOffloadsAllocs: a whole stack on a TAP device with its
// offloads (virtio-net header: TSO and checksum offload out, GRO in),
// against the kernel in a namespace, allocates nothing per segment in
// steady state, either way: 256 KiB from the kernel to the stack and 256
// KiB back per round (the kernel's side is package net's, which
// allocates nothing on a connected socket's Read and Write either).
func TestStackOffloadsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector; make allocs runs this without it")
	}
	ns, ep := setup(t, tap.Config{MTU: 1500})
	if ep.Caps() != offloadCaps {
		t.Fatalf("caps %b, want the offloads %b", ep.Caps(), offloadCaps)
	}
	s, _ := linktest.Stack(t, ep, stackAddr)
	ln, err := s.Listen("tcp", netip.AddrPortFrom(stackAddr.Addr(), 5001).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
			close(accepted)
			return
		}
		accepted <- c
	}()
	var kc net.Conn
	if err := ns.Do(func() error {
		var err error
		kc, err = net.Dial("tcp", netip.AddrPortFrom(stackAddr.Addr(), 5001).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	sc, ok := <-accepted
	if !ok {
		t.FailNow()
	}
	defer sc.Close()
	const size = 256 << 10
	kOut, kIn := make([]byte, size), make([]byte, size)
	sOut, sIn := make([]byte, size), make([]byte, size)
	for i := range kOut {
		kOut[i], sOut[i] = byte(i), byte(i*7)
	}
	start, done := make(chan struct{}), make(chan error)
	go func() {
		// The stack's side: read the kernel's 256 KiB, send 256 KiB back.
		for range start {
			_, err := io.ReadFull(sc, sIn)
			if err == nil {
				_, err = sc.Write(sOut)
			}
			done <- err
		}
	}()
	defer close(start)
	round := func() {
		start <- struct{}{}
		if _, err := kc.Write(kOut); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(kc, kIn); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for range 20 { // warm up: buffers, pools, windows
		round()
	}
	a := testing.AllocsPerRun(50, round)
	if string(kIn[:1000]) != string(sOut[:1000]) || string(sIn[size-1000:]) != string(kOut[size-1000:]) {
		t.Fatal("the data did not cross intact")
	}
	// 512 KiB is more than 350 segments of 1448 bytes each round: even
	// one allocation per round would be far below one per segment, so
	// allow none.
	if a != 0 {
		t.Errorf("%v allocations per round of 256 KiB each way", a)
	}
	if st := ep.Stats(); st.TxGSO == 0 || st.RxCoalesced+st.RxGSO == 0 {
		t.Errorf("the offloads were not used: %+v", st)
	}
}
