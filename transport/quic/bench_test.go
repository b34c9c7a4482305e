package quic

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

// pair is a publisher driver linked to a subscriber driver on 127.0.0.1,
// with channel ch flowing from pub to sub. The subscriber only counts its
// deliveries, so that a benchmark's allocations are the link's.
type pair struct {
	pub, sub *Driver
	ch       uint64
	got      atomic.Uint64
	bytes    atomic.Uint64 // payload bytes delivered
}

func startCounting(tb testing.TB, id sdn.NodeID, onData func(sdn.Delivery), seeds ...sdn.Addr) *Driver {
	tb.Helper()
	d, err := New(Config{
		Router: sdn.Config{ID: id, Secret: []byte("secret"), Seeds: seeds, DialBackoffMax: time.Second},
		OnData: onData,
	})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(context.Background())
	}()
	tb.Cleanup(func() {
		d.Close()
		<-done
	})
	return d
}

// linkedPair starts the two drivers and waits until data published on pub
// reaches sub.
func linkedPair(tb testing.TB) *pair {
	tb.Helper()
	p := &pair{ch: 7}
	p.sub = startCounting(tb, 2, func(dv sdn.Delivery) {
		p.bytes.Add(uint64(len(dv.Payload)))
		p.got.Add(1)
	})
	p.pub = startCounting(tb, 1, nil, p.sub.Addr())
	waitFor(tb, 10*time.Second, "route", func() bool {
		var ok bool
		p.pub.Do(func(_ time.Time, r *sdn.Router) { _, ok = r.Route(2) })
		return ok
	})
	p.pub.Do(func(now time.Time, r *sdn.Router) {
		if err := r.Publish(now, p.ch); err != nil {
			tb.Error(err)
		}
	})
	p.sub.Do(func(now time.Time, r *sdn.Router) { _ = r.Subscribe(now, p.ch) })
	one := []byte("warm-up")
	waitFor(tb, 10*time.Second, "data on the subscriber", func() bool {
		p.pub.Do(func(now time.Time, r *sdn.Router) { _ = r.Send(now, p.ch, one) })
		return p.got.Load() > 0
	})
	settle(p)
	return p
}

// BenchmarkLinkDatagram sends pub/sub data from one driver to another over
// QUIC on loopback, at most window messages ahead of the subscriber's
// deliveries (so that queues do not simply overflow). allocs/op counts the
// whole process: both drivers, both Routers and quic-go on both ends.
// payload=1213 is a 1200-byte RTP packet behind a 13-byte media frame
// header; stream/op is the share of messages that went on the reliable
// stream instead of a datagram.
func BenchmarkLinkDatagram(b *testing.B) {
	const window = 64
	for _, size := range []int{200, 1213} {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			p := linkedPair(b)
			payload := make([]byte, size)
			send := func(now time.Time, r *sdn.Router) { _ = r.Send(now, p.ch, payload) }
			before := p.pub.Stats()
			got0 := p.got.Load()
			var sent uint64
			b.ReportAllocs()
			for b.Loop() {
				p.pub.Do(send)
				sent++
				if sent%window == 0 {
					deadline := time.Now().Add(100 * time.Millisecond)
					for p.got.Load()-got0+window < sent && time.Now().Before(deadline) {
						time.Sleep(20 * time.Microsecond)
					}
				}
			}
			// The last window is still on its way: wait for it, untimed.
			for deadline := time.Now().Add(time.Second); p.got.Load()-got0 < sent && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			after := p.pub.Stats()
			got := p.got.Load() - got0
			b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "pkts/s")
			b.ReportMetric(1-float64(got)/float64(sent), "lost/op")
			b.ReportMetric(float64(after.Oversized-before.Oversized)/float64(sent), "stream/op")
		})
	}
}

// settle waits until the subscriber's count has stopped moving for 50ms.
func settle(p *pair) {
	for n := p.got.Load(); ; {
		time.Sleep(50 * time.Millisecond)
		m := p.got.Load()
		if m == n {
			return
		}
		n = m
	}
}
