package track

import (
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
)

// checkMeta asserts the invariants every parser keeps, whatever the input:
// rewrite offsets point inside the payload at the bytes they describe, and
// ids fit their widths.
func checkMeta(t *testing.T, c Codec, payload []byte, m *Meta, err error) {
	t.Helper()
	if err != nil && m.Keyframe {
		t.Fatalf("%v: keyframe despite error %v", c, err)
	}
	if m.PictureID >= 0 {
		if m.PictureIDBits != 7 && m.PictureIDBits != 15 {
			t.Fatalf("%v: picture id bits %d", c, m.PictureIDBits)
		}
		if m.PictureID >= 1<<m.PictureIDBits {
			t.Fatalf("%v: picture id %d exceeds %d bits", c, m.PictureID, m.PictureIDBits)
		}
		end := int(m.PictureIDOffset) + int(m.PictureIDBits+1)/8
		if end > len(payload) {
			t.Fatalf("%v: picture id at %d overruns %d bytes", c, m.PictureIDOffset, len(payload))
		}
		var v int32
		if m.PictureIDBits == 7 {
			v = int32(payload[m.PictureIDOffset])
		} else {
			v = int32(payload[m.PictureIDOffset]&0x7f)<<8 | int32(payload[m.PictureIDOffset+1])
		}
		if v != m.PictureID {
			t.Fatalf("%v: picture id %d but %d at its offset", c, m.PictureID, v)
		}
	} else if m.PictureID != -1 {
		t.Fatalf("%v: picture id %d", c, m.PictureID)
	}
	if m.TL0PICIDX >= 0 {
		if int(m.TL0PICIDXOffset) >= len(payload) || int16(payload[m.TL0PICIDXOffset]) != m.TL0PICIDX {
			t.Fatalf("%v: TL0PICIDX %d at %d", c, m.TL0PICIDX, m.TL0PICIDXOffset)
		}
	} else if m.TL0PICIDX != -1 {
		t.Fatalf("%v: TL0PICIDX %d", c, m.TL0PICIDX)
	}
	if m.Temporal < -1 || m.Temporal > 7 || m.Spatial < -1 || m.Spatial > 7 {
		t.Fatalf("%v: layers S%d T%d", c, m.Spatial, m.Temporal)
	}
	if m.Keyframe && !m.StartOfFrame {
		t.Fatalf("%v: keyframe that does not start a frame", c)
	}
}

func fuzzCodec(f *testing.F, c Codec, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		p := Packet{Payload: payload}
		err := p.ParseMeta(c)
		checkMeta(t, c, payload, &p.Meta, err)
	})
}

func FuzzOpus(f *testing.F) {
	fuzzCodec(f, CodecOpus, [][]byte{{0xfc, 0xff, 0xfe}, {0x78}, {}})
}

func FuzzVP8(f *testing.F) {
	pl := &codecs.VP8Payloader{EnablePictureID: true}
	seeds := pl.Payload(60, vp8Keyframe(640, 360, 100))
	seeds = append(seeds, pl.Payload(60, vp8Keyframe(640, 360, 100))...)
	seeds = append(seeds, []byte{0x90, 0xf0, 0x81, 0x23, 0x07, 0xe0, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 1, 2, 3, 4})
	fuzzCodec(f, CodecVP8, seeds)
}

func FuzzVP9(f *testing.F) {
	var seeds [][]byte
	for _, flexible := range []bool{false, true} {
		pl := &codecs.VP9Payloader{FlexibleMode: flexible}
		seeds = append(seeds, pl.Payload(30, vp9KeyHeader)...)
		seeds = append(seeds, pl.Payload(30, vp9InterHeader)...)
	}
	seeds = append(seeds,
		[]byte{0x2a, 0x22, 0x00, 0x30, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68, 0xff},
		[]byte{0xfe, 0x81, 0x02, 0x20, 0x03, 0x05, 0x02, 0x38, 0x00, 0x10, 0x00, 0x20, 0x02, 0x0c, 0x01, 0x02},
	)
	fuzzCodec(f, CodecVP9, seeds)
}

