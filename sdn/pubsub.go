package sdn

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// Errors of the pub/sub API.
var (
	ErrNotPublishing = errors.New("sdn: channel not published by this node")
	ErrTooMany       = errors.New("sdn: too many channels")
)

// downstream is a neighbour subscribed to a channel through us.
type downstream struct {
	nb       NodeID
	expires  time.Time
	min, max uint64
}

// pendPkt is a data message held while a move waits for the old
// upstream to catch up with the new one.
type pendPkt struct {
	seq uint32
	msg []byte
}

// maxPendBuf bounds the packets held during a move.
const maxPendBuf = 256

// channel is a node's part of one channel's tree: the source, a relay,
// or a subscriber's node (or several of these at once).
type channel struct {
	id         uint64
	source     NodeID
	publishing bool
	local      bool

	up         NodeID // upstream neighbour; 0 none
	upActive   bool   // up acknowledged a path from the source
	everActive bool
	upSince    time.Time
	prevUp     NodeID // previous upstream, accepted until prevUntil
	prevUntil  time.Time
	path       []byte // relays from the source down to us, 4 bytes each

	// A move is make-before-break: pend is subscribed while up still
	// feeds us, and takes over once its stream continues ours.
	pend       NodeID
	pendActive bool
	pendSince  time.Time
	pendPath   []byte
	pendBuf    []pendPkt // packets from pend ahead of up's stream
	lastData   time.Time
	diffSince  time.Time // since when the best next hop is not up

	down []downstream

	haveSeq bool
	lastSeq uint32
	seen    uint64 // bit i: lastSeq-i was accepted (a 64-packet reorder window)
	nextSeq uint32

	noRouteSince time.Time
	kfAt         time.Time
	kfPending    bool
	localMin     uint64
	localMax     uint64
	fbMin, fbMax uint64 // last feedback emitted at the source
}

type pubsub struct {
	r        *Router
	routeV   uint64 // routing version last seen
	chans    map[uint64]*channel
	list     []*channel // sorted by id
	nextTick time.Time
	ticks    uint64
	homes    map[uint64]homeEntry // channels this node is the home of
}

// homeEntry is a source announced to this node as the channel's home.
type homeEntry struct {
	source  NodeID
	expires time.Time
}

// announceEvery is how many SubRefresh ticks pass between a source's
// announcements; an announcement lives three times as long.
const announceEvery = 4

func (ps *pubsub) init(r *Router, now time.Time) {
	ps.r = r
	ps.chans = make(map[uint64]*channel)
	ps.homes = make(map[uint64]homeEntry)
	ps.nextTick = now.Add(r.cfg.SubRefresh)
}

func (ps *pubsub) deadline() time.Time { return ps.nextTick }

func (ps *pubsub) get(ch uint64) *channel {
	if c := ps.chans[ch]; c != nil {
		return c
	}
	if len(ps.list) >= ps.r.cfg.MaxChannels {
		ps.r.stats.LimitDrops++
		return nil
	}
	c := &channel{id: ch, path: make([]byte, 0, 4*maxPath)}
	ps.chans[ch] = c
	i, _ := slices.BinarySearchFunc(ps.list, ch, func(x *channel, k uint64) int { return cmpU(x.id, k) })
	ps.list = slices.Insert(ps.list, i, c)
	return c
}

func (ps *pubsub) remove(c *channel) {
	delete(ps.chans, c.id)
	if i := slices.Index(ps.list, c); i >= 0 {
		ps.list = slices.Delete(ps.list, i, i+1)
	}
}

const rdvTTL = 64

// route delivers or forwards a rendezvous message: toward its dst node,
// or toward the home of its channel. The home is chosen by rendezvous
// hashing in two levels: the zone with the highest hash of (channel,
// zone) among the zones this node can reach (every node knows them
// all), then, inside that zone, the node with the highest hash of
// (channel, node) among the zone's reachable nodes (known to that zone's
// nodes). A message for the home follows the zone route until it enters
// the home zone, then the node route to the home.
func (ps *pubsub) route(m rdv) {
	r := ps.r
	to := m.dst
	if to == 0 {
		if z := ps.homeZone(m.ch); z != r.zone {
			d := r.rt.dests[zoneKey(z)]
			if d != nil && d.next != 0 {
				ps.forward(d.next, m)
			}
			return
		}
		to = ps.homeNode(m.ch)
	}
	if to == r.id {
		ps.deliverRdv(m)
		return
	}
	if next, ok := r.Route(to); ok {
		ps.forward(next, m)
	}
}

