package track_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sansrtc/sfu/track"
)

// nacked expands FeedbackNACK items into the sequence numbers they ask for.
func nacked(t *testing.T, fs []track.Feedback) []uint16 {
	t.Helper()
	var seqs []uint16
	for _, f := range fs {
		if f.Type != track.FeedbackNACK || f.Owner != 7 || f.SSRC != 100 {
			t.Fatalf("feedback %+v, want NACKs to the publisher for ssrc 100", f)
		}
		seqs = append(seqs, f.NACKPID)
		for i := range 16 {
			if f.NACKBLP&(1<<i) != 0 {
				seqs = append(seqs, f.NACKPID+uint16(i)+1)
			}
		}
	}
	return seqs
}

func nackRig(t *testing.T) *rig {
	r := &rig{t: t}
	r.rt = track.NewRemoteTrack(track.RemoteConfig{Owner: 7, Info: track.Info{Peer: "p", Name: "cam", Codec: track.CodecVP8},
		Encodings: []track.Encoding{{SSRC: 100}}, NACK: true, NACKRetry: 50 * time.Millisecond, NACKTries: 2}, &r.out)
	r.lt = track.NewLocalTrack(track.LocalConfig{Owner: 9, SSRC: 555, InitialSeq: 65530})
	r.lt.SetSource(t0, r.rt)
	return r
}

// TestRemoteNACKsLostPackets: a gap is NACKed at once (runs packed into
// PID+BLP items, across the 16-bit wrap), again every NACKRetry, at most
// NACKTries times; what arrives stops being asked for, and takes its
// place in the subscriber's sequence.
func TestRemoteNACKsLostPackets(t *testing.T) {
	r := nackRig(t)
	r.in(t0, 0, vp8{ssrc: 100, seq: 65530, ts: 0, pid: 1, key: true})
	r.feedback() // the subscription's keyframe request
	// 65531..65535, 0..14 and 16..19 are lost: 24 packets, two items.
	r.in(t0, 0, vp8{ssrc: 100, seq: 15, ts: 3000, pid: 2})
	r.in(t0, 0, vp8{ssrc: 100, seq: 20, ts: 6000, pid: 3})
	got := nacked(t, r.feedback())
	if len(got) != 24 || got[0] != 65531 || got[19] != 14 || got[20] != 16 || got[23] != 19 {
		t.Fatalf("NACKed %v", got)
	}
	if at, ok := r.rt.PollTimeout(); !ok || !at.Equal(t0.Add(50*time.Millisecond)) {
		t.Fatalf("retry at %v %v", at, ok)
	}
	// 65531 and 17 come back; the subscriber gets them in their places.
	first := r.in(t0.Add(10*time.Millisecond), 0, vp8{ssrc: 100, seq: 65531, ts: 1000, pid: 1})
	mid := r.in(t0.Add(10*time.Millisecond), 0, vp8{ssrc: 100, seq: 17, ts: 4000, pid: 2})
	if len(first) != 1 || first[0].SequenceNumber != 65531 || len(mid) != 1 || mid[0].SequenceNumber != 17 {
		t.Fatalf("late packets forwarded as %+v %+v", first, mid)
	}
	r.rt.HandleTimeout(t0.Add(50 * time.Millisecond))
	got = nacked(t, r.feedback())
	if len(got) != 22 || got[0] != 65532 || slices.Contains(got, 17) {
		t.Fatalf("second round NACKed %v", got)
	}
	// After NACKTries rounds the rest is given up.
	r.rt.HandleTimeout(t0.Add(100 * time.Millisecond))
	if fs := r.feedback(); len(fs) != 0 {
		t.Fatalf("NACKed beyond NACKTries: %v", nacked(t, fs))
	}
	if _, ok := r.rt.PollTimeout(); ok {
		t.Fatal("a timer is left after giving up")
	}
	st := r.rt.Stats()
	if st.NACKed != 24 || st.Recovered != 2 || st.NACKGaveUp != 22 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRemoteNACKBounds: a jump too big to repair packet by packet is not
// NACKed; audio is never; a track without NACK never.
func TestRemoteNACKBounds(t *testing.T) {
	r := nackRig(t)
	r.in(t0, 0, vp8{ssrc: 100, seq: 1, ts: 0, pid: 1, key: true})
	r.feedback()
	// A jump that far is taken once the packets after it confirm it (a
	// restart of the numbering, or a long outage).
	for seq := uint16(1000); seq < 1000+2; seq++ {
		var p track.Packet
		_ = p.Unmarshal(vp8{ssrc: 100, seq: seq, ts: 3000, pid: 2}.bytes())
		if _, err := r.rt.HandleRTP(t0, &p, 0); !errors.Is(err, track.ErrStray) {
			t.Fatalf("packet %d after a jump of 999: %v", seq, err)
		}
	}
	r.in(t0, 0, vp8{ssrc: 100, seq: 1002, ts: 3000, pid: 2})
	if fs := r.feedback(); len(fs) != 0 {
		t.Fatalf("a jump of 999 was NACKed: %d items", len(fs))
	}
	plain := newRig(t)
	plain.lt.SetSource(t0, plain.rt)
	plain.in(t0, 0, vp8{ssrc: 100, seq: 1, ts: 0, pid: 1, key: true})
	plain.feedback()
	plain.in(t0, 0, vp8{ssrc: 100, seq: 3, ts: 3000, pid: 2})
	if fs := plain.feedback(); len(fs) != 0 {
		t.Fatalf("NACK without NACK configured: %+v", fs)
	}
	var out track.Output
	audio := track.NewRemoteTrack(track.RemoteConfig{Info: track.Info{Codec: track.CodecOpus}, Encodings: []track.Encoding{{SSRC: 5}}, NACK: true}, &out)
	for _, seq := range []uint16{1, 5} {
		var p track.Packet
		b := vp8{ssrc: 5, seq: seq}.bytes()
		b[1] = 111
		_ = p.Unmarshal(b)
		if _, err := audio.HandleRTP(t0, &p, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := out.PollFeedback(); ok {
		t.Fatal("audio was NACKed")
	}
}

// TestRemoteNACKLossDoesNotAllocate: recording and NACKing loss allocates
// nothing.
func TestRemoteNACKLossDoesNotAllocate(t *testing.T) {
	r := nackRig(t)
	var p track.Packet
	seq := uint16(1)
	bufs := [2][]byte{vp8{ssrc: 100, seq: 0, pid: 1, key: true}.bytes(), vp8{ssrc: 100, pid: 1}.bytes()}
	_ = p.Unmarshal(bufs[0])
	_, _ = r.rt.HandleRTP(t0, &p, 0)
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		seq += 3 // two lost each time
		now = now.Add(10 * time.Millisecond)
		b := bufs[1]
		b[2], b[3] = byte(seq>>8), byte(seq)
		_ = p.Unmarshal(b)
		_, _ = r.rt.HandleRTP(now, &p, 0)
		r.rt.HandleTimeout(now)
		for {
			if _, ok := r.out.PollFeedback(); !ok {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per lossy packet", allocs)
	}
}
