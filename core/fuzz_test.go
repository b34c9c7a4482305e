package core

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/track"
)

// FuzzNode drives a whole Node with inputs decoded from the fuzzer's bytes:
// control calls in any order, RTP built from fuzz bytes around real SSRCs,
// raw garbage, RTCP, and time passing. Nothing may panic; once every
// endpoint is closed and the grace has passed, nothing may be left.
func FuzzNode(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 2, 0, 0, 3, 1, 5, 0, 1, 0, 0x80, 0x60, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0, 1, 0, 2, 1, 3, 0, 5, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 6, 0, 7, 1, 8, 0})
	f.Add([]byte("\x00\x00\x00\x01\x01\x00\x02\x00\x00\x02\x01\x01\x03\x01\x00\x00\x05\x00\x90\x10\x00\x00\x09"))
	f.Fuzz(func(t *testing.T, data []byte) {
		now := testutil.Epoch
		n, _ := New(Config{Seed: 7})
		var hs []Handle
		codecs := []track.Codec{track.CodecVP8, track.CodecOpus, track.CodecH264, track.CodecVP9, track.CodecAV1}
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		pick := func() Handle {
			if len(hs) == 0 {
				return Handle(next())
			}
			return hs[int(next())%len(hs)]
		}
		rtcp := make([]byte, 64)
		for len(data) > 0 {
			switch next() % 10 {
			case 0:
				h, err := n.CreateEndpoint(now, EndpointConfig{PeerID: fmt.Sprint("p", next()%8), AutoSubscribe: next()%2 == 0,
					Extensions: endpoint.Extensions{MID: 1, RID: 2, AudioLevel: 3}, HistoryPackets: 64, HistoryBytes: 4096})
				if err == nil {
					hs = append(hs, h)
				}
			case 1:
				_ = n.Join(now, pick(), fmt.Sprint("r", next()%2))
			case 2:
				o := endpoint.TrackOptions{Name: fmt.Sprint("t", next()%3), Codec: codecs[int(next())%len(codecs)], MID: fmt.Sprint(next() % 3)}
				if f := next(); f%2 == 1 { // NACK upstream, RTX on payload type 97 or 98
					o.NACK, o.PayloadType, o.RTXPayloadType = true, 96, 97+f/2%2
				}
				if k := next() % 4; k > 0 {
					for i := byte(0); i < k; i++ {
						o.Encodings = append(o.Encodings, track.Encoding{RID: fmt.Sprint("r", i), SSRC: uint32(next() % 8), RTXSSRC: uint32(next() % 16)})
					}
				}
				_ = n.Publish(now, pick(), o)
			case 3:
				_, _ = n.Subscribe(now, pick(), fmt.Sprint("p", next()%8), fmt.Sprint("t", next()%3),
					endpoint.SubscribeOptions{Spatial: int(next()%4) - 1, Temporal: int8(next()%4) - 1})
			case 4:
				_ = n.Unsubscribe(now, pick(), fmt.Sprint("p", next()%8), fmt.Sprint("t", next()%3))
			case 5: // RTP: a header around a small SSRC, then fuzz bytes
				h := pick()
				size := int(next()) % 64
				b := make([]byte, 12+size)
				b[0] = 0x80 | next()&0x3f
				b[1] = next()
				binary.BigEndian.PutUint16(b[2:], uint16(next()))
				binary.BigEndian.PutUint32(b[4:], uint32(next())*3000)
				binary.BigEndian.PutUint32(b[8:], uint32(next()%8))
				for i := 12; i < len(b); i++ {
					b[i] = next()
				}
				_ = n.HandleRTP(now, h, b)
			case 6:
				b := make([]byte, int(next())%48)
				for i := range b {
					b[i] = next()
				}
				_ = n.HandleRTCP(now, pick(), b)
			case 7:
				now = now.Add(time.Duration(next()) * 50 * time.Millisecond)
				n.HandleTimeout(now)
			case 8:
				_ = n.Leave(now, pick())
			case 9:
				_ = n.SetPaused(now, pick(), fmt.Sprint("p", next()%8), fmt.Sprint("t", next()%3), next()%2 == 0)
			}
			for _, ok := n.pollTransmit(); ok; _, ok = n.pollTransmit() {
			}
			for _, _, ok := n.pollRTCP(rtcp); ok; _, _, ok = n.pollRTCP(rtcp) {
			}
			for _, ok := n.pollEvent(); ok; _, ok = n.pollEvent() {
			}
		}
		for _, h := range hs {
			_ = n.CloseEndpoint(now, h)
		}
		n.HandleTimeout(now.Add(time.Hour))
		for _, ok := n.pollEvent(); ok; _, ok = n.pollEvent() {
		}
		for _, _, ok := n.pollRTCP(rtcp); ok; _, _, ok = n.pollRTCP(rtcp) {
		}
		if _, ok := n.PollTimeout(); ok {
			t.Fatal("a timer survives every endpoint")
		}
		if c := n.Counts(); c != (Counts{}) {
			t.Fatalf("live objects after everyone left: %+v", c)
		}
	})
}
