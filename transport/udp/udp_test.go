package udp

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeHandler accepts STUN requests whose USERNAME remote part is "ok".
type fakeHandler struct {
	mu   sync.Mutex
	got  [][]byte
	from []netip.AddrPort
}

func (h *fakeHandler) HandleDatagram(_ time.Time, from netip.AddrPort, w Writer, b []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, bytes.Clone(b))
	h.from = append(h.from, from)
	if Classify(b) == ClassSTUN && bytes.Contains(b, []byte(":ok")) {
		_ = w.WritePacket([]byte("pong"), from)
		return true
	}
	return false
}

func (h *fakeHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

type nopWriter struct{}

func (nopWriter) WritePacket([]byte, netip.AddrPort) error { return nil }

// stunRequest builds a minimal Binding request with a USERNAME.
func stunRequest(user string) []byte {
	attrLen := (len(user) + 3) &^ 3
	b := make([]byte, 20+4+attrLen)
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], uint16(4+attrLen))
	binary.BigEndian.PutUint32(b[4:], 0x2112A442)
	binary.BigEndian.PutUint16(b[20:], 0x0006)
	binary.BigEndian.PutUint16(b[22:], uint16(len(user)))
	copy(b[24:], user)
	return b
}

var rtpPacket = []byte{0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 'h', 'i'}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want Class
	}{
		{nil, ClassUnknown},
		{[]byte{0}, ClassSTUN},
		{[]byte{3}, ClassSTUN},
		{[]byte{4}, ClassUnknown},
		{[]byte{19}, ClassUnknown},
		{[]byte{20}, ClassDTLS},
		{[]byte{63}, ClassDTLS},
		{[]byte{64}, ClassUnknown},
		{[]byte{127}, ClassUnknown},
		{[]byte{128}, ClassRTP},
		{[]byte{191}, ClassRTP},
		{[]byte{192}, ClassUnknown},
	} {
		if got := Classify(tc.b); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.b, got, tc.want)
		}
	}
}

func TestLocalUfrag(t *testing.T) {
	if uf, ok := LocalUfrag(stunRequest("abcd:efgh")); !ok || string(uf) != "abcd" {
		t.Errorf("got %q %v", uf, ok)
	}
	for name, b := range map[string][]byte{
		"no colon":     stunRequest("abcd"),
		"empty local":  stunRequest(":efgh"),
		"rtp":          rtpPacket,
		"short":        stunRequest("a:b")[:19],
		"bad length":   append(stunRequest("a:b"), 0, 0, 0, 0),
		"not request":  func() []byte { b := stunRequest("a:b"); b[1] = 0x11; return b }(),
		"attr overrun": func() []byte { b := stunRequest("a:b"); b[23] = 200; return b }(),
	} {
		if uf, ok := LocalUfrag(b); ok {
			t.Errorf("%s: got %q", name, uf)
		}
	}
}

func TestDemux(t *testing.T) {
	d := NewDemux()
	h1, h2 := &fakeHandler{}, &fakeHandler{}
	d.Register("one", h1)
	d.Register("two", h2)
	a := netip.MustParseAddrPort("192.0.2.1:1000")
	b := netip.MustParseAddrPort("192.0.2.2:2000")
	now := time.Now()

	// Unknown address: RTP is dropped, STUN for an unknown ufrag too.
	d.Dispatch(now, a, nopWriter{}, rtpPacket)
	d.Dispatch(now, a, nopWriter{}, stunRequest("three:ok"))
	if h1.count()+h2.count() != 0 {
		t.Fatal("unbound datagrams delivered")
	}
	// A STUN request the handler refuses does not bind.
	if d.Dispatch(now, a, nopWriter{}, stunRequest("one:bad")) {
		t.Fatal("refused request bound")
	}
	d.Dispatch(now, a, nopWriter{}, rtpPacket)
	if h1.count() != 1 {
		t.Fatalf("h1 got %d, want only the refused STUN", h1.count())
	}
	// An accepted one binds a to h1; then RTP from a goes to h1.
	if !d.Dispatch(now, a, nopWriter{}, stunRequest("one:ok")) {
		t.Fatal("accepted request not bound")
	}
	d.Dispatch(now, a, nopWriter{}, rtpPacket)
	if h1.count() != 3 || !bytes.Equal(h1.got[2], rtpPacket) {
		t.Fatalf("h1 got %d", h1.count())
	}
	// b binds to h2; traffic stays separated.
	d.Dispatch(now, b, nopWriter{}, stunRequest("two:ok"))
	d.Dispatch(now, b, nopWriter{}, rtpPacket)
	if h2.count() != 2 || h1.count() != 3 {
		t.Fatalf("h1 %d h2 %d", h1.count(), h2.count())
	}
	// Unregister unbinds.
	d.Unregister("one")
	d.Dispatch(now, a, nopWriter{}, rtpPacket)
	if h1.count() != 3 {
		t.Fatal("unregistered handler still receives")
	}
	st := d.Stats()
	if st.Bound != 2 || st.Delivered != 4 || st.Unknown != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestDemuxAddrLimit(t *testing.T) {
	d := NewDemux()
	h := &fakeHandler{}
	d.Register("one", h)
	now := time.Now()
	for i := range maxAddrsPerHandler + 2 {
		d.Dispatch(now, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(1000+i)), nopWriter{}, stunRequest("one:ok"))
	}
	if len(d.byAddr) != maxAddrsPerHandler {
		t.Fatalf("%d bound addresses, want %d", len(d.byAddr), maxAddrsPerHandler)
	}
	if d.byAddr[netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 1000)] != nil {
		t.Error("oldest address still bound")
	}
}

