package driver

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sansrtc/sfu/core"
	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/transport/udp"
	"github.com/sansrtc/sfu/transport/webrtc"
	"github.com/sansrtc/sfu/transport/whip"
)

// Limits of a worker's inbox (see worker.post).
const (
	// maxQueuedCommands bounds the session setups waiting for a worker:
	// past it an offer gets whip.ErrOverloaded instead of queueing behind
	// a worker that cannot keep up.
	maxQueuedCommands = 256
	// maxQueuedLinkData bounds the media a worker has not yet taken from
	// its in-process links; past it data messages are dropped and counted
	// (WorkerStats.LinkDrops), as a congested link would. Control messages
	// are never dropped.
	maxQueuedLinkData = 8192
	// maxBatch flushes a worker's egress batch early, bounding the
	// buffers one read batch can hold.
	maxBatch = 1024
	// linkGroup is how many in-process link messages a worker feeds its
	// node per hold of its lock.
	linkGroup = 64
	// inprocLink marks the LinkIDs of the in-process links between
	// workers; the low bits are the other worker's index. QUIC links
	// count up from 1 and never reach it.
	inprocLink sdn.LinkID = 1 << 62
	// relinkDelay is how long an in-process link the overlay closed stays
	// down before it is brought up again.
	relinkDelay = 200 * time.Millisecond
)

var errShuttingDown = fmt.Errorf("%w: shutting down", whip.ErrOverloaded)

// WorkerStats are one worker's counters (Stats.Workers).
type WorkerStats struct {
	// UDPAddr and TCPAddr are the worker's sockets (TCPAddr invalid with
	// DisableTCP).
	UDPAddr, TCPAddr netip.AddrPort
	Sessions         int
	SessionsOpened   uint64
	SessionsExpired  uint64
	Sent, SendErrors uint64
	NotConnected     uint64
	// LinkDrops counts media messages from other workers dropped because
	// this worker had maxQueuedLinkData of them waiting.
	LinkDrops uint64
	// Handoffs counts datagrams the single-port mode's read loop passed
	// to this worker.
	Handoffs uint64
	// UDP is what the worker's socket's batched writes did (zero for the
	// workers that share worker 0's socket in single-port mode: it is
	// counted there).
	UDP udp.WriteStats
	TCP udp.TCPStats
}

// worker is one core.Node with its sockets, the goroutine that runs its
// timers and commands, and the lock of its data path.
type worker struct {
	d   *Driver
	idx int
	id  sdn.NodeID // the node's overlay id (zero: no overlay)
	mux *udp.Mux   // its own, or worker 0's in single-port mode
	tcp *udp.TCPListener

	mu         sync.Mutex
	node       *core.Node
	peers      map[core.Handle]*peer
	plain      []byte
	bufs       [][]byte // egress buffers; nbuf of them hold batch
	nbuf       int
	batch      []udp.Datagram
	rtcpBuf    []byte
	sleep      time.Time // when the loop will next wake
	stats      WorkerStats
	closed     bool
	failed     []*peer
	publishers int
	lastTWCC   time.Time
	// lastConsent is when sessions were last checked for expiry.
	lastConsent time.Time
	scratch     []*peer
	// holdFlush keeps the egress batch across inputs while a read batch
	// or a group of link messages is being fed (see inBatch).
	holdFlush bool

	// inBatch is set on the UDP read goroutine when a datagram of the
	// current recvmmsg batch reaches one of this worker's sessions; the
	// egress then waits for the end of the read batch (udp.Config's
	// BatchDone), so one write carries every packet the batch caused and
	// GSO can coalesce a viewer's packets of one frame.
	inBatch atomic.Bool

	wake chan struct{}

	imu     sync.Mutex
	inbox   []item
	spare   []item
	pool    [][]byte
	ncmds   int // commands in inbox
	ndata   int // link data messages in inbox
	running bool
	stopped bool
	// counters kept outside mu
	linkDrops atomic.Uint64
	handoffs  atomic.Uint64
}

// item is one entry of a worker's inbox, in arrival order: a command, a
// message from another worker's node, or (single-port mode) a datagram
// for one of its sessions.
type item struct {
	cmd *command
	// link message
	link     sdn.LinkID
	data     []byte
	datagram bool
	// datagram
	sess *webrtc.Session
	from netip.AddrPort
	wr   udp.Writer
	at   time.Time
}

// command is work for the worker's goroutine, run under its lock.
type command struct {
	fn   func(now time.Time) error
	done chan error // nil: nobody waits
}

