package udp

import (
	"net/netip"
	"time"
)

// Writer sends one datagram on a path. The UDP Mux writes to the address;
// an ICE-TCP connection ignores it and frames the datagram on its stream.
// b is borrowed: implementations do not keep it after returning.
type Writer interface {
	WritePacket(b []byte, to netip.AddrPort) error
}

// Handler receives the datagrams of one session (one ICE ufrag).
//
// HandleDatagram is called on a read goroutine with b borrowed for the
// call only: b may be modified in place (SRTP decryption) but not kept. w
// answers on the path the datagram came in by; it must not block (an
// ICE-TCP connection queues, the UDP socket does not wait for peers). The
// return value matters for datagrams from an address not yet bound to
// this handler's registration (unbound, or bound to another one, or a new
// ICE-TCP connection): true (a STUN Binding request that authenticated)
// binds the address to it; false leaves the binding as it was. Handlers of
// one Mux and of its TCP listener may be called concurrently from
// different goroutines.
type Handler interface {
	HandleDatagram(now time.Time, from netip.AddrPort, w Writer, b []byte) bool
}
