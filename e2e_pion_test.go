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
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/sansrtc/sfu"
	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/core"
	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/piontest"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/track"
)

// testServer is an sfu.Server on loopback with its HTTP signalling.
type testServer struct {
	*sfu.Server
	url string
}

func startServer(t testing.TB, cfg sfu.Config) *testServer {
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
	return s.Driver().Counts()
}

func pionAPI(t testing.TB, network pion.NetworkType) *pion.API {
	t.Helper()
	// TWCC: send transport-wide sequence numbers, as browsers do, so the
	// server's congestion-control feedback can be checked.
	api, err := piontest.API(piontest.Options{Network: network, TWCC: true})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// codecParams are pion's default registrations of the codecs the tests
// publish.
var codecParams = map[string]pion.RTPCodecParameters{
	pion.MimeTypeVP8: {RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: []pion.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}}, PayloadType: 96},
	pion.MimeTypeH264: {RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: []pion.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}}, PayloadType: 125},
	pion.MimeTypeOpus: {RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
}

// signal does the WHIP/WHEP exchange for pc and returns the session URL.
func signal(t testing.TB, pc *pion.PeerConnection, url string) (location, etag string) {
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
		loc = url[:i] + loc
	}
	return loc, resp.Header.Get("ETag")
}

func deleteSession(t testing.TB, url string) {
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
	etag     string
	answer   string
	twcc     atomic.Int64 // transport-wide feedback packets received
	stop     chan struct{}
	wg       sync.WaitGroup
}

type pubTrack struct {
	mime string
	src  testutil.Source
}

func publish(t testing.TB, srv *testServer, api *pion.API, room string, tracks ...pubTrack) *publisher {
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
	p.location, p.etag = signal(t, pc, srv.url+"/whip/"+room)
	p.answer = pc.RemoteDescription().SDP
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
					case *rtcp.TransportLayerCC:
						p.twcc.Add(1)
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
	// reorder puts retransmissions (the server NACKs its publishers) back
	// in order, as the player's jitter buffer would, before the checker.
	reorder testutil.Reorder
	checker *testutil.Checker
	wg      sync.WaitGroup
	// onPacket, when set before media flows, sees every packet as it
	// arrives (under mu), before the reorder buffer.
	onPacket func(now time.Time, pkt []byte)
}

func view(t testing.TB, srv *testServer, api *pion.API, room, name string) *viewer {
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
				now := time.Now()
				v.mu.Lock()
				if v.onPacket != nil {
					v.onPacket(now, buf[:n])
				}
				v.reorder.Push(buf[:n], func(p []byte) { v.checker.HandleRTP(now, p) })
				v.mu.Unlock()
			}
		}()
	})
	v.location, _ = signal(t, pc, srv.url+"/whep/"+room)
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

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
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
			// The publisher's congestion controller is fed.
			waitFor(t, 5*time.Second, "transport-wide feedback at the publisher", func() bool { return pub.twcc.Load() > 0 })
			// The viewers are sent transport-wide sequence numbers, so they
			// send transport-cc feedback, which the server reads.
			waitFor(t, 5*time.Second, "transport-cc feedback from every viewer", func() bool {
				n := 0
				srv.Driver().Inspect(func(node *core.Node) {
					node.ForEachEndpoint(func(_ core.Handle, ep *endpoint.Endpoint) {
						if st := ep.Stats(); st.TransportCC > 0 && st.TransportCCReceived > 0 && st.Sent > 0 {
							n++
						}
					})
				})
				return n == len(viewers)
			})
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

// cuttable is a UDP socket a test can silence in both directions, so a
// peer vanishes without saying goodbye (no DTLS close_notify, no DELETE).
type cuttable struct {
	net.PacketConn
	cut atomic.Bool
}

func (c *cuttable) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *cuttable) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.cut.Load() {
			return n, addr, err
		}
	}
}

