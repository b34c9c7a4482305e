package sdn

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultPingInterval     = 300 * time.Millisecond
	DefaultDeadAfter        = 1200 * time.Millisecond
	DefaultHandshakeTimeout = 3 * time.Second
	DefaultUpdateInterval   = time.Second
	DefaultTriggerDelay     = 20 * time.Millisecond
	DefaultHopPenalty       = time.Millisecond
	DefaultLossWeight       = 10
	DefaultSwitchGain       = 0.05
	DefaultSticky           = 10 * time.Second
	DefaultDialBackoffMin   = 200 * time.Millisecond
	DefaultDialBackoffMax   = 10 * time.Second
	DefaultSubRefresh       = 500 * time.Millisecond
	DefaultChannelSticky    = 5 * time.Second
	DefaultEndGrace         = 2 * time.Second
	DefaultKeyframeHold     = 300 * time.Millisecond
	DefaultGossipInterval   = 500 * time.Millisecond
	DefaultSoftStateTimeout = 10 * time.Second
	DefaultMaxOwners        = 4096
	DefaultMaxEntries       = 16384
	DefaultMaxValueLen      = 1024
	DefaultMaxChannels      = 65536
	DefaultScopedMapPrefix  = "r:"
	DefaultMaxScopedMaps    = 65536
	DefaultMaxScopedEntries = 1 << 18
)

// NoScopedMaps as Config.ScopedMapPrefix makes every map global: no map
// name can start with it (names starting with a zero byte are reserved).
const NoScopedMaps = "\x00"

// Config configures a Router. The zero value works except that ID is
// required; every other zero field takes the default named in its comment.
type Config struct {
	// ID is this node's id (required, non-zero). Its high bits are the zone.
	ID NodeID
	// Listen is the UDP address the driver listens on; only printed, as
	// part of Address.
	Listen netip.AddrPort
	// Seeds are the neighbours to dial, redialled with backoff whenever
	// their link is down.
	Seeds []Addr
	// Secret is the shared cluster secret of the handshake. Nodes with a
	// different secret are refused. Empty is a valid (unprotected) secret,
	// for tests and development only.
	Secret []byte
	// Seed seeds the handshake nonces and timer jitter.
	Seed uint64

	// PingInterval is how often each link is pinged (default 300ms).
	PingInterval time.Duration
	// DeadAfter declares a link dead after this much silence (default 1.2s).
	DeadAfter time.Duration
	// HandshakeTimeout closes links not authenticated in time (default 3s).
	HandshakeTimeout time.Duration
	// UpdateInterval is the period of full routing updates (default 1s);
	// changes are sent TriggerDelay after they happen (default 20ms).
	UpdateInterval time.Duration
	TriggerDelay   time.Duration
	// HopPenalty is added to every link's cost (default 1ms).
	HopPenalty time.Duration
	// LossWeight scales a link's RTT by 1+LossWeight*loss (default 10).
	LossWeight float64
	// SwitchGain: a route is replaced at once by one cheaper by this
	// fraction (default 0.05); a smaller gain must last Sticky (default 10s).
	SwitchGain float64
	Sticky     time.Duration
	// FlatRoutes keeps a route per node of every zone, where by default a
	// node keeps one per node of its own zone and one per other zone. A
	// zone route enters its zone at one node for all the zone's nodes, so
	// a route to a node of another zone can cost more than its cheapest
	// path (see the package doc, Routing); with FlatRoutes every route is
	// the cheapest path, within SwitchGain, but tables and updates grow
	// with the cluster instead of with its zones. For clusters of up to a
	// few hundred nodes. Every node of a cluster must agree: the
	// handshake refuses a neighbour with the other setting (counted in
	// Stats.AuthFailures).
	FlatRoutes bool
	// DialBackoffMin and DialBackoffMax bound the redial backoff
	// (defaults 200ms and 10s).
	DialBackoffMin time.Duration
	DialBackoffMax time.Duration

	// SubRefresh is the pub/sub soft-state refresh period (default 500ms);
	// a downstream not refreshed for 4 periods is dropped.
	SubRefresh time.Duration
	// ChannelSticky is the least time a relay keeps its upstream while a
	// different best next hop exists (default 5s); a broken upstream is left
	// at once.
	ChannelSticky time.Duration
	// EndGrace ends a channel whose source has had no route for this long
	// (default 2s).
	EndGrace time.Duration
	// KeyframeHold aggregates keyframe requests: one goes upstream per
	// hold (default 300ms).
	KeyframeHold time.Duration
	// MaxChannels bounds the channels a node relays (default 65536).
	MaxChannels int

	// GossipInterval is the period of map digests (default 500ms).
	GossipInterval time.Duration
	// SoftStateTimeout drops an owner's map entries when nothing it sent
	// is younger than this (default 10s).
	SoftStateTimeout time.Duration
	// MaxOwners bounds the owners whose entries a node stores, of the
	// global maps together and of each scoped map (default 4096);
	// MaxEntries a node's own entries in one map (default 16384: a node
	// with 5000 peers in one room, each with a member and two track
	// entries); MaxValueLen a value's size (default 1024). Keys and map
	// names are at most 255 bytes. A node's own entries of all global
	// maps together are also bounded by what one message carries (about
	// 1 MiB encoded, at most 65535 entries).
	MaxOwners   int
	MaxEntries  int
	MaxValueLen int
	// ScopedMapPrefix marks the scoped maps: those whose name starts with
	// it (default "r:", the rooms of package cluster). A scoped map is
	// kept only by the nodes that write or subscribe to it and by its
	// home node, instead of by every node (see the package doc,
	// Replicated maps). NoScopedMaps makes every map global. Every node of
	// a cluster must agree on it.
	ScopedMapPrefix string
	// MaxScopedMaps bounds the scoped maps a node holds (default 65536):
	// beyond it, a home refuses maps that other nodes bring (counted in
	// Stats.LimitDrops); the node's own writes and subscriptions are not
	// refused. MaxScopedEntries bounds the entries of other owners a node
	// stores of all scoped maps together, as home and as subscriber
	// (default 262144: about 24 MiB with 20-byte keys and 30-byte values);
	// what exceeds it is dropped and counted.
	MaxScopedMaps    int
	MaxScopedEntries int

	// Logger receives debug logs; default discards.
	Logger *slog.Logger
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	if c.ID == 0 {
		return errors.New("sdn: Config.ID is zero")
	}
	for _, d := range []time.Duration{c.PingInterval, c.DeadAfter, c.HandshakeTimeout, c.UpdateInterval, c.TriggerDelay,
		c.HopPenalty, c.Sticky, c.DialBackoffMin, c.DialBackoffMax, c.SubRefresh, c.ChannelSticky, c.EndGrace,
		c.KeyframeHold, c.GossipInterval, c.SoftStateTimeout} {
		if d < 0 {
			return errors.New("sdn: negative duration in Config")
		}
	}
	if c.LossWeight < 0 || c.SwitchGain < 0 || c.SwitchGain >= 1 {
		return errors.New("sdn: LossWeight or SwitchGain out of range")
	}
	if c.MaxChannels < 0 || c.MaxOwners < 0 || c.MaxEntries < 0 || c.MaxValueLen < 0 || c.MaxValueLen > 65535 ||
		c.MaxScopedMaps < 0 || c.MaxScopedEntries < 0 {
		return errors.New("sdn: size limit out of range")
	}
	for _, s := range c.Seeds {
		if s.Node == 0 || s.Node == c.ID {
			return errors.New("sdn: seed with zero or own id")
		}
	}
	return nil
}

