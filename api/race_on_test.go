//go:build race

package api

// raceEnabled skips allocation counts under the race detector, which allocates where a normal
// build does not (testing.AllocsPerRun then counts the detector's, not the code's).
const raceEnabled = true
