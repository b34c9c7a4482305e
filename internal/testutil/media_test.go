package testutil

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/sansrtc/sfu/track"
)

func testRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

// frames collects n frames of src at its frame rate from Epoch.
func frames(src Source, n int) [][][]byte {
	out := make([][][]byte, n)
	now := Epoch
	for i := range out {
		out[i] = src.NextFrame(now)
		now = now.Add(src.FrameInterval())
	}
	return out
}

func mustRTP(t *testing.T, b []byte) *rtp.Packet {
	t.Helper()
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		t.Fatalf("rtp unmarshal: %v", err)
	}
	return &p
}

// checkRTPSequence checks seq +1 per packet, one timestamp per frame
// advancing by tsStep, and the marker on the last packet of each frame.
func checkRTPSequence(t *testing.T, fs [][][]byte, tsStep uint32, video bool) {
	t.Helper()
	var lastSeq uint16
	var lastTS uint32
	for fi, f := range fs {
		for i, b := range f {
			p := mustRTP(t, b)
			if fi+i > 0 && p.SequenceNumber != lastSeq+1 {
				t.Fatalf("frame %d packet %d: seq %d after %d", fi, i, p.SequenceNumber, lastSeq)
			}
			if fi > 0 && i == 0 && p.Timestamp != lastTS+tsStep {
				t.Fatalf("frame %d: ts %d after %d", fi, p.Timestamp, lastTS)
			}
			if i > 0 && p.Timestamp != lastTS {
				t.Fatalf("frame %d packet %d: ts changed within frame", fi, i)
			}
			if video && p.Marker != (i == len(f)-1) {
				t.Fatalf("frame %d packet %d/%d: marker %v", fi, i, len(f), p.Marker)
			}
			st, ok := ExtractStamp(p.Payload)
			if !ok || st.Frame != uint64(fi) || st.Index != uint16(i) || st.Count != uint16(len(f)) {
				t.Fatalf("frame %d packet %d: stamp %+v ok=%v", fi, i, st, ok)
			}
			lastSeq, lastTS = p.SequenceNumber, p.Timestamp
		}
	}
}

func TestVP8Source(t *testing.T) {
	for _, layers := range []int{1, 2, 3} {
		t.Run("layers="+string(rune('0'+layers)), func(t *testing.T) {
			src := NewVP8Source(testRand(1), VP8Config{
				SSRC: 1234, Tag: 77, BitrateBps: 2_000_000, KeyframeInterval: time.Second,
				TemporalLayers: layers, Width: 1280, Height: 720,
			})
			fs := frames(src, 70)
			src.RequestKeyframe()
			fs = append(fs, frames(src, 2)...)
			checkRTPSequence(t, fs, 3000, true)
			pattern := vp8Patterns[layers]
			var lastPID, lastTL0 uint16
			pos := 0
			for fi, f := range fs {
				wantKey := fi == 0 || fi == 30 || fi == 60 || fi == 70
				if wantKey {
					pos = 0
				}
				wantTID := pattern[pos%len(pattern)]
				pos++
				for i, b := range f {
					p := mustRTP(t, b)
					if p.PayloadType != 96 || p.SSRC != 1234 || len(p.Payload) > 1200 {
						t.Fatalf("frame %d packet %d: pt %d ssrc %d payload %d", fi, i, p.PayloadType, p.SSRC, len(p.Payload))
					}
					var vp8 codecs.VP8Packet
					body, err := vp8.Unmarshal(p.Payload)
					if err != nil {
						t.Fatalf("frame %d packet %d: vp8: %v", fi, i, err)
					}
					if (vp8.S == 1) != (i == 0) || vp8.PID != 0 || vp8.I != 1 {
						t.Fatalf("frame %d packet %d: S=%d PID=%d I=%d", fi, i, vp8.S, vp8.PID, vp8.I)
					}
					if p.Payload[2]&0x80 == 0 {
						t.Fatalf("picture id not 15-bit")
					}
					if fi > 0 && i == 0 && vp8.PictureID != (lastPID+1)&0x7fff {
						t.Fatalf("frame %d: picture id %d after %d", fi, vp8.PictureID, lastPID)
					}
					if i > 0 && vp8.PictureID != lastPID {
						t.Fatalf("frame %d packet %d: picture id changed within frame", fi, i)
					}
					lastPID = vp8.PictureID
					if layers > 1 {
						if vp8.L != 1 || vp8.T != 1 || int8(vp8.TID) != wantTID {
							t.Fatalf("frame %d: L=%d T=%d TID=%d, want TID %d", fi, vp8.L, vp8.T, vp8.TID, wantTID)
						}
						if fi > 0 && i == 0 {
							want := uint8(lastTL0)
							if wantTID == 0 {
								want++
							}
							if vp8.TL0PICIDX != want {
								t.Fatalf("frame %d (TID %d): tl0picidx %d after %d", fi, wantTID, vp8.TL0PICIDX, lastTL0)
							}
						}
						lastTL0 = uint16(vp8.TL0PICIDX)
						if wantKey && vp8.Y != 1 {
							t.Fatalf("frame %d: keyframe without Y", fi)
						}
					} else if vp8.L != 0 || vp8.T != 0 {
						t.Fatalf("one layer with L=%d T=%d", vp8.L, vp8.T)
					}
					if i != 0 {
						continue
					}
					if key := body[0]&1 == 0; key != wantKey {
						t.Fatalf("frame %d: keyframe %v, want %v", fi, key, wantKey)
					}
					if wantKey {
						if !bytes.Equal(body[3:6], []byte{0x9d, 0x01, 0x2a}) {
							t.Fatalf("frame %d: start code % x", fi, body[3:6])
						}
						w, h := binary.LittleEndian.Uint16(body[6:])&0x3fff, binary.LittleEndian.Uint16(body[8:])&0x3fff
						if w != 1280 || h != 720 {
							t.Fatalf("keyframe size %dx%d", w, h)
						}
					}
				}
			}
		})
	}
}