// TestPionVanishingViewerExpires: a viewer that vanishes is closed when
// its ICE consent lapses, and freed; the other viewer is unaffected.
func TestPionVanishingViewerExpires(t *testing.T) {
	srv := startServer(t, sfu.Config{ConsentTimeout: 3 * time.Second})
	r := rand.New(rand.NewPCG(5, 6))
	vtag := testutil.TagOf("video")
	publish(t, srv, pionAPI(t, pion.NetworkTypeUDP4), "room",
		pubTrack{pion.MimeTypeVP8, testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: vtag, FPS: 30, BitrateBps: 300_000})})
	stays := view(t, srv, pionAPI(t, pion.NetworkTypeUDP4), "room", "stays")

	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cut := &cuttable{PacketConn: conn}
	t.Cleanup(func() { conn.Close() })
	api := pionAPIWithMux(t, cut)
	goes := view(t, srv, api, "room", "goes")
	waitFor(t, 10*time.Second, "both viewers receiving", func() bool {
		return stays.stats(vtag).Frames >= 10 && goes.stats(vtag).Frames >= 10
	})
	if n := srv.Driver().Stats().Sessions; n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	cut.cut.Store(true)
	start := time.Now()
	waitFor(t, 10*time.Second, "the vanished viewer to be closed", func() bool { return srv.Driver().Stats().Sessions == 2 })
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("closed after %v, before its consent could lapse", took)
	}
	if st := srv.Driver().Stats(); st.SessionsExpired != 1 {
		t.Fatalf("stats %+v", st)
	}
	if c := srv.counts(); c.Endpoints != 2 || c.LocalTracks != 1 {
		t.Fatalf("counts after expiry %+v", c)
	}
	before := stays.stats(vtag).Frames
	time.Sleep(500 * time.Millisecond)
	if after := stays.stats(vtag).Frames; after <= before {
		t.Fatal("the other viewer stopped receiving")
	}
	if err := stays.err(); err != nil {
		t.Fatal(err)
	}
}