func newWorker(d *Driver, idx int, node *core.Node, id sdn.NodeID) *worker {
	return &worker{d: d, idx: idx, id: id, node: node, peers: map[core.Handle]*peer{},
		plain: make([]byte, 1500), rtcpBuf: make([]byte, 1500), wake: make(chan struct{}, 1)}
}

// isInproc reports whether id is an in-process link to another worker.
func isInproc(id sdn.LinkID) bool { return id&inprocLink != 0 }

func (w *worker) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// do runs fn on the worker and returns its error. Commands queue in the
// worker's inbox; bounded ones are refused with whip.ErrOverloaded when
// maxQueuedCommands wait already. Before Run, fn runs at once under the
// lock.
func (w *worker) do(bounded bool, fn func(now time.Time) error) error {
	c := &command{fn: fn, done: make(chan error, 1)}
	w.imu.Lock()
	switch {
	case w.stopped:
		w.imu.Unlock()
		return errShuttingDown
	case !w.running:
		w.imu.Unlock()
		return w.run(c)
	case bounded && w.ncmds >= maxQueuedCommands:
		w.imu.Unlock()
		return fmt.Errorf("%w: %d session setups waiting", whip.ErrOverloaded, maxQueuedCommands)
	}
	w.inbox = append(w.inbox, item{cmd: c})
	w.ncmds++
	w.imu.Unlock()
	w.notify()
	return <-c.done
}

// post queues fn without waiting for it (state callbacks, which must
// return at once). After shutdown it is dropped.
func (w *worker) post(fn func(now time.Time) error) {
	w.imu.Lock()
	if w.stopped {
		w.imu.Unlock()
		return
	}
	if !w.running {
		w.imu.Unlock()
		go func() { _ = w.run(&command{fn: fn}) }() // never under the caller's locks
		return
	}
	w.inbox = append(w.inbox, item{cmd: &command{fn: fn}})
	w.ncmds++
	w.imu.Unlock()
	w.notify()
}

// run runs one command under the lock.
func (w *worker) run(c *command) error {
	w.mu.Lock()
	var err error
	if w.closed {
		err = errShuttingDown
	} else {
		now := time.Now()
		err = c.fn(now)
		w.drainLocked(now)
	}
	w.mu.Unlock()
	if c.done != nil {
		c.done <- err
	}
	return err
}

// deliver queues a message of another worker's node (an in-process
// link). data is copied: it is valid only until the sender's next call
// into its node.
func (w *worker) deliver(from int, data []byte, datagram bool) {
	w.imu.Lock()
	if w.stopped {
		w.imu.Unlock()
		return
	}
	if datagram && w.ndata >= maxQueuedLinkData {
		w.imu.Unlock()
		w.linkDrops.Add(1)
		return
	}
	var b []byte
	if n := len(w.pool); n > 0 && cap(w.pool[n-1]) >= len(data) {
		b, w.pool = w.pool[n-1][:len(data)], w.pool[:n-1]
	} else {
		b = make([]byte, len(data), max(len(data), 1500))
	}
	copy(b, data)
	w.inbox = append(w.inbox, item{link: inprocLink | sdn.LinkID(from), data: b, datagram: datagram})
	if datagram {
		w.ndata++
	}
	w.imu.Unlock()
	w.notify()
}

// handoff queues a datagram read by the single-port mode's shared socket
// for one of this worker's sessions; like deliver it copies b.
func (w *worker) handoff(now time.Time, s *webrtc.Session, from netip.AddrPort, wr udp.Writer, b []byte) {
	w.imu.Lock()
	if w.stopped {
		w.imu.Unlock()
		return
	}
	if w.ndata >= maxQueuedLinkData {
		w.imu.Unlock()
		w.linkDrops.Add(1)
		return
	}
	var buf []byte
	if n := len(w.pool); n > 0 && cap(w.pool[n-1]) >= len(b) {
		buf, w.pool = w.pool[n-1][:len(b)], w.pool[:n-1]
	} else {
		buf = make([]byte, len(b), max(len(b), 1500))
	}
	copy(buf, b)
	w.inbox = append(w.inbox, item{data: buf, datagram: true, sess: s, from: from, wr: wr, at: now})
	w.ndata++
	w.imu.Unlock()
	w.handoffs.Add(1)
	w.notify()
}

// takeInbox swaps the inbox out.
func (w *worker) takeInbox() []item {
	w.imu.Lock()
	items := w.inbox
	w.inbox, w.spare = w.spare[:0], nil
	w.ncmds, w.ndata = 0, 0
	w.imu.Unlock()
	return items
}

