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

func (w *mapWorld) del(n *simNode, key string) {
	n.r.MapDelete(w.s.sim.Now(), w.name, key)
	delete(w.truth, entryKey{n.id, key})
	n.drain()
}

// scopedRoom is one scoped map of a test and the nodes interested in it.
type scopedRoom struct {
	w          *mapWorld
	writers    []*simNode
	subs       []*simNode
	interested map[*simNode]bool
}

// newScopedRooms makes rooms maps "r:<i>", each with 2-6 interested nodes
// of s: every one subscribes, writes, or both.
func newScopedRooms(s *simNet, rooms int) []*scopedRoom {
	var out []*scopedRoom
	for i := range rooms {
		rm := &scopedRoom{w: newMapWorld(s, fmt.Sprintf("r:%d", i)), interested: map[*simNode]bool{}}
		perm := s.sim.Rand.Perm(len(s.nodes))
		for k, idx := range perm[:2+s.sim.Rand.IntN(5)] {
			n := s.nodes[idx]
			rm.interested[n] = true
			role := s.sim.Rand.IntN(4) // 0, 1: both; 2: subscribes; 3: writes
			if k == 0 {
				role = 0
			}
			if role != 3 {
				rm.subs = append(rm.subs, n)
			}
			if role != 2 {
				rm.writers = append(rm.writers, n)
			}
		}
		out = append(out, rm)
	}
	return out
}

// converged waits up to d for every room's subscribers to see want(room).
func convergedRooms(s *simNet, rooms []*scopedRoom, d time.Duration, want func(*scopedRoom) map[entryKey]string) (time.Duration, string) {
	t0 := s.sim.Now()
	for {
		bad := ""
		for _, rm := range rooms {
			if _, bad = rm.w.converged(0, func() map[entryKey]string { return want(rm) }); bad != "" {
				bad = rm.w.name + ": " + bad
				break
			}
		}
		if bad == "" || s.sim.Now().Sub(t0) >= d {
			return s.sim.Now().Sub(t0), bad
		}
		s.sim.RunFor(250 * time.Millisecond)
	}
}

// homeOf returns the alive nodes that are the room's home by their own
// routes.
func (rm *scopedRoom) homes(s *simNet) []*simNode {
	var out []*simNode
	for _, n := range s.nodes {
		if _, _, home := sdn.ScopedMap(n.r, rm.w.name); n.alive && home {
			out = append(out, n)
		}
	}
	return out
}

// checkScope checks that a room's map is held by nobody but the nodes
// interested in it and its one home, and that the home stores every
// entry of the others. It returns a description of the first failure.
func (rm *scopedRoom) checkScope(s *simNet, want map[entryKey]string) string {
	homes := rm.homes(s)
	if len(homes) != 1 {
		return fmt.Sprintf("%s: %d homes", rm.w.name, len(homes))
	}
	for _, n := range s.nodes {
		held, stored, home := sdn.ScopedMap(n.r, rm.w.name)
		if !n.alive || rm.interested[n] || home {
			continue
		}
		if held || stored != 0 {
			return fmt.Sprintf("%s: node %d, neither interested nor home, holds it (%d entries)", rm.w.name, n.id, stored)
		}
	}
	h := homes[0]
	others := 0
	for k := range want {
		if k.owner != h.id {
			others++
		}
	}
	if _, stored, _ := sdn.ScopedMap(h.r, rm.w.name); stored != others {
		return fmt.Sprintf("%s: home %d stores %d entries of others, want %d", rm.w.name, h.id, stored, others)
	}
	return ""
}

