package webrtc

import (
	crand "crypto/rand"
	"math/rand/v2"
)

func newCryptoSeededRand() *rand.Rand {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return rand.New(rand.NewChaCha8(seed))
}

const iceChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"

// NewICECredentials returns a fresh ufrag (8 characters, 48 bits) and
// password (24 characters, 144 bits) drawn from crypto/rand, as RFC 8839
// asks (at least 24 and 128 bits). Pass the ufrag to the demux and both to
// Negotiate and the Session.
func NewICECredentials() (ufrag, pwd string) {
	var b [32]byte
	_, _ = crand.Read(b[:])
	var s [32]byte
	for i, c := range b {
		s[i] = iceChars[c&63]
	}
	return string(s[:8]), string(s[8:])
}
