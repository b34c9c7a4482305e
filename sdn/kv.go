package sdn

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"time"
)

// Errors of the map API.
var (
	ErrMapFull     = errors.New("sdn: too many map entries for this owner")
	ErrKeyTooLong  = errors.New("sdn: map name or key longer than 255 bytes, or empty")
	ErrValueTooBig = errors.New("sdn: map value longer than Config.MaxValueLen")
	ErrReserved    = errors.New("sdn: map names starting with a zero byte are reserved")
)

type kvEnt struct {
	name, key string
	value     []byte
}

func cmpEnt(a, b kvEnt) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	return strings.Compare(a.key, b.key)
}

// owner is every entry one node wrote, at one version.
type owner struct {
	id      NodeID
	version uint64
	alive   time.Time // the latest time the owner is known to have been alive
	ents    []kvEnt   // sorted by name, key
	dirty   bool      // to be flooded
	from    NodeID    // the neighbour it came from (not flooded back)
	mark    uint64
}

type kvstore struct {
	r          *Router
	owners     map[NodeID]*owner
	list       []*owner // sorted by id
	me         *owner
	subs       map[string]bool
	nextGossip time.Time
	flushAt    time.Time
	expireAt   time.Time // no owner expires before (a lower bound)
	gen        uint64
	// base is where this node's versions start at its first write: its
	// start time in nanoseconds, so a restarted node is ahead of every
	// version its previous incarnation wrote. Starting again from one, its
	// writes could reach a version the others still hold with the old
	// entries, and be ignored as known. Version 0 stays "never wrote".
	base uint64
	sc   scoped // the maps named with Config.ScopedMapPrefix
}

func (kv *kvstore) init(r *Router, now time.Time) {
	kv.r = r
	kv.owners = make(map[NodeID]*owner)
	kv.subs = make(map[string]bool)
	kv.me = &owner{id: r.id, alive: now}
	kv.base = uint64(max(now.UnixNano(), 0))
	kv.owners[r.id] = kv.me
	kv.list = []*owner{kv.me}
	kv.nextGossip = now.Add(r.cfg.GossipInterval)
	kv.sc.init(now)
}

func (kv *kvstore) deadline() time.Time {
	t := kv.nextGossip
	if !kv.flushAt.IsZero() && kv.flushAt.Before(t) {
		t = kv.flushAt
	}
	if !kv.expireAt.IsZero() && kv.expireAt.Before(t) {
		t = kv.expireAt
	}
	if e := kv.sdeadline(); !e.IsZero() && e.Before(t) {
		t = e
	}
	return t
}

// expire drops the owners silent for SoftStateTimeout, at the exact
// time: expireAt is kept at the earliest possible expiry (liveness only
// moves later, so a stale bound only costs an early wake-up).
func (kv *kvstore) expire(now time.Time) {
	r := kv.r
	kv.expireAt = time.Time{}
	for i := 0; i < len(kv.list); i++ {
		o := kv.list[i]
		if o == kv.me {
			continue
		}
		at := o.alive.Add(r.cfg.SoftStateTimeout)
		if !now.Before(at) {
			kv.diff(o, o.ents, nil)
			delete(kv.owners, o.id)
			kv.list = slices.Delete(kv.list, i, i+1)
			i--
			continue
		}
		if kv.expireAt.IsZero() || at.Before(kv.expireAt) {
			kv.expireAt = at
		}
	}
}

// MapSet sets key in the named map to value, owned by this node. It
// replicates to every node, or for a scoped map (Config.ScopedMapPrefix)
// to the map's home and from there to the nodes that subscribe to it;
// subscribers see EventMapSet. The value is copied.
func (r *Router) MapSet(now time.Time, name, key string, value []byte) error {
	r.begin(now)
	if strings.HasPrefix(name, "\x00") {
		return ErrReserved
	}
	if len(name) == 0 || len(name) > 255 || len(key) > 255 {
		return ErrKeyTooLong
	}
	if len(value) > r.cfg.MaxValueLen {
		return ErrValueTooBig
	}
	if r.kv.isScoped(name) {
		return r.kv.sset(name, key, value)
	}
	return r.kv.set(name, key, value)
}

