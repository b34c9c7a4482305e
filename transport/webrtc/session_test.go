package webrtc

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	pion "github.com/pion/webrtc/v4"
)

type captureWriter struct{ pkts [][]byte }

func (w *captureWriter) WritePacket(b []byte, _ netip.AddrPort) error {
	w.pkts = append(w.pkts, bytes.Clone(b))
	return nil
}

// keyedSession returns a session with SRTP contexts installed directly (as
// after a handshake) and the peer's matching contexts.
func keyedSession(t testing.TB, cfg SessionConfig) (s *Session, peerEnc, peerDec *srtp.Context) {
	t.Helper()
	cert, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Certificate = cert
	cfg.LocalUfrag, cfg.LocalPwd = tLocalUfrag, tLocalPwd
	cfg.RemoteUfrag = tRemoteUfrag
	cfg.RemoteFingerprint = Fingerprint{Algorithm: "sha-256", Value: "00"}
	s, err = NewSession(t0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := srtp.ProtectionProfileAeadAes128Gcm
	k1, s1 := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 12)
	k2, s2 := bytes.Repeat([]byte{3}, 16), bytes.Repeat([]byte{4}, 12)
	mk := func(k, salt []byte, opts ...srtp.ContextOption) *srtp.Context {
		c, err := srtp.CreateContext(k, salt, p, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	s.dec = mk(k1, s1, srtp.SRTPReplayProtection(1024), srtp.SRTCPReplayProtection(1024))
	s.enc = mk(k2, s2)
	return s, mk(k1, s1), mk(k2, s2)
}

func marshalRTP(t testing.TB, seq uint16, payload []byte) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 1, SSRC: 42}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSessionDecrypt(t *testing.T) {
	var gotRTP, gotRTCP [][]byte
	s, peerEnc, _ := keyedSession(t, SessionConfig{
		OnRTP:  func(_ time.Time, b []byte) { gotRTP = append(gotRTP, bytes.Clone(b)) },
		OnRTCP: func(_ time.Time, b []byte) { gotRTCP = append(gotRTCP, bytes.Clone(b)) },
	})
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	plain := marshalRTP(t, 1, []byte("hello"))
	enc, err := peerEnc.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	dg := bytes.Clone(enc)
	s.HandleDatagram(t0, from, &captureWriter{}, dg)
	if len(gotRTP) != 1 || !bytes.Equal(gotRTP[0], plain) {
		t.Fatalf("got %x, want %x", gotRTP, plain)
	}
	// Replay of the same packet is dropped.
	s.HandleDatagram(t0, from, &captureWriter{}, bytes.Clone(enc))
	// Tampered packet is dropped.
	bad := bytes.Clone(enc)
	bad[len(bad)-1] ^= 1
	s.HandleDatagram(t0, from, &captureWriter{}, bad)

	pli, _ := (&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 42}).Marshal()
	encR, err := peerEnc.EncryptRTCP(nil, pli, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.HandleDatagram(t0, from, &captureWriter{}, encR)
	if len(gotRTCP) != 1 || !bytes.Equal(gotRTCP[0], pli) {
		t.Fatalf("rtcp %x, want %x", gotRTCP, pli)
	}
	s.HandleDatagram(t0, from, &captureWriter{}, []byte{70, 1, 2}) // unknown class
	st := s.Stats()
	if st.RTP != 1 || st.RTCP != 1 || st.DecryptErrors != 2 || st.Dropped != 1 || len(gotRTP) != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSessionDropsBeforeKeys(t *testing.T) {
	called := false
	cert, _ := NewCertificate()
	s, err := NewSession(t0, SessionConfig{Certificate: cert, LocalUfrag: "a", LocalPwd: "b",
		RemoteFingerprint: Fingerprint{"sha-256", "00"}, OnRTP: func(time.Time, []byte) { called = true }})
	if err != nil {
		t.Fatal(err)
	}
	s.HandleDatagram(t0, netip.MustParseAddrPort("192.0.2.1:1"), &captureWriter{}, marshalRTP(t, 1, []byte("x")))
	if called || s.Stats().Dropped != 1 {
		t.Fatal("RTP before keys not dropped")
	}
	if _, err := s.EncryptRTP(nil, marshalRTP(t, 1, nil)); err != ErrNotConnected {
		t.Fatalf("EncryptRTP before keys: %v", err)
	}
	if !s.Expired(t0.Add(ConsentTimeout)) || s.Expired(t0) {
		t.Fatal("consent timer wrong")
	}
}

func TestSessionEncrypt(t *testing.T) {
	s, _, peerDec := keyedSession(t, SessionConfig{})
	w := &captureWriter{}
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	if !s.HandleDatagram(t0, from, w, bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true)) {
		t.Fatal("binding refused")
	}
	if len(w.pkts) != 1 {
		t.Fatal("no STUN response written")
	}
	plain := marshalRTP(t, 7, []byte("payload"))
	if err := s.WriteRTP(plain); err != nil {
		t.Fatal(err)
	}
	if len(w.pkts) != 2 {
		t.Fatal("WriteRTP wrote nothing")
	}
	got, err := peerDec.DecryptRTP(nil, w.pkts[1], nil)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("peer decrypt: %v %x", err, got)
	}
	dst := make([]byte, 0, 1500)
	plain2 := marshalRTP(t, 8, []byte("payload"))
	out, err := s.EncryptRTP(dst, plain2)
	if err != nil || &out[0] != &dst[:1][0] {
		t.Fatalf("EncryptRTP did not reuse dst: %v", err)
	}
	if n := testing.AllocsPerRun(100, func() {
		plain2[3]++ // new sequence number each time
		if _, err := s.EncryptRTP(dst, plain2); err != nil {
			t.Fatal(err)
		}
	}); n != 0 && !raceEnabled {
		t.Errorf("EncryptRTP allocates %v", n)
	}
}

func TestSessionDecryptAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	s, peerEnc, _ := keyedSession(t, SessionConfig{OnRTP: func(time.Time, []byte) {}})
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	w := &captureWriter{}
	var pkts [][]byte
	for i := range 120 {
		enc, err := peerEnc.EncryptRTP(nil, marshalRTP(t, uint16(i), make([]byte, 1000)), nil)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, enc)
	}
	s.HandleDatagram(t0, from, w, pkts[0])
	i := 1
	if n := testing.AllocsPerRun(100, func() {
		s.HandleDatagram(t0, from, w, pkts[i])
		i++
	}); n != 0 {
		t.Errorf("SRTP receive path allocates %v per packet", n)
	}
	if s.Stats().RTP != 102 {
		t.Errorf("decrypted %d", s.Stats().RTP)
	}
}

// BenchmarkSessionDecrypt includes the peer-side encryption of each packet.
func BenchmarkSessionDecrypt(b *testing.B) {
	s, peerEnc, _ := keyedSession(b, SessionConfig{OnRTP: func(time.Time, []byte) {}})
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	w := &captureWriter{}
	plain := marshalRTP(b, 0, make([]byte, 1000))
	buf := make([]byte, 0, 1500)
	var hdr rtp.Header
	b.ReportAllocs()
	seq := uint16(0)
	for b.Loop() {
		seq++
		plain[2], plain[3] = byte(seq>>8), byte(seq)
		enc, _ := peerEnc.EncryptRTP(buf, plain, &hdr)
		s.HandleDatagram(t0, from, w, enc)
	}
}

// TestE2EFingerprintMismatch: a peer whose certificate does not match the
// SDP fingerprint never gets SRTP keys.
func TestE2EFingerprintMismatch(t *testing.T) {
	srv := newServer(t, false)
	api := newPionAPI(t, pion.NetworkTypeUDP4)
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, _ := pc.CreateOffer(nil)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	fp := removeLines(offer.SDP, "a=fingerprint:")
	fp = strings.Replace(fp, "a=setup:", "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:", 1)
	neg, sess, states := srv.answer(t, fp, nil)
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: neg.Answer}); err != nil {
		t.Fatal(err)
	}
	waitState(t, states, StateFailed)
	if _, err := sess.EncryptRTP(nil, marshalRTP(t, 1, nil)); err != ErrNotConnected {
		t.Fatalf("keys exist after a failed fingerprint check: %v", err)
	}
}
