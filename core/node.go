package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/track"
)

// Errors for misuse of the control API.
var (
	ErrUnknownEndpoint = errors.New("core: unknown endpoint handle")
	ErrNotInRoom       = errors.New("core: endpoint has not joined a room")
	ErrAlreadyInRoom   = errors.New("core: endpoint is already in a room")
	ErrTooManyPeers    = errors.New("core: too many endpoints")
)

// DefaultMaxEndpoints bounds the endpoints of a node (Config.MaxEndpoints).
const DefaultMaxEndpoints = 100000

// Handle names an endpoint of a Node. The zero Handle is never valid.
type Handle uint64

// Config configures a Node. The zero value works.
type Config struct {
	// Seed seeds every random choice the node makes (SSRCs, initial
	// sequence numbers). Drivers pass a random seed; tests a fixed one.
	Seed uint64
	// Cluster configures the rooms.
	Cluster cluster.Config
	// MaxEndpoints bounds concurrent endpoints (default 100000).
	MaxEndpoints int
	// Router, when set, makes the node part of a cluster: rooms span
	// every node of the overlay (see package cluster), and the node's
	// outputs include the Router's (OutputLink, OutputDial,
	// OutputCloseLink). The Node owns it from now on: drive it only
	// through the Node's HandleLink* methods. Nil: a single node.
	Router *sdn.Router
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	if c.MaxEndpoints < 0 {
		return errors.New("core: MaxEndpoints is negative")
	}
	return nil
}

// EndpointConfig configures an endpoint created by Node.CreateEndpoint.
type EndpointConfig struct {
	// PeerID names the peer in its room; required.
	PeerID string
	// Extensions the peer negotiated (for demultiplexing).
	Extensions endpoint.Extensions
	// AutoSubscribe subscribes the peer to every track of its room.
	AutoSubscribe bool
	// HistoryPackets and HistoryBytes size the retransmission history of
	// each published encoding (0: defaults).
	HistoryPackets int
	HistoryBytes   int
	// Slots, when set, make the node choose the endpoint's subscriptions
	// (see Slot): each slot shows one track of the room, following it as
	// publishers come and go, once StartSlots is called. ExcludePeer's
	// tracks are never shown (a viewer's own publishing session).
	Slots       []Slot
	ExcludePeer string
}

// Transmit is an RTP packet to send; Owner is the endpoint's Handle.
type Transmit = track.Transmit

// Event is something the peer of Endpoint must be told.
type Event struct {
	Endpoint Handle
	Event    endpoint.Event
}

// Stats are node-wide counters.
type Stats struct {
	// UnknownEndpoint counts packets for a handle that is not (or no
	// longer) an endpoint: a driver race after CloseEndpoint.
	UnknownEndpoint uint64
	// NotInRoom counts RTP from endpoints that have not joined a room.
	NotInRoom uint64
	// Cluster are the rooms' drop counters (directory and media from
	// other nodes).
	Cluster cluster.Stats
}

// Counts are live-object counts, for leak checks: all zero once every
// endpoint is closed.
type Counts struct {
	Endpoints, RemoteTracks, LocalTracks int
	cluster.Counts
	Timers, QueuedTransmits, QueuedFeedback, QueuedEvents int
}

type slot struct {
	gen  uint32
	ep   *endpoint.Endpoint
	room string
	view *viewer // with EndpointConfig.Slots
	// timerAt is the endpoint's deadline as last filed in the node's
	// heap; timerDirty whether it is on the dirty list (see eptimer.go).
	timerAt    time.Time
	timerDirty bool
}

// Node is the sans-IO SFU node. See the package doc for the run loop.
type Node struct {
	cfg    Config
	rand   *rand.Rand
	slots  []slot
	free   []uint32
	live   int
	cl     *cluster.Cluster
	out    track.Output
	events []Event
	ehead  int
	now    time.Time
	stats  Stats

	router *sdn.Router
	linkq  []Output // dial and close requests of the Router
	lhead  int
	refill []Handle // viewers whose slots may need a track

	epTimers []epTimer
	epDirty  []Handle
}

