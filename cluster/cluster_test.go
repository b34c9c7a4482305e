package cluster_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/track"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func notices(c *cluster.Cluster) []cluster.Notice {
	var ns []cluster.Notice
	for {
		n, ok := c.PollNotice()
		if !ok {
			return ns
		}
		ns = append(ns, n)
	}
}

func remote(peer, name string, out *track.Output) *track.RemoteTrack {
	return track.NewRemoteTrack(track.RemoteConfig{Info: track.Info{Peer: peer, Name: name, Codec: track.CodecOpus},
		Encodings: []track.Encoding{{SSRC: 1}}}, out)
}

func TestRoomLifecycleAndGrace(t *testing.T) {
	var out track.Output
	c := cluster.New(cluster.Config{SourceGrace: 5 * time.Second})
	if err := c.Join(t0, "r", 1, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.Join(t0, "r", 2, "alice"); !errors.Is(err, cluster.ErrPeerExists) {
		t.Fatalf("duplicate peer id: %v", err)
	}
	if err := c.Join(t0, "r", 2, "bob"); err != nil {
		t.Fatal(err)
	}
	if ns := notices(c); len(ns) != 2 || ns[0].To != 2 || ns[0].Peer != "alice" || ns[1].To != 1 || ns[1].Peer != "bob" {
		t.Fatalf("join notices %+v", ns)
	}
	mic := remote("alice", "mic", &out)
	if err := c.Publish(t0, "r", 1, mic); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(t0, "r", 1, remote("alice", "mic", &out)); !errors.Is(err, cluster.ErrTrackExists) {
		t.Fatalf("duplicate publish: %v", err)
	}
	if ns := notices(c); len(ns) != 1 || ns[0].To != 2 || ns[0].Kind != cluster.NoticeTrackPublished {
		t.Fatalf("publish notices %+v", ns)
	}
	lt := track.NewLocalTrack(track.LocalConfig{SSRC: 9, Kind: track.KindAudio})
	if err := c.Subscribe(t0, "r", 2, cluster.TrackKey{Peer: "alice", Track: "mic"}, lt); err != nil {
		t.Fatal(err)
	}
	if lt.Source() != mic || c.Subscribers(mic) != 1 {
		t.Fatal("not attached")
	}
	// Alice leaves: bob's subscription waits.
	if err := c.Unpublish(t0, mic); err != nil {
		t.Fatal(err)
	}
	if err := c.Leave(t0, "r", 1); err != nil {
		t.Fatal(err)
	}
	ns := notices(c)
	if len(ns) != 3 || ns[0].Kind != cluster.NoticeTrackUnpublished || ns[1].Kind != cluster.NoticeSourceGone || ns[1].Local != lt || ns[2].Kind != cluster.NoticePeerLeft {
		t.Fatalf("leave notices %+v", ns)
	}
	if lt.Source() != nil {
		t.Fatal("still attached to a withdrawn source")
	}
	if at, ok := c.PollTimeout(); !ok || !at.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("grace deadline %v %v", at, ok)
	}
	// Back in time: the subscription resumes on the new track.
	now := t0.Add(4 * time.Second)
	c.HandleTimeout(now)
	if len(notices(c)) != 0 {
		t.Fatal("ended before the grace")
	}
	_ = c.Join(now, "r", 3, "alice")
	mic2 := remote("alice", "mic", &out)
	if err := c.Publish(now, "r", 3, mic2); err != nil {
		t.Fatal(err)
	}
	if lt.Source() != mic2 {
		t.Fatal("subscription did not resume")
	}
	if _, ok := c.PollTimeout(); ok {
		t.Fatal("grace timer survives the return")
	}
	notices(c)
	// Gone for good: ended after the grace, and the room empties.
	_ = c.Unpublish(now, mic2)
	_ = c.Leave(now, "r", 3)
	c.HandleTimeout(now.Add(5 * time.Second))
	ns = notices(c)
	if last := ns[len(ns)-1]; last.Kind != cluster.NoticeSubscriptionEnded || last.To != 2 {
		t.Fatalf("no end notice: %+v", ns)
	}
	_ = c.Leave(now, "r", 2)
	if n := c.Counts(); n != (cluster.Counts{}) {
		t.Fatalf("counts %+v", n)
	}
}

