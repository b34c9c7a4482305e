package endpoint_test

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/track"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// rtp builds an RTP packet with one-byte header extensions.
func rtp(pt uint8, ssrc uint32, seq uint16, exts map[uint8]string, payload []byte) []byte {
	b := []byte{0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	if len(exts) > 0 {
		b[0] |= 0x10
		var blk []byte
		for id := uint8(1); id < 15; id++ {
			if v, ok := exts[id]; ok {
				blk = append(blk, id<<4|byte(len(v)-1))
				blk = append(blk, v...)
			}
		}
		for len(blk)%4 != 0 {
			blk = append(blk, 0)
		}
		b = append(b, 0xbe, 0xde, 0, byte(len(blk)/4))
		b = append(b, blk...)
	}
	return append(b, payload...)
}

var opus = []byte{0xfc, 1, 2, 3}

func newEP(t *testing.T, ext endpoint.Extensions) (*endpoint.Endpoint, *track.Output) {
	out := &track.Output{}
	ep, err := endpoint.New(endpoint.Config{PeerID: "alice", Rand: rand.New(rand.NewPCG(1, 2)), Extensions: ext}, out)
	if err != nil {
		t.Fatal(err)
	}
	return ep, out
}

func TestDemuxBySSRCRIDMIDAndPayloadType(t *testing.T) {
	ep, _ := newEP(t, endpoint.Extensions{MID: 1, RID: 2, AudioLevel: 3})
	mic, err := ep.Publish(t0, endpoint.TrackOptions{Name: "mic", Codec: track.CodecOpus, PayloadType: 111, MID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	cam, err := ep.Publish(t0, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, PayloadType: 96, MID: "1",
		Encodings: []track.Encoding{{RID: "q"}, {RID: "h"}, {RID: "f"}}})
	if err != nil {
		t.Fatal(err)
	}
	vp8key := []byte{0x10, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}
	// Simulcast by RID: each SSRC binds to its encoding on its first packet.
	for i, rid := range []string{"q", "h", "f"} {
		rt, p, ok := ep.HandleRTP(t0, rtp(96, uint32(10+i), 1, map[uint8]string{1: "1", 2: rid}, vp8key))
		if !ok || rt != cam || int(p.Encoding) != i {
			t.Fatalf("rid %s: track %v encoding %v ok %v", rid, rt, p, ok)
		}
		if cam.Encoding(i).SSRC != uint32(10+i) {
			t.Fatalf("rid %s bound to ssrc %d", rid, cam.Encoding(i).SSRC)
		}
	}
	// Later packets need no extension.
	if rt, p, ok := ep.HandleRTP(t0, rtp(96, 11, 2, nil, vp8key)); !ok || rt != cam || p.Encoding != 1 {
		t.Fatal("bound ssrc not found without extensions")
	}
	// Audio by MID, with its level.
	rt, p, ok := ep.HandleRTP(t0, rtp(111, 77, 1, map[uint8]string{1: "0", 3: "\x85"}, opus))
	if !ok || rt != mic || p.AudioLevel != 5 || !p.Voice {
		t.Fatalf("audio: %v %+v %v", rt, p, ok)
	}
	// Unknown: wrong MID, and no free encoding.
	if _, _, ok := ep.HandleRTP(t0, rtp(96, 99, 1, map[uint8]string{1: "7", 2: "q"}, vp8key)); ok {
		t.Fatal("packet for an unknown mid accepted")
	}
	if _, _, ok := ep.HandleRTP(t0, rtp(96, 98, 1, map[uint8]string{1: "1", 2: "q"}, vp8key)); ok {
		t.Fatal("second ssrc for a bound rid accepted")
	}
	if s := ep.Stats(); s.UnknownSSRC != 2 || s.RTPPackets != 7 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDemuxWithoutExtensionsByPayloadType(t *testing.T) {
	ep, _ := newEP(t, endpoint.Extensions{})
	mic, _ := ep.Publish(t0, endpoint.TrackOptions{Name: "mic", Codec: track.CodecOpus, PayloadType: 111})
	if _, err := ep.Publish(t0, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, PayloadType: 96}); err != nil {
		t.Fatal(err)
	}
	if rt, _, ok := ep.HandleRTP(t0, rtp(111, 5, 1, nil, opus)); !ok || rt != mic {
		t.Fatal("audio not bound by payload type")
	}
	// Two tracks of one payload type and no extensions: ambiguous, refused.
	ep2, _ := newEP(t, endpoint.Extensions{})
	_, _ = ep2.Publish(t0, endpoint.TrackOptions{Name: "a", Codec: track.CodecOpus, PayloadType: 111})
	_, _ = ep2.Publish(t0, endpoint.TrackOptions{Name: "b", Codec: track.CodecOpus, PayloadType: 111})
	if _, _, ok := ep2.HandleRTP(t0, rtp(111, 5, 1, nil, opus)); ok {
		t.Fatal("ambiguous packet bound to a track")
	}
}

func TestPublishValidation(t *testing.T) {
	ep, _ := newEP(t, endpoint.Extensions{})
	if _, err := ep.Publish(t0, endpoint.TrackOptions{Name: "a", Codec: track.CodecOpus, Encodings: []track.Encoding{{SSRC: 5}}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    endpoint.TrackOptions
		want error
	}{
		{endpoint.TrackOptions{Codec: track.CodecOpus}, endpoint.ErrInvalidTrack},
		{endpoint.TrackOptions{Name: "x"}, endpoint.ErrInvalidTrack},
		{endpoint.TrackOptions{Name: "a", Codec: track.CodecOpus}, endpoint.ErrDuplicateTrack},
		{endpoint.TrackOptions{Name: "b", Codec: track.CodecOpus, Encodings: []track.Encoding{{SSRC: 5}}}, endpoint.ErrSSRCInUse},
	} {
		if _, err := ep.Publish(t0, c.o); !errors.Is(err, c.want) {
			t.Errorf("Publish(%+v) = %v, want %v", c.o, err, c.want)
		}
	}
	for i := 0; i < endpoint.DefaultMaxTracks-1; i++ {
		if _, err := ep.Publish(t0, endpoint.TrackOptions{Name: string(rune('A' + i)), Codec: track.CodecOpus}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ep.Publish(t0, endpoint.TrackOptions{Name: "one too many", Codec: track.CodecOpus}); !errors.Is(err, endpoint.ErrTooManyTracks) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := ep.Unpublish(t0, "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := ep.HandleRTP(t0, rtp(111, 5, 1, nil, opus)); ok {
		t.Fatal("packet for an unpublished track accepted")
	}
}
