package track

import (
	"encoding/binary"
	"errors"
	"math"
)

// This file reads and writes the RTCP the SFU exchanges with peers. We do
// not use pion/rtcp on the hot path: its Unmarshal returns a fresh slice of
// interface values (one heap object per packet kind) for every datagram,
// and its packet structs hold slices of their own. Here a compound datagram
// is walked in place, each packet a view aliasing the input, and packets
// are written by appending to a caller's buffer.

// Errors for malformed RTCP, returned by ReadRTCP. Callers drop the rest of
// the compound packet and count it.
var (
	ErrRTCPShort   = errors.New("track: rtcp packet too short")
	ErrRTCPVersion = errors.New("track: rtcp version is not 2")
	ErrRTCPLength  = errors.New("track: rtcp length overruns datagram")
	ErrRTCPPadding = errors.New("track: rtcp padding overruns packet")
)

// RTCP packet types (RFC 3550, 3611, 4585).
const (
	RTCPTypeSR    = 200 // sender report
	RTCPTypeRR    = 201 // receiver report
	RTCPTypeSDES  = 202 // source description
	RTCPTypeBYE   = 203 // goodbye
	RTCPTypeAPP   = 204 // application-defined
	RTCPTypeRTPFB = 205 // transport-layer feedback
	RTCPTypePSFB  = 206 // payload-specific feedback
	RTCPTypeXR    = 207 // extended reports
)

// Feedback message types (FMT, in RTCPPacket.Count) of RTPFB and PSFB.
const (
	// RTCPFormatNACK is the RTPFB generic NACK (RFC 4585 §6.2.1).
	RTCPFormatNACK = 1
	// RTCPFormatTWCC is the RTPFB transport-wide congestion control
	// feedback (draft-holmer-rmcat-transport-wide-cc-extensions).
	RTCPFormatTWCC = 15
	// RTCPFormatPLI is the PSFB picture loss indication (RFC 4585 §6.3.1).
	RTCPFormatPLI = 1
	// RTCPFormatFIR is the PSFB full intra request (RFC 5104 §4.3.1).
	RTCPFormatFIR = 4
	// RTCPFormatAFB is the PSFB application-layer feedback, which carries
	// REMB (draft-alvestrand-rmcat-remb).
	RTCPFormatAFB = 15
)

// RTCPPacket is one packet of a compound RTCP datagram, as a view: Body
// aliases the buffer given to ReadRTCP, so it is valid only as long as that
// buffer is. Its accessors read fields in place and return zero values
// (or ok=false) when the packet is of another kind or too short, so that a
// malformed packet from a peer never panics.
type RTCPPacket struct {
	// Type is the packet type (RTCPTypeSR...).
	Type uint8
	// Count is the 5-bit field after the padding bit: the report count
	// (RC) for SR/RR, the source count for SDES/BYE, the feedback message
	// type (FMT) for RTPFB/PSFB.
	Count uint8
	// Body is everything after the 4-byte common header, padding removed.
	Body []byte
}

// ReadRTCP splits the first packet off a compound RTCP datagram and
// returns it and the rest. Walk a datagram with
//
//	for len(buf) > 0 {
//		p, rest, err := ReadRTCP(buf)
//		if err != nil { break }
//		buf = rest
//		...
//	}
func ReadRTCP(buf []byte) (p RTCPPacket, rest []byte, err error) {
	if len(buf) < 4 {
		return RTCPPacket{}, nil, ErrRTCPShort
	}
	if buf[0]>>6 != 2 {
		return RTCPPacket{}, nil, ErrRTCPVersion
	}
	n := (int(binary.BigEndian.Uint16(buf[2:])) + 1) * 4
	if n > len(buf) {
		return RTCPPacket{}, nil, ErrRTCPLength
	}
	end := n
	if buf[0]&0x20 != 0 {
		pad := int(buf[n-1])
		if pad == 0 || pad > n-4 {
			return RTCPPacket{}, nil, ErrRTCPPadding
		}
		end -= pad
	}
	return RTCPPacket{Type: buf[1], Count: buf[0] & 0x1f, Body: buf[4:end]}, buf[n:], nil
}

func (p *RTCPPacket) u32(off int) uint32 {
	if off < 0 || len(p.Body) < off+4 {
		return 0
	}
	return binary.BigEndian.Uint32(p.Body[off:])
}

func (p *RTCPPacket) isFeedback() bool {
	return p.Type == RTCPTypeRTPFB || p.Type == RTCPTypePSFB
}

// SenderSSRC is the SSRC of the packet's sender, the first word of SR, RR,
// APP, XR and feedback packets (0 for other kinds or a short packet).
func (p *RTCPPacket) SenderSSRC() uint32 {
	switch p.Type {
	case RTCPTypeSR, RTCPTypeRR, RTCPTypeAPP, RTCPTypeRTPFB, RTCPTypePSFB, RTCPTypeXR:
		return p.u32(0)
	}
	return 0
}

