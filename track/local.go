package track

import (
	"math"
	"time"
)

// Default sizes of a LocalTrack (see LocalConfig).
const (
	DefaultVideoNACKWindow = 512
	DefaultAudioNACKWindow = 128
	// gapReserveMax is the largest sequence gap whose missing packets keep
	// their outgoing sequence numbers reserved, so they can still be
	// forwarded in place when they arrive late.
	gapReserveMax = 64
	// nackMaxPerPacket and nackMinSpacing bound what one NACKed packet can
	// cost: a lying subscriber cannot turn NACKs into a flood.
	nackMaxPerPacket = 3
	nackMinSpacing   = 10 * time.Millisecond
)

// LocalConfig configures a LocalTrack.
type LocalConfig struct {
	// Owner is copied into every Transmit (core: the subscriber endpoint).
	Owner uint64
	// SSRC is the outgoing SSRC.
	SSRC uint32
	// PayloadType is the outgoing payload type (0: the source's).
	PayloadType uint8
	// InitialSeq, InitialTimestamp and InitialPictureID start the outgoing
	// numbering; callers draw them from their seeded random source.
	InitialSeq       uint16
	InitialTimestamp uint32
	InitialPictureID uint16
	// NACKWindow is how many recent outgoing packets can be retransmitted
	// (default 512 for video, 128 for audio).
	NACKWindow int
	// Kind sizes the defaults; the source's kind must match.
	Kind Kind
	// RTXSSRC and RTXPayloadType, when both set, send retransmissions as
	// RFC 4588 RTX (their own SSRC, payload type and sequence numbers,
	// the original sequence number first in the payload), as a subscriber
	// that negotiated RTX expects; else they go on the media SSRC.
	RTXSSRC        uint32
	RTXPayloadType uint8
	// InitialRTXSeq starts the RTX stream's numbering.
	InitialRTXSeq uint16
}

// LocalState is what a LocalTrack is doing.
type LocalState uint8

// LocalTrack states.
const (
	LocalNoSource   LocalState = iota + 1 // no source attached (publisher gone)
	LocalWaitingKey                       // attached, waiting for a keyframe to start
	LocalForwarding                       // forwarding
	LocalPaused                           // paused by the subscriber
)

func (s LocalState) String() string {
	switch s {
	case LocalNoSource:
		return "no-source"
	case LocalWaitingKey:
		return "waiting-keyframe"
	case LocalForwarding:
		return "forwarding"
	case LocalPaused:
		return "paused"
	}
	return "unknown"
}

// LocalStats are a LocalTrack's counters.
type LocalStats struct {
	Packets, Bytes, Keyframes uint64
	// DroppedLayer counts packets of layers above the target;
	// DroppedWaiting packets dropped while waiting for a keyframe or paused;
	// DroppedLate late packets whose place could not be kept.
	DroppedLayer, DroppedWaiting, DroppedLate uint64
	// DroppedPadding counts padding-only packets (bandwidth probes).
	DroppedPadding                 uint64
	Switches                       uint64 // encoding or source switches
	Restarts                       uint64 // source numbering restarts followed
	NACKs, Retransmits, NACKMisses uint64
	PLIs                           uint64 // keyframe requests from the subscriber
	ReceiverReports                uint64 // report blocks from the subscriber
}

// LocalTrack is one subscription: the machine that decides, packet by
// packet, what a subscriber receives from a RemoteTrack, and rewrites SSRC,
// sequence numbers, timestamps and VP8/VP9 picture ids so that the
// subscriber sees one continuous stream across everything behind it:
// dropped temporal layers, simulcast encoding switches, the publisher
// leaving and coming back, pause and resume. It starts and resumes only on
// a keyframe and asks its source for one. It keeps a map from outgoing to
// source sequence numbers so NACKs are served from the RemoteTrack's
// history instead of a copy per subscriber.
type LocalTrack struct {
	cfg LocalConfig
	src *RemoteTrack
	gen uint32 // bumped when the source changes; older NACK entries are stale

	paused  bool
	needKey bool
	started bool

	// want is the encoding asked for (SetTargetLayers); target the one
	// aimed at now: the highest active encoding up to want, so a subscriber
	// is never left waiting for a layer the publisher stopped sending
	// (browsers drop simulcast layers when their bandwidth estimate falls).
	want, target, current int
	maxTemporal           int8 // -1: all
	pendTemporal          int8 // a temporal up-switch waits for a sync point
	// The subscriber's own choice of temporal layer (SetTargetLayers) and
	// the bitrate allocator's caps (SetAllocation); what is aimed at is
	// the lower of the two.
	userTemporal  int8
	allocSpatial  int
	allocTemporal int8
	clockRate     uint32

	// Rewriting: out = src + offset (mod the field's width).
	seqOff  uint16
	tsOff   uint32
	pidOff  int32
	tl0Off  uint8
	highest uint64 // newest source extended seq handled in this epoch
	epoch   uint32 // bumped at every switch; older gap reservations are stale
	// restarts is the source encoding's count of numbering restarts when
	// forwarding from it began.
	restarts uint32

	lastSeq        uint16
	lastTS         uint32
	lastPID        int32
	lastTL0        int16
	lastAt         time.Time
	lastDroppedPID int32

	fwd     []fwdEntry // by outgoing seq
	reserve []resEntry // by source extended seq
	stats   LocalStats

	// The last sender reports sent (the middle 32 bits of their NTP time,
	// and when), to take the round-trip time from a receiver report
	// that echoes one; and what the subscriber last reported.
	srSent [4]srSent
	srNext int
	recv   Reception
	rtxSeq uint16 // next RTX sequence number
}

