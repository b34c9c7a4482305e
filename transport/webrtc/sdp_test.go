package webrtc

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"
)

// chromeOffer is modelled on what Chromium sends for a WHIP publisher:
// addTransceiver(audio, sendonly) and addTransceiver(video, sendonly,
// sendEncodings h/m/l), written out by hand.
const chromeOffer = "v=0\r\n" +
	"o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"a=extmap-allow-mixed\r\n" +
	"a=msid-semantic: WMS\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:EsAw\r\n" +
	"a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09:DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:0\r\n" +
	"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n" +
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n" +
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
	"a=sendonly\r\n" +
	"a=msid:- 6f7d9e8b-1c2a-4d3e-8f90-a1b2c3d4e5f6\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtcp-rsize\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=rtcp-fb:111 transport-cc\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:63 red/48000/2\r\n" +
	"a=fmtp:63 111/111\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:13 CN/8000\r\n" +
	"a=rtpmap:110 telephone-event/48000\r\n" +
	"a=rtpmap:126 telephone-event/8000\r\n" +
	"a=ssrc:1001 cname:u8Hq4Xf0GZ0uAYbA\r\n" +
	"a=ssrc:1001 msid:- 6f7d9e8b-1c2a-4d3e-8f90-a1b2c3d4e5f6\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 102 103 104 105 106 107 108 109 127 125 39 40 45 46\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:EsAw\r\n" +
	"a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09:DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:1\r\n" +
	"a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n" +
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n" +
	"a=extmap:13 urn:3gpp:video-orientation\r\n" +
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n" +
	"a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type\r\n" +
	"a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing\r\n" +
	"a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space\r\n" +
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
	"a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n" +
	"a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n" +
	"a=extmap:12 https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension\r\n" +
	"a=sendonly\r\n" +
	"a=msid:- 0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtcp-rsize\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtcp-fb:96 goog-remb\r\n" +
	"a=rtcp-fb:96 transport-cc\r\n" +
	"a=rtcp-fb:96 ccm fir\r\n" +
	"a=rtcp-fb:96 nack\r\n" +
	"a=rtcp-fb:96 nack pli\r\n" +
	"a=rtpmap:97 rtx/90000\r\n" +
	"a=fmtp:97 apt=96\r\n" +
	"a=rtpmap:98 VP9/90000\r\n" +
	"a=rtcp-fb:98 goog-remb\r\n" +
	"a=rtcp-fb:98 transport-cc\r\n" +
	"a=rtcp-fb:98 ccm fir\r\n" +
	"a=rtcp-fb:98 nack\r\n" +
	"a=rtcp-fb:98 nack pli\r\n" +
	"a=fmtp:98 profile-id=0\r\n" +
	"a=rtpmap:99 rtx/90000\r\n" +
	"a=fmtp:99 apt=98\r\n" +
	"a=rtpmap:100 VP9/90000\r\n" +
	"a=rtcp-fb:100 nack pli\r\n" +
	"a=fmtp:100 profile-id=2\r\n" +
	"a=rtpmap:101 rtx/90000\r\n" +
	"a=fmtp:101 apt=100\r\n" +
	"a=rtpmap:102 H264/90000\r\n" +
	"a=rtcp-fb:102 goog-remb\r\n" +
	"a=rtcp-fb:102 transport-cc\r\n" +
	"a=rtcp-fb:102 ccm fir\r\n" +
	"a=rtcp-fb:102 nack\r\n" +
	"a=rtcp-fb:102 nack pli\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
	"a=rtpmap:103 rtx/90000\r\n" +
	"a=fmtp:103 apt=102\r\n" +
	"a=rtpmap:104 H264/90000\r\n" +
	"a=rtcp-fb:104 nack pli\r\n" +
	"a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n" +
	"a=rtpmap:105 rtx/90000\r\n" +
	"a=fmtp:105 apt=104\r\n" +
	"a=rtpmap:106 H264/90000\r\n" +
	"a=rtcp-fb:106 goog-remb\r\n" +
	"a=rtcp-fb:106 transport-cc\r\n" +
	"a=rtcp-fb:106 ccm fir\r\n" +
	"a=rtcp-fb:106 nack\r\n" +
	"a=rtcp-fb:106 nack pli\r\n" +
	"a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=rtpmap:107 rtx/90000\r\n" +
	"a=fmtp:107 apt=106\r\n" +
	"a=rtpmap:108 H264/90000\r\n" +
	"a=rtcp-fb:108 nack pli\r\n" +
	"a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n" +
	"a=rtpmap:109 rtx/90000\r\n" +
	"a=fmtp:109 apt=108\r\n" +
	"a=rtpmap:127 H264/90000\r\n" +
	"a=rtcp-fb:127 nack pli\r\n" +
	"a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n" +
	"a=rtpmap:125 rtx/90000\r\n" +
	"a=fmtp:125 apt=127\r\n" +
	"a=rtpmap:39 AV1/90000\r\n" +
	"a=rtcp-fb:39 goog-remb\r\n" +
	"a=rtcp-fb:39 transport-cc\r\n" +
	"a=rtcp-fb:39 ccm fir\r\n" +
	"a=rtcp-fb:39 nack\r\n" +
	"a=rtcp-fb:39 nack pli\r\n" +
	"a=fmtp:39 level-idx=5;profile=0;tier=0\r\n" +
	"a=rtpmap:40 rtx/90000\r\n" +
	"a=fmtp:40 apt=39\r\n" +
	"a=rtpmap:45 red/90000\r\n" +
	"a=rtpmap:46 rtx/90000\r\n" +
	"a=fmtp:46 apt=45\r\n" +
	"a=rid:h send\r\n" +
	"a=rid:m send\r\n" +
	"a=rid:l send\r\n" +
	"a=simulcast:send h;~m;l\r\n"