func (ps *pubsub) forward(next NodeID, m rdv) {
	if m.ttl == 0 {
		return
	}
	m.ttl--
	if l := ps.r.nbrs[next]; l != nil {
		ps.r.sendCtl(l, m.append(ps.r.out))
	}
}

func hrw(ch uint64, x uint64) uint64 {
	z := ch ^ x*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (ps *pubsub) homeZone(ch uint64) ZoneID {
	r := ps.r
	best, bestH := r.zone, hrw(ch, uint64(r.zone)|1<<40)
	for _, d := range r.rt.list {
		if d.key.isZone() && d.next != 0 {
			if h := hrw(ch, uint64(ZoneID(d.key))|1<<40); h > bestH {
				best, bestH = ZoneID(d.key), h
			}
		}
	}
	return best
}

func (ps *pubsub) homeNode(ch uint64) NodeID {
	r := ps.r
	best, bestH := r.id, hrw(ch, uint64(r.id))
	for _, d := range r.rt.list {
		if !d.key.isZone() && d.next != 0 && NodeID(d.key).Zone() == r.zone {
			if h := hrw(ch, uint64(d.key)); h > bestH {
				best, bestH = NodeID(d.key), h
			}
		}
	}
	return best
}

// deliverRdv handles a rendezvous message addressed to this node.
func (ps *pubsub) deliverRdv(m rdv) {
	r := ps.r
	life := announceEvery * 3 * r.cfg.SubRefresh
	switch m.kind {
	case rdvAnnounce:
		h, ok := ps.homes[m.ch]
		if ok && h.source != m.source && h.source < m.source && r.now.Before(h.expires) {
			return
		}
		if !ok && len(ps.homes) >= r.cfg.MaxChannels {
			r.stats.LimitDrops++
			return
		}
		ps.homes[m.ch] = homeEntry{source: m.source, expires: r.now.Add(life)}
	case rdvUnannounce:
		if h, ok := ps.homes[m.ch]; ok && h.source == m.source {
			delete(ps.homes, m.ch)
		}
	case rdvLookup:
		if h, ok := ps.homes[m.ch]; ok {
			ps.route(rdv{dst: m.src, src: r.id, ttl: rdvTTL, kind: rdvReply, ch: m.ch, source: h.source})
		}
	case rdvReply:
		if c := ps.chans[m.ch]; c != nil && c.source == 0 && !c.publishing {
			c.source = m.source
			ps.tick(c)
		}
	}
}

// Publish makes this node the source of channel ch: it is announced to
// the channel's home node, where subscribers' nodes look it up, and they
// build the tree toward it. One source per channel: when two nodes
// publish the same id, the home keeps the lower node id.
func (r *Router) Publish(now time.Time, ch uint64) error {
	r.begin(now)
	c := r.ps.get(ch)
	if c == nil {
		return ErrTooMany
	}
	r.ps.route(rdv{src: r.id, ttl: rdvTTL, kind: rdvAnnounce, ch: ch, source: r.id})
	if c.up != 0 {
		r.ps.sendCtl(c.up, chanMsg{t: mUnsub, ch: ch})
		c.up = 0
	}
	c.publishing, c.source, c.upActive = true, r.id, true
	c.path = put32(c.path[:0], uint32(r.id))
	if c.local && !c.everActive {
		r.events(EventSubscribed{Channel: ch})
	}
	c.everActive = true
	for _, d := range c.down {
		r.ps.ack(c, d.nb)
	}
	return nil
}

// Unpublish ends channel ch for every subscriber.
func (r *Router) Unpublish(now time.Time, ch uint64) {
	r.begin(now)
	if c := r.ps.chans[ch]; c != nil && c.publishing {
		r.ps.end(c)
	}
}

// Send publishes one data packet on a channel this node publishes. The
// payload is copied once; each downstream neighbour gets a Transmit and a
// local subscriber a Delivery, all pointing at that copy. It does not
// allocate in steady state.
func (r *Router) Send(now time.Time, ch uint64, payload []byte) error {
	r.begin(now)
	c := r.ps.chans[ch]
	if c == nil || !c.publishing {
		return ErrNotPublishing
	}
	if len(payload) > maxMsgLen-dataHdrLen {
		return errors.New("sdn: payload too large")
	}
	c.nextSeq++
	off := len(r.out)
	r.out = appendDataHdr(r.out, ch, c.nextSeq)
	r.out = append(r.out, payload...)
	r.ps.fanout(c, 0, c.nextSeq, off, len(r.out))
	return nil
}

// Subscribe subscribes this node to channel ch: once the source is known
// the node joins its tree (EventSubscribed), then PollData yields its
// packets. Subscribing twice is the same as once.
func (r *Router) Subscribe(now time.Time, ch uint64) error {
	r.begin(now)
	c := r.ps.get(ch)
	if c == nil {
		return ErrTooMany
	}
	if c.local {
		return nil
	}
	c.local = true
	if c.publishing || c.upActive {
		r.events(EventSubscribed{Channel: ch})
		c.everActive = true
		return nil
	}
	r.ps.tick(c)
	return nil
}

// Unsubscribe drops this node's own subscription to ch (relaying for
// others goes on while they need it).
func (r *Router) Unsubscribe(now time.Time, ch uint64) {
	r.begin(now)
	if c := r.ps.chans[ch]; c != nil && c.local {
		c.local, c.localMin, c.localMax = false, 0, 0
		r.ps.tick(c)
	}
}

// SubscribeSource is Subscribe for a channel whose source the caller
// knows (from a directory it trusts): no lookup at the home, and the tree
// is built toward src only, so a node that publishes the same channel id
// without being its source is never joined.
func (r *Router) SubscribeSource(now time.Time, ch uint64, src NodeID) error {
	r.begin(now)
	c := r.ps.get(ch)
	if c == nil {
		return ErrTooMany
	}
	if src != 0 && !c.publishing && c.source != src {
		if c.up != 0 {
			r.ps.sendCtl(c.up, chanMsg{t: mUnsub, ch: ch})
		}
		c.source, c.up, c.upActive = src, 0, false
	}
	if c.local {
		return nil
	}
	return r.Subscribe(now, ch)
}

// Downstreams is how many neighbours receive ch through this node; a
// source with none and no local subscriber need not Send.
func (r *Router) Downstreams(ch uint64) int {
	if c := r.ps.chans[ch]; c != nil {
		return len(c.down)
	}
	return 0
}

// SendRepair sends one packet outside a channel's sequence (a
// retransmission) from this node, which publishes ch or receives it, to
// the downstream neighbour to, or to every downstream neighbour when to is
// zero. A node receiving it from its upstream delivers it locally
// (Delivery.Repair) and passes it to every downstream neighbour: in a
// tree, a packet a node missed was missed by its whole subtree.
func (r *Router) SendRepair(now time.Time, ch uint64, to NodeID, payload []byte) error {
	r.begin(now)
	c := r.ps.chans[ch]
	if c == nil {
		return ErrNotPublishing
	}
	if len(payload) > maxMsgLen-chanPayloadHdrLen {
		return errors.New("sdn: payload too large")
	}
	off := len(r.out)
	r.out = appendChanPayload(r.out, mRepair, ch)
	r.out = append(r.out, payload...)
	for _, d := range c.down {
		if to != 0 && d.nb != to {
			continue
		}
		if l := r.nbrs[d.nb]; l != nil {
			r.queue(l, off, len(r.out), true)
		}
	}
	return nil
}

// SendUpstream sends opaque feedback (for media, retransmission requests)
// to ch's upstream neighbour, where it is an EventUpstream if that node
// publishes or subscribes to ch itself, and is passed further up if it
// only relays. It reports whether there was an upstream to send to.
func (r *Router) SendUpstream(now time.Time, ch uint64, payload []byte) bool {
	r.begin(now)
	c := r.ps.chans[ch]
	if c == nil || c.publishing || c.up == 0 || len(payload) > maxMsgLen-chanPayloadHdrLen {
		return false
	}
	return r.ps.sendUp(c, payload)
}

func (ps *pubsub) sendUp(c *channel, payload []byte) bool {
	r := ps.r
	l := r.nbrs[c.up]
	if l == nil {
		return false
	}
	off := len(r.out)
	r.out = appendChanPayload(r.out, mUp, c.id)
	r.out = append(r.out, payload...)
	r.queue(l, off, len(r.out), false)
	return true
}

// handleRepair takes a repair from the upstream: delivered locally and
// passed to every downstream neighbour.
func (ps *pubsub) handleRepair(l *link, ch uint64, msg []byte, hdr int) {
	r := ps.r
	c := ps.chans[ch]
	if c == nil || c.publishing || l.peer != c.up && l.peer != c.prevUp && l.peer != c.pend {
		r.stats.DataUnexpected++
		return
	}
	r.stats.Repairs++
	off := len(r.out)
	r.out = append(r.out, msg...)
	for _, d := range c.down {
		if dl := r.nbrs[d.nb]; dl != nil {
			r.queue(dl, off, len(r.out), true)
		}
	}
	if c.local {
		r.dv = append(r.dv, dvRec{ch: c.id, off: off + hdr, end: len(r.out), repair: true})
	}
}

// handleUp takes feedback from a downstream neighbour.
func (ps *pubsub) handleUp(l *link, ch uint64, payload []byte) {
	r := ps.r
	c := ps.chans[ch]
	if c == nil || !slices.ContainsFunc(c.down, func(d downstream) bool { return d.nb == l.peer }) {
		r.stats.DataUnexpected++
		return
	}
	r.stats.UpstreamMsgs++
	if c.publishing || c.local {
		r.events(EventUpstream{Channel: ch, From: l.peer, Payload: slices.Clone(payload)})
		return
	}
	if c.up != 0 {
		ps.sendUp(c, payload)
	}
}

// SetBitrate sets the bitrate range this node's subscribers of ch want;
// the source sees the min and max over all subscribers (EventFeedback).
func (r *Router) SetBitrate(now time.Time, ch uint64, minBps, maxBps uint64) {
	r.begin(now)
	if c := r.ps.chans[ch]; c != nil && c.local {
		c.localMin, c.localMax = minBps, maxBps
	}
}

// RequestKeyframe asks the source of ch for a keyframe. Requests are
// aggregated hop by hop: one per Config.KeyframeHold goes upstream.
func (r *Router) RequestKeyframe(now time.Time, ch uint64) {
	r.begin(now)
	if c := r.ps.chans[ch]; c != nil {
		r.ps.keyframe(c)
	}
}

// ChannelUpstream returns the neighbour a channel's packets come from
// (zero at the source or when not joined) and whether the path to the
// source is active. Meant for tests and diagnostics.
func (r *Router) ChannelUpstream(ch uint64) (NodeID, bool) {
	c := r.ps.chans[ch]
	if c == nil {
		return 0, false
	}
	return c.up, c.upActive
}

func (ps *pubsub) sendCtl(to NodeID, m chanMsg) {
	if l := ps.r.nbrs[to]; l != nil {
		ps.r.sendCtl(l, m.append(ps.r.out))
	}
}

func (ps *pubsub) ack(c *channel, to NodeID) {
	ps.sendCtl(to, chanMsg{t: mSubAck, ch: c.id, flag: c.upActive, path: c.path})
}

// fanout queues r.out[off:end] (a whole data message) to every downstream
// except from, and delivers it locally.
func (ps *pubsub) fanout(c *channel, from NodeID, seq uint32, off, end int) {
	r := ps.r
	for _, d := range c.down {
		if d.nb == from {
			continue
		}
		if l := r.nbrs[d.nb]; l != nil {
			r.queue(l, off, end, true)
			r.stats.DataForwarded++
		}
	}
	if c.local {
		r.dv = append(r.dv, dvRec{ch: c.id, seq: seq, off: off + dataHdrLen, end: end})
		r.stats.DataDelivered++
	}
}

func (ps *pubsub) handleData(l *link, ch uint64, seq uint32, msg []byte) {
	r := ps.r
	c := ps.chans[ch]
	if c == nil || c.publishing {
		r.stats.DataUnexpected++
		return
	}
	switch {
	case l.peer == c.up, l.peer == c.prevUp && r.now.Before(c.prevUntil):
		ps.accept(c, l.peer, seq, msg)
		// The old stream caught up with what the new one sent ahead.
		if c.pendActive && len(c.pendBuf) > 0 && int32(c.pendBuf[0].seq-c.lastSeq) <= 1 {
			ps.switchUp(c)
		}
	case l.peer == c.pend && c.pendActive:
		// A move: the new upstream takes over when its stream continues
		// ours or repeats it (it is slower). When it is ahead its packets
		// wait until the old stream reaches them, so nothing is lost nor
		// reordered; after a second, or a full buffer, it takes over anyway.
		if !c.haveSeq || int32(seq-c.lastSeq) <= 1 || r.now.Sub(c.pendSince) >= time.Second || len(c.pendBuf) >= maxPendBuf {
			ps.switchUp(c)
			ps.accept(c, l.peer, seq, msg)
			return
		}
		c.pendBuf = append(c.pendBuf, pendPkt{seq: seq, msg: append([]byte(nil), msg...)})
	default:
		r.stats.DataUnexpected++
	}
}

// accept forwards and delivers a data message unless it was seen already
// or is older than the reorder window (64 packets behind the newest).
func (ps *pubsub) accept(c *channel, from NodeID, seq uint32, msg []byte) {
	r := ps.r
	c.lastData = r.now
	switch d := int32(seq - c.lastSeq); {
	case !c.haveSeq:
		c.haveSeq, c.lastSeq, c.seen = true, seq, 1
	case d > 0:
		// Newer: slide the window.
		if d >= 64 {
			c.seen = 1
		} else {
			c.seen = c.seen<<uint(d) | 1
		}
		c.lastSeq = seq
	case d > -64 && c.seen&(1<<uint(-d)) == 0:
		// Older but not seen: reordered on the way, so let it through
		// (the media layer puts it in place); dropping it would turn
		// reordering into loss.
		c.seen |= 1 << uint(-d)
	default:
		r.stats.DataDuplicate++
		return
	}
	off := len(r.out)
	r.out = append(r.out, msg...)
	ps.fanout(c, from, seq, off, len(r.out))
}

func (ps *pubsub) handleCtl(l *link, m *chanMsg) {
	r := ps.r
	c := ps.chans[m.ch]
	if c == nil {
		if m.t != mSub {
			return
		}
		if c = ps.get(m.ch); c == nil {
			return
		}
	}
	switch m.t {
	case mSub:
		if c.source == 0 {
			c.source = m.source
		}
		// Our upstream may subscribe through us while its route changes:
		// our ack's path names it, so it does not take us until we have
		// moved away from it (make-before-break on both sides).
		i := slices.IndexFunc(c.down, func(d downstream) bool { return d.nb == l.peer })
		if i < 0 {
			c.down = append(c.down, downstream{nb: l.peer})
			i = len(c.down) - 1
		}
		d := &c.down[i]
		d.expires = r.now.Add(4 * r.cfg.SubRefresh)
		d.min, d.max = m.min, m.max
		ps.ack(c, l.peer)
		if !c.upActive && c.up == 0 {
			ps.tick(c)
		}
	case mSubAck:
		if l.peer != c.up && l.peer != c.pend {
			return
		}
		loop := m.pathLen() >= maxPath
		for i := 0; i < m.pathLen() && !loop; i++ {
			loop = m.pathAt(i) == r.id
		}
		if l.peer == c.pend {
			c.pendActive = m.flag && !loop
			c.pendPath = append(c.pendPath[:0], m.path...)
			if c.pendActive && r.now.Sub(c.lastData) > 200*time.Millisecond {
				ps.switchUp(c) // no stream to splice: switch now
			}
			return
		}
		if !m.flag || loop {
			if c.upActive {
				ps.deactivate(c)
				ps.tick(c)
			}
			return
		}
		ps.activate(c, m.path)
	case mUnsub:
		c.down = slices.DeleteFunc(c.down, func(d downstream) bool { return d.nb == l.peer })
	case mEnd:
		if l.peer == c.up || l.peer == c.prevUp {
			ps.end(c)
		}
	case mMoved:
		if l.peer == c.up {
			ps.moved(c)
		}
	case mFeedback:
		if i := slices.IndexFunc(c.down, func(d downstream) bool { return d.nb == l.peer }); i >= 0 {
			c.down[i].min, c.down[i].max = m.min, m.max
		}
		if m.flag {
			ps.keyframe(c)
		}
	}
}

func binaryPut32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }

