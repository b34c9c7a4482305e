package track

import (
	"encoding/binary"
	"errors"
)

// Errors for malformed RTP. They are returned by Packet.Unmarshal; the
// machines above count them as drops and never tear anything down for them.
var (
	ErrShortPacket   = errors.New("track: rtp packet too short")
	ErrBadVersion    = errors.New("track: rtp version is not 2")
	ErrBadExtension  = errors.New("track: rtp header extension overruns packet")
	ErrBadPadding    = errors.New("track: rtp padding overruns payload")
	ErrEmptyPayload  = errors.New("track: rtp packet has no payload")
	ErrBadDescriptor = errors.New("track: malformed codec payload descriptor")
)

// Packet is a parsed, zero-allocation view of one RTP packet: its slices
// alias the buffer given to Unmarshal. We parse the header ourselves rather
// than with pion/rtp's Header.Unmarshal because that builds a slice of
// extension structs per packet; here an extension is found by id on demand,
// by walking the extension block in place.
type Packet struct {
	Marker         bool
	PayloadType    uint8
	SequenceNumber uint16
	Timestamp      uint32
	SSRC           uint32
	CSRCCount      uint8

	// ExtProfile is 0xBEDE (one-byte), 0x1000-0x100F (two-byte), another
	// profile, or 0 with no extension block.
	ExtProfile uint16
	// Extensions is the raw extension block (after its 4-byte header).
	Extensions []byte
	// Payload excludes padding.
	Payload []byte

	// Meta is codec metadata, filled by ParseMeta.
	Meta Meta

	// The fields below are set by RemoteTrack when it stores the packet.

	// ExtSeq is SequenceNumber unwrapped to 64 bits, per encoding.
	ExtSeq uint64
	// Encoding is the index of the simulcast encoding the packet belongs to.
	Encoding uint8
	// AudioLevel is the RFC 6464 level in -dBov (0 loudest, 127 silence),
	// or -1 when the packet carried none; Voice is its V flag.
	AudioLevel int8
	Voice      bool
}

// Unmarshal parses buf into p. p's slices alias buf. Meta is reset.
func (p *Packet) Unmarshal(buf []byte) error {
	if len(buf) < 12 {
		return ErrShortPacket
	}
	b0 := buf[0]
	if b0>>6 != 2 {
		return ErrBadVersion
	}
	cc := int(b0 & 0x0f)
	p.Marker = buf[1]&0x80 != 0
	p.PayloadType = buf[1] & 0x7f
	p.SequenceNumber = binary.BigEndian.Uint16(buf[2:])
	p.Timestamp = binary.BigEndian.Uint32(buf[4:])
	p.SSRC = binary.BigEndian.Uint32(buf[8:])
	p.CSRCCount = uint8(cc)
	off := 12 + 4*cc
	if len(buf) < off {
		return ErrShortPacket
	}
	p.ExtProfile = 0
	p.Extensions = nil
	if b0&0x10 != 0 {
		if len(buf) < off+4 {
			return ErrBadExtension
		}
		p.ExtProfile = binary.BigEndian.Uint16(buf[off:])
		n := int(binary.BigEndian.Uint16(buf[off+2:])) * 4
		off += 4
		if len(buf) < off+n {
			return ErrBadExtension
		}
		p.Extensions = buf[off : off+n]
		off += n
	}
	end := len(buf)
	if b0&0x20 != 0 {
		if end == off {
			return ErrBadPadding
		}
		pad := int(buf[end-1])
		if pad == 0 || end-off < pad {
			return ErrBadPadding
		}
		end -= pad
	}
	p.Payload = buf[off:end]
	p.Meta = Meta{}
	p.ExtSeq, p.Encoding, p.AudioLevel, p.Voice = 0, 0, -1, false
	return nil
}

// Extension returns the payload of header extension id (RFC 8285 one-byte
// or two-byte form), or nil. id 0 is never present.
func (p *Packet) Extension(id uint8) []byte {
	if id == 0 || len(p.Extensions) == 0 {
		return nil
	}
	b := p.Extensions
	switch {
	case p.ExtProfile == 0xBEDE:
		for i := 0; i < len(b); {
			h := b[i]
			if h == 0 { // padding
				i++
				continue
			}
			eid := h >> 4
			n := int(h&0x0f) + 1
			if eid == 15 { // reserved: stop parsing
				return nil
			}
			i++
			if i+n > len(b) {
				return nil
			}
			if eid == id {
				return b[i : i+n]
			}
			i += n
		}
	case p.ExtProfile&0xfff0 == 0x1000:
		for i := 0; i < len(b); {
			if b[i] == 0 {
				i++
				continue
			}
			if i+2 > len(b) {
				return nil
			}
			eid, n := b[i], int(b[i+1])
			i += 2
			if i+n > len(b) {
				return nil
			}
			if eid == id {
				return b[i : i+n]
			}
			i += n
		}
	}
	return nil
}

// AudioLevel decodes an RFC 6464 ssrc-audio-level extension: the level in
// -dBov (0 loudest, 127 silence) and the voice-activity flag.
func AudioLevel(ext []byte) (level uint8, voice, ok bool) {
	if len(ext) < 1 {
		return 0, false, false
	}
	return ext[0] & 0x7f, ext[0]&0x80 != 0, true
}
