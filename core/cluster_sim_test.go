package core

import (
	"encoding/binary"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/track"
)

// cworld runs a cluster of Nodes, each with a Router, in the simulator:
// nodes linked by simulated links (latency, jitter, loss, cuts), peers
// linked to their node, synthetic publishers and checking subscribers.
// Every input is followed by draining Poll as a driver would.
type cworld struct {
	t      testing.TB
	s      *testutil.Sim
	net    *testutil.Net
	nodes  []*cnode
	byID   map[sdn.NodeID]*cnode
	secret []byte
	// rx, when set, counts mData arrivals per (node, channel, seq): the
	// tree check.
	rx    map[[3]uint64]int
	dupRx int
}

type cnode struct {
	w     *cworld
	nn    *testutil.NetNode
	idx   int
	id    sdn.NodeID
	n     *Node
	alive bool
	peers map[Handle]*cpeer
	rtcp  []byte
}

// cedge is the simulated network's edge: A < B, a Link each way.
type cedge = testutil.Edge

type cpeer struct {
	id, room string
	node     *cnode
	h        Handle
	up, down *testutil.Link
	checker  *testutil.Checker
	sources  map[uint32]testutil.Source
	alive    bool
	// told records the events the peer was told ("left P",
	// "unpublished P/T", "source-gone P/T", ...).
	told map[string]bool
	// lastAt and maxGap: the longest silence between two packets.
	lastAt time.Time
	maxGap time.Duration
	// cover, when set, records per outgoing SSRC the sequence numbers
	// received.
	cover map[uint32]*seqCover
}

// seqCover is the set of sequence numbers of one stream, relative to its
// first: how much of the span from the first to the last arrived.
type seqCover struct {
	first  uint16
	lo, hi int
	got    map[int]bool
}

func (p *cpeer) record(pkt []byte) {
	if p.cover == nil {
		return // not asked for
	}
	ssrc, seq := binary.BigEndian.Uint32(pkt[8:]), binary.BigEndian.Uint16(pkt[2:])
	c := p.cover[ssrc]
	if c == nil {
		c = &seqCover{first: seq, got: map[int]bool{}}
		p.cover[ssrc] = c
	}
	x := int(int16(seq - c.first))
	c.lo, c.hi = min(c.lo, x), max(c.hi, x)
	c.got[x] = true
}

// delivered is the fraction of every stream's span that arrived.
func (p *cpeer) delivered() (got, span int) {
	for _, c := range p.cover {
		got += len(c.got)
		span += c.hi - c.lo + 1
	}
	return got, span
}

func newCWorld(t testing.TB, seed uint64) *cworld {
	sim := testutil.NewSim(t, seed)
	w := &cworld{t: t, s: sim, net: testutil.NewNet(sim), byID: map[sdn.NodeID]*cnode{}, secret: []byte("test secret")}
	w.net.Tap = func(to *testutil.NetNode, data []byte) {
		if w.rx != nil && len(data) >= 13 && data[0] == 13 { // sdn data: count per (node, channel, seq)
			k := [3]uint64{uint64(to.ID), binary.BigEndian.Uint64(data[1:]), uint64(binary.BigEndian.Uint32(data[9:]))}
			w.rx[k]++
			if w.rx[k] > 1 {
				w.dupRx++
			}
		}
	}
	return w
}

func (w *cworld) addNode(id sdn.NodeID) *cnode {
	c := &cnode{w: w, nn: w.net.AddNode(id), idx: len(w.nodes), id: id, peers: map[Handle]*cpeer{}, rtcp: make([]byte, 64)}
	w.nodes = append(w.nodes, c)
	w.byID[id] = c
	return c
}

func (w *cworld) connect(a, b sdn.NodeID, lat, jitter time.Duration, loss float64) *cedge {
	return w.net.Connect(a, b, lat, jitter, loss)
}

