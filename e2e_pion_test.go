package sfu_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/sansrtc/sfu"
	"github.com/sansrtc/sfu/core"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/track"
)

// testServer is an sfu.Server on loopback with its HTTP signalling.
type testServer struct {
	*sfu.Server
	url string
}

func startServer(t *testing.T, cfg sfu.Config) *testServer {
	t.Helper()
	srv, err := sfu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
	})
	return &testServer{Server: srv, url: hs.URL}
}

// counts returns the node's live-object counts.
func (s *testServer) counts() core.Counts {
	var c core.Counts
	s.Driver().Inspect(func(n *core.Node) { c = n.Counts() })
	return c
}

func pionAPI(t *testing.T, network pion.NetworkType) *pion.API {
	t.Helper()
	var se pion.SettingEngine
	se.SetNetworkTypes([]pion.NetworkType{network})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	return pion.NewAPI(pion.WithSettingEngine(se), pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir))
}

// codecParams are pion's default registrations of the codecs the tests
// publish.
var codecParams = map[string]pion.RTPCodecParameters{
	pion.MimeTypeVP8: {RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: []pion.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}}, PayloadType: 96},
	pion.MimeTypeH264: {RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: []pion.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}}, PayloadType: 125},
	pion.MimeTypeOpus: {RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
}

// signal does the WHIP/WHEP exchange for pc and returns the session URL.
func signal(t *testing.T, pc *pion.PeerConnection, url string) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	resp, err := http.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatalf("answer rejected: %v\n%s", err, body)
	}
	loc := resp.Header.Get("Location")
	if i := strings.Index(url, "/wh"); i >= 0 {
		return url[:i] + loc
	}
	return loc
}

func deleteSession(t *testing.T, url string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %s: %d", url, resp.StatusCode)
	}
}

// publisher is a pion/webrtc peer sending synthetic media by WHIP.
type publisher struct {
	pc       *pion.PeerConnection
	location string
	stop     chan struct{}
	wg       sync.WaitGroup
}

type pubTrack struct {
	mime string
	src  testutil.Source
}

func publish(t *testing.T, srv *testServer, api *pion.API, room string, tracks ...pubTrack) *publisher {
	t.Helper()
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &publisher{pc: pc, stop: make(chan struct{})}
	var locals []*pion.TrackLocalStaticRTP
	var senders []*pion.RTPSender
	for i, tr := range tracks {
		local, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: tr.mime}, fmt.Sprint("t", i), "pub")
		if err != nil {
			t.Fatal(err)
		}
		tx, err := pc.AddTransceiverFromTrack(local, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		// pion offers every registered codec but can only send the
		// track's: offer just that one.
		if err := tx.SetCodecPreferences([]pion.RTPCodecParameters{codecParams[tr.mime]}); err != nil {
			t.Fatal(err)
		}
		locals = append(locals, local)
		senders = append(senders, tx.Sender())
	}
	p.location = signal(t, pc, srv.url+"/whip/"+room)
	var mu sync.Mutex // the sources may share one seeded Rand
	for i, tr := range tracks {
		src, local, sender := tr.src, locals[i], senders[i]
		p.wg.Add(2)
		go func() { // keyframe requests from the SFU
			defer p.wg.Done()
			for {
				pkts, _, err := sender.ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					switch pk.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						mu.Lock()
						src.RequestKeyframe()
						mu.Unlock()
					}
				}
			}
		}()
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(src.FrameInterval())
			defer tick.Stop()
			for {
				select {
				case <-p.stop:
					return
				case now := <-tick.C:
					mu.Lock()
					frame := src.NextFrame(now)
					mu.Unlock()
					for _, b := range frame {
						var pkt rtp.Packet
						if err := pkt.Unmarshal(b); err != nil {
							panic(err)
						}
						_ = local.WriteRTP(&pkt)
					}
				}
			}
		}()
	}
	t.Cleanup(p.close)
	return p
}

func (p *publisher) close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	_ = p.pc.Close()
	p.wg.Wait()
}

// viewer is a pion/webrtc peer playing a room by WHEP, checking what it
// receives.
type viewer struct {
	pc       *pion.PeerConnection
	location string
	mu       sync.Mutex
	checker  *testutil.Checker
	wg       sync.WaitGroup
}

