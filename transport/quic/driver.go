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
)

// Config configures a Driver.
type Config struct {
	// Router configures the node (ID and Secret at least). Its Listen is
	// set to the socket's address; its Seed, when zero, to a random one.
	Router sdn.Config
	// Listen is the UDP address to bind (default 127.0.0.1:0).
	Listen netip.AddrPort
	// OnEvent and OnData receive the Router's control events and local
	// deliveries. They run with the Driver's mutex held: they must not
	// block or call the Driver, and must copy Payload to keep it.
	OnEvent func(sdn.Event)
	OnData  func(sdn.Delivery)
	// Logger receives link lifecycle logs (default: discard).
	Logger *slog.Logger
}

// Stats are the driver's counters.
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

// Driver runs an sdn.Router over QUIC links.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	udp    *net.UDPConn
	tr     *quicgo.Transport
	ln     *quicgo.Listener
	tlsSrv *tls.Config
	tlsCli *tls.Config
	qconf  *quicgo.Config

	mu     sync.Mutex
	r      *sdn.Router
	links  map[sdn.LinkID]*qlink
	next   sdn.LinkID
	sleep  time.Time
	stats  Stats
	closed bool
	ctx    context.Context
	cancel context.CancelFunc

	wake chan struct{}
	wg   sync.WaitGroup
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

	// dgMax is the largest datagram payload quic-go reported for the
	// connection at dgAsked; guarded by the Driver's mutex.
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

// New binds the socket and creates the Router. Call Run to serve.
func New(cfg Config) (*Driver, error) {
	if !cfg.Listen.IsValid() {
		cfg.Listen = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Router.Seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		cfg.Router.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Listen))
	if err != nil {
		return nil, err
	}
	cfg.Router.Listen = udp.LocalAddr().(*net.UDPAddr).AddrPort()
	// Off loopback, quic-go starts at 1280-byte packets (1200 when the
	// socket refuses 1280) and path MTU discovery, on by default, probes
	// up to its largest: the sizes a path between two hosts can be
	// trusted with. On loopback nothing smaller than the largest is ever
	// needed.
	var packetSize uint16
	if cfg.Router.Listen.Addr().Unmap().IsLoopback() {
		packetSize = loopbackPacketSize
	}
	r, err := sdn.New(cfg.Router, time.Now())
	if err != nil {
		udp.Close()
		return nil, err
	}
	d := &Driver{
		cfg:    cfg,
		log:    cfg.Logger,
		udp:    udp,
		tr:     &quicgo.Transport{Conn: udp},
		tlsSrv: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{alpn}, MinVersion: tls.VersionTLS13},
		// The peer's certificate is not verified: identity is the sdn
		// handshake's, bound to this session by the exporter value.
		tlsCli: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}, MinVersion: tls.VersionTLS13, ServerName: "sdn"},
		qconf: &quicgo.Config{
			EnableDatagrams:      true,
			HandshakeIdleTimeout: 3 * time.Second,
			MaxIdleTimeout:       10 * time.Second,
			InitialPacketSize:    packetSize,
		},
		r:     r,
		links: make(map[sdn.LinkID]*qlink),
		wake:  make(chan struct{}, 1),
	}
	d.ln, err = d.tr.Listen(d.tlsSrv, d.qconf)
	if err != nil {
		udp.Close()
		return nil, err
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Addr is the node's printable address.
func (d *Driver) Addr() sdn.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r.Address()
}

// Stats returns the driver's counters.
func (d *Driver) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Links = len(d.links)
	first := true
	for _, l := range d.links {
		if first || l.dgMax < s.DatagramMax {
			s.DatagramMax, first = l.dgMax, false
		}
	}
	return s
}

// Do runs fn on the Router under the Driver's mutex, with the current
// time, and then drains the Router's outputs.
func (d *Driver) Do(fn func(now time.Time, r *sdn.Router)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	now := time.Now()
	fn(now, d.r)
	d.drainLocked(now)
}

// Run serves until ctx is done or Close is called.
func (d *Driver) Run(ctx context.Context) error {
	d.wg.Add(1)
	go d.acceptLoop()
	d.Do(func(time.Time, *sdn.Router) {})
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		d.mu.Lock()
		next := now.Add(time.Second)
		if at, ok := d.r.PollTimeout(); ok && at.Before(next) {
			next = at
		}
		d.sleep = next
		d.mu.Unlock()
		timer.Reset(max(next.Sub(now), 0))
		select {
		case <-ctx.Done():
			d.Close()
			return nil
		case <-d.ctx.Done():
			return nil
		case <-d.wake:
		case <-timer.C:
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil
		}
		now = time.Now()
		d.r.HandleTimeout(now)
		d.drainLocked(now)
		d.mu.Unlock()
	}
}

