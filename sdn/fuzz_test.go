package sdn

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// roundTrip fuzzes one decoder: it never panics, and what it accepts
// re-encodes to the same bytes (so nothing is silently misread).
func roundTrip[M any](f *testing.F, seeds [][]byte, decode func(*M, []byte) bool, encode func(*M, []byte) []byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var m M
		if !decode(&m, p) {
			return
		}
		if encode == nil {
			return
		}
		if q := encode(&m, nil); !bytes.Equal(p, q) {
			t.Fatalf("round trip:\n in %x\nout %x", p, q)
		}
	})
}

func FuzzHello(f *testing.F) {
	m := hello{version: 1, node: 5}
	roundTrip(f, [][]byte{m.append(nil)}, (*hello).decode, (*hello).append)
}

func FuzzHelloAck(f *testing.F) {
	m := helloAck{node: 5}
	roundTrip(f, [][]byte{m.append(nil)}, (*helloAck).decode, (*helloAck).append)
}

func FuzzAuth(f *testing.F) {
	var m auth
	roundTrip(f, [][]byte{m.append(nil)}, (*auth).decode, (*auth).append)
}

func FuzzPing(f *testing.F) {
	m := ping{seq: 3, sent: 99}
	p := ping{pong: true, seq: 3, sent: 99}
	roundTrip(f, [][]byte{m.append(nil), p.append(nil)}, (*ping).decode, (*ping).append)
}

func FuzzRouteUpdate(f *testing.F) {
	b := []byte{byte(mRoute), 0, 3}
	b = appendRouteEnt(b, routeEnt{key: nodeKey(9), seqno: 1, metric: 100, floor: 90, path: []byte{0, 0, 0, 9}}, 5)
	b = appendRouteEnt(b, routeEnt{key: zoneKey(2), seqno: 7, metric: infMetric, floor: infMetric}, 0)
	b = appendRouteEnt(b, routeEnt{key: zoneKey(3), seqno: 2, metric: 10}, 7)
	roundTrip(f, [][]byte{b}, (*routeUpdate).decode, func(m *routeUpdate, b []byte) []byte {
		b = append(b, byte(mRoute), byte(m.n>>8), byte(m.n))
		var e routeEnt
		for m.next(&e) {
			b = appendRouteEnt(b, e, 0)
		}
		return b
	})
}

func FuzzSeqReq(f *testing.F) {
	m := seqReq{key: zoneKey(3), seqno: 4, hops: 2}
	roundTrip(f, [][]byte{m.append(nil)}, (*seqReq).decode, (*seqReq).append)
}

func FuzzChanMsg(f *testing.F) {
	var seeds [][]byte
	for _, m := range []chanMsg{
		{t: mSub, ch: 1, source: 2, min: 3, max: 4},
		{t: mSubAck, ch: 1, flag: true, path: []byte{0, 0, 0, 1, 0, 0, 0, 2}},
		{t: mUnsub, ch: 1}, {t: mEnd, ch: 1}, {t: mMoved, ch: 1},
		{t: mFeedback, ch: 1, flag: true, min: 5, max: 6},
	} {
		seeds = append(seeds, m.append(nil))
	}
	roundTrip(f, seeds, (*chanMsg).decode, (*chanMsg).append)
}

func FuzzRdv(f *testing.F) {
	a := rdv{src: 1, ttl: 3, kind: rdvAnnounce, ch: 9, source: 1}
	l := rdv{dst: 0, src: 2, ttl: 3, kind: rdvLookup, ch: 9}
	roundTrip(f, [][]byte{a.append(nil), l.append(nil)}, (*rdv).decode, (*rdv).append)
}

func FuzzData(f *testing.F) {
	f.Add(append(appendDataHdr(nil, 1, 2), "payload"...))
	f.Fuzz(func(t *testing.T, p []byte) {
		ch, seq, payload, ok := decodeData(p)
		if !ok {
			return
		}
		if q := append(appendDataHdr(nil, ch, seq), payload...); !bytes.Equal(p, q) {
			t.Fatalf("round trip %x %x", p, q)
		}
	})
}

