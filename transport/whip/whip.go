package whip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
)

// Errors a Backend (or Authorizer) returns, wrapped as it likes; the
// handler maps each to its HTTP status.
var (
	ErrMalformed    = errors.New("whip: malformed offer")        // 400
	ErrUnauthorized = errors.New("whip: missing or bad token")   // 401
	ErrForbidden    = errors.New("whip: not allowed")            // 403
	ErrNotFound     = errors.New("whip: no such session")        // 404
	ErrUnsupported  = errors.New("whip: unsupported media")      // 422
	ErrOverloaded   = errors.New("whip: server overloaded")      // 503
	ErrConflict     = errors.New("whip: session state conflict") // 409
	// ErrPreconditionFailed: a PATCH's If-Match names another entity-tag
	// than the session's current one.
	ErrPreconditionFailed = errors.New("whip: entity-tag does not match") // 412
)

// Role says whether a session publishes (WHIP) or plays (WHEP).
type Role uint8

// Roles.
const (
	Publish Role = iota + 1
	Subscribe
)

func (r Role) String() string {
	if r == Publish {
		return "whip"
	}
	return "whep"
}

// Grant is what a token allows.
type Grant struct {
	// Room the token is for ("" : any room named in the URL).
	Room string
	// PeerID names the peer in the room ("" : the handler draws a random one).
	PeerID    string
	Publish   bool
	Subscribe bool
}

// Authorizer checks a request's Bearer token (empty when none was sent)
// for a room and returns what it allows, or an error wrapping
// ErrUnauthorized (bad or missing token) or ErrForbidden.
type Authorizer func(r *http.Request, token, room string) (Grant, error)

// Request is a new session asked for by a client.
type Request struct {
	Role   Role
	Room   string
	PeerID string
	Offer  string
	Grant  Grant
}

// Answer is the Backend's answer to an offer.
type Answer struct {
	SDP string
	// ID names the session in its Location URL: unguessable, URL-safe.
	ID string
	// ETag is the session's entity-tag, quoted (RFC 9110); empty means
	// "\"" + ID + "\"".
	ETag string
}

// PatchRequest is a PATCH on a session: trickle ICE or an ICE restart
// (RFC 9725 section 4.3).
type PatchRequest struct {
	Role     Role
	Room, ID string
	// IfMatch is the request's If-Match: "" when absent, "*" (an ICE
	// restart, which must carry it), or an entity-tag the backend checks
	// against the session's current one (ErrPreconditionFailed if not).
	IfMatch  string
	Fragment string
}

// PatchResult is the backend's answer to a PATCH.
type PatchResult struct {
	// Fragment is the answer fragment: the server's new ICE credentials
	// after a restart; "" when there is nothing to answer (204).
	Fragment string
	// ETag is the session's entity-tag after the request (it changes with
	// an ICE restart); empty sends none.
	ETag string
}

// Backend runs the WebRTC sessions.
type Backend interface {
	// Offer creates a session from an SDP offer.
	Offer(ctx context.Context, req Request) (Answer, error)
	// Patch applies a trickle-ICE or ICE-restart SDP fragment to a session.
	Patch(ctx context.Context, req PatchRequest) (PatchResult, error)
	// Delete ends a session.
	Delete(ctx context.Context, role Role, room, id string) error
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 64 << 10
	DefaultRetryAfter   = "5"
)

// Config configures a Handler.
type Config struct {
	// Backend runs the sessions; required.
	Backend Backend
	// Authorize checks tokens (nil: everyone may publish and subscribe in
	// any room under a random peer id — for development only).
	Authorize Authorizer
	// MaxBodyBytes bounds offers and fragments (default 64 KiB).
	MaxBodyBytes int64
	// AllowOrigin is the CORS Access-Control-Allow-Origin value (default
	// "*"; bearer tokens travel in a header, not cookies).
	AllowOrigin string
	// ICEServers are advertised in Link headers (RFC 9725 section 4.6), e.g.
	// "stun:stun.example.net"; empty: none.
	ICEServers []string
	// Logger receives request failures (default: discard).
	Logger *slog.Logger
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	if c.Backend == nil {
		return errors.New("whip: Config.Backend is required")
	}
	if c.MaxBodyBytes < 0 {
		return errors.New("whip: MaxBodyBytes is negative")
	}
	return nil
}

// Handler serves WHIP and WHEP.
type Handler struct {
	cfg Config
	mux *http.ServeMux
}

