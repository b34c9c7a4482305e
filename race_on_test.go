//go:build race

package sfu_test

// raceEnabled: the race detector slows everything several times, so
// timing bounds are not asserted and load tests run smaller.
const raceEnabled = true