// MapDelete deletes this node's entry key of the named map.
func (r *Router) MapDelete(now time.Time, name, key string) {
	r.begin(now)
	switch {
	case strings.HasPrefix(name, "\x00"):
	case r.kv.isScoped(name):
		r.kv.sdel(name, key)
	default:
		r.kv.del(name, key)
	}
}

// SubscribeMap subscribes to the named map: an EventMapSet for every
// current entry now, then one for every change and an EventMapDelete for
// every deletion (including an owner's entries vanishing with it). A
// scoped map's entries of other owners are fetched from its home, so
// they follow as events.
func (r *Router) SubscribeMap(now time.Time, name string) {
	r.begin(now)
	if r.kv.isScoped(name) {
		r.kv.ssubscribe(name)
		return
	}
	if r.kv.subs[name] {
		return
	}
	r.kv.subs[name] = true
	for _, o := range r.kv.list {
		for _, e := range o.ents {
			if e.name == name {
				r.events(EventMapSet{Map: name, Owner: o.id, Key: e.key, Value: e.value})
			}
		}
	}
}

// UnsubscribeMap stops the events of a map. A node forgets the other
// owners' entries of a scoped map it no longer subscribes to (unless it
// is the map's home).
func (r *Router) UnsubscribeMap(name string) {
	if r.kv.isScoped(name) {
		r.kv.sunsubscribe(name)
		return
	}
	delete(r.kv.subs, name)
}

// MapEntry is one entry of a map.
type MapEntry struct {
	Owner NodeID
	Key   string
	Value []byte
}

// MapEntries lists the entries of a map this node currently knows, by
// owner and key: of a scoped map, only its own unless it subscribes to
// the map or is its home.
func (r *Router) MapEntries(name string) []MapEntry {
	if r.kv.isScoped(name) {
		return r.kv.sentries(name)
	}
	var out []MapEntry
	for _, o := range r.kv.list {
		for _, e := range o.ents {
			if e.name == name {
				out = append(out, MapEntry{Owner: o.id, Key: e.key, Value: e.value})
			}
		}
	}
	return out
}

// maxOwnerBytes bounds the encoded entries of one owner of the global
// maps: all of them travel in one mOwner message.
const maxOwnerBytes = maxMsgLen - 19

func (kv *kvstore) set(name, key string, value []byte) error {
	r := kv.r
	e := kvEnt{name: name, key: key}
	i, found := slices.BinarySearchFunc(kv.me.ents, e, cmpEnt)
	if found {
		if bytes.Equal(kv.me.ents[i].value, value) {
			return nil
		}
	} else if len(kv.me.ents) >= 65535 || kv.count(kv.me.ents, name) >= r.cfg.MaxEntries {
		return ErrMapFull
	}
	size := 0
	for j, x := range kv.me.ents {
		if j != i || !found {
			size += 4 + len(x.name) + len(x.key) + len(x.value)
		}
	}
	if size+4+len(name)+len(key)+len(value) > maxOwnerBytes {
		return ErrMapFull
	}
	old := slices.Clone(kv.me.ents)
	e.value = slices.Clone(value)
	if found {
		kv.me.ents[i] = e
	} else {
		kv.me.ents = slices.Insert(kv.me.ents, i, e)
	}
	kv.changed(kv.me, old)
	return nil
}

// count is how many of ents (sorted) are in the named map.
func (kv *kvstore) count(ents []kvEnt, name string) int {
	lo, _ := slices.BinarySearchFunc(ents, name, func(e kvEnt, n string) int { return strings.Compare(e.name, n) })
	hi, _ := slices.BinarySearchFunc(ents, name, func(e kvEnt, n string) int {
		if e.name <= n {
			return -1
		}
		return 1
	})
	return hi - lo
}

func (kv *kvstore) del(name, key string) {
	i, found := slices.BinarySearchFunc(kv.me.ents, kvEnt{name: name, key: key}, cmpEnt)
	if !found {
		return
	}
	old := slices.Clone(kv.me.ents)
	kv.me.ents = slices.Delete(kv.me.ents, i, i+1)
	kv.changed(kv.me, old)
}

