package webrtc

import (
	"strings"
	"testing"

	pion "github.com/pion/webrtc/v4"
)

func codecNames(cs []Codec) string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

// TestNegotiateViewerCodecs: a viewer's (recvonly) video m-line is answered
// with every supported codec, each with its RTX; a publisher's with one.
func TestNegotiateViewerCodecs(t *testing.T) {
	viewerOffer := strings.NewReplacer("a=sendonly", "a=recvonly", "a=rid:h send\r\na=rid:m send\r\na=rid:l send\r\na=simulcast:send h;~m;l\r\n", "").Replace(chromeOffer)
	tests := []struct {
		name   string
		offer  string
		prefs  []string
		codecs string
		mline  string
	}{
		{"viewer default", viewerOffer, nil, "VP8,VP9,H264,AV1", "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 106 107 39 40\r\n"},
		{"viewer h264 first", viewerOffer, []string{CodecOpus, CodecH264, CodecVP8}, "H264,VP8", "m=video 9 UDP/TLS/RTP/SAVPF 106 107 96 97\r\n"},
		{"publisher", chromeOffer, nil, "VP8", "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Codecs = tc.prefs
			neg := mustNegotiate(t, tc.offer, cfg)
			a, v := neg.Media[0], neg.Media[1]
			if codecNames(a.Codecs) != "opus" || a.Codecs[0].RTXPayloadType != 0 {
				t.Errorf("audio codecs %+v", a.Codecs)
			}
			if got := codecNames(v.Codecs); got != tc.codecs {
				t.Fatalf("video codecs %s, want %s", got, tc.codecs)
			}
			if v.Codec.Name != v.Codecs[0].Name || v.Codec.PayloadType != v.Codecs[0].PayloadType || v.RTXPayloadType != v.Codecs[0].RTXPayloadType {
				t.Errorf("Codec %+v rtx %d is not Codecs[0] %+v", v.Codec, v.RTXPayloadType, v.Codecs[0])
			}
			if !strings.Contains(neg.Answer, tc.mline) {
				t.Errorf("answer lacks %q:\n%s", tc.mline, neg.Answer)
			}
			for _, c := range v.Codecs {
				if c.RTXPayloadType == 0 {
					t.Errorf("%s has no RTX", c.Name)
				}
				pt, rtx := u32(uint32(c.PayloadType)), u32(uint32(c.RTXPayloadType))
				for _, want := range []string{
					"a=rtpmap:" + pt + " " + c.Name + "/90000\r\n",
					"a=rtcp-fb:" + pt + " nack pli\r\n",
					"a=rtpmap:" + rtx + " rtx/90000\r\n",
					"a=fmtp:" + rtx + " apt=" + pt + "\r\n",
				} {
					if !strings.Contains(neg.Answer, want) {
						t.Errorf("answer lacks %q", want)
					}
				}
				if c.Fmtp != "" && !strings.Contains(neg.Answer, "a=fmtp:"+pt+" "+c.Fmtp+"\r\n") {
					t.Errorf("answer lacks fmtp %q of %s", c.Fmtp, c.Name)
				}
			}
			// Variants we do not forward stay out: H264 packetization-mode=0
			// and main profile, VP9 profile 2, RED.
			for _, bad := range []string{"a=rtpmap:104 ", "a=rtpmap:127 ", "a=rtpmap:100 ", "red/"} {
				if strings.Contains(neg.Answer, bad) {
					t.Errorf("answer has %q", bad)
				}
			}
		})
	}
	t.Run("h264 fmtp", func(t *testing.T) {
		v := mustNegotiate(t, viewerOffer, testConfig()).Media[1]
		h := v.Codecs[2]
		if h.PayloadType != 106 || h.RTXPayloadType != 107 || h.Fmtp != "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" {
			t.Errorf("H264 %+v", h)
		}
	})
}

// TestNegotiatePionViewerCodecs: pion's recvonly offer is answered with all
// its video codecs we support, and pion accepts that answer.
func TestNegotiatePionViewerCodecs(t *testing.T) {
	api := newPionAPI(t, pion.NetworkTypeUDP4)
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []pion.RTPCodecType{pion.RTPCodecTypeAudio, pion.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer := localOffer(t, pc)
	neg := mustNegotiate(t, offer.SDP, testConfig())
	v := neg.Media[1]
	if got := codecNames(v.Codecs); got != "VP8,VP9,H264,AV1" {
		t.Errorf("video codecs %s, want VP8,VP9,H264,AV1", got)
	}
	for _, c := range v.Codecs {
		if c.RTXPayloadType == 0 {
			t.Errorf("%s without RTX", c.Name)
		}
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: neg.Answer}); err != nil {
		t.Fatalf("pion rejects the answer: %v\n%s", err, neg.Answer)
	}
	// Pion takes every answered codec as one it may receive.
	params := pc.GetTransceivers()[1].Receiver().GetParameters()
	var got []string
	for _, c := range params.Codecs {
		got = append(got, c.MimeType)
	}
	for _, want := range []string{pion.MimeTypeVP8, pion.MimeTypeVP9, pion.MimeTypeH264, pion.MimeTypeAV1} {
		if !strings.Contains(strings.Join(got, ","), want) {
			t.Errorf("pion receiver codecs %v lack %s", got, want)
		}
	}
}
