package track

import "time"

// RecomputedDeadline is the track's deadline computed afresh from its
// timer state, for tests to check the kept one against.
func (t *RemoteTrack) RecomputedDeadline() time.Time { return t.nextDeadline() }
