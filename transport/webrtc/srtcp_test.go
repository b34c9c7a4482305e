package webrtc

import (
	"bytes"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"

	"github.com/sansrtc/sfu/track"
)

// TestSRTCPDoesNotAllocate: pion/srtp seals and opens SRTCP into caller
// buffers without allocating, for every profile a browser negotiates
// (AEAD GCM both key sizes, and AES-CM with HMAC-SHA1), in both
// directions. (An SRTCP packet a peer sends with E=0, authenticated but
// not encrypted, which no browser does, costs pion one allocation to
// open: a bounded cost the peer's own RTCP rate limits.) Until v3.1.3 it allocated per packet
// under GCM and this package carried its own SRTCP for it; this test is
// what let that go, and keeps it gone. Under -race only the round trips
// run: the count is not meaningful there.
func TestSRTCPDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile srtp.ProtectionProfile
		keyLen  int
		saltLen int
		opts    []srtp.ContextOption
	}{
		{"gcm128", srtp.ProtectionProfileAeadAes128Gcm, 16, 12, nil},
		{"gcm256", srtp.ProtectionProfileAeadAes256Gcm, 32, 12, nil},
		{"aes-cm-sha1-80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := bytes.Repeat([]byte{0x11}, tc.keyLen)
			salt := bytes.Repeat([]byte{0x22}, tc.saltLen)
			sealer, err := srtp.CreateContext(key, salt, tc.profile, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			opener, err := srtp.CreateContext(key, salt, tc.profile,
				append([]srtp.ContextOption{srtp.SRTCPReplayProtection(1024)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			plain := track.AppendPLI(nil, 0x1111, 0x2222)
			plain = track.AppendNACK(plain, 0x1111, 0x3333, []uint16{7, 9})
			var hdr [2]rtcp.Header
			out := make([]byte, 0, 1500)
			in := make([]byte, 1500)
			dec := make([]byte, 0, 1500)
			round := func() {
				enc, err := sealer.EncryptRTCP(out[:0], plain, &hdr[0])
				if err != nil {
					t.Fatal(err)
				}
				n := copy(in, enc)
				got, err := opener.DecryptRTCP(dec[:0], in[:n], &hdr[1])
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("round trip: %x, %v", got, err)
				}
			}
			for range 10 {
				round()
			}
			if raceEnabled {
				// pion's AES-CM keeps its counter block in a sync.Pool,
				// which the race detector empties at random.
				return
			}
			if a := testing.AllocsPerRun(200, round); a != 0 {
				t.Fatalf("%v allocations per SRTCP packet sealed and opened", a)
			}
		})
	}
}
