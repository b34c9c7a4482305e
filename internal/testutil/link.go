package testutil

import "time"

// Link is a one-way network path between two simulated hosts. The zero
// value delivers instantly and never loses anything. Fields may be changed
// between sends (to model a partition, set Down).
type Link struct {
	Latency      time.Duration // one-way base delay
	Jitter       time.Duration // uniform extra delay in [0, Jitter]
	Loss         float64       // probability a datagram is dropped
	Reorder      bool          // when false, jitter never reorders: delivery times are monotonic
	BandwidthBps int64         // serialization rate; 0 is unlimited
	QueueMax     time.Duration // bandwidth-capped queue holds at most this much delay (default 200ms)
	Down         bool          // partitioned: everything is dropped

	Sent, Delivered, Dropped uint64

	busyUntil    time.Time // bandwidth serialization
	lastDelivery time.Time // for in-order delivery
}

// Send schedules deliver for a datagram of size bytes across l, or drops it.
// deliver runs at the arrival time. It reports whether the datagram was
// accepted (not dropped at send time).
func (s *Sim) Send(l *Link, size int, deliver func(now time.Time)) bool {
	l.Sent++
	if l.Down || s.Chance(l.Loss) {
		l.Dropped++
		return false
	}
	depart := s.now
	if l.BandwidthBps > 0 {
		if l.busyUntil.After(depart) {
			depart = l.busyUntil
		}
		qmax := l.QueueMax
		if qmax == 0 {
			qmax = 200 * time.Millisecond
		}
		if depart.Sub(s.now) > qmax {
			l.Dropped++
			return false
		}
		depart = depart.Add(time.Duration(int64(size) * 8 * int64(time.Second) / l.BandwidthBps))
		l.busyUntil = depart
	}
	at := depart.Add(l.Latency)
	if l.Jitter > 0 {
		at = at.Add(s.Duration(0, l.Jitter))
	}
	if !l.Reorder && at.Before(l.lastDelivery) {
		at = l.lastDelivery
	}
	l.lastDelivery = at
	s.At(at, func(now time.Time) {
		l.Delivered++
		deliver(now)
	})
	return true
}
