package endpoint

import "github.com/sansrtc/sfu/track"

// Event is something a peer is told: a sealed set of the types below.
type Event interface{ isEvent() }

// PeerJoined: another peer joined the room (also sent for every peer
// already there when this one joins).
type PeerJoined struct {
	Peer string
}

// PeerLeft: another peer left the room.
type PeerLeft struct {
	Peer string
}

// TrackPublished: a track became available in the room (also sent for
// every track already there on join).
type TrackPublished struct {
	Info track.Info
}

// TrackUnpublished: a track was withdrawn.
type TrackUnpublished struct {
	Info track.Info
}

// SubscriptionState is the state of one subscription.
type SubscriptionState uint8

// Subscription states.
const (
	// SubscriptionActive: attached to its source; media flows from the
	// next keyframe.
	SubscriptionActive SubscriptionState = iota + 1
	// SubscriptionSourceGone: the publisher withdrew the track; the
	// subscription is kept for the room's grace period and resumes,
	// continuously, if a track of the same name comes back.
	SubscriptionSourceGone
	// SubscriptionEnded: removed (unsubscribed, or the grace ran out).
	SubscriptionEnded
)

func (s SubscriptionState) String() string {
	switch s {
	case SubscriptionActive:
		return "active"
	case SubscriptionSourceGone:
		return "source-gone"
	case SubscriptionEnded:
		return "ended"
	}
	return "unknown"
}

// SubscriptionChanged: a subscription of this peer changed state. SSRC is
// the outgoing SSRC the peer receives it on.
type SubscriptionChanged struct {
	Key   SubKey
	SSRC  uint32
	Kind  track.Kind
	State SubscriptionState
}

// Replaced: the same peer id joined the room on another node of the
// cluster later (newest session wins), so this session has been taken out
// of Room; the driver should close it.
type Replaced struct {
	Room string
}

func (Replaced) isEvent()            {}
func (PeerJoined) isEvent()          {}
func (PeerLeft) isEvent()            {}
func (TrackPublished) isEvent()      {}
func (TrackUnpublished) isEvent()    {}
func (SubscriptionChanged) isEvent() {}
