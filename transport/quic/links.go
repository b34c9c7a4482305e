package quic

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/sansrtc/sfu/sdn"
)

const (
	alpn         = "sansrtc-sdn/1"
	exporterName = "EXPORTER-sansrtc-sdn"
	queueLen     = 1024
	maxFrame     = 1 << 20
	// frameHdrLen is the length prefix of a control frame.
	frameHdrLen = 4
	// loopbackPacketSize is the QUIC packet size used from the first
	// packet when the socket is bound to a loopback address: quic-go's
	// largest (protocol.MaxPacketBufferSize; a larger Config value is
	// clamped to it), which loopback's 64 KiB MTU always carries. It
	// gives datagram payloads of 1415 bytes at once, instead of the 1243
	// of the default 1280-byte start that path MTU discovery would raise
	// only after some round trips.
	loopbackPacketSize = 1452
	// dgRecheck is how often, at most, a link asks quic-go again for its
	// maximum datagram payload while data messages exceed the last answer:
	// path MTU discovery raises the maximum within a few round trips of
	// the handshake, and asking costs an allocation in quic-go.
	dgRecheck = 100 * time.Millisecond
	// freeLen bounds the reusable message buffers a link keeps, and
	// freeCapMax the size of one kept (larger control messages are rare
	// and left to the garbage collector), so that a burst does not pin
	// memory for the life of the link.
	freeLen    = 256
	freeCapMax = 16 << 10
	// closeLinger is how long CloseLink lets a link's queued messages (a
	// refusal, a goodbye) leave before it closes the connection.
	closeLinger = 100 * time.Millisecond
	// connectTimeout bounds a dial, and an accepted connection's wait for
	// its control stream.
	connectTimeout = 5 * time.Second
)

// LinksConfig configures Links. The zero value listens on 127.0.0.1 with
// an ephemeral port.
type LinksConfig struct {
	// Listen is the UDP address to bind (default 127.0.0.1:0).
	Listen netip.AddrPort
	// Logger receives link lifecycle logs (default: discard).
	Logger *slog.Logger
}

// Handler is what Links reports to: the owner of the state machine that
// the links carry (an sdn.Router, or a core.Node with one).
//
// Each method is called from a Links goroutine, never holding a lock
// that Send, Dial or CloseLink take, so an implementation locks its
// machine, feeds it, drains its outputs and calls Send, Dial and
// CloseLink from there with its lock held. The calls take no time
// argument: read the clock after taking the lock, so that the machine's
// time never runs backwards across goroutines. Close and Kill wait for
// the callbacks under way: call them from neither a callback nor under
// the lock the callbacks take.
//
// For one link, LinkUp comes before anything else and LinkDown, at most
// once, after everything else; a link's callbacks never overlap (its
// stream and datagram readers take turns). A link the owner closed
// (CloseLink) gets no LinkDown; a Message already on its way when the
// owner closed it, from another goroutine, may still arrive, and must be
// ignored as one for an unknown link (sdn.Router counts it).
type Handler interface {
	// LinkUp reports a new connection: dialed by Dial (info.Dialed, and
	// info.Peer the node dialed) or accepted. info.Binding is the TLS
	// exporter value of the connection, for the sdn handshake's MACs.
	// An accepted connection is reported when the dialer's first control
	// message arrives (QUIC shows a stream to the peer only with its
	// first bytes), so the dialing side must speak first, as
	// sdn.Router's hello does.
	LinkUp(id sdn.LinkID, info sdn.LinkInfo)
	// LinkDown reports a connection closed by the peer or the network.
	LinkDown(id sdn.LinkID)
	// DialFailed reports that a Dial did not connect.
	DialFailed(a sdn.Addr)
	// Message hands over one message received on link id, as a QUIC
	// datagram or on the control stream. data is borrowed for the call.
	Message(id sdn.LinkID, data []byte, datagram bool)
}

// Stats are the links' counters.
type Stats struct {
	Links        int
	Dials        uint64
	DialFailures uint64
	Accepted     uint64
	// QueueDrops counts messages dropped because a link's writer queue
	// was full (a stalled peer).
	QueueDrops uint64
	// Oversized counts data messages sent on the stream because they did
	// not fit the connection's maximum datagram payload: almost always
	// decided when queued (and then counted in StreamOut), rarely by the
	// datagram writer when the maximum shrank after queuing (and then
	// counted in DatagramsOut).
	Oversized uint64
	// DatagramsOut and StreamOut count the messages queued as QUIC
	// datagrams (pub/sub data) and on the control stream; DatagramsIn
	// and StreamIn those received.
	DatagramsOut, StreamOut uint64
	DatagramsIn, StreamIn   uint64
	// DatagramMax is the smallest, over the links, of the largest
	// datagram payload quic-go last reported for the link (0 without
	// links): data messages up to this size go as datagrams.
	DatagramMax int
}