type srSent struct {
	lsr uint32
	at  time.Time
}

// Reception is how the subscriber reports receiving a LocalTrack, from
// its last RTCP receiver report.
type Reception struct {
	// At is when the report arrived (zero: none yet).
	At time.Time
	// FractionLost is the fraction of packets lost since its previous
	// report, in 1/256; TotalLost the cumulative count.
	FractionLost uint8
	TotalLost    int32
	// Jitter is the interarrival jitter (RFC 3550 §6.4.1).
	Jitter time.Duration
	// RTT is the round-trip time from the sender report the receiver
	// report echoes (0: none echoed, or one too old to match).
	RTT time.Duration
}

type fwdEntry struct {
	srcExt  uint64
	lastRTX int64 // virtual unix nanoseconds of the last retransmission
	outTS   uint32
	pid     int32
	gen     uint32
	outSeq  uint16
	tl0     int16
	enc     uint8
	rtx     uint8
	valid   bool
}

type resEntry struct {
	srcExt uint64
	epoch  uint32
	pidOff int32
	outSeq uint16
	tl0Off uint8
	valid  bool
}

// NewLocalTrack returns a LocalTrack with no source.
func NewLocalTrack(cfg LocalConfig) *LocalTrack {
	if cfg.NACKWindow <= 0 {
		cfg.NACKWindow = DefaultVideoNACKWindow
		if cfg.Kind == KindAudio {
			cfg.NACKWindow = DefaultAudioNACKWindow
		}
	}
	n := 1
	for n < cfg.NACKWindow {
		n <<= 1
	}
	r := 1
	for r < 2*gapReserveMax {
		r <<= 1
	}
	return &LocalTrack{
		cfg:            cfg,
		maxTemporal:    -1,
		pendTemporal:   -1,
		lastPID:        -1,
		lastTL0:        -1,
		lastDroppedPID: -1,
		fwd:            make([]fwdEntry, n),
		reserve:        make([]resEntry, r),
		target:         -1,
		want:           1 << 10,
		allocSpatial:   1 << 10,
		rtxSeq:         cfg.InitialRTXSeq,
		userTemporal:   -1,
		allocTemporal:  -1,
	}
}

// SSRC is the outgoing SSRC.
func (l *LocalTrack) SSRC() uint32 { return l.cfg.SSRC }

// Owner is the owner id given at creation.
func (l *LocalTrack) Owner() uint64 { return l.cfg.Owner }

// Kind is the media kind given at creation.
func (l *LocalTrack) Kind() Kind { return l.cfg.Kind }

// Source is the RemoteTrack forwarded from, or nil.
func (l *LocalTrack) Source() *RemoteTrack { return l.src }

// State says what the track is doing.
func (l *LocalTrack) State() LocalState {
	switch {
	case l.src == nil:
		return LocalNoSource
	case l.paused:
		return LocalPaused
	case l.needKey:
		return LocalWaitingKey
	}
	return LocalForwarding
}

// Encodings are the encoding asked for (SetTargetLayers, clamped to the
// source's), the one aimed at now (the highest active one up to it) and
// the one forwarded: what a relay must pull for this subscriber.
func (l *LocalTrack) Encodings() (want, target, current int) {
	want = l.want
	if l.src != nil {
		want = min(want, l.src.Encodings()-1)
	}
	return want, l.target, l.current
}

