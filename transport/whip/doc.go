// Package whip serves WHIP (RFC 9725, publishing) and WHEP (playback) as
// one http.Handler that an application mounts on its own mux:
//
//	POST   /whip/{room}        application/sdp offer  → 201 Created, Location, answer
//	POST   /whep/{room}        application/sdp offer  → 201 Created, Location, answer
//	PATCH  /whip/{room}/{id}   trickle ICE / ICE restart (RFC 8840 fragments)
//	DELETE /whip/{room}/{id}   ends the session
//	OPTIONS on each            CORS preflight, Accept-Post
//
// (and the same under /whep/). The handler knows HTTP, not WebRTC: a Backend
// (the SFU's WebRTC driver) turns an offer into an answer and a session.
// Authentication is a hook: an Authorizer maps the request's Bearer token
// to a Grant (room, peer id, publish and subscribe rights).
//
// Every failure has its status, so clients and load balancers can act on
// it: 400 malformed SDP or path, 401 missing or invalid token (with
// WWW-Authenticate), 403 a token without the right, 404 an unknown
// session, 405 a wrong method, 413 a body over Config.MaxBodyBytes, 415 a
// content type other than application/sdp (or application/trickle-ice-sdpfrag
// for PATCH), 422 an offer with no media the SFU supports, 503 (with
// Retry-After) when the server is overloaded.
package whip
