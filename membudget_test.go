package ustack

import (
	"testing"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// TestTCPMemoryOneForAllShards: a runtime's shards charge one account
// (tcp_mem is one for all CPUs) with the configured limits, which
// TCPMemory reports; limits out of order are refused by New.
func TestTCPMemoryOneForAllShards(t *testing.T) {
	lim := tcp.MemLimits{Low: 1 << 20, Pressure: 2 << 20, High: 3 << 20}
	s, err := newStack(Config{Config: stack.Config{Seed: 1, TCP: tcp.Config{Mem: lim}}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := s.shards[0].core.TCPConfig().Memory
	if m == nil || m.Limits() != lim {
		t.Fatalf("shard 0's account %v, limits %+v; want %+v", m, m.Limits(), lim)
	}
	for i, sh := range s.shards[1:] {
		if got := sh.core.TCPConfig().Memory; got != m {
			t.Errorf("shard %d charges another account", i+1)
		}
	}
	if st := s.TCPMemory(); st.Allocated != 0 || st.Pressure {
		t.Errorf("a new stack's account: %+v", st)
	}
	bad := Config{Config: stack.Config{TCP: tcp.Config{Mem: tcp.MemLimits{Low: 3, Pressure: 2, High: 1}}}}
	if s2, err := New(bad); err == nil {
		s2.Close()
		t.Error("New accepted Mem with Low > Pressure > High")
	}
}
