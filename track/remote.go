package track

import (
	"errors"
	"time"
)

// Errors and drop reasons of RemoteTrack.
var (
	ErrUnknownEncoding = errors.New("track: packet for an unknown encoding")
	ErrDuplicate       = errors.New("track: duplicate packet")
	ErrTooOld          = errors.New("track: packet older than the history")
	ErrStray           = errors.New("track: packet out of sequence (a stray, or the start of a new numbering)")
	ErrPayloadType     = errors.New("track: unexpected payload type")
)

// Default sizes and intervals of a RemoteTrack (see RemoteConfig).
const (
	DefaultVideoHistoryPackets = 1024
	DefaultVideoHistoryBytes   = 512 << 10
	DefaultAudioHistoryPackets = 128
	DefaultAudioHistoryBytes   = 24 << 10
	DefaultKeyframeMinInterval = 300 * time.Millisecond
	DefaultKeyframeRetry       = time.Second
	DefaultNACKRetry           = 100 * time.Millisecond
	DefaultNACKTries           = 3
)

// nackPending is how many lost packets an encoding tracks for NACKs at
// once; nackMaxGap the largest gap that is NACKed at all (a bigger jump is
// a restart of the publisher's numbering, or loss that a keyframe repairs
// better than retransmissions).
const (
	nackPending = 64
	nackMaxGap  = 128
	// restartRun is how many consecutive packets that fit nowhere in the
	// current numbering (too old, clashing with stored ones, or ahead by
	// more than nackMaxGap) make a new one.
	restartRun = 3
)

// Encoding describes one simulcast encoding of a published track: its RID
// and/or SSRC. Encodings are ordered lowest quality first; the index is
// the spatial layer a LocalTrack selects.
type Encoding struct {
	RID  string
	SSRC uint32 // 0 until known (RID-only simulcast learns it from the first packet)
	// RTXSSRC is the SSRC of its retransmissions (RFC 4588), when the
	// signalling declared one (a=ssrc-group:FID); 0 otherwise.
	RTXSSRC uint32
}

// RemoteConfig configures a RemoteTrack. The zero value of each field
// selects its default.
type RemoteConfig struct {
	// Owner is an opaque id copied into the Feedback the track emits (core:
	// the publisher's endpoint handle).
	Owner uint64
	Info  Info
	// PayloadType is the publisher's payload type for the codec; packets of
	// another type are dropped (0: accept any).
	PayloadType uint8
	// Encodings lists the simulcast encodings; empty means one encoding.
	Encodings []Encoding
	// HistoryPackets and HistoryBytes bound the retransmission history per
	// encoding. Defaults: 1024 packets / 512 KiB for video, 128 / 24 KiB for
	// audio (about two seconds at 2 Mbps).
	HistoryPackets int
	HistoryBytes   int
	// KeyframeMinInterval is the least time between two keyframe requests
	// to the publisher for one encoding, however many subscribers ask
	// (default 300 ms). KeyframeRetry re-sends a request that no keyframe
	// answered (default 1 s).
	KeyframeMinInterval time.Duration
	KeyframeRetry       time.Duration
	// NACK asks the publisher to retransmit packets lost on the way in
	// (when it negotiated "nack"): each lost packet is NACKed at once, then
	// every NACKRetry (default 100 ms) up to NACKTries times (default 3),
	// while it is still within the history. Audio is never NACKed.
	NACK      bool
	NACKRetry time.Duration
	NACKTries int
	// AudioLevelExtID is the negotiated id of the ssrc-audio-level header
	// extension (0: none).
	AudioLevelExtID uint8
	// Relay marks a track fed from another node rather than a publisher:
	// its losses are on links between nodes, a round trip of a
	// millisecond or so, so audio is NACKed too.
	Relay bool
}

// Info describes a published track as the room sees it.
type Info struct {
	Peer     string // the publisher's peer id
	Name     string // unique per publisher
	Kind     Kind
	Codec    Codec
	Priority int    // higher is allocated bandwidth first
	Metadata string // free-form, application defined
	Layers   int    // number of simulcast encodings
}

