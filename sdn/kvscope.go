package sdn

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"time"
)

// Scoped maps (see the package doc, Replicated maps): a map whose name
// starts with Config.ScopedMapPrefix lives at its home node, chosen by
// the rendezvous hashing of pub/sub, and at the nodes that write or
// subscribe to it. A writer sends its own entries of the map to the home
// and refreshes them (mMapSync, answered by mMapWant when the home's
// version differs); a subscriber registers with the home, which sends it
// every owner's entries it lacks (mMapPut) and their liveness
// (mMapDigest), then every change. Everything is soft state: the home
// forgets an owner that stops refreshing, a subscriber an owner the home
// stops refreshing, the home a subscriber that stops registering.

// maxScopedOwners bounds the owners of one scoped map, whatever
// Config.MaxOwners says, so that a digest of them fits in a message.
const maxScopedOwners = 1 << 15

// sEnt is one entry of an owner in a scoped map.
type sEnt struct {
	key   string
	value []byte
}

func cmpSEnt(e sEnt, key string) int { return strings.Compare(e.key, key) }

// sowner is one owner's entries of a scoped map, as this node knows them.
type sowner struct {
	id    NodeID
	ver   uint64
	alive time.Time // the latest time the owner is known to have been alive
	ents  []sEnt    // sorted by key
	stage *sstage   // a full state arriving in parts
}

// sstage collects the parts of one full state.
type sstage struct {
	ver   uint64
	parts uint16
	got   []uint64 // a bit per part received
	left  int      // parts missing
	ents  []sEnt
}

// ssub is a subscriber registered with this node as the map's home.
type ssub struct {
	node    NodeID
	expires time.Time
}

// smap is this node's part of one scoped map: its own entries (writer),
// the other owners' (subscriber or home), and the subscribers (home).
type smap struct {
	name string
	key  uint64 // the hash that chooses the home
	sub  bool

	mine       []sEnt // sorted by key
	ver        uint64 // version of mine; 0: not a writer
	sent       uint64 // the version last sent (the base of the next delta)
	chg        []string
	chgAll     bool      // too many changes to list: send everything
	dirty      bool      // mine changed since sent
	writeUntil time.Time // mine empty: keep refreshing the home until then
	fullVer    uint64    // last full state sent, and when
	fullAt     time.Time

	owners []*sowner // sorted by id; never this node
	subs   []ssub    // sorted by node

	homeSig  uint64 // the home last computed, to notice a move
	lastSync time.Time
	gone     bool
}

// scoped is the kvstore's state of scoped maps.
type scoped struct {
	maps     map[string]*smap
	list     []*smap // sorted by name
	ver      uint64  // version counter of this node's own entries
	nents    int     // other owners' entries stored and staged
	dirty    []*smap
	expireAt time.Time // no owner expires before (a lower bound)
	routeV   uint64
	tmp      []byte // scratch for a message sent to several nodes
}

func (sc *scoped) init(now time.Time) {
	sc.maps = make(map[string]*smap)
	// Versions start from the clock, so a restarted node's versions are
	// above those of its previous life (which homes may still hold);
	// a home reporting a higher one makes it jump past anyway.
	sc.ver = uint64(max(now.UnixMicro(), 0))
}

// nameKey hashes a map name (FNV-1a) for the home's rendezvous hashing.
func nameKey[T string | []byte](name T) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	return h
}

func (kv *kvstore) isScoped(name string) bool {
	return strings.HasPrefix(name, kv.r.cfg.ScopedMapPrefix)
}

// homeSig names the home of key as far as this node can tell: the zone,
// and the node when the zone is ours.
func (kv *kvstore) homeSig(key uint64) uint64 {
	ps := &kv.r.ps
	z := ps.homeZone(key)
	if z != kv.r.zone {
		return uint64(z) << 32
	}
	return uint64(z)<<32 | uint64(ps.homeNode(key))
}

func (kv *kvstore) isHome(s *smap) bool { return kv.isHomeKey(s.key) }

func (kv *kvstore) isHomeKey(key uint64) bool {
	ps := &kv.r.ps
	return ps.homeZone(key) == kv.r.zone && ps.homeNode(key) == kv.r.id
}

// writer reports whether this node refreshes its entries of s at the home.
func (kv *kvstore) writer(s *smap) bool {
	return s.ver != 0 && (len(s.mine) > 0 || kv.r.now.Before(s.writeUntil))
}

func (kv *kvstore) newMap(name string) *smap {
	sc := &kv.sc
	s := &smap{name: name, key: nameKey(name)}
	s.homeSig = kv.homeSig(s.key)
	sc.maps[name] = s
	i, _ := slices.BinarySearchFunc(sc.list, name, func(x *smap, n string) int { return strings.Compare(x.name, n) })
	sc.list = slices.Insert(sc.list, i, s)
	return s
}

