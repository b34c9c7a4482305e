package track

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
)

// randPionPacket builds a random RTP packet with pion/rtp: CSRCs, a
// one-byte, two-byte or RFC 3550 extension block, and padding.
func randPionPacket(r *rand.Rand) *rtp.Packet {
	p := &rtp.Packet{Header: rtp.Header{
		Version:        2,
		Marker:         r.IntN(2) == 0,
		PayloadType:    uint8(r.IntN(128)),
		SequenceNumber: uint16(r.Uint32()),
		Timestamp:      r.Uint32(),
		SSRC:           r.Uint32(),
	}}
	for range r.IntN(16) {
		p.CSRC = append(p.CSRC, r.Uint32())
	}
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return b
	}
	switch r.IntN(4) {
	case 1: // one-byte
		p.Extension, p.ExtensionProfile = true, rtp.ExtensionProfileOneByte
		for _, id := range r.Perm(14)[:r.IntN(6)] {
			if err := p.SetExtension(uint8(id+1), randBytes(1+r.IntN(16))); err != nil {
				panic(err)
			}
		}
	case 2: // two-byte
		p.Extension, p.ExtensionProfile = true, rtp.ExtensionProfileTwoByte
		for _, id := range r.Perm(255)[:r.IntN(6)] {
			if err := p.SetExtension(uint8(id+1), randBytes(r.IntN(40))); err != nil {
				panic(err)
			}
		}
	case 3: // another profile: an opaque block
		p.Extension, p.ExtensionProfile = true, 0x1234
		p.Extensions = []rtp.Extension{}
		if err := p.SetExtension(0, randBytes(4*r.IntN(4))); err != nil {
			panic(err)
		}
	}
	p.Payload = randBytes(1 + r.IntN(60))
	if r.IntN(3) == 0 {
		p.Padding, p.PaddingSize = true, byte(1+r.IntN(8))
	}
	return p
}

func TestPacketCrossCheckPion(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		pp := randPionPacket(r)
		buf, err := pp.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		if err := p.Unmarshal(buf); err != nil {
			t.Fatalf("% x: %v", buf, err)
		}
		var back rtp.Packet
		if err := back.Unmarshal(buf); err != nil {
			t.Fatal(err)
		}
		if p.Marker != back.Marker || p.PayloadType != back.PayloadType || p.SequenceNumber != back.SequenceNumber ||
			p.Timestamp != back.Timestamp || p.SSRC != back.SSRC || int(p.CSRCCount) != len(back.CSRC) {
			t.Fatalf("% x: header %+v, pion %+v", buf, p, back.Header)
		}
		if !bytes.Equal(p.Payload, back.Payload) {
			t.Fatalf("% x: payload % x, pion % x", buf, p.Payload, back.Payload)
		}
		wantProfile := uint16(0)
		if back.Extension {
			wantProfile = back.ExtensionProfile
		}
		if p.ExtProfile != wantProfile {
			t.Fatalf("profile %x, pion %x", p.ExtProfile, wantProfile)
		}
		for id := 1; id < 256; id++ {
			got, want := p.Extension(uint8(id)), back.GetExtension(uint8(id))
			if wantProfile == 0x1234 {
				want = nil // not RFC 8285: no ids
			}
			if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("% x: extension %d = % x, pion % x", buf, id, got, want)
			}
		}
		if p.AudioLevel != -1 || p.Meta != (Meta{}) {
			t.Fatalf("Unmarshal did not reset AudioLevel/Meta: %+v", p)
		}
		// Every truncation parses exactly when pion's does, to the same
		// payload, and never panics.
		for n := range len(buf) {
			var q Packet
			var pq rtp.Packet
			err, perr := q.Unmarshal(buf[:n]), pq.Unmarshal(buf[:n])
			if (err == nil) != (perr == nil) {
				t.Fatalf("% x cut at %d: err %v, pion %v", buf, n, err, perr)
			}
			if err == nil && !bytes.Equal(q.Payload, pq.Payload) {
				t.Fatalf("% x cut at %d: payload differs", buf, n)
			}
		}
	}
}

