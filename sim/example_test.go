package sim_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/sim"
	"github.com/ustack/ustack/stack"
)

// Two hosts on a lossy link: a client sends 1 MB to a server and reads
// 100 kB back, in virtual time. The same seed gives the same run.
func Example() {
	n := sim.New(42)
	a := n.AddHost("a", stack.Config{})
	b := n.AddHost("b", stack.Config{})
	link := impair.Config{Delay: 20 * time.Millisecond, Loss: 0.01}
	n.Link(a.AddNIC(stack.NICConfig{}, "10.0.0.1/24"), b.AddNIC(stack.NICConfig{}, "10.0.0.2/24"), link, link)

	apps := sim.NewApps(n)
	if _, err := apps.Serve(b, netip.MustParseAddrPort("0.0.0.0:80"), sim.ServerConfig{}); err != nil {
		panic(err)
	}
	f := apps.Dial(0, a, netip.MustParseAddrPort("10.0.0.2:80"), sim.FlowConfig{Up: 1_000_000, Down: 100_000})
	if err := n.Run(time.Hour, apps.Done); err != nil {
		panic(err)
	}
	fmt.Println("intact:", f.Check() == nil)
	fmt.Println("bytes up:", f.Up.Read, "down:", f.Down.Read)
	// Output:
	// intact: true
	// bytes up: 1000008 down: 100000
}
