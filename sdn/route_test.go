package sdn_test

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/sdn"
)

// routingModes are the two ways to route to other zones' nodes: one
// route per zone (the default; tables scale with zones), and one per node
// (FlatRoutes; every route the cheapest path).
var routingModes = []struct {
	name string
	flat bool
}{{"zones", false}, {"flat", true}}

// TestRoutingConverges: 100 nodes over 3 zones of a region model (see
// topology); within 30 virtual seconds every node routes to every other,
// with no loop at any step. Each route is checked against plain Dijkstra
// over the measured link costs (dijkstraGap). With FlatRoutes every route
// is within 10 % of it, and each table holds a route per node and per
// other zone. By default the tables scale with zones (a route per node of
// the node's own zone and per other zone, nothing else), and routes are
// within 10 % of Dijkstra inside a zone and wherever a route enters the
// destination's zone where a cheapest path does; a route that enters it
// elsewhere (one route per zone cannot enter each destination's zone at
// its own best node) is within 10 % of the best path through the zone's
// nearest entry (routeQuality), and such pairs are counted and logged,
// with how many no choice of entry could have served. It stays so at 20
// and 30 seconds.
func TestRoutingConverges(t *testing.T) {
	t.Parallel()
	for _, mode := range routingModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			for _, seed := range testutil.Seeds(100, 5) {
				s := regionNet(t, seed, mode.flat, true)
				s.checkLoops = true
				s.startAll()
				var bad string
				var gap dijkstraGap
				ok := false
				for range 60 {
					s.sim.RunFor(500 * time.Millisecond)
					if s.loopErr != nil {
						t.Fatalf("seed %d: %v", seed, s.loopErr)
					}
					if gap, bad = s.routesWithin(0.10); bad == "" {
						ok = true
						t.Logf("seed %d: converged at %v after %d steps; %v", seed, s.sim.Now().Sub(testutil.Epoch), s.sim.Steps(), gap)
						break
					}
				}
				if !ok {
					t.Fatalf("seed %d: not converged in 30s: %s", seed, bad)
				}
				// And it stays converged: at 20s and 30s routes are again
				// within 10 % once the latest measurement has spread (link
				// costs keep moving with the measured loss, and a change
				// takes a few round trips to reach every table: allow one
				// second).
				for _, at := range []time.Duration{20 * time.Second, 30 * time.Second} {
					s.sim.RunUntil(testutil.Epoch.Add(at))
					gap, bad := s.routesWithin(0.10)
					for i := 0; bad != "" && i < 10; i++ {
						s.sim.RunFor(100 * time.Millisecond)
						gap, bad = s.routesWithin(0.10)
					}
					if bad != "" {
						t.Fatalf("seed %d: at %v: %s", seed, at, bad)
					}
					if s.loopErr != nil {
						t.Fatalf("seed %d: %v", seed, s.loopErr)
					}
					t.Logf("seed %d at %v: %v", seed, at, gap)
				}
				// Checked once settled: with FlatRoutes a node reaches
				// another zone's node by the zone route until the node
				// route arrives.
				if bad := s.tableShape(); bad != "" {
					t.Fatalf("seed %d: %s", seed, bad)
				}
				bad = s.pathsMatch()
				for i := 0; bad != "" && i < 10; i++ {
					s.sim.RunFor(100 * time.Millisecond)
					bad = s.pathsMatch()
				}
				if bad != "" {
					t.Fatalf("seed %d: %s", seed, bad)
				}
			}
		})
	}
}

// TestLossyLinkAvoided: a direct link with 20 % loss loses to a lossless
// path of twice its RTT; without the loss the direct link wins (so the
// test fails if loss stops counting).
func TestLossyLinkAvoided(t *testing.T) {
	for _, tc := range []struct {
		name    string
		loss    float64
		wantVia bool
	}{{"loss=20%", 0.2, true}, {"lossless", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, seed := range testutil.Seeds(200, 3) {
				s := newSimNet(t, seed)
				a, b, c := s.addNode(1), s.addNode(2), s.addNode(3)
				s.connect(a.id, b.id, 10*time.Millisecond, time.Millisecond, tc.loss)
				s.connect(a.id, c.id, 10*time.Millisecond, time.Millisecond, 0)
				s.connect(c.id, b.id, 10*time.Millisecond, time.Millisecond, 0)
				s.checkLoops = true
				s.startAll()
				s.sim.RunFor(10 * time.Second)
				for range 40 {
					s.sim.RunFor(500 * time.Millisecond)
					for _, p := range [][2]*simNode{{a, b}, {b, a}} {
						next, ok := p[0].r.Route(p[1].id)
						if !ok {
							t.Fatalf("seed %d: %d has no route to %d", seed, p[0].id, p[1].id)
						}
						if via := next == c.id; via != tc.wantVia {
							t.Fatalf("seed %d t=%v: %d→%d next hop %d, want via %d: %v (neighbours %+v)", seed,
								s.sim.Now().Sub(testutil.Epoch), p[0].id, p[1].id, next, c.id, tc.wantVia, p[0].r.Neighbours())
						}
					}
				}
				if s.loopErr != nil {
					t.Fatal(s.loopErr)
				}
			}
		})
	}
}