// pionAPIWithMux is pionAPI on a given socket.
func pionAPIWithMux(t *testing.T, conn net.PacketConn) *pion.API {
	t.Helper()
	api, err := piontest.API(piontest.Options{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// TestPionICERestart: a publisher restarts ICE by PATCH (RFC 9725 section
// 4.3) with new credentials; the answer fragment carries the server's new
// ones, and media keeps flowing to the viewer.
func TestPionICERestart(t *testing.T) {
	srv := startServer(t, sfu.Config{})
	api := pionAPI(t, pion.NetworkTypeUDP4)
	r := rand.New(rand.NewPCG(7, 8))
	vtag := testutil.TagOf("video")
	pub := publish(t, srv, api, "room",
		pubTrack{pion.MimeTypeVP8, testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: vtag, FPS: 30, BitrateBps: 300_000})})
	v := view(t, srv, api, "room", "viewer")
	waitFor(t, 10*time.Second, "frames before the restart", func() bool { return v.stats(vtag).Frames >= 10 })

	// Trickle fragments carry the current credentials (RFC 8840; RFC 9725
	// section 4.3.1's example): that is no restart, so 204 and no body.
	local := pub.pc.LocalDescription().SDP
	cand := "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
	curUfrag, curPwd := sdpAttr(local, "ice-ufrag"), sdpAttr(local, "ice-pwd")
	if code, body := patch(t, pub.location, "a=ice-ufrag:"+curUfrag+"\r\na=ice-pwd:"+curPwd+cand); code != http.StatusNoContent || body != "" {
		t.Fatalf("trickle with the current credentials: %d %q, want 204 (no restart)", code, body)
	}
	if code, _ := patch(t, pub.location, "a=ice-ufrag:"+curUfrag+"\r\na=ice-pwd:"+curPwd+"x"+cand); code != http.StatusBadRequest {
		t.Fatalf("same ufrag, other password: %d, want 400", code)
	}

	offer, err := pub.pc.CreateOffer(&pion.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	ufrag, pwd := sdpAttr(offer.SDP, "ice-ufrag"), sdpAttr(offer.SDP, "ice-pwd")
	frag := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
	code, body, etag := patchIfMatch(t, pub.location, "*", frag)
	if code != http.StatusOK {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	// RFC 9725 section 4.3.2: a restart gives the session a new entity-tag;
	// a retry of the same restart gets the same answer.
	if etag == "" || etag == pub.etag {
		t.Fatalf("ETag after the restart %q, before %q", etag, pub.etag)
	}
	if code, again, _ := patchIfMatch(t, pub.location, "*", frag); code != http.StatusOK || again != body {
		t.Fatalf("retried restart: %d %q, want the first answer %q", code, again, body)
	}
	if code, _, _ := patchIfMatch(t, pub.location, pub.etag, "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"); code != http.StatusPreconditionFailed {
		t.Fatalf("trickle with the old ETag: %d, want 412", code)
	}
	if code, _, _ := patchIfMatch(t, pub.location, etag, "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"); code != http.StatusNoContent {
		t.Fatalf("trickle with the new ETag: %d, want 204", code)
	}
	newUfrag, newPwd := sdpAttr(string(body), "ice-ufrag"), sdpAttr(string(body), "ice-pwd")
	oldUfrag, oldPwd := sdpAttr(pub.answer, "ice-ufrag"), sdpAttr(pub.answer, "ice-pwd")
	if newUfrag == "" || newUfrag == oldUfrag || newPwd == oldPwd {
		t.Fatalf("answer fragment without new credentials:\n%s", body)
	}
	answer := strings.ReplaceAll(strings.ReplaceAll(pub.answer, "a=ice-ufrag:"+oldUfrag, "a=ice-ufrag:"+newUfrag), "a=ice-pwd:"+oldPwd, "a=ice-pwd:"+newPwd)
	if err := pub.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	// Media flows on after the restart, with nothing broken for the viewer.
	after := v.stats(vtag).Frames
	defer func() {
		if t.Failed() { // what to look at when the restart did not take
			t.Logf("publisher ICE %v, peer connection %v; driver %+v", pub.pc.ICEConnectionState(), pub.pc.ConnectionState(), srv.Driver().Stats())
		}
	}()
	waitFor(t, 20*time.Second, "frames after the restart", func() bool { return v.stats(vtag).Frames >= after+60 })
	if err := v.err(); err != nil {
		t.Fatal(err)
	}
	// A trickle-only PATCH is accepted with 204, and so is one with the
	// credentials of the restart.
	if code, _ := patch(t, pub.location, "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"); code != http.StatusNoContent {
		t.Fatalf("trickle PATCH: %d", code)
	}
	if code, body := patch(t, pub.location, "a=ice-ufrag:"+ufrag+"\r\na=ice-pwd:"+pwd+cand); code != http.StatusNoContent {
		t.Fatalf("trickle with the restarted credentials: %d %q, want 204", code, body)
	}
	if err := v.err(); err != nil {
		t.Fatal(err)
	}
}

// patch sends a trickle-ice-sdpfrag PATCH and returns status and body.
func patch(t *testing.T, location, frag string) (int, string) {
	t.Helper()
	code, body, _ := patchIfMatch(t, location, "", frag)
	return code, body
}

// patchIfMatch is patch with an If-Match header (none if empty); it also
// returns the response's ETag.
func patchIfMatch(t *testing.T, location, ifMatch, frag string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, location, strings.NewReader(frag))
	req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get("ETag")
}

// sdpAttr returns the first value of a=name: in an SDP or fragment.
func sdpAttr(sdp, name string) string {
	for line := range strings.SplitSeq(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a="+name+":"); ok {
			return v
		}
	}
	return ""
}

// TestPionViewerFollowsPublishers: a WHEP viewer's media sections follow
// the room: it shows the newest publisher, moves to another when that one
// leaves, and picks up a publisher that arrives later — on the same SSRCs,
// with continuous sequence numbers and a keyframe at every switch.
func TestPionViewerFollowsPublishers(t *testing.T) {
	srv := startServer(t, sfu.Config{})
	api := pionAPI(t, pion.NetworkTypeUDP4)
	// Each publisher has its own Rand: publish serializes one publisher's
	// sources, not several publishers'.
	source := func(name string) pubTrack {
		r := rand.New(rand.NewPCG(9, uint64(testutil.TagOf(name))))
		return pubTrack{pion.MimeTypeVP8, testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: testutil.TagOf(name), FPS: 30, BitrateBps: 300_000})}
	}
	// The viewer comes first, into an empty room.
	v := view(t, srv, api, "room", "viewer")
	a := publish(t, srv, api, "room", source("a"))
	waitFor(t, 10*time.Second, "frames from a", func() bool { return v.stats(testutil.TagOf("a")).Frames >= 20 })
	b := publish(t, srv, api, "room", source("b"))
	time.Sleep(300 * time.Millisecond)
	// a leaves: the viewer moves to b.
	deleteSession(t, a.location)
	a.close()
	waitFor(t, 10*time.Second, "frames from b", func() bool { return v.stats(testutil.TagOf("b")).Frames >= 20 })
	// b leaves and c arrives later: the viewer picks c up.
	deleteSession(t, b.location)
	b.close()
	time.Sleep(300 * time.Millisecond)
	publish(t, srv, api, "room", source("c"))
	waitFor(t, 10*time.Second, "frames from c", func() bool { return v.stats(testutil.TagOf("c")).Frames >= 20 })
	v.mu.Lock()
	ssrcs := v.checker.SSRCs()
	v.mu.Unlock()
	if ssrcs != 1 {
		t.Fatalf("viewer saw %d video SSRCs, want 1 throughout", ssrcs)
	}
	if err := v.err(); err != nil {
		t.Fatal(err)
	}
}