func testConfig() *Config {
	return &Config{
		ICEUfrag:    "srvUfrag",
		ICEPwd:      "serverpasswordserverpass",
		Fingerprint: Fingerprint{Algorithm: "sha-256", Value: "AA:BB"},
		Candidates: []Candidate{
			{Addr: netip.MustParseAddrPort("127.0.0.1:40000")},
			{Addr: netip.MustParseAddrPort("127.0.0.1:40001"), TCP: true},
		},
		Rand: rand.New(rand.NewPCG(1, 2)),
	}
}

func mustNegotiate(t *testing.T, offer string, cfg *Config) *Negotiated {
	t.Helper()
	neg, err := Negotiate(offer, cfg)
	if err != nil {
		t.Fatalf("Negotiate: %v", err)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(neg.Answer); err != nil {
		t.Fatalf("answer does not parse: %v\n%s", err, neg.Answer)
	}
	return neg
}

func TestNegotiateChromePublisher(t *testing.T) {
	neg := mustNegotiate(t, chromeOffer, testConfig())
	if neg.RemoteUfrag != "EsAw" || neg.RemotePwd != "bP+XJMM09aR8AiX1jdukzR6Y" {
		t.Errorf("remote ICE %q/%q", neg.RemoteUfrag, neg.RemotePwd)
	}
	if neg.RemoteFingerprint.Algorithm != "sha-256" || !strings.HasPrefix(neg.RemoteFingerprint.Value, "DA:39:A3") {
		t.Errorf("remote fingerprint %+v", neg.RemoteFingerprint)
	}
	if len(neg.Media) != 2 {
		t.Fatalf("%d media", len(neg.Media))
	}
	a, v := neg.Media[0], neg.Media[1]
	if a.MID != "0" || a.Kind != KindAudio || a.Direction != RecvOnly || a.Rejected {
		t.Errorf("audio %+v", a)
	}
	if a.Codec.Name != "opus" || a.Codec.PayloadType != 111 || a.Codec.ClockRate != 48000 || a.Codec.Channels != 2 ||
		a.Codec.Fmtp != "minptime=10;useinbandfec=1" || !slices.Equal(a.Codec.Feedback, []string{"transport-cc"}) {
		t.Errorf("audio codec %+v", a.Codec)
	}
	if a.ExtensionID(ExtAudioLevel) != 1 || a.ExtensionID(ExtMID) != 4 || a.ExtensionID(ExtTransportCC) != 3 || a.ExtensionID(ExtRID) != 0 {
		t.Errorf("audio extensions %+v", a.Extensions)
	}
	if len(a.Streams) != 1 || a.Streams[0].SSRC != 1001 || a.Streams[0].CNAME != "u8Hq4Xf0GZ0uAYbA" ||
		a.Streams[0].MSID != "- 6f7d9e8b-1c2a-4d3e-8f90-a1b2c3d4e5f6" {
		t.Errorf("audio streams %+v", a.Streams)
	}
	if v.Codec.Name != "VP8" || v.Codec.PayloadType != 96 || v.RTXPayloadType != 97 {
		t.Errorf("video codec %+v rtx %d", v.Codec, v.RTXPayloadType)
	}
	if !slices.Equal(v.Codec.Feedback, []string{"goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"}) {
		t.Errorf("video feedback %v", v.Codec.Feedback)
	}
	wantExt := map[string]int{ExtMID: 4, ExtRID: 10, ExtRepairedRID: 11, ExtAbsSendTime: 2, ExtTransportCC: 3, ExtDependencyDescr: 12}
	if len(v.Extensions) != len(wantExt) {
		t.Errorf("video extensions %+v", v.Extensions)
	}
	for uri, id := range wantExt {
		if v.ExtensionID(uri) != id {
			t.Errorf("video ext %s = %d, want %d", uri, v.ExtensionID(uri), id)
		}
	}
	if !slices.Equal(v.RIDs, []string{"h", "m", "l"}) {
		t.Errorf("rids %v", v.RIDs)
	}

	ans := neg.Answer
	for _, want := range []string{
		"a=group:BUNDLE 0 1\r\n", "a=ice-lite\r\n", "a=ice-ufrag:srvUfrag\r\n",
		"a=ice-pwd:serverpasswordserverpass\r\n", "a=fingerprint:sha-256 AA:BB\r\n",
		"a=setup:passive\r\n", "a=rtcp-mux\r\n", "a=rtcp-rsize\r\n", "a=extmap-allow-mixed\r\n",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n",
		"a=rtpmap:96 VP8/90000\r\n", "a=rtpmap:97 rtx/90000\r\n", "a=fmtp:97 apt=96\r\n",
		"a=rtcp-fb:96 nack pli\r\n", "a=extmap:12 " + ExtDependencyDescr + "\r\n",
		"a=rid:h recv\r\n", "a=rid:m recv\r\n", "a=rid:l recv\r\n", "a=simulcast:recv h;m;l\r\n",
		"a=recvonly\r\n", "typ host\r\n", " tcp ", "tcptype passive", "127.0.0.1 40000 typ host",
		"a=candidate:2 1 tcp ",
	} {
		if !strings.Contains(ans, want) {
			t.Errorf("answer lacks %q\n%s", want, ans)
		}
	}
	for _, bad := range []string{"toffset", "video-orientation", "playout-delay", "a=ssrc:", "VP9", "H264", "red/"} {
		if strings.Contains(ans, bad) {
			t.Errorf("answer has %q", bad)
		}
	}
}

func TestNegotiateCodecPreference(t *testing.T) {
	tests := []struct {
		name   string
		codecs []string
		want   string
		pt     uint8
		rtx    uint8
		fmtp   string
	}{
		{"h264 prefers 42e01f pm=1", []string{CodecOpus, CodecH264}, "H264", 106, 107, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{"vp9 profile 0", []string{CodecOpus, CodecVP9}, "VP9", 98, 99, "profile-id=0"},
		{"av1", []string{CodecOpus, CodecAV1}, "AV1", 39, 40, "level-idx=5;profile=0;tier=0"},
		// A publisher's offer order decides among the codecs we accept.
		{"publisher offer order wins", []string{CodecOpus, CodecAV1, CodecVP8}, "VP8", 96, 97, ""},
		{"vp8 default", nil, "VP8", 96, 97, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Codecs = tc.codecs
			v := mustNegotiate(t, chromeOffer, cfg).Media[1]
			if v.Codec.Name != tc.want || v.Codec.PayloadType != tc.pt || v.RTXPayloadType != tc.rtx || v.Codec.Fmtp != tc.fmtp {
				t.Errorf("got %s pt %d rtx %d fmtp %q", v.Codec.Name, v.Codec.PayloadType, v.RTXPayloadType, v.Codec.Fmtp)
			}
		})
	}
	t.Run("video refused, audio kept", func(t *testing.T) {
		cfg := testConfig()
		cfg.Codecs = []string{CodecOpus}
		neg := mustNegotiate(t, chromeOffer, cfg)
		if neg.Media[0].Rejected || !neg.Media[1].Rejected {
			t.Fatalf("rejected flags %v %v", neg.Media[0].Rejected, neg.Media[1].Rejected)
		}
		if !strings.Contains(neg.Answer, "m=video 0 UDP/TLS/RTP/SAVPF 96\r\n") || !strings.Contains(neg.Answer, "a=group:BUNDLE 0\r\n") {
			t.Errorf("answer should reject video and drop it from BUNDLE:\n%s", neg.Answer)
		}
	})
}

func TestNegotiateViewer(t *testing.T) {
	offer := strings.NewReplacer("a=sendonly", "a=recvonly", "a=rid:h send\r\na=rid:m send\r\na=rid:l send\r\na=simulcast:send h;~m;l\r\n", "").Replace(chromeOffer)
	cfg := testConfig()
	cfg.CNAME = "sfucname"
	cfg.StreamID = "room1"
	neg := mustNegotiate(t, offer, cfg)
	for _, m := range neg.Media {
		if m.Direction != SendOnly || m.LocalSSRC == 0 || len(m.Streams) != 0 {
			t.Errorf("%s: dir %s ssrc %d streams %v", m.Kind, m.Direction, m.LocalSSRC, m.Streams)
		}
		if (m.Kind == KindVideo) != (m.LocalRTXSSRC != 0) {
			t.Errorf("%s: rtx ssrc %d", m.Kind, m.LocalRTXSSRC)
		}
		if m.ExtensionID(ExtRID) != 0 {
			t.Errorf("%s: rid extension in a sendonly answer", m.Kind)
		}
	}
	v := neg.Media[1]
	for _, want := range []string{
		"a=sendonly\r\n", "a=msid:room1 video-1\r\n",
		"a=ssrc:" + u32(v.LocalSSRC) + " cname:sfucname\r\n",
		"a=ssrc:" + u32(v.LocalSSRC) + " msid:room1 video-1\r\n",
		"a=ssrc-group:FID " + u32(v.LocalSSRC) + " " + u32(v.LocalRTXSSRC) + "\r\n",
	} {
		if !strings.Contains(neg.Answer, want) {
			t.Errorf("answer lacks %q\n%s", want, neg.Answer)
		}
	}
	// Same seed, same answer: randomness only from Config.Rand.
	if again := mustNegotiate(t, offer, func() *Config { c := testConfig(); c.CNAME = "sfucname"; c.StreamID = "room1"; return c }()); again.Answer != neg.Answer {
		t.Error("answer not deterministic for a fixed Rand")
	}
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func TestNegotiateSimulcastSSRCGroups(t *testing.T) {
	// Firefox-style simulcast announces SSRCs with FID groups instead of rids.
	offer := strings.Replace(chromeOffer, "a=rid:h send\r\na=rid:m send\r\na=rid:l send\r\na=simulcast:send h;~m;l\r\n",
		"a=ssrc-group:FID 2001 2002\r\na=ssrc-group:FID 2003 2004\r\n"+
			"a=ssrc:2001 cname:c\r\na=ssrc:2002 cname:c\r\na=ssrc:2003 cname:c\r\na=ssrc:2004 cname:c\r\n", 1)
	v := mustNegotiate(t, offer, testConfig()).Media[1]
	want := []Stream{
		{SSRC: 2001, RTXSSRC: 2002, CNAME: "c", MSID: "- 0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"},
		{SSRC: 2003, RTXSSRC: 2004, CNAME: "c", MSID: "- 0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"},
	}
	if !slices.Equal(v.Streams, want) {
		t.Errorf("streams %+v", v.Streams)
	}
}

func TestNegotiateErrors(t *testing.T) {
	tests := []struct {
		name  string
		offer string
		want  error
	}{
		{"garbage", "hello", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"no media", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", ErrMalformed},
		{"no ice", strings.ReplaceAll(chromeOffer, "a=ice-ufrag:EsAw\r\n", ""), ErrMalformed},
		{"no fingerprint", removeLines(chromeOffer, "a=fingerprint:"), ErrMalformed},
		{"duplicate mid", strings.Replace(chromeOffer, "a=mid:1", "a=mid:0", 1), ErrMalformed},
		{"passive peer", strings.ReplaceAll(chromeOffer, "a=setup:actpass", "a=setup:passive"), ErrUnsupported},
		{"no rtcp-mux", strings.ReplaceAll(chromeOffer, "a=rtcp-mux\r\n", ""), ErrUnsupported},
		{"no bundle", strings.ReplaceAll(chromeOffer, "a=group:BUNDLE 0 1\r\n", ""), ErrUnsupported},
		{"no codec", removeLines(removeLines(chromeOffer, "a=rtpmap:111"), "a=rtpmap:96 "), nil},
		{"only g711 audio", onlyAudio(removeLines(chromeOffer, "a=rtpmap:111")), ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Negotiate(tc.offer, testConfig())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if errors.Is(err, ErrMalformed) && errors.Is(err, ErrUnsupported) {
				t.Fatal("error is both malformed and unsupported")
			}
		})
	}
}

func removeLines(s, prefix string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\r\n") {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n")
}

func onlyAudio(s string) string {
	s = s[:strings.Index(s, "m=video")]
	return strings.Replace(s, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0", 1)
}

// TestNegotiatePionOffers answers offers generated by pion/webrtc and has
// pion accept the answers.
func TestNegotiatePionOffers(t *testing.T) {
	tests := []struct {
		name string
		dir  pion.RTPTransceiverDirection
		want Direction
	}{
		{"sendonly", pion.RTPTransceiverDirectionSendonly, RecvOnly},
		{"recvonly", pion.RTPTransceiverDirectionRecvonly, SendOnly},
		{"sendrecv", pion.RTPTransceiverDirectionSendrecv, RecvOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newPionAPI(t, pion.NetworkTypeUDP4)
			pc, err := api.NewPeerConnection(pion.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			for _, k := range []pion.RTPCodecType{pion.RTPCodecTypeAudio, pion.RTPCodecTypeVideo} {
				if _, err := pc.AddTransceiverFromKind(k, pion.RTPTransceiverInit{Direction: tc.dir}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := pc.CreateDataChannel("dc", nil); err != nil {
				t.Fatal(err)
			}
			offer := localOffer(t, pc)
			neg := mustNegotiate(t, offer.SDP, testConfig())
			if len(neg.Media) != 3 || !neg.Media[2].Rejected {
				t.Fatalf("want audio, video and a rejected data channel: %+v", neg.Media)
			}
			for _, m := range neg.Media[:2] {
				if m.Direction != tc.want || m.Rejected {
					t.Errorf("%s: %s rejected=%v", m.Kind, m.Direction, m.Rejected)
				}
			}
			if neg.Media[0].Codec.Name != "opus" || neg.Media[1].Codec.Name != "VP8" || neg.Media[1].RTXPayloadType == 0 {
				t.Errorf("codecs %+v / %+v", neg.Media[0].Codec, neg.Media[1])
			}
			if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: neg.Answer}); err != nil {
				t.Fatalf("pion rejects the answer: %v\n%s", err, neg.Answer)
			}
		})
	}
}

func FuzzNegotiate(f *testing.F) {
	f.Add(chromeOffer)
	f.Add(removeLines(chromeOffer, "a=rid"))
	f.Add("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:a\r\na=ice-pwd:b\r\na=fingerprint:sha-256 AA\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n")
	f.Fuzz(func(t *testing.T, offer string) {
		neg, err := Negotiate(offer, testConfig())
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error of unknown class: %v", err)
			}
			return
		}
		var sd sdp.SessionDescription
		if err := sd.UnmarshalString(neg.Answer); err != nil {
			t.Fatalf("answer does not parse: %v\n%s", err, neg.Answer)
		}
		if len(sd.MediaDescriptions) != len(neg.Media) {
			t.Fatalf("answer has %d m-lines for %d media", len(sd.MediaDescriptions), len(neg.Media))
		}
	})
}