// ufragHandler accepts STUN requests for its own ufrag signed "ok"
// (USERNAME "<ufrag>:ok") and counts what it is given.
type ufragHandler struct {
	ufrag       string
	stun, other int
}

func (h *ufragHandler) HandleDatagram(_ time.Time, _ netip.AddrPort, _ Writer, b []byte) bool {
	if Classify(b) != ClassSTUN {
		h.other++
		return false
	}
	h.stun++
	return bytes.Contains(b, []byte(h.ufrag+":ok"))
}

// A Binding request from an address bound to one session that names
// another session's ufrag goes to that other session, and if it
// authenticates there the address is rebound to it: a client multiplexing
// several PeerConnections over one port (pion's UDPMux, gateways, cascaded
// SFUs), or a NAT mapping reused within a session's consent timeout, must
// reach its new session. A request the other session refuses changes
// nothing, and the bound session still gets everything else.
func TestDemuxRebindsToOtherRegistration(t *testing.T) {
	d := NewDemux()
	a, b := &ufragHandler{ufrag: "aaaa"}, &ufragHandler{ufrag: "bbbb"}
	d.Register("aaaa", a)
	d.Register("bbbb", b)
	from := netip.MustParseAddrPort("192.0.2.1:5000")
	now := time.Now()
	if !d.Dispatch(now, from, nopWriter{}, stunRequest("aaaa:ok")) {
		t.Fatal("A's request not bound")
	}
	// Refused by B: A keeps the address.
	if d.Dispatch(now, from, nopWriter{}, stunRequest("bbbb:bad")) {
		t.Fatal("B's refused request reported as bound")
	}
	d.Dispatch(now, from, nopWriter{}, rtpPacket)
	if a.stun != 1 || b.stun != 1 || a.other != 1 || b.other != 0 {
		t.Fatalf("after B refused: A %+v, B %+v", a, b)
	}
	// A request for no registered ufrag, and A's own consent checks, go
	// to A as before.
	d.Dispatch(now, from, nopWriter{}, stunRequest("cccc:ok"))
	if !d.Dispatch(now, from, nopWriter{}, stunRequest("aaaa:ok")) || a.stun != 3 || b.stun != 1 {
		t.Fatalf("bound address's own STUN: A %+v, B %+v", a, b)
	}
	// Accepted by B: the address moves to B.
	if !d.Dispatch(now, from, nopWriter{}, stunRequest("bbbb:ok")) || b.stun != 2 {
		t.Fatalf("B's valid Binding request from an address bound to A was not given to B: A %+v, B %+v", a, b)
	}
	d.Dispatch(now, from, nopWriter{}, rtpPacket)
	if a.other != 1 || b.other != 1 {
		t.Fatalf("media after the rebind: A %+v, B %+v", a, b)
	}
	// A no longer holds the address: its end leaves B's binding alone.
	d.Unregister("aaaa")
	d.Dispatch(now, from, nopWriter{}, rtpPacket)
	if b.other != 2 {
		t.Fatalf("Unregister of A unbound B's address: B %+v", b)
	}
	if st := d.Stats(); st.Bound != 2 || st.Unknown != 1 {
		t.Errorf("stats %+v, want 2 bindings and B's refusal unknown", st)
	}
}

