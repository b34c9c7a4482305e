package testutil

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// Source is a synthetic publisher: it produces the RTP packets of one frame
// at a time, as a real encoder and packetizer would, with every payload
// stamped (see Stamp) so that a Checker can tell where a packet came from.
type Source interface {
	// NextFrame returns the packets of the next frame, in sending order.
	// The slices are fresh: the caller may keep them.
	NextFrame(now time.Time) [][]byte
	// FrameInterval is the time between two frames.
	FrameInterval() time.Duration
	// RequestKeyframe makes the next frame a keyframe, as a publisher
	// answering a PLI or FIR does.
	RequestKeyframe()
}

// RunSource sends src's frames through send, the first now and then one
// every src.FrameInterval(), until until returns true (nil: forever). All
// packets of a frame are sent at the frame's instant; put a Link with a
// bandwidth cap behind send to pace them.
func RunSource(s *Sim, src Source, until func() bool, send func(now time.Time, pkt []byte)) {
	period := src.FrameInterval()
	var tick func(now time.Time)
	tick = func(now time.Time) {
		if until != nil && until() {
			return
		}
		for _, pkt := range src.NextFrame(now) {
			send(now, pkt)
		}
		s.After(period, tick)
	}
	s.At(s.Now(), tick)
}

// TagOf hashes names (room, peer, track, ...) into a source tag, so a test
// can stamp a publisher's packets and allow them on a Checker without
// keeping a table.
func TagOf(parts ...string) uint32 {
	h := fnv.New32a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum32()
}

// StampLen is the size of the stamp every synthetic payload carries.
const StampLen = 33

var stampMagic = [4]byte{0xFA, 0xCE, 0xB0, 0x0C}

// Stamp identifies a synthetic packet: which source made it, and where in
// that source's stream it sits. It is embedded in the payload right after
// the codec's own header bytes. Its fields are written in 7-bit groups with
// the high bit set, so a stamp never holds a zero byte: an H.264 NAL unit
// carrying one can contain no start code and needs no emulation
// prevention.
type Stamp struct {
	Tag      uint32 // the track, chosen by the test (see TagOf)
	Instance uint32 // random per source: a track published again gets a new one
	Encoding uint8  // simulcast encoding index (0 lowest; < 128)
	Keyframe bool   // the packet belongs to a keyframe
	Frame    uint64 // the source's frame number, from 0
	Index    uint16 // the packet's index in its frame
	Count    uint16 // the number of packets of the frame
}

// stamp field layout after the magic: widths in 7-bit groups.
var stampWidths = [...]int{5, 5, 1, 1, 10, 3, 3}

func (st Stamp) fields() [7]uint64 {
	var flags uint64
	if st.Keyframe {
		flags = 1
	}
	return [7]uint64{uint64(st.Tag), uint64(st.Instance), uint64(st.Encoding), flags, st.Frame, uint64(st.Index), uint64(st.Count)}
}

// appendTo writes the stamp: magic, the fields, then a check byte.
func (st Stamp) appendTo(b []byte) []byte {
	b = append(b, stampMagic[:]...)
	start := len(b)
	for i, v := range st.fields() {
		for j := stampWidths[i] - 1; j >= 0; j-- {
			b = append(b, 0x80|byte(v>>(7*uint(j))))
		}
	}
	return append(b, stampCheck(b[start:]))
}

func stampCheck(b []byte) byte {
	c := byte(0x5A)
	for _, x := range b {
		c = c<<1 | c>>7
		c ^= x
	}
	return 0x80 | c
}

// ExtractStamp finds the stamp in an RTP payload (after any codec header:
// the magic is searched for and the check byte confirms it).
func ExtractStamp(payload []byte) (Stamp, bool) {
	for off := 0; ; {
		i := bytes.Index(payload[off:], stampMagic[:])
		if i < 0 {
			return Stamp{}, false
		}
		b := payload[off+i:]
		if len(b) < StampLen {
			return Stamp{}, false
		}
		if stampCheck(b[4:StampLen-1]) == b[StampLen-1] {
			var f [7]uint64
			k := 4
			for i, w := range stampWidths {
				for range w {
					f[i] = f[i]<<7 | uint64(b[k]&0x7f)
					k++
				}
			}
			return Stamp{
				Tag: uint32(f[0]), Instance: uint32(f[1]), Encoding: uint8(f[2]), Keyframe: f[3] != 0,
				Frame: f[4], Index: uint16(f[5]), Count: uint16(f[6]),
			}, true
		}
		off += i + 1
	}
}

