package whip_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sansrtc/sfu/transport/whip"
)

// backend records calls and answers as told. It stands in for the WebRTC
// driver, which has its own end-to-end tests with real peers.
type backend struct {
	offers   []whip.Request
	patches  []whip.PatchRequest
	deletes  []string
	offerErr error
	patchOut whip.PatchResult
	patchErr error
	sessions map[string]bool
}

func (b *backend) Offer(_ context.Context, req whip.Request) (whip.Answer, error) {
	if b.offerErr != nil {
		return whip.Answer{}, b.offerErr
	}
	if !strings.HasPrefix(req.Offer, "v=0") {
		return whip.Answer{}, fmt.Errorf("%w: not SDP", whip.ErrMalformed)
	}
	b.offers = append(b.offers, req)
	id := fmt.Sprint("s", len(b.offers))
	b.sessions[id] = true
	return whip.Answer{SDP: "v=0\r\nanswer\r\n", ID: id}, nil
}

func (b *backend) Patch(_ context.Context, req whip.PatchRequest) (whip.PatchResult, error) {
	if !b.sessions[req.ID] {
		return whip.PatchResult{}, whip.ErrNotFound
	}
	b.patches = append(b.patches, req)
	return b.patchOut, b.patchErr
}

func (b *backend) Delete(_ context.Context, _ whip.Role, _, id string) error {
	if !b.sessions[id] {
		return whip.ErrNotFound
	}
	delete(b.sessions, id)
	b.deletes = append(b.deletes, id)
	return nil
}