// CurrentLayers are the encoding forwarded and the highest temporal layer
// (-1: all).
func (l *LocalTrack) CurrentLayers() (spatial int, temporal int8) { return l.current, l.maxTemporal }

// Stats returns the track's counters.
func (l *LocalTrack) Stats() LocalStats { return l.stats }

// SetSource attaches the track to src (nil detaches). The outgoing stream
// continues where it was: numbering resumes from the last packet sent, on
// the new source's next keyframe, which is requested now.
func (l *LocalTrack) SetSource(now time.Time, src *RemoteTrack) {
	if src == l.src {
		return
	}
	l.src = src
	l.gen++
	l.epoch++
	if src == nil {
		l.needKey = true
		return
	}
	l.clockRate = src.cfg.Info.Codec.ClockRate()
	l.target = l.pick(now)
	l.current = l.target
	l.stats.Switches++
	l.restart(now)
}

// Resync restarts forwarding from the same source at its next keyframe
// (requested now), numbering on from the last packet sent, as SetSource
// does for a new source: for a source whose packets were lost in bulk
// (a relay whose path moved), so the subscriber sees one continuous
// stream instead of a gap.
func (l *LocalTrack) Resync(now time.Time) {
	if l.src == nil {
		return
	}
	l.gen++
	l.epoch++
	l.stats.Switches++
	l.restart(now)
}

// SetPayloadType changes the outgoing payload type (0: the source's), for
// a source of another codec behind the same subscription.
func (l *LocalTrack) SetPayloadType(pt uint8) { l.cfg.PayloadType = pt }

// SetPaused pauses or resumes forwarding. Resuming waits for a keyframe and
// asks for one.
func (l *LocalTrack) SetPaused(now time.Time, paused bool) {
	if paused == l.paused {
		return
	}
	l.paused = paused
	if !paused {
		l.restart(now)
	}
}

// SetTargetLayers selects the simulcast encoding (spatial, clamped to what
// the source has) and the highest temporal layer (-1: all). A new encoding
// is switched to on its next keyframe, which is requested; until then the
// current one keeps flowing. A lower temporal layer applies at the next
// frame start, a higher one at its next switching point.
func (l *LocalTrack) SetTargetLayers(now time.Time, spatial int, temporal int8) {
	l.want = max(spatial, 0)
	l.userTemporal = max(temporal, -1)
	l.aim(now)
}

// SetAllocation caps the layers below what SetTargetLayers asked: the
// bitrate allocator's choice for the subscriber's bandwidth (spatial
// 1<<10 and temporal -1: no cap). It switches as SetTargetLayers does.
// Encodings still reports the subscriber's own choice, which is what a
// relay pulls: the cap follows the subscriber's link, not the cluster's.
func (l *LocalTrack) SetAllocation(now time.Time, spatial int, temporal int8) {
	l.allocSpatial = max(spatial, 0)
	l.allocTemporal = max(temporal, -1)
	l.aim(now)
}

// aim applies the lower of the subscriber's choice and the allocator's
// cap.
func (l *LocalTrack) aim(now time.Time) {
	if l.src != nil {
		l.retarget(now)
	}
	temporal := l.userTemporal
	if l.allocTemporal >= 0 && (temporal < 0 || l.allocTemporal < temporal) {
		temporal = l.allocTemporal
	}
	l.pendTemporal = temporal
	if !l.started || l.needKey {
		l.maxTemporal = temporal // nothing is flowing: no frame to cut
	}
}

// pick returns the encoding to aim at: the highest one up to want that is
// active, or want (clamped) when none is yet.
func (l *LocalTrack) pick(now time.Time) int {
	top := min(l.want, l.allocSpatial, l.src.Encodings()-1)
	for e := top; e >= 0; e-- {
		if l.src.Active(e, now) {
			return e
		}
	}
	return top
}

// retarget re-picks the target and asks for a keyframe on a new one.
func (l *LocalTrack) retarget(now time.Time) {
	if t := l.pick(now); t != l.target {
		l.target = t
		if !l.paused && (t != l.current || l.needKey) {
			l.src.RequestKeyframe(now, t)
		}
	}
}

// restart waits for a keyframe on the target encoding and asks for one.
func (l *LocalTrack) restart(now time.Time) {
	l.needKey = true
	if l.src != nil && !l.paused {
		l.src.RequestKeyframe(now, l.target)
	}
}

