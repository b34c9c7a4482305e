package sdn_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/sdn"
)

type entryKey struct {
	owner sdn.NodeID
	key   string
}

// mapWorld tracks what every node's subscription to one map shows (from
// events alone) and what the owners wrote.
type mapWorld struct {
	s     *simNet
	name  string
	views map[*simNode]map[entryKey]string
	truth map[entryKey]string
	// spurious counts deletions of entries whose owner is alive and still
	// has them, while stable is set: soft state must not flap.
	stable   bool
	spurious int
	// lastDelete is when any subscriber last saw an entry of the owner
	// deleted.
	lastDelete map[sdn.NodeID]time.Time
}

func newMapWorld(s *simNet, name string) *mapWorld {
	w := &mapWorld{s: s, name: name, views: map[*simNode]map[entryKey]string{}, truth: map[entryKey]string{},
		lastDelete: map[sdn.NodeID]time.Time{}}
	prev := s.onEvent
	s.onEvent = func(n *simNode, e sdn.Event) {
		if prev != nil {
			prev(n, e)
		}
		v := w.views[n]
		if v == nil {
			return
		}
		switch e := e.(type) {
		case sdn.EventMapSet:
			if e.Map == name {
				v[entryKey{e.Owner, e.Key}] = string(e.Value)
			}
		case sdn.EventMapDelete:
			if e.Map == name {
				if _, ok := v[entryKey{e.Owner, e.Key}]; !ok {
					s.tb.Errorf("node %d: delete of unknown entry %d/%q", n.id, e.Owner, e.Key)
				}
				delete(v, entryKey{e.Owner, e.Key})
				w.lastDelete[e.Owner] = s.sim.Now()
				if _, live := w.truth[entryKey{e.Owner, e.Key}]; live && w.stable && s.byID[e.Owner].alive {
					w.spurious++
				}
			}
		}
	}
	return w
}

func (w *mapWorld) subscribe(n *simNode) {
	w.views[n] = map[entryKey]string{}
	n.r.SubscribeMap(w.s.sim.Now(), w.name)
	n.drain()
}

func (w *mapWorld) set(n *simNode, key, value string) {
	if err := n.r.MapSet(w.s.sim.Now(), w.name, key, []byte(value)); err != nil {
		w.s.tb.Fatal(err)
	}
	w.truth[entryKey{n.id, key}] = value
	n.drain()
}