// TestScopedMaps: 100 nodes, 10 rooms (scoped maps) with writers and
// subscribers on a few nodes each. Every subscriber sees exactly the
// union of the room's entries, and nobody but the interested nodes and
// the room's home stores any of it. A dead writer's entries vanish at
// every subscriber within the soft-state timeout of its death, a closing
// one's at once; the death of a room's home loses nothing and the new
// home takes over; a partition leaves each side its own writers' entries,
// and after the heal the rooms converge again.
func TestScopedMaps(t *testing.T) {
	t.Parallel()
	for _, seed := range testutil.Seeds(700, 3) {
		s := regionNet(t, seed, false, true)
		rooms := newScopedRooms(s, 10)
		for _, rm := range rooms {
			rm.w.stable = true
		}
		s.startAll()
		s.sim.RunFor(3 * time.Second)
		for _, rm := range rooms {
			for _, n := range rm.subs[:len(rm.subs)/2] {
				rm.w.subscribe(n)
			}
			for _, n := range rm.writers {
				for k := range 5 {
					s.sim.After(s.sim.Duration(0, 2*time.Second), func(time.Time) {
						rm.w.set(n, fmt.Sprintf("p:%d", k), fmt.Sprintf("v%d@%d", k, n.id))
					})
				}
			}
		}
		s.sim.RunFor(2 * time.Second)
		for _, rm := range rooms {
			for _, n := range rm.subs[len(rm.subs)/2:] { // late subscribers get the existing entries
				rm.w.subscribe(n)
			}
		}
		alive := func(rm *scopedRoom) map[entryKey]string { return rm.w.aliveTruth() }
		if took, bad := convergedRooms(s, rooms, 10*time.Second, alive); bad != "" {
			t.Fatalf("seed %d: rooms not converged: %s", seed, bad)
		} else {
			t.Logf("seed %d: every room's subscribers have its entries %v after the last write", seed, took)
		}
		s.sim.RunFor(time.Second)
		stored, entries := 0, 0
		for _, rm := range rooms {
			if bad := rm.checkScope(s, rm.w.aliveTruth()); bad != "" {
				t.Fatalf("seed %d: %s", seed, bad)
			}
			entries += len(rm.w.truth)
			for _, n := range s.nodes {
				_, st, _ := sdn.ScopedMap(n.r, rm.w.name)
				stored += st
			}
		}
		t.Logf("seed %d: %d entries in 10 rooms, %d copies of others' entries stored cluster-wide (%d if every node kept every room)",
			seed, entries, stored, entries*(len(s.nodes)-1))

		// A writer dies: its entries vanish within the soft-state timeout.
		var rm *scopedRoom
		var victim *simNode
		for _, r := range rooms {
			for _, n := range r.writers {
				if victim == nil && len(r.subs) > 1 && s.connectedWithout(n) && !slices.Contains(r.homes(s), n) {
					rm, victim = r, n
				}
			}
		}
		s.sim.RunFor(s.sim.Duration(0, time.Second))
		s.kill(victim)
		killedAt := s.sim.Now()
		if took, bad := convergedRooms(s, rooms, sdn.DefaultSoftStateTimeout+time.Second, alive); bad != "" {
			t.Fatalf("seed %d: entries of dead %d still there after %v: %s", seed, victim.id, took, bad)
		}
		if took := rm.w.lastDelete[victim.id].Sub(killedAt); took <= 0 || took > sdn.DefaultSoftStateTimeout {
			t.Fatalf("seed %d: entries of dead %d vanished %v after its death, want within %v", seed, victim.id, took, sdn.DefaultSoftStateTimeout)
		} else {
			t.Logf("seed %d: dead writer's entries gone at every subscriber %v after its death", seed, took)
		}

		// A room's home dies, preferably one that writes nothing itself,
		// and the room's writers write while the home moves: nothing of
		// the live writers is lost meanwhile, the writes get through, and
		// one new home takes over.
		var hr *scopedRoom
		var home *simNode
		for _, r := range rooms {
			h := r.homes(s)
			if len(h) != 1 || !s.connectedWithout(h[0]) {
				continue
			}
			if hr == nil || !slices.ContainsFunc(rooms, func(x *scopedRoom) bool { return x.interested[h[0]] }) {
				hr, home = r, h[0]
			}
		}
		if hr == nil {
			t.Fatalf("seed %d: no room has a home whose death keeps the network connected", seed)
		}
		s.kill(home)
		for _, n := range hr.writers {
			if n.alive {
				s.sim.After(s.sim.Duration(0, 2*time.Second), func(time.Time) {
					hr.w.set(n, "after", fmt.Sprintf("written while the home %d is gone", home.id))
				})
			}
		}
		s.sim.RunFor(2 * time.Second)
		// If the home wrote entries, they take up to the soft-state
		// timeout to vanish.
		if took, bad := convergedRooms(s, rooms, sdn.DefaultSoftStateTimeout, alive); bad != "" {
			t.Fatalf("seed %d: %s not converged %v after its home %d died: %s", seed, hr.w.name, took, home.id, bad)
		} else {
			t.Logf("seed %d: writes of the 2s after %s's home died at every subscriber %v after those 2s", seed, hr.w.name, took)
		}
		for range 20 {
			if nh := hr.homes(s); len(nh) == 1 {
				break
			}
			s.sim.RunFor(250 * time.Millisecond)
		}
		if nh := hr.homes(s); len(nh) != 1 || nh[0] == home {
			t.Fatalf("seed %d: %s has homes %v after %d died", seed, hr.w.name, nh, home.id)
		}

		// A writer closes: its entries go at once.
		var leaver *simNode
		for _, r := range rooms {
			for _, n := range r.writers {
				if leaver == nil && n.alive && len(r.subs) > 1 {
					leaver = n
				}
			}
		}
		for _, r := range rooms {
			for k := range r.w.truth {
				if k.owner == leaver.id {
					delete(r.w.truth, k)
				}
			}
		}
		leaver.r.Close(s.sim.Now())
		leaver.drain()
		if took, bad := convergedRooms(s, rooms, 2*time.Second, alive); bad != "" {
			t.Fatalf("seed %d: entries of leaver %d still there after %v: %s", seed, leaver.id, took, bad)
		}
		for _, rm := range rooms {
			if rm.w.spurious > 0 {
				t.Fatalf("seed %d: %s: %d entries of live owners were deleted", seed, rm.w.name, rm.w.spurious)
			}
			rm.w.stable = false
		}

		// Partition zone 0 from the others, write on both sides, heal.
		var cut []*simEdge
		for _, k := range s.sortedEdges() {
			if (k[0].Zone() == 0) != (k[1].Zone() == 0) {
				e := s.edges[k]
				s.cut(e, true)
				cut = append(cut, e)
			}
		}
		s.sim.RunFor(5 * time.Second)
		for _, rm := range rooms {
			for _, n := range rm.writers {
				if n.alive && n != leaver && s.sim.Chance(0.5) {
					rm.w.set(n, "late", fmt.Sprintf("written in the partition by %d", n.id))
				}
			}
		}
		side := func(n *simNode) bool { return n.id.Zone() == 0 }
		s.sim.RunFor(sdn.DefaultSoftStateTimeout + time.Second)
		for _, rm := range rooms {
			for _, n := range rm.subs {
				if !n.alive || n == leaver {
					continue
				}
				want := map[entryKey]string{}
				for k, v := range rm.w.aliveTruth() {
					if side(s.byID[k.owner]) == side(n) {
						want[k] = v
					}
				}
				if bad := rm.w.diff(n, want); bad != "" {
					t.Fatalf("seed %d: %s in the partition: %s", seed, rm.w.name, bad)
				}
			}
		}
		for _, e := range cut {
			s.cut(e, false)
		}
		if took, bad := convergedRooms(s, rooms, 25*time.Second, alive); bad != "" {
			t.Fatalf("seed %d: not converged 25s after the partition healed: %s", seed, bad)
		} else {
			t.Logf("seed %d: rooms converged %v after the partition healed", seed, took)
		}
		s.sim.RunFor(3 * time.Second)
		for _, rm := range rooms {
			if bad := rm.checkScope(s, rm.w.aliveTruth()); bad != "" {
				t.Fatalf("seed %d: after the heal: %s", seed, bad)
			}
		}
	}
}

