//go:build !linux

package udp

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is the part of ipv4.PacketConn / ipv6.PacketConn we use.
type batchConn interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchWriter sends through x/net's WriteBatch (one datagram per system
// call outside Linux), with cached destination addresses. No GSO.
type batchWriter struct {
	batch batchConn
	msgs  []ipv4.Message
	addr  map[netip.AddrPort]*net.UDPAddr
	stats WriteStats
}

func newBatchWriter(conn *net.UDPConn, _ bool) (*batchWriter, error) {
	w := &batchWriter{addr: map[netip.AddrPort]*net.UDPAddr{}}
	if conn.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		w.batch = ipv4.NewPacketConn(conn)
	} else {
		w.batch = ipv6.NewPacketConn(conn)
	}
	return w, nil
}

func (w *batchWriter) write(ds []Datagram) (int, error) {
	sent := 0
	var first error
	for len(ds) > 0 {
		n := min(len(ds), 64)
		if cap(w.msgs) < n {
			w.msgs = make([]ipv4.Message, 64)
			for i := range w.msgs {
				w.msgs[i].Buffers = make([][]byte, 1)
			}
		}
		msgs := w.msgs[:n]
		for i, d := range ds[:n] {
			msgs[i].Buffers[0] = d.B
			msgs[i].Addr = w.udpAddr(d.To)
		}
		k, err := w.batch.WriteBatch(msgs, 0)
		for i := range msgs {
			msgs[i].Buffers[0] = nil
		}
		w.stats.Syscalls++
		k = max(k, 0) // sendmmsg returns -1 when the first message fails
		sent += k
		ds = ds[k:]
		if err == nil && k == 0 {
			err = errWriteBatchNothing
		}
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		if errors.Is(err, net.ErrClosed) {
			break
		}
		if k == 0 {
			// An error comes back only for the first message of a call:
			// skip that one.
			ds = ds[1:]
		}
	}
	w.stats.Datagrams += uint64(sent)
	return sent, first
}

// udpAddr returns a cached *net.UDPAddr for to, so steady-state batched
// writes to the same peers do not allocate.
func (w *batchWriter) udpAddr(to netip.AddrPort) *net.UDPAddr {
	if a := w.addr[to]; a != nil {
		return a
	}
	if len(w.addr) >= 4096 {
		clear(w.addr)
	}
	a := net.UDPAddrFromAddrPort(to)
	w.addr[to] = a
	return a
}

var errWriteBatchNothing = errors.New("udp: WriteBatch sent nothing")
