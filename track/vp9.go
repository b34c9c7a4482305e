package track

import "fmt"

// VP9 descriptor errors, built once (fmt.Errorf allocates).
var (
	errVP9Short   = fmt.Errorf("%w: vp9 descriptor truncated", ErrBadDescriptor)
	errVP9PDiff   = fmt.Errorf("%w: vp9 descriptor has more than 3 reference indices", ErrBadDescriptor)
	errVP9SSShort = fmt.Errorf("%w: vp9 scalability structure truncated", ErrBadDescriptor)
)

// vp9MaxPDiff is the most reference indices a flexible-mode descriptor
// may list (RFC 9628 §4.2).
const vp9MaxPDiff = 3

// parseVP9 reads the RFC 9628 payload descriptor.
//
//	 0 1 2 3 4 5 6 7
//	|I|P|L|F|B|E|V|Z|
//	|M| PICTURE ID  |  (I)
//	| EXTENDED PID  |  (I && M)
//	|  TID|U| SID |D|  (L)
//	|   TL0PICIDX   |  (L && !F)
//	| P_DIFF      |N|  (F && P), up to 3 times
//	| SS ...        |  (V)
func parseVP9(payload []byte, m *Meta) error {
	if len(payload) == 0 {
		return errVP9Short
	}
	b0 := payload[0]
	inter := b0&0x40 != 0
	flexible := b0&0x10 != 0
	m.StartOfFrame = b0&0x08 != 0
	m.EndOfFrame = b0&0x04 != 0
	off := 1
	if b0&0x80 != 0 { // I
		var ok bool
		if off, ok = parsePictureID(m, payload, off); !ok {
			return errVP9Short
		}
	}
	if b0&0x20 != 0 { // L
		if len(payload) <= off {
			return errVP9Short
		}
		l := payload[off]
		m.Temporal = int8(l >> 5)
		m.LayerSync = l&0x10 != 0
		m.Spatial = int8(l >> 1 & 0x07)
		off++
		if !flexible {
			if len(payload) <= off {
				return errVP9Short
			}
			m.TL0PICIDX = int16(payload[off])
			m.TL0PICIDXOffset = uint8(off)
			off++
		}
	}
	if flexible && inter {
		for i := 0; ; i++ {
			if i == vp9MaxPDiff {
				return errVP9PDiff
			}
			if len(payload) <= off {
				return errVP9Short
			}
			more := payload[off]&0x01 != 0
			off++
			if !more {
				break
			}
		}
	}
	if b0&0x02 != 0 { // V
		if err := parseVP9SS(payload[off:], m); err != nil {
			return err
		}
	}
	m.Keyframe = m.StartOfFrame && !inter && m.Spatial <= 0
	return nil
}

// parseVP9SS reads the scalability structure for the frame size: the
// size of the packet's own spatial layer (of the first when the packet
// names none), since that is the picture a subscriber of this layer sees. The picture-group description that follows is only walked,
// so that a truncated structure is still reported as malformed.
func parseVP9SS(b []byte, m *Meta) error {
	if len(b) == 0 {
		return errVP9SSShort
	}
	ns := int(b[0]>>5) + 1
	hasSize := b[0]&0x10 != 0
	hasGroup := b[0]&0x08 != 0
	off := 1
	if hasSize {
		if len(b) < off+4*ns {
			return errVP9SSShort
		}
		// A layer id beyond the structure states no size we could trust.
		if want := max(int(m.Spatial), 0); want < ns {
			s := b[off+4*want:]
			m.Width = uint16(s[0])<<8 | uint16(s[1])
			m.Height = uint16(s[2])<<8 | uint16(s[3])
		}
		off += 4 * ns
	}
	if hasGroup {
		if len(b) <= off {
			return errVP9SSShort
		}
		ng := int(b[off])
		off++
		for range ng {
			if len(b) <= off {
				return errVP9SSShort
			}
			r := int(b[off] >> 2 & 0x03)
			off += 1 + r
			if len(b) < off {
				return errVP9SSShort
			}
		}
	}
	return nil
}
