package webrtc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Errors returned by Negotiate. A signalling handler maps ErrMalformed to
// HTTP 400 and ErrUnsupported to HTTP 422; both are wrapped with details.
var (
	// ErrMalformed means the offer is not a usable WebRTC SDP: it does not
	// parse, or lacks ICE credentials or a DTLS fingerprint.
	ErrMalformed = errors.New("webrtc: malformed SDP")
	// ErrUnsupported means the offer parses but asks for something this
	// server does not do: no m-line with a codec we support, no rtcp-mux,
	// several transports without BUNDLE, or a DTLS role we cannot take.
	ErrUnsupported = errors.New("webrtc: unsupported media")
)

// Header-extension URIs the server understands. The answer keeps the ids
// the offer chose for them and drops every other extension.
const (
	ExtMID             = "urn:ietf:params:rtp-hdrext:sdes:mid"
	ExtRID             = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
	ExtRepairedRID     = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
	ExtAbsSendTime     = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
	ExtTransportCC     = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
	ExtAudioLevel      = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	ExtDependencyDescr = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
)

// Codec names as they appear in a=rtpmap, compared case-insensitively.
const (
	CodecOpus = "opus"
	CodecVP8  = "VP8"
	CodecVP9  = "VP9"
	CodecH264 = "H264"
	CodecAV1  = "AV1"
)

// DefaultCodecs is the preference order used when Config.Codecs is empty:
// the first one the offer also has wins, per kind.
var DefaultCodecs = []string{CodecOpus, CodecVP8, CodecVP9, CodecH264, CodecAV1}

var audioExts = []string{ExtMID, ExtAudioLevel, ExtAbsSendTime, ExtTransportCC}
var videoExts = []string{ExtMID, ExtRID, ExtRepairedRID, ExtAbsSendTime, ExtTransportCC, ExtDependencyDescr}

// Feedback mechanisms we answer, as "type" or "type param".
var videoFeedback = []string{"nack", "nack pli", "ccm fir", "goog-remb", "transport-cc"}
var audioFeedback = []string{"transport-cc"}

// Kind is the media type of an m-line.
type Kind string

// Media kinds.
const (
	KindAudio Kind = "audio"
	KindVideo Kind = "video"
)

// Direction is an m-line's direction attribute.
type Direction string

// Directions, as written in SDP.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Fingerprint is a DTLS certificate fingerprint as carried in a=fingerprint.
type Fingerprint struct {
	// Algorithm is the hash name in lower case, e.g. "sha-256".
	Algorithm string
	// Value is upper-case hex bytes separated by colons.
	Value string
}

// Candidate is one of our ICE host candidates to put in the answer.
type Candidate struct {
	// Addr is the address the shared socket listens on.
	Addr netip.AddrPort
	// TCP marks an ICE-TCP passive candidate (RFC 6544); otherwise UDP.
	TCP bool
}

// Config is what Negotiate needs from the server. The zero value is not
// usable: ICE credentials and the fingerprint are required.
type Config struct {
	// ICEUfrag and ICEPwd are our ICE-lite credentials for this session.
	ICEUfrag, ICEPwd string
	// Fingerprint is the fingerprint of the server's DTLS certificate.
	Fingerprint Fingerprint
	// Candidates are our host candidates, in priority order.
	Candidates []Candidate
	// Codecs is the codec preference order; empty means DefaultCodecs.
	// Leaving a codec out refuses it.
	Codecs []string
	// CNAME is written in a=ssrc cname lines of sendonly m-lines; default "sfu".
	CNAME string
	// StreamID is the msid stream id for tracks we send; default "sfu".
	StreamID string
	// Rand draws the SSRCs of tracks we send and the o= session id. Nil
	// means a generator seeded from crypto/rand.
	Rand *rand.Rand
	// Send says the session is one we send media on (a WHEP viewer's):
	// a sendrecv m-line is answered sendonly. Otherwise (a publisher's)
	// it is answered recvonly. sendonly and recvonly offers are answered
	// in the mirror direction either way.
	Send bool
}

