package webrtc

import (
	"fmt"
	"strings"
)

// Bounds on a trickle-ICE sdpfrag body. A WHIP/WHEP PATCH is untrusted
// input on an HTTP handler: a real one has a few candidates and lines of
// about 150 bytes.
const (
	// MaxICEFragmentLen bounds the whole fragment in bytes.
	MaxICEFragmentLen = 32 << 10
	// MaxICEFragmentLine bounds one line in bytes.
	MaxICEFragmentLine = 1024
	// MaxICEFragmentCandidates bounds the a=candidate lines.
	MaxICEFragmentCandidates = 64
	// maxFragMedia bounds m= lines and mids.
	maxFragMedia = 64
)

// ICEFragment is a parsed application/trickle-ice-sdpfrag body (RFC 8840),
// as a WHIP or WHEP client sends in a PATCH to trickle candidates or to
// restart ICE (RFC 9725 section 4.3). Credentials that differ from the
// session's current remote ones signal an ICE restart.
type ICEFragment struct {
	// Ufrag and Pwd are the client's ICE credentials, empty when absent.
	Ufrag, Pwd string
	// Candidates are the a=candidate values without "candidate:", in order.
	// An ICE-lite server needs none of them (the peer's checks reveal its
	// addresses) but they are kept for logging and full agents.
	Candidates []string
	// EndOfCandidates reports a=end-of-candidates.
	EndOfCandidates bool
	// MIDs are the media sections named by a=mid, or by a=group:BUNDLE when
	// no a=mid is present.
	MIDs []string
}

// ParseICEFragment parses a trickle-ICE sdpfrag. Lines end in CRLF or LF;
// a= attributes other than the ones ICEFragment carries are ignored.
// Errors wrap ErrMalformed: lines that are not SDP, bad or conflicting
// credentials, malformed candidates, or input beyond the Max bounds.
func ParseICEFragment(frag string) (ICEFragment, error) {
	var f ICEFragment
	if len(frag) > MaxICEFragmentLen {
		return f, fmt.Errorf("%w: sdpfrag of %d bytes", ErrMalformed, len(frag))
	}
	var bundle []string
	media := 0
	for n, line := range strings.Split(frag, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if len(line) > MaxICEFragmentLine {
			return f, fmt.Errorf("%w: sdpfrag line %d too long", ErrMalformed, n+1)
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return f, fmt.Errorf("%w: sdpfrag line %d is not an SDP line", ErrMalformed, n+1)
		}
		typ, val := line[0], line[2:]
		switch typ {
		case 'm':
			if media++; media > maxFragMedia {
				return f, fmt.Errorf("%w: more than %d m-lines in sdpfrag", ErrMalformed, maxFragMedia)
			}
			if len(strings.Fields(val)) < 4 {
				return f, fmt.Errorf("%w: sdpfrag m-line %q", ErrMalformed, val)
			}
			continue
		case 'a':
		default:
			continue // c=, b= and the like carry nothing for ICE
		}
		key, arg, _ := strings.Cut(val, ":")
		switch key {
		case "ice-ufrag":
			if err := setICECred(&f.Ufrag, arg, 4, "ice-ufrag"); err != nil {
				return f, err
			}
		case "ice-pwd":
			if err := setICECred(&f.Pwd, arg, 22, "ice-pwd"); err != nil {
				return f, err
			}
		case "candidate":
			if len(f.Candidates) == MaxICEFragmentCandidates {
				return f, fmt.Errorf("%w: more than %d candidates in sdpfrag", ErrMalformed, MaxICEFragmentCandidates)
			}
			if !validCandidate(arg) {
				return f, fmt.Errorf("%w: sdpfrag candidate %q", ErrMalformed, arg)
			}
			f.Candidates = append(f.Candidates, arg)
		case "end-of-candidates":
			f.EndOfCandidates = true
		case "mid":
			if arg == "" || len(f.MIDs) == maxFragMedia {
				return f, fmt.Errorf("%w: sdpfrag a=mid", ErrMalformed)
			}
			f.MIDs = append(f.MIDs, arg)
		case "group":
			g := strings.Fields(arg)
			if len(g) > maxFragMedia+1 {
				return f, fmt.Errorf("%w: sdpfrag BUNDLE group too large", ErrMalformed)
			}
			if len(g) > 0 && g[0] == "BUNDLE" && bundle == nil {
				bundle = g[1:]
			}
		}
	}
	if len(f.MIDs) == 0 {
		f.MIDs = bundle
	}
	return f, nil
}

// setICECred stores an ice-ufrag or ice-pwd value after checking it
// against RFC 8839 section 5.4: ice-chars, minLen to 256 long, and the
// same value if it is repeated (one BUNDLE transport has one set).
func setICECred(dst *string, v string, minLen int, name string) error {
	v = strings.TrimSpace(v)
	if len(v) < minLen || len(v) > 256 {
		return fmt.Errorf("%w: sdpfrag %s of length %d", ErrMalformed, name, len(v))
	}
	for _, c := range []byte(v) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return fmt.Errorf("%w: sdpfrag %s has %q", ErrMalformed, name, c)
		}
	}
	if *dst != "" && *dst != v {
		return fmt.Errorf("%w: sdpfrag has two different %s values", ErrMalformed, name)
	}
	*dst = v
	return nil
}

// validCandidate checks the fixed part of a candidate attribute value
// (RFC 8839 section 5.1): foundation, component, transport, priority,
// address, port, "typ", type.
func validCandidate(v string) bool {
	f := strings.Fields(v)
	if len(f) < 8 || f[6] != "typ" || len(f[0]) > 32 {
		return false
	}
	for _, i := range []int{1, 3, 5} {
		if !isDigits(f[i], 10) {
			return false
		}
	}
	return f[4] != "" && f[7] != ""
}

func isDigits(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// AnswerFragment returns the sdpfrag a WHIP/WHEP server sends back for an
// ICE restart PATCH (RFC 9725 section 4.3.2): our new credentials and our
// candidates, in the format of the SDP answer. The restarted session
// stays BUNDLEd on the same transport, so no m= sections are needed.
func AnswerFragment(ufrag, pwd string, cands []Candidate) string {
	var b strings.Builder
	b.WriteString("a=ice-lite\r\n")
	b.WriteString("a=ice-ufrag:" + ufrag + "\r\n")
	b.WriteString("a=ice-pwd:" + pwd + "\r\n")
	for i, c := range cands {
		b.WriteString("a=candidate:" + candidateLine(i, c) + "\r\n")
	}
	b.WriteString("a=end-of-candidates\r\n")
	return b.String()
}
