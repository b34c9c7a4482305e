package sdn

import "encoding/binary"

// The wire format: every message is one byte of type followed by fixed
// big-endian fields; lists carry a count first. Decoders check every
// length against the input and never allocate; a message that does not
// decode exactly (short, long, bad count) is dropped and counted.

// msgType is the first byte of every message.
type msgType uint8

const (
	mHello    msgType = 1  // version u8, node u32, nonce [16]
	mHelloAck msgType = 2  // node u32, nonce [16], mac [32]
	mAuth     msgType = 3  // mac [32]
	mPing     msgType = 4  // seq u32, sent i64
	mPong     msgType = 5  // seq u32, sent i64
	mRoute    msgType = 6  // n u16, n × (kind u8, id u32, seqno u16, metric u32)
	mSeqReq   msgType = 7  // kind u8, id u32, seqno u16, hops u8
	mSub      msgType = 8  // ch u64, source u32, min u64, max u64
	mSubAck   msgType = 9  // ch u64, active u8, n u8, n × node u32 (path from the source)
	mUnsub    msgType = 10 // ch u64
	mEnd      msgType = 11 // ch u64
	mFeedback msgType = 12 // ch u64, keyframe u8, min u64, max u64
	mData     msgType = 13 // ch u64, seq u32, payload
	mDigest   msgType = 14 // n u16, n × (owner u32, version u64, age ms u32)
	mOwner    msgType = 15 // owner u32, version u64, age ms u32, n u16, n × (map u8+bytes, key u8+bytes, value u16+bytes)
	mMoved    msgType = 16 // ch u64
	mRdv      msgType = 17 // dst u32, src u32, ttl u8, kind u8, ch u64, source u32
	mRepair   msgType = 18 // ch u64, payload: data outside the sequence (a retransmission)
	mUp       msgType = 19 // ch u64, payload: opaque feedback to the upstream
	// The messages of scoped maps are routed: mapHdr, then their fields.
	mMapSync   msgType = 20 // mapHdr, flags u8, version u64, n u16, n × (owner u32, version u64)
	mMapWant   msgType = 21 // mapHdr, version u64
	mMapPut    msgType = 22 // mapHdr, owner u32, version u64, base u64, age ms u32, full u8, part u16, parts u16, n u16, n × mapEnt
	mMapDigest msgType = 23 // mapHdr, n u16, n × (owner u32, version u64, age ms u32)
	mMax       msgType = 24
)

const (
	protoVersion = 3 // 2: route entries carry a floor and a path; 3: repair and upstream messages, reorder window, scoped maps
	// flatVersion is or'ed into hello's version by a node with
	// Config.FlatRoutes: nodes that route differently refuse each other
	// as they refuse another protocol version.
	flatVersion  = 0x80
	nonceLen     = 16
	macLen       = 32
	maxPath      = 32
	routeEntLen  = 16 // without the path
	digestEntLen = 16
	dataHdrLen   = 13
	// chanPayloadHdrLen is the header of mRepair and mUp.
	chanPayloadHdrLen = 9
	maxMsgLen         = 1 << 20
)

