package udp

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Class is a datagram's protocol by its first byte (RFC 7983 section 7).
type Class uint8

// Datagram classes.
const (
	ClassUnknown Class = iota
	ClassSTUN          // 0-3
	ClassDTLS          // 20-63
	ClassRTP           // 128-191: RTP and RTCP (told apart by the session)
)

// Classify returns the class of a datagram from its first byte.
func Classify(b []byte) Class {
	if len(b) == 0 {
		return ClassUnknown
	}
	switch c := b[0]; {
	case c < 4:
		return ClassSTUN
	case c >= 20 && c < 64:
		return ClassDTLS
	case c >= 128 && c < 192:
		return ClassRTP
	}
	return ClassUnknown
}

// LocalUfrag returns the local part of a STUN Binding request's USERNAME
// ("local:remote"), without allocating, and false if b is not such a
// request. It does not authenticate: the session does that.
func LocalUfrag(b []byte) ([]byte, bool) {
	if len(b) < 20 || b[0] != 0 || b[1] != 1 || binary.BigEndian.Uint32(b[4:8]) != 0x2112A442 ||
		int(binary.BigEndian.Uint16(b[2:4]))+20 != len(b) {
		return nil, false
	}
	for off := 20; off+4 <= len(b); {
		typ := binary.BigEndian.Uint16(b[off:])
		n := int(binary.BigEndian.Uint16(b[off+2:]))
		if off+4+n > len(b) {
			return nil, false
		}
		if typ == 0x0006 {
			u := b[off+4 : off+4+n]
			for i, c := range u {
				if c == ':' {
					return u[:i], i > 0
				}
			}
			return nil, false
		}
		off += 4 + (n+3)&^3
	}
	return nil, false
}

// DemuxStats counts the demux's decisions.
type DemuxStats struct {
	// Delivered counts datagrams handed to a handler.
	Delivered uint64
	// Bound counts remote addresses bound (or rebound) to a handler by
	// STUN, and ICE-TCP connections bound by their first frame.
	Bound uint64
	// Unknown counts datagrams from unbound addresses (and first frames
	// of ICE-TCP connections) that were not a STUN Binding request for a
	// registered ufrag or that the handler refused, and Binding requests
	// from a bound address that the other registration they name refused.
	Unknown uint64
}

// maxAddrsPerHandler bounds how many remote addresses, and separately how
// many ICE-TCP connections, one registration may have bound (a peer's
// candidate pairs); past it the oldest address is unbound, the oldest
// connection closed.
const maxAddrsPerHandler = 8

// entry is one registration: a ufrag, its handler, and what is bound to it.
// addrs and conns are guarded by Demux.mu.
type entry struct {
	ufrag string
	h     Handler
	addrs []netip.AddrPort
	conns []*tcpConn
}

// Demux routes datagrams to sessions: by remote address once bound, and by
// the STUN USERNAME's local ufrag for new addresses. It is safe for
// concurrent use: Register/Unregister from any goroutine, Dispatch from
// read loops (sharing a read lock).
//
// A STUN Binding request from a bound address whose USERNAME names the
// ufrag of another registration goes to that registration's handler, and
// if it authenticates there the address is rebound to it: a client that
// multiplexes several PeerConnections over one port, or a NAT mapping
// reused within a session's consent timeout, reaches its new session.
// Everything else from a bound address (media, DTLS, STUN for the bound
// registration or for no registration) goes to the bound handler without
// a ufrag lookup.
type Demux struct {
	mu                        sync.RWMutex
	byAddr                    map[netip.AddrPort]*entry
	byUfrag                   map[string]*entry
	delivered, bound, unknown atomic.Uint64
}

// NewDemux returns an empty demux.
func NewDemux() *Demux {
	return &Demux{byAddr: map[netip.AddrPort]*entry{}, byUfrag: map[string]*entry{}}
}

// Register routes STUN requests for ufrag (our local ICE ufrag) to h,
// replacing any handler registered under it (whose addresses are unbound
// and ICE-TCP connections closed).
func (d *Demux) Register(ufrag string, h Handler) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.byUfrag[ufrag]; old != nil {
		d.unbindLocked(old)
	}
	d.byUfrag[ufrag] = &entry{ufrag: ufrag, h: h}
}

// Unregister forgets ufrag, unbinds every address bound under it and
// closes every ICE-TCP connection bound under it, so nothing reaches its
// handler any more and a TCP peer sees its connection end.
func (d *Demux) Unregister(ufrag string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.byUfrag[ufrag]; e != nil {
		d.unbindLocked(e)
		delete(d.byUfrag, ufrag)
	}
}

func (d *Demux) unbindLocked(e *entry) {
	for _, a := range e.addrs {
		if d.byAddr[a] == e {
			delete(d.byAddr, a)
		}
	}
	e.addrs = nil
	for _, c := range e.conns {
		c.entry = nil
		c.close()
	}
	e.conns = nil
}

