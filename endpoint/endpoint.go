package endpoint

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sansrtc/sfu/track"
)

// Errors returned for misuse. Malformed network input is never returned as
// an error: it is counted in Stats.
var (
	ErrDuplicateTrack    = errors.New("endpoint: a track with this name is already published")
	ErrNoSuchTrack       = errors.New("endpoint: no such published track")
	ErrInvalidTrack      = errors.New("endpoint: invalid track")
	ErrTooManyTracks     = errors.New("endpoint: too many tracks")
	ErrAlreadySubscribed = errors.New("endpoint: already subscribed")
	ErrNotSubscribed     = errors.New("endpoint: not subscribed")
	ErrSSRCInUse         = errors.New("endpoint: ssrc already used by another track")
)

// Defaults of Config.
const (
	DefaultMaxTracks        = 32
	DefaultMaxSubscriptions = 1024
)

// Extensions are the RTP header extension ids negotiated with the peer (0:
// not negotiated). MID, RID and RepairedRID demultiplex what it sends;
// TransportCC, AbsSendTime and AudioLevel are also stamped on what it is
// sent (Stamp), so that it can feed back what the bandwidth estimate
// needs.
type Extensions struct {
	MID         uint8
	RID         uint8
	RepairedRID uint8
	AudioLevel  uint8
	TransportCC uint8
	AbsSendTime uint8
}

// Config configures an Endpoint.
type Config struct {
	// PeerID names the peer in its room (from its token); required.
	PeerID string
	// Owner is the id the endpoint's tracks put in their outputs (core:
	// the endpoint's handle).
	Owner uint64
	// Rand draws SSRCs and initial sequence numbers; required to be seeded
	// for determinism (core passes one derived from its seed).
	Rand *rand.Rand
	// Extensions the peer negotiated, used to demultiplex.
	Extensions Extensions
	// AutoSubscribe subscribes the peer to every track in its room, present
	// and future (what a WHEP viewer needs).
	AutoSubscribe bool
	// MaxTracks bounds published tracks (default 32); MaxSubscriptions
	// bounds subscriptions (default 1024).
	MaxTracks        int
	MaxSubscriptions int
	// HistoryPackets and HistoryBytes size each published encoding's
	// retransmission history (0: track defaults).
	HistoryPackets int
	HistoryBytes   int
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	if c.PeerID == "" {
		return errors.New("endpoint: PeerID is required")
	}
	if c.Rand == nil {
		return errors.New("endpoint: Rand is required")
	}
	return nil
}

// TrackOptions describe a track the peer publishes.
type TrackOptions struct {
	Name        string
	Codec       track.Codec
	PayloadType uint8 // the peer's payload type (0: any)
	Priority    int
	Metadata    string
	// MID is the media section the track arrives in, for demultiplexing by
	// the MID header extension.
	MID string
	// Encodings are the simulcast encodings, lowest quality first (empty:
	// one encoding whose SSRC is learned from the first packet).
	Encodings []track.Encoding
	// NACK asks the peer to retransmit packets lost on the way in (it
	// negotiated "nack" for the codec). RTXPayloadType is the peer's RTX
	// payload type (RFC 4588) for the codec, 0 if none: retransmissions on
	// it are unwrapped into the track. It needs PayloadType. RTX SSRCs come
	// from the Encodings, from the repaired-rid extension, or from the MID.
	NACK           bool
	RTXPayloadType uint8
}

// SubscribeOptions shape a subscription.
type SubscribeOptions struct {
	// PayloadType is the payload type the subscriber negotiated for the
	// codec (0: the publisher's).
	PayloadType uint8
	// Spatial and Temporal are the initial target layers (Spatial -1: the
	// highest; Temporal -1: all).
	Spatial  int
	Temporal int8
	// SSRC is the outgoing SSRC (0: drawn at random). A driver that
	// announced SSRCs in its SDP answer passes them here.
	SSRC uint32
	// RTXSSRC and RTXPayloadType send the subscription's retransmissions
	// as RTX (RFC 4588), when the peer negotiated it; 0: on the media
	// SSRC.
	RTXSSRC        uint32
	RTXPayloadType uint8
	// Priority, MinSpatial and MinTemporal bound what the bitrate
	// allocator gives a video subscription (see LayerLimits): Spatial and
	// Temporal above are its maximum.
	Priority    int
	MinSpatial  int8
	MinTemporal int8
}

