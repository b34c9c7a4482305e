package testutil

import (
	"errors"
	"fmt"
	"time"

	"github.com/sansrtc/sfu/track"
)

// ViolationKind classifies what a Checker found wrong.
type ViolationKind uint8

// Kinds of violation.
const (
	// Malformed: the packet does not parse as RTP, or has no stamp.
	Malformed ViolationKind = iota
	// UnknownPayloadType: no codec is known for the payload type.
	UnknownPayloadType
	// SeqGap: sequence numbers skipped (not counted with Lossy).
	SeqGap
	// SeqDuplicate: a sequence number arrived twice in a row.
	SeqDuplicate
	// SeqBackwards: a sequence number older than the last one.
	SeqBackwards
	// TimestampBackwards: an RTP timestamp older than the last one.
	TimestampBackwards
	// NotKeyframe: a (re)started stream did not begin with a keyframe.
	NotKeyframe
	// PictureID: a VP8 picture id did not advance by one per frame.
	PictureID
	// TL0PICIDX: a VP8 TL0PICIDX went back.
	TL0PICIDX
	// Disallowed: the packet's source was not subscribed.
	Disallowed
	// IncompleteFrame: a frame was left before all its packets arrived, or
	// a source's frame went back (not counted with Lossy).
	IncompleteFrame
	// Marker: a video marker bit not on the last packet of a frame.
	Marker
	numKinds
)

var kindNames = [numKinds]string{
	"malformed", "unknown payload type", "sequence gap", "duplicate sequence",
	"sequence backwards", "timestamp backwards", "restart not on a keyframe",
	"picture id", "tl0picidx backwards", "disallowed source", "incomplete frame",
	"marker",
}

