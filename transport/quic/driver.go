package quic

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

// Config configures a Driver.
type Config struct {
	// Router configures the node (ID and Secret at least). Its Listen is
	// set to the socket's address; its Seed, when zero, to a random one.
	Router sdn.Config
	// Listen is the UDP address to bind (default 127.0.0.1:0).
	Listen netip.AddrPort
	// OnEvent and OnData receive the Router's control events and local
	// deliveries. They run with the Driver's mutex held: they must not
	// block or call the Driver, and must copy Payload to keep it.
	OnEvent func(sdn.Event)
	OnData  func(sdn.Delivery)
	// Logger receives link lifecycle logs (default: discard).
	Logger *slog.Logger
}

// Driver runs an sdn.Router over QUIC links: the Router's owner on top of
// Links, for a process whose only machine is the Router (a relay node,
// examples/sdn-node). A process with a core.Node drives Links itself.
type Driver struct {
	cfg   Config
	links *Links

	mu     sync.Mutex
	r      *sdn.Router
	sleep  time.Time
	closed bool

	wake chan struct{}
	// done ends Run when Close or Kill is called from elsewhere.
	done     chan struct{}
	doneOnce sync.Once
}

// New binds the socket and creates the Router. Call Run to serve.
func New(cfg Config) (*Driver, error) {
	if cfg.Router.Seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		cfg.Router.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	d := &Driver{wake: make(chan struct{}, 1), done: make(chan struct{})}
	links, err := NewLinks(LinksConfig{Listen: cfg.Listen, Logger: cfg.Logger}, (*linkHandler)(d))
	if err != nil {
		return nil, err
	}
	cfg.Router.Listen = links.LocalAddr()
	r, err := sdn.New(cfg.Router, time.Now())
	if err != nil {
		links.Close()
		return nil, err
	}
	d.cfg, d.links, d.r = cfg, links, r
	return d, nil
}

// Addr is the node's printable address.
func (d *Driver) Addr() sdn.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r.Address()
}

// Stats returns the links' counters.
func (d *Driver) Stats() Stats { return d.links.Stats() }

// Do runs fn on the Router under the Driver's mutex, with the current
// time, and then drains the Router's outputs.
func (d *Driver) Do(fn func(now time.Time, r *sdn.Router)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	now := time.Now()
	fn(now, d.r)
	d.drainLocked(now)
}

// Run serves until ctx is done or Close is called.
func (d *Driver) Run(ctx context.Context) error {
	d.links.Start()
	d.Do(func(time.Time, *sdn.Router) {})
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		d.mu.Lock()
		next := now.Add(time.Second)
		if at, ok := d.r.PollTimeout(); ok && at.Before(next) {
			next = at
		}
		d.sleep = next
		d.mu.Unlock()
		timer.Reset(max(next.Sub(now), 0))
		select {
		case <-ctx.Done():
			d.Close()
			return nil
		case <-d.done:
			return nil
		case <-d.wake:
		case <-timer.C:
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil
		}
		now = time.Now()
		d.r.HandleTimeout(now)
		d.drainLocked(now)
		d.mu.Unlock()
	}
}

// Close leaves the overlay (the Router's Close, whose messages get a
// moment to leave), closes every link and the socket, and waits for the
// goroutines.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	now := time.Now()
	d.r.Close(now)
	d.drainLocked(now)
	d.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.doneOnce.Do(func() { close(d.done) })
	return d.links.Close()
}

// Kill drops every link and the socket at once, without telling the
// neighbours (they find out by silence): a crashed node, for tests.
func (d *Driver) Kill() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.doneOnce.Do(func() { close(d.done) })
	d.links.Kill()
}

// drainLocked handles every output of the Router: transmits, dials and
// closes go to the links, deliveries and events to the callbacks.
func (d *Driver) drainLocked(now time.Time) {
	for {
		t, ok := d.r.PollTransmit()
		if !ok {
			break
		}
		d.links.Send(now, t.Link, t.Data, t.Datagram)
	}
	for {
		dv, ok := d.r.PollData()
		if !ok {
			break
		}
		if d.cfg.OnData != nil {
			d.cfg.OnData(dv)
		}
	}
	for {
		e, ok := d.r.PollEvent()
		if !ok {
			break
		}
		switch e := e.(type) {
		case sdn.EventDial:
			d.links.Dial(e.Addr)
		case sdn.EventClose:
			d.links.CloseLink(e.Link)
		}
		if d.cfg.OnEvent != nil {
			d.cfg.OnEvent(e)
		}
	}
	if at, ok := d.r.PollTimeout(); ok && at.Before(d.sleep) {
		d.sleep = at
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// linkHandler is the Driver as the Links' Handler, kept off the Driver's
// own method set: each report feeds the Router under the mutex and drains
// it.
type linkHandler Driver

func (h *linkHandler) LinkUp(id sdn.LinkID, info sdn.LinkInfo) {
	h.feed(func(now time.Time, r *sdn.Router) { r.HandleLinkUp(now, id, info) })
}

func (h *linkHandler) LinkDown(id sdn.LinkID) {
	h.feed(func(now time.Time, r *sdn.Router) { r.HandleLinkDown(now, id) })
}

func (h *linkHandler) DialFailed(a sdn.Addr) {
	h.feed(func(now time.Time, r *sdn.Router) { r.HandleDialFailed(now, a) })
}

func (h *linkHandler) Message(id sdn.LinkID, data []byte, _ bool) {
	h.feed(func(now time.Time, r *sdn.Router) { r.HandleMessage(now, id, data) })
}

// feed runs fn as Do does. The closures stay on the stack (Do only calls
// fn), so a message costs no allocation here.
func (h *linkHandler) feed(fn func(now time.Time, r *sdn.Router)) { (*Driver)(h).Do(fn) }
