package sfu_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/sansrtc/sfu"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/track"
	"github.com/sansrtc/sfu/transport/driver"
)

// The tests here run examples/server as real processes on 127.0.0.1,
// joined into a cluster by -seeds over real QUIC links, with real WebRTC
// peers (pion, Chromium) on different nodes.

var (
	serverOnce sync.Once
	serverBin  string
	serverErr  error
)

// serverBinary builds examples/server once per test run.
func serverBinary(t *testing.T) string {
	t.Helper()
	serverOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sfu-server-")
		if err != nil {
			serverErr = err
			return
		}
		serverBin = filepath.Join(dir, "server")
		// The go command that runs the tests is on PATH (go test needs it).
		out, err := exec.Command("go", "build", "-o", serverBin, "./examples/server").CombinedOutput()
		if err != nil {
			serverErr = fmt.Errorf("go build ./examples/server: %v\n%s", err, out)
		}
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return serverBin
}

// nodeProc is one examples/server process of a test cluster.
type nodeProc struct {
	cmd      *exec.Cmd
	url      string // http://127.0.0.1:port
	sdnAddr  string // the overlay address it printed
	done     chan struct{}
	mu       sync.Mutex
	stderr   strings.Builder
	killOnce sync.Once
}

// startNode starts a cluster node with the given id, seeded with seeds.
func startNode(t *testing.T, id int, seeds ...string) *nodeProc {
	t.Helper()
	args := []string{"-http", "127.0.0.1:0", "-udp", "127.0.0.1:0", "-node-id", fmt.Sprint(id), "-sdn", "127.0.0.1:0", "-secret", "e2e cluster secret"}
	if len(seeds) > 0 {
		args = append(args, "-seeds", strings.Join(seeds, ","))
	}
	cmd := exec.Command(serverBinary(t), args...)
	cmd.Dir = "examples/server"
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &nodeProc{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{p: p}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "sfu listening on "); ok {
				p.url = strings.TrimSuffix(strings.Fields(a)[0], "/")
			}
			if a, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster node "); ok {
				p.sdnAddr = strings.Fields(a)[0]
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("node %d exited: %s", id, p.stderrText())
	case <-time.After(20 * time.Second):
		t.Fatalf("node %d printed no address", id)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("node %d stderr:\n%s", id, p.stderrText())
		}
	})
	return p
}

type lockedWriter struct{ p *nodeProc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

func (p *nodeProc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// kill ends the process at once (a crash: no goodbye to the others).
func (p *nodeProc) kill() {
	p.killOnce.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		_ = p.cmd.Wait()
	})
}

// chain starts nodes 1 ← 2 ← 3: each seeded with the one before.
func chainNodes(t *testing.T) [3]*nodeProc {
	t.Helper()
	var ns [3]*nodeProc
	ns[0] = startNode(t, 1)
	ns[1] = startNode(t, 2, ns[0].sdnAddr)
	ns[2] = startNode(t, 3, ns[1].sdnAddr)
	return ns
}

// TestClusterProcessesPion: a pion publisher on node 1 (WHIP) and two pion
// viewers on node 3 (WHEP), two QUIC hops away through node 2: every
// viewer receives decodable media, a keyframe first and continuous.
func TestClusterProcessesPion(t *testing.T) {
	ns := chainNodes(t)
	api := pionAPI(t, pion.NetworkTypeUDP4)
	r := rand.New(rand.NewPCG(3, 4))
	vtag, atag := testutil.TagOf("video"), testutil.TagOf("audio")
	publish(t, &testServer{url: ns[0].url}, api, "room",
		pubTrack{pion.MimeTypeVP8, testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: vtag, FPS: 30, BitrateBps: 500_000, TemporalLayers: 3})},
		pubTrack{pion.MimeTypeOpus, testutil.NewOpusSource(r, testutil.OpusConfig{SSRC: 2, Tag: atag})})
	var viewers []*viewer
	for i := range 2 {
		viewers = append(viewers, view(t, &testServer{url: ns[2].url}, api, "room", fmt.Sprint("viewer", i)))
	}
	for _, v := range viewers {
		waitFor(t, 20*time.Second, "60 video and 50 audio frames on node 3", func() bool { return v.stats(vtag).Frames >= 60 && v.stats(atag).Frames >= 50 })
		if st := v.stats(vtag); !st.FirstKeyframe {
			t.Fatal("first video packet was not a keyframe")
		}
		if err := v.err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClusterProcessesRelayDies: a triangle 1–2–3 (links 1–2, 2–3 and
// 1–3), a publisher on node 1 and a viewer on node 3. Node 2 is killed;
// the viewer keeps receiving, and receives again within 2 s. (On loopback
// every link costs the same, so node 3's tree usually takes the direct
// link and node 2's death costs it nothing; the relay's own death, on a
// path through it, is what TestClusterRelayDies simulates.)
func TestClusterProcessesRelayDies(t *testing.T) {
	n1 := startNode(t, 1)
	n2 := startNode(t, 2, n1.sdnAddr)
	n3 := startNode(t, 3, n1.sdnAddr, n2.sdnAddr)
	api := pionAPI(t, pion.NetworkTypeUDP4)
	r := rand.New(rand.NewPCG(5, 6))
	vtag := testutil.TagOf("video")
	publish(t, &testServer{url: n1.url}, api, "room",
		pubTrack{pion.MimeTypeVP8, testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: vtag, FPS: 30, BitrateBps: 300_000, KeyframeInterval: 2 * time.Second})})
	v := view(t, &testServer{url: n3.url}, api, "room", "viewer")
	waitFor(t, 20*time.Second, "60 video frames on node 3", func() bool { return v.stats(vtag).Frames >= 60 })
	before := v.stats(vtag).Frames
	n2.kill()
	killed := time.Now()
	var maxGap time.Duration
	last := v.stats(vtag).LastPacketAt
	for time.Since(killed) < 4*time.Second {
		time.Sleep(50 * time.Millisecond)
		st := v.stats(vtag)
		if st.LastPacketAt.Equal(last) {
			maxGap = max(maxGap, time.Since(last))
		}
		last = st.LastPacketAt
	}
	if maxGap > 2*time.Second {
		t.Fatalf("viewer silent for %v after node 2 died", maxGap)
	}
	if got := v.stats(vtag).Frames; got < before+60 {
		t.Fatalf("%d frames in the 4 s after node 2 died", got-before)
	}
}

