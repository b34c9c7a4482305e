package track

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp/codecs"
)

// parse runs codec c's parser on payload as ParseMeta does.
func parse(c Codec, payload []byte) (Meta, error) {
	p := Packet{Payload: payload}
	err := p.ParseMeta(c)
	return p.Meta, err
}

// vp8Keyframe is a synthetic VP8 keyframe bitstream: a frame tag with P=0,
// the start code, and a 14-bit width and height (with scale bits set, which
// must be masked off).
func vp8Keyframe(w, h uint16, n int) []byte {
	b := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, byte(w), byte(w>>8) | 0x40, byte(h), byte(h>>8) | 0x80}
	for i := len(b); i < n; i++ {
		b = append(b, byte(i))
	}
	return b
}

func TestVP8PionPayloader(t *testing.T) {
	pl := &codecs.VP8Payloader{EnablePictureID: true}
	key := pl.Payload(100, vp8Keyframe(1280, 720, 350))
	delta := pl.Payload(100, append([]byte{0x31, 0x02, 0x00}, make([]byte, 300)...))
	if len(key) < 3 || len(delta) < 3 {
		t.Fatalf("payloader made %d/%d packets", len(key), len(delta))
	}
	for i, pkt := range append(key, delta...) {
		m, err := parse(CodecVP8, pkt)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		var vp codecs.VP8Packet
		if _, err := vp.Unmarshal(pkt); err != nil {
			t.Fatal(err)
		}
		first := i == 0 || i == len(key)
		if m.StartOfFrame != first {
			t.Errorf("packet %d: StartOfFrame %v", i, m.StartOfFrame)
		}
		if m.Keyframe != (i == 0) {
			t.Errorf("packet %d: Keyframe %v", i, m.Keyframe)
		}
		if i == 0 && (m.Width != 1280 || m.Height != 720) {
			t.Errorf("keyframe size %dx%d", m.Width, m.Height)
		}
		// pion numbers pictures from 0; since rtp v1.10.6 it always
		// writes a 15-bit id (M bit set), as libwebrtc does; before, it
		// sent none for picture 0 and a 7-bit one below 128. Follow what
		// the packet says.
		wantPID, wantBits, wantOff := int32(-1), uint8(0), uint8(0)
		if vp.I == 1 {
			wantPID, wantBits, wantOff = int32(vp.PictureID), 7, 2
			if pkt[2]&0x80 != 0 {
				wantBits = 15
			}
		}
		if i >= len(key) && vp.I != 1 {
			t.Fatalf("packet %d: pion sent no picture id", i)
		}
		if m.PictureID != wantPID || m.PictureIDBits != wantBits || m.PictureIDOffset != wantOff {
			t.Errorf("packet %d: picture id %d/%d@%d, pion %d", i, m.PictureID, m.PictureIDBits, m.PictureIDOffset, vp.PictureID)
		}
		if m.Temporal != -1 || m.TL0PICIDX != -1 || m.Spatial != -1 {
			t.Errorf("packet %d: layers %+v without T/L bits", i, m)
		}
	}
}

// randVP8Descriptor builds a random valid VP8 descriptor followed by a
// 1-3 byte non-keyframe payload.
func randVP8Descriptor(r *rand.Rand) []byte {
	b0 := byte(r.IntN(256)) & 0xb7 // X, N, S, PID; reserved bits 0
	b := []byte{b0}
	if b0&0x80 != 0 {
		x := byte(r.IntN(16)) << 4
		b = append(b, x)
		if x&0x80 != 0 {
			if r.IntN(2) == 0 {
				b = append(b, byte(r.IntN(128)))
			} else {
				b = append(b, 0x80|byte(r.IntN(128)), byte(r.IntN(256)))
			}
		}
		if x&0x40 != 0 {
			b = append(b, byte(r.IntN(256)))
		}
		if x&0x30 != 0 {
			b = append(b, byte(r.IntN(256)))
		}
	}
	b = append(b, 0x01) // P=1: not a keyframe
	for range r.IntN(3) {
		b = append(b, byte(r.IntN(256)))
	}
	return b
}

