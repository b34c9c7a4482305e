package core

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/sdn"
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
		// Subscribers negotiated what browsers do: transport-cc and
		// abs-send-time are stamped on everything they are sent.
		h, err := node.CreateEndpoint(now, EndpointConfig{PeerID: fmt.Sprintf("sub%d", i), AutoSubscribe: true,
			Extensions: endpoint.Extensions{TransportCC: 3, AbsSendTime: 2}})
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
				egress += pollEgress(b, node, send)
			}
			if egress != b.N*fanout {
				b.Fatalf("egress %d, want %d", egress, b.N*fanout)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(egress), "ns/egress-pkt")
		})
	}
}

// pollEgress drains n as a driver does, marshalling every RTP output
// into send; it returns how many there were.
func pollEgress(tb testing.TB, n *Node, send []byte) int {
	var rtcp [64]byte
	egress := 0
	for {
		o, ok := n.Poll(rtcp[:])
		if !ok {
			return egress
		}
		if o.Kind == OutputRTP {
			if _, err := o.RTP.MarshalTo(send, nil); err != nil {
				tb.Fatal(err)
			}
			egress++
		}
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
		egress += pollEgress(t, node, send)
	})
	if allocs != 0 {
		t.Fatalf("forwarding allocates %v times per packet, want 0", allocs)
	}
	if egress != 1001*100 {
		t.Fatalf("egress %d packets, want %d", egress, 1001*100)
	}
}

// memPair is two Nodes, each with a Router, joined by one in-memory link:
// what a Node polls for its link is handed to the other at once.
type memPair struct {
	a, b *Node
	now  time.Time
	rtcp []byte
}

func newMemPair(tb testing.TB) *memPair {
	tb.Helper()
	m := &memPair{now: testutil.Epoch, rtcp: make([]byte, 64)}
	mk := func(id sdn.NodeID, seeds []sdn.Addr) *Node {
		r, err := sdn.New(sdn.Config{ID: id, Seeds: seeds, Seed: uint64(id)}, m.now)
		if err != nil {
			tb.Fatal(err)
		}
		n, err := New(Config{Seed: uint64(id), Router: r})
		if err != nil {
			tb.Fatal(err)
		}
		return n
	}
	m.a = mk(1, []sdn.Addr{{Node: 2}})
	m.b = mk(2, nil)
	return m
}

// pump moves link messages both ways until neither node has output; it
// returns the RTP outputs of b, marshalled into send.
func (m *memPair) pump(tb testing.TB, send []byte) int {
	egress := 0
	for moved := true; moved; {
		moved = false
		for _, x := range [2]*Node{m.a, m.b} {
			y, link := m.b, sdn.LinkID(2)
			if x == m.b {
				y, link = m.a, 1
			}
			for {
				o, ok := x.Poll(m.rtcp)
				if !ok {
					break
				}
				switch o.Kind {
				case OutputLink:
					// A microsecond on the wire: the Router takes a zero
					// round trip for an unanswered ping.
					m.now = m.now.Add(time.Microsecond)
					y.HandleLinkMessage(m.now, link, o.Data)
					moved = true
				case OutputDial:
					m.b.HandleLinkUp(m.now, 2, sdn.LinkInfo{})
					m.a.HandleLinkUp(m.now, 1, sdn.LinkInfo{Dialed: true, Peer: 2})
					moved = true
				case OutputRTP:
					if x == m.b {
						if _, err := o.RTP.MarshalTo(send, nil); err != nil {
							tb.Fatal(err)
						}
						egress++
					}
				}
			}
		}
	}
	return egress
}

// advance moves the clock by d, running both nodes' timers.
func (m *memPair) advance(tb testing.TB, d time.Duration, send []byte) {
	end := m.now.Add(d)
	for {
		next := end
		for _, x := range [2]*Node{m.a, m.b} {
			if at, ok := x.PollTimeout(); ok && at.Before(next) {
				next = at
			}
		}
		if next.After(m.now) {
			m.now = next
		}
		m.a.HandleTimeout(m.now)
		m.b.HandleTimeout(m.now)
		m.pump(tb, send)
		if !m.now.Before(end) {
			return
		}
	}
}

// crossNode builds a pair with a VP8 publisher on a and n subscribers on
// b, and runs it until the keyframe reaches every subscriber.
func crossNode(tb testing.TB, n int) (*memPair, Handle) {
	tb.Helper()
	m := newMemPair(tb)
	send := make([]byte, 1500)
	m.pump(tb, send)
	m.advance(tb, 3*time.Second, send)
	pub, err := m.a.CreateEndpoint(m.now, EndpointConfig{PeerID: "pub"})
	must(tb, err)
	must(tb, m.a.Join(m.now, pub, "room"))
	for i := range n {
		h, err := m.b.CreateEndpoint(m.now, EndpointConfig{PeerID: fmt.Sprintf("sub%d", i), AutoSubscribe: true})
		must(tb, err)
		must(tb, m.b.Join(m.now, h, "room"))
	}
	must(tb, m.a.Publish(m.now, pub, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, PayloadType: 96,
		Encodings: []track.Encoding{{SSRC: 1111}}}))
	m.advance(tb, time.Second, send)
	buf := make([]byte, 1500)
	must(tb, m.a.HandleRTP(m.now, pub, vp8Packet(buf, 1111, 1, 1000, 1, true, 1000)))
	if got := m.pump(tb, send); got != n {
		tb.Fatalf("keyframe reached %d subscribers on the other node, want %d", got, n)
	}
	return m, pub
}

// BenchmarkCrossNode measures the path across nodes: a packet in on node
// a, framed onto its sdn channel, handed to node b over the in-memory
// link, stored by b's relay track and forwarded to every subscriber
// there, each egress packet polled and marshalled.
func BenchmarkCrossNode(b *testing.B) {
	for _, fanout := range []int{1, 100} {
		b.Run(fmt.Sprintf("fanout=%d", fanout), func(b *testing.B) {
			m, pub := crossNode(b, fanout)
			in, send := make([]byte, 1500), make([]byte, 1500)
			seq, ts, pid := uint16(2), uint32(1000), uint16(2)
			var egress int
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m.now = m.now.Add(time.Millisecond)
				_ = m.a.HandleRTP(m.now, pub, vp8Packet(in, 1111, seq, ts, pid, false, 1000))
				seq, ts, pid = seq+1, ts+3000, pid+1
				egress += m.pump(b, send)
			}
			if egress != b.N*fanout {
				b.Fatalf("egress %d, want %d", egress, b.N*fanout)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(egress), "ns/egress-pkt")
		})
	}
}

// TestCrossNodeDoesNotAllocate: the relay path — framing on the source
// node, the Router's copy, the relay track, the fan-out — allocates
// nothing per packet.
func TestCrossNodeDoesNotAllocate(t *testing.T) {
	m, pub := crossNode(t, 100)
	in, send := make([]byte, 1500), make([]byte, 1500)
	seq, ts, pid := uint16(2), uint32(1000), uint16(2)
	egress := 0
	allocs := testing.AllocsPerRun(1000, func() {
		m.now = m.now.Add(time.Millisecond)
		_ = m.a.HandleRTP(m.now, pub, vp8Packet(in, 1111, seq, ts, pid, false, 1000))
		seq, ts, pid = seq+1, ts+3000, pid+1
		egress += m.pump(t, send)
	})
	if allocs != 0 {
		t.Fatalf("the cross-node path allocates %v times per packet, want 0", allocs)
	}
	if egress != 1001*100 {
		t.Fatalf("egress %d packets, want %d", egress, 1001*100)
	}
}
