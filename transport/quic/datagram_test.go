package quic

import (
	"fmt"
	"testing"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

// dataHdrLen is the sdn data header in front of every payload sent on a
// channel (sdn's own constant is not exported).
const dataHdrLen = 13

// TestDatagramSize sends data between two drivers on 127.0.0.1: the
// connection's maximum datagram payload, as quic-go reports it, holds a
// 1200-byte RTP packet behind the media and sdn headers; a message of a
// 1250 bytes or of exactly the maximum goes as a QUIC datagram, and one
// byte more goes on the stream, counted as oversized, and still arrives.
func TestDatagramSize(t *testing.T) {
	p := linkedPair(t)
	dgMax := p.pub.Stats().DatagramMax
	if got := p.sub.Stats().DatagramMax; got != dgMax {
		t.Errorf("maximum datagram payload %d on one end, %d on the other", dgMax, got)
	}
	const rtpMessage = 1200 + 13 + dataHdrLen // RTP, media frame header, sdn header
	if dgMax < 1250 {
		t.Fatalf("maximum datagram payload on loopback is %d, want at least 1250 (an RTP message is %d)", dgMax, rtpMessage)
	}
	t.Logf("maximum datagram payload on loopback: %d", dgMax)
	for _, tc := range []struct {
		message  int
		datagram bool
	}{
		{rtpMessage, true},
		{1250, true},
		{dgMax, true},
		{dgMax + 1, false},
		{2000, false},
	} {
		t.Run(fmt.Sprintf("message=%d", tc.message), func(t *testing.T) {
			const n = 50
			size := tc.message - dataHdrLen
			payload := make([]byte, size)
			settle(p)
			pub0, sub0, got0, bytes0 := p.pub.Stats(), p.sub.Stats(), p.got.Load(), p.bytes.Load()
			for range n {
				p.pub.Do(func(now time.Time, r *sdn.Router) {
					if err := r.Send(now, p.ch, payload); err != nil {
						t.Error(err)
					}
				})
				time.Sleep(time.Millisecond)
			}
			waitFor(t, 5*time.Second, "deliveries", func() bool { return p.got.Load()-got0 >= n })
			pub, sub := p.pub.Stats(), p.sub.Stats()
			got, sum := p.got.Load()-got0, p.bytes.Load()-bytes0
			if got != n || sum != n*uint64(size) {
				t.Fatalf("%d deliveries of %d bytes, want %d of %d", got, sum, n, n*size)
			}
			dgOut, oversized := pub.DatagramsOut-pub0.DatagramsOut, pub.Oversized-pub0.Oversized
			dgIn := sub.DatagramsIn - sub0.DatagramsIn
			if tc.datagram {
				if dgOut != n || oversized != 0 || dgIn != n {
					t.Fatalf("%d datagrams out, %d in, %d oversized; want all %d as datagrams", dgOut, dgIn, oversized, n)
				}
			} else if dgOut != 0 || oversized != n || dgIn != 0 {
				t.Fatalf("%d datagrams out, %d in, %d oversized; want all %d on the stream", dgOut, dgIn, oversized, n)
			}
		})
	}
}