func (kv *kvstore) leave() {
	kv.sleave()
	if len(kv.me.ents) == 0 {
		return
	}
	old := kv.me.ents
	kv.me.ents = nil
	kv.changed(kv.me, old)
}

// changed bumps our own version after a local write and floods it.
func (kv *kvstore) changed(o *owner, old []kvEnt) {
	o.version = max(o.version, kv.base) + 1
	kv.diff(o, old, o.ents)
	kv.markDirty(o, 0)
}

func (kv *kvstore) markDirty(o *owner, from NodeID) {
	o.dirty, o.from = true, from
	if kv.flushAt.IsZero() {
		kv.flushAt = kv.r.now.Add(kv.r.cfg.TriggerDelay)
	}
}

// diff emits the events of an owner's entries going from old to new (both
// sorted).
func (kv *kvstore) diff(o *owner, old, new []kvEnt) {
	r := kv.r
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		var c int
		switch {
		case i == len(old):
			c = 1
		case j == len(new):
			c = -1
		default:
			c = cmpEnt(old[i], new[j])
		}
		switch {
		case c < 0:
			e := old[i]
			if kv.subs[e.name] {
				r.events(EventMapDelete{Map: e.name, Owner: o.id, Key: e.key})
			}
			i++
		case c > 0:
			e := new[j]
			if kv.subs[e.name] {
				r.events(EventMapSet{Map: e.name, Owner: o.id, Key: e.key, Value: e.value})
			}
			j++
		default:
			if !bytes.Equal(old[i].value, new[j].value) && kv.subs[new[j].name] {
				r.events(EventMapSet{Map: new[j].name, Owner: o.id, Key: new[j].key, Value: new[j].value})
			}
			i++
			j++
		}
	}
}

func (kv *kvstore) timeout(now time.Time) {
	r := kv.r
	if !kv.expireAt.IsZero() && !now.Before(kv.expireAt) {
		kv.expire(now)
	}
	if !kv.sc.expireAt.IsZero() && !now.Before(kv.sc.expireAt) {
		kv.sexpire(now)
	}
	kv.routesChanged()
	if !kv.flushAt.IsZero() && !now.Before(kv.flushAt) {
		kv.flushAt = time.Time{}
		kv.sflush()
		for _, o := range kv.list {
			if !o.dirty {
				continue
			}
			o.dirty = false
			for _, l := range r.links {
				if l.state == hsDone && l.peer != o.from {
					kv.sendOwner(l, o)
				}
			}
		}
	}
	if now.Before(kv.nextGossip) {
		return
	}
	jit := time.Duration(r.rng.Int64N(int64(r.cfg.GossipInterval)/5 + 1))
	kv.nextGossip = now.Add(r.cfg.GossipInterval - r.cfg.GossipInterval/10 + jit)
	kv.me.alive = now
	for _, l := range r.links {
		if l.state == hsDone {
			kv.sendDigest(l)
		}
	}
	kv.stick()
}

func (kv *kvstore) neighbourUp(l *link) { kv.sendDigest(l) }

func (kv *kvstore) age(o *owner) uint32 {
	if o == kv.me {
		return 0
	}
	// Rounded up: an age errs on the old side, never the young.
	return uint32(min((kv.r.now.Sub(o.alive)+time.Millisecond-1)/time.Millisecond, 1<<31))
}

func (kv *kvstore) sendDigest(l *link) {
	r := kv.r
	start := len(r.out)
	r.out = put8(r.out, uint8(mDigest))
	r.out = put16(r.out, uint16(len(kv.list)))
	for _, o := range kv.list {
		r.out = appendDigestEnt(r.out, digestEnt{owner: o.id, version: o.version, ageMs: kv.age(o)})
	}
	r.queue(l, start, len(r.out), false)
}

