package webrtc

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
)

// srtcpGCM opens or seals SRTCP protected with AEAD_AES_128_GCM or
// AEAD_AES_256_GCM (RFC 7714), without allocating. We use our own for
// RTCP because pion/srtp v3.0.13's DecryptRTCP and EncryptRTCP allocate
// for every packet (their AAD arrays escape into cipher.AEAD): the only
// allocations left on the data path (about one per 60 egress packets in
// BenchmarkSFU). RTP still goes through pion/srtp, which does not
// allocate for it. The keys are derived as pion derives them (RFC 3711
// section 4.3, kdr 0); srtcp_test checks both directions against pion.
type srtcpGCM struct {
	aead cipher.AEAD
	salt [12]byte
	iv   [12]byte
	aad  [12]byte
	// scratch holds the AAD of an unencrypted (E=0) packet: the whole
	// packet is authenticated then.
	scratch [1500]byte
	replay  map[uint32]*replayWindow
	// last is the last SRTCP index sealed. One counter serves every
	// sending SSRC: each stream's indices still only grow (with gaps, which
	// replay windows accept), and no (SSRC, index) pair, so no IV, repeats.
	last uint32
}

// SRTCP decryption errors.
var (
	errSRTCPShort      = errors.New("webrtc: srtcp packet too short")
	errSRTCPAuth       = errors.New("webrtc: srtcp authentication failed")
	errSRTCPReplay     = errors.New("webrtc: srtcp packet replayed")
	errSRTCPTooMany    = errors.New("webrtc: srtcp from too many ssrcs")
	errSRTCPIndexSpent = errors.New("webrtc: srtcp index space spent")
)

const (
	srtcpLabelEncryption = 0x03
	srtcpLabelSalt       = 0x05
	srtcpMaxSSRCs        = 64 // replay windows kept
)

func newSRTCPGCM(masterKey, masterSalt []byte) (*srtcpGCM, error) {
	if len(masterSalt) != 12 {
		return nil, errors.New("webrtc: AEAD SRTP master salt is not 12 bytes")
	}
	key, err := srtpKDF(srtcpLabelEncryption, masterKey, masterSalt, len(masterKey))
	if err != nil {
		return nil, err
	}
	salt, err := srtpKDF(srtcpLabelSalt, masterKey, masterSalt, 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	o := &srtcpGCM{aead: aead, replay: map[uint32]*replayWindow{}}
	copy(o.salt[:], salt)
	return o, nil
}

// srtpKDF is the AES-CM key derivation of RFC 3711 section 4.3.3 with a
// key derivation rate of 0: the master salt with label XORed into byte 7,
// counter in the last two bytes, encrypted with the master key.
func srtpKDF(label byte, masterKey, masterSalt []byte, n int) ([]byte, error) {
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, err
	}
	var in [16]byte
	copy(in[:], masterSalt)
	in[7] ^= label
	out := make([]byte, (n+15)/16*16)
	for i := 0; i*16 < n; i++ {
		binary.BigEndian.PutUint16(in[14:], uint16(i))
		block.Encrypt(out[i*16:], in[:])
	}
	return out[:n], nil
}

// open authenticates and decrypts pkt in place and returns the plain RTCP
// compound packet (a prefix of pkt).
func (o *srtcpGCM) open(pkt []byte) ([]byte, error) {
	tag := o.aead.Overhead()
	if len(pkt) < 8+tag+4 {
		return nil, errSRTCPShort
	}
	wordAt := len(pkt) - 4
	word := binary.BigEndian.Uint32(pkt[wordAt:])
	index := word &^ (1 << 31)
	ssrc := binary.BigEndian.Uint32(pkt[4:])
	w := o.replay[ssrc]
	if w == nil {
		if len(o.replay) >= srtcpMaxSSRCs {
			return nil, errSRTCPTooMany
		}
	} else if !w.check(index) {
		return nil, errSRTCPReplay
	}
	o.setIV(ssrc, index)
	var plainEnd int
	if word>>31 == 1 { // encrypted: AAD is the first 8 bytes and the ESRTCP word
		copy(o.aad[:8], pkt[:8])
		binary.BigEndian.PutUint32(o.aad[8:], word)
		if _, err := o.aead.Open(pkt[8:8], o.iv[:], pkt[8:wordAt], o.aad[:]); err != nil {
			return nil, errSRTCPAuth
		}
		plainEnd = wordAt - tag
	} else { // authenticated only: AAD is the packet and the ESRTCP word
		plainEnd = wordAt - tag
		if plainEnd+4 > len(o.scratch) {
			return nil, errSRTCPShort
		}
		n := copy(o.scratch[:], pkt[:plainEnd])
		binary.BigEndian.PutUint32(o.scratch[n:], word)
		if _, err := o.aead.Open(nil, o.iv[:], pkt[plainEnd:wordAt], o.scratch[:n+4]); err != nil {
			return nil, errSRTCPAuth
		}
	}
	if w == nil {
		w = &replayWindow{}
		o.replay[ssrc] = w
	}
	w.accept(index)
	return pkt[:plainEnd], nil
}

// seal encrypts the RTCP compound packet plain into dst (reused when its
// capacity allows) as SRTCP: header, encrypted payload and tag, and the
// ESRTCP word with the next index. After 2^31-1 packets the index space
// is spent and seal fails: the session must be re-keyed (at one RTCP
// packet per millisecond, after 24 days).
func (o *srtcpGCM) seal(dst, plain []byte) ([]byte, error) {
	if len(plain) < 8 {
		return nil, errSRTCPShort
	}
	if o.last == 1<<31-1 {
		return nil, errSRTCPIndexSpent
	}
	o.last++
	ssrc := binary.BigEndian.Uint32(plain[4:])
	index := o.last
	word := index | 1<<31
	o.setIV(ssrc, index)
	copy(o.aad[:8], plain[:8])
	binary.BigEndian.PutUint32(o.aad[8:], word)
	dst = append(dst[:0], plain[:8]...)
	dst = o.aead.Seal(dst, o.iv[:], plain[8:], o.aad[:])
	return binary.BigEndian.AppendUint32(dst, word), nil
}

func (o *srtcpGCM) setIV(ssrc, index uint32) {
	o.iv = [12]byte{}
	binary.BigEndian.PutUint32(o.iv[2:], ssrc)
	binary.BigEndian.PutUint32(o.iv[8:], index)
	for i := range o.iv {
		o.iv[i] ^= o.salt[i]
	}
}

// replayWindow is a 64-packet sliding window over 31-bit SRTCP indices
// (RFC 3711 section 3.3.2).
type replayWindow struct {
	top     uint32 // highest index accepted
	mask    uint64 // bit i: top-i was accepted
	started bool
}

// check reports whether index may be accepted: newer than the window, or
// inside it and not seen.
func (w *replayWindow) check(index uint32) bool {
	if !w.started || index > w.top {
		return true
	}
	d := w.top - index
	return d < 64 && w.mask&(1<<d) == 0
}

func (w *replayWindow) accept(index uint32) {
	switch {
	case !w.started:
		w.top, w.mask, w.started = index, 1, true
	case index > w.top:
		d := index - w.top
		if d >= 64 {
			w.mask = 0
		} else {
			w.mask <<= d
		}
		w.mask |= 1
		w.top = index
	default:
		w.mask |= 1 << (w.top - index)
	}
}
