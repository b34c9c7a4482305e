package udp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// TCPListener accepts ICE-TCP connections (RFC 6544, passive candidates)
// and routes their framed datagrams (RFC 4571: 2-byte big-endian length,
// then the datagram) through the same Demux as the UDP socket. A
// connection's first frame must be a STUN Binding request that a
// registered session accepts; after that the connection belongs to that
// session until it closes.
type TCPListener struct {
	demux *Demux
	ln    *net.TCPListener
	local netip.AddrPort

	mu    sync.Mutex
	conns map[*tcpConn]struct{}
	wg    sync.WaitGroup
}

// tcpFirstFrameTimeout bounds how long an accepted connection may take to
// send its first (STUN) frame.
const tcpFirstFrameTimeout = 10 * time.Second

// ListenTCP opens an ICE-TCP listener sharing m's sessions.
func (m *Mux) ListenTCP(addr netip.AddrPort) (*TCPListener, error) {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	l := &TCPListener{
		demux: m.Demux,
		ln:    ln,
		local: ln.Addr().(*net.TCPAddr).AddrPort(),
		conns: map[*tcpConn]struct{}{},
	}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// LocalAddr returns the listening address, for the passive TCP candidate.
func (l *TCPListener) LocalAddr() netip.AddrPort { return l.local }

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (l *TCPListener) Close() error {
	err := l.ln.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.conn.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

func (l *TCPListener) accept() {
	defer l.wg.Done()
	for {
		conn, err := l.ln.AcceptTCP()
		if err != nil {
			return
		}
		c := &tcpConn{conn: conn, wbuf: make([]byte, 0, 1502)}
		c.remote = conn.RemoteAddr().(*net.TCPAddr).AddrPort()
		c.remote = netip.AddrPortFrom(c.remote.Addr().Unmap(), c.remote.Port())
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serve(c)
			conn.Close()
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		}()
	}
}

// serve reads frames until the connection fails.
func (l *TCPListener) serve(c *tcpConn) {
	r := bufio.NewReaderSize(c.conn, 4096)
	buf := make([]byte, 65535)
	var h Handler
	_ = c.conn.SetReadDeadline(time.Now().Add(tcpFirstFrameTimeout))
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return
		}
		b := buf[:n]
		now := time.Now()
		if h != nil {
			h.HandleDatagram(now, c.remote, c, b)
			continue
		}
		uf, ok := LocalUfrag(b)
		if !ok {
			l.demux.unknown.Add(1)
			return
		}
		cand, ok := l.demux.Lookup(uf)
		if !ok || !cand.HandleDatagram(now, c.remote, c, b) {
			l.demux.unknown.Add(1)
			return
		}
		h = cand
		l.demux.bound.Add(1)
		_ = c.conn.SetReadDeadline(time.Time{})
	}
}

// tcpConn is one ICE-TCP connection; it is the Writer for its session.
type tcpConn struct {
	conn   *net.TCPConn
	remote netip.AddrPort
	wmu    sync.Mutex
	wbuf   []byte
}

var errFrameTooLong = errors.New("udp: datagram too long for RFC 4571 framing")

// WritePacket frames b and writes it in one write; the address is ignored
// (a TCP connection has one peer).
func (c *tcpConn) WritePacket(b []byte, _ netip.AddrPort) error {
	if len(b) > 65535 {
		return errFrameTooLong
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = binary.BigEndian.AppendUint16(c.wbuf[:0], uint16(len(b)))
	c.wbuf = append(c.wbuf, b...)
	_, err := c.conn.Write(c.wbuf)
	return err
}
