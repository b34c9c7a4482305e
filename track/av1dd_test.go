package track

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// ddBits turns a string of 0s and 1s (spaces and anything after '#' on a
// line ignored) into bytes, zero-padded: descriptors written out by hand
// from the A.8.2 syntax, independent of AppendDD.
func ddBits(s string) []byte {
	var b []byte
	n := 0
	for line := range strings.SplitSeq(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, c := range line {
			if c != '0' && c != '1' {
				continue
			}
			if n%8 == 0 {
				b = append(b, 0)
			}
			if c == '1' {
				b[len(b)-1] |= 0x80 >> (n % 8)
			}
			n++
		}
	}
	return b
}

// ddTpl builds a template; dtis uses the symbols of Table A.1 ("-DSR").
func ddTpl(s, t int, dtis string, fdiffs, chains []int) DDTemplate {
	var tp DDTemplate
	tp.Spatial, tp.Temporal = uint8(s), uint8(t)
	for i, c := range dtis {
		tp.DTI[i] = DTI(strings.IndexRune("-DSR", c))
	}
	tp.FdiffCount = uint8(len(fdiffs))
	for i, v := range fdiffs {
		tp.Fdiff[i] = uint16(v)
	}
	for i, v := range chains {
		tp.Chain[i] = uint8(v)
	}
	return tp
}

func ddStructure(offset, dts int, protectedBy []int, tpls ...DDTemplate) DDStructure {
	st := DDStructure{TemplateIDOffset: uint8(offset), DecodeTargets: uint8(dts), Chains: uint8(len(slices.Compact(slices.Sorted(slices.Values(protectedBy)))))}
	for i, p := range protectedBy {
		st.ProtectedBy[i] = uint8(p)
	}
	st.Templates = uint8(copy(st.Template[:], tpls))
	st.Active = st.AllTargets()
	return st
}

// ddFrameOf is frame number fn following template index i of st.
func ddFrameOf(st *DDStructure, i int, fn uint16) DDFrame {
	t := &st.Template[i]
	f := DDFrame{
		StartOfFrame: true, EndOfFrame: true,
		TemplateID:  uint8((int(st.TemplateIDOffset) + i) % DDMaxTemplates),
		FrameNumber: fn,
		Spatial:     t.Spatial, Temporal: t.Temporal,
		DTI: t.DTI, FdiffCount: t.FdiffCount, Fdiff: t.Fdiff, Chain: t.Chain,
		ActiveDecodeTargets: st.AllTargets(),
	}
	if st.Resolutions {
		f.Width, f.Height = st.Width[t.Spatial], st.Height[t.Spatial]
	}
	return f
}

func dtiString(d []DTI) string {
	var sb strings.Builder
	for _, x := range d {
		sb.WriteString(x.String())
	}
	return sb.String()
}

// specL1T3 is the structure of the spec's example A.10.2.1 (L1T3, one
// chain; decode targets 30, 15 and 7.5 fps), with a resolution added.
func specL1T3() DDStructure {
	st := ddStructure(0, 3, []int{0, 0, 0},
		ddTpl(0, 0, "SSS", nil, []int{0}),
		ddTpl(0, 0, "SSS", []int{4}, []int{4}),
		ddTpl(0, 1, "SD-", []int{2}, []int{2}),
		ddTpl(0, 2, "D--", []int{1}, []int{1}),
		ddTpl(0, 2, "D--", []int{1}, []int{3}),
	)
	st.Resolutions = true
	st.Width[0], st.Height[0] = 640, 360
	return st
}

// TestDDSpecL1T3Bits checks the bit layout against a descriptor written
// out by hand from the syntax of A.8.2, both ways.
func TestDDSpecL1T3Bits(t *testing.T) {
	want := ddBits(`
		1 1 000000 0000000100000010   # sof eof template_id=0 frame_number=0x0102
		1 0 0 0 0                     # structure present, no mask, no custom fields
		000000 00010                  # template_id_offset=0, dt_cnt_minus_one=2
		00 01 01 00 11                # next_layer_idc: T0 T0 T1 T2 T2 end
		101010 101010 100100 010000 010000   # template_dti
		0 100110 100010 100000 100000 # template_fdiffs: - 4 2 1 1
		01                            # chain_cnt=1 as ns(4); protected_by ns(1) takes no bits
		0000 0100 0010 0001 0011      # template_chain_fdiff
		1 0000001001111111 0000000101100111 # resolutions: 640x360
	`)
	st := specL1T3()
	f := ddFrameOf(&st, 0, 0x0102)
	f.NewStructure = true
	if got := AppendDD(nil, &st, &f, true); !bytes.Equal(got, want) {
		t.Fatalf("AppendDD\n got %x\nwant %x", got, want)
	}
	var pst DDStructure
	var pf DDFrame
	if err := ParseDD(want, &pst, &pf); err != nil {
		t.Fatal(err)
	}
	if pst != st {
		t.Fatalf("structure\n got %+v\nwant %+v", pst, st)
	}
	if pf != f {
		t.Fatalf("frame\n got %+v\nwant %+v", pf, f)
	}

	// A frame following template 3 (T2) then needs three bytes, and one
	// with a custom fdiff of 17 (8 bits) and custom chain diff 200 more.
	f = ddFrameOf(&st, 3, 0x0105)
	f.StartOfFrame = false
	if got, want := AppendDD(nil, &st, &f, false), ddBits("0 1 000011 0000000100000101"); !bytes.Equal(got, want) {
		t.Fatalf("template frame %x, want %x", got, want)
	}
	f.Fdiff[0], f.Chain[0] = 17, 200
	want = ddBits(`
		0 1 000011 0000000100000101
		0 0 0 1 1          # custom fdiffs and chains
		10 00010000 00     # fdiff 17 as 8 bits, end
		11001000           # chain fdiff 200
	`)
	if got := AppendDD(nil, &st, &f, false); !bytes.Equal(got, want) {
		t.Fatalf("custom frame %x, want %x", got, want)
	}
	if err := ParseDD(want, &pst, &pf); err != nil || pf != f {
		t.Fatalf("custom frame parsed %+v %v, want %+v", pf, err, f)
	}
}