// activate records the upstream's path and, on the first ack of an
// upstream, tells local subscribers and the subtree.
func (ps *pubsub) activate(c *channel, path []byte) {
	r := ps.r
	c.path = append(append(c.path[:0], path...), 0, 0, 0, 0)
	binaryPut32(c.path[len(c.path)-4:], uint32(r.id))
	if c.upActive {
		return
	}
	c.upActive = true
	if c.everActive {
		ps.moved(c)
	} else if c.local {
		r.events(EventSubscribed{Channel: c.id})
	}
	c.everActive = true
	for _, d := range c.down {
		ps.ack(c, d.nb)
	}
}

// deactivate tells the subtree that the path to the source is broken
// here, so nodes below with a better route leave at once.
func (ps *pubsub) deactivate(c *channel) {
	c.upActive = false
	for _, d := range c.down {
		ps.ack(c, d.nb)
	}
}

// switchUp completes a move: pend becomes the upstream, the old one is
// left (its packets in flight still accepted for a second).
func (ps *pubsub) switchUp(c *channel) {
	r := ps.r
	if c.up != 0 {
		ps.sendCtl(c.up, chanMsg{t: mUnsub, ch: c.id})
		c.prevUp, c.prevUntil = c.up, r.now.Add(time.Second)
	}
	c.up, c.upSince, c.upActive = c.pend, r.now, false
	c.pend, c.pendActive = 0, false
	ps.activate(c, c.pendPath)
	buf := c.pendBuf
	c.pendBuf = nil
	for _, p := range buf {
		ps.accept(c, c.up, p.seq, p.msg)
	}
}

