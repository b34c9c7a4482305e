package cluster

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"strings"
	"time"

	"github.com/sansrtc/sfu/internal/mediaframe"
	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/track"
)

// maxRoomNameSDN bounds a room's name when rooms span nodes: the map name
// is "r:" + room, and sdn map names are at most 255 bytes.
const maxRoomNameSDN = 253

// relayOwnerBit marks the owner ids of relay RemoteTracks in their
// Feedback: core hands those to HandleRelayFeedback instead of sending
// RTCP. Endpoint handles never have it set.
const relayOwnerBit = 1 << 63

// IsRelayOwner reports whether a Feedback's Owner is a relay of this
// cluster (see HandleRelayFeedback).
func IsRelayOwner(owner uint64) bool { return owner&relayOwnerBit != 0 }

// relayTick is how often relays re-evaluate the encodings they pull.
const relayTick = 500 * time.Millisecond

// ErrDirectory is returned when the room directory refuses an entry (the
// node's map is full, or a name too long for it).
var ErrDirectory = errors.New("cluster: directory refused the entry")

// Stats are the cluster's drop counters.
type Stats struct {
	// Impostors counts track entries of a node for a peer that node does
	// not host.
	Impostors uint64
	// BadDirectory counts directory entries that did not decode.
	BadDirectory uint64
	// BadFrames counts media frames that did not decode or did not match
	// their channel; RelayDrops frames the relay track refused
	// (duplicates, mostly repairs that came twice).
	BadFrames, RelayDrops uint64
	// Replaced counts local members replaced by a newer session of the
	// same peer id on another node.
	Replaced uint64
}

type netState struct {
	r      *sdn.Router
	out    *track.Output
	byChan map[uint64]chanRef
	relays map[uint64]*relay
	list   []*relay // creation order
	nextID uint64
	frame  []byte
	pkt    track.Packet
	tickAt time.Time
	stats  Stats
}

type chanRef struct {
	ch  *channel
	enc int
}

type remotePeer struct {
	owner  sdn.NodeID
	peer   string
	joined int64
}

type remoteSrc struct {
	owner sdn.NodeID
}

// relay is a remote track pulled for this node's subscribers.
type relay struct {
	id     uint64
	ch     *channel
	rt     *track.RemoteTrack
	owner  sdn.NodeID
	pulled []bool
	since  []time.Time // when each pulled encoding was first asked for
}

// Attach connects the cluster to the overlay: rooms span the nodes of r.
// out is the Output the node's track machines share (relay tracks write
// their feedback and timers into it). Call once, before any Join.
func (c *Cluster) Attach(r *sdn.Router, out *track.Output) {
	c.net = netState{r: r, out: out, byChan: map[uint64]chanRef{}, relays: map[uint64]*relay{}, frame: make([]byte, 0, 1500)}
}

// Stats returns the cluster's counters.
func (c *Cluster) Stats() Stats { return c.net.stats }