// ddCapture is a sequence of descriptors captured from Chrome sending L3T3
// (through LiveKit, which rewrote the active decode targets of the first
// group to S0-S1), from livekit-server
// pkg/sfu/rtpextension/dependencydescriptor/dependencydescriptorextension_test.go.
var ddCapture = []string{
	"c1017280081485214eafffaaaa863cf0430c10c302afc0aaa0063c00430010c002a000a80006000040001d954926e082b04a0941b820ac1282503157f974000ca864330e222222eca8655304224230eca877530077004200ef008601df010d",
	"86017340fc", "46017340fc", "c3017540fc", "88017640fc", "48017640fc", "c2017840fc",
	"c1017280081485214eafffaaaa863cf0430c10c302afc0aaa0063c00430010c002a000a80006000040001d954926e082b04a0941b820ac1282503157f974000ca864330e222222eca8655304224230eca877530077004200ef008601df010d",
	"860173", "460173", "8b0174", "0b0174", "0b0174", "c30175",
}

// TestDDCapture parses the captured descriptors, checks the structure is
// libwebrtc's L3T3 (scalability_structure_full_svc.cc) and that AppendDD
// writes every descriptor back bit for bit.
func TestDDCapture(t *testing.T) {
	var st DDStructure
	for i, h := range ddCapture {
		b, _ := hex.DecodeString(h)
		var f DDFrame
		if err := ParseDD(b, &st, &f); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got := AppendDD(nil, &st, &f, f.NewStructure); !bytes.Equal(got, b) {
			t.Fatalf("%d: rewritten %x, captured %x", i, got, b)
		}
		switch i {
		case 0:
			want := genStructure(t, svcMode{S: 3, T: 3}, 0)
			want.Resolutions = true
			want.Width, want.Height = [4]uint32{120, 240, 480}, [4]uint32{67, 135, 270}
			// libwebrtc lists each layer's templates in its own order;
			// compare as sets per layer.
			if err := sameTemplates(&st, &want); err != nil {
				t.Fatal(err)
			}
			if !f.NewStructure || f.FrameNumber != 370 || f.ActiveDecodeTargets != 0x1ff || f.FdiffCount != 0 || f.Width != 120 {
				t.Fatalf("keyframe %+v", f)
			}
		case 1:
			if f.Spatial != 1 || f.Temporal != 0 || !f.ActiveDecodeTargetsPresent || f.ActiveDecodeTargets != 0x3f || st.Active != 0x3f {
				t.Fatalf("S1 frame %+v", f)
			}
		case 9: // a new structure brings all targets back
			if f.Spatial != 1 || f.ActiveDecodeTargetsPresent || f.ActiveDecodeTargets != 0x1ff {
				t.Fatalf("frame after new structure %+v", f)
			}
		case 11:
			if f.Spatial != 2 || f.FrameNumber != 372 || f.Width != 480 || f.Height != 270 || dtiString(f.DTI[:9]) != "------SSS" {
				t.Fatalf("S2 frame %+v", f)
			}
		}
	}
}

