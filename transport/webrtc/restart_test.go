package webrtc

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestICELiteConsentTimeout(t *testing.T) {
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	req := bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, false, true)
	for _, tc := range []struct {
		name string
		set  time.Duration
		want time.Duration
	}{
		{"default", 0, ConsentTimeout},
		{"2s", 2 * time.Second, 2 * time.Second},
		{"negative means default", -time.Second, ConsentTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewICELite(t0, tLocalUfrag, tLocalPwd, tRemoteUfrag)
			if tc.set != 0 {
				a.SetConsentTimeout(tc.set)
			}
			if a.Expired(t0.Add(tc.want-time.Millisecond)) || !a.Expired(t0.Add(tc.want)) || a.PollTimeout() != t0.Add(tc.want) {
				t.Fatalf("consent from t0 lapses at %v, want after %v", a.PollTimeout().Sub(t0), tc.want)
			}
			now := t0.Add(tc.want / 2)
			if _, ok := a.HandleSTUN(now, from, req, nil); !ok {
				t.Fatal("refused")
			}
			if a.Expired(now.Add(tc.want-time.Millisecond)) || !a.Expired(now.Add(tc.want)) {
				t.Fatalf("renewed consent lapses at %v after the request, want %v", a.PollTimeout().Sub(now), tc.want)
			}
		})
	}
}

func TestSessionConsentTimeout(t *testing.T) {
	s, _, _ := keyedSession(t, SessionConfig{ConsentTimeout: 2 * time.Second})
	if s.Expired(t0.Add(2*time.Second-time.Millisecond)) || !s.Expired(t0.Add(2*time.Second)) {
		t.Fatalf("session consent lapses %v after start, want 2s", s.PollTimeout().Sub(t0))
	}
	d, _, _ := keyedSession(t, SessionConfig{})
	if d.PollTimeout() != t0.Add(ConsentTimeout) {
		t.Fatalf("default session consent lapses %v after start, want %v", d.PollTimeout().Sub(t0), ConsentTimeout)
	}
}

func TestICELiteRestart(t *testing.T) {
	const newLocal, newPwd, newRemote = "nwLU", "newlocalpasswordnewlocal", "nwRU"
	a := NewICELite(t0, tLocalUfrag, tLocalPwd, tRemoteUfrag)
	a.SetConsentTimeout(3 * time.Second)
	oldPath := netip.MustParseAddrPort("192.0.2.1:1000")
	newPath := netip.MustParseAddrPort("198.51.100.2:2000")
	if _, ok := a.HandleSTUN(t0, oldPath, bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true), nil); !ok {
		t.Fatal("refused before restart")
	}

	now := t0.Add(2 * time.Second)
	a.Restart(now, newLocal, newPwd, newRemote)
	if a.PollTimeout() != now.Add(3*time.Second) {
		t.Errorf("consent after restart lapses at +%v, want +3s from the restart", a.PollTimeout().Sub(now))
	}
	if sel, ok := a.Selected(); !ok || sel != oldPath || !a.Nominated() {
		t.Errorf("selected %v %v after restart, want the old nominated path", sel, ok)
	}
	for _, tc := range []struct {
		name      string
		user, pwd string
	}{
		{"old credentials", tLocalUfrag + ":" + tRemoteUfrag, tLocalPwd},
		{"new ufrags, old password", newLocal + ":" + newRemote, tLocalPwd},
		{"old remote ufrag", newLocal + ":" + tRemoteUfrag, newPwd},
	} {
		if _, ok := a.HandleSTUN(now, newPath, bindingRequest(t, tc.user, tc.pwd, true, true), nil); ok {
			t.Errorf("%s accepted after restart", tc.name)
		}
	}
	// A check on a new path without nomination leaves the old one selected.
	if _, ok := a.HandleSTUN(now, newPath, bindingRequest(t, newLocal+":"+newRemote, newPwd, false, true), nil); !ok {
		t.Fatal("new credentials refused")
	}
	if sel, _ := a.Selected(); sel != oldPath {
		t.Errorf("selected %v before nomination, want %v", sel, oldPath)
	}
	if _, ok := a.HandleSTUN(now, newPath, bindingRequest(t, newLocal+":"+newRemote, newPwd, true, true), nil); !ok {
		t.Fatal("new nomination refused")
	}
	if sel, _ := a.Selected(); sel != newPath {
		t.Errorf("selected %v after nomination, want %v", sel, newPath)
	}
}

func TestSessionRestartICE(t *testing.T) {
	var rtpCount int
	s, peerEnc, _ := keyedSession(t, SessionConfig{ConsentTimeout: 2 * time.Second,
		OnRTP: func(time.Time, []byte) { rtpCount++ }})
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	w := &captureWriter{}
	if !s.HandleDatagram(t0, from, w, bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true)) {
		t.Fatal("refused before restart")
	}
	now := t0.Add(1500 * time.Millisecond)
	if err := s.RestartICE(now, "nwLU", "newlocalpasswordnewlocal", "nwRU"); err != nil {
		t.Fatal(err)
	}
	if s.Expired(t0.Add(3 * time.Second)) {
		t.Error("restart did not restart the consent timer")
	}
	if !s.Expired(now.Add(2 * time.Second)) {
		t.Error("consent after restart outlives ConsentTimeout")
	}
	if s.HandleDatagram(now, from, w, bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true)) {
		t.Error("old credentials accepted after restart")
	}
	if !s.HandleDatagram(now, from, w, bindingRequest(t, "nwLU:nwRU", "newlocalpasswordnewlocal", true, true)) {
		t.Error("new credentials refused after restart")
	}
	if _, addr, ok := s.Path(); !ok || addr != from {
		t.Errorf("path %v %v", addr, ok)
	}
	// SRTP keys survive the restart.
	pkt, err := peerEnc.EncryptRTP(nil, marshalRTP(t, 1, []byte("after restart")), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.HandleDatagram(now, from, w, pkt)
	if rtpCount != 1 {
		t.Error("SRTP packet not decrypted after restart")
	}
	if _, err := s.EncryptRTP(nil, marshalRTP(t, 1, []byte("x"))); err != nil {
		t.Errorf("EncryptRTP after restart: %v", err)
	}
	if err := s.RestartICE(now, "", "x", ""); err == nil {
		t.Error("empty local ufrag accepted")
	}
	s.Close()
	if err := s.RestartICE(now, "nwLU", "newlocalpasswordnewlocal", "nwRU"); !errors.Is(err, ErrClosed) {
		t.Errorf("restart of a closed session: %v, want ErrClosed", err)
	}
}