// netMap returns the map a message for its home names, made if the
// bound allows.
func (kv *kvstore) netMap(name []byte) *smap {
	if s := kv.sc.maps[string(name)]; s != nil {
		return s
	}
	if len(kv.sc.list) >= kv.r.cfg.MaxScopedMaps {
		kv.r.stats.LimitDrops++
		return nil
	}
	return kv.newMap(string(name))
}

func (kv *kvstore) removeMap(s *smap) {
	sc := &kv.sc
	kv.dropOwners(s)
	s.gone = true
	delete(sc.maps, s.name)
	if i := slices.Index(sc.list, s); i >= 0 {
		sc.list = slices.Delete(sc.list, i, i+1)
	}
}

// dropOwners forgets the other owners' entries of s, without events (the
// map is not subscribed).
func (kv *kvstore) dropOwners(s *smap) {
	for _, o := range s.owners {
		kv.sc.nents -= len(o.ents)
		if o.stage != nil {
			kv.sc.nents -= len(o.stage.ents)
		}
	}
	clear(s.owners)
	s.owners = s.owners[:0]
}

func (s *smap) find(id NodeID) (int, *sowner) {
	i, ok := slices.BinarySearchFunc(s.owners, id, func(o *sowner, id NodeID) int { return cmpU(uint64(o.id), uint64(id)) })
	if ok {
		return i, s.owners[i]
	}
	return i, nil
}

// ageMs is how long ago t was, rounded up: an age errs old.
func (kv *kvstore) ageMs(t time.Time) uint32 {
	return uint32(min((kv.r.now.Sub(t)+time.Millisecond-1)/time.Millisecond, 1<<31))
}

// tripMs is the delay a message received on l adds: the link's whole
// round trip (see aliveAt), rounded up.
func (kv *kvstore) tripMs(l *link) uint32 {
	trip := l.srtt
	if trip == 0 {
		trip = kv.r.now.Sub(l.created)
	}
	return uint32(min((trip+time.Millisecond-1)/time.Millisecond, 1<<31))
}

// The local API.

func (kv *kvstore) sset(name, key string, value []byte) error {
	r := kv.r
	s := kv.sc.maps[name]
	i, found := 0, false
	if s != nil {
		i, found = slices.BinarySearchFunc(s.mine, key, cmpSEnt)
		if found && bytes.Equal(s.mine[i].value, value) {
			return nil
		}
		if !found && len(s.mine) >= r.cfg.MaxEntries {
			return ErrMapFull
		}
	} else {
		s = kv.newMap(name)
	}
	e := sEnt{key: key, value: slices.Clone(value)}
	if found {
		s.mine[i] = e
	} else {
		s.mine = slices.Insert(s.mine, i, e)
	}
	kv.mineChanged(s, key)
	if s.sub {
		r.events(EventMapSet{Map: name, Owner: r.id, Key: key, Value: e.value})
	}
	return nil
}

func (kv *kvstore) sdel(name, key string) {
	s := kv.sc.maps[name]
	if s == nil {
		return
	}
	i, found := slices.BinarySearchFunc(s.mine, key, cmpSEnt)
	if !found {
		return
	}
	s.mine = slices.Delete(s.mine, i, i+1)
	kv.mineChanged(s, key)
	if s.sub {
		kv.r.events(EventMapDelete{Map: name, Owner: kv.r.id, Key: key})
	}
}

// mineChanged versions a change of this node's entries of s and has it
// sent TriggerDelay later.
func (kv *kvstore) mineChanged(s *smap, key string) {
	r := kv.r
	kv.sc.ver++
	s.ver = kv.sc.ver
	if len(s.mine) == 0 {
		s.writeUntil = r.now.Add(kv.grace())
	}
	switch {
	case s.chgAll:
	case len(s.chg) >= max(64, len(s.mine)):
		s.chgAll, s.chg = true, s.chg[:0]
	default:
		s.chg = append(s.chg, key)
	}
	if !s.dirty {
		s.dirty = true
		kv.sc.dirty = append(kv.sc.dirty, s)
	}
	if kv.flushAt.IsZero() {
		kv.flushAt = r.now.Add(r.cfg.TriggerDelay)
	}
}

// grace is how long a writer whose entries are all deleted goes on
// refreshing the home, so that the deletion gets through a lost message.
func (kv *kvstore) grace() time.Duration { return 4 * kv.r.cfg.GossipInterval }

func (kv *kvstore) ssubscribe(name string) {
	r := kv.r
	s := kv.sc.maps[name]
	if s == nil {
		s = kv.newMap(name)
	}
	if s.sub {
		return
	}
	s.sub = true
	kv.eachEntry(s, func(owner NodeID, e sEnt) {
		r.events(EventMapSet{Map: name, Owner: owner, Key: e.key, Value: e.value})
	})
	if !kv.isHome(s) {
		kv.sync(s)
	}
}