// sameTemplates compares two structures whose templates may be ordered
// differently within a layer.
func sameTemplates(a, b *DDStructure) error {
	if a.DecodeTargets != b.DecodeTargets || a.Chains != b.Chains || a.Templates != b.Templates || a.ProtectedBy != b.ProtectedBy || a.Resolutions != b.Resolutions || a.Width != b.Width || a.Height != b.Height {
		return fmt.Errorf("structures differ: %+v vs %+v", a, b)
	}
	key := func(t DDTemplate) string { return fmt.Sprint(t) }
	ka := make([]string, a.Templates)
	kb := make([]string, b.Templates)
	for i := range ka {
		ka[i], kb[i] = key(a.Template[i]), key(b.Template[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	if !slices.Equal(ka, kb) {
		return fmt.Errorf("templates differ:\n%v\n%v", ka, kb)
	}
	return nil
}

// TestDDLibwebrtcCases follows rtp_dependency_descriptor_extension_unittest.cc.
func TestDDLibwebrtcCases(t *testing.T) {
	// Writer3BytesForPerfectTemplate.
	st := ddStructure(0, 2, []int{0, 1}, ddTpl(0, 0, "SR", []int{1}, []int{2, 2}))
	f := ddFrameOf(&st, 0, 7)
	if b := AppendDD(nil, &st, &f, false); len(b) != 3 {
		t.Fatalf("perfect template took %d bytes", len(b))
	}

	// RoundTripsFrameDiffsUpToLimit: the edges of the 4, 8 and 12 bit forms.
	st = ddStructure(0, 1, nil, ddTpl(0, 0, "S", nil, nil))
	for _, fd := range []uint16{1, 16, 17, 256, 257, 4096} {
		f := ddFrameOf(&st, 0, 1)
		f.FdiffCount, f.Fdiff[0] = 1, fd
		b := AppendDD(nil, &st, &f, false)
		var got DDFrame
		if err := ParseDD(b, &st, &got); err != nil || got != f {
			t.Fatalf("fdiff %d: %+v %v", fd, got, err)
		}
	}
	// FailsToWriteTooLargeFrameDiff, FailsToWriteNonPositiveFrameDiff.
	for _, fd := range []uint16{0, 4097, 5275} {
		f := ddFrameOf(&st, 0, 1)
		f.FdiffCount, f.Fdiff[0] = 1, fd
		if b := AppendDD([]byte{9}, &st, &f, false); !bytes.Equal(b, []byte{9}) {
			t.Fatalf("fdiff %d written: %x", fd, b)
		}
	}
	// FailsToWriteInvalidDescriptor: layer ids that do not match the template.
	st = ddStructure(0, 2, []int{0, 0}, ddTpl(0, 0, "SR", nil, []int{2}))
	f = ddFrameOf(&st, 0, 1)
	f.Temporal = 1
	if b := AppendDD(nil, &st, &f, false); len(b) != 0 {
		t.Fatalf("mismatched layer written: %x", b)
	}

	// RoundTripsChainDiffUpToLimit.
	st = ddStructure(0, 1, []int{0}, ddTpl(0, 0, "S", nil, []int{1}))
	f = ddFrameOf(&st, 0, 1)
	f.Chain[0] = 255
	var got DDFrame
	if err := ParseDD(AppendDD(nil, &st, &f, false), &st, &got); err != nil || got != f {
		t.Fatalf("chain 255: %+v %v", got, err)
	}
}

// TestDDNonSymmetric checks ns(n) against the table of A.8.2 (n = 5) and
// round trips every value for every n the format uses.
func TestDDNonSymmetric(t *testing.T) {
	for v, want := range []string{"00", "01", "10", "110", "111"} {
		w := ddWriter{}
		w.ns(uint32(v), 5)
		w.flush()
		if got := ddBits(want); !bytes.Equal(w.b, got) || w.n != 0 {
			t.Fatalf("ns(5) of %d = %08b, want %s", v, w.b, want)
		}
	}
	for n := uint32(1); n <= 33; n++ {
		for v := range n {
			w := ddWriter{}
			w.ns(v, n)
			w.bits(0x5, 3) // a marker after it
			w.flush()
			r := ddReader{b: w.b}
			if got := r.ns(n); got != v || r.bits(3) != 5 || r.bad {
				t.Fatalf("ns(%d) of %d read as %d", n, v, got)
			}
		}
	}
}

// svcMode is a scalability mode as libwebrtc's ScalabilityStructureFullSvc
// (full SVC: upper spatial layers predict from lower ones in every
// temporal unit) or ScalabilityStructureKeySvc (K-SVC: only on keyframes).
type svcMode struct {
	S, T int
	key  bool
}

func (m svcMode) String() string {
	s := fmt.Sprintf("L%dT%d", m.S, m.T)
	if m.key {
		s += "_KEY"
	}
	return s
}

// genFrame is one frame of a generated stream: its descriptor (template
// resolved, TemplateID not yet set) and extended frame number.
type genFrame struct {
	ext int64
	f   DDFrame
	tu  int // temporal unit
	key bool
}

// svcGen produces frames the way libwebrtc's scalability structures do:
// a keyframe temporal unit, then the temporal pattern T0 T2 T1 T2 (or T0
// T1, or T0) with buffers per spatial and temporal layer; decode target
// s*T+t; chain s protects the decode targets of spatial layer s.
type svcGen struct {
	m        svcMode
	next     int64 // next frame number
	tu       int
	pattern  int // position in the temporal pattern, 0: T0
	buf      [DDMaxSpatial][3]int64
	canT1    [DDMaxSpatial]bool
	chain    [DDMaxSpatial]int64 // last frame of each chain, -1 none
	keyframe bool
}

func newSVCGen(m svcMode, first int64) *svcGen {
	return &svcGen{m: m, next: first, keyframe: true}
}

// temporal is the temporal id of pattern position p.
func (g *svcGen) temporal(p int) int {
	switch g.m.T {
	case 1:
		return 0
	case 2:
		return p % 2
	}
	return [4]int{0, 2, 1, 2}[p%4]
}

// dti is libwebrtc's Dti() for full or key SVC.
func (g *svcGen) dti(sid, tid, fs, ft int, key bool) DTI {
	if g.m.key {
		if key {
			if sid < fs {
				return DTINotPresent
			}
			return DTISwitch
		}
		if sid != fs || tid < ft {
			return DTINotPresent
		}
		if tid == ft && tid > 0 {
			return DTIDiscardable
		}
		return DTISwitch
	}
	if sid < fs || tid < ft {
		return DTINotPresent
	}
	if sid == fs {
		if tid == 0 || tid > ft {
			return DTISwitch
		}
		return DTIDiscardable
	}
	if key {
		return DTISwitch
	}
	return DTIRequired
}

// unit produces the frames of the next temporal unit. key forces a
// keyframe.
func (g *svcGen) unit(key bool) []genFrame {
	if key {
		g.keyframe = true
	}
	key = g.keyframe
	g.keyframe = false
	if key {
		g.pattern = 0
		g.canT1 = [DDMaxSpatial]bool{}
	}
	tid := g.temporal(g.pattern)
	p := g.pattern
	g.pattern++
	var out []genFrame
	for sid := range g.m.S {
		var refs []int64
		switch {
		case tid == 0:
			g.canT1[sid] = false
			if !key {
				refs = append(refs, g.buf[sid][0])
			}
			if sid > 0 && (key || !g.m.key) {
				refs = append(refs, g.buf[sid-1][0])
			}
		case tid == 1:
			refs = append(refs, g.buf[sid][0])
			if sid > 0 && !g.m.key {
				refs = append(refs, g.buf[sid-1][1])
			}
		default:
			if g.m.T == 3 && p%4 == 3 && g.canT1[sid] {
				refs = append(refs, g.buf[sid][1])
			} else {
				refs = append(refs, g.buf[sid][0])
			}
			if sid > 0 && !g.m.key {
				refs = append(refs, g.buf[sid-1][2])
			}
		}
		n := g.next
		g.next++
		var f DDFrame
		f.StartOfFrame, f.EndOfFrame = true, true
		f.FrameNumber = uint16(n)
		f.Spatial, f.Temporal = uint8(sid), uint8(tid)
		for s := range g.m.S {
			for tt := range g.m.T {
				f.DTI[s*g.m.T+tt] = g.dti(s, tt, sid, tid, key)
			}
		}
		for _, r := range refs {
			f.Fdiff[f.FdiffCount] = uint16(n - r)
			f.FdiffCount++
		}
		// Chains, as libwebrtc's ChainDiffCalculator: a keyframe restarts
		// the chains it is part of.
		var part [DDMaxSpatial]bool
		for c := range g.m.S {
			switch {
			case g.m.key && key:
				part[c] = c >= sid
			case g.m.key:
				part[c] = tid == 0 && c == sid
			default:
				part[c] = tid == 0 && sid <= c
			}
			if key && sid == 0 {
				g.chain[c] = -1
			}
		}
		for c := range g.m.S {
			if g.chain[c] >= 0 {
				f.Chain[c] = uint8(n - g.chain[c])
			}
			if part[c] {
				g.chain[c] = n
			}
		}
		g.buf[sid][tid] = n
		if tid == 1 {
			g.canT1[sid] = true
		}
		f.ActiveDecodeTargets = uint32(1)<<(g.m.S*g.m.T) - 1
		out = append(out, genFrame{ext: n, f: f, tu: g.tu, key: key && sid == 0})
	}
	g.tu++
	return out
}

// sameDesc reports whether two frames have the same template content.
func sameDesc(f *DDFrame, t *DDTemplate) bool {
	return f.Spatial == t.Spatial && f.Temporal == t.Temporal && f.DTI == t.DTI &&
		f.FdiffCount == t.FdiffCount && f.Fdiff == t.Fdiff && f.Chain == t.Chain
}

// genStructure builds the structure of mode m from the frames of its first
// two temporal-pattern cycles, as libwebrtc's hand-written structures
// list them: every distinct frame description, sorted by layer.
func genStructure(t testing.TB, m svcMode, offset int) DDStructure {
	t.Helper()
	g := newSVCGen(m, 1000)
	var tpls []DDTemplate
	for range 9 {
		for _, gf := range g.unit(false) {
			f := &gf.f
			if !slices.ContainsFunc(tpls, func(t DDTemplate) bool { return sameDesc(f, &t) }) {
				tpls = append(tpls, DDTemplate{Spatial: f.Spatial, Temporal: f.Temporal, DTI: f.DTI, FdiffCount: f.FdiffCount, Fdiff: f.Fdiff, Chain: f.Chain})
			}
		}
	}
	slices.SortStableFunc(tpls, func(a, b DDTemplate) int {
		return int(a.Spatial)*8 + int(a.Temporal) - int(b.Spatial)*8 - int(b.Temporal)
	})
	prot := make([]int, m.S*m.T)
	for i := range prot {
		prot[i] = i / m.T
	}
	st := ddStructure(offset, m.S*m.T, prot, tpls...)
	if err := st.Validate(); err != nil {
		t.Fatalf("%v: %v", m, err)
	}
	return st
}

// genStream is a stream of mode m: a structure and n temporal units of
// frames starting at frame number first, with keyframes at the given units,
// each frame given its template id (all frames match a template).
func genStream(t testing.TB, m svcMode, offset int, first int64, units int, keys ...int) (DDStructure, []genFrame) {
	t.Helper()
	st := genStructure(t, m, offset)
	g := newSVCGen(m, first)
	var out []genFrame
	for u := range units {
		for _, gf := range g.unit(slices.Contains(keys, u)) {
			i := slices.IndexFunc(st.Template[:st.Templates], func(tp DDTemplate) bool { return sameDesc(&gf.f, &tp) })
			if i < 0 {
				t.Fatalf("%v: frame %+v matches no template", m, gf.f)
			}
			gf.f.TemplateID = uint8((offset + i) % DDMaxTemplates)
			gf.f.NewStructure = gf.key
			out = append(out, gf)
		}
	}
	return st, out
}

var ddModes = []svcMode{{1, 3, false}, {2, 2, false}, {2, 2, true}, {3, 3, false}, {3, 3, true}}

// TestDDGeneratedStructures checks the generator against libwebrtc's
// structures (template counts and a few templates of
// scalability_structure_full_svc.cc and scalability_structure_key_svc.cc),
// and that every generated frame round trips in three bytes.
func TestDDGeneratedStructures(t *testing.T) {
	wantTemplates := map[string]int{"L1T3": 5, "L2T2": 6, "L2T2_KEY": 6, "L3T3": 15, "L3T3_KEY": 15}
	for _, m := range ddModes {
		t.Run(m.String(), func(t *testing.T) {
			st, frames := genStream(t, m, 60, 65500, 40, 17)
			if int(st.Templates) != wantTemplates[m.String()] {
				t.Fatalf("%d templates, libwebrtc has %d", st.Templates, wantTemplates[m.String()])
			}
			for _, gf := range frames {
				b := AppendDD(nil, &st, &gf.f, gf.f.NewStructure)
				if !gf.f.NewStructure && len(b) != 3 {
					t.Fatalf("frame %d took %d bytes", gf.ext, len(b))
				}
				var pst DDStructure
				if !gf.f.NewStructure {
					pst = st
				}
				var f DDFrame
				if err := ParseDD(b, &pst, &f); err != nil || f != gf.f {
					t.Fatalf("frame %d: %+v %v, want %+v", gf.ext, f, err, gf.f)
				}
			}
		})
	}
	l3 := genStructure(t, svcMode{3, 3, false}, 0)
	want := []struct {
		s, t           int
		dtis           string
		fdiffs, chains []int
	}{
		{0, 0, "SSSSSSSSS", nil, []int{0, 0, 0}},
		{1, 0, "---SSSRRR", []int{12, 1}, []int{1, 1, 1}},
		{1, 1, "----DS-RR", []int{6, 1}, []int{7, 6, 5}},
		{2, 2, "--------D", []int{3, 1}, []int{11, 10, 9}},
	}
	for _, w := range want {
		tp := ddTpl(w.s, w.t, w.dtis, w.fdiffs, w.chains)
		if !slices.Contains(l3.Template[:l3.Templates], tp) {
			t.Errorf("L3T3 lacks libwebrtc's template %+v", w)
		}
	}
	k3 := genStructure(t, svcMode{3, 3, true}, 0)
	if tp := ddTpl(1, 0, "---SSS---", []int{12}, []int{1, 12, 11}); !slices.Contains(k3.Template[:k3.Templates], tp) {
		t.Errorf("L3T3_KEY lacks libwebrtc's S1T0 template")
	}
}

// randStructure is a valid random structure.
func randStructure(r *rand.Rand) DDStructure {
	var st DDStructure
	st.TemplateIDOffset = uint8(r.IntN(64))
	n := 1 + r.IntN(DDMaxDecodeTargets)
	st.DecodeTargets = uint8(n)
	st.Chains = uint8(r.IntN(n + 1))
	if r.IntN(3) == 0 {
		st.Chains = 0
	}
	for dt := range n {
		if st.Chains > 0 {
			st.ProtectedBy[dt] = uint8(r.IntN(int(st.Chains)))
		}
	}
	k := 1 + r.IntN(DDMaxTemplates)
	if r.IntN(2) == 0 {
		k = 1 + r.IntN(16)
	}
	var s, tt uint8
	for i := range k {
		if i > 0 {
			switch r.IntN(4) {
			case 1:
				if tt+1 < DDMaxTemporal {
					tt++
				}
			case 2:
				if s+1 < DDMaxSpatial {
					s, tt = s+1, 0
				}
			}
		}
		tp := &st.Template[i]
		tp.Spatial, tp.Temporal = s, tt
		for dt := range n {
			tp.DTI[dt] = DTI(r.IntN(4))
		}
		tp.FdiffCount = uint8(r.IntN(DDMaxFdiffs + 1))
		for j := range int(tp.FdiffCount) {
			tp.Fdiff[j] = uint16(1 + r.IntN(16))
		}
		for c := range int(st.Chains) {
			tp.Chain[c] = uint8(r.IntN(16))
		}
	}
	st.Templates = uint8(k)
	if st.Resolutions = r.IntN(2) == 0; st.Resolutions {
		for sid := range int(s) + 1 {
			st.Width[sid], st.Height[sid] = uint32(1+r.IntN(1<<16)), uint32(1+r.IntN(1<<16))
		}
	}
	st.Active = st.AllTargets()
	return st
}

// randFrame is a random frame of st, overriding its template at random.
func randFrame(r *rand.Rand, st *DDStructure, withStructure bool) DDFrame {
	f := ddFrameOf(st, r.IntN(int(st.Templates)), uint16(r.Uint32()))
	f.StartOfFrame, f.EndOfFrame = r.IntN(2) == 0, r.IntN(2) == 0
	n := int(st.DecodeTargets)
	if r.IntN(3) == 0 {
		for dt := range n {
			f.DTI[dt] = DTI(r.IntN(4))
		}
	}
	if r.IntN(3) == 0 {
		f.Fdiff = [DDMaxFdiffs]uint16{}
		f.FdiffCount = uint8(r.IntN(DDMaxFdiffs + 1))
		for j := range int(f.FdiffCount) {
			f.Fdiff[j] = uint16(1 + r.IntN([]int{16, 256, 4096}[r.IntN(3)]))
		}
	}
	if r.IntN(3) == 0 {
		for c := range int(st.Chains) {
			f.Chain[c] = uint8(r.IntN(256))
		}
	}
	f.ActiveDecodeTargets = st.Active
	if r.IntN(2) == 0 {
		f.ActiveDecodeTargetsPresent = true
		f.ActiveDecodeTargets = r.Uint32() & st.AllTargets()
	} else if withStructure {
		f.ActiveDecodeTargets = st.AllTargets()
	}
	f.NewStructure = withStructure
	return f
}

func TestDDRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		st := randStructure(r)
		if err := st.Validate(); err != nil {
			t.Fatalf("%d: random structure invalid: %v", i, err)
		}
		for j := range 8 {
			with := j == 0 || r.IntN(4) == 0
			f := randFrame(r, &st, with)
			b := AppendDD(nil, &st, &f, with)
			if len(b) < 3 {
				t.Fatalf("%d/%d: frame not written: %+v", i, j, f)
			}
			pst := st
			if with {
				pst = DDStructure{}
			}
			var got DDFrame
			if err := ParseDD(b, &pst, &got); err != nil {
				t.Fatalf("%d/%d: %v (%x)", i, j, err, b)
			}
			if got != f {
				t.Fatalf("%d/%d: parsed\n%+v\nwant\n%+v", i, j, got, f)
			}
			want := st
			want.Active = f.ActiveDecodeTargets
			if pst != want {
				t.Fatalf("%d/%d: structure differs after parse", i, j)
			}
			st = pst
		}
	}
}

func TestDDMalformed(t *testing.T) {
	l3 := genStructure(t, svcMode{3, 3, false}, 5)
	key := ddFrameOf(&l3, 0, 1)
	key.NewStructure = true
	full := AppendDD(nil, &l3, &key, true)

	// Every truncation of a structure packet fails, and leaves the
	// structure the caller had.
	for n := range len(full) {
		for _, prior := range []DDStructure{{}, l3} {
			st := prior
			var f DDFrame
			err := ParseDD(full[:n], &st, &f)
			if n == 3 && prior.Valid() {
				continue // three bytes: a valid plain descriptor
			}
			if !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("truncated to %d: %v", n, err)
			}
			if st != prior {
				t.Fatalf("truncated to %d: structure changed", n)
			}
		}
	}

	cases := []struct {
		name string
		b    []byte
		st   *DDStructure
		want error
	}{
		{"empty", nil, &l3, errDDShort},
		{"two bytes", []byte{0x80, 0}, &l3, errDDShort},
		{"no structure", []byte{0xc0, 0, 1}, &DDStructure{}, ErrDDNoStructure},
		{"no structure extended", []byte{0xc0, 0, 1, 0x40, 0}, &DDStructure{}, ErrDDNoStructure},
		{"template below offset", []byte{0xc4, 0, 1}, &l3, ErrDDTemplate},
		{"template past count", []byte{0xc0 | 20, 0, 1}, &l3, ErrDDTemplate},
		{"65 templates", ddBits("11 000000 0000000000000001 10000 000000 00000" + strings.Repeat("00", 64) + "11" + strings.Repeat("0", 400)), &DDStructure{}, errDDTemplates},
		{"spatial id 4", ddBits("11 000000 0000000000000001 10000 000000 00000 10 10 10 10 11" + strings.Repeat("0", 64)), &DDStructure{}, errDDLayers},
		{"temporal id 8", ddBits("11 000000 0000000000000001 10000 000000 00000" + strings.Repeat("01", 8) + "11" + strings.Repeat("0", 64)), &DDStructure{}, errDDLayers},
		{"9 template fdiffs", ddBits("11 000000 0000000000000001 10000 000000 00000 11 10" + strings.Repeat("10000", 9) + "0" + strings.Repeat("0", 64)), &DDStructure{}, errDDFdiffs},
		{"9 custom fdiffs", ddBits("11 000101 0000000000000001 00010" + strings.Repeat("010000", 9) + "00"), &l3, errDDFdiffs},
		{"custom chains cut", ddBits("11 000101 0000000000000001 00001 00000001"), &l3, errDDShort},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := *c.st
			var f DDFrame
			err := ParseDD(c.b, &st, &f)
			if !errors.Is(err, c.want) || !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if st != *c.st {
				t.Fatal("structure changed on error")
			}
		})
	}

	// Hand-built structures with counts past their arrays are refused, not
	// indexed.
	for _, bad := range []DDStructure{{DecodeTargets: 33, Templates: 1}, {DecodeTargets: 1, Templates: 65}, {DecodeTargets: 1, Templates: 1, Chains: 2}} {
		var s DDSelector
		if bad.Valid() || bad.Validate() == nil || AppendDD(nil, &bad, &key, false) != nil ||
			bad.Contained(0) != 0 || bad.DecodeTargetFor(3, 7, ^uint32(0)) != -1 || s.Select(&bad, &key, 0).Forward {
			t.Fatalf("structure %+v used", bad)
		}
		if sp, _ := bad.DecodeTargetLayer(0); sp != -1 {
			t.Fatalf("structure %+v used", bad)
		}
	}
	tooMany := l3
	tooMany.Template[0].FdiffCount = DDMaxFdiffs + 1
	if AppendDD(nil, &tooMany, &key, false) != nil {
		t.Fatal("template with too many fdiffs written")
	}

	// A structure that cannot be written is refused whole.
	bad := l3
	bad.Template[3].Temporal = 7 // not one step from its neighbour
	if bad.Validate() == nil {
		t.Fatal("Validate accepted a broken layer order")
	}
	if b := AppendDD(nil, &bad, &key, true); b != nil {
		t.Fatalf("broken structure written: %x", b)
	}
}

