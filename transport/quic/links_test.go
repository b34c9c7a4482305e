package quic

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

// recorder is a Handler with no state machine: it records what Links
// reports and, as an owner does, answers from inside its callbacks with
// its lock held. The dialer speaks first, as sdn.Router does: "hello" on
// the stream at LinkUp. A message "ping…" is echoed as "pong…" the way it came;
// "close" is answered by "bye" on the stream and then CloseLink.
type recorder struct {
	mu     sync.Mutex
	links  *Links
	ups    map[sdn.LinkID]sdn.LinkInfo
	downs  map[sdn.LinkID]int
	msgs   map[sdn.LinkID][]string // "d:" datagram, "s:" stream, then the data
	failed []sdn.Addr
	errs   []string
}

func (r *recorder) LinkUp(id sdn.LinkID, info sdn.LinkInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.ups[id]; dup {
		r.errs = append(r.errs, fmt.Sprintf("link %d up twice", id))
	}
	r.ups[id] = info
	if info.Dialed {
		r.links.Send(time.Now(), id, []byte("hello"), false)
	}
}

func (r *recorder) LinkDown(id sdn.LinkID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, up := r.ups[id]; !up || r.downs[id] > 0 {
		r.errs = append(r.errs, fmt.Sprintf("link %d down, up %v, down %d times before", id, up, r.downs[id]))
	}
	r.downs[id]++
}

func (r *recorder) DialFailed(a sdn.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, a)
}

func (r *recorder) Message(id sdn.LinkID, data []byte, datagram bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, up := r.ups[id]; !up || r.downs[id] > 0 {
		r.errs = append(r.errs, fmt.Sprintf("message on link %d, up %v, down %d", id, up, r.downs[id]))
	}
	kind := "s:"
	if datagram {
		kind = "d:"
	}
	r.msgs[id] = append(r.msgs[id], kind+string(data))
	now := time.Now()
	switch {
	case bytes.HasPrefix(data, []byte("ping")):
		// data is borrowed: overwrite it in place, as a machine's output
		// buffer would be, to see that Send copied.
		reply := append([]byte("pong"), data[4:]...)
		r.links.Send(now, id, reply, datagram)
		copy(reply, "XXXX")
	case string(data) == "close":
		r.links.Send(now, id, []byte("bye"), false)
		r.links.CloseLink(id)
	}
}

func (r *recorder) snapshot() (ups map[sdn.LinkID]sdn.LinkInfo, downs map[sdn.LinkID]int, msgs map[sdn.LinkID][]string, failed []sdn.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ups, downs, msgs = map[sdn.LinkID]sdn.LinkInfo{}, map[sdn.LinkID]int{}, map[sdn.LinkID][]string{}
	for k, v := range r.ups {
		ups[k] = v
	}
	for k, v := range r.downs {
		downs[k] = v
	}
	for k, v := range r.msgs {
		msgs[k] = slices.Clone(v)
	}
	return ups, downs, msgs, slices.Clone(r.failed)
}

func startRecorder(t *testing.T) (*Links, *recorder) {
	t.Helper()
	r := &recorder{ups: map[sdn.LinkID]sdn.LinkInfo{}, downs: map[sdn.LinkID]int{}, msgs: map[sdn.LinkID][]string{}}
	l, err := NewLinks(LinksConfig{}, r)
	if err != nil {
		t.Fatal(err)
	}
	r.links = l
	l.Start()
	t.Cleanup(func() {
		l.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.errs {
			t.Error(e)
		}
	})
	return l, r
}

// onlyLink returns the one link r knows, failing unless there is one.
func onlyLink(t *testing.T, r *recorder) (sdn.LinkID, sdn.LinkInfo) {
	t.Helper()
	ups, _, _, _ := r.snapshot()
	if len(ups) != 1 {
		t.Fatalf("%d links up, want 1", len(ups))
	}
	for id, info := range ups {
		return id, info
	}
	panic("unreachable")
}