func (kv *kvstore) sunsubscribe(name string) {
	s := kv.sc.maps[name]
	if s == nil || !s.sub {
		return
	}
	s.sub = false
	if kv.isHome(s) {
		return
	}
	kv.dropOwners(s)
	kv.sync(s) // without syncSub: the home forgets us at once
	if !kv.writer(s) {
		kv.removeMap(s)
	}
}

// eachEntry calls f for every entry of s this node knows, by owner and
// key.
func (kv *kvstore) eachEntry(s *smap, f func(NodeID, sEnt)) {
	id := kv.r.id
	mineDone := len(s.mine) == 0
	for _, o := range s.owners {
		if !mineDone && id < o.id {
			for _, e := range s.mine {
				f(id, e)
			}
			mineDone = true
		}
		for _, e := range o.ents {
			f(o.id, e)
		}
	}
	if !mineDone {
		for _, e := range s.mine {
			f(id, e)
		}
	}
}

func (kv *kvstore) sentries(name string) []MapEntry {
	s := kv.sc.maps[name]
	if s == nil {
		return nil
	}
	var out []MapEntry
	kv.eachEntry(s, func(owner NodeID, e sEnt) {
		out = append(out, MapEntry{Owner: owner, Key: e.key, Value: e.value})
	})
	return out
}

// sleave deletes every entry of this node (Close).
func (kv *kvstore) sleave() {
	for _, s := range kv.sc.list {
		if len(s.mine) == 0 {
			continue
		}
		old := s.mine
		s.mine = nil
		for _, e := range old {
			if s.sub {
				kv.r.events(EventMapDelete{Map: s.name, Owner: kv.r.id, Key: e.key})
			}
		}
		s.chgAll = true
		kv.mineChanged(s, "")
	}
}

// Timers.

func (kv *kvstore) sdeadline() time.Time { return kv.sc.expireAt }

// sflush sends the changes of this node's entries.
func (kv *kvstore) sflush() {
	sc := &kv.sc
	for i, s := range sc.dirty {
		sc.dirty[i] = nil
		s.dirty = false
		if !s.gone {
			kv.push(s)
		}
	}
	sc.dirty = sc.dirty[:0]
}

// stick is the periodic refresh of every scoped map (each GossipInterval).
func (kv *kvstore) stick() {
	sc := &kv.sc
	for i := 0; i < len(sc.list); i++ {
		s := sc.list[i]
		kv.tickMap(s)
		if s.gone {
			i--
		}
	}
}

// routesChanged looks for maps whose home moved, and moves to the new
// one at once.
func (kv *kvstore) routesChanged() {
	sc := &kv.sc
	if sc.routeV == kv.r.rt.version {
		return
	}
	sc.routeV = kv.r.rt.version
	for i := 0; i < len(sc.list); i++ {
		s := sc.list[i]
		if sig := kv.homeSig(s.key); sig != s.homeSig {
			s.homeSig = sig
			kv.tickMap(s)
			if s.gone {
				i--
			}
		}
	}
}

// tickMap refreshes s at its home and forgets what this node
// need not keep: another home's subscribers and owners, a map nobody
// here uses.
func (kv *kvstore) tickMap(s *smap) {
	r := kv.r
	now := r.now
	home := kv.isHome(s)
	if home {
		s.subs = slices.DeleteFunc(s.subs, func(x ssub) bool { return !now.Before(x.expires) })
	} else {
		s.subs = s.subs[:0]
	}
	writer := kv.writer(s)
	if s.ver != 0 && !writer && !s.dirty {
		s.ver, s.sent, s.chg, s.chgAll = 0, 0, s.chg[:0], false
	}
	if !home && !s.sub {
		kv.dropOwners(s)
		if !writer && !s.dirty {
			kv.removeMap(s)
			return
		}
	}
	if home && !s.sub && !writer && !s.dirty && len(s.owners) == 0 && len(s.subs) == 0 {
		kv.removeMap(s)
		return
	}
	if !home && (writer || s.sub) {
		kv.sync(s)
	}
}

// sexpire drops the owners silent for SoftStateTimeout, at the exact
// time (as expire does for the global maps).
func (kv *kvstore) sexpire(now time.Time) {
	sc := &kv.sc
	r := kv.r
	sc.expireAt = time.Time{}
	for _, s := range sc.list {
		for i := 0; i < len(s.owners); i++ {
			o := s.owners[i]
			at := o.alive.Add(r.cfg.SoftStateTimeout)
			if !now.Before(at) {
				kv.replace(s, o, nil)
				if o.stage != nil {
					sc.nents -= len(o.stage.ents)
				}
				s.owners = slices.Delete(s.owners, i, i+1)
				i--
				continue
			}
			if sc.expireAt.IsZero() || at.Before(sc.expireAt) {
				sc.expireAt = at
			}
		}
	}
}

func (kv *kvstore) expireNoLater(at time.Time) {
	if kv.sc.expireAt.IsZero() || at.Before(kv.sc.expireAt) {
		kv.sc.expireAt = at
	}
}