// New returns a Node.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxEndpoints == 0 {
		cfg.MaxEndpoints = DefaultMaxEndpoints
	}
	n := &Node{
		cfg:    cfg,
		rand:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6a09e667f3bcc909)),
		cl:     cluster.New(cfg.Cluster),
		router: cfg.Router,
	}
	if n.router != nil {
		n.cl.Attach(n.router, &n.out)
	}
	return n, nil
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := n.stats
	s.Cluster = n.cl.Stats()
	return s
}

// Router is the node's overlay machine (nil for a single node), for
// inspection: drive it only through the Node.
func (n *Node) Router() *sdn.Router { return n.router }

// Counts returns live-object counts.
func (n *Node) Counts() Counts {
	c := Counts{Endpoints: n.live, Counts: n.cl.Counts()}
	for i := range n.slots {
		if ep := n.slots[i].ep; ep != nil {
			c.RemoteTracks += len(ep.Tracks())
			c.LocalTracks += len(ep.Subscriptions())
		}
	}
	c.Timers = n.out.Timers()
	c.QueuedTransmits = n.out.PendingTransmits()
	c.QueuedFeedback = n.out.PendingFeedback()
	c.QueuedEvents = len(n.events) - n.ehead
	return c
}

// Endpoint returns the endpoint machine behind h, for inspection (stats,
// tracks). Driving it directly bypasses the node: use the Node's methods.
func (n *Node) Endpoint(h Handle) (*endpoint.Endpoint, bool) {
	s := n.slot(h)
	if s == nil {
		return nil, false
	}
	return s.ep, true
}

// ForEachEndpoint calls fn with every endpoint, in handle order, for
// inspection (stats, metrics): fn must not drive them.
func (n *Node) ForEachEndpoint(fn func(h Handle, ep *endpoint.Endpoint)) {
	for i := range n.slots {
		if s := &n.slots[i]; s.ep != nil {
			fn(Handle(uint64(s.gen)<<32|uint64(i+1)), s.ep)
		}
	}
}

// Cluster returns the rooms machine, for inspection.
func (n *Node) Cluster() *cluster.Cluster { return n.cl }

// clock clamps time so it never runs backwards.
func (n *Node) clock(now time.Time) time.Time {
	if now.Before(n.now) {
		return n.now
	}
	n.now = now
	return now
}

func (n *Node) slot(h Handle) *slot {
	idx := uint32(h) - 1
	if h == 0 || int(idx) >= len(n.slots) {
		return nil
	}
	s := &n.slots[idx]
	if s.ep == nil || s.gen != uint32(h>>32) {
		return nil
	}
	return s
}

// CreateEndpoint adds an endpoint for a connected peer.
func (n *Node) CreateEndpoint(now time.Time, cfg EndpointConfig) (Handle, error) {
	n.clock(now)
	if n.live >= n.cfg.MaxEndpoints {
		return 0, ErrTooManyPeers
	}
	var idx uint32
	if k := len(n.free); k > 0 {
		idx = n.free[k-1]
		n.free = n.free[:k-1]
	} else {
		n.slots = append(n.slots, slot{})
		idx = uint32(len(n.slots) - 1)
	}
	s := &n.slots[idx]
	s.gen++
	h := Handle(uint64(s.gen)<<32 | uint64(idx+1))
	ep, err := endpoint.New(endpoint.Config{
		PeerID:         cfg.PeerID,
		Owner:          uint64(h),
		Rand:           rand.New(rand.NewPCG(n.rand.Uint64(), n.rand.Uint64())),
		Extensions:     cfg.Extensions,
		AutoSubscribe:  cfg.AutoSubscribe,
		HistoryPackets: cfg.HistoryPackets,
		HistoryBytes:   cfg.HistoryBytes,
	}, &n.out)
	if err != nil {
		n.free = append(n.free, idx)
		return 0, err
	}
	s.ep, s.room, s.view = ep, "", nil
	if len(cfg.Slots) > 0 {
		s.view = &viewer{exclude: cfg.ExcludePeer, slots: make([]slotState, len(cfg.Slots))}
		for i, sl := range cfg.Slots {
			s.view.slots[i].Slot = sl
		}
	}
	n.live++
	return h, nil
}