// ChannelID is the sdn channel of one encoding of a published track: a
// 64-bit FNV-1a hash of room, peer, track and encoding, each
// length-prefixed so that no two tuples collide by concatenation.
func ChannelID(room, peer, trackName string, enc int) uint64 {
	h := fnv.New64a()
	var n [4]byte
	for _, s := range []string{room, peer, trackName} {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint32(n[:], uint32(enc))
	h.Write(n[:])
	return h.Sum64()
}

func mapName(room string) string { return "r:" + room }
func peerKey(peer string) string { return "p:" + peer }
func trackKey(k TrackKey) string { return "t:" + k.Peer + "\x00" + k.Track }
func (r *room) remoteIndex(peer string) int {
	// The newest entry for the peer is the one that counts.
	best := -1
	for i, rp := range r.remotes {
		if rp.peer == peer && (best < 0 || newer(rp.joined, rp.owner, r.remotes[best].joined, r.remotes[best].owner)) {
			best = i
		}
	}
	return best
}

// newer is the newest-session-wins order: the later join, and between
// equal times the higher node id.
func newer(aJoined int64, aNode sdn.NodeID, bJoined int64, bNode sdn.NodeID) bool {
	if aJoined != bJoined {
		return aJoined > bJoined
	}
	return aNode > bNode
}

// EncodeTrackInfo is the directory value of a track: kind, codec,
// priority, layers, metadata. Peer and name are in the key.
func EncodeTrackInfo(info track.Info) []byte {
	b := make([]byte, 0, 9+len(info.Metadata))
	b = append(b, uint8(info.Kind), uint8(info.Codec))
	b = binary.BigEndian.AppendUint32(b, uint32(int32(info.Priority)))
	b = append(b, uint8(info.Layers))
	b = binary.BigEndian.AppendUint16(b, uint16(len(info.Metadata)))
	return append(b, info.Metadata...)
}

// DecodeTrackInfo parses a directory track value.
func DecodeTrackInfo(b []byte) (track.Info, bool) {
	if len(b) < 9 {
		return track.Info{}, false
	}
	info := track.Info{Kind: track.Kind(b[0]), Codec: track.Codec(b[1]),
		Priority: int(int32(binary.BigEndian.Uint32(b[2:]))), Layers: int(b[6])}
	n := int(binary.BigEndian.Uint16(b[7:]))
	if len(b) != 9+n || info.Layers < 1 || info.Layers > 16 || info.Codec == track.CodecUnknown ||
		info.Codec.Kind() == 0 || info.Kind != info.Codec.Kind() {
		return track.Info{}, false
	}
	info.Metadata = string(b[9:])
	return info, true
}

// DecodeDirectoryKey splits a directory key into its peer and, for a
// track entry, its track name.
func DecodeDirectoryKey(key string) (peer, trackName string, isTrack, ok bool) {
	switch {
	case strings.HasPrefix(key, "p:"):
		return key[2:], "", false, len(key) > 2
	case strings.HasPrefix(key, "t:"):
		peer, trackName, found := strings.Cut(key[2:], "\x00")
		return peer, trackName, true, found && peer != "" && trackName != ""
	}
	return "", "", false, false
}

func (c *Cluster) netJoin(now time.Time, r *room, peer string) error {
	if c.net.r == nil {
		return nil
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(now.UnixNano()))
	if err := c.net.r.MapSet(now, mapName(r.name), peerKey(peer), v[:]); err != nil {
		return errors.Join(ErrDirectory, err)
	}
	if len(r.members) == 0 {
		c.net.r.SubscribeMap(now, mapName(r.name))
	}
	return nil
}

func (c *Cluster) netLeave(now time.Time, r *room, peer string) {
	if c.net.r == nil {
		return
	}
	c.net.r.MapDelete(now, mapName(r.name), peerKey(peer))
	if len(r.members) > 0 {
		return
	}
	// Nobody here is in the room any more: forget its directory.
	c.net.r.UnsubscribeMap(mapName(r.name))
	r.remotes = nil
	for i := 0; i < len(r.channels); i++ {
		ch := r.channels[i]
		if ch.remote != nil && len(ch.subs) == 0 {
			ch.remote = nil
			c.removeChannel(ch)
			i--
		}
	}
}

func (c *Cluster) netCanPublish(r *room, info track.Info) error {
	if c.net.r == nil {
		return nil
	}
	k := trackKey(TrackKey{Peer: info.Peer, Track: info.Name})
	if len(k) > 255 {
		return ErrDirectory
	}
	return nil
}

func (c *Cluster) netPublish(now time.Time, ch *channel) {
	if c.net.r == nil {
		return
	}
	if err := c.net.r.MapSet(now, mapName(ch.room.name), trackKey(ch.key), EncodeTrackInfo(ch.info)); err != nil {
		c.net.stats.BadDirectory++
	}
	ch.ids = make([]uint64, ch.src.Encodings())
	for i := range ch.ids {
		ch.ids[i] = ChannelID(ch.room.name, ch.key.Peer, ch.key.Track, i)
		_ = c.net.r.Publish(now, ch.ids[i])
		c.net.byChan[ch.ids[i]] = chanRef{ch: ch, enc: i}
	}
}

func (c *Cluster) netUnpublish(now time.Time, ch *channel) {
	if c.net.r == nil || ch.src == nil {
		return
	}
	c.net.r.MapDelete(now, mapName(ch.room.name), trackKey(ch.key))
	for _, id := range ch.ids {
		c.net.r.Unpublish(now, id)
		delete(c.net.byChan, id)
	}
	ch.ids = nil
}

// sendFrame sends a locally published packet on its encoding's channel,
// when a node pulls it. The frame is built in a scratch buffer that the
// Router copies once for all its links: no allocation.
func (c *Cluster) sendFrame(now time.Time, ch *channel, p *track.Packet) {
	if int(p.Encoding) >= len(ch.ids) {
		return
	}
	id := ch.ids[p.Encoding]
	if c.net.r.Downstreams(id) == 0 {
		return
	}
	c.net.frame = mediaframe.Append(c.net.frame[:0], p)
	_ = c.net.r.Send(now, id, c.net.frame)
}

// HandleMapSet takes a directory entry from the Router (EventMapSet).
func (c *Cluster) HandleMapSet(now time.Time, e sdn.EventMapSet) {
	r := c.netRoom(e.Map, e.Owner)
	if r == nil {
		return
	}
	peer, name, isTrack, ok := DecodeDirectoryKey(e.Key)
	if !ok {
		c.net.stats.BadDirectory++
		return
	}
	if !isTrack {
		if len(e.Value) != 8 {
			c.net.stats.BadDirectory++
			return
		}
		c.remoteJoined(now, r, remotePeer{owner: e.Owner, peer: peer, joined: int64(binary.BigEndian.Uint64(e.Value))})
		return
	}
	info, ok := DecodeTrackInfo(e.Value)
	if !ok {
		c.net.stats.BadDirectory++
		return
	}
	info.Peer, info.Name = peer, name
	c.remotePublished(now, r, e.Owner, info)
}

// HandleMapDelete takes a directory entry's deletion from the Router
// (EventMapDelete), also when its owner died.
func (c *Cluster) HandleMapDelete(now time.Time, e sdn.EventMapDelete) {
	r := c.netRoom(e.Map, e.Owner)
	if r == nil {
		return
	}
	peer, name, isTrack, ok := DecodeDirectoryKey(e.Key)
	if !ok {
		return
	}
	if !isTrack {
		c.remoteLeft(now, r, e.Owner, peer)
		return
	}
	ch := r.channel(TrackKey{Peer: peer, Track: name})
	if ch != nil && ch.remote != nil && ch.remote.owner == e.Owner {
		c.remoteWithdrawn(now, ch)
	}
}

func (c *Cluster) netRoom(name string, owner sdn.NodeID) *room {
	if c.net.r == nil || owner == c.net.r.ID() || !strings.HasPrefix(name, "r:") {
		return nil
	}
	r := c.rooms[name[2:]]
	if r == nil || len(r.members) == 0 {
		return nil
	}
	return r
}

func (c *Cluster) remoteJoined(now time.Time, r *room, rp remotePeer) {
	before := r.present(rp.peer)
	for i := range r.remotes {
		if r.remotes[i].owner == rp.owner && r.remotes[i].peer == rp.peer {
			r.remotes[i].joined = rp.joined
			c.resolve(now, r, rp.peer)
			return
		}
	}
	r.remotes = append(r.remotes, rp)
	if !before {
		for _, m := range r.members {
			c.notify(Notice{To: m.h, Kind: NoticePeerJoined, Room: r.name, Peer: rp.peer})
		}
	}
	c.resolve(now, r, rp.peer)
}

// resolve applies newest-session-wins between a local member and the
// remote entries of the same peer id.
func (c *Cluster) resolve(now time.Time, r *room, peer string) {
	li := -1
	for i, m := range r.members {
		if m.peer == peer {
			li = i
		}
	}
	ri := r.remoteIndex(peer)
	if li < 0 || ri < 0 {
		return
	}
	m, rp := r.members[li], r.remotes[ri]
	if newer(rp.joined, rp.owner, m.joined, c.net.r.ID()) {
		c.net.stats.Replaced++
		c.notify(Notice{To: m.h, Kind: NoticeReplaced, Room: r.name, Peer: peer})
	}
}

func (r *room) present(peer string) bool {
	for _, m := range r.members {
		if m.peer == peer {
			return true
		}
	}
	return r.remoteIndex(peer) >= 0
}

func (c *Cluster) remoteLeft(now time.Time, r *room, owner sdn.NodeID, peer string) {
	for i, rp := range r.remotes {
		if rp.owner == owner && rp.peer == peer {
			r.remotes = append(r.remotes[:i], r.remotes[i+1:]...)
			break
		}
	}
	if !r.present(peer) {
		for _, m := range r.members {
			c.notify(Notice{To: m.h, Kind: NoticePeerLeft, Room: r.name, Peer: peer})
		}
	}
	// Its tracks go with it even if their own deletions were lost.
	for i := 0; i < len(r.channels); i++ {
		ch := r.channels[i]
		if ch.key.Peer == peer && ch.remote != nil && ch.remote.owner == owner {
			n := len(r.channels)
			c.remoteWithdrawn(now, ch)
			if len(r.channels) < n {
				i--
			}
		}
	}
}

func (c *Cluster) remotePublished(now time.Time, r *room, owner sdn.NodeID, info track.Info) {
	hosted := false
	for _, rp := range r.remotes {
		hosted = hosted || rp.owner == owner && rp.peer == info.Peer
	}
	if !hosted {
		c.net.stats.Impostors++
		return
	}
	k := TrackKey{Peer: info.Peer, Track: info.Name}
	ch := r.channel(k)
	if ch != nil && ch.src != nil {
		// The peer publishes it here: a session this node holds, which
		// newest-session-wins settles.
		return
	}
	if ch != nil && ch.remote != nil {
		if ch.remote.owner == owner && ch.info == info {
			return
		}
		c.remoteWithdrawn(now, ch) // moved to another node, or changed
		ch = r.channel(k)
	}
	if ch == nil {
		ch = &channel{key: k, room: r}
		r.channels = append(r.channels, ch)
	} else {
		c.removeGone(ch)
		if ch.info.Codec != info.Codec || ch.info.Kind != info.Kind || ch.info.Layers != info.Layers {
			for _, s := range ch.subs {
				c.notify(Notice{To: s.h, Kind: NoticeSubscriptionEnded, Room: r.name, Info: ch.info, Local: s.lt})
			}
			ch.subs = nil
		}
	}
	ch.remote, ch.info, ch.goneAt = &remoteSrc{owner: owner}, info, time.Time{}
	if len(ch.subs) > 0 {
		c.openRelay(now, ch)
		for _, s := range ch.subs {
			s.lt.SetSource(now, ch.relay.rt)
			c.notify(Notice{To: s.h, Kind: NoticeSourceBack, Room: r.name, Info: info, Local: s.lt})
		}
		c.pull(now, ch)
	}
	for _, m := range r.members {
		c.notify(Notice{To: m.h, Kind: NoticeTrackPublished, Room: r.name, Info: info})
	}
}

func (c *Cluster) remoteWithdrawn(now time.Time, ch *channel) {
	c.dropRelay(ch)
	ch.remote = nil
	c.withdrawn(now, ch)
}

// openRelay creates the relay track of a remote channel.
func (c *Cluster) openRelay(now time.Time, ch *channel) {
	n := &c.net
	n.nextID++
	encs := make([]track.Encoding, ch.info.Layers)
	for i := range encs {
		encs[i].SSRC = uint32(i + 1) // names the encoding in the relay's feedback
	}
	rl := &relay{id: relayOwnerBit | n.nextID, ch: ch, owner: ch.remote.owner, pulled: make([]bool, len(encs)), since: make([]time.Time, len(encs))}
	rl.rt = track.NewRemoteTrack(track.RemoteConfig{Owner: rl.id, Info: ch.info, Encodings: encs, NACK: true, Relay: true}, n.out)
	ch.relay = rl
	n.relays[rl.id] = rl
	n.list = append(n.list, rl)
	if ch.ids == nil {
		ch.ids = make([]uint64, len(encs))
		for i := range ch.ids {
			ch.ids[i] = ChannelID(ch.room.name, ch.key.Peer, ch.key.Track, i)
		}
	}
	if n.tickAt.IsZero() {
		n.tickAt = now.Add(relayTick)
	}
}

// dropRelay stops pulling ch and releases its relay track (its
// subscribers, if any, are detached by the caller).
func (c *Cluster) dropRelay(ch *channel) {
	rl := ch.relay
	if rl == nil {
		return
	}
	n := &c.net
	for i, p := range rl.pulled {
		if p {
			n.r.Unsubscribe(n.r.Now(), ch.ids[i])
			delete(n.byChan, ch.ids[i])
		}
	}
	rl.rt.Close()
	delete(n.relays, rl.id)
	for i, o := range n.list {
		if o == rl {
			n.list = append(n.list[:i], n.list[i+1:]...)
			break
		}
	}
	if len(n.list) == 0 {
		n.tickAt = time.Time{}
	}
	ch.relay = nil
	ch.ids = nil
}

func (c *Cluster) closeRelay(now time.Time, ch *channel) {
	if ch.relay != nil {
		c.dropRelay(ch)
		ch.remote = nil
	}
}

// pull subscribes the relay of ch to the encodings its LocalTracks want
// (the one asked for, the one aimed at, the one forwarded), and
// unsubscribes it from the others.
func (c *Cluster) pull(now time.Time, ch *channel) {
	rl := ch.relay
	if rl == nil {
		return
	}
	n := &c.net
	var want [16]bool
	for _, s := range ch.subs {
		w, t, cur := s.lt.Encodings()
		want[w], want[t], want[cur] = true, true, true
		// An encoding pulled for a while that still sends nothing is one
		// the publisher does not send (browsers drop layers): pull those
		// below it too, so the LocalTrack can fall back to one.
		if rl.pulled[w] && !rl.rt.Active(w, now) && now.Sub(rl.since[w]) >= track.ActiveWindow {
			for e := 0; e < w; e++ {
				want[e] = true
			}
		}
	}
	for i := range rl.pulled {
		switch {
		case want[i] && !rl.pulled[i]:
			rl.pulled[i], rl.since[i] = true, now
			n.byChan[ch.ids[i]] = chanRef{ch: ch, enc: i}
			_ = n.r.SubscribeSource(now, ch.ids[i], rl.owner)
		case !want[i] && rl.pulled[i]:
			rl.pulled[i] = false
			delete(n.byChan, ch.ids[i])
			n.r.Unsubscribe(now, ch.ids[i])
		}
		if rl.pulled[i] {
			lo, hi := localRange(ch, i)
			n.r.SetBitrate(now, ch.ids[i], lo, hi)
		}
	}
}

func (c *Cluster) netTimeout(now time.Time) {
	n := &c.net
	if n.tickAt.IsZero() || now.Before(n.tickAt) {
		return
	}
	n.tickAt = now.Add(relayTick)
	for _, rl := range n.list {
		c.pull(now, rl.ch)
	}
}

// HandleData takes a media frame the Router delivered on a channel this
// node relays (PollData), stores it in the relay track and forwards it to
// the subscribers here, queueing their transmits on out.
func (c *Cluster) HandleData(now time.Time, d sdn.Delivery, out *track.Output) {
	n := &c.net
	ref, ok := n.byChan[d.Channel]
	if !ok || ref.ch.relay == nil {
		return // unsubscribed a moment ago
	}
	var f mediaframe.Frame
	if mediaframe.Decode(d.Payload, &f) != nil || int(f.Encoding) != ref.enc {
		n.stats.BadFrames++
		return
	}
	f.Packet(&n.pkt)
	p, err := ref.ch.relay.rt.HandleRTP(now, &n.pkt, ref.enc)
	if err != nil {
		n.stats.RelayDrops++
		return
	}
	for i := range ref.ch.subs {
		ref.ch.subs[i].lt.Forward(now, p, out)
	}
}

// HandleFeedback takes the aggregated feedback of a channel this node
// publishes (sdn EventFeedback): a keyframe request goes to the
// publisher; the bitrate range is kept for DesiredBitrate.
func (c *Cluster) HandleFeedback(now time.Time, e sdn.EventFeedback) {
	ref, ok := c.net.byChan[e.Channel]
	if !ok || ref.ch.src == nil {
		return
	}
	ch := ref.ch
	if len(ch.fbMin) != len(ch.ids) {
		ch.fbMin, ch.fbMax = make([]uint64, len(ch.ids)), make([]uint64, len(ch.ids))
	}
	ch.fbMin[ref.enc], ch.fbMax[ref.enc] = e.BitrateMin, e.BitrateMax
	if e.Keyframe {
		ch.src.RequestKeyframe(now, ref.enc)
	}
}

// SetBitrateRange records the bitrate range member h's subscription lt
// wants (zero: none). It is aggregated with every other subscriber's of
// the same encoding, here and, through the relays' trees, on other nodes:
// DesiredBitrate on the publisher's node sees the least minimum and the
// greatest maximum (what the bandwidth allocation needs).
func (c *Cluster) SetBitrateRange(now time.Time, roomName string, k TrackKey, lt *track.LocalTrack, minBps, maxBps uint64) error {
	r := c.rooms[roomName]
	if r == nil {
		return ErrNoSuchRoom
	}
	ch := r.channel(k)
	if ch == nil {
		return ErrNotSubscribed
	}
	for i := range ch.subs {
		if ch.subs[i].lt == lt {
			ch.subs[i].minBps, ch.subs[i].maxBps = minBps, maxBps
			c.pull(now, ch)
			return nil
		}
	}
	return ErrNotSubscribed
}

// Retarget re-evaluates what a relay pulls after a subscriber of k asked
// for other layers (otherwise done every relayTick).
func (c *Cluster) Retarget(now time.Time, roomName string, k TrackKey) {
	if r := c.rooms[roomName]; r != nil {
		if ch := r.channel(k); ch != nil {
			c.pull(now, ch)
		}
	}
}

// DesiredBitrate is the bitrate range wanted for encoding enc of the
// track k of a room published here: the least minimum and the greatest
// maximum over its subscribers on this node and on every other (zero:
// none said).
func (c *Cluster) DesiredBitrate(roomName string, k TrackKey, enc int) (minBps, maxBps uint64) {
	r := c.rooms[roomName]
	if r == nil {
		return 0, 0
	}
	ch := r.channel(k)
	if ch == nil {
		return 0, 0
	}
	if enc < len(ch.fbMin) {
		minBps, maxBps = ch.fbMin[enc], ch.fbMax[enc]
	}
	lo, hi := localRange(ch, enc)
	return minRange(minBps, lo), max(maxBps, hi)
}

// localRange aggregates the ranges of ch's subscribers here that forward
// or aim at encoding enc.
func localRange(ch *channel, enc int) (minBps, maxBps uint64) {
	for _, s := range ch.subs {
		if _, t, cur := s.lt.Encodings(); t != enc && cur != enc {
			continue
		}
		minBps, maxBps = minRange(minBps, s.minBps), max(maxBps, s.maxBps)
	}
	return minBps, maxBps
}

// minRange is the lesser of two minimums, zero meaning none.
func minRange(a, b uint64) uint64 {
	if a == 0 || b != 0 && b < a {
		return b
	}
	return a
}

// HandleMoved takes a move of the tree above a relayed channel (sdn
// EventMoved): packets may have been lost, so a keyframe is asked for.
//
// The subscribers on that encoding restart at the next keyframe with
// continuous numbering (as when a publisher comes back), rather than
// being sent the packets of the outage late, out of order.
func (c *Cluster) HandleMoved(now time.Time, ch uint64) {
	ref, ok := c.net.byChan[ch]
	if !ok || ref.ch.relay == nil {
		return
	}
	rt := ref.ch.relay.rt
	rt.Resync(ref.enc)
	for _, s := range ref.ch.subs {
		if _, _, cur := s.lt.Encodings(); cur == ref.enc {
			s.lt.Resync(now)
		}
	}
	c.net.r.RequestKeyframe(now, ch)
}

// HandleChannelEnded takes the end of a relayed channel (sdn
// EventChannelEnded: its source was unreachable for the Router's
// EndGrace). While the directory still lists the track, the relay
// subscribes again at its next tick.
func (c *Cluster) HandleChannelEnded(now time.Time, ch uint64) {
	ref, ok := c.net.byChan[ch]
	if !ok || ref.ch.relay == nil {
		return
	}
	ref.ch.relay.pulled[ref.enc] = false
	delete(c.net.byChan, ch)
}

// HandleRelayFeedback takes a relay track's feedback (its Owner passes
// IsRelayOwner): a keyframe request goes up the channel's tree, a NACK
// upstream as a retransmission request.
func (c *Cluster) HandleRelayFeedback(now time.Time, f track.Feedback) {
	n := &c.net
	rl := n.relays[f.Owner]
	if rl == nil || f.SSRC == 0 || int(f.SSRC) > len(rl.pulled) {
		return
	}
	enc := int(f.SSRC) - 1
	id := rl.ch.ids[enc]
	switch f.Type {
	case track.FeedbackPLI, track.FeedbackFIR:
		n.r.RequestKeyframe(now, id)
	case track.FeedbackNACK:
		var b [4]byte
		binary.BigEndian.PutUint16(b[:], f.NACKPID)
		binary.BigEndian.PutUint16(b[2:], f.NACKBLP)
		n.r.SendUpstream(now, id, b[:])
	}
}

// HandleUpstream takes a retransmission request from a downstream node
// (sdn EventUpstream): every packet it names that this node's track (the
// publisher's or the relay's) still has goes back to that node as a
// repair. Packets this node lacks too were NACKed by its own relay.
func (c *Cluster) HandleUpstream(now time.Time, e sdn.EventUpstream) {
	n := &c.net
	ref, ok := n.byChan[e.Channel]
	if !ok {
		return
	}
	rt := ref.ch.source()
	if rt == nil || len(e.Payload)%4 != 0 {
		return
	}
	for b := e.Payload; len(b) >= 4; b = b[4:] {
		pid, blp := binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		for i := -1; i < 16; i++ {
			if i >= 0 && blp&(1<<i) == 0 {
				continue
			}
			if p := rt.PacketBySeq(ref.enc, pid+uint16(i+1)); p != nil {
				n.frame = mediaframe.Append(n.frame[:0], p)
				_ = n.r.SendRepair(now, e.Channel, e.From, n.frame)
			}
		}
	}
}