func TestDeliverFansOutWithoutAllocating(t *testing.T) {
	var out track.Output
	c := cluster.New(cluster.Config{})
	_ = c.Join(t0, "r", 1, "a")
	rt := remote("a", "mic", &out)
	_ = c.Publish(t0, "r", 1, rt)
	for i := 0; i < 10; i++ {
		h := uint64(10 + i)
		_ = c.Join(t0, "r", h, string(rune('b'+i)))
		lt := track.NewLocalTrack(track.LocalConfig{Owner: h, SSRC: uint32(h), Kind: track.KindAudio})
		if err := c.Subscribe(t0, "r", h, cluster.TrackKey{Peer: "a", Track: "mic"}, lt); err != nil {
			t.Fatal(err)
		}
	}
	buf := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xfc, 1, 2}
	seq := uint16(1)
	allocs := testing.AllocsPerRun(100, func() {
		buf[2], buf[3] = byte(seq>>8), byte(seq)
		seq++
		var p track.Packet
		_ = p.Unmarshal(buf)
		stored, err := rt.HandleRTP(t0, &p, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.Deliver(t0, rt, stored, &out)
		for n := 0; ; n++ {
			if _, ok := out.PollTransmit(); !ok {
				if n != 10 {
					t.Fatalf("delivered to %d, want 10", n)
				}
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("Deliver allocates %v per packet", allocs)
	}
}

// A track that comes back under its name with another codec does not
// resume the waiting subscriptions, which were negotiated for the old one:
// they end, and their members hear of the new track.
func TestReturnWithAnotherCodecEndsSubscriptions(t *testing.T) {
	var out track.Output
	c := cluster.New(cluster.Config{SourceGrace: 5 * time.Second})
	_ = c.Join(t0, "r", 1, "alice")
	_ = c.Join(t0, "r", 2, "bob")
	newCam := func(codec track.Codec) *track.RemoteTrack {
		return track.NewRemoteTrack(track.RemoteConfig{Info: track.Info{Peer: "alice", Name: "cam", Codec: codec},
			Encodings: []track.Encoding{{SSRC: 1}}}, &out)
	}
	vp8 := newCam(track.CodecVP8)
	if err := c.Publish(t0, "r", 1, vp8); err != nil {
		t.Fatal(err)
	}
	lt := track.NewLocalTrack(track.LocalConfig{SSRC: 9, Kind: track.KindVideo})
	if err := c.Subscribe(t0, "r", 2, cluster.TrackKey{Peer: "alice", Track: "cam"}, lt); err != nil {
		t.Fatal(err)
	}
	_ = c.Unpublish(t0, vp8)
	notices(c)
	h264 := newCam(track.CodecH264)
	if err := c.Publish(t0.Add(time.Second), "r", 1, h264); err != nil {
		t.Fatal(err)
	}
	if lt.Source() != nil || c.Subscribers(h264) != 0 {
		t.Fatal("a VP8 subscription resumed on H264")
	}
	ns := notices(c)
	if len(ns) != 2 || ns[0].Kind != cluster.NoticeSubscriptionEnded || ns[0].To != 2 || ns[0].Local != lt ||
		ns[1].Kind != cluster.NoticeTrackPublished || ns[1].To != 2 || ns[1].Info.Codec != track.CodecH264 {
		t.Fatalf("notices %+v", ns)
	}
	if _, ok := c.PollTimeout(); ok {
		t.Fatal("a grace timer is left for the ended subscriptions")
	}
	// Bob subscribes again, now to H264.
	lt2 := track.NewLocalTrack(track.LocalConfig{SSRC: 10, Kind: track.KindVideo})
	if err := c.Subscribe(t0.Add(time.Second), "r", 2, cluster.TrackKey{Peer: "alice", Track: "cam"}, lt2); err != nil || lt2.Source() != h264 {
		t.Fatalf("resubscribe: %v", err)
	}
	_ = c.Unsubscribe(t0, "r", cluster.TrackKey{Peer: "alice", Track: "cam"}, lt2)
	_ = c.Unpublish(t0, h264)
	_ = c.Leave(t0, "r", 1)
	_ = c.Leave(t0, "r", 2)
	if n := c.Counts(); n != (cluster.Counts{}) {
		t.Fatalf("counts %+v", n)
	}
}

func FuzzDirectoryValue(f *testing.F) {
	f.Add("t:alice\x00cam", cluster.EncodeTrackInfo(track.Info{Kind: track.KindVideo, Codec: track.CodecVP8, Layers: 3, Metadata: "m", Priority: -2}))
	f.Add("p:bob", []byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		peer, name, isTrack, ok := cluster.DecodeDirectoryKey(key)
		if ok && peer == "" {
			t.Fatalf("key %q: empty peer", key)
		}
		if isTrack && ok && name == "" {
			t.Fatalf("key %q: empty track name", key)
		}
		info, ok := cluster.DecodeTrackInfo(value)
		if !ok {
			return
		}
		// What decodes re-encodes to the same bytes.
		if b := cluster.EncodeTrackInfo(info); string(b) != string(value) {
			t.Fatalf("re-encoded %x, was %x", b, value)
		}
	})
}