// annexB splits an Annex-B byte stream into NAL units.
func annexB(b []byte) [][]byte {
	var nals [][]byte
	sc := []byte{0, 0, 0, 1}
	for _, part := range bytes.Split(b, sc) {
		if len(part) > 0 {
			nals = append(nals, part)
		}
	}
	return nals
}

type bitReader struct {
	b []byte
	n int
}

func (r *bitReader) bit() uint32 {
	v := uint32(r.b[r.n/8]>>(7-uint(r.n%8))) & 1
	r.n++
	return v
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for range n {
		v = v<<1 | r.bit()
	}
	return v
}

func (r *bitReader) ue() uint32 {
	z := 0
	for r.bit() == 0 {
		z++
	}
	return 1<<z - 1 + r.bits(z)
}

// spsSize decodes width and height from the SPS builder's subset of fields.
func spsSize(sps []byte) (w, h uint32) {
	rbsp := bytes.ReplaceAll(sps[1:], []byte{0, 0, 3}, []byte{0, 0})
	r := &bitReader{b: rbsp}
	r.bits(24)
	r.ue()
	r.ue()
	r.ue()
	r.ue()
	r.bits(1)
	mbw, mbh := r.ue()+1, r.ue()+1
	r.bits(2)
	w, h = mbw*16, mbh*16
	if r.bit() == 1 {
		l, rt, tp, b := r.ue(), r.ue(), r.ue(), r.ue()
		w -= 2 * (l + rt)
		h -= 2 * (tp + b)
	}
	return w, h
}

func TestH264Source(t *testing.T) {
	for _, bitrate := range []int{20_000, 1_000_000} { // single NAL and FU-A
		src := NewH264Source(testRand(2), H264Config{SSRC: 9, Tag: 5, BitrateBps: bitrate, KeyframeInterval: time.Second, Width: 640, Height: 360})
		fs := frames(src, 40)
		checkRTPSequence(t, fs, 3000, true)
		for fi, f := range fs {
			var h codecs.H264Packet
			var stream []byte
			for _, b := range f {
				p := mustRTP(t, b)
				if len(p.Payload) > 1200 || p.PayloadType != 102 {
					t.Fatalf("payload %d pt %d", len(p.Payload), p.PayloadType)
				}
				out, err := h.Unmarshal(p.Payload)
				if err != nil {
					t.Fatalf("bitrate %d frame %d: h264: %v", bitrate, fi, err)
				}
				stream = append(stream, out...)
			}
			var types []byte
			for _, nal := range annexB(stream) {
				types = append(types, nal[0]&0x1f)
				if nal[0]&0x1f == 7 {
					if w, h := spsSize(nal); w != 640 || h != 360 {
						t.Fatalf("sps states %dx%d", w, h)
					}
				}
			}
			want := []byte{1}
			if fi == 0 || fi == 30 {
				want = []byte{7, 8, 6, 5}
			}
			if !bytes.Equal(types, want) {
				t.Fatalf("bitrate %d frame %d: NAL types %v, want %v", bitrate, fi, types, want)
			}
			if bitrate > 100_000 && len(f) < 2 {
				t.Fatalf("frame %d: %d packets at %d bps", fi, len(f), bitrate)
			}
		}
	}
}