// Links is the I/O half of a node's links to other nodes, with no state
// machine: it owns the UDP socket and quic-go's Transport and Listener,
// accepts and dials, and moves messages between the connections and a
// Handler. The owner keeps its machine and its mutex (see the package
// doc), so that one machine can have QUIC links and other I/O (the media
// driver's sockets) in one process.
//
// Links is safe for concurrent use.
type Links struct {
	log    *slog.Logger
	h      Handler
	udp    *net.UDPConn
	tr     *quicgo.Transport
	ln     *quicgo.Listener
	tlsSrv *tls.Config
	tlsCli *tls.Config
	qconf  *quicgo.Config
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards what follows. It is held only for bookkeeping, never
	// across a Handler call or a wait on the network, so that an owner
	// may call in with its own lock held.
	mu      sync.Mutex
	links   map[sdn.LinkID]*qlink
	next    sdn.LinkID
	stats   Stats
	started bool
	closed  bool

	wg sync.WaitGroup
}

type qlink struct {
	id     sdn.LinkID
	conn   *quicgo.Conn
	stream *quicgo.Stream
	ctl    chan *msg
	dg     chan *msg
	// free holds message buffers for reuse: taken when a message is
	// queued, given back by the writer once quic-go has it.
	free chan *msg
	done chan struct{}
	once sync.Once
	// cb is held across each of the link's Handler calls, so that they
	// never overlap and none follows LinkDown. Never taken by a method
	// the owner calls: the owner may call in from inside a callback.
	cb sync.Mutex

	// dgMax is the largest datagram payload quic-go reported for the
	// connection at dgAsked; guarded by Links.mu.
	dgMax   int
	dgAsked time.Time
}

func newLink(id sdn.LinkID, conn *quicgo.Conn, stream *quicgo.Stream) *qlink {
	return &qlink{id: id, conn: conn, stream: stream,
		ctl: make(chan *msg, queueLen), dg: make(chan *msg, queueLen),
		free: make(chan *msg, freeLen), done: make(chan struct{})}
}

func (l *qlink) stop() { l.once.Do(func() { close(l.done) }) }

// msg is one outgoing message in a reusable buffer. b is the message
// framed for the stream (length prefix, then the message), whichever
// way it goes: a datagram sends b without the prefix, and a datagram
// that turns out too large moves to the stream without another copy.
type msg struct{ b []byte }

// payload is the message without its frame header.
func (m *msg) payload() []byte { return m.b[frameHdrLen:] }

// get returns a buffer holding data framed for the stream: a reused one
// when the link has one, so that steady traffic allocates nothing.
func (l *qlink) get(data []byte) *msg {
	var m *msg
	select {
	case m = <-l.free:
	default:
		m = new(msg)
	}
	m.b = appendFrame(m.b[:0], data)
	return m
}

// put gives m back for reuse once quic-go no longer needs it.
func (l *qlink) put(m *msg) {
	if cap(m.b) > freeCapMax {
		return
	}
	select {
	case l.free <- m:
	default:
	}
}

// tooLarge is a payload no UDP datagram can carry: maxDatagram offers it
// to SendDatagram, which refuses it (with the connection's maximum) and
// never reads it.
var tooLarge [1 << 16]byte

// maxDatagram asks quic-go for the largest datagram payload conn can send
// now. quic-go says it only in the DatagramTooLargeError of a send, so
// this offers one it must refuse. Zero means no datagrams: the peer did
// not enable them.
func maxDatagram(conn *quicgo.Conn) int {
	if e, ok := errors.AsType[*quicgo.DatagramTooLargeError](conn.SendDatagram(tooLarge[:])); ok {
		return int(e.MaxDatagramPayloadSize)
	}
	return 0
}