// Codec is a codec accepted for an m-line.
type Codec struct {
	// Name as in a=rtpmap, e.g. "VP8", "opus".
	Name string
	// PayloadType is the offer's payload type for it.
	PayloadType uint8
	// ClockRate in Hz.
	ClockRate uint32
	// Channels is the audio channel count (0 when the rtpmap has none).
	Channels uint16
	// Fmtp is the offer's fmtp parameter string, possibly empty.
	Fmtp string
	// Feedback lists the accepted rtcp-fb values, e.g. "nack pli".
	Feedback []string
	// RTXPayloadType is the offer's RTX payload type with apt=PayloadType,
	// or 0 when there is none (always 0 for audio).
	RTXPayloadType uint8
}

// Extension is a negotiated RTP header extension.
type Extension struct {
	ID  int
	URI string
}

// Stream is one remote RTP stream announced with a=ssrc.
type Stream struct {
	SSRC uint32
	// RTXSSRC is its retransmission SSRC from a=ssrc-group:FID, or 0.
	RTXSSRC uint32
	CNAME   string
	// MSID is "stream-id track-id" from the ssrc's msid or the m-line's a=msid.
	MSID string
}

// Media is the outcome for one m-line, in offer order.
type Media struct {
	MID  string
	Kind Kind
	// Rejected m-lines have port 0 in the answer; nothing else is set.
	Rejected bool
	// Direction is ours, as written in the answer: RecvOnly for a
	// publisher's media, SendOnly for a viewer's.
	Direction Direction
	// Codec is the preferred accepted codec: the one a publisher sends.
	Codec Codec
	// Codecs are all the accepted codecs, in Config.Codecs preference
	// order; Codecs[0] is Codec. A RecvOnly (publisher) answer accepts
	// exactly one; a SendOnly (viewer) answer accepts every codec of the
	// offer that we support, one per name, so a viewer can be sent any
	// publisher's codec with that codec's payload and RTX payload types.
	Codecs []Codec
	// RTXPayloadType is the RTX payload type (apt = Codec.PayloadType), or 0;
	// the same as Codec.RTXPayloadType.
	RTXPayloadType uint8
	// Extensions are the accepted header extensions with the offer's ids.
	Extensions []Extension
	// Streams are the remote SSRCs the offer announced (publishers).
	Streams []Stream
	// RIDs are the simulcast layers the remote sends, in the offer's order.
	RIDs []string
	// LocalSSRC and LocalRTXSSRC are the SSRCs we send with on a SendOnly
	// m-line (LocalRTXSSRC only for video with RTX).
	LocalSSRC, LocalRTXSSRC uint32
	// LocalMSID is "stream-id track-id" announced for what we send.
	LocalMSID string
}

// ExtensionID returns the id negotiated for uri, or 0 if it was not.
func (m *Media) ExtensionID(uri string) int {
	for _, e := range m.Extensions {
		if e.URI == uri {
			return e.ID
		}
	}
	return 0
}

// Negotiated is everything the server learned from an offer plus the answer.
type Negotiated struct {
	// Answer is the SDP answer to send back.
	Answer string
	// RemoteUfrag and RemotePwd are the peer's ICE credentials.
	RemoteUfrag, RemotePwd string
	// RemoteFingerprint must match the certificate the peer shows in DTLS.
	RemoteFingerprint Fingerprint
	// Media lists every m-line in offer order.
	Media []Media
}

// offerCodec is one payload type as described by the offer.
type offerCodec struct {
	pt       uint8
	name     string
	clock    uint32
	channels uint16
	fmtp     string
	fb       []string
}

