//go:build race

package webrtc

// raceEnabled skips allocation assertions, which the race detector breaks.
const raceEnabled = true
