package track

import (
	"fmt"
	"math/bits"
	"slices"
)

// The dependency descriptor (DD) RTP header extension of the AOMedia "RTP
// Payload Format for AV1", Appendix A. It tells a forwarder, without
// reading the payload, which frame a packet belongs to, which frames that
// frame refers to, and how it relates to each decode target (a spatial and
// temporal fidelity a receiver may choose). Chrome sends it with AV1 and,
// for SVC, with VP9 and H264 as well.
//
// A descriptor usually takes three bytes: it names a template of the
// template dependency structure, which the first packet of each coded video
// sequence carries. The caller keeps one DDStructure per encoding and hands
// it to every ParseDD of that encoding's packets.

// DD limits. A structure or frame beyond them is refused as malformed.
const (
	// DDMaxTemplates is the most templates a structure has (6-bit ids).
	DDMaxTemplates = 64
	// DDMaxDecodeTargets is the most decode targets (5-bit count).
	DDMaxDecodeTargets = 32
	// DDMaxSpatial and DDMaxTemporal bound the layer ids, as libwebrtc's
	// reader does and as the AV1 OBU extension header can express.
	DDMaxSpatial  = 4
	DDMaxTemporal = 8
	// DDMaxFdiffs is the most references a frame or template may list. The
	// format has no limit; AV1 refers to at most 7 frames (REFS_PER_FRAME),
	// VP9 to 3, so a longer list is taken as garbage rather than stored.
	DDMaxFdiffs = 8
)

// DTI is a decode target indication: how a frame relates to one decode
// target (Table A.1).
type DTI uint8

// Decode target indications.
const (
	// DTINotPresent: the frame is not part of the decode target.
	DTINotPresent DTI = iota
	// DTIDiscardable: part of it, and no later frame of it refers to this
	// frame, so it may be dropped (e.g. under congestion) at no cost.
	DTIDiscardable
	// DTISwitch: part of it, and if this frame is decodable so is every
	// later frame of the decode target: a receiver may switch to it here.
	DTISwitch
	// DTIRequired: part of it, and neither discardable nor a switch point.
	DTIRequired
)

func (d DTI) String() string {
	if d <= DTIRequired {
		return string("-DSR"[d])
	}
	return "?"
}

// DD errors, built once (fmt.Errorf allocates). ErrDDNoStructure and
// ErrDDTemplate mean that the structure the packet needs was lost (or has
// not arrived yet): ask the sender for a keyframe.
var (
	ErrDDNoStructure = fmt.Errorf("%w: dependency descriptor before any template structure", ErrBadDescriptor)
	ErrDDTemplate    = fmt.Errorf("%w: dependency descriptor template id not in the structure", ErrBadDescriptor)

	errDDShort     = fmt.Errorf("%w: dependency descriptor truncated", ErrBadDescriptor)
	errDDTemplates = fmt.Errorf("%w: dependency descriptor structure has more than %d templates", ErrBadDescriptor, DDMaxTemplates)
	errDDLayers    = fmt.Errorf("%w: dependency descriptor layer id out of range", ErrBadDescriptor)
	errDDFdiffs    = fmt.Errorf("%w: dependency descriptor has more than %d frame diffs", ErrBadDescriptor, DDMaxFdiffs)
)

// DDTemplate is one frame dependency template. Entries past the
// structure's counts are zero.
type DDTemplate struct {
	Spatial, Temporal uint8
	// DTI holds one indication per decode target.
	DTI [DDMaxDecodeTargets]DTI
	// Fdiff lists, for the first FdiffCount entries, the distance in frame
	// numbers to each frame referred to (1..16 in a template).
	FdiffCount uint8
	Fdiff      [DDMaxFdiffs]uint16
	// Chain holds, per chain, the distance to the previous frame in that
	// chain (0..15 in a template; 0: none needed).
	Chain [DDMaxDecodeTargets]uint8
}

