package track_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
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

// A timerWorld is one random scenario played on three copies of the same
// tracks, each copy on its own Output. Copy heap is driven through
// Output.HandleTimeout, the code under test. Copy due is the oracle for
// it: on a timeout it runs HandleTimeout on exactly the tracks whose
// deadline, recomputed from scratch, is due. Copy all is the algorithm the
// heap replaced, which ran every track's HandleTimeout on each timeout: it
// drops spent NACK entries sooner (so its deadlines differ), but must send
// the same NACKs and PLIs.
type timerWorld struct {
	rnd    *rand.Rand
	out    [3]track.Output
	tracks [3][]*track.RemoteTrack
	// Per track and encoding: the highest sequence number sent, the ones
	// skipped and not yet repaired, whether the SSRC is bound.
	seq   [][]uint16
	lost  [][][]uint16
	bound [][]bool
	pkt   track.Packet
}

const (
	copyHeap = iota
	copyDue
	copyAll
)

func ssrcOf(i, enc int) uint32 { return uint32(1000*enc + i + 1) }

func newTimerWorld(seed uint64) *timerWorld {
	w := &timerWorld{rnd: rand.New(rand.NewPCG(seed, 7))}
	n := 1 + w.rnd.IntN(60)
	tries := 1 + w.rnd.IntN(4)
	retry := time.Duration(20+w.rnd.IntN(130)) * time.Millisecond
	hist := []int{32, 1024}[w.rnd.IntN(2)]
	kfMin := time.Duration(50+w.rnd.IntN(400)) * time.Millisecond
	kfRetry := time.Duration(100+w.rnd.IntN(1000)) * time.Millisecond
	for i := range n {
		encs := []track.Encoding{{SSRC: ssrcOf(i, 0)}}
		bound := []bool{true}
		if w.rnd.IntN(2) == 0 { // simulcast; the second SSRC maybe learnt later
			b := w.rnd.IntN(2) == 0
			e := track.Encoding{RID: "h"}
			if b {
				e.SSRC = ssrcOf(i, 1)
			}
			encs = append(encs, e)
			bound = append(bound, b)
		}
		for c := range w.tracks {
			w.tracks[c] = append(w.tracks[c], track.NewRemoteTrack(track.RemoteConfig{
				Owner: uint64(i + 1), Info: track.Info{Codec: track.CodecVP8}, Encodings: encs,
				HistoryPackets: hist, HistoryBytes: hist * 64, KeyframeMinInterval: kfMin, KeyframeRetry: kfRetry,
				NACK: true, NACKTries: tries, NACKRetry: retry,
			}, &w.out[c]))
		}
		w.seq = append(w.seq, make([]uint16, len(encs)))
		w.lost = append(w.lost, make([][]uint16, len(encs)))
		w.bound = append(w.bound, bound)
	}
	return w
}

// send gives packet seq of track i's encoding enc to every copy.
func (w *timerWorld) send(now time.Time, i, enc int, seq uint16, key bool) error {
	b := vp8{ssrc: ssrcOf(i, enc), seq: seq, ts: uint32(seq) * 3000, pid: seq & 0x7fff, key: key}.bytes()
	var errs [3]error
	for c := range w.tracks {
		if err := w.pkt.Unmarshal(b); err != nil {
			return err
		}
		_, errs[c] = w.tracks[c][i].HandleRTP(now, &w.pkt, enc)
	}
	if errs[1] != errs[0] || errs[2] != errs[0] {
		return fmt.Errorf("the copies disagree on packet %d of track %d/%d: %v", seq, i, enc, errs)
	}
	return nil
}

// brute is copy c's earliest deadline, asked of each track and computed
// afresh, and how many tracks have one.
func (w *timerWorld) brute(c int) (time.Time, int, error) {
	var at time.Time
	n := 0
	for i, t := range w.tracks[c] {
		d := t.RecomputedDeadline()
		if got, ok := t.PollTimeout(); ok != !d.IsZero() || !got.Equal(d) {
			return at, 0, fmt.Errorf("track %d keeps the deadline %v %v, its state says %v", i, got.Sub(t0), ok, d.Sub(t0))
		}
		if !d.IsZero() {
			n++
			if at.IsZero() || d.Before(at) {
				at = d
			}
		}
	}
	return at, n, nil
}

// timeout runs each copy's timers at now, by its own rule.
func (w *timerWorld) timeout(now time.Time) {
	w.out[copyHeap].HandleTimeout(now)
	var due []*track.RemoteTrack
	for _, t := range w.tracks[copyDue] {
		if d := t.RecomputedDeadline(); !d.IsZero() && !d.After(now) {
			due = append(due, t)
		}
	}
	for _, t := range due {
		t.HandleTimeout(now)
	}
	for _, t := range w.tracks[copyAll] {
		t.HandleTimeout(now)
	}
}

// feedback drains copy c's feedback, per owner in the order sent.
func (w *timerWorld) feedback(c int) map[uint64][]track.Feedback {
	m := map[uint64][]track.Feedback{}
	for f, ok := w.out[c].PollFeedback(); ok; f, ok = w.out[c].PollFeedback() {
		m[f.Owner] = append(m[f.Owner], f)
	}
	return m
}