func FuzzDigest(f *testing.F) {
	b := []byte{byte(mDigest), 0, 1}
	b = appendDigestEnt(b, digestEnt{owner: 3, version: 4, ageMs: 5})
	roundTrip(f, [][]byte{b}, (*digest).decode, func(m *digest, b []byte) []byte {
		b = append(b, byte(mDigest), byte(m.n>>8), byte(m.n))
		for i := range m.n {
			b = appendDigestEnt(b, m.ent(i))
		}
		return b
	})
}

func FuzzOwner(f *testing.F) {
	b := appendOwnerHdr(nil, digestEnt{owner: 3, version: 4, ageMs: 5}, 2)
	b = appendOwnerEnt(b, "m", "k", []byte("v"))
	b = appendOwnerEnt(b, "m", "k2", nil)
	roundTrip(f, [][]byte{b}, (*ownerMsg).decode, func(m *ownerMsg, b []byte) []byte {
		b = appendOwnerHdr(b, m.digestEnt, m.n)
		it := ownerIter{r: reader{b: m.ents}}
		for range m.n {
			name, key, value := it.next()
			b = appendOwnerEnt(b, string(name), string(key), value)
		}
		return b
	})
}

// pair returns two Routers joined by an authenticated link 1.
func pair(tb testing.TB) (a, b *Router) {
	a, _ = New(Config{ID: 1, Secret: []byte("s")}, epoch)
	b, _ = New(Config{ID: 2, Secret: []byte("s")}, epoch)
	a.HandleLinkUp(epoch, 1, LinkInfo{Dialed: true, Peer: 2})
	b.HandleLinkUp(epoch, 1, LinkInfo{})
	for range 10 {
		for t, ok := a.PollTransmit(); ok; t, ok = a.PollTransmit() {
			b.HandleMessage(epoch, 1, bytes.Clone(t.Data))
		}
		for t, ok := b.PollTransmit(); ok; t, ok = b.PollTransmit() {
			a.HandleMessage(epoch, 1, bytes.Clone(t.Data))
		}
	}
	if a.nbrs[2] == nil || b.nbrs[1] == nil {
		tb.Fatal("pair did not authenticate")
	}
	return a, b
}

// FuzzRouterSequence feeds a sequence of messages (each prefixed by a
// length byte) to a Router that publishes, subscribes and holds map
// entries, with timeouts in between, so stateful paths are explored:
// nothing panics and the Router keeps answering.
func FuzzRouterSequence(f *testing.F) {
	seq := func(msgs ...[]byte) []byte {
		var b []byte
		for _, m := range msgs {
			b = append(b, byte(len(m)))
			b = append(b, m...)
		}
		return b
	}
	f.Add(seq((&chanMsg{t: mSub, ch: 1, source: 2}).append(nil), append(appendDataHdr(nil, 1, 5), 9)))
	f.Add(seq((&chanMsg{t: mSubAck, ch: 2, flag: true, path: []byte{0, 0, 0, 1}}).append(nil), (&chanMsg{t: mEnd, ch: 2}).append(nil)))
	f.Add(seq(appendOwnerEnt(appendOwnerHdr(nil, digestEnt{owner: 1, version: 9}, 1), "m", "k", nil), []byte{byte(mDigest), 0, 0}))
	f.Add(seq((&rdv{src: 1, ttl: 2, kind: rdvReply, ch: 2, source: 1}).append(nil), (&seqReq{key: nodeKey(2), seqno: 5, hops: 1}).append(nil)))
	f.Fuzz(func(t *testing.T, p []byte) {
		_, b := pair(t)
		now := epoch.Add(time.Millisecond)
		_ = b.Publish(now, 1)
		_ = b.Subscribe(now, 2)
		_ = b.MapSet(now, "m", "k", []byte("v"))
		b.SubscribeMap(now, "m")
		for len(p) > 0 {
			n := min(int(p[0]), len(p)-1)
			msg := p[1 : 1+n]
			p = p[1+n:]
			now = now.Add(50 * time.Millisecond)
			b.HandleMessage(now, 1, msg)
			_ = b.Send(now, 1, msg)
			b.HandleTimeout(now)
			for _, ok := b.PollTransmit(); ok; _, ok = b.PollTransmit() {
			}
			for _, ok := b.PollData(); ok; _, ok = b.PollData() {
			}
			for _, ok := b.PollEvent(); ok; _, ok = b.PollEvent() {
			}
		}
		if _, ok := b.PollTimeout(); !ok {
			t.Fatal("no timeout")
		}
	})
}