func TestVP8CrossCheckPion(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		pkt := randVP8Descriptor(r)
		var vp codecs.VP8Packet
		rest, err := vp.Unmarshal(pkt)
		if err != nil {
			t.Fatalf("% x: pion: %v", pkt, err)
		}
		m, err := parse(CodecVP8, pkt)
		if err != nil {
			t.Fatalf("% x: %v", pkt, err)
		}
		if m.Keyframe {
			t.Fatalf("% x: keyframe with P=1", pkt)
		}
		if want := vp.S == 1 && vp.PID == 0; m.StartOfFrame != want {
			t.Fatalf("% x: StartOfFrame %v", pkt, m.StartOfFrame)
		}
		if vp.I == 1 {
			bits := uint8(7)
			if pkt[2]&0x80 != 0 {
				bits = 15
			}
			if m.PictureID != int32(vp.PictureID) || m.PictureIDBits != bits || m.PictureIDOffset != 2 {
				t.Fatalf("% x: picture id %d/%d@%d, pion %d", pkt, m.PictureID, m.PictureIDBits, m.PictureIDOffset, vp.PictureID)
			}
		} else if m.PictureID != -1 {
			t.Fatalf("% x: picture id %d without I", pkt, m.PictureID)
		}
		if vp.L == 1 {
			if m.TL0PICIDX != int16(vp.TL0PICIDX) || pkt[m.TL0PICIDXOffset] != vp.TL0PICIDX {
				t.Fatalf("% x: TL0PICIDX %d@%d, pion %d", pkt, m.TL0PICIDX, m.TL0PICIDXOffset, vp.TL0PICIDX)
			}
		} else if m.TL0PICIDX != -1 {
			t.Fatalf("% x: TL0PICIDX without L", pkt)
		}
		if vp.T == 1 {
			if m.Temporal != int8(vp.TID) || m.LayerSync != (vp.Y == 1) {
				t.Fatalf("% x: TID %d Y %v, pion %d %d", pkt, m.Temporal, m.LayerSync, vp.TID, vp.Y)
			}
		} else if m.Temporal != -1 || m.LayerSync {
			t.Fatalf("% x: TID without T", pkt)
		}
		// Truncating inside the descriptor or right after it must fail.
		for n := range len(pkt) - len(rest) + 1 {
			if _, err := parse(CodecVP8, pkt[:n]); !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("% x cut at %d: err %v", pkt, n, err)
			}
		}
	}
}

func TestVP8Vectors(t *testing.T) {
	kf := vp8Keyframe(640, 360, 10)
	withDesc := func(d ...byte) []byte { return append(d, kf...) }
	tests := []struct {
		name    string
		payload []byte
		err     bool
		want    Meta
	}{
		{"minimal keyframe", withDesc(0x10), false,
			Meta{Keyframe: true, StartOfFrame: true, Spatial: -1, Temporal: -1, PictureID: -1, TL0PICIDX: -1, Width: 640, Height: 360}},
		{"all fields", withDesc(0x90, 0xf0, 0x81, 0x23, 0x07, 0xe0), false,
			Meta{Keyframe: true, StartOfFrame: true, Spatial: -1, Temporal: 3, LayerSync: true, PictureID: 0x123, PictureIDBits: 15, PictureIDOffset: 2, TL0PICIDX: 7, TL0PICIDXOffset: 4, Width: 640, Height: 360}},
		{"K without T keeps temporal unset", withDesc(0x90, 0x10, 0xff), false,
			Meta{Keyframe: true, StartOfFrame: true, Spatial: -1, Temporal: -1, PictureID: -1, TL0PICIDX: -1, Width: 640, Height: 360}},
		{"not partition 0", withDesc(0x11), false,
			Meta{Spatial: -1, Temporal: -1, PictureID: -1, TL0PICIDX: -1}},
		{"keyframe header split", []byte{0x10, 0x10, 0x02, 0x00, 0x9d}, false,
			Meta{Keyframe: true, StartOfFrame: true, Spatial: -1, Temporal: -1, PictureID: -1, TL0PICIDX: -1}},
		{"bad start code", []byte{0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2b, 1, 2, 3, 4}, true,
			Meta{StartOfFrame: true, Spatial: -1, Temporal: -1, PictureID: -1, TL0PICIDX: -1}},
		{"empty", nil, true, Meta{Spatial: -1, Temporal: -1, PictureID: -1, TL0PICIDX: -1}},
		{"descriptor only", []byte{0x90, 0x80, 0x05}, true,
			Meta{Spatial: -1, Temporal: -1, PictureID: 5, PictureIDBits: 7, PictureIDOffset: 2, TL0PICIDX: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(CodecVP8, tt.payload)
			if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrBadDescriptor)) {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if m != tt.want {
				t.Fatalf("got  %+v\nwant %+v", m, tt.want)
			}
		})
	}
}

