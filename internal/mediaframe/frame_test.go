package mediaframe

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/sansrtc/sfu/track"
)

func TestRoundTrip(t *testing.T) {
	p := &track.Packet{Marker: true, PayloadType: 96, SequenceNumber: 65535, Timestamp: 0xdeadbeef,
		Payload: []byte{1, 2, 3}, Encoding: 2, AudioLevel: -1, Voice: true,
		Meta: track.Meta{Keyframe: true, Spatial: -1, Temporal: 2}}
	b := Append([]byte{0xff}, p)
	if len(b) != 1+HeaderLen+3 {
		t.Fatalf("len %d", len(b))
	}
	var f Frame
	if err := Decode(b[1:], &f); err != nil {
		t.Fatal(err)
	}
	want := Frame{Marker: true, Voice: true, Keyframe: true, Encoding: 2, PayloadType: 96, SequenceNumber: 65535,
		Timestamp: 0xdeadbeef, AudioLevel: -1, Spatial: -1, Temporal: 2}
	payload := f.Payload
	f.Payload = nil
	if !reflect.DeepEqual(f, want) || !bytes.Equal(payload, p.Payload) {
		t.Fatalf("got %+v payload %v", f, payload)
	}
	f.Payload = payload
	var q track.Packet
	f.Packet(&q)
	if q.SequenceNumber != p.SequenceNumber || q.Timestamp != p.Timestamp || !q.Marker || q.PayloadType != 96 || q.AudioLevel != -1 || !q.Voice {
		t.Fatalf("packet %+v", q)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Append(nil, &track.Packet{PayloadType: 111, Payload: []byte{9}})
	for name, b := range map[string][]byte{
		"short":   good[:HeaderLen-1],
		"version": append([]byte{2}, good[1:]...),
		"flags":   append([]byte{1, 0x80}, good[2:]...),
		"pt":      append([]byte{1, 0, 0, 200}, good[4:]...),
	} {
		var f Frame
		if err := Decode(b, &f); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	var f Frame
	if err := Decode(good[:HeaderLen], &f); err != nil || len(f.Payload) != 0 {
		t.Errorf("empty payload (padding) must decode: %v", err)
	}
}

func TestNoAllocs(t *testing.T) {
	p := &track.Packet{PayloadType: 96, Payload: make([]byte, 1200)}
	buf := make([]byte, 0, 1500)
	var f Frame
	if n := testing.AllocsPerRun(100, func() {
		b := Append(buf[:0], p)
		_ = Decode(b, &f)
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, &track.Packet{PayloadType: 96, Payload: []byte{1, 2}, Meta: track.Meta{Keyframe: true}}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		if Decode(b, &fr) != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		var p track.Packet
		fr.Packet(&p)
		p.Encoding, p.Meta = fr.Encoding, track.Meta{Keyframe: fr.Keyframe, Spatial: fr.Spatial, Temporal: fr.Temporal}
		if out := Append(nil, &p); !bytes.Equal(out, b) {
			t.Fatalf("re-encoded %x, was %x", out, b)
		}
	})
}
