// Package driver runs a core.Node on real sockets: the WebRTC sessions of
// package transport/webrtc on the shared UDP port (and ICE-TCP port) of
// package transport/udp, and the WHIP/WHEP Backend that creates them.
//
// # Threads
//
// The node is not safe for concurrent use, so the Driver owns it behind
// one mutex. Decrypted packets reach it on the socket read goroutines
// (the UDP read loop, one goroutine per ICE-TCP connection), which take
// the mutex, feed the node with the packet's arrival time, and drain every
// output right there: transmits are marshalled into pooled buffers,
// SRTP-encrypted and sent in one batch (sendmmsg) per input. There is no
// hand-off between reading and forwarding, so a packet costs no channel
// send or goroutine switch. A timer goroutine sleeps until the node's
// PollTimeout (or until an input brings the deadline forward), then calls
// HandleTimeout; it also closes sessions whose ICE consent lapsed (a peer
// that vanished) or whose DTLS failed. HTTP handlers (WHIP/WHEP) take the
// mutex for their control calls.
//
// # Congestion control feedback
//
// Publishers that negotiated transport-cc get transport-wide congestion
// control feedback every 100 ms (the arrival times of their packets,
// recorded with pion/interceptor's twcc.Recorder as they are read). That
// is what a browser's bandwidth estimate ramps up on: without it a
// publisher stays near its start bitrate and never sends its higher
// simulcast layers.
//
// # WHIP and WHEP
//
// A WHIP session publishes each of its media sections as a track named by
// kind ("audio", "video"; "video-2" for a second one), so a publisher that
// reconnects under the same peer id continues the same tracks and its
// viewers see one continuous stream. A WHEP session has fixed media
// sections with SSRCs announced in the answer; the driver fills them with
// the room's tracks, newest publisher first, and when a publisher leaves it
// moves the section to another track of the same kind
// (core.Node.SwitchSubscription) so the viewer follows the room's
// publishers as they come and go. A viewer joins the room as its peer id
// plus "#whep", so one participant can publish and watch with one token
// (its own tracks are left out of its view); two viewer sessions of one
// peer id in one room conflict (409), as two publisher sessions do.
//
// # Loss on the way in
//
// Media sections whose codec negotiated "nack" are published with NACK
// on: packets lost between publisher and server are NACKed and their
// retransmissions (RTX when negotiated, unwrapped by the endpoint) are
// forwarded in their places, so one lossy uplink does not become loss for
// every viewer.
//
// # Errors
//
// Failures of an offer carry their whip status class: the node's limits
// (room full, too many rooms or sessions) are 503, offers that cannot be
// served as made (too many tracks or simulcast layers, an SSRC clash) 422,
// a clash with an existing session or track 409.
package driver