// Close leaves the overlay (the Router's Close, whose messages get a
// moment to leave), closes every link and the socket, and waits for the
// goroutines.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	now := time.Now()
	d.r.Close(now)
	d.drainLocked(now)
	d.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	d.mu.Lock()
	d.closed = true
	links := d.links
	d.links = map[sdn.LinkID]*qlink{}
	d.mu.Unlock()
	d.cancel()
	for _, l := range links {
		l.stop()
		_ = l.conn.CloseWithError(0, "closing")
	}
	_ = d.ln.Close()
	err := d.tr.Close()
	d.udp.Close()
	d.wg.Wait()
	return err
}

// Kill drops every link and the socket at once, without telling the
// neighbours (they find out by silence): a crashed node, for tests.
func (d *Driver) Kill() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	_ = d.ln.Close()
	d.udp.Close()
	_ = d.tr.Close()
	d.wg.Wait()
}

// drainLocked handles every output of the Router.
func (d *Driver) drainLocked(now time.Time) {
	for {
		t, ok := d.r.PollTransmit()
		if !ok {
			break
		}
		if l := d.links[t.Link]; l != nil {
			d.queueLocked(now, l, t)
		}
	}
	for {
		dv, ok := d.r.PollData()
		if !ok {
			break
		}
		if d.cfg.OnData != nil {
			d.cfg.OnData(dv)
		}
	}
	for {
		e, ok := d.r.PollEvent()
		if !ok {
			break
		}
		switch e := e.(type) {
		case sdn.EventDial:
			d.stats.Dials++
			d.wg.Add(1)
			go d.dial(e.Addr)
		case sdn.EventClose:
			if l := d.links[e.Link]; l != nil {
				delete(d.links, e.Link)
				d.log.Debug("sdn link closed", "link", e.Link)
				// Let queued messages (a refusal, a goodbye) leave first.
				go func() {
					time.Sleep(100 * time.Millisecond)
					l.stop()
					_ = l.conn.CloseWithError(0, "closed by router")
				}()
			}
		}
		if d.cfg.OnEvent != nil {
			d.cfg.OnEvent(e)
		}
	}
	if at, ok := d.r.PollTimeout(); ok && at.Before(d.sleep) {
		d.sleep = at
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// queueLocked hands t to one of l's writers: a data message that fits the
// connection's maximum datagram payload as a datagram, anything else on
// the stream. t.Data is the Router's until its next call, so it is copied
// (the one copy per message) into a buffer of the link's.
func (d *Driver) queueLocked(now time.Time, l *qlink, t sdn.Transmit) {
	q, n := l.ctl, &d.stats.StreamOut
	if t.Datagram {
		if len(t.Data) > l.dgMax && now.Sub(l.dgAsked) >= dgRecheck {
			// Path MTU discovery may have raised the maximum since.
			l.dgMax, l.dgAsked = maxDatagram(l.conn), now
		}
		if len(t.Data) <= l.dgMax {
			q, n = l.dg, &d.stats.DatagramsOut
		} else {
			d.stats.Oversized++
		}
	}
	m := l.get(t.Data)
	select {
	case q <- m:
		*n++
	default:
		l.put(m)
		d.stats.QueueDrops++
	}
}

func (d *Driver) dial(a sdn.Addr) {
	defer d.wg.Done()
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	conn, err := d.tr.Dial(ctx, net.UDPAddrFromAddrPort(a.UDP), d.tlsCli, d.qconf)
	var stream *quicgo.Stream
	if err == nil {
		stream, err = conn.OpenStreamSync(ctx)
	}
	if err != nil {
		if conn != nil {
			_ = conn.CloseWithError(0, "")
		}
		d.log.Debug("sdn dial failed", "addr", a, "err", err)
		d.mu.Lock()
		d.stats.DialFailures++
		if !d.closed {
			now := time.Now()
			d.r.HandleDialFailed(now, a)
			d.drainLocked(now)
		}
		d.mu.Unlock()
		return
	}
	d.attach(conn, stream, sdn.LinkInfo{Dialed: true, Peer: a.Node})
}

func (d *Driver) acceptLoop() {
	defer d.wg.Done()
	for {
		conn, err := d.ln.Accept(d.ctx)
		if err != nil {
			return
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
			defer cancel()
			stream, err := conn.AcceptStream(ctx)
			if err != nil {
				_ = conn.CloseWithError(0, "no control stream")
				return
			}
			d.mu.Lock()
			d.stats.Accepted++
			d.mu.Unlock()
			d.attach(conn, stream, sdn.LinkInfo{})
		}()
	}
}

// attach registers a connection with the Router and starts its readers
// and writers.
func (d *Driver) attach(conn *quicgo.Conn, stream *quicgo.Stream, info sdn.LinkInfo) {
	st := conn.ConnectionState().TLS
	binding, err := st.ExportKeyingMaterial(exporterName, nil, 32)
	if err != nil {
		_ = conn.CloseWithError(0, "no exporter")
		return
	}
	info.Binding = binding
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		_ = conn.CloseWithError(0, "closing")
		return
	}
	d.next++
	l := newLink(d.next, conn, stream)
	d.links[l.id] = l
	now := time.Now()
	l.dgMax, l.dgAsked = maxDatagram(conn), now
	d.r.HandleLinkUp(now, l.id, info)
	d.drainLocked(now)
	d.mu.Unlock()
	d.log.Debug("sdn link up", "link", l.id, "remote", conn.RemoteAddr(), "dialed", info.Dialed)
	d.wg.Add(4)
	go d.writeCtl(l)
	go d.writeDatagrams(l)
	go d.readStream(l)
	go d.readDatagrams(l)
}

// down reports a link lost by the network or the peer.
func (d *Driver) down(l *qlink) {
	l.stop()
	d.mu.Lock()
	if d.links[l.id] == l && !d.closed {
		delete(d.links, l.id)
		now := time.Now()
		d.r.HandleLinkDown(now, l.id)
		d.drainLocked(now)
	}
	d.mu.Unlock()
	// CloseWithError waits for the connection to wind down: not under
	// the mutex.
	_ = l.conn.CloseWithError(0, "")
}

func (d *Driver) writeCtl(l *qlink) {
	defer d.wg.Done()
	for {
		select {
		case <-l.done:
			return
		case <-d.ctx.Done():
			return
		case m := <-l.ctl:
			if err := writeMsg(l, m, l.stream); err != nil {
				d.down(l)
				return
			}
		}
	}
}

// writeMsg writes m, already framed, on the stream and gives its buffer
// back (a Writer keeps nothing of what it was given).
func writeMsg(l *qlink, m *msg, w io.Writer) error {
	_, err := w.Write(m.b)
	l.put(m)
	return err
}

func (d *Driver) writeDatagrams(l *qlink) {
	defer d.wg.Done()
	send := l.conn.SendDatagram
	for {
		select {
		case <-l.done:
			return
		case <-d.ctx.Done():
			return
		case m := <-l.dg:
			if err := d.sendDatagram(l, m, send); err != nil {
				d.down(l)
				return
			}
		}
	}
}

// sendDatagram sends m as a datagram with send (the connection's
// SendDatagram, which copies the payload before it returns) and gives its
// buffer back. If the connection's maximum went down after m was queued,
// m moves to the stream instead.
func (d *Driver) sendDatagram(l *qlink, m *msg, send func([]byte) error) error {
	err := send(m.payload())
	if err == nil {
		l.put(m)
		return nil
	}
	tooBig, ok := errors.AsType[*quicgo.DatagramTooLargeError](err)
	if !ok {
		l.put(m)
		return err
	}
	d.mu.Lock()
	l.dgMax, l.dgAsked = int(tooBig.MaxDatagramPayloadSize), time.Now()
	select {
	case l.ctl <- m:
		d.stats.Oversized++
	default:
		l.put(m)
		d.stats.QueueDrops++
	}
	d.mu.Unlock()
	return nil
}

func (d *Driver) readStream(l *qlink) {
	defer d.wg.Done()
	buf := make([]byte, 4096)
	for {
		m, next, err := readFrame(l.stream, buf)
		if err != nil {
			if errors.Is(err, errBadFrame) {
				d.log.Debug("sdn bad frame", "link", l.id, "err", err)
			}
			d.down(l)
			return
		}
		buf = next
		d.handle(l, m, false)
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

// readDatagrams feeds the Router every datagram of l. Each arrives in a
// slice quic-go allocated for it (its receive queue copies the frame out
// of the packet buffer), which HandleMessage borrows; there is no way to
// hand quic-go a buffer to reuse.
func (d *Driver) readDatagrams(l *qlink) {
	defer d.wg.Done()
	for {
		m, err := l.conn.ReceiveDatagram(d.ctx)
		if err != nil {
			d.down(l)
			return
		}
		d.handle(l, m, true)
	}
}

func (d *Driver) handle(l *qlink, m []byte, datagram bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.links[l.id] != l {
		return
	}
	if datagram {
		d.stats.DatagramsIn++
	} else {
		d.stats.StreamIn++
	}
	now := time.Now()
	d.r.HandleMessage(now, l.id, m)
	d.drainLocked(now)
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
