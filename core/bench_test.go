package core

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/track"
)

// vp8Packet builds a one-packet VP8 frame with a 15-bit picture id and
// TL0PICIDX, as browsers send them.
func vp8Packet(buf []byte, ssrc uint32, seq uint16, ts uint32, pid uint16, key bool, size int) []byte {
	b := buf[:12+6+size]
	b[0], b[1] = 0x80, 96|0x80
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	d := b[12:]
	d[0] = 0x90 // X, S, PID 0
	d[1] = 0xc0 // I, L
	d[2] = 0x80 | byte(pid>>8)&0x7f
	d[3] = byte(pid)
	d[4] = byte(pid) // TL0PICIDX
	if key {
		d[5] = 0x00 // P=0: keyframe; frame tag follows
		d[6], d[7] = 0, 0
		d[8], d[9], d[10] = 0x9d, 0x01, 0x2a
		d[11], d[12], d[13], d[14] = 0x80, 0x02, 0xe0, 0x01 // 640x480
	} else {
		d[5] = 0x01
	}
	return b
}

// fanoutNode builds a node with one VP8 publisher and n subscribers, and
// runs it until every subscriber forwards.
func fanoutNode(tb testing.TB, n int) (*Node, Handle) {
	tb.Helper()
	now := testutil.Epoch
	node, err := New(Config{Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := node.CreateEndpoint(now, EndpointConfig{PeerID: "pub"})
	if err != nil {
		tb.Fatal(err)
	}
	must(tb, node.Join(now, pub, "room"))
	must(tb, node.Publish(now, pub, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, PayloadType: 96,
		Encodings: []track.Encoding{{SSRC: 1111}}}))
	for i := 0; i < n; i++ {
		h, err := node.CreateEndpoint(now, EndpointConfig{PeerID: fmt.Sprintf("sub%d", i), AutoSubscribe: true})
		if err != nil {
			tb.Fatal(err)
		}
		must(tb, node.Join(now, h, "room"))
	}
	drain(node)
	buf := make([]byte, 1500)
	must(tb, node.HandleRTP(now, pub, vp8Packet(buf, 1111, 1, 1000, 1, true, 1000)))
	if got := drain(node); got != n {
		tb.Fatalf("keyframe reached %d subscribers, want %d", got, n)
	}
	return node, pub
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func drain(n *Node) int {
	c := 0
	for {
		if _, ok := n.pollTransmit(); !ok {
			break
		}
		c++
	}
	for {
		if _, _, ok := n.pollRTCP(make([]byte, 64)); !ok {
			break
		}
	}
	for {
		if _, ok := n.pollEvent(); !ok {
			break
		}
	}
	return c
}

// BenchmarkForward measures the node's forwarding path: one publisher's
// VP8 packet handled and every egress packet polled and marshalled into a
// send buffer, as a driver does.
func BenchmarkForward(b *testing.B) {
	for _, fanout := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("fanout=%d", fanout), func(b *testing.B) {
			node, pub := fanoutNode(b, fanout)
			in := make([]byte, 1500)
			send := make([]byte, 1500)
			now := testutil.Epoch
			seq, ts, pid := uint16(2), uint32(1000), uint16(2)
			var egress int
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				now = now.Add(time.Millisecond)
				p := vp8Packet(in, 1111, seq, ts, pid, false, 1000)
				seq++
				ts += 3000
				pid++
				_ = node.HandleRTP(now, pub, p)
				for {
					t, ok := node.pollTransmit()
					if !ok {
						break
					}
					if _, err := t.MarshalTo(send, nil); err != nil {
						b.Fatal(err)
					}
					egress++
				}
			}
			if egress != b.N*fanout {
				b.Fatalf("egress %d, want %d", egress, b.N*fanout)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(egress), "ns/egress-pkt")
		})
	}
}

func TestForwardDoesNotAllocate(t *testing.T) {
	node, pub := fanoutNode(t, 100)
	in := make([]byte, 1500)
	send := make([]byte, 1500)
	now := testutil.Epoch
	seq, ts, pid := uint16(2), uint32(1000), uint16(2)
	var egress int
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		p := vp8Packet(in, 1111, seq, ts, pid, seq%100 == 0, 1000)
		seq++
		ts += 3000
		pid++
		_ = node.HandleRTP(now, pub, p)
		for {
			tr, ok := node.pollTransmit()
			if !ok {
				break
			}
			if _, err := tr.MarshalTo(send, nil); err != nil {
				t.Fatal(err)
			}
			egress++
		}
	})
	if allocs != 0 {
		t.Fatalf("forwarding allocates %v times per packet, want 0", allocs)
	}
	if egress != 1001*100 {
		t.Fatalf("egress %d packets, want %d", egress, 1001*100)
	}
}
