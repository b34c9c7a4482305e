package track

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"time"
)

// This file reads and writes transport-wide congestion control feedback
// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1), the RTPFB
// packet with which a receiver reports, for a range of transport-wide
// sequence numbers, which packets arrived and when. The layout after the
// feedback header (sender and media SSRC) is
//
//	base sequence number (16) | packet status count (16)
//	reference time (24, signed, 64 ms) | feedback packet count (8)
//	packet status chunks, 16 bits each, until the count is covered
//	receive deltas, one per received packet: 8 bits unsigned or
//	16 bits signed, in 250 µs units
//	zero padding to a 32-bit boundary
//
// A chunk is a run-length chunk (T=0: one 2-bit symbol repeated up to 8191
// times) or a status vector (T=1) of fourteen 1-bit symbols (S=0) or seven
// 2-bit symbols (S=1). Symbol 0 is "not received", 1 "received, 1-byte
// delta", 2 "received, 2-byte delta" (a 1-bit vector has only 0 and 1); 3
// is reserved. The symbol value is thus the size in bytes of the packet's
// delta, which the code below uses throughout.

// Errors for a malformed transport-wide feedback, reported by
// TransportCC.Err. Like the rest of malformed RTCP they mean: drop the
// feedback and count it.
var (
	ErrTCCShort    = errors.New("track: transport-cc feedback shorter than its header")
	ErrTCCEmpty    = errors.New("track: transport-cc feedback reports no packets")
	ErrTCCChunks   = errors.New("track: transport-cc status chunks end before the status count")
	ErrTCCSymbol   = errors.New("track: transport-cc status uses the reserved symbol")
	ErrTCCDeltas   = errors.New("track: transport-cc receive deltas truncated")
	ErrTCCTrailing = errors.New("track: transport-cc feedback has data after its deltas")
)

const (
	// TCCDeltaUnit is the unit of receive deltas.
	TCCDeltaUnit = 250 * time.Microsecond
	// TCCRefTimeUnit is the unit of the reference time.
	TCCRefTimeUnit = 64 * time.Millisecond

	tccHeaderLen   = 16   // after the common header: SSRCs, base, count, ref time
	tccRunLenMax   = 8191 // 13-bit run length
	tccOneBitCap   = 14
	tccTwoBitCap   = 7
	tccSymLost     = 0
	tccSymSmall    = 1
	tccSymLarge    = 2
	tccSymReserved = 3
)

// IsTransportCC reports whether the packet is a transport-wide congestion
// control feedback, by type and format alone: a short or malformed one is
// still one, so that TransportCC can say what is wrong with it.
func (p *RTCPPacket) IsTransportCC() bool {
	return p.Type == RTCPTypeRTPFB && p.Count == RTCPFormatTWCC
}

// TransportCC is a view of a transport-wide congestion control feedback
// that walks its packet statuses in place, without allocating. Get one
// from RTCPPacket.TransportCC and drain Next:
//
//	fb, ok := p.TransportCC()
//	if !ok { ... another kind of packet ... }
//	if fb.Err() != nil { ... drop and count ... }
//	for {
//		seq, pkt, ok := fb.Next()
//		if !ok { break }
//		...
//	}
//
// The whole feedback is validated before the first status is yielded, so
// a malformed one yields nothing rather than a prefix that a bandwidth
// estimator would half apply. The view aliases the RTCP buffer; it is a
// plain value, so a copy taken before Next walks the statuses again.
type TransportCC struct {
	// BaseSeq is the transport-wide sequence number of the first status.
	BaseSeq uint16
	// Count is the number of statuses (packet status count): Next yields
	// BaseSeq, BaseSeq+1, ... BaseSeq+Count-1, wrapping at 65535.
	Count uint16
	// RefTime is the reference time: the 24-bit signed field times 64 ms,
	// on the receiver's clock. It wraps (every 2^24 × 64 ms, about 12.4
	// days), so compare it only with that of feedbacks close in time.
	RefTime time.Duration
	// FbCount is the feedback packet count, incremented by the receiver
	// for each feedback sent: a gap means feedbacks were lost.
	FbCount uint8

	err    error
	chunks []byte // status chunks not yet loaded
	deltas []byte // receive deltas not yet read
	at     time.Duration
	seq    uint16 // next sequence number
	left   uint16 // statuses of chunks not yet loaded
	inChk  uint16 // statuses left in the loaded chunk
	sym    uint16 // loaded chunk: its symbols, the next one in the top bits
	shift  uint8  // sym >> shift is the next symbol
	step   uint8  // bits to shift sym by per status: 0 for a run
}

// TCCPacket is the status of one packet in a transport-wide feedback.
type TCCPacket struct {
	// Received is whether the packet arrived.
	Received bool
	// Arrival is when it arrived, on the receiver's clock in the time base
	// of the feedback's reference time. It is zero when not received.
	Arrival time.Duration
}