// recycle returns the inbox slice and the message buffers to their pools.
func (w *worker) recycle(items []item) {
	w.imu.Lock()
	for i := range items {
		if items[i].data != nil && len(w.pool) < 4096 {
			w.pool = append(w.pool, items[i].data[:0])
		}
	}
	clear(items)
	if w.spare == nil {
		w.spare = items[:0]
	}
	w.imu.Unlock()
}

// loop is the worker's goroutine: it sleeps until the node's deadline,
// the next feedback or consent check, or until its inbox has work.
func (w *worker) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		w.mu.Lock()
		next := now.Add(consentCheckInterval)
		if w.publishers > 0 {
			next = now.Add(twccInterval)
		}
		if at, ok := w.node.PollTimeout(); ok && at.Before(next) {
			next = at
		}
		w.sleep = next
		w.mu.Unlock()
		timer.Reset(max(next.Sub(now), 0))
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		items := w.takeInbox()
		w.process(items)
		w.recycle(items)
		now = time.Now()
		w.mu.Lock()
		w.node.HandleTimeout(now)
		if now.Sub(w.lastTWCC) >= twccInterval {
			w.lastTWCC = now
			w.sendTWCCLocked()
		}
		if now.Sub(w.lastConsent) >= consentCheckInterval {
			w.lastConsent = now
			w.expireLocked(now)
		}
		w.drainLocked(now)
		w.mu.Unlock()
	}
}

// process runs the inbox in order. Commands take the lock one by one, so
// forwarding interleaves with session setup; link messages and handed-off
// datagrams are fed in groups under one hold, their egress sent in one
// batch per group.
func (w *worker) process(items []item) {
	for i := 0; i < len(items); {
		it := &items[i]
		if it.cmd != nil {
			_ = w.run(it.cmd)
			i++
			continue
		}
		if it.sess != nil { // single-port handoffs: the session takes the lock itself
			j := i
			w.inBatch.Store(true)
			for ; j < len(items) && j-i < linkGroup && items[j].sess != nil; j++ {
				items[j].sess.HandleDatagram(items[j].at, items[j].from, items[j].wr, items[j].data)
			}
			w.batchDone()
			i = j
			continue
		}
		w.mu.Lock()
		now := time.Now()
		w.holdFlush = true
		j := i
		for ; j < len(items) && j-i < linkGroup && items[j].cmd == nil && items[j].sess == nil; j++ {
			if !w.closed {
				w.node.HandleLinkMessage(now, items[j].link, items[j].data)
				w.drainLocked(now)
			}
		}
		w.holdFlush = false
		w.flushLocked()
		w.mu.Unlock()
		i = j
	}
}

// batchDone ends a read batch: what its datagrams caused goes out in one
// write (udp.Config.BatchDone).
func (w *worker) batchDone() {
	if w.inBatch.Swap(false) {
		w.mu.Lock()
		w.flushLocked()
		w.mu.Unlock()
	}
}

// stop refuses new work and fails the commands still queued.
func (w *worker) stop() {
	w.imu.Lock()
	w.stopped = true
	items := w.inbox
	w.inbox = nil
	w.imu.Unlock()
	for _, it := range items {
		if it.cmd != nil && it.cmd.done != nil {
			it.cmd.done <- errShuttingDown
		}
	}
}

// sortedPeers lists peers by handle, so map order never decides anything.
// The slice is reused: it is valid until the next call.
func (w *worker) sortedPeers() []*peer {
	clear(w.scratch) // drop closed peers from the last call
	ps := w.scratch[:0]
	for _, p := range w.peers {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *peer) int { return cmp.Compare(a.h, b.h) })
	w.scratch = ps
	return ps
}

// expireLocked closes sessions whose consent lapsed or whose DTLS failed.
func (w *worker) expireLocked(now time.Time) {
	for _, p := range w.failed {
		if w.peers[p.h] == p {
			w.stats.SessionsExpired++
			w.closePeerLocked(now, p, "dtls failed or closed by the peer")
		}
	}
	w.failed = w.failed[:0]
	for _, p := range w.sortedPeers() {
		switch {
		case p.sess.Expired(now):
			w.stats.SessionsExpired++
			w.closePeerLocked(now, p, "ice consent expired")
		case !p.connected && now.Sub(p.created) >= w.d.cfg.ConnectTimeout:
			w.stats.SessionsExpired++
			w.closePeerLocked(now, p, "not connected in time")
		}
	}
}