// SubKey names a subscription: the publisher's peer id and track name.
type SubKey struct {
	Peer, Track string
}

// Stats are the endpoint's counters.
type Stats struct {
	RTPPackets, RTCPPackets uint64
	// Malformed counts RTP and RTCP that did not parse; UnknownSSRC RTP
	// that matched no track; Rejected packets a track refused (see the
	// track's own stats for why).
	Malformed, UnknownSSRC, Rejected uint64
	// RTX counts retransmissions unwrapped into their track; RTXDropped
	// RTX packets with nothing to unwrap (padding probes, unknown media).
	RTX, RTXDropped uint64
	// FeedbackUnknownSSRC counts RTCP feedback for an SSRC we do not send.
	FeedbackUnknownSSRC uint64
	// Sent counts RTP packets stamped for the peer (Stamp), SentBytes
	// their marshalled size.
	Sent, SentBytes uint64
	// ReceiverReports counts the peer's report blocks about tracks it is
	// sent (loss, jitter, RTT: see LocalTrack.Reception); REMBs its REMB
	// packets.
	ReceiverReports, REMBs uint64
	// TransportCC counts the peer's transport-cc feedback packets, and
	// TransportCCReceived and TransportCCLost the packet statuses in
	// them.
	TransportCC, TransportCCReceived, TransportCCLost uint64
}

type remote struct {
	opts TrackOptions
	rt   *track.RemoteTrack
}

type ssrcEntry struct {
	ssrc uint32
	rt   *track.RemoteTrack
	enc  int
	// rtx: the SSRC carries the encoding's retransmissions, in RTX packets
	// of payload type rtx that unwrap to payload type pt.
	rtx     bool
	rtxPT   uint8
	mediaPT uint8
}

// SenderReport is a publisher's RTCP sender report for one of its tracks,
// for the caller to pass on to the track's subscribers.
type SenderReport struct {
	Track    *track.RemoteTrack
	Encoding int
	NTP      uint64
	RTPTime  uint32
}

type local struct {
	key   SubKey
	lt    *track.LocalTrack
	fixed bool // SSRC chosen by the caller (announced in SDP)
	// limits are the allocator's bounds; given is what it gave last.
	// userPaused is the peer's pause, bwPaused the allocator's.
	limits               LayerLimits
	given                Layer
	userPaused, bwPaused bool
}

// Endpoint is the machine for one peer.
type Endpoint struct {
	cfg     Config
	out     *track.Output
	remotes []remote
	ssrcs   []ssrcEntry
	last    int // index into ssrcs of the last hit
	locals  []local
	// retired keeps the LocalTracks of ended subscriptions on an SSRC the
	// caller chose: a later subscription on that SSRC (a WHEP media
	// section refilled) continues their numbering, so the subscriber sees
	// one continuous stream per SSRC. At most MaxSubscriptions.
	retired  []*track.LocalTrack
	rtcpSSRC uint32
	pkt      track.Packet
	stats    Stats
	// Sender reports found by the last HandleRTCP, for PollSenderReport.
	srs    [8]SenderReport
	nsrs   int
	srHead int
	// twSeq is the next transport-wide sequence number: one space for
	// everything sent to the peer, whatever its SSRC.
	twSeq uint16
	rtt   time.Duration
	// abs is abs-send-time at absAt, computed once per instant.
	absAt time.Time
	abs   uint32

	alloc   allocState
	bw      BandwidthStats
	rembBps int64
	rembAt  time.Time
	events  []Event
	evHead  int
}

// New returns an Endpoint whose tracks write their outputs to out.
func New(cfg Config, out *track.Output) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxTracks <= 0 {
		cfg.MaxTracks = DefaultMaxTracks
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = DefaultMaxSubscriptions
	}
	return &Endpoint{cfg: cfg, out: out, rtcpSSRC: cfg.Rand.Uint32() | 1}, nil
}