// DDStructure is the template dependency structure of one coded video
// sequence, in fixed-size arrays so that parsing never allocates, plus the
// active decode targets, which outlive the packet that signals them.
// DecodeTargets == 0 means no structure is known.
type DDStructure struct {
	// TemplateIDOffset is the template id of Template[0] (0..63).
	TemplateIDOffset uint8
	// DecodeTargets is the number of decode targets (1..32).
	DecodeTargets uint8
	// Chains is the number of chains (0..DecodeTargets); ProtectedBy maps
	// each decode target to the chain that protects it.
	Chains      uint8
	ProtectedBy [DDMaxDecodeTargets]uint8
	// Templates is the number of templates in Template, sorted by spatial
	// then temporal id as the format requires.
	Templates uint8
	Template  [DDMaxTemplates]DDTemplate
	// Resolutions says whether Width and Height (1..65536) are given for
	// each spatial layer up to the last template's.
	Resolutions   bool
	Width, Height [DDMaxSpatial]uint32

	// Active is the active_decode_targets_bitmask in force: set to all
	// decode targets by a new structure, replaced when a packet carries a
	// mask, kept otherwise. AppendDD ignores it (it writes the frame's).
	Active uint32
}

// DDFrame is one packet's descriptor with its template resolved: the
// frame's own layer ids, indications, references and chain distances, with
// the packet's custom fields applied. Entries past the structure's counts
// are zero, so two DDFrames compare with ==.
type DDFrame struct {
	StartOfFrame, EndOfFrame bool
	// TemplateID is frame_dependency_template_id (0..63).
	TemplateID  uint8
	FrameNumber uint16

	Spatial, Temporal uint8
	DTI               [DDMaxDecodeTargets]DTI
	FdiffCount        uint8
	Fdiff             [DDMaxFdiffs]uint16 // 1..4096
	Chain             [DDMaxDecodeTargets]uint8

	// ActiveDecodeTargets is the mask in force for this packet;
	// ActiveDecodeTargetsPresent says the packet carried it (else it was
	// inherited, or implied by a new structure).
	ActiveDecodeTargets        uint32
	ActiveDecodeTargetsPresent bool
	// NewStructure says the packet carried the template structure.
	NewStructure bool
	// Width and Height are the frame's maximum render size, when the
	// structure states resolutions (else 0).
	Width, Height uint32
}

// Valid reports whether a structure is known, with counts that fit its
// arrays (every method checks this before indexing; Validate checks the
// rest of what writing needs).
func (st *DDStructure) Valid() bool {
	return st.DecodeTargets > 0 && st.DecodeTargets <= DDMaxDecodeTargets &&
		st.Templates > 0 && st.Templates <= DDMaxTemplates && st.Chains <= st.DecodeTargets
}

// AllTargets is the mask with every decode target set.
func (st *DDStructure) AllTargets() uint32 {
	return uint32(uint64(1)<<st.DecodeTargets - 1)
}

// template returns the template a template id names, or nil.
func (st *DDStructure) template(id uint8) *DDTemplate {
	i := (int(id) + DDMaxTemplates - int(st.TemplateIDOffset)) % DDMaxTemplates
	if i >= int(st.Templates) {
		return nil
	}
	return &st.Template[i]
}

// DecodeTargetLayer is the spatial and temporal layer of decode target dt:
// the highest ids among the templates that are part of it (A.8.2
// decode_target_layers). -1, -1 for a dt out of range.
func (st *DDStructure) DecodeTargetLayer(dt int) (spatial, temporal int) {
	if !st.Valid() || dt < 0 || dt >= int(st.DecodeTargets) {
		return -1, -1
	}
	for i := range int(st.Templates) {
		t := &st.Template[i]
		if t.DTI[dt] != DTINotPresent {
			spatial = max(spatial, int(t.Spatial))
			temporal = max(temporal, int(t.Temporal))
		}
	}
	return spatial, temporal
}

// DecodeTargetFor picks the decode target to forward for a subscriber that
// wants at most the given layers: among those in active, the one with the
// highest spatial layer not above spatial, then the highest temporal layer
// not above temporal (the lowest index on a tie). -1 if none fits.
func (st *DDStructure) DecodeTargetFor(spatial, temporal int, active uint32) int {
	best, bs, bt := -1, -1, -1
	if !st.Valid() {
		return best
	}
	for dt := range int(st.DecodeTargets) {
		if active&(1<<dt) == 0 {
			continue
		}
		s, t := st.DecodeTargetLayer(dt)
		if s > spatial || t > temporal {
			continue
		}
		if s > bs || s == bs && t > bt {
			best, bs, bt = dt, s, t
		}
	}
	return best
}