// NewLinks binds the socket and starts listening; connections are
// accepted once Start is called, so that the owner can build its machine
// with LocalAddr first. h receives every report.
func NewLinks(cfg LinksConfig, h Handler) (*Links, error) {
	if h == nil {
		return nil, errors.New("quic: NewLinks needs a Handler")
	}
	if !cfg.Listen.IsValid() {
		cfg.Listen = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Listen))
	if err != nil {
		return nil, err
	}
	// Off loopback, quic-go starts at 1280-byte packets (1200 when the
	// socket refuses 1280) and path MTU discovery, on by default, probes
	// up to its largest: the sizes a path between two hosts can be
	// trusted with. On loopback nothing smaller than the largest is ever
	// needed.
	var packetSize uint16
	if udp.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap().IsLoopback() {
		packetSize = loopbackPacketSize
	}
	l := &Links{
		log: cfg.Logger,
		h:   h,
		udp: udp,
		tr:  &quicgo.Transport{Conn: udp},
		tlsSrv: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{alpn},
			MinVersion: tls.VersionTLS13},
		// The peer's certificate is not verified: identity is the sdn
		// handshake's, bound to this session by the exporter value.
		tlsCli: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn},
			MinVersion: tls.VersionTLS13, ServerName: "sdn"},
		qconf: &quicgo.Config{
			EnableDatagrams:      true,
			HandshakeIdleTimeout: 3 * time.Second,
			MaxIdleTimeout:       10 * time.Second,
			InitialPacketSize:    packetSize,
		},
		links: make(map[sdn.LinkID]*qlink),
	}
	l.ln, err = l.tr.Listen(l.tlsSrv, l.qconf)
	if err != nil {
		udp.Close()
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l, nil
}

// LocalAddr is the bound UDP address: the node's sdn.Config.Listen, which
// its peers dial.
func (l *Links) LocalAddr() netip.AddrPort {
	return l.udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Stats returns the links' counters.
func (l *Links) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Links = len(l.links)
	first := true
	for _, k := range l.links {
		if first || k.dgMax < s.DatagramMax {
			s.DatagramMax, first = k.dgMax, false
		}
	}
	return s
}

// Start accepts connections from now on. Calls after the first, or after
// Close, do nothing.
func (l *Links) Start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return
	}
	l.started = true
	l.wg.Add(1)
	go l.acceptLoop()
}

// Send queues data for link id: a data message (datagram) that fits the
// connection's maximum datagram payload as a QUIC datagram, anything else
// on the control stream. data is copied (the one copy per message, into a
// buffer the link reuses), so it may be the machine's buffer that its
// next call overwrites. Send never blocks: a full queue drops the message
// (Stats.QueueDrops), which the Router's soft state tolerates, and a link
// that is gone drops it silently. now is the owner's clock, which paces
// how often quic-go is asked again for the maximum datagram payload.
func (l *Links) Send(now time.Time, id sdn.LinkID, data []byte, datagram bool) {
	l.mu.Lock()
	if k := l.links[id]; k != nil {
		l.queueLocked(now, k, data, datagram)
	}
	l.mu.Unlock()
}

// Dial connects to a, in the background: it ends in LinkUp (Dialed true,
// Peer a.Node) or DialFailed, unless Links is closed first.
func (l *Links) Dial(a sdn.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.stats.Dials++
	l.wg.Add(1)
	go l.dial(a)
}

// CloseLink forgets link id at once (no LinkDown will follow) and closes
// its connection shortly after, so that the messages already queued, such
// as a refusal or a goodbye, can leave first.
func (l *Links) CloseLink(id sdn.LinkID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.links[id]
	if k == nil || l.closed {
		return
	}
	delete(l.links, id)
	l.log.Debug("sdn link closed", "link", id)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTimer(closeLinger)
		select {
		case <-t.C:
		case <-l.ctx.Done():
			t.Stop()
		}
		k.stop()
		_ = k.conn.CloseWithError(0, "closed by router")
	}()
}

// Close closes every link and the socket, and waits for the goroutines.
// No report follows it. It must not be called from a Handler method, nor
// with a lock held that one takes: it waits for the callbacks under way.
func (l *Links) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	links := l.links
	l.links = map[sdn.LinkID]*qlink{}
	l.mu.Unlock()
	l.cancel()
	for _, k := range links {
		k.stop()
		_ = k.conn.CloseWithError(0, "closing")
	}
	_ = l.ln.Close()
	err := l.tr.Close()
	l.udp.Close()
	l.wg.Wait()
	return err
}