// After an ICE restart one session is registered under two ufrags; a
// request for the new one from an address bound under the old one still
// reaches it, and the address stays with it when the old ufrag goes.
func TestDemuxRebindWithinOneSession(t *testing.T) {
	d := NewDemux()
	h := &fakeHandler{}
	d.Register("old", h)
	from := netip.MustParseAddrPort("192.0.2.1:5000")
	now := time.Now()
	d.Dispatch(now, from, nopWriter{}, stunRequest("old:ok"))
	d.Register("new", h)
	if !d.Dispatch(now, from, nopWriter{}, stunRequest("new:ok")) || h.count() != 2 {
		t.Fatalf("new-ufrag request from a bound address: %d delivered", h.count())
	}
	d.Unregister("old")
	d.Dispatch(now, from, nopWriter{}, rtpPacket)
	if h.count() != 3 {
		t.Fatal("address lost with the old ufrag")
	}
}

func TestDemuxAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	d := NewDemux()
	d.Register("one", nopHandler{})
	a := netip.MustParseAddrPort("192.0.2.1:1000")
	now := time.Now()
	d.Dispatch(now, a, nopWriter{}, stunRequest("one:ok"))
	req := stunRequest("one:ok")
	if n := testing.AllocsPerRun(100, func() {
		d.Dispatch(now, a, nopWriter{}, rtpPacket)
		d.Dispatch(now, a, nopWriter{}, req)
	}); n != 0 {
		t.Errorf("Dispatch allocates %v", n)
	}
}

type nopHandler struct{}

func (nopHandler) HandleDatagram(time.Time, netip.AddrPort, Writer, []byte) bool { return true }

// FuzzDemux feeds one datagram from an address that is either unbound or
// already bound to session "two" (odd ports), with session "one" also
// registered. Only a Binding request naming a ufrag may reach a session
// the address is not bound to, and only one that session accepts may
// (re)bind the address.
func FuzzDemux(f *testing.F) {
	f.Add(stunRequest("one:ok"), uint16(1000))
	f.Add(stunRequest("one:ok"), uint16(1001))
	f.Add(stunRequest("two:ok"), uint16(1000))
	f.Add(stunRequest("one:bad"), uint16(1001))
	f.Add(rtpPacket, uint16(1000))
	f.Add(rtpPacket, uint16(1001))
	f.Add([]byte{22, 0xfe, 0xfd}, uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, port uint16) {
		d := NewDemux()
		one, two := &fakeHandler{}, &ufragHandler{ufrag: "two"}
		d.Register("one", one)
		d.Register("two", two)
		from := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port)
		now := time.Now()
		prebound := port%2 == 1
		if prebound {
			if !d.Dispatch(now, from, nopWriter{}, stunRequest("two:ok")) {
				t.Fatal("two's request not bound")
			}
			two.stun = 0
		}
		bound := d.Dispatch(now, from, nopWriter{}, b)
		uf, isReq := LocalUfrag(b)
		forOne := isReq && string(uf) == "one"
		forTwo := isReq && string(uf) == "two"
		if one.count() > 0 && !forOne {
			t.Fatalf("one was given a datagram that is not a request for its ufrag: %x", b)
		}
		if !prebound && bound && !forOne && !forTwo {
			t.Fatalf("bound by a datagram that is not a request for a registered ufrag: %x", b)
		}
		if !prebound && two.stun+two.other > 0 && !forTwo {
			t.Fatalf("two was given an unbound datagram that is not a request for its ufrag: %x", b)
		}
		if prebound && !forOne && two.stun+two.other != 1 {
			t.Fatalf("a datagram from two's address not for one did not reach two: %x", b)
		}
		// Media from the address now goes where the binding says.
		n1, o2 := one.count(), two.other
		d.Dispatch(now, from, nopWriter{}, rtpPacket)
		toOne := bound && forOne
		toTwo := (prebound && !toOne) || (bound && forTwo)
		if got := one.count() - n1; got != b2i(toOne) {
			t.Fatalf("after %x (bound %v): one got %d media datagrams", b, bound, got)
		}
		if got := two.other - o2; got != b2i(toTwo) {
			t.Fatalf("after %x (bound %v): two got %d media datagrams", b, bound, got)
		}
		_ = Classify(b)
	})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func startMux(t *testing.T, cfg Config) *Mux {
	t.Helper()
	m, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve(context.Background()) }()
	t.Cleanup(func() {
		m.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return m
}

func TestMuxRoundTrip(t *testing.T) {
	for _, batch := range []int{1, 32} {
		t.Run("batch="+strconv.Itoa(batch), func(t *testing.T) {
			m := startMux(t, Config{BatchSize: batch})
			h := &fakeHandler{}
			m.Register("one", h)
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			to := net.UDPAddrFromAddrPort(m.LocalAddr())
			c.WriteToUDP(rtpPacket, to) // unbound: dropped
			c.WriteToUDP(stunRequest("one:ok"), to)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 100)
			n, _, err := c.ReadFromUDP(buf)
			if err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("no STUN answer: %v %q", err, buf[:n])
			}
			for range 10 {
				c.WriteToUDP(rtpPacket, to)
			}
			deadline := time.Now().Add(5 * time.Second)
			for h.count() < 11 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if h.count() != 11 {
				t.Fatalf("handler got %d datagrams, want 11", h.count())
			}
			me := c.LocalAddr().(*net.UDPAddr).AddrPort()
			if h.from[1] != me {
				t.Errorf("from %v, want %v", h.from[1], me)
			}
			// Batched write back to the client.
			ds := make([]Datagram, 5)
			for i := range ds {
				ds[i] = Datagram{B: []byte{byte(i)}, To: me}
			}
			if n, err := m.WriteBatch(ds); n != 5 || err != nil {
				t.Fatalf("WriteBatch %d %v", n, err)
			}
			for i := range 5 {
				n, _, err := c.ReadFromUDP(buf)
				if err != nil || n != 1 || buf[0] != byte(i) {
					t.Fatalf("datagram %d: %v %v", i, err, buf[:n])
				}
			}
		})
	}
}

