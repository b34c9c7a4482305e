package quic

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

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

// testLink is Links with one link, id 1, and no connection, whose maximum
// datagram payload is known (fresh, so it is not asked for).
func testLink(now time.Time, dgMax int) (*Links, *qlink) {
	k := newLink(1, nil, nil)
	k.dgMax, k.dgAsked = dgMax, now
	l := &Links{links: map[sdn.LinkID]*qlink{1: k}}
	return l, k
}

// TestSendAllocs: in steady state the links' part of sending allocates
// nothing: Send of a data message and of a control message (the copy out
// of the machine's buffer) and each writer's step up to the bytes it
// hands to quic-go. quic-go's SendDatagram and Stream.Write are left out
// (faked): SendDatagram allocates a frame and a copy of the payload per
// datagram, which Links cannot avoid.
func TestSendAllocs(t *testing.T) {
	now := time.Now()
	l, k := testLink(now, 1415)
	data := bytes.Repeat([]byte{0xd}, 1226)
	ctl := bytes.Repeat([]byte{0xc}, 300)
	var sent []byte
	send := func(p []byte) error {
		sent = append(sent[:0], p...)
		return nil
	}
	var stream bytes.Buffer
	stream.Grow(4096)
	step := func() {
		l.Send(now, 1, data, true)
		l.Send(now, 1, ctl, false)
		if err := l.sendDatagram(k, <-k.dg, send); err != nil {
			t.Fatal(err)
		}
		stream.Reset()
		if err := writeMsg(k, <-k.ctl, &stream); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if !bytes.Equal(sent, data) {
		t.Fatalf("datagram of %d bytes, want the %d sent", len(sent), len(data))
	}
	if m, _, err := readFrame(&stream, nil); err != nil || !bytes.Equal(m, ctl) {
		t.Fatalf("control frame %d bytes, %v; want the %d sent", len(m), err, len(ctl))
	}
	if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
		t.Fatalf("%v allocations per data and control message sent", allocs)
	}
	if st := l.Stats(); st.DatagramsOut != 1002 || st.StreamOut != 1002 || st.Oversized != 0 || st.QueueDrops != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDatagramShrink: a data message queued as a datagram that quic-go
// then refuses as too large (its maximum went down) goes on the stream,
// framed, counted as oversized, and the link learns the new maximum; the
// next such message is queued on the stream at once.
func TestDatagramShrink(t *testing.T) {
	now := time.Now()
	l, k := testLink(now, 1415)
	data := bytes.Repeat([]byte{0xd}, 1226)
	l.Send(now, 1, data, true)
	refuse := func([]byte) error { return &quicgo.DatagramTooLargeError{MaxDatagramPayloadSize: 1200} }
	if err := l.sendDatagram(k, <-k.dg, refuse); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := writeMsg(k, <-k.ctl, &stream); err != nil {
		t.Fatal(err)
	}
	if m, _, err := readFrame(&stream, nil); err != nil || !bytes.Equal(m, data) {
		t.Fatalf("stream got %d bytes, %v; want the %d of the datagram", len(m), err, len(data))
	}
	if st := l.Stats(); st.DatagramMax != 1200 || st.Oversized != 1 {
		t.Fatalf("maximum %d, oversized %d; want 1200, 1", st.DatagramMax, st.Oversized)
	}
	l.Send(now.Add(time.Millisecond), 1, data, true)
	if len(k.ctl) != 1 || len(k.dg) != 0 || l.Stats().Oversized != 2 {
		t.Fatalf("%d on the stream, %d datagrams, oversized %d; want 1, 0, 2", len(k.ctl), len(k.dg), l.Stats().Oversized)
	}
}

// TestReceiveAllocs: reading control frames from the stream allocates
// nothing once the buffer has grown to the largest frame.
func TestReceiveAllocs(t *testing.T) {
	var in []byte
	for _, n := range []int{300, 40, 1226} {
		in = appendFrame(in, bytes.Repeat([]byte{byte(n)}, n))
	}
	r := bytes.NewReader(in)
	buf := make([]byte, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		r.Reset(in)
		for {
			m, next, err := readFrame(r, buf)
			if err == io.EOF {
				return
			}
			if err != nil || len(m) == 0 || m[0] != byte(len(m)) {
				t.Fatalf("frame of %d bytes, %v", len(m), err)
			}
			buf = next
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per three frames read", allocs)
	}
}