// Contained is the mask of decode targets that a receiver of decode target
// dt can decode as well: those whose every template is also part of dt.
// A forwarder that sends only dt signals this mask (and'ed with the
// sender's) as the active decode targets, so that the receiver ignores the
// chains it is not sent (A.4, A.5). In full SVC the lower layers are
// contained; in K-SVC a lower spatial layer is not.
func (st *DDStructure) Contained(dt int) uint32 {
	if !st.Valid() || dt < 0 || dt >= int(st.DecodeTargets) {
		return 0
	}
	var m uint32
	for i := range int(st.DecodeTargets) {
		ok := true
		for j := range int(st.Templates) {
			t := &st.Template[j]
			if t.DTI[i] != DTINotPresent && t.DTI[dt] == DTINotPresent {
				ok = false
				break
			}
		}
		if ok {
			m |= 1 << i
		}
	}
	return m
}

// Validate checks that a structure can be written: the counts in range,
// templates in layer order starting at S0T0, each at most one layer step
// from the previous, and template fdiffs and chain diffs within their
// 4-bit fields.
func (st *DDStructure) Validate() error {
	n, c := int(st.DecodeTargets), int(st.Chains)
	if !st.Valid() || st.TemplateIDOffset >= DDMaxTemplates {
		return errDDLayers
	}
	for dt := range n {
		if c > 0 && int(st.ProtectedBy[dt]) >= c {
			return errDDLayers
		}
	}
	for i := range int(st.Templates) {
		t := &st.Template[i]
		if t.Spatial >= DDMaxSpatial || t.Temporal >= DDMaxTemporal || t.FdiffCount > DDMaxFdiffs {
			return errDDLayers
		}
		if i == 0 && (t.Spatial != 0 || t.Temporal != 0) {
			return errDDLayers
		}
		if i > 0 && nextLayerIdc(&st.Template[i-1], t) > 2 {
			return errDDLayers
		}
		for _, d := range t.DTI[:n] {
			if d > DTIRequired {
				return errDDLayers
			}
		}
		for _, fd := range t.Fdiff[:t.FdiffCount] {
			if fd < 1 || fd > 16 {
				return errDDLayers
			}
		}
		for _, cd := range t.Chain[:c] {
			if cd > 15 {
				return errDDLayers
			}
		}
	}
	if st.Resolutions {
		for s := range int(st.Template[st.Templates-1].Spatial) + 1 {
			if st.Width[s] < 1 || st.Width[s] > 1<<16 || st.Height[s] < 1 || st.Height[s] > 1<<16 {
				return errDDLayers
			}
		}
	}
	return nil
}

// nextLayerIdc is how template b follows template a (Table A.2), or 4 when
// it cannot.
func nextLayerIdc(a, b *DDTemplate) int {
	switch {
	case b.Spatial == a.Spatial && b.Temporal == a.Temporal:
		return 0
	case b.Spatial == a.Spatial && b.Temporal == a.Temporal+1:
		return 1
	case b.Spatial == a.Spatial+1 && b.Temporal == 0:
		return 2
	}
	return 4
}

// ddReader reads the descriptor's bit fields, most significant bit first.
// Reading past the end sets bad and yields zeros, so a parser may check
// once per loop rather than per field.
type ddReader struct {
	b   []byte
	pos int // in bits
	bad bool
}

func (r *ddReader) bits(n int) uint32 {
	if n == 0 {
		return 0
	}
	end := r.pos + n
	if end > 8*len(r.b) {
		r.bad = true
		r.pos = 8 * len(r.b)
		return 0
	}
	var v uint64
	last := (end - 1) >> 3
	for i := r.pos >> 3; i <= last; i++ {
		v = v<<8 | uint64(r.b[i])
	}
	v >>= uint(8*(last+1) - end)
	r.pos = end
	return uint32(v & (1<<n - 1))
}

func (r *ddReader) flag() bool { return r.bits(1) != 0 }

// ns reads a non-symmetric unsigned value in 0..n-1 (n >= 1).
func (r *ddReader) ns(n uint32) uint32 {
	w := bits.Len32(n)
	m := uint32(1)<<w - n
	v := r.bits(w - 1)
	if v < m {
		return v
	}
	return v<<1 - m + r.bits(1)
}