// start creates the node's Router and Node; it dials its edges to higher ids.
func (w *cworld) start(c *cnode) {
	seed := w.s.Seed*1000 + uint64(c.idx)
	r, err := sdn.New(sdn.Config{ID: c.id, Seeds: w.net.Seeds(c.id), Secret: w.secret, Seed: seed, Listen: testutil.NetAddr(c.id).UDP}, w.s.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	n, err := New(Config{Seed: seed, Router: r})
	if err != nil {
		w.t.Fatal(err)
	}
	c.n, c.alive = n, true
	c.peers = map[Handle]*cpeer{}
	c.nn.Start(n, n.HandleLinkMessage, c.poll)
}

func (w *cworld) startAll() {
	for _, c := range w.nodes {
		w.start(c)
	}
}

// kill stops a node dead: it handles and sends nothing more, and its
// peers are gone with it.
func (w *cworld) kill(c *cnode) {
	c.alive = false
	for _, p := range c.peers {
		p.alive = false
	}
	c.nn.Kill()
}

// drain polls the node's outputs and schedules its next wake-up.
func (c *cnode) drain() { c.nn.Drain() }

// poll does what a driver does after every input: Poll until false
// (testutil.Net then schedules the wake-up at PollTimeout).
func (c *cnode) poll() {
	w := c.w
	for {
		o, ok := c.n.Poll(c.rtcp)
		if !ok {
			break
		}
		switch o.Kind {
		case OutputRTP:
			p := c.peers[o.Endpoint]
			if p == nil {
				w.t.Fatalf("node %d: RTP for unknown endpoint %x", c.id, o.Endpoint)
			}
			buf := make([]byte, o.RTP.MarshalSize(nil))
			if _, err := o.RTP.MarshalTo(buf, nil); err != nil {
				w.t.Fatal(err)
			}
			w.s.Send(p.down, len(buf), func(now time.Time) {
				if p.alive {
					if !p.lastAt.IsZero() {
						p.maxGap = max(p.maxGap, now.Sub(p.lastAt))
					}
					p.lastAt = now
					p.record(buf)
					p.checker.HandleRTP(now, buf)
				}
			})
		case OutputRTCP:
			p := c.peers[o.Endpoint]
			pl, _, err := track.ReadRTCP(o.Data)
			if p == nil || err != nil {
				w.t.Fatalf("node %d: bad RTCP for %x: %v", c.id, o.Endpoint, err)
			}
			if pl.Type == track.RTCPTypePSFB && pl.Count == track.RTCPFormatPLI {
				ssrc := pl.MediaSSRC()
				w.s.Send(p.down, 20, func(now time.Time) {
					if src := p.sources[ssrc]; src != nil && p.alive {
						src.RequestKeyframe()
					}
				})
			}
		case OutputLink:
			c.nn.Send(o.Link, o.Data)
		case OutputDial:
			c.nn.Dial(o.Addr)
		case OutputCloseLink:
			c.nn.CloseLink(o.Link)
		case OutputEvent:
			if p := c.peers[o.Endpoint]; p != nil {
				w.s.Logf("event %d %s %T %v", c.id, p.id, o.Event, o.Event)
				p.told[eventString(o.Event)] = true
			}
		}
	}
}

// join connects a peer to node c and puts it in room, auto-subscribing.
func (w *cworld) join(c *cnode, id, room string) *cpeer {
	w.t.Helper()
	return w.joinWith(c, room, EndpointConfig{PeerID: id, AutoSubscribe: true})
}

// joinWith connects a peer configured by cfg to node c and puts it in room.
func (w *cworld) joinWith(c *cnode, room string, cfg EndpointConfig) *cpeer {
	w.t.Helper()
	now := w.s.Now()
	id := cfg.PeerID
	h, err := c.n.CreateEndpoint(now, cfg)
	if err != nil {
		w.t.Fatalf("create %s: %v", id, err)
	}
	p := &cpeer{id: id, room: room, node: c, h: h, alive: true, sources: map[uint32]testutil.Source{}, told: map[string]bool{},
		up:      &testutil.Link{Latency: w.s.Duration(2*time.Millisecond, 10*time.Millisecond)},
		down:    &testutil.Link{Latency: w.s.Duration(2*time.Millisecond, 10*time.Millisecond)},
		checker: testutil.NewChecker(testutil.CheckerConfig{Name: fmt.Sprintf("%s@%d", id, c.id), PictureIDs: true})}
	c.peers[h] = p
	if err := c.n.Join(now, h, room); err != nil {
		w.t.Fatalf("join %s: %v", id, err)
	}
	w.s.Logf("join %d %s %s", c.id, id, room)
	c.drain()
	return p
}

func (w *cworld) publish(p *cpeer, name string, codec track.Codec, ssrc uint32, src testutil.Source) {
	w.t.Helper()
	c := p.node
	p.sources[ssrc] = src
	if err := c.n.Publish(w.s.Now(), p.h, endpoint.TrackOptions{Name: name, Codec: codec, Encodings: []track.Encoding{{SSRC: ssrc}}}); err != nil {
		w.t.Fatalf("publish %s/%s: %v", p.id, name, err)
	}
	c.drain()
	testutil.RunSource(w.s, src, func() bool { return !p.alive }, func(now time.Time, pkt []byte) {
		w.s.Send(p.up, len(pkt), func(now time.Time) {
			if p.alive && c.alive {
				_ = c.n.HandleRTP(now, p.h, pkt)
				c.drain()
			}
		})
	})
}

// twoZones builds 10 nodes in 2 zones of 5: inside a zone a chain plus
// two random links (1–5 ms one way), and 2 links between the zones
// (20–40 ms).
func twoZones(w *cworld) {
	var zones [2][]sdn.NodeID
	for z := range 2 {
		for i := range 5 {
			id := sdn.MakeNodeID(sdn.ZoneID(z), uint32(i+1))
			w.addNode(id)
			zones[z] = append(zones[z], id)
		}
	}
	rnd := w.s.Rand
	link := func(a, b sdn.NodeID, lo, hi time.Duration) {
		if a != b && w.net.Edge(a, b) == nil {
			w.connect(a, b, w.s.Duration(lo, hi), w.s.Duration(0, 500*time.Microsecond), 0)
		}
	}
	for _, ids := range zones {
		for i := 1; i < len(ids); i++ {
			link(ids[i-1], ids[i], time.Millisecond, 5*time.Millisecond)
		}
		for range 2 {
			link(ids[rnd.IntN(5)], ids[rnd.IntN(5)], time.Millisecond, 5*time.Millisecond)
		}
	}
	for range 2 {
		link(zones[0][rnd.IntN(5)], zones[1][rnd.IntN(5)], 20*time.Millisecond, 40*time.Millisecond)
	}
}

// TestClusterRoomAcrossNodes: 10 nodes in 2 zones, one room, publishers
// (VP8 + Opus) on 3 nodes, a subscriber on every node: every subscriber
// receives every publisher's media, continuous, a keyframe first, and
// no node receives any packet of a channel twice (the channels are trees).
func TestClusterRoomAcrossNodes(t *testing.T) {
	for _, seed := range testutil.Seeds(900, 3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newCWorld(t, seed)
			w.rx = map[[3]uint64]int{}
			twoZones(w)
			w.startAll()
			w.s.RunFor(3 * time.Second) // the overlay settles
			var subs []*cpeer
			for i, c := range w.nodes {
				subs = append(subs, w.join(c, fmt.Sprint("sub", i), "room"))
			}
			pubNodes := []int{0, 3, 7}
			var tags []uint32
			for k, i := range pubNodes {
				pid := fmt.Sprint("pub", k)
				p := w.join(w.nodes[i], pid, "room")
				cam, mic := testutil.TagOf("room", pid, "cam"), testutil.TagOf("room", pid, "mic")
				tags = append(tags, cam, mic)
				w.publish(p, "cam", track.CodecVP8, uint32(1000+k), testutil.NewVP8Source(w.s.Rand, testutil.VP8Config{
					SSRC: uint32(1000 + k), Tag: cam, FPS: 30, BitrateBps: 300_000, KeyframeInterval: 3 * time.Second, TemporalLayers: 3}))
				w.publish(p, "mic", track.CodecOpus, uint32(2000+k), testutil.NewOpusSource(w.s.Rand, testutil.OpusConfig{SSRC: uint32(2000 + k), Tag: mic}))
			}
			for _, s := range subs {
				for _, tag := range tags {
					s.checker.Allow(tag)
				}
			}
			w.s.RunFor(6 * time.Second)
			for _, s := range subs {
				if err := s.checker.Err(); err != nil {
					t.Fatalf("%s on %d: %v", s.id, s.node.id, err)
				}
				for k := range pubNodes {
					v := s.checker.Stats(tags[2*k])
					a := s.checker.Stats(tags[2*k+1])
					if v.Frames < 120 || a.Frames < 200 || !v.FirstKeyframe {
						t.Fatalf("%s on %d from pub%d: %d video frames (first keyframe %v), %d audio frames",
							s.id, s.node.id, k, v.Frames, v.FirstKeyframe, a.Frames)
					}
				}
			}
			if w.dupRx > 0 {
				t.Fatalf("%d data packets reached a node twice on one channel", w.dupRx)
			}
		})
	}
}