// PeerID is the peer's id.
func (e *Endpoint) PeerID() string { return e.cfg.PeerID }

// Owner is the owner id given at creation.
func (e *Endpoint) Owner() uint64 { return e.cfg.Owner }

// AutoSubscribe reports whether the peer receives every track of its room.
func (e *Endpoint) AutoSubscribe() bool { return e.cfg.AutoSubscribe }

// RTCPSSRC is the sender SSRC of the RTCP the endpoint sends.
func (e *Endpoint) RTCPSSRC() uint32 { return e.rtcpSSRC }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats { return e.stats }

// Track returns the published track with that name.
func (e *Endpoint) Track(name string) (*track.RemoteTrack, bool) {
	for i := range e.remotes {
		if e.remotes[i].opts.Name == name {
			return e.remotes[i].rt, true
		}
	}
	return nil, false
}

// Tracks returns the published tracks in publication order.
func (e *Endpoint) Tracks() []*track.RemoteTrack {
	ts := make([]*track.RemoteTrack, len(e.remotes))
	for i := range e.remotes {
		ts[i] = e.remotes[i].rt
	}
	return ts
}

// Subscription returns the LocalTrack of a subscription.
func (e *Endpoint) Subscription(k SubKey) (*track.LocalTrack, bool) {
	for i := range e.locals {
		if e.locals[i].key == k {
			return e.locals[i].lt, true
		}
	}
	return nil, false
}

// Subscriptions returns the subscription keys in subscription order.
func (e *Endpoint) Subscriptions() []SubKey {
	ks := make([]SubKey, len(e.locals))
	for i := range e.locals {
		ks[i] = e.locals[i].key
	}
	return ks
}

// Publish adds a track the peer sends.
func (e *Endpoint) Publish(now time.Time, o TrackOptions) (*track.RemoteTrack, error) {
	if o.Name == "" || o.Codec == track.CodecUnknown || len(o.Name) > 256 || len(o.Metadata) > 4096 || len(o.Encodings) > 8 {
		return nil, fmt.Errorf("%w: name %q, codec %v, %d encodings", ErrInvalidTrack, o.Name, o.Codec, len(o.Encodings))
	}
	if _, ok := e.Track(o.Name); ok {
		return nil, fmt.Errorf("%w: %q", ErrDuplicateTrack, o.Name)
	}
	if len(e.remotes) >= e.cfg.MaxTracks {
		return nil, ErrTooManyTracks
	}
	if o.RTXPayloadType != 0 && (o.PayloadType == 0 || o.RTXPayloadType == o.PayloadType) {
		return nil, fmt.Errorf("%w: RTX payload type %d for payload type %d", ErrInvalidTrack, o.RTXPayloadType, o.PayloadType)
	}
	for _, enc := range o.Encodings {
		for _, ssrc := range [2]uint32{enc.SSRC, enc.RTXSSRC} {
			if ssrc != 0 && e.findSSRC(ssrc) >= 0 {
				return nil, fmt.Errorf("%w: %d", ErrSSRCInUse, ssrc)
			}
		}
	}
	rt := track.NewRemoteTrack(track.RemoteConfig{
		Owner:           e.cfg.Owner,
		Info:            track.Info{Peer: e.cfg.PeerID, Name: o.Name, Codec: o.Codec, Priority: o.Priority, Metadata: o.Metadata},
		PayloadType:     o.PayloadType,
		Encodings:       append([]track.Encoding(nil), o.Encodings...),
		HistoryPackets:  e.cfg.HistoryPackets,
		HistoryBytes:    e.cfg.HistoryBytes,
		AudioLevelExtID: e.cfg.Extensions.AudioLevel,
		NACK:            o.NACK,
	}, e.out)
	e.remotes = append(e.remotes, remote{opts: o, rt: rt})
	for i := 0; i < rt.Encodings(); i++ {
		en := rt.Encoding(i)
		if en.SSRC != 0 {
			e.ssrcs = append(e.ssrcs, ssrcEntry{ssrc: en.SSRC, rt: rt, enc: i})
		}
		if en.RTXSSRC != 0 && o.RTXPayloadType != 0 {
			e.ssrcs = append(e.ssrcs, ssrcEntry{ssrc: en.RTXSSRC, rt: rt, enc: i, rtx: true, rtxPT: o.RTXPayloadType, mediaPT: o.PayloadType})
		}
	}
	return rt, nil
}