// TransportCC returns a view of a transport-wide congestion control
// feedback; ok is false when the packet is another kind. A malformed
// feedback is still returned with ok, its Err set and no statuses; the
// header fields are filled whenever the 16-byte header is present.
//
// Validation follows libwebrtc's parser (TransportFeedback::Parse) where
// the draft is silent: an empty feedback (count 0) and the reserved
// symbol within the count are errors, run-length chunks of length 0 are
// allowed, symbols of the last chunk beyond the count are ignored. It is
// stricter in two places. Missing deltas are an error, where libwebrtc
// reads such a packet as a feedback without timestamps (its own
// extension, useless to a delay-based estimator). Data after the deltas
// is tolerated only as up to 3 zero bytes of alignment (RTCP padding is
// removed by ReadRTCP already), where libwebrtc ignores any.
func (p *RTCPPacket) TransportCC() (fb TransportCC, ok bool) {
	if !p.IsTransportCC() {
		return TransportCC{}, false
	}
	b := p.Body
	if len(b) < tccHeaderLen {
		fb.err = ErrTCCShort
		return fb, true
	}
	fb.BaseSeq = binary.BigEndian.Uint16(b[8:])
	fb.Count = binary.BigEndian.Uint16(b[10:])
	ref := int32(binary.BigEndian.Uint32(b[12:])) >> 8 // sign-extend 24 bits
	fb.RefTime = time.Duration(ref) * TCCRefTimeUnit
	fb.FbCount = b[15]
	if fb.Count == 0 {
		fb.err = ErrTCCEmpty
		return fb, true
	}

	// Walk the chunks once to find where they end and how many bytes of
	// deltas they call for.
	b = b[tccHeaderLen:]
	off, deltaLen := 0, 0
	for left := int(fb.Count); left > 0; {
		if len(b) < off+2 {
			fb.err = ErrTCCChunks
			return fb, true
		}
		n, d, valid := tccChunkSize(binary.BigEndian.Uint16(b[off:]), left)
		if !valid {
			fb.err = ErrTCCSymbol
			return fb, true
		}
		off += 2
		left -= n
		deltaLen += d
	}
	rest := b[off:]
	if len(rest) < deltaLen {
		fb.err = ErrTCCDeltas
		return fb, true
	}
	if tail := rest[deltaLen:]; len(tail) > 3 || !allZero(tail) {
		fb.err = ErrTCCTrailing
		return fb, true
	}
	fb.chunks = b[:off]
	fb.deltas = rest[:deltaLen]
	fb.at = fb.RefTime
	fb.seq = fb.BaseSeq
	fb.left = fb.Count
	return fb, true
}

