package track

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// ErrShortBuffer is returned by the marshal functions when buf cannot hold
// the packet.
var ErrShortBuffer = errors.New("track: buffer too short for packet")

// Transmit is one RTP packet to send to a subscriber: the rewritten header
// fields, and the payload still in the source RemoteTrack's history. It is
// a small value that points at stored bytes; the driver marshals it into
// its send buffer (MarshalTo), which is the one copy per egress packet that
// SRTP needs anyway. Payload stays valid until the next Handle call on the
// machine that produced it.
type Transmit struct {
	// Owner is the owner id the LocalTrack was created with (core: the
	// subscriber endpoint's handle).
	Owner uint64

	SSRC           uint32
	SequenceNumber uint16
	Timestamp      uint32
	PayloadType    uint8
	Marker         bool
	// Payload is the source payload, unmodified: the picture-id rewrite
	// below is applied while marshalling, because one stored payload serves
	// every subscriber.
	Payload []byte

	// Keyframe is set on the first packet of a keyframe.
	Keyframe bool
	// Retransmit marks an answer to a NACK. RTX marks one sent as RFC
	// 4588 RTX: SSRC, PayloadType and SequenceNumber are the RTX
	// stream's, and OSN, the original sequence number, is written before
	// the payload.
	Retransmit bool
	RTX        bool
	OSN        uint16
	// AudioLevel is the source's RFC 6464 level (-1: none), Voice its V flag.
	AudioLevel int8
	Voice      bool

	// PictureID and TL0PICIDX, when >= 0, replace the values at the given
	// payload offsets (VP8/VP9 payload descriptors).
	PictureID       int32
	PictureIDBits   uint8
	PictureIDOffset uint8
	TL0PICIDX       int16
	TL0PICIDXOffset uint8

	// The header extensions the subscriber negotiated, stamped on the
	// way out by its endpoint (an id of 0: not sent): the transport-wide
	// sequence number its bandwidth estimation is fed by, abs-send-time
	// (24-bit 6.18 fixed-point seconds), and the audio level (AudioLevel,
	// Voice) on audio.
	TransportSeqExt uint8
	TransportSeq    uint16
	AbsSendTimeExt  uint8
	AbsSendTime     uint32
	AudioLevelExt   uint8
}

// HeaderExtension is one RTP header extension for MarshalTo.
type HeaderExtension struct {
	ID   uint8
	Data []byte
}

// MarshalSize is the marshalled size with the given extensions.
func (t *Transmit) MarshalSize(exts []HeaderExtension) int {
	return 12 + t.extBlockSize(exts) + t.osnSize() + len(t.Payload)
}

// osnSize is the room the RTX original sequence number takes.
func (t *Transmit) osnSize() int {
	if t.RTX {
		return 2
	}
	return 0
}

// ownExt returns the i-th extension stamped on t (i in 0..2), its value
// written into v[:n]; id is 0 for one not stamped.
func (t *Transmit) ownExt(i int, v *[3]byte) (id uint8, n int) {
	switch i {
	case 0:
		if t.TransportSeqExt != 0 {
			binary.BigEndian.PutUint16(v[:], t.TransportSeq)
			return t.TransportSeqExt, 2
		}
	case 1:
		if t.AbsSendTimeExt != 0 {
			v[0], v[1], v[2] = byte(t.AbsSendTime>>16), byte(t.AbsSendTime>>8), byte(t.AbsSendTime)
			return t.AbsSendTimeExt, 3
		}
	case 2:
		if t.AudioLevelExt != 0 && t.AudioLevel >= 0 {
			v[0] = byte(t.AudioLevel) & 0x7f
			if t.Voice {
				v[0] |= 0x80
			}
			return t.AudioLevelExt, 1
		}
	}
	return 0, 0
}

// ownExtSlots is how many kinds of extension a Transmit can be stamped
// with (ownExt's i).
const ownExtSlots = 3

// AbsSendTime is t in the abs-send-time extension's 24-bit 6.18
// fixed-point seconds (wrapping every 64 s).
func AbsSendTime(t time.Time) uint32 {
	ns := uint64(t.UnixNano()) % uint64(64*time.Second)
	return uint32((ns << 18) / uint64(time.Second))
}

