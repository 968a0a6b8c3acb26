//go:build !race

package batchdev_test

const raceEnabled = false