// Unpublish removes a published track and closes it.
func (e *Endpoint) Unpublish(now time.Time, name string) (*track.RemoteTrack, error) {
	for i := range e.remotes {
		if e.remotes[i].opts.Name != name {
			continue
		}
		rt := e.remotes[i].rt
		e.remotes = append(e.remotes[:i], e.remotes[i+1:]...)
		kept := e.ssrcs[:0]
		for _, s := range e.ssrcs {
			if s.rt != rt {
				kept = append(kept, s)
			}
		}
		clear(e.ssrcs[len(kept):])
		e.ssrcs = kept
		e.last = 0
		rt.Close()
		return rt, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNoSuchTrack, name)
}

// Subscribe creates the LocalTrack for a subscription; the caller attaches
// it to its source.
func (e *Endpoint) Subscribe(now time.Time, k SubKey, kind track.Kind, o SubscribeOptions) (*track.LocalTrack, error) {
	if _, ok := e.Subscription(k); ok {
		return nil, fmt.Errorf("%w: %s/%s", ErrAlreadySubscribed, k.Peer, k.Track)
	}
	if len(e.locals) >= e.cfg.MaxSubscriptions {
		return nil, ErrTooManyTracks
	}
	r := e.cfg.Rand
	ssrc := o.SSRC
	if ssrc != 0 && e.localBySSRC(ssrc) != nil {
		return nil, fmt.Errorf("%w: %d", ErrSSRCInUse, ssrc)
	}
	spatial := o.Spatial
	if spatial < 0 {
		spatial = 1 << 10 // clamped to the source's highest
	}
	limits := o.limits()
	e.reallocate(now)
	if lt := e.unretire(ssrc, kind); lt != nil {
		lt.SetPayloadType(o.PayloadType)
		lt.SetRTXPayloadType(o.RTXPayloadType)
		lt.SetPaused(now, false)
		lt.SetTargetLayers(now, spatial, o.Temporal)
		e.locals = append(e.locals, local{key: k, lt: lt, fixed: true, limits: limits})
		return lt, nil
	}
	for ssrc == 0 || e.findSSRC(ssrc) >= 0 || e.localBySSRC(ssrc) != nil || e.retiredIndex(ssrc) >= 0 {
		ssrc = r.Uint32()
	}
	lt := track.NewLocalTrack(track.LocalConfig{
		Owner:            e.cfg.Owner,
		SSRC:             ssrc,
		PayloadType:      o.PayloadType,
		InitialSeq:       uint16(r.Uint32()),
		InitialTimestamp: r.Uint32(),
		InitialPictureID: uint16(r.Uint32()) & 0x7fff,
		Kind:             kind,
		RTXSSRC:          o.RTXSSRC,
		RTXPayloadType:   o.RTXPayloadType,
		InitialRTXSeq:    uint16(r.Uint32()),
	})
	lt.SetTargetLayers(now, spatial, o.Temporal)
	e.locals = append(e.locals, local{key: k, lt: lt, fixed: o.SSRC != 0, limits: limits})
	return lt, nil
}

// limits are the allocator's bounds for a subscription with these
// options: its priority, its minimum, and its target layers as maximum.
func (o *SubscribeOptions) limits() LayerLimits {
	l := LayerLimits{Priority: o.Priority, Min: Layer{o.MinSpatial, o.MinTemporal}, Max: NoLimit}
	if o.Spatial >= 0 && o.Spatial < MaxSpatialLayers {
		l.Max.Spatial = int8(o.Spatial)
	}
	if o.Temporal >= 0 && o.Temporal < MaxTemporalLayers {
		l.Max.Temporal = o.Temporal
	}
	return l
}

