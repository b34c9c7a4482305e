package track_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sansrtc/sfu/track"
)

// deadlineRig is many NACKing tracks on one Output.
type deadlineRig struct {
	out    track.Output
	tracks []*track.RemoteTrack
	seq    []uint16
	lost   [][]uint16
	pkt    track.Packet
	// raw[i][key] is track i's packet bytes, built once: send patches
	// the sequence number and timestamp, so it allocates nothing.
	raw [][2][]byte
}

func newDeadlineRig(n int) *deadlineRig {
	r := &deadlineRig{seq: make([]uint16, n), lost: make([][]uint16, n), raw: make([][2][]byte, n)}
	for i := range n {
		r.tracks = append(r.tracks, track.NewRemoteTrack(track.RemoteConfig{
			Info: track.Info{Codec: track.CodecVP8}, Encodings: []track.Encoding{{SSRC: uint32(i + 1)}},
			NACK: true, NACKTries: 3, NACKRetry: 100 * time.Millisecond,
		}, &r.out))
	}
	return r
}

func (r *deadlineRig) send(now time.Time, i int, seq uint16, key bool) {
	k := 0
	if key {
		k = 1
	}
	b := r.raw[i][k]
	if b == nil {
		b = vp8{ssrc: uint32(i + 1), pid: 1, key: key}.bytes()
		r.raw[i][k] = b
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], uint32(seq)*3000)
	_ = r.pkt.Unmarshal(b)
	_, _ = r.tracks[i].HandleRTP(now, &r.pkt, 0)
}

// brute is the earliest deadline over every track, asked one by one, and
// how many tracks have one.
func (r *deadlineRig) brute() (time.Time, bool, int) {
	var at time.Time
	n := 0
	for _, t := range r.tracks {
		if d, ok := t.PollTimeout(); ok {
			n++
			if at.IsZero() || d.Before(at) {
				at = d
			}
		}
	}
	return at, !at.IsZero(), n
}

// The Output's deadline, kept incrementally, is always the minimum over
// the tracks, through losses, repairs, keyframe requests and keyframes,
// closes and timeouts; after HandleTimeout nothing due is left undone.
func TestOutputDeadlineMatchesTracks(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := newDeadlineRig(40)
		rnd := rand.New(rand.NewPCG(seed, 99))
		now := t0
		for i := range r.tracks {
			r.seq[i] = 100
			r.send(now, i, 100, true)
		}
		for step := range 3000 {
			i := rnd.IntN(len(r.tracks))
			switch op := rnd.IntN(20); {
			case op < 10: // the next packet, sometimes after a gap
				gap := uint16(1)
				if rnd.IntN(4) == 0 {
					gap += uint16(rnd.IntN(4))
				}
				for s := r.seq[i] + 1; s != r.seq[i]+gap; s++ {
					r.lost[i] = append(r.lost[i], s)
				}
				r.seq[i] += gap
				r.send(now, i, r.seq[i], rnd.IntN(30) == 0)
			case op < 14: // a repair
				if n := len(r.lost[i]); n > 0 {
					j := rnd.IntN(n)
					r.send(now, i, r.lost[i][j], false)
					r.lost[i] = append(r.lost[i][:j], r.lost[i][j+1:]...)
				}
			case op < 16:
				r.tracks[i].RequestKeyframe(now, 0)
			case op < 17 && rnd.IntN(10) == 0:
				r.tracks[i].Close()
			default:
				now = now.Add(time.Duration(rnd.IntN(150)) * time.Millisecond)
				r.out.HandleTimeout(now)
				if at, ok, _ := r.brute(); ok && !at.After(now) {
					t.Fatalf("seed %d step %d: a deadline %v is due at %v after HandleTimeout", seed, step, at.Sub(t0), now.Sub(t0))
				}
			}
			for {
				if _, ok := r.out.PollFeedback(); !ok {
					break
				}
			}
			want, wantOK, n := r.brute()
			got, ok := r.out.PollTimeout()
			if ok != wantOK || !got.Equal(want) || r.out.Timers() != n {
				t.Fatalf("seed %d step %d: PollTimeout %v %v, Timers %d; the tracks say %v %v, %d",
					seed, step, got.Sub(t0), ok, r.out.Timers(), want.Sub(t0), wantOK, n)
			}
		}
	}
}

// Packets and deadline queries allocate nothing in steady state, with
// timers running.
func TestOutputDeadlineAllocs(t *testing.T) {
	r := newDeadlineRig(100)
	for i := range r.tracks {
		r.send(t0, i, 1, true)
		r.send(t0, i, 3, false) // 2 lost: a NACK timer
		r.seq[i] = 3
	}
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		r.seq[i]++
		r.send(t0, i, r.seq[i], false)
		r.out.PollTimeout()
		i = (i + 1) % len(r.tracks)
	})
	if n != 0 {
		t.Fatalf("%v allocations per packet and PollTimeout", n)
	}
}

// BenchmarkPollTimeout: 1000 tracks with a NACK timer each; per op one
// packet to one of them and the Output's deadline.
func BenchmarkPollTimeout(b *testing.B) {
	r := newDeadlineRig(1000)
	for i := range r.tracks {
		r.send(t0, i, 1, true)
		r.send(t0, i, 3, false)
		r.seq[i] = 3
	}
	for {
		if _, ok := r.out.PollFeedback(); !ok {
			break
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.seq[i]++
		r.send(t0, i, r.seq[i], false)
		if _, ok := r.out.PollTimeout(); !ok {
			b.Fatal("no deadline")
		}
		i++
		if i == len(r.tracks) {
			i = 0
		}
	}
}