// Kill drops every link and the socket at once, without closing the
// connections (the peers find out by silence): a crashed node, for
// tests. The same rule about locks as for Close holds.
func (l *Links) Kill() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	_ = l.ln.Close()
	l.udp.Close()
	_ = l.tr.Close()
	l.wg.Wait()
}

// queueLocked hands data to one of k's writers: a data message that fits
// the connection's maximum datagram payload as a datagram, anything else
// on the stream.
func (l *Links) queueLocked(now time.Time, k *qlink, data []byte, datagram bool) {
	q, n := k.ctl, &l.stats.StreamOut
	if datagram {
		if len(data) > k.dgMax && now.Sub(k.dgAsked) >= dgRecheck {
			// Path MTU discovery may have raised the maximum since.
			k.dgMax, k.dgAsked = maxDatagram(k.conn), now
		}
		if len(data) <= k.dgMax {
			q, n = k.dg, &l.stats.DatagramsOut
		} else {
			l.stats.Oversized++
		}
	}
	m := k.get(data)
	select {
	case q <- m:
		*n++
	default:
		k.put(m)
		l.stats.QueueDrops++
	}
}

func (l *Links) dial(a sdn.Addr) {
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(l.ctx, connectTimeout)
	defer cancel()
	conn, err := l.tr.Dial(ctx, net.UDPAddrFromAddrPort(a.UDP), l.tlsCli, l.qconf)
	var stream *quicgo.Stream
	if err == nil {
		stream, err = conn.OpenStreamSync(ctx)
	}
	if err != nil {
		if conn != nil {
			_ = conn.CloseWithError(0, "")
		}
		l.log.Debug("sdn dial failed", "addr", a, "err", err)
		l.mu.Lock()
		l.stats.DialFailures++
		closed := l.closed
		l.mu.Unlock()
		if !closed {
			l.h.DialFailed(a)
		}
		return
	}
	l.attach(conn, stream, sdn.LinkInfo{Dialed: true, Peer: a.Node})
}

func (l *Links) acceptLoop() {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept(l.ctx)
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			ctx, cancel := context.WithTimeout(l.ctx, connectTimeout)
			defer cancel()
			stream, err := conn.AcceptStream(ctx)
			if err != nil {
				_ = conn.CloseWithError(0, "no control stream")
				return
			}
			l.mu.Lock()
			l.stats.Accepted++
			l.mu.Unlock()
			l.attach(conn, stream, sdn.LinkInfo{})
		}()
	}
}

// attach registers a connection, reports it (LinkUp) and then starts its
// readers and writers, so that nothing of the link reaches the Handler
// before LinkUp.
func (l *Links) attach(conn *quicgo.Conn, stream *quicgo.Stream, info sdn.LinkInfo) {
	st := conn.ConnectionState().TLS
	binding, err := st.ExportKeyingMaterial(exporterName, nil, 32)
	if err != nil {
		_ = conn.CloseWithError(0, "no exporter")
		return
	}
	info.Binding = binding
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = conn.CloseWithError(0, "closing")
		return
	}
	l.next++
	k := newLink(l.next, conn, stream)
	k.dgMax, k.dgAsked = maxDatagram(conn), time.Now()
	l.links[k.id] = k
	// Taken before mu is released: no reader exists yet, so this cannot
	// wait, and it keeps down and handle out until LinkUp has returned.
	k.cb.Lock()
	l.mu.Unlock()
	l.h.LinkUp(k.id, info)
	k.cb.Unlock()
	l.log.Debug("sdn link up", "link", k.id, "remote", conn.RemoteAddr(), "dialed", info.Dialed)
	l.wg.Add(4)
	go l.writeCtl(k)
	go l.writeDatagrams(k)
	go l.readStream(k)
	go l.readDatagrams(k)
}

// down reports a link lost by the network or the peer, unless the owner
// closed it already (CloseLink) or Links is closing.
func (l *Links) down(k *qlink) {
	k.stop()
	k.cb.Lock()
	l.mu.Lock()
	report := l.links[k.id] == k && !l.closed
	if report {
		delete(l.links, k.id)
	}
	l.mu.Unlock()
	if report {
		l.h.LinkDown(k.id)
	}
	k.cb.Unlock()
	// CloseWithError waits for the connection to wind down: under no
	// lock.
	_ = k.conn.CloseWithError(0, "")
}