// line builds n nodes of zone 0 in a row, each link lat one way.
func line(tb testing.TB, seed uint64, n int, lat time.Duration, loss float64) *simNet {
	s := newSimNet(tb, seed)
	for i := 1; i <= n; i++ {
		s.addNode(sdn.NodeID(i))
		if i > 1 {
			s.connect(sdn.NodeID(i-1), sdn.NodeID(i), lat, 0, loss)
		}
	}
	return s
}

// TestScopedMapDeathBound: the ages carried with a scoped map's entries
// count every hop's round trip, so a dead writer's entries vanish within
// the soft-state timeout of its death even over a long, slow path, when
// it dies just after refreshing them.
func TestScopedMapDeathBound(t *testing.T) {
	for _, seed := range testutil.Seeds(40, 3) {
		s := line(t, seed, 6, 100*time.Millisecond, 0)
		w := newMapWorld(s, "r:x")
		s.startAll()
		s.sim.RunFor(5 * time.Second)
		writer, sub := s.nodes[0], s.nodes[5]
		w.subscribe(sub)
		w.set(writer, "k", "v")
		if took, bad := w.converged(5*time.Second, w.aliveTruth); bad != "" {
			t.Fatalf("seed %d: not converged in %v: %s", seed, took, bad)
		}
		// Kill the writer as it sends its next refresh.
		var killedAt time.Time
		s.tap = func(n *simNode, tx sdn.Transmit) {
			if n == writer && killedAt.IsZero() && len(tx.Data) > 0 && tx.Data[0] == 20 { // mMapSync
				killedAt = s.sim.Now()
				s.sim.After(0, func(time.Time) { s.kill(writer) })
			}
		}
		s.sim.RunFor(time.Second)
		if took, bad := w.converged(sdn.DefaultSoftStateTimeout+2*time.Second, w.aliveTruth); bad != "" {
			t.Fatalf("seed %d: writer's entries still there %v after its death: %s", seed, took, bad)
		}
		if took := w.lastDelete[writer.id].Sub(killedAt); took <= 0 || took > sdn.DefaultSoftStateTimeout {
			t.Fatalf("seed %d: entries vanished %v after the death, want within %v", seed, took, sdn.DefaultSoftStateTimeout)
		} else {
			t.Logf("seed %d: entries vanished %v after the death, 5 hops of 200ms round trip away", seed, took)
		}
	}
}