// ParseDD parses the dependency descriptor extension bytes b. A packet that
// carries a template structure replaces *st with it; any other needs the
// structure the caller kept in *st from an earlier packet of the encoding.
// The frame, with its template resolved and custom fields applied, goes to
// *f, and the active decode targets in force to both f and st.Active.
//
// On error *st is unchanged (a broken structure packet counts as lost) and
// *f is unspecified. ParseDD never allocates.
func ParseDD(b []byte, st *DDStructure, f *DDFrame) error {
	if len(b) < 3 {
		return errDDShort
	}
	r := ddReader{b: b}
	sof := r.flag()
	eof := r.flag()
	tid := uint8(r.bits(6))
	fn := uint16(r.bits(16))
	var hasStructure, hasActive, customDTIs, customFdiffs, customChains bool
	if len(b) > 3 {
		hasStructure = r.flag()
		hasActive = r.flag()
		customDTIs = r.flag()
		customFdiffs = r.flag()
		customChains = r.flag()
	}
	if hasStructure {
		// Parse into a copy on the stack (it does not escape) and adopt it
		// only once the whole descriptor has parsed.
		var nst DDStructure
		if err := nst.read(&r); err != nil {
			return err
		}
		nst.Active = nst.AllTargets()
		if err := f.read(&r, &nst, sof, eof, tid, fn, hasActive, customDTIs, customFdiffs, customChains); err != nil {
			return err
		}
		f.NewStructure = true
		nst.Active = f.ActiveDecodeTargets
		*st = nst
		return nil
	}
	if !st.Valid() {
		return ErrDDNoStructure
	}
	if err := f.read(&r, st, sof, eof, tid, fn, hasActive, customDTIs, customFdiffs, customChains); err != nil {
		return err
	}
	st.Active = f.ActiveDecodeTargets
	return nil
}

// read fills f from the fields after the structure: the active decode
// targets and the frame dependency definition.
func (f *DDFrame) read(r *ddReader, st *DDStructure, sof, eof bool, tid uint8, fn uint16, hasActive, customDTIs, customFdiffs, customChains bool) error {
	n, c := int(st.DecodeTargets), int(st.Chains)
	active := st.Active
	if hasActive {
		active = r.bits(n)
	}
	t := st.template(tid)
	if t == nil {
		if r.bad {
			return errDDShort
		}
		return ErrDDTemplate
	}
	*f = DDFrame{
		StartOfFrame:               sof,
		EndOfFrame:                 eof,
		TemplateID:                 tid,
		FrameNumber:                fn,
		Spatial:                    t.Spatial,
		Temporal:                   t.Temporal,
		DTI:                        t.DTI,
		FdiffCount:                 t.FdiffCount,
		Fdiff:                      t.Fdiff,
		Chain:                      t.Chain,
		ActiveDecodeTargets:        active,
		ActiveDecodeTargetsPresent: hasActive,
	}
	if customDTIs {
		for i := range n {
			f.DTI[i] = DTI(r.bits(2))
		}
	}
	if customFdiffs {
		f.Fdiff = [DDMaxFdiffs]uint16{}
		k := 0
		for size := r.bits(2); size != 0 && !r.bad; size = r.bits(2) {
			if k == DDMaxFdiffs {
				return errDDFdiffs
			}
			f.Fdiff[k] = uint16(r.bits(4*int(size))) + 1
			k++
		}
		f.FdiffCount = uint8(k)
	}
	if customChains {
		for i := range c {
			f.Chain[i] = uint8(r.bits(8))
		}
	}
	if r.bad {
		return errDDShort
	}
	if st.Resolutions {
		f.Width, f.Height = st.Width[f.Spatial], st.Height[f.Spatial]
	}
	return nil
}

// read parses template_dependency_structure into st, which must be zero.
func (st *DDStructure) read(r *ddReader) error {
	st.TemplateIDOffset = uint8(r.bits(6))
	n := int(r.bits(5)) + 1
	st.DecodeTargets = uint8(n)

	// template_layers
	var s, t uint8
	k := 0
	for {
		if k == DDMaxTemplates {
			return errDDTemplates
		}
		st.Template[k].Spatial, st.Template[k].Temporal = s, t
		k++
		idc := r.bits(2)
		if r.bad {
			return errDDShort
		}
		if idc == 3 {
			break
		}
		switch idc {
		case 1:
			t++
		case 2:
			s, t = s+1, 0
		}
		if s >= DDMaxSpatial || t >= DDMaxTemporal {
			return errDDLayers
		}
	}
	st.Templates = uint8(k)
	tpl := st.Template[:k]

	for i := range tpl {
		for dt := range n {
			tpl[i].DTI[dt] = DTI(r.bits(2))
		}
	}
	for i := range tpl {
		j := 0
		for r.flag() {
			if j == DDMaxFdiffs {
				return errDDFdiffs
			}
			tpl[i].Fdiff[j] = uint16(r.bits(4)) + 1
			j++
		}
		if r.bad {
			return errDDShort
		}
		tpl[i].FdiffCount = uint8(j)
	}

	// template_chains
	c := int(r.ns(uint32(n) + 1))
	st.Chains = uint8(c)
	if c > 0 {
		for dt := range n {
			st.ProtectedBy[dt] = uint8(r.ns(uint32(c)))
		}
		for i := range tpl {
			for j := range c {
				tpl[i].Chain[j] = uint8(r.bits(4))
			}
		}
	}

	if st.Resolutions = r.flag(); st.Resolutions {
		for sid := range int(s) + 1 {
			st.Width[sid] = r.bits(16) + 1
			st.Height[sid] = r.bits(16) + 1
		}
	}
	if r.bad {
		return errDDShort
	}
	return nil
}