// ExtractTag returns the source tag and frame number stamped in payload.
func ExtractTag(payload []byte) (tag uint32, frame uint64, ok bool) {
	st, ok := ExtractStamp(payload)
	return st.Tag, st.Frame, ok
}

// HeaderExt is one RTP header extension element (RFC 8285 one-byte form:
// ID 1..14, 1..16 bytes of data).
type HeaderExt struct {
	ID   uint8
	Data []byte
}

// rtpStream is the RTP state of one SSRC: the header fields that advance.
type rtpStream struct {
	ssrc uint32
	pt   uint8
	seq  uint16
	ts   uint32
}

func newRTPStream(r *rand.Rand, ssrc uint32, pt uint8) rtpStream {
	return rtpStream{ssrc: ssrc, pt: pt, seq: uint16(r.Uint32()), ts: r.Uint32()}
}

// frameWriter builds the packets of one frame in one buffer, so that a frame
// costs two allocations whatever its packet count.
type frameWriter struct {
	buf  []byte
	offs []int
}

func newFrameWriter(capBytes, packets int) *frameWriter {
	return &frameWriter{buf: make([]byte, 0, capBytes), offs: make([]int, 0, packets+1)}
}

// header starts a packet with an RTP header for st (seq taken and advanced).
func (w *frameWriter) header(st *rtpStream, marker bool, exts []HeaderExt) {
	w.offs = append(w.offs, len(w.buf))
	b0 := byte(0x80)
	if len(exts) > 0 {
		b0 |= 0x10
	}
	b1 := st.pt & 0x7f
	if marker {
		b1 |= 0x80
	}
	w.buf = append(w.buf, b0, b1)
	w.buf = binary.BigEndian.AppendUint16(w.buf, st.seq)
	w.buf = binary.BigEndian.AppendUint32(w.buf, st.ts)
	w.buf = binary.BigEndian.AppendUint32(w.buf, st.ssrc)
	st.seq++
	if len(exts) == 0 {
		return
	}
	n := 0
	for _, e := range exts {
		n += 1 + len(e.Data)
	}
	words := (n + 3) / 4
	w.buf = append(w.buf, 0xBE, 0xDE)
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(words))
	for _, e := range exts {
		w.buf = append(w.buf, e.ID<<4|byte(len(e.Data)-1))
		w.buf = append(w.buf, e.Data...)
	}
	for ; n < words*4; n++ {
		w.buf = append(w.buf, 0)
	}
}

// fill pads the current packet with filler bytes up to payload size n,
// counted from payloadStart.
func (w *frameWriter) fill(payloadStart, n int) {
	for len(w.buf)-payloadStart < n {
		w.buf = append(w.buf, 0x55)
	}
}

func (w *frameWriter) packets() [][]byte {
	w.offs = append(w.offs, len(w.buf))
	pkts := make([][]byte, len(w.offs)-1)
	for i := range pkts {
		pkts[i] = w.buf[w.offs[i]:w.offs[i+1]:w.offs[i+1]]
	}
	return pkts
}

// split cuts total bytes into packets of at most max bytes, as evenly as
// possible: the packet count and the size of packet i.
func split(total, maxSize int) (n int, size func(i int) int) {
	n = (total + maxSize - 1) / maxSize
	if n < 1 {
		n = 1
	}
	return n, func(i int) int {
		s := total / n
		if i < total%n {
			s++
		}
		return s
	}
}

// videoClock is what video sources share: frame rate, keyframe cadence and
// frame sizes from a bitrate.
type videoClock struct {
	r          *rand.Rand
	fps        int
	bitrateBps int
	keyEvery   uint64 // frames; 0: only on request
	frame      uint64 // next frame number
	sinceKey   uint64
	forceKey   bool
	instance   uint32
}

