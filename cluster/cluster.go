package cluster

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sansrtc/sfu/track"
)

// Errors for misuse.
var (
	ErrPeerExists      = errors.New("cluster: a peer with this id is already in the room")
	ErrNotMember       = errors.New("cluster: not a member of the room")
	ErrNoSuchRoom      = errors.New("cluster: no such room")
	ErrNoSuchTrack     = errors.New("cluster: no such track in the room")
	ErrTrackExists     = errors.New("cluster: track already published")
	ErrRoomFull        = errors.New("cluster: room full")
	ErrTooManyRooms    = errors.New("cluster: too many rooms")
	ErrNotSubscribed   = errors.New("cluster: not subscribed")
	ErrAlreadyInRoom   = errors.New("cluster: member already in a room")
	ErrInvalidRoomID   = errors.New("cluster: invalid room name")
	ErrSubscribedTwice = errors.New("cluster: already subscribed")
)

// Defaults of Config.
const (
	DefaultSourceGrace     = 10 * time.Second
	DefaultMaxRooms        = 100000
	DefaultMaxPeersPerRoom = 10000
)

// Config configures a Cluster. The zero value selects the defaults.
type Config struct {
	// SourceGrace is how long subscribers of a withdrawn track wait for a
	// track of the same name to come back (default 10 s).
	SourceGrace time.Duration
	// MaxRooms and MaxPeersPerRoom bound the directory.
	MaxRooms        int
	MaxPeersPerRoom int
}

// TrackKey names a track in a room: its publisher's peer id and its name.
type TrackKey struct {
	Peer, Track string
}

// NoticeKind says what a Notice reports.
type NoticeKind uint8

// Notice kinds.
const (
	NoticePeerJoined NoticeKind = iota + 1
	NoticePeerLeft
	NoticeTrackPublished
	NoticeTrackUnpublished
	// NoticeSourceGone: a track the member subscribes to was withdrawn.
	NoticeSourceGone
	// NoticeSourceBack: it came back; the subscription resumes.
	NoticeSourceBack
	// NoticeSubscriptionEnded: the grace ran out; the cluster has detached
	// the member's LocalTrack, which the member should now release.
	NoticeSubscriptionEnded
	// NoticeReplaced: the member's peer id joined the room on another
	// node later (newest session wins); core takes the member out.
	NoticeReplaced
)

// Notice is something a member of a room must be told.
type Notice struct {
	To   uint64
	Kind NoticeKind
	Room string
	Peer string     // PeerJoined, PeerLeft
	Info track.Info // track notices
	// Local is the member's LocalTrack for subscription notices.
	Local *track.LocalTrack
}

// Counts are live-object counts, for leak checks.
type Counts struct {
	Rooms, Members, Channels, Sources, Subscriptions int
	// RemoteMembers are members on other nodes in rooms with members
	// here; Relays the tracks of other nodes pulled for subscribers here.
	RemoteMembers, Relays int
}

type member struct {
	h      uint64
	peer   string
	joined int64 // unix ns of the join, for the newest-session-wins rule
}

type sub struct {
	h  uint64
	lt *track.LocalTrack
	// minBps and maxBps are the bitrate range the subscriber wants (zero:
	// none said), aggregated up the channel's tree (SetBitrateRange).
	minBps, maxBps uint64
}

type channel struct {
	key    TrackKey
	room   *room
	src    *track.RemoteTrack
	info   track.Info
	subs   []sub
	goneAt time.Time // when src (or remote) became nil

	// fbMin and fbMax are the bitrate ranges other nodes' subscribers
	// want, per encoding, while published here (sdn EventFeedback).
	fbMin, fbMax []uint64

	// Across nodes (remote.go): remote is set when the track is published
	// on another node, and relay while this node's subscribers pull it;
	// ids are the sdn channels of its encodings, while published here or
	// relayed.
	remote *remoteSrc
	relay  *relay
	ids    []uint64
}

