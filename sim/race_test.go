//go:build race

package sim

// raceEnabled is set when the race detector is on: it slows the
// simulation several times, so wall-time bounds do not apply.
const raceEnabled = true