func TestDDNoAllocs(t *testing.T) {
	st := genStructure(t, svcMode{3, 3, false}, 0)
	st.Resolutions = true
	st.Width, st.Height = [4]uint32{320, 640, 1280}, [4]uint32{180, 360, 720}
	key := ddFrameOf(&st, 0, 1)
	withSt := AppendDD(nil, &st, &key, true)
	f := ddFrameOf(&st, 7, 2)
	plain := AppendDD(nil, &st, &f, false)
	var pst DDStructure
	var pf DDFrame
	var sel DDSelector
	buf := make([]byte, 0, 512)
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"structure", func() { _ = ParseDD(withSt, &pst, &pf) }},
		{"plain", func() { _ = ParseDD(plain, &pst, &pf) }},
		{"append", func() { buf = AppendDD(buf[:0], &st, &key, true) }},
		{"select", func() { pf.FrameNumber++; sel.Select(&pst, &pf, 4) }},
	} {
		if n := testing.AllocsPerRun(100, c.fn); n != 0 {
			t.Errorf("%s: %v allocs", c.name, n)
		}
	}
	if pf.Spatial != 1 || !pst.Valid() {
		t.Fatalf("parsed %+v", pf)
	}
}

// selRun feeds a generated stream to a selector, packet by packet (each
// frame split into 1-3 packets), with the target chosen per temporal unit,
// and checks what every forwarding must keep:
//   - every packet of a frame gets the same decision;
//   - a forwarded frame is decodable: everything it refers to was
//     forwarded or lost upstream (the subscriber decodes all it gets);
//   - a forwarded frame is part of the decode target then forwarded;
//   - Switch only on a forwarded frame that starts the new target.
//
// It returns, per frame, whether it was forwarded and the decode target
// after it.
type selResult struct {
	fwd     bool
	cur     int
	switch_ bool
	needKF  bool
}