func newVideoClock(r *rand.Rand, fps, bitrateBps int, keyInterval time.Duration) videoClock {
	if fps <= 0 {
		fps = 30
	}
	if bitrateBps <= 0 {
		bitrateBps = 500_000
	}
	var every uint64
	if keyInterval > 0 {
		every = max(1, uint64(keyInterval*time.Duration(fps)/time.Second))
	}
	return videoClock{r: r, fps: fps, bitrateBps: bitrateBps, keyEvery: every, instance: r.Uint32()}
}

// next decides whether the next frame is a keyframe and how many bitstream
// bytes it has (at least minBytes).
func (c *videoClock) next(minBytes int) (key bool, size int) {
	key = c.frame == 0 || c.forceKey || (c.keyEvery > 0 && c.sinceKey >= c.keyEvery)
	c.forceKey = false
	avg := c.bitrateBps / 8 / c.fps
	if key {
		size = avg * 3
		c.sinceKey = 0
	} else {
		size = avg*7/10 + c.r.IntN(avg*6/10+1)
	}
	c.sinceKey++
	return key, max(size, minBytes)
}

func (c *videoClock) interval() time.Duration { return time.Second / time.Duration(c.fps) }

func (c *videoClock) tsStep() uint32 { return uint32(90000 / c.fps) }

// VP8Config configures a VP8Source. The zero value of each field selects
// its default.
type VP8Config struct {
	SSRC        uint32
	PayloadType uint8  // default 96
	Tag         uint32 // stamped in every payload (see TagOf)
	Encoding    uint8  // stamped simulcast encoding index
	FPS         int    // default 30
	BitrateBps  int    // approximate; sets frame sizes (default 500 kbps)
	// KeyframeInterval is the time between periodic keyframes; 0 sends a
	// keyframe first and then only on RequestKeyframe.
	KeyframeInterval time.Duration
	// TemporalLayers is 1 (default), 2 (pattern 0,1) or 3 (L1T3: 0,2,1,2).
	// With more than one, the descriptor carries TL0PICIDX, TID and Y.
	TemporalLayers int
	Width, Height  int // default 640x360; stated in keyframes
	MTU            int // largest RTP payload in bytes (default 1200)
	// RIDExtID, when set, adds the RID header extension (RFC 8852) with RID.
	RIDExtID uint8
	RID      string
}

// VP8Source is a synthetic VP8 publisher (RFC 7741 packetization).
type VP8Source struct {
	cfg   VP8Config
	clk   videoClock
	rtp   rtpStream
	pid   uint16 // 15-bit picture id of the next frame
	tl0   uint8
	pat   int // position in the temporal pattern
	exts  []HeaderExt
	alive bool // for simulcast: false while the encoding is switched off
}

var vp8Patterns = [...][]int8{1: {0}, 2: {0, 1}, 3: {0, 2, 1, 2}}

// NewVP8Source returns a VP8 source drawing its initial sequence number,
// timestamp, picture id and frame sizes from r.
func NewVP8Source(r *rand.Rand, cfg VP8Config) *VP8Source {
	if cfg.PayloadType == 0 {
		cfg.PayloadType = 96
	}
	if cfg.TemporalLayers < 1 || cfg.TemporalLayers > 3 {
		cfg.TemporalLayers = 1
	}
	if cfg.Width == 0 || cfg.Height == 0 {
		cfg.Width, cfg.Height = 640, 360
	}
	if cfg.MTU < 100 {
		cfg.MTU = 1200
	}
	s := &VP8Source{cfg: cfg, alive: true}
	s.clk = newVideoClock(r, cfg.FPS, cfg.BitrateBps, cfg.KeyframeInterval)
	s.rtp = newRTPStream(r, cfg.SSRC, cfg.PayloadType)
	s.pid = uint16(r.IntN(1 << 15))
	s.tl0 = uint8(r.Uint32())
	if cfg.RIDExtID != 0 && cfg.RID != "" {
		s.exts = []HeaderExt{{ID: cfg.RIDExtID, Data: []byte(cfg.RID)}}
	}
	return s
}

// SSRC is the source's SSRC.
func (s *VP8Source) SSRC() uint32 { return s.cfg.SSRC }

// Frames is the number of frames produced so far.
func (s *VP8Source) Frames() uint64 { return s.clk.frame }

// FrameInterval is 1/FPS.
func (s *VP8Source) FrameInterval() time.Duration { return s.clk.interval() }

