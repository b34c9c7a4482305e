package sdn_test

import (
	"container/heap"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/sdn"
)

// simNet runs Routers on testutil's simulated network: the driver of the
// sans-IO contract, in virtual time. Every Handle call is followed by
// draining every Poll and scheduling a wake-up at PollTimeout.
type simNet struct {
	tb     testing.TB
	sim    *testutil.Sim
	net    *testutil.Net
	nodes  []*simNode
	byID   map[sdn.NodeID]*simNode
	edges  map[[2]sdn.NodeID]*simEdge
	secret []byte
	tune   func(*sdn.Config)
	// flat starts every node with Config.FlatRoutes, and makes the
	// routing checks demand the cheapest path to every node.
	flat bool

	checkLoops bool
	loopErr    error
	onData     func(n *simNode, d sdn.Delivery)
	onEvent    func(n *simNode, e sdn.Event)
	// tap sees every Transmit before it is sent.
	tap       func(n *simNode, t sdn.Transmit)
	logEvents bool

	walkMark []uint64
	walkGen  uint64
}

type simNode struct {
	net    *simNet
	nn     *testutil.NetNode
	idx    int
	id     sdn.NodeID
	r      *sdn.Router
	alive  bool
	routeV uint64
	secret []byte
}

// simEdge is a testutil.Edge with the names the tests use.
type simEdge struct {
	*testutil.Edge
	ab, ba *testutil.Link
	cut    bool
}

func newSimNet(tb testing.TB, seed uint64) *simNet {
	sim := testutil.NewSim(tb, seed)
	return &simNet{
		tb:     tb,
		sim:    sim,
		net:    testutil.NewNet(sim),
		byID:   make(map[sdn.NodeID]*simNode),
		edges:  make(map[[2]sdn.NodeID]*simEdge),
		secret: []byte("cluster secret"),
	}
}

// regionNet is the 100-node network of the routing, pub/sub and map
// tests: 3 zones of the region model (see topology), lossy or not, with
// FlatRoutes or not; not started.
func regionNet(tb testing.TB, seed uint64, flat, lossy bool) *simNet {
	s := newSimNet(tb, seed)
	s.flat = flat
	s.topology([]int{33, 33, 34}, 60, 3, lossy)
	return s
}

func edgeKey(a, b sdn.NodeID) [2]sdn.NodeID {
	if a > b {
		a, b = b, a
	}
	return [2]sdn.NodeID{a, b}
}

// addNode declares a node; start creates the Routers once edges exist.
func (s *simNet) addNode(id sdn.NodeID) *simNode {
	n := &simNode{net: s, nn: s.net.AddNode(id), idx: len(s.nodes), id: id, secret: s.secret}
	s.nodes = append(s.nodes, n)
	s.byID[id] = n
	return n
}

// connect adds a symmetric link; the lower id dials.
func (s *simNet) connect(a, b sdn.NodeID, lat, jitter time.Duration, loss float64) *simEdge {
	te := s.net.Connect(a, b, lat, jitter, loss)
	e := &simEdge{Edge: te, ab: te.AB, ba: te.BA}
	s.edges[edgeKey(a, b)] = e
	return e
}

func (s *simNet) start(n *simNode) {
	cfg := sdn.Config{ID: n.id, Seeds: s.net.Seeds(n.id), Secret: n.secret, Seed: s.sim.Seed*1000 + uint64(n.idx), Listen: testutil.NetAddr(n.id).UDP}
	cfg.FlatRoutes = s.flat
	if s.tune != nil {
		s.tune(&cfg)
	}
	r, err := sdn.New(cfg, s.sim.Now())
	if err != nil {
		s.tb.Fatal(err)
	}
	n.r, n.alive = r, true
	n.nn.Start(r, r.HandleMessage, n.drain)
}

func (s *simNet) startAll() {
	for _, n := range s.nodes {
		s.start(n)
	}
}

func (s *simNet) sortedEdges() [][2]sdn.NodeID {
	var ks [][2]sdn.NodeID
	for _, e := range s.net.Edges() {
		ks = append(ks, [2]sdn.NodeID{e.A, e.B})
	}
	return ks
}

// kill stops a node: it processes nothing more and sends nothing.
func (s *simNet) kill(n *simNode) {
	n.alive = false
	n.nn.Kill()
}

func (s *simNet) cut(e *simEdge, down bool) {
	e.cut = down
	s.net.SetCut(e.Edge, down)
}

// drain polls the Router's outputs; testutil.Net schedules its wake-up.
func (n *simNode) drain() {
	s := n.net
	for {
		t, ok := n.r.PollTransmit()
		if !ok {
			break
		}
		if s.tap != nil {
			s.tap(n, t)
		}
		n.nn.Send(t.Link, t.Data)
	}
	for {
		d, ok := n.r.PollData()
		if !ok {
			break
		}
		if s.onData != nil {
			s.onData(n, d)
		}
	}
	for {
		e, ok := n.r.PollEvent()
		if !ok {
			break
		}
		n.handleEvent(e)
	}
	if s.checkLoops && n.r.RouteVersion() != n.routeV {
		n.routeV = n.r.RouteVersion()
		s.checkLoopsFrom(n)
	}
}