// TestScopedMapParts: an owner's entries too large for one message go in
// parts, over lossy links, and no message exceeds a part's size; a change
// then goes as a small delta; a writer that restarts with other entries
// replaces its old ones (its versions start past its previous life's).
func TestScopedMapParts(t *testing.T) {
	for _, seed := range testutil.Seeds(60, 3) {
		s := line(t, seed, 5, 5*time.Millisecond, 0.05)
		w := newMapWorld(s, "r:big")
		var biggest, puts int
		s.tap = func(n *simNode, tx sdn.Transmit) {
			biggest = max(biggest, len(tx.Data))
			if len(tx.Data) > 0 && tx.Data[0] == 22 { // mMapPut
				puts++
			}
		}
		s.startAll()
		s.sim.RunFor(3 * time.Second)
		writer, sub := s.nodes[0], s.nodes[4]
		w.subscribe(sub)
		w.subscribe(s.nodes[2])
		value := make([]byte, 1000)
		for i := range 300 { // 300 kB of entries: 5 parts
			value[0], value[1] = byte(i), byte(i>>8)
			w.set(writer, fmt.Sprintf("k%03d", i), string(value))
		}
		if took, bad := w.converged(10*time.Second, w.aliveTruth); bad != "" {
			t.Fatalf("seed %d: not converged in %v: %s", seed, took, bad)
		} else {
			t.Logf("seed %d: 300 kB of entries at both subscribers in %v, over 5%% loss", seed, took)
		}
		if biggest > 70000 {
			t.Fatalf("seed %d: a %d-byte message", seed, biggest)
		}
		s.sim.RunFor(2 * time.Second)
		biggest, puts = 0, 0
		w.set(writer, "k007", "changed")
		w.del(writer, "k008")
		if took, bad := w.converged(5*time.Second, w.aliveTruth); bad != "" {
			t.Fatalf("seed %d: change not converged in %v: %s", seed, took, bad)
		}
		if biggest > 1000 {
			t.Fatalf("seed %d: a change of two entries sent a %d-byte message", seed, biggest)
		}

		// The writer restarts (a new Router, the same id) before its old
		// entries expire, and writes others.
		s.kill(writer)
		s.sim.RunFor(2 * time.Second)
		s.start(writer)
		for k := range w.truth {
			if k.owner == writer.id {
				delete(w.truth, k)
			}
		}
		s.sim.RunFor(time.Second)
		w.set(writer, "k000", "second life")
		if took, bad := w.converged(sdn.DefaultSoftStateTimeout, w.aliveTruth); bad != "" {
			t.Fatalf("seed %d: restarted writer's entries not converged in %v: %s", seed, took, bad)
		} else {
			t.Logf("seed %d: restarted writer's one entry replaced its 299 old ones in %v", seed, took)
		}
	}
}

