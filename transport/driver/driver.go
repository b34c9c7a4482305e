package driver

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/twcc"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/core"
	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/track"
	"github.com/sansrtc/sfu/transport/quic"
	"github.com/sansrtc/sfu/transport/udp"
	"github.com/sansrtc/sfu/transport/webrtc"
	"github.com/sansrtc/sfu/transport/whip"
)

// Defaults of Config.
const (
	DefaultMaxSessions    = 1000
	DefaultConnectTimeout = 30 * time.Second
	consentCheckInterval  = time.Second
	// twccInterval is how often publishers get transport-wide congestion
	// control feedback: what their bandwidth estimate (and so their
	// bitrate and simulcast layers) ramps up on.
	twccInterval = 100 * time.Millisecond
	// maxWorkers bounds Config.Workers: worker i's overlay id carries i in
	// bits 18-23 of the cluster node id.
	maxWorkers   = 64
	workerShift  = 18
	defaultSlack = 8
)

// Config configures a Driver. The zero value listens on 127.0.0.1 with
// ephemeral ports.
type Config struct {
	// Node configures each worker's core node; a zero Seed is replaced by
	// a random one. Its limits (rooms, endpoints) are per worker.
	Node core.Config
	// Workers is how many workers forward media, each with its own node,
	// UDP socket, ICE-TCP listener, lock and timers (default GOMAXPROCS,
	// at most 64). See the package doc, Workers.
	Workers int
	// UDPAddr is the media socket's address (default 127.0.0.1:0). With
	// a port P, worker i listens on P+i; with port 0 each on a free one.
	UDPAddr netip.AddrPort
	// TCPAddr is the ICE-TCP listener's address (default: UDPAddr's IP,
	// port 0), worker i on its port plus i. DisableTCP turns ICE-TCP off.
	TCPAddr    netip.AddrPort
	DisableTCP bool
	// SinglePort has every worker share worker 0's UDP socket and ICE-TCP
	// listener, for deployments that can open only one port: worker 0's
	// read goroutine answers STUN and hands other workers' media to them
	// (a copy and a wake-up per datagram, see the package doc).
	SinglePort bool
	// PlacementSlack is how many sessions more than the least loaded
	// worker a room's worker may have and still take the room's next
	// session (default 8; negative: 0, always the least loaded).
	PlacementSlack int
	// PublicIP, when set, is the address advertised in candidates instead
	// of the listening one (a host behind 1:1 NAT).
	PublicIP netip.Addr
	// Codecs is the codec preference order (default webrtc.DefaultCodecs).
	Codecs []string
	// MaxSessions bounds concurrent sessions; past it offers get
	// whip.ErrOverloaded (HTTP 503). Default 1000.
	MaxSessions int
	// ConsentTimeout closes a session whose peer sent no valid ICE check
	// for this long: the peer vanished (default 30 s, RFC 7675). Browsers
	// check every few seconds; do not go below about 10 s for them.
	ConsentTimeout time.Duration
	// ConnectTimeout closes a session that has not finished its DTLS
	// handshake this long after its offer (default 30 s): a peer that
	// completes ICE and keeps it alive but never connects must not hold a
	// session slot for ever.
	ConnectTimeout time.Duration
	// Logger receives session lifecycle logs (default: discard).
	Logger *slog.Logger
	// Cluster, when set, makes the node one of a cluster: QUIC links to
	// the other nodes on Cluster.Listen, its overlay configured by
	// Cluster.Router (ID and Secret at least; Seeds to join). Rooms then
	// span the cluster's nodes: a viewer here sees tracks published on
	// any of them. Nil: a single node.
	Cluster *ClusterConfig
}

// ClusterConfig configures a node's part in a cluster (Config.Cluster).
type ClusterConfig struct {
	// Listen is the UDP address of the QUIC links (default 127.0.0.1:0).
	Listen netip.AddrPort
	// Router configures the overlay; its Listen is set to the socket's
	// address, a zero Seed to a random one.
	Router sdn.Config
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	if c.MaxSessions < 0 {
		return errors.New("driver: MaxSessions is negative")
	}
	if c.Workers < 0 || c.Workers > maxWorkers {
		return fmt.Errorf("driver: Workers %d out of range 0..%d", c.Workers, maxWorkers)
	}
	return c.Node.Validate()
}

// Stats are the driver's counters, summed over its workers (Workers has
// each one's).
type Stats struct {
	Sessions       int
	SessionsOpened uint64
	// SessionsExpired counts sessions closed because ICE consent lapsed,
	// DTLS failed, or they did not connect within ConnectTimeout.
	SessionsExpired uint64
	// Sent and SendErrors count egress RTP; NotConnected counts transmits
	// dropped because the session had no SRTP keys yet.
	Sent, SendErrors, NotConnected uint64
	// LinkDrops counts media dropped between workers (WorkerStats).
	LinkDrops uint64
	// TCP is the ICE-TCP listeners' counters (zero with DisableTCP).
	TCP udp.TCPStats
	// UDP is the UDP sockets' write counters, summed (GSO is true if
	// any worker's socket uses it).
	UDP     udp.WriteStats
	Workers []WorkerStats
}

