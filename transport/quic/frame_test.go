package quic

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzFrames reads control frames from an arbitrary stream: nothing
// panics, every frame read is within bounds, and re-framing what was read
// gives back exactly the bytes consumed; a bad length is reported as
// errBadFrame.
func FuzzFrames(f *testing.F) {
	f.Add(appendFrame(appendFrame(nil, []byte{4, 0, 0, 0, 1}), []byte("x")))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0, 0, 0, 9, 1, 2})
	f.Fuzz(func(t *testing.T, p []byte) {
		r := bytes.NewReader(p)
		var again []byte
		buf := make([]byte, 8)
		for {
			m, next, err := readFrame(r, buf)
			if err != nil {
				consumed := len(p) - r.Len()
				switch {
				case errors.Is(err, errBadFrame):
					if consumed < 4 {
						t.Fatalf("bad frame after %d bytes", consumed)
					}
				case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
				default:
					t.Fatalf("unexpected error %v", err)
				}
				if !bytes.HasPrefix(p, again) {
					t.Fatalf("frames read do not re-frame to the input")
				}
				return
			}
			if len(m) == 0 || len(m) > maxFrame {
				t.Fatalf("frame of %d bytes", len(m))
			}
			again = appendFrame(again, m)
			if !bytes.Equal(again, p[:len(p)-r.Len()]) {
				t.Fatalf("re-framed %x, consumed %x", again, p[:len(p)-r.Len()])
			}
			buf = next
		}
	})
}
