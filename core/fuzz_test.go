package core

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/sdn"
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

// FuzzClusterNode drives node a of a linked pair (a publisher on b, a
// subscriber on a) with what a misbehaving neighbour could send on the
// link, decoded from the fuzzer's bytes: raw messages, forged directory
// entries (map messages in sdn's wire format), forged media frames,
// repairs and upstream feedback on the track's channel, besides real
// media and time passing. Nothing may panic, and once every peer has
// left and the soft state has expired, nothing may be left on either node.
func FuzzClusterNode(f *testing.F) {
	f.Add([]byte{0, 5, 1, 2, 3, 4, 5, 1, 0, 2, 9, 6, 6, 6, 3, 0, 4, 0, 5, 1})
	f.Add([]byte{1, 1, 3, 'c', 'a', 'm', 2, 1, 0x90, 0x80, 0, 0, 6, 2, 7, 5, 3})
	f.Add([]byte{2, 0, 1, 96, 0, 1, 0, 0, 0, 1, 0xff, 0, 0, 0x90, 0xc0, 0x80, 1, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newMemPair(t)
		send := make([]byte, 1500)
		m.pump(t, send)
		m.advance(t, 2*time.Second, send)
		pub, err := m.b.CreateEndpoint(m.now, EndpointConfig{PeerID: "x"})
		must(t, err)
		must(t, m.b.Join(m.now, pub, "room"))
		must(t, m.b.Publish(m.now, pub, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, PayloadType: 96,
			Encodings: []track.Encoding{{SSRC: 1111}}}))
		sub, err := m.a.CreateEndpoint(m.now, EndpointConfig{PeerID: "y", AutoSubscribe: true})
		must(t, err)
		must(t, m.a.Join(m.now, sub, "room"))
		m.advance(t, time.Second, send)
		ch := cluster.ChannelID("room", "x", "cam", 0)
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		take := func(n int) []byte {
			n = min(n, len(data))
			b := data[:n]
			data = data[n:]
			return b
		}
		in := make([]byte, 1500)
		seq, pid := uint16(1), uint16(1)
		var sdnSeq uint32 = 1 << 20
		for len(data) > 0 {
			var msg []byte
			switch next() % 8 {
			case 0: // raw bytes
				msg = take(int(next()))
			case 1: // a forged directory entry of b's, or of a node that does not exist
				owner := uint32(2)
				if next()%2 == 0 {
					owner = uint32(next())
				}
				key := string(take(int(next() % 16)))
				value := take(int(next() % 16))
				msg = []byte{15}
				msg = binary.BigEndian.AppendUint32(msg, owner)
				msg = binary.BigEndian.AppendUint64(msg, uint64(next())<<40)
				msg = binary.BigEndian.AppendUint32(msg, 0)
				msg = binary.BigEndian.AppendUint16(msg, 1)
				msg = append(msg, 6)
				msg = append(msg, "r:room"...)
				msg = append(msg, byte(len(key)))
				msg = append(msg, key...)
				msg = binary.BigEndian.AppendUint16(msg, uint16(len(value)))
				msg = append(msg, value...)
			case 2, 3, 4: // data, repair or feedback on the track's channel
				typ := []byte{13, 18, 19}[next()%3]
				msg = append([]byte{typ}, binary.BigEndian.AppendUint64(nil, ch)...)
				if typ == 13 {
					sdnSeq += uint32(next()%4) - 1
					msg = binary.BigEndian.AppendUint32(msg, sdnSeq)
				}
				msg = append(msg, take(int(next()%48))...)
			case 5: // time passes
				m.advance(t, time.Duration(next())*20*time.Millisecond, send)
				continue
			case 6: // real media from b's publisher
				_ = m.b.HandleRTP(m.now, pub, vp8Packet(in, 1111, seq, uint32(seq)*3000, pid, next()%8 == 0, 200))
				seq, pid = seq+1, pid+1
			case 7: // the subscriber leaves and comes back
				if m.a.Leave(m.now, sub) == nil {
					_ = m.a.Join(m.now, sub, "room")
				}
			}
			if msg != nil {
				m.a.HandleLinkMessage(m.now, 1, msg)
			}
			m.pump(t, send)
		}
		_ = m.a.CloseEndpoint(m.now, sub)
		_ = m.b.CloseEndpoint(m.now, pub)
		m.advance(t, sdn.DefaultSoftStateTimeout+cluster.DefaultSourceGrace+time.Second, send)
		for _, n := range []*Node{m.a, m.b} {
			if c := n.Counts(); c != (Counts{}) {
				t.Fatalf("live objects after everyone left: %+v", c)
			}
		}
	})
}
