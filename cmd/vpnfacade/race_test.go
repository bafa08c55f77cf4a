//go:build race

package main_test

// raceEnabled reports whether the tests run with the race detector.
const raceEnabled = true