// Chrome's VP9 keyframe header for 1920x804 and an inter frame header, as
// used in pion's own tests.
var (
	vp9KeyHeader   = []byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x77, 0xf0, 0x32, 0x34, 0x30, 0x38, 0x24, 0x1c, 0x19, 0x40, 0x18, 0x03, 0x40, 0x5f, 0xb4}
	vp9InterHeader = []byte{0x86, 0x0, 0x40, 0x92, 0xe1, 0x31, 0x42, 0x8c, 0xc0, 0x40}
)

func TestVP9PionPayloader(t *testing.T) {
	for _, flexible := range []bool{false, true} {
		pl := &codecs.VP9Payloader{FlexibleMode: flexible, InitialPictureIDFn: func() uint16 { return 0x1234 }}
		key := pl.Payload(20, append(append([]byte{}, vp9KeyHeader...), make([]byte, 40)...))
		delta := pl.Payload(20, append(append([]byte{}, vp9InterHeader...), make([]byte, 40)...))
		all := append(key, delta...)
		for i, pkt := range all {
			m, err := parse(CodecVP9, pkt)
			if err != nil {
				t.Fatalf("flexible=%v packet %d: %v", flexible, i, err)
			}
			var vp codecs.VP9Packet
			if _, err := vp.Unmarshal(pkt); err != nil {
				t.Fatal(err)
			}
			if m.StartOfFrame != vp.B || m.EndOfFrame != vp.E {
				t.Errorf("packet %d: B/E %v/%v, pion %v/%v", i, m.StartOfFrame, m.EndOfFrame, vp.B, vp.E)
			}
			if want := vp.B && !vp.P; m.Keyframe != want {
				t.Errorf("packet %d: Keyframe %v", i, m.Keyframe)
			}
			if !flexible && i == 0 && (m.Width != 1920 || m.Height != 804) {
				t.Errorf("keyframe size %dx%d", m.Width, m.Height)
			}
			if m.PictureID != int32(vp.PictureID) || m.PictureIDBits != 15 || m.PictureIDOffset != 1 {
				t.Errorf("packet %d: picture id %d, pion %d", i, m.PictureID, vp.PictureID)
			}
		}
		if !flexible {
			if m, _ := parse(CodecVP9, key[0]); !m.Keyframe {
				t.Error("first packet of a keyframe is not a keyframe")
			}
			if m, _ := parse(CodecVP9, delta[0]); m.Keyframe || !m.StartOfFrame {
				t.Errorf("inter frame start: %+v", m)
			}
		}
	}
}

