package track

import "fmt"

// H.264 packetization errors, built once (fmt.Errorf allocates).
var (
	errH264Short       = fmt.Errorf("%w: h264 payload truncated", ErrBadDescriptor)
	errH264STAPA       = fmt.Errorf("%w: h264 STAP-A aggregation unit overruns payload", ErrBadDescriptor)
	errH264Unsupported = fmt.Errorf("%w: h264 STAP-B, MTAP and FU-B are not supported (packetization mode 2)", ErrBadDescriptor)
)

// H.264 NAL unit types (ITU-T H.264 Table 7-1, RFC 6184 Table 1).
const (
	h264Slice  = 1
	h264IDR    = 5
	h264SEI    = 6
	h264SPS    = 7
	h264PPS    = 8
	h264AUD    = 9
	h264STAPA  = 24
	h264STAPB  = 25
	h264MTAP16 = 26
	h264MTAP24 = 27
	h264FUA    = 28
	h264FUB    = 29
)

// parseH264 reads an RFC 6184 payload (packetization modes 0 and 1). A
// packet is a keyframe when it carries an SPS or the start of an IDR
// slice: the SPS/PPS may come in the same packet (STAP-A) or just before
// the IDR, and either is a point where a decoder can start. It starts a
// frame when it is a keyframe, begins an access unit (AUD), or begins the
// first slice of a picture (first_mb_in_slice == 0).
func parseH264(payload []byte, m *Meta) error {
	if len(payload) == 0 {
		return errH264Short
	}
	switch t := payload[0] & 0x1f; t {
	case h264STAPA:
		if len(payload) < 4 { // header, one size, one NAL header byte
			return errH264STAPA
		}
		for b := payload[1:]; len(b) > 0; {
			if len(b) < 2 {
				return errH264STAPA
			}
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || len(b) < 2+n {
				return errH264STAPA
			}
			h264NAL(b[2:2+n], m)
			b = b[2+n:]
		}
	case h264FUA:
		if len(payload) < 2 {
			return errH264Short
		}
		fu := payload[1]
		if fu&0x80 == 0 { // not the first fragment
			return nil
		}
		// The reconstructed NAL header is the FU indicator's F and NRI
		// with the FU header's type; only the type matters here.
		h264Unit(fu&0x1f, payload[2:], m)
	case h264STAPB, h264MTAP16, h264MTAP24, h264FUB:
		return errH264Unsupported
	default:
		h264NAL(payload, m)
	}
	return nil
}

// h264NAL notes what a complete NAL unit (header included) tells.
func h264NAL(nal []byte, m *Meta) {
	t := nal[0] & 0x1f
	h264Unit(t, nal[1:], m)
	if t == h264SPS {
		if w, h, ok := h264SPSSize(nal[1:]); ok {
			m.Width, m.Height = w, h
		}
	}
}

// h264Unit notes the start of a NAL unit of type t whose body (after the
// one-byte header) begins with body.
func h264Unit(t uint8, body []byte, m *Meta) {
	switch t {
	case h264SPS, h264IDR:
		m.Keyframe = true
		m.StartOfFrame = true
	case h264AUD:
		m.StartOfFrame = true
	case h264Slice:
		// first_mb_in_slice is the first ue(v) of the slice header; it is
		// 0 exactly when the first bit is 1.
		if len(body) > 0 && body[0]&0x80 != 0 {
			m.StartOfFrame = true
		}
	}
}

