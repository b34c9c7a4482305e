package core

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/track"
)

// churnPeer is one seat of a room in the churn scenario.
type churnPeer struct {
	id, room string
	p        *peer
	auto     bool
	tracks   map[string]*bool // published track → stop flag
	subs     map[string]bool  // "peer/track" subscribed explicitly
	subGen   map[uint32]int   // per tag, to cancel stale delayed Disallows
	nextSSRC uint32
}

var churnTracks = []string{"cam", "mic"}

// churn runs rooms × seats of random join/leave/publish/unpublish/
// subscribe/unsubscribe for dur of virtual time, then everyone leaves.
// It checks every subscriber's stream throughout and, at the end, that the
// node holds nothing.
func churn(w *world, rooms, seats int, dur time.Duration) {
	t := w.t
	var all []*churnPeer
	byRoom := map[string][]*churnPeer{}
	for r := 0; r < rooms; r++ {
		room := fmt.Sprint("room", r)
		for i := 0; i < seats; i++ {
			cp := &churnPeer{id: fmt.Sprint("r", r, "p", i), room: room, nextSSRC: 1}
			all = append(all, cp)
			byRoom[room] = append(byRoom[room], cp)
		}
	}
	var checkers []*peer
	tagOf := func(room, peer, name string) uint32 { return testutil.TagOf(room, peer, name) }
	publish := func(cp *churnPeer, name string) {
		stop := false
		cp.tracks[name] = &stop
		ssrc := cp.nextSSRC
		cp.nextSSRC++
		tag := tagOf(cp.room, cp.id, name)
		var src testutil.Source
		codec := track.CodecOpus
		if name == "cam" {
			codec = track.CodecVP8
			src = testutil.NewVP8Source(w.s.Rand, testutil.VP8Config{SSRC: ssrc, Tag: tag, FPS: 5, BitrateBps: 40_000,
				KeyframeInterval: 5 * time.Second, TemporalLayers: 2})
		} else {
			src = testutil.NewOpusSource(w.s.Rand, testutil.OpusConfig{SSRC: ssrc, Tag: tag, Ptime: 60 * time.Millisecond})
		}
		p := cp.p
		cp.p.sources[ssrc] = src
		if err := w.n.Publish(w.s.Now(), p.h, endpoint.TrackOptions{Name: name, Codec: codec, Encodings: []track.Encoding{{SSRC: ssrc}}}); err != nil {
			t.Fatalf("publish %s/%s: %v", cp.id, name, err)
		}
		w.drain()
		testutil.RunSource(w.s, src, func() bool { return !p.alive || stop }, func(now time.Time, pkt []byte) {
			w.s.Send(p.up, len(pkt), func(now time.Time) {
				if p.alive && !stop {
					_ = w.n.HandleRTP(now, p.h, pkt)
					w.drain()
				}
			})
		})
	}
	act := func(now time.Time) {
		cp := all[w.s.Rand.IntN(len(all))]
		if cp.p == nil {
			cp.auto = w.s.Chance(0.3)
			cp.p = w.join(cp.id, cp.room, cp.auto)
			checkers = append(checkers, cp.p)
			cp.tracks, cp.subs, cp.subGen = map[string]*bool{}, map[string]bool{}, map[uint32]int{}
			if cp.auto {
				for _, o := range byRoom[cp.room] {
					for _, name := range churnTracks {
						cp.p.checker.Allow(tagOf(cp.room, o.id, name))
					}
				}
			}
			return
		}
		switch x := w.s.Rand.Float64(); {
		case x < 0.15:
			for _, stop := range cp.tracks {
				*stop = true
			}
			w.leave(cp.p)
			cp.p = nil
		case x < 0.45:
			name := churnTracks[w.s.Rand.IntN(2)]
			if cp.tracks[name] == nil {
				publish(cp, name)
			}
		case x < 0.55:
			name := churnTracks[w.s.Rand.IntN(2)]
			if stop := cp.tracks[name]; stop != nil {
				*stop = true
				delete(cp.tracks, name)
				if err := w.n.Unpublish(now, cp.p.h, name); err != nil {
					t.Fatalf("unpublish: %v", err)
				}
				w.drain()
			}
		case x < 0.85:
			if cp.auto {
				return
			}
			o := byRoom[cp.room][w.s.Rand.IntN(seats)]
			name := churnTracks[w.s.Rand.IntN(2)]
			key := o.id + "/" + name
			if o.p == nil || o.tracks[name] == nil || cp.subs[key] {
				return
			}
			tag := tagOf(cp.room, o.id, name)
			cp.subGen[tag]++
			cp.p.checker.Allow(tag)
			if _, err := w.n.Subscribe(now, cp.p.h, o.id, name, endpoint.SubscribeOptions{Spatial: -1, Temporal: -1}); err != nil {
				t.Fatalf("subscribe %s to %s: %v", cp.id, key, err)
			}
			cp.subs[key] = true
			w.drain()
		default:
			if len(cp.subs) == 0 {
				return
			}
			// Pick from sorted keys: map order must not reach the run.
			keys := slices.Sorted(maps.Keys(cp.subs))
			key := keys[w.s.Rand.IntN(len(keys))]
			peerID, name, _ := strings.Cut(key, "/")
			err := w.n.Unsubscribe(now, cp.p.h, peerID, name)
			if err != nil && !isEnded(err) {
				t.Fatalf("unsubscribe %s from %s: %v", cp.id, key, err)
			}
			delete(cp.subs, key)
			tag := tagOf(cp.room, peerID, name)
			cp.subGen[tag]++
			gen, p := cp.subGen[tag], cp.p
			// Packets already on the wire may still arrive.
			w.s.After(2*w.latencyMax, func(time.Time) {
				if cp.p == p && cp.subGen[tag] == gen {
					p.checker.Disallow(tag)
				}
			})
			w.drain()
		}
	}
	end := w.s.Now().Add(dur)
	var tick func(now time.Time)
	tick = func(now time.Time) {
		if now.After(end) {
			return
		}
		act(now)
		w.s.After(w.s.Duration(10*time.Millisecond, 200*time.Millisecond), tick)
	}
	w.s.After(0, tick)
	w.s.RunUntil(end)
	// Everyone leaves.
	for _, cp := range all {
		if cp.p != nil {
			for _, stop := range cp.tracks {
				*stop = true
			}
			w.leave(cp.p)
			cp.p = nil
		}
	}
	w.s.RunFor(cluster.DefaultSourceGrace + time.Second)
	w.check(checkers...)
	if c := w.n.Counts(); c != (Counts{}) {
		t.Fatalf("live objects after everyone left: %+v", c)
	}
	if _, ok := w.n.PollTimeout(); ok {
		t.Fatal("a timer is still set after everyone left")
	}
}

// isEnded: an explicit subscription can end on its own when its source
// does not come back within the grace; unsubscribing then is a no-op.
func isEnded(err error) bool { return errors.Is(err, endpoint.ErrNotSubscribed) }

// TestSimChurn: 50 rooms × 10 peers joining, leaving, publishing,
// subscribing at random for 10 virtual minutes. Every checker holds
// throughout, and when everyone has left, nothing is left.
func TestSimChurn(t *testing.T) {
	seeds := testutil.Seeds(400, 3)
	dur := 10 * time.Minute
	if testing.Short() {
		seeds, dur = seeds[:1], time.Minute
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel() // each seed is its own world: no shared state
			w := newWorld(t, seed, Config{})
			churn(w, 50, 10, dur)
			if w.delivered < uint64(dur/time.Second)*150 {
				t.Fatalf("only %d packets delivered: the scenario did little", w.delivered)
			}
			t.Logf("%d packets delivered, %d events", w.delivered, w.s.Steps())
		})
	}
}