// Sending.

// sendMap routes the map message at r.out[off:], built here, toward dst
// (zero: the home of key, which is not this node).
func (kv *kvstore) sendMap(off int, dst NodeID, key uint64) {
	r := kv.r
	if next, ok := kv.nextHop(dst, key); ok {
		if l := r.nbrs[next]; l != nil {
			r.queue(l, off, len(r.out), false)
			return
		}
	}
	r.out = r.out[:off]
}

// mine reports whether a message for dst (zero: the home of key) is for
// this node.
func (kv *kvstore) mine(dst NodeID, key uint64) bool {
	if dst == 0 {
		return kv.isHomeKey(key)
	}
	return dst == kv.r.id
}

// nextHop is the neighbour toward dst, or toward the home of key when
// dst is zero (as pubsub.route goes); false when there is none or this
// node is the destination.
func (kv *kvstore) nextHop(dst NodeID, key uint64) (NodeID, bool) {
	r := kv.r
	if dst == 0 {
		if z := r.ps.homeZone(key); z != r.zone {
			if d := r.rt.dests[zoneKey(z)]; d != nil && d.next != 0 {
				return d.next, true
			}
			return 0, false
		}
		dst = r.ps.homeNode(key)
	}
	return r.Route(dst)
}

// sync refreshes this node's interest in s at the home: its own version
// when it writes, and, when it subscribes, the versions it holds, so
// that the home sends what is missing.
func (kv *kvstore) sync(s *smap) {
	r := kv.r
	s.lastSync = r.now
	var flags uint8
	var ver uint64
	if kv.writer(s) {
		flags |= syncWriter
		ver = s.ver
	}
	n := 0
	if s.sub {
		flags |= syncSub
		for _, o := range s.owners {
			if o.ver != 0 {
				n++
			}
		}
	}
	off := len(r.out)
	r.out = appendMapHdr(r.out, mMapSync, 0, r.id, 0, s.name)
	r.out = put8(r.out, flags)
	r.out = put64(r.out, ver)
	r.out = put16(r.out, uint16(n))
	if s.sub {
		for _, o := range s.owners {
			if o.ver != 0 {
				r.out = put32(r.out, uint32(o.id))
				r.out = put64(r.out, o.ver)
			}
		}
	}
	kv.sendMap(off, 0, s.key)
}

// push sends the changes of this node's entries of s: a delta from the
// version last sent when it fits in one message, else everything; to the
// home, or to the subscribers when this node is the home.
func (kv *kvstore) push(s *smap) {
	r := kv.r
	if s.ver == s.sent {
		return
	}
	home := kv.isHome(s)
	if home && len(s.subs) == 0 || !home && !kv.writer(s) {
		s.sent, s.chg, s.chgAll = s.ver, s.chg[:0], false
		return
	}
	delta := !s.chgAll
	if delta {
		slices.Sort(s.chg)
		s.chg = slices.Compact(s.chg)
		size := 0
		for _, k := range s.chg {
			if i, ok := slices.BinarySearchFunc(s.mine, k, cmpSEnt); ok {
				size += mapEntLen(k, s.mine[i].value)
			} else {
				size += mapEntLen(k, nil)
			}
		}
		delta = size <= mapChunkLen
	}
	if delta {
		b := appendMapHdr(kv.sc.tmp[:0], mMapPut, 0, r.id, 0, s.name)
		b = appendPutHdr(b, r.id, s.ver, s.sent, 0, false, 0, 1, len(s.chg))
		for _, k := range s.chg {
			if i, ok := slices.BinarySearchFunc(s.mine, k, cmpSEnt); ok {
				b = appendMapEnt(b, k, s.mine[i].value, false)
			} else {
				b = appendMapEnt(b, k, nil, true)
			}
		}
		kv.sc.tmp = b
		if home {
			for _, x := range s.subs {
				kv.sendCopy(b, x.node, s.key)
			}
		} else {
			kv.sendCopy(b, 0, s.key)
		}
	} else if home {
		for _, x := range s.subs {
			kv.sendFull(s, x.node, r.id, s.ver, 0, s.mine)
		}
	} else {
		kv.sendFull(s, 0, r.id, s.ver, 0, s.mine)
		s.fullVer, s.fullAt = s.ver, r.now
	}
	s.sent, s.chg, s.chgAll = s.ver, s.chg[:0], false
}

// putHdrLen is the fixed part of mMapPut after the header and name.
const putHdrLen = 31

func appendPutHdr(b []byte, owner NodeID, ver, base uint64, ageMs uint32, full bool, part, parts, n int) []byte {
	b = put32(b, uint32(owner))
	b = put64(b, ver)
	b = put64(b, base)
	b = put32(b, ageMs)
	b = put8(b, bool8(full))
	b = put16(b, uint16(part))
	b = put16(b, uint16(parts))
	return put16(b, uint16(n))
}

