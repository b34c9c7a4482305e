package webrtc_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/sansrtc/sfu/transport/webrtc"
)

// ExampleNegotiate answers a minimal publisher offer and shows what the
// server learns from it.
func ExampleNegotiate() {
	offer := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"a=group:BUNDLE a v\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=mid:a\r\na=ice-ufrag:peer\r\na=ice-pwd:peerpasswordpeerpassword\r\n" +
		"a=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\n" +
		"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n" +
		"a=rtpmap:111 opus/48000/2\r\na=ssrc:11 cname:x\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=mid:v\r\na=sendonly\r\na=rtcp-mux\r\n" +
		"a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\n" +
		"a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n" +
		"a=rid:hi send\r\na=rid:lo send\r\na=simulcast:send hi;lo\r\n"
	neg, err := webrtc.Negotiate(offer, &webrtc.Config{
		ICEUfrag: "srv0", ICEPwd: "serverpasswordserverpass",
		Fingerprint: webrtc.Fingerprint{Algorithm: "sha-256", Value: "01:02"},
		Candidates:  []webrtc.Candidate{{Addr: netip.MustParseAddrPort("127.0.0.1:5000")}},
		Rand:        rand.New(rand.NewPCG(1, 1)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("peer ufrag:", neg.RemoteUfrag)
	for _, m := range neg.Media {
		fmt.Printf("%s %s %s pt=%d rtx=%d rids=%v streams=%d audio-level-ext=%d\n", m.MID, m.Kind, m.Direction,
			m.Codec.PayloadType, m.RTXPayloadType, m.RIDs, len(m.Streams), m.ExtensionID(webrtc.ExtAudioLevel))
	}
	// Output:
	// peer ufrag: peer
	// a audio recvonly pt=111 rtx=0 rids=[] streams=1 audio-level-ext=1
	// v video recvonly pt=96 rtx=97 rids=[hi lo] streams=0 audio-level-ext=0
}
