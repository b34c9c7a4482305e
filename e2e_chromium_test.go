package sfu_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sansrtc/sfu"
	"github.com/sansrtc/sfu/core"
)

// chromiumPath finds Debian's Chromium; without it the browser tests skip,
// except under CI=true where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium not found, and CI=true: .ci/run installs it with apt-get")
	}
	t.Skip("skip: Chromium not found (apt-get install chromium)")
	return ""
}

// browserServer is the example server's pages and signalling on loopback,
// with two workers that place each session on the least loaded one: the
// publisher lands on worker 0 and its viewer on worker 1, so the media
// crosses the in-process overlay link between them.
func browserServer(t *testing.T) (*testServer, string) {
	t.Helper()
	srv, err := sfu.New(sfu.Config{Workers: 2, PlacementSlack: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	mux := http.NewServeMux()
	mux.Handle("/whip/", srv.Handler())
	mux.Handle("/whep/", srv.Handler())
	mux.Handle("/", http.FileServerFS(os.DirFS("examples/server/web")))
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
	})
	return &testServer{Server: srv, url: hs.URL}, hs.URL
}

func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return bctx
}

// tab opens url in a new tab of the browser.
func tab(t *testing.T, browser context.Context, url string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
	return ctx
}

type viewStats struct {
	FramesDecoded float64 `json:"framesDecoded"`
	AudioEnergy   float64 `json:"audioEnergy"`
	Width         float64 `json:"width"`
	Height        float64 `json:"height"`
	Codec         string  `json:"codec"`
	State         string  `json:"state"`
}

// TestChromiumPublishAndView: headless Chromium with fake media publishes
// by WHIP on the example server's publish page, a second page plays by
// WHEP: the viewer decodes at least 60 frames and hears audio energy; with
// VP8, with simulcast on, and with H264.
func TestChromiumPublishAndView(t *testing.T) {
	path := chromiumPath(t)
	for _, c := range []struct{ name, query, codec string }{
		{"VP8", "codec=VP8", "video/VP8"},
		{"simulcast", "codec=VP8&simulcast=1", "video/VP8"},
		{"H264", "codec=H264", "video/H264"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, base := browserServer(t)
			browser := newBrowser(t, path)
			room := strings.ToLower(c.name)
			pub := tab(t, browser, fmt.Sprintf("%s/publish.html?room=%s&autostart=1&%s", base, room, c.query))
			waitJS(t, pub, 15*time.Second, "window.published === true", "window.publishError || document.getElementById('status').textContent")
			view := tab(t, browser, fmt.Sprintf("%s/view.html?room=%s&autostart=1", base, room))
			st := waitDecoded(t, view, func() string { return fmt.Sprintf("driver %+v", srv.Driver().Stats()) })
			t.Logf("viewer decoded %v %s frames at %vx%v, audio energy %.4f", st.FramesDecoded, st.Codec, st.Width, st.Height, st.AudioEnergy)
			if st.Codec != c.codec {
				t.Fatalf("viewer decoded %q, want %q", st.Codec, c.codec)
			}
			// Hang up both: DELETE frees everything.
			for _, ctx := range []context.Context{view, pub} {
				if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`stop().then(() => true)`, chromedp.EvalAwaitPromise)); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 5*time.Second, "every session to end", func() bool { return srv.counts() == (core.Counts{}) })
		})
	}
}

// waitDecoded waits up to 30 s for the viewer page in view to decode 60
// frames and hear audio energy, and returns its stats; why says more
// when it does not.
func waitDecoded(t *testing.T, view context.Context, why func() string) viewStats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := chromedp.Run(view, chromedp.Evaluate[viewStats](`window.viewStats`))
		if err != nil {
			t.Fatal(err)
		}
		if st.FramesDecoded >= 60 && st.AudioEnergy > 0 {
			return st
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(view, chromedp.Evaluate[string](`window.viewError || document.getElementById('stats').textContent`))
			t.Fatalf("viewer stats %+v after 30s: %s (%s)", st, text, why())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitJS polls a JavaScript condition in ctx.
func waitJS(t *testing.T, ctx context.Context, d time.Duration, cond, explain string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			why, _ := chromedp.Run(ctx, chromedp.Evaluate[string](explain))
			t.Fatalf("timed out waiting for %s: %s", cond, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
