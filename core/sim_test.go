package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/track"
)

// world runs one Node inside the simulator: peers reach it over seeded
// links; a peer's publisher is a synthetic source, its subscriber side a
// Checker. After every input the world drains the node's outputs as a
// driver would, and schedules a wake-up at the node's next deadline.
type world struct {
	t     testing.TB
	s     *testutil.Sim
	n     *Node
	peers map[Handle]*peer
	wake  time.Time
	rtcp  []byte
	// latency bounds the random one-way delay of each peer's links.
	latencyMin, latencyMax time.Duration
	// logPackets logs every delivered packet (for the determinism hash).
	logPackets bool
	delivered  uint64
	// nack publishes tracks with NACK on; publishers keep what they sent
	// and answer NACKs by sending it again.
	nack bool
	// tap, when set, sees every packet delivered to a subscriber;
	// tapEvents every event for a peer.
	tap       func(p *peer, now time.Time, pkt []byte)
	tapEvents func(p *peer, e endpoint.Event)
}

type peer struct {
	id, room string
	h        Handle
	up, down *testutil.Link
	checker  *testutil.Checker
	sources  map[uint32]testutil.Source // by SSRC, for keyframe requests
	sent     map[uint64][]byte          // by SSRC<<16|seq, with world.nack
	alive    bool
	joinedAt time.Time
}

func newWorld(t testing.TB, seed uint64, cfg Config) *world {
	s := testutil.NewSim(t, seed)
	cfg.Seed = seed
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, s: s, n: n, peers: map[Handle]*peer{}, rtcp: make([]byte, 64),
		latencyMin: 5 * time.Millisecond, latencyMax: 40 * time.Millisecond}
}

// join connects a new peer and puts it in room.
func (w *world) join(id, room string, auto bool) *peer {
	w.t.Helper()
	now := w.s.Now()
	h, err := w.n.CreateEndpoint(now, EndpointConfig{PeerID: id, AutoSubscribe: auto, HistoryPackets: 256, HistoryBytes: 128 << 10})
	if err != nil {
		w.t.Fatalf("create %s: %v", id, err)
	}
	p := &peer{id: id, room: room, h: h, alive: true, joinedAt: now, sources: map[uint32]testutil.Source{},
		up:      &testutil.Link{Latency: w.s.Duration(w.latencyMin, w.latencyMax)},
		down:    &testutil.Link{Latency: w.s.Duration(w.latencyMin, w.latencyMax)},
		checker: testutil.NewChecker(testutil.CheckerConfig{Name: id, PictureIDs: true})}
	w.peers[h] = p
	if err := w.n.Join(now, h, room); err != nil {
		w.t.Fatalf("join %s: %v", id, err)
	}
	w.s.Logf("join %s %s", id, room)
	w.drain()
	return p
}

// leave closes a peer's endpoint.
func (w *world) leave(p *peer) {
	w.t.Helper()
	if err := w.n.CloseEndpoint(w.s.Now(), p.h); err != nil {
		w.t.Fatalf("close %s: %v", p.id, err)
	}
	p.alive = false
	delete(w.peers, p.h)
	w.s.Logf("leave %s", p.id)
	w.drain()
}

// publish starts src as track name of p; its packets go up p's link.
func (w *world) publish(p *peer, name string, codec track.Codec, ssrcs []uint32, src testutil.Source) {
	w.t.Helper()
	var encs []track.Encoding
	for _, s := range ssrcs {
		encs = append(encs, track.Encoding{SSRC: s})
		p.sources[s] = src
	}
	if err := w.n.Publish(w.s.Now(), p.h, endpoint.TrackOptions{Name: name, Codec: codec, Encodings: encs, NACK: w.nack}); err != nil {
		w.t.Fatalf("publish %s/%s: %v", p.id, name, err)
	}
	w.s.Logf("publish %s/%s", p.id, name)
	w.drain()
	testutil.RunSource(w.s, src, func() bool { return !p.alive }, func(now time.Time, pkt []byte) {
		if w.nack {
			if p.sent == nil {
				p.sent = map[uint64][]byte{}
			}
			p.sent[uint64(binary.BigEndian.Uint32(pkt[8:]))<<16|uint64(binary.BigEndian.Uint16(pkt[2:]))] = pkt
		}
		w.sendUp(p, pkt)
	})
}