// chain builds nodes 1..n of zone 0 in a line, plus the extra edges.
func chain(w *cworld, n int, lat time.Duration, loss float64, extra ...[2]int) {
	for i := 1; i <= n; i++ {
		w.addNode(sdn.NodeID(i))
	}
	for i := 1; i < n; i++ {
		w.connect(sdn.NodeID(i), sdn.NodeID(i+1), lat, 0, loss)
	}
	for _, e := range extra {
		w.connect(sdn.NodeID(e[0]), sdn.NodeID(e[1]), lat, 0, loss)
	}
}

func vp8Pub(w *cworld, p *cpeer, ssrc uint32) uint32 {
	tag := testutil.TagOf(p.room, p.id, "cam")
	w.publish(p, "cam", track.CodecVP8, ssrc, testutil.NewVP8Source(w.s.Rand, testutil.VP8Config{
		SSRC: ssrc, Tag: tag, FPS: 30, BitrateBps: 300_000, KeyframeInterval: 10 * time.Second, TemporalLayers: 3}))
	return tag
}

// TestClusterRelayDies: in a triangle 1–2–3 with the direct link 1–3
// dearer than the path through 2, a viewer on 3 of a publisher on 1 is fed
// through 2; when 2 dies it receives again within 2 virtual seconds, its
// stream continuous (sequence numbers and timestamps) and a keyframe
// first after the gap.
func TestClusterRelayDies(t *testing.T) {
	for _, seed := range testutil.Seeds(920, 3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newCWorld(t, seed)
			chain(w, 3, 2*time.Millisecond, 0)
			w.connect(1, 3, 15*time.Millisecond, 0, 0)
			w.startAll()
			w.s.RunFor(3 * time.Second)
			sub := w.join(w.nodes[2], "viewer", "room")
			pub := w.join(w.nodes[0], "pub", "room")
			tag := vp8Pub(w, pub, 1000)
			sub.checker.Allow(tag)
			w.s.RunFor(3 * time.Second)
			if up, _ := w.nodes[2].n.Router().ChannelUpstream(cluster.ChannelID("room", "pub", "cam", 0)); up != 2 {
				t.Fatalf("viewer's node pulls from %d, want the relay 2", up)
			}
			before := sub.checker.Stats(tag)
			w.kill(w.nodes[1])
			killedAt := w.s.Now()
			w.s.RunFor(4 * time.Second)
			after := sub.checker.Stats(tag)
			if err := sub.checker.Err(); err != nil {
				t.Fatal(err)
			}
			if after.Frames < before.Frames+60 { // 4 s less the dead-link detection (1.2 s) and the keyframe wait
				t.Fatalf("frames %d before the kill, %d 4 s after", before.Frames, after.Frames)
			}
			if gap := after.LastPacketAt.Sub(killedAt); gap < 3*time.Second {
				t.Fatalf("stream stopped %v after the kill", gap)
			}
			if after.Keyframes < 2 {
				t.Fatalf("no keyframe after the move (%d keyframes)", after.Keyframes)
			}
			// Resumed within 2 s: the checker's longest silence.
			if g := sub.maxGap; g > 2*time.Second {
				t.Fatalf("viewer silent for %v", g)
			}
		})
	}
}

// TestClusterPublisherNodeDies: when the publisher's node dies, its peer
// and track leave every node's directory within the soft-state timeout,
// and every subscriber is told.
func TestClusterPublisherNodeDies(t *testing.T) {
	w := newCWorld(t, 930)
	chain(w, 4, 3*time.Millisecond, 0)
	w.startAll()
	w.s.RunFor(3 * time.Second)
	var subs []*cpeer
	for i := 1; i < 4; i++ {
		subs = append(subs, w.join(w.nodes[i], fmt.Sprint("sub", i), "room"))
	}
	pub := w.join(w.nodes[0], "pub", "room")
	tag := vp8Pub(w, pub, 1000)
	for _, s := range subs {
		s.checker.Allow(tag)
	}
	w.s.RunFor(2 * time.Second)
	for _, s := range subs {
		if got := s.node.n.Cluster().Members("room"); !slices.Contains(got, "pub") {
			t.Fatalf("node %d: members %v", s.node.id, got)
		}
	}
	w.kill(w.nodes[0])
	w.s.RunFor(sdn.DefaultSoftStateTimeout + time.Second)
	for _, s := range subs {
		c := s.node.n.Cluster()
		if slices.Contains(c.Members("room"), "pub") || len(c.Tracks("room")) != 0 {
			t.Fatalf("node %d still lists the publisher: %v %v", s.node.id, c.Members("room"), c.Tracks("room"))
		}
		if !s.told["left pub"] || !s.told["unpublished pub/cam"] || !s.told["source-gone pub/cam"] {
			t.Fatalf("%s was told %v", s.id, s.told)
		}
	}
}

