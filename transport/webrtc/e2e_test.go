package webrtc

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/sansrtc/sfu/internal/piontest"

	"github.com/sansrtc/sfu/transport/udp"
)

// server is our side of an end-to-end test: one shared UDP mux.
type server struct {
	cert *Certificate
	mux  *udp.Mux
	tcp  *udp.TCPListener
}

func newServer(t *testing.T, withTCP bool) *server {
	t.Helper()
	cert, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	mux, err := udp.Listen(udp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mux.Serve(ctx) }()
	srv := &server{cert: cert, mux: mux}
	if withTCP {
		srv.tcp, err = mux.ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		cancel()
		<-done
		if srv.tcp != nil {
			srv.tcp.Close()
		}
	})
	return srv
}

func (srv *server) candidates() []Candidate {
	c := []Candidate{{Addr: srv.mux.LocalAddr()}}
	if srv.tcp != nil {
		c = append(c, Candidate{Addr: srv.tcp.LocalAddr(), TCP: true})
	}
	return c
}

// answer negotiates offer and starts a session registered on the mux.
func (srv *server) answer(t *testing.T, offer string, onRTP func([]byte)) (*Negotiated, *Session, <-chan State) {
	t.Helper()
	ufrag, pwd := NewICECredentials()
	neg, err := Negotiate(offer, &Config{
		ICEUfrag: ufrag, ICEPwd: pwd,
		Fingerprint: srv.cert.Fingerprint(),
		Candidates:  srv.candidates(),
	})
	if err != nil {
		t.Fatalf("Negotiate: %v", err)
	}
	states := make(chan State, 8)
	sess, err := NewSession(time.Now(), SessionConfig{
		Certificate: srv.cert,
		LocalUfrag:  ufrag, LocalPwd: pwd,
		RemoteUfrag:       neg.RemoteUfrag,
		RemoteFingerprint: neg.RemoteFingerprint,
		OnRTP: func(_ time.Time, pkt []byte) {
			if onRTP != nil {
				onRTP(pkt)
			}
		},
		OnStateChange: func(s State) { states <- s },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.mux.Register(ufrag, sess)
	t.Cleanup(func() { srv.mux.Unregister(ufrag); sess.Close() })
	return neg, sess, states
}

// localOffer creates pc's offer and sets it as its local description.
func localOffer(t *testing.T, pc *pion.PeerConnection) pion.SessionDescription {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	return offer
}

func newPionAPI(t *testing.T, network pion.NetworkType) *pion.API {
	t.Helper()
	api, err := piontest.API(piontest.Options{Network: network})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func waitState(t *testing.T, states <-chan State, want State) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-states:
			if s == want {
				return
			}
			if s == StateFailed || s == StateClosed {
				t.Fatalf("session went %v waiting for %v", s, want)
			}
		case <-timeout:
			t.Fatalf("timed out waiting for session state %v", want)
		}
	}
}

func vp8Payload(i int) []byte {
	// A VP8 payload descriptor (S=1, PID 0) and a keyframe-looking header,
	// then a body that identifies the packet.
	return append([]byte{0x10, 0x00, 0x9d, 0x01, 0x2a}, fmt.Appendf(nil, "vp8 frame %04d", i)...)
}

// TestE2EPublish: a pion publisher sends VP8 and Opus to our session; we
// see the same payloads decrypted.
func TestE2EPublish(t *testing.T) {
	for _, tc := range []struct {
		name    string
		network pion.NetworkType
	}{
		{"udp4", pion.NetworkTypeUDP4},
		{"tcp4", pion.NetworkTypeTCP4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testE2EPublish(t, tc.network)
		})
	}
}

