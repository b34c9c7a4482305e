package sdn_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

// BenchmarkRoute measures a next-hop lookup in a converged 100-node,
// 3-zone table (node and zone destinations alike).
func BenchmarkRoute(b *testing.B) {
	s := regionNet(b, 100, false, false)
	s.startAll()
	s.sim.RunFor(10 * time.Second)
	r := s.nodes[0].r
	dsts := make([]sdn.NodeID, 0, len(s.nodes))
	for _, n := range s.nodes[1:] {
		dsts = append(dsts, n.id)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := r.Route(dsts[i]); !ok {
			b.Fatal("no route")
		}
		i++
		if i == len(dsts) {
			i = 0
		}
	}
}

// relayFixture is a relay joined to a source and fanout subscribers, and
// a data message from the source ready to be handed to the relay.
type relayFixture struct {
	s     *simNet
	relay *simNode
	up    sdn.LinkID
	msg   []byte
	seq   uint32
}

func newRelayFixture(tb testing.TB, fanout int) *relayFixture {
	const ch = 5
	s := newSimNet(tb, 7)
	src, relay := s.addNode(1), s.addNode(2)
	s.connect(src.id, relay.id, time.Millisecond, 0, 0)
	var leaves []*simNode
	for i := range fanout {
		n := s.addNode(sdn.NodeID(10 + i))
		s.connect(relay.id, n.id, time.Millisecond, 0, 0)
		leaves = append(leaves, n)
	}
	s.startAll()
	s.sim.RunFor(3 * time.Second)
	src.r.Publish(s.sim.Now(), ch)
	src.drain()
	s.sim.RunFor(time.Second)
	for _, n := range leaves {
		n.r.Subscribe(s.sim.Now(), ch)
		n.drain()
	}
	s.sim.RunFor(2 * time.Second)
	f := &relayFixture{s: s, relay: relay}
	for _, nb := range relay.r.Neighbours() {
		if nb.Node == src.id {
			f.up = nb.Link
		}
	}
	if up, ok := relay.r.ChannelUpstream(ch); up != src.id || !ok {
		tb.Fatalf("relay not joined: %d %v", up, ok)
	}
	// The wire form of a data packet: type 13, channel, seq, payload.
	f.msg = make([]byte, 13+1000)
	f.msg[0] = 13
	binary.BigEndian.PutUint64(f.msg[1:], ch)
	f.seq = 1 << 20
	return f
}

// relayOne hands the relay one packet and polls its copies out.
func (f *relayFixture) relayOne(now time.Time) int {
	f.seq++
	binary.BigEndian.PutUint32(f.msg[9:], f.seq)
	f.relay.r.HandleMessage(now, f.up, f.msg)
	n := 0
	for _, ok := f.relay.r.PollTransmit(); ok; _, ok = f.relay.r.PollTransmit() {
		n++
	}
	return n
}

// BenchmarkPubSubRelay: a data packet in, its copies polled out.
func BenchmarkPubSubRelay(b *testing.B) {
	for _, fanout := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("fanout=%d", fanout), func(b *testing.B) {
			f := newRelayFixture(b, fanout)
			now := f.s.sim.Now()
			b.ReportAllocs()
			for b.Loop() {
				if n := f.relayOne(now); n < fanout {
					b.Fatalf("%d copies, want %d", n, fanout)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

// TestPubSubRelayZeroAlloc pins the allocation-free relay path.
func TestPubSubRelayZeroAlloc(t *testing.T) {
	f := newRelayFixture(t, 10)
	now := f.s.sim.Now()
	f.relayOne(now)
	if a := testing.AllocsPerRun(1000, func() {
		if f.relayOne(now) != 10 {
			t.Fatal("wrong fanout")
		}
	}); a != 0 {
		t.Fatalf("%v allocs per relayed packet", a)
	}
}

// BenchmarkSim100 measures the simulator on 100 nodes over 3 zones in
// virtual seconds per wall second: idle (pings, routing updates, map
// gossip) and with traffic (besides, a channel at 50 packets/s to 50
// subscriber nodes and 10 map entries per node); in both routing modes.
func BenchmarkSim100(b *testing.B) {
	for _, mode := range routingModes {
		for _, traffic := range []bool{false, true} {
			name := mode.name + "/idle"
			if traffic {
				name = mode.name + "/traffic"
			}
			benchSim100(b, name, mode.flat, traffic)
		}
	}
}

func benchSim100(b *testing.B, name string, flat, traffic bool) {
	b.Run(name, func(b *testing.B) {
		s := regionNet(b, 100, flat, true)
		s.startAll()
		s.sim.RunFor(5 * time.Second)
		if traffic {
			const ch = 1
			perm := s.sim.Rand.Perm(len(s.nodes))
			src := s.nodes[perm[0]]
			src.r.Publish(s.sim.Now(), ch)
			src.drain()
			for _, i := range perm[1:51] {
				s.nodes[i].r.Subscribe(s.sim.Now(), ch)
				s.nodes[i].drain()
			}
			for _, n := range s.nodes {
				for k := range 10 {
					n.r.MapSet(s.sim.Now(), "m", fmt.Sprint(k), []byte("value"))
				}
				n.drain()
			}
			payload := make([]byte, 1000)
			s.sim.Every(20*time.Millisecond, func(now time.Time) bool {
				src.r.Send(now, ch, payload)
				src.drain()
				return true
			})
		}
		s.sim.RunFor(5 * time.Second)
		b.ReportAllocs()
		start := s.sim.Now()
		for b.Loop() {
			s.sim.RunFor(time.Second)
		}
		b.ReportMetric(s.sim.Now().Sub(start).Seconds()/b.Elapsed().Seconds(), "virtual-s/s")
	})
}