// CloseEndpoint leaves the endpoint's room (withdrawing its tracks and
// subscriptions) and releases it. The handle becomes invalid, and nothing
// queued for it (transmits, RTCP, events) is polled any more.
func (n *Node) CloseEndpoint(now time.Time, h Handle) error {
	now = n.clock(now)
	s := n.slot(h)
	if s == nil {
		return ErrUnknownEndpoint
	}
	if s.room != "" {
		n.leave(now, h, s)
	}
	s.ep.Close()
	s.ep, s.view = nil, nil
	n.free = append(n.free, uint32(h)-1)
	n.live--
	// Nothing more is polled for h: its queued packets, feedback and
	// events go, and so do the timers of its closed tracks.
	n.out.Discard(uint64(h))
	n.events = n.events[:n.ehead+len(slices.DeleteFunc(n.events[n.ehead:], func(e Event) bool { return e.Endpoint == h }))]
	return nil
}

// Join puts the endpoint in a room. Its peer is told of the peers and
// tracks already there (and, with AutoSubscribe, subscribed to them).
func (n *Node) Join(now time.Time, h Handle, room string) error {
	now = n.clock(now)
	s := n.slot(h)
	if s == nil {
		return ErrUnknownEndpoint
	}
	if s.room != "" {
		return ErrAlreadyInRoom
	}
	if err := n.cl.Join(now, room, uint64(h), s.ep.PeerID()); err != nil {
		return err
	}
	s.room = room
	n.drainNotices(now)
	return nil
}

// Leave takes the endpoint out of its room: its tracks are withdrawn (their
// subscribers wait for them to come back), its subscriptions end.
func (n *Node) Leave(now time.Time, h Handle) error {
	now = n.clock(now)
	s := n.slot(h)
	if s == nil {
		return ErrUnknownEndpoint
	}
	if s.room == "" {
		return ErrNotInRoom
	}
	n.leave(now, h, s)
	return nil
}

func (n *Node) leave(now time.Time, h Handle, s *slot) {
	for _, k := range s.ep.Subscriptions() {
		lt, _ := s.ep.Unsubscribe(now, k)
		_ = n.cl.Unsubscribe(now, s.room, cluster.TrackKey(k), lt)
	}
	n.touch(h)
	for _, rt := range s.ep.Tracks() {
		_ = n.cl.Unpublish(now, rt)
		_, _ = s.ep.Unpublish(now, rt.Info().Name)
	}
	_ = n.cl.Leave(now, s.room, uint64(h))
	s.room = ""
	n.drainNotices(now)
}

func (n *Node) joined(h Handle) (*slot, error) {
	s := n.slot(h)
	if s == nil {
		return nil, ErrUnknownEndpoint
	}
	if s.room == "" {
		return nil, ErrNotInRoom
	}
	return s, nil
}

// Publish adds a track the endpoint's peer sends. If the room's subscribers
// were waiting for a track of this name (the peer re-joined), they resume
// from it, continuously.
func (n *Node) Publish(now time.Time, h Handle, o endpoint.TrackOptions) error {
	now = n.clock(now)
	s, err := n.joined(h)
	if err != nil {
		return err
	}
	rt, err := s.ep.Publish(now, o)
	if err != nil {
		return err
	}
	if err := n.cl.Publish(now, s.room, uint64(h), rt); err != nil {
		_, _ = s.ep.Unpublish(now, o.Name)
		return err
	}
	n.drainNotices(now)
	return nil
}

// Unpublish withdraws a track of the endpoint.
func (n *Node) Unpublish(now time.Time, h Handle, name string) error {
	now = n.clock(now)
	s, err := n.joined(h)
	if err != nil {
		return err
	}
	rt, ok := s.ep.Track(name)
	if !ok {
		return fmt.Errorf("%w: %q", endpoint.ErrNoSuchTrack, name)
	}
	_ = n.cl.Unpublish(now, rt)
	_, _ = s.ep.Unpublish(now, name)
	n.drainNotices(now)
	return nil
}