// TestLinks drives two Links with no state machine on 127.0.0.1: a dial
// comes up on both ends with the dialer's LinkInfo and one TLS exporter
// value, the acceptor's with the dialer's first message; control messages and datagrams flow both ways, answered from
// inside the callbacks under the owner's lock, each copied by Send; an
// owner that closes a link from inside a callback gets its queued message
// out first and no LinkDown, and the peer gets LinkDown; a dial to a dead
// address ends in DialFailed.
func TestLinks(t *testing.T) {
	a, ra := startRecorder(t)
	b, rb := startRecorder(t)
	a.Dial(sdn.Addr{Node: 2, UDP: b.LocalAddr()})
	waitFor(t, 5*time.Second, "link up on both ends", func() bool {
		ua, _, _, _ := ra.snapshot()
		ub, _, _, _ := rb.snapshot()
		return len(ua) == 1 && len(ub) == 1
	})
	ida, infoA := onlyLink(t, ra)
	idb, infoB := onlyLink(t, rb)
	if !infoA.Dialed || infoA.Peer != 2 || infoB.Dialed || infoB.Peer != 0 {
		t.Fatalf("dialer's info %+v, acceptor's %+v", infoA, infoB)
	}
	if len(infoA.Binding) != 32 || !bytes.Equal(infoA.Binding, infoB.Binding) {
		t.Fatalf("bindings %x and %x, want one 32-byte exporter value", infoA.Binding, infoB.Binding)
	}
	waitFor(t, 2*time.Second, "the hello", func() bool {
		_, _, msgs, _ := rb.snapshot()
		return slices.Equal(msgs[idb], []string{"s:hello"})
	})

	// a pings on the stream and as datagrams; b answers each in kind.
	// The datagrams go one at a time, so that none is lost to a queue.
	const n = 20
	var want []string
	for i := range n {
		ping := fmt.Appendf(nil, "ping %d", i)
		ra.mu.Lock()
		a.Send(time.Now(), ida, ping, false)
		a.Send(time.Now(), ida, ping, true)
		copy(ping, "XXXX")
		ra.mu.Unlock()
		want = append(want, fmt.Sprintf("s:pong %d", i), fmt.Sprintf("d:pong %d", i))
		waitFor(t, 2*time.Second, "the pongs", func() bool {
			_, _, msgs, _ := ra.snapshot()
			return len(msgs[ida]) == len(want)
		})
	}
	_, _, msgs, _ := ra.snapshot()
	if got := msgs[ida]; !sameSet(got, want) {
		t.Fatalf("a got %q, want %q", got, want)
	}
	var stream []string
	for _, m := range msgs[ida] {
		if m[0] == 's' {
			stream = append(stream, m)
		}
	}
	for i, m := range stream {
		if m != fmt.Sprintf("s:pong %d", i) {
			t.Fatalf("stream message %d is %q: the stream is out of order", i, m)
		}
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.Links != 1 || sa.Dials != 1 || sa.StreamOut != n+1 || sa.DatagramsOut != n || sa.StreamIn != n || sa.DatagramsIn != n {
		t.Fatalf("dialer's stats %+v", sa)
	}
	if sb.Links != 1 || sb.Accepted != 1 || sb.StreamIn != n+1 || sb.DatagramsIn != n || sb.DatagramMax < 1250 {
		t.Fatalf("acceptor's stats %+v", sb)
	}

	// b closes the link from inside its callback, after queuing "bye".
	ra.mu.Lock()
	a.Send(time.Now(), ida, []byte("close"), false)
	ra.mu.Unlock()
	waitFor(t, 5*time.Second, "link down on the dialer", func() bool {
		_, downs, _, _ := ra.snapshot()
		return downs[ida] == 1
	})
	_, _, msgs, _ = ra.snapshot()
	if last := msgs[ida][len(msgs[ida])-1]; last != "s:bye" {
		t.Fatalf("last message before the close %q, want s:bye", last)
	}
	if _, downs, _, _ := rb.snapshot(); downs[idb] != 0 {
		t.Fatalf("the closing side got LinkDown for the link it closed")
	}
	if sa, sb := a.Stats(), b.Stats(); sa.Links != 0 || sb.Links != 0 {
		t.Fatalf("links left: %d and %d", sa.Links, sb.Links)
	}
	// Sending on the closed link is dropped, not an error.
	a.Send(time.Now(), ida, []byte("late"), false)

	// A dial to an address where nothing answers fails.
	deadAddr := deadAddr(t)
	a.Dial(deadAddr)
	waitFor(t, 10*time.Second, "DialFailed", func() bool {
		_, _, _, failed := ra.snapshot()
		return len(failed) == 1
	})
	if _, _, _, failed := ra.snapshot(); failed[0] != deadAddr || a.Stats().DialFailures != 1 {
		t.Fatalf("DialFailed(%v), %d failures; want %v, 1", failed[0], a.Stats().DialFailures, deadAddr)
	}
}

// TestLinksClose: Close with dials and links under way returns (their
// goroutines end), reports nothing after it returns (not even the dial
// it cut short), and leaves the peer
// with LinkDown once the connection closes.
func TestLinksClose(t *testing.T) {
	a, ra := startRecorder(t)
	b, rb := startRecorder(t)
	a.Dial(sdn.Addr{Node: 2, UDP: b.LocalAddr()})
	waitFor(t, 5*time.Second, "link up on both ends", func() bool {
		ua, _, _, _ := ra.snapshot()
		ub, _, _, _ := rb.snapshot()
		return len(ua) == 1 && len(ub) == 1
	})
	idb, _ := onlyLink(t, rb)
	a.Dial(deadAddr(t))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ups, downs, msgs, failed := ra.snapshot()
	time.Sleep(100 * time.Millisecond)
	ups2, downs2, msgs2, failed2 := ra.snapshot()
	if len(ups2) != len(ups) || len(downs2) != len(downs) || len(msgs2) != len(msgs) || len(failed2) != len(failed) {
		t.Fatalf("reports after Close returned")
	}
	if len(failed) != 0 {
		t.Fatalf("DialFailed(%v) for a dial that Close ended", failed)
	}
	a.Dial(sdn.Addr{Node: 2, UDP: b.LocalAddr()})
	a.Send(time.Now(), 1, []byte("after close"), false)
	waitFor(t, 5*time.Second, "link down on the peer", func() bool {
		_, downs, _, _ := rb.snapshot()
		return downs[idb] == 1
	})
}

// deadAddr is the address of a socket that is closed at once: nothing
// answers there.
func deadAddr(t *testing.T) sdn.Addr {
	t.Helper()
	l, err := NewLinks(LinksConfig{Listen: netip.MustParseAddrPort("127.0.0.1:0")}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Kill()
	return sdn.Addr{Node: 9, UDP: l.LocalAddr()}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
