package sdn

import (
	"bytes"
	"encoding/binary"
	"slices"
	"time"
)

// dkey names a routing destination: a node (kind 0; only of our zone
// unless Config.FlatRoutes) or a zone (kind 1), as kind<<32 | id.
type dkey uint64

const zoneKind = dkey(1) << 32

func nodeKey(n NodeID) dkey { return dkey(n) }
func zoneKey(z ZoneID) dkey { return zoneKind | dkey(z) }

func (k dkey) isZone() bool { return k&zoneKind != 0 }

func (k dkey) valid() bool {
	switch k >> 32 {
	case 0:
		return k != 0
	case 1:
		return uint32(k) < 1<<ZoneBits
	}
	return false
}

const (
	infMetric = ^uint32(0)
	maxDests  = 1 << 16
)

// seqNewer reports whether sequence number a is newer than b (modulo 2^16).
func seqNewer(a, b uint16) bool { return int16(a-b) > 0 }

func satAdd(a, b uint32) uint32 {
	if s := uint64(a) + uint64(b); s < uint64(infMetric) {
		return uint32(s)
	}
	return infMetric - 1
}

// cand is a neighbour's last advertisement for a destination.
type cand struct {
	nb      NodeID
	seqno   uint16
	metric  uint32
	floor   uint32
	expires time.Time
	path    []byte // as on the wire: nb first; reused from one update to the next
}

// index returns the index of the candidate from nb, or -1.
func (d *dest) index(nb NodeID) int {
	for i := range d.cands {
		if d.cands[i].nb == nb {
			return i
		}
	}
	return -1
}

// cand returns the candidate from nb, or nil.
func (d *dest) cand(nb NodeID) *cand {
	if i := d.index(nb); i >= 0 {
		return &d.cands[i]
	}
	return nil
}

// dest is the routing state of one destination: the candidates, the
// selected route and the feasibility distance.
type dest struct {
	key    dkey
	cands  []cand
	next   NodeID // 0: unreachable
	seqno  uint16
	metric uint32 // infMetric: unreachable
	floor  uint32 // the cheapest feasible route's floor (see reselect)

	hasFD    bool
	fdSeq    uint16
	fdMetric uint32

	betterSince time.Time
	deadSince   time.Time
	dirty       bool
	reqAt       time.Time
	fwdSeq      uint16
	fwdAt       time.Time
}

// routing implements a distance-vector protocol with Babel's feasibility
// condition (RFC 8966 §2.4) so the next-hop graph is loop-free at every
// instant; see the package doc.
type routing struct {
	r          *Router
	dests      map[dkey]*dest
	list       []*dest // sorted by key
	mySeq      uint16
	zoneSeq    uint16
	originDirt bool
	flushAt    time.Time
	nextFull   time.Time
	version    uint64
}

func (rt *routing) init(r *Router, now time.Time) {
	rt.r = r
	rt.dests = make(map[dkey]*dest)
	rt.nextFull = now.Add(r.cfg.UpdateInterval)
}

// Route returns the neighbour to send to for dst: the next hop of the
// node route inside our zone, of the zone route outside it (of the node
// route there too with Config.FlatRoutes, once one is known). It reports
// false when dst is unreachable (or is this node).
func (r *Router) Route(dst NodeID) (NodeID, bool) {
	if dst == r.id {
		return 0, false
	}
	d := r.rt.lookup(dst)
	if d == nil || d.next == 0 {
		return 0, false
	}
	return d.next, true
}

// lookup returns the destination that routes dst: its node route inside
// our zone, its zone route outside it, or its node route there if we have
// one (FlatRoutes). Where every node has FlatRoutes (the handshake refuses
// a mix), a node route to another zone's node, once known, is kept
// until the node is gone: it does not fall back to the zone route, which
// could lead to a neighbour that still routes through us. Before it is
// known the zone route is safe: no neighbour routes that node through us
// before we have advertised a route to it.
func (rt *routing) lookup(dst NodeID) *dest {
	z := dst.Zone()
	if z == rt.r.zone || rt.r.cfg.FlatRoutes {
		if d := rt.dests[nodeKey(dst)]; d != nil || z == rt.r.zone {
			return d
		}
	}
	return rt.dests[zoneKey(z)]
}

