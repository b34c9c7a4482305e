package driver

// place chooses the worker for a new session. load is each worker's
// sessions, room the sessions of the session's room on each worker (nil
// for a new room). The room's busiest worker wins while its load is
// within slack of the least loaded one, so a room stays on one worker
// (each packet crosses no in-process link) until that worker is slack
// sessions ahead; past that the least loaded worker takes it, and the
// room spans workers through the overlay. Ties go to the lowest index,
// so placement is deterministic.
func place(load, room []int, slack int) int {
	least := 0
	for i, l := range load {
		if l < load[least] {
			least = i
		}
	}
	best := -1
	for i, n := range room {
		if n > 0 && load[i] <= load[least]+slack && (best < 0 || n > room[best]) {
			best = i
		}
	}
	if best >= 0 {
		return best
	}
	return least
}