// sendUp sends a publisher's packet over its uplink to the node.
func (w *world) sendUp(p *peer, pkt []byte) {
	w.s.Send(p.up, len(pkt), func(now time.Time) {
		if !p.alive {
			return
		}
		_ = w.n.HandleRTP(now, p.h, pkt)
		w.drain()
	})
}

// drain does what a driver does after every input.
func (w *world) drain() {
	now := w.s.Now()
	for {
		t, ok := w.n.pollTransmit()
		if !ok {
			break
		}
		p := w.peers[Handle(t.Owner)]
		if p == nil {
			w.t.Fatalf("transmit for closed endpoint %x", t.Owner)
		}
		buf := make([]byte, t.MarshalSize(nil))
		if _, err := t.MarshalTo(buf, nil); err != nil {
			w.t.Fatal(err)
		}
		if w.logPackets {
			w.s.Logf("tx %s ssrc=%d seq=%d ts=%d", p.id, t.SSRC, t.SequenceNumber, t.Timestamp)
		}
		w.s.Send(p.down, len(buf), func(now time.Time) {
			if p.alive {
				w.delivered++
				p.checker.HandleRTP(now, buf)
				if w.tap != nil {
					w.tap(p, now, buf)
				}
			}
		})
	}
	for {
		h, pkt, ok := w.n.pollRTCP(w.rtcp)
		if !ok {
			break
		}
		p := w.peers[h]
		if p == nil {
			w.t.Fatalf("rtcp for closed endpoint %x", h)
		}
		pl, _, err := track.ReadRTCP(pkt)
		if err == nil && w.nack && pl.NACKCount() > 0 {
			ssrc := pl.MediaSSRC()
			w.s.Logf("nack %s ssrc=%d", p.id, ssrc)
			var seqs []uint16
			for i := range pl.NACKCount() {
				pid, blp := pl.NACK(i)
				track.ForEachNACKSeq(pid, blp, func(seq uint16) { seqs = append(seqs, seq) })
			}
			w.s.Send(p.down, len(pkt), func(now time.Time) {
				for _, seq := range seqs {
					if b := p.sent[uint64(ssrc)<<16|uint64(seq)]; b != nil && p.alive {
						w.sendUp(p, b)
					}
				}
			})
			continue
		}
		if err != nil || pl.Type != track.RTCPTypePSFB || pl.Count != track.RTCPFormatPLI {
			w.t.Fatalf("node sent RTCP %x (%v)", pkt, err)
		}
		ssrc := pl.MediaSSRC()
		w.s.Logf("pli %s ssrc=%d", p.id, ssrc)
		w.s.Send(p.down, len(pkt), func(now time.Time) {
			if src := p.sources[ssrc]; src != nil && p.alive {
				src.RequestKeyframe()
			}
		})
	}
	for {
		e, ok := w.n.pollEvent()
		if !ok {
			break
		}
		if p := w.peers[e.Endpoint]; p != nil {
			w.s.Logf("event %s %T %v", p.id, e.Event, e.Event)
			if w.tapEvents != nil {
				w.tapEvents(p, e.Event)
			}
		}
	}
	if at, ok := w.n.PollTimeout(); ok && (w.wake.IsZero() || at.Before(w.wake) || !w.wake.After(now)) {
		if at.Before(now) {
			at = now
		}
		w.wake = at
		w.s.At(at, func(now time.Time) {
			if !now.Equal(w.wake) {
				return
			}
			w.wake = time.Time{}
			w.n.HandleTimeout(now)
			w.drain()
		})
	}
}