// connected reports whether every zone's alive nodes are connected among
// themselves over uncut links, and all alive nodes with each other.
func (s *simNet) connected() bool {
	adj := map[*simNode][]*simNode{}
	for _, e := range s.edges {
		a, b := s.byID[e.A], s.byID[e.B]
		if e.cut || !a.alive || !b.alive {
			continue
		}
		adj[a] = append(adj[a], b)
		adj[b] = append(adj[b], a)
	}
	reach := func(from *simNode, ok func(*simNode) bool) int {
		seen := map[*simNode]bool{from: true}
		stack := []*simNode{from}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, m := range adj[n] {
				if !seen[m] && ok(m) {
					seen[m] = true
					stack = append(stack, m)
				}
			}
		}
		return len(seen)
	}
	var alive []*simNode
	perZone := map[uint8][]*simNode{}
	for _, n := range s.nodes {
		if n.alive {
			alive = append(alive, n)
			perZone[uint8(n.id.Zone())] = append(perZone[uint8(n.id.Zone())], n)
		}
	}
	if len(alive) == 0 || reach(alive[0], func(*simNode) bool { return true }) != len(alive) {
		return false
	}
	for z, ns := range perZone {
		if reach(ns[0], func(m *simNode) bool { return uint8(m.id.Zone()) == z }) != len(ns) {
			return false
		}
	}
	return true
}

// fail kills frac of the nodes and cuts frac2 of the links, at random but
// keeping every zone (and the whole) connected.
func (s *simNet) fail(fracNodes, fracLinks float64) (killed []*simNode, cut []*simEdge) {
	rnd := s.sim.Rand
	want := int(fracNodes * float64(len(s.nodes)))
	for tries := 0; len(killed) < want && tries < 10000; tries++ {
		n := s.nodes[rnd.IntN(len(s.nodes))]
		if !n.alive {
			continue
		}
		n.alive = false
		if !s.connected() {
			n.alive = true
			continue
		}
		n.alive = true
		s.kill(n)
		killed = append(killed, n)
	}
	keys := s.sortedEdges()
	want = int(fracLinks * float64(len(keys)))
	for tries := 0; len(cut) < want && tries < 10000; tries++ {
		e := s.edges[keys[rnd.IntN(len(keys))]]
		if e.cut || !s.byID[e.A].alive || !s.byID[e.B].alive {
			continue
		}
		e.cut = true
		if !s.connected() {
			e.cut = false
			continue
		}
		s.cut(e, true)
		cut = append(cut, e)
	}
	return killed, cut
}

// TestRoutingReconverges: after 10 % of the nodes die and 5 % of the links
// are cut, routes are again complete and within 10 % (as in
// TestRoutingConverges, in both modes) within 10 virtual seconds, with no
// routing loop at any step.
func TestRoutingReconverges(t *testing.T) {
	t.Parallel()
	for _, mode := range routingModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			for _, seed := range testutil.Seeds(300, 3) {
				s := regionNet(t, seed, mode.flat, true)
				s.checkLoops = true
				s.startAll()
				// Converged before the faults (allowing, as TestRoutingConverges
				// does, one second for the latest measurement to spread).
				s.sim.RunFor(15 * time.Second)
				_, bad := s.routesWithin(0.10)
				for i := 0; bad != "" && i < 10; i++ {
					s.sim.RunFor(100 * time.Millisecond)
					_, bad = s.routesWithin(0.10)
				}
				if bad != "" {
					t.Fatalf("seed %d: not converged before the faults: %s", seed, bad)
				}
				killed, cut := s.fail(0.10, 0.05)
				if len(killed) != 10 || len(cut) == 0 {
					t.Fatalf("seed %d: killed %d, cut %d", seed, len(killed), len(cut))
				}
				t0 := s.sim.Now()
				for {
					s.sim.RunFor(250 * time.Millisecond)
					if s.loopErr != nil {
						t.Fatalf("seed %d: %v", seed, s.loopErr)
					}
					var gap dijkstraGap
					if gap, bad = s.routesWithin(0.10); bad == "" {
						t.Logf("seed %d: reconverged %v after killing %d nodes and cutting %d links; %v", seed, s.sim.Now().Sub(t0), len(killed), len(cut), gap)
						break
					}
					if testing.Verbose() {
						t.Logf("t+%v: %s", s.sim.Now().Sub(t0), bad)
					}
					if s.sim.Now().Sub(t0) >= 10*time.Second {
						t.Fatalf("seed %d: not reconverged within 10s: %s", seed, bad)
					}
				}
				// Keep checking loops while the network settles.
				s.sim.RunFor(5 * time.Second)
				if s.loopErr != nil {
					t.Fatalf("seed %d: %v", seed, s.loopErr)
				}
			}
		})
	}
}

