package sdn_test

import (
	"fmt"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

// Example shows the run loop: two Routers joined by an in-memory link,
// driven in virtual time; one publishes a channel, the other subscribes.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	secret := []byte("cluster secret")
	a, _ := sdn.New(sdn.Config{ID: 1, Secret: secret, Seeds: []sdn.Addr{{Node: 2}}}, now)
	b, _ := sdn.New(sdn.Config{ID: 2, Secret: secret}, now)
	routers := map[sdn.NodeID]*sdn.Router{1: a, 2: b}
	peer := map[sdn.NodeID]sdn.NodeID{1: 2, 2: 1}
	type msg struct {
		to   sdn.NodeID
		data []byte
	}
	var wire []msg // messages in flight (delivered on the next step)

	// drain polls every output of one Router: the driver's job.
	var drain func(id sdn.NodeID)
	drain = func(id sdn.NodeID) {
		r := routers[id]
		for t, ok := r.PollTransmit(); ok; t, ok = r.PollTransmit() {
			// One link per node here, so the LinkID is the peer's id.
			wire = append(wire, msg{to: peer[id], data: append([]byte(nil), t.Data...)})
		}
		for d, ok := r.PollData(); ok; d, ok = r.PollData() {
			fmt.Printf("node %d got seq %d: %s\n", id, d.Seq, d.Payload)
		}
		for e, ok := r.PollEvent(); ok; e, ok = r.PollEvent() {
			switch e := e.(type) {
			case sdn.EventDial: // connect, then report the link to both ends
				b.HandleLinkUp(now, 1, sdn.LinkInfo{})
				drain(2)
				a.HandleLinkUp(now, 2, sdn.LinkInfo{Dialed: true, Peer: e.Addr.Node})
				drain(1)
			case sdn.EventSubscribed:
				fmt.Printf("node %d subscribed to %d\n", id, e.Channel)
			}
		}
	}
	step := func(d time.Duration) {
		end := now.Add(d)
		for now.Before(end) {
			now = now.Add(5 * time.Millisecond)
			in := wire
			wire = nil
			for _, m := range in {
				routers[m.to].HandleMessage(now, sdn.LinkID(peer[m.to]), m.data)
				drain(m.to)
			}
			for id, r := range []*sdn.Router{a, b} {
				if t, ok := r.PollTimeout(); ok && !t.After(now) {
					r.HandleTimeout(now)
					drain(sdn.NodeID(id + 1))
				}
			}
		}
	}

	step(3 * time.Second) // handshake, pings, routes
	a.Publish(now, 7)
	drain(1)
	b.Subscribe(now, 7)
	drain(2)
	step(2 * time.Second) // the directory entry spreads, b joins the tree
	a.Send(now, 7, []byte("hello"))
	drain(1)
	step(100 * time.Millisecond)
	// Output:
	// node 2 subscribed to 7
	// node 2 got seq 1: hello
}