// moved tells local subscribers and the subtree that the path above
// changed.
func (ps *pubsub) moved(c *channel) {
	if c.local {
		ps.r.events(EventMoved{Channel: c.id})
	}
	for _, d := range c.down {
		ps.sendCtl(d.nb, chanMsg{t: mMoved, ch: c.id})
	}
}

// end ends the channel here and below.
func (ps *pubsub) end(c *channel) {
	r := ps.r
	for _, d := range c.down {
		ps.sendCtl(d.nb, chanMsg{t: mEnd, ch: c.id})
	}
	if c.up != 0 {
		ps.sendCtl(c.up, chanMsg{t: mUnsub, ch: c.id})
	}
	if c.pend != 0 {
		ps.sendCtl(c.pend, chanMsg{t: mUnsub, ch: c.id})
	}
	if c.local {
		r.events(EventChannelEnded{Channel: c.id})
	}
	if c.publishing {
		ps.route(rdv{src: r.id, ttl: rdvTTL, kind: rdvUnannounce, ch: c.id, source: r.id})
	}
	ps.remove(c)
}

func (ps *pubsub) keyframe(c *channel) {
	r := ps.r
	if !c.kfAt.IsZero() && r.now.Sub(c.kfAt) < r.cfg.KeyframeHold {
		c.kfPending = true
		return
	}
	c.kfAt, c.kfPending = r.now, false
	if c.publishing {
		mn, mx := ps.aggregate(c)
		c.fbMin, c.fbMax = mn, mx
		r.events(EventFeedback{Channel: c.id, Keyframe: true, BitrateMin: mn, BitrateMax: mx})
		return
	}
	if c.up != 0 {
		mn, mx := ps.aggregate(c)
		ps.sendCtl(c.up, chanMsg{t: mFeedback, ch: c.id, flag: true, min: mn, max: mx})
	}
}