// RouteInfo is one destination of the routing table.
type RouteInfo struct {
	// Node is the destination node (of our zone, of any with FlatRoutes)
	// or zero for a zone.
	Node NodeID
	// Zone is the destination zone (Node's zone for node routes).
	Zone ZoneID
	// Next is the next hop; zero when unreachable.
	Next NodeID
	// Cost is the route's metric in microseconds: the sum of the link
	// costs along the path.
	Cost  uint32
	Seqno uint16
	// Path is the path vector: the nodes from Next to the destination (to
	// the node of the zone that originated a zone route), as Next
	// advertised it.
	Path []NodeID
}

// Routes lists the routing table by destination.
func (r *Router) Routes() []RouteInfo {
	out := make([]RouteInfo, 0, len(r.rt.list))
	for _, d := range r.rt.list {
		ri := RouteInfo{Next: d.next, Cost: d.metric, Seqno: d.seqno}
		if c := d.cand(d.next); d.next != 0 && c != nil {
			ri.Path = make([]NodeID, len(c.path)/4)
			for i := range ri.Path {
				ri.Path[i] = NodeID(binary.BigEndian.Uint32(c.path[4*i:]))
			}
		}
		if d.key.isZone() {
			ri.Zone = ZoneID(d.key)
		} else {
			ri.Node = NodeID(d.key)
			ri.Zone = ri.Node.Zone()
		}
		out = append(out, ri)
	}
	return out
}

// RouteCost returns the metric of the route used for dst.
func (r *Router) RouteCost(dst NodeID) (uint32, bool) {
	d := r.rt.lookup(dst)
	if d == nil || d.next == 0 {
		return 0, false
	}
	return d.metric, true
}

// RouteVersion changes whenever a next hop changes: a cheap way for a
// checker to know when to look again.
func (r *Router) RouteVersion() uint64 { return r.rt.version }

func (rt *routing) deadline() time.Time {
	t := rt.nextFull
	if !rt.flushAt.IsZero() && rt.flushAt.Before(t) {
		t = rt.flushAt
	}
	return t
}

func (rt *routing) trigger() {
	if rt.flushAt.IsZero() {
		rt.flushAt = rt.r.now.Add(rt.r.cfg.TriggerDelay)
	}
}

func (rt *routing) timeout(now time.Time) {
	r := rt.r
	if !now.Before(rt.nextFull) {
		jit := time.Duration(r.rng.Int64N(int64(r.cfg.UpdateInterval)/5 + 1))
		rt.nextFull = now.Add(r.cfg.UpdateInterval - r.cfg.UpdateInterval/10 + jit)
		rt.expire(now)
		rt.sendFull()
	}
	if !rt.flushAt.IsZero() && !now.Before(rt.flushAt) {
		rt.flushAt = time.Time{}
		rt.flush()
	}
}

// expire drops stale candidates, reselects, asks for a new sequence
// number where a much better route is infeasible, and forgets long-dead
// destinations.
func (rt *routing) expire(now time.Time) {
	r := rt.r
	hold := r.cfg.UpdateInterval * 7 / 2
	for i := 0; i < len(rt.list); i++ {
		d := rt.list[i]
		d.cands = slices.DeleteFunc(d.cands, func(c cand) bool { return !now.Before(c.expires) })
		rt.reselect(d)
		if d.next == 0 && len(d.cands) == 0 {
			if d.deadSince.IsZero() {
				d.deadSince = now
			} else if now.Sub(d.deadSince) > 60*time.Second {
				delete(rt.dests, d.key)
				rt.list = slices.Delete(rt.list, i, i+1)
				i--
			}
			continue
		}
		d.deadSince = time.Time{}
		if best, ok := rt.bestInfeasible(d); ok && d.next != 0 && float64(best) < float64(d.metric)*(1-r.cfg.SwitchGain) {
			rt.request(d, hold)
		}
	}
}

func (rt *routing) dest(k dkey) *dest {
	if d := rt.dests[k]; d != nil {
		return d
	}
	if len(rt.list) >= maxDests {
		rt.r.stats.LimitDrops++
		return nil
	}
	d := &dest{key: k, metric: infMetric, floor: infMetric}
	rt.dests[k] = d
	i, _ := slices.BinarySearchFunc(rt.list, k, func(x *dest, k dkey) int { return cmpU(uint64(x.key), uint64(k)) })
	rt.list = slices.Insert(rt.list, i, d)
	return d
}

