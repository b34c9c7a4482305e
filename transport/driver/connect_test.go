package driver_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/sansrtc/sfu/transport/driver"
)

// sdpValue returns the first "a=key:" value in an SDP.
func sdpValue(sdp, key string) string {
	for l := range strings.SplitSeq(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a="+key+":"); ok {
			return v
		}
	}
	return ""
}

// stunReq is an ICE connectivity check (a STUN Binding request) as a
// controlling agent sends it.
func stunReq(t testing.TB, user, pwd string, useCand bool) []byte {
	t.Helper()
	s := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(user),
		&stun.RawAttribute{Type: stun.AttrPriority, Value: []byte{0x6e, 0, 0x1e, 0xff}},
		&stun.RawAttribute{Type: stun.AttrICEControlling, Value: make([]byte, 8)}}
	if useCand {
		s = append(s, &stun.RawAttribute{Type: stun.AttrUseCandidate})
	}
	s = append(s, stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	m, err := stun.Build(s...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// TestConnectTimeout: a peer that completes ICE and keeps its consent
// fresh but never starts DTLS is closed after ConnectTimeout, and its
// session slot is free again.
func TestConnectTimeout(t *testing.T) {
	d, url := start(t, driver.Config{MaxSessions: 1, ConnectTimeout: 2 * time.Second}, nil)
	off := offer(t, false)
	code, _, ans := post(t, url+"/whep/r", off)
	if code != 201 {
		t.Fatal(code, ans)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.UDPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check := stunReq(t, sdpValue(ans, "ice-ufrag")+":"+sdpValue(off, "ice-ufrag"), sdpValue(ans, "ice-pwd"), true)
	buf := make([]byte, 1500)
	answered := 0
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().Sessions != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("an ICE-only session is still open after 10 s: %+v", d.Stats())
		}
		if _, err := c.Write(check); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			if !stun.IsMessage(buf[:n]) {
				t.Fatalf("non-STUN answer %x", buf[:n])
			}
			answered++
		}
		time.Sleep(200 * time.Millisecond)
	}
	if answered == 0 {
		t.Fatal("no connectivity check was answered: the test kept nothing alive")
	}
	if st := d.Stats(); st.SessionsExpired != 1 {
		t.Fatalf("stats %+v", st)
	}
	if code, _, body := post(t, url+"/whep/r", offer(t, false)); code != 201 {
		t.Fatalf("the slot is not free: %d %s", code, body)
	}
}

// TestCertificateRenewed: new sessions get a fresh DTLS certificate once
// the current one is certRenewal old, so a long-running server never
// offers an expired one; until then they share it.
func TestCertificateRenewed(t *testing.T) {
	_, url := start(t, driver.Config{}, nil)
	fp := func() string {
		code, _, ans := post(t, url+"/whep/r"+fmt.Sprint(time.Now().UnixNano()), offer(t, false))
		if code != 201 {
			t.Fatal(code, ans)
		}
		return sdpValue(ans, "fingerprint")
	}
	a, b := fp(), fp()
	if a == "" || a != b {
		t.Fatalf("fingerprints %q %q: want one certificate while young", a, b)
	}
	defer driver.SetCertRenewal(0)()
	if c := fp(); c == a {
		t.Fatal("certificate not renewed once old")
	}
}
