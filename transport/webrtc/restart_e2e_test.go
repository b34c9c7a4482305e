package webrtc

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
)

// offerFragment cuts the trickle-ICE sdpfrag a WHIP client would PATCH
// for an ICE restart out of its new offer: the BUNDLE group, then per
// m-line the m=, a=mid and ICE lines.
func offerFragment(sdp string) string {
	var b strings.Builder
	for l := range strings.SplitSeq(sdp, "\r\n") {
		for _, p := range []string{"a=group:BUNDLE", "m=", "a=mid:", "a=ice-ufrag:", "a=ice-pwd:", "a=candidate:", "a=end-of-candidates"} {
			if strings.HasPrefix(l, p) {
				b.WriteString(l + "\r\n")
				break
			}
		}
	}
	return b.String()
}

// TestE2EICERestart: a pion publisher restarts ICE mid-stream (new
// ufrag/pwd on both sides, as by a WHIP PATCH); our session keeps its DTLS
// and SRTP state, refuses the old credentials, and media keeps arriving.
func TestE2EICERestart(t *testing.T) {
	srv := newServer(t, false)
	api := newPionAPI(t, pion.NetworkTypeUDP4)
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	video, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8}, "video", "pub")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(video, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer := localOffer(t, pc)

	var mu sync.Mutex
	got := map[string]bool{}
	neg, sess, states := srv.answer(t, offer.SDP, func(pkt []byte) {
		var p rtp.Packet
		if err := p.Unmarshal(pkt); err != nil {
			t.Errorf("decrypted RTP does not parse: %v", err)
			return
		}
		mu.Lock()
		got[string(p.Payload)] = true
		mu.Unlock()
	})
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: neg.Answer}); err != nil {
		t.Fatalf("pion rejects our answer: %v", err)
	}
	waitState(t, states, StateConnected)
	oldUfrag, oldPwd := answerAttr(t, neg.Answer, "ice-ufrag"), answerAttr(t, neg.Answer, "ice-pwd")
	_, pathBefore, _ := sess.Path()

	var seq uint16
	// sendUntil sends VP8 packets labelled tag until one of them arrives.
	sendUntil := func(tag string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			seq++
			payload := append([]byte{0x10, 0x00, 0x9d, 0x01, 0x2a}, fmt.Sprintf("%s %05d", tag, seq)...)
			if err := video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: payload}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			n := 0
			for k := range got {
				if strings.Contains(k, tag+" ") {
					n++
				}
			}
			mu.Unlock()
			if n >= 5 {
				return
			}
			select {
			case <-deadline:
				t.Fatalf("%s: only %d packets arrived; stats %+v", tag, n, sess.Stats())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	sendUntil("before")

	// The client restarts ICE; the server takes its new credentials from
	// the sdpfrag, restarts the session, and answers with new ones.
	restart, err := pc.CreateOffer(&pion.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(restart); err != nil {
		t.Fatal(err)
	}
	frag, err := ParseICEFragment(offerFragment(restart.SDP))
	if err != nil {
		t.Fatalf("ParseICEFragment: %v\n%s", err, offerFragment(restart.SDP))
	}
	if frag.Ufrag == "" || frag.Ufrag == neg.RemoteUfrag || frag.Pwd == neg.RemotePwd {
		t.Fatalf("restart offer credentials %q/%q, before %q/%q", frag.Ufrag, frag.Pwd, neg.RemoteUfrag, neg.RemotePwd)
	}
	ufrag, pwd := NewICECredentials()
	validBefore := sess.Stats().ICE.Valid
	if err := sess.RestartICE(time.Now(), ufrag, pwd, frag.Ufrag); err != nil {
		t.Fatal(err)
	}
	srv.mux.Register(ufrag, sess)
	t.Cleanup(func() { srv.mux.Unregister(ufrag) })
	neg2, err := Negotiate(restart.SDP, &Config{ICEUfrag: ufrag, ICEPwd: pwd, Fingerprint: srv.cert.Fingerprint(), Candidates: srv.candidates()})
	if err != nil {
		t.Fatal(err)
	}
	if neg2.RemoteUfrag != frag.Ufrag || neg2.RemotePwd != frag.Pwd {
		t.Fatalf("sdpfrag credentials %q/%q differ from the offer's %q/%q", frag.Ufrag, frag.Pwd, neg2.RemoteUfrag, neg2.RemotePwd)
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: neg2.Answer}); err != nil {
		t.Fatalf("pion rejects the restart answer: %v", err)
	}

	// Pion's checks with the new credentials authenticate.
	for deadline := time.Now().Add(5 * time.Second); sess.Stats().ICE.Valid == validBefore; {
		if time.Now().After(deadline) {
			t.Fatalf("no valid Binding request with the new credentials; stats %+v", sess.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sendUntil("after")
	if st := sess.State(); st != StateConnected {
		t.Fatalf("session %v after restart", st)
	}
	select {
	case st := <-states:
		t.Fatalf("session changed state to %v during the restart", st)
	default:
	}
	_, pathAfter, _ := sess.Path()
	t.Logf("path %v before the restart, %v after", pathBefore, pathAfter)
	// Only the new credentials authenticate now.
	from := netip.MustParseAddrPort("127.0.0.1:9")
	if sess.HandleDatagram(time.Now(), from, &captureWriter{}, bindingRequest(t, oldUfrag+":"+neg.RemoteUfrag, oldPwd, false, true)) {
		t.Error("Binding request with the pre-restart credentials accepted")
	}
	if !sess.HandleDatagram(time.Now(), from, &captureWriter{}, bindingRequest(t, ufrag+":"+frag.Ufrag, pwd, false, true)) {
		t.Error("Binding request with the new credentials refused")
	}
}

// answerAttr returns the first a=key value of an SDP.
func answerAttr(t *testing.T, sdp, key string) string {
	t.Helper()
	_, rest, ok := strings.Cut(sdp, "a="+key+":")
	if !ok {
		t.Fatalf("SDP without a=%s", key)
	}
	v, _, _ := strings.Cut(rest, "\r\n")
	return v
}