// RemoteStats are a RemoteTrack's counters.
type RemoteStats struct {
	Packets, Bytes, Keyframes uint64
	// Dropped counts packets not stored: malformed descriptors, duplicates,
	// packets too old or for an unknown encoding, wrong payload type.
	Malformed, Duplicates, TooOld, UnknownEncoding, WrongPayloadType uint64
	KeyframeRequests                                                 uint64 // sent upstream
	// NACKed counts lost packets asked for (each once, however often
	// asked), Recovered those that then arrived, NACKGaveUp those given up.
	NACKed, Recovered, NACKGaveUp uint64
	// Padding counts padding-only packets (bandwidth probes).
	Padding uint64
	// Restarts counts re-anchorings of an encoding's sequence numbering:
	// restartRun consecutive packets too old for it, clashing with stored
	// ones, or ahead by more than a repairable gap (an encoder restart, a
	// gateway, a long outage). Strays counts the packets that clash or
	// jump ahead and are dropped (those before a run among them; too old
	// ones count as TooOld).
	Restarts, Strays uint64
}

// RemoteTrack is one track published into the node: the machine that
// takes the publisher's RTP, parses codec metadata, keeps a bounded history
// per encoding, and coalesces subscribers' keyframe requests into
// rate-limited feedback to the publisher.
type RemoteTrack struct {
	cfg   RemoteConfig
	out   *Output
	encs  []remoteEncoding
	stats RemoteStats
	// closed tracks accept no packets; LocalTracks drop them as sources.
	closed bool
	// deadline is when HandleTimeout next has work (zero: never), kept
	// by retime wherever the timer state changes so that PollTimeout is
	// O(1); timerGen counts its changes, which is how out tells the
	// track's current heap entry from stale ones.
	deadline time.Time
	timerGen uint32
}

// retime recomputes the deadline after a change to the timer state (a
// loss, a repair, a keyframe or a request for one, a timeout, a close)
// and, when it moved, tells out, which files the new one. It walks the
// lost lists, O(encodings × lost), so it is called only where that state
// may have changed: a packet in order on a track with a timer running
// does not pay for it.
func (t *RemoteTrack) retime() {
	at := t.nextDeadline()
	if at.Equal(t.deadline) {
		return
	}
	had := !t.deadline.IsZero()
	t.deadline = at
	t.timerGen++
	if t.out != nil {
		t.out.reschedule(t, had)
	}
}

// nextDeadline is the earliest time HandleTimeout has work: a keyframe
// request to (re)send or a lost packet to NACK (again); zero when none.
func (t *RemoteTrack) nextDeadline() time.Time {
	var at time.Time
	for i := range t.encs {
		e := &t.encs[i]
		if e.kfWanted && (at.IsZero() || e.kfNext.Before(at)) {
			at = e.kfNext
		}
		for j := 0; j < e.nlost; j++ {
			if n := e.lost[j].next; at.IsZero() || n.Before(at) {
				at = n
			}
		}
	}
	return at
}

type remoteEncoding struct {
	Encoding
	hist        history
	highest     uint64 // highest extended seq seen (valid when started)
	started     bool
	lastArrival time.Time

	kfWanted   bool      // a keyframe request is outstanding
	kfUnsent   bool      // it could not be sent: the SSRC was unknown
	kfNext     time.Time // when the next request may be (re)sent
	kfLastSent time.Time
	lastKeyAt  time.Time
	firSeq     uint8
	bitrateBps uint64
	rateBytes  uint64
	// Per temporal layer (a packet without one counts as layer 0).
	bitrateT    [temporalLayers]uint64
	rateBytesT  [temporalLayers]uint64
	rateWindowT time.Time

	// lost are the packets missing from the sequence and not yet given up,
	// oldest first, for NACKs; a fixed array, so loss costs no allocation.
	lost  [nackPending]lostPacket
	nlost int
	// resync: the next packet's gap is not NACKed (Resync).
	resync bool
	// restarts counts re-anchorings of the numbering (LocalTracks
	// forwarding the encoding renumber at a keyframe when it moves);
	// candSeq and candRun are the run of packets that fit no place in the
	// current numbering, which becomes the new one at restartRun.
	restarts uint32
	candSeq  uint16
	candRun  uint8
}

type lostPacket struct {
	ext   uint64
	next  time.Time // when to NACK it (again)
	tries uint8
}