// ddWriter appends bit fields to a byte slice, most significant bit first.
type ddWriter struct {
	b   []byte
	acc uint64
	n   uint // pending bits in acc, < 8 between calls
}

func (w *ddWriter) bits(v uint32, n uint) {
	if n == 0 {
		return
	}
	w.acc = w.acc<<n | uint64(v)&(1<<n-1)
	w.n += n
	for w.n >= 8 {
		w.n -= 8
		w.b = append(w.b, byte(w.acc>>w.n))
	}
}

func (w *ddWriter) flag(v bool) {
	if v {
		w.bits(1, 1)
	} else {
		w.bits(0, 1)
	}
}

// ns writes v in 0..n-1 as a non-symmetric unsigned value.
func (w *ddWriter) ns(v, n uint32) {
	if n <= 1 {
		return
	}
	wd := uint(bits.Len32(n))
	m := uint32(1)<<wd - n
	if v < m {
		w.bits(v, wd-1)
	} else {
		w.bits(v+m, wd)
	}
}

// flush pads the last byte with zeros.
func (w *ddWriter) flush() {
	if w.n > 0 {
		w.b = append(w.b, byte(w.acc<<(8-w.n)))
		w.n = 0
	}
}

// AppendDD appends the dependency descriptor of frame f to buf: the three
// mandatory bytes and, when needed, the extended fields: the structure st
// (withStructure), the active decode targets (when f says the mask was
// present, or when it differs from the all-active a new structure
// implies), and custom indications, references and chain distances where
// f differs from the template f.TemplateID names. Parsing the result with
// the same structure yields f again.
//
// buf is returned unchanged when f cannot be written: its template is not
// in st or has other layer ids, an fdiff is outside 1..4096 or a DTI
// outside 0..3, or st fails Validate (checked in full only
// withStructure). AppendDD allocates only when buf lacks capacity.
func AppendDD(buf []byte, st *DDStructure, f *DDFrame, withStructure bool) []byte {
	if !st.Valid() || f.TemplateID >= DDMaxTemplates || f.FdiffCount > DDMaxFdiffs {
		return buf
	}
	if withStructure && st.Validate() != nil {
		return buf
	}
	t := st.template(f.TemplateID)
	if t == nil || t.Spatial != f.Spatial || t.Temporal != f.Temporal || t.FdiffCount > DDMaxFdiffs {
		return buf
	}
	n, c := int(st.DecodeTargets), int(st.Chains)
	for _, d := range f.DTI[:n] {
		if d > DTIRequired {
			return buf
		}
	}
	for _, fd := range f.Fdiff[:f.FdiffCount] {
		if fd < 1 || fd > 1<<12 {
			return buf
		}
	}
	customDTIs := !slices.Equal(f.DTI[:n], t.DTI[:n])
	customFdiffs := !slices.Equal(f.Fdiff[:f.FdiffCount], t.Fdiff[:t.FdiffCount])
	customChains := !slices.Equal(f.Chain[:c], t.Chain[:c])
	all := st.AllTargets()
	mask := f.ActiveDecodeTargets & all
	writeActive := f.ActiveDecodeTargetsPresent || withStructure && mask != all

	w := ddWriter{b: buf}
	w.flag(f.StartOfFrame)
	w.flag(f.EndOfFrame)
	w.bits(uint32(f.TemplateID), 6)
	w.bits(uint32(f.FrameNumber), 16)
	if !withStructure && !writeActive && !customDTIs && !customFdiffs && !customChains {
		return w.b
	}
	w.flag(withStructure)
	w.flag(writeActive)
	w.flag(customDTIs)
	w.flag(customFdiffs)
	w.flag(customChains)
	if withStructure {
		st.write(&w)
	}
	if writeActive {
		w.bits(mask, uint(n))
	}
	if customDTIs {
		for _, d := range f.DTI[:n] {
			w.bits(uint32(d), 2)
		}
	}
	if customFdiffs {
		for _, fd := range f.Fdiff[:f.FdiffCount] {
			v := uint32(fd - 1)
			switch {
			case fd <= 1<<4:
				w.bits(1<<4|v, 6)
			case fd <= 1<<8:
				w.bits(2<<8|v, 10)
			default:
				w.bits(3<<12|v, 14)
			}
		}
		w.bits(0, 2)
	}
	if customChains {
		for _, cd := range f.Chain[:c] {
			w.bits(uint32(cd), 8)
		}
	}
	w.flush()
	return w.b
}

