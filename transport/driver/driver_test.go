package driver_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pion/ice/v4"
	pion "github.com/pion/webrtc/v4"

	"github.com/sansrtc/sfu/core"
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
	t.Helper()
	var se pion.SettingEngine
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := pion.NewAPI(pion.WithSettingEngine(se)).NewPeerConnection(pion.Configuration{})
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
			if _, err := pc.AddTransceiverFromKind(k, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
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
	var c core.Counts
	d.Inspect(func(n *core.Node) { c = n.Counts() })
	if c != (core.Counts{}) {
		t.Fatalf("counts after delete: %+v", c)
	}
	if s := d2.Stats(); s.Sessions != 1 {
		t.Fatalf("sessions %d after a refused offer", s.Sessions)
	}
}