func selRun(t *testing.T, st DDStructure, frames []genFrame, r *rand.Rand, target func(tu int) int, lost func(gf genFrame) bool) []selResult {
	t.Helper()
	var s DDSelector
	out := make([]selResult, len(frames))
	fwd := map[int64]bool{}
	gone := map[int64]bool{} // lost upstream: the subscriber gets it by NACK
	var ast DDStructure
	for i, gf := range frames {
		if lost != nil && lost(gf) {
			out[i].cur = s.Current()
			gone[gf.ext] = true
			continue
		}
		packets := 1 + r.IntN(3)
		for p := range packets {
			f := gf.f
			f.StartOfFrame, f.EndOfFrame = p == 0, p == packets-1
			b := AppendDD(nil, &st, &f, gf.key && p == 0)
			var pf DDFrame
			if err := ParseDD(b, &ast, &pf); err != nil {
				t.Fatalf("frame %d: %v", gf.ext, err)
			}
			d := s.Select(&ast, &pf, target(gf.tu))
			if p == 0 {
				out[i] = selResult{fwd: d.Forward, cur: int(d.DecodeTarget), switch_: d.Switch, needKF: d.NeedKeyframe}
			} else if d.Forward != out[i].fwd || d.Switch {
				t.Fatalf("frame %d packet %d: %+v, first packet %+v", gf.ext, p, d, out[i])
			}
			if d.Switch && !d.Forward {
				t.Fatalf("frame %d: switch without forwarding", gf.ext)
			}
			if d.Marker != (d.Forward && f.EndOfFrame && int(f.Spatial) == ddSpatial(&st, int(d.DecodeTarget))) {
				t.Fatalf("frame %d packet %d: marker %v", gf.ext, p, d.Marker)
			}
		}
		if out[i].fwd {
			for _, fd := range gf.f.Fdiff[:gf.f.FdiffCount] {
				if r := gf.ext - int64(fd); !fwd[r] && !gone[r] {
					t.Fatalf("frame %d (S%dT%d) forwarded, but not frame %d it refers to", gf.ext, gf.f.Spatial, gf.f.Temporal, gf.ext-int64(fd))
				}
			}
			if gf.f.DTI[out[i].cur] == DTINotPresent {
				t.Fatalf("frame %d forwarded outside decode target %d", gf.ext, out[i].cur)
			}
			fwd[gf.ext] = true
		}
	}
	return out
}