// A datagram the kernel refuses (here a destination a 127.0.0.1 socket
// cannot reach) costs only itself: the driver batches every peer's egress
// together, so the rest of the batch must still go out, and the count
// returned is what was sent.
func TestMuxWriteBatchSkipsRefused(t *testing.T) {
	m := startMux(t, Config{})
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	good := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	bad := netip.MustParseAddrPort("192.0.2.1:9")
	for _, tc := range []struct {
		name string
		to   []netip.AddrPort
	}{
		{"first", []netip.AddrPort{bad, good, good, good}},
		{"middle", []netip.AddrPort{good, bad, good, good}},
		{"last", []netip.AddrPort{good, good, good, bad}},
		{"several", []netip.AddrPort{bad, good, bad, bad, good, good, bad}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ds []Datagram
			want := 0
			for i, to := range tc.to {
				ds = append(ds, Datagram{B: []byte{byte(i)}, To: to})
				if to == good {
					want++
				}
			}
			sent, err := m.WriteBatch(ds)
			if sent != want || err == nil {
				t.Errorf("WriteBatch = %d, %v; want %d and the refusal", sent, err, want)
			}
			got := 0
			buf := make([]byte, 16)
			for {
				_ = rx.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, _, err := rx.ReadFrom(buf); err != nil {
					break
				}
				got++
			}
			if got != want {
				t.Fatalf("the good peer got %d of its %d datagrams", got, want)
			}
		})
	}
}

func TestMuxWriteBatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	m := startMux(t, Config{})
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := c.LocalAddr().(*net.UDPAddr).AddrPort()
	ds := []Datagram{{B: rtpPacket, To: me}, {B: rtpPacket, To: me}}
	m.WriteBatch(ds)
	if n := testing.AllocsPerRun(50, func() { m.WriteBatch(ds) }); n > 0 {
		t.Errorf("WriteBatch allocates %v", n)
	}
	if n := testing.AllocsPerRun(50, func() { m.WritePacket(rtpPacket, me) }); n > 0 {
		t.Errorf("WritePacket allocates %v", n)
	}
}

