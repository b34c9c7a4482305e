package track_test

import "testing"

// Going back from base-layer-only to "all" (-1) never happens.
func TestReviewTemporalBackToAll(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	r.lt.SetTargetLayers(t0, 0, 0)
	pattern := []uint8{0, 2, 1, 2}
	tl0 := uint8(0)
	fwd := 0
	for i := 0; i < 80; i++ {
		if i == 20 {
			r.lt.SetTargetLayers(t0, 0, -1)
		}
		tid := pattern[i%4]
		if tid == 0 {
			tl0++
		}
		got := r.in(t0, 0, vp8{ssrc: 100, seq: uint16(i), ts: uint32(3000 * i), pid: uint16(i), tl0: tl0, tid: tid, sync: tid != 0 && i > 40, key: i == 0 || i == 60})
		if i >= 20 {
			fwd += len(got)
		}
	}
	if fwd < 50 {
		_, tmp := r.lt.CurrentLayers()
		t.Fatalf("after asking for all temporal layers, forwarded %d of 60 (maxTemporal %d)", fwd, tmp)
	}
}

// A late packet of a temporal layer above the target is forwarded anyway.
func TestReviewLateDroppedLayer(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	r.lt.SetTargetLayers(t0, 0, 0)
	r.in(t0, 0, vp8{ssrc: 100, seq: 1, ts: 0, pid: 1, tl0: 1, tid: 0, key: true})
	r.in(t0, 0, vp8{ssrc: 100, seq: 3, ts: 3000, pid: 2, tl0: 1, tid: 1}) // frame pid 2 (T1), seq 2 delayed
	r.in(t0, 0, vp8{ssrc: 100, seq: 4, ts: 6000, pid: 3, tl0: 2, tid: 0})
	late := r.in(t0, 0, vp8{ssrc: 100, seq: 2, ts: 3000, pid: 2, tl0: 1, tid: 1})
	if len(late) != 0 {
		p, _ := wire(t, late[0])
		t.Fatalf("late TL1 packet forwarded with maxTemporal 0: seq %d pid %d tid %d", p.SequenceNumber, p.Meta.PictureID, p.Meta.Temporal)
	}
}

// A late packet of a forwarded frame, after a temporal drop, gets another picture id.
func TestReviewLatePIDOffset(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	r.lt.SetTargetLayers(t0, 0, 0)
	a := r.in(t0, 0, vp8{ssrc: 100, seq: 1, ts: 0, pid: 1, tl0: 1, tid: 0, key: true})
	r.in(t0, 0, vp8{ssrc: 100, seq: 3, ts: 0, pid: 1, tl0: 1, tid: 0})
	r.in(t0, 0, vp8{ssrc: 100, seq: 4, ts: 3000, pid: 2, tl0: 1, tid: 1}) // dropped: pidOff--
	late := r.in(t0, 0, vp8{ssrc: 100, seq: 2, ts: 0, pid: 1, tl0: 1, tid: 0})
	pa, _ := wire(t, a[0])
	pl, _ := wire(t, late[0])
	if pa.Meta.PictureID != pl.Meta.PictureID {
		t.Fatalf("same frame, picture ids %d (first packet) vs %d (late packet)", pa.Meta.PictureID, pl.Meta.PictureID)
	}
}

// A late packet moves lastPID/lastTL0 back; the next switch reuses them.
func TestReviewLatePIDThenResume(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	r.in(t0, 0, vp8{ssrc: 100, seq: 1, ts: 0, pid: 1, tl0: 1, key: true})
	r.in(t0, 0, vp8{ssrc: 100, seq: 3, ts: 0, pid: 1, tl0: 1})
	b := r.in(t0, 0, vp8{ssrc: 100, seq: 4, ts: 3000, pid: 2, tl0: 2})
	r.in(t0, 0, vp8{ssrc: 100, seq: 2, ts: 0, pid: 1, tl0: 1}) // late
	r.lt.SetPaused(t0, true)
	r.lt.SetPaused(t0, false)
	k := r.in(t0, 0, vp8{ssrc: 100, seq: 5, ts: 6000, pid: 3, tl0: 3, key: true})
	pb, _ := wire(t, b[0])
	pk, _ := wire(t, k[0])
	if pk.Meta.PictureID != (pb.Meta.PictureID+1)&0x7fff || pk.Meta.TL0PICIDX != int16(uint8(pb.Meta.TL0PICIDX)+1) {
		t.Fatalf("after resume pid %d→%d tl0 %d→%d", pb.Meta.PictureID, pk.Meta.PictureID, pb.Meta.TL0PICIDX, pk.Meta.TL0PICIDX)
	}
}
