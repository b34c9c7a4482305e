package driver

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
)

// Config configures a Driver. The zero value listens on 127.0.0.1 with
// ephemeral ports.
type Config struct {
	// Node configures the core node; a zero Seed is replaced by a random
	// one.
	Node core.Config
	// UDPAddr is the media socket's address (default 127.0.0.1:0).
	UDPAddr netip.AddrPort
	// TCPAddr is the ICE-TCP listener's address (default: UDPAddr's IP,
	// port 0). DisableTCP turns ICE-TCP off.
	TCPAddr    netip.AddrPort
	DisableTCP bool
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
	return c.Node.Validate()
}

// Stats are the driver's counters.
type Stats struct {
	Sessions       int
	SessionsOpened uint64
	// SessionsExpired counts sessions closed because ICE consent lapsed,
	// DTLS failed, or they did not connect within ConnectTimeout.
	SessionsExpired uint64
	// Sent and SendErrors count egress RTP; NotConnected counts transmits
	// dropped because the session had no SRTP keys yet.
	Sent, SendErrors, NotConnected uint64
	// TCP is the ICE-TCP listener's counters (zero with DisableTCP).
	TCP udp.TCPStats
}

// Driver runs a core.Node on real sockets and implements whip.Backend.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	certMu sync.Mutex
	cert   *webrtc.Certificate
	certAt time.Time
	mux    *udp.Mux
	links  *quic.Links // with Config.Cluster
	tcp    *udp.TCPListener

	mu      sync.Mutex
	node    *core.Node
	peers   map[core.Handle]*peer
	byID    map[string]*peer
	plain   []byte
	bufs    [][]byte
	batch   []udp.Datagram
	rtcpBuf []byte
	sleep   time.Time // when the timer goroutine will next wake
	stats   Stats
	closed  bool
	failed  []*peer // sessions whose DTLS failed, closed by the timer goroutine
	// publishers counts sessions with TWCC feedback to send; the timer
	// goroutine then wakes every twccInterval.
	publishers  int
	lastTWCC    time.Time
	lastConsent time.Time
	scratch     []*peer

	wake chan struct{}
}

type peer struct {
	id     string
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
	d := &Driver{cfg: cfg, log: cfg.Logger}
	if c := cfg.Cluster; c != nil {
		// One process, both drivers: the QUIC links feed the same node
		// under the same lock (linkHandler).
		links, err := quic.NewLinks(quic.LinksConfig{Listen: c.Listen, Logger: cfg.Logger}, (*linkHandler)(d))
		if err != nil {
			return nil, err
		}
		rc := c.Router
		rc.Listen = links.LocalAddr()
		if rc.Seed == 0 {
			rc.Seed = cfg.Node.Seed ^ 0x9e3779b97f4a7c15
		}
		if rc.Logger == nil {
			rc.Logger = cfg.Logger
		}
		r, err := sdn.New(rc, time.Now())
		if err != nil {
			links.Close()
			return nil, err
		}
		d.links, cfg.Node.Router = links, r
	}
	node, err := core.New(cfg.Node)
	if err != nil {
		d.closeLinks()
		return nil, err
	}
	cert, err := webrtc.NewCertificate()
	if err != nil {
		d.closeLinks()
		return nil, err
	}
	mux, err := udp.Listen(udp.Config{Addr: cfg.UDPAddr, Logger: cfg.Logger})
	if err != nil {
		d.closeLinks()
		return nil, err
	}
	d.cfg, d.cert, d.certAt, d.mux, d.node = cfg, cert, time.Now(), mux, node
	d.peers, d.byID = map[core.Handle]*peer{}, map[string]*peer{}
	d.plain, d.rtcpBuf = make([]byte, 1500), make([]byte, 1500)
	d.wake = make(chan struct{}, 1)
	if !cfg.DisableTCP {
		d.tcp, err = mux.ListenTCP(cfg.TCPAddr)
		if err != nil {
			mux.Close()
			d.closeLinks()
			return nil, err
		}
	}
	return d, nil
}

func (d *Driver) closeLinks() {
	if d.links != nil {
		_ = d.links.Close()
	}
}

// SDNAddr is the node's overlay address, for other nodes' seeds (zero
// without Config.Cluster).
func (d *Driver) SDNAddr() sdn.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.node.Router(); r != nil {
		return r.Address()
	}
	return sdn.Addr{}
}