// NewRemoteTrack returns a RemoteTrack writing its feedback into out.
func NewRemoteTrack(cfg RemoteConfig, out *Output) *RemoteTrack {
	if cfg.Info.Kind == 0 {
		cfg.Info.Kind = cfg.Info.Codec.Kind()
	}
	if cfg.HistoryPackets <= 0 {
		cfg.HistoryPackets = DefaultVideoHistoryPackets
		if cfg.Info.Kind == KindAudio {
			cfg.HistoryPackets = DefaultAudioHistoryPackets
		}
	}
	if cfg.HistoryBytes <= 0 {
		cfg.HistoryBytes = DefaultVideoHistoryBytes
		if cfg.Info.Kind == KindAudio {
			cfg.HistoryBytes = DefaultAudioHistoryBytes
		}
	}
	if cfg.KeyframeMinInterval <= 0 {
		cfg.KeyframeMinInterval = DefaultKeyframeMinInterval
	}
	if cfg.KeyframeRetry <= 0 {
		cfg.KeyframeRetry = DefaultKeyframeRetry
	}
	if cfg.NACKRetry <= 0 {
		cfg.NACKRetry = DefaultNACKRetry
	}
	if cfg.NACKTries <= 0 {
		cfg.NACKTries = DefaultNACKTries
	}
	if cfg.Info.Kind == KindAudio && !cfg.Relay {
		cfg.NACK = false
	}
	if len(cfg.Encodings) == 0 {
		cfg.Encodings = []Encoding{{}}
	}
	cfg.Info.Layers = len(cfg.Encodings)
	t := &RemoteTrack{cfg: cfg, out: out, encs: make([]remoteEncoding, len(cfg.Encodings))}
	for i := range t.encs {
		t.encs[i].Encoding = cfg.Encodings[i]
		// The history is allocated when the encoding's first packet arrives,
		// so declared but unused simulcast layers cost nothing.
	}
	return t
}

// Info returns the track's description.
func (t *RemoteTrack) Info() Info { return t.cfg.Info }

// Owner is the owner id given at creation.
func (t *RemoteTrack) Owner() uint64 { return t.cfg.Owner }

// Encodings is the number of simulcast encodings.
func (t *RemoteTrack) Encodings() int { return len(t.encs) }

// Encoding returns encoding i's RID and SSRC.
func (t *RemoteTrack) Encoding(i int) Encoding { return t.encs[i].Encoding }

// EncodingBySSRC returns the index of the encoding with that SSRC.
func (t *RemoteTrack) EncodingBySSRC(ssrc uint32) (int, bool) {
	for i := range t.encs {
		if t.encs[i].SSRC == ssrc && ssrc != 0 {
			return i, true
		}
	}
	return 0, false
}

// EncodingByRID returns the index of the encoding with that RID.
func (t *RemoteTrack) EncodingByRID(rid []byte) (int, bool) {
	for i := range t.encs {
		if t.encs[i].RID != "" && t.encs[i].RID == string(rid) {
			return i, true
		}
	}
	return 0, false
}

// BindSSRC records the SSRC of encoding i, learned from a packet (RID-based
// simulcast or an SSRC the signalling did not declare).
func (t *RemoteTrack) BindSSRC(i int, ssrc uint32) {
	if i >= 0 && i < len(t.encs) {
		t.encs[i].SSRC = ssrc
	}
}

// Stats returns the track's counters.
func (t *RemoteTrack) Stats() RemoteStats { return t.stats }

// Closed reports whether Close was called.
func (t *RemoteTrack) Closed() bool { return t.closed }

// BitrateBps is the measured bitrate of encoding i over the last second.
func (t *RemoteTrack) BitrateBps(i int) uint64 { return t.encs[i].bitrateBps }

// temporalLayers is how many temporal layers bitrates are measured for.
const temporalLayers = 4

// TemporalBitrateBps is the measured bitrate of encoding i's temporal
// layers 0 to tl together over the last measured second: what forwarding
// encoding i up to temporal layer tl costs.
func (t *RemoteTrack) TemporalBitrateBps(i, tl int) uint64 {
	if i < 0 || i >= len(t.encs) {
		return 0
	}
	var sum uint64
	for l := 0; l <= tl && l < temporalLayers; l++ {
		sum += t.encs[i].bitrateT[l]
	}
	return sum
}

// TemporalLayers is how many temporal layers encoding i sent in the last
// measured second (1 for a stream without temporal layering).
func (t *RemoteTrack) TemporalLayers(i int) int {
	if i < 0 || i >= len(t.encs) {
		return 0
	}
	for l := temporalLayers - 1; l > 0; l-- {
		if t.encs[i].bitrateT[l] > 0 {
			return l + 1
		}
	}
	return 1
}

