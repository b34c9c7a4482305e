package sdn

import (
	"testing"
	"time"
)

// TestPathVector: a route whose path holds the receiver is no route for
// it, a path must start at its sender, a route is passed on with the
// sender in front of its path, and a path of maxPath hops cannot be
// extended.
func TestPathVector(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r, err := New(Config{ID: 1}, now)
	if err != nil {
		t.Fatal(err)
	}
	r.HandleLinkUp(now, 1, LinkInfo{})
	l := r.byID[1]
	l.peer = 2
	r.authenticated(l)
	l.cost = 1000
	drain := func() {
		for {
			if _, ok := r.PollTransmit(); !ok {
				break
			}
		}
		for {
			if _, ok := r.PollEvent(); !ok {
				break
			}
		}
	}
	drain()
	path := func(ids ...NodeID) []byte {
		var b []byte
		for _, id := range ids {
			b = put32(b, uint32(id))
		}
		return b
	}
	send := func(key dkey, metric uint32, p []byte) {
		b := []byte{byte(mRoute), 0, 1}
		b = appendRouteEnt(b, routeEnt{key: key, seqno: 1, metric: metric, floor: metric, path: p}, 0)
		r.HandleMessage(now, 1, b)
	}

	send(nodeKey(3), 500, path(2, 1, 3))
	if _, ok := r.Route(3); ok || r.rt.dests[nodeKey(3)] != nil {
		t.Fatal("took a route whose path holds this node")
	}
	malformed := r.Stats().Malformed
	send(nodeKey(3), 500, path(4, 3))
	if _, ok := r.Route(3); ok || r.Stats().Malformed != malformed+1 {
		t.Fatalf("took a route whose path does not start at its sender (malformed %d)", r.Stats().Malformed)
	}
	send(nodeKey(3), 500, path(2, 3))
	if next, ok := r.Route(3); !ok || next != 2 {
		t.Fatalf("route to 3: %d %v", next, ok)
	}
	routes := r.Routes()
	if len(routes) != 1 || len(routes[0].Path) != 2 || routes[0].Path[0] != 2 || routes[0].Path[1] != 3 || routes[0].Cost != 1500 {
		t.Fatalf("routes %+v", routes)
	}
	// Passed on with this node in front.
	r.rt.sendTo(l, false)
	found := false
	for {
		tr, ok := r.PollTransmit()
		if !ok {
			break
		}
		var m routeUpdate
		if msgType(tr.Data[0]) != mRoute || !m.decode(tr.Data) {
			continue
		}
		var e routeEnt
		for m.next(&e) {
			if e.key == nodeKey(3) {
				found = true
				if e.pathLen() != 3 || e.hop(0) != 1 || e.hop(1) != 2 || e.hop(2) != 3 || e.metric != 1500 {
					t.Fatalf("passed on as %+v", e)
				}
			}
		}
	}
	if !found {
		t.Fatal("route to 3 not passed on")
	}
	// Another path for the same route: a path of maxPath hops is one this
	// node could not pass on, so it is a retraction.
	long := make([]NodeID, maxPath)
	for i := range long {
		long[i] = NodeID(100 + i)
	}
	long[0], long[maxPath-1] = 2, 3
	send(nodeKey(3), 500, path(long...))
	if _, ok := r.Route(3); ok {
		t.Fatal("took a path of maxPath hops")
	}
}