// TestClusterLossyLinks: with 5 % loss on every link between nodes,
// subscribers one, two and three hops from the publisher still receive at
// least 99 % of its packets: relays NACK upstream and are repaired from
// the history of the nearest node above that has the packet (without
// repair: about 96, 92 and 87 %).
func TestClusterLossyLinks(t *testing.T) {
	for _, seed := range testutil.Seeds(940, 3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newCWorld(t, seed)
			chain(w, 4, 3*time.Millisecond, 0.05)
			w.startAll()
			w.s.RunFor(4 * time.Second)
			var subs []*cpeer
			for i := 1; i < 4; i++ {
				s := w.join(w.nodes[i], fmt.Sprint("sub", i), "room")
				s.checker = testutil.NewChecker(testutil.CheckerConfig{Name: s.id, Lossy: true})
				s.cover = map[uint32]*seqCover{}
				subs = append(subs, s)
			}
			pub := w.join(w.nodes[0], "pub", "room")
			tag := vp8Pub(w, pub, 1000)
			mic := testutil.TagOf("room", "pub", "mic")
			w.publish(pub, "mic", track.CodecOpus, 2000, testutil.NewOpusSource(w.s.Rand, testutil.OpusConfig{SSRC: 2000, Tag: mic}))
			for _, s := range subs {
				s.checker.Allow(tag)
				s.checker.Allow(mic)
			}
			w.s.RunFor(8 * time.Second)
			for _, s := range subs {
				// Of every stream, from the first packet the subscriber
				// got to the last: a hole is a packet lost for good.
				got, span := s.delivered()
				ratio := float64(got) / float64(span)
				t.Logf("%s on %d (%d hops): %d of %d packets (%.2f%%)", s.id, s.node.id, s.node.id-1, got, span, 100*ratio)
				if span < 600 || ratio < 0.99 {
					t.Errorf("%s on %d: %d of %d packets (%.2f%%)", s.id, s.node.id, got, span, 100*ratio)
				}
			}
		})
	}
}

func eventString(e endpoint.Event) string {
	switch e := e.(type) {
	case endpoint.PeerJoined:
		return "joined " + e.Peer
	case endpoint.PeerLeft:
		return "left " + e.Peer
	case endpoint.TrackPublished:
		return "published " + e.Info.Peer + "/" + e.Info.Name
	case endpoint.TrackUnpublished:
		return "unpublished " + e.Info.Peer + "/" + e.Info.Name
	case endpoint.SubscriptionChanged:
		return e.State.String() + " " + e.Key.Peer + "/" + e.Key.Track
	case endpoint.Replaced:
		return "replaced " + e.Room
	}
	return fmt.Sprintf("%T", e)
}

// cut partitions or heals an edge.
func (w *cworld) cut(a, b sdn.NodeID, down bool) {
	w.net.SetCut(w.net.Edge(a, b), down)
}

// TestClusterPartitionHeals: a chain 1–2–3–4 cut between 2 and 3 for
// longer than the soft-state timeout: each side's directory drops the
// other side; after the cut heals the directories converge again and
// the subscriptions resume.
func TestClusterPartitionHeals(t *testing.T) {
	for _, seed := range testutil.Seeds(950, 2) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newCWorld(t, seed)
			chain(w, 4, 3*time.Millisecond, 0)
			w.startAll()
			w.s.RunFor(3 * time.Second)
			left := w.join(w.nodes[0], "left", "room")
			right := w.join(w.nodes[3], "right", "room")
			lt, rt := vp8Pub(w, left, 1000), vp8Pub(w, right, 2000)
			left.checker.Allow(rt)
			right.checker.Allow(lt)
			w.s.RunFor(3 * time.Second)
			all := []string{"left", "right"}
			members := func(c *cnode) []string {
				m := c.n.Cluster().Members("room")
				slices.Sort(m)
				return m
			}
			if !slices.Equal(members(w.nodes[0]), all) || !slices.Equal(members(w.nodes[3]), all) {
				t.Fatalf("before the cut: %v / %v", members(w.nodes[0]), members(w.nodes[3]))
			}
			w.cut(2, 3, true)
			w.s.RunFor(sdn.DefaultSoftStateTimeout + 2*time.Second)
			if got := members(w.nodes[0]); !slices.Equal(got, []string{"left"}) {
				t.Fatalf("node 1 during the cut lists %v", got)
			}
			if got := members(w.nodes[3]); !slices.Equal(got, []string{"right"}) {
				t.Fatalf("node 4 during the cut lists %v", got)
			}
			w.cut(2, 3, false)
			healed := w.s.Now()
			w.s.RunFor(15 * time.Second)
			for _, c := range w.nodes[:1] {
				if got := members(c); !slices.Equal(got, all) {
					t.Fatalf("node %d after the heal lists %v", c.id, got)
				}
			}
			if got := members(w.nodes[3]); !slices.Equal(got, all) {
				t.Fatalf("node 4 after the heal lists %v", got)
			}
			for _, p := range []*cpeer{left, right} {
				tag := rt
				if p == right {
					tag = lt
				}
				st := p.checker.Stats(tag)
				if st.LastPacketAt.Before(healed.Add(14 * time.Second)) {
					t.Fatalf("%s: last packet at %v, healed at %v", p.id, st.LastPacketAt.Sub(testutil.Epoch), healed.Sub(testutil.Epoch))
				}
				if err := p.checker.Err(); err != nil {
					t.Fatalf("%s: %v", p.id, err)
				}
			}
		})
	}
}

// TestClusterSamePeerTwoNodes: the same peer id joining the room on a
// second node: the newer session wins, the older is told Replaced and
// taken out of the room, and every node lists the peer once.
func TestClusterSamePeerTwoNodes(t *testing.T) {
	w := newCWorld(t, 960)
	chain(w, 3, 3*time.Millisecond, 0)
	w.startAll()
	w.s.RunFor(3 * time.Second)
	old := w.join(w.nodes[0], "alice", "room")
	watcher := w.join(w.nodes[1], "bob", "room")
	w.s.RunFor(time.Second)
	newer := w.join(w.nodes[2], "alice", "room")
	w.s.RunFor(2 * time.Second)
	if !old.told["replaced room"] || newer.told["replaced room"] {
		t.Fatalf("old told %v, new told %v", old.told, newer.told)
	}
	if s, _ := w.nodes[0].n.Endpoint(old.h); s == nil {
		t.Fatal("the replaced endpoint is gone; it should stay for its driver to close")
	}
	if err := w.nodes[0].n.Leave(w.s.Now(), old.h); err == nil {
		t.Fatal("the replaced endpoint is still in the room")
	}
	// Node 1 has nobody in the room now, so it keeps no directory of it.
	if m := w.nodes[0].n.Cluster().Members("room"); len(m) != 0 {
		t.Fatalf("node 1 lists %v", m)
	}
	for _, c := range w.nodes[1:] {
		m := c.n.Cluster().Members("room")
		n := 0
		for _, p := range m {
			if p == "alice" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("node %d lists %v", c.id, m)
		}
	}
	if watcher.told["left alice"] {
		t.Fatalf("bob was told alice left: %v", watcher.told)
	}
	if got := w.nodes[0].n.Stats().Cluster.Replaced; got != 1 {
		t.Fatalf("Replaced = %d", got)
	}
}