// accepts reports whether a neighbour's advertisement of k is for us: node
// routes stay inside a zone (unless FlatRoutes), zone routes go
// everywhere.
func (rt *routing) accepts(nb NodeID, k dkey) bool {
	if k.isZone() {
		return ZoneID(k) != rt.r.zone
	}
	if rt.r.cfg.FlatRoutes {
		return NodeID(k) != rt.r.id
	}
	return NodeID(k).Zone() == rt.r.zone && nb.Zone() == rt.r.zone && NodeID(k) != rt.r.id
}

func (rt *routing) handleUpdate(l *link, m *routeUpdate) {
	r := rt.r
	expires := r.now.Add(r.cfg.UpdateInterval * 7 / 2)
	var e routeEnt
	for m.next(&e) {
		switch {
		case e.key == nodeKey(r.id):
			// Our own route from a previous life: outnumber it.
			if seqNewer(e.seqno, rt.mySeq) {
				rt.mySeq = e.seqno + 1
				rt.originDirt = true
				rt.trigger()
			}
			continue
		case e.key == zoneKey(r.zone):
			if seqNewer(e.seqno, rt.zoneSeq) {
				rt.zoneSeq = e.seqno
				rt.originDirt = true
				rt.trigger()
			}
			continue
		case !rt.accepts(l.peer, e.key):
			continue
		case e.metric != infMetric && e.hop(0) != l.peer:
			r.stats.Malformed++ // a path must start at its sender
			continue
		case e.metric != infMetric && (e.onPath(r.id) || e.pathLen() == maxPath):
			// The path vector: a route through us is no route for us
			// (feasibility already keeps it from being chosen; this keeps
			// it out of the candidates), nor one we could not extend.
			e.metric = infMetric
		}
		d := rt.dests[e.key]
		if d == nil {
			if e.metric == infMetric {
				continue
			}
			if d = rt.dest(e.key); d == nil {
				continue
			}
		}
		j := d.index(l.peer)
		var c *cand
		switch {
		case e.metric == infMetric && j >= 0:
			d.cands = slices.Delete(d.cands, j, j+1)
		case e.metric == infMetric:
		case j >= 0:
			c = &d.cands[j]
		default:
			d.cands = append(d.cands, cand{nb: l.peer})
			c = &d.cands[len(d.cands)-1]
		}
		if c != nil {
			c.seqno, c.metric, c.floor, c.expires = e.seqno, e.metric, min(e.floor, e.metric), expires
			if c.nb == d.next && !bytes.Equal(c.path, e.path) {
				d.dirty = true // the same route by another path
				rt.trigger()
			}
			c.path = append(c.path[:0], e.path...)
		}
		rt.reselect(d)
	}
}

// feasible is Babel's condition: a newer sequence number, or the same one
// with a metric below every metric we advertised for it.
func (d *dest) feasible(seq uint16, metric uint32) bool {
	if !d.hasFD {
		return true
	}
	return seqNewer(seq, d.fdSeq) || seq == d.fdSeq && metric < d.fdMetric
}