// TestRouteHysteresis: two paths whose costs cross back and forth by
// less than SwitchGain (one link's RTT toggles between 5 and 8ms every
// 4s, enough to republish its cost) do not make the route flap; with the hysteresis turned off the same scenario
// switches on every toggle (so the test can tell).
func TestRouteHysteresis(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tune     func(*sdn.Config)
		min, max int
	}{
		{"default", nil, 0, 1},
		{"off", func(c *sdn.Config) { c.SwitchGain, c.Sticky = 1e-9, time.Nanosecond }, 5, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, seed := range testutil.Seeds(800, 3) {
				s := newSimNet(t, seed)
				s.tune = tc.tune
				// Path A-B-D costs 38.5ms; A-C-D 37 or 40ms as the C-D link's
				// RTT toggles between 5 and 8ms (each link adds 1ms).
				a, b, c, d := s.addNode(1), s.addNode(2), s.addNode(3), s.addNode(4)
				s.connect(a.id, b.id, 9*time.Millisecond, 0, 0)
				s.connect(b.id, d.id, 9250*time.Microsecond, 0, 0)
				s.connect(a.id, c.id, 15*time.Millisecond, 0, 0)
				cd := s.connect(c.id, d.id, 2500*time.Microsecond, 0, 0)
				s.checkLoops = true
				s.startAll()
				s.sim.Every(4*time.Second, func(time.Time) bool {
					if cd.ab.Latency == 2500*time.Microsecond {
						cd.ab.Latency, cd.ba.Latency = 4*time.Millisecond, 4*time.Millisecond
					} else {
						cd.ab.Latency, cd.ba.Latency = 2500*time.Microsecond, 2500*time.Microsecond
					}
					return true
				})
				s.sim.RunFor(10 * time.Second)
				prev, _ := a.r.Route(d.id)
				changes := 0
				for range 500 {
					s.sim.RunFor(100 * time.Millisecond)
					next, ok := a.r.Route(d.id)
					if !ok {
						t.Fatalf("seed %d: no route", seed)
					}
					if next != prev {
						changes++
						prev = next
					}
				}
				t.Logf("seed %d: %d route changes in 50s", seed, changes)
				if changes < tc.min || changes > tc.max {
					t.Fatalf("seed %d: %d route changes in 50s, want %d..%d", seed, changes, tc.min, tc.max)
				}
				if s.loopErr != nil {
					t.Fatal(s.loopErr)
				}
			}
		})
	}
}

// tableShape checks that routing tables scale with zones: each node holds
// a route to every other node of its own zone and to every other zone,
// and nothing else (no route to a node of another zone). With FlatRoutes
// it holds a route to every other node and every other zone.
func (s *simNet) tableShape() string {
	perZone := map[sdn.ZoneID]int{}
	alive := 0
	for _, n := range s.nodes {
		if n.alive {
			perZone[n.id.Zone()]++
			alive++
		}
	}
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		var nodes, zones int
		for _, ri := range n.r.Routes() {
			switch {
			case ri.Next == 0:
				return fmt.Sprintf("node %d: unreachable entry %+v", n.id, ri)
			case ri.Node != 0 && ri.Zone != n.id.Zone() && !s.flat:
				return fmt.Sprintf("node %d (zone %d): route to node %d of zone %d", n.id, n.id.Zone(), ri.Node, ri.Zone)
			case ri.Node != 0:
				nodes++
			case ri.Zone == n.id.Zone():
				return fmt.Sprintf("node %d: route to its own zone", n.id)
			default:
				zones++
			}
		}
		wantNodes := perZone[n.id.Zone()] - 1
		if s.flat {
			wantNodes = alive - 1
		}
		if nodes != wantNodes || zones != len(perZone)-1 {
			return fmt.Sprintf("node %d: %d node and %d zone routes, want %d and %d", n.id, nodes, zones, wantNodes, len(perZone)-1)
		}
	}
	return ""
}