// Stats returns the counters.
func (d *Demux) Stats() DemuxStats {
	return DemuxStats{Delivered: d.delivered.Load(), Bound: d.bound.Load(), Unknown: d.unknown.Load()}
}

// Dispatch hands one datagram to its session. from must be unmapped
// (IPv4 as 4-byte addresses). It returns the handler's verdict on binding,
// or false when no handler took the datagram.
func (d *Demux) Dispatch(now time.Time, from netip.AddrPort, w Writer, b []byte) bool {
	d.mu.RLock()
	e := d.byAddr[from]
	d.mu.RUnlock()
	if e != nil {
		if len(b) == 0 || b[0] >= 4 { // not STUN: the hot path
			d.delivered.Add(1)
			return e.h.HandleDatagram(now, from, w, b)
		}
		other := d.otherRegistration(e, b)
		if other == nil {
			d.delivered.Add(1)
			return e.h.HandleDatagram(now, from, w, b)
		}
		e = other
	} else {
		uf, ok := LocalUfrag(b)
		if !ok {
			d.unknown.Add(1)
			return false
		}
		d.mu.RLock()
		e = d.byUfrag[string(uf)] // no allocation: map lookup by converted []byte
		d.mu.RUnlock()
		if e == nil {
			d.unknown.Add(1)
			return false
		}
	}
	if !e.h.HandleDatagram(now, from, w, b) {
		d.unknown.Add(1)
		return false
	}
	d.mu.Lock()
	if d.byUfrag[e.ufrag] == e {
		d.bindLocked(e, from)
	}
	d.mu.Unlock()
	d.delivered.Add(1)
	d.bound.Add(1)
	return true
}

// otherRegistration returns the registration named by the local ufrag of
// a STUN Binding request b from an address bound to e, when that is not
// e; nil otherwise (b is no Binding request, names e, or names nothing
// registered).
func (d *Demux) otherRegistration(e *entry, b []byte) *entry {
	uf, ok := LocalUfrag(b)
	if !ok || string(uf) == e.ufrag { // comparison does not allocate
		return nil
	}
	d.mu.RLock()
	other := d.byUfrag[string(uf)]
	d.mu.RUnlock()
	if other == e {
		return nil
	}
	return other
}

// bindLocked binds from to e, taking it from any other registration.
func (d *Demux) bindLocked(e *entry, from netip.AddrPort) {
	cur := d.byAddr[from]
	if cur == e {
		return
	}
	if cur != nil {
		for i, a := range cur.addrs {
			if a == from {
				cur.addrs = append(cur.addrs[:i], cur.addrs[i+1:]...)
				break
			}
		}
	}
	if len(e.addrs) >= maxAddrsPerHandler {
		if d.byAddr[e.addrs[0]] == e {
			delete(d.byAddr, e.addrs[0])
		}
		e.addrs = append(e.addrs[:0], e.addrs[1:]...)
	}
	e.addrs = append(e.addrs, from)
	d.byAddr[from] = e
}

// dispatchConn handles the first frame of an ICE-TCP connection: like a
// datagram from an unbound address, it must be a Binding request for a
// registered ufrag that the handler authenticates. Then the connection is
// bound to that registration (and closed when it goes away) and its
// handler returned.
func (d *Demux) dispatchConn(now time.Time, c *tcpConn, b []byte) (Handler, bool) {
	uf, ok := LocalUfrag(b)
	if !ok {
		d.unknown.Add(1)
		return nil, false
	}
	d.mu.RLock()
	e := d.byUfrag[string(uf)]
	d.mu.RUnlock()
	if e == nil || !e.h.HandleDatagram(now, c.remote, c, b) {
		d.unknown.Add(1)
		return nil, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byUfrag[e.ufrag] != e {
		// Unregistered while the handler answered.
		d.unknown.Add(1)
		return nil, false
	}
	if len(e.conns) >= maxAddrsPerHandler {
		old := e.conns[0]
		e.conns = append(e.conns[:0], e.conns[1:]...)
		old.entry = nil
		old.close()
	}
	e.conns = append(e.conns, c)
	c.entry = e
	d.delivered.Add(1)
	d.bound.Add(1)
	return e.h, true
}

// unbindConn forgets a closed ICE-TCP connection.
func (d *Demux) unbindConn(c *tcpConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := c.entry
	if e == nil {
		return
	}
	c.entry = nil
	for i, x := range e.conns {
		if x == c {
			e.conns = append(e.conns[:i], e.conns[i+1:]...)
			break
		}
	}
}

// Lookup returns the handler registered under ufrag.
func (d *Demux) Lookup(ufrag []byte) (Handler, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e := d.byUfrag[string(ufrag)]
	if e == nil {
		return nil, false
	}
	return e.h, true
}
