package testutil

import (
	"net/netip"
	"slices"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

// Machine is the link side of an overlay node: an sdn.Router, or a
// core.Node with one. The simulated network drives it.
type Machine interface {
	HandleLinkUp(now time.Time, id sdn.LinkID, info sdn.LinkInfo)
	HandleLinkDown(now time.Time, id sdn.LinkID)
	HandleDialFailed(now time.Time, a sdn.Addr)
	HandleTimeout(now time.Time)
	PollTimeout() (time.Time, bool)
}

// Net is a simulated network of overlay nodes: the driver of the
// sans-IO contract for whole clusters, in virtual time. Nodes are joined
// by Edges (a Link each way, with latency, jitter, loss, and cuts);
// dialing an edge takes a round trip, a dial without an edge or across a
// cut fails, a closed link is seen closed by the peer one latency later.
// The owner of a node gives Start its machine, how to deliver a message to
// it and how to drain it (poll its outputs, calling Send, Dial and
// CloseLink); the Net calls drain after every input it feeds and then
// wakes the machine at its PollTimeout.
type Net struct {
	Sim *Sim
	// Nodes in the order they were added.
	Nodes []*NetNode
	// Tap, when set, sees every message as it arrives at a live node,
	// before the node does.
	Tap func(to *NetNode, data []byte)

	byID     map[sdn.NodeID]*NetNode
	edges    map[[2]sdn.NodeID]*Edge
	nextLink sdn.LinkID
}

// Edge is a symmetric connection between two nodes, A < B.
type Edge struct {
	A, B   sdn.NodeID
	AB, BA *Link
	Cut    bool
}

// From is the one-way link that leaves node a.
func (e *Edge) From(a sdn.NodeID) *Link {
	if a == e.A {
		return e.AB
	}
	return e.BA
}

// NetNode is one node of a Net.
type NetNode struct {
	Net   *Net
	Idx   int
	ID    sdn.NodeID
	Alive bool

	m       Machine
	deliver func(now time.Time, id sdn.LinkID, data []byte)
	drain   func()
	links   map[sdn.LinkID]*netLink
	wakeAt  time.Time
	gen     uint64 // bumped by Start: what an older incarnation scheduled is ignored
}

type netLink struct {
	peer     *NetNode
	peerLink sdn.LinkID
	path     *Link
	edge     *Edge
	closed   bool
}

// NewNet returns an empty network on sim.
func NewNet(sim *Sim) *Net {
	return &Net{Sim: sim, byID: map[sdn.NodeID]*NetNode{}, edges: map[[2]sdn.NodeID]*Edge{}}
}

func edgeKey(a, b sdn.NodeID) [2]sdn.NodeID {
	if a > b {
		a, b = b, a
	}
	return [2]sdn.NodeID{a, b}
}

// NetAddr is the address a simulated node is dialed at (never a socket).
func NetAddr(id sdn.NodeID) sdn.Addr {
	return sdn.Addr{Node: id, UDP: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(id))}
}

// AddNode declares a node; Start runs it.
func (n *Net) AddNode(id sdn.NodeID) *NetNode {
	nd := &NetNode{Net: n, Idx: len(n.Nodes), ID: id, links: map[sdn.LinkID]*netLink{}}
	n.Nodes = append(n.Nodes, nd)
	n.byID[id] = nd
	return nd
}

// Node returns the node with id, or nil.
func (n *Net) Node(id sdn.NodeID) *NetNode { return n.byID[id] }

// Connect adds a symmetric edge.
func (n *Net) Connect(a, b sdn.NodeID, lat, jitter time.Duration, loss float64) *Edge {
	k := edgeKey(a, b)
	e := &Edge{A: k[0], B: k[1], AB: &Link{Latency: lat, Jitter: jitter, Loss: loss}, BA: &Link{Latency: lat, Jitter: jitter, Loss: loss}}
	n.edges[k] = e
	return e
}

// Edge returns the edge between a and b, or nil.
func (n *Net) Edge(a, b sdn.NodeID) *Edge { return n.edges[edgeKey(a, b)] }

// Edges lists every edge, ordered by (A, B).
func (n *Net) Edges() []*Edge {
	es := make([]*Edge, 0, len(n.edges))
	for _, e := range n.edges {
		es = append(es, e)
	}
	slices.SortFunc(es, func(x, y *Edge) int {
		if x.A != y.A {
			return int(x.A) - int(y.A)
		}
		return int(x.B) - int(y.B)
	})
	return es
}

// Seeds are the addresses node id dials: the other ends of its edges to
// higher ids (on every edge the lower id dials).
func (n *Net) Seeds(id sdn.NodeID) []sdn.Addr {
	var seeds []sdn.Addr
	for _, e := range n.Edges() {
		if e.A == id {
			seeds = append(seeds, NetAddr(e.B))
		}
	}
	return seeds
}

