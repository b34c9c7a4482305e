package quic_test

import (
	"fmt"
	"sync"
	"time"

	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/transport/quic"
)

// owner runs a machine, here a bare sdn.Router, on Links: it keeps the
// machine and the mutex, Links only moves bytes. A core.Node's driver does
// the same with the Node's HandleLink* methods and one Poll loop
// (OutputLink to Send, OutputDial to Dial, OutputCloseLink to CloseLink).
type owner struct {
	mu    sync.Mutex
	r     *sdn.Router
	links *quic.Links
	sleep time.Time // when run will next wake
	wake  chan struct{}
}

// Each report: lock, read the clock, feed, drain.

func (o *owner) LinkUp(id sdn.LinkID, info sdn.LinkInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	o.r.HandleLinkUp(now, id, info)
	o.drain(now)
}

func (o *owner) LinkDown(id sdn.LinkID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	o.r.HandleLinkDown(now, id)
	o.drain(now)
}

func (o *owner) DialFailed(a sdn.Addr) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	o.r.HandleDialFailed(now, a)
	o.drain(now)
}

func (o *owner) Message(id sdn.LinkID, data []byte, _ bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	o.r.HandleMessage(now, id, data)
	o.drain(now)
}

// drain hands every output to the links, with o.mu held: Send, Dial and
// CloseLink never block nor call back.
func (o *owner) drain(now time.Time) {
	for {
		t, ok := o.r.PollTransmit()
		if !ok {
			break
		}
		o.links.Send(now, t.Link, t.Data, t.Datagram)
	}
	for {
		if _, ok := o.r.PollData(); !ok {
			break
		}
	}
	for {
		e, ok := o.r.PollEvent()
		if !ok {
			break
		}
		switch e := e.(type) {
		case sdn.EventDial:
			o.links.Dial(e.Addr)
		case sdn.EventClose:
			o.links.CloseLink(e.Link)
		}
	}
	// An input may have brought the deadline forward: wake run.
	if at, ok := o.r.PollTimeout(); ok && at.Before(o.sleep) {
		o.sleep = at
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// run sleeps until the machine's deadline, or until drain wakes it.
func (o *owner) run(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		o.mu.Lock()
		now := time.Now()
		o.r.HandleTimeout(now)
		o.drain(now)
		o.sleep = now.Add(time.Second)
		if at, ok := o.r.PollTimeout(); ok && at.Before(o.sleep) {
			o.sleep = at
		}
		t.Reset(o.sleep.Sub(now))
		o.mu.Unlock()
		select {
		case <-stop:
			return
		case <-o.wake:
		case <-t.C:
		}
	}
}

// start binds the links, builds the Router on their address, and only
// then accepts: no report can come before the machine exists.
func start(id sdn.NodeID, stop <-chan struct{}, seeds ...sdn.Addr) *owner {
	o := &owner{wake: make(chan struct{}, 1)}
	links, err := quic.NewLinks(quic.LinksConfig{}, o)
	if err != nil {
		panic(err)
	}
	r, err := sdn.New(sdn.Config{ID: id, Secret: []byte("cluster secret"), Seeds: seeds,
		Listen: links.LocalAddr()}, time.Now())
	if err != nil {
		panic(err)
	}
	o.r, o.links = r, links
	go o.run(stop)
	links.Start()
	return o
}

// ExampleLinks runs two nodes, each an sdn.Router owned by its own mutex
// on Links; node 2 has node 1 as its seed, dials it and routes to it.
func ExampleLinks() {
	stop := make(chan struct{})
	n1 := start(1, stop)
	n2 := start(2, stop, n1.r.Address())

	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		n2.mu.Lock()
		next, ok := n2.r.Route(1)
		n2.mu.Unlock()
		if ok {
			fmt.Println("node 2 routes to node 1 via", next)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Close the links without the owner's lock: Close waits for
	// callbacks, which may be waiting for it.
	close(stop)
	for _, n := range []*owner{n2, n1} {
		n.mu.Lock()
		now := time.Now()
		n.r.Close(now) // goodbyes to the neighbours
		n.drain(now)
		n.mu.Unlock()
		n.links.Close()
	}
	// Output:
	// node 2 routes to node 1 via 1
}