// LinkStats are the QUIC links' counters (zero without Config.Cluster).
func (d *Driver) LinkStats() quic.Stats {
	if d.links == nil {
		return quic.Stats{}
	}
	return d.links.Stats()
}

// linkHandler feeds the QUIC links' events to the node, under the
// driver's lock (quic.Handler).
type linkHandler Driver

func (h *linkHandler) locked(fn func(now time.Time, n *core.Node)) {
	d := (*Driver)(h)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.node == nil {
		return
	}
	now := time.Now()
	fn(now, d.node)
	d.drainLocked(now)
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

// UDPAddr is the media socket's address.
func (d *Driver) UDPAddr() netip.AddrPort { return d.mux.LocalAddr() }

// TCPAddr is the ICE-TCP listener's address (invalid when disabled).
func (d *Driver) TCPAddr() netip.AddrPort {
	if d.tcp == nil {
		return netip.AddrPort{}
	}
	return d.tcp.LocalAddr()
}

// Stats returns the driver's counters.
func (d *Driver) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Sessions = len(d.peers)
	if d.tcp != nil {
		s.TCP = d.tcp.Stats()
	}
	return s
}

// Inspect runs fn with the node, under the driver's lock (for tests and
// metrics; fn must not keep the node).
func (d *Driver) Inspect(fn func(n *core.Node)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d.node)
}

// Run serves until ctx is done, then closes every session and socket.
func (d *Driver) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- d.mux.Serve(ctx) }()
	if d.links != nil {
		d.links.Start()
		d.mu.Lock()
		d.drainLocked(time.Now()) // the first dials to the seeds
		d.mu.Unlock()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		d.mu.Lock()
		next := now.Add(consentCheckInterval)
		if d.publishers > 0 {
			next = now.Add(twccInterval)
		}
		if at, ok := d.node.PollTimeout(); ok && at.Before(next) {
			next = at
		}
		d.sleep = next
		d.mu.Unlock()
		timer.Reset(max(next.Sub(now), 0))
		select {
		case <-ctx.Done():
			d.shutdown()
			<-errc
			return nil
		case err := <-errc:
			d.shutdown()
			return err
		case <-d.wake:
		case <-timer.C:
		}
		now = time.Now()
		d.mu.Lock()
		d.node.HandleTimeout(now)
		if now.Sub(d.lastTWCC) >= twccInterval {
			d.lastTWCC = now
			d.sendTWCCLocked()
		}
		if now.Sub(d.lastConsent) >= consentCheckInterval {
			d.lastConsent = now
			d.expireLocked(now)
		}
		d.drainLocked(now)
		d.mu.Unlock()
	}
}

func (d *Driver) shutdown() {
	d.mu.Lock()
	now := time.Now()
	for _, p := range d.sortedPeers() {
		d.closePeerLocked(now, p, "shutdown")
	}
	if r := d.node.Router(); r != nil && !d.closed {
		// Leave the overlay: our directory entries and channels end at
		// once everywhere, instead of by soft-state timeout.
		r.Close(now)
		d.drainLocked(now)
	}
	d.closed = true
	d.mu.Unlock()
	if d.links != nil {
		time.Sleep(50 * time.Millisecond) // let the goodbyes leave
		d.closeLinks()
	}
	if d.tcp != nil {
		d.tcp.Close()
	}
	d.mux.Close()
}

// sortedPeers lists peers by handle, so map order never decides anything.
// The slice is reused: it is valid until the next call.
func (d *Driver) sortedPeers() []*peer {
	clear(d.scratch) // drop closed peers from the last call
	ps := d.scratch[:0]
	for _, p := range d.peers {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *peer) int { return cmp.Compare(a.h, b.h) })
	d.scratch = ps
	return ps
}

// expireLocked closes sessions whose consent lapsed or whose DTLS failed.
func (d *Driver) expireLocked(now time.Time) {
	for _, p := range d.failed {
		if d.peers[p.h] == p {
			d.stats.SessionsExpired++
			d.closePeerLocked(now, p, "dtls failed or closed by the peer")
		}
	}
	d.failed = d.failed[:0]
	for _, p := range d.sortedPeers() {
		switch {
		case p.sess.Expired(now):
			d.stats.SessionsExpired++
			d.closePeerLocked(now, p, "ice consent expired")
		case !p.connected && now.Sub(p.created) >= d.cfg.ConnectTimeout:
			d.stats.SessionsExpired++
			d.closePeerLocked(now, p, "not connected in time")
		}
	}
}

