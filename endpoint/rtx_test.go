package endpoint_test

import (
	"errors"
	"testing"

	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/track"
)

// rtxOf wraps a media payload as RTX: the original seq, then the payload.
func rtxOf(osn uint16, payload []byte) []byte {
	return append([]byte{byte(osn >> 8), byte(osn)}, payload...)
}

// TestRTXUnwrapped: retransmissions arrive on the RTX SSRC, declared by the
// signalling or learned from repaired-rid (simulcast) or the MID, and are
// unwrapped into the packet they repair; probes and strays are counted.
func TestRTXUnwrapped(t *testing.T) {
	vp8 := []byte{0x10, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}
	delta := []byte{0x10, 0x01, 2, 3}
	t.Run("declared", func(t *testing.T) {
		ep, _ := newEP(t, endpoint.Extensions{})
		cam, err := ep.Publish(t0, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, PayloadType: 96, RTXPayloadType: 97, NACK: true,
			Encodings: []track.Encoding{{SSRC: 10, RTXSSRC: 11}}})
		if err != nil {
			t.Fatal(err)
		}
		ep.HandleRTP(t0, rtp(96, 10, 1, nil, vp8))
		ep.HandleRTP(t0, rtp(96, 10, 3, nil, delta))
		rt, p, ok := ep.HandleRTP(t0, rtp(97, 11, 500, nil, rtxOf(2, delta)))
		if !ok || rt != cam || p.SequenceNumber != 2 || p.SSRC != 10 || p.PayloadType != 96 || string(p.Payload) != string(delta) {
			t.Fatalf("RTX unwrapped to %+v ok %v", p, ok)
		}
		if st := cam.Stats(); st.Recovered != 1 || st.NACKed != 1 {
			t.Fatalf("track stats %+v", st)
		}
		// A padding-only probe and a second copy are dropped and counted.
		if _, _, ok := ep.HandleRTP(t0, rtp(97, 11, 501, nil, nil)); ok {
			t.Fatal("padding RTX accepted")
		}
		if _, _, ok := ep.HandleRTP(t0, rtp(97, 11, 502, nil, rtxOf(2, delta))); ok {
			t.Fatal("duplicate RTX accepted")
		}
		if st := ep.Stats(); st.RTX != 2 || st.RTXDropped != 1 || st.Rejected != 1 {
			t.Fatalf("endpoint stats %+v", st)
		}
	})
	t.Run("repaired-rid", func(t *testing.T) {
		ep, _ := newEP(t, endpoint.Extensions{MID: 1, RID: 2, RepairedRID: 3})
		cam, _ := ep.Publish(t0, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, PayloadType: 96, RTXPayloadType: 97, MID: "1",
			Encodings: []track.Encoding{{RID: "q"}, {RID: "f"}}})
		for i, rid := range []string{"q", "f"} {
			ep.HandleRTP(t0, rtp(96, uint32(20+i), 1, map[uint8]string{1: "1", 2: rid}, vp8))
		}
		rt, p, ok := ep.HandleRTP(t0, rtp(97, 31, 9, map[uint8]string{1: "1", 3: "f"}, rtxOf(0, delta)))
		if !ok || rt != cam || p.Encoding != 1 || p.SSRC != 21 || p.SequenceNumber != 0 {
			t.Fatalf("RTX for rid f: %+v ok %v", p, ok)
		}
		// Bound now: the next one needs no extension.
		if _, p, ok := ep.HandleRTP(t0, rtp(97, 31, 10, nil, rtxOf(65535, delta))); !ok || p.Encoding != 1 {
			t.Fatalf("bound RTX SSRC: %+v ok %v", p, ok)
		}
	})
	t.Run("mid, media not yet known", func(t *testing.T) {
		ep, _ := newEP(t, endpoint.Extensions{MID: 1})
		cam, _ := ep.Publish(t0, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, PayloadType: 96, RTXPayloadType: 97, MID: "1"})
		// RTX before any media: bound, but nothing to unwrap into yet.
		if _, _, ok := ep.HandleRTP(t0, rtp(97, 41, 1, map[uint8]string{1: "1"}, rtxOf(1, vp8))); ok {
			t.Fatal("RTX accepted before its media SSRC is known")
		}
		// An RTX packet never binds as media.
		if rt, _, ok := ep.HandleRTP(t0, rtp(96, 40, 1, map[uint8]string{1: "1"}, vp8)); !ok || rt != cam {
			t.Fatal("media did not bind")
		}
		if _, p, ok := ep.HandleRTP(t0, rtp(97, 41, 2, nil, rtxOf(0, vp8))); !ok || p.SSRC != 40 {
			t.Fatalf("RTX after media: %+v ok %v", p, ok)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		ep, _ := newEP(t, endpoint.Extensions{})
		for _, o := range []endpoint.TrackOptions{
			{Name: "a", Codec: track.CodecVP8, RTXPayloadType: 97},
			{Name: "b", Codec: track.CodecVP8, PayloadType: 97, RTXPayloadType: 97},
		} {
			if _, err := ep.Publish(t0, o); !errors.Is(err, endpoint.ErrInvalidTrack) {
				t.Errorf("%+v: %v", o, err)
			}
		}
		_, _ = ep.Publish(t0, endpoint.TrackOptions{Name: "c", Codec: track.CodecVP8, PayloadType: 96, Encodings: []track.Encoding{{SSRC: 5}}})
		if _, err := ep.Publish(t0, endpoint.TrackOptions{Name: "d", Codec: track.CodecVP8, PayloadType: 98, RTXPayloadType: 99,
			Encodings: []track.Encoding{{SSRC: 6, RTXSSRC: 5}}}); !errors.Is(err, endpoint.ErrSSRCInUse) {
			t.Errorf("RTX SSRC of another track: %v", err)
		}
	})
}