func TestOpusSource(t *testing.T) {
	src := NewOpusSource(testRand(3), OpusConfig{SSRC: 3, Tag: 8, AudioLevelExtID: 1})
	fs := frames(src, 100)
	checkRTPSequence(t, fs, 960, false)
	for _, f := range fs {
		p := mustRTP(t, f[0])
		if len(f) != 1 || len(p.Payload) < 60 || len(p.Payload) > 160 || p.PayloadType != 111 {
			t.Fatalf("packets %d payload %d pt %d", len(f), len(p.Payload), p.PayloadType)
		}
		var op codecs.OpusPacket
		if _, err := op.Unmarshal(p.Payload); err != nil {
			t.Fatal(err)
		}
		if ext := p.GetExtension(1); len(ext) != 1 || p.ExtensionProfile != 0xBEDE {
			t.Fatalf("audio level extension %x profile %x", ext, p.ExtensionProfile)
		}
	}
	src = NewOpusSource(testRand(3), OpusConfig{AudioLevelExtID: 4, Level: func(now time.Time) (uint8, bool) {
		return uint8(now.Sub(Epoch) / (20 * time.Millisecond)), true
	}})
	for i, f := range frames(src, 5) {
		var tp track.Packet
		if err := tp.Unmarshal(f[0]); err != nil {
			t.Fatal(err)
		}
		if lvl, voice, ok := track.AudioLevel(tp.Extension(4)); !ok || lvl != uint8(i) || !voice {
			t.Fatalf("frame %d: level %d voice %v ok %v", i, lvl, voice, ok)
		}
	}
}

