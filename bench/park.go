package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/ustack/ustack"
)

// MParked is how many connection ends were parked when a memory figure
// was taken (ustack parks an idle connection after a second:
// tcp.Config.ParkIdle).
const MParked = "parked"

// parkWaiter is a Net whose stacks park idle connections: the memory
// measurements wait for them to park, so that the figure is what an idle
// connection costs for all but its first second.
type parkWaiter interface {
	// waitParked waits until want connection ends are parked and returns
	// how many are.
	waitParked(ctx context.Context, want uint64) (uint64, error)
}

// parkTimeout bounds the wait for connections to park: an idle
// connection parks a second after its last segment (three RTOs if that
// is longer), once its stack's timer comes round.
const parkTimeout = 2 * time.Minute

// waitParked waits until the stacks have parked want connection ends
// between them (or parkTimeout passes: an error).
func waitParked(ctx context.Context, want uint64, stacks ...*ustack.Stack) (uint64, error) {
	deadline := time.Now().Add(parkTimeout)
	for {
		var got uint64
		for _, s := range stacks {
			got += s.Stats().TCP.Parked
		}
		if got >= want {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("%d of %d connection ends parked after %v", got, want, parkTimeout)
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *ustackPair) waitParked(ctx context.Context, want uint64) (uint64, error) {
	return waitParked(ctx, want, p.server, p.client)
}