// write appends template_dependency_structure; st has been validated.
func (st *DDStructure) write(w *ddWriter) {
	n, c := int(st.DecodeTargets), int(st.Chains)
	tpl := st.Template[:st.Templates]
	w.bits(uint32(st.TemplateIDOffset), 6)
	w.bits(uint32(n-1), 5)
	for i := 1; i < len(tpl); i++ {
		w.bits(uint32(nextLayerIdc(&tpl[i-1], &tpl[i])), 2)
	}
	w.bits(3, 2)
	for i := range tpl {
		for _, d := range tpl[i].DTI[:n] {
			w.bits(uint32(d), 2)
		}
	}
	for i := range tpl {
		for _, fd := range tpl[i].Fdiff[:tpl[i].FdiffCount] {
			w.bits(1<<4|uint32(fd-1), 5)
		}
		w.bits(0, 1)
	}
	w.ns(uint32(c), uint32(n)+1)
	if c > 0 {
		for _, p := range st.ProtectedBy[:n] {
			w.ns(uint32(p), uint32(c))
		}
		for i := range tpl {
			for _, cd := range tpl[i].Chain[:c] {
				w.bits(uint32(cd), 4)
			}
		}
	}
	w.flag(st.Resolutions)
	if st.Resolutions {
		for s := range int(tpl[len(tpl)-1].Spatial) + 1 {
			w.bits(st.Width[s]-1, 16)
			w.bits(st.Height[s]-1, 16)
		}
	}
}

// ddWindow is how many frame numbers back DDSelector remembers its
// decisions: more than the longest chain distance (255) a descriptor can
// state.
const ddWindow = 256

// DDDecision is DDSelector's verdict on one packet.
type DDDecision struct {
	// Forward: send the packet to the subscriber.
	Forward bool
	// Switch: forwarding moved to a new decode target (or started) at this
	// packet's frame, which is forwarded. A forwarder attaches the
	// structure to this packet and signals the new active decode targets.
	Switch bool
	// Marker: this packet ends the last frame the subscriber gets of its
	// temporal unit (the end of a frame of the forwarded decode target's
	// spatial layer), so it should carry the RTP marker bit.
	Marker bool
	// NeedKeyframe: the target cannot be reached from what has been
	// forwarded, as the chain protecting it is broken (or nothing is
	// forwarded yet and the stream has no chains). A frame with a switch
	// indication may still come, but only a keyframe is sure to.
	NeedKeyframe bool
	// DecodeTarget is the decode target forwarded after this packet, -1
	// when none.
	DecodeTarget int8
}