// TestScopedMapBounds: MaxEntries bounds a node's own entries per map
// (global and scoped alike); a home refuses, and counts, maps beyond
// MaxScopedMaps and entries beyond MaxScopedEntries.
func TestScopedMapBounds(t *testing.T) {
	s := line(t, 1, 2, time.Millisecond, 0)
	a, b := s.nodes[0], s.nodes[1]
	s.tune = func(c *sdn.Config) {
		c.MaxEntries = 3
		if c.ID == b.id {
			c.MaxScopedMaps, c.MaxScopedEntries = 4, 5
		}
	}
	s.startAll()
	s.sim.RunFor(3 * time.Second)
	now := s.sim.Now()
	for _, name := range []string{"g1", "g2", "r:1", "r:2"} {
		for i := range 3 {
			if err := a.r.MapSet(now, name, fmt.Sprint(i), []byte("v")); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if err := a.r.MapSet(now, name, "3", []byte("v")); !errors.Is(err, sdn.ErrMapFull) {
			t.Fatalf("%s: a fourth entry: %v, want ErrMapFull", name, err)
		}
	}
	a.drain()

	// Find scoped maps whose home is b, and have a write to them.
	var names []string
	for i := 0; len(names) < 6; i++ {
		name := fmt.Sprintf("r:b%d", i)
		if _, _, home := sdn.ScopedMap(b.r, name); home {
			names = append(names, name)
		}
	}
	drops := b.r.Stats().LimitDrops
	for _, name := range names {
		for i := range 2 {
			if err := a.r.MapSet(s.sim.Now(), name, fmt.Sprint(i), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		a.drain()
	}
	s.sim.RunFor(2 * time.Second)
	held := 0
	for _, name := range names {
		if h, _, _ := sdn.ScopedMap(b.r, name); h {
			held++
		}
	}
	if held > 4 || sdn.ScopedEntries(b.r) > 5 || b.r.Stats().LimitDrops == drops {
		t.Fatalf("home holds %d maps (bound 4) and %d entries (bound 5), %d drops counted", held, sdn.ScopedEntries(b.r), b.r.Stats().LimitDrops-drops)
	}
	t.Logf("home holds %d of 6 maps and %d of 12 entries; %d drops counted", held, sdn.ScopedEntries(b.r), b.r.Stats().LimitDrops-drops)
}

// TestScopedMapCost runs the rooms of TestScopedMaps once with scoped
// maps and once with every map global (NoScopedMaps), and measures, in
// steady state, the map messages' bytes per second cluster-wide and the
// copies of others' entries stored: scoped maps cost less of both, and
// what they cost grows with the rooms' interested nodes, not with the
// cluster.
func TestScopedMapCost(t *testing.T) {
	t.Parallel()
	type cost struct{ bytesPerSec, stored, msgsPerSec float64 }
	run := func(seed uint64, prefix string) cost {
		s := regionNet(t, seed, false, false)
		s.tune = func(c *sdn.Config) { c.ScopedMapPrefix = prefix }
		rooms := newScopedRooms(s, 10)
		var bytes, msgs int
		s.tap = func(n *simNode, tx sdn.Transmit) {
			if len(tx.Data) > 0 && (tx.Data[0] == 14 || tx.Data[0] == 15 || tx.Data[0] >= 20 && tx.Data[0] <= 23) {
				bytes += len(tx.Data)
				msgs++
			}
		}
		s.startAll()
		s.sim.RunFor(3 * time.Second)
		for _, rm := range rooms {
			for _, n := range rm.subs {
				rm.w.subscribe(n)
			}
			for _, n := range rm.writers {
				for k := range 5 {
					rm.w.set(n, fmt.Sprintf("p:%d", k), fmt.Sprintf("v%d@%d", k, n.id))
				}
			}
		}
		if _, bad := convergedRooms(s, rooms, 10*time.Second, func(rm *scopedRoom) map[entryKey]string { return rm.w.aliveTruth() }); bad != "" {
			t.Fatalf("seed %d, prefix %q: %s", seed, prefix, bad)
		}
		s.sim.RunFor(5 * time.Second)
		bytes, msgs = 0, 0
		const window = 20 * time.Second
		s.sim.RunFor(window)
		stored := 0
		for _, n := range s.nodes {
			for _, rm := range rooms {
				if prefix == sdn.NoScopedMaps {
					for _, e := range n.r.MapEntries(rm.w.name) {
						if e.Owner != n.id {
							stored++
						}
					}
				} else {
					_, st, _ := sdn.ScopedMap(n.r, rm.w.name)
					stored += st
				}
			}
		}
		return cost{float64(bytes) / window.Seconds(), float64(stored), float64(msgs) / window.Seconds()}
	}
	for _, seed := range testutil.Seeds(900, 2) {
		sc, gl := run(seed, sdn.DefaultScopedMapPrefix), run(seed, sdn.NoScopedMaps)
		t.Logf("seed %d: scoped: %.0f B/s, %.0f msgs/s, %.0f entries stored; global: %.0f B/s, %.0f msgs/s, %.0f entries stored",
			seed, sc.bytesPerSec, sc.msgsPerSec, sc.stored, gl.bytesPerSec, gl.msgsPerSec, gl.stored)
		if sc.bytesPerSec >= gl.bytesPerSec || sc.stored >= gl.stored {
			t.Fatalf("seed %d: scoped maps cost no less than global ones", seed)
		}
	}
}