// RequestKeyframe makes the next frame a keyframe.
func (s *VP8Source) RequestKeyframe() { s.clk.forceKey = true }

// NextFrame returns the packets of the next frame.
func (s *VP8Source) NextFrame(now time.Time) [][]byte {
	hdrLen := 3
	key, size := s.clk.next(10 + StampLen + 16)
	if key {
		hdrLen = 10
		s.pat = 0
	}
	layers := s.cfg.TemporalLayers
	pat := vp8Patterns[layers]
	pos := s.pat % len(pat)
	tid := pat[pos]
	s.pat++
	if tid == 0 {
		s.tl0++
	}
	// Layer sync (Y): the frame references only the base layer. In L1T3
	// that holds for positions 1 (TID 2) and 2 (TID 1); position 3
	// references position 2.
	sync := key || pos == 1 || (layers == 3 && pos == 2)
	descLen := 4
	if layers > 1 {
		descLen = 6
	}
	n, chunk := split(size, s.cfg.MTU-descLen)
	w := newFrameWriter(size+n*(descLen+12+4+len(s.cfg.RID)+4), n)
	st := Stamp{Tag: s.cfg.Tag, Instance: s.clk.instance, Encoding: s.cfg.Encoding, Keyframe: key, Frame: s.clk.frame, Count: uint16(n)}
	for i := range n {
		w.header(&s.rtp, i == n-1, s.exts)
		start := len(w.buf)
		b0 := byte(0x80) // X
		if i == 0 {
			b0 |= 0x10 // S, PID 0
		}
		if layers > 1 && int(tid) == layers-1 && !key {
			b0 |= 0x20 // N: nothing references the top layer
		}
		b1 := byte(0x80) // I
		if layers > 1 {
			b1 |= 0x60 // L, T
		}
		w.buf = append(w.buf, b0, b1, 0x80|byte(s.pid>>8), byte(s.pid))
		if layers > 1 {
			y := byte(0)
			if sync {
				y = 0x20
			}
			w.buf = append(w.buf, s.tl0, byte(tid)<<6|y)
		}
		if i == 0 {
			// RFC 6386 §9.1 frame tag: P (0 = keyframe), version 0,
			// show_frame, 19-bit first partition size.
			first := min((size-hdrLen)/2, 1<<19-1)
			tag := uint32(first)<<5 | 1<<4
			if !key {
				tag |= 1
			}
			w.buf = append(w.buf, byte(tag), byte(tag>>8), byte(tag>>16))
			if key {
				w.buf = append(w.buf, 0x9d, 0x01, 0x2a)
				w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(s.cfg.Width)&0x3fff)
				w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(s.cfg.Height)&0x3fff)
			}
		}
		st.Index = uint16(i)
		w.buf = st.appendTo(w.buf)
		w.fill(start, descLen+chunk(i))
	}
	s.rtp.ts += s.clk.tsStep()
	s.pid = (s.pid + 1) & 0x7fff
	s.clk.frame++
	return w.packets()
}

// SimulcastConfig configures a SimulcastVP8: three encodings "q", "h", "f"
// at quarter, half and full resolution. Zero fields select defaults.
type SimulcastConfig struct {
	SSRCs            [3]uint32 // lowest quality first
	PayloadType      uint8     // default 96
	Tag              uint32
	FPS              int           // default 30, shared
	BitrateBps       int           // of the full encoding (default 1.5 Mbps); h gets 1/3, q 1/10
	KeyframeInterval time.Duration // shared
	TemporalLayers   int
	Width, Height    int // of the full encoding (default 1280x720)
	MTU              int
	RIDExtID         uint8 // when set, each encoding carries its RID
}

// SimulcastVP8 is a synthetic simulcast publisher: three VP8 encodings with
// their own SSRCs and resolutions, sharing the picture timing and the
// stamp's tag and instance (the encoding index tells them apart).
type SimulcastVP8 struct {
	layers [3]*VP8Source
}

// SimulcastRIDs are the RIDs of the encodings of a SimulcastVP8.
var SimulcastRIDs = [3]string{"q", "h", "f"}

