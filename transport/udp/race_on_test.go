//go:build race

package udp

// raceEnabled skips allocation assertions, which the race detector breaks.
const raceEnabled = true
