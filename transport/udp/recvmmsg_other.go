//go:build !linux

package udp

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// xnetReader reads through x/net's ReadBatch, which outside Linux reads
// one datagram per call.
type xnetReader struct {
	pc   *ipv4.PacketConn
	msgs []ipv4.Message
}

func newBatchReader(conn *net.UDPConn, bufs [][]byte) (*xnetReader, error) {
	r := &xnetReader{pc: ipv4.NewPacketConn(conn), msgs: make([]ipv4.Message, len(bufs))}
	for i := range bufs {
		r.msgs[i].Buffers = [][]byte{bufs[i]}
	}
	return r, nil
}

func (r *xnetReader) readBatch() (int, error) { return r.pc.ReadBatch(r.msgs, 0) }

func (r *xnetReader) datagram(i int) ([]byte, netip.AddrPort, bool) {
	m := &r.msgs[i]
	ua, ok := m.Addr.(*net.UDPAddr)
	if !ok {
		return nil, netip.AddrPort{}, true
	}
	ap := ua.AddrPort()
	return m.Buffers[0][:m.N], netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), false
}
