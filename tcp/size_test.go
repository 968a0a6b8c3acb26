package tcp

import (
	"testing"
	"unsafe"
)

// TestConnSize keeps Conn within its memory budget (docs/ARCHITECTURE.md,
// "Memory per connection"): 896 bytes is a size class of Go's allocator,
// so one more field past it costs 128 bytes per connection, not 8. Cold
// state goes out of line rather than into Conn.
func TestConnSize(t *testing.T) {
	const budget = 896
	if n := unsafe.Sizeof(Conn{}); n > budget {
		t.Errorf("tcp.Conn is %d bytes, over its %d-byte budget", n, budget)
	}
	// The per-call scratch lives in the Env, not in every Conn.
	if n := unsafe.Sizeof(Env{}); n < unsafe.Sizeof(ackEvent{}) {
		t.Errorf("Env is %d bytes: the ACK scratch is not in it", n)
	}
}
