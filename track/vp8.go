package track

import "fmt"

// VP8 descriptor errors. They are built once here because fmt.Errorf
// allocates and the parser runs once per packet.
var (
	errVP8Short     = fmt.Errorf("%w: vp8 descriptor truncated", ErrBadDescriptor)
	errVP8NoPayload = fmt.Errorf("%w: vp8 packet has no payload after its descriptor", ErrBadDescriptor)
	errVP8StartCode = fmt.Errorf("%w: vp8 keyframe start code mismatch", ErrBadDescriptor)
)

// parseVP8 reads the RFC 7741 payload descriptor and, on the first packet
// of a keyframe, the RFC 6386 keyframe header for the frame size.
//
//	 0 1 2 3 4 5 6 7
//	|X|R|N|S|R| PID |
//	|I|L|T|K| RSV   |  (X)
//	|M| PictureID   |  (I)
//	| PictureID     |  (I && M)
//	| TL0PICIDX     |  (L)
//	|TID|Y| KEYIDX  |  (T || K)
func parseVP8(payload []byte, m *Meta) error {
	if len(payload) == 0 {
		return errVP8Short
	}
	b0 := payload[0]
	start := b0&0x10 != 0 && b0&0x07 == 0
	off := 1
	if b0&0x80 != 0 {
		if len(payload) <= off {
			return errVP8Short
		}
		x := payload[off]
		off++
		if x&0x80 != 0 { // I
			var ok bool
			if off, ok = parsePictureID(m, payload, off); !ok {
				return errVP8Short
			}
		}
		if x&0x40 != 0 { // L
			if len(payload) <= off {
				return errVP8Short
			}
			m.TL0PICIDX = int16(payload[off])
			m.TL0PICIDXOffset = uint8(off)
			off++
		}
		if x&0x30 != 0 { // T or K share one byte
			if len(payload) <= off {
				return errVP8Short
			}
			if x&0x20 != 0 {
				m.Temporal = int8(payload[off] >> 6)
				m.LayerSync = payload[off]&0x20 != 0
			}
			off++
		}
	}
	if len(payload) <= off {
		return errVP8NoPayload
	}
	m.StartOfFrame = start
	if !start {
		return nil
	}
	// The first byte of a frame is the RFC 6386 frame tag; its low bit is
	// P, 0 for a keyframe.
	h := payload[off:]
	if h[0]&0x01 != 0 {
		return nil
	}
	// A keyframe's 3-byte tag is followed by a start code and the size. A
	// packetizer may split those across packets; the tag alone is enough
	// to know it is a keyframe, and what is present must be right.
	n := min(len(h), 6)
	for i := 3; i < n; i++ {
		if h[i] != vp8StartCode[i-3] {
			return errVP8StartCode
		}
	}
	m.Keyframe = true
	if len(h) >= 10 {
		m.Width = uint16(h[6]) | uint16(h[7]&0x3f)<<8
		m.Height = uint16(h[8]) | uint16(h[9]&0x3f)<<8
	}
	return nil
}

var vp8StartCode = [3]byte{0x9d, 0x01, 0x2a}

// parsePictureID reads the picture id at payload[off] (7 bits, or 15 with
// the M bit), as VP8 and VP9 payload descriptors both carry it, into m,
// and returns the offset after it; ok is false when payload is too short.
func parsePictureID(m *Meta, payload []byte, off int) (next int, ok bool) {
	if len(payload) <= off {
		return off, false
	}
	m.PictureIDOffset = uint8(off)
	if payload[off]&0x80 == 0 {
		m.PictureID, m.PictureIDBits = int32(payload[off]), 7
		return off + 1, true
	}
	if len(payload) <= off+1 {
		return off, false
	}
	m.PictureID, m.PictureIDBits = int32(payload[off]&0x7f)<<8|int32(payload[off+1]), 15
	return off + 2, true
}
