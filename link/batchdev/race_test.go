//go:build race

package batchdev_test

// raceEnabled is set when the race detector is on: allocation counts are
// then meaningless.
const raceEnabled = true