func testE2EPublish(t *testing.T, network pion.NetworkType) {
	srv := newServer(t, network == pion.NetworkTypeTCP4)
	api := newPionAPI(t, network)
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	video, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8}, "video", "pub")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus}, "audio", "pub")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []pion.TrackLocal{audio, video} {
		if _, err := pc.AddTransceiverFromTrack(tr, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer := localOffer(t, pc)

	var mu sync.Mutex
	got := map[string]bool{}
	gotAll := make(chan struct{})
	const n = 20
	var want []string
	for i := range n {
		want = append(want, string(vp8Payload(i)), fmt.Sprintf("opus %04d", i))
	}
	var ssrcs = map[uint32]bool{}
	neg, sess, states := srv.answer(t, offer.SDP, func(pkt []byte) {
		var p rtp.Packet
		if err := p.Unmarshal(pkt); err != nil {
			t.Errorf("decrypted RTP does not parse: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		got[string(p.Payload)] = true
		ssrcs[p.SSRC] = true
		for _, w := range want {
			if !got[w] {
				return
			}
		}
		select {
		case <-gotAll:
		default:
			close(gotAll)
		}
	})
	if len(neg.Media) != 2 || neg.Media[0].Codec.Name != "opus" || neg.Media[1].Codec.Name != "VP8" {
		t.Fatalf("negotiated %+v", neg.Media)
	}
	for _, m := range neg.Media {
		if m.Direction != RecvOnly || len(m.Streams) != 1 {
			t.Fatalf("media %s: direction %s streams %v", m.MID, m.Direction, m.Streams)
		}
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: neg.Answer}); err != nil {
		t.Fatalf("pion rejects our answer: %v\n%s", err, neg.Answer)
	}
	waitState(t, states, StateConnected)
	if p, ok := sess.SRTPProfile(); !ok || p != 0x0007 {
		t.Errorf("SRTP profile %v, want AEAD_AES_128_GCM", p)
	}
	if w, _, _ := sess.Path(); (w == udp.Writer(srv.mux)) != (network == pion.NetworkTypeUDP4) {
		t.Errorf("selected path writer %T, want UDP mux only for udp4", w)
	}

	// Send until everything arrived (UDP on loopback rarely drops, but the
	// receiver's SRTP keys may land a moment after pion's).
	deadline := time.After(10 * time.Second)
	for round := 0; ; round++ {
		for i := range n {
			seq := uint16(round*n + i)
			vp := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(i) * 3000}, Payload: vp8Payload(i)}
			if err := video.WriteRTP(vp); err != nil {
				t.Fatal(err)
			}
			ap := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(i) * 960}, Payload: fmt.Appendf(nil, "opus %04d", i)}
			if err := audio.WriteRTP(ap); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-gotAll:
			mu.Lock()
			defer mu.Unlock()
			for _, m := range neg.Media {
				if !ssrcs[m.Streams[0].SSRC] {
					t.Errorf("no packet from announced SSRC %d (got %v)", m.Streams[0].SSRC, ssrcs)
				}
			}
			st := sess.Stats()
			if st.ICE.Valid == 0 || st.RTP == 0 {
				t.Errorf("stats %+v", st)
			}
			return
		case <-deadline:
			mu.Lock()
			t.Fatalf("timed out; got %d of %d payloads; stats %+v", len(got), len(want), sess.Stats())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestE2EView: our session sends RTP to a recvonly pion peer, whose OnTrack
// receives the same payloads.
func TestE2EView(t *testing.T) {
	srv := newServer(t, false)
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
	type recv struct {
		kind    string
		payload []byte
	}
	got := make(chan recv, 256)
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			got <- recv{tr.Kind().String(), bytes.Clone(p.Payload)}
		}
	})
	offer := localOffer(t, pc)
	neg, sess, states := srv.answer(t, offer.SDP, nil)
	for _, m := range neg.Media {
		if m.Direction != SendOnly || m.LocalSSRC == 0 {
			t.Fatalf("media %s: direction %s ssrc %d", m.MID, m.Direction, m.LocalSSRC)
		}
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: neg.Answer}); err != nil {
		t.Fatalf("pion rejects our answer: %v\n%s", err, neg.Answer)
	}
	waitState(t, states, StateConnected)

	want := map[string]map[string]bool{"audio": {}, "video": {}}
	deadline := time.After(10 * time.Second)
	buf := make([]byte, 1500)
	enc := make([]byte, 0, 1500)
	var seq uint16
	count := map[string]int{}
	for {
		for _, m := range neg.Media {
			seq++
			payload := vp8Payload(int(seq))
			if m.Kind == KindAudio {
				payload = fmt.Appendf(nil, "opus %04d", seq)
			}
			want[string(m.Kind)][string(payload)] = true
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: m.Codec.PayloadType, SequenceNumber: seq,
				Timestamp: uint32(seq) * 960, SSRC: m.LocalSSRC}, Payload: payload}
			n, err := p.MarshalTo(buf)
			if err != nil {
				t.Fatal(err)
			}
			if seq%2 == 0 {
				if err := sess.WriteRTP(buf[:n]); err != nil {
					t.Fatal(err)
				}
			} else {
				out, err := sess.EncryptRTP(enc, buf[:n])
				if err != nil {
					t.Fatal(err)
				}
				w, to, ok := sess.Path()
				if !ok {
					t.Fatal("no path")
				}
				if err := w.WritePacket(out, to); err != nil {
					t.Fatal(err)
				}
			}
		}
	drain:
		for {
			select {
			case r := <-got:
				if !want[r.kind][string(r.payload)] {
					t.Fatalf("pion got unexpected %s payload %q", r.kind, r.payload)
				}
				count[r.kind]++
				if count["audio"] >= 5 && count["video"] >= 5 {
					return
				}
			default:
				break drain
			}
		}
		select {
		case <-deadline:
			t.Fatalf("pion received nothing in time; stats %+v", sess.Stats())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