func (n *simNode) handleEvent(ev sdn.Event) {
	s := n.net
	if s.logEvents {
		s.sim.Logf("%d %T %v", n.id, ev, ev)
	}
	switch e := ev.(type) {
	case sdn.EventDial:
		n.nn.Dial(e.Addr)
	case sdn.EventClose:
		n.nn.CloseLink(e.Link)
	}
	if s.onEvent != nil {
		s.onEvent(n, ev)
	}
}

// walk follows next hops from src to dst. It returns the path (including
// both ends) and whether dst was reached; loop reports a cycle.
func (s *simNet) walk(src, dst *simNode) (path []*simNode, reached, loop bool) {
	if len(s.walkMark) < len(s.nodes) {
		s.walkMark = make([]uint64, len(s.nodes))
	}
	s.walkGen++
	cur := src
	path = append(path, cur)
	for cur != dst {
		s.walkMark[cur.idx] = s.walkGen
		if !cur.alive {
			return path, false, false
		}
		next, ok := cur.r.Route(dst.id)
		if !ok {
			return path, false, false
		}
		nx := s.byID[next]
		if nx == nil {
			return path, false, false
		}
		if s.walkMark[nx.idx] == s.walkGen {
			return append(path, nx), false, true
		}
		cur = nx
		path = append(path, cur)
	}
	return path, true, false
}

// checkLoopsFrom is the every-step loop check: a new cycle must go through
// the node whose next hops changed.
func (s *simNet) checkLoopsFrom(n *simNode) {
	if s.loopErr != nil || !n.alive {
		return
	}
	for _, d := range s.nodes {
		if d == n {
			continue
		}
		if path, _, loop := s.walk(n, d); loop {
			ids := make([]sdn.NodeID, len(path))
			for i, p := range path {
				ids[i] = p.id
			}
			s.loopErr = fmt.Errorf("t=%v routing loop toward %d: %v", s.sim.Now().Sub(testutil.Epoch), d.id, ids)
			return
		}
	}
}

// cost is the link cost a measured from a to b (0: not a neighbour).
func costs(n *simNode) map[sdn.NodeID]uint32 {
	m := make(map[sdn.NodeID]uint32)
	for _, nb := range n.r.Neighbours() {
		if nb.Cost > 0 && nb.Node != 0 {
			m[nb.Node] = nb.Cost
		}
	}
	return m
}

// graph is the measured topology: cost[i][j] as i measured it; rev[j]
// lists the i with a cost[i][j].
type graph struct {
	s    *simNet
	cost []map[int]float64
	rev  [][]int
}

func (s *simNet) graph() *graph {
	g := &graph{s: s, cost: make([]map[int]float64, len(s.nodes))}
	for i, n := range s.nodes {
		g.cost[i] = make(map[int]float64)
		if !n.alive {
			continue
		}
		for id, c := range costs(n) {
			if m := s.byID[id]; m != nil && m.alive {
				g.cost[i][m.idx] = float64(c)
			}
		}
	}
	g.rev = make([][]int, len(s.nodes))
	for i := range g.cost {
		for j := range g.cost[i] {
			g.rev[j] = append(g.rev[j], i)
		}
	}
	return g
}

// dijkstraTo returns the cheapest cost from every node to any of the
// targets, using only nodes allowed by via (targets are always allowed).
func (g *graph) dijkstraTo(targets []int, via func(i int) bool) []float64 {
	n := len(g.cost)
	dist := make([]float64, n)
	for i := range dist {
		dist[i] = math.Inf(1)
	}
	// Over reverse edges: dist[i] = min over j of cost[i][j] + dist[j].
	pq := &distHeap{}
	for _, t := range targets {
		dist[t] = 0
		heap.Push(pq, distItem{t, 0})
	}
	for pq.Len() > 0 {
		it := heap.Pop(pq).(distItem)
		if it.d > dist[it.i] {
			continue
		}
		for _, p := range g.rev[it.i] {
			if !via(p) {
				continue
			}
			if nd := it.d + g.cost[p][it.i]; nd < dist[p] {
				dist[p] = nd
				heap.Push(pq, distItem{p, nd})
			}
		}
	}
	return dist
}

type distItem struct {
	i int
	d float64
}
type distHeap []distItem

func (h distHeap) Len() int           { return len(h) }
func (h distHeap) Less(i, j int) bool { return h[i].d < h[j].d }
func (h distHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *distHeap) Push(x any)        { *h = append(*h, x.(distItem)) }
func (h *distHeap) Pop() any {
	o := *h
	x := o[len(o)-1]
	*h = o[:len(o)-1]
	return x
}