func (d *Driver) closePeerLocked(now time.Time, p *peer, why string) {
	for _, u := range p.ufrags {
		d.mux.Unregister(u)
	}
	_ = p.sess.Close()
	_ = d.node.CloseEndpoint(now, p.h)
	delete(d.peers, p.h)
	delete(d.byID, p.id)
	if p.twcc != nil {
		d.publishers--
	}
	d.log.LogAttrs(context.Background(), slog.LevelInfo, "session closed", slog.String("id", p.id),
		slog.String("role", p.role.String()), slog.String("room", p.room), slog.String("peer", p.peerID), slog.String("why", why))
	d.drainLocked(now)
}

// input runs one packet input on the node and drains its outputs.
func (d *Driver) input(now time.Time, h core.Handle, pkt []byte, rtcp bool) {
	d.mu.Lock()
	if d.peers[h] == nil {
		d.mu.Unlock()
		return
	}
	if rtcp {
		_ = d.node.HandleRTCP(now, h, pkt)
	} else {
		if p := d.peers[h]; p.twcc != nil && p.pkt.Unmarshal(pkt) == nil {
			if ext := p.pkt.Extension(p.twccExt); len(ext) >= 2 {
				p.twcc.Record(p.pkt.SSRC, binary.BigEndian.Uint16(ext), now.Sub(p.twccStart).Microseconds())
			}
		}
		_ = d.node.HandleRTP(now, h, pkt)
	}
	d.drainLocked(now)
	d.mu.Unlock()
}

