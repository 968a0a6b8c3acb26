package stack_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// TestFlowTableCollisions runs connections through their lives with the
// flow table's hash forced to collide (mask 0: every connection but one
// in the collision map; mask 1: two hash values) and with the real one:
// data both ways, closes that leave TIME-WAIT, resets, TIME-WAIT taken
// over by new connections, and the end of TIME-WAIT. The stacks must
// list each connection once, end with empty tables, and send the same
// frames whatever the hash (same seeds, same run).
func TestFlowTableCollisions(t *testing.T) {
	var ref [][]byte
	for _, mask := range []uint64{^uint64(0), 0, 1} {
		t.Run(fmt.Sprintf("mask=%#x", mask), func(t *testing.T) {
			const conns = 10
			n, a, b := pair(t, stack.Config{EphemeralPorts: [2]uint16{40000, 40000 + conns - 1}}, stack.Config{})
			stack.SetFlowHashMask(a.Stack, mask)
			stack.SetFlowHashMask(b.Stack, mask)
			l, err := b.Stack.Listen(ap(netip.IPv4Unspecified(), 80), 0)
			if err != nil {
				t.Fatal(err)
			}
			round := func(k int) (cs, ss []*stack.TCPConn) {
				for i := range k {
					c, s := connectTo(t, n, a, l, ap(ipB, 80))
					data := payload(uint64(i), 3000)
					if got := transfer(t, n, c, s, data, time.Minute); string(got) != string(data) {
						t.Fatalf("connection %d: data differs", i)
					}
					if got := transfer(t, n, s, c, data[:100], time.Minute); string(got) != string(data[:100]) {
						t.Fatalf("connection %d: data back differs", i)
					}
					cs, ss = append(cs, c), append(ss, s)
				}
				return cs, ss
			}
			cs, ss := round(conns)
			checkConns(t, "client", a.Stack, conns, tcp.Established)
			checkConns(t, "server", b.Stack, conns, tcp.Established)
			if byHash, coll := stack.FlowTableLen(a.Stack); byHash+coll != conns || mask == 0 && coll != conns-1 {
				t.Fatalf("client's table: %d under their hash, %d collided; want %d in all (mask 0: %d collided)", byHash, coll, conns, conns-1)
			}
			// Half close client first (TIME-WAIT on the client), half are
			// reset by the server (gone on both sides).
			for i := range conns {
				if i%2 == 0 {
					cs[i].Close()
				} else {
					ss[i].Abort()
				}
			}
			n.RunFor(time.Second)
			for i := range conns {
				if i%2 == 0 {
					ss[i].Close()
				}
			}
			n.RunFor(2 * time.Second)
			checkConns(t, "client", a.Stack, conns/2, tcp.TimeWait)
			checkConns(t, "server", b.Stack, 0, 0)
			// A second round on the same ten ports: five free, five
			// taken over from TIME-WAIT (the table's replace).
			cs, ss = round(conns)
			if got := a.Stack.Stats().TCP.TWRecycled; got != conns/2 {
				t.Errorf("TWRecycled %d, want %d", got, conns/2)
			}
			checkConns(t, "client", a.Stack, conns, tcp.Established)
			checkConns(t, "server", b.Stack, conns, tcp.Established)
			for i := range conns {
				ss[i].Close()
			}
			n.RunFor(time.Second)
			for i := range conns {
				cs[i].Close()
			}
			n.RunFor(2 * time.Minute) // past the server's TIME-WAIT
			checkConns(t, "client", a.Stack, 0, 0)
			checkConns(t, "server", b.Stack, 0, 0)
			for _, nd := range []struct {
				name string
				s    *stack.Stack
			}{{"client", a.Stack}, {"server", b.Stack}} {
				if byHash, coll := stack.FlowTableLen(nd.s); byHash != 0 || coll != 0 {
					t.Errorf("%s's table holds %d+%d connections at the end, want none", nd.name, byHash, coll)
				}
			}
			var frames [][]byte
			for _, f := range n.Log {
				frames = append(frames, f.Data)
			}
			if len(frames) < 100 {
				t.Fatalf("only %d frames sent", len(frames))
			}
			if ref == nil {
				ref = frames
			} else if !slices.EqualFunc(frames, ref, bytes.Equal) {
				t.Errorf("%d frames sent, differing from the real hash's %d", len(frames), len(ref))
			}
		})
	}
}

// checkConns checks that s lists want connections, all in state st,
// each once (distinct 4-tuples), in order.
func checkConns(t *testing.T, name string, s *stack.Stack, want int, st tcp.State) {
	t.Helper()
	got := s.Conns()
	if len(got) != want {
		t.Fatalf("%s lists %d connections, want %d: %v", name, len(got), want, got)
	}
	if !slices.IsSortedFunc(got, func(x, y stack.ConnInfo) int {
		if c := x.Local.Compare(y.Local); c != 0 {
			return c
		}
		return x.Remote.Compare(y.Remote)
	}) {
		t.Errorf("%s's connections are not in order: %v", name, got)
	}
	seen := map[[2]netip.AddrPort]bool{}
	for _, c := range got {
		k := [2]netip.AddrPort{c.Local, c.Remote}
		if seen[k] {
			t.Errorf("%s lists %v twice", name, k)
		}
		seen[k] = true
		if c.Info.State != st {
			t.Errorf("%s: %v in %v, want %v", name, k, c.Info.State, st)
		}
	}
}