// sendCopy sends the message msg (built with dst zero) to dst.
func (kv *kvstore) sendCopy(msg []byte, dst NodeID, key uint64) {
	r := kv.r
	off := len(r.out)
	r.out = append(r.out, msg...)
	binaryPut32(r.out[off+1:], uint32(dst))
	kv.sendMap(off, dst, key)
}

// sendFull sends owner's entries ents of s at version ver to dst (zero:
// the home), in parts of at most mapChunkLen bytes of entries.
func (kv *kvstore) sendFull(s *smap, dst, owner NodeID, ver uint64, ageMs uint32, ents []sEnt) {
	r := kv.r
	parts, size := 1, 0
	for _, e := range ents {
		if n := mapEntLen(e.key, e.value); size+n > mapChunkLen && size > 0 {
			parts++
			size = n
		} else {
			size += n
		}
	}
	for part := range parts {
		size, n := 0, 0
		for _, e := range ents[n:] {
			if size += mapEntLen(e.key, e.value); size > mapChunkLen && n > 0 {
				break
			}
			n++
		}
		off := len(r.out)
		r.out = appendMapHdr(r.out, mMapPut, dst, r.id, 0, s.name)
		r.out = appendPutHdr(r.out, owner, ver, 0, ageMs, true, part, parts, n)
		for _, e := range ents[:n] {
			r.out = appendMapEnt(r.out, e.key, e.value, false)
		}
		ents = ents[n:]
		kv.sendMap(off, dst, s.key)
	}
}

func (kv *kvstore) sendWant(s *smap, to NodeID, have uint64) {
	r := kv.r
	off := len(r.out)
	r.out = appendMapHdr(r.out, mMapWant, to, r.id, 0, s.name)
	r.out = put64(r.out, have)
	kv.sendMap(off, to, s.key)
}

// Receiving.

// handleMap takes a scoped map's message from l: forwarded on toward its
// destination, or handled when that is this node.
func (kv *kvstore) handleMap(l *link, m *mapMsg, data []byte) {
	r := kv.r
	if !strings.HasPrefix(string(m.name), r.cfg.ScopedMapPrefix) {
		r.stats.Malformed++
		return
	}
	if m.src == r.id {
		return // ours, come back
	}
	m.delayMs = satAdd(m.delayMs, kv.tripMs(l))
	key := nameKey(m.name)
	if !kv.mine(m.dst, key) {
		next, ok := kv.nextHop(m.dst, key)
		if !ok || m.ttl == 0 {
			return
		}
		if nl := r.nbrs[next]; nl != nil {
			off := len(r.out)
			r.out = append(r.out, data...)
			r.out[off+mapTTLOff] = m.ttl - 1
			binaryPut32(r.out[off+mapDelayOff:], m.delayMs)
			r.queue(nl, off, len(r.out), false)
		}
		return
	}
	switch m.t {
	case mMapSync:
		if m.dst == 0 {
			kv.homeSync(m)
		}
	case mMapWant:
		if m.dst != 0 {
			kv.handleWant(m)
		}
	case mMapPut:
		kv.handlePut(m)
	case mMapDigest:
		if m.dst != 0 {
			kv.handleMapDigest(m)
		}
	}
}

// aliveAt is when the sender of m was last known alive, given the age
// it reported: the delay errs early, so this does too.
func (kv *kvstore) msgAlive(m *mapMsg, ageMs uint32) time.Time {
	return kv.r.now.Add(-time.Duration(satAdd(m.delayMs, ageMs)) * time.Millisecond)
}

// homeSync takes a writer's or subscriber's refresh, as the home.
func (kv *kvstore) homeSync(m *mapMsg) {
	r := kv.r
	writer, sub := m.flags&syncWriter != 0, m.flags&syncSub != 0
	s := kv.sc.maps[string(m.name)]
	if s == nil {
		if !writer && !sub {
			return
		}
		if s = kv.netMap(m.name); s == nil {
			return
		}
	}
	_, o := s.find(m.src)
	if o != nil {
		if a := kv.msgAlive(m, 0); a.After(o.alive) {
			o.alive = a
		}
	}
	if writer {
		var have uint64
		if o != nil {
			have = o.ver
		}
		if have != m.ver {
			kv.sendWant(s, m.src, have)
		}
	}
	i, found := slices.BinarySearchFunc(s.subs, m.src, func(x ssub, n NodeID) int { return cmpU(uint64(x.node), uint64(n)) })
	switch {
	case !sub:
		if found {
			s.subs = slices.Delete(s.subs, i, i+1)
		}
		return
	case !found && len(s.subs) >= min(r.cfg.MaxOwners, maxScopedOwners):
		r.stats.LimitDrops++
		return
	case !found:
		s.subs = slices.Insert(s.subs, i, ssub{node: m.src})
	}
	s.subs[i].expires = r.now.Add(4 * r.cfg.GossipInterval)
	kv.serve(s, m)
}