func TestPacketErrors(t *testing.T) {
	good := []byte{0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xaa}
	tests := []struct {
		name string
		buf  []byte
		want error
	}{
		{"short", good[:11], ErrShortPacket},
		{"version 1", append([]byte{0x40}, good[1:]...), ErrBadVersion},
		{"version 3", append([]byte{0xc0}, good[1:]...), ErrBadVersion},
		{"CSRCs missing", append([]byte{0x82}, good[1:]...), ErrShortPacket},
		{"extension header missing", append([]byte{0x90}, good[1:]...), ErrBadExtension},
		{"extension overrun", append(append([]byte{0x90}, good[1:12]...), 0xbe, 0xde, 0, 2, 0x10, 0), ErrBadExtension},
		{"padding without room", append([]byte{0xa0}, good[1:12]...), ErrBadPadding},
		{"padding zero", append(append([]byte{0xa0}, good[1:12]...), 0), ErrBadPadding},
		{"padding overrun", append(append([]byte{0xa0}, good[1:12]...), 1, 3), ErrBadPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			if err := p.Unmarshal(tt.buf); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	var p Packet
	if err := p.Unmarshal(append(append([]byte{0xa0}, good[1:12]...), 7, 2)); err != nil || len(p.Payload) != 0 {
		t.Fatalf("padding-only payload: %v % x", err, p.Payload)
	}
}

func TestExtensionEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		profile uint16
		block   []byte
		id      uint8
		want    []byte
	}{
		{"one-byte after padding", 0xBEDE, []byte{0, 0, 0x21, 7, 8, 0}, 2, []byte{7, 8}},
		{"one-byte stops at id 15", 0xBEDE, []byte{0xf0, 0x10, 5, 0}, 1, nil},
		{"one-byte overrun", 0xBEDE, []byte{0x13, 1, 2, 0}, 1, nil},
		{"two-byte zero length", 0x1000, []byte{0, 9, 0, 0}, 9, []byte{}},
		{"two-byte appbits profile", 0x100f, []byte{3, 1, 0xee, 0}, 3, []byte{0xee}},
		{"two-byte lone id", 0x1000, []byte{0, 0, 0, 9}, 9, nil},
		{"two-byte overrun", 0x1000, []byte{9, 5, 1, 2}, 9, nil},
		{"id 0 never", 0xBEDE, []byte{0x00, 0x00, 0x00, 0x00}, 0, nil},
		{"unknown profile", 0x1234, []byte{0x10, 1, 0, 0}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Packet{ExtProfile: tt.profile, Extensions: tt.block}
			got := p.Extension(tt.id)
			if !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Fatalf("got % x, want % x", got, tt.want)
			}
		})
	}
}

// vp8RTP is a marshalled VP8 keyframe packet with an audio-level and an
// abs-send-time style extension.
func vp8RTP(tb testing.TB) []byte {
	pp := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, Timestamp: 9, SSRC: 11, CSRC: []uint32{1}}}
	if err := pp.SetExtension(1, []byte{0x85}); err != nil {
		tb.Fatal(err)
	}
	if err := pp.SetExtension(3, []byte{1, 2, 3}); err != nil {
		tb.Fatal(err)
	}
	pp.Payload = append([]byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x40}, vp8Keyframe(640, 480, 100)...)
	buf, err := pp.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return buf
}

func TestPacketNoAllocs(t *testing.T) {
	buf := vp8RTP(t)
	var p Packet
	var lvl uint8
	n := testing.AllocsPerRun(200, func() {
		if p.Unmarshal(buf) != nil || p.ParseMeta(CodecVP8) != nil {
			t.Fatal("parse failed")
		}
		lvl, _, _ = AudioLevel(p.Extension(1))
		_ = p.Extension(3)
	})
	if n != 0 {
		t.Fatalf("%v allocs per packet", n)
	}
	if !p.Meta.Keyframe || p.Meta.PictureID != 0x123 || p.Meta.Temporal != 1 || lvl != 5 || p.Meta.Width != 640 {
		t.Fatalf("unexpected parse: %+v level %d", p.Meta, lvl)
	}
}

func BenchmarkPacketUnmarshal(b *testing.B) {
	buf := vp8RTP(b)
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := p.Unmarshal(buf); err != nil {
			b.Fatal(err)
		}
		if err := p.ParseMeta(CodecVP8); err != nil {
			b.Fatal(err)
		}
		_ = p.Extension(3)
	}
}
