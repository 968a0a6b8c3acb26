package stack

import (
	"testing"

	"github.com/ustack/ustack/tcp"
)

// TestTCPEvents: the one translation of the TCP core's events into the
// socket layer's keeps every event and adds none.
func TestTCPEvents(t *testing.T) {
	pairs := []struct {
		tcp tcp.Events
		ev  Events
	}{
		{tcp.EventEstablished, EventEstablished},
		{tcp.EventReadable, EventReadable},
		{tcp.EventWritable, EventWritable},
		{tcp.EventClosed, EventClosed},
	}
	for set := range 1 << len(pairs) {
		var in tcp.Events
		var want Events
		for i, p := range pairs {
			if set&(1<<i) != 0 {
				in |= p.tcp
				want |= p.ev
			}
		}
		if got := tcpEvents(in); got != want {
			t.Errorf("tcpEvents(%#b) = %#b, want %#b", in, got, want)
		}
	}
}