// serve answers a subscriber's sync: the liveness of every owner the
// home holds, and the entries of those the subscriber holds at an older
// version.
func (kv *kvstore) serve(s *smap, m *mapMsg) {
	r := kv.r
	to := m.src
	mine := s.ver != 0
	// The digest: every owner but the subscriber, this node included
	// when it writes, by id.
	n := 0
	for _, o := range s.owners {
		if o.ver != 0 && o.id != to {
			n++
		}
	}
	if mine {
		n++
	}
	off := len(r.out)
	r.out = appendMapHdr(r.out, mMapDigest, to, r.id, 0, s.name)
	r.out = put16(r.out, uint16(n))
	own := func() {
		r.out = appendDigestEnt(r.out, digestEnt{owner: r.id, version: s.ver})
		mine = false
	}
	for _, o := range s.owners {
		if mine && r.id < o.id {
			own()
		}
		if o.ver != 0 && o.id != to {
			r.out = appendDigestEnt(r.out, digestEnt{owner: o.id, version: o.ver, ageMs: kv.ageMs(o.alive)})
		}
	}
	if mine {
		own()
	}
	kv.sendMap(off, to, s.key)

	// The pushes: walk the subscriber's (owner, version) list alongside.
	j := 0
	have := func(id NodeID) uint64 {
		for j < m.n {
			o, v := m.syncEnt(j)
			if o > id {
				break
			}
			j++
			if o == id {
				return v
			}
		}
		return 0
	}
	mine = s.ver != 0
	for _, o := range s.owners {
		if mine && r.id < o.id {
			if v := have(r.id); s.ver > v && (len(s.mine) > 0 || v != 0) {
				kv.sendFull(s, to, r.id, s.ver, 0, s.mine)
			}
			mine = false
		}
		if o.id == to || o.ver == 0 {
			continue
		}
		if v := have(o.id); o.ver > v && (len(o.ents) > 0 || v != 0) {
			kv.sendFull(s, to, o.id, o.ver, kv.ageMs(o.alive), o.ents)
		}
	}
	if mine {
		if v := have(r.id); s.ver > v && (len(s.mine) > 0 || v != 0) {
			kv.sendFull(s, to, r.id, s.ver, 0, s.mine)
		}
	}
}

// handleWant takes the home's version of this node's entries of a map:
// it differs from ours, so we send everything, past its version.
func (kv *kvstore) handleWant(m *mapMsg) {
	r := kv.r
	s := kv.sc.maps[string(m.name)]
	if s == nil || kv.isHome(s) {
		return
	}
	if s.ver <= m.ver {
		if m.ver == 0 {
			return // neither has anything
		}
		kv.sc.ver = max(kv.sc.ver, m.ver) + 1
		s.ver = kv.sc.ver
		if len(s.mine) == 0 {
			s.writeUntil = r.now.Add(kv.grace())
		}
	}
	if s.fullVer == s.ver && r.now.Sub(s.fullAt) < r.cfg.GossipInterval/2 {
		return // sent moments ago
	}
	kv.sendFull(s, 0, r.id, s.ver, 0, s.mine)
	s.fullVer, s.fullAt = s.ver, r.now
	s.sent, s.chg, s.chgAll = s.ver, s.chg[:0], false
}

// handleMapDigest takes the home's liveness of the owners, as a
// subscriber.
func (kv *kvstore) handleMapDigest(m *mapMsg) {
	s := kv.sc.maps[string(m.name)]
	if s == nil || !s.sub {
		return
	}
	i := 0
	for k := range m.n {
		e := m.digestEnt(k)
		for i < len(s.owners) && s.owners[i].id < e.owner {
			i++
		}
		if i < len(s.owners) && s.owners[i].id == e.owner {
			if a := kv.msgAlive(m, e.ageMs); a.After(s.owners[i].alive) {
				s.owners[i].alive = a
			}
		}
	}
}

// handlePut takes entries of an owner: at the home from the owner
// itself (dst zero), or at a subscriber from the home.
func (kv *kvstore) handlePut(m *mapMsg) {
	r := kv.r
	atHome := m.dst == 0
	var s *smap
	if atHome {
		if m.owner != m.src {
			return // only an owner writes its entries at the home
		}
		if s = kv.netMap(m.name); s == nil {
			return
		}
	} else {
		s = kv.sc.maps[string(m.name)]
		if s == nil || !s.sub && !kv.isHome(s) || m.owner == r.id {
			return
		}
	}
	o, old, oldVer, res := kv.apply(s, m)
	switch res {
	case putBehind, putOlder:
		if atHome {
			kv.sendWant(s, m.src, oldVer) // the writer sends all, past oldVer
		} else if res == putBehind && r.now.Sub(s.lastSync) >= r.cfg.GossipInterval/2 {
			kv.sync(s) // the home sends everything we lack
		}
	case putApplied:
		if kv.isHome(s) {
			kv.relay(s, o, m, old, oldVer)
		}
	}
}