func ddSpatial(st *DDStructure, dt int) int {
	s, _ := st.DecodeTargetLayer(dt)
	return s
}

// firstSwitch is the index of the first frame from i on where the
// selector switched, or -1.
func firstSwitch(res []selResult, i int) int {
	for ; i < len(res); i++ {
		if res[i].switch_ {
			return i
		}
	}
	return -1
}

// checkExact checks that from frame i to j every frame that is part of dt
// was forwarded and no other.
func checkExact(t *testing.T, frames []genFrame, res []selResult, i, j, dt int) {
	t.Helper()
	for k := i; k < j; k++ {
		want := frames[k].f.DTI[dt] != DTINotPresent
		if res[k].fwd != want || res[k].cur != dt {
			t.Fatalf("frame %d (S%dT%d, %s): forwarded %v on %d, want %v on %d", frames[k].ext, frames[k].f.Spatial, frames[k].f.Temporal, dtiString(frames[k].f.DTI[:9]), res[k].fwd, res[k].cur, want, dt)
		}
	}
}

func unitStart(frames []genFrame, tu int) int {
	return slices.IndexFunc(frames, func(gf genFrame) bool { return gf.tu >= tu })
}

// TestDDSelectL3T3 drives full SVC L3T3 (decode target s*3+t) across a
// frame number wrap: starting on (S1,T1) it forwards exactly that target's
// frames; asked for (S2,T2) mid-GOP it waits for the keyframe, asking for
// one; back down to (S1,T1) and to (S1,T0) it switches at once; up to
// (S1,T2) within the same chain it switches at once too.
func TestDDSelectL3T3(t *testing.T) {
	m := svcMode{3, 3, false}
	st, frames := genStream(t, m, 40, 65450, 120, 0, 40)
	phases := []struct{ from, dt int }{{0, 4}, {20, 8}, {60, 4}, {80, 3}, {99, 5}}
	target := func(tu int) int {
		dt := -1
		for _, p := range phases {
			if tu >= p.from {
				dt = p.dt
			}
		}
		return dt
	}
	res := selRun(t, st, frames, rand.New(rand.NewPCG(3, 4)), target, nil)

	// Start on the keyframe, then exactly (S1,T1).
	if !res[0].switch_ || res[0].cur != 4 {
		t.Fatalf("did not start on the keyframe: %+v", res[0])
	}
	up := unitStart(frames, 20)
	checkExact(t, frames, res, 0, up, 4)

	// Up to (S2,T2): not before the keyframe at unit 40, a keyframe asked
	// for meanwhile, the old target still forwarded.
	key := unitStart(frames, 40)
	if sw := firstSwitch(res, up); sw != key {
		t.Fatalf("switched up at frame %d, want the keyframe %d", frames[sw].ext, frames[key].ext)
	}
	checkExact(t, frames, res, up, key, 4)
	for k := up; k < key; k++ {
		if !res[k].needKF {
			t.Fatalf("frame %d: no keyframe asked for while waiting", frames[k].ext)
		}
	}
	down := unitStart(frames, 60)
	checkExact(t, frames, res, key, down, 8)

	// Down to (S1,T1) at the first frame of it, then to (S1,T0).
	for _, p := range []struct{ tu, dt int }{{60, 4}, {80, 3}} {
		i := unitStart(frames, p.tu)
		first := slices.IndexFunc(frames[i:], func(gf genFrame) bool { return gf.f.DTI[p.dt] != DTINotPresent }) + i
		if sw := firstSwitch(res, i); sw != first {
			t.Fatalf("switched down to %d at frame %d, want %d", p.dt, frames[sw].ext, frames[first].ext)
		}
		if res[first].needKF {
			t.Fatal("keyframe asked for on a switch down")
		}
	}
	checkExact(t, frames, res, unitStart(frames, 60)+1, unitStart(frames, 80), 4)

	// Up to (S1,T2), in the same chain: at the first decodable frame of
	// it, within one temporal pattern, with no keyframe asked for.
	i := unitStart(frames, 99)
	sw := firstSwitch(res, i)
	if sw < 0 || frames[sw].tu > 99+4 || res[sw].cur != 5 {
		t.Fatalf("no temporal switch up after frame %d", frames[i].ext)
	}
	for k := i; k < len(frames); k++ {
		if res[k].needKF {
			t.Fatalf("frame %d: keyframe asked for on a temporal switch", frames[k].ext)
		}
	}
	checkExact(t, frames, res, sw, len(frames), 5)
	if frames[0].f.FrameNumber < 65000 || frames[len(frames)-1].f.FrameNumber > 1000 {
		t.Fatal("stream does not wrap the frame number")
	}
}

