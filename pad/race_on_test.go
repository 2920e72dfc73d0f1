//go:build race

package pad

// raceEnabled thins the exhaustive tamper loops under the race detector, which slows them ten
// times and finds nothing in them (they run on one goroutine); the full loops run without -race.
const raceEnabled = true