// Subscribe subscribes the endpoint to peer's track. It returns the SSRC
// the endpoint will receive it on. Media starts at the next keyframe,
// which is requested now.
func (n *Node) Subscribe(now time.Time, h Handle, peer, trackName string, o endpoint.SubscribeOptions) (uint32, error) {
	now = n.clock(now)
	s, err := n.joined(h)
	if err != nil {
		return 0, err
	}
	ssrc, err := n.subscribe(now, h, s, cluster.TrackKey{Peer: peer, Track: trackName}, o)
	n.drainNotices(now)
	return ssrc, err
}

func (n *Node) subscribe(now time.Time, h Handle, s *slot, k cluster.TrackKey, o endpoint.SubscribeOptions) (uint32, error) {
	info, ok := n.cl.Info(s.room, k)
	if !ok {
		return 0, fmt.Errorf("%w: %s/%s", cluster.ErrNoSuchTrack, k.Peer, k.Track)
	}
	lt, err := s.ep.Subscribe(now, endpoint.SubKey(k), info.Kind, o)
	if err != nil {
		return 0, err
	}
	if err := n.cl.Subscribe(now, s.room, uint64(h), k, lt); err != nil {
		_, _ = s.ep.Unsubscribe(now, endpoint.SubKey(k))
		return 0, err
	}
	n.event(h, endpoint.SubscriptionChanged{Key: endpoint.SubKey(k), SSRC: lt.SSRC(), Kind: info.Kind, State: endpoint.SubscriptionActive})
	n.touch(h)
	return lt.SSRC(), nil
}

// Unsubscribe ends a subscription of the endpoint.
func (n *Node) Unsubscribe(now time.Time, h Handle, peer, trackName string) error {
	now = n.clock(now)
	s, err := n.joined(h)
	if err != nil {
		return err
	}
	k := endpoint.SubKey{Peer: peer, Track: trackName}
	lt, err := s.ep.Unsubscribe(now, k)
	if err != nil {
		return err
	}
	_ = n.cl.Unsubscribe(now, s.room, cluster.TrackKey(k), lt)
	n.event(h, endpoint.SubscriptionChanged{Key: k, SSRC: lt.SSRC(), State: endpoint.SubscriptionEnded})
	n.touch(h)
	n.drainNotices(now)
	return nil
}

// SwitchSubscription moves a subscription of the endpoint to another
// track, keeping its SSRC and continuous numbering: the peer sees one
// stream whose source changed at a keyframe. payloadType is the outgoing
// payload type for the new track's codec (0: the publisher's). A WHEP
// viewer's fixed media sections follow the room's publishers this way.
func (n *Node) SwitchSubscription(now time.Time, h Handle, fromPeer, fromTrack, toPeer, toTrack string, payloadType uint8) error {
	now = n.clock(now)
	s, err := n.joined(h)
	if err != nil {
		return err
	}
	from := endpoint.SubKey{Peer: fromPeer, Track: fromTrack}
	to := endpoint.SubKey{Peer: toPeer, Track: toTrack}
	if err := n.switchSubscription(now, h, s, from, to, payloadType, -1); err != nil {
		return err
	}
	n.drainNotices(now)
	return nil
}

func clusterKey(k endpoint.SubKey) cluster.TrackKey { return cluster.TrackKey(k) }

// rtxPayloadType is the RTX payload type for the new codec (-1: keep the
// subscription's).
func (n *Node) switchSubscription(now time.Time, h Handle, s *slot, from, to endpoint.SubKey, payloadType uint8, rtxPayloadType int) error {
	info, ok := n.cl.Info(s.room, cluster.TrackKey(to))
	if !ok {
		return fmt.Errorf("%w: %s/%s", cluster.ErrNoSuchTrack, to.Peer, to.Track)
	}
	lt, ok := s.ep.Subscription(from)
	if !ok {
		return fmt.Errorf("%w: %s/%s", endpoint.ErrNotSubscribed, from.Peer, from.Track)
	}
	if info.Kind != lt.Kind() {
		return fmt.Errorf("%w: cannot switch a %v subscription to a %v track", endpoint.ErrInvalidTrack, lt.Kind(), info.Kind)
	}
	if _, err := s.ep.Rekey(from, to); err != nil {
		return err
	}
	_ = n.cl.Unsubscribe(now, s.room, cluster.TrackKey(from), lt)
	lt.SetPayloadType(payloadType)
	if rtxPayloadType >= 0 {
		lt.SetRTXPayloadType(uint8(rtxPayloadType))
	}
	if err := n.cl.Subscribe(now, s.room, uint64(h), cluster.TrackKey(to), lt); err != nil {
		return err // unreachable: the source exists and lt was detached
	}
	n.event(h, endpoint.SubscriptionChanged{Key: to, SSRC: lt.SSRC(), Kind: info.Kind, State: endpoint.SubscriptionActive})
	return nil
}