// FuzzRouter feeds arbitrary messages to a Router on an authenticated and
// on an unauthenticated link: it never panics, and every message that
// does not decode is counted as malformed (or unauthenticated).
func FuzzRouter(f *testing.F) {
	f.Add([]byte{byte(mRoute), 0, 1, 0, 0, 0, 0, 9, 0, 1, 0, 0, 0, 1})
	f.Add(append(appendDataHdr(nil, 1, 2), 1, 2, 3))
	f.Add(append(appendChanPayload(nil, mRepair, 1), 1, 2, 3))
	f.Add(append(appendChanPayload(nil, mUp, 1), 0, 5, 0, 1))
	f.Add((&chanMsg{t: mSub, ch: 1, source: 1}).append(nil))
	f.Add([]byte{byte(mOwner), 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 'm', 1, 'k', 0, 1, 'v'})
	f.Add([]byte{byte(mDigest), 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1})
	f.Add([]byte{byte(mHello), 1, 0, 0, 0, 7})
	f.Add((&rdv{src: 1, ttl: 3, kind: rdvLookup, ch: 9}).append(nil))
	f.Add((&hello{version: protoVersion, node: 1}).append(nil))
	f.Add((&helloAck{node: 2}).append(nil))
	f.Add((&auth{}).append(nil))
	f.Fuzz(func(t *testing.T, p []byte) {
		// Both ends of an authenticated link: the dialer a and the
		// listener b.
		a, b := pair(t)
		for _, r := range []*Router{a, b} {
			before := r.Stats()
			r.HandleMessage(epoch.Add(time.Millisecond), 1, p)
			after := r.Stats()
			if !decodes(p) && after.Malformed+after.Unauthenticated == before.Malformed+before.Unauthenticated {
				t.Fatalf("node %d: undecodable %x not counted", r.id, p)
			}
			if r.nbrs[3-r.id] == nil {
				t.Fatalf("node %d: one message on an authenticated link dropped the link: %x", r.id, p)
			}
			r.HandleTimeout(epoch.Add(time.Second))
			for _, ok := r.PollTransmit(); ok; _, ok = r.PollTransmit() {
			}
			for _, ok := r.PollEvent(); ok; _, ok = r.PollEvent() {
			}
		}
		// Unauthenticated link: only the handshake gets through, and
		// nothing else changes the Router.
		b.HandleLinkUp(epoch, 2, LinkInfo{})
		before, routes := b.Stats(), len(b.Routes())
		b.HandleMessage(epoch, 2, p)
		after := b.Stats()
		if len(p) > 0 && msgType(p[0]) > mAuth && after == before {
			t.Fatalf("message %x on an unauthenticated link not counted", p)
		}
		if len(b.Routes()) != routes {
			t.Fatalf("message %x on an unauthenticated link changed the routes", p)
		}
	})
}

func decodes(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch msgType(p[0]) {
	case mPing, mPong:
		var m ping
		return m.decode(p)
	case mRoute:
		var m routeUpdate
		return m.decode(p)
	case mSeqReq:
		var m seqReq
		return m.decode(p)
	case mData:
		_, _, _, ok := decodeData(p)
		return ok
	case mRepair, mUp:
		_, _, ok := decodeChanPayload(p)
		return ok
	case mSub, mSubAck, mUnsub, mEnd, mFeedback, mMoved:
		var m chanMsg
		return m.decode(p)
	case mDigest:
		var m digest
		return m.decode(p)
	case mRdv:
		var m rdv
		return m.decode(p)
	case mOwner:
		var m ownerMsg
		return m.decode(p)
	case mMapSync, mMapWant, mMapPut, mMapDigest:
		var m mapMsg
		return m.decode(p)
	case mHello:
		var m hello
		return m.decode(p)
	case mHelloAck:
		var m helloAck
		return m.decode(p)
	case mAuth:
		var m auth
		return m.decode(p)
	}
	return false
}

