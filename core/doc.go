// Package core is the sans-IO SFU node: the one state machine a driver
// runs. A Node composes the endpoints (one per connected peer, package
// endpoint), the rooms (package cluster) and the track machines (package
// track). It owns no socket, goroutine, clock or unseeded random source:
// every input carries its time, every output is polled, and one seed
// (Config.Seed) fixes every SSRC and initial sequence number it draws, so a
// whole node — or a whole simulated cluster of them — replays exactly.
//
// # The run loop
//
// A driver owns a Node and is the only goroutine that touches it:
//
//  1. Feed one input with its arrival time: HandleRTP or HandleRTCP with a
//     decrypted packet from an endpoint's peer, a control call (CreateEndpoint,
//     Join, Publish, Subscribe, ...), or HandleTimeout when a deadline passed.
//  2. Drain Poll until false. Each Output says what to do by its Kind:
//     OutputRTP (marshal Output.RTP with Transmit.MarshalTo, encrypt, send
//     to Output.Endpoint), OutputRTCP (keyframe requests, NACKs, sender
//     reports), OutputEvent (what the peer must be told: peers and tracks
//     coming and going, subscription state), and, for a node with a
//     Router (Config.Router), OutputLink (a message to another node),
//     OutputDial and OutputCloseLink. Byte slices stay valid until the
//     next call into the Node.
//  3. Messages from other nodes go in by HandleLinkMessage, new and lost
//     connections by HandleLinkUp, HandleLinkDown and HandleDialFailed.
//  4. The cluster's rooms span every node of the overlay: see package
//     cluster for the directory, the relays and the feedback between nodes.
//  5. Ask PollTimeout for the next deadline and sleep until it, or until
//     the next input, whichever comes first.
//  6. Repeat. Time never runs backwards: an input older than the last one
//     is treated as happening at the last one's time.
//
// After every Handle call, drain Poll until false; then sleep until
// PollTimeout. Inputs are borrowed for the call; the node copies what it
// keeps into buffers it owns, bounded per track, and the forwarding path
// (HandleRTP → Poll) allocates nothing per packet in steady state.
//
// What a peer receives is chosen by the peer (Subscribe, SetTargetLayers)
// or, for an endpoint created with Slots (a WHEP viewer's fixed media
// sections), by the node: each slot follows the room (see Slot), with
// tracks of this node and of every other node of the cluster alike.
//
// Malformed packets and packets for unknown tracks are dropped and counted
// (Stats); misuse of the control API (an unknown handle, a missing track,
// a duplicate publish) returns an error and changes nothing.
package core
