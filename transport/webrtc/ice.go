package webrtc

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"net/netip"
	"time"
)

// ConsentTimeout is how long a session stays alive without a valid STUN
// Binding request from its peer (RFC 7675 consent freshness: browsers
// send one every ~5 s and give up after 30 s without an answer).
const ConsentTimeout = 30 * time.Second

// STUN wire constants (RFC 8489, RFC 8445).
const (
	stunHeaderLen   = 20
	stunMagicCookie = 0x2112A442

	stunBindingRequest = 0x0001
	stunBindingSuccess = 0x0101

	attrUsername         = 0x0006
	attrMessageIntegrity = 0x0008
	attrXORMappedAddress = 0x0020
	attrUseCandidate     = 0x0025
	attrFingerprint      = 0x8028

	fingerprintXOR = 0x5354554e
	miLen          = 20 // HMAC-SHA1
)

// IsSTUN reports whether b looks like a STUN message: first byte 0-3
// (RFC 7983), the magic cookie, and a length that matches.
func IsSTUN(b []byte) bool {
	return len(b) >= stunHeaderLen && b[0] < 4 &&
		binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie &&
		int(binary.BigEndian.Uint16(b[2:4]))+stunHeaderLen == len(b) && len(b)%4 == 0
}

// ICEStats counts what an ICELite agent saw.
type ICEStats struct {
	// Valid counts Binding requests that authenticated and were answered.
	Valid uint64
	// Invalid counts STUN messages dropped: not a Binding request, bad
	// USERNAME, MESSAGE-INTEGRITY or FINGERPRINT, or malformed.
	Invalid uint64
}

// ICELite is the responder half of ICE for a server with public addresses
// (RFC 8445 section 2.5): it never sends checks, only answers the peer's
// Binding requests, learns the peer's address from them, and takes the one
// flagged USE-CANDIDATE as the path for sending. It also enforces consent
// freshness. It is pure (time comes in as now), allocation-free per
// request, and not safe for concurrent use.
type ICELite struct {
	localUfrag, remoteUfrag string
	mac                     hash.Hash
	sum                     [sha1.Size]byte
	hdr                     [stunHeaderLen]byte

	lastValid time.Time
	consent   time.Duration
	nominated netip.AddrPort
	latest    netip.AddrPort
	stats     ICEStats
}

// NewICELite returns an agent that accepts Binding requests with USERNAME
// "localUfrag:remoteUfrag" (any remote part if remoteUfrag is empty) signed
// with localPwd. The consent timer starts at now.
func NewICELite(now time.Time, localUfrag, localPwd, remoteUfrag string) *ICELite {
	return &ICELite{
		localUfrag:  localUfrag,
		remoteUfrag: remoteUfrag,
		mac:         hmac.New(sha1.New, []byte(localPwd)),
		lastValid:   now,
		consent:     ConsentTimeout,
	}
}

// Selected returns the address to send to: the latest nominated one
// (USE-CANDIDATE), else the latest that sent a valid request.
func (a *ICELite) Selected() (netip.AddrPort, bool) {
	if a.nominated.IsValid() {
		return a.nominated, true
	}
	return a.latest, a.latest.IsValid()
}

// Nominated reports whether the peer has nominated a path.
func (a *ICELite) Nominated() bool { return a.nominated.IsValid() }

// Stats returns the counters.
func (a *ICELite) Stats() ICEStats { return a.stats }

// Expired reports whether consent has lapsed: no valid Binding request in
// the last consent timeout (ConsentTimeout unless SetConsentTimeout).
func (a *ICELite) Expired(now time.Time) bool { return !now.Before(a.PollTimeout()) }

// PollTimeout returns when consent lapses unless a valid request comes.
func (a *ICELite) PollTimeout() time.Time { return a.lastValid.Add(a.consent) }

