// Package driver runs a core.Node on real sockets: the WebRTC sessions of
// package transport/webrtc on the shared UDP port (and ICE-TCP port) of
// package transport/udp, and the WHIP/WHEP Backend that creates them.
//
// # Workers
//
// A Driver runs W workers (Config.Workers, default GOMAXPROCS). Each owns
// one core.Node, its own UDP socket and ICE-TCP listener (ports Port+i
// when a port is configured), its own lock and its own loop goroutine. A
// core.Node is not safe for concurrent use; a worker's node is touched
// only under that worker's lock, and nothing but the data path takes it.
//
// Data path. Decrypted packets reach a worker's node on its socket's read
// goroutine (and one goroutine per ICE-TCP connection), which takes the
// lock, feeds the node with the arrival time and drains every output on
// the spot: a transmit is marshalled into a pooled buffer and SRTP
// encrypted in place there (one copy of the payload per egress packet),
// and joins the egress batch. The batch goes out when the recvmmsg batch
// that caused it has been handled (udp.Config.BatchDone), in one sendmmsg
// with each viewer's consecutive equal-sized packets as one UDP GSO send
// (package transport/udp). No channel or goroutine switch sits between a
// read and its forwarding.
//
// Control path. HTTP handlers never take a worker's lock: session setup
// (after the SDP is negotiated and the DTLS/ICE session built, outside
// any lock), PATCH and DELETE are commands queued to the worker's loop
// (at most 256 waiting: past that an offer gets 503 ErrOverloaded), which
// runs them between inputs, one per lock hold, and wakes its caller with
// the result. The loop also runs the node's timers (it sleeps until the
// node's PollTimeout, the next transport-cc feedback or consent check),
// closes sessions whose ICE consent lapsed or whose DTLS failed, and
// feeds the node the messages of other workers. A slow handshake runs on
// the session's own goroutine and never holds the lock.
//
// Placement. A session is placed when its offer arrives, and its answer
// advertises that worker's candidates only: the room's busiest worker
// while its session count is within Config.PlacementSlack (default 8) of
// the least loaded worker's, else the least loaded one (ties to the
// lowest index, so placement is deterministic). A room thus stays on one
// worker until that worker is ahead, and then spans workers. A session
// that replaces another (same endpoint ID in the room) goes to the same
// worker.
//
// Rooms across workers. Workers are nodes of one overlay (package sdn)
// joined by in-process links: the same code path as a cluster of
// processes, with links that copy a message into the other worker's
// inbox instead of a QUIC stream. Each worker receives a published
// packet once and fans it out to its own viewers. Control messages on
// these links are never dropped; media messages beyond 8192 waiting are
// (WorkerStats.LinkDrops), as a congested link would drop them. With a
// cluster (Config.Cluster) the node ID X becomes X|i<<18 per worker, and
// worker 0 alone holds the QUIC links to other processes.
//
// Why ports per worker. SO_REUSEPORT with a BPF program steering by
// destination would keep one port, but needs the steering program (and
// the privileges to attach it) and still splits a 5-tuple's packets by
// hash, not by session; a single port with a dispatcher goroutine costs a
// hand-off per packet and caps ingress at one core's reading. A port per
// worker needs no privileges and keeps the kernel's own demultiplexing.
// For deployments that can open only one port, Config.SinglePort keeps
// every worker on worker 0's socket: its read loop hands RTP/RTCP of
// other workers' sessions to their loops (WorkerStats.Handoffs; STUN and
// DTLS stay on the reader), and every egress leaves through one socket.
//
// Config.MaxSessions bounds the Driver as a whole. A node's own limits
// (core.Config's MaxEndpoints, the cluster's MaxRooms and the like)
// apply per worker: a Driver of W workers admits up to W times them, and
// Counts sums the workers'. Leaks, limits and shutdown are checked per
// worker by the tests.
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