// check fails the test with every checker's violations.
func (w *world) check(ps ...*peer) {
	w.t.Helper()
	for _, p := range ps {
		if err := p.checker.Err(); err != nil {
			w.t.Fatalf("%s: %v", p.id, err)
		}
	}
}

func vp8Source(w *world, ssrc uint32, tag uint32, keyInterval time.Duration) *testutil.VP8Source {
	return testutil.NewVP8Source(w.s.Rand, testutil.VP8Config{SSRC: ssrc, Tag: tag, FPS: 30, BitrateBps: 300_000,
		KeyframeInterval: keyInterval, TemporalLayers: 3})
}

func opusSource(w *world, ssrc uint32, tag uint32) *testutil.OpusSource {
	return testutil.NewOpusSource(w.s.Rand, testutil.OpusConfig{SSRC: ssrc, Tag: tag})
}

// TestSimOneToHundred: one publisher (VP8 with temporal layers + Opus), 100
// subscribers over links of random latency.
func TestSimOneToHundred(t *testing.T) {
	for _, seed := range testutil.Seeds(100, 3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newWorld(t, seed, Config{})
			pub := w.join("pub", "room", false)
			w.publish(pub, "cam", track.CodecVP8, []uint32{1000}, vp8Source(w, 1000, testutil.TagOf("room", "pub", "cam"), 3*time.Second))
			w.publish(pub, "mic", track.CodecOpus, []uint32{2000}, opusSource(w, 2000, testutil.TagOf("room", "pub", "mic")))
			w.publish(pub, "screen", track.CodecH264, []uint32{3000}, testutil.NewH264Source(w.s.Rand, testutil.H264Config{
				SSRC: 3000, Tag: testutil.TagOf("room", "pub", "screen"), FPS: 10, BitrateBps: 200_000, KeyframeInterval: 2 * time.Second}))
			var subs []*peer
			for i := 0; i < 100; i++ {
				s := w.join(fmt.Sprint("sub", i), "room", true)
				for _, name := range []string{"cam", "mic", "screen"} {
					s.checker.Allow(testutil.TagOf("room", "pub", name))
				}
				subs = append(subs, s)
			}
			w.s.RunFor(5 * time.Second)
			w.check(subs...)
			for _, s := range subs {
				v := s.checker.Stats(testutil.TagOf("room", "pub", "cam"))
				a := s.checker.Stats(testutil.TagOf("room", "pub", "mic"))
				h := s.checker.Stats(testutil.TagOf("room", "pub", "screen"))
				// 5 s at 30 fps (10 for H264), less the wait for the first keyframe.
				if v.Frames < 140 || a.Frames < 240 || h.Frames < 40 || !v.FirstKeyframe || !h.FirstKeyframe {
					t.Fatalf("%s got %d VP8 frames, %d H264 frames, %d audio frames (first keyframe %v %v)", s.id, v.Frames, h.Frames, a.Frames, v.FirstKeyframe, h.FirstKeyframe)
				}
			}
		})
	}
}

// TestSimJoinMidStream: a subscriber joining a running stream sees a
// keyframe first, within one publisher RTT plus the publisher's keyframe
// latency (one frame) plus its own one-way delay.
func TestSimJoinMidStream(t *testing.T) {
	for _, seed := range testutil.Seeds(200, 4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newWorld(t, seed, Config{})
			pub := w.join("pub", "room", false)
			tag := testutil.TagOf("room", "pub", "cam")
			src := vp8Source(w, 1000, tag, 0) // keyframes only on request
			w.publish(pub, "cam", track.CodecVP8, []uint32{1000}, src)
			first := w.join("first", "room", true)
			first.checker.Allow(tag)
			var late []*peer
			for i := 0; i < 8; i++ {
				// Joins at random instants, spaced beyond the keyframe
				// request rate limit.
				w.s.RunFor(w.s.Duration(time.Second, 2*time.Second))
				p := w.join(fmt.Sprint("late", i), "room", true)
				p.checker.Allow(tag)
				late = append(late, p)
			}
			w.s.RunFor(2 * time.Second)
			w.check(append(late, first)...)
			for _, p := range late {
				st := p.checker.Stats(tag)
				if st.FirstPacketAt.IsZero() || !st.FirstKeyframe {
					t.Fatalf("%s: first packet at %v keyframe=%v", p.id, st.FirstPacketAt, st.FirstKeyframe)
				}
				bound := pub.up.Latency + pub.down.Latency + src.FrameInterval() + p.down.Latency
				if got := st.FirstPacketAt.Sub(p.joinedAt); got > bound {
					t.Fatalf("%s: first keyframe after %v, bound %v", p.id, got, bound)
				}
			}
		})
	}
}

