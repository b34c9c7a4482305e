package sdn_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/sdn"
)

type subState struct {
	activeAt time.Time
	active   bool
	seqs     []uint32
	lastAt   time.Time
	moved    int
	ended    bool
}

// TestPubSubTree: 1 source, 50 subscriber nodes on the 100-node topology.
// On the lossless network every subscriber gets every packet sent after
// its subscription became active, exactly once and in order, and no node
// sends a packet twice to the same neighbour. After a relay dies, every
// subscriber receives again within 3 virtual seconds. After the source
// dies, every subscriber is told the channel ended. In both routing
// modes.
func TestPubSubTree(t *testing.T) {
	t.Parallel()
	const ch = 0xC0FFEE
	for _, mode := range routingModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			for _, seed := range testutil.Seeds(400, 3) {
				s := regionNet(t, seed, mode.flat, false)
				s.checkLoops = false
				subs := map[*simNode]*subState{}
				sentAt := map[uint32]time.Time{}
				type fwdKey struct {
					node *simNode
					link sdn.LinkID
					seq  uint32
				}
				fwd := map[fwdKey]int{}
				var dupFwd string
				s.onData = func(n *simNode, d sdn.Delivery) {
					st := subs[n]
					if st == nil {
						t.Fatalf("seed %d: delivery to non-subscriber %d", seed, n.id)
					}
					if len(st.seqs) > 0 && d.Seq <= st.seqs[len(st.seqs)-1] {
						t.Fatalf("seed %d: node %d got seq %d after %d", seed, n.id, d.Seq, st.seqs[len(st.seqs)-1])
					}
					if want := binary.BigEndian.Uint32(d.Payload); want != d.Seq || len(d.Payload) != 100 {
						t.Fatalf("seed %d: payload mismatch", seed)
					}
					st.seqs = append(st.seqs, d.Seq)
					st.lastAt = s.sim.Now()
				}
				s.onEvent = func(n *simNode, e sdn.Event) {
					st := subs[n]
					switch e := e.(type) {
					case sdn.EventSubscribed:
						if st != nil && e.Channel == ch {
							st.active, st.activeAt = true, s.sim.Now()
						}
					case sdn.EventMoved:
						if st != nil {
							st.moved++
						}
					case sdn.EventChannelEnded:
						if st != nil {
							st.ended = true
						}
					}
				}
				s.startAll()
				s.sim.RunFor(10 * time.Second)

				perm := s.sim.Rand.Perm(len(s.nodes))
				src := s.nodes[perm[0]]
				for _, i := range perm[1:51] {
					subs[s.nodes[i]] = &subState{}
				}
				if err := src.r.Publish(s.sim.Now(), ch); err != nil {
					t.Fatal(err)
				}
				src.drain()
				// Subscribers join over the next 2 seconds.
				for _, i := range perm[1:51] {
					n := s.nodes[i]
					s.sim.After(s.sim.Duration(0, 2*time.Second), func(now time.Time) {
						if err := n.r.Subscribe(now, ch); err != nil {
							t.Fatal(err)
						}
						n.drain()
					})
				}
				payload := make([]byte, 100)
				var seq uint32
				sending := true
				s.sim.Every(20*time.Millisecond, func(now time.Time) bool {
					if !sending || !src.alive {
						return false
					}
					seq++
					binary.BigEndian.PutUint32(payload, seq)
					sentAt[seq] = now
					if err := src.r.Send(now, ch, payload); err != nil {
						t.Fatal(err)
					}
					src.drain()
					return true
				})
				// Count the copies each node sends per link and sequence number
				// (for the whole test), and which links each node sends data on
				// lately (to find a busy relay).
				recent := map[*simNode]map[sdn.LinkID]bool{}
				s.tap = func(n *simNode, tr sdn.Transmit) {
					if !tr.Datagram || len(tr.Data) < 13 {
						return
					}
					k := fwdKey{n, tr.Link, binary.BigEndian.Uint32(tr.Data[9:13])}
					fwd[k]++
					if fwd[k] > 1 && dupFwd == "" {
						dupFwd = fmt.Sprintf("t=%v: node %d sent seq %d twice on link %d", s.sim.Now().Sub(testutil.Epoch), n.id, k.seq, k.link)
					}
					if recent[n] == nil {
						recent[n] = map[sdn.LinkID]bool{}
					}
					recent[n][tr.Link] = true
				}
				s.sim.RunFor(10 * time.Second)
				if dupFwd != "" {
					t.Fatalf("seed %d: %s", seed, dupFwd)
				}
				lastSent := seq
				moves := 0
				for n, st := range subs {
					if !st.active {
						t.Fatalf("seed %d: subscriber %d never became active", seed, n.id)
					}
					moves += st.moved
					// Every packet sent after activation, exactly once, in order.
					var want []uint32
					for q := uint32(1); q <= lastSent; q++ {
						if sentAt[q].After(st.activeAt) && sentAt[q].Before(s.sim.Now().Add(-time.Second)) {
							want = append(want, q)
						}
					}
					got := map[uint32]bool{}
					for _, q := range st.seqs {
						got[q] = true
					}
					for _, q := range want {
						if !got[q] {
							t.Fatalf("seed %d: subscriber %d (active at %v) missed seq %d sent at %v", seed, n.id,
								st.activeAt.Sub(testutil.Epoch), q, sentAt[q].Sub(testutil.Epoch))
						}
					}
				}

				// Routes still improve while the subscribers join (small gains wait
				// Config.Sticky), so subtrees may move; moves are make-before-break
				// and lose nothing, which the check above holds them to.
				t.Logf("seed %d: %d packets, %d subscriber-visible moves", seed, lastSent, moves)

				// Kill a relay: the node, other than the source, that forwards to
				// the most neighbours right now (a subscriber only if no other
				// relay does as much), and whose death leaves the network
				// connected.
				clear(recent)
				s.sim.RunFor(time.Second)
				var relay *simNode
				for _, n := range s.nodes {
					if n == src || !n.alive || len(recent[n]) == 0 || !s.connectedWithout(n) {
						continue
					}
					if relay == nil || len(recent[n]) > len(recent[relay]) ||
						len(recent[n]) == len(recent[relay]) && subs[relay] != nil && subs[n] == nil {
						relay = n
					}
				}
				if relay == nil {
					t.Fatalf("seed %d: no relay", seed)
				}
				t.Logf("seed %d: killing relay %d, which forwards to %d neighbours (subscriber: %v)", seed, relay.id, len(recent[relay]), subs[relay] != nil)
				// The subscribers below the relay (following their upstreams).
				below := map[*simNode]int{} // subscriber → moves seen before
				for n, st := range subs {
					for cur, hops := n, 0; cur != nil && hops < len(s.nodes); hops++ {
						up, _ := cur.r.ChannelUpstream(ch)
						if up == relay.id {
							below[n] = st.moved
							break
						}
						cur = s.byID[up]
					}
				}
				s.kill(relay)
				delete(subs, relay)
				delete(below, relay)
				killedAt := s.sim.Now()
				s.sim.RunFor(3 * time.Second)
				for n, st := range subs {
					if !st.lastAt.After(killedAt) || sentAt[st.seqs[len(st.seqs)-1]].Before(killedAt) {
						t.Fatalf("seed %d: subscriber %d got nothing new within 3s of relay %d dying", seed, n.id, relay.id)
					}
				}
				// Those whose path went through the relay are told it moved (a
				// media subscriber asks for a keyframe).
				if len(below) == 0 {
					t.Fatalf("seed %d: no subscriber below relay %d", seed, relay.id)
				}
				for n, before := range below {
					if subs[n].moved == before {
						t.Fatalf("seed %d: subscriber %d below dead relay %d not told its path moved", seed, n.id, relay.id)
					}
				}
				t.Logf("seed %d: %d subscribers below the dead relay, all receiving again and told", seed, len(below))

				// Kill the source: the channel ends everywhere.
				s.kill(src)
				s.sim.RunFor(10 * time.Second)
				for n, st := range subs {
					if n.alive && !st.ended {
						t.Fatalf("seed %d: subscriber %d not told the channel ended", seed, n.id)
					}
				}
				sending = false
				if dupFwd != "" {
					t.Fatalf("seed %d: %s", seed, dupFwd)
				}
			}
		})
	}
}