func (w *worker) closePeerLocked(now time.Time, p *peer, why string) {
	for _, u := range p.ufrags {
		w.mux.Unregister(u)
	}
	_ = p.sess.Close()
	_ = w.node.CloseEndpoint(now, p.h)
	delete(w.peers, p.h)
	if p.twcc != nil {
		w.publishers--
	}
	w.d.release(p.place, p.id)
	w.d.log.LogAttrs(context.Background(), slog.LevelInfo, "session closed", slog.String("id", p.id),
		slog.String("role", p.role.String()), slog.String("room", p.room), slog.String("peer", p.peerID),
		slog.Int("worker", w.idx), slog.String("why", why))
	w.drainLocked(now)
}

// input runs one packet input on the node and drains its outputs.
func (w *worker) input(now time.Time, h core.Handle, pkt []byte, rtcp bool) {
	hold := w.inBatch.Load()
	w.mu.Lock()
	p := w.peers[h]
	if p == nil {
		w.mu.Unlock()
		return
	}
	if rtcp {
		_ = w.node.HandleRTCP(now, h, pkt)
	} else {
		if p.twcc != nil && p.pkt.Unmarshal(pkt) == nil {
			if ext := p.pkt.Extension(p.twccExt); len(ext) >= 2 {
				p.twcc.Record(p.pkt.SSRC, binary.BigEndian.Uint16(ext), now.Sub(p.twccStart).Microseconds())
			}
		}
		_ = w.node.HandleRTP(now, h, pkt)
	}
	if hold {
		w.holdFlush = true
		w.drainLocked(now)
		w.holdFlush = false
	} else {
		w.drainLocked(now)
	}
	w.mu.Unlock()
}

// drainLocked sends what the node has to send. RTP is marshalled and
// encrypted in place in pooled buffers and batched as it is polled; the
// batch goes out when the node has nothing more, or with holdFlush at the
// end of the read batch. Events need no action here: what a viewer's
// media sections show is the core's policy (core.Slot).
func (w *worker) drainLocked(now time.Time) {
	var replaced []*peer
	for {
		o, ok := w.node.Poll(w.rtcpBuf)
		if !ok {
			break
		}
		switch o.Kind {
		case core.OutputRTP:
			w.sendTransmit(&o.RTP)
		case core.OutputRTCP:
			if p := w.peers[o.Endpoint]; p != nil {
				_ = p.sess.WriteRTCP(o.Data)
			}
		case core.OutputLink:
			if isInproc(o.Link) {
				w.d.workers[o.Link&^inprocLink].deliver(w.idx, o.Data, o.Datagram)
			} else {
				w.d.links.Send(now, o.Link, o.Data, o.Datagram)
			}
		case core.OutputDial:
			w.d.links.Dial(o.Addr)
		case core.OutputCloseLink:
			if isInproc(o.Link) {
				w.d.relink(w.idx, int(o.Link&^inprocLink))
			} else {
				w.d.links.CloseLink(o.Link)
			}
		case core.OutputEvent:
			// The same peer joined on another node later: this session
			// is out of its room, so it ends (closed after the loop).
			if _, ok := o.Event.(endpoint.Replaced); ok {
				if p := w.peers[o.Endpoint]; p != nil {
					replaced = append(replaced, p)
				}
			}
		}
	}
	if !w.holdFlush || len(w.batch) >= maxBatch {
		w.flushLocked()
	}
	for _, p := range replaced {
		if w.peers[p.h] == p {
			w.closePeerLocked(now, p, "replaced by a newer session on another node")
		}
	}
	if at, ok := w.node.PollTimeout(); ok && at.Before(w.sleep) {
		w.sleep = at
		w.notify()
	}
}

// sendTransmit marshals one transmit into a pooled buffer and encrypts it
// there (SRTP in place: one copy of the payload per egress packet). UDP
// ones join the batch, TCP ones are written at once.
func (w *worker) sendTransmit(t *core.Transmit) {
	p := w.peers[core.Handle(t.Owner)]
	if p == nil {
		return
	}
	if w.nbuf == len(w.bufs) {
		w.bufs = append(w.bufs, make([]byte, 1500))
	}
	buf := w.bufs[w.nbuf][:cap(w.bufs[w.nbuf])]
	m, err := t.MarshalTo(buf[:len(buf)-srtpOverhead], nil)
	if err != nil {
		w.stats.SendErrors++
		return
	}
	enc, err := p.sess.EncryptRTP(buf, buf[:m])
	if err != nil {
		w.stats.NotConnected++
		return
	}
	wr, addr, ok := p.sess.Path()
	if !ok {
		w.stats.NotConnected++
		return
	}
	if wr == udp.Writer(w.mux) {
		w.nbuf++
		w.batch = append(w.batch, udp.Datagram{B: enc, To: addr})
		return
	}
	if err := wr.WritePacket(enc, addr); err != nil {
		w.stats.SendErrors++
	} else {
		w.stats.Sent++
	}
}

