// Package mediaframe is the wire frame of media on sdn channels between
// nodes: the RTP fields a LocalTrack on the far node needs, the layer
// metadata and the audio level, then the payload. It is written once per
// packet on the source node (into a scratch buffer the sdn Router copies
// once for all its downstream links) and read in place on every node
// that receives it; neither side allocates.
//
// Layout (big-endian), HeaderLen bytes then the payload:
//
//	0  version (1)
//	1  flags: 0x01 marker, 0x02 voice, 0x04 keyframe
//	2  encoding (simulcast index)
//	3  payload type
//	4  sequence number u16 (the publisher's)
//	6  timestamp u32 (the publisher's)
//	10 audio level i8 (-1: none)
//	11 spatial layer i8 (-1: none)
//	12 temporal layer i8 (-1: none)
//
// The receiving node re-parses the codec descriptor from the payload (the
// same parser as for a publisher, so a relay's LocalTracks see exactly
// what the source's do); the layer fields let a relay that parses nothing
// still tell layers apart, and let the decoder check the frame against
// the channel (encoding).
package mediaframe

import (
	"encoding/binary"
	"errors"

	"github.com/sansrtc/sfu/track"
)

// HeaderLen is the size of the frame header.
const HeaderLen = 13

// Version is the frame format's version byte.
const Version = 1

// Errors of Decode.
var (
	ErrShort   = errors.New("mediaframe: frame shorter than its header")
	ErrVersion = errors.New("mediaframe: unknown frame version")
	ErrFlags   = errors.New("mediaframe: unknown flags")
)

const (
	flagMarker   = 0x01
	flagVoice    = 0x02
	flagKeyframe = 0x04
)

// Append appends the frame of p, a packet stored by a RemoteTrack (its
// Encoding, AudioLevel and Meta set), to dst.
func Append(dst []byte, p *track.Packet) []byte {
	var f uint8
	if p.Marker {
		f |= flagMarker
	}
	if p.Voice {
		f |= flagVoice
	}
	if p.Meta.Keyframe {
		f |= flagKeyframe
	}
	dst = append(dst, Version, f, p.Encoding, p.PayloadType)
	dst = binary.BigEndian.AppendUint16(dst, p.SequenceNumber)
	dst = binary.BigEndian.AppendUint32(dst, p.Timestamp)
	dst = append(dst, uint8(p.AudioLevel), uint8(p.Meta.Spatial), uint8(p.Meta.Temporal))
	return append(dst, p.Payload...)
}

// Frame is a decoded frame header; Payload aliases the input.
type Frame struct {
	Marker, Voice, Keyframe bool
	Encoding                uint8
	PayloadType             uint8
	SequenceNumber          uint16
	Timestamp               uint32
	AudioLevel              int8
	Spatial, Temporal       int8
	Payload                 []byte
}

// Decode parses b. The payload aliases b; nothing is allocated.
func Decode(b []byte, f *Frame) error {
	if len(b) < HeaderLen {
		return ErrShort
	}
	if b[0] != Version {
		return ErrVersion
	}
	if b[1]&^(flagMarker|flagVoice|flagKeyframe) != 0 || b[3] > 127 {
		return ErrFlags
	}
	*f = Frame{
		Marker:         b[1]&flagMarker != 0,
		Voice:          b[1]&flagVoice != 0,
		Keyframe:       b[1]&flagKeyframe != 0,
		Encoding:       b[2],
		PayloadType:    b[3],
		SequenceNumber: binary.BigEndian.Uint16(b[4:]),
		Timestamp:      binary.BigEndian.Uint32(b[6:]),
		AudioLevel:     int8(b[10]),
		Spatial:        int8(b[11]),
		Temporal:       int8(b[12]),
		Payload:        b[HeaderLen:],
	}
	return nil
}

// Packet fills p with the RTP view of f, ready for RemoteTrack.HandleRTP
// (which parses the codec metadata from the payload and stores a copy).
func (f *Frame) Packet(p *track.Packet) {
	*p = track.Packet{
		Marker:         f.Marker,
		PayloadType:    f.PayloadType,
		SequenceNumber: f.SequenceNumber,
		Timestamp:      f.Timestamp,
		Payload:        f.Payload,
		AudioLevel:     f.AudioLevel,
		Voice:          f.Voice,
	}
}
