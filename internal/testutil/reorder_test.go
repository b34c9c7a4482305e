package testutil

import (
	"slices"
	"testing"
)

func rtpSeq(ssrc uint32, seq uint16) []byte {
	return []byte{0x80, 96, byte(seq >> 8), byte(seq), 0, 0, 0, 0, byte(ssrc >> 24), byte(ssrc >> 16), byte(ssrc >> 8), byte(ssrc)}
}

func TestReorder(t *testing.T) {
	r := Reorder{MaxHold: 3}
	var out []uint16
	push := func(seqs ...uint16) {
		for _, s := range seqs {
			r.Push(rtpSeq(7, s), func(p []byte) { out = append(out, uint16(p[2])<<8|uint16(p[3])) })
		}
	}
	// 65535 is late but fills its gap: released in order across the wrap.
	push(65533, 65534, 0, 1, 65535, 2)
	if want := []uint16{65533, 65534, 65535, 0, 1, 2}; !slices.Equal(out, want) {
		t.Fatalf("released %v, want %v", out, want)
	}
	// 3 never comes: after MaxHold waiting packets the gap is given up, and
	// 3 arriving after that is too late.
	out = nil
	push(4, 5, 6, 7, 3, 8)
	if want := []uint16{4, 5, 6, 7, 8}; !slices.Equal(out, want) || r.Late != 1 || r.Filled != 1 {
		t.Fatalf("released %v (late %d, filled %d), want %v", out, r.Late, r.Filled, want)
	}
}