// HandleSTUN validates a Binding request from `from` and, if it is valid,
// appends the success response to out[:0] and returns it with true (give
// out a capacity of at least 80 bytes to avoid allocating). Anything
// invalid is counted and dropped: it returns nil, false.
func (a *ICELite) HandleSTUN(now time.Time, from netip.AddrPort, msg, out []byte) ([]byte, bool) {
	useCand, ok := a.check(msg)
	if !ok || !from.IsValid() {
		a.stats.Invalid++
		return nil, false
	}
	a.stats.Valid++
	if now.After(a.lastValid) {
		a.lastValid = now
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	a.latest = from
	if useCand {
		a.nominated = from
	}
	return a.response(msg[8:stunHeaderLen], from, out[:0]), true
}

// SetConsentTimeout sets how long consent lasts without a valid Binding
// request; d <= 0 restores ConsentTimeout. A server wants a short one to
// notice a vanished peer quickly, but it must stay above the peer's
// consent-check interval (browsers check every ~5 s, pion every 2 s).
func (a *ICELite) SetConsentTimeout(d time.Duration) {
	if d <= 0 {
		d = ConsentTimeout
	}
	a.consent = d
}

// Restart replaces the ICE credentials for an ICE restart (RFC 8445
// section 2.4): from now on only Binding requests with USERNAME
// "localUfrag:remoteUfrag" signed with localPwd are valid, so the old
// credentials are refused. The consent timer starts again at now. The
// selected path is kept until the peer nominates one with the new
// credentials, so media keeps flowing during the restart.
func (a *ICELite) Restart(now time.Time, localUfrag, localPwd, remoteUfrag string) {
	a.localUfrag, a.remoteUfrag = localUfrag, remoteUfrag
	a.mac = hmac.New(sha1.New, []byte(localPwd))
	a.lastValid = now
}

// check parses and authenticates a Binding request.
func (a *ICELite) check(msg []byte) (useCandidate, ok bool) {
	if !IsSTUN(msg) || binary.BigEndian.Uint16(msg[0:2]) != stunBindingRequest {
		return false, false
	}
	var user []byte
	miOff, fpOff := -1, -1
	for off := stunHeaderLen; off < len(msg); {
		if off+4 > len(msg) {
			return false, false
		}
		typ := binary.BigEndian.Uint16(msg[off:])
		n := int(binary.BigEndian.Uint16(msg[off+2:]))
		val := off + 4
		if val+n > len(msg) {
			return false, false
		}
		if fpOff >= 0 {
			return false, false // nothing may follow FINGERPRINT
		}
		if miOff >= 0 && typ != attrFingerprint {
			return false, false // only FINGERPRINT may follow MESSAGE-INTEGRITY
		}
		switch typ {
		case attrUsername:
			user = msg[val : val+n]
		case attrMessageIntegrity:
			if n != miLen {
				return false, false
			}
			miOff = off
		case attrFingerprint:
			if n != 4 {
				return false, false
			}
			fpOff = off
		case attrUseCandidate:
			useCandidate = true
		}
		off = val + (n+3)&^3
	}
	if miOff < 0 || fpOff < 0 || !a.userOK(user) {
		return false, false
	}
	want := crc32.ChecksumIEEE(msg[:fpOff]) ^ fingerprintXOR
	if binary.BigEndian.Uint32(msg[fpOff+4:]) != want {
		return false, false
	}
	// MESSAGE-INTEGRITY covers the message up to itself, with the header
	// length counting up to and including it.
	copy(a.hdr[:], msg[:stunHeaderLen])
	binary.BigEndian.PutUint16(a.hdr[2:], uint16(miOff+4+miLen-stunHeaderLen))
	a.mac.Reset()
	a.mac.Write(a.hdr[:])
	a.mac.Write(msg[stunHeaderLen:miOff])
	sum := a.mac.Sum(a.sum[:0])
	if !hmac.Equal(sum, msg[miOff+4:miOff+4+miLen]) {
		return false, false
	}
	return useCandidate, true
}

func (a *ICELite) userOK(user []byte) bool {
	n := len(a.localUfrag)
	if len(user) < n+1 || string(user[:n]) != a.localUfrag || user[n] != ':' {
		return false
	}
	return a.remoteUfrag == "" || string(user[n+1:]) == a.remoteUfrag
}

// response appends a Binding success response to out.
func (a *ICELite) response(txid []byte, from netip.AddrPort, out []byte) []byte {
	ip := from.Addr()
	addrLen := 4
	if !ip.Is4() {
		addrLen = 16
	}
	xorLen := 4 + addrLen
	total := stunHeaderLen + 4 + xorLen + 4 + miLen + 4 + 4
	start := len(out)
	out = append(out, make([]byte, total)...)
	b := out[start:]
	binary.BigEndian.PutUint16(b[0:], stunBindingSuccess)
	binary.BigEndian.PutUint32(b[4:], stunMagicCookie)
	copy(b[8:20], txid)

	off := stunHeaderLen
	binary.BigEndian.PutUint16(b[off:], attrXORMappedAddress)
	binary.BigEndian.PutUint16(b[off+2:], uint16(xorLen))
	b[off+4] = 0
	b[off+5] = 1
	if addrLen == 16 {
		b[off+5] = 2
	}
	binary.BigEndian.PutUint16(b[off+6:], from.Port()^uint16(stunMagicCookie>>16))
	a4 := ip.As16()
	raw := a4[:]
	if addrLen == 4 {
		raw = raw[12:]
	}
	for i := range addrLen {
		b[off+8+i] = raw[i] ^ b[4+i] // cookie, then transaction id
	}
	off += 4 + xorLen

	binary.BigEndian.PutUint16(b[2:], uint16(off+4+miLen-stunHeaderLen))
	a.mac.Reset()
	a.mac.Write(b[:off])
	binary.BigEndian.PutUint16(b[off:], attrMessageIntegrity)
	binary.BigEndian.PutUint16(b[off+2:], miLen)
	a.mac.Sum(b[off+4 : off+4])
	off += 4 + miLen

	binary.BigEndian.PutUint16(b[2:], uint16(total-stunHeaderLen))
	binary.BigEndian.PutUint16(b[off:], attrFingerprint)
	binary.BigEndian.PutUint16(b[off+2:], 4)
	binary.BigEndian.PutUint32(b[off+4:], crc32.ChecksumIEEE(b[:off])^fingerprintXOR)
	return out
}
