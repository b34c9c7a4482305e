// Package udp is the socket side of the WebRTC transport: one UDP socket
// (and optionally one ICE-TCP listener) shared by every peer of a server.
//
// The Demux routes each datagram to a Handler (a webrtc.Session): by its
// remote address once that address is bound, and otherwise only if it is a
// STUN Binding request whose USERNAME names a registered local ufrag and
// that the handler authenticates; then the address is bound. Datagrams are
// classified by their first byte as in RFC 7983 (0-3 STUN, 20-63 DTLS,
// 128-191 RTP/RTCP); the handler does the per-protocol work.
//
// Mux.Serve is the read loop: it reads batches into buffers it owns and
// reuses, and hands each datagram to its handler, borrowed for the call.
// On Linux it calls recvmmsg(2) itself and parses the sender addresses it
// owns into netip.AddrPort: golang.org/x/net/ipv4's ReadBatch would
// allocate a net.UDPAddr per datagram. Elsewhere it uses ReadBatch. With
// BatchSize 1 it uses ReadFromUDPAddrPort. All three allocate nothing per
// datagram in steady state (TestMuxReadAllocs). WritePacket allocates
// nothing; WriteBatch sends many datagrams per sendmmsg (x/net WriteBatch)
// with cached destination addresses.
//
// No UDP GSO (UDP_SEGMENT): one GSO send carries equal-sized segments to
// a single destination, while an SFU's batch is one packet to each of many
// subscribers: in BenchmarkSFU's fan-out (transport/driver) every
// datagram of a batch has its own destination, so GSO would carry one
// segment per send, and sendmmsg already sends the batch in one system
// call. The cost left is the kernel's per-datagram work (sendmmsg is
// about two thirds of the server's CPU profile at fanout=100). GSO would
// pay for bursts to one peer (a large keyframe to one subscriber,
// retransmission bursts); that is where to add it if profiles show those.
//
// TCPListener accepts ICE-TCP (RFC 6544, passive) connections framed as in
// RFC 4571 and routes them through the same Demux; each connection is the
// Writer for its session.
//
// Everything here is I/O and goroutines; the pure parts (Classify,
// LocalUfrag, Demux.Dispatch) are separately testable and fuzzed.
package udp