// Driver runs W core.Nodes (workers) on real sockets and implements
// whip.Backend.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	certMu sync.Mutex
	cert   *webrtc.Certificate
	certAt time.Time
	links  *quic.Links // with Config.Cluster, on worker 0

	workers []*worker

	// pmu guards placement: which worker each session is on, and the
	// sessions by id. Taken after a worker's lock, never before.
	pmu     sync.Mutex
	load    []int            // sessions (and offers in progress) per worker
	rooms   map[string][]int // a room's sessions per worker
	members map[string]*member
	byID    map[string]*peer
	total   int
	closed  bool
	relinks map[[2]int]bool // in-process links waiting to come up again
}

// member pins a peer of a room to one worker while any of its sessions
// lives, so a second session of the same peer id meets the first one
// (409) instead of replacing it across workers.
type member struct {
	w, n int
}

// placement is a session's share of the placement state.
type placement struct {
	w    int
	room string
	key  string // members key; "" for none
	done bool
}

type peer struct {
	id     string
	w      *worker
	place  *placement
	role   whip.Role
	room   string
	peerID string
	h      core.Handle
	sess   *webrtc.Session
	ufrags []string // every local ufrag registered (restarts add one)
	// remoteUfrag and remotePwd are the peer's current ICE credentials:
	// a PATCH that carries them is trickle, one with new ones a restart.
	remoteUfrag, remotePwd string
	created                time.Time
	// restartAnswer is the answer to the last ICE restart, for a retry.
	restartAnswer string
	// twcc records a publisher's transport-wide sequence numbers and
	// builds the feedback its congestion controller needs (nil when
	// transport-cc was not negotiated). twccExt is the extension id.
	twcc      *twcc.Recorder
	twccExt   uint8
	twccStart time.Time
	pkt       track.Packet // header view for the TWCC sequence number
	// connected: DTLS is done and SRTP keys exist. A viewer's media
	// sections are filled only then, so the keyframe each subscription
	// starts on is not dropped for want of keys.
	connected bool
}