// MarshalTo writes the RTP packet into buf with the given header
// extensions (one-byte form when every id is 1..14 and every value is 1..16
// bytes, two-byte form otherwise) and returns its length. It never
// allocates.
func (t *Transmit) MarshalTo(buf []byte, exts []HeaderExtension) (int, error) {
	ext, one := t.extLayout(exts)
	n := 12 + ext + t.osnSize() + len(t.Payload)
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	buf[0] = 0x80
	buf[1] = t.PayloadType & 0x7f
	if t.Marker {
		buf[1] |= 0x80
	}
	binary.BigEndian.PutUint16(buf[2:], t.SequenceNumber)
	binary.BigEndian.PutUint32(buf[4:], t.Timestamp)
	binary.BigEndian.PutUint32(buf[8:], t.SSRC)
	off := 12
	if ext > 0 {
		buf[0] |= 0x10
		off += t.writeExtBlock(buf[off:], exts, ext, one)
	}
	if t.RTX {
		binary.BigEndian.PutUint16(buf[off:], t.OSN)
		off += 2
	}
	copy(buf[off:], t.Payload)
	p := buf[off:n]
	if t.PictureID >= 0 && int(t.PictureIDOffset) < len(p) {
		o := int(t.PictureIDOffset)
		if t.PictureIDBits == 15 && o+1 < len(p) {
			p[o] = 0x80 | byte(t.PictureID>>8)&0x7f
			p[o+1] = byte(t.PictureID)
		} else if t.PictureIDBits == 7 {
			p[o] = byte(t.PictureID) & 0x7f
		}
	}
	if t.TL0PICIDX >= 0 && int(t.TL0PICIDXOffset) < len(p) {
		p[t.TL0PICIDXOffset] = byte(t.TL0PICIDX)
	}
	return n, nil
}

// extLayout is the size of the extension block holding t's extensions
// and exts (0 for none), and whether they all fit the one-byte form
// (RFC 8285: ids 1-14, 1-16 bytes; else the two-byte form).
func (t *Transmit) extLayout(exts []HeaderExtension) (size int, one bool) {
	one = true
	n, count := 0, len(exts)
	var v [3]byte
	for i := range ownExtSlots {
		if id, l := t.ownExt(i, &v); id != 0 {
			one = one && id <= 14
			n += l
			count++
		}
	}
	if count == 0 {
		return 0, true
	}
	for _, e := range exts {
		one = one && e.ID != 0 && e.ID <= 14 && len(e.Data) > 0 && len(e.Data) <= 16
		n += len(e.Data)
	}
	per := 2
	if one {
		per = 1
	}
	return 4 + (n+per*count+3)/4*4, one
}

// extBlockSize is the size of the extension block (0 for none).
func (t *Transmit) extBlockSize(exts []HeaderExtension) int {
	size, _ := t.extLayout(exts)
	return size
}

// writeExtBlock writes t's extensions then exts as one block, in the
// one-byte form when every id and length allows it, else the two-byte.
func (t *Transmit) writeExtBlock(buf []byte, exts []HeaderExtension, size int, one bool) int {
	if one {
		binary.BigEndian.PutUint16(buf, 0xBEDE)
	} else {
		binary.BigEndian.PutUint16(buf, 0x1000)
	}
	binary.BigEndian.PutUint16(buf[2:], uint16((size-4)/4))
	i := 4
	put := func(id uint8, d []byte) {
		if one {
			buf[i] = id<<4 | byte(len(d)-1)
			i++
		} else {
			buf[i], buf[i+1] = id, byte(len(d))
			i += 2
		}
		i += copy(buf[i:], d)
	}
	var v [3]byte
	for k := range ownExtSlots {
		if id, l := t.ownExt(k, &v); id != 0 {
			put(id, v[:l])
		}
	}
	for _, e := range exts {
		put(e.ID, e.Data)
	}
	for ; i < size; i++ {
		buf[i] = 0
	}
	return size
}

// FeedbackType is the kind of a Feedback packet.
type FeedbackType uint8

// Feedback types.
const (
	FeedbackPLI FeedbackType = iota + 1 // picture loss indication (RFC 4585), to a publisher
	FeedbackFIR                         // full intra request (RFC 5104), to a publisher
	// FeedbackSR is a sender report (RFC 3550) to a subscriber: the
	// publisher's NTP↔RTP mapping translated into the subscriber's
	// timestamps, which is what lets a player synchronise audio and video.
	FeedbackSR
	// FeedbackNACK is a generic NACK (RFC 4585) to a publisher for packets
	// lost on the way in: NACKPID and the bitmask NACKBLP of the 16 after.
	FeedbackNACK
)

