package endpoint_test

import (
	"testing"

	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/track"
)

func TestReviewAmbiguousStillBinds(t *testing.T) {
	ep, _ := newEP(t, endpoint.Extensions{})
	a, _ := ep.Publish(t0, endpoint.TrackOptions{Name: "a", Codec: track.CodecOpus, PayloadType: 111})
	_, _ = ep.Publish(t0, endpoint.TrackOptions{Name: "b", Codec: track.CodecOpus, PayloadType: 111})
	if _, _, ok := ep.HandleRTP(t0, rtp(111, 5, 1, nil, opus)); ok {
		t.Fatal("ambiguous packet bound to a track")
	}
	if rt, _, ok := ep.HandleRTP(t0, rtp(111, 5, 2, nil, opus)); ok {
		t.Fatalf("second packet of the ambiguous ssrc accepted by %v (a=%v), a.Encoding(0).SSRC=%d", rt.Info().Name, rt == a, a.Encoding(0).SSRC)
	}
}