// pathsMatch checks the path vectors: each route's Path is the walk of
// the next hops from its Next to its destination (for a zone route, to
// the first node of the zone).
func (s *simNet) pathsMatch() string {
	type key struct {
		node sdn.NodeID
		zone sdn.ZoneID
	}
	tables := map[*simNode]map[key]sdn.RouteInfo{}
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		tab := map[key]sdn.RouteInfo{}
		for _, ri := range n.r.Routes() {
			tab[key{ri.Node, ri.Zone}] = ri
		}
		tables[n] = tab
	}
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		for k, ri := range tables[n] {
			if ri.Next == 0 {
				continue
			}
			var walk []sdn.NodeID
			cur := n
			for len(walk) <= len(s.nodes) {
				r, ok := tables[cur][k]
				if !ok || r.Next == 0 || s.byID[r.Next] == nil {
					return fmt.Sprintf("node %d, route %+v: walk %v ends at %d", n.id, ri, walk, cur.id)
				}
				cur = s.byID[r.Next]
				walk = append(walk, cur.id)
				if k.node != 0 && cur.id == k.node || k.node == 0 && cur.id.Zone() == k.zone {
					break
				}
			}
			if !slices.Equal(walk, ri.Path) {
				return fmt.Sprintf("node %d: route to %+v has path %v, next hops go %v", n.id, k, ri.Path, walk)
			}
		}
	}
	return ""
}

// routesWithin checks every alive pair against plain Dijkstra
// (dijkstraGap) and routes into other zones against the per-zone optimum
// (routeQuality), both with the given slack. It returns the comparison
// with Dijkstra and a description of the first failure, or "".
func (s *simNet) routesWithin(slack float64) (dijkstraGap, string) {
	g := s.graph()
	gap := s.dijkstraGap(g, slack)
	if gap.fails > 0 {
		return gap, fmt.Sprintf("%d pairs fail against Dijkstra, first %s", gap.fails, gap.fail)
	}
	if s.flat {
		// Every route must be within the slack: no entry excused.
		if gap.elsewhere > 0 {
			return gap, fmt.Sprintf("%d pairs over Dijkstra +%.0f%%, first %s", gap.elsewhere, 100*slack, gap.firstElsewhere)
		}
		return gap, ""
	}
	return gap, s.routeQuality(g, slack)
}

// dijkstraGap compares every route with the cheapest path over the whole
// measured graph: plain Dijkstra, zones ignored. A route's cost is the sum
// of the measured costs of the links its next hops take.
type dijkstraGap struct {
	slack       float64
	pairs, over [2]int     // [same zone, other zone]: pairs, and those over the slack
	worst       [2]float64 // worst cost/Dijkstra - 1
	// elsewhere counts the pairs over the slack whose route enters the
	// destination's zone at a node no cheapest path enters it at: the one
	// deviation zone routes allow (see below). unservable counts those of
	// them whose (source, zone) no single entry could serve within the
	// slack; groups and unservableGroups count (source, other zone)
	// groups and those no single entry could serve.
	elsewhere, unservable    int
	firstElsewhere           string
	groups, unservableGroups int
	fails                    int    // pairs with no route or over the slack otherwise
	fail                     string // the first of them
}

