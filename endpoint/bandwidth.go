package endpoint

import (
	"math"
	"time"

	"github.com/sansrtc/sfu/track"
)

// allocInterval is how often the allocator runs while there is an
// estimate to share: the layers' measured bitrates change, sources come
// and go.
const allocInterval = 500 * time.Millisecond

// nominalBps is what a spatial layer is assumed to cost until its
// bitrate has been measured (the first second of a source).
var nominalBps = [MaxSpatialLayers]int64{150_000, 500_000, 1_500_000, 3_000_000}

// LayerLimits bound the layers the allocator gives a video subscription,
// and rank it against the peer's others.
type LayerLimits struct {
	// Priority: a higher one is served first (see Allocate).
	Priority int
	// Min is the least the subscription takes: below it, it is paused
	// (and the peer told) rather than degraded. Max is the most it is
	// given (NoLimit: all the source has).
	Min, Max Layer
}

// SubscriptionLayers tells the peer what the allocator gives one of its
// video subscriptions, when that changes: the layers forwarded, or that
// it is paused because not even its minimum fits the peer's bandwidth.
type SubscriptionLayers struct {
	Key    SubKey
	SSRC   uint32
	Target Layer
	Paused bool
	// EstimateBps is the peer's bandwidth estimate it was allocated from
	// (0: none, every subscription at its maximum).
	EstimateBps int64
}

func (SubscriptionLayers) isEvent() {}

// allocState is the allocator's reused input and output.
type allocState struct {
	tracks []AllocTrack
	out    []Allocation
	order  []int
	idx    []int // index into locals of tracks[i]
	next   time.Time
	dirty  bool
}

// BandwidthStats are the endpoint's view of the peer's downlink.
type BandwidthStats struct {
	// EstimateBps is the bandwidth estimate allocated from (0: none).
	// REMBBps is the peer's last REMB.
	EstimateBps, REMBBps int64
	// DesiredBps is what the peer's subscriptions would take at their
	// maximum, AllocatedBps what they are given, AudioBps what its audio
	// takes first.
	DesiredBps, AllocatedBps, AudioBps int64
	// Paused is how many video subscriptions are paused for bandwidth.
	Paused int
}

// Bandwidth returns the endpoint's bandwidth and allocation figures.
func (e *Endpoint) Bandwidth() BandwidthStats { return e.bw }

// SetLayerLimits sets a video subscription's priority and layer limits;
// the allocator applies them at once.
func (e *Endpoint) SetLayerLimits(now time.Time, k SubKey, l LayerLimits) error {
	for i := range e.locals {
		if e.locals[i].key == k {
			e.locals[i].limits = l
			e.reallocate(now)
			return nil
		}
	}
	return ErrNotSubscribed
}

// LayerLimits returns a subscription's limits.
func (e *Endpoint) LayerLimits(k SubKey) (LayerLimits, bool) {
	for i := range e.locals {
		if e.locals[i].key == k {
			return e.locals[i].limits, true
		}
	}
	return LayerLimits{}, false
}

// SetPaused pauses or resumes a subscription for the peer; one paused
// for bandwidth stays paused until the allocator resumes it.
func (e *Endpoint) SetPaused(now time.Time, k SubKey, paused bool) error {
	for i := range e.locals {
		if l := &e.locals[i]; l.key == k {
			l.userPaused = paused
			l.lt.SetPaused(now, l.userPaused || l.bwPaused)
			e.reallocate(now)
			return nil
		}
	}
	return ErrNotSubscribed
}

// reallocate runs the allocator at the next HandleTimeout.
func (e *Endpoint) reallocate(now time.Time) {
	e.alloc.dirty = true
	e.alloc.next = now
}

// estimate is the bandwidth estimate to allocate from: the peer's REMB
// while it sends them (for a peer that negotiated no transport-cc), else
// none.
func (e *Endpoint) estimate(now time.Time) int64 {
	if e.rembBps > 0 && now.Sub(e.rembAt) < 5*time.Second {
		return e.rembBps
	}
	return 0
}

// handleREMB takes a REMB (receiver estimated maximum bitrate) from the
// peer about what it is sent.
func (e *Endpoint) handleREMB(now time.Time, bps uint64) {
	e.stats.REMBs++
	prev := e.rembBps
	e.rembBps, e.rembAt = int64(min(bps, math.MaxInt64)), now
	e.bw.REMBBps = e.rembBps
	// A fall is acted on at once, a rise at the next round (at once
	// when none is due: the first estimate).
	if e.rembBps < prev || e.alloc.next.IsZero() {
		e.reallocate(now)
	}
}

