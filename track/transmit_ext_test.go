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

// A subscriber that negotiated RTX gets retransmissions as RFC 4588 RTX:
// the RTX SSRC and payload type, the RTX stream's own consecutive
// sequence numbers, the original sequence number first in the payload,
// then the original payload with its rewritten picture id; pion's RTX
// reading sees the original packet in it.
func TestLocalRetransmitsAsRTX(t *testing.T) {
	r := newRig(t)
	r.lt = track.NewLocalTrack(track.LocalConfig{Owner: 9, SSRC: 555, InitialSeq: 65530, InitialPictureID: 32760,
		RTXSSRC: 556, RTXPayloadType: 97, InitialRTXSeq: 65535})
	r.lt.SetSource(t0, r.rt)
	var sent []track.Transmit
	for i := range 10 {
		sent = append(sent, r.in(t0, 0, vp8{ssrc: 100, seq: uint16(i), ts: uint32(3000 * i), pid: uint16(i), key: i == 0, payload: byte(i)})...)
	}
	if got := r.lt.RTXSSRC(); got != 556 {
		t.Fatalf("RTXSSRC %d", got)
	}
	now := t0.Add(50 * time.Millisecond)
	for k, i := range []int{4, 7} {
		_, orig := wire(t, sent[i])
		if !r.lt.HandleNACK(now, sent[i].SequenceNumber, &r.out) {
			t.Fatal("NACK not served")
		}
		got := r.poll()
		if len(got) != 1 || !got[0].Retransmit || !got[0].RTX {
			t.Fatalf("retransmissions %+v", got)
		}
		buf := make([]byte, 1500)
		n, err := got[0].MarshalTo(buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if p.SSRC != 556 || p.PayloadType != 97 || p.SequenceNumber != uint16(65535+k) {
			t.Fatalf("RTX header %+v", p.Header)
		}
		var o rtp.Packet
		if err := o.Unmarshal(orig); err != nil {
			t.Fatal(err)
		}
		if osn := uint16(p.Payload[0])<<8 | uint16(p.Payload[1]); osn != o.SequenceNumber {
			t.Fatalf("OSN %d, want %d", osn, o.SequenceNumber)
		}
		if string(p.Payload[2:]) != string(o.Payload) || p.Timestamp != o.Timestamp || p.Marker != o.Marker {
			t.Fatalf("RTX payload %x, want %x", p.Payload[2:], o.Payload)
		}
	}
	// Without an RTX payload type (a codec switch to one without RTX),
	// retransmissions go on the media SSRC again.
	r.lt.SetRTXPayloadType(0)
	if !r.lt.HandleNACK(now, sent[5].SequenceNumber, &r.out) {
		t.Fatal("NACK not served")
	}
	if got := r.poll(); len(got) != 1 || got[0].RTX || got[0].SSRC != 555 {
		t.Fatalf("retransmission %+v", got)
	}
}