// unretire takes the retired LocalTrack on ssrc out of retirement, if
// there is one of that kind.
func (e *Endpoint) unretire(ssrc uint32, kind track.Kind) *track.LocalTrack {
	i := e.retiredIndex(ssrc)
	if i < 0 {
		return nil
	}
	lt := e.retired[i]
	e.retired = append(e.retired[:i], e.retired[i+1:]...)
	if lt.Kind() != kind {
		return nil // the SSRC changed kind: start afresh
	}
	return lt
}

func (e *Endpoint) retiredIndex(ssrc uint32) int {
	if ssrc == 0 {
		return -1
	}
	for i, lt := range e.retired {
		if lt.SSRC() == ssrc {
			return i
		}
	}
	return -1
}

// Rekey moves the subscription from to the key to, keeping its LocalTrack
// (and so its SSRC and continuous numbering): the caller re-attaches it to
// the new source.
func (e *Endpoint) Rekey(from, to SubKey) (*track.LocalTrack, error) {
	if _, ok := e.Subscription(to); ok {
		return nil, fmt.Errorf("%w: %s/%s", ErrAlreadySubscribed, to.Peer, to.Track)
	}
	for i := range e.locals {
		if e.locals[i].key == from {
			e.locals[i].key = to
			return e.locals[i].lt, nil
		}
	}
	return nil, fmt.Errorf("%w: %s/%s", ErrNotSubscribed, from.Peer, from.Track)
}

// Unsubscribe removes a subscription and returns its LocalTrack, which the
// caller detaches from its source. A LocalTrack on a caller-chosen SSRC is
// kept: a later Subscribe on that SSRC continues its numbering.
func (e *Endpoint) Unsubscribe(now time.Time, k SubKey) (*track.LocalTrack, error) {
	for i := range e.locals {
		if e.locals[i].key == k {
			lt := e.locals[i].lt
			if e.locals[i].fixed {
				if len(e.retired) >= e.cfg.MaxSubscriptions {
					e.retired = append(e.retired[:0], e.retired[1:]...)
				}
				e.retired = append(e.retired, lt)
			}
			e.locals = append(e.locals[:i], e.locals[i+1:]...)
			e.reallocate(now)
			return lt, nil
		}
	}
	return nil, fmt.Errorf("%w: %s/%s", ErrNotSubscribed, k.Peer, k.Track)
}

func (e *Endpoint) findSSRC(ssrc uint32) int {
	if e.last < len(e.ssrcs) && e.ssrcs[e.last].ssrc == ssrc {
		return e.last
	}
	for i := range e.ssrcs {
		if e.ssrcs[i].ssrc == ssrc {
			e.last = i
			return i
		}
	}
	return -1
}

func (e *Endpoint) localBySSRC(ssrc uint32) *track.LocalTrack {
	for i := range e.locals {
		if e.locals[i].lt.SSRC() == ssrc {
			return e.locals[i].lt
		}
	}
	return nil
}

// HandleRTP takes one decrypted RTP packet from the peer (borrowed for the
// call). It returns the track it belongs to and the stored packet to fan
// out, or ok false when the packet was dropped (and counted).
func (e *Endpoint) HandleRTP(now time.Time, buf []byte) (rt *track.RemoteTrack, p *track.Packet, ok bool) {
	e.stats.RTPPackets++
	pkt := &e.pkt
	if err := pkt.Unmarshal(buf); err != nil {
		e.stats.Malformed++
		return nil, nil, false
	}
	i := e.findSSRC(pkt.SSRC)
	if i < 0 {
		i = e.bindSSRC(pkt)
		if i < 0 {
			e.stats.UnknownSSRC++
			return nil, nil, false
		}
	}
	s := &e.ssrcs[i]
	if s.rtx && !e.unwrapRTX(pkt, s) {
		return nil, nil, false
	}
	stored, err := s.rt.HandleRTP(now, pkt, s.enc)
	if err != nil {
		e.stats.Rejected++
		return nil, nil, false
	}
	return s.rt, stored, true
}