func TestSimulcastVP8(t *testing.T) {
	src := NewSimulcastVP8(testRand(4), SimulcastConfig{SSRCs: [3]uint32{10, 11, 12}, Tag: 1, RIDExtID: 2})
	fs := frames(src, 3)
	src.SetActive(2, false)
	fs = append(fs, frames(src, 2)...)
	src.SetActive(2, true)
	fs = append(fs, frames(src, 1)...)
	wantSize := map[uint32]uint16{10: 320, 11: 640, 12: 1280}
	for fi, f := range fs {
		seen := map[uint32]bool{}
		for _, b := range f {
			p := mustRTP(t, b)
			st, _ := ExtractStamp(p.Payload)
			if rid := string(p.GetExtension(2)); rid != SimulcastRIDs[st.Encoding] || p.SSRC != 10+uint32(st.Encoding) {
				t.Fatalf("ssrc %d encoding %d rid %q", p.SSRC, st.Encoding, rid)
			}
			var vp8 codecs.VP8Packet
			body, err := vp8.Unmarshal(p.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if vp8.S == 1 && body[0]&1 == 0 {
				if w := binary.LittleEndian.Uint16(body[6:]); w != wantSize[p.SSRC] {
					t.Fatalf("ssrc %d width %d", p.SSRC, w)
				}
			}
			if vp8.S == 1 && st.Keyframe != (fi == 0 || (fi == 5 && p.SSRC == 12)) {
				t.Fatalf("frame %d ssrc %d keyframe %v", fi, p.SSRC, st.Keyframe)
			}
			seen[p.SSRC] = true
		}
		if want := fi < 3 || fi == 5; seen[12] != want {
			t.Fatalf("frame %d: full encoding sent %v", fi, seen[12])
		}
	}
}

func TestSourcesDeterministic(t *testing.T) {
	mk := func(seed uint64) [][][]byte {
		r := testRand(seed)
		var all [][][]byte
		for _, src := range []Source{
			NewVP8Source(r, VP8Config{TemporalLayers: 3, KeyframeInterval: time.Second}),
			NewH264Source(r, H264Config{}),
			NewOpusSource(r, OpusConfig{AudioLevelExtID: 1}),
			NewSimulcastVP8(r, SimulcastConfig{}),
		} {
			all = append(all, frames(src, 40)...)
		}
		return all
	}
	a, b, c := mk(7), mk(7), mk(8)
	same := func(x, y [][][]byte) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if len(x[i]) != len(y[i]) {
				return false
			}
			for j := range x[i] {
				if !bytes.Equal(x[i][j], y[i][j]) {
					return false
				}
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("same seed, different packets")
	}
	if same(a, c) {
		t.Fatal("different seeds, same packets")
	}
}

func TestRunSource(t *testing.T) {
	s := NewSim(t, 1)
	src := NewOpusSource(s.Rand, OpusConfig{})
	var n int
	var at []time.Time
	stop := Epoch.Add(time.Second)
	RunSource(s, src, func() bool { return !s.Now().Before(stop) }, func(now time.Time, pkt []byte) {
		n++
		at = append(at, now)
	})
	s.RunFor(2 * time.Second)
	if n != 50 || !at[0].Equal(Epoch) || at[1].Sub(at[0]) != 20*time.Millisecond {
		t.Fatalf("%d packets, first at %v", n, at[0])
	}
	if s.Pending() != 0 {
		t.Fatalf("%d events left after until", s.Pending())
	}
}

// forward rewrites a packet as a forwarder would: new SSRC, seq and
// timestamp; the payload is untouched.
func forward(b []byte, ssrc uint32, seq uint16, ts uint32) []byte {
	o := append([]byte(nil), b...)
	binary.BigEndian.PutUint16(o[2:], seq)
	binary.BigEndian.PutUint32(o[4:], ts)
	binary.BigEndian.PutUint32(o[8:], ssrc)
	return o
}

func flatten(fs [][][]byte) [][]byte {
	var out [][]byte
	for _, f := range fs {
		out = append(out, f...)
	}
	return out
}

func TestChecker(t *testing.T) {
	const tagA, tagB = 100, 200
	vp8 := func(seed uint64, tag uint32) [][]byte {
		return flatten(frames(NewVP8Source(testRand(seed), VP8Config{SSRC: 1, Tag: tag, TemporalLayers: 3, BitrateBps: 1_000_000, KeyframeInterval: 500 * time.Millisecond}), 40))
	}
	cases := []struct {
		name  string
		lossy bool
		want  ViolationKind // numKinds: clean
		// stream returns the packets the subscriber receives.
		stream func() [][]byte
		// at, when set, runs before packet i is handled.
		at func(c *Checker, i int)
	}{
		{name: "clean vp8", want: numKinds, stream: func() [][]byte { return vp8(1, tagA) }},
		{name: "clean h264", want: numKinds, stream: func() [][]byte {
			return flatten(frames(NewH264Source(testRand(1), H264Config{Tag: tagA, BitrateBps: 800_000}), 40))
		}},
		{name: "clean opus", want: numKinds, stream: func() [][]byte {
			return flatten(frames(NewOpusSource(testRand(1), OpusConfig{Tag: tagA, AudioLevelExtID: 1}), 40))
		}},
		{name: "gap", want: SeqGap, stream: func() [][]byte { p := vp8(1, tagA); return append(p[:20:20], p[21:]...) }},
		{name: "gap lossy", lossy: true, want: numKinds, stream: func() [][]byte { p := vp8(1, tagA); return append(p[:20:20], p[21:]...) }},
		{name: "duplicate", want: SeqDuplicate, stream: func() [][]byte { p := vp8(1, tagA); return append(p[:21:21], p[20:]...) }},
		{name: "duplicate lossy", lossy: true, want: SeqDuplicate, stream: func() [][]byte { p := vp8(1, tagA); return append(p[:21:21], p[20:]...) }},
		{name: "backwards", lossy: true, want: SeqBackwards, stream: func() [][]byte {
			p := vp8(1, tagA)
			p[20], p[21] = p[21], p[20]
			return p
		}},
		{name: "timestamp back", want: TimestampBackwards, stream: func() [][]byte {
			p := vp8(1, tagA)
			var q rtp.Packet
			q.Unmarshal(p[20])
			binary.BigEndian.PutUint32(p[30][4:], q.Timestamp-3000)
			return p
		}},
		{name: "starts on delta", want: NotKeyframe, stream: func() [][]byte {
			p := vp8(1, tagA)
			var q rtp.Packet
			for i := range p { // skip the first keyframe
				q.Unmarshal(p[i])
				if st, _ := ExtractStamp(q.Payload); !st.Keyframe {
					return p[i:]
				}
			}
			return nil
		}},
		{name: "restart on delta", want: NotKeyframe, stream: func() [][]byte { return vp8(1, tagA) },
			at: func(c *Checker, i int) {
				if i == 30 {
					c.ExpectRestart(1)
				}
			}},
		{name: "disallowed", want: Disallowed, stream: func() [][]byte { return vp8(1, tagB) }},
		{name: "switch source on delta", want: NotKeyframe, stream: func() [][]byte {
			a, b := vp8(1, tagA), vp8(2, tagA) // same tag, another instance
			var q rtp.Packet
			q.Unmarshal(a[29])
			out := a[:30:30]
			for i, pkt := range b[31:] {
				out = append(out, forward(pkt, q.SSRC, q.SequenceNumber+1+uint16(i), q.Timestamp+3000))
			}
			return out
		}},
		{name: "partial frame", want: IncompleteFrame, stream: func() [][]byte {
			// A forwarder that drops a frame's first packet and renumbers.
			p := vp8(1, tagA)
			var out [][]byte
			var q rtp.Packet
			q.Unmarshal(p[0])
			seq := q.SequenceNumber
			for _, pkt := range p {
				q.Unmarshal(pkt)
				if st, _ := ExtractStamp(q.Payload); st.Frame == 10 && st.Index == 0 && st.Count > 1 {
					continue
				} else if st.Frame == 10 && st.Count < 2 {
					panic("frame 10 is one packet")
				}
				out = append(out, forward(pkt, q.SSRC, seq, q.Timestamp))
				seq++
			}
			return out
		}},
		{name: "unsubscribed", want: Disallowed, stream: func() [][]byte { return vp8(1, tagA) },
			at: func(c *Checker, i int) {
				if i == 50 {
					c.Disallow(tagA)
				}
			}},
		{name: "lossy restart inside keyframe", lossy: true, want: numKinds, stream: func() [][]byte { return vp8(1, tagA)[1:] }},
		{name: "strict restart inside keyframe", want: NotKeyframe, stream: func() [][]byte { return vp8(1, tagA)[1:] }},
		{name: "picture id jump", want: PictureID, stream: func() [][]byte {
			p := vp8(1, tagA)
			for _, pkt := range p[25:] {
				var q rtp.Packet
				q.Unmarshal(pkt)
				pid := (uint16(q.Payload[2]&0x7f)<<8 | uint16(q.Payload[3])) + 5
				off := len(pkt) - len(q.Payload)
				pkt[off+2], pkt[off+3] = 0x80|byte(pid>>8&0x7f), byte(pid)
			}
			return p
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(CheckerConfig{Name: "sub", Lossy: tc.lossy, PictureIDs: true})
			c.Allow(tagA)
			for i, pkt := range tc.stream() {
				if tc.at != nil {
					tc.at(c, i)
				}
				c.HandleRTP(Epoch.Add(time.Duration(i)*time.Millisecond), pkt)
			}
			if tc.want == numKinds {
				if err := c.Err(); err != nil {
					t.Fatal(err)
				}
				if tc.lossy {
					return
				}
				st := c.Stats(tagA)
				if st.Packets == 0 || st.Frames != 40 || st.Keyframes == 0 || !st.FirstKeyframe || !st.FirstKeyframeAt.Equal(st.FirstPacketAt) {
					t.Fatalf("stats %+v", st)
				}
				return
			}
			if c.Count(tc.want) == 0 {
				t.Fatalf("no %v violation; got %v", tc.want, c.Err())
			}
			if c.Err() == nil || len(c.Violations()) == 0 {
				t.Fatal("Err nil with violations counted")
			}
		})
	}
}

func TestExtractTag(t *testing.T) {
	b := Stamp{Tag: 42, Frame: 9}.appendTo([]byte{0xFA, 0xCE, 0xB0, 0x0C, 1, 2}) // a false magic first
	if tag, frame, ok := ExtractTag(b); !ok || tag != 42 || frame != 9 {
		t.Fatalf("tag %d frame %d ok %v", tag, frame, ok)
	}
	b[len(b)-3] ^= 1
	if _, _, ok := ExtractTag(b); ok {
		t.Fatal("corrupt stamp accepted")
	}
	if _, _, ok := ExtractTag(b[:10]); ok {
		t.Fatal("short payload accepted")
	}
}
