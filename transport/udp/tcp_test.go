package udp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

// writerHandler accepts STUN requests whose USERNAME remote part is "ok",
// answers "pong", and keeps the Writer of the last accepted one (for
// ICE-TCP, the connection).
type writerHandler struct {
	mu sync.Mutex
	w  Writer
	n  int
}

func (h *writerHandler) HandleDatagram(_ time.Time, from netip.AddrPort, w Writer, b []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if _, ok := LocalUfrag(b); !ok || !bytes.Contains(b, []byte(":ok")) {
		return false
	}
	_ = w.WritePacket([]byte("pong"), from)
	h.w = w
	return true
}

func (h *writerHandler) writer(t *testing.T) Writer {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		h.mu.Lock()
		w := h.w
		h.mu.Unlock()
		if w != nil {
			return w
		}
	}
	t.Fatal("no STUN request accepted")
	return nil
}

func frame(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }

func listenTestTCP(t *testing.T, d *Demux, lim tcpLimits) *TCPListener {
	t.Helper()
	l, err := listenTCP(d, netip.MustParseAddrPort("127.0.0.1:0"), lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// dialFrom connects to l from the local IP src ("" for any).
func dialFrom(t *testing.T, l *TCPListener, src string) *net.TCPConn {
	t.Helper()
	var laddr *net.TCPAddr
	if src != "" {
		laddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := net.DialTCP("tcp", laddr, net.TCPAddrFromAddrPort(l.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readPong reads the framed "pong" answer.
func readPong(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [6]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || string(b[2:]) != "pong" {
		t.Fatalf("no framed STUN answer: %v %q", err, b)
	}
}

// closedByServer reports whether the server closed c within d: a read
// ends in EOF or a reset rather than a timeout.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// handled counts the connections the listener has admitted or rejected.
func handled(l *TCPListener) int {
	st := l.Stats()
	return st.Pending + int(st.Rejected) + int(st.Bound)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A peer that stops reading its ICE-TCP connection must cost its own
// packets only: WritePacket (called by the driver under its lock, and by
// sessions answering STUN) returns at once whether or not the socket can
// take more, drops and counts when the connection's send queue is full,
// and the connection is closed once nothing has been sent for the stall
// timeout.
func TestTCPStalledPeerNeverBlocksWrites(t *testing.T) {
	m := startMux(t, Config{})
	lim := defaultTCPLimits
	lim.stallTimeout = 2 * time.Second
	l := listenTestTCP(t, m.Demux, lim)
	h := &writerHandler{}
	m.Register("one", h)
	c := dialFrom(t, l, "")
	c.Write(frame(stunRequest("one:ok"))) // and never read again
	w := h.writer(t)

	pkt := make([]byte, 1200)
	var worst time.Duration
	full, closed := false, false
	start := time.Now()
	for !closed && time.Since(start) < 20*time.Second {
		t0 := time.Now()
		err := w.WritePacket(pkt, netip.AddrPort{})
		worst = max(worst, time.Since(t0))
		switch {
		case errors.Is(err, ErrSendQueueFull):
			full = true
			time.Sleep(time.Millisecond)
		case errors.Is(err, net.ErrClosed):
			closed = true
		case err != nil:
			t.Fatalf("WritePacket: %v", err)
		}
	}
	t.Logf("queue full: %v, closed after %v, slowest WritePacket %v", full, time.Since(start), worst)
	if !full || !closed {
		t.Fatalf("stalled peer: send queue full %v, connection closed %v", full, closed)
	}
	// A write that waited for the network would take until the stall
	// timeout; anything well under it is scheduling noise.
	if worst > lim.stallTimeout/2 {
		t.Errorf("WritePacket blocked for %v on a stalled peer", worst)
	}
	st := l.Stats()
	if st.Dropped == 0 || st.Stalled != 1 {
		t.Errorf("stats %+v, want drops counted and one stalled connection", st)
	}
	waitFor(t, "the stalled connection's goroutines to end", func() bool { return l.Stats().Open == 0 })
}

// The send queue allocates nothing per packet once the connection has
// sent its first answer.
func TestTCPWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	m := startMux(t, Config{})
	l := listenTestTCP(t, m.Demux, defaultTCPLimits)
	h := &writerHandler{}
	m.Register("one", h)
	c := dialFrom(t, l, "")
	c.Write(frame(stunRequest("one:ok")))
	readPong(t, c)
	w := h.writer(t)
	var got sync.WaitGroup
	got.Add(1)
	go func() {
		defer got.Done()
		buf := make([]byte, 64<<10)
		_ = c.SetReadDeadline(time.Time{})
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	defer got.Wait()
	defer c.Close()
	pkt := make([]byte, 1200)
	for range 100 {
		_ = w.WritePacket(pkt, netip.AddrPort{})
	}
	// Writes may outpace the loopback reader: a full queue drops, which
	// must not allocate either, but most packets must go through.
	sent := 0
	if n := testing.AllocsPerRun(200, func() {
		err := w.WritePacket(pkt, netip.AddrPort{})
		switch {
		case err == nil:
			sent++
		case errors.Is(err, ErrSendQueueFull):
			time.Sleep(time.Millisecond)
		default:
			t.Fatal(err)
		}
	}); n > 0 {
		t.Errorf("WritePacket on ICE-TCP allocates %v per packet", n)
	}
	if sent < 100 {
		t.Errorf("only %d of 201 packets queued", sent)
	}
}

// A connection belongs to the registration its first frame authenticated
// with, like a bound UDP address: when that registration goes away
// (Unregister when the session ends, or another handler registered under
// the ufrag), the connection is closed, so the peer learns the session
// is gone and nothing stays allocated for it.
func TestTCPConnClosedWithRegistration(t *testing.T) {
	for name, end := range map[string]func(d *Demux){
		"unregister": func(d *Demux) { d.Unregister("one") },
		"replaced":   func(d *Demux) { d.Register("one", &writerHandler{}) },
	} {
		t.Run(name, func(t *testing.T) {
			m := startMux(t, Config{})
			l := listenTestTCP(t, m.Demux, defaultTCPLimits)
			m.Register("one", &writerHandler{})
			m.Register("two", &writerHandler{})
			c := dialFrom(t, l, "")
			c.Write(frame(stunRequest("one:ok")))
			readPong(t, c)
			other := dialFrom(t, l, "")
			other.Write(frame(stunRequest("two:ok")))
			readPong(t, other)
			end(m.Demux)
			if !closedByServer(c, 5*time.Second) {
				t.Fatal("connection still open after its registration ended")
			}
			waitFor(t, "one open connection", func() bool { return l.Stats().Open == 1 })
			// The other session's connection is untouched.
			other.Write(frame(stunRequest("two:ok")))
			readPong(t, other)
		})
	}
}

// One registration has at most maxAddrsPerHandler ICE-TCP connections;
// binding one more closes the oldest.
func TestTCPConnLimitPerRegistration(t *testing.T) {
	m := startMux(t, Config{})
	l := listenTestTCP(t, m.Demux, defaultTCPLimits)
	m.Register("one", &writerHandler{})
	var cs []*net.TCPConn
	for range maxAddrsPerHandler + 1 {
		c := dialFrom(t, l, "")
		c.Write(frame(stunRequest("one:ok")))
		readPong(t, c)
		cs = append(cs, c)
	}
	if !closedByServer(cs[0], 5*time.Second) {
		t.Fatal("oldest connection kept past the limit")
	}
	waitFor(t, "the limit", func() bool { return l.Stats().Open == maxAddrsPerHandler })
}

// Connections that have not sent their first frame are capped per remote
// IP and in total; those past a cap are closed at once and counted, and a
// slot frees when a waiting connection binds or goes.
func TestTCPPendingCaps(t *testing.T) {
	m := startMux(t, Config{})
	lim := defaultTCPLimits
	lim.pendingPerIP, lim.pendingMax = 3, 5
	l := listenTestTCP(t, m.Demux, lim)
	m.Register("one", &writerHandler{})

	var a []*net.TCPConn
	for range 5 {
		a = append(a, dialFrom(t, l, "127.0.0.1"))
	}
	waitFor(t, "5 handled", func() bool { return handled(l) == 5 })
	if st := l.Stats(); st.Pending != 3 || st.Rejected != 2 {
		t.Fatalf("per-IP cap: %+v, want 3 pending and 2 rejected", st)
	}
	if !closedByServer(a[3], 5*time.Second) || !closedByServer(a[4], 5*time.Second) {
		t.Fatal("connections past the per-IP cap not closed")
	}
	var b []*net.TCPConn
	for range 3 {
		b = append(b, dialFrom(t, l, "127.0.0.2"))
	}
	waitFor(t, "8 handled", func() bool { return handled(l) == 8 })
	if st := l.Stats(); st.Pending != 5 || st.Rejected != 3 {
		t.Fatalf("total cap: %+v, want 5 pending and 3 rejected", st)
	}
	if !closedByServer(b[2], 5*time.Second) {
		t.Fatal("connection past the total cap not closed")
	}
	// A waiting connection that binds frees its slot.
	a[0].Write(frame(stunRequest("one:ok")))
	readPong(t, a[0])
	waitFor(t, "a free slot", func() bool { return l.Stats().Pending == 4 })
	c := dialFrom(t, l, "127.0.0.2")
	c.Write(frame(stunRequest("one:ok")))
	readPong(t, c)
	waitFor(t, "two bound", func() bool { return l.Stats().Bound == 2 })
	if st := l.Stats(); st.Rejected != 3 || st.Pending != 4 {
		t.Errorf("stats %+v", st)
	}
}

// An idle connection that has sent nothing costs little (no read buffers,
// no send queue until a session accepts it), and the default caps bound
// how many there are: 500 idle connections from one host hold a few
// kilobytes each, not the 70 KB they once did.
func TestTCPIdleConnsCheap(t *testing.T) {
	measure := func(t *testing.T, l *TCPListener, n int) (perConn int64) {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			dialFrom(t, l, "")
		}
		waitFor(t, "all handled", func() bool { return handled(l) == n })
		time.Sleep(50 * time.Millisecond) // let serve goroutines block in Read
		runtime.GC()
		runtime.ReadMemStats(&after)
		used := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
		return used / int64(n)
	}
	t.Run("capped", func(t *testing.T) {
		m := startMux(t, Config{})
		l := listenTestTCP(t, m.Demux, defaultTCPLimits)
		per := measure(t, l, 500)
		st := l.Stats()
		t.Logf("%d bytes per connection; %+v", per, st)
		if st.Pending != tcpPendingPerIP || st.Rejected != 500-tcpPendingPerIP {
			t.Errorf("500 idle connections from one IP: %+v, want %d pending", st, tcpPendingPerIP)
		}
		if per > 4<<10 {
			t.Errorf("%d bytes per idle connection", per)
		}
	})
	t.Run("uncapped", func(t *testing.T) {
		m := startMux(t, Config{})
		lim := defaultTCPLimits
		lim.pendingMax, lim.pendingPerIP = 1000, 1000
		l := listenTestTCP(t, m.Demux, lim)
		per := measure(t, l, 300)
		t.Logf("%d bytes per waiting connection", per)
		if per > 16<<10 {
			t.Errorf("each connection waiting for its first frame holds %d bytes", per)
		}
	})
}

// The first frame must be a small STUN request sent promptly: a larger
// one is refused without reading it, and a connection that sends nothing
// is closed after the first-frame timeout.
func TestTCPFirstFrameLimits(t *testing.T) {
	m := startMux(t, Config{})
	lim := defaultTCPLimits
	lim.firstFrameTimeout = 300 * time.Millisecond
	l := listenTestTCP(t, m.Demux, lim)
	m.Register("one", &writerHandler{})

	big := dialFrom(t, l, "")
	req := stunRequest("one:ok" + string(make([]byte, tcpFirstFrameMax)))
	start := time.Now()
	big.Write(frame(req))
	if !closedByServer(big, 5*time.Second) || time.Since(start) > lim.firstFrameTimeout {
		t.Errorf("oversized first frame: closed after %v", time.Since(start))
	}
	idle := dialFrom(t, l, "")
	start = time.Now()
	if !closedByServer(idle, 5*time.Second) || time.Since(start) < lim.firstFrameTimeout {
		t.Errorf("silent connection closed after %v", time.Since(start))
	}
	if st := m.Demux.Stats(); st.Unknown != 1 {
		t.Errorf("demux stats %+v, want the oversized frame counted", st)
	}
	waitFor(t, "no open connection", func() bool { return l.Stats().Open == 0 })
}