// allocate shares the estimate among the peer's video subscriptions,
// audio taken out first, and applies the choice to their LocalTracks.
func (e *Endpoint) allocate(now time.Time) {
	a := &e.alloc
	a.tracks, a.idx = a.tracks[:0], a.idx[:0]
	budget := e.estimate(now)
	e.bw.EstimateBps = budget
	if budget == 0 {
		budget = math.MaxInt64 / 2 // no estimate: everything at its maximum
	}
	e.bw.AudioBps = 0
	for i := range e.locals {
		l := &e.locals[i]
		src := l.lt.Source()
		if src == nil {
			continue
		}
		if l.lt.Kind() == track.KindAudio {
			if !l.userPaused {
				e.bw.AudioBps += int64(src.BitrateBps(0))
			}
			continue
		}
		if l.userPaused {
			continue
		}
		t := AllocTrack{Priority: l.limits.Priority, Min: l.limits.Min, Max: l.limits.Max, Current: l.given, Paused: l.bwPaused}
		for s := 0; s < min(src.Encodings(), MaxSpatialLayers); s++ {
			// An encoding not arriving now is priced at its nominal
			// bitrate rather than left out: a relay pulls only what its
			// subscribers are given, so what is not pulled yet looks
			// inactive here. The LocalTrack falls back to the best active
			// encoding below the one allocated.
			n := 1
			if src.Active(s, now) {
				n = min(src.TemporalLayers(s), MaxTemporalLayers)
			}
			for tl := range n {
				b := int64(src.TemporalBitrateBps(s, tl))
				if b == 0 || !src.Active(s, now) {
					b = nominalBps[s] * int64(tl+1) / int64(n)
				}
				t.Bitrate[s][tl] = b
			}
		}
		a.tracks = append(a.tracks, t)
		a.idx = append(a.idx, i)
	}
	budget = max(budget-e.bw.AudioBps, 0)
	if cap(a.out) < len(a.tracks) {
		a.out = make([]Allocation, len(a.tracks))
		a.order = make([]int, len(a.tracks))
	}
	a.out, a.order = a.out[:len(a.tracks)], a.order[:len(a.tracks)]
	e.bw.DesiredBps = Allocate(budget, a.tracks, a.out, a.order)
	e.bw.AllocatedBps, e.bw.Paused = 0, 0
	for j, r := range a.out {
		l := &e.locals[a.idx[j]]
		if r.Unavailable {
			continue // nothing sent within its limits: it waits as it is
		}
		e.bw.AllocatedBps += r.Bps
		if r.Paused {
			e.bw.Paused++
		}
		changed := r.Paused != l.bwPaused || (!r.Paused && r.Target != l.given)
		l.bwPaused = r.Paused
		if !r.Paused {
			l.given = r.Target
			// The top temporal layer measured is "all": a layer not seen
			// in the last second is not cut off for good. Without an
			// estimate nothing is capped.
			spatial, temporal := int(r.Target.Spatial), r.Target.Temporal
			if src := l.lt.Source(); src != nil && int(temporal) >= src.TemporalLayers(spatial)-1 {
				temporal = -1
			}
			if e.bw.EstimateBps == 0 {
				spatial, temporal = 1<<10, -1
			}
			l.lt.SetAllocation(now, spatial, temporal)
		}
		l.lt.SetPaused(now, l.userPaused || l.bwPaused)
		if changed {
			e.events = append(e.events, SubscriptionLayers{Key: l.key, SSRC: l.lt.SSRC(), Target: r.Target, Paused: r.Paused, EstimateBps: e.bw.EstimateBps})
		}
	}
	a.dirty = false
	// With an estimate to share, allocate again as bitrates move; with
	// none, everything is at its maximum until something changes.
	a.next = time.Time{}
	if e.bw.EstimateBps > 0 && len(a.tracks) > 0 {
		a.next = now.Add(allocInterval)
	}
}

// PollEvent returns the next event for the peer that the endpoint itself
// produced (SubscriptionLayers).
func (e *Endpoint) PollEvent() (Event, bool) {
	if e.evHead == len(e.events) {
		e.events, e.evHead = e.events[:0], 0
		return nil, false
	}
	ev := e.events[e.evHead]
	e.events[e.evHead] = nil
	e.evHead++
	return ev, true
}