// aggregate is the min of the minimums and the max of the maximums that
// the local and downstream subscribers asked for (zeros: none).
func (ps *pubsub) aggregate(c *channel) (mn, mx uint64) {
	add := func(a, b uint64) {
		if a != 0 && (mn == 0 || a < mn) {
			mn = a
		}
		mx = max(mx, b)
	}
	if c.local {
		add(c.localMin, c.localMax)
	}
	for _, d := range c.down {
		add(d.min, d.max)
	}
	return
}

func (ps *pubsub) timeout(now time.Time) {
	if now.Before(ps.nextTick) {
		return
	}
	ps.nextTick = now.Add(ps.r.cfg.SubRefresh)
	ps.ticks++
	for ch, h := range ps.homes {
		if !now.Before(h.expires) {
			delete(ps.homes, ch) // no output depends on this order
		}
	}
	for i := 0; i < len(ps.list); i++ {
		c := ps.list[i]
		ps.tick(c)
		if ps.chans[c.id] != c {
			i--
		}
	}
}

// tick refreshes one channel: expires downstreams, finds the source, joins
// or moves toward it, refreshes the upstream, and ends a channel whose
// source is gone.
func (ps *pubsub) tick(c *channel) {
	r := ps.r
	now := r.now
	c.down = slices.DeleteFunc(c.down, func(d downstream) bool { return !now.Before(d.expires) })
	if c.kfPending && now.Sub(c.kfAt) >= r.cfg.KeyframeHold {
		ps.keyframe(c)
	}
	if c.publishing {
		if ps.ticks%announceEvery == 0 {
			ps.route(rdv{src: r.id, ttl: rdvTTL, kind: rdvAnnounce, ch: c.id, source: r.id})
		}
		if mn, mx := ps.aggregate(c); mn != c.fbMin || mx != c.fbMax {
			c.fbMin, c.fbMax = mn, mx
			r.events(EventFeedback{Channel: c.id, BitrateMin: mn, BitrateMax: mx})
		}
		return
	}
	if !c.local && len(c.down) == 0 {
		if c.up != 0 {
			ps.sendCtl(c.up, chanMsg{t: mUnsub, ch: c.id})
		}
		ps.remove(c)
		return
	}
	if c.source == 0 {
		ps.route(rdv{src: r.id, ttl: rdvTTL, kind: rdvLookup, ch: c.id})
		return
	}
	nh, ok := r.Route(c.source)
	if !ok {
		if c.noRouteSince.IsZero() {
			c.noRouteSince = now
		} else if now.Sub(c.noRouteSince) >= r.cfg.EndGrace {
			ps.end(c)
		}
		return
	}
	c.noRouteSince = time.Time{}
	switch {
	case c.up == 0 || c.up != nh && !c.upActive && now.Sub(c.upSince) >= 200*time.Millisecond:
		// No upstream, or one that does not get through: break.
		if c.up != 0 {
			ps.sendCtl(c.up, chanMsg{t: mUnsub, ch: c.id})
			c.prevUp, c.prevUntil = c.up, now.Add(time.Second)
		}
		if c.pend != 0 {
			ps.sendCtl(c.pend, chanMsg{t: mUnsub, ch: c.id})
		}
		c.up, c.upSince, c.upActive = nh, now, false
		c.pend, c.pendActive, c.pendBuf = 0, false, nil
	case c.pend != 0 && (c.pend != nh && c.pend != c.up || c.pendActive && now.Sub(c.pendSince) >= time.Second):
		if c.pend != nh {
			ps.sendCtl(c.pend, chanMsg{t: mUnsub, ch: c.id})
			c.pend, c.pendActive, c.pendBuf = 0, false, nil
		} else {
			ps.switchUp(c)
		}
	case c.pend == 0 && c.up != nh && !c.diffSince.IsZero() && now.Sub(c.diffSince) >= r.cfg.ChannelSticky:
		// A better path has lasted: make before break.
		c.pend, c.pendActive, c.pendSince = nh, false, now
	}
	if c.up == nh {
		c.diffSince = time.Time{}
	} else if c.diffSince.IsZero() {
		c.diffSince = now
	}
	mn, mx := ps.aggregate(c)
	ps.sendCtl(c.up, chanMsg{t: mSub, ch: c.id, source: c.source, min: mn, max: mx})
	if c.pend != 0 {
		ps.sendCtl(c.pend, chanMsg{t: mSub, ch: c.id, source: c.source, min: mn, max: mx})
	}
}