// Negotiate answers a WebRTC offer as an ICE-lite, DTLS-passive, BUNDLE-only
// server. It is pure apart from cfg.Rand.
func Negotiate(offer string, cfg *Config) (*Negotiated, error) {
	if cfg.ICEUfrag == "" || cfg.ICEPwd == "" || cfg.Fingerprint.Value == "" {
		return nil, errors.New("webrtc: Config needs ICE credentials and a fingerprint")
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no m-lines", ErrMalformed)
	}
	neg := &Negotiated{}
	bundle := bundleMIDs(&sd)

	// Transport parameters: session level, overridden by the first m-line
	// (they must be equal across a BUNDLE group; we use the first one).
	ufrag, _ := sd.Attribute("ice-ufrag")
	pwd, _ := sd.Attribute("ice-pwd")
	fp, _ := sd.Attribute("fingerprint")
	setup, _ := sd.Attribute("setup")
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value == 0 {
			continue
		}
		if v, ok := md.Attribute("ice-ufrag"); ok {
			ufrag = v
		}
		if v, ok := md.Attribute("ice-pwd"); ok {
			pwd = v
		}
		if v, ok := md.Attribute("fingerprint"); ok {
			fp = v
		}
		if v, ok := md.Attribute("setup"); ok {
			setup = v
		}
		break
	}
	if ufrag == "" || pwd == "" {
		return nil, fmt.Errorf("%w: missing ice-ufrag or ice-pwd", ErrMalformed)
	}
	neg.RemoteUfrag, neg.RemotePwd = ufrag, pwd
	alg, val, ok := strings.Cut(strings.TrimSpace(fp), " ")
	if !ok || alg == "" || val == "" {
		return nil, fmt.Errorf("%w: missing or bad fingerprint", ErrMalformed)
	}
	neg.RemoteFingerprint = Fingerprint{Algorithm: strings.ToLower(alg), Value: strings.ToUpper(strings.TrimSpace(val))}
	if setup == "passive" {
		return nil, fmt.Errorf("%w: offer wants to be DTLS server (setup:passive)", ErrUnsupported)
	}

	r := cfg.Rand
	if r == nil {
		r = newCryptoSeededRand()
	}
	prefs := cfg.Codecs
	if len(prefs) == 0 {
		prefs = DefaultCodecs
	}
	cname := cfg.CNAME
	if cname == "" {
		cname = "sfu"
	}
	streamID := cfg.StreamID
	if streamID == "" {
		streamID = "sfu"
	}

	used := 0
	mids := map[string]bool{}
	for i, md := range sd.MediaDescriptions {
		m := Media{Kind: Kind(md.MediaName.Media), Rejected: true}
		m.MID, _ = md.Attribute("mid")
		if m.MID == "" {
			if len(sd.MediaDescriptions) > 1 {
				return nil, fmt.Errorf("%w: m-line %d has no mid", ErrMalformed, i)
			}
			m.MID = "0"
		}
		if mids[m.MID] {
			return nil, fmt.Errorf("%w: duplicate mid %q", ErrMalformed, m.MID)
		}
		mids[m.MID] = true
		if md.MediaName.Port.Value != 0 && (m.Kind == KindAudio || m.Kind == KindVideo) &&
			(bundle == nil || bundle[m.MID]) {
			if err := negotiateMedia(md, &m, prefs, cfg.Send); err != nil {
				return nil, err
			}
		}
		if !m.Rejected {
			used++
		}
		neg.Media = append(neg.Media, m)
	}
	if used == 0 {
		return nil, fmt.Errorf("%w: no m-line with a supported codec", ErrUnsupported)
	}
	if bundle == nil && len(sd.MediaDescriptions) > 1 {
		return nil, fmt.Errorf("%w: several m-lines without BUNDLE", ErrUnsupported)
	}
	for i := range neg.Media {
		m := &neg.Media[i]
		if m.Rejected || m.Direction != SendOnly {
			continue
		}
		m.LocalSSRC = nonZeroU32(r)
		if slices.ContainsFunc(m.Codecs, func(c Codec) bool { return c.RTXPayloadType != 0 }) {
			m.LocalRTXSSRC = nonZeroU32(r)
		}
		m.LocalMSID = streamID + " " + string(m.Kind) + "-" + m.MID
	}
	neg.Answer = writeAnswer(&sd, neg, cfg, cname, r.Uint64()>>2)
	return neg, nil
}