// TestRendezvous: subscribers that join before the source publishes find
// it once it does; when the channel's home node dies, a new home takes
// over from the source's next announcement and new subscribers still
// find the source.
func TestRendezvous(t *testing.T) {
	for _, seed := range testutil.Seeds(600, 3) {
		s := newSimNet(t, seed)
		s.topology([]int{20, 20}, 60, 3, false)
		active := map[*simNode]map[uint64]bool{}
		s.onEvent = func(n *simNode, e sdn.Event) {
			if e, ok := e.(sdn.EventSubscribed); ok {
				if active[n] == nil {
					active[n] = map[uint64]bool{}
				}
				active[n][e.Channel] = true
			}
		}
		s.startAll()
		s.sim.RunFor(5 * time.Second)
		perm := s.sim.Rand.Perm(len(s.nodes))
		src := s.nodes[perm[0]]
		early, late := perm[1:6], perm[6:11]
		chans := []uint64{11, 12, 13, 14, 15, 16}
		for _, i := range early {
			for _, ch := range chans {
				s.nodes[i].r.Subscribe(s.sim.Now(), ch)
			}
			s.nodes[i].drain()
		}
		s.sim.RunFor(time.Second)
		for _, ch := range chans {
			src.r.Publish(s.sim.Now(), ch)
		}
		src.drain()
		s.sim.RunFor(3 * time.Second)
		for _, i := range early {
			for _, ch := range chans {
				if !active[s.nodes[i]][ch] {
					t.Fatalf("seed %d: early subscriber %d not active on %d", seed, s.nodes[i].id, ch)
				}
			}
		}
		// Kill the home of a channel (not the source, not a subscriber).
		var home *simNode
		var ch uint64
		for _, c := range chans {
			for _, n := range s.nodes {
				if sdn.IsHome(n.r, c) && n != src && !slices.Contains(perm[1:11], n.idx) && s.connectedWithout(n) {
					home, ch = n, c
				}
			}
		}
		if home == nil {
			t.Logf("seed %d: no killable home", seed)
			continue
		}
		s.kill(home)
		s.sim.RunFor(500 * time.Millisecond)
		for _, i := range late {
			s.nodes[i].r.Subscribe(s.sim.Now(), ch)
			s.nodes[i].drain()
		}
		s.sim.RunFor(6 * time.Second)
		for _, i := range late {
			if !active[s.nodes[i]][ch] {
				t.Fatalf("seed %d: late subscriber %d not active after home %d died", seed, s.nodes[i].id, home.id)
			}
		}
		homes := 0
		for _, n := range s.nodes {
			if n.alive && sdn.IsHome(n.r, ch) {
				homes++
			}
		}
		if homes != 1 {
			t.Fatalf("seed %d: %d live homes for channel %d", seed, homes, ch)
		}
	}
}