// lossy is a UDP socket that drops every nth outgoing RTP packet of one
// payload type (the header is in the clear under SRTP), as a lossy uplink
// would; everything else passes.
type lossy struct {
	net.PacketConn
	pt      uint8
	every   int
	n       atomic.Int64
	dropped atomic.Int64
}

func (c *lossy) WriteTo(b []byte, addr net.Addr) (int, error) {
	if len(b) >= 12 && b[0]>>6 == 2 && (b[1] < 192 || b[1] > 223) && b[1]&0x7f == c.pt {
		if c.n.Add(1)%int64(c.every) == 0 {
			c.dropped.Add(1)
			return len(b), nil
		}
	}
	return c.PacketConn.WriteTo(b, addr)
}

// TestPionLossyPublisherRepairedByNACK: one in 20 of a pion publisher's
// video packets is lost on the way in; the server NACKs them, pion
// retransmits (on the media SSRC: its NACK responder sends no RTX; RTX is
// covered by endpoint's TestRTXUnwrapped), and the viewer receives the
// repaired stream.
func TestPionLossyPublisherRepairedByNACK(t *testing.T) {
	srv := startServer(t, sfu.Config{})
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	loss := &lossy{PacketConn: conn, pt: 96, every: 20}
	r := rand.New(rand.NewPCG(11, 12))
	vtag := testutil.TagOf("video")
	publish(t, srv, pionAPIWithMux(t, loss), "room",
		pubTrack{pion.MimeTypeVP8, testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: vtag, FPS: 30, BitrateBps: 800_000})})
	v := view(t, srv, pionAPI(t, pion.NetworkTypeUDP4), "room", "viewer")
	waitFor(t, 15*time.Second, "frames", func() bool { return v.stats(vtag).Frames >= 90 })
	var st track.RemoteStats
	srv.Driver().Inspect(func(n *core.Node) {
		for _, info := range n.Cluster().Tracks("room") {
			if info.Kind == track.KindVideo {
				if rt, ok := n.Cluster().Source("room", cluster.TrackKey{Peer: info.Peer, Track: info.Name}); ok {
					st = rt.Stats() // on the publisher's worker only
				}
			}
		}
	})
	t.Logf("dropped %d; server NACKed %d, recovered %d, gave up %d", loss.dropped.Load(), st.NACKed, st.Recovered, st.NACKGaveUp)
	if loss.dropped.Load() == 0 || st.NACKed == 0 {
		t.Fatalf("nothing lost (%d dropped) or nothing NACKed (%+v)", loss.dropped.Load(), st)
	}
	if st.Recovered < st.NACKed*8/10 {
		t.Fatalf("recovered %d of %d NACKed packets", st.Recovered, st.NACKed)
	}
	// The viewer's holes were filled in time: the repaired packets came
	// after their successors (the server forwards without waiting) and
	// took their places in the viewer's jitter buffer, which then played
	// a stream without a gap.
	v.mu.Lock()
	filled, late := v.reorder.Filled, v.reorder.Late
	v.mu.Unlock()
	t.Logf("viewer: %d gaps filled by retransmissions, %d packets too late", filled, late)
	if filled == 0 {
		t.Fatal("no gap at the viewer was filled by a retransmission")
	}
	if err := v.err(); err != nil {
		t.Fatal(err)
	}
}
