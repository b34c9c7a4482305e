package track_test

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/sansrtc/sfu/track"
)

// The extensions an endpoint stamps on a transmit are marshalled as
// pion reads them: transport-wide sequence number, abs-send-time, audio
// level, together with extra ones passed to MarshalTo, in the one-byte
// form when ids allow and the two-byte form otherwise; without
// allocating.
func TestTransmitExtensions(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 3, 250_000_000, time.UTC) // 3.25 s into a 64 s period
	for _, tc := range []struct {
		name  string
		tr    track.Transmit
		extra []track.HeaderExtension
	}{
		{"video", track.Transmit{TransportSeqExt: 3, TransportSeq: 0xfffe, AbsSendTimeExt: 2, AbsSendTime: track.AbsSendTime(at), AudioLevel: -1, AudioLevelExt: 1}, nil},
		{"audio", track.Transmit{TransportSeqExt: 5, TransportSeq: 7, AudioLevelExt: 1, AudioLevel: 33, Voice: true}, nil},
		{"two-byte", track.Transmit{TransportSeqExt: 3, TransportSeq: 9, AudioLevel: -1}, []track.HeaderExtension{{ID: 20, Data: []byte{1, 2, 3}}}},
		{"none", track.Transmit{AudioLevel: -1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := tc.tr
			tr.SSRC, tr.SequenceNumber, tr.Timestamp, tr.PayloadType, tr.PictureID, tr.TL0PICIDX = 1, 2, 3, 96, -1, -1
			tr.Payload = []byte{9, 8, 7, 6, 5}
			buf := make([]byte, 1500)
			n, err := tr.MarshalTo(buf, tc.extra)
			if err != nil || n != tr.MarshalSize(tc.extra) {
				t.Fatalf("MarshalTo %d, %v; MarshalSize %d", n, err, tr.MarshalSize(tc.extra))
			}
			var p rtp.Packet
			if err := p.Unmarshal(buf[:n]); err != nil {
				t.Fatal(err)
			}
			if string(p.Payload) != string(tr.Payload) || p.SequenceNumber != 2 {
				t.Fatalf("pion reads %+v", p.Header)
			}
			want := map[uint8][]byte{}
			if tr.TransportSeqExt != 0 {
				want[tr.TransportSeqExt] = []byte{byte(tr.TransportSeq >> 8), byte(tr.TransportSeq)}
			}
			if tr.AbsSendTimeExt != 0 {
				want[tr.AbsSendTimeExt] = []byte{byte(tr.AbsSendTime >> 16), byte(tr.AbsSendTime >> 8), byte(tr.AbsSendTime)}
			}
			if tr.AudioLevelExt != 0 && tr.AudioLevel >= 0 {
				want[tr.AudioLevelExt] = []byte{0x80 | 33}
			}
			for _, e := range tc.extra {
				want[e.ID] = e.Data
			}
			if got := p.GetExtensionIDs(); len(got) != len(want) {
				t.Fatalf("extension ids %v, want %d of them", got, len(want))
			}
			for id, d := range want {
				if got := p.GetExtension(id); string(got) != string(d) {
					t.Fatalf("extension %d: %x, want %x", id, got, d)
				}
			}
			if a := testing.AllocsPerRun(100, func() { _, _ = tr.MarshalTo(buf, tc.extra) }); a != 0 {
				t.Fatalf("%v allocations", a)
			}
		})
	}
	if got, want := track.AbsSendTime(at), uint32(3.25*(1<<18)); got != want {
		t.Fatalf("abs-send-time %#x, want %#x", got, want)
	}
	if got := track.AbsSendTime(at.Add(64 * time.Second)); got != track.AbsSendTime(at) {
		t.Fatal("abs-send-time does not wrap every 64 s")
	}
}