// TestSubtreeMoves: when a better path to the source appears, the
// subscriber's subtree moves to it once (after ChannelSticky), without
// losing or repeating a packet, and the subscriber is told.
func TestSubtreeMoves(t *testing.T) {
	const ch = 3
	for _, seed := range testutil.Seeds(700, 3) {
		s := newSimNet(t, seed)
		src, a, b, c := s.addNode(1), s.addNode(2), s.addNode(3), s.addNode(4)
		s.connect(src.id, a.id, 10*time.Millisecond, 500*time.Microsecond, 0)
		s.connect(a.id, b.id, 10*time.Millisecond, 500*time.Microsecond, 0)
		s.connect(b.id, c.id, 10*time.Millisecond, 500*time.Microsecond, 0)
		direct := s.connect(src.id, c.id, 5*time.Millisecond, 500*time.Microsecond, 0)
		s.cut(direct, true)
		var seqs []uint32
		var moves []time.Time
		s.onData = func(n *simNode, d sdn.Delivery) {
			if n == c {
				seqs = append(seqs, d.Seq)
			}
		}
		s.onEvent = func(n *simNode, e sdn.Event) {
			if _, ok := e.(sdn.EventMoved); ok && n == c {
				moves = append(moves, s.sim.Now())
			}
		}
		s.startAll()
		s.sim.RunFor(3 * time.Second)
		src.r.Publish(s.sim.Now(), ch)
		src.drain()
		c.r.Subscribe(s.sim.Now(), ch)
		c.drain()
		s.sim.RunFor(2 * time.Second)
		if up, ok := c.r.ChannelUpstream(ch); up != b.id || !ok {
			t.Fatalf("seed %d: upstream %d %v before the direct link", seed, up, ok)
		}
		var sent uint32
		s.sim.Every(10*time.Millisecond, func(now time.Time) bool {
			sent++
			src.r.Send(now, ch, []byte("x"))
			src.drain()
			return true
		})
		s.sim.RunFor(time.Second)
		s.cut(direct, false)
		healed := s.sim.Now()
		var routed time.Time
		for range 400 {
			s.sim.RunFor(100 * time.Millisecond)
			if next, _ := c.r.Route(src.id); next == src.id && routed.IsZero() {
				routed = s.sim.Now()
			}
		}
		if routed.IsZero() {
			t.Fatalf("seed %d: no route over the healed direct link", seed)
		}
		if up, ok := c.r.ChannelUpstream(ch); up != src.id || !ok {
			t.Fatalf("seed %d: upstream %d %v after the better path appeared", seed, up, ok)
		}
		if len(moves) != 1 {
			t.Fatalf("seed %d: %d moves, want 1", seed, len(moves))
		}
		if d := moves[0].Sub(routed); d < sdn.DefaultChannelSticky-sdn.DefaultSubRefresh {
			t.Fatalf("seed %d: moved %v after the route changed, sooner than ChannelSticky", seed, d)
		}
		// Exactly once, in order, nothing lost across the move.
		first := seqs[0]
		for i, q := range seqs {
			if q != first+uint32(i) {
				t.Fatalf("seed %d: seq %d at %d (want %d): lost or repeated across the move", seed, q, i, first+uint32(i))
			}
		}
		if last := seqs[len(seqs)-1]; sent-last > 5 {
			t.Fatalf("seed %d: last seq %d of %d sent", seed, last, sent)
		}
		t.Logf("seed %d: healed at %v, routed direct %v later, moved %v after that", seed,
			healed.Sub(testutil.Epoch), routed.Sub(healed), moves[0].Sub(routed))
	}
}