// DDSelector decides, for one subscriber of one encoding, which frames of a
// stream described by dependency descriptors to forward so that the
// subscriber can decode a chosen decode target, and where it may switch
// between decode targets. It follows the rules of the AV1 RTP
// specification's Appendix A:
//
//   - A frame is forwarded when it is part of the current decode target
//     (its DTI for it is not "not present") and no frame it refers to was
//     dropped. Discardable frames are forwarded too. Frames never seen (lost
//     or late upstream) do not block it: the subscriber NACKs them and the
//     retransmission is forwarded when it arrives, under the same rule.
//   - The selector moves to the target decode target at the first new
//     frame that is part of the target and known decodable (every frame it
//     refers to was forwarded and known decodable in turn; a frame
//     forwarded despite a missing reference is not), and either has a Switch indication for
//     the target (A.7), or starts a coded video sequence (it carries the
//     structure and refers to nothing), or arrives while the chain that
//     protects the target is intact (A.7: "an SFM MAY switch to a Decode
//     target at any point if the Chain tracking that Decode target is
//     intact").
//   - A chain is intact at a frame when its chain diff is 0 (nothing
//     before is needed) or points at the last frame of the chain that was
//     forwarded with the chain intact. A frame is in a chain when all the
//     decode targets the chain protects have Switch or Required for it
//     (A.6 PartOfActiveChain). A chain that protects no active decode
//     target is ignored, and broken until it restarts. A chain frame never
//     seen breaks the chain, even if it arrives late; the chain then heals
//     only at a chain diff of 0 or is bypassed by a switch indication.
//
// So in full SVC a lower decode target is reached at once (its chain is
// part of what is forwarded) and a temporal switch up within the same
// chain too, while a spatial switch up waits for a keyframe or a switch
// frame, as does any switch down in K-SVC, where lower spatial layers are
// not sent to receivers of higher ones.
//
// Decisions are per frame: every packet of a frame gets the frame's.
// Frame numbers are 16-bit and wrap; the selector extends them. The zero
// value is ready, forwarding nothing until a switch point for a target.
type DDSelector struct {
	started    bool
	cur        int8 // decode target forwarded, -1 none; valid when started
	curSpatial int8
	newest     int64 // extended number of the newest frame seen
	decided    [ddWindow / 64]uint64
	forwarded  [ddWindow / 64]uint64
	decodable  [ddWindow / 64]uint64     // forwarded, and all it refers to known decodable
	chainLast  [DDMaxDecodeTargets]int64 // last forwarded frame of each chain
	chainOK    uint32                    // chains intact at chainLast
}

// Current is the decode target being forwarded, -1 when none.
func (s *DDSelector) Current() int {
	if !s.started {
		return -1
	}
	return int(s.cur)
}

// Reset forgets everything: the next frame must be a switch point.
func (s *DDSelector) Reset() { *s = DDSelector{} }

// Select decides for one packet, parsed with st into f, whether to forward
// it to a subscriber that should receive decode target target (-1: none).
// A target outside the structure, or not active, is not switched to; the
// current decode target goes on being forwarded.
func (s *DDSelector) Select(st *DDStructure, f *DDFrame, target int) DDDecision {
	if !st.Valid() {
		return DDDecision{DecodeTarget: int8(s.Current())}
	}
	n := int(st.DecodeTargets)
	var ext int64
	if s.started {
		ext = s.newest + int64(int16(f.FrameNumber-uint16(s.newest)))
	}
	if !s.started || f.NewStructure && f.FdiffCount == 0 && !s.seen(ext) {
		// A new coded video sequence: its frame numbers need not follow
		// the old ones, and nothing before it matters any more.
		*s = DDSelector{started: true, cur: -1, curSpatial: -1, newest: 1<<32 + int64(f.FrameNumber) - 1}
		ext = s.newest + 1
	}
	if int(s.cur) >= n {
		s.cur, s.curSpatial = -1, -1
	}
	if ext <= s.newest-ddWindow {
		return DDDecision{DecodeTarget: s.cur}
	}
	if ext <= s.newest && s.seen(ext) {
		fwd := s.wasForwarded(ext)
		return DDDecision{Forward: fwd, Marker: fwd && s.marker(f), DecodeTarget: s.cur}
	}
	inOrder := ext > s.newest
	if inOrder {
		s.advance(ext)
	}

	var intact uint32 // chains intact before this frame
	if inOrder {
		intact = s.chainsBefore(st, f, ext)
	}
	var d DDDecision
	valid := target >= 0 && target < n && f.ActiveDecodeTargets&(1<<target) != 0
	allDec, dropped := s.refs(f, ext)
	if inOrder && valid && target != int(s.cur) && f.DTI[target] != DTINotPresent {
		chain := st.Chains > 0 && intact&(1<<st.ProtectedBy[target]) != 0
		start := f.NewStructure && f.FdiffCount == 0
		if allDec && (f.DTI[target] == DTISwitch || start || chain) {
			s.cur = int8(target)
			sp, _ := st.DecodeTargetLayer(target)
			s.curSpatial = int8(sp)
			d.Switch = true
		}
	}
	fwd := s.cur >= 0 && f.DTI[s.cur] != DTINotPresent && !dropped
	s.mark(ext, fwd, fwd && allDec)
	if inOrder {
		s.trackChains(st, f, ext, fwd, intact)
	}
	d.Forward = fwd
	d.Switch = d.Switch && fwd
	d.Marker = fwd && s.marker(f)
	d.DecodeTarget = s.cur
	if valid && target != int(s.cur) {
		broken := st.Chains > 0 && s.chainOK&(1<<st.ProtectedBy[target]) == 0
		d.NeedKeyframe = broken || st.Chains == 0 && s.cur < 0
	}
	return d
}