// step plays one random event.
func (w *timerWorld) step(now *time.Time) error {
	r := w.rnd
	i := r.IntN(len(w.tracks[0]))
	enc := r.IntN(len(w.seq[i]))
	switch op := r.IntN(100); {
	case op < 45: // the next packet, sometimes after a gap, sometimes a keyframe
		gap := uint16(1)
		switch g := r.IntN(40); {
		case g == 0:
			gap = uint16(30 + r.IntN(200)) // beyond a small history, or any NACK
		case g < 10:
			gap += uint16(r.IntN(5))
		}
		if w.seq[i][enc] == 0 { // the first packet
			w.seq[i][enc] = uint16(100 + r.IntN(1000))
			return w.send(*now, i, enc, w.seq[i][enc], true)
		}
		for s := w.seq[i][enc] + 1; s != w.seq[i][enc]+gap; s++ {
			w.lost[i][enc] = append(w.lost[i][enc], s)
		}
		w.seq[i][enc] += gap
		return w.send(*now, i, enc, w.seq[i][enc], r.IntN(25) == 0)
	case op < 60: // a repair, or a duplicate
		l := w.lost[i][enc]
		if len(l) == 0 {
			return w.send(*now, i, enc, w.seq[i][enc], false)
		}
		j := r.IntN(len(l))
		s := l[j]
		w.lost[i][enc] = append(l[:j], l[j+1:]...)
		return w.send(*now, i, enc, s, false)
	case op < 70:
		for c := range w.tracks {
			w.tracks[c][i].RequestKeyframe(*now, enc)
		}
	case op < 72:
		for c := range w.tracks {
			w.tracks[c][i].Resync(enc)
		}
	case op < 74:
		if !w.bound[i][enc] {
			w.bound[i][enc] = true
			for c := range w.tracks {
				w.tracks[c][i].BindSSRC(enc, ssrcOf(i, enc))
			}
		}
	case op < 75:
		if r.IntN(4) == 0 {
			for c := range w.tracks {
				w.tracks[c][i].Close()
			}
		}
	case op < 76:
		for c := range w.out {
			w.out[c].Discard(uint64(i + 1))
		}
	default: // time passes, sometimes to the deadline exactly
		if at, ok := w.out[copyHeap].PollTimeout(); ok && r.IntN(3) == 0 {
			if at.After(*now) {
				*now = at
			}
		} else {
			*now = now.Add(time.Duration(r.IntN(200)) * time.Millisecond)
		}
		w.timeout(*now)
	}
	return nil
}

// check compares the copies after a step.
func (w *timerWorld) check() error {
	fb := [3]map[uint64][]track.Feedback{w.feedback(0), w.feedback(1), w.feedback(2)}
	if !reflect.DeepEqual(fb[copyHeap], fb[copyDue]) {
		return fmt.Errorf("feedback %v, the due-track oracle sent %v", fb[copyHeap], fb[copyDue])
	}
	if !reflect.DeepEqual(fb[copyHeap], fb[copyAll]) {
		return fmt.Errorf("feedback %v, the old algorithm sent %v", fb[copyHeap], fb[copyAll])
	}
	for c := range w.out {
		want, n, err := w.brute(c)
		if err != nil {
			return fmt.Errorf("copy %d: %v", c, err)
		}
		got, ok := w.out[c].PollTimeout()
		if ok != !want.IsZero() || !got.Equal(want) || w.out[c].Timers() != n {
			return fmt.Errorf("copy %d: PollTimeout %v %v, Timers %d; the tracks say %v, %d",
				c, got.Sub(t0), ok, w.out[c].Timers(), want.Sub(t0), n)
		}
	}
	for i, t := range w.tracks[copyHeap] {
		o := w.tracks[copyDue][i]
		if t.Stats() != o.Stats() || !t.RecomputedDeadline().Equal(o.RecomputedDeadline()) {
			return fmt.Errorf("track %d: stats %+v deadline %v; the due-track oracle has %+v %v",
				i, t.Stats(), t.RecomputedDeadline().Sub(t0), o.Stats(), o.RecomputedDeadline().Sub(t0))
		}
	}
	return nil
}

// The Output's deadline, kept incrementally, is after every event the
// minimum over its tracks' deadlines computed afresh, through losses,
// repairs, keyframe requests and keyframes, resyncs, late SSRCs, closes
// and timeouts; HandleTimeout does exactly the work of the tracks that
// are due, and sends what the old walk over every track sent.
func TestOutputDeadlineMatchesTracks(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newTimerWorld(seed)
			now := t0
			for step := range 4000 {
				if err := w.step(&now); err != nil {
					t.Fatalf("seed %d step %d (t=%v): %v", seed, step, now.Sub(t0), err)
				}
				if err := w.check(); err != nil {
					t.Fatalf("seed %d step %d (t=%v): %v", seed, step, now.Sub(t0), err)
				}
			}
		})
	}
}

// Packets (in order, lost, repaired) and deadline queries allocate
// nothing in steady state, with timers running and firing.
func TestOutputDeadlineAllocs(t *testing.T) {
	r := newDeadlineRig(100)
	for i := range r.tracks {
		r.send(t0, i, 1, true)
		r.send(t0, i, 3, false) // 2 lost: a NACK timer
		r.seq[i] = 3
	}
	now := t0
	k := 0
	op := func() {
		i := k % len(r.tracks)
		switch k / len(r.tracks) % 3 {
		case 0: // a loss: the deadline moves earlier
			r.seq[i] += 2
			r.send(now, i, r.seq[i], false)
		case 1: // its repair
			r.send(now, i, r.seq[i]-1, false)
		default:
			r.seq[i]++
			r.send(now, i, r.seq[i], false)
		}
		r.out.PollTimeout()
		if k%50 == 0 {
			now = now.Add(30 * time.Millisecond)
			r.out.HandleTimeout(now)
			for _, ok := r.out.PollFeedback(); ok; _, ok = r.out.PollFeedback() {
			}
		}
		k++
	}
	for range 3000 { // let the slices reach their working size
		op()
	}
	if n := testing.AllocsPerRun(3000, op); n != 0 {
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
