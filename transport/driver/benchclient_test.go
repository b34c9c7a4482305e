//go:build unix

package driver_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/sansrtc/sfu/internal/piontest"
	"github.com/sansrtc/sfu/internal/testutil"
)

// benchClientEnv carries "<server url>,<fanout>,<mode>" to the client
// process BenchmarkSFU starts; without it TestBenchClientProcess skips.
// The mode is benchSteady or benchSatModePrefix and a packet rate.
const benchClientEnv = "SFU_BENCH_CLIENT"

// benchSteady is the mode of the ~1.5 Mbps publisher and reading viewers.
const benchSteady = "steady"

// Lines the client process writes on stdout for BenchmarkSFU.
const (
	benchReady    = "SFU-BENCH-READY"
	benchReceived = "SFU-BENCH-RECEIVED"
)

// TestBenchClientProcess is the client side of BenchmarkSFU, run in a child
// process so that the clients' CPU time is not charged to the server: one
// pion WHIP publisher sending ~1.5 Mbps of VP8 and N pion WHEP viewers that
// count and discard what they receive. It prints benchReady once every
// viewer gets media, sends until its stdin closes, then prints the number
// of packets the viewers received. In saturating mode it runs
// benchSaturate instead.
func TestBenchClientProcess(t *testing.T) {
	env := os.Getenv(benchClientEnv)
	if env == "" {
		t.Skip("the client process of BenchmarkSFU; runs only under it")
	}
	f := strings.Split(env, ",")
	if len(f) != 3 {
		t.Fatalf("%s=%q: want <url>,<fanout>,<mode>", benchClientEnv, env)
	}
	url := f[0]
	fanout, err := strconv.Atoi(f[1])
	if err != nil || fanout < 1 {
		t.Fatalf("%s=%q: bad fanout", benchClientEnv, env)
	}
	if r, ok := strings.CutPrefix(f[2], benchSatModePrefix); ok {
		pps, err := strconv.Atoi(r)
		if err != nil || pps < 1 {
			t.Fatalf("%s=%q: bad packet rate", benchClientEnv, env)
		}
		benchSaturate(t, url, fanout, pps)
		return
	}
	if f[2] != benchSteady {
		t.Fatalf("%s=%q: unknown mode", benchClientEnv, env)
	}
	api, err := benchAPI()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)

	pub, err := benchPublish(api, url+"/whip/bench", stop, &wg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	counts := make([]atomic.Uint64, fanout)
	pcs := make([]*pion.PeerConnection, fanout)
	errs := make([]error, fanout)
	sem := make(chan struct{}, 8) // concurrent handshakes
	var setup sync.WaitGroup
	for i := range fanout {
		setup.Add(1)
		sem <- struct{}{}
		go func() {
			defer setup.Done()
			defer func() { <-sem }()
			pcs[i], errs[i] = benchView(api, url+"/whep/bench", &counts[i], &wg)
		}()
	}
	setup.Wait()
	for _, pc := range pcs {
		if pc != nil {
			defer pc.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; i < fanout; {
		if counts[i].Load() >= 60 { // ten frames
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewer %d of %d received %d packets", i, fanout, counts[i].Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println(benchReady)

	_, _ = io.Copy(io.Discard, os.Stdin)
	var total uint64
	for i := range counts {
		total += counts[i].Load()
	}
	fmt.Println(benchReceived, total)
}

// benchAPI is pion restricted to loopback UDP4 with the default codecs
// and interceptors (NACK, reports, TWCC), as a browser would run them.
func benchAPI() (*pion.API, error) { return piontest.API(piontest.Options{}) }

// benchSignal does the WHIP/WHEP exchange for pc.
func benchSignal(pc *pion.PeerConnection, url string) error {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	resp, err := http.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	return pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: string(body)})
}

// benchPublish publishes one VP8 track by WHIP: a keyframe first, ~1100
// byte payloads at 1.5 Mbps and 30 fps, a keyframe on every PLI or FIR.
func benchPublish(api *pion.API, url string, stop <-chan struct{}, wg *sync.WaitGroup) (*pion.PeerConnection, error) {
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		return nil, err
	}
	local, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8}, "video", "bench")
	if err != nil {
		pc.Close()
		return nil, err
	}
	tx, err := pc.AddTransceiverFromTrack(local, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly})
	if err != nil {
		pc.Close()
		return nil, err
	}
	vp8 := pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: []pion.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}}, PayloadType: 96}
	if err := tx.SetCodecPreferences([]pion.RTPCodecParameters{vp8}); err != nil {
		pc.Close()
		return nil, err
	}
	if err := benchSignal(pc, url); err != nil {
		pc.Close()
		return nil, err
	}
	src := testutil.NewVP8Source(rand.New(rand.NewPCG(1, 2)), testutil.VP8Config{SSRC: 1, Tag: testutil.TagOf("bench"),
		FPS: 30, BitrateBps: 1_500_000, MTU: 1104})
	var mu sync.Mutex
	wg.Add(2)
	go func() { // keyframe requests from the SFU
		defer wg.Done()
		for {
			pkts, _, err := tx.Sender().ReadRTCP()
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
		defer wg.Done()
		tick := time.NewTicker(src.FrameInterval())
		defer tick.Stop()
		var pkt rtp.Packet
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				mu.Lock()
				frame := src.NextFrame(now)
				mu.Unlock()
				for _, b := range frame {
					if err := pkt.Unmarshal(b); err != nil {
						panic(err)
					}
					_ = local.WriteRTP(&pkt)
				}
			}
		}
	}()
	return pc, nil
}

// benchView plays the room by WHEP (one video section), counting the RTP
// packets it reads into count.
func benchView(api *pion.API, url string, count *atomic.Uint64, wg *sync.WaitGroup) (*pion.PeerConnection, error) {
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		return nil, err
	}
	if _, err := pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
		pc.Close()
		return nil, err
	}
	pc.OnTrack(func(tr *pion.TrackRemote, rx *pion.RTPReceiver) {
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				count.Add(1)
			}
		}()
		go func() { // drain sender reports so the interceptors see them
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := rx.Read(buf); err != nil {
					return
				}
			}
		}()
	})
	if err := benchSignal(pc, url); err != nil {
		pc.Close()
		return nil, err
	}
	return pc, nil
}