// live reports whether the track is published, here or on another node.
func (ch *channel) live() bool { return ch.src != nil || ch.remote != nil }

// source is the RemoteTrack that subscribers attach to: the publisher's,
// or the relay's fed from another node (nil while not pulled).
func (ch *channel) source() *track.RemoteTrack {
	if ch.src != nil {
		return ch.src
	}
	if ch.relay != nil {
		return ch.relay.rt
	}
	return nil
}

type room struct {
	name     string
	members  []member
	channels []*channel
	// remotes are the room's members on other nodes (the directory).
	remotes []remotePeer
}

// Cluster is the machine for the rooms of one node.
type Cluster struct {
	cfg     Config
	net     netState // across nodes (remote.go); zero without a Router
	rooms   map[string]*room
	order   []*room // creation order, for deterministic iteration
	byTrack map[*track.RemoteTrack]*channel
	gone    []*channel // channels waiting for their source
	notices []Notice
	nhead   int
}

// New returns an empty Cluster.
func New(cfg Config) *Cluster {
	if cfg.SourceGrace <= 0 {
		cfg.SourceGrace = DefaultSourceGrace
	}
	if cfg.MaxRooms <= 0 {
		cfg.MaxRooms = DefaultMaxRooms
	}
	if cfg.MaxPeersPerRoom <= 0 {
		cfg.MaxPeersPerRoom = DefaultMaxPeersPerRoom
	}
	return &Cluster{cfg: cfg, rooms: map[string]*room{}, byTrack: map[*track.RemoteTrack]*channel{}}
}

// Counts returns live-object counts.
func (c *Cluster) Counts() Counts {
	var n Counts
	n.Rooms = len(c.order)
	for _, r := range c.order {
		n.Members += len(r.members)
		n.Channels += len(r.channels)
		for _, ch := range r.channels {
			n.Subscriptions += len(ch.subs)
			if ch.live() {
				n.Sources++
			}
			if ch.relay != nil {
				n.Relays++
			}
		}
	}
	return n
}

// Members returns the peer ids in a room: those here in join order, then
// those on other nodes.
func (c *Cluster) Members(roomName string) []string {
	r := c.rooms[roomName]
	if r == nil {
		return nil
	}
	ps := make([]string, len(r.members))
	for i, m := range r.members {
		ps[i] = m.peer
	}
	for _, rp := range r.remotes {
		if !slices.Contains(ps, rp.peer) {
			ps = append(ps, rp.peer)
		}
	}
	return ps
}

// Tracks returns the published tracks of a room, in publication order.
func (c *Cluster) Tracks(roomName string) []track.Info {
	r := c.rooms[roomName]
	if r == nil {
		return nil
	}
	var ts []track.Info
	for _, ch := range r.channels {
		if ch.live() {
			ts = append(ts, ch.info)
		}
	}
	return ts
}

// Source returns the RemoteTrack currently published under k in a room.
func (c *Cluster) Source(roomName string, k TrackKey) (*track.RemoteTrack, bool) {
	r := c.rooms[roomName]
	if r == nil {
		return nil, false
	}
	ch := r.channel(k)
	if ch == nil || ch.src == nil {
		return nil, false
	}
	return ch.src, true
}

// Info describes the track published under k in a room, here or on
// another node.
func (c *Cluster) Info(roomName string, k TrackKey) (track.Info, bool) {
	r := c.rooms[roomName]
	if r == nil {
		return track.Info{}, false
	}
	ch := r.channel(k)
	if ch == nil || !ch.live() {
		return track.Info{}, false
	}
	return ch.info, true
}

func (r *room) channel(k TrackKey) *channel {
	for _, ch := range r.channels {
		if ch.key == k {
			return ch
		}
	}
	return nil
}

func (r *room) memberIndex(h uint64) int {
	for i, m := range r.members {
		if m.h == h {
			return i
		}
	}
	return -1
}

