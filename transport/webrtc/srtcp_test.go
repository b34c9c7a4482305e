package webrtc

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pion/srtp/v3"

	"github.com/sansrtc/sfu/track"
)

// TestSRTCPGCMOpensPionsPackets: our SRTCP opener takes what pion/srtp
// seals (encrypted and authenticated-only, both GCM key sizes) and yields
// the same plain packets as pion's DecryptRTCP; it refuses tampering and
// replays, and allocates nothing.
func TestSRTCPGCMOpensPionsPackets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile srtp.ProtectionProfile
		keyLen  int
		opts    []srtp.ContextOption
	}{
		{"128", srtp.ProtectionProfileAeadAes128Gcm, 16, nil},
		{"256", srtp.ProtectionProfileAeadAes256Gcm, 32, nil},
		{"128 unencrypted", srtp.ProtectionProfileAeadAes128Gcm, 16, []srtp.ContextOption{srtp.SRTCPNoEncryption()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := bytes.Repeat([]byte{0x11}, tc.keyLen)
			salt := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
			sealer, err := srtp.CreateContext(key, salt, tc.profile, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := srtp.CreateContext(key, salt, tc.profile, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			o, err := newSRTCPGCM(key, salt)
			if err != nil {
				t.Fatal(err)
			}
			var sealed [][]byte
			for i := range 5 {
				plain := track.AppendPLI(nil, 0x1111, uint32(0x2222+i))
				plain = track.AppendNACK(plain, 0x1111, 0x3333, []uint16{uint16(i), uint16(i + 2)})
				enc, err := sealer.EncryptRTCP(nil, plain, nil)
				if err != nil {
					t.Fatal(err)
				}
				want, err := ref.DecryptRTCP(nil, enc, nil)
				if err != nil || !bytes.Equal(want, plain) {
					t.Fatalf("pion's own round trip: %v", err)
				}
				got, err := o.open(append([]byte(nil), enc...))
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("packet %d: %x, %v; want %x", i, got, err, plain)
				}
				sealed = append(sealed, enc)
			}
			if _, err := o.open(append([]byte(nil), sealed[2]...)); !errors.Is(err, errSRTCPReplay) {
				t.Fatalf("replay: %v", err)
			}
			bad, err := sealer.EncryptRTCP(nil, track.AppendPLI(nil, 0x1111, 0x4444), nil)
			if err != nil {
				t.Fatal(err)
			}
			bad[10] ^= 1
			if _, err := o.open(bad); !errors.Is(err, errSRTCPAuth) {
				t.Fatalf("tampered: %v", err)
			}
			if _, err := o.open(sealed[0][:10]); !errors.Is(err, errSRTCPShort) {
				t.Fatalf("short: %v", err)
			}
			// Steady state: a fresh packet each run, opened without allocating.
			plain := track.AppendPLI(nil, 0x1111, 0x2222)
			pkts := make([][]byte, 120)
			for i := range pkts {
				if pkts[i], err = sealer.EncryptRTCP(nil, plain, nil); err != nil {
					t.Fatal(err)
				}
			}
			n := 0
			if a := testing.AllocsPerRun(100, func() {
				if _, err := o.open(pkts[n]); err != nil {
					t.Fatal(err)
				}
				n++
			}); a != 0 {
				t.Fatalf("%v allocs per packet", a)
			}
		})
	}
}

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	for _, c := range []struct {
		index uint32
		ok    bool
	}{{10, true}, {10, false}, {9, true}, {9, false}, {80, true}, {16, false}, {17, true}, {17, false}, {200, true}, {137, true}, {136, false}} {
		if got := w.check(c.index); got != c.ok {
			t.Fatalf("check(%d) = %v, want %v", c.index, got, c.ok)
		}
		if c.ok {
			w.accept(c.index)
		}
	}
}

func FuzzSRTCPOpen(f *testing.F) {
	key := bytes.Repeat([]byte{0x11}, 16)
	salt := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	sealer, _ := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	pkt, _ := sealer.EncryptRTCP(nil, track.AppendPLI(nil, 1, 2), nil)
	f.Add(pkt)
	f.Add([]byte{0x80, 0xc8, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := newSRTCPGCM(key, salt)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := o.open(b); err == nil && len(out) > len(b) {
			t.Fatal("output longer than input")
		}
	})
}

// TestSRTCPGCMSealsForPion: what our sealer writes, pion/srtp opens to the
// same plain packet, for several sending SSRCs sharing one index counter;
// sealing allocates nothing once dst has room.
func TestSRTCPGCMSealsForPion(t *testing.T) {
	for _, keyLen := range []int{16, 32} {
		profile := srtp.ProtectionProfileAeadAes128Gcm
		if keyLen == 32 {
			profile = srtp.ProtectionProfileAeadAes256Gcm
		}
		key := bytes.Repeat([]byte{0x22}, keyLen)
		salt := []byte{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
		o, err := newSRTCPGCM(key, salt)
		if err != nil {
			t.Fatal(err)
		}
		opener, err := srtp.CreateContext(key, salt, profile, srtp.SRTCPReplayProtection(64))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			plain := track.AppendSenderReport(nil, uint32(0x100+i%3), uint64(i)<<32, uint32(i*3000), uint32(i), uint32(i*100), nil)
			sealed, err := o.seal(nil, plain)
			if err != nil {
				t.Fatal(err)
			}
			got, err := opener.DecryptRTCP(nil, sealed, nil)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%d-bit, packet %d: pion opened %x, %v; want %x", keyLen*8, i, got, err, plain)
			}
		}
		plain := track.AppendPLI(nil, 1, 2)
		dst := make([]byte, 0, 1500)
		if a := testing.AllocsPerRun(100, func() {
			if _, err := o.seal(dst, plain); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Fatalf("%v allocs per sealed packet", a)
		}
	}
}
