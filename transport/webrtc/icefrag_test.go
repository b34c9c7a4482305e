package webrtc

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// restartFrag is the ICE restart PATCH body of RFC 9725 section 4.3.1
// (with RFC 8840's candidate lines), as a WHIP client sends it.
const restartFrag = "a=ice-options:trickle ice2\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
	"a=mid:0\r\n" +
	"a=ice-ufrag:ysXw\r\n" +
	"a=ice-pwd:vw5LmwG4y/e6dPP/zAP9Gp5k\r\n" +
	"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag ysXw network-id 1\r\n" +
	"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag ysXw network-id 2\r\n" +
	"a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag ysXw network-id 1\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" +
	"a=mid:1\r\n" +
	"a=ice-ufrag:ysXw\r\n" +
	"a=ice-pwd:vw5LmwG4y/e6dPP/zAP9Gp5k\r\n" +
	"a=end-of-candidates\r\n"

func TestParseICEFragment(t *testing.T) {
	f, err := ParseICEFragment(restartFrag)
	if err != nil {
		t.Fatal(err)
	}
	if f.Ufrag != "ysXw" || f.Pwd != "vw5LmwG4y/e6dPP/zAP9Gp5k" {
		t.Errorf("credentials %q/%q", f.Ufrag, f.Pwd)
	}
	if len(f.Candidates) != 3 || !strings.HasPrefix(f.Candidates[0], "1387637174 1 udp ") || !strings.HasSuffix(f.Candidates[2], "network-id 1") {
		t.Errorf("candidates %q", f.Candidates)
	}
	if !f.EndOfCandidates || !slices.Equal(f.MIDs, []string{"0", "1"}) {
		t.Errorf("end %v mids %v", f.EndOfCandidates, f.MIDs)
	}

	// A trickle PATCH: LF line ends, candidates only, mids from BUNDLE.
	f, err = ParseICEFragment("a=group:BUNDLE 0\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\n")
	if err != nil {
		t.Fatal(err)
	}
	if f.Ufrag != "" || f.Pwd != "" || f.EndOfCandidates || len(f.Candidates) != 1 || !slices.Equal(f.MIDs, []string{"0"}) {
		t.Errorf("trickle fragment %+v", f)
	}
	if f, err := ParseICEFragment(""); err != nil || len(f.Candidates) != 0 {
		t.Errorf("empty fragment: %+v %v", f, err)
	}
}

func TestParseICEFragmentErrors(t *testing.T) {
	cand := "a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\n"
	tests := []struct {
		name string
		frag string
	}{
		{"not sdp", "hello\r\n"},
		{"upper-case type", "A=ice-ufrag:abcd\r\n"},
		{"short ufrag", "a=ice-ufrag:abc\r\n"},
		{"short pwd", "a=ice-ufrag:abcd\r\na=ice-pwd:short\r\n"},
		{"bad ufrag char", "a=ice-ufrag:ab cd\r\n"},
		{"conflicting ufrags", "a=ice-ufrag:abcd\r\na=ice-ufrag:efgh\r\n"},
		{"candidate without typ", "a=candidate:1 1 udp 2122260223 192.0.2.1 61764 host x\r\n"},
		{"candidate bad port", "a=candidate:1 1 udp 2122260223 192.0.2.1 port typ host\r\n"},
		{"short candidate", "a=candidate:1 1 udp\r\n"},
		{"bad m-line", "m=audio\r\n"},
		{"empty mid", "a=mid:\r\n"},
		{"long line", "a=ice-options:" + strings.Repeat("x", MaxICEFragmentLine) + "\r\n"},
		{"too many candidates", strings.Repeat(cand, MaxICEFragmentCandidates+1)},
		{"too long", strings.Repeat("a=x\r\n", MaxICEFragmentLen/5+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseICEFragment(tc.frag); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	if f, err := ParseICEFragment(strings.Repeat(cand, MaxICEFragmentCandidates)); err != nil || len(f.Candidates) != MaxICEFragmentCandidates {
		t.Errorf("%d candidates refused: %v", MaxICEFragmentCandidates, err)
	}
}

func TestAnswerFragment(t *testing.T) {
	cands := []Candidate{
		{Addr: netip.MustParseAddrPort("127.0.0.1:40000")},
		{Addr: netip.MustParseAddrPort("127.0.0.1:40001"), TCP: true},
	}
	frag := AnswerFragment("srvU", "serverpasswordserverpass", cands)
	for _, want := range []string{"a=ice-lite\r\n", "a=ice-ufrag:srvU\r\n", "a=ice-pwd:serverpasswordserverpass\r\n", "a=end-of-candidates\r\n"} {
		if !strings.Contains(frag, want) {
			t.Errorf("fragment lacks %q:\n%s", want, frag)
		}
	}
	// The candidates are the ones the SDP answer carries.
	neg := mustNegotiate(t, chromeOffer, &Config{ICEUfrag: "srvU", ICEPwd: "serverpasswordserverpass",
		Fingerprint: Fingerprint{Algorithm: "sha-256", Value: "AA"}, Candidates: cands})
	f, err := ParseICEFragment(frag)
	if err != nil {
		t.Fatalf("our own fragment does not parse: %v", err)
	}
	if f.Ufrag != "srvU" || f.Pwd != "serverpasswordserverpass" || !f.EndOfCandidates || len(f.Candidates) != 2 {
		t.Errorf("parsed back %+v", f)
	}
	for _, c := range f.Candidates {
		if !strings.Contains(neg.Answer, "a=candidate:"+c+"\r\n") {
			t.Errorf("candidate %q not as in the SDP answer:\n%s", c, neg.Answer)
		}
	}
}

func FuzzParseICEFragment(f *testing.F) {
	f.Add(restartFrag)
	f.Add(AnswerFragment("srvU", "serverpasswordserverpass", []Candidate{{Addr: netip.MustParseAddrPort("[::1]:5000")}}))
	f.Add("a=candidate:1 1 udp 1 192.0.2.1 5000 typ host\n")
	f.Fuzz(func(t *testing.T, frag string) {
		fr, err := ParseICEFragment(frag)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error of unknown class: %v", err)
			}
			return
		}
		if len(fr.Candidates) > MaxICEFragmentCandidates || len(fr.MIDs) > maxFragMedia {
			t.Fatalf("bounds exceeded: %d candidates, %d mids", len(fr.Candidates), len(fr.MIDs))
		}
		if fr.Ufrag != "" && len(fr.Ufrag) < 4 || fr.Pwd != "" && len(fr.Pwd) < 22 {
			t.Fatalf("short credentials accepted: %q/%q", fr.Ufrag, fr.Pwd)
		}
	})
}