// randVP9Descriptor builds a random valid VP9 descriptor and a short
// payload.
func randVP9Descriptor(r *rand.Rand) []byte {
	b0 := byte(r.IntN(256))
	b := []byte{b0}
	if b0&0x80 != 0 {
		if r.IntN(2) == 0 {
			b = append(b, byte(r.IntN(128)))
		} else {
			b = append(b, 0x80|byte(r.IntN(128)), byte(r.IntN(256)))
		}
	}
	if b0&0x20 != 0 {
		// pion accepts at most 5 spatial layers.
		b = append(b, byte(r.IntN(256))&0xf1|byte(r.IntN(5))<<1)
		if b0&0x10 == 0 {
			b = append(b, byte(r.IntN(256)))
		}
	}
	if b0&0x50 == 0x50 {
		n := 1 + r.IntN(3)
		for i := range n {
			d := byte(r.IntN(128)) << 1
			if i < n-1 {
				d |= 1
			}
			b = append(b, d)
		}
	}
	if b0&0x02 != 0 {
		ns := r.IntN(5)
		y, g := r.IntN(2) == 1, r.IntN(2) == 1
		h := byte(ns) << 5
		if y {
			h |= 0x10
		}
		if g {
			h |= 0x08
		}
		b = append(b, h)
		if y {
			for range ns + 1 {
				b = append(b, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)))
			}
		}
		if g {
			ng := r.IntN(4)
			b = append(b, byte(ng))
			for range ng {
				refs := r.IntN(4)
				b = append(b, byte(r.IntN(8))<<5|byte(refs)<<2)
				for range refs {
					b = append(b, byte(r.IntN(256)))
				}
			}
		}
	}
	for range r.IntN(3) {
		b = append(b, byte(r.IntN(256)))
	}
	return b
}

func TestVP9CrossCheckPion(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		pkt := randVP9Descriptor(r)
		var vp codecs.VP9Packet
		rest, err := vp.Unmarshal(pkt)
		if err != nil {
			t.Fatalf("% x: pion: %v", pkt, err)
		}
		m, err := parse(CodecVP9, pkt)
		if err != nil {
			t.Fatalf("% x: %v", pkt, err)
		}
		if m.StartOfFrame != vp.B || m.EndOfFrame != vp.E {
			t.Fatalf("% x: B/E", pkt)
		}
		if vp.I {
			if m.PictureID != int32(vp.PictureID) || m.PictureIDOffset != 1 {
				t.Fatalf("% x: picture id %d, pion %d", pkt, m.PictureID, vp.PictureID)
			}
		} else if m.PictureID != -1 {
			t.Fatalf("% x: picture id without I", pkt)
		}
		sid := int8(-1)
		if vp.L {
			sid = int8(vp.SID)
			if m.Temporal != int8(vp.TID) || m.Spatial != sid || m.LayerSync != vp.U {
				t.Fatalf("% x: layers T%d S%d U%v, pion T%d S%d U%v", pkt, m.Temporal, m.Spatial, m.LayerSync, vp.TID, vp.SID, vp.U)
			}
		} else if m.Temporal != -1 || m.Spatial != -1 {
			t.Fatalf("% x: layers without L", pkt)
		}
		if vp.L && !vp.F {
			if m.TL0PICIDX != int16(vp.TL0PICIDX) || pkt[m.TL0PICIDXOffset] != vp.TL0PICIDX {
				t.Fatalf("% x: TL0PICIDX %d, pion %d", pkt, m.TL0PICIDX, vp.TL0PICIDX)
			}
		} else if m.TL0PICIDX != -1 {
			t.Fatalf("% x: TL0PICIDX in flexible mode or without L", pkt)
		}
		if want := vp.B && !vp.P && sid <= 0; m.Keyframe != want {
			t.Fatalf("% x: Keyframe %v", pkt, m.Keyframe)
		}
		if vp.V && vp.Y {
			i := max(int(sid), 0)
			if i < len(vp.Width) && (m.Width != vp.Width[i] || m.Height != vp.Height[i]) {
				t.Fatalf("% x: size %dx%d, pion %dx%d", pkt, m.Width, m.Height, vp.Width[i], vp.Height[i])
			}
		}
		for n := range len(pkt) - len(rest) {
			if _, err := parse(CodecVP9, pkt[:n]); !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("% x cut at %d: err %v", pkt, n, err)
			}
		}
	}
}