func nonZeroU32(r *rand.Rand) uint32 {
	for {
		if v := r.Uint32(); v != 0 {
			return v
		}
	}
}

// bundleMIDs returns the mids of the first BUNDLE group, or nil.
func bundleMIDs(sd *sdp.SessionDescription) map[string]bool {
	for _, a := range sd.Attributes {
		if a.Key != "group" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) == 0 || f[0] != "BUNDLE" {
			continue
		}
		set := map[string]bool{}
		for _, mid := range f[1:] {
			set[mid] = true
		}
		return set
	}
	return nil
}

// negotiateMedia fills m for an audio or video m-line, leaving m.Rejected
// set when nothing in it is acceptable. It returns only ErrUnsupported-class
// errors for transport features that cannot be negotiated away.
func negotiateMedia(md *sdp.MediaDescription, m *Media, prefs []string, send bool) error {
	if _, ok := md.Attribute("rtcp-mux"); !ok {
		return fmt.Errorf("%w: m-line %q lacks rtcp-mux", ErrUnsupported, m.MID)
	}
	dir := SendRecv
	for _, a := range md.Attributes {
		switch Direction(a.Key) {
		case SendRecv, SendOnly, RecvOnly, Inactive:
			dir = Direction(a.Key)
		}
	}
	switch {
	case dir == SendRecv && send, dir == RecvOnly:
		m.Direction = SendOnly
	case dir == SendOnly, dir == SendRecv:
		m.Direction = RecvOnly
	default:
		m.Direction = Inactive
	}

	codecs := parseCodecs(md)
	allowed := audioFeedback
	if m.Kind == KindVideo {
		allowed = videoFeedback
	}
	order := prefs
	if m.Direction == RecvOnly {
		// A publisher sends what it prefers, and says so by the order of
		// its offer (a browser's setCodecPreferences): take the first
		// offered codec we accept, in its best variant.
		order = nil
		for _, c := range codecs {
			if slices.ContainsFunc(prefs, func(p string) bool { return strings.EqualFold(p, c.name) }) &&
				!slices.ContainsFunc(order, func(o string) bool { return strings.EqualFold(o, c.name) }) &&
				pickCodec(codecs, c.name, m.Kind) >= 0 {
				order = append(order, c.name)
			}
		}
	}
	for _, name := range order {
		i := pickCodec(codecs, name, m.Kind)
		if i < 0 || slices.ContainsFunc(m.Codecs, func(c Codec) bool { return strings.EqualFold(c.Name, name) }) {
			continue
		}
		m.Codecs = append(m.Codecs, answerCodec(codecs, i, m.Kind, allowed))
		// A publisher sends one codec, so its answer names one; a viewer
		// may be sent whatever the room's publishers use.
		if m.Direction != SendOnly {
			break
		}
	}
	if len(m.Codecs) == 0 {
		return nil
	}
	m.Codec = m.Codecs[0]
	m.RTXPayloadType = m.Codec.RTXPayloadType
	m.Rejected = false

	exts := audioExts
	if m.Kind == KindVideo {
		exts = videoExts
	}
	for _, a := range md.Attributes {
		if a.Key != "extmap" {
			continue
		}
		var e sdp.ExtMap
		if e.Unmarshal("extmap:"+a.Value) != nil || e.URI == nil {
			continue
		}
		uri := e.URI.String()
		if e.Value < 1 || e.Value > 255 || !slices.Contains(exts, uri) {
			continue
		}
		if m.Direction == SendOnly && (uri == ExtRID || uri == ExtRepairedRID) {
			continue
		}
		if m.ExtensionID(uri) == 0 {
			m.Extensions = append(m.Extensions, Extension{ID: e.Value, URI: uri})
		}
	}

	if m.Direction == RecvOnly {
		m.Streams = parseStreams(md)
		m.RIDs = parseRIDs(md)
	}
	return nil
}