// NewSimulcastVP8 returns a three-encoding VP8 source.
func NewSimulcastVP8(r *rand.Rand, cfg SimulcastConfig) *SimulcastVP8 {
	if cfg.BitrateBps <= 0 {
		cfg.BitrateBps = 1_500_000
	}
	if cfg.Width == 0 || cfg.Height == 0 {
		cfg.Width, cfg.Height = 1280, 720
	}
	rates := [3]int{cfg.BitrateBps / 10, cfg.BitrateBps / 3, cfg.BitrateBps}
	div := [3]int{4, 2, 1}
	s := &SimulcastVP8{}
	instance := r.Uint32()
	for i := range s.layers {
		rid := ""
		if cfg.RIDExtID != 0 {
			rid = SimulcastRIDs[i]
		}
		s.layers[i] = NewVP8Source(r, VP8Config{
			SSRC: cfg.SSRCs[i], PayloadType: cfg.PayloadType, Tag: cfg.Tag, Encoding: uint8(i),
			FPS: cfg.FPS, BitrateBps: rates[i], KeyframeInterval: cfg.KeyframeInterval,
			TemporalLayers: cfg.TemporalLayers, Width: cfg.Width / div[i], Height: cfg.Height / div[i],
			MTU: cfg.MTU, RIDExtID: cfg.RIDExtID, RID: rid,
		})
		s.layers[i].clk.instance = instance
	}
	return s
}

// Layer returns encoding i (0 "q", 1 "h", 2 "f"), e.g. to request a
// keyframe on it alone.
func (s *SimulcastVP8) Layer(i int) *VP8Source { return s.layers[i] }

// SetActive switches encoding i on or off, as a browser does when its
// bandwidth estimate falls. An encoding switched back on starts with a
// keyframe. Its RTP clock keeps running meanwhile.
func (s *SimulcastVP8) SetActive(i int, on bool) {
	l := s.layers[i]
	if on && !l.alive {
		l.clk.forceKey = true
	}
	l.alive = on
}

// FrameInterval is 1/FPS.
func (s *SimulcastVP8) FrameInterval() time.Duration { return s.layers[0].FrameInterval() }

// RequestKeyframe makes the next frame of every encoding a keyframe.
func (s *SimulcastVP8) RequestKeyframe() {
	for _, l := range s.layers {
		l.RequestKeyframe()
	}
}

// NextFrame returns the packets of the next picture of every active
// encoding, lowest first.
func (s *SimulcastVP8) NextFrame(now time.Time) [][]byte {
	var pkts [][]byte
	for _, l := range s.layers {
		if !l.alive {
			l.rtp.ts += l.clk.tsStep()
			l.pid = (l.pid + 1) & 0x7fff
			l.clk.frame++
			continue
		}
		pkts = append(pkts, l.NextFrame(now)...)
	}
	return pkts
}

// H264Config configures an H264Source. Zero fields select defaults.
type H264Config struct {
	SSRC             uint32
	PayloadType      uint8 // default 102
	Tag              uint32
	FPS              int // default 30
	BitrateBps       int // default 500 kbps
	KeyframeInterval time.Duration
	Width, Height    int // default 640x360; stated in the SPS
	MTU              int // default 1200
}

// H264Source is a synthetic H.264 publisher (RFC 6184 packetization mode
// 1): a keyframe is STAP-A(SPS, PPS, SEI) then an IDR slice, a delta frame
// a non-IDR slice; slices larger than the MTU go in FU-A fragments.
type H264Source struct {
	cfg H264Config
	clk videoClock
	rtp rtpStream
	sps []byte
}

// NewH264Source returns an H.264 source drawing its initial sequence
// number, timestamp and frame sizes from r.
func NewH264Source(r *rand.Rand, cfg H264Config) *H264Source {
	if cfg.PayloadType == 0 {
		cfg.PayloadType = 102
	}
	if cfg.Width == 0 || cfg.Height == 0 {
		cfg.Width, cfg.Height = 640, 360
	}
	if cfg.MTU < 100 {
		cfg.MTU = 1200
	}
	s := &H264Source{cfg: cfg}
	s.clk = newVideoClock(r, cfg.FPS, cfg.BitrateBps, cfg.KeyframeInterval)
	s.rtp = newRTPStream(r, cfg.SSRC, cfg.PayloadType)
	s.sps = h264SPS(cfg.Width, cfg.Height)
	return s
}

