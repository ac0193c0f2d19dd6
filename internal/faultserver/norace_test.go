//go:build !race

package faultserver

// raceEnabled reports that the race detector is on, which slows the tests.
const raceEnabled = false