// answerCodec turns offered codec i into the answer's Codec, keeping the
// allowed feedback and finding its RTX payload type (video only).
func answerCodec(codecs []offerCodec, i int, kind Kind, allowed []string) Codec {
	c := codecs[i]
	var fb []string
	for _, f := range c.fb {
		if slices.Contains(allowed, f) && !slices.Contains(fb, f) {
			fb = append(fb, f)
		}
	}
	out := Codec{Name: c.name, PayloadType: c.pt, ClockRate: c.clock, Channels: c.channels, Fmtp: c.fmtp, Feedback: fb}
	if kind == KindVideo {
		for _, rc := range codecs {
			if strings.EqualFold(rc.name, "rtx") && fmtpParam(rc.fmtp, "apt") == strconv.Itoa(int(c.pt)) {
				out.RTXPayloadType = rc.pt
				break
			}
		}
	}
	return out
}

func parseCodecs(md *sdp.MediaDescription) []offerCodec {
	var out []offerCodec
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		out = append(out, offerCodec{pt: uint8(pt)})
	}
	find := func(s string) int {
		pt, err := strconv.ParseUint(s, 10, 7)
		if err != nil {
			return -1
		}
		for i := range out {
			if out[i].pt == uint8(pt) {
				return i
			}
		}
		return -1
	}
	var wildFB []string
	for _, a := range md.Attributes {
		ptStr, rest, _ := strings.Cut(a.Value, " ")
		switch a.Key {
		case "rtpmap":
			i := find(ptStr)
			if i < 0 {
				continue
			}
			parts := strings.Split(strings.TrimSpace(rest), "/")
			out[i].name = parts[0]
			if len(parts) > 1 {
				if v, err := strconv.ParseUint(parts[1], 10, 32); err == nil {
					out[i].clock = uint32(v)
				}
			}
			if len(parts) > 2 {
				if v, err := strconv.ParseUint(parts[2], 10, 16); err == nil {
					out[i].channels = uint16(v)
				}
			}
		case "fmtp":
			if i := find(ptStr); i >= 0 {
				out[i].fmtp = strings.TrimSpace(rest)
			}
		case "rtcp-fb":
			fb := strings.Join(strings.Fields(rest), " ")
			if ptStr == "*" {
				wildFB = append(wildFB, fb)
			} else if i := find(ptStr); i >= 0 {
				out[i].fb = append(out[i].fb, fb)
			}
		}
	}
	for i := range out {
		out[i].fb = append(out[i].fb, wildFB...)
	}
	return out
}