// diff describes how n's view differs from want ("" when equal); the view
// from events must also match the Router's own MapEntries.
func (w *mapWorld) diff(n *simNode, want map[entryKey]string) string {
	v := w.views[n]
	if maps.Equal(v, want) {
		snap := map[entryKey]string{}
		for _, e := range n.r.MapEntries(w.name) {
			snap[entryKey{e.Owner, e.Key}] = string(e.Value)
		}
		if !maps.Equal(v, snap) {
			return fmt.Sprintf("node %d: events show %d entries, MapEntries %d", n.id, len(v), len(snap))
		}
		return ""
	}
	var missing, extra []entryKey
	for k, val := range want {
		if got, ok := v[k]; !ok || got != val {
			missing = append(missing, k)
		}
	}
	for k := range v {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	slices.SortFunc(missing, func(a, b entryKey) int { return int(a.owner) - int(b.owner) })
	slices.SortFunc(extra, func(a, b entryKey) int { return int(a.owner) - int(b.owner) })
	return fmt.Sprintf("node %d: %d entries, %d missing/wrong (first %v), %d extra (first %v)", n.id, len(v), len(missing), first(missing), len(extra), first(extra))
}

func first(s []entryKey) any {
	if len(s) == 0 {
		return nil
	}
	return s[0]
}

// converged waits up to d for every alive subscriber to see want.
func (w *mapWorld) converged(d time.Duration, want func() map[entryKey]string) (time.Duration, string) {
	t0 := w.s.sim.Now()
	var bad string
	for {
		bad = ""
		wm := want()
		for _, n := range w.s.nodes {
			if _, sub := w.views[n]; sub && n.alive {
				if bad = w.diff(n, wm); bad != "" {
					break
				}
			}
		}
		if bad == "" || w.s.sim.Now().Sub(t0) >= d {
			return w.s.sim.Now().Sub(t0), bad
		}
		w.s.sim.RunFor(250 * time.Millisecond)
	}
}

func (w *mapWorld) aliveTruth() map[entryKey]string {
	m := map[entryKey]string{}
	for k, v := range w.truth {
		if w.s.byID[k.owner].alive {
			m[k] = v
		}
	}
	return m
}

// TestMaps: 100 nodes each write 10 entries and every subscriber sees all
// 1000; a dead node's entries vanish everywhere within the soft-state
// timeout; a node that leaves takes its entries along at once; after a
// partition heals the maps converge again.
func TestMaps(t *testing.T) {
	t.Parallel()
	for _, seed := range testutil.Seeds(500, 3) {
		s := regionNet(t, seed, false, true)
		w := newMapWorld(s, "rooms")
		w.stable = true
		s.startAll()
		s.sim.RunFor(3 * time.Second)
		for i, n := range s.nodes {
			if i%2 == 0 {
				w.subscribe(n)
			}
		}
		for _, n := range s.nodes {
			for k := range 10 {
				s.sim.After(s.sim.Duration(0, 2*time.Second), func(time.Time) {
					w.set(n, fmt.Sprintf("k%d", k), fmt.Sprintf("v%d@%d", k, n.id))
				})
			}
		}
		s.sim.RunFor(2 * time.Second)
		for i, n := range s.nodes {
			if i%2 == 1 { // late subscribers get the existing entries
				w.subscribe(n)
			}
		}
		if took, bad := w.converged(10*time.Second, w.aliveTruth); bad != "" {
			t.Fatalf("seed %d: maps not converged: %s", seed, bad)
		} else if len(w.truth) != 1000 {
			t.Fatalf("seed %d: %d entries written", seed, len(w.truth))
		} else {
			t.Logf("seed %d: 1000 entries everywhere %v after the last write", seed, took)
		}

		// A node dies: its entries vanish within the soft-state timeout
		// (counted from its last gossip, up to one period before it died).
		victim := s.nodes[s.sim.Rand.IntN(len(s.nodes))]
		for !s.connectedWithout(victim) {
			victim = s.nodes[s.sim.Rand.IntN(len(s.nodes))]
		}
		s.sim.RunFor(s.sim.Duration(0, time.Second))
		s.kill(victim)
		killedAt := s.sim.Now()
		if took, bad := w.converged(sdn.DefaultSoftStateTimeout+time.Second, w.aliveTruth); bad != "" {
			t.Fatalf("seed %d: entries of dead %d still there after %v: %s", seed, victim.id, took, bad)
		}
		// The last deletion, to the nanosecond, is within the soft-state
		// timeout of the death.
		if took := w.lastDelete[victim.id].Sub(killedAt); took <= 0 || took > sdn.DefaultSoftStateTimeout {
			t.Fatalf("seed %d: entries of dead %d vanished %v after its death, want within %v", seed, victim.id, took, sdn.DefaultSoftStateTimeout)
		} else {
			t.Logf("seed %d: dead node's entries gone everywhere %v after its death", seed, took)
		}

		// A node leaves: its entries go at once (no timeout).
		leaver := s.nodes[s.sim.Rand.IntN(len(s.nodes))]
		for !leaver.alive {
			leaver = s.nodes[s.sim.Rand.IntN(len(s.nodes))]
		}
		for k := range w.truth {
			if k.owner == leaver.id {
				delete(w.truth, k)
			}
		}
		leaver.r.Close(s.sim.Now())
		leaver.drain()
		if took, bad := w.converged(2*time.Second, w.aliveTruth); bad != "" {
			t.Fatalf("seed %d: entries of leaver %d still there after %v: %s", seed, leaver.id, took, bad)
		}

		if w.spurious > 0 {
			t.Fatalf("seed %d: %d entries of live owners were deleted", seed, w.spurious)
		}
		w.stable = false

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
		for _, n := range s.nodes {
			if n.alive && n != leaver && s.sim.Chance(0.2) {
				w.set(n, "late", fmt.Sprintf("written in the partition by %d", n.id))
			}
		}
		s.sim.RunFor(sdn.DefaultSoftStateTimeout + time.Second)
		// Each side has expired the other's owners by now.
		side := func(n *simNode) bool { return n.id.Zone() == 0 }
		for _, n := range s.nodes {
			if !n.alive || w.views[n] == nil {
				continue
			}
			for k := range w.views[n] {
				if o := s.byID[k.owner]; side(o) != side(n) {
					t.Fatalf("seed %d: node %d still has %d's entry across the partition", seed, n.id, k.owner)
				}
			}
		}
		for _, e := range cut {
			s.cut(e, false)
		}
		// Links come back after their redial backoff (at most
		// DefaultDialBackoffMax plus half of it as jitter).
		if took, bad := w.converged(25*time.Second, w.aliveTruth); bad != "" {
			t.Fatalf("seed %d: not converged 25s after the partition healed: %s", seed, bad)
		} else {
			t.Logf("seed %d: converged %v after the partition healed", seed, took)
		}
	}
}

func (s *simNet) connectedWithout(n *simNode) bool {
	n.alive = false
	ok := s.connected()
	n.alive = true
	return ok
}

// TestMapBounds: a node refuses writes beyond its bounds, and drops and
// counts what neighbours send beyond them: an owner with too many
// entries or too large a value, and owners beyond MaxOwners.
func TestMapBounds(t *testing.T) {
	s := newSimNet(t, 9)
	// Node 1 (small bounds) linked to each of nodes 2..6, which are also
	// linked in a chain (so that they do not depend on the hub).
	hub := s.addNode(1)
	var spokes []*simNode
	for i := 2; i <= 6; i++ {
		n := s.addNode(sdn.NodeID(i))
		s.connect(hub.id, n.id, 5*time.Millisecond, 0, 0)
		if i > 2 {
			s.connect(n.id-1, n.id, 5*time.Millisecond, 0, 0)
		}
		spokes = append(spokes, n)
	}
	s.tune = func(c *sdn.Config) {
		if c.ID == hub.id {
			c.MaxEntries, c.MaxValueLen, c.MaxOwners = 3, 8, 3
		}
	}
	s.startAll()
	s.sim.RunFor(3 * time.Second)
	now := s.sim.Now()

	// Local writes.
	for i := range 3 {
		if err := hub.r.MapSet(now, "m", fmt.Sprint(i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, key string
		value     []byte
		want      error
	}{
		{"m", "3", []byte("v"), sdn.ErrMapFull},
		{"m", "0", []byte("123456789"), sdn.ErrValueTooBig},
		{"m", string(make([]byte, 256)), nil, sdn.ErrKeyTooLong},
		{strings.Repeat("n", 256), "k", nil, sdn.ErrKeyTooLong},
		{"", "k", nil, sdn.ErrKeyTooLong},
		{"\x00sys", "k", nil, sdn.ErrReserved},
	} {
		if err := hub.r.MapSet(now, tc.name, tc.key, tc.value); !errors.Is(err, tc.want) {
			t.Errorf("MapSet(%.8q, %.8q, %d bytes) = %v, want %v", tc.name, tc.key, len(tc.value), err, tc.want)
		}
	}
	// Replacing an entry at the limit is fine.
	if err := hub.r.MapSet(now, "m", "0", []byte("12345678")); err != nil {
		t.Fatal(err)
	}
	hub.drain()

	// Remote owners: 2 writes one entry (kept), 3 too many entries, 4 a
	// value too large (both dropped); 5 and 6 write one entry each, but
	// the hub keeps only 3 owners (itself and two others).
	write := func(n *simNode, count, size int) {
		for i := range count {
			if err := n.r.MapSet(s.sim.Now(), "m", fmt.Sprint(i), make([]byte, size)); err != nil {
				t.Fatal(err)
			}
		}
		n.drain()
	}
	write(spokes[0], 1, 1)
	s.sim.RunFor(time.Second)
	write(spokes[1], 4, 1)
	write(spokes[2], 1, 9)
	s.sim.RunFor(time.Second)
	drops := hub.r.Stats().LimitDrops
	write(spokes[3], 1, 1)
	write(spokes[4], 1, 1)
	s.sim.RunFor(3 * time.Second)

	owners := map[sdn.NodeID]int{}
	for _, e := range hub.r.MapEntries("m") {
		owners[e.Owner]++
	}
	if owners[hub.id] != 3 || owners[spokes[0].id] != 1 || owners[spokes[1].id] != 0 || owners[spokes[2].id] != 0 {
		t.Fatalf("hub's entries by owner: %v", owners)
	}
	// Of 5 and 6 exactly one fits (3 and 4, refused, hold no slot).
	if n := owners[spokes[3].id] + owners[spokes[4].id]; n != 1 || len(owners) != 3 {
		t.Fatalf("hub keeps %d owners (%v), bound 3", len(owners), owners)
	}
	if drops == 0 || hub.r.Stats().LimitDrops == 0 {
		t.Fatalf("refused state not counted: %d then %d", drops, hub.r.Stats().LimitDrops)
	}
	// Every other node, with the default bounds, has everything.
	if got := len(spokes[4].r.MapEntries("m")); got != 3+1+4+1+1+1 {
		t.Fatalf("a spoke has %d entries, want 11", got)
	}
}