func (kv *kvstore) sendOwner(l *link, o *owner) {
	r := kv.r
	start := len(r.out)
	r.out = appendOwnerHdr(r.out, digestEnt{owner: o.id, version: o.version, ageMs: kv.age(o)}, len(o.ents))
	for _, e := range o.ents {
		r.out = appendOwnerEnt(r.out, e.name, e.key, e.value)
	}
	r.queue(l, start, len(r.out), false)
}

// aliveAt converts an age received from l into our clock. The trip is
// counted as a whole round trip (before the first pong, the time since
// the link was made, which covers the handshake's round trip): the
// estimate errs early, so an owner's entries vanish no later than
// SoftStateTimeout after its death, only a few round trips sooner.
func (kv *kvstore) aliveAt(l *link, ageMs uint32) time.Time {
	trip := l.srtt
	if trip == 0 {
		trip = kv.r.now.Sub(l.created)
	}
	return kv.r.now.Add(-time.Duration(ageMs)*time.Millisecond - trip)
}

// handleDigest pushes to l every owner it lacks or has at an older
// version, and takes the freshest liveness of each owner.
func (kv *kvstore) handleDigest(l *link, m *digest) {
	kv.gen++
	for i := range m.n {
		e := m.ent(i)
		o := kv.owners[e.owner]
		if o == nil {
			continue
		}
		o.mark = kv.gen
		if o == kv.me {
			if e.version > o.version {
				o.version = e.version + 1
				kv.markDirty(o, 0)
			} else if o.version > e.version {
				kv.sendOwner(l, o)
			}
			continue
		}
		if a := kv.aliveAt(l, e.ageMs); a.After(o.alive) {
			o.alive = a
		}
		if o.version > e.version {
			kv.sendOwner(l, o)
		}
	}
	for _, o := range kv.list {
		// Version 0 has never written anything: nothing to push.
		if o.mark != kv.gen && o.id != l.peer && o.version > 0 {
			kv.sendOwner(l, o)
		}
	}
}

func (kv *kvstore) handleOwner(l *link, m *ownerMsg) {
	r := kv.r
	if m.owner == r.id {
		if m.version > kv.me.version {
			kv.me.version = m.version + 1
			kv.markDirty(kv.me, 0)
		}
		return
	}
	alive := kv.aliveAt(l, m.ageMs)
	if r.now.Sub(alive) >= r.cfg.SoftStateTimeout {
		return
	}
	o := kv.owners[m.owner]
	if o != nil {
		if alive.After(o.alive) {
			o.alive = alive
		}
		if m.version <= o.version {
			return
		}
	} else if m.version == 0 {
		return // an owner that never wrote: nothing to store
	}
	ents := make([]kvEnt, 0, m.n)
	it := ownerIter{r: reader{b: m.ents}}
	for range m.n {
		name, key, value := it.next()
		if len(name) == 0 || len(value) > r.cfg.MaxValueLen {
			r.stats.LimitDrops++
			return
		}
		ents = append(ents, kvEnt{name: string(name), key: string(key), value: slices.Clone(value)})
	}
	slices.SortFunc(ents, cmpEnt)
	ents = slices.CompactFunc(ents, func(a, b kvEnt) bool { return cmpEnt(a, b) == 0 })
	for i, run := 0, 0; i < len(ents); i++ {
		if run++; i > 0 && ents[i].name != ents[i-1].name {
			run = 1
		}
		if run > r.cfg.MaxEntries {
			r.stats.LimitDrops++
			return
		}
	}
	if o == nil {
		if len(kv.list) >= r.cfg.MaxOwners {
			r.stats.LimitDrops++
			return
		}
		o = &owner{id: m.owner, alive: alive}
		if at := alive.Add(r.cfg.SoftStateTimeout); kv.expireAt.IsZero() || at.Before(kv.expireAt) {
			kv.expireAt = at
		}
		kv.owners[o.id] = o
		i, _ := slices.BinarySearchFunc(kv.list, o.id, func(x *owner, id NodeID) int { return cmpU(uint64(x.id), uint64(id)) })
		kv.list = slices.Insert(kv.list, i, o)
	}
	old := o.ents
	o.ents, o.version = ents, m.version
	kv.diff(o, old, ents)
	kv.markDirty(o, l.peer)
}
