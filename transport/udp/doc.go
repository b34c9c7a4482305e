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
// Rebinding: a Binding request from a bound address whose USERNAME names
// the ufrag of another registration goes to that registration's handler,
// and if that handler authenticates it the address moves there. A client
// that multiplexes several PeerConnections over one port, or a NAT
// mapping reused before the old session's consent ran out, reaches its
// new session; a request the other handler refuses changes nothing. Only
// STUN from a bound address pays for the USERNAME lookup: media and DTLS
// take the address map alone, allocation-free. Unregister (and Register
// over an existing ufrag) unbinds every address and closes every ICE-TCP
// connection bound under that ufrag. One registration keeps at most 8
// addresses and 8 TCP connections; the oldest goes first.
//
// Mux.Serve is the read loop: it reads batches into buffers it owns and
// reuses, and hands each datagram to its handler, borrowed for the call.
// On Linux it calls recvmmsg(2) itself and parses the sender addresses it
// owns into netip.AddrPort: golang.org/x/net/ipv4's ReadBatch would
// allocate a net.UDPAddr per datagram. Elsewhere it uses ReadBatch. With
// BatchSize 1 it uses ReadFromUDPAddrPort. All three allocate nothing per
// datagram in steady state (TestMuxReadAllocs). WritePacket allocates
// nothing. WriteBatch on Linux calls sendmmsg(2) itself, with arrays it
// owns (headers, iovecs, sockaddrs, control messages), and allocates
// nothing per batch; elsewhere it uses x/net's WriteBatch with cached
// destination addresses. A datagram the kernel refuses is skipped and
// counted out of the returned total, and the rest of the batch still
// goes: the batch holds every peer's egress.
//
// UDP GSO (UDP_SEGMENT, Linux 4.18+): an SFU's batch is each packet in
// turn to every viewer, and a read batch usually holds several packets
// of one video frame, equal in size but the last. WriteBatch regroups
// the batch by destination (each destination's datagrams keep their
// order) and sends a destination's consecutive datagrams of one size,
// the last possibly shorter, as one message of up to 64 segments and
// 65000 bytes: the kernel routes it once and splits it at the end, in
// hardware on a NIC with segmentation offload. The segments' iovecs
// point at the callers' buffers: nothing is copied. The socket is
// probed for UDP_SEGMENT at Listen; a GSO send the kernel refuses is
// resent datagram by datagram (WriteStats.GSOFallbacks), and EIO (the
// device cannot checksum in hardware, which GSO needs) or a
// not-supported error turns GSO off for the socket's life.
// Config.DisableGSO turns it off. Measured on this repository's 2-core
// VM, loopback: BenchmarkWriteBatch (a 6-packet frame to each of 100
// destinations) sends 2.0M datagrams/s with GSO and 1.0M without; in
// the driver's BenchmarkSFU the saturating workers=1/fanout=100 run
// went from 295k to 610k egress packets per CPU-second. Most of that
// saving is the kernel's per-datagram send path on loopback, where the
// receive side runs in the sender's context too; a real NIC gains less
// (its driver already takes large sends cheaply, and the receivers' work
// is not the server's), and a path whose MTU is below a segment's size
// refuses GSO with EINVAL, costing that send a fallback.
//
// TCPListener accepts ICE-TCP (RFC 6544, passive) connections framed as in
// RFC 4571 and routes them through the same Demux; each connection is the
// Writer for its session.
//
// An ICE-TCP connection costs little until it authenticates: its first
// frame (at most 1024 bytes, within 5 s) is read into a buffer of its
// own size, and the 64 KiB frame buffer comes only after a session has
// accepted that frame. Connections still waiting for their first frame
// are capped at 256 in total and 16 per remote IP; past either cap a new
// one is closed at once (TCPStats.Rejected).
//
// Writes to an ICE-TCP connection never block: WritePacket copies the
// frame into the connection's 64 KiB ring buffer (allocated once, on its
// first answer; nothing per packet after that) and a writer goroutine of
// its own drains it. When the ring is full the datagram is dropped
// (ErrSendQueueFull, TCPStats.Dropped), as a full UDP socket buffer would
// drop it; when the peer reads nothing for 5 s while data waits, the
// connection is closed (TCPStats.Stalled). So a peer that stops reading
// stalls neither the driver, which writes media and RTCP under its lock,
// nor its session's read side.
//
// Everything here is I/O and goroutines; the pure parts (Classify,
// LocalUfrag, Demux.Dispatch) are separately testable and fuzzed.
package udp