// reselect picks d's route: the cheapest feasible candidate, except that
// the current next hop is kept (it is always safe to keep) unless the
// other is cheaper by SwitchGain, or has been cheaper for Sticky.
//
// Held routes must not stack up: if every node along a path kept a route
// up to SwitchGain dearer than its best, the path could end up dearer by
// SwitchGain once per hop. So each route also carries a floor: the least
// of (link cost + floor) over the feasible candidates, a Bellman-Ford
// lower bound on what the node could reach (it follows feasible
// successors, which never form a cycle, so it cannot count to infinity),
// 0 at the origin. The current route is also left, for the cheapest one,
// when it costs more than the floor by SwitchGain. By induction every
// node's metric is then within SwitchGain of its floor (the cheapest
// candidate costs at most its link plus its metric, which is within
// SwitchGain of its floor), so a whole path is, not each hop.
func (rt *routing) reselect(d *dest) {
	r := rt.r
	var best, cur *cand
	var bestTotal, curTotal uint32
	floor := infMetric
	for i := range d.cands {
		c := &d.cands[i]
		l := r.nbrs[c.nb]
		if l == nil || l.cost == 0 || c.metric == infMetric {
			continue
		}
		if c.nb != d.next && !d.feasible(c.seqno, c.metric) {
			continue
		}
		total := satAdd(c.metric, l.cost)
		floor = min(floor, satAdd(c.floor, l.cost))
		if c.nb == d.next {
			cur, curTotal = c, total
			continue
		}
		if best == nil || total < bestTotal || total == bestTotal && c.nb < best.nb {
			best, bestTotal = c, total
		}
	}
	chosen, total := cur, curTotal
	keep := 1 - r.cfg.SwitchGain
	switch {
	case best == nil:
		d.betterSince = time.Time{}
	case cur == nil:
		chosen, total = best, bestTotal
	case float64(bestTotal) < float64(curTotal)*keep:
		chosen, total = best, bestTotal
	case bestTotal < curTotal && float64(floor) < float64(curTotal)*keep:
		chosen, total = best, bestTotal
	case bestTotal < curTotal:
		if d.betterSince.IsZero() {
			d.betterSince = r.now
		} else if r.now.Sub(d.betterSince) >= r.cfg.Sticky {
			chosen, total = best, bestTotal
		}
	default:
		d.betterSince = time.Time{}
	}
	if chosen == nil {
		if d.next != 0 {
			d.next, d.metric, d.floor = 0, infMetric, infMetric
			d.dirty = true
			rt.version++
			rt.trigger()
		}
		// Starved: only a newer sequence number makes a route feasible.
		if len(d.cands) > 0 {
			rt.request(d, 0)
		}
		return
	}
	if chosen.nb != d.next {
		d.betterSince = time.Time{}
		rt.version++
		d.dirty = true
	}
	floor = min(floor, total)
	if chosen.seqno != d.seqno || total != d.metric || floor != d.floor {
		d.dirty = true
	}
	d.next, d.seqno, d.metric, d.floor = chosen.nb, chosen.seqno, total, floor
	if !d.hasFD || seqNewer(d.seqno, d.fdSeq) {
		d.hasFD, d.fdSeq, d.fdMetric = true, d.seqno, d.metric
	} else if d.seqno == d.fdSeq && d.metric < d.fdMetric {
		d.fdMetric = d.metric
	}
	if d.dirty {
		rt.trigger()
	}
	// A much better route we may not take yet: ask for the sequence
	// number that makes it feasible. Soon: a cost increase that reaches
	// a node by one neighbour before another can leave it on the dearer
	// route with the cheaper one infeasible, until the origin's next
	// sequence number.
	if inf, ok := rt.bestInfeasible(d); ok && float64(inf) < float64(d.metric)*keep {
		rt.request(d, 0)
	}
}

func (rt *routing) bestInfeasible(d *dest) (uint32, bool) {
	var best uint32 = infMetric
	for _, c := range d.cands {
		l := rt.r.nbrs[c.nb]
		if l == nil || l.cost == 0 || c.metric == infMetric || d.feasible(c.seqno, c.metric) || c.nb == d.next {
			continue
		}
		best = min(best, satAdd(c.metric, l.cost))
	}
	return best, best != infMetric
}

// request asks the neighbours that advertise d for a newer sequence
// number, at most once per gap.
func (rt *routing) request(d *dest, gap time.Duration) {
	r := rt.r
	if gap == 0 {
		gap = 200 * time.Millisecond
	}
	if !d.reqAt.IsZero() && r.now.Sub(d.reqAt) < gap {
		return
	}
	d.reqAt = r.now
	m := seqReq{key: d.key, seqno: d.fdSeq + 1, hops: 32}
	for _, c := range d.cands {
		if l := r.nbrs[c.nb]; l != nil {
			r.sendCtl(l, m.append(r.out))
		}
	}
}

func (rt *routing) handleSeqReq(l *link, m *seqReq) {
	r := rt.r
	switch {
	case m.key == nodeKey(r.id):
		if !seqNewer(rt.mySeq, m.seqno) {
			rt.mySeq++
			if seqNewer(m.seqno, rt.mySeq) {
				rt.mySeq = m.seqno
			}
		}
		rt.originDirt = true
		rt.trigger()
		return
	case m.key == zoneKey(r.zone):
		if !seqNewer(rt.zoneSeq, m.seqno) {
			rt.zoneSeq++
			if seqNewer(m.seqno, rt.zoneSeq) {
				rt.zoneSeq = m.seqno
			}
		}
		rt.originDirt = true
		rt.trigger()
		return
	case !rt.accepts(l.peer, m.key):
		return
	}
	d := rt.dests[m.key]
	if d == nil {
		return
	}
	if d.next != 0 && !seqNewer(m.seqno, d.seqno) {
		d.dirty = true
		rt.trigger()
		return
	}
	if m.hops == 0 || d.fwdSeq == m.seqno && r.now.Sub(d.fwdAt) < time.Second {
		return
	}
	// Forward toward the origin: our next hop, or the best candidate.
	to := d.next
	if to == 0 || to == l.peer {
		var bt uint32 = infMetric
		for _, c := range d.cands {
			if nl := r.nbrs[c.nb]; nl != nil && c.nb != l.peer && nl.cost != 0 && satAdd(c.metric, nl.cost) < bt {
				to, bt = c.nb, satAdd(c.metric, nl.cost)
			}
		}
	}
	if nl := r.nbrs[to]; nl != nil && to != l.peer {
		d.fwdSeq, d.fwdAt = m.seqno, r.now
		f := *m
		f.hops--
		r.sendCtl(nl, f.append(r.out))
	}
}

