package sdn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"
)

// Router is the overlay state machine of one node: neighbours and their
// measured links, routing, pub/sub relay trees and replicated maps. It
// does no I/O; see the package doc for the run loop. A Router is not safe
// for concurrent use.
type Router struct {
	cfg   Config
	id    NodeID
	zone  ZoneID
	rng   *rand.Rand
	now   time.Time
	stats Stats
	mac   hash.Hash

	links  []*link // every link, in creation order
	byID   map[LinkID]*link
	nbrs   map[NodeID]*link // authenticated links by peer
	seeds  []*seed
	linkV  uint64 // bumped when the neighbour set changes
	closed bool

	// outputs: tx and dv point into out, which is reset when both are
	// drained at the start of a call.
	out    []byte
	tx     []txRec
	txHead int
	dv     []dvRec
	dvHead int
	ev     []Event
	evHead int

	rt  routing
	ps  pubsub
	kv  kvstore
	tmp []byte // scratch for MACs
}

type txRec struct {
	link     LinkID
	off, end int
	datagram bool
}

type dvRec struct {
	ch       uint64
	seq      uint32
	off, end int
	repair   bool
}

type hsState uint8

const (
	hsDialed hsState = iota // hello sent, waiting for helloAck
	hsListen                // waiting for hello
	hsAcked                 // helloAck sent, waiting for auth
	hsDone                  // authenticated
)

// link is one connection to a (possibly not yet known) neighbour.
type link struct {
	id       LinkID
	peer     NodeID
	expect   NodeID
	state    hsState
	dialed   bool
	created  time.Time
	binding  []byte
	nonceMe  [nonceLen]byte
	noncePe  [nonceLen]byte
	lastRecv time.Time
	nextPing time.Time
	pingSeq  uint32
	pings    [64]pingRec
	srtt     time.Duration
	loss     float64
	cost     uint32 // published cost in microseconds; 0 while unmeasured
	// confirmed: the peer is known to have completed the handshake too
	// (it sent something after it). Until then the dialer repeats auth.
	confirmed bool
	resendAt  time.Time
}

type pingRec struct {
	seq   uint32
	sent  time.Time
	acked bool
}

type seed struct {
	addr     Addr
	dialing  bool
	dialAt   time.Time // next dial; zero while connected or dialing
	deadline time.Time // give up waiting for the driver
	backoff  time.Duration
}

// New returns a Router for cfg at time now.
func New(cfg Config, now time.Time) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	cfg.Seeds = slices.Clone(cfg.Seeds)
	cfg.Secret = slices.Clone(cfg.Secret)
	r := &Router{
		cfg:  cfg,
		id:   cfg.ID,
		zone: cfg.ID.Zone(),
		rng:  rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.ID)^0x5d4e3c2b1a09f8e7)),
		now:  now,
		byID: make(map[LinkID]*link),
		nbrs: make(map[NodeID]*link),
		mac:  hmac.New(sha256.New, cfg.Secret),
	}
	for _, s := range cfg.Seeds {
		r.seeds = append(r.seeds, &seed{addr: s, dialAt: now, backoff: cfg.DialBackoffMin})
	}
	r.rt.init(r, now)
	r.ps.init(r, now)
	r.kv.init(r, now)
	return r, nil
}

// Now is the latest time the Router was given.
func (r *Router) Now() time.Time { return r.now }

// ID is this node's id.
func (r *Router) ID() NodeID { return r.id }

// Address is the node's printable address (Config.ID and Config.Listen).
func (r *Router) Address() Addr { return Addr{Node: r.id, UDP: r.cfg.Listen} }

// Stats returns the counters.
func (r *Router) Stats() Stats { return r.stats }

// NeighbourInfo describes an authenticated neighbour and its link.
type NeighbourInfo struct {
	Node NodeID
	Link LinkID
	// RTT is the smoothed round-trip time, Loss the fraction of recent
	// pings unanswered.
	RTT  time.Duration
	Loss float64
	// Cost is the link's routing cost in microseconds (zero: not yet
	// measured). It follows RTT×(1+LossWeight×Loss)+HopPenalty, updated
	// only when the measurement moves by more than 10 %.
	Cost uint32
}