func view(t *testing.T, srv *testServer, api *pion.API, room, name string) *viewer {
	t.Helper()
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &viewer{pc: pc, checker: testutil.NewChecker(testutil.CheckerConfig{Name: name, AnyTag: true, PictureIDs: true})}
	for _, k := range []pion.RTPCodecType{pion.RTPCodecTypeAudio, pion.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		codec := track.CodecByName(strings.TrimPrefix(strings.TrimPrefix(tr.Codec().MimeType, "video/"), "audio/"))
		v.mu.Lock()
		v.checker.SetCodec(uint32(tr.SSRC()), codec)
		v.mu.Unlock()
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			buf := make([]byte, 1500)
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				n, err := pkt.MarshalTo(buf)
				if err != nil {
					continue
				}
				v.mu.Lock()
				v.checker.HandleRTP(time.Now(), buf[:n])
				v.mu.Unlock()
			}
		}()
	})
	v.location = signal(t, pc, srv.url+"/whep/"+room)
	t.Cleanup(v.close)
	return v
}

func (v *viewer) close() {
	_ = v.pc.Close()
	v.wg.Wait()
}

// frames returns the frames received of the given source tag.
func (v *viewer) stats(tag uint32) testutil.TagStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.checker.Stats(tag)
}

func (v *viewer) err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.checker.Err()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPionPublishAndView: a pion publisher sends by WHIP, three pion
// viewers play by WHEP; every viewer gets decodable media (keyframe first,
// continuous sequence numbers) in VP8+Opus and in H264+Opus. DELETE frees
// everything.
func TestPionPublishAndView(t *testing.T) {
	for _, video := range []string{pion.MimeTypeVP8, pion.MimeTypeH264} {
		t.Run(video, func(t *testing.T) {
			srv := startServer(t, sfu.Config{})
			api := pionAPI(t, pion.NetworkTypeUDP4)
			r := rand.New(rand.NewPCG(1, 2))
			vtag, atag := testutil.TagOf("video"), testutil.TagOf("audio")
			var vsrc testutil.Source
			if video == pion.MimeTypeVP8 {
				vsrc = testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: vtag, FPS: 30, BitrateBps: 500_000, TemporalLayers: 3})
			} else {
				vsrc = testutil.NewH264Source(r, testutil.H264Config{SSRC: 1, Tag: vtag, FPS: 30, BitrateBps: 500_000})
			}
			pub := publish(t, srv, api, "room", pubTrack{video, vsrc},
				pubTrack{pion.MimeTypeOpus, testutil.NewOpusSource(r, testutil.OpusConfig{SSRC: 2, Tag: atag})})
			var viewers []*viewer
			for i := 0; i < 3; i++ {
				viewers = append(viewers, view(t, srv, api, "room", fmt.Sprint("viewer", i)))
			}
			for _, v := range viewers {
				waitFor(t, 10*time.Second, "60 video frames", func() bool { return v.stats(vtag).Frames >= 60 && v.stats(atag).Frames >= 50 })
				if st := v.stats(vtag); !st.FirstKeyframe {
					t.Fatal("first video packet was not a keyframe")
				}
				if err := v.err(); err != nil {
					t.Fatal(err)
				}
			}
			for _, v := range viewers {
				deleteSession(t, v.location)
			}
			deleteSession(t, pub.location)
			if c := srv.counts(); c != (core.Counts{}) {
				t.Fatalf("live objects after every DELETE: %+v", c)
			}
			if n := srv.Driver().Stats().Sessions; n != 0 {
				t.Fatalf("%d sessions after every DELETE", n)
			}
		})
	}
}

// TestPionICETCP: a viewer whose network allows only TCP gets media over
// ICE-TCP (RFC 6544 framing on the server's one TCP port).
func TestPionICETCP(t *testing.T) {
	srv := startServer(t, sfu.Config{})
	r := rand.New(rand.NewPCG(3, 4))
	vtag := testutil.TagOf("video")
	publish(t, srv, pionAPI(t, pion.NetworkTypeUDP4), "room",
		pubTrack{pion.MimeTypeVP8, testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: vtag, FPS: 30, BitrateBps: 300_000})})
	v := view(t, srv, pionAPI(t, pion.NetworkTypeTCP4), "room", "tcp-viewer")
	waitFor(t, 10*time.Second, "30 frames over TCP", func() bool { return v.stats(vtag).Frames >= 30 })
	if err := v.err(); err != nil {
		t.Fatal(err)
	}
	pair, err := v.pc.GetTransceivers()[0].Receiver().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote.Protocol != pion.ICEProtocolTCP {
		t.Fatalf("selected pair %v (%v), want TCP", pair, err)
	}
}