// ActiveWindow is how recently an encoding must have delivered a packet to
// count as active: a simulcast layer the publisher paused stops being
// chosen after this long.
const ActiveWindow = time.Second

// Active reports whether encoding i delivered a packet within ActiveWindow
// before now.
func (t *RemoteTrack) Active(i int, now time.Time) bool {
	if i < 0 || i >= len(t.encs) {
		return false
	}
	e := &t.encs[i]
	return e.started && now.Sub(e.lastArrival) < ActiveWindow
}

// LastKeyframe is when encoding i last delivered a keyframe.
func (t *RemoteTrack) LastKeyframe(i int) time.Time { return t.encs[i].lastKeyAt }

// Packet returns the stored packet of encoding enc with extended sequence
// number ext, for retransmission, or nil when it has left the history.
func (t *RemoteTrack) Packet(enc int, ext uint64) *Packet {
	if enc < 0 || enc >= len(t.encs) {
		return nil
	}
	return t.encs[enc].hist.get(ext)
}

// Resync gives up retransmission of what encoding enc lost so far and
// of the gap before its next packet: for a relay whose path moved, the
// packets of the outage are too late to be worth asking for (its
// subscribers restart at a keyframe).
func (t *RemoteTrack) Resync(enc int) {
	if enc >= 0 && enc < len(t.encs) {
		t.encs[enc].nlost = 0
		t.encs[enc].resync = true
		t.retime()
	}
}

// late reports whether p, stored by t, is older than the newest packet of
// its encoding.
func (t *RemoteTrack) late(p *Packet) bool {
	e := int(p.Encoding)
	return e < len(t.encs) && t.encs[e].started && p.ExtSeq < t.encs[e].highest
}

// PacketBySeq is Packet by the 16-bit sequence number: the stored packet
// of encoding enc numbered seq within the history below the highest seen
// (what a NACK names), or nil.
func (t *RemoteTrack) PacketBySeq(enc int, seq uint16) *Packet {
	if enc < 0 || enc >= len(t.encs) || !t.encs[enc].started {
		return nil
	}
	e := &t.encs[enc]
	back := uint64(uint16(e.highest) - seq)
	if back > e.highest {
		return nil
	}
	return e.hist.get(e.highest - back)
}

