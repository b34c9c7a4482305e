package sdn_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/sdn"
)

func TestAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{in: "10@/ip4/127.0.0.1/udp/10001", want: "10@/ip4/127.0.0.1/udp/10001"},
		{in: "16777221@/ip6/::1/udp/9", want: "16777221@/ip6/::1/udp/9"},
		{in: "0@/ip4/127.0.0.1/udp/1", err: true},
		{in: "10/ip4/127.0.0.1/udp/1", err: true},
		{in: "10@/ip4/::1/udp/1", err: true},
		{in: "10@/ip4/127.0.0.1/tcp/1", err: true},
		{in: "10@/ip4/127.0.0.1/udp/70000", err: true},
		{in: "x@/ip4/127.0.0.1/udp/1", err: true},
	} {
		a, err := sdn.ParseAddr(tc.in)
		if tc.err {
			if !errors.Is(err, sdn.ErrBadAddr) {
				t.Errorf("%q: err %v, want ErrBadAddr", tc.in, err)
			}
			continue
		}
		if err != nil || a.String() != tc.want {
			t.Errorf("%q: %v %v, want %q", tc.in, a, err, tc.want)
		}
	}
	if id := sdn.MakeNodeID(1, 5); id != 16777221 || id.Zone() != 1 {
		t.Errorf("MakeNodeID(1,5) = %d zone %d", id, id.Zone())
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (&sdn.Config{ID: 1}).Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for name, c := range map[string]sdn.Config{
		"no id":       {},
		"neg":         {ID: 1, PingInterval: -1},
		"gain":        {ID: 1, SwitchGain: 1},
		"own seed":    {ID: 1, Seeds: []sdn.Addr{{Node: 1}}},
		"value limit": {ID: 1, MaxValueLen: 1 << 20},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestWrongSecretRefused: a node with another secret never becomes a
// neighbour, whichever side dials, and the refusals are counted.
func TestWrongSecretRefused(t *testing.T) {
	s := newSimNet(t, 1)
	a, b := s.addNode(1), s.addNode(2)
	s.secret = []byte("other secret")
	m := s.addNode(3)
	s.connect(a.id, b.id, 5*time.Millisecond, 0, 0)
	s.connect(a.id, m.id, 5*time.Millisecond, 0, 0) // a dials m
	s.connect(b.id, m.id, 5*time.Millisecond, 0, 0) // b dials m
	ups := 0
	s.onEvent = func(n *simNode, e sdn.Event) {
		if e, ok := e.(sdn.EventNeighbourUp); ok && (n == m || e.Node == m.id) {
			ups++
		}
	}
	s.startAll()
	s.sim.RunFor(20 * time.Second)
	if ups != 0 {
		t.Fatalf("%d neighbour-ups with the wrong secret", ups)
	}
	if _, ok := a.r.Route(b.id); !ok {
		t.Fatal("the two good nodes do not route to each other")
	}
	if _, ok := a.r.Route(m.id); ok {
		t.Fatal("route to the node with the wrong secret")
	}
	if a.r.Stats().AuthFailures == 0 || b.r.Stats().AuthFailures == 0 {
		t.Fatalf("refusals not counted: %+v %+v", a.r.Stats(), b.r.Stats())
	}
}

// TestUnauthenticatedDropped: before the handshake completes nothing but
// the handshake is accepted.
func TestUnauthenticatedDropped(t *testing.T) {
	r, err := sdn.New(sdn.Config{ID: 1, Secret: []byte("s")}, testutil.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	r.HandleLinkUp(testutil.Epoch, 7, sdn.LinkInfo{})
	route := []byte{6, 0, 1, 0, 0, 0, 0, 9, 0, 1, 0, 0, 0, 1} // one route to node 9
	r.HandleMessage(testutil.Epoch, 7, route)
	if st := r.Stats(); st.Unauthenticated != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, ok := r.Route(9); ok {
		t.Fatal("route learnt from an unauthenticated link")
	}
	r.HandleMessage(testutil.Epoch, 8, route)
	if st := r.Stats(); st.UnknownLink != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A handshake that never completes is closed and counted.
	r.HandleTimeout(testutil.Epoch.Add(sdn.DefaultHandshakeTimeout))
	closed := false
	for e, ok := r.PollEvent(); ok; e, ok = r.PollEvent() {
		if c, ok := e.(sdn.EventClose); ok && c.Link == 7 {
			closed = true
		}
	}
	if !closed || r.Stats().HandshakeTimeouts != 1 {
		t.Fatalf("half-open link not closed: %+v", r.Stats())
	}
}

// TestFeedbackAggregated: keyframe requests from two subscribers reach
// the source once; bitrates arrive as the min and max over subscribers.
func TestFeedbackAggregated(t *testing.T) {
	const ch = 7
	s := newSimNet(t, 2)
	src, relay, x, y := s.addNode(1), s.addNode(2), s.addNode(3), s.addNode(4)
	s.connect(src.id, relay.id, 5*time.Millisecond, 0, 0)
	s.connect(relay.id, x.id, 5*time.Millisecond, 0, 0)
	s.connect(relay.id, y.id, 5*time.Millisecond, 0, 0)
	var fb []sdn.EventFeedback
	active := 0
	s.onEvent = func(n *simNode, e sdn.Event) {
		switch e := e.(type) {
		case sdn.EventFeedback:
			if n == src {
				fb = append(fb, e)
			}
		case sdn.EventSubscribed:
			active++
		}
	}
	s.startAll()
	s.sim.RunFor(5 * time.Second)
	now := s.sim.Now()
	if err := src.r.Publish(now, ch); err != nil {
		t.Fatal(err)
	}
	src.drain()
	s.sim.RunFor(time.Second)
	for _, n := range []*simNode{x, y} {
		n.r.Subscribe(s.sim.Now(), ch)
		n.drain()
	}
	s.sim.RunFor(2 * time.Second)
	if active != 2 {
		t.Fatalf("%d subscriptions active", active)
	}
	if up, ok := x.r.ChannelUpstream(ch); up != relay.id || !ok {
		t.Fatalf("x's upstream %d %v", up, ok)
	}
	fb = nil
	x.r.SetBitrate(s.sim.Now(), ch, 100_000, 500_000)
	y.r.SetBitrate(s.sim.Now(), ch, 200_000, 1_000_000)
	x.r.RequestKeyframe(s.sim.Now(), ch)
	y.r.RequestKeyframe(s.sim.Now(), ch)
	x.drain()
	y.drain()
	s.sim.RunFor(100 * time.Millisecond)
	kf := 0
	for _, f := range fb {
		if f.Keyframe {
			kf++
		}
	}
	if kf != 1 {
		t.Fatalf("source got %d keyframe requests, want 1: %+v", kf, fb)
	}
	s.sim.RunFor(3 * time.Second)
	last := fb[len(fb)-1]
	if last.BitrateMin != 100_000 || last.BitrateMax != 1_000_000 {
		t.Fatalf("aggregated bitrate %+v", last)
	}
	// A later request, after the hold, goes through again.
	x.r.RequestKeyframe(s.sim.Now(), ch)
	x.drain()
	s.sim.RunFor(100 * time.Millisecond)
	if !fb[len(fb)-1].Keyframe {
		t.Fatalf("second keyframe request lost: %+v", fb[len(fb)-1])
	}
}

// scenario runs a small cluster with every feature and returns the hash
// of its event log.
func scenario(t *testing.T, seed uint64) uint64 {
	s := newSimNet(t, seed)
	s.logEvents = true
	s.topology([]int{10, 10}, 50, 2, true)
	s.onData = func(n *simNode, d sdn.Delivery) { s.sim.Logf("%d data %d %d", n.id, d.Channel, d.Seq) }
	s.startAll()
	s.sim.RunFor(5 * time.Second)
	src := s.nodes[3]
	src.r.Publish(s.sim.Now(), 1)
	src.drain()
	for i, n := range s.nodes {
		if i%3 == 0 {
			n.r.Subscribe(s.sim.Now(), 1)
			n.r.SubscribeMap(s.sim.Now(), "m")
		}
		n.r.MapSet(s.sim.Now(), "m", fmt.Sprint(i), []byte("v"))
		n.drain()
	}
	s.sim.Every(50*time.Millisecond, func(now time.Time) bool {
		if src.alive {
			src.r.Send(now, 1, []byte("payload"))
			src.drain()
		}
		return src.alive
	})
	s.sim.RunFor(5 * time.Second)
	s.kill(s.nodes[7])
	s.sim.RunFor(5 * time.Second)
	for _, n := range s.nodes {
		for _, r := range n.r.Routes() {
			s.sim.Logf("%d route %+v", n.id, r)
		}
	}
	return s.sim.LogHash()
}

// TestDeterministic: the same seed gives an identical event log.
func TestDeterministic(t *testing.T) {
	h1, h2, h3 := scenario(t, 42), scenario(t, 42), scenario(t, 43)
	if h1 != h2 {
		t.Fatalf("same seed, different logs: %x %x", h1, h2)
	}
	if h1 == h3 {
		t.Fatalf("different seeds, same log %x", h1)
	}
}
