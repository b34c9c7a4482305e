package quic

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

type node struct {
	d    *Driver
	mu   sync.Mutex
	got  map[uint64][]uint32
	evs  []sdn.Event
	done chan struct{}
}

func (n *node) received(ch uint64) []uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]uint32(nil), n.got[ch]...)
}

func startNode(t testing.TB, id sdn.NodeID, secret string, seeds ...sdn.Addr) *node {
	t.Helper()
	return startNodeAt(t, netip.AddrPort{}, id, secret, seeds...)
}

func startNodeAt(t testing.TB, listen netip.AddrPort, id sdn.NodeID, secret string, seeds ...sdn.Addr) *node {
	t.Helper()
	n := &node{got: map[uint64][]uint32{}, done: make(chan struct{})}
	cfg := Config{
		Router: sdn.Config{ID: id, Secret: []byte(secret), Seeds: seeds, DialBackoffMax: time.Second},
		Listen: listen,
		OnData: func(dv sdn.Delivery) {
			n.mu.Lock()
			n.got[dv.Channel] = append(n.got[dv.Channel], dv.Seq)
			n.mu.Unlock()
		},
		OnEvent: func(e sdn.Event) {
			n.mu.Lock()
			n.evs = append(n.evs, e)
			n.mu.Unlock()
		},
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.d = d
	go func() {
		defer close(n.done)
		_ = d.Run(context.Background())
	}()
	t.Cleanup(func() {
		d.Close()
		<-n.done
	})
	return n
}

func (n *node) route(dst sdn.NodeID) (next sdn.NodeID, ok bool) {
	n.d.Do(func(_ time.Time, r *sdn.Router) { next, ok = r.Route(dst) })
	return
}

func (n *node) stats() (s sdn.Stats) {
	n.d.Do(func(_ time.Time, r *sdn.Router) { s = r.Stats() })
	return
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestQUICCluster runs four drivers with separate sockets on 127.0.0.1,
// linked as two chains A–B–C and A–D–C: routes form; a channel published
// on A reaches subscribers on B and C over QUIC datagrams; killing the
// middle node of A's route to C reroutes and C receives again; the killed
// node restarted on its address is redialled; a node with the wrong
// secret is refused.
func TestQUICCluster(t *testing.T) {
	const ch = 99
	c := startNode(t, 3, "secret")
	b := startNode(t, 2, "secret", c.d.Addr())
	dn := startNode(t, 4, "secret", c.d.Addr())
	a := startNode(t, 1, "secret", b.d.Addr(), dn.d.Addr())
	t.Logf("addresses: %v %v %v %v", a.d.Addr(), b.d.Addr(), c.d.Addr(), dn.d.Addr())

	waitFor(t, 10*time.Second, "routes", func() bool {
		for _, p := range [][2]*node{{a, c}, {c, a}, {b, dn}, {dn, b}} {
			if _, ok := p[0].route(p[1].d.Addr().Node); !ok {
				return false
			}
		}
		return true
	})

	a.d.Do(func(now time.Time, r *sdn.Router) {
		if err := r.Publish(now, ch); err != nil {
			t.Error(err)
		}
	})
	for _, n := range []*node{b, c} {
		n.d.Do(func(now time.Time, r *sdn.Router) { r.Subscribe(now, ch) })
	}
	stop := make(chan struct{})
	var sent sync.WaitGroup
	sent.Add(1)
	go func() {
		defer sent.Done()
		payload := make([]byte, 200)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				a.d.Do(func(now time.Time, r *sdn.Router) { _ = r.Send(now, ch, payload) })
			}
		}
	}()
	defer func() { close(stop); sent.Wait() }()
	waitFor(t, 10*time.Second, "data on B and C", func() bool {
		return len(b.received(ch)) > 20 && len(c.received(ch)) > 20
	})
	for _, n := range []*node{b, c} {
		got := n.received(ch)
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("node %v: seq %d after %d", n.d.Addr().Node, got[i], got[i-1])
			}
		}
		// Data came as QUIC datagrams (every delivery is one), control
		// on the stream.
		if st := n.d.Stats(); st.DatagramsIn < uint64(len(got)) || st.StreamIn == 0 {
			t.Fatalf("node %v: %d deliveries but %+v", n.d.Addr().Node, len(got), st)
		}
	}
	if st := a.d.Stats(); st.DatagramsOut == 0 || st.StreamOut == 0 || st.Oversized != 0 {
		t.Fatalf("source's driver: %+v", st)
	}

	// Kill the middle of A's route to C.
	mid, _ := a.route(3)
	var victim, other *node
	switch mid {
	case 2:
		victim, other = b, dn
	case 4:
		victim, other = dn, b
	default:
		t.Fatalf("A routes to C via %d", mid)
	}
	victimAddr := victim.d.Addr()
	victim.d.Kill()
	killed := time.Now()
	before := len(c.received(ch))
	waitFor(t, 10*time.Second, "reroute", func() bool {
		next, ok := a.route(3)
		return ok && next == other.d.Addr().Node
	})
	waitFor(t, 10*time.Second, "data on C again", func() bool { return len(c.received(ch)) > before+20 })
	t.Logf("rerouted via %d and C receives again %v after killing %d", other.d.Addr().Node, time.Since(killed), mid)

	// The victim restarts on the same address: A, which has it as a seed,
	// redials (with backoff) and the link comes back.
	back := startNodeAt(t, victimAddr.UDP, victimAddr.Node, "secret", c.d.Addr())
	waitFor(t, 15*time.Second, "redial of the restarted node", func() bool {
		next, ok := a.route(victimAddr.Node)
		return ok && next == victimAddr.Node
	})
	_ = back

	// A node with the wrong secret is refused.
	e := startNode(t, 5, "wrong", a.d.Addr())
	waitFor(t, 10*time.Second, "refusal", func() bool { return e.stats().AuthFailures > 0 })
	time.Sleep(500 * time.Millisecond)
	e.mu.Lock()
	for _, ev := range e.evs {
		if _, ok := ev.(sdn.EventNeighbourUp); ok {
			t.Errorf("wrong-secret node got a neighbour: %+v", ev)
		}
	}
	e.mu.Unlock()
	if _, ok := a.route(5); ok {
		t.Fatal("A routes to the node with the wrong secret")
	}
	a.mu.Lock()
	for _, ev := range a.evs {
		if up, ok := ev.(sdn.EventNeighbourUp); ok && up.Node == 5 {
			t.Errorf("A accepted the wrong-secret node")
		}
	}
	a.mu.Unlock()
}