func (c *Cluster) notify(n Notice) {
	if c.nhead == len(c.notices) && c.nhead > 0 {
		c.notices, c.nhead = c.notices[:0], 0
	}
	c.notices = append(c.notices, n)
}

func (c *Cluster) memberRoom(roomName string, h uint64) (*room, error) {
	r := c.rooms[roomName]
	if r == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchRoom, roomName)
	}
	if r.memberIndex(h) < 0 {
		return nil, fmt.Errorf("%w: %q", ErrNotMember, roomName)
	}
	return r, nil
}

// Join adds member h with peer id peer to a room, creating it. The member
// is told of every peer and track already there; the others of it.
func (c *Cluster) Join(now time.Time, roomName string, h uint64, peer string) error {
	if roomName == "" || len(roomName) > 256 || c.net.r != nil && len(roomName) > maxRoomNameSDN {
		return ErrInvalidRoomID
	}
	r := c.rooms[roomName]
	if r == nil {
		if len(c.order) >= c.cfg.MaxRooms {
			return ErrTooManyRooms
		}
		r = &room{name: roomName}
		c.rooms[roomName] = r
		c.order = append(c.order, r)
	}
	for _, m := range r.members {
		if m.peer == peer {
			return fmt.Errorf("%w: %q in %q", ErrPeerExists, peer, roomName)
		}
		if m.h == h {
			return ErrAlreadyInRoom
		}
	}
	if len(r.members) >= c.cfg.MaxPeersPerRoom {
		return ErrRoomFull
	}
	if err := c.netJoin(now, r, peer); err != nil {
		c.maybeRelease(r)
		return err
	}
	elsewhere := r.remoteIndex(peer) >= 0
	for _, m := range r.members {
		c.notify(Notice{To: h, Kind: NoticePeerJoined, Room: roomName, Peer: m.peer})
		if !elsewhere {
			c.notify(Notice{To: m.h, Kind: NoticePeerJoined, Room: roomName, Peer: peer})
		}
	}
	for i, rp := range r.remotes {
		if rp.peer != peer && r.remoteIndex(rp.peer) == i {
			c.notify(Notice{To: h, Kind: NoticePeerJoined, Room: roomName, Peer: rp.peer})
		}
	}
	r.members = append(r.members, member{h: h, peer: peer, joined: now.UnixNano()})
	for _, ch := range r.channels {
		if ch.live() {
			c.notify(Notice{To: h, Kind: NoticeTrackPublished, Room: roomName, Info: ch.info})
		}
	}
	return nil
}

// Leave removes member h from a room. The caller withdraws its tracks and
// subscriptions first (Unpublish, Unsubscribe). An empty room is released.
func (c *Cluster) Leave(now time.Time, roomName string, h uint64) error {
	r, err := c.memberRoom(roomName, h)
	if err != nil {
		return err
	}
	i := r.memberIndex(h)
	peer := r.members[i].peer
	r.members = append(r.members[:i], r.members[i+1:]...)
	if r.remoteIndex(peer) < 0 {
		for _, m := range r.members {
			c.notify(Notice{To: m.h, Kind: NoticePeerLeft, Room: roomName, Peer: peer})
		}
	}
	c.netLeave(now, r, peer)
	c.maybeRelease(r)
	return nil
}

