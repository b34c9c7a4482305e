package track_test

import (
	"testing"
	"time"
)

// Bitrates are measured per temporal layer, so that the allocator knows
// what each step costs: a stream of pattern T0 T2 T1 T2 at 100 packets/s,
// measured over whole seconds.
func TestTemporalBitrates(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	now := t0
	for i := range 300 {
		tid := []uint8{0, 2, 1, 2}[i%4]
		r.in(now, 0, vp8{ssrc: 100, seq: uint16(i), ts: uint32(i) * 900, pid: uint16(i), tid: tid, sync: true, key: i == 0})
		now = now.Add(10 * time.Millisecond)
	}
	// A quarter of the packets are T0, a quarter T1, half T2.
	payload := uint64(len(vp8{}.bytes()) - 12)
	total := 100 * payload * 8
	if got := r.rt.BitrateBps(0); got < total*98/100 || got > total*102/100 {
		t.Fatalf("bitrate %d, want about %d", got, total)
	}
	for tl, want := range []uint64{total / 4, total / 2, total} {
		if got := r.rt.TemporalBitrateBps(0, tl); got < want*95/100 || got > want*105/100 {
			t.Errorf("up to T%d: %d bps, want about %d", tl, got, want)
		}
	}
	if n := r.rt.TemporalLayers(0); n != 3 {
		t.Errorf("%d temporal layers seen, want 3", n)
	}
}