// MediaSSRC is the media source a feedback packet (RTPFB, PSFB) is about;
// 0 for other kinds. FIR and REMB leave it 0 and name their SSRCs in their
// entries instead (FIREntry, REMBSSRC).
func (p *RTCPPacket) MediaSSRC() uint32 {
	if !p.isFeedback() {
		return 0
	}
	return p.u32(4)
}

// IsPLI reports whether the packet is a picture loss indication.
func (p *RTCPPacket) IsPLI() bool {
	return p.Type == RTCPTypePSFB && p.Count == RTCPFormatPLI && len(p.Body) >= 8
}

// fci returns the feedback control information of a feedback packet of
// type t and format f, or nil.
func (p *RTCPPacket) fci(t, f uint8) []byte {
	if p.Type != t || p.Count != f || len(p.Body) < 8 {
		return nil
	}
	return p.Body[8:]
}

// FIREntries is the number of entries of a full intra request (0 for other
// packets). Each asks one media source for a keyframe.
func (p *RTCPPacket) FIREntries() int {
	return len(p.fci(RTCPTypePSFB, RTCPFormatFIR)) / 8
}

// FIREntry returns entry i of a FIR: the media SSRC asked for a keyframe
// and the request's sequence number, which lets a sender ignore
// retransmitted requests (RFC 5104 §4.3.1.2).
func (p *RTCPPacket) FIREntry(i int) (ssrc uint32, seq uint8) {
	b := p.fci(RTCPTypePSFB, RTCPFormatFIR)
	if i < 0 || i >= len(b)/8 {
		return 0, 0
	}
	return binary.BigEndian.Uint32(b[8*i:]), b[8*i+4]
}

// NACKCount is the number of PID/BLP pairs of a generic NACK (0 for other
// packets).
func (p *RTCPPacket) NACKCount() int {
	return len(p.fci(RTCPTypeRTPFB, RTCPFormatNACK)) / 4
}

// NACK returns pair i of a generic NACK: the lost packet pid, and in blp a
// bitmask of the 16 following packets also lost (bit 0 = pid+1). Expand
// it with ForEachNACKSeq.
func (p *RTCPPacket) NACK(i int) (pid, blp uint16) {
	b := p.fci(RTCPTypeRTPFB, RTCPFormatNACK)
	if i < 0 || i >= len(b)/4 {
		return 0, 0
	}
	return binary.BigEndian.Uint16(b[4*i:]), binary.BigEndian.Uint16(b[4*i+2:])
}

// ForEachNACKSeq calls fn with every sequence number a PID/BLP pair names
// as lost, in order, pid first. fn does not escape, so a closure passed
// here stays on the stack.
func ForEachNACKSeq(pid, blp uint16, fn func(seq uint16)) {
	fn(pid)
	for b := uint16(0); b < 16; b++ {
		if blp&(1<<b) != 0 {
			fn(pid + b + 1)
		}
	}
}

// rembID is the unique identifier that marks an AFB packet as REMB.
var rembID = [4]byte{'R', 'E', 'M', 'B'}

// remb returns the FCI of a REMB packet, validated to hold its SSRC list.
func (p *RTCPPacket) remb() []byte {
	b := p.fci(RTCPTypePSFB, RTCPFormatAFB)
	if len(b) < 8 || [4]byte(b[:4]) != rembID || len(b) < 8+4*int(b[4]) {
		return nil
	}
	return b
}

// REMB returns the receiver's estimated maximum bitrate and the number of
// SSRCs it applies to; ok is false when the packet is not a well-formed
// REMB. A bitrate beyond 64 bits (a 6-bit exponent allows it) saturates.
func (p *RTCPPacket) REMB() (bitrateBps uint64, ssrcCount int, ok bool) {
	b := p.remb()
	if b == nil {
		return 0, 0, false
	}
	exp := b[5] >> 2
	mantissa := uint64(b[5]&0x03)<<16 | uint64(b[6])<<8 | uint64(b[7])
	if mantissa != 0 && exp > 0 && mantissa > math.MaxUint64>>exp {
		bitrateBps = math.MaxUint64
	} else {
		bitrateBps = mantissa << exp
	}
	return bitrateBps, int(b[4]), true
}

// REMBSSRC returns SSRC i of a REMB (0 when out of range).
func (p *RTCPPacket) REMBSSRC(i int) uint32 {
	b := p.remb()
	if b == nil || i < 0 || i >= int(b[4]) {
		return 0
	}
	return binary.BigEndian.Uint32(b[8+4*i:])
}