// Forward decides whether p, a packet stored by the source RemoteTrack,
// goes to the subscriber; if so it queues the rewritten Transmit on out and
// returns true. It never allocates.
func (l *LocalTrack) Forward(now time.Time, p *Packet, out *Output) bool {
	if l.src == nil || l.paused {
		l.stats.DroppedWaiting++
		return false
	}
	enc := int(p.Encoding)
	if enc == l.current && !l.needKey && l.src.encs[enc].restarts != l.restarts {
		// The publisher's numbering restarted: renumber from the next
		// keyframe on, continuing the subscriber's sequence.
		l.epoch++
		l.stats.Restarts++
		l.restart(now)
	}
	if enc != l.current || l.needKey {
		if l.src.Encodings() > 1 {
			l.retarget(now)
		}
		// A keyframe that comes late (a retransmission, after packets
		// that follow it were dropped here while waiting) is no place to
		// start: what follows it is gone, so the subscriber would see a
		// hole. The next one is.
		if enc != l.target || !p.Meta.Keyframe || l.src.late(p) {
			l.stats.DroppedWaiting++
			return false
		}
		l.switchTo(now, p)
	}
	if l.pendTemporal != l.maxTemporal {
		l.applyTemporal(p)
	}
	ext := p.ExtSeq
	pidOff, tl0Off := l.pidOff, l.tl0Off
	inOrder := ext > l.highest
	var outSeq uint16
	if inOrder {
		for s := l.highest + 1; s < ext && s-l.highest <= gapReserveMax; s++ {
			r := &l.reserve[s&uint64(len(l.reserve)-1)]
			*r = resEntry{srcExt: s, epoch: l.epoch, outSeq: uint16(s) + l.seqOff, pidOff: l.pidOff, tl0Off: l.tl0Off, valid: true}
		}
		l.highest = ext
		if len(p.Payload) == 0 {
			// Padding only (a publisher probing bandwidth): nothing for the
			// subscriber, and no gap either.
			l.seqOff--
			l.stats.DroppedPadding++
			return false
		}
		if l.maxTemporal >= 0 && p.Meta.Temporal > l.maxTemporal {
			// Close the gap this packet leaves, and the picture-id gap its
			// frame leaves, so the subscriber sees no loss.
			l.seqOff--
			if p.Meta.PictureID >= 0 && p.Meta.PictureID != l.lastDroppedPID {
				l.pidOff--
				l.lastDroppedPID = p.Meta.PictureID
			}
			l.stats.DroppedLayer++
			return false
		}
		outSeq = uint16(ext) + l.seqOff
	} else {
		r := &l.reserve[ext&uint64(len(l.reserve)-1)]
		if !r.valid || r.srcExt != ext || r.epoch != l.epoch {
			l.stats.DroppedLate++
			return false
		}
		r.valid = false
		if len(p.Payload) == 0 || (l.maxTemporal >= 0 && p.Meta.Temporal > l.maxTemporal) {
			// Its frame's picture id was given away when the frame was
			// dropped: forwarding it now would repeat one. Its sequence
			// number stays a hole, which a NACK cannot fill.
			l.stats.DroppedLate++
			return false
		}
		outSeq = r.outSeq
		pidOff, tl0Off = r.pidOff, r.tl0Off // the offsets of its own time
	}
	t := out.push()
	l.fill(t, p, outSeq, p.Timestamp+l.tsOff)
	if p.Meta.PictureID >= 0 {
		t.PictureID = rewritePID(p.Meta.PictureID+pidOff, p.Meta.PictureIDBits)
	}
	if p.Meta.TL0PICIDX >= 0 {
		t.TL0PICIDX = int16(uint8(p.Meta.TL0PICIDX) + tl0Off)
	}
	f := &l.fwd[outSeq&uint16(len(l.fwd)-1)]
	*f = fwdEntry{srcExt: ext, outTS: t.Timestamp, pid: t.PictureID, gen: l.gen, outSeq: outSeq,
		tl0: t.TL0PICIDX, enc: p.Encoding, valid: true}
	if int16(outSeq-l.lastSeq) > 0 || !l.started {
		l.lastSeq = outSeq
	}
	if int32(t.Timestamp-l.lastTS) > 0 || !l.started {
		l.lastTS = t.Timestamp
	}
	if inOrder { // a late packet must not move the picture ids back
		if t.PictureID >= 0 {
			l.lastPID = t.PictureID
		}
		if t.TL0PICIDX >= 0 {
			l.lastTL0 = t.TL0PICIDX
		}
	}
	l.started = true
	l.lastAt = now
	l.stats.Packets++
	l.stats.Bytes += uint64(len(p.Payload))
	if p.Meta.Keyframe {
		l.stats.Keyframes++
	}
	return true
}