// HandleRTP takes a parsed packet of encoding enc (its header view only;
// the payload is borrowed) and returns the stored copy that subscribers
// forward, or an error when the packet is dropped (the track counts it).
// The stored copy's payload lives in the history and stays valid until the
// history wraps, which is far longer than one Handle call.
func (t *RemoteTrack) HandleRTP(now time.Time, p *Packet, enc int) (*Packet, error) {
	if enc < 0 || enc >= len(t.encs) || t.closed {
		t.stats.UnknownEncoding++
		return nil, ErrUnknownEncoding
	}
	if t.cfg.PayloadType != 0 && p.PayloadType != t.cfg.PayloadType {
		t.stats.WrongPayloadType++
		return nil, ErrPayloadType
	}
	e := &t.encs[enc]
	if e.hist.slots == nil {
		e.hist = newHistory(t.cfg.HistoryPackets, t.cfg.HistoryBytes)
	}
	// Unwrap the sequence number around the highest one seen.
	var ext uint64
	restart := false
	if !e.started {
		ext = 1<<32 + uint64(p.SequenceNumber) // room to go back before the first
	} else {
		delta := int64(int16(p.SequenceNumber - uint16(e.highest)))
		ext = uint64(int64(e.highest) + delta)
		old := delta <= 0 && e.highest-ext >= uint64(len(e.hist.slots))
		var have *Packet
		if delta <= 0 && !old {
			have = e.hist.get(ext)
		}
		if have != nil && have.Timestamp == p.Timestamp {
			t.stats.Duplicates++
			return nil, ErrDuplicate
		}
		if old || have != nil || delta > nackMaxGap {
			// Too old for the history, a different packet under a number
			// already taken, or a jump ahead too far to be loss worth
			// repairing: not this numbering's. A run of them, each
			// following the last, with no packet of the current numbering
			// in between, is a new numbering (an encoder restart, a
			// gateway, a jump beyond half the sequence space, a long
			// outage); anything less is a stray and dropped.
			if e.candRun > 0 && p.SequenceNumber == e.candSeq+1 {
				e.candRun++
			} else {
				e.candRun = 1
			}
			e.candSeq = p.SequenceNumber
			if e.candRun < restartRun {
				if old {
					t.stats.TooOld++
					return nil, ErrTooOld
				}
				t.stats.Strays++
				return nil, ErrStray
			}
			if delta <= 0 {
				// Place the new numbering past everything the history
				// holds, keeping the low 16 bits.
				base := e.highest + uint64(len(e.hist.slots)) + 1
				ext = base + uint64(p.SequenceNumber-uint16(base))
			}
			restart = true
		}
	}
	if len(p.Payload) == 0 {
		// Padding only: no media, but it takes a sequence number, which
		// subscribers must see closed rather than lost.
		p.Meta = Meta{Spatial: -1, Temporal: -1, PictureID: -1, TL0PICIDX: -1}
		t.stats.Padding++
	} else if err := p.ParseMeta(t.cfg.Info.Codec); err != nil {
		t.stats.Malformed++
		return nil, err
	}
	p.ExtSeq = ext
	p.Encoding = uint8(enc)
	if t.cfg.AudioLevelExtID != 0 {
		if lvl, voice, ok := AudioLevel(p.Extension(t.cfg.AudioLevelExtID)); ok {
			p.AudioLevel, p.Voice = int8(lvl), voice
		}
	}
	stored := e.hist.put(p)
	if stored == nil {
		t.stats.Malformed++
		return nil, ErrShortPacket
	}
	prev, wasStarted := e.highest, e.started
	// timed: the timer state changed (a loss, a repair, a keyframe
	// request sent or answered), so the deadline needs recomputing.
	timed := false
	if !e.started || ext > e.highest {
		e.highest = ext
		e.started = true
		e.candRun = 0
	}
	if restart {
		// Nothing of the old numbering is worth asking for any more, and
		// the jump is no loss.
		e.restarts++
		t.stats.Restarts++
		e.nlost = 0
		e.resync = true
		timed = true
	}
	if wasStarted && t.cfg.NACK && e.resync && ext > prev {
		e.resync = false
	} else if wasStarted && t.cfg.NACK {
		if ext > prev+1 {
			timed = t.noteLost(now, e, prev+1, ext)
		} else if ext < prev && e.nlost > 0 && e.recovered(ext) {
			t.stats.Recovered++
			timed = true
		}
	}
	e.lastArrival = now
	if e.kfUnsent && e.kfWanted { // the SSRC is known now: ask at once
		t.sendKeyframeRequest(now, enc)
		timed = true
	}
	t.stats.Packets++
	t.stats.Bytes += uint64(len(p.Payload))
	e.rateBytes += uint64(len(p.Payload))
	tl := max(0, min(int(p.Meta.Temporal), temporalLayers-1))
	e.rateBytesT[tl] += uint64(len(p.Payload))
	if d := now.Sub(e.rateWindowT); d >= time.Second || e.rateWindowT.IsZero() {
		if !e.rateWindowT.IsZero() {
			e.bitrateBps = e.rateBytes * 8 * uint64(time.Second) / uint64(d)
			for i, b := range e.rateBytesT {
				e.bitrateT[i] = b * 8 * uint64(time.Second) / uint64(d)
			}
		}
		e.rateBytes, e.rateWindowT = 0, now
		e.rateBytesT = [temporalLayers]uint64{}
	}
	if stored.Meta.Keyframe {
		t.stats.Keyframes++
		e.lastKeyAt = now
		timed = timed || e.kfWanted
		e.kfWanted = false
	}
	if timed {
		t.retime()
	}
	return stored, nil
}

// noteLost records the packets [from, to) as lost and NACKs them at once,
// reporting whether it did. A gap too big to be worth retransmitting is
// ignored; when the list is full, the oldest entries make room.
func (t *RemoteTrack) noteLost(now time.Time, e *remoteEncoding, from, to uint64) bool {
	if to-from > nackMaxGap || to-from > uint64(len(e.hist.slots)) {
		return false
	}
	for s := from; s < to; s++ {
		if e.nlost == len(e.lost) {
			t.stats.NACKGaveUp++
			copy(e.lost[:], e.lost[1:])
			e.nlost--
		}
		e.lost[e.nlost] = lostPacket{ext: s, next: now}
		e.nlost++
		t.stats.NACKed++
	}
	t.sendNACKs(now, e)
	return true
}