// routeQuality checks that every alive node routes to every alive node
// and that each route is within slack of the design's optimum:
//   - inside a zone: the cheapest path over that zone's nodes;
//   - to another zone Z: the cheapest path to the nearest node E of Z over
//     any nodes (the zone route), then the cheapest path from the entry
//     node E actually used to the destination inside Z.
//
// It returns a description of the first failure, or "".
func (s *simNet) routeQuality(g *graph, slack float64) string {
	alive := func(i int) bool { return s.nodes[i].alive }
	zones := map[sdn.ZoneID][]int{}
	for i, n := range s.nodes {
		if n.alive {
			zones[n.id.Zone()] = append(zones[n.id.Zone()], i)
		}
	}
	toZone := map[sdn.ZoneID][]float64{}
	for z, members := range zones {
		toZone[z] = g.dijkstraTo(members, alive)
	}
	inZone := map[int][]float64{} // destination -> distances inside its zone
	for _, d := range s.nodes {
		if !d.alive {
			continue
		}
		z := d.id.Zone()
		inZone[d.idx] = g.dijkstraTo([]int{d.idx}, func(i int) bool { return alive(i) && s.nodes[i].id.Zone() == z })
	}
	var fails []string
	for _, src := range s.nodes {
		if !src.alive {
			continue
		}
		for _, dst := range s.nodes {
			if !dst.alive || dst == src {
				continue
			}
			path, ok, loop := s.walk(src, dst)
			if !ok {
				fails = append(fails, fmt.Sprintf("%d→%d: no route (loop=%v, stuck at %d)", src.id, dst.id, loop, path[len(path)-1].id))
				continue
			}
			var got float64
			entry := -1
			for i := 0; i+1 < len(path); i++ {
				got += g.cost[path[i].idx][path[i+1].idx]
			}
			var want float64
			if src.id.Zone() == dst.id.Zone() {
				want = inZone[dst.idx][src.idx]
			} else {
				for _, p := range path {
					if p.id.Zone() == dst.id.Zone() {
						entry = p.idx
						break
					}
				}
				want = toZone[dst.id.Zone()][src.idx] + inZone[dst.idx][entry]
			}
			if got > want*(1+slack)+1 {
				fails = append(fails, fmt.Sprintf("%d→%d: cost %.0f > optimum %.0f (+%.0f%%), %d hops", src.id, dst.id, got, want, 100*(got/want-1), len(path)-1))
			}
		}
	}
	if len(fails) == 0 {
		return ""
	}
	return fmt.Sprintf("%d failures, first: %s", len(fails), fails[0])
}

// topology builds a region model: each zone is a region whose nodes are
// linked cheaply (a random spanning tree plus extra links per 100 nodes,
// one-way latency 0.5–5ms, so 1–10ms RTT), and each pair of zones is
// joined by interPerPair links between random nodes of the two zones, far
// more expensive (one-way 20–75ms, so 40–150ms RTT), as between cloud
// regions. Every link has 0–1ms of jitter; when lossy, a quarter of them
// lose 1 % each way.
func (s *simNet) topology(perZone []int, extra int, interPerPair int, lossy bool) {
	rnd := s.sim.Rand
	var zoneNodes [][]sdn.NodeID
	for z, cnt := range perZone {
		var ids []sdn.NodeID
		for i := range cnt {
			id := sdn.MakeNodeID(sdn.ZoneID(z), uint32(i+1))
			s.addNode(id)
			ids = append(ids, id)
		}
		zoneNodes = append(zoneNodes, ids)
	}
	loss := func() float64 {
		if lossy && rnd.IntN(4) == 0 {
			return 0.01
		}
		return 0
	}
	link := func(a, b sdn.NodeID, lo, hi time.Duration) {
		if a == b || s.edges[edgeKey(a, b)] != nil {
			return
		}
		s.connect(a, b, s.sim.Duration(lo, hi), s.sim.Duration(0, time.Millisecond), loss())
	}
	const intraLo, intraHi = 500 * time.Microsecond, 5 * time.Millisecond
	const interLo, interHi = 20 * time.Millisecond, 75 * time.Millisecond
	for _, ids := range zoneNodes {
		for i := 1; i < len(ids); i++ {
			link(ids[i], ids[rnd.IntN(i)], intraLo, intraHi)
		}
		for range extra * len(ids) / 100 {
			link(ids[rnd.IntN(len(ids))], ids[rnd.IntN(len(ids))], intraLo, intraHi)
		}
	}
	for a := range zoneNodes {
		for b := a + 1; b < len(zoneNodes); b++ {
			for range interPerPair {
				link(zoneNodes[a][rnd.IntN(len(zoneNodes[a]))], zoneNodes[b][rnd.IntN(len(zoneNodes[b]))], interLo, interHi)
			}
		}
	}
}