// handle reports one message received on k, unless k is gone.
func (l *Links) handle(k *qlink, m []byte, datagram bool) {
	k.cb.Lock()
	defer k.cb.Unlock()
	l.mu.Lock()
	if l.closed || l.links[k.id] != k {
		l.mu.Unlock()
		return
	}
	if datagram {
		l.stats.DatagramsIn++
	} else {
		l.stats.StreamIn++
	}
	l.mu.Unlock()
	l.h.Message(k.id, m, datagram)
}

func (l *Links) writeCtl(k *qlink) {
	defer l.wg.Done()
	for {
		select {
		case <-k.done:
			return
		case <-l.ctx.Done():
			return
		case m := <-k.ctl:
			if err := writeMsg(k, m, k.stream); err != nil {
				l.down(k)
				return
			}
		}
	}
}

// writeMsg writes m, already framed, on the stream and gives its buffer
// back (a Writer keeps nothing of what it was given).
func writeMsg(k *qlink, m *msg, w io.Writer) error {
	_, err := w.Write(m.b)
	k.put(m)
	return err
}

func (l *Links) writeDatagrams(k *qlink) {
	defer l.wg.Done()
	send := k.conn.SendDatagram
	for {
		select {
		case <-k.done:
			return
		case <-l.ctx.Done():
			return
		case m := <-k.dg:
			if err := l.sendDatagram(k, m, send); err != nil {
				l.down(k)
				return
			}
		}
	}
}

// sendDatagram sends m as a datagram with send (the connection's
// SendDatagram, which copies the payload before it returns) and gives its
// buffer back. If the connection's maximum went down after m was queued,
// m moves to the stream instead.
func (l *Links) sendDatagram(k *qlink, m *msg, send func([]byte) error) error {
	err := send(m.payload())
	if err == nil {
		k.put(m)
		return nil
	}
	tooBig, ok := errors.AsType[*quicgo.DatagramTooLargeError](err)
	if !ok {
		k.put(m)
		return err
	}
	l.mu.Lock()
	k.dgMax, k.dgAsked = int(tooBig.MaxDatagramPayloadSize), time.Now()
	select {
	case k.ctl <- m:
		l.stats.Oversized++
	default:
		k.put(m)
		l.stats.QueueDrops++
	}
	l.mu.Unlock()
	return nil
}

func (l *Links) readStream(k *qlink) {
	defer l.wg.Done()
	buf := make([]byte, 4096)
	for {
		m, next, err := readFrame(k.stream, buf)
		if err != nil {
			if errors.Is(err, errBadFrame) {
				l.log.Debug("sdn bad frame", "link", k.id, "err", err)
			}
			l.down(k)
			return
		}
		buf = next
		l.handle(k, m, false)
	}
}

// readDatagrams reports every datagram of k. Each arrives in a slice
// quic-go allocated for it (its receive queue copies the frame out of the
// packet buffer), which Message borrows; there is no way to hand quic-go
// a buffer to reuse.
func (l *Links) readDatagrams(k *qlink) {
	defer l.wg.Done()
	for {
		m, err := k.conn.ReceiveDatagram(l.ctx)
		if err != nil {
			l.down(k)
			return
		}
		l.handle(k, m, true)
	}
}

// errBadFrame reports a control frame whose length is zero or above
// maxFrame: the stream cannot be resynchronised, so the link is dropped.
var errBadFrame = errors.New("quic: bad control frame length")

// appendFrame frames one control message: a 4-byte big-endian length
// (frameHdrLen), then the message.
func appendFrame(b, m []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	return append(b, m...)
}

// readFrame reads one control message framed by appendFrame into buf,
// grown when too small; next is the buffer to pass to the next call.
// The length prefix is read into buf too: a local array handed to the
// Reader interface would escape, one allocation per frame.
func readFrame(r io.Reader, buf []byte) (m, next []byte, err error) {
	if cap(buf) < frameHdrLen {
		buf = make([]byte, 4096)
	}
	hdr := buf[:frameHdrLen]
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, buf, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n == 0 || n > maxFrame {
		return nil, buf, fmt.Errorf("%w: %d", errBadFrame, n)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	m = buf[:n]
	if _, err := io.ReadFull(r, m); err != nil {
		return nil, buf, err
	}
	return m, buf, nil
}

// selfSigned makes the node's TLS certificate: a fresh ECDSA P-256 key,
// self-signed, valid for a year.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := crand.Int(crand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		DNSNames:     []string{"sdn"},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("quic: self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
