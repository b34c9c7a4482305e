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
//  2. Drain PollTransmit until false: each Transmit names the endpoint
//     (Owner) and points at a stored payload; marshal it into the send
//     buffer (Transmit.MarshalTo), encrypt, send. Payloads stay valid until
//     the next Handle call, not longer.
//  3. Drain PollRTCP until false: feedback (keyframe requests) to send to
//     publishers.
//  4. Drain PollEvent until false: what peers must be told (peers and
//     tracks coming and going, subscription state).
//  5. Ask PollTimeout for the next deadline and sleep until it, or until
//     the next input, whichever comes first.
//  6. Repeat. Time never runs backwards: an input older than the last one
//     is treated as happening at the last one's time.
//
// After every Handle call, drain every Poll until false; then sleep until
// PollTimeout. Inputs are borrowed for the call; the node copies what it
// keeps into buffers it owns, bounded per track, and the forwarding path
// (HandleRTP → PollTransmit) allocates nothing per packet in steady state.
//
// Malformed packets and packets for unknown tracks are dropped and counted
// (Stats); misuse of the control API (an unknown handle, a missing track,
// a duplicate publish) returns an error and changes nothing.
package core