// unwrapRTX turns an RTX packet (RFC 4588 section 4: the original
// sequence number, then the original payload) into the packet it repairs,
// in place. Padding-only RTX (bandwidth probes) and packets for an
// encoding whose own SSRC is not known yet are dropped and counted.
func (e *Endpoint) unwrapRTX(p *track.Packet, s *ssrcEntry) bool {
	media := s.rt.Encoding(s.enc).SSRC
	if p.PayloadType != s.rtxPT || len(p.Payload) < 2 || media == 0 {
		e.stats.RTXDropped++
		return false
	}
	e.stats.RTX++
	p.SequenceNumber = uint16(p.Payload[0])<<8 | uint16(p.Payload[1])
	p.Payload = p.Payload[2:]
	p.SSRC = media
	p.PayloadType = s.mediaPT
	return true
}

// bindSSRC finds the track of a packet whose SSRC was not declared: by the
// RID (and MID) header extensions, by the MID alone for a single-encoding
// track, or as the only track waiting for an SSRC with this payload type.
func (e *Endpoint) bindSSRC(p *track.Packet) int {
	if len(e.ssrcs) >= e.cfg.MaxTracks*8 {
		return -1
	}
	ext := e.cfg.Extensions
	if i, ok := e.bindRTX(p); ok {
		return i
	}
	if ext.RepairedRID != 0 && p.Extension(ext.RepairedRID) != nil {
		return -1 // RTX of a track that negotiated none
	}
	var mid []byte
	if ext.MID != 0 {
		mid = p.Extension(ext.MID)
	}
	var rid []byte
	if ext.RID != 0 {
		rid = p.Extension(ext.RID)
	}
	// Find the one track (and encoding) the packet can belong to, then bind
	// it: binding before knowing the match is unique would let the first
	// packet of an ambiguous SSRC decide for all the later ones.
	matchTrack, matchEnc := -1, -1
	for ri := range e.remotes {
		r := &e.remotes[ri]
		if mid != nil && r.opts.MID != string(mid) {
			continue
		}
		if r.opts.PayloadType != 0 && r.opts.PayloadType != p.PayloadType {
			continue
		}
		enc := -1
		if rid != nil {
			if j, ok := r.rt.EncodingByRID(rid); ok && r.rt.Encoding(j).SSRC == 0 {
				enc = j
			}
		} else {
			for j := 0; j < r.rt.Encodings(); j++ {
				if en := r.rt.Encoding(j); en.SSRC == 0 && en.RID == "" {
					enc = j
					break
				}
			}
		}
		if enc < 0 {
			continue
		}
		if matchTrack >= 0 {
			return -1 // ambiguous: two tracks could take it
		}
		matchTrack, matchEnc = ri, enc
		if mid != nil {
			break // MIDs are unique
		}
	}
	if matchTrack < 0 {
		return -1
	}
	rt := e.remotes[matchTrack].rt
	rt.BindSSRC(matchEnc, p.SSRC)
	e.ssrcs = append(e.ssrcs, ssrcEntry{ssrc: p.SSRC, rt: rt, enc: matchEnc})
	e.last = len(e.ssrcs) - 1
	return e.last
}