func (k ViolationKind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Violation is one thing a Checker found wrong, with enough context to find
// it in a simulation log.
type Violation struct {
	At   time.Time
	Kind ViolationKind
	SSRC uint32
	Seq  uint16
	Msg  string
}

func (v Violation) String() string {
	return fmt.Sprintf("t=%v ssrc=%08x seq=%d: %s: %s", v.At.Sub(Epoch), v.SSRC, v.Seq, v.Kind, v.Msg)
}

// CheckerConfig configures a Checker. The zero value checks everything
// strictly with the default payload types.
type CheckerConfig struct {
	// Name prefixes every error (e.g. the subscriber's id).
	Name string
	// PayloadTypes maps payload types to codecs. Default: 96 VP8, 98 VP9,
	// 102 H264, 45 AV1, 111 Opus (the synthetic sources' defaults).
	PayloadTypes map[uint8]track.Codec
	// Lossy allows sequence gaps (and frames missing packets), for paths
	// that lose packets; duplicates and going backwards still count. A
	// restart may then land on any packet of a keyframe.
	Lossy bool
	// PictureIDs checks that VP8 picture ids advance by exactly one per
	// frame (by at least one with Lossy) and TL0PICIDX never goes back:
	// right when the SFU forwards every temporal layer or rewrites them.
	PictureIDs bool
	// AnyTag accepts every stamped source without Allow.
	AnyTag bool
	// MaxErrors is how many violations are kept in full (default 20); all
	// are counted.
	MaxErrors int
}

// TagStats are a Checker's counters for one source tag.
type TagStats struct {
	Packets, Bytes, Frames, Keyframes uint64
	// FirstPacketAt is when the first packet arrived, and FirstKeyframe
	// whether it was the first packet of a keyframe; FirstKeyframeAt is
	// when the first keyframe started to arrive (zero: none yet).
	FirstPacketAt   time.Time
	FirstKeyframe   bool
	FirstKeyframeAt time.Time
	LastPacketAt    time.Time
}

// Checker is a subscriber that decodes nothing but checks what the SFU
// sends it: per outgoing SSRC, continuous sequence numbers, timestamps that
// never go back, restarts on keyframes, VP8 picture ids, and that every
// packet comes from a source it was allowed to receive. It never panics and
// never stops: it counts and keeps violations for Err.
type Checker struct {
	cfg       CheckerConfig
	streams   map[uint32]*ssrcState
	codecs    map[uint32]track.Codec
	allowed   map[uint32]bool
	tags      map[uint32]*TagStats
	errs      []Violation
	counts    [numKinds]uint64
	packets   uint64
	padding   uint64
	pkt       track.Packet
	tagsOrder []uint32
}

type ssrcState struct {
	seq      uint16
	ts       uint32
	restart  bool
	stamp    Stamp // of the last stamped packet
	stamped  bool
	pid      int32
	pidBits  uint8
	tl0      int16
	complete bool // the last stamped packet ended its frame
}

var defaultPayloadTypes = map[uint8]track.Codec{
	96: track.CodecVP8, 98: track.CodecVP9, 102: track.CodecH264, 45: track.CodecAV1, 111: track.CodecOpus,
}

// NewChecker returns a Checker with nothing allowed yet (see Allow).
func NewChecker(cfg CheckerConfig) *Checker {
	if cfg.PayloadTypes == nil {
		cfg.PayloadTypes = defaultPayloadTypes
	}
	if cfg.MaxErrors <= 0 {
		cfg.MaxErrors = 20
	}
	return &Checker{
		cfg:     cfg,
		streams: map[uint32]*ssrcState{},
		codecs:  map[uint32]track.Codec{},
		allowed: map[uint32]bool{},
		tags:    map[uint32]*TagStats{},
	}
}

// Err joins the first violations kept (nil when there are none), with the
// total count per kind.
func (c *Checker) Err() error {
	var total uint64
	for _, n := range c.counts {
		total += n
	}
	if total == 0 {
		return nil
	}
	errs := make([]error, 0, len(c.errs)+1)
	summary := fmt.Sprintf("%s%d violations in %d packets:", c.prefix(), total, c.packets)
	for k, n := range c.counts {
		if n > 0 {
			summary += fmt.Sprintf(" %s=%d", ViolationKind(k), n)
		}
	}
	errs = append(errs, errors.New(summary))
	for _, v := range c.errs {
		errs = append(errs, errors.New(c.prefix()+v.String()))
	}
	return errors.Join(errs...)
}

// Violations returns the violations kept (at most MaxErrors).
func (c *Checker) Violations() []Violation { return c.errs }

// Count is the number of violations of kind k.
func (c *Checker) Count(k ViolationKind) uint64 { return c.counts[k] }

// Packets is the number of packets received (padding included).
func (c *Checker) Packets() uint64 { return c.packets }

// Padding is the number of padding-only packets received.
func (c *Checker) Padding() uint64 { return c.padding }

// Stats returns the counters of source tag (zero if none arrived).
func (c *Checker) Stats(tag uint32) TagStats {
	if s := c.tags[tag]; s != nil {
		return *s
	}
	return TagStats{}
}

// Tags lists the source tags received, in order of first arrival.
func (c *Checker) Tags() []uint32 { return c.tagsOrder }

// SSRCs is the number of outgoing SSRCs seen.
func (c *Checker) SSRCs() int { return len(c.streams) }

// Allow accepts packets stamped with tag from now on.
func (c *Checker) Allow(tag uint32) { c.allowed[tag] = true }

// Disallow makes packets stamped with tag violations from now on (after an
// unsubscribe has taken effect).
func (c *Checker) Disallow(tag uint32) { delete(c.allowed, tag) }

// SetCodec fixes the codec of ssrc, overriding the payload type map.
func (c *Checker) SetCodec(ssrc uint32, codec track.Codec) { c.codecs[ssrc] = codec }

// ExpectRestart makes the next packet on ssrc count as a restart: it must
// be the start of a keyframe (after a layer switch, resume or new source).
func (c *Checker) ExpectRestart(ssrc uint32) {
	if st := c.streams[ssrc]; st != nil {
		st.restart = true
	}
}

// HandleRTP checks one packet received at now. pkt is not retained.
func (c *Checker) HandleRTP(now time.Time, pkt []byte) {
	c.packets++
	p := &c.pkt
	if err := p.Unmarshal(pkt); err != nil {
		c.violate(now, Malformed, 0, 0, "rtp: %v", err)
		return
	}
	st := c.streams[p.SSRC]
	if st == nil {
		st = &ssrcState{restart: true, pid: -1, tl0: -1, complete: true}
		c.streams[p.SSRC] = st
	} else if !c.checkSeq(now, st, p) {
		return
	}
	st.seq = p.SequenceNumber
	if len(p.Payload) == 0 { // padding for bandwidth probing
		c.padding++
		return
	}
	if !st.restart || st.stamped {
		if d := int32(p.Timestamp - st.ts); d < 0 {
			c.violate(now, TimestampBackwards, p.SSRC, p.SequenceNumber, "timestamp %d after %d", p.Timestamp, st.ts)
		}
	}
	codec, ok := c.codecs[p.SSRC]
	if !ok {
		codec, ok = c.cfg.PayloadTypes[p.PayloadType]
	}
	if !ok {
		c.violate(now, UnknownPayloadType, p.SSRC, p.SequenceNumber, "payload type %d", p.PayloadType)
		return
	}
	if err := p.ParseMeta(codec); err != nil {
		c.violate(now, Malformed, p.SSRC, p.SequenceNumber, "%v payload: %v", codec, err)
	}
	stamp, ok := ExtractStamp(p.Payload)
	if !ok {
		c.violate(now, Malformed, p.SSRC, p.SequenceNumber, "no stamp in payload")
		return
	}
	if !c.cfg.AnyTag && !c.allowed[stamp.Tag] {
		c.violate(now, Disallowed, p.SSRC, p.SequenceNumber, "source tag %08x not subscribed", stamp.Tag)
	}
	c.count(now, p, stamp)

	sameSource := st.stamped && st.stamp.Tag == stamp.Tag && st.stamp.Instance == stamp.Instance && st.stamp.Encoding == stamp.Encoding
	if st.stamped && !sameSource {
		st.restart = true
	}
	if st.restart {
		start := p.Meta.Keyframe && stamp.Index == 0
		if c.cfg.Lossy {
			start = stamp.Keyframe
		}
		if !start {
			c.violate(now, NotKeyframe, p.SSRC, p.SequenceNumber, "source %08x/%d enc %d frame %d packet %d/%d (keyframe %v)",
				stamp.Tag, stamp.Instance, stamp.Encoding, stamp.Frame, stamp.Index, stamp.Count, stamp.Keyframe)
		}
	} else if sameSource {
		c.checkFrames(now, st, p, stamp)
	}
	if codec.Kind() == track.KindVideo && p.Marker != (stamp.Index == stamp.Count-1) {
		c.violate(now, Marker, p.SSRC, p.SequenceNumber, "marker %v on packet %d/%d", p.Marker, stamp.Index, stamp.Count)
	}
	if c.cfg.PictureIDs && codec == track.CodecVP8 {
		c.checkPictureID(now, st, p)
	}
	st.restart = false
	st.stamp, st.stamped = stamp, true
	st.ts = p.Timestamp
	st.complete = stamp.Index == stamp.Count-1
}

// checkSeq checks p's sequence number against the last; it reports whether
// the packet should be checked further (not a duplicate or a late one).
func (c *Checker) checkSeq(now time.Time, st *ssrcState, p *track.Packet) bool {
	d := p.SequenceNumber - st.seq
	switch {
	case d == 1:
		return true
	case d == 0:
		c.violate(now, SeqDuplicate, p.SSRC, p.SequenceNumber, "duplicate")
		return false
	case d >= 0x8000:
		c.violate(now, SeqBackwards, p.SSRC, p.SequenceNumber, "after %d", st.seq)
		return false
	}
	if !c.cfg.Lossy {
		c.violate(now, SeqGap, p.SSRC, p.SequenceNumber, "%d missing after %d", d-1, st.seq)
	}
	return true
}

// checkFrames checks that, within one source, frames go forward and none is
// left half delivered.
func (c *Checker) checkFrames(now time.Time, st *ssrcState, p *track.Packet, stamp Stamp) {
	prev := st.stamp
	switch {
	case stamp.Frame == prev.Frame && stamp.Index > prev.Index:
		if !c.cfg.Lossy && stamp.Index != prev.Index+1 {
			c.violate(now, IncompleteFrame, p.SSRC, p.SequenceNumber, "frame %d packet %d after %d", stamp.Frame, stamp.Index, prev.Index)
		}
	case stamp.Frame > prev.Frame:
		if !c.cfg.Lossy && (!st.complete || stamp.Index != 0) {
			c.violate(now, IncompleteFrame, p.SSRC, p.SequenceNumber, "frame %d packet %d after frame %d packet %d/%d",
				stamp.Frame, stamp.Index, prev.Frame, prev.Index, prev.Count)
		}
	default:
		c.violate(now, IncompleteFrame, p.SSRC, p.SequenceNumber, "frame %d packet %d after frame %d packet %d (source went back)",
			stamp.Frame, stamp.Index, prev.Frame, prev.Index)
	}
}

// checkPictureID checks VP8 picture ids and TL0PICIDX on the outgoing
// stream, across restarts too: a forwarder keeps them continuous.
func (c *Checker) checkPictureID(now time.Time, st *ssrcState, p *track.Packet) {
	m := &p.Meta
	if m.PictureID >= 0 {
		if st.pid >= 0 && m.PictureIDBits == st.pidBits {
			mod := int32(1) << m.PictureIDBits
			d := (m.PictureID - st.pid + mod) % mod
			switch {
			case p.Timestamp == st.ts:
				if d != 0 {
					c.violate(now, PictureID, p.SSRC, p.SequenceNumber, "picture id %d within frame of %d", m.PictureID, st.pid)
				}
			case d == 1:
			case c.cfg.Lossy && d > 0 && d < mod/2:
			default:
				c.violate(now, PictureID, p.SSRC, p.SequenceNumber, "picture id %d after %d", m.PictureID, st.pid)
			}
		}
		st.pid, st.pidBits = m.PictureID, m.PictureIDBits
	}
	if m.TL0PICIDX >= 0 {
		if st.tl0 >= 0 && int8(uint8(m.TL0PICIDX)-uint8(st.tl0)) < 0 {
			c.violate(now, TL0PICIDX, p.SSRC, p.SequenceNumber, "tl0picidx %d after %d", m.TL0PICIDX, st.tl0)
		}
		st.tl0 = m.TL0PICIDX
	}
}

func (c *Checker) count(now time.Time, p *track.Packet, stamp Stamp) {
	ts := c.tags[stamp.Tag]
	if ts == nil {
		ts = &TagStats{FirstPacketAt: now, FirstKeyframe: p.Meta.Keyframe && stamp.Index == 0}
		c.tags[stamp.Tag] = ts
		c.tagsOrder = append(c.tagsOrder, stamp.Tag)
	}
	ts.Packets++
	ts.Bytes += uint64(len(p.Payload))
	ts.LastPacketAt = now
	if stamp.Index == 0 {
		ts.Frames++
		if p.Meta.Keyframe {
			ts.Keyframes++
			if ts.FirstKeyframeAt.IsZero() {
				ts.FirstKeyframeAt = now
			}
		}
	}
}

func (c *Checker) violate(now time.Time, k ViolationKind, ssrc uint32, seq uint16, format string, args ...any) {
	c.counts[k]++
	if len(c.errs) < c.cfg.MaxErrors {
		c.errs = append(c.errs, Violation{At: now, Kind: k, SSRC: ssrc, Seq: seq, Msg: fmt.Sprintf(format, args...)})
	}
}

func (c *Checker) prefix() string {
	if c.cfg.Name == "" {
		return ""
	}
	return c.cfg.Name + ": "
}