func (n *Node) localTrack(h Handle, peer, trackName string) (*track.LocalTrack, error) {
	s, err := n.joined(h)
	if err != nil {
		return nil, err
	}
	lt, ok := s.ep.Subscription(endpoint.SubKey{Peer: peer, Track: trackName})
	if !ok {
		return nil, fmt.Errorf("%w: %s/%s", endpoint.ErrNotSubscribed, peer, trackName)
	}
	return lt, nil
}

// SetPaused pauses or resumes a subscription (resuming waits for a
// keyframe, which is requested).
func (n *Node) SetPaused(now time.Time, h Handle, peer, trackName string, paused bool) error {
	now = n.clock(now)
	if _, err := n.localTrack(h, peer, trackName); err != nil {
		return err
	}
	err := n.slot(h).ep.SetPaused(now, endpoint.SubKey{Peer: peer, Track: trackName}, paused)
	n.touch(h)
	return err
}

// SetTargetLayers selects a subscription's simulcast encoding (0 is the
// lowest) and highest temporal layer (-1: all).
func (n *Node) SetTargetLayers(now time.Time, h Handle, peer, trackName string, spatial int, temporal int8) error {
	now = n.clock(now)
	lt, err := n.localTrack(h, peer, trackName)
	if err != nil {
		return err
	}
	lt.SetTargetLayers(now, spatial, temporal)
	s := n.slot(h)
	k := endpoint.SubKey{Peer: peer, Track: trackName}
	l, _ := s.ep.LayerLimits(k)
	l.Max = endpoint.NoLimit
	if spatial >= 0 && spatial < endpoint.MaxSpatialLayers {
		l.Max.Spatial = int8(spatial)
	}
	if temporal >= 0 && temporal < endpoint.MaxTemporalLayers {
		l.Max.Temporal = temporal
	}
	_ = s.ep.SetLayerLimits(now, k, l)
	n.touch(h)
	n.cl.Retarget(now, s.room, cluster.TrackKey{Peer: peer, Track: trackName})
	n.drainNotices(now)
	return nil
}

// SetBitrateRange says what bitrate range a subscription of the endpoint
// wants (zero: none). The node aggregates it with every other subscriber
// of the same encoding, across nodes: the least minimum and the greatest
// maximum reach the publisher's node (cluster.DesiredBitrate), for the
// bandwidth allocation.
func (n *Node) SetBitrateRange(now time.Time, h Handle, peer, trackName string, minBps, maxBps uint64) error {
	now = n.clock(now)
	lt, err := n.localTrack(h, peer, trackName)
	if err != nil {
		return err
	}
	err = n.cl.SetBitrateRange(now, n.slot(h).room, cluster.TrackKey{Peer: peer, Track: trackName}, lt, minBps, maxBps)
	n.drainNotices(now)
	return err
}

// HandleRTP takes a decrypted RTP packet from endpoint h's peer (borrowed
// for the call) and fans it out to the subscribers. Malformed or unknown
// packets are counted and dropped; only an unknown handle is an error.
func (n *Node) HandleRTP(now time.Time, h Handle, buf []byte) error {
	now = n.clock(now)
	s := n.slot(h)
	if s == nil {
		n.stats.UnknownEndpoint++
		return ErrUnknownEndpoint
	}
	if s.room == "" {
		n.stats.NotInRoom++
		return nil
	}
	rt, p, ok := s.ep.HandleRTP(now, buf)
	if ok {
		n.cl.Deliver(now, rt, p, &n.out)
	}
	return nil
}

