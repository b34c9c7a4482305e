package sdn_test

import (
	"errors"
	"fmt"
	"slices"
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
	for _, seed := range testutil.Seeds(1, 3) {
		oddOneOut(t, seed, true, func(s *simNet, m *simNode) { m.secret = []byte("other secret") })
	}
}

// TestRoutingModeMismatchRefused: a node whose Config.FlatRoutes differs
// from its neighbours' never becomes a neighbour either (a mix could
// loop, see routing.lookup), whichever side dials, and is counted.
func TestRoutingModeMismatchRefused(t *testing.T) {
	for _, seed := range testutil.Seeds(5, 3) {
		oddOneOut(t, seed, false, func(s *simNet, m *simNode) {
			s.tune = func(c *sdn.Config) { c.FlatRoutes = c.ID == m.id }
		})
	}
}

// oddOneOut: node m, made different by odd, is dialed by a and b and
// dials c; it never becomes a neighbour, the others route to each other,
// and the refusals are counted on both sides. With proof, the difference
// shows in the MACs, which the dialer checks first (a and b refuse m, m
// refuses c); otherwise in the hello, which the listener checks (m
// refuses a and b, c refuses m). A refusal is seen on the other side as
// a handshake aborted.
func oddOneOut(t *testing.T, seed uint64, proof bool, odd func(s *simNet, m *simNode)) {
	s := newSimNet(t, seed)
	a, b, m, c := s.addNode(1), s.addNode(2), s.addNode(3), s.addNode(4)
	odd(s, m)
	s.connect(a.id, b.id, 5*time.Millisecond, 0, 0)
	s.connect(a.id, m.id, 5*time.Millisecond, 0, 0) // a dials m
	s.connect(b.id, m.id, 5*time.Millisecond, 0, 0) // b dials m
	s.connect(m.id, c.id, 5*time.Millisecond, 0, 0) // m dials c
	s.connect(b.id, c.id, 5*time.Millisecond, 0, 0)
	ups := 0
	s.onEvent = func(n *simNode, e sdn.Event) {
		if e, ok := e.(sdn.EventNeighbourUp); ok && (n == m || e.Node == m.id) {
			ups++
		}
	}
	s.startAll()
	s.sim.RunFor(20 * time.Second)
	if ups != 0 {
		t.Fatalf("seed %d: %d neighbour-ups with the odd node", seed, ups)
	}
	if _, ok := a.r.Route(b.id); !ok {
		t.Fatalf("seed %d: the two good nodes do not route to each other", seed)
	}
	if _, ok := a.r.Route(m.id); ok {
		t.Fatalf("seed %d: route to the odd node", seed)
	}
	if _, ok := c.r.Route(m.id); ok {
		t.Fatalf("seed %d: route to the odd node", seed)
	}
	if _, ok := c.r.Route(a.id); !ok {
		t.Fatalf("seed %d: the good nodes do not route to each other", seed)
	}
	st := func(n *simNode) sdn.Stats { return n.r.Stats() }
	refused := func(n *simNode) bool { return st(n).AuthFailures > 0 }
	aborted := func(n *simNode) bool { return st(n).HandshakeAborted > 0 }
	ok := refused(m)
	if proof {
		ok = ok && refused(a) && refused(b) && aborted(c)
	} else {
		ok = ok && aborted(a) && aborted(b) && refused(c) && aborted(m)
	}
	if !ok {
		t.Fatalf("seed %d: refusals not counted: a %+v\nb %+v\nm %+v\nc %+v", seed, st(a), st(b), st(m), st(c))
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
	// Keyframe requests the relay sends upstream (feedback, type 12,
	// with its keyframe flag set).
	upKF := 0
	s.tap = func(n *simNode, tr sdn.Transmit) {
		if n == relay && len(tr.Data) == 26 && tr.Data[0] == 12 && tr.Data[9] == 1 {
			upKF++
		}
	}
	fb = nil
	x.r.SetBitrate(s.sim.Now(), ch, 100_000, 500_000)
	y.r.SetBitrate(s.sim.Now(), ch, 200_000, 1_000_000)
	x.r.RequestKeyframe(s.sim.Now(), ch)
	x.drain()
	s.sim.RunFor(50 * time.Millisecond) // x's request has passed the relay
	y.r.RequestKeyframe(s.sim.Now(), ch)
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
	if upKF != 1 {
		t.Fatalf("the relay sent %d keyframe requests upstream for 2 from below, want 1", upKF)
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
	s.tap = func(n *simNode, tr sdn.Transmit) { s.sim.Logf("%d tx %d %v %x", n.id, tr.Link, tr.Datagram, tr.Data) }
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

// TestDeterministic: the same seed gives an identical event log (and
// different seeds different logs, so the log does depend on the run).
func TestDeterministic(t *testing.T) {
	t.Parallel()
	seen := map[uint64]uint64{}
	for _, seed := range testutil.Seeds(42, 3) {
		h1, h2 := scenario(t, seed), scenario(t, seed)
		if h1 != h2 {
			t.Fatalf("seed %d: different logs: %x %x", seed, h1, h2)
		}
		if other, dup := seen[h1]; dup {
			t.Fatalf("seeds %d and %d: same log %x", other, seed, h1)
		}
		seen[h1] = seed
	}
}

// TestLinkMeasured: pings measure a link's RTT and loss; a link that
// falls silent is declared dead within DeadAfter on both ends (and
// counted); once the path is back the seed is redialled.
func TestLinkMeasured(t *testing.T) {
	for _, seed := range testutil.Seeds(900, 3) {
		s := newSimNet(t, seed)
		a, b, c := s.addNode(1), s.addNode(2), s.addNode(3)
		lossy := s.connect(a.id, b.id, 10*time.Millisecond, 0, 0.1) // 19 % per round trip
		s.connect(a.id, c.id, 4*time.Millisecond, 0, 0)
		var downs, ups []time.Time
		s.onEvent = func(n *simNode, e sdn.Event) {
			switch e := e.(type) {
			case sdn.EventNeighbourDown:
				if n == a && e.Node == b.id || n == b && e.Node == a.id {
					downs = append(downs, s.sim.Now())
				}
			case sdn.EventNeighbourUp:
				if n == a && e.Node == b.id {
					ups = append(ups, s.sim.Now())
				}
			}
		}
		s.startAll()
		s.sim.RunFor(40 * time.Second)
		nb := map[sdn.NodeID]sdn.NeighbourInfo{}
		for _, x := range a.r.Neighbours() {
			nb[x.Node] = x
		}
		if x := nb[b.id]; x.RTT < 19*time.Millisecond || x.RTT > 22*time.Millisecond || x.Loss < 0.05 || x.Loss > 0.4 {
			t.Fatalf("seed %d: a–b measured %+v, want RTT 20ms, loss 0.19", seed, x)
		}
		if x := nb[c.id]; x.RTT < 8*time.Millisecond || x.RTT > 9*time.Millisecond || x.Loss != 0 {
			t.Fatalf("seed %d: a–c measured %+v, want RTT 8ms, no loss", seed, x)
		}
		if x := nb[c.id]; x.Cost != uint32(x.RTT.Microseconds())+uint32(sdn.DefaultHopPenalty.Microseconds()) {
			// Published costs lag the RTT by up to 10 %.
			if d := float64(x.Cost) / float64(x.RTT.Microseconds()+1000); d < 0.9 || d > 1.1 {
				t.Fatalf("seed %d: a–c cost %d for RTT %v", seed, x.Cost, x.RTT)
			}
		}
		if len(downs) != 0 {
			t.Fatalf("seed %d: lossy link declared dead %d times", seed, len(downs))
		}

		// Silence: the link is dead within DeadAfter on both ends.
		s.cut(lossy, true)
		cutAt := s.sim.Now()
		s.sim.RunFor(2 * sdn.DefaultDeadAfter)
		if len(downs) != 2 {
			t.Fatalf("seed %d: %d neighbour-downs after the cut, want 2", seed, len(downs))
		}
		// Silence starts when the last message sent before the cut
		// arrives, one latency later.
		for _, d := range downs {
			if silent := d.Sub(cutAt) - lossy.ab.Latency; silent > sdn.DefaultDeadAfter {
				t.Fatalf("seed %d: link dead after %v of silence, more than %v", seed, silent, sdn.DefaultDeadAfter)
			}
		}
		if a.r.Stats().LinksDead != 1 || b.r.Stats().LinksDead != 1 {
			t.Fatalf("seed %d: dead links not counted: %d %d", seed, a.r.Stats().LinksDead, b.r.Stats().LinksDead)
		}
		if _, ok := a.r.Route(b.id); ok {
			t.Fatalf("seed %d: route to b over a dead link", seed)
		}

		// The path is back: a redials b (its seed) within the backoff.
		s.cut(lossy, false)
		healAt := s.sim.Now()
		ups = nil
		s.sim.RunFor(sdn.DefaultDialBackoffMax * 3 / 2)
		if len(ups) != 1 {
			t.Fatalf("seed %d: %d neighbour-ups after the heal, want 1", seed, len(ups))
		}
		t.Logf("seed %d: dead after %v and %v; back %v after the heal", seed, downs[0].Sub(cutAt), downs[1].Sub(cutAt), ups[0].Sub(healAt))
	}
}

// TestDialBackoff: a seed that cannot be reached is redialled with
// exponential backoff from DialBackoffMin to DialBackoffMax, plus up to
// 50 % jitter; success resets the backoff.
func TestDialBackoff(t *testing.T) {
	now := testutil.Epoch
	peer := sdn.Addr{Node: 2}
	r, err := sdn.New(sdn.Config{ID: 1, Seeds: []sdn.Addr{peer}, Seed: 5}, now)
	if err != nil {
		t.Fatal(err)
	}
	var dials []time.Time
	var failAt time.Time // when the pending dial is reported failed
	link := sdn.LinkID(0)
	var connected time.Time
	step := func() {
		for e, ok := r.PollEvent(); ok; e, ok = r.PollEvent() {
			if d, ok := e.(sdn.EventDial); ok && d.Addr == peer {
				dials = append(dials, now)
				failAt = now.Add(100 * time.Millisecond)
			}
		}
		for _, ok := r.PollTransmit(); ok; _, ok = r.PollTransmit() {
		}
	}
	run := func(until time.Time) {
		for {
			next, ok := r.PollTimeout()
			if !failAt.IsZero() && (!ok || failAt.Before(next)) {
				next, ok = failAt, true
			}
			if !ok || next.After(until) {
				now = until
				return
			}
			now = next
			if now.Equal(failAt) {
				failAt = time.Time{}
				if link == 0 {
					r.HandleDialFailed(now, peer)
				} else {
					r.HandleLinkUp(now, link, sdn.LinkInfo{Dialed: true, Peer: peer.Node})
					connected, link = now, 0 // later dials fail again
				}
			} else {
				r.HandleTimeout(now)
			}
			step()
		}
	}
	step()
	run(now.Add(90 * time.Second))
	if len(dials) < 8 {
		t.Fatalf("%d dials in 90s", len(dials))
	}
	want := sdn.DefaultDialBackoffMin
	for i := 1; i < len(dials); i++ {
		gap := dials[i].Sub(dials[i-1]) - 100*time.Millisecond // less the failing dial
		if gap < want || gap > want+want/2 {
			t.Fatalf("redial %d after %v, want %v..%v (dials %v)", i, gap, want, want+want/2, dials)
		}
		want = min(2*want, sdn.DefaultDialBackoffMax)
	}
	if want != sdn.DefaultDialBackoffMax {
		t.Fatalf("backoff never reached its maximum: %v", want)
	}
	// The next dial connects but the peer never answers the handshake
	// (say, another secret): the link is closed after HandshakeTimeout
	// and, no neighbour having come up, the backoff stays at its
	// maximum, so such a peer is not hammered.
	link = 7
	run(now.Add(4 * sdn.DefaultDialBackoffMax))
	if connected.IsZero() || !dials[len(dials)-1].After(connected) {
		t.Fatal("no redial after a connection that never authenticated")
	}
	i := slices.IndexFunc(dials, func(d time.Time) bool { return d.After(connected) })
	if gap := dials[i].Sub(connected); gap < sdn.DefaultHandshakeTimeout+sdn.DefaultDialBackoffMax {
		t.Fatalf("redial %v after a connection that never authenticated", gap)
	}
	if r.Stats().HandshakeTimeouts == 0 {
		t.Fatal("handshake timeout not counted")
	}
}