func TestVP9Vectors(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		err     bool
		key     bool
	}{
		{"four P_DIFF", []byte{0x58, 0x03, 0x03, 0x03, 0x02}, true, false},
		{"upper spatial layer of key picture", []byte{0xa8, 0x01, 0x02, 0x00, 0xaa}, false, false},
		{"base spatial layer of key picture", []byte{0xa8, 0x01, 0x00, 0x00, 0xaa}, false, true},
		{"SS sizes truncated", []byte{0x0a, 0x10, 0x01, 0x02, 0x03}, true, false},
		{"SS group truncated", []byte{0x0a, 0x08, 0x02, 0x04}, true, false},
		{"SS group refs truncated", []byte{0x0a, 0x08, 0x01, 0x0c, 0x01}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(CodecVP9, tt.payload)
			if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrBadDescriptor)) {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if m.Keyframe != tt.key {
				t.Fatalf("Keyframe %v", m.Keyframe)
			}
		})
	}
	// The size of the packet's own spatial layer is reported.
	m, err := parse(CodecVP9, []byte{0x2a, 0x22, 0x00, 0x30, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68, 0xff})
	if err != nil || m.Spatial != 1 || m.Width != 640 || m.Height != 360 {
		t.Fatalf("S1 size: %+v %v", m, err)
	}
}

// annexB joins NAL units with start codes, as H264Payloader takes them.
func annexB(nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

// An x264 High-profile SPS for 1920x1080 (coded 1088, cropped), with
// emulation prevention bytes, and a Baseline SPS with VUI for 720x404.
var (
	spsHigh1080 = []byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58}
	spsBase404  = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xb4, 0x35, 0xf9, 0xe1, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48}
	ppsX264     = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
)

func TestH264PionPayloader(t *testing.T) {
	idr := append([]byte{0x65, 0x88}, make([]byte, 300)...) // first_mb_in_slice 0
	slice := append([]byte{0x41, 0x9a}, make([]byte, 300)...)
	pl := &codecs.H264Payloader{}
	key := pl.Payload(120, annexB(spsHigh1080, ppsX264, idr))
	delta := pl.Payload(120, annexB(slice))
	var keys, starts int
	for i, pkt := range append(key, delta...) {
		m, err := parse(CodecH264, pkt)
		if err != nil {
			t.Fatalf("packet %d (% x): %v", i, pkt[:2], err)
		}
		var hp codecs.H264Packet
		if _, err := hp.Unmarshal(pkt); err != nil {
			t.Fatalf("pion rejects packet %d: %v", i, err)
		}
		if m.Keyframe {
			keys++
			if i >= len(key) {
				t.Errorf("delta packet %d is a keyframe", i)
			}
		}
		if m.StartOfFrame {
			starts++
		}
		if m.Width != 0 && (m.Width != 1920 || m.Height != 1080) {
			t.Errorf("SPS size %dx%d", m.Width, m.Height)
		}
	}
	// STAP-A(SPS, PPS) and the IDR's first FU-A are keyframe starts; the
	// slice's first FU-A starts the delta frame.
	if first, _ := parse(CodecH264, key[0]); !first.Keyframe || first.Width != 1920 {
		t.Errorf("first packet %+v", first)
	}
	if keys != 2 || starts != 3 {
		t.Errorf("keys %d starts %d", keys, starts)
	}
}

