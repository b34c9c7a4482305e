package track

import "fmt"

// AV1 aggregation errors, built once (fmt.Errorf allocates).
var (
	errAV1Short   = fmt.Errorf("%w: av1 payload truncated", ErrBadDescriptor)
	errAV1LEB128  = fmt.Errorf("%w: av1 leb128 length longer than 8 bytes", ErrBadDescriptor)
	errAV1Overrun = fmt.Errorf("%w: av1 obu element overruns payload", ErrBadDescriptor)
)

// AV1 OBU types (AV1 bitstream spec §6.2.2).
const av1OBUSequenceHeader = 1

// parseAV1 reads the aggregation header of the AOMedia "RTP Payload Format
// for AV1" and walks its OBU elements, so that a packet whose lengths do
// not add up is dropped before it reaches a subscriber's decoder.
//
//	 0 1 2 3 4 5 6 7
//	|Z|Y| W |N|-|-|-|
//
// Z: the first element continues an OBU from the previous packet; Y: the
// last continues in the next; W: element count (0: every element has a
// leb128 length, else the last has none); N: first packet of a coded video
// sequence. The layer ids come from the extension header of the first OBU
// that starts in this packet.
func parseAV1(payload []byte, m *Meta) error {
	if len(payload) < 2 {
		return errAV1Short
	}
	agg := payload[0]
	cont := agg&0x80 != 0
	w := int(agg >> 4 & 0x03)
	m.StartOfFrame = !cont
	b := payload[1:]
	first := true
	i := 0
	for len(b) > 0 {
		i++
		var elem []byte
		if w != 0 && i == w {
			elem, b = b, nil
		} else {
			n, k, err := leb128(b)
			if err != nil {
				return err
			}
			if n > uint64(len(b)-k) {
				return errAV1Overrun
			}
			elem, b = b[k:k+int(n)], b[k+int(n):]
		}
		if i == 1 && cont {
			continue // the tail of an OBU: no header here
		}
		if first && len(elem) > 0 {
			first = false
			h := elem[0]
			if !cont && (agg&0x08 != 0 || h>>3&0x0f == av1OBUSequenceHeader) {
				m.Keyframe = true
			}
			if h&0x04 != 0 { // obu_extension_flag
				if len(elem) < 2 {
					return errAV1Short
				}
				m.Temporal = int8(elem[1] >> 5)
				m.Spatial = int8(elem[1] >> 3 & 0x03)
			}
		}
	}
	if w != 0 && i < w {
		return errAV1Short // fewer elements than W announced
	}
	return nil
}

// leb128 decodes an unsigned LEB128 value (AV1 spec §4.10.5): at most 8
// bytes, as the spec allows, so the value always fits.
func leb128(b []byte) (v uint64, n int, err error) {
	for i := 0; i < 8; i++ {
		if i >= len(b) {
			return 0, 0, errAV1Short
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errAV1LEB128
}