// bindRTX binds the SSRC of an RTX packet the signalling did not declare:
// to the encoding named by its repaired-rid extension (simulcast), or to
// the one encoding of the track its MID names, or of the only track with
// that RTX payload type. ok is true when the packet is RTX (its payload
// type is a track's RTX type), bound or not.
func (e *Endpoint) bindRTX(p *track.Packet) (i int, ok bool) {
	ext := e.cfg.Extensions
	var mid, rrid []byte
	if ext.MID != 0 {
		mid = p.Extension(ext.MID)
	}
	if ext.RepairedRID != 0 {
		rrid = p.Extension(ext.RepairedRID)
	}
	matchTrack, matchEnc := -1, -1
	for ri := range e.remotes {
		r := &e.remotes[ri]
		if r.opts.RTXPayloadType == 0 || r.opts.RTXPayloadType != p.PayloadType {
			continue
		}
		ok = true
		if mid != nil && r.opts.MID != string(mid) {
			continue
		}
		enc := -1
		if rrid != nil {
			if j, found := r.rt.EncodingByRID(rrid); found {
				enc = j
			}
		} else if r.rt.Encodings() == 1 {
			enc = 0
		}
		if enc < 0 || r.rt.Encoding(enc).RTXSSRC != 0 || e.rtxBound(r.rt, enc) {
			continue // unknown, or its RTX SSRC is another one
		}
		if matchTrack >= 0 {
			return -1, true // ambiguous
		}
		matchTrack, matchEnc = ri, enc
		if mid != nil {
			break
		}
	}
	if matchTrack < 0 {
		return -1, ok
	}
	r := &e.remotes[matchTrack]
	e.ssrcs = append(e.ssrcs, ssrcEntry{ssrc: p.SSRC, rt: r.rt, enc: matchEnc, rtx: true, rtxPT: r.opts.RTXPayloadType, mediaPT: r.opts.PayloadType})
	e.last = len(e.ssrcs) - 1
	return e.last, true
}

// rtxBound reports whether encoding enc of rt has an RTX SSRC bound.
func (e *Endpoint) rtxBound(rt *track.RemoteTrack, enc int) bool {
	for i := range e.ssrcs {
		if s := &e.ssrcs[i]; s.rtx && s.rt == rt && s.enc == enc {
			return true
		}
	}
	return false
}

// HandleRTCP takes one decrypted compound RTCP packet from the peer:
// NACKs are answered from history into out, PLI and FIR become keyframe
// requests to the source. Malformed packets are counted and the rest of the
// compound packet is skipped.
func (e *Endpoint) HandleRTCP(now time.Time, buf []byte, out *track.Output) {
	e.nsrs, e.srHead = 0, 0
	for len(buf) > 0 {
		p, rest, err := track.ReadRTCP(buf)
		if err != nil {
			e.stats.Malformed++
			return
		}
		buf = rest
		e.stats.RTCPPackets++
		switch {
		case p.Type == track.RTCPTypePSFB && p.Count == track.RTCPFormatPLI:
			if lt := e.localBySSRC(p.MediaSSRC()); lt != nil {
				lt.HandlePLI(now)
			} else {
				e.stats.FeedbackUnknownSSRC++
			}
		case p.Type == track.RTCPTypePSFB && p.Count == track.RTCPFormatFIR:
			for i := 0; i < p.FIREntries(); i++ {
				ssrc, _ := p.FIREntry(i)
				if lt := e.localBySSRC(ssrc); lt != nil {
					lt.HandlePLI(now)
				} else {
					e.stats.FeedbackUnknownSSRC++
				}
			}
		case p.Type == track.RTCPTypeSR:
			ssrc, ntp, rtpTime, _, _, ok := p.SenderReport()
			if !ok {
				e.stats.Malformed++
				continue
			}
			if i := e.findSSRC(ssrc); i >= 0 && e.nsrs < len(e.srs) {
				e.srs[e.nsrs] = SenderReport{Track: e.ssrcs[i].rt, Encoding: e.ssrcs[i].enc, NTP: ntp, RTPTime: rtpTime}
				e.nsrs++
			}
			e.handleReports(now, &p)
		case p.Type == track.RTCPTypeRR:
			e.handleReports(now, &p)
		case p.Type == track.RTCPTypePSFB && p.Count == 15:
			if bps, _, ok := p.REMB(); ok {
				e.handleREMB(now, bps)
			}
		case p.IsTransportCC():
			e.handleTransportCC(now, &p)
		case p.Type == track.RTCPTypeRTPFB && p.Count == track.RTCPFormatNACK:
			lt := e.localBySSRC(p.MediaSSRC())
			if lt == nil {
				e.stats.FeedbackUnknownSSRC++
				continue
			}
			for i := 0; i < p.NACKCount(); i++ {
				pid, blp := p.NACK(i)
				lt.HandleNACK(now, pid, out)
				for b := uint16(0); b < 16; b++ {
					if blp&(1<<b) != 0 {
						lt.HandleNACK(now, pid+b+1, out)
					}
				}
			}
		}
	}
}