// TestDDSelectKSVC: in K-SVC a lower spatial layer is not part of a higher
// one, so a switch down also waits for a keyframe, while a temporal switch
// within a spatial layer is immediate.
func TestDDSelectKSVC(t *testing.T) {
	st, frames := genStream(t, svcMode{3, 3, true}, 0, 100, 90, 0, 50)
	target := func(tu int) int {
		switch {
		case tu < 10:
			return 6 // S2T0
		case tu < 20:
			return 8 // S2T2
		default:
			return 4 // S1T1
		}
	}
	res := selRun(t, st, frames, rand.New(rand.NewPCG(5, 6)), target, nil)
	i := unitStart(frames, 10)
	sw := firstSwitch(res, i)
	if sw < 0 || frames[sw].tu > 13 || res[sw].cur != 8 {
		t.Fatal("no temporal switch up within S2")
	}
	checkExact(t, frames, res, sw, unitStart(frames, 20), 8)
	i = unitStart(frames, 20)
	key := unitStart(frames, 50)
	if sw := firstSwitch(res, i); sw != key {
		t.Fatalf("switched down at frame %d, want the keyframe %d", frames[sw].ext, frames[key].ext)
	}
	for k := i; k < key; k++ {
		if !res[k].needKF {
			t.Fatalf("frame %d: no keyframe asked for", frames[k].ext)
		}
	}
	checkExact(t, frames, res, key, len(frames), 4)

	// What a forwarder signals as active: the targets a receiver of the
	// forwarded one can decode.
	if got := st.Contained(4); got != 0b000_011_000 {
		t.Fatalf("K-SVC contained(S1T1) = %09b", got)
	}
	full := genStructure(t, svcMode{3, 3, false}, 0)
	if got := full.Contained(4); got != 0b000_011_011 {
		t.Fatalf("full SVC contained(S1T1) = %09b", got)
	}
	if got := full.DecodeTargetFor(1, 2, 0b000_111_111); got != 5 {
		t.Fatalf("DecodeTargetFor(S1,T2) = %d", got)
	}
	if got := full.DecodeTargetFor(2, 2, 0b000_011_111); got != 4 {
		t.Fatalf("DecodeTargetFor with S1T2 and S2 inactive = %d", got)
	}
	if got := full.DecodeTargetFor(0, 0, 0); got != -1 {
		t.Fatalf("DecodeTargetFor with nothing active = %d", got)
	}
}