// TestClusterImpostor: a node announcing a track of a peer it does not
// host is ignored and counted, and its frames on that track's channel
// reach no subscriber: the viewer keeps the real publisher's stream.
func TestClusterImpostor(t *testing.T) {
	w := newCWorld(t, 970)
	chain(w, 3, 3*time.Millisecond, 0)
	w.addNode(4)
	w.connect(2, 4, 3*time.Millisecond, 0, 0)
	w.startAll()
	w.s.RunFor(3 * time.Second)
	viewer := w.join(w.nodes[2], "viewer", "room")
	pub := w.join(w.nodes[0], "alice", "room")
	tag := vp8Pub(w, pub, 1000)
	viewer.checker.Allow(tag)
	w.s.RunFor(2 * time.Second)
	// Node 4 claims a second track of alice's, and pushes frames on the
	// channel of her real one.
	bad := w.nodes[3]
	now := w.s.Now()
	r := bad.n.Router()
	if err := r.MapSet(now, "r:room", "t:alice\x00cam2", cluster.EncodeTrackInfo(track.Info{Kind: track.KindVideo, Codec: track.CodecVP8, Layers: 1})); err != nil {
		t.Fatal(err)
	}
	ch := cluster.ChannelID("room", "alice", "cam", 0)
	if err := r.Publish(now, ch); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 200)
	seq := uint32(1)
	w.s.Every(10*time.Millisecond, func(now time.Time) bool {
		// Through its Router (nobody subscribed to it: nothing leaves)
		// and, as a lying node could, as raw data messages on its link.
		_ = r.Send(now, ch, junk)
		msg := binary.BigEndian.AppendUint64([]byte{13}, ch) // sdn data
		msg = binary.BigEndian.AppendUint32(msg, seq)
		seq++
		for _, l := range bad.nn.Links() {
			bad.nn.Send(l, append(msg, junk...))
		}
		bad.drain()
		return now.Before(testutil.Epoch.Add(20 * time.Second))
	})
	bad.drain()
	// The impostor must be in the room for its entries to be looked at.
	w.join(bad, "mallory", "room")
	w.s.RunFor(4 * time.Second)
	for _, c := range []*cnode{w.nodes[0], w.nodes[2]} { // node 2 has no members: no directory
		if len(c.n.Cluster().Tracks("room")) != 1 {
			t.Fatalf("node %d lists %v", c.id, c.n.Cluster().Tracks("room"))
		}
	}
	if got := w.nodes[2].n.Stats().Cluster.Impostors; got == 0 {
		t.Fatal("the impostor's track entry was not counted")
	}
	if err := viewer.checker.Err(); err != nil {
		t.Fatal(err)
	}
	if st := viewer.checker.Stats(tag); st.LastPacketAt.Before(w.s.Now().Add(-100 * time.Millisecond)) {
		t.Fatalf("viewer stopped receiving at %v", st.LastPacketAt.Sub(testutil.Epoch))
	}
	if w.nodes[2].n.Stats().Cluster.BadFrames != 0 {
		t.Fatal("impostor frames reached the viewer's relay")
	}
	// Node 2, the impostor's neighbour, dropped and counted its frames:
	// it is not the channel's source, so not node 2's upstream for it.
	if got := w.nodes[1].n.Router().Stats().DataUnexpected; got == 0 {
		t.Fatal("the impostor's frames were not counted as unexpected")
	}
}

var voprSeeds = flag.Int("vopr.seeds", 3, "seeds TestClusterVOPR runs (the long mode: hundreds)")