// recovered removes ext from the lost list, reporting whether it was there.
func (e *remoteEncoding) recovered(ext uint64) bool {
	for i := 0; i < e.nlost; i++ {
		if e.lost[i].ext == ext {
			copy(e.lost[i:e.nlost], e.lost[i+1:e.nlost])
			e.nlost--
			return true
		}
	}
	return false
}

// sendNACKs NACKs the lost packets that are due, packing runs of them into
// one PID+BLP item each, and drops those asked for often enough or gone
// from the history's reach.
func (t *RemoteTrack) sendNACKs(now time.Time, e *remoteEncoding) {
	kept := 0
	var item Feedback
	var itemExt uint64 // the extended seq of item's PID; 0: no item open
	for i := 0; i < e.nlost; i++ {
		l := e.lost[i]
		if int(l.tries) >= t.cfg.NACKTries || e.highest-l.ext >= uint64(len(e.hist.slots)) {
			t.stats.NACKGaveUp++
			continue
		}
		if !l.next.After(now) && e.SSRC != 0 {
			// The list is in ascending order: an item covers its PID and
			// the 16 packets after it.
			if itemExt != 0 && l.ext-itemExt > 16 {
				t.pushFeedback(item)
				itemExt = 0
			}
			if itemExt == 0 {
				item = Feedback{Owner: t.cfg.Owner, Type: FeedbackNACK, SSRC: e.SSRC, NACKPID: uint16(l.ext)}
				itemExt = l.ext
			} else {
				item.NACKBLP |= 1 << (l.ext - itemExt - 1)
			}
			l.tries++
			l.next = now.Add(t.cfg.NACKRetry)
		}
		e.lost[kept] = l
		kept++
	}
	if itemExt != 0 {
		t.pushFeedback(item)
	}
	e.nlost = kept
}

func (t *RemoteTrack) pushFeedback(f Feedback) {
	if t.out != nil {
		t.out.pushFeedback(f)
	}
}

// RequestKeyframe asks the publisher for a keyframe on encoding enc. Many
// requests coalesce into one; requests are spaced by KeyframeMinInterval
// and repeated every KeyframeRetry until a keyframe arrives.
func (t *RemoteTrack) RequestKeyframe(now time.Time, enc int) {
	if enc < 0 || enc >= len(t.encs) || t.closed || t.cfg.Info.Kind == KindAudio {
		return
	}
	e := &t.encs[enc]
	if e.kfWanted {
		return
	}
	e.kfWanted = true
	if next := e.kfLastSent.Add(t.cfg.KeyframeMinInterval); e.kfLastSent.IsZero() || !next.After(now) {
		t.sendKeyframeRequest(now, enc)
	} else {
		e.kfNext = next
	}
	t.retime()
}

func (t *RemoteTrack) sendKeyframeRequest(now time.Time, enc int) {
	e := &t.encs[enc]
	if e.SSRC == 0 { // not yet known: sent with the encoding's first packet
		e.kfUnsent = true
		e.kfNext = now.Add(t.cfg.KeyframeRetry)
		return
	}
	e.kfUnsent = false
	e.kfLastSent = now
	e.kfNext = now.Add(t.cfg.KeyframeRetry)
	t.stats.KeyframeRequests++
	e.firSeq++
	if t.out != nil {
		t.out.pushFeedback(Feedback{Owner: t.cfg.Owner, Type: FeedbackPLI, SSRC: e.SSRC, FIRSeq: e.firSeq})
	}
}

// HandleTimeout sends the keyframe requests and NACKs that are due.
func (t *RemoteTrack) HandleTimeout(now time.Time) {
	for i := range t.encs {
		e := &t.encs[i]
		if e.kfWanted && !e.kfNext.After(now) {
			t.sendKeyframeRequest(now, i)
		}
		if e.nlost > 0 {
			t.sendNACKs(now, e)
		}
	}
	t.retime()
}

// PollTimeout is when HandleTimeout next has work: the deadline kept by
// the calls that change it, so asking is O(1).
func (t *RemoteTrack) PollTimeout() (time.Time, bool) {
	return t.deadline, !t.deadline.IsZero()
}

// Close ends the track: it drops further packets and releases its history.
func (t *RemoteTrack) Close() {
	t.closed = true
	for i := range t.encs {
		t.encs[i].hist = history{}
		t.encs[i].kfWanted = false
		t.encs[i].nlost = 0
	}
	t.retime()
}
