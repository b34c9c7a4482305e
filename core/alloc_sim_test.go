package core

import (
	"testing"
	"time"

	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/track"
)

// remb has the subscriber p report bps as its REMB every 200 ms until
// stop returns true, over its uplink.
func (w *world) remb(p *peer, bps func() uint64, stop func() bool) {
	var tick func(now time.Time)
	tick = func(now time.Time) {
		if stop() || !p.alive {
			return
		}
		pkt := track.AppendREMB(nil, 77, bps(), []uint32{1})
		w.s.Send(p.up, len(pkt), func(now time.Time) {
			if p.alive {
				_ = w.n.HandleRTCP(now, p.h, pkt)
				w.drain()
			}
		})
		w.s.At(now.Add(200*time.Millisecond), tick)
	}
	w.s.At(w.s.Now(), tick)
}

// layersOf is what p is forwarded of its one subscription, and whether
// it is paused.
func (w *world) layersOf(p *peer, k endpoint.SubKey) (int, track.LocalState) {
	ep, _ := w.n.Endpoint(p.h)
	lt, ok := ep.Subscription(k)
	if !ok {
		w.t.Fatalf("%s has no subscription %v", p.id, k)
	}
	cur, _ := lt.CurrentLayers()
	return cur, lt.State()
}

// A subscriber's REMB drives the allocator: a simulcast publisher at about
// 150 k / 500 k / 1.5 Mbps; viewers reporting 300 k, 900 k and nothing
// get the lowest, the middle and the top encoding, media flowing and
// continuous throughout. When the 300 k one's estimate rises it climbs;
// when it stops sending REMB it gets the top. A subscription whose minimum
// (spatial 1) does not fit is paused and its peer told, then resumed.
func TestSimREMBAllocatesLayers(t *testing.T) {
	w := newWorld(t, 31, Config{})
	pub := w.join("pub", "r", false)
	tag := testutil.TagOf("r", "pub", "cam")
	src := testutil.NewSimulcastVP8(w.s.Rand, testutil.SimulcastConfig{SSRCs: [3]uint32{10, 11, 12}, Tag: tag, KeyframeInterval: 3 * time.Second})
	w.publish(pub, "cam", track.CodecVP8, []uint32{10, 11, 12}, src)
	k := endpoint.SubKey{Peer: "pub", Track: "cam"}
	var viewers []*peer
	rates := []uint64{300_000, 900_000, 0}
	stopped := false
	for i, rate := range rates {
		v := w.join([]string{"low", "mid", "top"}[i], "r", false)
		v.checker.Allow(tag)
		if _, err := w.n.Subscribe(w.s.Now(), v.h, "pub", "cam", endpoint.SubscribeOptions{Spatial: -1, Temporal: -1}); err != nil {
			t.Fatal(err)
		}
		w.drain()
		if rate > 0 {
			i := i
			w.remb(v, func() uint64 { return rates[i] }, func() bool { return i == 0 && stopped })
		}
		viewers = append(viewers, v)
	}
	w.s.RunFor(5 * time.Second)
	for i, want := range []int{0, 1, 2} {
		if got, st := w.layersOf(viewers[i], k); got != want || st != track.LocalForwarding {
			t.Errorf("%s: encoding %d (%v), want %d", viewers[i].id, got, st, want)
		}
	}
	rates[0] = 700_000
	w.s.RunFor(4 * time.Second)
	if got, _ := w.layersOf(viewers[0], k); got != 1 {
		t.Errorf("low, estimate raised to 700 k: encoding %d, want 1", got)
	}
	stopped = true
	w.s.RunFor(8 * time.Second)
	if got, _ := w.layersOf(viewers[0], k); got != 2 {
		t.Errorf("low, no more REMB: encoding %d, want 2", got)
	}
	ep, _ := w.n.Endpoint(viewers[1].h)
	if bw := ep.Bandwidth(); bw.EstimateBps != 900_000 || bw.AllocatedBps < 300_000 || bw.AllocatedBps > 800_000 || bw.DesiredBps < 1_000_000 {
		t.Errorf("mid's bandwidth figures %+v", bw)
	}

	// Minimum spatial 1 under 300 k: paused, and told; resumed at 900 k.
	pick := w.join("picky", "r", false)
	pick.checker.Allow(tag)
	prate := uint64(300_000)
	w.remb(pick, func() uint64 { return prate }, func() bool { return false })
	w.s.RunFor(time.Second)
	var told []endpoint.SubscriptionLayers
	w.tapEvents = func(p *peer, e endpoint.Event) {
		if l, ok := e.(endpoint.SubscriptionLayers); ok && p == pick {
			told = append(told, l)
		}
	}
	if _, err := w.n.Subscribe(w.s.Now(), pick.h, "pub", "cam", endpoint.SubscribeOptions{Spatial: -1, Temporal: -1, MinSpatial: 1}); err != nil {
		t.Fatal(err)
	}
	w.drain()
	w.s.RunFor(3 * time.Second)
	if _, st := w.layersOf(pick, k); st != track.LocalPaused {
		t.Fatalf("picky under 300 k: %v, want paused", st)
	}
	if len(told) == 0 || !told[len(told)-1].Paused {
		t.Fatalf("picky was told %+v", told)
	}
	prate = 900_000
	w.s.RunFor(4 * time.Second)
	if got, st := w.layersOf(pick, k); got != 1 || st != track.LocalForwarding {
		t.Fatalf("picky at 900 k: encoding %d %v", got, st)
	}
	if l := told[len(told)-1]; l.Paused || l.Target.Spatial != 1 {
		t.Fatalf("picky was told %+v last", l)
	}
	w.check(append(viewers, pick)...)
	for _, v := range append(viewers, pick) {
		if st := v.checker.Stats(tag); st.Frames < 100 {
			t.Errorf("%s decoded %d frames", v.id, st.Frames)
		}
	}
}