// h264PPS is a constrained-baseline picture parameter set (ids 0, CAVLC).
var h264PPS = []byte{0x68, 0xce, 0x3c, 0x80}

// SSRC is the source's SSRC.
func (s *H264Source) SSRC() uint32 { return s.cfg.SSRC }

// FrameInterval is 1/FPS.
func (s *H264Source) FrameInterval() time.Duration { return s.clk.interval() }

// RequestKeyframe makes the next frame a keyframe.
func (s *H264Source) RequestKeyframe() { s.clk.forceKey = true }

// NextFrame returns the packets of the next frame.
func (s *H264Source) NextFrame(now time.Time) [][]byte {
	key, size := s.clk.next(StampLen + 16)
	nalHdr, slice := byte(0x41), byte(0x9a) // non-IDR, NRI 2; first_mb 0, P slice
	if key {
		nalHdr, slice = 0x65, 0x88 // IDR, NRI 3; first_mb 0, I slice
	}
	var n int
	var chunk func(int) int
	single := 1+size <= s.cfg.MTU
	if single {
		n, chunk = 1, func(int) int { return size }
	} else {
		n, chunk = split(size, s.cfg.MTU-2) // FU indicator and header
	}
	total := n
	if key {
		total++
	}
	w := newFrameWriter(size+total*(16+2)+len(s.sps)+64, total)
	st := Stamp{Tag: s.cfg.Tag, Instance: s.clk.instance, Keyframe: key, Frame: s.clk.frame, Count: uint16(total)}
	if key {
		w.header(&s.rtp, false, nil)
		w.buf = append(w.buf, 0x78) // STAP-A, NRI 3
		for _, nal := range [][]byte{s.sps, h264PPS} {
			w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(nal)))
			w.buf = append(w.buf, nal...)
		}
		// SEI (user data unregistered would be type 5 payload; the SFU
		// never decodes it) carrying the stamp.
		w.buf = binary.BigEndian.AppendUint16(w.buf, 1+StampLen)
		w.buf = append(w.buf, 0x06)
		w.buf = st.appendTo(w.buf)
		st.Index++
	}
	for i := range n {
		w.header(&s.rtp, i == n-1, nil)
		start := len(w.buf)
		hdr := 1
		if single {
			w.buf = append(w.buf, nalHdr)
		} else {
			fu := nalHdr & 0x1f
			if i == 0 {
				fu |= 0x80
			}
			if i == n-1 {
				fu |= 0x40
			}
			w.buf = append(w.buf, nalHdr&0xe0|28, fu)
			hdr = 2
		}
		if i == 0 {
			w.buf = append(w.buf, slice)
		}
		w.buf = st.appendTo(w.buf)
		st.Index++
		w.fill(start, hdr+chunk(i))
	}
	s.rtp.ts += s.clk.tsStep()
	s.clk.frame++
	return w.packets()
}

// h264SPS builds a constrained-baseline level 3.1 sequence parameter set
// NAL (with emulation prevention) stating width x height.
func h264SPS(width, height int) []byte {
	var bw bitWriter
	bw.bits(66, 8)   // profile_idc: baseline
	bw.bits(0xc0, 8) // constraint_set0/1: constrained baseline
	bw.bits(31, 8)   // level_idc 3.1
	bw.ue(0)         // seq_parameter_set_id
	bw.ue(0)         // log2_max_frame_num_minus4
	bw.ue(2)         // pic_order_cnt_type
	bw.ue(1)         // max_num_ref_frames
	bw.bits(0, 1)    // gaps_in_frame_num_value_allowed_flag
	mbw, mbh := (width+15)/16, (height+15)/16
	bw.ue(uint32(mbw - 1))
	bw.ue(uint32(mbh - 1))
	bw.bits(1, 1) // frame_mbs_only_flag
	bw.bits(1, 1) // direct_8x8_inference_flag
	cropR, cropB := (mbw*16-width)/2, (mbh*16-height)/2
	if cropR > 0 || cropB > 0 {
		bw.bits(1, 1)
		bw.ue(0)
		bw.ue(uint32(cropR))
		bw.ue(0)
		bw.ue(uint32(cropB))
	} else {
		bw.bits(0, 1)
	}
	bw.bits(0, 1) // vui_parameters_present_flag
	bw.bits(1, 1) // rbsp_stop_one_bit
	rbsp := bw.bytes()
	out := []byte{0x67} // NRI 3, type 7
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

type bitWriter struct {
	buf  []byte
	nbit int
}

func (w *bitWriter) bits(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.nbit%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 != 0 {
			w.buf[len(w.buf)-1] |= 0x80 >> uint(w.nbit%8)
		}
		w.nbit++
	}
}

