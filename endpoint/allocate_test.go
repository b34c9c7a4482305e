package endpoint

import (
	"fmt"
	"testing"
)

// simulcast is a three-encoding source without temporal layers, at
// about 150 k, 500 k and 1.5 Mbps.
func simulcast(prio int) AllocTrack {
	t := AllocTrack{Priority: prio, Max: NoLimit}
	t.Bitrate[0][0], t.Bitrate[1][0], t.Bitrate[2][0] = 150_000, 500_000, 1_500_000
	return t
}

// layered is a two-encoding source with three temporal layers each.
func layered() AllocTrack {
	t := AllocTrack{Max: NoLimit}
	t.Bitrate[0] = [MaxTemporalLayers]int64{60_000, 100_000, 150_000}
	t.Bitrate[1] = [MaxTemporalLayers]int64{250_000, 400_000, 600_000}
	return t
}

func allocate(budget int64, tracks ...AllocTrack) ([]Allocation, int64) {
	out := make([]Allocation, len(tracks))
	d := Allocate(budget, tracks, out, make([]int, len(tracks)))
	return out, d
}

func TestAllocate(t *testing.T) {
	minS1 := simulcast(1)
	minS1.Min = Layer{1, 0}
	capped := simulcast(1)
	capped.Max = Layer{1, MaxTemporalLayers - 1}
	for _, tc := range []struct {
		name   string
		budget int64
		tracks []AllocTrack
		want   []string
	}{
		{"all fits", 5_000_000, []AllocTrack{simulcast(1)}, []string{"S2T0"}},
		{"top does not fit", 1_000_000, []AllocTrack{simulcast(1)}, []string{"S1T0"}},
		{"only the lowest", 300_000, []AllocTrack{simulcast(1)}, []string{"S0T0"}},
		{"nothing fits", 100_000, []AllocTrack{simulcast(1)}, []string{"paused S0T0"}},
		// Two subscriptions under 800 kbps, priority 2 and 1: the higher
		// gets the larger layer.
		{"priority", 800_000, []AllocTrack{simulcast(1), simulcast(2)}, []string{"S0T0", "S1T0"}},
		{"equal priorities share", 1_200_000, []AllocTrack{simulcast(1), simulcast(1)}, []string{"S1T0", "S1T0"}},
		{"min spatial 1 under a small cap", 400_000, []AllocTrack{minS1}, []string{"paused S1T0"}},
		{"min spatial 1 when it fits", 700_000, []AllocTrack{minS1}, []string{"S1T0"}},
		{"max spatial 1", 5_000_000, []AllocTrack{capped}, []string{"S1T0"}},
		{"temporal layers", 500_000, []AllocTrack{layered()}, []string{"S1T1"}},
		{"temporal layers, little", 120_000, []AllocTrack{layered()}, []string{"S0T1"}},
		{"a paused one does not block a lower one", 400_000, []AllocTrack{minS1, simulcast(0)}, []string{"paused S1T0", "S0T0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.tracks {
				tc.tracks[i].Paused = true // a first allocation: everything needs headroom
			}
			out, _ := allocate(tc.budget, tc.tracks...)
			for i, a := range out {
				got := fmt.Sprintf("S%dT%d", a.Target.Spatial, a.Target.Temporal)
				if a.Paused {
					got = "paused " + got
				}
				if got != tc.want[i] {
					t.Errorf("track %d: %s, want %s (%+v)", i, got, tc.want[i], a)
				}
			}
		})
	}
}

// A layer kept needs only its cost; climbing above needs 15 % more. So a
// budget wavering just around a layer's bitrate neither drops nor
// re-takes it each time, and a fall below it drops it at once.
func TestAllocateHysteresis(t *testing.T) {
	tr := simulcast(1)
	tr.Paused = true
	step := func(budget int64) Layer {
		out, _ := allocate(budget, tr)
		tr.Current, tr.Paused = out[0].Target, out[0].Paused
		return tr.Current
	}
	if l := step(560_000); l.Spatial != 0 {
		t.Fatalf("climbed to %v with 12 %% headroom", l)
	}
	if l := step(580_000); l.Spatial != 1 {
		t.Fatalf("did not climb with 16 %% headroom: %v", l)
	}
	switches := 0
	prev := tr.Current
	for i := range 100 {
		b := int64(510_000 + 50_000*(i%2)) // 510-560 k: never under 500 k, never 15 % over
		if l := step(b); l != prev {
			switches++
			prev = l
		}
	}
	if switches != 0 {
		t.Fatalf("%d switches with the budget wavering above the layer", switches)
	}
	if l := step(490_000); l.Spatial != 0 {
		t.Fatalf("kept %v below its bitrate", l)
	}
}

// The desired bitrate is the sum of each subscription's best layer within
// its limits; unavailable ones add nothing.
func TestAllocateDesired(t *testing.T) {
	capped := simulcast(1)
	capped.Max = Layer{1, 0}
	none := AllocTrack{Max: NoLimit}
	out, d := allocate(100_000, simulcast(1), capped, none)
	if d != 1_500_000+500_000 {
		t.Fatalf("desired %d", d)
	}
	if !out[2].Unavailable || out[2].Paused {
		t.Fatalf("a source sending nothing: %+v", out[2])
	}
}

func BenchmarkAllocate(b *testing.B) {
	tracks := make([]AllocTrack, 8)
	for i := range tracks {
		tracks[i] = layered()
		tracks[i].Bitrate[2] = [MaxTemporalLayers]int64{800_000, 1_200_000, 1_800_000}
		tracks[i].Priority = i % 3
	}
	out := make([]Allocation, len(tracks))
	order := make([]int, len(tracks))
	b.ReportAllocs()
	for b.Loop() {
		Allocate(4_000_000, tracks, out, order)
	}
}