func (l *LocalTrack) fill(t *Transmit, p *Packet, seq uint16, ts uint32) {
	pt := l.cfg.PayloadType
	if pt == 0 {
		pt = p.PayloadType
	}
	*t = Transmit{
		Owner:           l.cfg.Owner,
		SSRC:            l.cfg.SSRC,
		SequenceNumber:  seq,
		Timestamp:       ts,
		PayloadType:     pt,
		Marker:          p.Marker,
		Payload:         p.Payload,
		Keyframe:        p.Meta.Keyframe,
		AudioLevel:      p.AudioLevel,
		Voice:           p.Voice,
		PictureID:       -1,
		PictureIDBits:   p.Meta.PictureIDBits,
		PictureIDOffset: p.Meta.PictureIDOffset,
		TL0PICIDX:       -1,
		TL0PICIDXOffset: p.Meta.TL0PICIDXOffset,
	}
}

// rewritePID wraps a shifted picture id to its field width.
func rewritePID(pid int32, bits uint8) int32 {
	if bits == 7 {
		return pid & 0x7f
	}
	return pid & 0x7fff
}

// applyTemporal moves maxTemporal towards what was asked at a point where
// the stream allows it: down at the start of a frame (never cutting one),
// up where the higher layer can be decoded from (a layer-sync packet, a
// keyframe, or a base-layer frame).
func (l *LocalTrack) applyTemporal(p *Packet) {
	pend, cur := l.pendTemporal, l.maxTemporal
	if pend < 0 {
		pend = math.MaxInt8
	}
	if cur < 0 {
		cur = math.MaxInt8
	}
	switch {
	case pend < cur:
		if p.Meta.StartOfFrame || p.Meta.Keyframe {
			l.maxTemporal = l.pendTemporal
		}
	case p.Meta.Temporal <= pend && (p.Meta.LayerSync || p.Meta.Keyframe || p.Meta.Temporal <= 0):
		l.maxTemporal = l.pendTemporal
	}
}

// switchTo starts forwarding from keyframe p: the offsets are chosen so
// that p follows the last packet sent without a gap or a step back.
func (l *LocalTrack) switchTo(now time.Time, p *Packet) {
	if l.current != int(p.Encoding) {
		l.stats.Switches++
	}
	l.current = int(p.Encoding)
	l.restarts = l.src.encs[l.current].restarts
	l.needKey = false
	l.epoch++
	l.highest = p.ExtSeq - 1
	l.lastDroppedPID = -1
	if !l.started {
		l.seqOff = l.cfg.InitialSeq - uint16(p.ExtSeq)
		l.tsOff = l.cfg.InitialTimestamp - p.Timestamp
		if p.Meta.PictureID >= 0 {
			l.pidOff = int32(l.cfg.InitialPictureID) - p.Meta.PictureID
		}
		if p.Meta.TL0PICIDX >= 0 {
			l.tl0Off = uint8(l.cfg.InitialPictureID) - uint8(p.Meta.TL0PICIDX)
		}
		return
	}
	l.seqOff = l.lastSeq + 1 - uint16(p.ExtSeq)
	ticks := uint32(1)
	if l.clockRate > 0 && now.After(l.lastAt) {
		if t := uint64(now.Sub(l.lastAt)) * uint64(l.clockRate) / uint64(time.Second); t > 1 {
			ticks = uint32(t)
		}
	}
	l.tsOff = l.lastTS + ticks - p.Timestamp
	if p.Meta.PictureID >= 0 {
		if l.lastPID >= 0 {
			l.pidOff = l.lastPID + 1 - p.Meta.PictureID
		} else {
			l.pidOff = int32(l.cfg.InitialPictureID) - p.Meta.PictureID
		}
	}
	if p.Meta.TL0PICIDX >= 0 {
		if l.lastTL0 >= 0 {
			l.tl0Off = uint8(l.lastTL0) + 1 - uint8(p.Meta.TL0PICIDX)
		} else {
			l.tl0Off = uint8(l.cfg.InitialPictureID) - uint8(p.Meta.TL0PICIDX)
		}
	}
}

