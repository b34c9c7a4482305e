// Package sdn is the overlay network between nodes: neighbours joined by
// authenticated, measured links; loop-free best-path routing that scales
// with zones; pub/sub channels carried on relay trees; and replicated
// key-value maps. It knows nothing of media: payloads are bytes.
//
// # Run loop
//
// A Router is a sans-IO state machine (see DESIGN.md). The driver owns the
// sockets and the clock:
//
//  1. Create it with New(cfg, now).
//  2. Feed it input: HandleLinkUp / HandleLinkDown / HandleDialFailed for
//     connections, HandleMessage for every message received on a link,
//     HandleTimeout when the deadline of PollTimeout passes, and the
//     local API (Publish, Send, Subscribe, MapSet, ...).
//  3. After every call, drain PollTransmit (messages to send on links),
//     PollData (packets for local subscribers) and PollEvent (EventDial,
//     EventClose, and the control events) until each returns false.
//     Data and Payload slices stay valid until the next call into the
//     Router.
//  4. Sleep until PollTimeout, or until the next input.
//
// A Transmit marked Datagram is pub/sub data and may go unreliably (QUIC
// datagrams); everything else is control, for a reliable stream. The
// protocol itself tolerates the loss of any message (everything is soft
// state, refreshed), so it also runs over plain datagrams, as the
// simulation tests do.
//
// # Identity and addresses
//
// A NodeID is a uint32 whose high ZoneBits (8) bits name its zone. A node
// prints its Addr on start; others pass it as a seed:
//
//	<node-id>@/ip4/<ip>/udp/<port>     e.g. 10@/ip4/127.0.0.1/udp/10001
//	<node-id>@/ip6/<ip>/udp/<port>
//
// The id is decimal; MakeNodeID(zone, n) builds one (node 5 of zone 1 is
// 16777221).
//
// # Neighbours and the handshake
//
// A node dials its Config.Seeds (EventDial) and redials any that is down,
// with exponential backoff from DialBackoffMin to DialBackoffMax plus up
// to 50 % jitter. On every new link the dialer and the listener run a
// three-message handshake: hello{version, id, nonce}, helloAck{id, nonce,
// MAC}, auth{MAC}, the MACs being HMAC-SHA256 under the shared cluster
// secret over a role label, both nonces (from the seeded source), both ids
// and the link's channel binding (LinkInfo.Binding: for QUIC a TLS
// exporter value). A node with another secret fails the MAC and is refused
// (Stats.AuthFailures), or, when it dialed, refuses us in turn and closes
// (Stats.HandshakeAborted), or times out (Stats.HandshakeTimeouts); a
// redial after a link that never authenticated keeps its backoff, so such
// a node is not hammered. A hello of another protocol version or routing
// mode (Config.FlatRoutes) is refused the same way. Anything but the
// handshake on a link not yet authenticated is dropped and counted
// (Stats.Unauthenticated). Lost handshake messages are repeated.
//
// After the handshake, messages carry no per-message MAC: integrity and
// confidentiality come from the link itself (QUIC's TLS 1.3), and the
// binding in the handshake MACs ties the cluster-secret proof to that TLS
// session, so a man in the middle cannot splice two sessions. The
// in-memory and simulated links of tests are trusted. Two links to the
// same peer resolve to one: the one dialed by the lower id, or the newer
// when both were dialed by the same side.
//
// # Link measurement and metric
//
// Each link is pinged every PingInterval (300 ms); the RTT is smoothed
// (1/8 gain) and the loss is the fraction of the last 64 pings not
// answered (a ping counts as lost after max(1 s, 4×RTT)). A link silent
// for DeadAfter (1.2 s) is dead. Its cost, in microseconds, is
//
//	RTT × (1 + LossWeight × loss) + HopPenalty      (LossWeight 10, HopPenalty 1 ms)
//
// so a link with 20 % loss each way (36 % round trip) costs 4.6× its RTT
// and loses to a lossless path of twice its RTT. The cost is published
// (used by routing) only after 5 pings have settled and then only when it
// moves by more than 10 %, so measurement noise does not ripple through
// the tables.
//
// # Routing
//
// Routes are a path vector: each advertisement carries the metric, the
// sequence number and the path, the nodes from the advertiser to the
// destination (RouteInfo.Path), and a node ignores any route whose path
// holds itself, or that is already maxPath (32) hops long, so the
// cluster's diameter is at most 32 hops. A path vector alone only keeps
// loops from persisting: while two updates cross it can still point two
// nodes at each other for a round trip, and the tests check for loops
// after every single event. So selection also obeys Babel's feasibility
// condition (RFC 8966 §2.4–3.5): a node takes a new next hop only if that
// neighbour's advertised metric is below the smallest metric the node
// itself has advertised for the destination's current sequence number,
// which keeps the next-hop graph acyclic at all times. A node that loses
// its route and has no feasible alternative retracts it and sends a
// sequence-number request toward the origin (forwarded hop by hop); the
// origin bumps its number and every route becomes feasible again. A node
// with a much better infeasible alternative asks the same way (at most
// every 200 ms): a cost increase that reaches it through one neighbour
// before another can leave it on the dearer route with the cheaper one
// infeasible.
//
// Updates: every UpdateInterval (1 s, jittered) the full table, and the
// changed routes (a new metric, sequence number, floor or path)
// TriggerDelay (20 ms) after a change. A neighbour's
// advertisement expires after 3.5 update intervals.
//
// Zones keep tables small: a node holds a route per node of its own zone
// and a route per other zone. Node routes are exchanged only between
// neighbours of the same zone; every node of a zone originates its
// zone's route at metric 0 (all of them share one sequence number, the
// highest any has seen, as if the zone were one node), and zone routes
// travel everywhere. To reach a node of another zone a packet follows the
// zone route to the nearest node of that zone, then node routes inside
// it. A zone must be connected internally (its nodes reach each other
// through nodes of the zone); otherwise its halves cannot reach each
// other's nodes.
//
// Config.FlatRoutes trades that for exact routes: node routes travel
// everywhere, every node holds a route per node of the cluster (besides
// the zone routes, which pub/sub's home selection uses), and a packet
// takes the node route wherever one is known. Tables and updates then
// grow with the cluster (at 100 nodes the simulator runs at about half
// its speed without, BenchmarkSim100), so it suits clusters of up to
// a few hundred nodes. All nodes of a cluster must agree on it: hello's
// version byte carries the mode, and nodes that differ refuse each other
// as they refuse another protocol version (Stats.AuthFailures), because
// in a mix a node route could end at a node that knows only the zone
// route, which may lead back.
//
// Hysteresis: a node keeps its next hop unless another feasible route is
// cheaper by SwitchGain (5 %), or cheaper at all for Sticky (10 s). Held
// routes do not stack up along a path: each route also advertises its
// floor, the least of link cost plus floor over its feasible candidates
// (a lower bound along feasible successors, which form no cycle, so it
// cannot count to infinity), and a node also leaves a route that costs
// more than its floor by SwitchGain. Every metric is then within
// SwitchGain of its floor, so a whole path, not each hop, is at most
// SwitchGain dearer than its cheapest feasible alternative. (Without the
// floor, nodes in a row each holding a route up to 5 % dear made paths
// 10–11 % dear in 2 of 100 seeds with FlatRoutes.)
//
// Quality (what TestRoutingConverges and TestRoutingReconverges check
// over 100 nodes in 3 zones, walking the next hops and summing the
// measured cost of each link, the published Cost, and comparing with
// plain Dijkstra over those costs): with FlatRoutes every route costs at
// most 10 % more than the cheapest path (at most 5.3 % in the tests
// once settled, up to 9 % while a cost change spreads; over 100 seeds
// none above 10 %). With zone routes, a route inside a
// zone costs at most 10 % more than the cheapest path through the zone's
// nodes, which, where zones are regions (cheap links inside, dear ones
// between), is the cheapest path of all; a route to a node D of another
// zone Z costs at most 10 % more than the cheapest path to the nearest
// node of Z plus the cheapest path inside Z from the node E where the
// route enters Z to D; so where a cheapest path to D enters Z at E too,
// the route is within 10 % of Dijkstra as well.
//
// Where the cheapest path to D enters Z elsewhere, it may not be, and no
// choice of zone route fixes that: a zone route is one next hop for all
// of Z, so from a given source every node of Z is entered at the same
// node, while the cheapest paths to two nodes of Z can enter Z at
// different nodes; the per-zone route cannot know which of its nodes a
// packet is for. In the tests' region model (3 zones of 33 nodes, links of
// 1–10 ms RTT inside a zone, 3 links of 40–150 ms between each pair of
// zones, 1 % loss on a quarter of the links), at 30 s over 80 seeds, 2.0 %
// of the routes to other zones cost more than 10 % above Dijkstra (worst
// +51 %; per seed from none to 9 %), all of them entering Z off every
// cheapest path, and 98 % of them from a source for which no single
// entry node of Z, wherever chosen, would serve every node of Z within
// 10 %: that holds for a fifth of the (source, other zone) pairs. That is
// what FlatRoutes is for.
//
// # Pub/sub
//
// A channel (uint64) has one source. Nobody floods to find it: the
// source announces the channel to the channel's home node, and a
// subscriber's node looks the source up there, as in atm0s. The home is
// chosen by rendezvous (highest-random-weight) hashing in two levels, so
// that it needs no table beyond the zone-scaled routing table: first the
// zone with the highest hash of (channel, zone) among the reachable zones
// (every node knows them all), then, inside that zone, the node with the
// highest hash of (channel, node) among the zone's reachable nodes (which
// that zone's nodes know). Announcements and lookups are routed messages:
// they follow the zone route until they enter the home zone, then the
// node route to the home. The source repeats its announcement every 4
// SubRefresh periods (2 s) and the home forgets it after three missed
// ones, so when membership changes and the home moves, the new home
// learns the source within one period; an unanswered lookup is retried
// every SubRefresh. When two nodes publish one channel, the home keeps
// the lower id.
//
// The subscription is then hop by hop: the subscriber's node sends a Sub
// to its next hop toward the source, which reuses its relay state if it
// has one or subscribes in turn, so a channel is a tree and each node
// receives each packet once. An upstream acknowledges with the relay path
// from the source; a path containing the node itself is a loop and is not
// activated. Subscriptions are soft state, refreshed every SubRefresh
// (500 ms) and dropped after four missed refreshes.
//
// Data flows down the tree: the source numbers packets, every node
// forwards each sequence number at most once (older and repeated numbers
// are dropped), so delivery is exactly once and in order. A relay's copy
// is made once into the Router's buffer and every downstream Transmit
// points at it: no allocation per packet. Feedback flows up and is
// aggregated per hop: a keyframe request goes upstream at most once per
// KeyframeHold (300 ms), and bitrates travel as the min of the minimums
// and the max of the maximums; the source sees EventFeedback.
//
// When the upstream's link dies the node rejoins at once along its
// current best route, and tells its subtree that its path is broken (an
// inactive ack), so that nodes below whose own best route now differs
// leave at once too; a node whose upstream is inactive re-evaluates
// whenever its routes change. When a better route has differed from the
// upstream for ChannelSticky (5 s) the subtree moves, make-before-break:
// the new upstream is subscribed while the old one still feeds, and takes
// over when its stream continues or repeats the old one; if the new path
// is faster, its packets are held back (up to 256) until the old stream
// catches up with them, so a move loses and reorders nothing (after a
// second, or with the buffer full, it takes over anyway). Local
// subscribers and the subtree get EventMoved (the media layer asks for a
// keyframe). When the source has had no route
// for EndGrace (2 s) at some relay (inside the source's zone, where
// routes name nodes), or unpublishes, the channel ends everywhere below
// (EventChannelEnded).
//
// # Replicated maps
//
// Named maps of key → value; each entry belongs to the node that wrote
// it, and two nodes' entries under the same key are distinct. Every
// owner's entries of a map are at a version number; versions start at
// the node's start time, so a restarted node's are past its previous
// life's, and a node that sees its own entries at a higher version than
// it has jumps past it. A node that Closes deletes its entries at once.
// There are two kinds of map, told apart by name.
//
// Global maps (any name not starting with Config.ScopedMapPrefix) are
// kept by every node, for cluster metadata. A change is flooded to the
// neighbours TriggerDelay after it happens, and every GossipInterval
// (500 ms) each node sends each neighbour a digest (owner, version,
// age); a neighbour that has more than the digest shows pushes the
// owner's entries, so partitions heal by anti-entropy. The age is how
// long ago the owner was last known alive (rounded up to the
// millisecond; each hop adds its own holding time and the link's whole
// RTT, which errs early), so every node knows when an owner was last
// alive on its own clock, never later than it was: an owner's entries
// vanish everywhere SoftStateTimeout (10 s) after it was last heard of,
// hence at most SoftStateTimeout after it died and at least that minus a
// gossip period and a few round trips (each node expires them at that
// exact time, not at its next gossip tick).
//
// Scoped maps (names starting with ScopedMapPrefix, "r:" by default:
// package cluster's rooms) are kept only where they are used, so that
// replication grows with interest, not with the cluster, as in atm0s.
// Each has a home node, chosen by the same two-level rendezvous hashing
// as a channel's home (see Pub/sub) over the hash of its name, and
// recomputed whenever routes change. A node that writes entries of the
// map sends its changes to the home TriggerDelay after they happen, as a
// delta from the version it last sent, and every GossipInterval a
// refresh with its version; a home whose version of that owner differs
// (it is new, a message was lost, the writer restarted) asks for the
// whole state, which comes split in parts of at most 64 KiB of entries
// and is applied once every part is in. A node that subscribes registers
// with the home every GossipInterval, with the versions of every owner
// it holds; the home answers with every owner's liveness (version and
// age) and the whole state of each owner the subscriber holds at an
// older version, and passes every change on as it comes. All of these
// are routed messages (like the rendezvous of pub/sub), and their ages
// count the whole round trip of every hop, so the ages err early here
// too: the home forgets an owner, and a subscriber an owner the home
// stopped refreshing, SoftStateTimeout after it was last heard of; a
// subscriber the home has not heard from for 4 GossipIntervals is
// dropped. When the home moves (it died, a partition, a heal), writers
// and subscribers refresh at the new one, which rebuilds from them: at
// once when their routes show the move (the home's zone, or in their own
// zone the home node, changed), else at their next refresh. A subscriber
// keeps what it has meanwhile, so a live owner's entries do not flap. A
// node keeps a scoped map only while it writes to it (and for 4
// GossipIntervals after deleting its last entry, so that a lost deletion
// is repeated), subscribes to it, or is its home; it forgets the others'
// entries when it unsubscribes and is not the home. MapEntries of a
// scoped map on a node that only writes to it lists that node's own
// entries.
//
// What TestScopedMaps checks over 100 nodes in 3 zones with 1 % loss on
// a quarter of the links, 10 rooms with 2-6 interested nodes each: every
// subscriber converges to exactly the union of its room's entries
// (0.25-1.25 s after the last write over 43 seeds); no node but the
// interested ones and the room's one home holds any of a room; a dead
// writer's entries vanish at every subscriber within SoftStateTimeout of
// its death (a closing one's at once); writes made in the 2 s after a
// room's home died are at every subscriber within 0.75 s after those 2
// s, and nothing of live owners is deleted; in a partition each side
// keeps its own writers' entries, and after the heal the rooms converge
// in 2.5-5.75 s (links come back after their redial backoff). For those
// rooms, scoped maps send 3-5× fewer bytes than global ones (60-90 kB/s
// cluster-wide against 310-330 kB/s) and store 20-30× fewer copies of
// others' entries (TestScopedMapCost), in more but smaller messages
// (1500-1800 against 650 per second, each counted at every hop).
//
// Bounds: MaxOwners (4096) owners of the global maps together and of
// each scoped map; MaxEntries (16384) of a node's own entries per map,
// and its entries of all global maps together must fit one message
// (about 1 MiB encoded, 65535 entries); MaxValueLen (1024) bytes per
// value, 255 bytes per key and map name; MaxScopedMaps (65536) scoped
// maps a node holds (beyond it, a home refuses the maps other nodes
// bring; its own writes and subscriptions are never refused);
// MaxScopedEntries (262144) entries of other owners stored of all scoped
// maps together. What exceeds them is refused (ErrMapFull,
// ErrValueTooBig, ErrKeyTooLong) or, from the network, dropped and
// counted (Stats.LimitDrops). All nodes must agree on ScopedMapPrefix.
//
// # Wire format
//
// One type byte, then fixed big-endian fields, lists with a count first.
// The decoders never allocate or read past their input; anything that
// does not decode exactly is dropped and counted (Stats.Malformed).
package sdn
