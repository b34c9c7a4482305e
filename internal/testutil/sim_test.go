package testutil

import (
	"testing"
	"time"
)

func TestSimOrdersEvents(t *testing.T) {
	s := NewSim(t, 1)
	var got []int
	for i := 0; i < 200; i++ {
		d := time.Duration(s.Rand.IntN(20)) * time.Millisecond
		i := i
		s.After(d, func(now time.Time) {
			if now != s.Now() {
				t.Fatal("clock not at the event")
			}
			got = append(got, int(now.Sub(Epoch)/time.Millisecond)*1000+i)
		})
	}
	s.RunFor(time.Second)
	if len(got) != 200 {
		t.Fatalf("%d events ran", len(got))
	}
	for i := 1; i < len(got); i++ {
		// Time order, and scheduling order among equal times.
		if got[i] < got[i-1] {
			t.Fatalf("event %d (%d) ran before %d", i, got[i], got[i-1])
		}
	}
	if !s.Now().Equal(Epoch.Add(time.Second)) {
		t.Fatalf("clock %v", s.Now())
	}
}

func TestLinkLatencyLossAndOrder(t *testing.T) {
	s := NewSim(t, 2)
	l := &Link{Latency: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.25}
	var arrivals []time.Duration
	for i := 0; i < 1000; i++ {
		s.Send(l, 100, func(now time.Time) { arrivals = append(arrivals, now.Sub(Epoch)) })
	}
	s.RunFor(time.Second)
	if l.Delivered != uint64(len(arrivals)) || l.Delivered+l.Dropped != 1000 {
		t.Fatalf("delivered %d dropped %d arrivals %d", l.Delivered, l.Dropped, len(arrivals))
	}
	if l.Dropped < 200 || l.Dropped > 300 {
		t.Fatalf("dropped %d of 1000 at 25%% loss", l.Dropped)
	}
	for i, a := range arrivals {
		if a < 10*time.Millisecond || a > 15*time.Millisecond || (i > 0 && a < arrivals[i-1]) {
			t.Fatalf("arrival %d at %v", i, a)
		}
	}
	// Bandwidth: 100 kbps serializes 125-byte datagrams at 10 ms each.
	b := &Link{BandwidthBps: 100_000}
	var last time.Time
	for i := 0; i < 10; i++ {
		s.Send(b, 125, func(now time.Time) { last = now })
	}
	start := s.Now()
	s.RunFor(time.Second)
	if got := last.Sub(start); got != 100*time.Millisecond {
		t.Fatalf("10 datagrams took %v, want 100ms", got)
	}
	b.Down = true
	if s.Send(b, 1, func(time.Time) { t.Fatal("delivered over a down link") }) {
		t.Fatal("accepted over a down link")
	}
	s.RunFor(time.Second)
}