// SenderReport returns the sender info of an SR: the sender's SSRC, the
// NTP and RTP timestamps of the same instant (for lip sync and RTT), and
// its packet and octet counts. ok is false for other packets.
func (p *RTCPPacket) SenderReport() (ssrc uint32, ntp uint64, rtpTime uint32, packets, octets uint32, ok bool) {
	if p.Type != RTCPTypeSR || len(p.Body) < 24 {
		return 0, 0, 0, 0, 0, false
	}
	b := p.Body
	return binary.BigEndian.Uint32(b), binary.BigEndian.Uint64(b[4:]), binary.BigEndian.Uint32(b[12:]),
		binary.BigEndian.Uint32(b[16:]), binary.BigEndian.Uint32(b[20:]), true
}

// ReportBlock is one reception report of an SR or RR (RFC 3550 §6.4.1):
// how well the reporter receives one source.
type ReportBlock struct {
	SSRC uint32
	// FractionLost is the fraction lost since the last report, in 1/256.
	FractionLost uint8
	// TotalLost is the 24-bit cumulative number of packets lost, as
	// signed on the wire (duplicates can make it negative).
	TotalLost int32
	// HighestSeq is the extended highest sequence number received.
	HighestSeq uint32
	// Jitter is the interarrival jitter in timestamp units.
	Jitter uint32
	// LSR is the middle 32 bits of the NTP time of the last SR received
	// from the source, and DLSR the delay since, in 1/65536 s: together
	// they give the source its round-trip time.
	LSR, DLSR uint32
}

const reportBlockLen = 24

// reports returns the report blocks of an SR or RR.
func (p *RTCPPacket) reports() []byte {
	switch {
	case p.Type == RTCPTypeSR && len(p.Body) >= 24:
		return p.Body[24:]
	case p.Type == RTCPTypeRR && len(p.Body) >= 4:
		return p.Body[4:]
	}
	return nil
}

// ReportBlockCount is the number of report blocks of an SR or RR: its
// report count, or fewer if the packet is too short to hold them.
func (p *RTCPPacket) ReportBlockCount() int {
	return min(int(p.Count), len(p.reports())/reportBlockLen)
}

// ReportBlock returns report block i of an SR or RR.
func (p *RTCPPacket) ReportBlock(i int) (ReportBlock, bool) {
	if i < 0 || i >= p.ReportBlockCount() {
		return ReportBlock{}, false
	}
	b := p.reports()[reportBlockLen*i:]
	lost := int32(uint32(b[5])<<16|uint32(b[6])<<8|uint32(b[7])) << 8 >> 8 // sign-extend 24 bits
	return ReportBlock{
		SSRC:         binary.BigEndian.Uint32(b),
		FractionLost: b[4],
		TotalLost:    lost,
		HighestSeq:   binary.BigEndian.Uint32(b[8:]),
		Jitter:       binary.BigEndian.Uint32(b[12:]),
		LSR:          binary.BigEndian.Uint32(b[16:]),
		DLSR:         binary.BigEndian.Uint32(b[20:]),
	}, true
}

// appendHeader appends a common header whose length is patched by
// finishRTCP once the body is written.
func appendHeader(buf []byte, count, typ uint8) []byte {
	return append(buf, 0x80|count&0x1f, typ, 0, 0)
}

// finishRTCP writes the length of the packet that starts at buf[start:].
// Bodies are whole words by construction.
func finishRTCP(buf []byte, start int) []byte {
	binary.BigEndian.PutUint16(buf[start+2:], uint16((len(buf)-start)/4-1))
	return buf
}

// AppendPLI appends a picture loss indication asking media for a keyframe.
// PLI rather than FIR is what current browsers answer fastest.
func AppendPLI(buf []byte, sender, media uint32) []byte {
	buf = append(buf, 0x80|RTCPFormatPLI, RTCPTypePSFB, 0, 2)
	buf = binary.BigEndian.AppendUint32(buf, sender)
	return binary.BigEndian.AppendUint32(buf, media)
}

// AppendFIR appends a full intra request for media with sequence number
// seq; increment seq for each new request (a repeat of the same seq is a
// retransmission the sender may ignore). The header's media SSRC is 0 as
// RFC 5104 §4.3.1.2 requires: the target is named in the entry.
func AppendFIR(buf []byte, sender, media uint32, seq uint8) []byte {
	buf = append(buf, 0x80|RTCPFormatFIR, RTCPTypePSFB, 0, 4)
	buf = binary.BigEndian.AppendUint32(buf, sender)
	buf = binary.BigEndian.AppendUint32(buf, 0)
	buf = binary.BigEndian.AppendUint32(buf, media)
	return append(buf, seq, 0, 0, 0)
}

