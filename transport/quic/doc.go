// Package quic links sdn nodes over QUIC (quic-go) and runs an
// sdn.Router on real sockets.
//
// # Links
//
// One QUIC connection per neighbour, on one UDP socket per node that both
// listens and dials. Each connection carries one bidirectional stream,
// opened by the dialer, for the Router's control messages (each framed by
// a 4-byte big-endian length), and QUIC datagrams (RFC 9221) for pub/sub
// data (Transmit.Datagram), so that a lost media packet holds up nothing
// behind it. A data message larger than the connection's maximum datagram
// payload, as quic-go reports it, goes on the stream instead, counted in
// Stats.Oversized. The maximum follows the path MTU: quic-go starts at
// 1280-byte packets and path MTU discovery raises them towards 1452 bytes
// (datagram payloads of about 1400, room for a 1200-byte RTP packet
// behind its media and sdn headers); the driver asks again while messages
// exceed what it last heard. A socket bound to loopback uses 1452-byte
// packets from the start, as loopback's MTU is 64 KiB.
//
// Each message is copied once, out of the Router's buffer, into a buffer
// of the link's that its writer gives back once quic-go has the bytes, so
// the driver allocates nothing per message in steady state. quic-go
// itself still does (a copy of every datagram on either end, a frame per
// datagram sent).
//
// TLS 1.3 uses a fresh self-signed certificate per node, not verified:
// a node's identity is proved by the sdn handshake (HMAC over nonces with
// the cluster secret), whose MACs cover a TLS exporter value of the
// connection (LinkInfo.Binding), so the proof is bound to this TLS
// session. After the handshake, integrity and confidentiality of every
// message come from TLS. A node with another secret is refused by the
// Router and its connection closed.
//
// Redialling with backoff is the Router's (EventDial); the driver only
// reports failures (HandleDialFailed).
//
// # Threads
//
// The Router is not safe for concurrent use, so the Driver owns it behind
// one mutex, as the media driver does its node. Reader goroutines (per
// connection: its stream and its datagrams) take the mutex, feed the
// Router with the arrival time and drain every output right there.
// Outputs never block under the mutex: each connection has a control and
// a datagram writer goroutine fed through bounded queues (a full queue
// drops, which the Router's soft state tolerates). A timer goroutine
// sleeps until PollTimeout, or until an input brings the deadline forward.
// Application calls go through Do, under the same mutex; deliveries and
// events reach Config.OnData and Config.OnEvent under the mutex too, so
// those callbacks must not block or call back into the Driver.
package quic