// reader decodes big-endian fields; any overrun sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || len(r.b) < n {
		r.bad = true
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8() uint8 {
	p := r.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *reader) u16() uint16 {
	p := r.take(2)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func (r *reader) u32() uint32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (r *reader) u64() uint64 {
	p := r.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// done reports whether the message decoded exactly.
func (r *reader) done() bool { return !r.bad && len(r.b) == 0 }

func put8(b []byte, v uint8) []byte   { return append(b, v) }
func put16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func put32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func put64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// hello opens the handshake (dialer to listener).
type hello struct {
	version uint8
	node    NodeID
	nonce   [nonceLen]byte
}

func (m *hello) append(b []byte) []byte {
	b = put8(b, uint8(mHello))
	b = put8(b, m.version)
	b = put32(b, uint32(m.node))
	return append(b, m.nonce[:]...)
}

func (m *hello) decode(p []byte) bool {
	r := reader{b: p}
	ok := msgType(r.u8()) == mHello
	m.version = r.u8()
	m.node = NodeID(r.u32())
	copy(m.nonce[:], r.take(nonceLen))
	return ok && r.done()
}

// helloAck answers hello with the listener's nonce and proof of the secret.
type helloAck struct {
	node  NodeID
	nonce [nonceLen]byte
	mac   [macLen]byte
}

func (m *helloAck) append(b []byte) []byte {
	b = put8(b, uint8(mHelloAck))
	b = put32(b, uint32(m.node))
	b = append(b, m.nonce[:]...)
	return append(b, m.mac[:]...)
}

func (m *helloAck) decode(p []byte) bool {
	r := reader{b: p}
	ok := msgType(r.u8()) == mHelloAck
	m.node = NodeID(r.u32())
	copy(m.nonce[:], r.take(nonceLen))
	copy(m.mac[:], r.take(macLen))
	return ok && r.done()
}

// auth is the dialer's proof of the secret.
type auth struct{ mac [macLen]byte }

func (m *auth) append(b []byte) []byte {
	b = put8(b, uint8(mAuth))
	return append(b, m.mac[:]...)
}

func (m *auth) decode(p []byte) bool {
	r := reader{b: p}
	ok := msgType(r.u8()) == mAuth
	copy(m.mac[:], r.take(macLen))
	return ok && r.done()
}

// ping and pong measure a link; pong echoes ping's fields.
type ping struct {
	pong bool
	seq  uint32
	sent int64
}

func (m *ping) append(b []byte) []byte {
	t := mPing
	if m.pong {
		t = mPong
	}
	b = put8(b, uint8(t))
	b = put32(b, m.seq)
	return put64(b, uint64(m.sent))
}

func (m *ping) decode(p []byte) bool {
	r := reader{b: p}
	t := msgType(r.u8())
	m.pong = t == mPong
	m.seq = r.u32()
	m.sent = int64(r.u64())
	return (t == mPing || t == mPong) && r.done()
}

// routeEnt is one destination of a routing update: the metric of the
// route the sender uses, its floor, the cheapest it could use (see
// routing.reselect), and its path, the nodes it takes from the sender
// (first) to the destination (last), or for a zone route to the node of
// the zone that originated it, 4 bytes each. A metric of infinity
// retracts the route and carries no path.
type routeEnt struct {
	key    dkey
	seqno  uint16
	metric uint32
	floor  uint32
	path   []byte
}

func (e *routeEnt) pathLen() int     { return len(e.path) / 4 }
func (e *routeEnt) hop(i int) NodeID { return NodeID(binary.BigEndian.Uint32(e.path[4*i:])) }
func (e *routeEnt) onPath(n NodeID) bool {
	for i := range e.pathLen() {
		if e.hop(i) == n {
			return true
		}
	}
	return false
}

// appendRouteEnt appends e, its path preceded by via unless via is 0 (a
// node passing a route on puts itself in front of its next hop's path).
func appendRouteEnt(b []byte, e routeEnt, via NodeID) []byte {
	b = put8(b, uint8(e.key>>32))
	b = put32(b, uint32(e.key))
	b = put16(b, e.seqno)
	b = put32(b, e.metric)
	b = put32(b, e.floor)
	n := len(e.path) / 4
	if via != 0 {
		n++
	}
	b = put8(b, uint8(n))
	if via != 0 {
		b = put32(b, uint32(via))
	}
	return append(b, e.path...)
}

// routeUpdate iterates the entries of an mRoute message.
type routeUpdate struct {
	n    int
	rest []byte // the entries not yet read by next
}

func (m *routeUpdate) decode(p []byte) bool {
	r := reader{b: p}
	ok := msgType(r.u8()) == mRoute
	m.n = int(r.u16())
	if !ok || r.bad || len(r.b) < m.n*routeEntLen {
		return false
	}
	ents := r.b
	m.rest = ents
	var e routeEnt
	for range m.n {
		if !m.next(&e) || !e.key.valid() || e.metric != infMetric && e.pathLen() == 0 || e.metric == infMetric && e.pathLen() != 0 {
			return false
		}
		for i := range e.pathLen() {
			if e.hop(i) == 0 {
				return false
			}
		}
	}
	if len(m.rest) != 0 {
		return false
	}
	m.rest = ents
	return true
}

// next decodes the next entry into e; false when none is left or it is
// cut short.
func (m *routeUpdate) next(e *routeEnt) bool {
	r := reader{b: m.rest}
	e.key = dkey(r.u8())<<32 | dkey(r.u32())
	e.seqno = r.u16()
	e.metric = r.u32()
	e.floor = r.u32()
	n := int(r.u8())
	if n > maxPath {
		return false
	}
	e.path = r.take(4 * n)
	m.rest = r.b
	return !r.bad
}

// seqReq asks the origin of key for a sequence number at least seqno.
type seqReq struct {
	key   dkey
	seqno uint16
	hops  uint8
}

func (m *seqReq) append(b []byte) []byte {
	b = put8(b, uint8(mSeqReq))
	b = put8(b, uint8(m.key>>32))
	b = put32(b, uint32(m.key))
	b = put16(b, m.seqno)
	return put8(b, m.hops)
}

func (m *seqReq) decode(p []byte) bool {
	r := reader{b: p}
	ok := msgType(r.u8()) == mSeqReq
	kind := r.u8()
	id := r.u32()
	m.key = dkey(kind)<<32 | dkey(id)
	m.seqno = r.u16()
	m.hops = r.u8()
	return ok && r.done() && m.key.valid()
}

// chanMsg is every pub/sub control message: sub, subAck, unsub, end,
// feedback and moved. Fields a type does not carry stay zero.
type chanMsg struct {
	t        msgType
	ch       uint64
	source   NodeID // sub
	min, max uint64 // sub, feedback
	flag     bool   // subAck: active; feedback: keyframe
	path     []byte // subAck: n × u32, the relays from the source down
}

func (m *chanMsg) pathLen() int { return len(m.path) / 4 }

func (m *chanMsg) pathAt(i int) NodeID { return NodeID(binary.BigEndian.Uint32(m.path[4*i:])) }

func (m *chanMsg) append(b []byte) []byte {
	b = put8(b, uint8(m.t))
	b = put64(b, m.ch)
	switch m.t {
	case mSub:
		b = put32(b, uint32(m.source))
		b = put64(b, m.min)
		b = put64(b, m.max)
	case mFeedback:
		b = put8(b, bool8(m.flag))
		b = put64(b, m.min)
		b = put64(b, m.max)
	case mSubAck:
		b = put8(b, bool8(m.flag))
		b = put8(b, uint8(len(m.path)/4))
		b = append(b, m.path...)
	}
	return b
}

func (m *chanMsg) decode(p []byte) bool {
	r := reader{b: p}
	m.t = msgType(r.u8())
	m.ch = r.u64()
	switch m.t {
	case mSub:
		m.source = NodeID(r.u32())
		m.min = r.u64()
		m.max = r.u64()
		if m.source == 0 {
			return false
		}
	case mFeedback:
		f := r.u8()
		m.flag = f == 1
		r.bad = r.bad || f > 1
		m.min = r.u64()
		m.max = r.u64()
	case mSubAck:
		f := r.u8()
		m.flag = f == 1
		r.bad = r.bad || f > 1
		n := int(r.u8())
		if n > maxPath {
			return false
		}
		m.path = r.take(4 * n)
	case mUnsub, mEnd, mMoved:
	default:
		return false
	}
	return r.done()
}

func bool8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// appendDataHdr starts an mData message; the payload follows.
func appendDataHdr(b []byte, ch uint64, seq uint32) []byte {
	b = put8(b, uint8(mData))
	b = put64(b, ch)
	return put32(b, seq)
}

// appendChanPayload starts an mRepair or mUp message; the payload follows.
func appendChanPayload(b []byte, t msgType, ch uint64) []byte {
	b = put8(b, uint8(t))
	return put64(b, ch)
}

// decodeChanPayload splits an mRepair or mUp message.
func decodeChanPayload(p []byte) (ch uint64, payload []byte, ok bool) {
	if len(p) < chanPayloadHdrLen {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(p[1:]), p[chanPayloadHdrLen:], true
}

// decodeData splits an mData message.
func decodeData(p []byte) (ch uint64, seq uint32, payload []byte, ok bool) {
	if len(p) < dataHdrLen || msgType(p[0]) != mData {
		return 0, 0, nil, false
	}
	return binary.BigEndian.Uint64(p[1:]), binary.BigEndian.Uint32(p[9:]), p[dataHdrLen:], true
}

// digestEnt is one owner in a map digest.
type digestEnt struct {
	owner   NodeID
	version uint64
	ageMs   uint32
}

func appendDigestEnt(b []byte, e digestEnt) []byte {
	b = put32(b, uint32(e.owner))
	b = put64(b, e.version)
	return put32(b, e.ageMs)
}

// digest iterates the owners of an mDigest message.
type digest struct {
	n    int
	ents []byte
}

func (m *digest) decode(p []byte) bool {
	r := reader{b: p}
	ok := msgType(r.u8()) == mDigest
	m.n = int(r.u16())
	m.ents = r.take(m.n * digestEntLen)
	if !ok || !r.done() {
		return false
	}
	for i := range m.n {
		if m.ent(i).owner == 0 {
			return false
		}
	}
	return true
}

func (m *digest) ent(i int) digestEnt {
	e := m.ents[i*digestEntLen:]
	return digestEnt{
		owner:   NodeID(binary.BigEndian.Uint32(e)),
		version: binary.BigEndian.Uint64(e[4:]),
		ageMs:   binary.BigEndian.Uint32(e[12:]),
	}
}

// ownerMsg carries every map entry of one owner at one version.
type ownerMsg struct {
	digestEnt
	n    int
	ents []byte // validated entry list
}

func appendOwnerHdr(b []byte, e digestEnt, n int) []byte {
	b = put8(b, uint8(mOwner))
	b = appendDigestEnt(b, e)
	return put16(b, uint16(n))
}

func appendOwnerEnt(b []byte, name, key string, value []byte) []byte {
	b = put8(b, uint8(len(name)))
	b = append(b, name...)
	b = put8(b, uint8(len(key)))
	b = append(b, key...)
	b = put16(b, uint16(len(value)))
	return append(b, value...)
}

func (m *ownerMsg) decode(p []byte) bool {
	r := reader{b: p}
	ok := msgType(r.u8()) == mOwner
	m.owner = NodeID(r.u32())
	m.version = r.u64()
	m.ageMs = r.u32()
	m.n = int(r.u16())
	m.ents = r.b
	for range m.n {
		r.take(int(r.u8()))
		r.take(int(r.u8()))
		r.take(int(r.u16()))
	}
	return ok && r.done() && m.owner != 0
}

// ownerIter walks the entries of a validated ownerMsg.
type ownerIter struct{ r reader }

func (it *ownerIter) next() (name, key, value []byte) {
	name = it.r.take(int(it.r.u8()))
	key = it.r.take(int(it.r.u8()))
	value = it.r.take(int(it.r.u16()))
	return
}

// Rendezvous kinds: a source announces its channel to the channel's home
// node, a subscriber's node looks the source up there.
const (
	rdvAnnounce   uint8 = 1
	rdvUnannounce uint8 = 2
	rdvLookup     uint8 = 3
	rdvReply      uint8 = 4
)

// rdv is a routed rendezvous message. dst zero means "the home of ch".
type rdv struct {
	dst, src NodeID
	ttl      uint8
	kind     uint8
	ch       uint64
	source   NodeID
}

func (m *rdv) append(b []byte) []byte {
	b = put8(b, uint8(mRdv))
	b = put32(b, uint32(m.dst))
	b = put32(b, uint32(m.src))
	b = put8(b, m.ttl)
	b = put8(b, m.kind)
	b = put64(b, m.ch)
	return put32(b, uint32(m.source))
}

func (m *rdv) decode(p []byte) bool {
	r := reader{b: p}
	ok := msgType(r.u8()) == mRdv
	m.dst = NodeID(r.u32())
	m.src = NodeID(r.u32())
	m.ttl = r.u8()
	m.kind = r.u8()
	m.ch = r.u64()
	m.source = NodeID(r.u32())
	return ok && r.done() && m.src != 0 && m.kind >= rdvAnnounce && m.kind <= rdvReply &&
		(m.kind == rdvLookup || m.source != 0)
}

// A scoped map's messages are routed like rdv: toward dst, or, when dst
// is zero, toward the home of the map. The header is
//
//	type u8, dst u32, src u32, ttl u8, delay ms u32, name u8+bytes
//
// where delay is the time the message has spent on the way: every node
// that receives it adds its link's whole round trip (rounded up), so an
// age carried inside errs old, never young.
const (
	mapTTLOff    = 9
	mapDelayOff  = 10
	mapSyncEnt   = 12
	mapDigestEnt = 16
	// mapChunkLen bounds the entries of one mMapPut; an owner's entries
	// of a map beyond it are split into parts.
	mapChunkLen = 1 << 16
)

// Flags of mMapSync.
const (
	syncSub    uint8 = 1 // the sender subscribes to the map
	syncWriter uint8 = 2 // the sender has entries in it (version is theirs)
)

// mapEnt operations of mMapPut: a set carries a value, a delete none.
const (
	opSet uint8 = 0
	opDel uint8 = 1
)

// mapMsg is every message of a scoped map. Fields a type does not carry
// stay zero; ents is the validated list of its n entries.
type mapMsg struct {
	t        msgType
	dst, src NodeID
	ttl      uint8
	delayMs  uint32
	name     []byte

	flags       uint8  // sync
	owner       NodeID // put
	ver         uint64 // sync, want, put
	base        uint64 // put: the version a delta applies to
	ageMs       uint32 // put
	full        bool   // put: the whole of the owner's entries (or a part of them)
	part, parts uint16 // put
	n           int    // sync, put, digest
	ents        []byte
}

func appendMapHdr(b []byte, t msgType, dst, src NodeID, delayMs uint32, name string) []byte {
	b = put8(b, uint8(t))
	b = put32(b, uint32(dst))
	b = put32(b, uint32(src))
	b = put8(b, rdvTTL)
	b = put32(b, delayMs)
	b = put8(b, uint8(len(name)))
	return append(b, name...)
}

func appendMapEnt(b []byte, key string, value []byte, del bool) []byte {
	b = put8(b, uint8(len(key)))
	b = append(b, key...)
	if del {
		return put8(b, opDel)
	}
	b = put8(b, opSet)
	b = put16(b, uint16(len(value)))
	return append(b, value...)
}

func mapEntLen(key string, value []byte) int { return 4 + len(key) + len(value) }

func (m *mapMsg) append(b []byte) []byte {
	b = put8(b, uint8(m.t))
	b = put32(b, uint32(m.dst))
	b = put32(b, uint32(m.src))
	b = put8(b, m.ttl)
	b = put32(b, m.delayMs)
	b = put8(b, uint8(len(m.name)))
	b = append(b, m.name...)
	switch m.t {
	case mMapSync:
		b = put8(b, m.flags)
		b = put64(b, m.ver)
		b = put16(b, uint16(m.n))
	case mMapWant:
		b = put64(b, m.ver)
	case mMapPut:
		b = put32(b, uint32(m.owner))
		b = put64(b, m.ver)
		b = put64(b, m.base)
		b = put32(b, m.ageMs)
		b = put8(b, bool8(m.full))
		b = put16(b, m.part)
		b = put16(b, m.parts)
		b = put16(b, uint16(m.n))
	case mMapDigest:
		b = put16(b, uint16(m.n))
	}
	return append(b, m.ents...)
}

func (m *mapMsg) decode(p []byte) bool {
	r := reader{b: p}
	m.t = msgType(r.u8())
	m.dst = NodeID(r.u32())
	m.src = NodeID(r.u32())
	m.ttl = r.u8()
	m.delayMs = r.u32()
	m.name = r.take(int(r.u8()))
	if r.bad || m.src == 0 || len(m.name) == 0 {
		return false
	}
	switch m.t {
	case mMapSync:
		m.flags = r.u8()
		m.ver = r.u64()
		m.n = int(r.u16())
		m.ents = r.take(m.n * mapSyncEnt)
		if r.bad || m.flags > syncSub|syncWriter || !ascending(m.ents, m.n, mapSyncEnt) {
			return false
		}
	case mMapWant:
		m.ver = r.u64()
	case mMapPut:
		m.owner = NodeID(r.u32())
		m.ver = r.u64()
		m.base = r.u64()
		m.ageMs = r.u32()
		f := r.u8()
		m.full = f == 1
		m.part = r.u16()
		m.parts = r.u16()
		m.n = int(r.u16())
		if r.bad || m.owner == 0 || f > 1 || m.ver == 0 {
			return false
		}
		if m.full && (m.base != 0 || m.parts == 0 || m.part >= m.parts) ||
			!m.full && (m.base >= m.ver || m.part != 0 || m.parts != 1) {
			return false
		}
		m.ents = r.b
		for range m.n {
			r.take(int(r.u8()))
			op := r.u8()
			if op == opSet {
				r.take(int(r.u16()))
			} else if op != opDel || m.full {
				return false
			}
		}
	case mMapDigest:
		m.n = int(r.u16())
		m.ents = r.take(m.n * mapDigestEnt)
		if r.bad || !ascending(m.ents, m.n, mapDigestEnt) {
			return false
		}
	default:
		return false
	}
	return r.done()
}

// ascending reports whether the n records of size sz in b start with
// strictly ascending, non-zero owner ids.
func ascending(b []byte, n, sz int) bool {
	var prev uint32
	for i := range n {
		o := binary.BigEndian.Uint32(b[i*sz:])
		if o <= prev {
			return false
		}
		prev = o
	}
	return true
}

// syncEnt is the i-th (owner, version) of an mMapSync.
func (m *mapMsg) syncEnt(i int) (NodeID, uint64) {
	e := m.ents[i*mapSyncEnt:]
	return NodeID(binary.BigEndian.Uint32(e)), binary.BigEndian.Uint64(e[4:])
}

// digestEnt is the i-th owner of an mMapDigest.
func (m *mapMsg) digestEnt(i int) digestEnt {
	e := m.ents[i*mapDigestEnt:]
	return digestEnt{
		owner:   NodeID(binary.BigEndian.Uint32(e)),
		version: binary.BigEndian.Uint64(e[4:]),
		ageMs:   binary.BigEndian.Uint32(e[12:]),
	}
}

// mapEntIter walks the entries of a validated mMapPut.
type mapEntIter struct{ r reader }

func (it *mapEntIter) next() (key, value []byte, del bool) {
	key = it.r.take(int(it.r.u8()))
	if it.r.u8() == opDel {
		return key, nil, true
	}
	value = it.r.take(int(it.r.u16()))
	return key, value, false
}