// New returns a Handler. Mount it at "/" or at both "/whip/" and "/whep/".
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.AllowOrigin == "" {
		cfg.AllowOrigin = "*"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	for _, role := range []Role{Publish, Subscribe} {
		p := "/" + role.String() + "/"
		h.mux.HandleFunc(p+"{room}", func(w http.ResponseWriter, r *http.Request) { h.resource(w, r, role) })
		h.mux.HandleFunc(p+"{room}/{id}", func(w http.ResponseWriter, r *http.Request) { h.session(w, r, role) })
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", h.cfg.AllowOrigin)
	hd.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch, Retry-After")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) preflight(w http.ResponseWriter, methods string) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", methods)
	hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	hd.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// resource serves /whip/{room} and /whep/{room}.
func (h *Handler) resource(w http.ResponseWriter, r *http.Request, role Role) {
	room := r.PathValue("room")
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Accept-Post", "application/sdp")
		h.linkICEServers(w)
		h.preflight(w, "POST, OPTIONS")
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		h.fail(w, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if !validRoom(room) {
		h.fail(w, r, http.StatusBadRequest, "invalid room name")
		return
	}
	grant, err := h.authorize(r, room)
	if err != nil {
		h.error(w, r, err)
		return
	}
	if (role == Publish && !grant.Publish) || (role == Subscribe && !grant.Subscribe) {
		h.error(w, r, fmt.Errorf("%w: token does not allow %s in %q", ErrForbidden, role, room))
		return
	}
	offer, ok := h.body(w, r, "application/sdp")
	if !ok {
		return
	}
	if strings.TrimSpace(offer) == "" {
		h.fail(w, r, http.StatusBadRequest, "empty offer")
		return
	}
	peer := grant.PeerID
	if peer == "" {
		peer = "peer-" + randomID(6)
	}
	ans, err := h.cfg.Backend.Offer(r.Context(), Request{Role: role, Room: room, PeerID: peer, Offer: offer, Grant: grant})
	if err != nil {
		h.error(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/sdp")
	hd.Set("Location", "/"+role.String()+"/"+room+"/"+ans.ID)
	hd.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	if ans.ETag == "" {
		ans.ETag = `"` + ans.ID + `"`
	}
	hd.Set("ETag", ans.ETag)
	h.linkICEServers(w)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, ans.SDP)
}

// session serves /whip/{room}/{id}.
func (h *Handler) session(w http.ResponseWriter, r *http.Request, role Role) {
	room, id := r.PathValue("room"), r.PathValue("id")
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Accept-Patch", "application/trickle-ice-sdpfrag")
		h.preflight(w, "PATCH, DELETE, OPTIONS")
		return
	case http.MethodPatch, http.MethodDelete:
	default:
		w.Header().Set("Allow", "PATCH, DELETE, OPTIONS")
		h.fail(w, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if !validRoom(room) || !validID(id) {
		h.fail(w, r, http.StatusNotFound, "no such session")
		return
	}
	// The session URL is unguessable, but a token must still grant the
	// session's role: a subscribe-only token cannot end or restart a
	// publisher's session whose URL it learned.
	grant, err := h.authorize(r, room)
	if err == nil && ((role == Publish && !grant.Publish) || (role == Subscribe && !grant.Subscribe)) {
		err = fmt.Errorf("%w: token does not allow %s in %q", ErrForbidden, role, room)
	}
	if err != nil {
		h.error(w, r, err)
		return
	}
	if r.Method == http.MethodDelete {
		if err := h.cfg.Backend.Delete(r.Context(), role, room, id); err != nil {
			h.error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	frag, ok := h.body(w, r, "application/trickle-ice-sdpfrag")
	if !ok {
		return
	}
	res, err := h.cfg.Backend.Patch(r.Context(), PatchRequest{Role: role, Room: room, ID: id,
		IfMatch: strings.TrimSpace(r.Header.Get("If-Match")), Fragment: frag})
	if err != nil {
		h.error(w, r, err)
		return
	}
	if res.ETag != "" {
		w.Header().Set("ETag", res.ETag)
	}
	if res.Fragment == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, res.Fragment)
}

func (h *Handler) authorize(r *http.Request, room string) (Grant, error) {
	token := ""
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, tok, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return Grant{}, fmt.Errorf("%w: Authorization is not a Bearer token", ErrUnauthorized)
		}
		token = strings.TrimSpace(tok)
	}
	if h.cfg.Authorize == nil {
		return Grant{Room: room, Publish: true, Subscribe: true}, nil
	}
	g, err := h.cfg.Authorize(r, token, room)
	if err != nil {
		return Grant{}, err
	}
	if g.Room != "" && g.Room != room {
		return Grant{}, fmt.Errorf("%w: token is for room %q", ErrForbidden, g.Room)
	}
	return g, nil
}

// body reads a bounded body of the given content type.
func (h *Handler) body(w http.ResponseWriter, r *http.Request, ctype string) (string, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != ctype {
		w.Header().Set("Accept", ctype)
		h.fail(w, r, http.StatusUnsupportedMediaType, "content type must be "+ctype)
		return "", false
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		h.fail(w, r, http.StatusRequestEntityTooLarge, "body too large")
		return "", false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, r, http.StatusRequestEntityTooLarge, "body too large")
		} else {
			h.fail(w, r, http.StatusBadRequest, "reading body: "+err.Error())
		}
		return "", false
	}
	return string(b), true
}

func (h *Handler) linkICEServers(w http.ResponseWriter) {
	for _, s := range h.cfg.ICEServers {
		w.Header().Add("Link", "<"+s+`>; rel="ice-server"`)
	}
}

// error maps a Backend or Authorizer error to its status.
func (h *Handler) error(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrMalformed):
		status = http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		w.Header().Set("WWW-Authenticate", `Bearer realm="sfu"`)
		status = http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, ErrPreconditionFailed):
		status = http.StatusPreconditionFailed
	case errors.Is(err, ErrUnsupported):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, ErrOverloaded):
		w.Header().Set("Retry-After", DefaultRetryAfter)
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = "internal error" // do not leak internals
	}
	h.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "whip request failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status), slog.String("err", err.Error()))
	http.Error(w, msg, status)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "whip request refused",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status), slog.String("reason", msg))
	http.Error(w, msg, status)
}

func validRoom(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func validID(s string) bool { return validRoom(s) }

// randomID returns n random bytes as hex.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewSessionID returns an unguessable session id (128 random bits) for
// Backends to use.
func NewSessionID() string { return randomID(16) }
