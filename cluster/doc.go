// Package cluster holds the rooms on this node: who is in each, the
// directory of published tracks, and the fan-out of every RemoteTrack's
// packets to the LocalTracks subscribed to it.
//
// Rooms span nodes when a Router is attached: see remote.go (Attach).
//
// A room's unit is the channel: one per published track name (peer, track),
// holding the current source RemoteTrack and the subscribed LocalTracks.
// Local delivery is a loop over the channel's LocalTracks with the one
// stored packet: nothing is copied or serialized. A channel outlives its
// source: when the publisher withdraws the track (or leaves), its
// subscribers are told the source is gone and kept for Config.SourceGrace;
// a track published again under the same name in that time becomes the
// channel's source and every subscriber resumes on its next keyframe with a
// continuous sequence. That same channel is what the sdn issue extends
// across nodes: a channel whose source is on another node is fed from an
// sdn pub/sub channel instead of a local endpoint, and nothing in package
// endpoint changes.
//
// Members are opaque handles (core's endpoint handles) with a peer id. The
// cluster reports what members must be told as Notices, polled by core,
// which turns them into endpoint events and acts on them (auto-subscribe,
// dropping ended subscriptions). Iteration that reaches outputs follows
// slices in creation order, never map order, so runs are deterministic.
package cluster
