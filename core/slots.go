package core

import (
	"errors"
	"time"

	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/track"
)

// Slot is a fixed outgoing media section of an endpoint, such as one
// m-line of a WHEP viewer's answer: one SSRC that shows one track of the
// room at a time. With slots the node, not the peer, chooses what the
// peer receives ("follow the room"): each slot shows a track of its kind
// in a codec it accepts, never one of the endpoint's ExcludePeer; the
// newest such track no other slot of the endpoint shows; and when that
// track goes away (withdrawn, its publisher gone, here or on another
// node) the slot moves to the next candidate, keeping its SSRC and
// continuous numbering, or waits for one.
type Slot struct {
	SSRC uint32
	Kind track.Kind
	// PayloadTypes maps every codec the peer accepts on this section to
	// its payload type there.
	PayloadTypes map[track.Codec]uint8
	// RTXSSRC is the section's retransmission SSRC and RTXPayloadTypes
	// the RTX payload type of each codec that has one: retransmissions go
	// as RTX where the peer negotiated it.
	RTXSSRC         uint32
	RTXPayloadTypes map[track.Codec]uint8
}

// ErrNoSlots is returned by StartSlots for an endpoint created without
// slots.
var ErrNoSlots = errors.New("core: endpoint has no slots")

type slotState struct {
	Slot
	cur  endpoint.SubKey // zero: empty
	gone bool            // cur's source was withdrawn; another may replace it
}

// viewer is the slot state of an endpoint created with slots.
type viewer struct {
	exclude string
	ready   bool
	slots   []slotState
	queued  bool // in Node.refill
}

// StartSlots starts filling the endpoint's slots: the driver calls it once
// the peer can receive (for WebRTC, when DTLS is done), so no media is
// sent before it can be decrypted. From then on the slots follow the room.
func (n *Node) StartSlots(now time.Time, h Handle) error {
	now = n.clock(now)
	s := n.slot(h)
	if s == nil {
		return ErrUnknownEndpoint
	}
	if s.view == nil {
		return ErrNoSlots
	}
	s.view.ready = true
	n.queueRefill(h, s)
	n.drainNotices(now)
	return nil
}

// SlotTrack is the track slot i of the endpoint shows (zero: none).
func (n *Node) SlotTrack(h Handle, i int) (endpoint.SubKey, bool) {
	s := n.slot(h)
	if s == nil || s.view == nil || i < 0 || i >= len(s.view.slots) {
		return endpoint.SubKey{}, false
	}
	st := s.view.slots[i]
	return st.cur, st.cur != (endpoint.SubKey{}) && !st.gone
}

func (n *Node) queueRefill(h Handle, s *slot) {
	if s.view != nil && s.view.ready && !s.view.queued {
		s.view.queued = true
		n.refill = append(n.refill, h)
	}
}

// slotEvent keeps a viewer's slot state in step with its events.
func (n *Node) slotEvent(h Handle, s *slot, e endpoint.Event) {
	switch e := e.(type) {
	case endpoint.TrackPublished:
		n.queueRefill(h, s)
	case endpoint.SubscriptionChanged:
		for i := range s.view.slots {
			st := &s.view.slots[i]
			if st.cur != e.Key {
				continue
			}
			switch e.State {
			case endpoint.SubscriptionSourceGone:
				st.gone = true
			case endpoint.SubscriptionActive:
				st.gone = false
			case endpoint.SubscriptionEnded:
				st.cur, st.gone = endpoint.SubKey{}, false
			}
		}
		if e.State != endpoint.SubscriptionActive {
			n.queueRefill(h, s)
		}
	}
}

// fillSlots gives every empty or orphaned slot of h a track, if the room
// has one.
func (n *Node) fillSlots(now time.Time, h Handle) {
	s := n.slot(h)
	if s == nil || s.view == nil {
		return
	}
	s.view.queued = false
	if !s.view.ready || s.room == "" {
		return
	}
	tracks := n.cl.Tracks(s.room)
	for i := range s.view.slots {
		st := &s.view.slots[i]
		if st.cur != (endpoint.SubKey{}) && !st.gone {
			continue
		}
		t, ok := n.slotCandidate(s, st, tracks)
		if !ok {
			continue
		}
		to := endpoint.SubKey{Peer: t.Peer, Track: t.Name}
		var err error
		if st.cur == (endpoint.SubKey{}) {
			_, err = n.subscribe(now, h, s, clusterKey(to), endpoint.SubscribeOptions{SSRC: st.SSRC, PayloadType: st.PayloadTypes[t.Codec],
				RTXSSRC: st.RTXSSRC, RTXPayloadType: st.RTXPayloadTypes[t.Codec], Spatial: -1, Temporal: -1})
		} else {
			err = n.switchSubscription(now, h, s, st.cur, to, st.PayloadTypes[t.Codec], int(st.RTXPayloadTypes[t.Codec]))
		}
		if err != nil {
			// A track that cannot be shown (a full subscription table,
			// an SSRC clash) is skipped; the next change tries again.
			continue
		}
		st.cur, st.gone = to, false
	}
}

// slotCandidate is the newest track of the room slot st could show that no
// other slot of s shows.
func (n *Node) slotCandidate(s *slot, st *slotState, tracks []track.Info) (track.Info, bool) {
	for i := len(tracks) - 1; i >= 0; i-- {
		t := tracks[i]
		if t.Kind != st.Kind || t.Peer == s.view.exclude || t.Peer == s.ep.PeerID() {
			continue
		}
		if _, ok := st.PayloadTypes[t.Codec]; !ok {
			continue
		}
		k := endpoint.SubKey{Peer: t.Peer, Track: t.Name}
		taken := false
		for j := range s.view.slots {
			taken = taken || s.view.slots[j].cur == k && !s.view.slots[j].gone
		}
		if !taken {
			return t, true
		}
	}
	return track.Info{}, false
}