// TestDDSelectL1T3 switches temporal layers both ways at once, and after a
// chain frame is lost upstream keeps forwarding (the subscriber NACKs it)
// but can no longer switch without a switch point, and asks for a
// keyframe.
func TestDDSelectL1T3(t *testing.T) {
	st, frames := genStream(t, svcMode{1, 3, false}, 10, 0, 80, 0, 60)
	target := func(tu int) int {
		switch {
		case tu < 10:
			return 0
		case tu < 20:
			return 2
		case tu < 30:
			return 1
		case tu < 40:
			return 2
		default:
			return 0
		}
	}
	lost := func(gf genFrame) bool { return gf.tu == 36 } // a T0 frame
	if frames[unitStart(frames, 36)].f.Temporal != 0 {
		t.Fatal("unit 36 is not T0")
	}
	res := selRun(t, st, frames, rand.New(rand.NewPCG(7, 8)), target, lost)
	checkExact(t, frames, res, 0, 10, 0)
	for _, p := range []struct{ tu, dt int }{{10, 2}, {20, 1}} {
		i := unitStart(frames, p.tu)
		sw := firstSwitch(res, i)
		if sw < 0 || frames[sw].tu > p.tu+3 || res[sw].cur != p.dt {
			t.Fatalf("no switch to %d after unit %d", p.dt, p.tu)
		}
		checkExact(t, frames, res, sw, unitStart(frames, p.tu+10), p.dt)
	}
	// Lost at 36 on DT2: forwarding goes on; at 40 the chain is broken,
	// so the switch down to DT0 waits for the keyframe at 60.
	for k := unitStart(frames, 37); k < unitStart(frames, 40); k++ {
		if !res[k].fwd {
			t.Fatalf("frame %d dropped after an upstream loss", frames[k].ext)
		}
	}
	i, key := unitStart(frames, 40), unitStart(frames, 60)
	if sw := firstSwitch(res, i); sw != key {
		t.Fatalf("switched at %d after a broken chain, want keyframe %d", sw, key)
	}
	if !res[i].needKF {
		t.Fatal("no keyframe asked for with the chain broken")
	}
	checkExact(t, frames, res, key, len(frames), 0)
}

// TestDDSelectOrder: packets of earlier frames that arrive late get the
// frame's decision; a late frame never seen is forwarded if it is part of
// the current target; frames far too old are dropped; target -1 forwards
// nothing; an inactive target is not switched to.
func TestDDSelectOrder(t *testing.T) {
	st, frames := genStream(t, svcMode{2, 2, false}, 0, 7, 12, 0)
	var s DDSelector
	sel := func(gf genFrame, dt int) DDDecision {
		f := gf.f
		return s.Select(&st, &f, dt)
	}
	if d := sel(frames[0], -1); d.Forward || d.DecodeTarget != -1 {
		t.Fatalf("target -1: %+v", d)
	}
	s.Reset()
	for i := 0; i < 6; i++ {
		if i == 4 {
			continue // frame 4 arrives late
		}
		sel(frames[i], 3)
	}
	for i := range 6 {
		if i == 4 {
			continue
		}
		if d := sel(frames[i], 3); d.Forward != (frames[i].f.DTI[3] != DTINotPresent) || d.Switch {
			t.Fatalf("repeat of frame %d: %+v", i, d)
		}
	}
	if d := sel(frames[4], 3); !d.Forward {
		t.Fatalf("late frame 4 (%s) dropped", dtiString(frames[4].f.DTI[:4]))
	}
	old := frames[2]
	old.f.FrameNumber -= 300
	if d := sel(old, 3); d.Forward {
		t.Fatal("frame 300 back forwarded")
	}
	// On S0T0, a frame whose custom references name a dropped frame (S0T1)
	// is not decodable and is dropped, and so is what refers to it.
	s.Reset()
	sel(frames[0], 0)
	sel(frames[1], 0)
	if d := sel(frames[2], 0); d.Forward {
		t.Fatal("S0T1 forwarded on S0T0")
	}
	sel(frames[3], 0)
	custom := frames[4]
	custom.f.FdiffCount, custom.f.Fdiff[0], custom.f.Fdiff[1] = 2, 4, 2 // frames 0 and 2
	if d := sel(custom, 0); d.Forward {
		t.Fatal("frame referring to a dropped frame forwarded")
	}
	if d := sel(frames[8], 0); d.Forward || !d.NeedKeyframe && d.DecodeTarget != 0 { // S0T0 referring to frame 4
		t.Fatalf("frame 8, referring to the dropped frame 4: %+v", d)
	}
	// Deactivate S1: asking for S1T1 switches nothing.
	f := frames[6].f
	f.ActiveDecodeTargets = 0b0011
	s.Reset()
	if d := s.Select(&st, &frames[0].f, 0); !d.Switch {
		t.Fatal("no start on S0T0")
	}
	if d := s.Select(&st, &f, 3); d.Switch || d.DecodeTarget != 0 {
		t.Fatalf("switched to an inactive target: %+v", d)
	}
}

func BenchmarkParseDD(b *testing.B) {
	st := genStructure(b, svcMode{3, 3, false}, 0)
	key := ddFrameOf(&st, 0, 1)
	custom := ddFrameOf(&st, 7, 3)
	custom.Fdiff[0], custom.Chain[2] = 300, 40
	custom.ActiveDecodeTargetsPresent, custom.ActiveDecodeTargets = true, 0x3f
	cases := []struct {
		name string
		b    []byte
	}{
		{"structure=L3T3", AppendDD(nil, &st, &key, true)},
		{"template", AppendDD(nil, &st, &custom, false)[:3]},
		{"custom", AppendDD(nil, &st, &custom, false)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			pst := st
			var f DDFrame
			b.ReportAllocs()
			b.SetBytes(int64(len(c.b)))
			for b.Loop() {
				if err := ParseDD(c.b, &pst, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSelectDD(b *testing.B) {
	st, frames := genStream(b, svcMode{3, 3, false}, 0, 0, 64, 0)
	var s DDSelector
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		gf := &frames[i%len(frames)]
		gf.f.FrameNumber = uint16(i) // keep the stream moving forward
		gf.f.NewStructure = i == 0
		s.Select(&st, &gf.f, 4)
		i++
	}
}