func (s *DDSelector) marker(f *DDFrame) bool {
	return f.EndOfFrame && int8(f.Spatial) == s.curSpatial
}

// chainsBefore is the mask of chains intact just before frame ext.
func (s *DDSelector) chainsBefore(st *DDStructure, f *DDFrame, ext int64) uint32 {
	var m uint32
	for c := range int(st.Chains) {
		d := f.Chain[c]
		if d == 0 || s.chainOK&(1<<c) != 0 && s.chainLast[c] == ext-int64(d) {
			m |= 1 << c
		}
	}
	return m
}

// trackChains records frame ext, forwarded or not, in each chain.
func (s *DDSelector) trackChains(st *DDStructure, f *DDFrame, ext int64, fwd bool, intact uint32) {
	n := int(st.DecodeTargets)
	for c := range int(st.Chains) {
		bit := uint32(1) << c
		// A6 PartOfActiveChain, and whether the chain protects an active
		// decode target at all.
		part, active := true, false
		for dt := range n {
			if int(st.ProtectedBy[dt]) != c {
				continue
			}
			if f.ActiveDecodeTargets&(1<<dt) != 0 {
				active = true
			}
			if f.DTI[dt] != DTISwitch && f.DTI[dt] != DTIRequired {
				part = false
			}
		}
		// A chain frame withheld from the subscriber is not recorded: the
		// next frame's chain diff, pointing at it, shows the break.
		switch {
		case !active || intact&bit == 0:
			s.chainOK &^= bit
		case part && fwd:
			s.chainOK |= bit
			s.chainLast[c] = ext
		}
	}
}

// refs reports whether every frame f refers to is known decodable by the
// subscriber, and whether any was dropped (seen and not forwarded).
func (s *DDSelector) refs(f *DDFrame, ext int64) (allDecodable, anyDropped bool) {
	allDecodable = true
	for _, fd := range f.Fdiff[:min(f.FdiffCount, DDMaxFdiffs)] {
		r := ext - int64(fd)
		switch {
		case r <= s.newest-ddWindow || !s.seen(r):
			allDecodable = false
		case !s.wasForwarded(r):
			allDecodable, anyDropped = false, true
		case !s.bit(&s.decodable, r):
			allDecodable = false
		}
	}
	return allDecodable, anyDropped
}

// advance makes ext the newest frame, forgetting decisions that fall out
// of the window.
func (s *DDSelector) advance(ext int64) {
	if ext-s.newest >= ddWindow {
		s.decided, s.forwarded, s.decodable = [ddWindow / 64]uint64{}, [ddWindow / 64]uint64{}, [ddWindow / 64]uint64{}
	} else {
		for n := s.newest + 1; n <= ext; n++ {
			i := uint64(n) % ddWindow
			s.decided[i/64] &^= 1 << (i % 64)
			s.forwarded[i/64] &^= 1 << (i % 64)
			s.decodable[i/64] &^= 1 << (i % 64)
		}
	}
	s.newest = ext
}

func (s *DDSelector) seen(ext int64) bool {
	if ext > s.newest || ext <= s.newest-ddWindow {
		return false
	}
	return s.bit(&s.decided, ext)
}

func (s *DDSelector) wasForwarded(ext int64) bool { return s.bit(&s.forwarded, ext) }

func (s *DDSelector) bit(m *[ddWindow / 64]uint64, ext int64) bool {
	i := uint64(ext) % ddWindow
	return m[i/64]&(1<<(i%64)) != 0
}

func (s *DDSelector) mark(ext int64, fwd, dec bool) {
	i := uint64(ext) % ddWindow
	s.decided[i/64] |= 1 << (i % 64)
	if fwd {
		s.forwarded[i/64] |= 1 << (i % 64)
	}
	if dec {
		s.decodable[i/64] |= 1 << (i % 64)
	}
}