// Neighbours lists the authenticated neighbours, by node id.
func (r *Router) Neighbours() []NeighbourInfo {
	var out []NeighbourInfo
	for _, l := range r.links {
		if l.state == hsDone {
			out = append(out, NeighbourInfo{Node: l.peer, Link: l.id, RTT: l.srtt, Loss: l.loss, Cost: l.cost})
		}
	}
	slices.SortFunc(out, func(a, b NeighbourInfo) int { return cmpU(uint64(a.Node), uint64(b.Node)) })
	return out
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// HandleLinkUp reports a new connection. The dialing side starts the
// handshake; until it completes only handshake messages are accepted.
func (r *Router) HandleLinkUp(now time.Time, id LinkID, info LinkInfo) {
	r.begin(now)
	if _, dup := r.byID[id]; dup || r.closed {
		r.events(EventClose{Link: id})
		return
	}
	l := &link{id: id, dialed: info.Dialed, expect: info.Peer, created: r.now, lastRecv: r.now,
		binding: slices.Clone(info.Binding)}
	r.fillNonce(&l.nonceMe)
	r.links = append(r.links, l)
	r.byID[id] = l
	if info.Dialed {
		if s := r.seedFor(info.Peer); s != nil {
			s.dialing = false
		}
		l.state = hsDialed
		l.resendAt = r.now.Add(r.cfg.PingInterval)
		m := hello{version: r.version(), node: r.id, nonce: l.nonceMe}
		r.sendCtl(l, m.append(r.out))
	} else {
		l.state = hsListen
	}
}

// HandleDialFailed reports that an EventDial could not connect; the seed
// is redialled after a backoff.
func (r *Router) HandleDialFailed(now time.Time, addr Addr) {
	r.begin(now)
	if s := r.seedFor(addr.Node); s != nil && s.dialing {
		s.dialing = false
		r.backoff(s)
	}
}

// HandleLinkDown reports a connection closed by the peer or the network.
func (r *Router) HandleLinkDown(now time.Time, id LinkID) {
	r.begin(now)
	l := r.byID[id]
	if l == nil {
		return
	}
	if l.state != hsDone {
		r.stats.HandshakeAborted++
	}
	r.dropLink(l, false)
	r.ps.routesChanged()
}

// HandleMessage hands the Router one message received on a link. data is
// borrowed for the call. Malformed and unauthenticated messages are
// dropped and counted in Stats.
func (r *Router) HandleMessage(now time.Time, id LinkID, data []byte) {
	r.begin(now)
	l := r.byID[id]
	if l == nil {
		r.stats.UnknownLink++
		return
	}
	if len(data) == 0 || len(data) > maxMsgLen || msgType(data[0]) == 0 || msgType(data[0]) >= mMax {
		r.stats.Malformed++
		return
	}
	t := msgType(data[0])
	if l.state != hsDone {
		r.handshake(l, t, data)
		return
	}
	l.lastRecv = r.now
	if t > mAuth {
		l.confirmed = true
	}
	switch t {
	case mPing, mPong:
		var m ping
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		r.handlePing(l, &m)
	case mRoute:
		var m routeUpdate
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		r.rt.handleUpdate(l, &m)
		r.ps.routesChanged()
	case mSeqReq:
		var m seqReq
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		r.rt.handleSeqReq(l, &m)
	case mData:
		ch, seq, _, ok := decodeData(data)
		if !ok {
			r.stats.Malformed++
			return
		}
		r.ps.handleData(l, ch, seq, data)
	case mRepair, mUp:
		ch, payload, ok := decodeChanPayload(data)
		if !ok {
			r.stats.Malformed++
			return
		}
		if t == mRepair {
			r.ps.handleRepair(l, ch, data, len(data)-len(payload))
		} else {
			r.ps.handleUp(l, ch, payload)
		}
	case mSub, mSubAck, mUnsub, mEnd, mFeedback, mMoved:
		var m chanMsg
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		r.ps.handleCtl(l, &m)
	case mRdv:
		var m rdv
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		r.ps.route(m)
	case mDigest:
		var m digest
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		r.kv.handleDigest(l, &m)
		return
	case mOwner:
		var m ownerMsg
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		r.kv.handleOwner(l, &m)
		return
	case mMapSync, mMapWant, mMapPut, mMapDigest:
		var m mapMsg
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		r.kv.handleMap(l, &m, data)
	case mHello, mHelloAck, mAuth:
		r.handshakeRepeat(l, t, data)
	}
}

// handshakeRepeat handles a handshake message on an authenticated link:
// a repetition the peer sent before our reply reached it is ignored;
// anything else is dropped and counted.
func (r *Router) handshakeRepeat(l *link, t msgType, data []byte) {
	var ok, repeat bool
	switch t {
	case mHello:
		var m hello
		ok = m.decode(data)
		repeat = !l.dialed && m.node == l.peer && m.nonce == l.noncePe
	case mHelloAck:
		var m helloAck
		ok = m.decode(data)
		repeat = l.dialed && m.node == l.peer && m.nonce == l.noncePe
	case mAuth:
		var m auth
		ok = m.decode(data)
		if ok && !l.dialed {
			var want [macLen]byte
			r.handshakeMAC(want[:], 'A', l.noncePe, l.nonceMe, l.peer, r.id, l.binding)
			repeat = hmac.Equal(want[:], m.mac[:])
		}
	}
	switch {
	case !ok:
		r.stats.Malformed++
	case !repeat:
		r.stats.Unauthenticated++
	}
}

// HandleTimeout runs every timer due at now.
func (r *Router) HandleTimeout(now time.Time) {
	r.begin(now)
	now = r.now
	for _, s := range r.seeds {
		if s.dialing && !now.Before(s.deadline) {
			s.dialing = false
			r.backoff(s)
		}
		if !s.dialing && !s.dialAt.IsZero() && !now.Before(s.dialAt) {
			s.dialAt = time.Time{}
			if r.nbrs[s.addr.Node] == nil && !r.closed {
				s.dialing = true
				s.deadline = now.Add(r.cfg.HandshakeTimeout * 3)
				r.events(EventDial{Addr: s.addr})
			}
		}
	}
	for i := 0; i < len(r.links); i++ {
		l := r.links[i]
		if l.state != hsDone {
			if now.Sub(l.created) >= r.cfg.HandshakeTimeout {
				r.stats.HandshakeTimeouts++
				r.dropLink(l, true)
				i--
			} else if l.state == hsDialed && !now.Before(l.resendAt) {
				// Handshake messages may be lost (datagram links):
				// repeat hello until the answer comes.
				l.resendAt = now.Add(r.cfg.PingInterval)
				m := hello{version: r.version(), node: r.id, nonce: l.nonceMe}
				r.sendCtl(l, m.append(r.out))
			}
			continue
		}
		if l.dialed && !l.confirmed && !now.Before(l.resendAt) {
			l.resendAt = now.Add(r.cfg.PingInterval)
			var a auth
			r.handshakeMAC(a.mac[:], 'A', l.nonceMe, l.noncePe, r.id, l.peer, l.binding)
			r.sendCtl(l, a.append(r.out))
		}
		if now.Sub(l.lastRecv) >= r.cfg.DeadAfter {
			r.debug("sdn: link silent, dead", slog.Uint64("peer", uint64(l.peer)))
			r.stats.LinksDead++
			r.dropLink(l, true)
			i--
			continue
		}
		if !now.Before(l.nextPing) {
			r.sendPing(l)
		}
	}
	r.rt.timeout(now)
	r.ps.routesChanged()
	r.ps.timeout(now)
	r.kv.timeout(now)
}

// PollTimeout returns when HandleTimeout must next be called.
func (r *Router) PollTimeout() (time.Time, bool) {
	var t time.Time
	min := func(d time.Time) {
		if !d.IsZero() && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	for _, s := range r.seeds {
		if s.dialing {
			min(s.deadline)
		} else {
			min(s.dialAt)
		}
	}
	for _, l := range r.links {
		if l.state != hsDone {
			min(l.created.Add(r.cfg.HandshakeTimeout))
			if l.state == hsDialed {
				min(l.resendAt)
			}
			continue
		}
		if l.dialed && !l.confirmed {
			min(l.resendAt)
		}
		min(l.nextPing)
		min(l.lastRecv.Add(r.cfg.DeadAfter))
	}
	min(r.rt.deadline())
	min(r.ps.deadline())
	min(r.kv.deadline())
	if t.IsZero() {
		return t, false
	}
	if t.Before(r.now) {
		t = r.now
	}
	return t, true
}

// PollTransmit returns the next message to send.
func (r *Router) PollTransmit() (Transmit, bool) {
	if r.txHead == len(r.tx) {
		return Transmit{}, false
	}
	t := r.tx[r.txHead]
	r.txHead++
	return Transmit{Link: t.link, Data: r.out[t.off:t.end:t.end], Datagram: t.datagram}, true
}

// PollData returns the next data packet for a local subscriber.
func (r *Router) PollData() (Delivery, bool) {
	if r.dvHead == len(r.dv) {
		return Delivery{}, false
	}
	d := r.dv[r.dvHead]
	r.dvHead++
	return Delivery{Channel: d.ch, Seq: d.seq, Payload: r.out[d.off:d.end:d.end], Repair: d.repair}, true
}

// PollEvent returns the next control event.
func (r *Router) PollEvent() (Event, bool) {
	if r.evHead == len(r.ev) {
		if r.evHead > 0 {
			clear(r.ev)
			r.ev, r.evHead = r.ev[:0], 0
		}
		return nil, false
	}
	e := r.ev[r.evHead]
	r.ev[r.evHead] = nil
	r.evHead++
	return e, true
}

// Close leaves the overlay: the node's map entries are deleted and its
// channels ended (both sent to the neighbours), and no new link is made.
// Drain the polls, give the messages a moment to leave, then close links.
func (r *Router) Close(now time.Time) {
	r.begin(now)
	r.kv.leave()
	r.ps.leave()
	r.closed = true
	for _, s := range r.seeds {
		s.dialAt = time.Time{}
	}
}

// begin advances the clock and recycles the output buffer when drained.
func (r *Router) begin(now time.Time) {
	if now.After(r.now) {
		r.now = now
	}
	if r.txHead == len(r.tx) && r.dvHead == len(r.dv) {
		r.out, r.tx, r.dv = r.out[:0], r.tx[:0], r.dv[:0]
		r.txHead, r.dvHead = 0, 0
	}
}

func (r *Router) events(e Event) { r.ev = append(r.ev, e) }

// logCtx is only for slog's signature: the Router has no context.
var logCtx = context.Background()

// debug logs rare lifecycle events when the logger wants them.
func (r *Router) debug(msg string, attrs ...slog.Attr) {
	if r.cfg.Logger.Enabled(logCtx, slog.LevelDebug) {
		r.cfg.Logger.LogAttrs(logCtx, slog.LevelDebug, msg, append(attrs, slog.Uint64("node", uint64(r.id)))...)
	}
}

// sendCtl queues the message that was just appended at the end of r.out
// (b is r.out extended by it).
func (r *Router) sendCtl(l *link, b []byte) {
	off := len(r.out)
	r.out = b
	r.tx = append(r.tx, txRec{link: l.id, off: off, end: len(b)})
}

// queue sends r.out[off:end] on l (several links may share one copy).
func (r *Router) queue(l *link, off, end int, datagram bool) {
	r.tx = append(r.tx, txRec{link: l.id, off: off, end: end, datagram: datagram})
}

func (r *Router) fillNonce(n *[nonceLen]byte) {
	binary.BigEndian.PutUint64(n[:8], r.rng.Uint64())
	binary.BigEndian.PutUint64(n[8:], r.rng.Uint64())
}

func (r *Router) seedFor(n NodeID) *seed {
	for _, s := range r.seeds {
		if s.addr.Node == n {
			return s
		}
	}
	return nil
}

func (r *Router) backoff(s *seed) {
	if r.closed {
		return
	}
	jit := time.Duration(r.rng.Int64N(int64(s.backoff)/2 + 1))
	s.dialAt = r.now.Add(s.backoff + jit)
	s.backoff = min(s.backoff*2, r.cfg.DialBackoffMax)
}

// handshake runs the authenticated handshake:
//
//	dialer → listener  hello{node A, nonce a}
//	listener → dialer  helloAck{node B, nonce b, HMAC(secret, "B"‖a‖b‖A‖B‖binding)}
//	dialer → listener  auth{HMAC(secret, "A"‖a‖b‖A‖B‖binding)}
//
// Each side proves the secret over both fresh nonces, so neither a replay
// nor a node without the secret gets through; a failure closes the link
// and is counted.
func (r *Router) handshake(l *link, t msgType, data []byte) {
	switch {
	case t == mHello && l.state == hsListen:
		var m hello
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		if m.version != r.version() || m.node == 0 || m.node == r.id {
			r.refuse(l)
			return
		}
		l.peer = m.node
		l.noncePe = m.nonce
		ack := helloAck{node: r.id, nonce: l.nonceMe}
		r.handshakeMAC(ack.mac[:], 'B', l.noncePe, l.nonceMe, l.peer, r.id, l.binding)
		l.state = hsAcked
		r.sendCtl(l, ack.append(r.out))
	case t == mHelloAck && l.state == hsDialed:
		var m helloAck
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		var want [macLen]byte
		r.handshakeMAC(want[:], 'B', l.nonceMe, m.nonce, r.id, m.node, l.binding)
		if !hmac.Equal(want[:], m.mac[:]) || m.node == 0 || m.node == r.id || (l.expect != 0 && m.node != l.expect) {
			r.refuse(l)
			return
		}
		l.peer = m.node
		l.noncePe = m.nonce
		var a auth
		r.handshakeMAC(a.mac[:], 'A', l.nonceMe, l.noncePe, r.id, l.peer, l.binding)
		r.sendCtl(l, a.append(r.out))
		r.authenticated(l)
	case t == mAuth && l.state == hsAcked:
		var m auth
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		var want [macLen]byte
		r.handshakeMAC(want[:], 'A', l.noncePe, l.nonceMe, l.peer, r.id, l.binding)
		if !hmac.Equal(want[:], m.mac[:]) {
			r.refuse(l)
			return
		}
		r.authenticated(l)
	case t == mHello && l.state == hsAcked:
		var m hello
		if !m.decode(data) {
			r.stats.Malformed++
			return
		}
		if m.node != l.peer || m.nonce != l.noncePe {
			r.stats.Unauthenticated++
			return
		}
		ack := helloAck{node: r.id, nonce: l.nonceMe}
		r.handshakeMAC(ack.mac[:], 'B', l.noncePe, l.nonceMe, l.peer, r.id, l.binding)
		r.sendCtl(l, ack.append(r.out))
	default:
		r.stats.Unauthenticated++
	}
}

// version is the protocol version a hello carries, with the routing mode.
func (r *Router) version() uint8 {
	if r.cfg.FlatRoutes {
		return protoVersion | flatVersion
	}
	return protoVersion
}

func (r *Router) refuse(l *link) {
	r.debug("sdn: handshake refused", slog.Uint64("link", uint64(l.id)), slog.Uint64("peer", uint64(l.peer)))
	r.stats.AuthFailures++
	r.dropLink(l, true)
}

func (r *Router) handshakeMAC(dst []byte, role byte, na, nb [nonceLen]byte, a, b NodeID, binding []byte) {
	m := r.mac
	m.Reset()
	r.tmp = append(r.tmp[:0], "sansrtc-sdn-1"...)
	r.tmp = append(r.tmp, role)
	r.tmp = append(r.tmp, na[:]...)
	r.tmp = append(r.tmp, nb[:]...)
	r.tmp = put32(r.tmp, uint32(a))
	r.tmp = put32(r.tmp, uint32(b))
	r.tmp = append(r.tmp, binding...)
	m.Write(r.tmp)
	copy(dst, m.Sum(r.tmp[:0]))
}

// authenticated makes l the link to its peer. Of two links to the same
// peer the one dialed by the lower id wins, or the newer if both were
// dialed by the same side, so both ends keep the same one.
func (r *Router) authenticated(l *link) {
	l.state = hsDone
	l.lastRecv = r.now
	l.nextPing = r.now
	l.confirmed = !l.dialed
	l.resendAt = r.now.Add(r.cfg.PingInterval)
	if old := r.nbrs[l.peer]; old != nil {
		oldLow := (old.dialed && r.id < l.peer) || (!old.dialed && l.peer < r.id)
		newLow := (l.dialed && r.id < l.peer) || (!l.dialed && l.peer < r.id)
		if oldLow && !newLow {
			r.dropLink(l, true)
			return
		}
		r.dropLink(old, true)
	}
	r.nbrs[l.peer] = l
	r.linkV++
	if s := r.seedFor(l.peer); s != nil {
		s.backoff = r.cfg.DialBackoffMin
		s.dialAt = time.Time{}
	}
	r.debug("sdn: neighbour up", slog.Uint64("peer", uint64(l.peer)), slog.Uint64("link", uint64(l.id)))
	r.events(EventNeighbourUp{Node: l.peer, Link: l.id})
	r.sendPing(l)
	r.rt.neighbourUp(l)
	r.kv.neighbourUp(l)
}

// dropLink forgets l; close asks the driver to close it.
func (r *Router) dropLink(l *link, close bool) {
	i := slices.Index(r.links, l)
	if i < 0 {
		return
	}
	r.links = slices.Delete(r.links, i, i+1)
	delete(r.byID, l.id)
	if close {
		r.events(EventClose{Link: l.id})
	}
	if l.state == hsDone && r.nbrs[l.peer] == l {
		delete(r.nbrs, l.peer)
		r.linkV++
		r.debug("sdn: neighbour down", slog.Uint64("peer", uint64(l.peer)), slog.Uint64("link", uint64(l.id)))
		r.events(EventNeighbourDown{Node: l.peer})
		r.rt.neighbourDown(l.peer)
		r.ps.neighbourDown(l.peer)
		if s := r.seedFor(l.peer); s != nil && !s.dialing {
			r.backoff(s)
		}
	} else if l.dialed {
		if s := r.seedFor(l.expect); s != nil && r.nbrs[l.expect] == nil && !s.dialing {
			r.backoff(s)
		}
	}
}

func (r *Router) sendPing(l *link) {
	l.pingSeq++
	l.pings[l.pingSeq%uint32(len(l.pings))] = pingRec{seq: l.pingSeq, sent: r.now}
	jit := time.Duration(r.rng.Int64N(int64(r.cfg.PingInterval)/8 + 1))
	l.nextPing = r.now.Add(r.cfg.PingInterval - r.cfg.PingInterval/16 + jit)
	m := ping{seq: l.pingSeq, sent: r.now.UnixNano()}
	r.sendCtl(l, m.append(r.out))
	r.measure(l)
}

func (r *Router) handlePing(l *link, m *ping) {
	if !m.pong {
		m.pong = true
		r.sendCtl(l, m.append(r.out))
		return
	}
	p := &l.pings[m.seq%uint32(len(l.pings))]
	if p.seq != m.seq || p.acked || p.sent.UnixNano() != m.sent {
		return
	}
	p.acked = true
	rtt := r.now.Sub(p.sent)
	if l.srtt == 0 {
		l.srtt = rtt
	} else {
		l.srtt += (rtt - l.srtt) / 8
	}
	r.measure(l)
}

// measure recomputes loss and cost and republishes the cost when it moved
// by more than 10 %.
func (r *Router) measure(l *link) {
	if l.srtt == 0 {
		return
	}
	settle := max(time.Second, 4*l.srtt)
	var n, lost int
	for _, p := range l.pings {
		if p.seq == 0 {
			continue
		}
		if p.acked {
			n++
		} else if r.now.Sub(p.sent) > settle {
			n++
			lost++
		}
	}
	if n < 5 {
		return // too few pings to judge the loss yet
	}
	l.loss = float64(lost) / float64(n)
	c := float64(l.srtt.Microseconds())*(1+r.cfg.LossWeight*l.loss) + float64(r.cfg.HopPenalty.Microseconds())
	c = max(1, min(c, 1e9))
	nc := uint32(c)
	if l.cost == 0 || nc > l.cost+l.cost/10 || nc < l.cost-l.cost/10 {
		l.cost = nc
		r.rt.costChanged(l)
	}
}