// drainLocked sends what the node has to send. RTP is marshalled,
// encrypted and batched as it is polled; the batch goes out when the node
// has nothing more. Events need no action here: what a viewer's media
// sections show is the core's policy (core.Slot).
func (d *Driver) drainLocked(now time.Time) {
	n := 0
	var replaced []*peer
	for {
		o, ok := d.node.Poll(d.rtcpBuf)
		if !ok {
			break
		}
		switch o.Kind {
		case core.OutputRTP:
			n = d.sendTransmit(&o.RTP, n)
		case core.OutputRTCP:
			if p := d.peers[o.Endpoint]; p != nil {
				_ = p.sess.WriteRTCP(o.Data)
			}
		case core.OutputLink:
			d.links.Send(now, o.Link, o.Data, o.Datagram)
		case core.OutputDial:
			d.links.Dial(o.Addr)
		case core.OutputCloseLink:
			d.links.CloseLink(o.Link)
		case core.OutputEvent:
			// The same peer joined on another node later: this session
			// is out of its room, so it ends (closed after the loop).
			if _, ok := o.Event.(endpoint.Replaced); ok {
				if p := d.peers[o.Endpoint]; p != nil {
					replaced = append(replaced, p)
				}
			}
		}
	}
	d.flushBatch()
	for _, p := range replaced {
		if d.peers[p.h] == p {
			d.closePeerLocked(now, p, "replaced by a newer session on another node")
		}
	}
	if at, ok := d.node.PollTimeout(); ok && at.Before(d.sleep) {
		d.sleep = at
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// sendTransmit marshals and encrypts one transmit: UDP ones join the
// batch (n of its buffers are in use; the new count is returned), TCP
// ones are written at once.
func (d *Driver) sendTransmit(t *core.Transmit, n int) int {
	p := d.peers[core.Handle(t.Owner)]
	if p == nil {
		return n
	}
	m, err := t.MarshalTo(d.plain, nil)
	if err != nil {
		d.stats.SendErrors++
		return n
	}
	if n == len(d.bufs) {
		d.bufs = append(d.bufs, make([]byte, 0, 1500))
	}
	enc, err := p.sess.EncryptRTP(d.bufs[n][:0], d.plain[:m])
	if err != nil {
		d.stats.NotConnected++
		return n
	}
	w, addr, ok := p.sess.Path()
	if !ok {
		d.stats.NotConnected++
		return n
	}
	if w == udp.Writer(d.mux) {
		d.bufs[n] = enc[:0]
		d.batch = append(d.batch, udp.Datagram{B: enc, To: addr})
		return n + 1
	}
	if err := w.WritePacket(enc, addr); err != nil {
		d.stats.SendErrors++
	} else {
		d.stats.Sent++
	}
	return n
}

// flushBatch sends the batched UDP datagrams; it returns 0, the buffers
// in use after it.
func (d *Driver) flushBatch() int {
	if len(d.batch) > 0 {
		sent, err := d.mux.WriteBatch(d.batch)
		d.stats.Sent += uint64(sent)
		if err != nil {
			d.stats.SendErrors += uint64(len(d.batch) - sent)
		}
		clear(d.batch)
		d.batch = d.batch[:0]
	}
	return 0
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

// Offer implements whip.Backend: it negotiates, creates the endpoint and
// the WebRTC session, and returns the answer.
func (d *Driver) Offer(ctx context.Context, req whip.Request) (whip.Answer, error) {
	ufrag, pwd := webrtc.NewICECredentials()
	cert, err := d.certificate()
	if err != nil {
		return whip.Answer{}, err
	}
	neg, err := webrtc.Negotiate(req.Offer, &webrtc.Config{ICEUfrag: ufrag, ICEPwd: pwd, Fingerprint: cert.Fingerprint(),
		Candidates: d.candidates(), Codecs: d.cfg.Codecs, Send: req.Role == whip.Subscribe})
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

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return whip.Answer{}, fmt.Errorf("%w: shutting down", whip.ErrOverloaded)
	}
	if len(d.peers) >= d.cfg.MaxSessions {
		return whip.Answer{}, fmt.Errorf("%w: %d sessions", whip.ErrOverloaded, len(d.peers))
	}
	now := time.Now()
	p := &peer{id: whip.NewSessionID(), role: req.Role, room: req.Room, peerID: req.PeerID, ufrags: []string{ufrag},
		remoteUfrag: neg.RemoteUfrag, remotePwd: neg.RemotePwd, created: now}
	// A viewer joins the room under its peer id plus "#whep", so one
	// participant (one token) can publish by WHIP and watch by WHEP; its
	// own tracks stay out of its view (slotCandidates).
	ecfg := core.EndpointConfig{PeerID: req.PeerID, Extensions: extensions(neg)}
	if req.Role == whip.Subscribe {
		// The core chooses what the viewer's media sections show
		// (core.Slot): the room's tracks, never its own peer's.
		ecfg.PeerID += "#whep"
		ecfg.Slots, ecfg.ExcludePeer = viewerSlots(neg), req.PeerID
	}
	h, err := d.node.CreateEndpoint(now, ecfg)
	if err != nil {
		return whip.Answer{}, classify(err)
	}
	p.h = h
	fail := func(err error) (whip.Answer, error) {
		_ = d.node.CloseEndpoint(now, h)
		d.drainLocked(now)
		return whip.Answer{}, classify(err)
	}
	if err := d.node.Join(now, h, req.Room); err != nil {
		return fail(err)
	}
	if req.Role == whip.Publish {
		if err := d.publishLocked(now, h, neg); err != nil {
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
		Certificate: cert, LocalUfrag: ufrag, LocalPwd: pwd, RemoteUfrag: neg.RemoteUfrag,
		RemoteFingerprint: neg.RemoteFingerprint, Logger: d.log, ConsentTimeout: d.cfg.ConsentTimeout,
		OnRTP:  func(now time.Time, pkt []byte) { d.input(now, h, pkt, false) },
		OnRTCP: func(now time.Time, pkt []byte) { d.input(now, h, pkt, true) },
		OnStateChange: func(s webrtc.State) {
			switch s {
			case webrtc.StateFailed, webrtc.StateClosed: // handshake failed, or the peer hung up (close_notify)
				d.markFailed(h)
			case webrtc.StateConnected:
				d.markConnected(h)
			}
		},
	})
	if err != nil {
		return fail(err)
	}
	p.sess = sess
	d.peers[h] = p
	if p.twcc != nil {
		d.publishers++
		select { // the timer goroutine now wakes for feedback
		case d.wake <- struct{}{}:
		default:
		}
	}
	d.byID[p.id] = p
	d.mux.Register(ufrag, sess)
	d.stats.SessionsOpened++
	d.drainLocked(now)
	d.log.LogAttrs(ctx, slog.LevelInfo, "session opened", slog.String("id", p.id), slog.String("role", req.Role.String()),
		slog.String("room", req.Room), slog.String("peer", req.PeerID))
	return whip.Answer{SDP: neg.Answer, ID: p.id, ETag: p.etag()}, nil
}

// markFailed queues a session whose DTLS failed or was closed by the peer
// for the timer goroutine (the state callback may run under the session's
// own locks).
func (d *Driver) markFailed(h core.Handle) {
	go func() {
		d.mu.Lock()
		if p := d.peers[h]; p != nil {
			d.failed = append(d.failed, p)
		}
		d.mu.Unlock()
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}()
}

// sendTWCCLocked sends every publisher its transport-wide feedback.
func (d *Driver) sendTWCCLocked() {
	for _, p := range d.sortedPeers() {
		if p.twcc == nil || !p.connected || p.twcc.PacketsHeld() == 0 {
			continue
		}
		for _, fb := range p.twcc.BuildFeedbackPacket() {
			b, err := fb.Marshal()
			if err == nil {
				_ = p.sess.WriteRTCP(b)
			}
		}
	}
}

// markConnected fills a viewer's media sections once it can receive. Like
// markFailed it leaves the state callback at once.
func (d *Driver) markConnected(h core.Handle) {
	go func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		p := d.peers[h]
		if p == nil || p.connected {
			return
		}
		p.connected = true
		now := time.Now()
		if p.role == whip.Subscribe {
			_ = d.node.StartSlots(now, h)
		}
		d.drainLocked(now)
	}()
}

// candidates are our host candidates: the UDP port, then ICE-TCP.
func (d *Driver) candidates() []webrtc.Candidate {
	cands := []webrtc.Candidate{{Addr: d.advertised(d.mux.LocalAddr())}}
	if d.tcp != nil {
		cands = append(cands, webrtc.Candidate{Addr: d.advertised(d.tcp.LocalAddr()), TCP: true})
	}
	return cands
}

func (d *Driver) advertised(a netip.AddrPort) netip.AddrPort {
	if d.cfg.PublicIP.IsValid() {
		return netip.AddrPortFrom(d.cfg.PublicIP, a.Port())
	}
	return a
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

func (d *Driver) publishLocked(now time.Time, h core.Handle, neg *webrtc.Negotiated) error {
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
		err := d.node.Publish(now, h, endpoint.TrackOptions{Name: name, Codec: codec, PayloadType: m.Codec.PayloadType,
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
		s := core.Slot{SSRC: m.LocalSSRC, Kind: track.KindVideo, PayloadTypes: map[track.Codec]uint8{}}
		if m.Kind == webrtc.KindAudio {
			s.Kind = track.KindAudio
		}
		for _, mc := range m.Codecs {
			if c := track.CodecByName(mc.Name); c != track.CodecUnknown {
				if _, dup := s.PayloadTypes[c]; !dup {
					s.PayloadTypes[c] = mc.PayloadType
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
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.byID[req.ID]
	if p == nil || p.role != req.Role || p.room != req.Room {
		return whip.PatchResult{}, whip.ErrNotFound
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
	if err := p.sess.RestartICE(time.Now(), ufrag, pwd, frag.Ufrag); err != nil {
		return whip.PatchResult{}, fmt.Errorf("%w: %v", whip.ErrConflict, err)
	}
	// The old ufrag stays registered so the current path keeps working
	// until the peer nominates one with the new credentials.
	d.mux.Register(ufrag, p.sess)
	p.ufrags = append(p.ufrags, ufrag)
	p.remoteUfrag, p.remotePwd = frag.Ufrag, frag.Pwd
	p.restartAnswer = webrtc.AnswerFragment(ufrag, pwd, d.candidates())
	return whip.PatchResult{Fragment: p.restartAnswer, ETag: p.etag()}, nil
}

// etag is the session's entity-tag: its id and its number of ICE
// restarts.
func (p *peer) etag() string { return `"` + p.id + "." + strconv.Itoa(len(p.ufrags)-1) + `"` }

// Delete implements whip.Backend: it ends the session and frees
// everything it held.
func (d *Driver) Delete(ctx context.Context, role whip.Role, room, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.byID[id]
	if p == nil || p.role != role || p.room != room {
		return whip.ErrNotFound
	}
	d.closePeerLocked(time.Now(), p, "deleted")
	return nil
}

// Close releases the sockets of a Driver that was never Run.
func (d *Driver) Close() error {
	d.shutdown()
	return nil
}
