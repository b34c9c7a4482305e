package webrtc

import (
	"net/netip"
	"testing"
	"time"
)

// A closed session is gone for the network: it answers no consent check
// (so a peer still connected over a path the demux has not dropped, like
// an ICE-TCP connection, sees consent fail) and delivers no media.
func TestSessionClosedIgnoresInput(t *testing.T) {
	rtpCount := 0
	s, peerEnc, _ := keyedSession(t, SessionConfig{OnRTP: func(time.Time, []byte) { rtpCount++ }})
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	w := &captureWriter{}
	req := bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true)
	if !s.HandleDatagram(t0, from, w, req) || len(w.pkts) != 1 {
		t.Fatal("open session did not answer")
	}
	s.Close()
	if s.HandleDatagram(t0, from, w, bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true)) || len(w.pkts) != 1 {
		t.Fatalf("closed session accepted a Binding request (%d answers)", len(w.pkts))
	}
	pkt, err := peerEnc.EncryptRTP(nil, marshalRTP(t, 1, []byte("late")), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.HandleDatagram(t0, from, w, pkt)
	if rtpCount != 0 {
		t.Error("closed session delivered RTP")
	}
	if st := s.Stats(); st.Dropped != 2 {
		t.Errorf("stats %+v, want both datagrams counted as dropped", st)
	}
}

// blockingWriter blocks every WritePacket until release is closed.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
}

func (w *blockingWriter) WritePacket([]byte, netip.AddrPort) error {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	return nil
}

// A STUN answer is written without the session's read lock held: a
// Writer that blocks (a peer that stopped reading its ICE-TCP connection)
// must not block the driver's consent check (Expired), Stats, PollTimeout
// or the decryption of media arriving on another path.
func TestSessionSTUNAnswerWrittenWithoutReadLock(t *testing.T) {
	rtp := make(chan struct{}, 1)
	s, peerEnc, _ := keyedSession(t, SessionConfig{OnRTP: func(time.Time, []byte) { rtp <- struct{}{} }})
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	w := &blockingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	stunDone := make(chan struct{})
	go func() {
		defer close(stunDone)
		s.HandleDatagram(t0, from, w, bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true))
	}()
	select {
	case <-w.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("STUN answer never written")
	}
	pkt, err := peerEnc.EncryptRTP(nil, marshalRTP(t, 1, []byte("media")), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Expired(t0)
		s.Stats()
		s.PollTimeout()
		s.HandleDatagram(t0, netip.MustParseAddrPort("192.0.2.2:2000"), &captureWriter{}, pkt)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		close(w.release)
		t.Fatal("Expired/Stats/PollTimeout/media blocked behind a STUN answer's write")
	}
	select {
	case <-rtp:
	default:
		t.Error("media not delivered while a STUN answer's write was blocked")
	}
	close(w.release)
	<-stunDone
}
