package track

import "strings"

// Kind is audio or video.
type Kind uint8

// Kinds.
const (
	KindAudio Kind = iota + 1
	KindVideo
)

func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	}
	return "unknown"
}

// Codec is a media codec the SFU understands well enough to switch layers
// and find keyframes.
type Codec uint8

// Codecs.
const (
	CodecUnknown Codec = iota
	CodecOpus
	CodecVP8
	CodecVP9
	CodecH264
	CodecAV1
)

var codecNames = [...]string{"unknown", "opus", "VP8", "VP9", "H264", "AV1"}

func (c Codec) String() string {
	if int(c) < len(codecNames) {
		return codecNames[c]
	}
	return "unknown"
}

// Kind is the media kind of the codec.
func (c Codec) Kind() Kind {
	switch c {
	case CodecOpus:
		return KindAudio
	case CodecVP8, CodecVP9, CodecH264, CodecAV1:
		return KindVideo
	}
	return 0
}

// ClockRate is the RTP clock rate of the codec.
func (c Codec) ClockRate() uint32 {
	if c == CodecOpus {
		return 48000
	}
	return 90000
}

// CodecByName maps an SDP encoding name (case-insensitive) to a Codec.
func CodecByName(name string) Codec {
	for i, n := range codecNames[1:] {
		if strings.EqualFold(n, name) {
			return Codec(i + 1)
		}
	}
	return CodecUnknown
}

// Meta is what the SFU needs to know of one packet's payload: whether
// forwarding may start at it, and which layer it belongs to. Fields that a
// codec does not carry hold their "none" value (-1 for layer ids and
// picture ids).
type Meta struct {
	// Keyframe is set on the first packet of an independently decodable
	// frame: a subscriber may start or resume at this packet. Every Opus
	// packet is a keyframe.
	Keyframe bool
	// StartOfFrame and EndOfFrame mark the first and last packet of a frame
	// (for codecs that say so; EndOfFrame usually mirrors the marker bit).
	StartOfFrame bool
	EndOfFrame   bool
	// Spatial and Temporal are the layer ids (-1: not signalled).
	Spatial  int8
	Temporal int8
	// LayerSync: a subscriber may switch up to this temporal layer here
	// (VP8 Y bit, VP9 U bit).
	LayerSync bool
	// PictureID is the VP8/VP9 picture id (-1: absent). PictureIDBits is 7
	// or 15, and PictureIDOffset the byte offset of its first byte in the
	// payload, so a forwarder can rewrite it in place.
	PictureID       int32
	PictureIDBits   uint8
	PictureIDOffset uint8
	// TL0PICIDX is the VP8/VP9 temporal-base-layer index (-1: absent), at
	// byte TL0PICIDXOffset of the payload.
	TL0PICIDX       int16
	TL0PICIDXOffset uint8
	// Width and Height are the frame size when a keyframe states it.
	Width, Height uint16
}

// ParseMeta fills p.Meta from p.Payload for codec c. A payload that cannot
// be parsed returns ErrBadDescriptor (wrapped) and leaves p.Meta marked as
// not a keyframe, so it is never a switching point.
func (p *Packet) ParseMeta(c Codec) error {
	p.Meta = Meta{Spatial: -1, Temporal: -1, PictureID: -1, TL0PICIDX: -1}
	var err error
	switch c {
	case CodecOpus:
		err = parseOpus(p.Payload, &p.Meta)
	case CodecVP8:
		err = parseVP8(p.Payload, &p.Meta)
	case CodecVP9:
		err = parseVP9(p.Payload, &p.Meta)
	case CodecH264:
		err = parseH264(p.Payload, &p.Meta)
	case CodecAV1:
		err = parseAV1(p.Payload, &p.Meta)
	}
	if p.Marker {
		p.Meta.EndOfFrame = true
	}
	if err != nil {
		p.Meta.Keyframe = false
	}
	return err
}
