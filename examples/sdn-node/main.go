// Command sdn-node runs one node of the sdn overlay over QUIC, so that a
// few terminals make a cluster:
//
//	sdn-node --node-id 1 --listen 127.0.0.1:10001 --publish 7
//	sdn-node --node-id 2 --listen 127.0.0.1:10002 --seeds 1@/ip4/127.0.0.1/udp/10001 --subscribe 7
//	sdn-node --node-id 3 --listen 127.0.0.1:10003 --seeds 2@/ip4/127.0.0.1/udp/10002 --subscribe 7
//
// Each node prints its address on start (pass it to others as a seed),
// its neighbours and routes as they change, and what it receives. The
// publisher sends a test packet on its channel every 100ms. All nodes of
// a cluster need the same --secret (default from $SDN_SECRET).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/transport/quic"
)

func main() {
	nodeID := flag.Uint("node-id", 0, "node id (decimal; the high 8 bits are the zone)")
	zone := flag.Uint("zone", 0, "zone, combined into the node id when non-zero")
	listen := flag.String("listen", "127.0.0.1:0", "UDP address to listen on")
	seeds := flag.String("seeds", "", "comma-separated seed addresses, e.g. 1@/ip4/127.0.0.1/udp/10001")
	secret := flag.String("secret", os.Getenv("SDN_SECRET"), "cluster secret (default $SDN_SECRET)")
	publish := flag.Uint64("publish", 0, "publish a test channel with this id")
	subscribe := flag.Uint64("subscribe", 0, "subscribe to the channel with this id")
	flat := flag.Bool("flat-routes", false, "keep a route per node of every zone (exact routes; tables grow with the cluster)")
	flag.Parse()
	if *nodeID == 0 {
		log.Fatal("--node-id is required")
	}
	id := sdn.NodeID(*nodeID)
	if *zone != 0 {
		id = sdn.MakeNodeID(sdn.ZoneID(*zone), uint32(*nodeID))
	}
	addr, err := netip.ParseAddrPort(*listen)
	if err != nil {
		log.Fatalf("--listen: %v", err)
	}
	var seedAddrs []sdn.Addr
	for _, s := range strings.Split(*seeds, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := sdn.ParseAddr(s)
		if err != nil {
			log.Fatal(err)
		}
		seedAddrs = append(seedAddrs, a)
	}

	var mu sync.Mutex
	var received, lastSeq uint64
	d, err := quic.New(quic.Config{
		Router: sdn.Config{ID: id, Seeds: seedAddrs, Secret: []byte(*secret), FlatRoutes: *flat},
		Listen: addr,
		OnEvent: func(e sdn.Event) {
			switch e := e.(type) {
			case sdn.EventNeighbourUp:
				fmt.Printf("neighbour %d up\n", e.Node)
			case sdn.EventNeighbourDown:
				fmt.Printf("neighbour %d down\n", e.Node)
			case sdn.EventSubscribed:
				fmt.Printf("channel %d: subscribed\n", e.Channel)
			case sdn.EventMoved:
				fmt.Printf("channel %d: path moved (a media subscriber would ask for a keyframe)\n", e.Channel)
			case sdn.EventChannelEnded:
				fmt.Printf("channel %d: ended\n", e.Channel)
			case sdn.EventFeedback:
				if e.Keyframe {
					fmt.Printf("channel %d: keyframe requested\n", e.Channel)
				}
			}
		},
		OnData: func(dv sdn.Delivery) {
			mu.Lock()
			received++
			lastSeq = uint64(dv.Seq)
			mu.Unlock()
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("node address: %s\n", d.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *publish != 0 {
		d.Do(func(now time.Time, r *sdn.Router) {
			if err := r.Publish(now, *publish); err != nil {
				log.Fatal(err)
			}
		})
		go func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					msg := []byte(fmt.Sprintf("hello #%d from %d", n, id))
					d.Do(func(now time.Time, r *sdn.Router) { _ = r.Send(now, *publish, msg) })
				}
			}
		}()
	}
	if *subscribe != 0 {
		d.Do(func(now time.Time, r *sdn.Router) { _ = r.Subscribe(now, *subscribe) })
	}
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		last := ""
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var routes []sdn.RouteInfo
			d.Do(func(_ time.Time, r *sdn.Router) { routes = r.Routes() })
			var b strings.Builder
			for _, ri := range routes {
				if ri.Next == 0 {
					continue
				}
				if ri.Node != 0 {
					fmt.Fprintf(&b, " node %d via %d (%.1fms)", ri.Node, ri.Next, float64(ri.Cost)/1000)
				} else {
					fmt.Fprintf(&b, " zone %d via %d (%.1fms)", ri.Zone, ri.Next, float64(ri.Cost)/1000)
				}
			}
			if s := b.String(); s != last {
				fmt.Printf("routes:%s\n", s)
				last = s
			}
			if *subscribe != 0 {
				mu.Lock()
				fmt.Printf("channel %d: %d packets received, last seq %d\n", *subscribe, received, lastSeq)
				mu.Unlock()
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