// dijkstraGap checks every alive pair against plain Dijkstra with the
// given slack. Inside a zone, and wherever a route to another zone Z
// enters Z at a node where a cheapest path enters it, the route must be
// within the slack: the latter follows from the per-zone guarantee of
// routeQuality, since the route then costs at most (1+slack) times the
// cheapest path to that entry plus the cheapest path inside Z from it to
// D, and that sum is then the Dijkstra cost. What remains are routes to other zones that
// enter elsewhere: a zone route is one next hop for all of Z, so from a
// source S every destination D in Z is entered at the same node (the
// nearest), whereas the cheapest paths to two nodes of Z may enter it at
// different nodes. Those are counted, and for each (S, Z) the test also
// works out whether any single entry E could have served all of Z within
// the slack (max over D of (cheapest path from S to E outside Z +
// cheapest path from E to D inside Z) / Dijkstra(S, D)); where none
// could, no table with one route per zone can meet the slack, whatever
// its choice of entry.
func (s *simNet) dijkstraGap(g *graph, slack float64) dijkstraGap {
	r := dijkstraGap{slack: slack}
	alive := func(i int) bool { return s.nodes[i].alive }
	glob := make([][]float64, len(s.nodes))   // glob[d][s]
	inZone := make([][]float64, len(s.nodes)) // inZone[d][e], through d's zone only
	zones := map[sdn.ZoneID][]int{}
	for _, d := range s.nodes {
		if !d.alive {
			continue
		}
		z := d.id.Zone()
		zones[z] = append(zones[z], d.idx)
		glob[d.idx] = g.dijkstraTo([]int{d.idx}, alive)
		inZone[d.idx] = g.dijkstraTo([]int{d.idx}, func(i int) bool { return alive(i) && s.nodes[i].id.Zone() == z })
	}
	// outside[z][e][s]: cheapest path from s to e, a node of z with a link
	// leaving z, through nodes outside z.
	outside := map[sdn.ZoneID]map[int][]float64{}
	for z, members := range zones {
		outside[z] = map[int][]float64{}
		for _, e := range members {
			for j := range g.cost[e] {
				if s.nodes[j].id.Zone() != z {
					outside[z][e] = g.dijkstraTo([]int{e}, func(i int) bool { return alive(i) && s.nodes[i].id.Zone() != z })
					break
				}
			}
		}
	}
	zoneIDs := slices.Sorted(maps.Keys(zones))
	for _, src := range s.nodes {
		if !src.alive {
			continue
		}
		for _, z := range zoneIDs {
			members := zones[z]
			cross := z != src.id.Zone()
			k := 0
			servable := true
			if cross {
				k = 1
				r.groups++
				bound := math.Inf(1)
				for e, out := range outside[z] {
					w := 0.0
					for _, d := range members {
						w = max(w, (out[src.idx]+inZone[d][e])/glob[d][src.idx])
					}
					bound = min(bound, w)
				}
				if servable = bound <= 1+slack; !servable {
					r.unservableGroups++
				}
			}
			for _, d := range members {
				dst := s.nodes[d]
				if dst == src {
					continue
				}
				path, ok, _ := s.walk(src, dst)
				if !ok {
					r.fails++
					if r.fail == "" {
						r.fail = fmt.Sprintf("%d→%d: no route", src.id, dst.id)
					}
					continue
				}
				var got float64
				entry := -1
				for i := 0; i+1 < len(path); i++ {
					got += g.cost[path[i].idx][path[i+1].idx]
					if entry < 0 && path[i+1].id.Zone() == z {
						entry = path[i+1].idx
					}
				}
				want := glob[d][src.idx]
				r.pairs[k]++
				r.worst[k] = max(r.worst[k], got/want-1)
				if got <= want*(1+slack)+1 {
					continue
				}
				r.over[k]++
				// Does a cheapest path enter z where the route does?
				if out, ok := outside[z][entry]; cross && (!ok || out[src.idx]+inZone[d][entry] > want*(1+1e-9)+1) {
					r.elsewhere++
					if r.firstElsewhere == "" {
						r.firstElsewhere = fmt.Sprintf("%d→%d: cost %.0f > Dijkstra %.0f (+%.1f%%), %d hops", src.id, dst.id, got, want, 100*(got/want-1), len(path)-1)
					}
					if !servable {
						r.unservable++
					}
					continue
				}
				r.fails++
				if r.fail == "" {
					r.fail = fmt.Sprintf("%d→%d: cost %.0f > Dijkstra %.0f (+%.1f%%), %d hops", src.id, dst.id, got, want, 100*(got/want-1), len(path)-1)
				}
			}
		}
	}
	return r
}

func (r dijkstraGap) String() string {
	return fmt.Sprintf("against plain Dijkstra: same zone %d/%d pairs over +%.0f%% (worst %+.1f%%); "+
		"other zones %d/%d over (worst %+.1f%%), %d of them entering the zone where no cheapest path does, %d from a source "+
		"no single entry serves within +%.0f%% (%d of %d source-zone groups)",
		r.over[0], r.pairs[0], 100*r.slack, 100*r.worst[0], r.over[1], r.pairs[1], 100*r.worst[1],
		r.elsewhere, r.unservable, 100*r.slack, r.unservableGroups, r.groups)
}