// AppendNACK appends a generic NACK for the lost sequence numbers seqs,
// which should be in ascending order (modulo wrap-around): runs within 17
// packets share one PID/BLP pair. Unsorted input is still correct, only
// longer. With no seqs nothing is appended, since an empty NACK is invalid.
func AppendNACK(buf []byte, sender, media uint32, seqs []uint16) []byte {
	if len(seqs) == 0 {
		return buf
	}
	start := len(buf)
	buf = appendHeader(buf, RTCPFormatNACK, RTCPTypeRTPFB)
	buf = binary.BigEndian.AppendUint32(buf, sender)
	buf = binary.BigEndian.AppendUint32(buf, media)
	pid, blp := seqs[0], uint16(0)
	for _, s := range seqs[1:] {
		d := s - pid
		switch {
		case d == 0:
		case d <= 16:
			blp |= 1 << (d - 1)
		default:
			buf = binary.BigEndian.AppendUint16(buf, pid)
			buf = binary.BigEndian.AppendUint16(buf, blp)
			pid, blp = s, 0
		}
	}
	buf = binary.BigEndian.AppendUint16(buf, pid)
	buf = binary.BigEndian.AppendUint16(buf, blp)
	return finishRTCP(buf, start)
}

// AppendREMB appends a receiver estimated maximum bitrate for the streams
// ssrcs (at most 255 are sent). The bitrate is rounded down to 18
// significant bits, as the format requires.
func AppendREMB(buf []byte, sender uint32, bitrateBps uint64, ssrcs []uint32) []byte {
	if len(ssrcs) > 255 {
		ssrcs = ssrcs[:255]
	}
	exp := uint8(0)
	for bitrateBps >= 1<<18 {
		bitrateBps >>= 1
		exp++
	}
	start := len(buf)
	buf = appendHeader(buf, RTCPFormatAFB, RTCPTypePSFB)
	buf = binary.BigEndian.AppendUint32(buf, sender)
	buf = binary.BigEndian.AppendUint32(buf, 0) // media SSRC: always 0
	buf = append(buf, rembID[:]...)
	buf = append(buf, uint8(len(ssrcs)), exp<<2|uint8(bitrateBps>>16), uint8(bitrateBps>>8), uint8(bitrateBps))
	for _, s := range ssrcs {
		buf = binary.BigEndian.AppendUint32(buf, s)
	}
	return finishRTCP(buf, start)
}

// maxReportBlocks is what the 5-bit report count can say.
const maxReportBlocks = 31

func appendReportBlocks(buf []byte, blocks []ReportBlock) []byte {
	for i := range blocks {
		r := &blocks[i]
		buf = binary.BigEndian.AppendUint32(buf, r.SSRC)
		lost := uint32(min(max(r.TotalLost, -1<<23), 1<<23-1))
		buf = append(buf, r.FractionLost, uint8(lost>>16), uint8(lost>>8), uint8(lost))
		buf = binary.BigEndian.AppendUint32(buf, r.HighestSeq)
		buf = binary.BigEndian.AppendUint32(buf, r.Jitter)
		buf = binary.BigEndian.AppendUint32(buf, r.LSR)
		buf = binary.BigEndian.AppendUint32(buf, r.DLSR)
	}
	return buf
}

// AppendReceiverReport appends a receiver report from ssrc with the given
// report blocks; only the first 31 fit in one packet, so a caller with
// more appends further reports for the rest. TotalLost is clamped to the
// 24 bits of the wire.
func AppendReceiverReport(buf []byte, ssrc uint32, blocks []ReportBlock) []byte {
	blocks = blocks[:min(len(blocks), maxReportBlocks)]
	start := len(buf)
	buf = appendHeader(buf, uint8(len(blocks)), RTCPTypeRR)
	buf = binary.BigEndian.AppendUint32(buf, ssrc)
	buf = appendReportBlocks(buf, blocks)
	return finishRTCP(buf, start)
}

// AppendSenderReport appends a sender report: ssrc's NTP and RTP
// timestamps of one instant, which let receivers synchronise streams and
// measure the round trip, its packet and octet counts, and up to 31 report
// blocks.
func AppendSenderReport(buf []byte, ssrc uint32, ntp uint64, rtpTime, packets, octets uint32, blocks []ReportBlock) []byte {
	blocks = blocks[:min(len(blocks), maxReportBlocks)]
	start := len(buf)
	buf = appendHeader(buf, uint8(len(blocks)), RTCPTypeSR)
	buf = binary.BigEndian.AppendUint32(buf, ssrc)
	buf = binary.BigEndian.AppendUint64(buf, ntp)
	buf = binary.BigEndian.AppendUint32(buf, rtpTime)
	buf = binary.BigEndian.AppendUint32(buf, packets)
	buf = binary.BigEndian.AppendUint32(buf, octets)
	buf = appendReportBlocks(buf, blocks)
	return finishRTCP(buf, start)
}