// tccChunkSize returns how many of the left statuses chunk c covers and
// how many bytes of deltas they have; valid is false when one of them is
// the reserved symbol.
func tccChunkSize(c uint16, left int) (n, deltaBytes int, valid bool) {
	switch {
	case c&0x8000 == 0: // run length
		sym := int(c >> 13 & 3)
		n = min(int(c&0x1fff), left)
		return n, n * sym, sym != tccSymReserved || n == 0
	case c&0x4000 == 0: // fourteen 1-bit symbols
		n = min(tccOneBitCap, left)
		return n, bits.OnesCount16(c & 0x3fff >> (tccOneBitCap - n)), true
	default: // seven 2-bit symbols
		n = min(tccTwoBitCap, left)
		for i := range n {
			sym := int(c >> (12 - 2*i) & 3)
			if sym == tccSymReserved {
				return 0, 0, false
			}
			deltaBytes += sym
		}
		return n, deltaBytes, true
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// Err is why the feedback is malformed (one of the ErrTCC errors), or nil.
// A malformed feedback yields no statuses.
func (fb *TransportCC) Err() error { return fb.err }

// Next returns the next packet status, in sequence order from BaseSeq;
// ok is false once Count statuses have been returned (or at once for a
// malformed feedback). A received packet's arrival is RefTime plus the
// running sum of the deltas so far, which can decrease: deltas are signed
// and a reordered packet arrives before the one sent earlier.
func (fb *TransportCC) Next() (seq uint16, pkt TCCPacket, ok bool) {
	if fb.inChk == 0 && !fb.load() {
		return 0, TCCPacket{}, false
	}
	sym := fb.sym >> fb.shift
	fb.sym <<= fb.step
	fb.inChk--
	seq = fb.seq
	fb.seq++
	switch {
	case sym == tccSymLost:
		return seq, TCCPacket{}, true
	case sym == tccSymSmall && len(fb.deltas) >= 1:
		fb.at += time.Duration(fb.deltas[0]) * TCCDeltaUnit
		fb.deltas = fb.deltas[1:]
	case sym == tccSymLarge && len(fb.deltas) >= 2:
		fb.at += time.Duration(int16(binary.BigEndian.Uint16(fb.deltas))) * TCCDeltaUnit
		fb.deltas = fb.deltas[2:]
	default:
		// Validation makes this unreachable: it is the guard that keeps
		// a view in an impossible state from reading out of bounds.
		fb.left, fb.inChk = 0, 0
		return 0, TCCPacket{}, false
	}
	return seq, TCCPacket{Received: true, Arrival: fb.at}, true
}

// load loads the next chunk, or reports the end. Run-length chunks keep
// their symbol in the top 2 bits and do not shift; vectors shift by one
// symbol per status.
func (fb *TransportCC) load() bool {
	for fb.inChk == 0 {
		if fb.left == 0 || len(fb.chunks) < 2 {
			fb.left = 0
			return false
		}
		c := binary.BigEndian.Uint16(fb.chunks)
		fb.chunks = fb.chunks[2:]
		var n uint16
		switch {
		case c&0x8000 == 0:
			fb.sym, fb.shift, fb.step, n = c<<1, 14, 0, c&0x1fff
		case c&0x4000 == 0:
			fb.sym, fb.shift, fb.step, n = c<<2, 15, 1, tccOneBitCap
		default:
			fb.sym, fb.shift, fb.step, n = c<<2, 14, 2, tccTwoBitCap
		}
		fb.inChk = min(n, fb.left)
		fb.left -= fb.inChk
	}
	return true
}

// tccChunker packs delta sizes (symbols) into status chunks the way
// libwebrtc does (TransportFeedback::LastChunk), which is also what pion's
// recorder copies: symbols gather until the next one fits no chunk kind,
// then the shortest encoding of what has gathered is emitted — a run
// length if all are the same, a 1-bit vector if 14 without a large delta,
// else a 2-bit vector of the first 7, the rest staying for the next chunk.
type tccChunker struct {
	syms     [tccOneBitCap]uint8
	n        int
	allSame  bool
	hasLarge bool
}

func (c *tccChunker) canAdd(s uint8) bool {
	switch {
	case c.n < tccTwoBitCap:
		return true
	case c.n < tccOneBitCap && !c.hasLarge && s != tccSymLarge:
		return true
	}
	return c.n < tccRunLenMax && c.allSame && c.syms[0] == s
}

func (c *tccChunker) add(s uint8) {
	if c.n < len(c.syms) {
		c.syms[c.n] = s
	}
	c.allSame = c.allSame && s == c.syms[0]
	c.hasLarge = c.hasLarge || s == tccSymLarge
	c.n++
}

func (c *tccChunker) clear() { *c = tccChunker{allSame: true} }

// emit returns a chunk when canAdd has refused a symbol.
func (c *tccChunker) emit() uint16 {
	if c.allSame {
		ch := c.runLength()
		c.clear()
		return ch
	}
	if c.n == tccOneBitCap {
		ch := c.oneBit()
		c.clear()
		return ch
	}
	ch := c.twoBit(tccTwoBitCap)
	c.n -= tccTwoBitCap
	copy(c.syms[:], c.syms[tccTwoBitCap:tccTwoBitCap+c.n])
	c.allSame, c.hasLarge = true, false
	for _, s := range c.syms[:c.n] {
		c.allSame = c.allSame && s == c.syms[0]
		c.hasLarge = c.hasLarge || s == tccSymLarge
	}
	return ch
}

// last returns the chunk for the symbols left at the end.
func (c *tccChunker) last() uint16 {
	switch {
	case c.allSame:
		return c.runLength()
	case c.n <= tccTwoBitCap:
		return c.twoBit(c.n)
	}
	return c.oneBit()
}

func (c *tccChunker) runLength() uint16 { return uint16(c.syms[0])<<13 | uint16(c.n) }

func (c *tccChunker) oneBit() uint16 {
	ch := uint16(0x8000)
	for i, s := range c.syms[:c.n] {
		ch |= uint16(s) << (tccOneBitCap - 1 - i)
	}
	return ch
}

func (c *tccChunker) twoBit(n int) uint16 {
	ch := uint16(0xc000)
	for i, s := range c.syms[:n] {
		ch |= uint16(s) << (2 * (tccTwoBitCap - 1 - i))
	}
	return ch
}

// tccDelta returns the symbol and delta (in 250 µs units) of packet p when
// the previous reported arrival is at: the delta rounded half away from
// zero as libwebrtc does, 1 byte if it fits, else 2, else not received.
func tccDelta(p *TCCPacket, at time.Duration) (sym uint8, delta int64) {
	if !p.Received {
		return tccSymLost, 0
	}
	d := p.Arrival - at
	if (at < 0 && d < p.Arrival) || (at > 0 && d > p.Arrival) {
		return tccSymLost, 0 // the difference overflows: far beyond 16 bits
	}
	q, r := int64(d/TCCDeltaUnit), d%TCCDeltaUnit
	switch {
	case r >= TCCDeltaUnit/2:
		q++
	case r <= -TCCDeltaUnit/2:
		q--
	}
	switch {
	case q >= 0 && q <= math.MaxUint8:
		sym = tccSymSmall
	case q >= math.MinInt16 && q <= math.MaxInt16:
		sym = tccSymLarge
	default:
		return tccSymLost, 0
	}
	// at + q×250 µs cannot overflow: at is a multiple of 250 µs, and the
	// multiples nearest the ends of Duration's range lie inside it.
	return sym, q
}

// AppendTransportCC appends a transport-wide congestion control feedback
// from sender about media (the SSRC of the first media stream, as
// libwebrtc sets it; senders ignore it) reporting pkts, the statuses of
// consecutive sequence numbers from baseSeq (wrapping at 65535). fbCount
// is the feedback packet count, to increment per feedback sent.
//
// refTime is floored to a multiple of 64 ms and sent modulo 2^24 × 64 ms;
// pass the first received packet's arrival or a little before it. Arrival
// times are sent as deltas from it, each rounded to 250 µs against the
// previous reported arrival (so rounding errors do not add up), in one
// byte when in [0, 63.75 ms], else two (signed, ±8.19 s). Chunks are
// chosen as libwebrtc does (see tccChunker), so Chrome and pion read the
// packet as they read their own.
//
// A received packet whose delta does not fit in 16 bits (over 8 s from
// the previous arrival reported) is reported as not received: clamping
// would hand the sender's delay estimator a false arrival, while a loss
// of one packet after such a gap costs little. libwebrtc instead ends the
// feedback there; a caller that wants that splits pkts at such a gap and
// sends the rest in another feedback with its own refTime.
//
// Only the first 65535 statuses fit the count; callers keep the packet
// within their MTU by reporting fewer (each takes at most 2 bytes plus a
// chunk share). With no pkts nothing is appended, since libwebrtc rejects
// an empty feedback. Padding to a 32-bit boundary uses the RTCP padding
// bit, as libwebrtc's does; a feedback of losses only whose chunks end on
// the boundary gets 4 bytes of it, because pion rejects a feedback whose
// last chunk ends the packet.
func AppendTransportCC(buf []byte, sender, media uint32, baseSeq uint16, fbCount uint8, refTime time.Duration, pkts []TCCPacket) []byte {
	if len(pkts) == 0 {
		return buf
	}
	pkts = pkts[:min(len(pkts), math.MaxUint16)]
	ticks := refTime / TCCRefTimeUnit
	if refTime%TCCRefTimeUnit < 0 && refTime >= math.MinInt64+TCCRefTimeUnit {
		ticks-- // floor, unless that would overflow Duration
	}
	base := ticks * TCCRefTimeUnit

	start := len(buf)
	buf = appendHeader(buf, RTCPFormatTWCC, RTCPTypeRTPFB)
	buf = binary.BigEndian.AppendUint32(buf, sender)
	buf = binary.BigEndian.AppendUint32(buf, media)
	buf = binary.BigEndian.AppendUint16(buf, baseSeq)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(pkts)))
	buf = append(buf, uint8(ticks>>16), uint8(ticks>>8), uint8(ticks), fbCount)

	// Chunks first, then the deltas they announce, computed twice rather
	// than stored so that the encoder needs no memory of its own.
	c := tccChunker{allSame: true}
	at := base
	anyDelta := false
	for i := range pkts {
		s, d := tccDelta(&pkts[i], at)
		at += time.Duration(d) * TCCDeltaUnit
		anyDelta = anyDelta || s != tccSymLost
		if !c.canAdd(s) {
			buf = binary.BigEndian.AppendUint16(buf, c.emit())
		}
		c.add(s)
	}
	buf = binary.BigEndian.AppendUint16(buf, c.last())
	at = base
	for i := range pkts {
		s, d := tccDelta(&pkts[i], at)
		at += time.Duration(d) * TCCDeltaUnit
		switch s {
		case tccSymSmall:
			buf = append(buf, uint8(d))
		case tccSymLarge:
			buf = binary.BigEndian.AppendUint16(buf, uint16(d))
		}
	}
	pad := 3 - (len(buf)-start+3)%4
	if pad == 0 && !anyDelta {
		// pion's parser wants a byte after the last chunk; without
		// deltas, only padding can give it one.
		pad = 4
	}
	if pad > 0 {
		buf[start] |= 0x20
		for range pad - 1 {
			buf = append(buf, 0)
		}
		buf = append(buf, uint8(pad))
	}
	return finishRTCP(buf, start)
}