func (c *Cluster) maybeRelease(r *room) {
	if len(r.members) > 0 || len(r.channels) > 0 {
		return
	}
	delete(c.rooms, r.name)
	for i, o := range c.order {
		if o == r {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
}

// Publish makes rt, published by member h, available in the room under
// (its peer, its name). If subscribers are waiting for a track of that name
// (within SourceGrace of its withdrawal), they resume from rt.
func (c *Cluster) Publish(now time.Time, roomName string, h uint64, rt *track.RemoteTrack) error {
	r, err := c.memberRoom(roomName, h)
	if err != nil {
		return err
	}
	info := rt.Info()
	k := TrackKey{Peer: info.Peer, Track: info.Name}
	ch := r.channel(k)
	if ch != nil && ch.live() {
		return fmt.Errorf("%w: %s/%s", ErrTrackExists, k.Peer, k.Track)
	}
	if err := c.netCanPublish(r, info); err != nil {
		return err
	}
	if ch == nil {
		ch = &channel{key: k, room: r}
		r.channels = append(r.channels, ch)
	} else {
		c.removeGone(ch)
		if ch.info.Codec != info.Codec || ch.info.Kind != info.Kind {
			// Back under the same name with another codec: the waiting
			// subscriptions were negotiated for the old one, so they end
			// (their members learn of the new track below and may
			// subscribe again) instead of resuming into payloads their
			// peers cannot decode.
			for _, s := range ch.subs {
				c.notify(Notice{To: s.h, Kind: NoticeSubscriptionEnded, Room: roomName, Info: ch.info, Local: s.lt})
			}
			ch.subs = nil
		}
	}
	c.closeRelay(now, ch) // subscribers waiting on a relay move to rt
	ch.src, ch.info, ch.goneAt = rt, info, time.Time{}
	c.byTrack[rt] = ch
	c.netPublish(now, ch)
	for _, s := range ch.subs {
		s.lt.SetSource(now, rt)
		c.notify(Notice{To: s.h, Kind: NoticeSourceBack, Room: roomName, Info: info, Local: s.lt})
	}
	for _, m := range r.members {
		if m.h != h {
			c.notify(Notice{To: m.h, Kind: NoticeTrackPublished, Room: roomName, Info: info})
		}
	}
	return nil
}

// Unpublish withdraws rt. Its subscribers are detached and told; they wait
// SourceGrace for it to come back.
func (c *Cluster) Unpublish(now time.Time, rt *track.RemoteTrack) error {
	ch := c.byTrack[rt]
	if ch == nil {
		return ErrNoSuchTrack
	}
	delete(c.byTrack, rt)
	c.netUnpublish(now, ch)
	ch.src = nil
	c.withdrawn(now, ch)
	return nil
}

// withdrawn tells the room that ch lost its source (local or remote):
// subscribers are detached and wait SourceGrace for it to come back.
func (c *Cluster) withdrawn(now time.Time, ch *channel) {
	r := ch.room
	ch.goneAt = now
	for _, m := range r.members {
		if m.peer != ch.key.Peer {
			c.notify(Notice{To: m.h, Kind: NoticeTrackUnpublished, Room: r.name, Info: ch.info})
		}
	}
	for _, s := range ch.subs {
		s.lt.SetSource(now, nil)
		c.notify(Notice{To: s.h, Kind: NoticeSourceGone, Room: r.name, Info: ch.info, Local: s.lt})
	}
	if len(ch.subs) == 0 {
		c.removeChannel(ch)
	} else {
		c.gone = append(c.gone, ch)
	}
}

func (c *Cluster) removeGone(ch *channel) {
	for i, g := range c.gone {
		if g == ch {
			c.gone = append(c.gone[:i], c.gone[i+1:]...)
			return
		}
	}
}

func (c *Cluster) removeChannel(ch *channel) {
	r := ch.room
	c.dropRelay(ch)
	for i, o := range r.channels {
		if o == ch {
			r.channels = append(r.channels[:i], r.channels[i+1:]...)
			break
		}
	}
	c.removeGone(ch)
	c.maybeRelease(r)
}

// Subscribe attaches member h's LocalTrack lt to the track k of the room.
func (c *Cluster) Subscribe(now time.Time, roomName string, h uint64, k TrackKey, lt *track.LocalTrack) error {
	r, err := c.memberRoom(roomName, h)
	if err != nil {
		return err
	}
	ch := r.channel(k)
	if ch == nil || !ch.live() {
		return fmt.Errorf("%w: %s/%s", ErrNoSuchTrack, k.Peer, k.Track)
	}
	for _, s := range ch.subs {
		if s.lt == lt {
			return ErrSubscribedTwice
		}
	}
	ch.subs = append(ch.subs, sub{h: h, lt: lt})
	if ch.src == nil && ch.relay == nil {
		c.openRelay(now, ch)
	}
	lt.SetSource(now, ch.source())
	c.pull(now, ch)
	return nil
}

// Unsubscribe detaches lt from the track k.
func (c *Cluster) Unsubscribe(now time.Time, roomName string, k TrackKey, lt *track.LocalTrack) error {
	r := c.rooms[roomName]
	if r == nil {
		return ErrNoSuchRoom
	}
	ch := r.channel(k)
	if ch == nil {
		return ErrNotSubscribed
	}
	for i, s := range ch.subs {
		if s.lt == lt {
			ch.subs = append(ch.subs[:i], ch.subs[i+1:]...)
			lt.SetSource(now, nil)
			if !ch.live() && len(ch.subs) == 0 {
				c.removeChannel(ch)
			} else if len(ch.subs) == 0 {
				c.dropRelay(ch)
			} else {
				c.pull(now, ch)
			}
			return nil
		}
	}
	return ErrNotSubscribed
}

// Deliver fans a packet stored by rt out to every LocalTrack subscribed to
// it, queueing their transmits on out. It does not allocate.
func (c *Cluster) Deliver(now time.Time, rt *track.RemoteTrack, p *track.Packet, out *track.Output) {
	ch := c.byTrack[rt]
	if ch == nil {
		return
	}
	for i := range ch.subs {
		ch.subs[i].lt.Forward(now, p, out)
	}
	if ch.ids != nil {
		c.sendFrame(now, ch, p)
	}
}

// DeliverSenderReport passes rt's sender report for encoding enc to every
// LocalTrack subscribed to it, which translate it for their subscribers.
func (c *Cluster) DeliverSenderReport(now time.Time, rt *track.RemoteTrack, enc int, ntp uint64, rtpTime uint32, out *track.Output) {
	ch := c.byTrack[rt]
	if ch == nil {
		return
	}
	for i := range ch.subs {
		ch.subs[i].lt.HandleSenderReport(now, enc, ntp, rtpTime, out)
	}
}

// Subscribers is the number of LocalTracks attached to rt.
func (c *Cluster) Subscribers(rt *track.RemoteTrack) int {
	if ch := c.byTrack[rt]; ch != nil {
		return len(ch.subs)
	}
	return 0
}

// HandleTimeout ends the subscriptions whose source did not come back
// within SourceGrace, and re-evaluates what the relays pull.
func (c *Cluster) HandleTimeout(now time.Time) {
	c.netTimeout(now)
	for i := 0; i < len(c.gone); {
		ch := c.gone[i]
		if now.Sub(ch.goneAt) < c.cfg.SourceGrace {
			i++
			continue
		}
		for _, s := range ch.subs {
			c.notify(Notice{To: s.h, Kind: NoticeSubscriptionEnded, Room: ch.room.name, Info: ch.info, Local: s.lt})
		}
		ch.subs = nil
		c.removeChannel(ch) // removes it from c.gone
	}
}

// PollTimeout is when the next waiting subscription expires.
func (c *Cluster) PollTimeout() (time.Time, bool) {
	var at time.Time
	for _, ch := range c.gone {
		if t := ch.goneAt.Add(c.cfg.SourceGrace); at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if t := c.net.tickAt; !t.IsZero() && (at.IsZero() || t.Before(at)) {
		at = t
	}
	return at, !at.IsZero()
}

// PollNotice returns the next notice for a member.
func (c *Cluster) PollNotice() (Notice, bool) {
	if c.nhead == len(c.notices) {
		return Notice{}, false
	}
	n := c.notices[c.nhead]
	c.notices[c.nhead] = Notice{}
	c.nhead++
	if c.nhead == len(c.notices) {
		c.notices, c.nhead = c.notices[:0], 0
	}
	return n, true
}
