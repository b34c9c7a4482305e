// Package cluster holds the rooms on this node: who is in each, the
// directory of published tracks, and the fan-out of every RemoteTrack's
// packets to the LocalTracks subscribed to it.
//
// A room's unit is the channel: one per published track name (peer, track),
// holding the current source RemoteTrack and the subscribed LocalTracks.
// Local delivery is a loop over the channel's LocalTracks with the one
// stored packet: nothing is copied or serialized. A channel outlives its
// source: when the publisher withdraws the track (or leaves), its
// subscribers are told the source is gone and kept for Config.SourceGrace;
// a track published again under the same name in that time becomes the
// channel's source and every subscriber resumes on its next keyframe with a
// continuous sequence.
//
// Members are opaque handles (core's endpoint handles) with a peer id. The
// cluster reports what members must be told as Notices, polled by core,
// which turns them into endpoint events and acts on them (auto-subscribe,
// dropping ended subscriptions). Iteration that reaches outputs follows
// slices in creation order, never map order, so runs are deterministic.
//
// # Rooms across nodes
//
// With a Router attached (Attach), every room this node has members in is
// also a replicated sdn map, "r:" + room, holding
// one entry per member ("p:" + peer → the join time) and per published
// track ("t:" + peer + "\x00" + track → its Info), each owned by the node
// the peer is connected to; soft state, so a dead node's entries vanish
// everywhere within the Router's SoftStateTimeout. The node subscribes to
// the maps of its rooms only, and turns their events into the same
// notices as local joins and publications.
//
// Every published encoding is an sdn channel, ChannelID(room, peer,
// track, encoding). The publisher's node publishes them and sends each
// stored packet as a mediaframe on every encoding some node pulls. A node
// with subscribers to a remote track holds one relay RemoteTrack for it,
// fed from the channels of the encodings its LocalTracks want (the one
// asked for, the one aimed at, the one forwarded and, when the asked-for
// one stays silent for track.ActiveWindow after it is pulled, those below
// it), so endpoint and LocalTrack cannot tell a relay from a
// publisher. The relay keeps its own bounded history: subscribers' NACKs
// are answered from it, and a hole it has itself is NACKed upstream (sdn
// SendUpstream) and answered from the history of the nearest node above
// that has the packet (sdn SendRepair). Keyframe requests and bitrate
// ranges go up the tree through the Router, aggregated per hop.
//
// Peer ids are unique per room across the cluster: when the same peer id
// is in a room on two nodes, the newest session wins (the later join;
// equal times: the higher node id) and the older is told
// NoticeReplaced, after which core takes it out of the room. Join times
// are the nodes' clocks, so the rule needs clocks within a second or so
// (NTP); and a node of the cluster can claim any peer id (nodes are
// trusted once they know the secret; per-peer proof belongs to the tokens).
//
// A track entry whose owner has no member entry for its peer (a node
// announcing another node's peer's track) is ignored and counted
// (Stats.Impostors); entries that do not decode are counted in
// Stats.BadDirectory; media frames that do not decode or do not match
// their channel in Stats.BadFrames.
//
// The directory is a scoped sdn map (sdn.Config.ScopedMapPrefix "r:"):
// it lives at the nodes with members in the room and at its home node,
// not at every node, so replication grows with interest. What the
// simulation tests hold it to (core/cluster_sim_test.go): delivery to
// every node of a 10-node, 2-zone cluster, each packet at most once per
// node and channel; viewers below a dead relay receive again within 2 s,
// continuously; a dead node's peers and tracks leave every directory
// within the soft-state timeout; partitions heal; with 5 % loss on every
// link, 99 % of packets reach subscribers three hops away; a randomized
// fault-and-heal run (TestClusterVOPR) ends with every checker holding
// and every count zero.
package cluster