func FuzzH264(f *testing.F) {
	pl := &codecs.H264Payloader{}
	seeds := pl.Payload(60, annexB(spsHigh1080, ppsX264, append([]byte{0x65, 0x88}, make([]byte, 100)...)))
	seeds = append(seeds, spsBase404, spsHigh1080, []byte{0x09, 0xf0}, []byte{0x41, 0x9a, 1}, []byte{0x7c, 0x85, 0x88})
	fuzzCodec(f, CodecH264, seeds)
}

func FuzzAV1(f *testing.F) {
	pl := &codecs.AV1Payloader{}
	seeds := pl.Payload(40, []byte{0x0a, 0x05, 0, 0, 0, 0x0a, 0x0b, 0x36, 0x40, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64})
	seeds = append(seeds, []byte{0x18, 0x08, 1}, []byte{0x00, 0x01, 0x08, 0x02, 0x34, 0x48}, []byte{0xa0, 0x02, 0xff, 0xff, 0x34, 0x48, 0x00})
	fuzzCodec(f, CodecAV1, seeds)
}

// FuzzPacket feeds whole RTP packets: the header view, every extension id
// and every codec's parser.
func FuzzPacket(f *testing.F) {
	f.Add(vp8RTP(f))
	f.Add([]byte{0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xaa})
	f.Add([]byte{0xb1, 0xe0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0x10, 0x00, 0, 1, 9, 1, 0xee, 0, 0x10, 0x02})
	f.Fuzz(func(t *testing.T, buf []byte) {
		var p Packet
		if p.Unmarshal(buf) != nil {
			return
		}
		if len(p.Payload) > len(buf) || len(p.Extensions) > len(buf) {
			t.Fatal("view larger than its buffer")
		}
		for id := range 256 {
			if e := p.Extension(uint8(id)); len(e) > len(p.Extensions) {
				t.Fatalf("extension %d longer than the block", id)
			}
		}
		for c := CodecUnknown; c <= CodecAV1+1; c++ {
			err := p.ParseMeta(c)
			checkMeta(t, c, p.Payload, &p.Meta, err)
			if p.Marker && !p.Meta.EndOfFrame {
				t.Fatal("marker without EndOfFrame")
			}
		}
	})
}

// FuzzRTCP walks compound datagrams with every accessor. Whatever pion
// accepts as an unpadded PLI must read as PLI here too (pion's PLI ignores
// the padding bit, where we reject a padding count that overruns).
func FuzzRTCP(f *testing.F) {
	rr := []ReportBlock{{SSRC: 1, FractionLost: 2, TotalLost: -3, HighestSeq: 4, Jitter: 5, LSR: 6, DLSR: 7}}
	f.Add(AppendSenderReport(nil, 1, 2, 3, 4, 5, rr))
	f.Add(AppendReceiverReport(AppendPLI(nil, 1, 2), 1, rr))
	f.Add(AppendNACK(AppendFIR(nil, 1, 2, 3), 1, 2, []uint16{1, 2, 9, 100}))
	f.Add(AppendREMB(nil, 1, 1e6, []uint32{1, 2, 3}))
	if b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.Goodbye{Sources: []uint32{1}, Reason: "x"}, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "a"}}}}}}); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		total := 0
		for d := buf; len(d) > 0; {
			p, rest, err := ReadRTCP(d)
			if err != nil {
				break
			}
			if len(rest) >= len(d) || len(p.Body)+4 > len(d)-len(rest) {
				t.Fatal("ReadRTCP made no progress or overran")
			}
			total += len(d) - len(rest)
			exerciseRTCP(&p)
			d = rest
		}
		if total > len(buf) {
			t.Fatal("walked past the datagram")
		}
		if pk, err := rtcp.Unmarshal(buf); err == nil && len(pk) > 0 && buf[0]&0x20 == 0 {
			if pli, ok := pk[0].(*rtcp.PictureLossIndication); ok {
				p, _, err := ReadRTCP(buf)
				if err != nil || !p.IsPLI() || p.MediaSSRC() != pli.MediaSSRC {
					t.Fatalf("pion reads PLI %+v; we read %+v %v", pli, p, err)
				}
			}
		}
	})
}