// h264SPSSize decodes the picture size from an SPS body (after the NAL
// header) per ITU-T H.264 §7.3.2.1.1, cropping included. A body that does
// not parse yields ok=false and is not an error of the packet: the SFU
// forwards what it cannot decode, and the size is informational.
func h264SPSSize(b []byte) (w, h uint16, ok bool) {
	r := rbspReader{b: b}
	profile := r.bits(8)
	r.bits(16) // constraint flags, level_idc
	r.ue()     // seq_parameter_set_id
	chroma, separate := uint32(1), false
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma > 3 {
			return 0, 0, false
		}
		if chroma == 3 {
			separate = r.bits(1) == 1
		}
		r.ue()              // bit_depth_luma_minus8
		r.ue()              // bit_depth_chroma_minus8
		r.bits(1)           // qpprime_y_zero_transform_bypass_flag
		if r.bits(1) == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := range lists {
				if r.bits(1) == 0 {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				last, next := int32(8), int32(8)
				for range size {
					if next != 0 {
						next = (last + r.se() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.bits(1) // delta_pic_order_always_zero_flag
		r.se()    // offset_for_non_ref_pic
		r.se()    // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return 0, 0, false
		}
		for range n {
			r.se()
		}
	}
	r.ue()    // max_num_ref_frames
	r.bits(1) // gaps_in_frame_num_value_allowed_flag
	mbw := r.ue() + 1
	mbh := r.ue() + 1
	frameMBsOnly := r.bits(1)
	if frameMBsOnly == 0 {
		r.bits(1) // mb_adaptive_frame_field_flag
	}
	r.bits(1) // direct_8x8_inference_flag
	var cl, cr, ct, cb uint32
	if r.bits(1) == 1 {
		cl, cr, ct, cb = r.ue(), r.ue(), r.ue(), r.ue()
	}
	if r.err || mbw > 1<<12 || mbh > 1<<12 {
		return 0, 0, false
	}
	// Crop units (§7.4.2.1.1): chroma samples per luma sample, doubled
	// vertically for field coding.
	ux, uy := uint64(1), uint64(2-frameMBsOnly)
	if !separate && chroma != 0 {
		if chroma != 3 {
			ux = 2
		}
		if chroma == 1 {
			uy *= 2
		}
	}
	width := uint64(mbw) * 16
	height := uint64(mbh) * 16 * uint64(2-frameMBsOnly)
	cropX := ux * (uint64(cl) + uint64(cr))
	cropY := uy * (uint64(ct) + uint64(cb))
	if cropX >= width || cropY >= height {
		return 0, 0, false
	}
	return uint16(width - cropX), uint16(height - cropY), true
}

// rbspReader reads bits from a NAL unit body, skipping emulation
// prevention bytes (00 00 03) in place rather than copying the body out.
// Reading past the end sets err and yields zeros, so a parser can check
// once at the end.
type rbspReader struct {
	b     []byte
	pos   int   // next byte
	zeros int   // consecutive zero bytes read
	cur   uint8 // current byte
	nbit  int   // bits left in cur
	err   bool
}

func (r *rbspReader) bit() uint32 {
	if r.nbit == 0 {
		if r.pos < len(r.b) && r.zeros >= 2 && r.b[r.pos] == 3 {
			r.pos++
			r.zeros = 0
		}
		if r.pos >= len(r.b) {
			r.err = true
			return 0
		}
		r.cur = r.b[r.pos]
		r.pos++
		if r.cur == 0 {
			r.zeros++
		} else {
			r.zeros = 0
		}
		r.nbit = 8
	}
	r.nbit--
	return uint32(r.cur>>r.nbit) & 1
}

func (r *rbspReader) bits(n int) uint32 {
	var v uint32
	for range n {
		v = v<<1 | r.bit()
	}
	return v
}

// ue reads an unsigned exp-Golomb code. Codes longer than 32 bits are
// invalid in H.264 and mark the reader failed.
func (r *rbspReader) ue() uint32 {
	n := 0
	for r.bit() == 0 {
		if r.err || n == 31 {
			r.err = true
			return 0
		}
		n++
	}
	return (1<<n - 1) + r.bits(n)
}

// se reads a signed exp-Golomb code.
func (r *rbspReader) se() int32 {
	k := r.ue()
	if k&1 == 1 {
		return int32(k/2 + 1)
	}
	return -int32(k / 2)
}