// Feedback is an RTCP packet to send: a keyframe request or a NACK to a
// publisher, or a sender report to a subscriber.
type Feedback struct {
	// Owner is the endpoint it goes to: the RemoteTrack's owner for a
	// keyframe request, the LocalTrack's for a sender report.
	Owner uint64
	Type  FeedbackType
	// SSRC is the media SSRC a request is about, or the sending SSRC of a
	// sender report.
	SSRC uint32
	// FIRSeq is the FIR command sequence number for FeedbackFIR.
	FIRSeq uint8
	// NACKPID and NACKBLP are a FeedbackNACK's lost packets (RFC 4585
	// section 6.2.1): NACKPID, and NACKPID+i+1 for each bit i set.
	NACKPID, NACKBLP uint16
	// NTP, RTPTime, Packets and Octets are the sender report's fields.
	NTP             uint64
	RTPTime         uint32
	Packets, Octets uint32
}

// Output is what the track machines of one node share: the queues they
// write transmits and feedback into, and the deadlines of the
// RemoteTracks with a timer running. Sharing it lets fan-out write
// straight into the node's queue, and lets the node find its next
// deadline without visiting every track. Its slices are reused, so the
// steady state does not allocate. The zero value is ready to use.
type Output struct {
	tx       []Transmit
	txHead   int
	fb       []Feedback
	fbHead   int
	txPushed uint64
	// The tracks' deadlines: a min-heap with lazy deletion (each track
	// with a deadline has one live entry, and any number of stale ones
	// until they reach the top or the heap is rebuilt), how many tracks
	// have a deadline, and HandleTimeout's reused list of due tracks.
	timers     []timerEntry
	timersLive int
	due        []*RemoteTrack
}

// timerEntry is a track's deadline in the Output's heap. It is stale once
// the track's deadline has changed (gen differs): entries are never
// removed from the middle, only skipped when they reach the top.
type timerEntry struct {
	at  time.Time
	t   *RemoteTrack
	gen uint32
}

func (e *timerEntry) live() bool { return e.t.timerGen == e.gen }

// reschedule files t's new deadline (RemoteTrack.retime calls it after
// bumping timerGen, which makes t's previous entry stale); had is whether
// t had a deadline before.
func (o *Output) reschedule(t *RemoteTrack, had bool) {
	has := !t.deadline.IsZero()
	switch {
	case has && !had:
		o.timersLive++
	case had && !has:
		o.timersLive--
	}
	if has {
		o.pushTimer(timerEntry{at: t.deadline, t: t, gen: t.timerGen})
	}
	// Bound the stale entries: a busy track leaves one per change.
	if len(o.timers) > 2*o.timersLive+64 {
		o.compact()
	}
}

// compact rebuilds the heap from its live entries (O(n)), so stale ones
// neither grow it without bound nor keep closed tracks reachable.
func (o *Output) compact() {
	kept := o.timers[:0]
	for _, e := range o.timers {
		if e.live() {
			kept = append(kept, e)
		}
	}
	clear(o.timers[len(kept):])
	o.timers = kept
	for i := len(kept)/2 - 1; i >= 0; i-- {
		o.siftDown(i)
	}
}

// The heap is written out on a slice of structs rather than with
// container/heap: its Push and Pop take and return an interface value,
// which boxes every entry (an allocation per packet that moves a
// deadline), and every comparison and swap would be a dynamic call.

func (o *Output) pushTimer(e timerEntry) {
	o.timers = append(o.timers, e)
	i := len(o.timers) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !o.timers[i].at.Before(o.timers[p].at) {
			break
		}
		o.timers[i], o.timers[p] = o.timers[p], o.timers[i]
		i = p
	}
}

func (o *Output) popTimer() timerEntry {
	e := o.timers[0]
	n := len(o.timers) - 1
	o.timers[0] = o.timers[n]
	o.timers[n] = timerEntry{}
	o.timers = o.timers[:n]
	if n > 0 {
		o.siftDown(0)
	}
	return e
}

