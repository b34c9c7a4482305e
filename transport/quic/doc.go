// Package quic links sdn nodes over QUIC (quic-go). Links is the I/O
// with no state machine: the socket, the connections, the bytes. Its
// owner keeps the machine that the links carry (an sdn.Router, or a
// core.Node with one) and the machine's mutex. Driver is such an owner
// for a process whose only machine is a Router.
//
// # Wire
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
// behind its media and sdn headers); Links asks again while messages
// exceed what it last heard. A socket bound to loopback uses 1452-byte
// packets from the start, as loopback's MTU is 64 KiB.
//
// Each message is copied once, in Send, out of the machine's buffer into
// a buffer of the link's that its writer gives back once quic-go has the
// bytes, so Links allocates nothing per message in steady state. quic-go
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
// Redialling with backoff is the Router's (EventDial); Links only
// reports failures (Handler.DialFailed).
//
// # Owning Links
//
// The machine is not safe for concurrent use, so its owner guards it with
// one mutex and implements Handler. Links calls the Handler from its
// goroutines (per connection: a stream reader and a datagram reader; per
// dial, the dialer), never holding a lock that Send, Dial or CloseLink
// take. Each callback, like every other input of the owner's:
//
//  1. takes the owner's mutex, then reads the clock (so that time never
//     runs backwards for the machine);
//  2. feeds the machine: HandleLinkUp, HandleLinkDown, HandleDialFailed,
//     HandleMessage (core.Node: HandleLinkMessage); data is borrowed;
//  3. drains every output until false, handing the link ones to Links
//     right there, mutex held: a transmit to Send, a dial to Dial, a
//     close to CloseLink (core.Node.Poll: OutputLink, OutputDial,
//     OutputCloseLink). They never block nor call back; Send copies;
//  4. if the machine's PollTimeout moved earlier, wakes the owner's timer
//     goroutine, which sleeps until PollTimeout and calls HandleTimeout
//     the same way.
//
// Build the machine with Links.LocalAddr as its sdn.Config.Listen after
// NewLinks, and call Start (which accepts) only once the Handler can take
// reports. Close and Kill wait for callbacks under way, so call them
// without the owner's mutex and never from a callback. Link ids come from
// Links, unique for its life: one Links per machine. The dialing machine
// speaks first (Handler.LinkUp says why), as a Router does. ExampleLinks
// is the whole pattern with a bare Router.
//
// One process can run both drivers on one core.Node: the media driver
// owns the Node and its mutex and implements Handler for a Links of its
// own, so RTP from its sockets and messages from other nodes reach the
// Node under the same mutex, and a Poll drain after either sends media to
// peers and link messages to Links alike.
//
// # Driver
//
// Driver owns a Router behind one mutex on Links, as above. A timer
// goroutine (Run) sleeps until PollTimeout, or until an input brings the
// deadline forward. Application calls go through Do, under the same
// mutex; deliveries and events reach Config.OnData and Config.OnEvent
// under the mutex too, so those callbacks must not block or call back
// into the Driver.
package quic
