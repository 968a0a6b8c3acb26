//go:build race

package interop

// raceEnabled is set when the race detector is on: it makes the stack
// several times slower, and the flood tests offer a tenth of the rate.
const raceEnabled = true
