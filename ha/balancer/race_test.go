//go:build race

package balancer

// raceEnabled trims the simulations under -race, where they run ten times slower and,
// being single-goroutine, have nothing for the detector to find.
const raceEnabled = true
