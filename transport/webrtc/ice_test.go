package webrtc

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

const (
	tLocalUfrag  = "locU"
	tLocalPwd    = "localpasswordlocalpassword"
	tRemoteUfrag = "remU"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// bindingRequest builds a request the way a browser does, with pion/stun.
func bindingRequest(t testing.TB, user, pwd string, useCandidate bool, fingerprint bool) []byte {
	t.Helper()
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(user)}
	setters = append(setters, &stun.RawAttribute{Type: stun.AttrPriority, Value: []byte{0x6e, 0x00, 0x1e, 0xff}})
	setters = append(setters, &stun.RawAttribute{Type: stun.AttrICEControlling, Value: make([]byte, 8)})
	if useCandidate {
		setters = append(setters, &stun.RawAttribute{Type: stun.AttrUseCandidate})
	}
	setters = append(setters, stun.NewShortTermIntegrity(pwd))
	if fingerprint {
		setters = append(setters, stun.Fingerprint)
	}
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func TestICELiteAnswers(t *testing.T) {
	for _, from := range []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.7:54321"),
		netip.MustParseAddrPort("[2001:db8::1]:4000"),
	} {
		t.Run(from.String(), func(t *testing.T) {
			a := NewICELite(t0, tLocalUfrag, tLocalPwd, tRemoteUfrag)
			req := bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, false, true)
			resp, ok := a.HandleSTUN(t0, from, req, make([]byte, 0, 128))
			if !ok {
				t.Fatal("valid request refused")
			}
			var m stun.Message
			if err := stun.Decode(resp, &m); err != nil {
				t.Fatalf("response does not decode: %v", err)
			}
			if m.Type != stun.BindingSuccess {
				t.Errorf("type %v", m.Type)
			}
			var reqM stun.Message
			_ = stun.Decode(req, &reqM)
			if m.TransactionID != reqM.TransactionID {
				t.Error("transaction id not echoed")
			}
			if err := stun.NewShortTermIntegrity(tLocalPwd).Check(&m); err != nil {
				t.Errorf("integrity: %v", err)
			}
			if err := stun.Fingerprint.Check(&m); err != nil {
				t.Errorf("fingerprint: %v", err)
			}
			var xa stun.XORMappedAddress
			if err := xa.GetFrom(&m); err != nil {
				t.Fatalf("xor-mapped-address: %v", err)
			}
			got, _ := netip.AddrFromSlice(xa.IP)
			if netip.AddrPortFrom(got.Unmap(), uint16(xa.Port)) != from {
				t.Errorf("mapped %v:%d, want %v", xa.IP, xa.Port, from)
			}
			if sel, ok := a.Selected(); !ok || sel != from || a.Nominated() {
				t.Errorf("selected %v %v nominated %v", sel, ok, a.Nominated())
			}
			if st := a.Stats(); st.Valid != 1 || st.Invalid != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestICELiteNomination(t *testing.T) {
	a := NewICELite(t0, tLocalUfrag, tLocalPwd, tRemoteUfrag)
	p1 := netip.MustParseAddrPort("192.0.2.1:1000")
	p2 := netip.MustParseAddrPort("192.0.2.2:2000")
	buf := make([]byte, 0, 128)
	a.HandleSTUN(t0, p1, bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true), buf)
	a.HandleSTUN(t0, p2, bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, false, true), buf)
	if sel, _ := a.Selected(); sel != p1 || !a.Nominated() {
		t.Fatalf("selected %v, want nominated %v", sel, p1)
	}
	a.HandleSTUN(t0, p2, bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true), buf)
	if sel, _ := a.Selected(); sel != p2 {
		t.Fatalf("selected %v, want re-nominated %v", sel, p2)
	}
}