func (c *Config) withDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.DeadAfter, DefaultDeadAfter)
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.UpdateInterval, DefaultUpdateInterval)
	def(&c.TriggerDelay, DefaultTriggerDelay)
	def(&c.HopPenalty, DefaultHopPenalty)
	def(&c.Sticky, DefaultSticky)
	def(&c.DialBackoffMin, DefaultDialBackoffMin)
	def(&c.DialBackoffMax, DefaultDialBackoffMax)
	def(&c.SubRefresh, DefaultSubRefresh)
	def(&c.ChannelSticky, DefaultChannelSticky)
	def(&c.EndGrace, DefaultEndGrace)
	def(&c.KeyframeHold, DefaultKeyframeHold)
	def(&c.GossipInterval, DefaultGossipInterval)
	def(&c.SoftStateTimeout, DefaultSoftStateTimeout)
	if c.LossWeight == 0 {
		c.LossWeight = DefaultLossWeight
	}
	if c.SwitchGain == 0 {
		c.SwitchGain = DefaultSwitchGain
	}
	if c.MaxChannels == 0 {
		c.MaxChannels = DefaultMaxChannels
	}
	if c.MaxOwners == 0 {
		c.MaxOwners = DefaultMaxOwners
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.MaxValueLen == 0 {
		c.MaxValueLen = DefaultMaxValueLen
	}
	if c.ScopedMapPrefix == "" {
		c.ScopedMapPrefix = DefaultScopedMapPrefix
	}
	if c.MaxScopedMaps == 0 {
		c.MaxScopedMaps = DefaultMaxScopedMaps
	}
	if c.MaxScopedEntries == 0 {
		c.MaxScopedEntries = DefaultMaxScopedEntries
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