func TestTCPFraming(t *testing.T) {
	m := startMux(t, Config{})
	l, err := m.ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := &fakeHandler{}
	m.Register("one", h)
	frame := func(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }

	// A connection whose first frame is not an accepted request is closed.
	bad, err := net.Dial("tcp", l.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	bad.Write(frame(rtpPacket))
	_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bad.Read(make([]byte, 10)); err == nil {
		t.Error("connection starting with RTP not closed")
	}
	bad.Close()

	c, err := net.Dial("tcp", l.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Two frames in one write, then one split across writes.
	c.Write(append(frame(stunRequest("one:ok")), frame(rtpPacket)...))
	fr := frame([]byte{0x80, 1, 2, 3, 4, 5})
	c.Write(fr[:3])
	time.Sleep(10 * time.Millisecond)
	c.Write(fr[3:])
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var resp [6]byte
	if _, err := c.Read(resp[:]); err != nil || !bytes.Equal(resp[:], frame([]byte("pong"))) {
		t.Fatalf("framed answer %v %q", err, resp)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.count() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != 3 || !bytes.Equal(h.got[1], rtpPacket) || !bytes.Equal(h.got[2], []byte{0x80, 1, 2, 3, 4, 5}) {
		t.Fatalf("got %x", h.got)
	}
}

// readRig sends bursts of RTP from a bound client and waits until the
// handler has seen them all.
type readRig struct {
	m     *Mux
	c     *net.UDPConn
	got   chan struct{}
	timer *time.Timer
	mu    sync.Mutex
	n     int
	want  int
	done  chan struct{}
}

func newReadRig(tb testing.TB, batch int) *readRig {
	m, err := Listen(Config{BatchSize: batch})
	if err != nil {
		tb.Fatal(err)
	}
	r := &readRig{m: m, got: make(chan struct{}, 1), timer: time.NewTimer(time.Hour), done: make(chan struct{})}
	m.Register("one", handlerFunc(func(b []byte) bool {
		r.mu.Lock()
		r.n++
		if r.n == r.want {
			r.got <- struct{}{}
		}
		r.mu.Unlock()
		return Classify(b) == ClassSTUN
	}))
	go func() { defer close(r.done); m.Serve(context.Background()) }()
	r.c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(m.LocalAddr()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.c.Close(); m.Close(); <-r.done })
	r.expect(1)
	r.c.Write(stunRequest("one:ok"))
	r.wait(tb)
	return r
}

func (r *readRig) expect(n int) {
	r.mu.Lock()
	r.n, r.want = 0, n
	r.mu.Unlock()
}

func (r *readRig) wait(tb testing.TB) {
	r.timer.Reset(5 * time.Second)
	select {
	case <-r.got:
		r.timer.Stop()
	case <-r.timer.C:
		tb.Fatal("datagrams lost on loopback")
	}
}

func (r *readRig) burst(tb testing.TB, n int) {
	r.expect(n)
	for range n {
		r.c.Write(rtpPacket)
	}
	r.wait(tb)
}

// TestMuxReadAllocs: the whole receive path (socket, read loop, demux)
// allocates nothing per datagram, batched or not.
func TestMuxReadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	for _, batch := range []int{1, 32} {
		t.Run("batch="+strconv.Itoa(batch), func(t *testing.T) {
			r := newReadRig(t, batch)
			r.burst(t, 16)
			// AllocsPerRun counts every goroutine's allocations, so this
			// includes the read loop. A burst is 16 datagrams; allow less
			// than one allocation per burst for runtime noise.
			if n := testing.AllocsPerRun(20, func() { r.burst(t, 16) }); n >= 1 {
				t.Errorf("%v allocations per 16 datagrams", n)
			}
		})
	}
}

// BenchmarkMuxRead measures the receive path: datagrams from a bound
// address through the socket, the read loop and the demux.
func BenchmarkMuxRead(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			r := newReadRig(b, batch)
			const burst = 64
			b.ReportAllocs()
			for b.Loop() {
				r.burst(b, burst)
			}
			b.ReportMetric(float64(b.N*burst)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

type handlerFunc func([]byte) bool

func (f handlerFunc) HandleDatagram(_ time.Time, _ netip.AddrPort, _ Writer, b []byte) bool {
	return f(b)
}

// BatchDone follows every read batch, after all its datagrams: queued
// before Serve starts, ten datagrams come back from one recvmmsg as one
// batch (with BatchSize 1, as ten).
func TestMuxBatchDone(t *testing.T) {
	for _, batch := range []int{1, 32} {
		t.Run("batch="+strconv.Itoa(batch), func(t *testing.T) {
			h := &fakeHandler{}
			var mu sync.Mutex
			var sizes []int // datagrams dispatched in each batch
			seen := 0
			m, err := Listen(Config{BatchSize: batch, BatchDone: func() {
				mu.Lock()
				defer mu.Unlock()
				n := h.count()
				sizes = append(sizes, n-seen)
				seen = n
			}})
			if err != nil {
				t.Fatal(err)
			}
			m.Register("one", h)
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			to := net.UDPAddrFromAddrPort(m.LocalAddr())
			c.WriteToUDP(stunRequest("one:ok"), to)
			for range 9 {
				c.WriteToUDP(rtpPacket, to)
			}
			done := make(chan error, 1)
			go func() { done <- m.Serve(context.Background()) }()
			deadline := time.Now().Add(5 * time.Second)
			for {
				mu.Lock()
				n := seen
				mu.Unlock()
				if n == 10 || time.Now().After(deadline) {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			m.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			want := []int{10}
			if batch == 1 {
				want = []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
			}
			if !slices.Equal(sizes, want) {
				t.Fatalf("batches %v, want %v", sizes, want)
			}
		})
	}
}