func newServer(t *testing.T, auth whip.Authorizer) (*httptest.Server, *backend) {
	b := &backend{sessions: map[string]bool{}}
	h, err := whip.New(whip.Config{Backend: b, Authorize: auth, MaxBodyBytes: 1024, ICEServers: []string{"stun:stun.example.net"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, b
}

func do(t *testing.T, method, url, ctype, token, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"

func TestPublishLifecycle(t *testing.T) {
	srv, b := newServer(t, nil)
	resp := do(t, "POST", srv.URL+"/whip/room1", "application/sdp", "", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	loc := resp.Header.Get("Location")
	if loc != "/whip/room1/s1" || string(body) != "v=0\r\nanswer\r\n" || resp.Header.Get("Content-Type") != "application/sdp" {
		t.Fatalf("Location %q body %q", loc, body)
	}
	if resp.Header.Get("ETag") == "" || !strings.Contains(resp.Header.Get("Link"), `rel="ice-server"`) {
		t.Fatalf("headers %v", resp.Header)
	}
	if r := b.offers[0]; r.Role != whip.Publish || r.Room != "room1" || !strings.HasPrefix(r.PeerID, "peer-") {
		t.Fatalf("backend got %+v", r)
	}
	// Trickle: no answer → 204; ICE restart: answer fragment → 200.
	if resp := do(t, "PATCH", srv.URL+loc, "application/trickle-ice-sdpfrag", "", "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("trickle status %d", resp.StatusCode)
	}
	b.patchOut = whip.PatchResult{Fragment: "a=ice-ufrag:new\r\na=ice-pwd:newpwdnewpwdnewpwdnewpwd\r\n", ETag: `"s1.1"`}
	req, _ := http.NewRequest("PATCH", srv.URL+loc, strings.NewReader("a=ice-ufrag:x\r\na=ice-pwd:y\r\n"))
	req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	req.Header.Set("If-Match", "*")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != b.patchOut.Fragment || resp.Header.Get("ETag") != `"s1.1"` {
		t.Fatalf("restart status %d body %q ETag %q", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	if got := b.patches[len(b.patches)-1]; got.IfMatch != "*" || got.Room != "room1" || got.Role != whip.Publish {
		t.Fatalf("backend got %+v", got)
	}
	// A stale entity-tag is the backend's ErrPreconditionFailed: 412.
	b.patchErr = whip.ErrPreconditionFailed
	if resp := do(t, "PATCH", srv.URL+loc, "application/trickle-ice-sdpfrag", "", "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n"); resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale ETag: %d", resp.StatusCode)
	}
	b.patchErr = nil
	if resp := do(t, "DELETE", srv.URL+loc, "", "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("delete status %d", resp.StatusCode)
	}
	if len(b.deletes) != 1 || len(b.sessions) != 0 {
		t.Fatal("session not deleted")
	}
	// WHEP goes to the backend as a subscription.
	if resp := do(t, "POST", srv.URL+"/whep/room1", "application/sdp", "", offer); resp.StatusCode != http.StatusCreated || b.offers[1].Role != whip.Subscribe {
		t.Fatalf("whep status %d", resp.StatusCode)
	}
}

func TestCORSPreflight(t *testing.T) {
	srv, _ := newServer(t, nil)
	req, _ := http.NewRequest("OPTIONS", srv.URL+"/whep/room1", nil)
	req.Header.Set("Origin", "http://other.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		h.Get("Accept-Post") != "application/sdp" || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("preflight %d %v", resp.StatusCode, h)
	}
}

func TestFailureStatuses(t *testing.T) {
	auth := func(r *http.Request, token, room string) (whip.Grant, error) {
		switch token {
		case "":
			return whip.Grant{}, fmt.Errorf("%w: no token", whip.ErrUnauthorized)
		case "viewer":
			return whip.Grant{Room: room, PeerID: "v", Subscribe: true}, nil
		case "other-room":
			return whip.Grant{Room: "elsewhere", Publish: true, Subscribe: true}, nil
		case "good":
			return whip.Grant{PeerID: "alice", Publish: true, Subscribe: true}, nil
		}
		return whip.Grant{}, fmt.Errorf("%w: unknown token", whip.ErrUnauthorized)
	}
	srv, b := newServer(t, auth)
	cases := []struct {
		name                  string
		method, path, ctype   string
		token, body           string
		offerErr              error
		want                  int
		wantHeader, headerVal string
	}{
		{"malformed sdp", "POST", "/whip/r", "application/sdp", "good", "garbage", nil, 400, "", ""},
		{"empty offer", "POST", "/whip/r", "application/sdp", "good", "  ", nil, 400, "", ""},
		{"bad room name", "POST", "/whip/r%20oom", "application/sdp", "good", offer, nil, 400, "", ""},
		{"no token", "POST", "/whip/r", "application/sdp", "", offer, nil, 401, "WWW-Authenticate", `Bearer realm="sfu"`},
		{"bad token", "POST", "/whip/r", "application/sdp", "nope", offer, nil, 401, "", ""},
		{"viewer publishing", "POST", "/whip/r", "application/sdp", "viewer", offer, nil, 403, "", ""},
		{"token for another room", "POST", "/whep/r", "application/sdp", "other-room", offer, nil, 403, "", ""},
		{"unknown session delete", "DELETE", "/whip/r/zzz", "", "good", "", nil, 404, "", ""},
		{"unknown session patch", "PATCH", "/whip/r/zzz", "application/trickle-ice-sdpfrag", "good", "a=x\r\n", nil, 404, "", ""},
		{"wrong method", "GET", "/whip/r", "", "good", "", nil, 405, "Allow", "POST, OPTIONS"},
		{"too large", "POST", "/whip/r", "application/sdp", "good", "v=0\r\n" + strings.Repeat("a=x\r\n", 400), nil, 413, "", ""},
		{"wrong content type", "POST", "/whip/r", "application/json", "good", offer, nil, 415, "Accept", "application/sdp"},
		{"no content type", "POST", "/whip/r", "", "good", offer, nil, 415, "", ""},
		{"patch wrong type", "PATCH", "/whip/r/s1", "application/sdp", "good", "a=x\r\n", nil, 415, "", ""},
		{"unsupported media", "POST", "/whip/r", "application/sdp", "good", offer, fmt.Errorf("%w: no codec", whip.ErrUnsupported), 422, "", ""},
		{"overloaded", "POST", "/whep/r", "application/sdp", "good", offer, whip.ErrOverloaded, 503, "Retry-After", whip.DefaultRetryAfter},
		{"internal error hides detail", "POST", "/whep/r", "application/sdp", "good", offer, errors.New("secret detail"), 500, "", ""},
		{"ok", "POST", "/whip/r", "application/sdp", "good", offer, nil, 201, "Location", "/whip/r/s1"},
		{"viewer deleting a publisher", "DELETE", "/whip/r/s1", "", "viewer", "", nil, 403, "", ""},
		{"viewer restarting a publisher", "PATCH", "/whip/r/s1", "application/trickle-ice-sdpfrag", "viewer", "a=ice-ufrag:x\r\na=ice-pwd:y\r\n", nil, 403, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b.offerErr = c.offerErr
			resp := do(t, c.method, srv.URL+c.path, c.ctype, c.token, c.body)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, c.want)
			}
			if c.wantHeader != "" && resp.Header.Get(c.wantHeader) != c.headerVal {
				t.Fatalf("%s = %q, want %q", c.wantHeader, resp.Header.Get(c.wantHeader), c.headerVal)
			}
			if c.want == 500 && strings.Contains(string(body), "secret") {
				t.Fatal("internal error leaked to the client")
			}
		})
	}
	if len(b.offers) != 1 || b.offers[0].PeerID != "alice" {
		t.Fatalf("backend saw %+v; only the good request may reach it", b.offers)
	}
}

func FuzzHandler(f *testing.F) {
	f.Add("POST", "/whip/r", "application/sdp", "Bearer x", offer)
	f.Add("PATCH", "/whep/r/s1", "application/trickle-ice-sdpfrag", "", "a=ice-ufrag:a\r\n")
	f.Add("DELETE", "/whep/r/s1", "", "Basic x", "")
	f.Fuzz(func(t *testing.T, method, path, ctype, authz, body string) {
		b := &backend{sessions: map[string]bool{"s1": true}}
		h, _ := whip.New(whip.Config{Backend: b, MaxBodyBytes: 512})
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://x"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", authz)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("status %d", rec.Code)
		}
	})
}