// vopr is one TigerBeetle-style run: the seed chooses the cluster (4–8
// nodes in one or two zones, link latencies and loss), then 20 virtual
// seconds of random joins, leaves, publishes, unpublishes, link loss,
// partitions and node crashes and restarts, then a heal phase: every link
// up and lossless, every node running. After it every checker must hold:
// every subscriber receives every live publisher's track, every node's
// directory lists exactly the live peers; and once every peer has left,
// every live-object count is zero.
func vopr(t testing.TB, seed uint64) uint64 {
	w := newCWorld(t, seed)
	rnd := w.s.Rand
	nodes := 4 + rnd.IntN(5)
	zones := 1 + rnd.IntN(2)
	for i := range nodes {
		w.addNode(sdn.MakeNodeID(sdn.ZoneID(i*zones/nodes), uint32(i+1)))
	}
	var edges []*cedge
	link := func(a, b int) {
		x, y := w.nodes[a].id, w.nodes[b].id
		if a != b && w.net.Edge(x, y) == nil {
			lat := w.s.Duration(time.Millisecond, 10*time.Millisecond)
			if x.Zone() != y.Zone() {
				lat += 20 * time.Millisecond
			}
			edges = append(edges, w.connect(x, y, lat, w.s.Duration(0, time.Millisecond), 0))
		}
	}
	// Each zone connected inside itself (sdn's routing needs that), the
	// first node of each zone linked to an earlier zone, and extra links.
	first := 0
	for i := 1; i < nodes; i++ {
		if w.nodes[i].id.Zone() != w.nodes[i-1].id.Zone() {
			link(i, rnd.IntN(i))
			first = i
			continue
		}
		link(i, first+rnd.IntN(i-first))
	}
	for range nodes / 2 {
		link(rnd.IntN(nodes), rnd.IntN(nodes))
	}
	w.startAll()
	w.s.RunFor(3 * time.Second)

	type vpeer struct {
		*cpeer
		pub bool
		tag uint32
	}
	var peers []*vpeer
	nextPeer, nextSSRC := 0, uint32(1000)
	live := func() []*vpeer {
		var l []*vpeer
		for _, p := range peers {
			if p.alive {
				l = append(l, p)
			}
		}
		return l
	}
	crashed := -1
	end := w.s.Now().Add(20 * time.Second)
	for w.s.Now().Before(end) {
		w.s.RunFor(w.s.Duration(50*time.Millisecond, 400*time.Millisecond))
		lp := live()
		switch op := rnd.IntN(10); {
		case op < 3 && len(lp) < 12:
			c := w.nodes[rnd.IntN(nodes)]
			if !c.alive {
				break
			}
			p := w.join(c, fmt.Sprint("p", nextPeer), "room")
			nextPeer++
			p.checker = testutil.NewChecker(testutil.CheckerConfig{Name: p.id, Lossy: true, AnyTag: true})
			peers = append(peers, &vpeer{cpeer: p})
		case op == 3 && len(lp) > 0:
			p := lp[rnd.IntN(len(lp))]
			w.s.Logf("close %s", p.id)
			_ = p.node.n.CloseEndpoint(w.s.Now(), p.h)
			delete(p.node.peers, p.h)
			p.alive = false
			p.node.drain()
		case op == 4 && len(lp) > 0:
			p := lp[rnd.IntN(len(lp))]
			if !p.pub {
				p.pub = true
				p.tag = vp8Pub(w, p.cpeer, nextSSRC)
				nextSSRC++
			}
		case op == 5 && len(edges) > 0:
			e := edges[rnd.IntN(len(edges))]
			e.AB.Loss = float64(rnd.IntN(11)) / 100
			e.BA.Loss = e.AB.Loss
			w.s.Logf("loss %d-%d %v", e.A, e.B, e.AB.Loss)
		case op == 6 && len(edges) > 0:
			e := edges[rnd.IntN(len(edges))]
			w.cut(e.A, e.B, !e.AB.Down)
		case op == 7:
			if crashed < 0 {
				crashed = rnd.IntN(nodes)
				w.kill(w.nodes[crashed])
			} else {
				w.s.Logf("restart %d", w.nodes[crashed].id)
				w.start(w.nodes[crashed])
				crashed = -1
			}
		}
	}
	// Heal.
	for _, e := range edges {
		e.AB.Loss, e.BA.Loss = 0, 0
		if e.Cut {
			w.net.SetCut(e, false)
		}
	}
	if crashed >= 0 {
		w.start(w.nodes[crashed])
	}
	w.s.Logf("heal")
	w.s.RunFor(25 * time.Second)
	lp := live()
	want := map[string]bool{}
	for _, p := range lp {
		want[p.id] = true
	}
	for _, c := range w.nodes {
		if len(c.peers) == 0 {
			continue
		}
		got := c.n.Cluster().Members("room")
		bad := len(got) != len(want)
		for _, m := range got {
			bad = bad || !want[m]
		}
		if bad {
			where := ""
			for _, p := range peers {
				where += fmt.Sprintf(" %s@%d(alive=%v)", p.id, p.node.id, p.alive)
			}
			var ents []string
			for _, e := range c.n.Router().MapEntries("r:room") {
				ents = append(ents, fmt.Sprintf("%d:%q", e.Owner, e.Key))
			}
			t.Fatalf("node %d lists %v; peers%s; map %v", c.id, got, where, ents)
		}
	}
	now := w.s.Now()
	for _, s := range lp {
		for _, p := range lp {
			if !p.pub || p == s {
				continue
			}
			if st := s.checker.Stats(p.tag); st.LastPacketAt.Before(now.Add(-time.Second)) {
				t.Fatalf("%s on %d gets nothing of %s on %d since %v (now %v): %s", s.id, s.node.id, p.id, p.node.id,
					st.LastPacketAt.Sub(testutil.Epoch), now.Sub(testutil.Epoch), diagnose(s.cpeer, p.cpeer))
			}
		}
	}
	// Everybody leaves: nothing may stay behind.
	for _, p := range lp {
		_ = p.node.n.CloseEndpoint(w.s.Now(), p.h)
		delete(p.node.peers, p.h)
		p.alive = false
		p.node.drain()
	}
	w.s.RunFor(sdn.DefaultSoftStateTimeout + 5*time.Second)
	for _, c := range w.nodes {
		if got := c.n.Counts(); got != (Counts{}) {
			t.Fatalf("node %d keeps %+v", c.id, got)
		}
	}
	return w.s.LogHash()
}

func TestClusterVOPR(t *testing.T) {
	for _, seed := range testutil.Seeds(7000, *voprSeeds) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { vopr(t, seed) })
	}
}

// TestClusterDeterministic: the same seed gives an identical event log.
func TestClusterDeterministic(t *testing.T) {
	a, b := vopr(t, 7100), vopr(t, 7100)
	if a != b {
		t.Fatalf("log hashes differ: %x, %x", a, b)
	}
}

// diagnose describes why sub may not get pub's cam: its subscription,
// the relay track and the channel's tree at both ends.
func diagnose(sub, pub *cpeer) string {
	ep, ok := sub.node.n.Endpoint(sub.h)
	if !ok {
		return "no endpoint"
	}
	out := ""
	lt, ok := ep.Subscription(endpoint.SubKey{Peer: pub.id, Track: "cam"})
	if !ok {
		out += fmt.Sprintf("not subscribed (subs %v, tracks known %v); ", ep.Subscriptions(), sub.node.n.Cluster().Tracks("room"))
	} else {
		out += fmt.Sprintf("local %v %+v; ", lt.State(), lt.Stats())
		if src := lt.Source(); src != nil {
			out += fmt.Sprintf("source %+v; ", src.Stats())
		}
	}
	ch := cluster.ChannelID("room", pub.id, "cam", 0)
	up, active := sub.node.n.Router().ChannelUpstream(ch)
	out += fmt.Sprintf("sub node upstream %d active %v; pub node downstreams %d; path:", up, active, pub.node.n.Router().Downstreams(ch))
	// Walk the routes from the subscriber's node to the publisher's.
	c := sub.node
	for range 10 {
		up, active := c.n.Router().ChannelUpstream(ch)
		next, ok := c.n.Router().Route(pub.node.id)
		out += fmt.Sprintf(" [%d alive=%v up=%d active=%v down=%d route=%d,%v]", c.id, c.alive, up, active, c.n.Router().Downstreams(ch), next, ok)
		if c == pub.node || !ok {
			break
		}
		c = c.w.byID[next]
	}
	return out
}

