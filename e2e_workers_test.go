package sfu_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/sansrtc/sfu"
	"github.com/sansrtc/sfu/core"
	"github.com/sansrtc/sfu/internal/testutil"
)

// TestPionAcrossWorkers: a room whose publisher is on worker 1 and whose
// viewers are on both workers. Every viewer receives continuous media:
// those on worker 0 through the in-process overlay link, those on worker
// 1 directly, with no gap in arrival. Single-port mode, where worker 0's
// socket hands worker 1's media over, does the same.
func TestPionAcrossWorkers(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single-port=%v", single), func(t *testing.T) {
			// Slack -1: always the least loaded worker, so the room spans
			// both.
			srv := startServer(t, sfu.Config{Workers: 2, PlacementSlack: -1, SinglePort: single})
			api := pionAPI(t, pion.NetworkTypeUDP4)
			r := rand.New(rand.NewPCG(21, 22))
			vtag, atag := testutil.TagOf("video"), testutil.TagOf("audio")
			warm := view(t, srv, api, "elsewhere", "warm") // worker 0
			pub := publish(t, srv, api, "room",
				pubTrack{pion.MimeTypeVP8, testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: vtag, FPS: 30, BitrateBps: 400_000})},
				pubTrack{pion.MimeTypeOpus, testutil.NewOpusSource(r, testutil.OpusConfig{SSRC: 2, Tag: atag})})
			st := srv.Driver().Stats()
			if st.Workers[1].Sessions != 1 {
				t.Fatalf("publisher not on worker 1: %+v", st.Workers)
			}
			var viewers []*viewer
			gaps := make([]time.Duration, 4)
			var mu sync.Mutex
			for i := range 4 {
				v := view(t, srv, api, "room", fmt.Sprint("viewer", i))
				var last time.Time
				v.mu.Lock()
				v.onPacket = func(now time.Time, _ []byte) { // audio and video: a packet every 20 ms at least
					mu.Lock()
					if !last.IsZero() && now.Sub(last) > gaps[i] {
						gaps[i] = now.Sub(last)
					}
					last = now
					mu.Unlock()
				}
				v.mu.Unlock()
				viewers = append(viewers, v)
			}
			st = srv.Driver().Stats()
			if st.Workers[0].Sessions < 2 || st.Workers[1].Sessions < 2 {
				t.Fatalf("viewers not on both workers: %+v", st.Workers)
			}
			for _, v := range viewers {
				waitFor(t, 15*time.Second, "30 video frames", func() bool { return v.stats(vtag).Frames >= 30 && v.stats(atag).Frames >= 25 })
			}
			// From here on every viewer receives: measure a window.
			mu.Lock()
			clear(gaps)
			mu.Unlock()
			before := make([]uint64, len(viewers))
			for i, v := range viewers {
				before[i] = v.stats(vtag).Frames
			}
			time.Sleep(3 * time.Second)
			// Copy the gaps, then read the viewers' stats without mu: a
			// viewer's reader takes v.mu, then mu (onPacket), so holding
			// mu while taking v.mu deadlocks.
			mu.Lock()
			seen := slices.Clone(gaps)
			mu.Unlock()
			for i, v := range viewers {
				frames := v.stats(vtag).Frames - before[i]
				t.Logf("viewer %d: %d video frames in 3 s, longest gap %v", i, frames, seen[i])
				if frames < 75 || seen[i] > 250*time.Millisecond {
					t.Errorf("viewer %d: %d frames in 3 s at 30 fps, longest gap between packets %v", i, frames, seen[i])
				}
				if err := v.err(); err != nil {
					t.Errorf("viewer %d: %v", i, err)
				}
			}
			if single && srv.Driver().Stats().Workers[1].Handoffs == 0 {
				t.Error("single-port mode handed no datagram to worker 1")
			}
			for _, v := range viewers {
				deleteSession(t, v.location)
			}
			deleteSession(t, pub.location)
			deleteSession(t, warm.location)
			waitFor(t, 15*time.Second, "no live objects on either worker", func() bool { return srv.counts() == (core.Counts{}) })
		})
	}
}