// mapMsgSeeds are one valid message of each scoped-map type, for map
// "r:m": a sync, a want, a full put, a delta put and a digest.
func mapMsgSeeds() [][]byte {
	ent := appendMapEnt(nil, "k", []byte("v"), false)
	del := appendMapEnt(nil, "gone", nil, true)
	sync := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7}
	dig := appendDigestEnt(nil, digestEnt{owner: 1, version: 7, ageMs: 3})
	var out [][]byte
	for _, m := range []mapMsg{
		{t: mMapSync, src: 1, ttl: 9, name: []byte("r:m"), flags: syncSub | syncWriter, ver: 5, n: 1, ents: sync},
		{t: mMapWant, dst: 2, src: 1, ttl: 9, delayMs: 4, name: []byte("r:m"), ver: 5},
		{t: mMapPut, src: 1, ttl: 9, name: []byte("r:m"), owner: 1, ver: 5, full: true, parts: 1, n: 1, ents: ent},
		{t: mMapPut, dst: 2, src: 1, ttl: 9, name: []byte("r:m"), owner: 3, ver: 6, base: 5, ageMs: 10, parts: 1, n: 2, ents: append(ent, del...)},
		{t: mMapDigest, dst: 2, src: 1, ttl: 9, name: []byte("r:m"), n: 1, ents: dig},
	} {
		out = append(out, m.append(nil))
	}
	return out
}

func FuzzMapMsg(f *testing.F) {
	roundTrip(f, mapMsgSeeds(), (*mapMsg).decode, (*mapMsg).append)
}

// FuzzScopedSequence feeds a sequence of messages (each prefixed by a
// two-byte length) to a Router that writes and subscribes to a scoped
// map, with timeouts in between: nothing panics, and the count of stored
// entries that MaxScopedEntries bounds stays exact.
func FuzzScopedSequence(f *testing.F) {
	seq := func(msgs ...[]byte) []byte {
		var b []byte
		for _, m := range msgs {
			b = append(b, byte(len(m)>>8), byte(len(m)))
			b = append(b, m...)
		}
		return b
	}
	s := mapMsgSeeds()
	f.Add(seq(s...))
	f.Add(seq(s[2], s[3], s[4], s[0]))
	part := func(part, parts uint16) []byte {
		m := mapMsg{t: mMapPut, dst: 2, src: 1, ttl: 9, name: []byte("r:m"), owner: 3, ver: 9, full: true, part: part, parts: parts, n: 1,
			ents: appendMapEnt(nil, fmt.Sprint("k", part), []byte("v"), false)}
		return m.append(nil)
	}
	f.Add(seq(part(0, 3), part(2, 3), part(2, 3), part(1, 3), s[3]))
	f.Fuzz(func(t *testing.T, p []byte) {
		_, b := pair(t)
		b.cfg.MaxScopedEntries = 8
		now := epoch.Add(time.Millisecond)
		_ = b.MapSet(now, "r:m", "k", []byte("v"))
		b.SubscribeMap(now, "r:m")
		b.SubscribeMap(now, "r:n")
		for len(p) >= 2 {
			n := min(int(p[0])<<8|int(p[1]), len(p)-2)
			msg := p[2 : 2+n]
			p = p[2+n:]
			now = now.Add(100 * time.Millisecond)
			b.HandleMessage(now, 1, msg)
			b.HandleTimeout(now)
			for _, ok := b.PollTransmit(); ok; _, ok = b.PollTransmit() {
			}
			for _, ok := b.PollEvent(); ok; _, ok = b.PollEvent() {
			}
			stored := 0
			for _, s := range b.kv.sc.list {
				for _, o := range s.owners {
					stored += len(o.ents)
					if o.stage != nil {
						stored += len(o.stage.ents)
					}
				}
			}
			if stored != b.kv.sc.nents || stored > b.cfg.MaxScopedEntries {
				t.Fatalf("%d entries stored, counted %d (bound %d)", stored, b.kv.sc.nents, b.cfg.MaxScopedEntries)
			}
		}
		b.UnsubscribeMap("r:n")
		b.Close(now)
		b.HandleTimeout(now.Add(time.Minute))
	})
}