// TestSimPublisherRejoins: the publisher leaves and re-joins (a new
// endpoint, new SSRCs, new sequence numbers and timestamps) under the same
// track names; every subscriber's stream stays continuous.
func TestSimPublisherRejoins(t *testing.T) {
	for _, seed := range testutil.Seeds(300, 4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newWorld(t, seed, Config{})
			camTag, micTag := testutil.TagOf("room", "pub", "cam"), testutil.TagOf("room", "pub", "mic")
			pub := w.join("pub", "room", false)
			w.publish(pub, "cam", track.CodecVP8, []uint32{1000}, vp8Source(w, 1000, camTag, 2*time.Second))
			w.publish(pub, "mic", track.CodecOpus, []uint32{2000}, opusSource(w, 2000, micTag))
			var subs []*peer
			for i := 0; i < 20; i++ {
				s := w.join(fmt.Sprint("sub", i), "room", i%2 == 0)
				if i%2 == 1 {
					for _, name := range []string{"cam", "mic"} {
						if _, err := w.n.Subscribe(w.s.Now(), s.h, "pub", name, endpoint.SubscribeOptions{Spatial: -1, Temporal: -1}); err != nil {
							t.Fatal(err)
						}
					}
					w.drain()
				}
				s.checker.Allow(camTag)
				s.checker.Allow(micTag)
				subs = append(subs, s)
			}
			for round := 0; round < 3; round++ {
				w.s.RunFor(w.s.Duration(time.Second, 3*time.Second))
				before := make([]uint64, len(subs))
				for i, s := range subs {
					before[i] = s.checker.Stats(camTag).Frames
				}
				w.leave(pub)
				w.s.RunFor(w.s.Duration(100*time.Millisecond, 5*time.Second))
				pub = w.join("pub", "room", false)
				ssrc := uint32(1001 + round)
				w.publish(pub, "cam", track.CodecVP8, []uint32{ssrc}, vp8Source(w, ssrc, camTag, 2*time.Second))
				w.publish(pub, "mic", track.CodecOpus, []uint32{ssrc + 1000}, opusSource(w, ssrc+1000, micTag))
				w.s.RunFor(time.Second)
				for i, s := range subs {
					if after := s.checker.Stats(camTag).Frames; after <= before[i] {
						t.Fatalf("round %d: %s received nothing after the publisher came back", round, s.id)
					}
					if n := s.checker.SSRCs(); n != 2 {
						t.Fatalf("round %d: %s sees %d SSRCs, want the same 2 throughout", round, s.id, n)
					}
				}
			}
			w.check(subs...)
		})
	}
}

// TestSimDeterministic: the same seed gives the same event log, packet for
// packet; another seed gives another.
func TestSimDeterministic(t *testing.T) {
	run := func(seed uint64) (uint64, int) {
		w := newWorld(t, seed, Config{})
		w.logPackets = true
		churn(w, 5, 6, 20*time.Second)
		return w.s.LogHash(), w.s.LogLines()
	}
	h1, n1 := run(42)
	h2, n2 := run(42)
	h3, _ := run(43)
	if h1 != h2 || n1 != n2 {
		t.Fatalf("seed 42 twice: %x (%d lines) vs %x (%d lines)", h1, n1, h2, n2)
	}
	if h1 == h3 {
		t.Fatalf("seeds 42 and 43 gave the same log")
	}
	if n1 < 1000 {
		t.Fatalf("only %d log lines: the scenario did little", n1)
	}
}

