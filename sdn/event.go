package sdn

// LinkID names one connection to a neighbour. The driver chooses it
// (unique for the life of the Router) and passes it to HandleLinkUp;
// the Router names it in Transmit and EventClose.
type LinkID uint64

// LinkInfo describes a new connection to HandleLinkUp.
type LinkInfo struct {
	// Dialed is true on the side that dialed (the side that sends hello).
	Dialed bool
	// Peer is the node the driver dialed (from the seed address), zero for
	// inbound connections.
	Peer NodeID
	// Binding is channel-binding material of the underlying secure channel
	// (for QUIC, a TLS exporter value both ends derive identically). It is
	// covered by the handshake MACs, so a handshake cannot be relayed
	// between two different TLS sessions. Nil when there is none.
	Binding []byte
}

// Transmit is a message to send on a link. Data points into a buffer the
// Router owns and is valid until the next call into the Router. Datagram
// marks pub/sub data, which may be sent unreliably (QUIC datagrams); all
// other messages are control and go on a reliable stream when the link
// has one, framed by the driver.
type Transmit struct {
	Link     LinkID
	Data     []byte
	Datagram bool
}

// Delivery is a pub/sub data packet for a local subscriber of Channel,
// in source order, each sequence number at most once. Payload is valid
// until the next call into the Router.
type Delivery struct {
	Channel uint64
	Seq     uint32
	Payload []byte
	// Repair marks a packet outside the sequence (Seq is zero): a
	// retransmission some node of the tree sent with SendRepair.
	Repair bool
}

// Event is a control output of the Router; see the Event* types.
type Event interface{ isEvent() }

// EventDial asks the driver to connect to Addr and then call HandleLinkUp
// (Dialed true, Peer Addr.Node) or HandleDialFailed.
type EventDial struct{ Addr Addr }

// EventClose asks the driver to close a link. The Router has already
// forgotten it; HandleLinkDown for it is ignored.
type EventClose struct{ Link LinkID }

// EventNeighbourUp reports a neighbour authenticated on Link.
type EventNeighbourUp struct {
	Node NodeID
	Link LinkID
}

// EventNeighbourDown reports a neighbour lost (link closed or silent).
type EventNeighbourDown struct{ Node NodeID }

// EventSubscribed reports a local subscription of Channel joined to the
// source's tree: every packet the source sends from now on is delivered.
type EventSubscribed struct{ Channel uint64 }

// EventMoved reports that the tree above this node changed for Channel:
// packets may have been lost, so a media subscriber should ask for a
// keyframe.
type EventMoved struct{ Channel uint64 }

// EventChannelEnded reports that Channel's source ended it or died. Local
// subscriptions to it are dropped.
type EventChannelEnded struct{ Channel uint64 }

// EventFeedback is the aggregated feedback of every subscriber of a
// channel this node publishes: a keyframe request (once per
// Config.KeyframeHold however many asked), and the least and greatest
// bitrate subscribers want (zero: none expressed).
type EventFeedback struct {
	Channel    uint64
	Keyframe   bool
	BitrateMin uint64
	BitrateMax uint64
}

// EventUpstream is feedback a downstream neighbour sent up a channel
// with SendUpstream, for the media layer of this node (it publishes the
// channel or subscribes to it itself; a node that only relays passes it
// on upstream). Payload is a copy.
type EventUpstream struct {
	Channel uint64
	From    NodeID
	Payload []byte
}

// EventMapSet reports an entry of a subscribed map created or changed.
// Value is the Router's copy: do not modify it.
type EventMapSet struct {
	Map   string
	Owner NodeID
	Key   string
	Value []byte
}

// EventMapDelete reports an entry of a subscribed map deleted, or gone
// with its owner.
type EventMapDelete struct {
	Map   string
	Owner NodeID
	Key   string
}

func (EventDial) isEvent()          {}
func (EventClose) isEvent()         {}
func (EventNeighbourUp) isEvent()   {}
func (EventNeighbourDown) isEvent() {}
func (EventSubscribed) isEvent()    {}
func (EventMoved) isEvent()         {}
func (EventChannelEnded) isEvent()  {}
func (EventFeedback) isEvent()      {}
func (EventUpstream) isEvent()      {}
func (EventMapSet) isEvent()        {}
func (EventMapDelete) isEvent()     {}

// Stats are counters of a Router. Malformed and unauthenticated input is
// dropped and counted here, never returned as an error.
type Stats struct {
	// Malformed counts messages that did not decode.
	Malformed uint64
	// Unauthenticated counts non-handshake messages on a link not (yet)
	// authenticated, and handshake messages out of order.
	Unauthenticated uint64
	// AuthFailures counts handshakes refused: a wrong MAC (another
	// secret), a wrong version or routing mode (Config.FlatRoutes), our
	// own id, or the wrong peer.
	AuthFailures uint64
	// HandshakeTimeouts counts links closed for not authenticating in
	// Config.HandshakeTimeout.
	HandshakeTimeouts uint64
	// HandshakeAborted counts links the peer (or the network) closed
	// before they authenticated: typically a peer that refused our proof
	// because it has another secret, which a listener cannot tell
	// otherwise.
	HandshakeAborted uint64
	// LinksDead counts links declared dead after silence.
	LinksDead uint64
	// UnknownLink counts input for links the Router does not know.
	UnknownLink uint64
	// DataForwarded counts data copies sent to downstream neighbours;
	// DataDelivered those delivered to local subscribers.
	DataForwarded uint64
	DataDelivered uint64
	// DataDuplicate counts data packets dropped as already seen (or
	// older than the last one forwarded).
	DataDuplicate uint64
	// DataUnexpected counts data for an unknown channel or from a
	// neighbour that is not the channel's upstream.
	DataUnexpected uint64
	// Repairs counts repair packets received from an upstream (SendRepair);
	// UpstreamMsgs feedback messages from a downstream (SendUpstream).
	Repairs, UpstreamMsgs uint64
	// LimitDrops counts state refused by a size bound (channels, owners,
	// entries, routes).
	LimitDrops uint64
}
