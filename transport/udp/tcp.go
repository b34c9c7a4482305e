package udp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ICE-TCP limits. An accepted connection costs a goroutine and a few
// hundred bytes until its first frame authenticates; only then does it get
// its read buffers and, on its first answer, its send queue and writer
// goroutine.
const (
	// tcpFirstFrameTimeout bounds how long an accepted connection may take
	// to send its first (STUN) frame.
	tcpFirstFrameTimeout = 5 * time.Second
	// tcpFirstFrameMax is the largest first frame read. A Binding request
	// with the longest USERNAME RFC 8445 allows (two 256-character ufrags)
	// and the attributes browsers send is about 600 bytes.
	tcpFirstFrameMax = 1024
	// tcpPendingMax and tcpPendingPerIP cap the connections waiting for
	// their first frame, in total and from one remote IP; connections
	// past either cap are closed at once.
	tcpPendingMax   = 256
	tcpPendingPerIP = 16
	// tcpSendQueue is each connection's send queue in bytes (frames with
	// their 2-byte length), about 100 ms of 5 Mbit/s media beyond what the
	// kernel's socket buffer holds.
	tcpSendQueue = 64 << 10
	// tcpStallTimeout is how long a connection may make no progress
	// sending before it is closed: its peer stopped reading.
	tcpStallTimeout = 5 * time.Second
	// tcpReadBuffer is the bufio buffer of a bound connection.
	tcpReadBuffer = 4096
)

// ErrSendQueueFull is returned by an ICE-TCP connection's WritePacket when
// its send queue has no room: the peer reads slower than we send. The
// datagram is dropped, as a full UDP socket buffer would drop it.
var ErrSendQueueFull = errors.New("udp: ICE-TCP send queue full")

var errFrameTooLong = errors.New("udp: datagram too long for the ICE-TCP send queue")

// TCPStats counts an ICE-TCP listener's connections and drops.
type TCPStats struct {
	// Accepted counts connections accepted, including rejected ones.
	Accepted uint64
	// Rejected counts connections closed at once because too many were
	// already waiting for their first frame, in total or from that IP.
	Rejected uint64
	// Bound counts connections whose first frame a session accepted.
	Bound uint64
	// Dropped counts datagrams not sent because a send queue was full.
	Dropped uint64
	// Stalled counts connections closed because their peer read nothing
	// for tcpStallTimeout while data waited to be sent.
	Stalled uint64
	// Pending is how many connections wait for their first frame now.
	Pending int
	// Open is how many connections are open now, pending or bound.
	Open int
}

// TCPListener accepts ICE-TCP connections (RFC 6544, passive candidates)
// and routes their framed datagrams (RFC 4571: 2-byte big-endian length,
// then the datagram) through the same Demux as the UDP socket. A
// connection's first frame must be a STUN Binding request that a
// registered session accepts; after that the connection belongs to that
// registration until either closes (Unregister closes it). Writes never
// block: each connection queues them for its own writer goroutine.
type TCPListener struct {
	demux *Demux
	ln    *net.TCPListener
	local netip.AddrPort

	lim tcpLimits

	mu        sync.Mutex
	closed    bool
	conns     map[*tcpConn]struct{}
	pending   int
	pendingIP map[netip.Addr]int
	wg        sync.WaitGroup

	accepted, rejected, bound, dropped, stalled atomic.Uint64
}

// tcpLimits are a listener's caps and timeouts: the constants above, or
// others in tests.
type tcpLimits struct {
	pendingMax, pendingPerIP int
	firstFrameTimeout        time.Duration
	stallTimeout             time.Duration
}

var defaultTCPLimits = tcpLimits{
	pendingMax:        tcpPendingMax,
	pendingPerIP:      tcpPendingPerIP,
	firstFrameTimeout: tcpFirstFrameTimeout,
	stallTimeout:      tcpStallTimeout,
}

// ListenTCP opens an ICE-TCP listener sharing m's sessions.
func (m *Mux) ListenTCP(addr netip.AddrPort) (*TCPListener, error) {
	return listenTCP(m.Demux, addr, defaultTCPLimits)
}