// srtpOverhead is room left after a marshalled packet for its SRTP
// authentication tag (16 bytes for AEAD, 10 for AES-CM), so encryption
// in place never reallocates.
const srtpOverhead = 16

// flushLocked sends the batched UDP datagrams; their buffers are free
// again after it.
func (w *worker) flushLocked() {
	if len(w.batch) > 0 {
		sent, err := w.mux.WriteBatch(w.batch)
		w.stats.Sent += uint64(sent)
		if err != nil {
			w.stats.SendErrors += uint64(len(w.batch) - sent)
		}
		clear(w.batch)
		w.batch = w.batch[:0]
	}
	w.nbuf = 0
}

// sendTWCCLocked sends every publisher its transport-wide feedback.
func (w *worker) sendTWCCLocked() {
	for _, p := range w.sortedPeers() {
		if p.twcc == nil || !p.connected || p.twcc.PacketsHeld() == 0 {
			continue
		}
		for _, fb := range p.twcc.BuildFeedbackPacket() {
			b, err := fb.Marshal()
			if err == nil {
				_ = p.sess.WriteRTCP(b)
			}
		}
	}
}

// markFailed queues a session whose DTLS failed or was closed by the peer
// for the worker's goroutine (the state callback may run under the
// session's own locks).
func (w *worker) markFailed(h core.Handle) {
	w.post(func(time.Time) error {
		if p := w.peers[h]; p != nil {
			w.failed = append(w.failed, p)
			w.lastConsent = time.Time{} // check now
		}
		return nil
	})
}

// markConnected fills a viewer's media sections once it can receive.
func (w *worker) markConnected(h core.Handle) {
	w.post(func(now time.Time) error {
		p := w.peers[h]
		if p == nil || p.connected {
			return nil
		}
		p.connected = true
		if p.role == whip.Subscribe {
			_ = w.node.StartSlots(now, h)
		}
		return nil
	})
}

// candidates are the worker's host candidates: its UDP port, then its
// ICE-TCP port.
func (w *worker) candidates() []webrtc.Candidate {
	cands := []webrtc.Candidate{{Addr: w.d.advertised(w.mux.LocalAddr())}}
	if w.tcp != nil {
		cands = append(cands, webrtc.Candidate{Addr: w.d.advertised(w.tcp.LocalAddr()), TCP: true})
	}
	return cands
}

// sessHandler is what a session is registered with on the socket: it
// marks the worker's read batch, and in single-port mode hands media for
// a worker other than the socket's owner to that worker.
type sessHandler struct {
	w    *worker
	sess *webrtc.Session
}

func (h *sessHandler) HandleDatagram(now time.Time, from netip.AddrPort, wr udp.Writer, b []byte) bool {
	if wr == udp.Writer(h.w.mux) {
		if h.w.d.cfg.SinglePort && h.w.idx != 0 && len(b) > 0 && b[0] >= 128 && b[0] < 192 {
			// Single-port mode, RTP or RTCP (RFC 7983): decrypt and
			// forward on the session's worker. STUN and DTLS stay here:
			// a STUN answer must bind the address at once, and DTLS
			// goes to the session's own handshake goroutine anyway.
			h.w.handoff(now, h.sess, from, wr, b)
			return false
		}
		if !h.w.d.cfg.SinglePort || h.w.idx == 0 {
			// The read goroutine is this worker's own: hold the egress
			// until its BatchDone.
			h.w.inBatch.Store(true)
		}
	}
	return h.sess.HandleDatagram(now, from, wr, b)
}

// shutdown closes the worker's sessions and leaves the overlay.
func (w *worker) shutdownLocked(now time.Time) {
	for _, p := range w.sortedPeers() {
		w.closePeerLocked(now, p, "shutdown")
	}
	if r := w.node.Router(); r != nil && !w.closed {
		// Leave the overlay: our directory entries and channels end at
		// once everywhere, instead of by soft-state timeout.
		r.Close(now)
		w.drainLocked(now)
	}
	w.closed = true
}

// statsLocked is the worker's counters.
func (w *worker) statsLocked() WorkerStats {
	s := w.stats
	s.Sessions = len(w.peers)
	s.LinkDrops = w.linkDrops.Load()
	s.Handoffs = w.handoffs.Load()
	s.UDPAddr = w.mux.LocalAddr()
	if !w.d.cfg.SinglePort || w.idx == 0 {
		s.UDP = w.mux.WriteStats()
	}
	if w.tcp != nil {
		s.TCP = w.tcp.Stats()
		s.TCPAddr = w.tcp.LocalAddr()
	}
	return s
}