// pickCodec returns the index of the best offered codec called name, or -1.
func pickCodec(codecs []offerCodec, name string, kind Kind) int {
	best, bestScore := -1, 0
	for i, c := range codecs {
		if !strings.EqualFold(c.name, name) {
			continue
		}
		score := 1
		switch strings.ToUpper(name) {
		case "OPUS":
			if kind != KindAudio || c.clock != 48000 {
				continue
			}
		case CodecVP8, CodecAV1:
			if kind != KindVideo || c.clock != 90000 {
				continue
			}
		case CodecVP9:
			if kind != KindVideo || c.clock != 90000 {
				continue
			}
			switch fmtpParam(c.fmtp, "profile-id") {
			case "", "0":
				score = 2
			}
		case CodecH264:
			if kind != KindVideo || c.clock != 90000 || fmtpParam(c.fmtp, "packetization-mode") != "1" {
				continue
			}
			pli := strings.ToLower(fmtpParam(c.fmtp, "profile-level-id"))
			switch {
			case pli == "42e01f":
				score = 4
			case strings.HasPrefix(pli, "42e0") || strings.HasPrefix(pli, "4200"):
				score = 3
			case strings.HasPrefix(pli, "42"):
				score = 2
			}
		default:
			continue
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// fmtpParam returns key's value in an fmtp parameter list "a=1;b=2".
func fmtpParam(fmtp, key string) string {
	for p := range strings.SplitSeq(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func parseStreams(md *sdp.MediaDescription) []Stream {
	var streams []Stream
	mlineMSID, _ := md.Attribute("msid")
	idx := func(ssrc uint32) int {
		for i := range streams {
			if streams[i].SSRC == ssrc {
				return i
			}
		}
		streams = append(streams, Stream{SSRC: ssrc, MSID: mlineMSID})
		return len(streams) - 1
	}
	var rtx []uint32
	for _, a := range md.Attributes {
		switch a.Key {
		case "ssrc":
			ssrcStr, rest, _ := strings.Cut(a.Value, " ")
			v, err := strconv.ParseUint(ssrcStr, 10, 32)
			if err != nil || v == 0 {
				continue
			}
			i := idx(uint32(v))
			if val, ok := strings.CutPrefix(rest, "cname:"); ok {
				streams[i].CNAME = val
			} else if val, ok := strings.CutPrefix(rest, "msid:"); ok {
				streams[i].MSID = val
			}
		case "ssrc-group":
			f := strings.Fields(a.Value)
			if len(f) != 3 || f[0] != "FID" {
				continue
			}
			p, err1 := strconv.ParseUint(f[1], 10, 32)
			r, err2 := strconv.ParseUint(f[2], 10, 32)
			if err1 != nil || err2 != nil || p == 0 || r == 0 || p == r {
				continue
			}
			streams[idx(uint32(p))].RTXSSRC = uint32(r)
			rtx = append(rtx, uint32(r))
		}
	}
	return slices.DeleteFunc(streams, func(s Stream) bool { return slices.Contains(rtx, s.SSRC) })
}

// parseRIDs returns the rids the remote sends, following a=simulcast:send
// order when present ("~" paused markers and ","-alternatives flattened).
func parseRIDs(md *sdp.MediaDescription) []string {
	var rids []string
	for _, a := range md.Attributes {
		if a.Key != "rid" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) >= 2 && f[1] == "send" && validRID(f[0]) && !slices.Contains(rids, f[0]) {
			rids = append(rids, f[0])
		}
	}
	sim, ok := md.Attribute("simulcast")
	if !ok {
		return rids
	}
	f := strings.Fields(sim)
	if len(f) < 2 || f[0] != "send" {
		return rids
	}
	var ordered []string
	for alt := range strings.SplitSeq(strings.ReplaceAll(f[1], ",", ";"), ";") {
		alt = strings.TrimPrefix(alt, "~")
		if slices.Contains(rids, alt) && !slices.Contains(ordered, alt) {
			ordered = append(ordered, alt)
		}
	}
	return ordered
}

func validRID(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func writeAnswer(offer *sdp.SessionDescription, neg *Negotiated, cfg *Config, cname string, sessID uint64) string {
	var b strings.Builder
	line := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
		b.WriteString("\r\n")
	}
	line("v=0")
	line("o=- ", strconv.FormatUint(sessID, 10), " 2 IN IP4 127.0.0.1")
	line("s=-")
	line("t=0 0")
	var mids []string
	for _, m := range neg.Media {
		if !m.Rejected {
			mids = append(mids, m.MID)
		}
	}
	line("a=group:BUNDLE ", strings.Join(mids, " "))
	line("a=ice-lite")
	line("a=msid-semantic: WMS *")
	if _, ok := offer.Attribute("extmap-allow-mixed"); ok {
		line("a=extmap-allow-mixed")
	}
	for i, md := range offer.MediaDescriptions {
		m := &neg.Media[i]
		proto := strings.Join(md.MediaName.Protos, "/")
		if m.Rejected {
			fmts := "0"
			if len(md.MediaName.Formats) > 0 {
				fmts = md.MediaName.Formats[0]
			}
			line("m=", md.MediaName.Media, " 0 ", proto, " ", fmts)
			line("c=IN IP4 0.0.0.0")
			line("a=mid:", m.MID)
			line("a=inactive")
			continue
		}
		var fmts []string
		for _, c := range m.Codecs {
			fmts = append(fmts, strconv.Itoa(int(c.PayloadType)))
			if c.RTXPayloadType != 0 {
				fmts = append(fmts, strconv.Itoa(int(c.RTXPayloadType)))
			}
		}
		line("m=", string(m.Kind), " 9 UDP/TLS/RTP/SAVPF ", strings.Join(fmts, " "))
		line("c=IN IP4 0.0.0.0")
		line("a=rtcp:9 IN IP4 0.0.0.0")
		line("a=ice-ufrag:", cfg.ICEUfrag)
		line("a=ice-pwd:", cfg.ICEPwd)
		line("a=fingerprint:", cfg.Fingerprint.Algorithm, " ", cfg.Fingerprint.Value)
		line("a=setup:passive")
		line("a=mid:", m.MID)
		for _, e := range m.Extensions {
			line("a=extmap:", strconv.Itoa(e.ID), " ", e.URI)
		}
		line("a=", string(m.Direction))
		if m.Direction == SendOnly {
			line("a=msid:", m.LocalMSID)
		}
		line("a=rtcp-mux")
		if _, ok := md.Attribute("rtcp-rsize"); ok {
			line("a=rtcp-rsize")
		}
		for _, c := range m.Codecs {
			writeCodec(line, c)
		}
		for _, rid := range m.RIDs {
			line("a=rid:", rid, " recv")
		}
		if len(m.RIDs) > 0 {
			line("a=simulcast:recv ", strings.Join(m.RIDs, ";"))
		}
		if m.Direction == SendOnly {
			s := strconv.FormatUint(uint64(m.LocalSSRC), 10)
			if m.LocalRTXSSRC != 0 {
				line("a=ssrc-group:FID ", s, " ", strconv.FormatUint(uint64(m.LocalRTXSSRC), 10))
			}
			line("a=ssrc:", s, " cname:", cname)
			line("a=ssrc:", s, " msid:", m.LocalMSID)
			if m.LocalRTXSSRC != 0 {
				r := strconv.FormatUint(uint64(m.LocalRTXSSRC), 10)
				line("a=ssrc:", r, " cname:", cname)
				line("a=ssrc:", r, " msid:", m.LocalMSID)
			}
		}
		for i, c := range cfg.Candidates {
			line("a=candidate:", candidateLine(i, c))
		}
		line("a=end-of-candidates")
	}
	return b.String()
}

// writeCodec writes the rtpmap, rtcp-fb and fmtp lines of c and its RTX.
func writeCodec(line func(...string), c Codec) {
	pt := strconv.Itoa(int(c.PayloadType))
	rtpmap := c.Name + "/" + strconv.FormatUint(uint64(c.ClockRate), 10)
	if c.Channels > 0 {
		rtpmap += "/" + strconv.Itoa(int(c.Channels))
	}
	line("a=rtpmap:", pt, " ", rtpmap)
	for _, f := range c.Feedback {
		line("a=rtcp-fb:", pt, " ", f)
	}
	if c.Fmtp != "" {
		line("a=fmtp:", pt, " ", c.Fmtp)
	}
	if c.RTXPayloadType != 0 {
		rtx := strconv.Itoa(int(c.RTXPayloadType))
		line("a=rtpmap:", rtx, " rtx/", strconv.FormatUint(uint64(c.ClockRate), 10))
		line("a=fmtp:", rtx, " apt=", pt)
	}
}

// candidateLine formats a host candidate (without "candidate:"). Priority
// follows RFC 8445 5.1.2.1 with host type preference, UDP above TCP.
func candidateLine(i int, c Candidate) string {
	local := 65535 - i
	typePref := 126
	proto, tail := "udp", ""
	if c.TCP {
		proto, tail = "tcp", " tcptype passive"
		local = 65535 - i - 1000
	}
	prio := uint32(typePref)<<24 | uint32(local)<<8 | 255
	return strconv.Itoa(i+1) + " 1 " + proto + " " + strconv.FormatUint(uint64(prio), 10) + " " +
		c.Addr.Addr().Unmap().String() + " " + strconv.Itoa(int(c.Addr.Port())) + " typ host" + tail
}