// New opens the sockets. Call Run to serve.
func New(cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Workers == 0 {
		cfg.Workers = min(runtime.GOMAXPROCS(0), maxWorkers)
	}
	switch {
	case cfg.PlacementSlack == 0:
		cfg.PlacementSlack = defaultSlack
	case cfg.PlacementSlack < 0:
		cfg.PlacementSlack = 0
	}
	if !cfg.UDPAddr.IsValid() {
		cfg.UDPAddr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	}
	if !cfg.TCPAddr.IsValid() {
		cfg.TCPAddr = netip.AddrPortFrom(cfg.UDPAddr.Addr(), 0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Node.Seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		cfg.Node.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	W := cfg.Workers
	if c := cfg.Cluster; c != nil && W > 1 && uint32(c.Router.ID)>>workerShift&(maxWorkers-1) != 0 {
		return nil, fmt.Errorf("driver: with %d workers the cluster node id %d must leave bits %d-%d zero (they number the workers)",
			W, c.Router.ID, workerShift, workerShift+5)
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, load: make([]int, W), rooms: map[string][]int{}, members: map[string]*member{},
		byID: map[string]*peer{}, relinks: map[[2]int]bool{}}
	fail := func(err error) (*Driver, error) {
		d.closeSockets()
		return nil, err
	}
	now := time.Now()
	for i := range W {
		ncfg := cfg.Node
		ncfg.Seed = cfg.Node.Seed + uint64(i)*0x9e3779b97f4a7c15
		var id sdn.NodeID
		var rc *sdn.Config
		switch c := cfg.Cluster; {
		case c != nil:
			r := c.Router
			id = r.ID | sdn.NodeID(i)<<workerShift
			r.ID = id
			if i > 0 {
				r.Seeds, r.Listen = nil, netip.AddrPort{} // only worker 0 has QUIC links
			}
			rc = &r
		case W > 1:
			id = sdn.NodeID(i + 1) // an overlay of this process's workers alone
			rc = &sdn.Config{ID: id}
		}
		w := newWorker(d, i, nil, id)
		d.workers = append(d.workers, w)
		if i == 0 && cfg.Cluster != nil {
			// The QUIC links feed worker 0's node under its lock
			// (linkHandler).
			links, err := quic.NewLinks(quic.LinksConfig{Listen: cfg.Cluster.Listen, Logger: cfg.Logger}, (*linkHandler)(w))
			if err != nil {
				return fail(err)
			}
			d.links = links
			rc.Listen = links.LocalAddr()
		}
		if rc != nil {
			if rc.Seed == 0 {
				rc.Seed = ncfg.Seed ^ 0x9e3779b97f4a7c15
			} else {
				rc.Seed += uint64(i)
			}
			if rc.Logger == nil {
				rc.Logger = cfg.Logger
			}
			r, err := sdn.New(*rc, now)
			if err != nil {
				return fail(err)
			}
			ncfg.Router = r
		}
		node, err := core.New(ncfg)
		if err != nil {
			return fail(err)
		}
		w.node = node
		if i > 0 && cfg.SinglePort {
			w.mux, w.tcp = d.workers[0].mux, nil
			continue
		}
		ua, ta := cfg.UDPAddr, cfg.TCPAddr
		if ua.Port() != 0 {
			ua = netip.AddrPortFrom(ua.Addr(), ua.Port()+uint16(i))
		}
		if ta.Port() != 0 {
			ta = netip.AddrPortFrom(ta.Addr(), ta.Port()+uint16(i))
		}
		w.mux, err = udp.Listen(udp.Config{Addr: ua, Logger: cfg.Logger, BatchDone: w.batchDone})
		if err != nil {
			return fail(err)
		}
		if !cfg.DisableTCP {
			if w.tcp, err = w.mux.ListenTCP(ta); err != nil {
				return fail(err)
			}
		}
	}
	cert, err := webrtc.NewCertificate()
	if err != nil {
		return fail(err)
	}
	d.cert, d.certAt = cert, now
	return d, nil
}

// closeSockets closes every socket and link (New's failure, shutdown).
func (d *Driver) closeSockets() {
	if d.links != nil {
		_ = d.links.Close()
	}
	for i, w := range d.workers {
		if i > 0 && d.cfg.SinglePort {
			continue
		}
		if w.tcp != nil {
			_ = w.tcp.Close()
		}
		if w.mux != nil {
			_ = w.mux.Close()
		}
	}
}

// SDNAddr is the node's overlay address, for other nodes' seeds (zero
// without Config.Cluster): worker 0's, the one with the QUIC links.
func (d *Driver) SDNAddr() sdn.Addr {
	if d.cfg.Cluster == nil {
		return sdn.Addr{}
	}
	w := d.workers[0]
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.node.Router().Address()
}

// SDNNeighbours are the other nodes of the cluster this one has QUIC
// links to (nil without Config.Cluster); the in-process links between
// workers are left out.
func (d *Driver) SDNNeighbours() []sdn.NeighbourInfo {
	if d.cfg.Cluster == nil {
		return nil
	}
	w := d.workers[0]
	w.mu.Lock()
	defer w.mu.Unlock()
	var nb []sdn.NeighbourInfo
	for _, n := range w.node.Router().Neighbours() {
		if !isInproc(n.Link) {
			nb = append(nb, n)
		}
	}
	return nb
}

// LinkStats are the QUIC links' counters (zero without Config.Cluster).
func (d *Driver) LinkStats() quic.Stats {
	if d.links == nil {
		return quic.Stats{}
	}
	return d.links.Stats()
}

// linkHandler feeds the QUIC links' events to worker 0's node, under its
// lock (quic.Handler).
type linkHandler worker

func (h *linkHandler) locked(fn func(now time.Time, n *core.Node)) {
	w := (*worker)(h)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.node == nil {
		return
	}
	now := time.Now()
	fn(now, w.node)
	w.drainLocked(now)
}

func (h *linkHandler) LinkUp(id sdn.LinkID, info sdn.LinkInfo) {
	h.locked(func(now time.Time, n *core.Node) { n.HandleLinkUp(now, id, info) })
}

func (h *linkHandler) LinkDown(id sdn.LinkID) {
	h.locked(func(now time.Time, n *core.Node) { n.HandleLinkDown(now, id) })
}

func (h *linkHandler) DialFailed(a sdn.Addr) {
	h.locked(func(now time.Time, n *core.Node) { n.HandleDialFailed(now, a) })
}

func (h *linkHandler) Message(id sdn.LinkID, data []byte, _ bool) {
	h.locked(func(now time.Time, n *core.Node) { n.HandleLinkMessage(now, id, data) })
}

// Workers is the number of workers.
func (d *Driver) Workers() int { return len(d.workers) }

// UDPAddr is worker 0's media socket (WorkerUDPAddr for the others).
func (d *Driver) UDPAddr() netip.AddrPort { return d.WorkerUDPAddr(0) }

// TCPAddr is worker 0's ICE-TCP listener (invalid when disabled).
func (d *Driver) TCPAddr() netip.AddrPort { return d.WorkerTCPAddr(0) }

// WorkerUDPAddr is worker i's media socket.
func (d *Driver) WorkerUDPAddr(i int) netip.AddrPort { return d.workers[i].mux.LocalAddr() }

// WorkerTCPAddr is worker i's ICE-TCP listener (invalid when disabled;
// worker 0's in single-port mode).
func (d *Driver) WorkerTCPAddr(i int) netip.AddrPort {
	w := d.workers[i]
	if d.cfg.SinglePort {
		w = d.workers[0]
	}
	if w.tcp == nil {
		return netip.AddrPort{}
	}
	return w.tcp.LocalAddr()
}

// Stats returns the driver's counters.
func (d *Driver) Stats() Stats {
	var s Stats
	for i, w := range d.workers {
		w.mu.Lock()
		ws := w.statsLocked()
		w.mu.Unlock()
		if i > 0 && d.cfg.SinglePort {
			ws.TCP, ws.TCPAddr = udp.TCPStats{}, netip.AddrPort{}
		}
		s.Workers = append(s.Workers, ws)
		s.Sessions += ws.Sessions
		s.SessionsOpened += ws.SessionsOpened
		s.SessionsExpired += ws.SessionsExpired
		s.Sent += ws.Sent
		s.SendErrors += ws.SendErrors
		s.NotConnected += ws.NotConnected
		s.LinkDrops += ws.LinkDrops
		t := &s.TCP
		t.Accepted += ws.TCP.Accepted
		t.Rejected += ws.TCP.Rejected
		t.Bound += ws.TCP.Bound
		t.Dropped += ws.TCP.Dropped
		t.Stalled += ws.TCP.Stalled
		t.Pending += ws.TCP.Pending
		t.Open += ws.TCP.Open
		u := &s.UDP
		u.Datagrams += ws.UDP.Datagrams
		u.Syscalls += ws.UDP.Syscalls
		u.GSOMessages += ws.UDP.GSOMessages
		u.GSODatagrams += ws.UDP.GSODatagrams
		u.GSOFallbacks += ws.UDP.GSOFallbacks
		u.GSO = u.GSO || ws.UDP.GSO
	}
	return s
}

// Inspect runs fn with each worker's node in turn, under that worker's
// lock (for tests and metrics; fn must not keep the node).
func (d *Driver) Inspect(fn func(n *core.Node)) {
	for _, w := range d.workers {
		w.mu.Lock()
		fn(w.node)
		w.mu.Unlock()
	}
}

// Run serves until ctx is done, then closes every session and socket.
func (d *Driver) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(d.workers))
	serving := 0
	for i, w := range d.workers {
		if i > 0 && d.cfg.SinglePort {
			continue
		}
		serving++
		go func() { errc <- w.mux.Serve(ctx) }()
	}
	if d.links != nil {
		d.links.Start()
	}
	now := time.Now()
	for i, w := range d.workers {
		w.mu.Lock()
		for j := i + 1; j < len(d.workers); j++ {
			// Links between every pair of workers: each room that spans
			// workers is one overlay channel per track, as in a cluster.
			w.node.HandleLinkUp(now, inprocLink|sdn.LinkID(j), sdn.LinkInfo{Dialed: true, Peer: d.workers[j].id})
		}
		for j := range i {
			w.node.HandleLinkUp(now, inprocLink|sdn.LinkID(j), sdn.LinkInfo{})
		}
		w.drainLocked(now) // the hellos, and the first dials to the seeds
		w.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, w := range d.workers {
		w.imu.Lock()
		w.running = true
		w.imu.Unlock()
		wg.Add(1)
		go func() { defer wg.Done(); w.loop(ctx) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		serving--
	}
	cancel()
	wg.Wait()
	d.shutdown()
	for ; serving > 0; serving-- {
		if e := <-errc; err == nil {
			err = e
		}
	}
	return err
}

// shutdown refuses new sessions, closes every session, leaves the overlay
// and closes the sockets.
func (d *Driver) shutdown() {
	d.pmu.Lock()
	d.closed = true
	d.pmu.Unlock()
	for _, w := range d.workers {
		w.stop()
	}
	now := time.Now()
	for _, w := range d.workers {
		w.mu.Lock()
		w.shutdownLocked(now)
		w.mu.Unlock()
	}
	if d.links != nil {
		time.Sleep(50 * time.Millisecond) // let the goodbyes leave
	}
	d.closeSockets()
}

// reserve places a new session (see place) and counts it against
// MaxSessions until release.
func (d *Driver) reserve(room, peerID string) (*placement, error) {
	d.pmu.Lock()
	defer d.pmu.Unlock()
	if d.closed {
		return nil, errShuttingDown
	}
	if d.total >= d.cfg.MaxSessions {
		return nil, fmt.Errorf("%w: %d sessions", whip.ErrOverloaded, d.total)
	}
	pl := &placement{room: room}
	counts := d.rooms[room]
	if peerID != "" {
		pl.key = room + "\x00" + peerID
	}
	if m := d.members[pl.key]; pl.key != "" && m != nil {
		pl.w = m.w
		m.n++
	} else {
		pl.w = place(d.load, counts, d.cfg.PlacementSlack)
		if pl.key != "" {
			d.members[pl.key] = &member{w: pl.w, n: 1}
		}
	}
	if counts == nil {
		counts = make([]int, len(d.workers))
		d.rooms[room] = counts
	}
	counts[pl.w]++
	d.load[pl.w]++
	d.total++
	return pl, nil
}

// release undoes reserve (once), and forgets session id.
func (d *Driver) release(pl *placement, id string) {
	d.pmu.Lock()
	defer d.pmu.Unlock()
	if id != "" && d.byID[id] != nil && d.byID[id].place == pl {
		delete(d.byID, id)
	}
	if pl == nil || pl.done {
		return
	}
	pl.done = true
	d.load[pl.w]--
	d.total--
	if c := d.rooms[pl.room]; c != nil {
		c[pl.w]--
		if !slices.ContainsFunc(c, func(n int) bool { return n != 0 }) {
			delete(d.rooms, pl.room)
		}
	}
	if m := d.members[pl.key]; pl.key != "" && m != nil {
		if m.n--; m.n == 0 {
			delete(d.members, pl.key)
		}
	}
}

// relink takes the in-process link between workers a and b down (the
// overlay closed it: a handshake or liveness failure) and brings it up
// again after relinkDelay, as a driver redials a lost QUIC link.
func (d *Driver) relink(a, b int) {
	lo, hi := min(a, b), max(a, b)
	d.pmu.Lock()
	if d.relinks[[2]int{lo, hi}] || d.closed {
		d.pmu.Unlock()
		return
	}
	d.relinks[[2]int{lo, hi}] = true
	d.pmu.Unlock()
	down := func(w *worker, other int) {
		w.post(func(now time.Time) error {
			w.node.HandleLinkDown(now, inprocLink|sdn.LinkID(other))
			return nil
		})
	}
	down(d.workers[lo], hi)
	down(d.workers[hi], lo)
	time.AfterFunc(relinkDelay, func() {
		d.pmu.Lock()
		delete(d.relinks, [2]int{lo, hi})
		d.pmu.Unlock()
		// The accepting side first: its link exists before the hello
		// arrives (both inboxes run in order).
		d.workers[hi].post(func(now time.Time) error {
			d.workers[hi].node.HandleLinkUp(now, inprocLink|sdn.LinkID(lo), sdn.LinkInfo{})
			return nil
		})
		d.workers[lo].post(func(now time.Time) error {
			d.workers[lo].node.HandleLinkUp(now, inprocLink|sdn.LinkID(hi), sdn.LinkInfo{Dialed: true, Peer: d.workers[hi].id})
			return nil
		})
	})
}

// certRenewal is the age at which the DTLS certificate (valid 30 days) is
// replaced for new sessions; sessions keep the one they started with.
var certRenewal atomic.Int64 // a time.Duration; tests shorten it

func init() { certRenewal.Store(int64(7 * 24 * time.Hour)) }

// certificate returns the DTLS certificate for a new session, renewing it
// when it is certRenewal old, so a long-running server never hands out an
// expired one.
func (d *Driver) certificate() (*webrtc.Certificate, error) {
	d.certMu.Lock()
	defer d.certMu.Unlock()
	if time.Since(d.certAt) >= time.Duration(certRenewal.Load()) {
		c, err := webrtc.NewCertificate()
		if err != nil {
			return nil, err
		}
		d.cert, d.certAt = c, time.Now()
	}
	return d.cert, nil
}

// Offer implements whip.Backend: it places the session on a worker,
// negotiates with that worker's candidates, and has the worker create
// the endpoint and the WebRTC session (worker.do: the handler never takes
// a worker's lock).
func (d *Driver) Offer(ctx context.Context, req whip.Request) (whip.Answer, error) {
	ufrag, pwd := webrtc.NewICECredentials()
	cert, err := d.certificate()
	if err != nil {
		return whip.Answer{}, err
	}
	// A viewer joins the room under its peer id plus "#whep", so one
	// participant (one token) can publish by WHIP and watch by WHEP; its
	// own tracks stay out of its view (slotCandidates).
	epeer := req.PeerID
	if req.Role == whip.Subscribe {
		epeer += "#whep"
	}
	pl, err := d.reserve(req.Room, epeer)
	if err != nil {
		return whip.Answer{}, err
	}
	w := d.workers[pl.w]
	placed := false
	defer func() {
		if !placed {
			d.release(pl, "")
		}
	}()
	neg, err := webrtc.Negotiate(req.Offer, &webrtc.Config{ICEUfrag: ufrag, ICEPwd: pwd, Fingerprint: cert.Fingerprint(),
		Candidates: w.candidates(), Codecs: d.cfg.Codecs, Send: req.Role == whip.Subscribe})
	switch {
	case errors.Is(err, webrtc.ErrMalformed):
		return whip.Answer{}, fmt.Errorf("%w: %v", whip.ErrMalformed, err)
	case errors.Is(err, webrtc.ErrUnsupported):
		return whip.Answer{}, fmt.Errorf("%w: %v", whip.ErrUnsupported, err)
	case err != nil:
		return whip.Answer{}, err
	}
	want := webrtc.RecvOnly // what we do on a publisher's media
	if req.Role == whip.Subscribe {
		want = webrtc.SendOnly
	}
	usable := 0
	for _, m := range neg.Media {
		if m.Rejected || m.Direction == webrtc.Inactive {
			continue // answered inactive: nothing flows there
		}
		if m.Direction != want {
			return whip.Answer{}, fmt.Errorf("%w: a %s session cannot have a %s media section", whip.ErrUnsupported, req.Role, m.Direction)
		}
		usable++
	}
	if usable == 0 {
		return whip.Answer{}, fmt.Errorf("%w: no usable media section", whip.ErrUnsupported)
	}
	p := &peer{id: whip.NewSessionID(), w: w, place: pl, role: req.Role, room: req.Room, peerID: req.PeerID, ufrags: []string{ufrag},
		remoteUfrag: neg.RemoteUfrag, remotePwd: neg.RemotePwd}
	ecfg := core.EndpointConfig{PeerID: epeer, Extensions: extensions(neg)}
	if req.Role == whip.Subscribe {
		// The core chooses what the viewer's media sections show
		// (core.Slot): the room's tracks, never its own peer's.
		ecfg.Slots, ecfg.ExcludePeer = viewerSlots(neg), req.PeerID
	}
	// byID first: the session may close (and release) as soon as the
	// worker has it.
	d.pmu.Lock()
	d.byID[p.id] = p
	d.pmu.Unlock()
	err = w.do(true, func(now time.Time) error { return w.open(now, p, &ecfg, neg, cert, pwd) })
	if err != nil {
		d.pmu.Lock()
		delete(d.byID, p.id)
		d.pmu.Unlock()
		return whip.Answer{}, err
	}
	placed = true
	d.log.LogAttrs(ctx, slog.LevelInfo, "session opened", slog.String("id", p.id), slog.String("role", req.Role.String()),
		slog.String("room", req.Room), slog.String("peer", req.PeerID), slog.Int("worker", w.idx))
	return whip.Answer{SDP: neg.Answer, ID: p.id, ETag: p.etag()}, nil
}

// open is an offer's work on its worker: the endpoint, its tracks, the
// WebRTC session.
func (w *worker) open(now time.Time, p *peer, ecfg *core.EndpointConfig, neg *webrtc.Negotiated, cert *webrtc.Certificate, pwd string) error {
	p.created = now
	h, err := w.node.CreateEndpoint(now, *ecfg)
	if err != nil {
		return classify(err)
	}
	p.h = h
	fail := func(err error) error {
		_ = w.node.CloseEndpoint(now, h)
		return classify(err)
	}
	if err := w.node.Join(now, h, p.room); err != nil {
		return fail(err)
	}
	if p.role == whip.Publish {
		if err := w.publishLocked(now, h, neg); err != nil {
			return fail(err)
		}
		for i := range neg.Media {
			if id := neg.Media[i].ExtensionID(webrtc.ExtTransportCC); id > 0 && id < 256 {
				var b [4]byte
				_, _ = crand.Read(b[:])
				p.twcc, p.twccExt, p.twccStart = twcc.NewRecorder(binary.BigEndian.Uint32(b[:])|1), uint8(id), now
				break
			}
		}
	}
	sess, err := webrtc.NewSession(now, webrtc.SessionConfig{
		Certificate: cert, LocalUfrag: p.ufrags[0], LocalPwd: pwd, RemoteUfrag: neg.RemoteUfrag,
		RemoteFingerprint: neg.RemoteFingerprint, Logger: w.d.log, ConsentTimeout: w.d.cfg.ConsentTimeout,
		OnRTP:  func(now time.Time, pkt []byte) { w.input(now, h, pkt, false) },
		OnRTCP: func(now time.Time, pkt []byte) { w.input(now, h, pkt, true) },
		OnStateChange: func(s webrtc.State) {
			switch s {
			case webrtc.StateFailed, webrtc.StateClosed: // handshake failed, or the peer hung up (close_notify)
				w.markFailed(h)
			case webrtc.StateConnected:
				w.markConnected(h)
			}
		},
	})
	if err != nil {
		return fail(err)
	}
	p.sess = sess
	w.peers[h] = p
	if p.twcc != nil {
		w.publishers++ // the loop now wakes for feedback (run's drain)
	}
	w.mux.Register(p.ufrags[0], &sessHandler{w: w, sess: sess})
	w.stats.SessionsOpened++
	return nil
}

// extensions picks the header-extension ids the endpoint demultiplexes by.
// With BUNDLE one id means one extension across the session.
func extensions(neg *webrtc.Negotiated) endpoint.Extensions {
	var e endpoint.Extensions
	set := func(dst *uint8, m *webrtc.Media, uri string) {
		if id := m.ExtensionID(uri); *dst == 0 && id > 0 && id < 256 {
			*dst = uint8(id)
		}
	}
	for i := range neg.Media {
		m := &neg.Media[i]
		set(&e.MID, m, webrtc.ExtMID)
		set(&e.RID, m, webrtc.ExtRID)
		set(&e.RepairedRID, m, webrtc.ExtRepairedRID)
		set(&e.AudioLevel, m, webrtc.ExtAudioLevel)
		set(&e.TransportCC, m, webrtc.ExtTransportCC)
		set(&e.AbsSendTime, m, webrtc.ExtAbsSendTime)
	}
	return e
}

// classify gives an error of the core the whip status class it deserves:
// limits of the node are 503, a request that cannot be served as offered
// 422, a clash with what exists 409. Anything else stays a 500.
func classify(err error) error {
	var class error
	switch {
	case errors.Is(err, cluster.ErrPeerExists), errors.Is(err, endpoint.ErrDuplicateTrack), errors.Is(err, cluster.ErrTrackExists):
		class = whip.ErrConflict
	case errors.Is(err, cluster.ErrRoomFull), errors.Is(err, cluster.ErrTooManyRooms), errors.Is(err, core.ErrTooManyPeers):
		class = whip.ErrOverloaded
	case errors.Is(err, endpoint.ErrInvalidTrack), errors.Is(err, endpoint.ErrTooManyTracks), errors.Is(err, endpoint.ErrSSRCInUse):
		class = whip.ErrUnsupported
	case errors.Is(err, cluster.ErrInvalidRoomID):
		class = whip.ErrMalformed
	default:
		return err
	}
	return fmt.Errorf("%w: %v", class, err)
}

// ridOrder ranks common simulcast RID names from lowest to highest
// quality; unknown names keep the offer's order after the known ones.
var ridOrder = map[string]int{"q": 0, "l": 0, "low": 0, "0": 0, "h": 1, "m": 1, "mid": 1, "1": 1, "f": 2, "high": 2, "2": 2}

func (w *worker) publishLocked(now time.Time, h core.Handle, neg *webrtc.Negotiated) error {
	counts := map[webrtc.Kind]int{}
	for _, m := range neg.Media {
		if m.Rejected || m.Direction != webrtc.RecvOnly {
			continue
		}
		counts[m.Kind]++
		name := string(m.Kind)
		if c := counts[m.Kind]; c > 1 {
			name = fmt.Sprintf("%s-%d", m.Kind, c)
		}
		codec := track.CodecByName(m.Codec.Name)
		if codec == track.CodecUnknown {
			return fmt.Errorf("%w: codec %s", whip.ErrUnsupported, m.Codec.Name)
		}
		var encs []track.Encoding
		if len(m.RIDs) > 0 {
			rids := slices.Clone(m.RIDs)
			slices.SortStableFunc(rids, func(a, b string) int {
				ra, oka := ridOrder[strings.ToLower(a)]
				rb, okb := ridOrder[strings.ToLower(b)]
				if !oka {
					ra = 3
				}
				if !okb {
					rb = 3
				}
				return ra - rb
			})
			for _, r := range rids {
				encs = append(encs, track.Encoding{RID: r})
			}
		} else if len(m.Streams) > 0 {
			encs = []track.Encoding{{SSRC: m.Streams[0].SSRC, RTXSSRC: m.Streams[0].RTXSSRC}}
		}
		// Packets lost on the way in are NACKed when the peer agreed to
		// "nack"; its retransmissions come as RTX when it negotiated RTX.
		nack := slices.Contains(m.Codec.Feedback, "nack")
		err := w.node.Publish(now, h, endpoint.TrackOptions{Name: name, Codec: codec, PayloadType: m.Codec.PayloadType,
			MID: m.MID, Encodings: encs, NACK: nack, RTXPayloadType: m.RTXPayloadType})
		if err != nil {
			return err
		}
	}
	return nil
}

// viewerSlots are a WHEP viewer's media sections as core slots: each
// SSRC we send on, and every codec the viewer accepted there.
func viewerSlots(neg *webrtc.Negotiated) []core.Slot {
	var slots []core.Slot
	for _, m := range neg.Media {
		if m.Rejected || m.Direction != webrtc.SendOnly {
			continue
		}
		s := core.Slot{SSRC: m.LocalSSRC, Kind: track.KindVideo, PayloadTypes: map[track.Codec]uint8{},
			RTXSSRC: m.LocalRTXSSRC, RTXPayloadTypes: map[track.Codec]uint8{}}
		if m.Kind == webrtc.KindAudio {
			s.Kind = track.KindAudio
		}
		for _, mc := range m.Codecs {
			if c := track.CodecByName(mc.Name); c != track.CodecUnknown {
				if _, dup := s.PayloadTypes[c]; !dup {
					s.PayloadTypes[c] = mc.PayloadType
					if mc.RTXPayloadType != 0 && m.LocalRTXSSRC != 0 {
						s.RTXPayloadTypes[c] = mc.RTXPayloadType
					}
				}
			}
		}
		slots = append(slots, s)
	}
	return slots
}

// Patch implements whip.Backend. Trickled candidates need no action from
// an ICE-lite server: the peer's checks reveal its addresses. A fragment
// with new ICE credentials is an ICE restart (RFC 9725 section 4.3): the
// session gets new local credentials, DTLS and SRTP carry on, and the
// answer fragment carries our new credentials and candidates.
//
// The session's entity-tag changes with each restart; a PATCH whose
// If-Match names an older one is refused (412). A restart repeated with
// the same credentials and If-Match "*" (a client retrying after a lost
// response) gets the same answer again.
func (d *Driver) Patch(ctx context.Context, req whip.PatchRequest) (whip.PatchResult, error) {
	frag, err := webrtc.ParseICEFragment(req.Fragment)
	if err != nil {
		return whip.PatchResult{}, fmt.Errorf("%w: %v", whip.ErrMalformed, err)
	}
	d.pmu.Lock()
	p := d.byID[req.ID]
	d.pmu.Unlock()
	if p == nil || p.role != req.Role || p.room != req.Room {
		return whip.PatchResult{}, whip.ErrNotFound
	}
	var res whip.PatchResult
	err = p.w.do(false, func(now time.Time) error {
		var err error
		res, err = p.w.patch(now, p, req, frag)
		return err
	})
	return res, err
}

// patch is a PATCH's work on the session's worker.
func (w *worker) patch(now time.Time, p *peer, req whip.PatchRequest, frag webrtc.ICEFragment) (whip.PatchResult, error) {
	if w.peers[p.h] != p {
		return whip.PatchResult{}, whip.ErrNotFound // closed meanwhile
	}
	if req.IfMatch != "" && req.IfMatch != "*" && req.IfMatch != p.etag() {
		return whip.PatchResult{}, fmt.Errorf("%w: If-Match %s, the session is %s", whip.ErrPreconditionFailed, req.IfMatch, p.etag())
	}
	if frag.Ufrag == "" && frag.Pwd == "" {
		return whip.PatchResult{ETag: p.etag()}, nil // trickle without credentials
	}
	if frag.Ufrag == p.remoteUfrag {
		// Trickle with the current credentials (RFC 8840 fragments carry
		// them): ICE-lite takes no remote candidates, so nothing to do.
		// The same ufrag with another password is no valid restart.
		if frag.Pwd != "" && frag.Pwd != p.remotePwd {
			return whip.PatchResult{}, fmt.Errorf("%w: ice-pwd changed without ice-ufrag", whip.ErrMalformed)
		}
		if req.IfMatch == "*" && p.restartAnswer != "" {
			return whip.PatchResult{Fragment: p.restartAnswer, ETag: p.etag()}, nil // a retried restart
		}
		return whip.PatchResult{ETag: p.etag()}, nil
	}
	if frag.Ufrag == "" || frag.Pwd == "" {
		return whip.PatchResult{}, fmt.Errorf("%w: an ICE restart needs both ice-ufrag and ice-pwd", whip.ErrMalformed)
	}
	if len(p.ufrags) >= 16 {
		return whip.PatchResult{}, fmt.Errorf("%w: too many ICE restarts", whip.ErrConflict)
	}
	ufrag, pwd := webrtc.NewICECredentials()
	if err := p.sess.RestartICE(now, ufrag, pwd, frag.Ufrag); err != nil {
		return whip.PatchResult{}, fmt.Errorf("%w: %v", whip.ErrConflict, err)
	}
	// The old ufrag stays registered so the current path keeps working
	// until the peer nominates one with the new credentials.
	w.mux.Register(ufrag, &sessHandler{w: w, sess: p.sess})
	p.ufrags = append(p.ufrags, ufrag)
	p.remoteUfrag, p.remotePwd = frag.Ufrag, frag.Pwd
	p.restartAnswer = webrtc.AnswerFragment(ufrag, pwd, w.candidates())
	return whip.PatchResult{Fragment: p.restartAnswer, ETag: p.etag()}, nil
}

// etag is the session's entity-tag: its id and its number of ICE
// restarts.
func (p *peer) etag() string { return `"` + p.id + "." + strconv.Itoa(len(p.ufrags)-1) + `"` }

// Delete implements whip.Backend: it ends the session and frees
// everything it held.
func (d *Driver) Delete(ctx context.Context, role whip.Role, room, id string) error {
	d.pmu.Lock()
	p := d.byID[id]
	d.pmu.Unlock()
	if p == nil || p.role != role || p.room != room {
		return whip.ErrNotFound
	}
	return p.w.do(false, func(now time.Time) error {
		if p.w.peers[p.h] != p {
			return whip.ErrNotFound // closed meanwhile
		}
		p.w.closePeerLocked(now, p, "deleted")
		return nil
	})
}

// Close releases the sockets of a Driver that was never Run.
func (d *Driver) Close() error {
	d.shutdown()
	return nil
}

// advertised is a listening address as candidates show it (Config.PublicIP).
func (d *Driver) advertised(a netip.AddrPort) netip.AddrPort {
	if d.cfg.PublicIP.IsValid() {
		return netip.AddrPortFrom(d.cfg.PublicIP, a.Port())
	}
	return a
}

// Counts sums the live-object counts of every worker's node (leak checks,
// metrics). RemoteMembers and Relays include what workers see of each
// other through the overlay.
func (d *Driver) Counts() core.Counts {
	var s core.Counts
	d.Inspect(func(n *core.Node) {
		c := n.Counts()
		s.Endpoints += c.Endpoints
		s.RemoteTracks += c.RemoteTracks
		s.LocalTracks += c.LocalTracks
		s.Rooms += c.Rooms
		s.Members += c.Members
		s.Channels += c.Channels
		s.Sources += c.Sources
		s.Subscriptions += c.Subscriptions
		s.RemoteMembers += c.RemoteMembers
		s.Relays += c.Relays
		s.Timers += c.Timers
		s.QueuedTransmits += c.QueuedTransmits
		s.QueuedFeedback += c.QueuedFeedback
		s.QueuedEvents += c.QueuedEvents
	})
	return s
}