// TestClusterProcessesChromium: headless Chromium with fake media
// publishes on node 1's page, a second tab plays on node 3's, two hops
// away: the viewer decodes at least 60 frames and hears audio, plain and
// with simulcast.
func TestClusterProcessesChromium(t *testing.T) {
	path := chromiumPath(t)
	ns := chainNodes(t)
	for _, c := range []struct{ name, query string }{
		{"VP8", "codec=VP8"},
		{"simulcast", "codec=VP8&simulcast=1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			browser := newBrowser(t, path)
			room := strings.ToLower(c.name)
			pub := tab(t, browser, fmt.Sprintf("%s/publish.html?room=%s&autostart=1&%s", ns[0].url, room, c.query))
			waitJS(t, pub, 15*time.Second, "window.published === true", "window.publishError || document.getElementById('status').textContent")
			view := tab(t, browser, fmt.Sprintf("%s/view.html?room=%s&autostart=1", ns[2].url, room))
			st := waitDecoded(t, view, func() string { return "viewer on node 3" })
			t.Logf("viewer on node 3 decoded %v %s frames at %vx%v, audio energy %.4f", st.FramesDecoded, st.Codec, st.Width, st.Height, st.AudioEnergy)
		})
	}
}

// BenchmarkRelayHopLatency measures what one relay hop over real QUIC on
// loopback adds to a packet's way: two nodes in this process (one clock),
// a pion publisher on node 1, one pion viewer on node 1 and one on node
// 2; for each packet (matched by its stamp) the difference of its arrival
// times at the two viewers. One op is one matched packet; the metrics are
// the median and the 99th percentile of the difference.
func BenchmarkRelayHopLatency(b *testing.B) {
	n1 := startServer(b, sfu.Config{Cluster: &driver.ClusterConfig{Router: sdn.Config{ID: 1, Secret: []byte("s")}}})
	n2 := startServer(b, sfu.Config{Cluster: &driver.ClusterConfig{Router: sdn.Config{ID: 2, Secret: []byte("s"),
		Seeds: []sdn.Addr{n1.SDNAddr()}}}})
	waitFor(b, 10*time.Second, "the link", func() bool { return len(n2.SDNNeighbours()) > 0 })
	api := pionAPI(b, pion.NetworkTypeUDP4)
	r := rand.New(rand.NewPCG(7, 8))
	tag := testutil.TagOf("video")
	publish(b, n1, api, "room", pubTrack{pion.MimeTypeVP8, testutil.NewVP8Source(r, testutil.VP8Config{SSRC: 1, Tag: tag, FPS: 60, BitrateBps: 1_000_000})})
	type key struct {
		frame uint64
		index uint16
	}
	var mu sync.Mutex
	at := [2]map[key]time.Time{{}, {}}
	var diffs []time.Duration
	matched := make(chan struct{}, 1<<16)
	hook := func(side int) func(now time.Time, pkt []byte) {
		return func(now time.Time, pkt []byte) {
			var p track.Packet
			if p.Unmarshal(pkt) != nil {
				return
			}
			st, ok := testutil.ExtractStamp(p.Payload)
			if !ok {
				return
			}
			k := key{st.Frame, st.Index}
			mu.Lock()
			defer mu.Unlock()
			if _, dup := at[side][k]; dup {
				return
			}
			at[side][k] = now
			if t0, ok := at[1-side][k]; ok {
				d := now.Sub(t0)
				if side == 0 {
					d = -d
				}
				diffs = append(diffs, d)
				delete(at[0], k)
				delete(at[1], k)
				matched <- struct{}{}
			}
		}
	}
	for side, srv := range []*testServer{n1, n2} {
		v := view(b, srv, api, "room", fmt.Sprint("viewer", side))
		v.mu.Lock()
		v.onPacket = hook(side)
		v.mu.Unlock()
	}
	// Warm up: both viewers started (the first keyframe), then measure.
	for range 200 {
		<-matched
	}
	mu.Lock()
	diffs = diffs[:0]
	mu.Unlock()
	b.ResetTimer()
	for b.Loop() {
		<-matched
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(diffs)
	if len(diffs) == 0 {
		b.Fatal("no packet matched")
	}
	q := func(f float64) float64 { return float64(diffs[int(f*float64(len(diffs)-1))].Microseconds()) }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
