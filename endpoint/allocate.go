package endpoint

// Layer limits of the allocator: simulcast encodings or SVC spatial
// layers, and temporal layers, that a subscription can be given.
const (
	MaxSpatialLayers  = 4
	MaxTemporalLayers = 4
)

// upgradeHeadroom is how much more than a layer costs the budget must
// hold before the allocator moves a subscription up to it, in 1/100: a
// layer kept needs only its own cost, so an estimate wavering around a
// layer's bitrate does not make the layer flap.
const upgradeHeadroom = 115

// NoLimit is the Max of a subscription its layers are not limited.
var NoLimit = Layer{MaxSpatialLayers - 1, MaxTemporalLayers - 1}

// Layer is a spatial and a temporal layer, each counted from 0.
type Layer struct {
	Spatial, Temporal int8
}

// Less orders layers the way the allocator climbs them: spatial first,
// then temporal.
func (l Layer) Less(o Layer) bool {
	return l.Spatial < o.Spatial || l.Spatial == o.Spatial && l.Temporal < o.Temporal
}

// AllocTrack is one video subscription as the allocator sees it.
type AllocTrack struct {
	// Priority orders subscriptions: a higher one is served first, and
	// climbs as far as the budget lets it before a lower one climbs at
	// all; equal ones climb a layer at a time in turn.
	Priority int
	// Bitrate[s][t] is what spatial layer s costs with its temporal
	// layers up to t, in bits per second; 0 where the source does not
	// send that layer (an inactive simulcast encoding, no temporal
	// layering).
	Bitrate [MaxSpatialLayers][MaxTemporalLayers]int64
	// Min and Max limit the layers given: spatial in Min.Spatial to
	// Max.Spatial, temporal in Min.Temporal to Max.Temporal (NoLimit for
	// none). Below Min the subscription is paused, not degraded.
	Min, Max Layer
	// Current is what the subscription is given now and Paused whether it
	// is paused for bandwidth: climbing above Current costs headroom,
	// keeping it does not.
	Current Layer
	Paused  bool
}

// Allocation is the allocator's choice for one subscription.
type Allocation struct {
	// Target is the layer to forward; Paused is set when not even Min
	// fits (the subscriber should be told), and Unavailable when the
	// source sends no layer within Min..Max at all (it waits, not paused
	// for bandwidth).
	Target      Layer
	Paused      bool
	Unavailable bool
	// Bps is what Target costs, and DesiredBps what Max (or the best
	// layer the source sends within it) would.
	Bps, DesiredBps int64
}

// Allocate shares budgetBps among the tracks (audio must already be taken
// out of it: audio always goes first). Each gets its Min layer if the
// budget holds it, in priority order, else it is paused; then, a
// priority level at a time from the highest, subscriptions climb layer by
// layer (equal priorities taking turns) while the budget lasts. Moving
// above the current layer needs 15 % headroom, so a downgrade happens at
// once when the budget falls and an upgrade only when it clearly holds.
// out must have len(tracks) elements and order len(tracks) ints; they
// are the caller's so that allocating does not allocate. It returns the
// total desired bitrate, for the bandwidth estimator to probe towards.
func Allocate(budgetBps int64, tracks []AllocTrack, out []Allocation, order []int) (desiredBps int64) {
	order = order[:len(tracks)]
	for i := range tracks {
		order[i] = i
		// Insertion sort by priority, highest first, stable.
		for j := i; j > 0 && tracks[order[j]].Priority > tracks[order[j-1]].Priority; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	remaining := budgetBps
	for _, i := range order {
		t := &tracks[i]
		a := &out[i]
		*a = Allocation{}
		top, ok := t.best()
		first, okMin := t.next(Layer{-1, -1}, true)
		if !ok || !okMin {
			a.Unavailable, a.Target = true, t.Min
			continue
		}
		a.DesiredBps = t.Bitrate[top.Spatial][top.Temporal]
		desiredBps += a.DesiredBps
		if c := t.cost(first); c <= remaining {
			a.Target, a.Bps = first, t.Bitrate[first.Spatial][first.Temporal]
			remaining -= c
		} else {
			a.Paused, a.Target = true, first
		}
	}
	for lo := 0; lo < len(order); {
		// order[lo:hi] share a priority: they climb in turns.
		hi := lo + 1
		for hi < len(order) && tracks[order[hi]].Priority == tracks[order[lo]].Priority {
			hi++
		}
		for climbed := true; climbed; {
			climbed = false
			for _, i := range order[lo:hi] {
				t, a := &tracks[i], &out[i]
				if a.Paused || a.Unavailable {
					continue
				}
				n, ok := t.next(a.Target, false)
				if !ok {
					continue
				}
				// The step costs the difference, with headroom where it
				// climbs above what the subscription has now.
				c := t.cost(n) - t.cost(a.Target)
				if c <= remaining {
					remaining -= c
					a.Target, a.Bps = n, t.Bitrate[n.Spatial][n.Temporal]
					climbed = true
				}
			}
		}
		lo = hi
	}
	return desiredBps
}

// cost is what the budget must hold for l: its bitrate, plus headroom if
// it is above what the subscription is given now.
func (t *AllocTrack) cost(l Layer) int64 {
	b := t.Bitrate[l.Spatial][l.Temporal]
	if t.Paused || t.Current.Less(l) {
		return b * upgradeHeadroom / 100
	}
	return b
}

// within reports whether l is inside the subscription's limits and sent.
func (t *AllocTrack) within(l Layer) bool {
	return l.Spatial >= t.Min.Spatial && l.Spatial <= t.Max.Spatial &&
		l.Temporal >= t.Min.Temporal && l.Temporal <= t.Max.Temporal &&
		t.Bitrate[l.Spatial][l.Temporal] > 0
}

// next is the first layer above l (from the lowest with first) that is
// within the limits and sent.
func (t *AllocTrack) next(l Layer, first bool) (Layer, bool) {
	for s := int8(0); s < MaxSpatialLayers; s++ {
		for tl := int8(0); tl < MaxTemporalLayers; tl++ {
			c := Layer{s, tl}
			if (first || l.Less(c)) && t.within(c) {
				return c, true
			}
		}
	}
	return Layer{}, false
}

// best is the highest layer within the limits that is sent.
func (t *AllocTrack) best() (Layer, bool) {
	for s := int8(MaxSpatialLayers - 1); s >= 0; s-- {
		for tl := int8(MaxTemporalLayers - 1); tl >= 0; tl-- {
			if c := (Layer{s, tl}); t.within(c) {
				return c, true
			}
		}
	}
	return Layer{}, false
}