func (rt *routing) neighbourUp(l *link) {
	// A full table goes out with the first measurement (costChanged).
}

func (rt *routing) neighbourDown(nb NodeID) {
	for _, d := range rt.list {
		if j := d.index(nb); j >= 0 {
			d.cands = slices.Delete(d.cands, j, j+1)
		}
		if d.next == nb || len(d.cands) > 0 {
			rt.reselect(d)
		}
	}
}

func (rt *routing) costChanged(l *link) {
	first := true
	for _, d := range rt.list {
		for _, c := range d.cands {
			if c.nb == l.peer {
				first = false
				rt.reselect(d)
				break
			}
		}
	}
	if first {
		rt.sendTo(l, false)
	}
}

// sendFull sends every route to every neighbour.
func (rt *routing) sendFull() {
	for _, l := range rt.r.links {
		if l.state == hsDone {
			rt.sendTo(l, false)
		}
	}
	for _, d := range rt.list {
		d.dirty = false
	}
	rt.originDirt = false
}

// flush sends the changed routes to every neighbour.
func (rt *routing) flush() {
	any := rt.originDirt
	for _, d := range rt.list {
		any = any || d.dirty
	}
	if !any {
		return
	}
	for _, l := range rt.r.links {
		if l.state == hsDone {
			rt.sendTo(l, true)
		}
	}
	for _, d := range rt.list {
		d.dirty = false
	}
	rt.originDirt = false
}

// routeChunk entries make an update of about 1 KB (routeEntLen and a
// path of 5 hops each), 4.6 KB at most.
const routeChunk = 32

// sendTo sends l the routes it may use (node routes only inside our zone,
// unless FlatRoutes), only the dirty ones when dirtyOnly.
func (rt *routing) sendTo(l *link, dirtyOnly bool) {
	r := rt.r
	nodeRoutes := l.peer.Zone() == r.zone || r.cfg.FlatRoutes
	var n int
	var start int
	open := func() {
		start = len(r.out)
		r.out = put8(r.out, uint8(mRoute))
		r.out = put16(r.out, 0)
		n = 0
	}
	closeMsg := func() {
		if n == 0 {
			r.out = r.out[:start]
			return
		}
		r.out[start+1] = byte(n >> 8)
		r.out[start+2] = byte(n)
		r.queue(l, start, len(r.out), false)
	}
	add := func(e routeEnt, via NodeID) {
		if n == routeChunk {
			closeMsg()
			open()
		}
		r.out = appendRouteEnt(r.out, e, via)
		n++
	}
	open()
	if !dirtyOnly || rt.originDirt {
		if nodeRoutes {
			add(routeEnt{key: nodeKey(r.id), seqno: rt.mySeq}, r.id)
		}
		add(routeEnt{key: zoneKey(r.zone), seqno: rt.zoneSeq}, r.id)
	}
	for _, d := range rt.list {
		if dirtyOnly && !d.dirty || !d.key.isZone() && !nodeRoutes {
			continue
		}
		if !dirtyOnly && d.next == 0 && !d.dirty {
			continue // full updates carry routes, and retractions not yet sent
		}
		if d.key.isZone() && ZoneID(d.key) == l.peer.Zone() {
			continue
		}
		e := routeEnt{key: d.key, seqno: d.seqno, metric: d.metric, floor: d.floor}
		var via NodeID
		if c := d.cand(d.next); d.next != 0 && c != nil {
			e.path, via = c.path, r.id
		} else {
			e.metric, e.floor = infMetric, infMetric
		}
		add(e, via)
	}
	closeMsg()
}