// bigCluster is the 100-node, 1000-peer cluster of BenchmarkSimCluster:
// 3 zones (a random tree plus extra links inside each, 1–5 ms; 3 links
// of 20–40 ms between each pair), 100 rooms of 10 peers on random nodes,
// in each room (with media) one VP8 and one Opus publisher, everyone
// auto-subscribed.
func bigCluster(tb testing.TB, seed uint64, media bool) *cworld {
	w := newCWorld(tb, seed)
	rnd := w.s.Rand
	var zones [3][]sdn.NodeID
	for i := range 100 {
		z := i * 3 / 100
		id := sdn.MakeNodeID(sdn.ZoneID(z), uint32(i+1))
		w.addNode(id)
		zones[z] = append(zones[z], id)
	}
	link := func(a, b sdn.NodeID, lo, hi time.Duration) {
		if a != b && w.net.Edge(a, b) == nil {
			w.connect(a, b, w.s.Duration(lo, hi), w.s.Duration(0, 500*time.Microsecond), 0)
		}
	}
	for _, ids := range zones {
		for i := 1; i < len(ids); i++ {
			link(ids[i], ids[rnd.IntN(i)], time.Millisecond, 5*time.Millisecond)
		}
		for range len(ids) / 2 {
			link(ids[rnd.IntN(len(ids))], ids[rnd.IntN(len(ids))], time.Millisecond, 5*time.Millisecond)
		}
	}
	for a := range zones {
		for b := a + 1; b < len(zones); b++ {
			for range 3 {
				link(zones[a][rnd.IntN(len(zones[a]))], zones[b][rnd.IntN(len(zones[b]))], 20*time.Millisecond, 40*time.Millisecond)
			}
		}
	}
	w.startAll()
	w.s.RunFor(3 * time.Second)
	ssrc := uint32(1000)
	for r := range 100 {
		room := fmt.Sprint("room", r)
		for i := range 10 {
			p := w.join(w.nodes[rnd.IntN(100)], fmt.Sprintf("r%dp%d", r, i), room)
			p.checker = testutil.NewChecker(testutil.CheckerConfig{Name: p.id, Lossy: true, AnyTag: true})
			switch {
			case !media:
			case i == 0:
				vp8Pub(w, p, ssrc)
			case i == 1:
				w.publish(p, "mic", track.CodecOpus, ssrc, testutil.NewOpusSource(w.s.Rand, testutil.OpusConfig{SSRC: ssrc, Tag: testutil.TagOf(room, p.id, "mic")}))
			}
			ssrc++
		}
	}
	return w
}

// BenchmarkSimCluster runs bigCluster for 60 virtual seconds and reports
// how many virtual seconds it simulates per second of wall time: with
// media (200 publishers, about 87 000 packets a virtual second to
// subscribers, each also relayed between nodes), and with the peers and
// the directory only (the control plane: links, routes, maps, relays).
func BenchmarkSimCluster(b *testing.B) {
	for _, media := range []bool{false, true} {
		b.Run(fmt.Sprint("media=", media), func(b *testing.B) {
			for b.Loop() {
				w := bigCluster(b, 1, media)
				start := time.Now()
				w.s.RunFor(60 * time.Second)
				b.ReportMetric(60/time.Since(start).Seconds(), "virtual-s/s")
				var got uint64
				for _, c := range w.nodes {
					for _, p := range c.peers {
						got += p.checker.Packets()
					}
				}
				b.ReportMetric(float64(got)/60, "egress-pkt/virtual-s")
			}
		})
	}
}

// TestClusterSlotsFollowTheRoom: a viewer with one video slot (a WHEP
// session's media section) on node 3 shows the newest video track of the
// room, wherever it is published; when its publisher leaves, the slot
// moves to the other publisher's track on the same SSRC, numbering on
// continuously, and never shows the viewer's own peer's track.
func TestClusterSlotsFollowTheRoom(t *testing.T) {
	w := newCWorld(t, 980)
	chain(w, 3, 3*time.Millisecond, 0)
	w.startAll()
	w.s.RunFor(3 * time.Second)
	c := w.nodes[2]
	now := w.s.Now()
	view := w.joinWith(c, "room", EndpointConfig{PeerID: "carol#whep", ExcludePeer: "carol",
		Slots: []Slot{{SSRC: 777, Kind: track.KindVideo, PayloadTypes: map[track.Codec]uint8{track.CodecVP8: 96}}}})
	h := view.h
	view.checker = testutil.NewChecker(testutil.CheckerConfig{Name: "carol#whep"})
	must(t, c.n.StartSlots(now, h))
	c.drain()
	own := w.join(c, "carol", "room") // the viewer's own publishing session
	ownTag := vp8Pub(w, own, 3000)
	a := w.join(w.nodes[0], "alice", "room")
	view.checker.Allow(testutil.TagOf("room", "alice", "cam"))
	view.checker.Allow(testutil.TagOf("room", "bob", "cam"))
	_ = ownTag // never allowed: the checker fails on a packet of it
	vp8Pub(w, a, 1000)
	w.s.RunFor(2 * time.Second)
	b := w.join(w.nodes[1], "bob", "room")
	bTag := vp8Pub(w, b, 2000)
	w.s.RunFor(2 * time.Second)
	// alice's came first and the slot is busy with it: it stays.
	if k, ok := c.n.SlotTrack(h, 0); !ok || k.Peer != "alice" {
		t.Fatalf("slot shows %v %v, want alice's", k, ok)
	}
	// alice leaves: the slot moves to bob's track, on the same SSRC.
	_ = w.nodes[0].n.CloseEndpoint(w.s.Now(), a.h)
	a.alive = false
	delete(w.nodes[0].peers, a.h)
	w.nodes[0].drain()
	w.s.RunFor(3 * time.Second)
	if k, ok := c.n.SlotTrack(h, 0); !ok || k.Peer != "bob" {
		t.Fatalf("after alice left the slot shows %v %v, want bob's", k, ok)
	}
	if err := view.checker.Err(); err != nil {
		t.Fatal(err)
	}
	if st := view.checker.Stats(bTag); st.Frames < 30 || view.checker.SSRCs() != 1 {
		t.Fatalf("bob's frames %d on %d SSRCs", st.Frames, view.checker.SSRCs())
	}
}

// kfCounter is a Source whose keyframe requests are counted.
type kfCounter struct {
	testutil.Source
	n int
}

func (k *kfCounter) RequestKeyframe() { k.n++; k.Source.RequestKeyframe() }