// ue writes an unsigned Exp-Golomb code.
func (w *bitWriter) ue(v uint32) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.bits(0, n)
	w.bits(v, n+1)
}

func (w *bitWriter) bytes() []byte { return w.buf }

// OpusConfig configures an OpusSource. Zero fields select defaults.
type OpusConfig struct {
	SSRC        uint32
	PayloadType uint8 // default 111
	Tag         uint32
	// AudioLevelExtID is the id of the RFC 6464 ssrc-audio-level header
	// extension (0: none).
	AudioLevelExtID uint8
	// Level, when set, gives the audio level (0 loudest .. 127 silence, in
	// -dBov) and voice flag of the frame at now; otherwise the level is a
	// random walk and voice is set below level 60.
	Level func(now time.Time) (level uint8, voice bool)
	// Ptime is the packet duration: 20 ms (default) or 60 ms (fewer
	// packets, for long scenarios where the audio content is irrelevant).
	Ptime time.Duration
}

// OpusSource is a synthetic Opus publisher: 20 ms (or 60 ms) frames of
// 60-160 bytes, one packet each.
type OpusSource struct {
	cfg      OpusConfig
	r        *rand.Rand
	rtp      rtpStream
	frame    uint64
	level    int
	instance uint32
	ext      [1]HeaderExt
	lvl      [1]byte
}

// NewOpusSource returns an Opus source drawing its initial sequence
// number, timestamp, sizes and levels from r.
func NewOpusSource(r *rand.Rand, cfg OpusConfig) *OpusSource {
	if cfg.PayloadType == 0 {
		cfg.PayloadType = 111
	}
	if cfg.Ptime != 60*time.Millisecond {
		cfg.Ptime = 20 * time.Millisecond
	}
	s := &OpusSource{cfg: cfg, r: r}
	s.rtp = newRTPStream(r, cfg.SSRC, cfg.PayloadType)
	s.instance = r.Uint32()
	s.level = 30 + r.IntN(70)
	return s
}

// SSRC is the source's SSRC.
func (s *OpusSource) SSRC() uint32 { return s.cfg.SSRC }

// FrameInterval is the packet duration (Ptime).
func (s *OpusSource) FrameInterval() time.Duration { return s.cfg.Ptime }

// RequestKeyframe does nothing: every Opus packet is decodable alone.
func (s *OpusSource) RequestKeyframe() {}

// NextFrame returns the one packet of the next 20 ms.
func (s *OpusSource) NextFrame(now time.Time) [][]byte {
	var exts []HeaderExt
	if s.cfg.AudioLevelExtID != 0 {
		var level uint8
		var voice bool
		if s.cfg.Level != nil {
			level, voice = s.cfg.Level(now)
		} else {
			s.level = min(127, max(0, s.level+s.r.IntN(11)-5))
			level, voice = uint8(s.level), s.level < 60
		}
		s.lvl[0] = level & 0x7f
		if voice {
			s.lvl[0] |= 0x80
		}
		s.ext[0] = HeaderExt{ID: s.cfg.AudioLevelExtID, Data: s.lvl[:]}
		exts = s.ext[:]
	}
	size := 60 + s.r.IntN(101)
	w := newFrameWriter(12+8+size, 1)
	w.header(&s.rtp, false, exts)
	start := len(w.buf)
	toc := byte(0x78) // config 15 (hybrid FB 20 ms), mono, one frame
	if s.cfg.Ptime == 60*time.Millisecond {
		toc = 0x58 // config 11 (SILK WB 60 ms)
	}
	w.buf = append(w.buf, toc)
	w.buf = Stamp{Tag: s.cfg.Tag, Instance: s.instance, Keyframe: true, Frame: s.frame, Count: 1}.appendTo(w.buf)
	w.fill(start, size)
	s.rtp.ts += uint32(s.cfg.Ptime / time.Millisecond * 48)
	s.frame++
	return w.packets()
}
