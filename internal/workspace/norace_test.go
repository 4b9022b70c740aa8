//go:build !race

package workspace

// raceEnabled tells whether this test binary was built with -race, so the
// nested runs use the race detector too.
const raceEnabled = false