// Stamp prepares an RTP packet on its way to the peer: it stamps the
// header extensions the peer negotiated (a transport-wide sequence number
// from the endpoint's one sequence space, abs-send-time, the audio level
// of audio) and counts it. Every packet sent to the peer must pass here
// once, in sending order, retransmissions and probes included, for the
// peer's transport-cc feedback to describe what was sent.
func (e *Endpoint) Stamp(now time.Time, t *track.Transmit) {
	x := &e.cfg.Extensions
	if x.TransportCC != 0 {
		t.TransportSeqExt, t.TransportSeq = x.TransportCC, e.twSeq
		e.twSeq++
	}
	if x.AbsSendTime != 0 {
		if !now.Equal(e.absAt) { // a batch of packets shares its instant
			e.absAt, e.abs = now, track.AbsSendTime(now)
		}
		t.AbsSendTimeExt, t.AbsSendTime = x.AbsSendTime, e.abs
	}
	t.AudioLevelExt = x.AudioLevel
	e.stats.Sent++
	e.stats.SentBytes += uint64(t.MarshalSize(nil))
}

// handleReports takes the report blocks of an SR or RR from the peer
// about what it is sent: each goes to its LocalTrack, and the round-trip
// times they give are smoothed into the endpoint's.
func (e *Endpoint) handleReports(now time.Time, p *track.RTCPPacket) {
	for i := 0; i < p.ReportBlockCount(); i++ {
		rb, _ := p.ReportBlock(i)
		lt := e.localBySSRC(rb.SSRC)
		if lt == nil {
			continue // about an SSRC we do not send (an RTX one, say)
		}
		e.stats.ReceiverReports++
		if r := lt.HandleReceiverReport(now, rb); r.RTT > 0 {
			if e.rtt == 0 {
				e.rtt = r.RTT
			} else {
				e.rtt += (r.RTT - e.rtt) / 8
			}
		}
	}
}

// handleTransportCC takes a transport-cc feedback from the peer about
// what it was sent: malformed ones are counted and dropped.
func (e *Endpoint) handleTransportCC(now time.Time, p *track.RTCPPacket) {
	fb, _ := p.TransportCC()
	if fb.Err() != nil {
		e.stats.Malformed++
		return
	}
	e.stats.TransportCC++
	for {
		_, pkt, ok := fb.Next()
		if !ok {
			break
		}
		if pkt.Received {
			e.stats.TransportCCReceived++
		} else {
			e.stats.TransportCCLost++
		}
	}
}

// RTT is the smoothed round-trip time to the peer, from its receiver
// reports (0: not known yet).
func (e *Endpoint) RTT() time.Duration { return e.rtt }

// PollSenderReport returns the next sender report the last HandleRTCP
// found for one of the peer's published tracks.
func (e *Endpoint) PollSenderReport() (SenderReport, bool) {
	if e.srHead == e.nsrs {
		return SenderReport{}, false
	}
	sr := e.srs[e.srHead]
	e.srs[e.srHead] = SenderReport{}
	e.srHead++
	return sr, true
}

// HandleTimeout runs the endpoint's own timers: the bitrate allocation.
// (The tracks' timers run on their Output; see track.Output.)
func (e *Endpoint) HandleTimeout(now time.Time) {
	if !e.alloc.next.IsZero() && !e.alloc.next.After(now) {
		e.allocate(now)
	}
}

// PollTimeout is the endpoint's own next deadline: the next allocation.
func (e *Endpoint) PollTimeout() (time.Time, bool) {
	return e.alloc.next, !e.alloc.next.IsZero()
}

// Close closes every published track. Subscriptions are the caller's to
// detach (it owns the room).
func (e *Endpoint) Close() {
	for i := range e.remotes {
		e.remotes[i].rt.Close()
	}
}