// routesChanged re-evaluates, at once, the channels whose path to the
// source is broken: a new route is their way out.
func (ps *pubsub) routesChanged() {
	if ps.routeV == ps.r.rt.version {
		return
	}
	ps.routeV = ps.r.rt.version
	for i := 0; i < len(ps.list); i++ {
		c := ps.list[i]
		if c.publishing || c.upActive && c.up != 0 || c.source == 0 {
			continue
		}
		ps.tick(c)
		if ps.chans[c.id] != c {
			i--
		}
	}
}

func (ps *pubsub) neighbourDown(nb NodeID) {
	for i := 0; i < len(ps.list); i++ {
		c := ps.list[i]
		c.down = slices.DeleteFunc(c.down, func(d downstream) bool { return d.nb == nb })
		if c.pend == nb {
			c.pend, c.pendActive, c.pendBuf = 0, false, nil
		}
		if c.up == nb {
			c.up = 0
			ps.deactivate(c)
			ps.tick(c)
			if ps.chans[c.id] != c {
				i--
			}
		}
	}
}

// leave ends published channels and drops subscriptions.
func (ps *pubsub) leave() {
	for len(ps.list) > 0 {
		c := ps.list[0]
		if c.publishing {
			ps.end(c)
			continue
		}
		if c.up != 0 {
			ps.sendCtl(c.up, chanMsg{t: mUnsub, ch: c.id})
		}
		ps.remove(c)
	}
}