type putResult uint8

const (
	putIgnored putResult = iota // stale, repeated, a part, or refused
	putApplied
	putBehind // we lack the base of a delta
	putOlder  // a full state older than ours
)

// apply applies a put to the owner's entries of s. It returns the owner,
// its entries and version before, and what happened.
func (kv *kvstore) apply(s *smap, m *mapMsg) (*sowner, []sEnt, uint64, putResult) {
	r := kv.r
	alive := kv.msgAlive(m, m.ageMs)
	i, o := s.find(m.owner)
	if o == nil {
		if r.now.Sub(alive) >= r.cfg.SoftStateTimeout {
			return nil, nil, 0, putIgnored
		}
		if !m.full && m.base != 0 {
			return nil, nil, 0, putBehind
		}
		if len(s.owners) >= min(r.cfg.MaxOwners, maxScopedOwners) {
			r.stats.LimitDrops++
			return nil, nil, 0, putIgnored
		}
		o = &sowner{id: m.owner, alive: alive}
		s.owners = slices.Insert(s.owners, i, o)
		kv.expireNoLater(alive.Add(r.cfg.SoftStateTimeout))
	} else if alive.After(o.alive) {
		o.alive = alive
	}
	oldVer := o.ver
	if m.ver <= o.ver {
		if m.full && m.ver < o.ver {
			return o, nil, oldVer, putOlder
		}
		return o, nil, oldVer, putIgnored
	}
	if !m.full {
		if o.ver != m.base {
			return o, nil, oldVer, putBehind
		}
		if !kv.applyDelta(s, o, m) {
			return o, nil, oldVer, putIgnored
		}
		return o, nil, oldVer, putApplied
	}
	ents, ok := kv.stagePart(o, m)
	if !ok {
		return o, nil, oldVer, putIgnored
	}
	if len(ents) > r.cfg.MaxEntries || kv.sc.nents+len(ents)-len(o.ents) > r.cfg.MaxScopedEntries {
		r.stats.LimitDrops++
		return o, nil, oldVer, putIgnored
	}
	old := o.ents
	kv.replace(s, o, ents)
	o.ver = m.ver
	return o, old, oldVer, putApplied
}

// stagePart collects a full state's part; it returns the whole state,
// sorted, once every part is in.
func (kv *kvstore) stagePart(o *sowner, m *mapMsg) ([]sEnt, bool) {
	r := kv.r
	sc := &kv.sc
	if m.parts == 1 {
		if m.n > r.cfg.MaxEntries {
			r.stats.LimitDrops++
			return nil, false
		}
		ents := make([]sEnt, 0, m.n)
		if !kv.readEnts(m, &ents) {
			return nil, false
		}
		return sortEnts(ents), true
	}
	st := o.stage
	if st != nil && st.ver > m.ver {
		return nil, false
	}
	if st == nil || st.ver < m.ver || st.parts != m.parts {
		if st != nil {
			sc.nents -= len(st.ents)
		}
		st = &sstage{ver: m.ver, parts: m.parts, got: make([]uint64, (int(m.parts)+63)/64), left: int(m.parts)}
		o.stage = st
	}
	bit := uint64(1) << (m.part % 64)
	if st.got[m.part/64]&bit != 0 {
		return nil, false
	}
	if len(st.ents)+m.n > r.cfg.MaxEntries || sc.nents+m.n > r.cfg.MaxScopedEntries {
		r.stats.LimitDrops++
		sc.nents -= len(st.ents)
		o.stage = nil
		return nil, false
	}
	n0 := len(st.ents)
	if !kv.readEnts(m, &st.ents) {
		st.ents = st.ents[:n0]
		return nil, false
	}
	st.got[m.part/64] |= bit
	st.left--
	sc.nents += len(st.ents) - n0
	if st.left > 0 {
		return nil, false
	}
	o.stage = nil
	sc.nents -= len(st.ents)
	return sortEnts(st.ents), true
}

// readEnts appends the entries of a full put, copied; false (counted) if
// a value is too large.
func (kv *kvstore) readEnts(m *mapMsg, ents *[]sEnt) bool {
	it := mapEntIter{r: reader{b: m.ents}}
	for range m.n {
		k, v, _ := it.next()
		if len(v) > kv.r.cfg.MaxValueLen {
			kv.r.stats.LimitDrops++
			return false
		}
		*ents = append(*ents, sEnt{key: string(k), value: slices.Clone(v)})
	}
	return true
}

func sortEnts(ents []sEnt) []sEnt {
	slices.SortStableFunc(ents, func(a, b sEnt) int { return strings.Compare(a.key, b.key) })
	return slices.CompactFunc(ents, func(a, b sEnt) bool { return a.key == b.key })
}