// TestChannelBound: a node relays and subscribes at most MaxChannels
// channels; beyond, the API refuses, and subscriptions from neighbours
// are dropped and counted until a slot frees.
func TestChannelBound(t *testing.T) {
	s := newSimNet(t, 11)
	a, b, c := s.addNode(1), s.addNode(2), s.addNode(3)
	s.connect(a.id, b.id, 5*time.Millisecond, 0, 0)
	s.connect(b.id, c.id, 5*time.Millisecond, 0, 0)
	s.tune = func(cfg *sdn.Config) {
		if cfg.ID == b.id {
			cfg.MaxChannels = 2
		}
	}
	subscribed := map[*simNode]bool{}
	s.onEvent = func(n *simNode, e sdn.Event) {
		if e, ok := e.(sdn.EventSubscribed); ok && e.Channel == 6 {
			subscribed[n] = true
		}
	}
	s.startAll()
	s.sim.RunFor(3 * time.Second)
	now := s.sim.Now()
	if err := b.r.Subscribe(now, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.r.Publish(now, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.r.Subscribe(now, 1); err != nil {
		t.Fatalf("subscribing again: %v", err)
	}
	if err := b.r.Subscribe(now, 3); !errors.Is(err, sdn.ErrTooMany) {
		t.Fatalf("third channel: %v, want ErrTooMany", err)
	}
	if err := b.r.Publish(now, 4); !errors.Is(err, sdn.ErrTooMany) {
		t.Fatalf("fourth channel: %v, want ErrTooMany", err)
	}
	b.drain()
	// c publishes 6 and a subscribes through b, which is full.
	c.r.Publish(now, 6)
	c.drain()
	s.sim.RunFor(time.Second)
	drops := b.r.Stats().LimitDrops
	a.r.Subscribe(s.sim.Now(), 6)
	a.drain()
	s.sim.RunFor(2 * time.Second)
	if subscribed[a] {
		t.Fatal("a joined channel 6 through a full relay")
	}
	if b.r.Stats().LimitDrops <= drops {
		t.Fatal("refused subscription not counted")
	}
	// A slot frees: a's next refresh gets through.
	b.r.Unpublish(s.sim.Now(), 2)
	b.drain()
	s.sim.RunFor(2 * time.Second)
	if !subscribed[a] {
		t.Fatal("a not joined after the relay freed a slot")
	}
	if up, ok := a.r.ChannelUpstream(6); up != b.id || !ok {
		t.Fatalf("a's upstream for 6: %d %v", up, ok)
	}
}