// HandleRTCP takes a decrypted compound RTCP packet from endpoint h's peer:
// NACKs are answered with retransmissions, PLI/FIR become keyframe
// requests to the publishers.
func (n *Node) HandleRTCP(now time.Time, h Handle, buf []byte) error {
	now = n.clock(now)
	s := n.slot(h)
	if s == nil {
		n.stats.UnknownEndpoint++
		return ErrUnknownEndpoint
	}
	s.ep.HandleRTCP(now, buf, &n.out)
	n.touch(h)
	if s.room != "" {
		for sr, ok := s.ep.PollSenderReport(); ok; sr, ok = s.ep.PollSenderReport() {
			n.cl.DeliverSenderReport(now, sr.Track, sr.Encoding, sr.NTP, sr.RTPTime, &n.out)
		}
	}
	return nil
}

// HandleTimeout runs every timer that is due.
func (n *Node) HandleTimeout(now time.Time) {
	now = n.clock(now)
	n.out.HandleTimeout(now)
	n.runEndpointTimers(now)
	n.cl.HandleTimeout(now)
	if n.router != nil {
		if at, ok := n.router.PollTimeout(); ok && !at.After(now) {
			n.router.HandleTimeout(now)
		}
	}
	n.drainNotices(now)
}

// PollTimeout is the next deadline, if any.
func (n *Node) PollTimeout() (time.Time, bool) {
	at, ok := n.out.PollTimeout()
	n.settleEndpoints()
	if len(n.epTimers) > 0 && (!ok || n.epTimers[0].at.Before(at)) {
		at, ok = n.epTimers[0].at, true
	}
	if t, ok2 := n.cl.PollTimeout(); ok2 && (!ok || t.Before(at)) {
		at, ok = t, true
	}
	if n.router != nil {
		if t, ok2 := n.router.PollTimeout(); ok2 && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	return at, ok
}

// HandleLinkUp reports a new connection to another node (see
// sdn.Router.HandleLinkUp). Without a Router it does nothing.
func (n *Node) HandleLinkUp(now time.Time, id sdn.LinkID, info sdn.LinkInfo) {
	if n.router == nil {
		return
	}
	now = n.clock(now)
	n.router.HandleLinkUp(now, id, info)
	n.drainNotices(now)
}

// HandleLinkDown reports a connection to another node closed.
func (n *Node) HandleLinkDown(now time.Time, id sdn.LinkID) {
	if n.router == nil {
		return
	}
	now = n.clock(now)
	n.router.HandleLinkDown(now, id)
	n.drainNotices(now)
}

// HandleDialFailed reports that an OutputDial could not connect.
func (n *Node) HandleDialFailed(now time.Time, addr sdn.Addr) {
	if n.router == nil {
		return
	}
	now = n.clock(now)
	n.router.HandleDialFailed(now, addr)
	n.drainNotices(now)
}

// HandleLinkMessage takes one message received on a link to another node
// (borrowed for the call): overlay control, directory, and media frames
// for this node's relays, which go out to its subscribers like a local
// publisher's packets. Malformed messages are counted (Router().Stats()).
func (n *Node) HandleLinkMessage(now time.Time, id sdn.LinkID, data []byte) {
	if n.router == nil {
		return
	}
	now = n.clock(now)
	n.router.HandleMessage(now, id, data)
	n.drainNotices(now)
}

// OutputKind says what an Output is.
type OutputKind uint8

// Output kinds.
const (
	// OutputRTP: RTP to send to Endpoint's peer: marshal RTP
	// (Transmit.MarshalTo), encrypt, send.
	OutputRTP OutputKind = iota + 1
	// OutputRTCP: the RTCP packet Data (written into Poll's buf) for
	// Endpoint's peer: keyframe requests and NACKs to publishers, sender
	// reports to subscribers.
	OutputRTCP
	// OutputEvent: Event, for Endpoint's peer.
	OutputEvent
	// OutputLink: the message Data to send on Link to another node;
	// Datagram marks media, which may go unreliably (QUIC datagrams).
	OutputLink
	// OutputDial: connect to Addr, then HandleLinkUp or HandleDialFailed.
	OutputDial
	// OutputCloseLink: close Link (the node has already forgotten it).
	OutputCloseLink
)

// Output is one thing the driver must do, polled with Poll. Which fields
// are set depends on Kind. Byte slices (Data, RTP.Payload) stay valid
// until the next call into the Node.
type Output struct {
	Kind     OutputKind
	Endpoint Handle
	RTP      Transmit
	Data     []byte
	Event    endpoint.Event
	Link     sdn.LinkID
	Datagram bool
	Addr     sdn.Addr
}

// Poll returns the node's next output, until false: RTP first (the hot
// path), then RTCP, messages to other nodes, link requests and events.
// buf is scratch for an RTCP packet (64 bytes always suffice). See the
// package doc for the run loop: after every Handle call, Poll until false,
// then sleep until PollTimeout.
func (n *Node) Poll(buf []byte) (Output, bool) {
	if t, ok := n.pollTransmit(); ok {
		return Output{Kind: OutputRTP, Endpoint: Handle(t.Owner), RTP: t}, true
	}
	if h, pkt, ok := n.pollRTCP(buf); ok {
		return Output{Kind: OutputRTCP, Endpoint: h, Data: pkt}, true
	}
	if n.router != nil {
		if t, ok := n.router.PollTransmit(); ok {
			return Output{Kind: OutputLink, Link: t.Link, Data: t.Data, Datagram: t.Datagram}, true
		}
		if n.lhead < len(n.linkq) {
			o := n.linkq[n.lhead]
			n.linkq[n.lhead] = Output{}
			n.lhead++
			if n.lhead == len(n.linkq) {
				n.linkq, n.lhead = n.linkq[:0], 0
			}
			return o, true
		}
	}
	if e, ok := n.pollEvent(); ok {
		return Output{Kind: OutputEvent, Endpoint: e.Endpoint, Event: e.Event}, true
	}
	return Output{}, false
}

// pollTransmit is Poll's RTP part (and the tests'): the next transmit,
// stamped by its subscriber's endpoint.
func (n *Node) pollTransmit() (Transmit, bool) {
	t, ok := n.out.PollTransmit()
	if ok {
		if s := n.slot(Handle(t.Owner)); s != nil {
			s.ep.Stamp(n.now, &t)
		}
	}
	return t, ok
}

// pollRTCP writes the next RTCP packet to send into buf and returns the
// endpoint it is for. A relay track's feedback goes up its channel's tree
// instead (cluster.HandleRelayFeedback).
func (n *Node) pollRTCP(buf []byte) (Handle, []byte, bool) {
	for {
		f, ok := n.out.PollFeedback()
		if !ok {
			return 0, nil, false
		}
		if cluster.IsRelayOwner(f.Owner) {
			n.cl.HandleRelayFeedback(n.now, f)
			continue
		}
		s := n.slot(Handle(f.Owner))
		if s == nil {
			continue // the endpoint left after the packet was queued
		}
		var pkt []byte
		switch f.Type {
		case track.FeedbackSR:
			pkt = track.AppendSenderReport(buf[:0], f.SSRC, f.NTP, f.RTPTime, f.Packets, f.Octets, nil)
		case track.FeedbackFIR:
			pkt = track.AppendFIR(buf[:0], s.ep.RTCPSSRC(), f.SSRC, f.FIRSeq)
		case track.FeedbackNACK:
			var seqs [17]uint16
			n := 0
			seqs[n], n = f.NACKPID, 1
			for i := range 16 {
				if f.NACKBLP&(1<<i) != 0 {
					seqs[n], n = f.NACKPID+uint16(i)+1, n+1
				}
			}
			pkt = track.AppendNACK(buf[:0], s.ep.RTCPSSRC(), f.SSRC, seqs[:n])
		default:
			pkt = track.AppendPLI(buf[:0], s.ep.RTCPSSRC(), f.SSRC)
		}
		return Handle(f.Owner), pkt, true
	}
}

// pollEvent returns the next event for a peer.
func (n *Node) pollEvent() (Event, bool) {
	if n.ehead == len(n.events) {
		return Event{}, false
	}
	e := n.events[n.ehead]
	n.events[n.ehead] = Event{}
	n.ehead++
	if n.ehead == len(n.events) {
		n.events, n.ehead = n.events[:0], 0
	}
	return e, true
}

func (n *Node) event(h Handle, e endpoint.Event) {
	if n.ehead == len(n.events) && n.ehead > 0 {
		n.events, n.ehead = n.events[:0], 0
	}
	n.events = append(n.events, Event{Endpoint: h, Event: e})
	if s := n.slot(h); s != nil && s.view != nil {
		n.slotEvent(h, s, e)
	}
}

// pumpRouter hands the Router's events and data to the cluster, and
// queues its link requests. It reports whether there was any.
func (n *Node) pumpRouter(now time.Time) bool {
	if n.router == nil {
		return false
	}
	any := false
	for {
		ev, ok := n.router.PollEvent()
		if !ok {
			break
		}
		any = true
		switch e := ev.(type) {
		case sdn.EventDial:
			n.linkq = append(n.linkq, Output{Kind: OutputDial, Addr: e.Addr})
		case sdn.EventClose:
			n.linkq = append(n.linkq, Output{Kind: OutputCloseLink, Link: e.Link})
		case sdn.EventMapSet:
			n.cl.HandleMapSet(now, e)
		case sdn.EventMapDelete:
			n.cl.HandleMapDelete(now, e)
		case sdn.EventFeedback:
			n.cl.HandleFeedback(now, e)
		case sdn.EventUpstream:
			n.cl.HandleUpstream(now, e)
		case sdn.EventMoved:
			n.cl.HandleMoved(now, e.Channel)
		case sdn.EventChannelEnded:
			n.cl.HandleChannelEnded(now, e.Channel)
		}
	}
	for {
		d, ok := n.router.PollData()
		if !ok {
			break
		}
		any = true
		n.cl.HandleData(now, d, &n.out)
	}
	return any
}

// drainNotices turns the cluster's notices into events and acts on them,
// and the Router's outputs into the cluster's inputs, until neither has
// more.
func (n *Node) drainNotices(now time.Time) {
	for {
		no, ok := n.cl.PollNotice()
		if !ok {
			if n.pumpRouter(now) {
				continue
			}
			if k := len(n.refill); k > 0 {
				h := n.refill[0]
				n.refill = append(n.refill[:0], n.refill[1:]...)
				n.fillSlots(now, h)
				continue
			}
			return
		}
		h := Handle(no.To)
		s := n.slot(h)
		if s == nil {
			continue
		}
		k := endpoint.SubKey{Peer: no.Info.Peer, Track: no.Info.Name}
		switch no.Kind {
		case cluster.NoticePeerJoined:
			n.event(h, endpoint.PeerJoined{Peer: no.Peer})
		case cluster.NoticePeerLeft:
			n.event(h, endpoint.PeerLeft{Peer: no.Peer})
		case cluster.NoticeTrackPublished:
			n.event(h, endpoint.TrackPublished{Info: no.Info})
			if s.ep.AutoSubscribe() && s.room == no.Room {
				if _, ok := s.ep.Subscription(k); !ok {
					// The track was just announced, so it exists; a full
					// subscription table is the one way this fails, and
					// then the peer simply does not get this track.
					_, _ = n.subscribe(now, h, s, cluster.TrackKey(k), endpoint.SubscribeOptions{Spatial: -1, Temporal: -1})
				}
			}
		case cluster.NoticeTrackUnpublished:
			n.event(h, endpoint.TrackUnpublished{Info: no.Info})
		case cluster.NoticeSourceGone:
			n.event(h, endpoint.SubscriptionChanged{Key: k, SSRC: no.Local.SSRC(), Kind: no.Info.Kind, State: endpoint.SubscriptionSourceGone})
		case cluster.NoticeSourceBack:
			n.event(h, endpoint.SubscriptionChanged{Key: k, SSRC: no.Local.SSRC(), Kind: no.Info.Kind, State: endpoint.SubscriptionActive})
		case cluster.NoticeReplaced:
			if s.room == no.Room {
				n.leave(now, h, s)
				n.event(h, endpoint.Replaced{Room: no.Room})
			}
		case cluster.NoticeSubscriptionEnded:
			if lt, ok := s.ep.Subscription(k); ok && lt == no.Local {
				_, _ = s.ep.Unsubscribe(now, k)
			}
			n.event(h, endpoint.SubscriptionChanged{Key: k, SSRC: no.Local.SSRC(), Kind: no.Info.Kind, State: endpoint.SubscriptionEnded})
		}
	}
}