func listenTCP(d *Demux, addr netip.AddrPort, lim tcpLimits) (*TCPListener, error) {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	l := &TCPListener{
		demux:     d,
		ln:        ln,
		local:     ln.Addr().(*net.TCPAddr).AddrPort(),
		lim:       lim,
		conns:     map[*tcpConn]struct{}{},
		pendingIP: map[netip.Addr]int{},
	}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// LocalAddr returns the listening address, for the passive TCP candidate.
func (l *TCPListener) LocalAddr() netip.AddrPort { return l.local }

// Stats returns the counters.
func (l *TCPListener) Stats() TCPStats {
	l.mu.Lock()
	pending, open := l.pending, len(l.conns)
	l.mu.Unlock()
	return TCPStats{
		Accepted: l.accepted.Load(),
		Rejected: l.rejected.Load(),
		Bound:    l.bound.Load(),
		Dropped:  l.dropped.Load(),
		Stalled:  l.stalled.Load(),
		Pending:  pending,
		Open:     open,
	}
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (l *TCPListener) Close() error {
	err := l.ln.Close()
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

func (l *TCPListener) accept() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		conn, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: wait rather than give
			// up on ICE-TCP for good (as net/http does).
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.accepted.Add(1)
		remote := conn.RemoteAddr().(*net.TCPAddr).AddrPort()
		remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
		c := &tcpConn{l: l, conn: conn, remote: remote, pending: true}
		c.cond.L = &c.mu
		l.mu.Lock()
		if l.closed || l.pending >= l.lim.pendingMax || l.pendingIP[remote.Addr()] >= l.lim.pendingPerIP {
			closed := l.closed
			l.mu.Unlock()
			if !closed {
				l.rejected.Add(1)
			}
			conn.Close()
			continue
		}
		l.conns[c] = struct{}{}
		l.pending++
		l.pendingIP[remote.Addr()]++
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(c)
	}
}

// unpendLocked takes c out of the connections waiting for a first frame.
func (l *TCPListener) unpendLocked(c *tcpConn) {
	if !c.pending {
		return
	}
	c.pending = false
	l.pending--
	ip := c.remote.Addr()
	if l.pendingIP[ip]--; l.pendingIP[ip] <= 0 {
		delete(l.pendingIP, ip)
	}
}

// serve reads frames until the connection fails or is closed.
func (l *TCPListener) serve(c *tcpConn) {
	defer l.wg.Done()
	defer func() {
		c.close()
		l.demux.unbindConn(c)
		l.mu.Lock()
		l.unpendLocked(c)
		delete(l.conns, c)
		l.mu.Unlock()
	}()
	h, ok := l.first(c)
	if !ok {
		return
	}
	l.mu.Lock()
	l.unpendLocked(c)
	l.mu.Unlock()
	l.bound.Add(1)
	_ = c.conn.SetReadDeadline(time.Time{})
	r := bufio.NewReaderSize(c.conn, tcpReadBuffer)
	buf := make([]byte, 65535)
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return
		}
		h.HandleDatagram(time.Now(), c.remote, c, buf[:n])
	}
}

// first reads the first frame into a buffer of its own size (at most
// tcpFirstFrameMax) and has the demux bind the connection by it.
func (l *TCPListener) first(c *tcpConn) (Handler, bool) {
	_ = c.conn.SetReadDeadline(time.Now().Add(l.lim.firstFrameTimeout))
	var hdr [2]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > tcpFirstFrameMax {
		l.demux.unknown.Add(1)
		return nil, false
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.conn, b); err != nil {
		return nil, false
	}
	return l.demux.dispatchConn(time.Now(), c, b)
}

// tcpConn is one ICE-TCP connection; it is the Writer for its session.
// WritePacket copies the framed datagram into a ring buffer (allocated on
// the first write, so only for connections a session answered) that a
// writer goroutine drains; a full ring drops the datagram.
type tcpConn struct {
	l      *TCPListener
	conn   *net.TCPConn
	remote netip.AddrPort

	pending bool   // waiting for the first frame; guarded by l.mu
	entry   *entry // the registration bound to; guarded by l.demux.mu

	mu     sync.Mutex
	cond   sync.Cond // on mu: data queued or closed
	closed bool
	ring   []byte // send queue
	r, n   int    // ring offset of the first queued byte; bytes queued
}

// WritePacket frames b and queues it; the address is ignored (a TCP
// connection has one peer). It never blocks on the network: it returns
// ErrSendQueueFull when the queue has no room, net.ErrClosed after the
// connection closed.
func (c *tcpConn) WritePacket(b []byte, _ netip.AddrPort) error {
	need := 2 + len(b)
	if need > tcpSendQueue {
		return errFrameTooLong
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	if c.ring == nil {
		// The connection's serve goroutine is still running (it closes c
		// before leaving the wait group), so the group's count is not zero.
		c.ring = make([]byte, tcpSendQueue)
		c.l.wg.Add(1)
		go c.writeLoop()
	}
	if len(c.ring)-c.n < need {
		c.l.dropped.Add(1)
		return ErrSendQueueFull
	}
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], uint16(len(b)))
	w := c.put((c.r+c.n)%len(c.ring), hdr[:])
	c.put(w, b)
	c.n += need
	c.cond.Signal()
	return nil
}

// put copies p into the ring at w, wrapping, and returns the offset after.
func (c *tcpConn) put(w int, p []byte) int {
	k := copy(c.ring[w:], p)
	if k < len(p) {
		copy(c.ring, p[k:])
	}
	return (w + len(p)) % len(c.ring)
}

// writeLoop sends what WritePacket queued until the connection closes. A
// write that makes no progress for tcpStallTimeout closes the connection.
// The queued bytes it sends are not touched by WritePacket until it has
// released them under mu.
func (c *tcpConn) writeLoop() {
	defer c.l.wg.Done()
	for {
		c.mu.Lock()
		for c.n == 0 && !c.closed {
			c.cond.Wait()
		}
		if c.closed {
			c.mu.Unlock()
			return
		}
		start, n := c.r, min(c.n, len(c.ring)-c.r)
		c.mu.Unlock()
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.l.lim.stallTimeout))
		k, err := c.conn.Write(c.ring[start : start+n])
		c.mu.Lock()
		c.r = (c.r + k) % len(c.ring)
		c.n -= k
		c.mu.Unlock()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if k > 0 {
					continue // slow, not stalled
				}
				c.l.stalled.Add(1)
			}
			c.close()
			return
		}
	}
}

// close closes the connection once; the reader and writer goroutines see
// it and end.
func (c *tcpConn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.conn.Close()
}