// TestClusterSimulcastPullsLayers: a viewer two nodes from a simulcast
// publisher gets the encoding it asks for, and the nodes on the way pull
// only that one: each encoding is its own channel, the source node sends
// the others to nobody, and a keyframe request names the encoding it is
// for. Asking for another encoding switches up at its keyframe, and the
// old one stops being pulled; when the publisher stops sending the one
// asked for, the viewer falls back to the best one below.
func TestClusterSimulcastPullsLayers(t *testing.T) {
	w := newCWorld(t, 990)
	chain(w, 3, 3*time.Millisecond, 0)
	w.startAll()
	w.s.RunFor(3 * time.Second)
	c := w.nodes[2]
	view := w.joinWith(c, "room", EndpointConfig{PeerID: "viewer"})
	h := view.h
	view.checker = testutil.NewChecker(testutil.CheckerConfig{Name: "viewer"})

	pub := w.join(w.nodes[0], "alice", "room")
	tag := testutil.TagOf("room", "alice", "cam")
	view.checker.Allow(tag)
	sim := testutil.NewSimulcastVP8(w.s.Rand, testutil.SimulcastConfig{SSRCs: [3]uint32{1000, 1001, 1002}, Tag: tag,
		FPS: 30, BitrateBps: 600_000, KeyframeInterval: 20 * time.Second})
	var layers [3]*kfCounter
	for i := range layers {
		layers[i] = &kfCounter{Source: sim.Layer(i)}
		pub.sources[uint32(1000+i)] = layers[i]
	}
	must(t, w.nodes[0].n.Publish(w.s.Now(), pub.h, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8,
		Encodings: []track.Encoding{{SSRC: 1000}, {SSRC: 1001}, {SSRC: 1002}}}))
	w.nodes[0].drain()
	testutil.RunSource(w.s, sim, func() bool { return !pub.alive }, func(now time.Time, pkt []byte) {
		w.s.Send(pub.up, len(pkt), func(now time.Time) {
			_ = w.nodes[0].n.HandleRTP(now, pub.h, pkt)
			w.nodes[0].drain()
		})
	})
	w.s.RunFor(time.Second)
	if _, err := c.n.Subscribe(w.s.Now(), h, "alice", "cam", endpoint.SubscribeOptions{Spatial: 0, Temporal: -1}); err != nil {
		t.Fatal(err)
	}
	c.drain()
	w.s.RunFor(2 * time.Second)
	downs := func() [3]int {
		var d [3]int
		for i := range d {
			d[i] = w.nodes[0].n.Router().Downstreams(cluster.ChannelID("room", "alice", "cam", i))
		}
		return d
	}
	if d := downs(); d != [3]int{1, 0, 0} {
		t.Fatalf("asking for the lowest encoding, the source node sends encodings to %v nodes", d)
	}
	if layers[1].n != 0 || layers[2].n != 0 || layers[0].n == 0 {
		t.Fatalf("keyframe requests per encoding %d %d %d, want only the lowest", layers[0].n, layers[1].n, layers[2].n)
	}
	if st := view.checker.Stats(tag); st.Frames < 45 {
		t.Fatalf("%d frames of the lowest encoding", st.Frames)
	}
	must(t, c.n.SetTargetLayers(w.s.Now(), h, "alice", "cam", 2, -1))
	c.drain()
	w.s.RunFor(2 * time.Second)
	ep, _ := c.n.Endpoint(h)
	lt, _ := ep.Subscription(endpoint.SubKey{Peer: "alice", Track: "cam"})
	if cur, _ := lt.CurrentLayers(); cur != 2 {
		t.Fatalf("forwarding encoding %d after asking for 2", cur)
	}
	if d := downs(); d != [3]int{0, 0, 1} {
		t.Fatalf("after the switch the source node sends encodings to %v nodes", d)
	}
	if layers[2].n == 0 || layers[1].n != 0 {
		t.Fatalf("keyframe requests per encoding %d %d %d, want the highest asked", layers[0].n, layers[1].n, layers[2].n)
	}
	// The publisher stops sending the top encoding (as a browser does
	// when its bandwidth falls): the relay pulls those below, and the
	// viewer falls back to the middle one.
	sim.SetActive(2, false)
	w.s.RunFor(3 * time.Second)
	if cur, _ := lt.CurrentLayers(); cur != 1 {
		t.Fatalf("forwarding encoding %d after the top one stopped, want 1", cur)
	}
	if st := view.checker.Stats(tag); st.LastPacketAt.Before(w.s.Now().Add(-200 * time.Millisecond)) {
		t.Fatalf("viewer stopped receiving at %v", st.LastPacketAt.Sub(testutil.Epoch))
	}
	if err := view.checker.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestClusterBitrateFeedback: the bitrate ranges subscribers want reach
// the publisher's node aggregated, across relays: the least minimum and
// the greatest maximum of those here and on every other node.
func TestClusterBitrateFeedback(t *testing.T) {
	w := newCWorld(t, 995)
	chain(w, 3, 3*time.Millisecond, 0)
	w.startAll()
	w.s.RunFor(3 * time.Second)
	v1 := w.join(w.nodes[0], "v1", "room")
	v2 := w.join(w.nodes[1], "v2", "room")
	v3 := w.join(w.nodes[2], "v3", "room")
	pub := w.join(w.nodes[0], "alice", "room")
	vp8Pub(w, pub, 1000)
	w.s.RunFor(2 * time.Second)
	k := cluster.TrackKey{Peer: "alice", Track: "cam"}
	set := func(p *cpeer, lo, hi uint64) {
		must(t, p.node.n.SetBitrateRange(w.s.Now(), p.h, "alice", "cam", lo, hi))
		p.node.drain()
	}
	set(v2, 200_000, 1_000_000)
	set(v3, 100_000, 500_000)
	w.s.RunFor(2 * time.Second)
	if lo, hi := w.nodes[0].n.Cluster().DesiredBitrate("room", k, 0); lo != 100_000 || hi != 1_000_000 {
		t.Fatalf("desired %d–%d, want 100000–1000000", lo, hi)
	}
	set(v1, 300_000, 2_000_000)
	set(v3, 0, 0) // says nothing any more
	w.s.RunFor(2 * time.Second)
	if lo, hi := w.nodes[0].n.Cluster().DesiredBitrate("room", k, 0); lo != 200_000 || hi != 2_000_000 {
		t.Fatalf("desired %d–%d, want 200000–2000000", lo, hi)
	}
}
