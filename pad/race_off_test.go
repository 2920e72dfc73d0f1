//go:build !race

package pad

const raceEnabled = false