// SetCut partitions (down) or heals an edge.
func (n *Net) SetCut(e *Edge, down bool) {
	e.Cut = down
	e.AB.Down, e.BA.Down = down, down
	n.Sim.Logf("cut %d-%d %v", e.A, e.B, down)
}

// Start runs m as the node (again, after Kill: a restart with no links).
// deliver hands m a message received on a link; drain polls m's outputs.
func (nd *NetNode) Start(m Machine, deliver func(now time.Time, id sdn.LinkID, data []byte), drain func()) {
	nd.m, nd.deliver, nd.drain = m, deliver, drain
	nd.Alive = true
	nd.gen++
	nd.links = map[sdn.LinkID]*netLink{}
	nd.wakeAt = time.Time{}
	nd.Drain()
}

// Kill stops the node dead: it handles and sends nothing more.
func (nd *NetNode) Kill() {
	nd.Alive = false
	nd.Net.Sim.Logf("kill %d", nd.ID)
}

// Drain runs the owner's drain and schedules the machine's next wake-up.
func (nd *NetNode) Drain() {
	if !nd.Alive {
		return
	}
	nd.drain()
	now := nd.Net.Sim.Now()
	t, ok := nd.m.PollTimeout()
	if !ok || !(nd.wakeAt.IsZero() || t.Before(nd.wakeAt) || !nd.wakeAt.After(now)) {
		return
	}
	if t.Before(now) {
		t = now
	}
	nd.wakeAt = t
	gen := nd.gen
	nd.Net.Sim.At(t, func(now time.Time) {
		if !nd.Alive || nd.gen != gen || !now.Equal(nd.wakeAt) {
			return
		}
		nd.wakeAt = time.Time{}
		nd.m.HandleTimeout(now)
		nd.Drain()
	})
}

// Links are the node's open links, in id order.
func (nd *NetNode) Links() []sdn.LinkID {
	ids := make([]sdn.LinkID, 0, len(nd.links))
	for id, l := range nd.links {
		if !l.closed {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Send sends a copy of data on link id (40 bytes of headers counted
// toward bandwidth caps); nothing when the link is unknown or closed.
func (nd *NetNode) Send(id sdn.LinkID, data []byte) {
	l := nd.links[id]
	if l == nil || l.closed {
		return
	}
	b := slices.Clone(data)
	peer, pl := l.peer, l.peerLink
	n := nd.Net
	n.Sim.Send(l.path, len(b)+40, func(now time.Time) {
		if !peer.Alive {
			return
		}
		if pll := peer.links[pl]; pll == nil || pll.closed {
			return
		}
		if n.Tap != nil {
			n.Tap(peer, b)
		}
		peer.deliver(now, pl, b)
		peer.Drain()
	})
}

// CloseLink closes link id; the peer sees it closed one latency later
// (unless the edge is cut: then by silence).
func (nd *NetNode) CloseLink(id sdn.LinkID) {
	l := nd.links[id]
	if l == nil {
		return
	}
	l.closed = true
	delete(nd.links, id)
	peer, pl := l.peer, l.peerLink
	if l.edge.Cut {
		return
	}
	nd.Net.Sim.After(l.path.Latency, func(now time.Time) {
		if peer.Alive && peer.links[pl] != nil {
			delete(peer.links, pl)
			peer.m.HandleLinkDown(now, pl)
			peer.Drain()
		}
	})
}

// Dial connects to a after one round trip of their edge, or fails (no
// such node or edge: after 100 ms; a cut edge or a dead node: after the
// round trip).
func (nd *NetNode) Dial(a sdn.Addr) {
	n := nd.Net
	m := n.byID[a.Node]
	e := n.edges[edgeKey(nd.ID, a.Node)]
	gen := nd.gen
	fail := func(now time.Time) {
		if nd.Alive && nd.gen == gen {
			nd.m.HandleDialFailed(now, a)
			nd.Drain()
		}
	}
	if m == nil || e == nil {
		n.Sim.After(100*time.Millisecond, fail)
		return
	}
	n.Sim.After(e.AB.Latency+e.BA.Latency, func(now time.Time) {
		if !nd.Alive || nd.gen != gen {
			return
		}
		if e.Cut || !m.Alive {
			fail(now)
			return
		}
		n.nextLink++
		ida := n.nextLink
		n.nextLink++
		idb := n.nextLink
		nd.links[ida] = &netLink{peer: m, peerLink: idb, path: e.From(nd.ID), edge: e}
		m.links[idb] = &netLink{peer: nd, peerLink: ida, path: e.From(m.ID), edge: e}
		m.m.HandleLinkUp(now, idb, sdn.LinkInfo{})
		m.Drain()
		nd.m.HandleLinkUp(now, ida, sdn.LinkInfo{Dialed: true, Peer: m.ID})
		nd.Drain()
	})
}
