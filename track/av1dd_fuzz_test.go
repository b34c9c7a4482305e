package track

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
)

// FuzzDD feeds any bytes to ParseDD, with no structure known and with a
// full SVC L3T3 one. Whatever parses must be writable, and AppendDD of it
// must parse back to the same frame and structure, in no more bytes (the
// writer's encoding is the shortest); whatever fails must be
// a descriptor error that leaves the structure alone. The selector is fed
// along, and must keep its decisions within the structure.
func FuzzDD(f *testing.F) {
	for _, h := range ddCapture {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	r := rand.New(rand.NewPCG(9, 10))
	for _, m := range ddModes {
		st, frames := genStream(f, m, r.IntN(64), 65530, 6, 0)
		for _, gf := range frames {
			f.Add(AppendDD(nil, &st, &gf.f, gf.f.NewStructure))
		}
	}
	for range 16 {
		st := randStructure(r)
		fr := randFrame(r, &st, true)
		f.Add(AppendDD(nil, &st, &fr, true))
		fr = randFrame(r, &st, false)
		f.Add(AppendDD(nil, &st, &fr, false))
	}
	known := genStructure(f, svcMode{3, 3, false}, 0)

	f.Fuzz(func(t *testing.T, b []byte) {
		var sel DDSelector
		for _, prior := range []DDStructure{{}, known} {
			st := prior
			var fr DDFrame
			err := ParseDD(b, &st, &fr)
			if err != nil {
				if !errors.Is(err, ErrBadDescriptor) {
					t.Fatalf("error %v is not ErrBadDescriptor", err)
				}
				if st != prior {
					t.Fatal("structure changed by a failed parse")
				}
				continue
			}
			if !st.Valid() || st.Validate() != nil {
				t.Fatalf("parsed structure invalid: %v", st.Validate())
			}
			n, c := int(st.DecodeTargets), int(st.Chains)
			for _, d := range fr.DTI[n:] {
				if d != 0 {
					t.Fatal("indication past the decode targets")
				}
			}
			for _, v := range fr.Chain[c:] {
				if v != 0 {
					t.Fatal("chain diff past the chains")
				}
			}
			if fr.ActiveDecodeTargets&^st.AllTargets() != 0 || st.Active != fr.ActiveDecodeTargets {
				t.Fatalf("active %b of %d targets, structure has %b", fr.ActiveDecodeTargets, n, st.Active)
			}
			out := AppendDD(nil, &st, &fr, fr.NewStructure)
			if len(out) < 3 {
				t.Fatalf("parsed frame not writable: %+v", fr)
			}
			if len(out) > len(b) {
				t.Fatalf("rewritten %d bytes from %d", len(out), len(b))
			}
			st2 := st
			var fr2 DDFrame
			if err := ParseDD(out, &st2, &fr2); err != nil {
				t.Fatalf("rewritten %x: %v", out, err)
			}
			if fr2 != fr {
				t.Fatalf("rewritten frame\n%+v\nwant\n%+v", fr2, fr)
			}
			if st2 != st {
				t.Fatal("rewritten structure differs")
			}
			target := -1
			if len(b) > 0 {
				target = int(b[0]%34) - 1
			}
			d := sel.Select(&st, &fr, target)
			if int(d.DecodeTarget) >= n || d.DecodeTarget < -1 || d.Switch && !d.Forward {
				t.Fatalf("decision %+v with %d targets", d, n)
			}
			if d.Forward && fr.DTI[d.DecodeTarget] == DTINotPresent {
				t.Fatalf("forwarded outside decode target %d", d.DecodeTarget)
			}
		}
	})
}