// applyDelta applies a delta put to o (whose version is its base).
func (kv *kvstore) applyDelta(s *smap, o *sowner, m *mapMsg) bool {
	r := kv.r
	sc := &kv.sc
	// Check the bounds first, so that a delta is applied whole or not.
	grow := 0
	it := mapEntIter{r: reader{b: m.ents}}
	for range m.n {
		k, v, del := it.next()
		if len(v) > r.cfg.MaxValueLen {
			r.stats.LimitDrops++
			return false
		}
		if _, found := slices.BinarySearchFunc(o.ents, string(k), cmpSEnt); !found && !del {
			grow++
		}
	}
	if len(o.ents)+grow > r.cfg.MaxEntries || sc.nents+grow > r.cfg.MaxScopedEntries {
		r.stats.LimitDrops++
		return false
	}
	it = mapEntIter{r: reader{b: m.ents}}
	for range m.n {
		k, v, del := it.next()
		i, found := slices.BinarySearchFunc(o.ents, string(k), cmpSEnt)
		switch {
		case del && found:
			if s.sub {
				r.events(EventMapDelete{Map: s.name, Owner: o.id, Key: o.ents[i].key})
			}
			o.ents = slices.Delete(o.ents, i, i+1)
			sc.nents--
		case del:
		case found && bytes.Equal(o.ents[i].value, v):
		case found:
			o.ents[i].value = slices.Clone(v)
			if s.sub {
				r.events(EventMapSet{Map: s.name, Owner: o.id, Key: o.ents[i].key, Value: o.ents[i].value})
			}
		default:
			e := sEnt{key: string(k), value: slices.Clone(v)}
			o.ents = slices.Insert(o.ents, i, e)
			sc.nents++
			if s.sub {
				r.events(EventMapSet{Map: s.name, Owner: o.id, Key: e.key, Value: e.value})
			}
		}
	}
	o.ver = m.ver
	return true
}

// replace sets o's entries to ents (sorted), with the events of the
// change when s is subscribed.
func (kv *kvstore) replace(s *smap, o *sowner, ents []sEnt) {
	r := kv.r
	old := o.ents
	kv.sc.nents += len(ents) - len(old)
	o.ents = ents
	if !s.sub {
		return
	}
	i, j := 0, 0
	for i < len(old) || j < len(ents) {
		var c int
		switch {
		case i == len(old):
			c = 1
		case j == len(ents):
			c = -1
		default:
			c = strings.Compare(old[i].key, ents[j].key)
		}
		switch {
		case c < 0:
			r.events(EventMapDelete{Map: s.name, Owner: o.id, Key: old[i].key})
			i++
		case c > 0:
			r.events(EventMapSet{Map: s.name, Owner: o.id, Key: ents[j].key, Value: ents[j].value})
			j++
		default:
			if !bytes.Equal(old[i].value, ents[j].value) {
				r.events(EventMapSet{Map: s.name, Owner: o.id, Key: ents[j].key, Value: ents[j].value})
			}
			i++
			j++
		}
	}
}

// relay passes a change of o's entries on to the subscribers, as the
// home: a delta as it came; a full state as the delta from what the
// subscribers had, when that was a version of ours and the difference
// fits in one message. Otherwise (a home that had nothing, typically a
// new one) the subscribers' next syncs fetch what they lack.
func (kv *kvstore) relay(s *smap, o *sowner, m *mapMsg, old []sEnt, oldVer uint64) {
	r := kv.r
	if len(s.subs) == 0 {
		return
	}
	b := appendMapHdr(kv.sc.tmp[:0], mMapPut, 0, r.id, 0, s.name)
	age := kv.ageMs(o.alive)
	if !m.full {
		b = appendPutHdr(b, o.id, m.ver, m.base, age, false, 0, 1, m.n)
		b = append(b, m.ents...)
	} else {
		if oldVer == 0 {
			return
		}
		hdr := len(b)
		b = appendPutHdr(b, o.id, o.ver, oldVer, age, false, 0, 1, 0)
		n, i, j := 0, 0, 0
		for i < len(old) || j < len(o.ents) {
			var c int
			switch {
			case i == len(old):
				c = 1
			case j == len(o.ents):
				c = -1
			default:
				c = strings.Compare(old[i].key, o.ents[j].key)
			}
			switch {
			case c < 0:
				b = appendMapEnt(b, old[i].key, nil, true)
				n++
				i++
			case c > 0 || !bytes.Equal(old[i].value, o.ents[j].value):
				b = appendMapEnt(b, o.ents[j].key, o.ents[j].value, false)
				n++
				j++
				if c == 0 {
					i++
				}
			default:
				i++
				j++
			}
		}
		if len(b)-hdr-putHdrLen > mapChunkLen || n > 65535 {
			kv.sc.tmp = b
			return
		}
		binary.BigEndian.PutUint16(b[hdr+putHdrLen-2:], uint16(n))
	}
	kv.sc.tmp = b
	for _, x := range s.subs {
		if x.node != o.id && x.node != m.src {
			kv.sendCopy(b, x.node, s.key)
		}
	}
}
