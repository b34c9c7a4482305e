package driver_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	pion "github.com/pion/webrtc/v4"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/core"
	"github.com/sansrtc/sfu/internal/piontest"
	"github.com/sansrtc/sfu/transport/driver"
	"github.com/sansrtc/sfu/transport/whip"
)

func start(t *testing.T, cfg driver.Config, auth whip.Authorizer) (*driver.Driver, string) {
	t.Helper()
	d, err := driver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := whip.New(whip.Config{Backend: d, Authorize: auth})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); cancel(); <-done })
	return d, hs.URL
}

// offer makes a real pion offer: recvonly audio+video (a viewer), or with
// dataOnly, a data channel and no media.
func offer(t *testing.T, dataOnly bool) string {
	return offerDir(t, dataOnly, pion.RTPTransceiverDirectionRecvonly)
}

// offerDir is offer with media transceivers of direction dir.
func offerDir(t *testing.T, dataOnly bool, dir pion.RTPTransceiverDirection) string {
	t.Helper()
	api, err := piontest.API(piontest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if dataOnly {
		if _, err := pc.CreateDataChannel("x", nil); err != nil {
			t.Fatal(err)
		}
	} else {
		for _, k := range []pion.RTPCodecType{pion.RTPCodecTypeAudio, pion.RTPCodecTypeVideo} {
			if _, err := pc.AddTransceiverFromKind(k, pion.RTPTransceiverInit{Direction: dir}); err != nil {
				t.Fatal(err)
			}
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := pion.GatheringCompletePromise(pc)
	_ = pc.SetLocalDescription(o)
	<-g
	return pc.LocalDescription().SDP
}

func post(t *testing.T, url, body string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(url, "application/sdp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func TestOfferFailuresWithTheRealDriver(t *testing.T) {
	d, url := start(t, driver.Config{MaxSessions: 1}, func(r *http.Request, token, room string) (whip.Grant, error) {
		return whip.Grant{PeerID: "same-peer", Publish: true, Subscribe: true}, nil
	})
	viewer := offer(t, false)
	if code, _, body := post(t, url+"/whep/r", "v=0\r\nthis is not sdp"); code != http.StatusBadRequest {
		t.Fatalf("garbage SDP: %d %s", code, body)
	}
	if code, _, body := post(t, url+"/whep/r", offer(t, true)); code != http.StatusUnprocessableEntity {
		t.Fatalf("data-channel-only offer: %d %s", code, body)
	}
	if code, _, body := post(t, url+"/whip/r", viewer); code != http.StatusUnprocessableEntity {
		t.Fatalf("recvonly offer to WHIP: %d %s", code, body)
	}
	code, loc, body := post(t, url+"/whep/r", viewer)
	if code != http.StatusCreated {
		t.Fatalf("viewer: %d %s", code, body)
	}
	if code, _, body := post(t, url+"/whep/r", offer(t, false)); code != http.StatusServiceUnavailable {
		t.Fatalf("past MaxSessions: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodDelete, url+loc, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("delete: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	resp, _ = http.DefaultClient.Do(req)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second delete: %d", resp.StatusCode)
	}
	resp.Body.Close()
	// Two sessions with one peer id in one room: the second conflicts.
	d2, url2 := start(t, driver.Config{}, func(r *http.Request, token, room string) (whip.Grant, error) {
		return whip.Grant{PeerID: "same-peer", Publish: true, Subscribe: true}, nil
	})
	if code, _, _ := post(t, url2+"/whep/r", offer(t, false)); code != http.StatusCreated {
		t.Fatal(code)
	}
	if code, _, body := post(t, url2+"/whep/r", offer(t, false)); code != http.StatusConflict {
		t.Fatalf("duplicate peer id: %d %s", code, body)
	}
	if c := d.Counts(); c != (core.Counts{}) {
		t.Fatalf("counts after delete: %+v", c)
	}
	if s := d2.Stats(); s.Sessions != 1 {
		t.Fatalf("sessions %d after a refused offer", s.Sessions)
	}
}

// pubOffer is a minimal sendonly publisher offer with nVideo VP8 m-lines,
// the first carrying the given simulcast rids.
func pubOffer(nVideo int, rids []string) string {
	var b strings.Builder
	var mids []string
	for i := range nVideo {
		mids = append(mids, fmt.Sprint(i))
	}
	b.WriteString("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE " + strings.Join(mids, " ") + "\r\n")
	for i := range nVideo {
		b.WriteString("m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwxyz\r\n")
		b.WriteString("a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n")
		fmt.Fprintf(&b, "a=setup:actpass\r\na=mid:%d\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n", i)
		b.WriteString("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n")
		if i == 0 && len(rids) > 0 {
			for _, r := range rids {
				b.WriteString("a=rid:" + r + " send\r\n")
			}
			b.WriteString("a=simulcast:send " + strings.Join(rids, ";") + "\r\n")
		}
	}
	return b.String()
}

// TestCoreLimitsHaveTheirStatus: limits and refusals of the core reach the
// client as 503 (the node is full) or 422 (the offer cannot be served as
// it is), never as 500. The core's limits are each worker's: with two
// workers and one room each, a third room is refused.
func TestCoreLimitsHaveTheirStatus(t *testing.T) {
	_, url := start(t, driver.Config{Workers: 1, Node: core.Config{Cluster: cluster.Config{MaxRooms: 1, MaxPeersPerRoom: 1}}}, nil)
	if code, _, body := post(t, url+"/whip/r", pubOffer(1, nil)); code != http.StatusCreated {
		t.Fatalf("publisher: %d %s", code, body)
	}
	if code, _, body := post(t, url+"/whep/r", offer(t, false)); code != http.StatusServiceUnavailable {
		t.Fatalf("room full: %d %s", code, body)
	}
	if code, _, body := post(t, url+"/whep/other", offer(t, false)); code != http.StatusServiceUnavailable {
		t.Fatalf("too many rooms: %d %s", code, body)
	}
	_, url = start(t, driver.Config{Workers: 2, Node: core.Config{Cluster: cluster.Config{MaxRooms: 1}}}, nil)
	for i, want := range []int{http.StatusCreated, http.StatusCreated, http.StatusServiceUnavailable} {
		if code, _, body := post(t, fmt.Sprintf("%s/whep/room%d", url, i), offer(t, false)); code != want {
			t.Fatalf("room %d of 2 workers with MaxRooms 1: %d %s", i, code, body)
		}
	}
	_, url = start(t, driver.Config{}, nil)
	if code, _, body := post(t, url+"/whip/r2", pubOffer(1, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"})); code != http.StatusUnprocessableEntity {
		t.Fatalf("9 simulcast rids: %d %s", code, body)
	}
	if code, _, body := post(t, url+"/whip/r3", pubOffer(33, nil)); code != http.StatusUnprocessableEntity {
		t.Fatalf("33 video m-lines: %d %s", code, body)
	}
}

// TestSamePeerPublishesAndViews: one participant (one peer id) publishes
// by WHIP and watches the same room by WHEP; a second viewer session of
// that peer still conflicts.
func TestSamePeerPublishesAndViews(t *testing.T) {
	_, url := start(t, driver.Config{}, func(r *http.Request, token, room string) (whip.Grant, error) {
		return whip.Grant{PeerID: "alice", Publish: true, Subscribe: true}, nil
	})
	if code, _, body := post(t, url+"/whip/r", pubOffer(1, nil)); code != http.StatusCreated {
		t.Fatalf("alice publishes: %d %s", code, body)
	}
	if code, _, body := post(t, url+"/whep/r", offer(t, false)); code != http.StatusCreated {
		t.Fatalf("alice views the room she publishes in: %d %s", code, body)
	}
	if code, _, body := post(t, url+"/whep/r", offer(t, false)); code != http.StatusConflict {
		t.Fatalf("alice's second viewer: %d %s", code, body)
	}
}

// TestWHEPSendRecvOffer: a viewer whose transceivers are sendrecv (the
// default of addTransceiver in browsers and pion) is answered sendonly,
// and an inactive section inactive; a publisher's sendrecv is answered
// recvonly.
func TestWHEPSendRecvOffer(t *testing.T) {
	_, url := start(t, driver.Config{}, nil)
	code, _, answer := post(t, url+"/whep/r", offerDir(t, false, pion.RTPTransceiverDirectionSendrecv))
	if code != http.StatusCreated || strings.Count(answer, "a=sendonly") != 2 {
		t.Fatalf("WHEP offer with sendrecv transceivers: %d\n%s", code, answer)
	}
	code, _, answer = post(t, url+"/whip/r", strings.ReplaceAll(pubOffer(1, nil), "a=sendonly", "a=sendrecv"))
	if code != http.StatusCreated || !strings.Contains(answer, "a=recvonly") {
		t.Fatalf("WHIP offer with sendrecv: %d\n%s", code, answer)
	}
	mixed := offerDir(t, false, pion.RTPTransceiverDirectionRecvonly)
	mixed = strings.Replace(mixed, "a=recvonly", "a=inactive", 1)
	code, _, answer = post(t, url+"/whep/r2", mixed)
	if code != http.StatusCreated || !strings.Contains(answer, "a=inactive") || !strings.Contains(answer, "a=sendonly") {
		t.Fatalf("WHEP offer with an inactive section: %d\n%s", code, answer)
	}
}