func TestH264Vectors(t *testing.T) {
	stap := func(nals ...[]byte) []byte {
		b := []byte{0x78}
		for _, n := range nals {
			b = append(b, byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
		return b
	}
	tests := []struct {
		name       string
		payload    []byte
		err        bool
		key, start bool
		w, h       uint16
	}{
		{"single SPS", spsBase404, false, true, true, 720, 404},
		{"single IDR", []byte{0x65, 0x88, 0x80}, false, true, true, 0, 0},
		{"slice first_mb 0", []byte{0x41, 0x9a}, false, false, true, 0, 0},
		{"slice first_mb 1", []byte{0x41, 0x40}, false, false, false, 0, 0},
		{"PPS alone", ppsX264, false, false, false, 0, 0},
		{"AUD", []byte{0x09, 0xf0}, false, false, true, 0, 0},
		{"STAP-A SPS PPS", stap(spsHigh1080, ppsX264), false, true, true, 1920, 1080},
		{"STAP-A with IDR last", stap(ppsX264, []byte{0x65, 0x88}), false, true, true, 0, 0},
		{"STAP-A overrun", append(stap(ppsX264), 0x00, 0x09, 0x67), true, false, false, 0, 0},
		{"STAP-A zero size", append(stap(ppsX264), 0x00, 0x00), true, false, false, 0, 0},
		{"STAP-A lone size byte", append(stap(ppsX264), 0x00), true, false, false, 0, 0},
		{"STAP-A empty", []byte{0x78}, true, false, false, 0, 0},
		{"FU-A IDR start", []byte{0x7c, 0x85, 0x88}, false, true, true, 0, 0},
		{"FU-A IDR middle", []byte{0x7c, 0x05, 0x88}, false, false, false, 0, 0},
		{"FU-A slice start", []byte{0x5c, 0x81, 0x9a}, false, false, true, 0, 0},
		{"FU-A truncated", []byte{0x7c}, true, false, false, 0, 0},
		{"STAP-B", []byte{0x79, 0, 0}, true, false, false, 0, 0},
		{"MTAP16", []byte{0x7a, 0, 0}, true, false, false, 0, 0},
		{"MTAP24", []byte{0x7b, 0, 0}, true, false, false, 0, 0},
		{"FU-B", []byte{0x7d, 0x85, 0, 0}, true, false, false, 0, 0},
		{"empty", nil, true, false, false, 0, 0},
		{"truncated SPS is still a keyframe", spsBase404[:6], false, true, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(CodecH264, tt.payload)
			if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrBadDescriptor)) {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if m.Keyframe != tt.key || (!tt.err && m.StartOfFrame != tt.start) || m.Width != tt.w || m.Height != tt.h {
				t.Fatalf("got %+v", m)
			}
		})
	}
}

// obu builds an AV1 OBU header (+extension) followed by body.
func obu(typ uint8, ext bool, tid, sid uint8, body ...byte) []byte {
	h := typ << 3
	if !ext {
		return append([]byte{h}, body...)
	}
	return append([]byte{h | 0x04, tid<<5 | sid<<3}, body...)
}

func TestAV1PionPayloader(t *testing.T) {
	seq := obu(1, false, 0, 0, 0x00, 0x00, 0x00, 0x0a, 0x0b)
	frame := obu(6, true, 2, 1, bytes.Repeat([]byte{0xaa}, 300)...)
	// Low-overhead bitstream format: OBUs with obu_has_size_field.
	withSize := func(o []byte) []byte {
		h := o[0] | 0x02
		hl := 1 + int(o[0]>>2&1)
		b := append([]byte{h}, o[1:hl]...)
		n := len(o) - hl
		for n >= 0x80 {
			b = append(b, byte(n)|0x80)
			n >>= 7
		}
		b = append(b, byte(n))
		return append(b, o[hl:]...)
	}
	pl := &codecs.AV1Payloader{}
	key := pl.Payload(100, append(withSize(seq), withSize(frame)...))
	delta := pl.Payload(100, withSize(frame))
	if len(key) < 3 {
		t.Fatalf("%d packets", len(key))
	}
	for i, pkt := range append(key, delta...) {
		m, err := parse(CodecAV1, pkt)
		if err != nil {
			t.Fatalf("packet %d (% x): %v", i, pkt[:4], err)
		}
		if want := pkt[0]&0x80 == 0; m.StartOfFrame != want {
			t.Errorf("packet %d: StartOfFrame %v", i, m.StartOfFrame)
		}
		if m.Keyframe != (i == 0) {
			t.Errorf("packet %d: Keyframe %v (agg %02x)", i, m.Keyframe, pkt[0])
		}
	}
	if m, _ := parse(CodecAV1, delta[0]); m.Temporal != 2 || m.Spatial != 1 {
		t.Errorf("layers from OBU extension: %+v", m)
	}
}