func (o *Output) siftDown(i int) {
	n := len(o.timers)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && o.timers[r].at.Before(o.timers[l].at) {
			m = r
		}
		if !o.timers[m].at.Before(o.timers[i].at) {
			return
		}
		o.timers[i], o.timers[m] = o.timers[m], o.timers[i]
		i = m
	}
}

// HandleTimeout runs the timers that are due: each due track's
// HandleTimeout once, and no other track's.
func (o *Output) HandleTimeout(now time.Time) {
	// Take the due tracks off the heap first, then run them: a track
	// whose deadline stays due (a NACK waiting for an SSRC) is run once
	// per call rather than forever.
	due := o.due[:0]
	for len(o.timers) > 0 && !o.timers[0].at.After(now) {
		if e := o.popTimer(); e.live() {
			due = append(due, e.t)
		}
	}
	for i, t := range due {
		gen := t.timerGen
		t.HandleTimeout(now)
		if t.timerGen == gen && !t.deadline.IsZero() {
			// The deadline did not move, so retime filed nothing:
			// put back the entry just taken.
			o.pushTimer(timerEntry{at: t.deadline, t: t, gen: gen})
		}
		due[i] = nil
	}
	o.due = due[:0]
}

// PollTimeout is the earliest deadline of the tracks' timers: the top of
// the heap once stale entries are off it, amortized O(log n).
func (o *Output) PollTimeout() (time.Time, bool) {
	for len(o.timers) > 0 && !o.timers[0].live() {
		o.popTimer()
	}
	if len(o.timers) == 0 {
		return time.Time{}, false
	}
	return o.timers[0].at, true
}

// Timers is the number of tracks with a timer registered, that is with a
// deadline.
func (o *Output) Timers() int { return o.timersLive }

// PendingFeedback is the number of feedback requests not yet polled.
func (o *Output) PendingFeedback() int { return len(o.fb) - o.fbHead }

// push appends a transmit slot and returns it for filling.
func (o *Output) push() *Transmit {
	if o.txHead == len(o.tx) && o.txHead > 0 {
		o.tx, o.txHead = o.tx[:0], 0
	}
	o.tx = append(o.tx, Transmit{})
	o.txPushed++
	return &o.tx[len(o.tx)-1]
}

// pushFeedback queues a feedback request.
func (o *Output) pushFeedback(f Feedback) {
	if o.fbHead == len(o.fb) && o.fbHead > 0 {
		o.fb, o.fbHead = o.fb[:0], 0
	}
	o.fb = append(o.fb, f)
}

// PollTransmit returns the oldest queued transmit.
func (o *Output) PollTransmit() (Transmit, bool) {
	if o.txHead == len(o.tx) {
		return Transmit{}, false
	}
	t := o.tx[o.txHead]
	o.txHead++
	if o.txHead == len(o.tx) {
		o.tx, o.txHead = o.tx[:0], 0
	}
	return t, true
}

// PollFeedback returns the oldest queued feedback request.
func (o *Output) PollFeedback() (Feedback, bool) {
	if o.fbHead == len(o.fb) {
		return Feedback{}, false
	}
	f := o.fb[o.fbHead]
	o.fbHead++
	if o.fbHead == len(o.fb) {
		o.fb, o.fbHead = o.fb[:0], 0
	}
	return f, true
}

// Discard drops the queued transmits and feedback for owner (a peer that
// is gone) and the timers of closed tracks, so nothing of it is polled
// later or kept alive by the queues.
func (o *Output) Discard(owner uint64) {
	// slices.DeleteFunc zeroes what it removes, so nothing stays reachable.
	o.tx = o.tx[:o.txHead+len(slices.DeleteFunc(o.tx[o.txHead:], func(t Transmit) bool { return t.Owner == owner }))]
	o.fb = o.fb[:o.fbHead+len(slices.DeleteFunc(o.fb[o.fbHead:], func(f Feedback) bool { return f.Owner == owner }))]
	o.compact() // drops the stale entries, those of closed tracks among them
}

// PendingTransmits is the number of transmits not yet polled.
func (o *Output) PendingTransmits() int { return len(o.tx) - o.txHead }

// Transmitted is the number of transmits ever queued.
func (o *Output) Transmitted() uint64 { return o.txPushed }