func TestICELiteRejects(t *testing.T) {
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	good := bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true)
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 1
		return b
	}
	success, _ := stun.Build(stun.TransactionID, stun.BindingSuccess, stun.NewUsername(tLocalUfrag+":"+tRemoteUfrag),
		stun.NewShortTermIntegrity(tLocalPwd), stun.Fingerprint)
	tests := map[string][]byte{
		"wrong password":     bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, "otherpassword", true, true),
		"wrong local ufrag":  bindingRequest(t, "nope:"+tRemoteUfrag, tLocalPwd, true, true),
		"wrong remote ufrag": bindingRequest(t, tLocalUfrag+":nope", tLocalPwd, true, true),
		"no colon":           bindingRequest(t, tLocalUfrag, tLocalPwd, true, true),
		"no fingerprint":     bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, false),
		"bad fingerprint":    flip(len(good) - 1),
		"tampered body":      flip(30),
		"truncated":          good[:len(good)-4],
		"success response":   success.Raw,
		"empty":              nil,
		"rtp":                {0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for name, msg := range tests {
		t.Run(name, func(t *testing.T) {
			a := NewICELite(t0, tLocalUfrag, tLocalPwd, tRemoteUfrag)
			resp, ok := a.HandleSTUN(t0.Add(time.Second), from, msg, make([]byte, 0, 128))
			if ok || resp != nil {
				t.Fatal("invalid request answered")
			}
			if _, sel := a.Selected(); sel {
				t.Error("invalid request selected a path")
			}
			if st := a.Stats(); st.Invalid != 1 || st.Valid != 0 {
				t.Errorf("stats %+v", st)
			}
			if a.PollTimeout() != t0.Add(ConsentTimeout) {
				t.Error("invalid request renewed consent")
			}
		})
	}
}

func TestICELiteConsent(t *testing.T) {
	a := NewICELite(t0, tLocalUfrag, tLocalPwd, "")
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	if a.Expired(t0.Add(ConsentTimeout - time.Millisecond)) {
		t.Fatal("expired early")
	}
	if !a.Expired(t0.Add(ConsentTimeout)) {
		t.Fatal("not expired after ConsentTimeout without requests")
	}
	// Empty remote ufrag accepts any remote part.
	now := t0.Add(20 * time.Second)
	if _, ok := a.HandleSTUN(now, from, bindingRequest(t, tLocalUfrag+":whatever", tLocalPwd, false, true), nil); !ok {
		t.Fatal("refused")
	}
	if a.Expired(t0.Add(ConsentTimeout)) || a.PollTimeout() != now.Add(ConsentTimeout) {
		t.Fatal("valid request did not renew consent")
	}
	// Time running backwards does not shorten consent.
	a.HandleSTUN(t0, from, bindingRequest(t, tLocalUfrag+":whatever", tLocalPwd, false, true), nil)
	if a.PollTimeout() != now.Add(ConsentTimeout) {
		t.Fatal("consent deadline moved backwards")
	}
	if !a.Expired(now.Add(ConsentTimeout)) {
		t.Fatal("not expired 30 s after the last request")
	}
}

func TestICELiteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	a := NewICELite(t0, tLocalUfrag, tLocalPwd, tRemoteUfrag)
	req := bindingRequest(t, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true)
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	buf := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := a.HandleSTUN(t0, from, req, buf); !ok {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("HandleSTUN allocates %v per request", allocs)
	}
}

func BenchmarkICELite(b *testing.B) {
	a := NewICELite(t0, tLocalUfrag, tLocalPwd, tRemoteUfrag)
	req := bindingRequest(b, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true)
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		a.HandleSTUN(t0, from, req, buf)
	}
}

func FuzzSTUN(f *testing.F) {
	f.Add(bindingRequest(f, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, true, true))
	f.Add(bindingRequest(f, tLocalUfrag+":"+tRemoteUfrag, tLocalPwd, false, false))
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	from := netip.MustParseAddrPort("192.0.2.1:1000")
	f.Fuzz(func(t *testing.T, msg []byte) {
		a := NewICELite(t0, tLocalUfrag, tLocalPwd, tRemoteUfrag)
		resp, ok := a.HandleSTUN(t0, from, msg, nil)
		if !ok {
			return
		}
		var m stun.Message
		if err := stun.Decode(resp, &m); err != nil {
			t.Fatalf("response does not decode: %v", err)
		}
		if err := stun.Fingerprint.Check(&m); err != nil {
			t.Fatalf("response fingerprint: %v", err)
		}
		// Anything accepted must carry integrity pion also accepts.
		var req stun.Message
		if err := stun.Decode(msg, &req); err != nil {
			t.Fatalf("accepted a request pion cannot decode: %v", err)
		}
		if err := stun.NewShortTermIntegrity(tLocalPwd).Check(&req); err != nil {
			t.Fatalf("accepted a request with bad integrity: %v", err)
		}
	})
}