// TestSimSwitchSubscription: a subscription with a fixed SSRC (as a WHEP
// viewer's media section has) moves between publishers; the viewer sees one
// continuous stream that restarts on a keyframe at each switch.
func TestSimSwitchSubscription(t *testing.T) {
	for _, seed := range testutil.Seeds(500, 3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newWorld(t, seed, Config{})
			var pubs []*peer
			for i := 0; i < 3; i++ {
				p := w.join(fmt.Sprint("pub", i), "room", false)
				w.publish(p, "cam", track.CodecVP8, []uint32{1000}, vp8Source(w, 1000, testutil.TagOf("room", p.id, "cam"), 2*time.Second))
				pubs = append(pubs, p)
			}
			v := w.join("viewer", "room", false)
			for _, p := range pubs {
				v.checker.Allow(testutil.TagOf("room", p.id, "cam"))
			}
			const ssrc = 0x5eed
			got, err := w.n.Subscribe(w.s.Now(), v.h, "pub0", "cam", endpoint.SubscribeOptions{SSRC: ssrc, Spatial: -1, Temporal: -1})
			if err != nil || got != ssrc {
				t.Fatalf("subscribe: ssrc %x, %v", got, err)
			}
			w.drain()
			cur := "pub0"
			for i := 0; i < 6; i++ {
				w.s.RunFor(w.s.Duration(500*time.Millisecond, 2*time.Second))
				next := pubs[w.s.Rand.IntN(len(pubs))].id
				if next == cur {
					continue
				}
				before := v.checker.Stats(testutil.TagOf("room", next, "cam")).Frames
				if err := w.n.SwitchSubscription(w.s.Now(), v.h, cur, "cam", next, "cam", 0); err != nil {
					t.Fatal(err)
				}
				w.drain()
				w.s.RunFor(time.Second)
				if v.checker.Stats(testutil.TagOf("room", next, "cam")).Frames <= before {
					t.Fatalf("switch %d: nothing from %s", i, next)
				}
				cur = next
			}
			if n := v.checker.SSRCs(); n != 1 {
				t.Fatalf("viewer saw %d SSRCs, want 1", n)
			}
			w.check(v)
		})
	}
}

// TestSimFixedSSRCContinuesAfterEnd: a fixed-SSRC subscription (a WHEP
// media section) ends when its publisher stays away past the grace; when
// the section is filled again on the same SSRC, the viewer's stream goes on
// with continuous numbering, not a second stream that reuses the SSRC.
func TestSimFixedSSRCContinuesAfterEnd(t *testing.T) {
	for _, seed := range testutil.Seeds(600, 3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newWorld(t, seed, Config{})
			v := w.join("viewer", "room", false)
			const ssrc = 0x5eed
			for round := 0; round < 3; round++ {
				id := fmt.Sprint("pub", round)
				tag := testutil.TagOf("room", id, "cam")
				v.checker.Allow(tag)
				p := w.join(id, "room", false)
				w.publish(p, "cam", track.CodecVP8, []uint32{1000}, vp8Source(w, 1000, tag, 2*time.Second))
				got, err := w.n.Subscribe(w.s.Now(), v.h, id, "cam", endpoint.SubscribeOptions{SSRC: ssrc, Spatial: -1, Temporal: -1})
				if err != nil || got != ssrc {
					t.Fatalf("round %d: subscribe: ssrc %x, %v", round, got, err)
				}
				w.drain()
				w.s.RunFor(w.s.Duration(time.Second, 3*time.Second))
				if v.checker.Stats(tag).Frames == 0 {
					t.Fatalf("round %d: nothing from %s", round, id)
				}
				// The publisher leaves for good: the subscription ends.
				w.leave(p)
				w.s.RunFor(cluster.DefaultSourceGrace + time.Second)
				if err := w.n.Unsubscribe(w.s.Now(), v.h, id, "cam"); !errors.Is(err, endpoint.ErrNotSubscribed) {
					t.Fatalf("round %d: subscription still there after the grace: %v", round, err)
				}
			}
			if n := v.checker.SSRCs(); n != 1 {
				t.Fatalf("viewer saw %d SSRCs, want 1", n)
			}
			w.check(v)
			w.leave(v)
			if c := w.n.Counts(); c.Endpoints != 0 || c.Counts != (cluster.Counts{}) {
				t.Fatalf("counts after everyone left: %+v", c)
			}
		})
	}
}

