package track_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sansrtc/sfu/track"
)

// A publisher whose RTP numbering restarts (an encoder restart, a gateway,
// ffmpeg relaunched) keeps reaching its subscriber: the RemoteTrack
// re-anchors its numbering, the LocalTrack asks for a keyframe, resumes on
// it, and the subscriber's sequence continues by one, its timestamps move
// forward. The old numbering's stale packets are dropped after it.
func TestRemoteSequenceRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		// next is the first sequence number after the restart, given the
		// last one before it; keyAfter how many delta packets precede
		// the new numbering's first keyframe.
		next     func(last uint16) uint16
		keyAfter int
	}{
		{"beyond half the space", func(l uint16) uint16 { return l + 40000 }, 0},
		{"beyond half the space, keyframe later", func(l uint16) uint16 { return l + 40000 }, 7},
		{"backwards past the history", func(l uint16) uint16 { return l - 3000 }, 4},
		{"backwards into the history", func(l uint16) uint16 { return l - 300 }, 2},
		{"ahead past the history", func(l uint16) uint16 { return l + 5000 }, 3},
		{"half the space", func(l uint16) uint16 { return l + 32768 }, 1},
		{"ahead past what is repaired", func(l uint16) uint16 { return l + 200 }, 0},
	} {
		for _, nack := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/nack=%v", tc.name, nack), func(t *testing.T) {
				r := newRig(t)
				if nack {
					r = nackRig(t)
				}
				r.lt.SetSource(t0, r.rt)
				r.feedback()
				now := t0
				seq, ts, pid := uint16(64000), uint32(90000), uint16(100)
				var last track.Packet
				// 1500 packets of the first numbering (it wraps at 65536).
				for i := range 1500 {
					now = now.Add(10 * time.Millisecond)
					got := r.in(now, 0, vp8{ssrc: 100, seq: seq, ts: ts, pid: pid, key: i == 0})
					if len(got) != 1 {
						t.Fatalf("packet %d of the first numbering not forwarded", i)
					}
					last, _ = wire(t, got[0])
					seq++
					ts += 900
					pid++
				}
				// The restart: new sequence numbers, new timestamps.
				seq, ts = tc.next(seq-1), 12345
				sent := 0
				var first track.Packet
				requested, answer := false, false
				for i := 0; i < tc.keyAfter+20; i++ {
					now = now.Add(10 * time.Millisecond)
					// The publisher sends its own keyframe at keyAfter, and
					// answers a request with one.
					key := i == tc.keyAfter || answer
					answer = false
					var p track.Packet
					if err := p.Unmarshal(vp8{ssrc: 100, seq: seq, ts: ts, pid: pid, key: key}.bytes()); err != nil {
						t.Fatal(err)
					}
					stored, err := r.rt.HandleRTP(now, &p, 0)
					seq++
					ts += 900
					pid++
					if err != nil {
						// The first packets of a new numbering are refused
						// until the run shows it is one.
						if i >= 2 {
							t.Fatalf("packet %d after the restart refused: %v", i, err)
						}
						continue
					}
					r.lt.Forward(now, stored, &r.out)
					got := r.poll()
					for _, f := range r.feedback() {
						if f.Type == track.FeedbackPLI || f.Type == track.FeedbackFIR {
							requested, answer = true, true
						}
					}
					if sent > 0 && len(got) != 1 {
						t.Fatalf("packet %d after the resumption not forwarded", i)
					}
					if !key && sent == 0 && len(got) != 0 {
						t.Fatalf("delta packet %d of the new numbering forwarded before its keyframe", i)
					}
					for _, g := range got {
						p, _ := wire(t, g)
						if sent == 0 {
							first = p
							if !p.Meta.Keyframe {
								t.Fatal("resumed on a delta packet")
							}
						}
						if p.SequenceNumber != last.SequenceNumber+1 {
							t.Fatalf("subscriber's sequence %d → %d across the restart", last.SequenceNumber, p.SequenceNumber)
						}
						if d := int32(p.Timestamp - last.Timestamp); d <= 0 || d > 90000 {
							t.Fatalf("subscriber's timestamp moved by %d", d)
						}
						last = p
						sent++
					}
				}
				if sent < 15 {
					t.Fatalf("%d packets forwarded after the restart (first seq %d)", sent, first.SequenceNumber)
				}
				if !requested {
					t.Fatal("no keyframe requested from the publisher after the restart")
				}
				if n := r.rt.Stats().Restarts; n != 1 {
					t.Fatalf("%d restarts counted", n)
				}
				if n := r.lt.Stats().Restarts; n != 1 {
					t.Fatalf("the subscription followed %d restarts", n)
				}
				// The old numbering is stale now: its packets are dropped.
				var p track.Packet
				if err := p.Unmarshal(vp8{ssrc: 100, seq: 64000 + 1499, ts: 90000, pid: 1}.bytes()); err != nil {
					t.Fatal(err)
				}
				if _, err := r.rt.HandleRTP(now, &p, 0); err == nil {
					t.Fatal("a packet of the old numbering accepted after the restart")
				}
			})
		}
	}
}

// What is not a restart stays what it was: spurious duplicates in a run,
// a stale packet alone, a late repair; none re-anchors the numbering.
func TestRemoteNoFalseRestart(t *testing.T) {
	r := nackRig(t)
	r.lt.SetSource(t0, r.rt)
	now := t0
	send := func(seq uint16, ts uint32, key bool) error {
		var p track.Packet
		if err := p.Unmarshal(vp8{ssrc: 100, seq: seq, ts: ts, pid: seq & 0x7fff, key: key}.bytes()); err != nil {
			t.Fatal(err)
		}
		stored, err := r.rt.HandleRTP(now, &p, 0)
		if err == nil {
			r.lt.Forward(now, stored, &r.out)
		}
		return err
	}
	for s := uint16(1000); s < 2500; s++ {
		now = now.Add(5 * time.Millisecond)
		if s == 1600 || s == 1601 || s == 1602 {
			continue // lost, repaired below
		}
		if err := send(s, uint32(s)*900, s == 1000); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		seq  uint16
		ts   uint32
		want error
	}{
		{2400, 2400 * 900, track.ErrDuplicate}, // a run of true duplicates
		{2401, 2401 * 900, track.ErrDuplicate},
		{2402, 2402 * 900, track.ErrDuplicate},
		{2403, 2403 * 900, track.ErrDuplicate},
		{100, 1, track.ErrTooOld}, // stale, alone
		{1600, 1600 * 900, nil},   // late repairs, in a run
		{1601, 1601 * 900, nil},
		{1602, 1602 * 900, nil},
		{300, 1, track.ErrTooOld}, // two stale ones in a row, then the stream goes on
		{301, 1, track.ErrTooOld},
		{2500, 2500 * 900, nil},
		{302, 1, track.ErrTooOld},
		{9000, 1, track.ErrStray}, // strays ahead, and clashing, in pairs
		{9001, 1, track.ErrStray},
		{2200, 7, track.ErrStray},
		{2201, 7, track.ErrStray},
		{2501, 2501 * 900, nil},
	} {
		if err := send(c.seq, c.ts, false); !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Fatalf("packet %d: %v, want %v", c.seq, err, c.want)
		}
	}
	if n := r.rt.Stats().Restarts; n != 0 {
		t.Fatalf("%d restarts counted", n)
	}
	if n := r.lt.Stats().Restarts; n != 0 {
		t.Fatalf("the subscription followed %d restarts", n)
	}
	if st := r.lt.State(); st != track.LocalForwarding {
		t.Fatalf("subscription %v", st)
	}
}