func TestAV1Vectors(t *testing.T) {
	tests := []struct {
		name       string
		payload    []byte
		err        bool
		key, start bool
		tid, sid   int8
	}{
		{"N bit", append([]byte{0x18}, obu(6, false, 0, 0, 1)...), false, true, true, -1, -1},
		{"sequence header first", append([]byte{0x10}, obu(1, false, 0, 0, 1)...), false, true, true, -1, -1},
		{"frame with extension", append([]byte{0x10}, obu(6, true, 3, 2, 1)...), false, false, true, 3, 2},
		{"continuation skips first element", []byte{0xa0, 0x02, 0xff, 0xff, 0x34, 0x48, 0x00}, false, false, false, 2, 1},
		{"W=0 lengths", []byte{0x00, 0x01, 0x08, 0x02, 0x30, 0x00}, false, true, true, -1, -1},
		{"W=0 length overrun", []byte{0x00, 0x05, 0x30}, true, false, false, -1, -1},
		{"W=2 missing second", []byte{0x20, 0x01, 0x30}, true, false, false, -1, -1},
		{"leb128 truncated", []byte{0x00, 0x80}, true, false, false, -1, -1},
		{"leb128 9 bytes", []byte{0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, true, false, false, -1, -1},
		{"extension flag without byte", []byte{0x10, 0x34}, true, false, false, -1, -1},
		{"aggregation header only", []byte{0x10}, true, false, false, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(CodecAV1, tt.payload)
			if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrBadDescriptor)) {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if m.Keyframe != tt.key || (!tt.err && (m.StartOfFrame != tt.start || m.Temporal != tt.tid || m.Spatial != tt.sid)) {
				t.Fatalf("got %+v", m)
			}
		})
	}
}

func TestOpus(t *testing.T) {
	m, err := parse(CodecOpus, []byte{0xfc})
	if err != nil || !m.Keyframe || !m.StartOfFrame || m.Temporal != -1 {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := parse(CodecOpus, nil); !errors.Is(err, ErrBadDescriptor) {
		t.Fatalf("empty opus: %v", err)
	}
}

func TestParseMetaNoAllocs(t *testing.T) {
	pl := &codecs.VP8Payloader{EnablePictureID: true}
	payloads := map[Codec][]byte{
		CodecOpus: {0xfc, 1, 2},
		CodecVP8:  pl.Payload(1200, vp8Keyframe(320, 240, 50))[0],
		CodecVP9:  (&codecs.VP9Payloader{}).Payload(1200, vp9KeyHeader)[0],
		CodecH264: append([]byte{0x78, 0, byte(len(spsHigh1080))}, spsHigh1080...),
		CodecAV1:  append([]byte{0x10}, obu(1, true, 1, 1, 1, 2, 3)...),
	}
	for c, payload := range payloads {
		p := Packet{Payload: payload}
		if err := p.ParseMeta(c); err != nil || !p.Meta.Keyframe {
			t.Fatalf("%v: %v %+v", c, err, p.Meta)
		}
		if n := testing.AllocsPerRun(100, func() { _ = p.ParseMeta(c) }); n != 0 {
			t.Errorf("%v: %v allocs per ParseMeta", c, n)
		}
		bad := Packet{Payload: payload[:1]}
		if n := testing.AllocsPerRun(100, func() { _ = bad.ParseMeta(c) }); n != 0 {
			t.Errorf("%v: %v allocs per failing ParseMeta", c, n)
		}
	}
}