// TestSimLossyUplinkRepairedByNACK: the publisher's uplink loses 5 % of
// its packets; the node NACKs them and forwards the retransmissions in
// their places, so subscribers on clean downlinks get nearly everything
// (not the 95 % they get without NACK), and nothing twice.
func TestSimLossyUplinkRepairedByNACK(t *testing.T) {
	for _, seed := range testutil.Seeds(700, 3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			for _, nack := range []bool{false, true} {
				w := newWorld(t, seed, Config{})
				w.nack = nack
				// Per subscriber: the outgoing seqs received, counting repeats.
				got := map[*peer]map[uint16]int{}
				w.tap = func(p *peer, now time.Time, pkt []byte) {
					if got[p] == nil {
						got[p] = map[uint16]int{}
					}
					got[p][binary.BigEndian.Uint16(pkt[2:])]++
				}
				pub := w.join("pub", "room", false)
				pub.up.Loss = 0.05
				var subs []*peer
				for i := 0; i < 10; i++ {
					subs = append(subs, w.join(fmt.Sprint("sub", i), "room", true))
				}
				w.publish(pub, "cam", track.CodecVP8, []uint32{1000}, testutil.NewVP8Source(w.s.Rand, testutil.VP8Config{
					SSRC: 1000, Tag: testutil.TagOf("room", "pub", "cam"), FPS: 30, BitrateBps: 1_500_000, KeyframeInterval: 2 * time.Second}))
				w.s.RunFor(15 * time.Second)
				pub.alive = false // stop sending; let retransmissions land
				w.s.RunFor(time.Second)
				for _, s := range subs {
					seqs := got[s]
					lo, hi := uint16(0), uint16(0)
					first := true
					for q, n := range seqs {
						if n > 1 {
							t.Fatalf("nack=%v: %s got seq %d %d times", nack, s.id, q, n)
						}
						if first || int16(q-lo) < 0 {
							lo = q
						}
						if first || int16(q-hi) > 0 {
							hi = q
						}
						first = false
					}
					span := int(hi-lo) + 1
					ratio := float64(len(seqs)) / float64(span)
					if span < 2000 {
						t.Fatalf("nack=%v: %s received only a span of %d packets", nack, s.id, span)
					}
					if nack && ratio < 0.995 {
						t.Fatalf("with NACK %s got %d of %d packets (%.2f%%)", s.id, len(seqs), span, 100*ratio)
					}
					if !nack && ratio > 0.97 {
						t.Fatalf("without NACK %s got %.2f%% of the packets over a 5%% lossy uplink: the test loses nothing", s.id, 100*ratio)
					}
				}
				if nack {
					rt, _ := pubTrack(w, pub, "cam")
					st := rt.Stats()
					t.Logf("NACKed %d, recovered %d, gave up %d", st.NACKed, st.Recovered, st.NACKGaveUp)
					if st.Recovered == 0 || st.Recovered < st.NACKed*9/10 {
						t.Fatalf("recovered %d of %d NACKed", st.Recovered, st.NACKed)
					}
				}
			}
		})
	}
}

// pubTrack returns a peer's published track.
func pubTrack(w *world, p *peer, name string) (*track.RemoteTrack, bool) {
	ep, ok := w.n.Endpoint(p.h)
	if !ok {
		w.t.Fatalf("no endpoint for %s", p.id)
	}
	return ep.Track(name)
}