// HandleNACK answers the subscriber's NACK for outgoing sequence number seq
// by queueing the packet again from the source's history. It reports
// whether a retransmission was queued; a packet no longer in the history,
// from a source since replaced, or already retransmitted too often is not.
func (l *LocalTrack) HandleNACK(now time.Time, seq uint16, out *Output) bool {
	l.stats.NACKs++
	f := &l.fwd[seq&uint16(len(l.fwd)-1)]
	if !f.valid || f.outSeq != seq || f.gen != l.gen || l.src == nil {
		l.stats.NACKMisses++
		return false
	}
	ns := now.UnixNano()
	if f.rtx >= nackMaxPerPacket || (f.rtx > 0 && ns-f.lastRTX < int64(nackMinSpacing)) {
		l.stats.NACKMisses++
		return false
	}
	p := l.src.Packet(int(f.enc), f.srcExt)
	if p == nil {
		l.stats.NACKMisses++
		return false
	}
	f.rtx++
	f.lastRTX = ns
	t := out.push()
	l.fill(t, p, seq, f.outTS)
	t.PictureID = f.pid
	t.TL0PICIDX = f.tl0
	t.Retransmit = true
	if l.cfg.RTXSSRC != 0 && l.cfg.RTXPayloadType != 0 {
		t.RTX, t.OSN = true, seq
		t.SSRC, t.PayloadType, t.SequenceNumber = l.cfg.RTXSSRC, l.cfg.RTXPayloadType, l.rtxSeq
		l.rtxSeq++
	}
	l.stats.Retransmits++
	return true
}

// SetRTXPayloadType changes the RTX payload type (0: retransmit on the
// media SSRC), for a source of another codec behind the subscription.
func (l *LocalTrack) SetRTXPayloadType(pt uint8) { l.cfg.RTXPayloadType = pt }

// RTXSSRC is the SSRC retransmissions go out on (0: the media SSRC).
func (l *LocalTrack) RTXSSRC() uint32 {
	if l.cfg.RTXPayloadType == 0 {
		return 0
	}
	return l.cfg.RTXSSRC
}

// HandleSenderReport translates the source's sender report for encoding
// enc (its NTP time and the RTP timestamp of that instant) into the
// subscriber's timestamps and queues it on out, when enc is what the
// subscriber is being sent. Players need these to synchronise audio and
// video; an SFU that rewrites timestamps must rewrite them too.
func (l *LocalTrack) HandleSenderReport(now time.Time, enc int, ntp uint64, rtpTime uint32, out *Output) bool {
	if l.src == nil || l.paused || l.needKey || !l.started || enc != l.current {
		return false
	}
	out.pushFeedback(Feedback{Owner: l.cfg.Owner, Type: FeedbackSR, SSRC: l.cfg.SSRC, NTP: ntp,
		RTPTime: rtpTime + l.tsOff, Packets: uint32(l.stats.Packets), Octets: uint32(l.stats.Bytes)})
	l.srSent[l.srNext] = srSent{lsr: uint32(ntp >> 16), at: now}
	l.srNext = (l.srNext + 1) % len(l.srSent)
	return true
}

// HandleReceiverReport takes the subscriber's report block about this
// track: loss, jitter, and, when it echoes one of the last sender
// reports sent, the round-trip time (the time since that report less the
// receiver's delay DLSR). It returns the new Reception.
func (l *LocalTrack) HandleReceiverReport(now time.Time, rb ReportBlock) Reception {
	l.stats.ReceiverReports++
	r := Reception{At: now, FractionLost: rb.FractionLost, TotalLost: rb.TotalLost}
	if l.clockRate > 0 {
		r.Jitter = time.Duration(uint64(rb.Jitter) * uint64(time.Second) / uint64(l.clockRate))
	}
	if rb.LSR != 0 {
		for _, s := range l.srSent {
			if s.lsr == rb.LSR && !s.at.IsZero() {
				dlsr := time.Duration(uint64(rb.DLSR) * uint64(time.Second) >> 16)
				if rtt := now.Sub(s.at) - dlsr; rtt >= 0 {
					r.RTT = rtt
				}
				break
			}
		}
	}
	l.recv = r
	return r
}

// Reception is what the subscriber last reported receiving.
func (l *LocalTrack) Reception() Reception { return l.recv }

// HandlePLI passes the subscriber's keyframe request to the source.
func (l *LocalTrack) HandlePLI(now time.Time) {
	l.stats.PLIs++
	if l.src != nil && !l.paused {
		enc := l.current
		if l.needKey {
			enc = l.target
		}
		l.src.RequestKeyframe(now, enc)
	}
}
