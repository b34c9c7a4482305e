// Command server runs one SFU node with WHIP and WHEP and sample pages:
//
//	go run ./examples/server
//
// then open the printed URL: publish your camera in one tab, view the room
// in another. Flags change the addresses; -public-ip advertises another
// address to peers (a host behind 1:1 NAT).
//
// With -node-id the server is one node of a cluster: it listens for the
// other nodes on -sdn (QUIC), joins those given by -seeds, and prints its
// overlay address for others to seed from. Three terminals:
//
//	go run ./examples/server -http 127.0.0.1:8081 -node-id 1 -sdn 127.0.0.1:10001
//	go run ./examples/server -http 127.0.0.1:8082 -node-id 2 -sdn 127.0.0.1:10002 -seeds 1@/ip4/127.0.0.1/udp/10001
//	go run ./examples/server -http 127.0.0.1:8083 -node-id 3 -sdn 127.0.0.1:10003 -seeds 2@/ip4/127.0.0.1/udp/10002
//
// then publish on node 1's page and view on node 3's. Every node of a
// cluster needs the same secret: -secret or $SFU_SECRET.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/sansrtc/sfu"
	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/transport/driver"
)

//go:embed web
var web embed.FS

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run() error {
	httpAddr := flag.String("http", "127.0.0.1:8080", "HTTP address for WHIP, WHEP and the sample pages")
	udpAddr := flag.String("udp", "127.0.0.1:0", "UDP address for media (port 0: any)")
	tcpAddr := flag.String("tcp", "", "ICE-TCP address (default: the UDP address's IP, any port)")
	noTCP := flag.Bool("no-tcp", false, "disable ICE-TCP")
	publicIP := flag.String("public-ip", "", "IP address to advertise to peers instead of the listening one")
	verbose := flag.Bool("v", false, "log sessions")
	nodeID := flag.Uint("node-id", 0, "cluster node id (decimal; the high 8 bits are the zone; 0: a single node)")
	zone := flag.Uint("zone", 0, "zone, combined into the node id when non-zero")
	sdnAddr := flag.String("sdn", "127.0.0.1:0", "UDP address of the QUIC links to other nodes (with -node-id)")
	seeds := flag.String("seeds", "", "comma-separated overlay addresses of other nodes, e.g. 1@/ip4/127.0.0.1/udp/10001")
	secret := flag.String("secret", "", "cluster secret (default $SFU_SECRET)")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "workers forwarding media, one per core: each has its own UDP port (the -udp port plus its index when not 0) and ICE-TCP port")
	singlePort := flag.Bool("single-port", false, "all workers share one UDP port and one ICE-TCP port (for hosts that can open only one; costs a hand-off per packet)")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := sfu.Config{DisableTCP: *noTCP, Logger: logger, Workers: *workers, SinglePort: *singlePort}
	var err error
	if cfg.UDPAddr, err = netip.ParseAddrPort(*udpAddr); err != nil {
		return fmt.Errorf("-udp: %w", err)
	}
	if *tcpAddr != "" {
		if cfg.TCPAddr, err = netip.ParseAddrPort(*tcpAddr); err != nil {
			return fmt.Errorf("-tcp: %w", err)
		}
	}
	if *publicIP != "" {
		if cfg.PublicIP, err = netip.ParseAddr(*publicIP); err != nil {
			return fmt.Errorf("-public-ip: %w", err)
		}
	}
	if *nodeID != 0 {
		if cfg.Cluster, err = clusterConfig(*nodeID, *zone, *sdnAddr, *seeds, *secret, logger); err != nil {
			return err
		}
	} else if *seeds != "" {
		return errors.New("-seeds needs -node-id")
	}
	srv, err := sfu.New(cfg)
	if err != nil {
		return err
	}
	pages, _ := fs.Sub(web, "web")
	mux := http.NewServeMux()
	mux.Handle("/whip/", srv.Handler())
	mux.Handle("/whep/", srv.Handler())
	mux.Handle("/", http.FileServerFS(pages))

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shut)
	}()
	fmt.Printf("sfu listening on http://%s/ (media: udp %s", ln.Addr(), srv.UDPAddr())
	if a := srv.TCPAddr(); a.IsValid() {
		fmt.Printf(", tcp %s", a)
	}
	fmt.Println(")")
	if d := srv.Driver(); d.Workers() > 1 {
		fmt.Printf("  %d workers", d.Workers())
		if !*singlePort {
			fmt.Print(", udp")
			for i := range d.Workers() {
				fmt.Printf(" %s", d.WorkerUDPAddr(i))
			}
		}
		fmt.Println()
	}
	if a := srv.SDNAddr(); a.Node != 0 {
		fmt.Printf("  cluster node %s (seed others with it)\n", a)
	}
	fmt.Printf("  publish: http://%s/publish.html?room=demo\n  view:    http://%s/view.html?room=demo\n", ln.Addr(), ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		stop()
		<-errc
		return err
	}
	return <-errc
}

// clusterConfig builds the cluster part of the configuration from the flags.
func clusterConfig(nodeID, zone uint, listen, seeds, secret string, logger *slog.Logger) (*driver.ClusterConfig, error) {
	id := sdn.NodeID(nodeID)
	if zone != 0 {
		id = sdn.MakeNodeID(sdn.ZoneID(zone), uint32(nodeID))
	}
	addr, err := netip.ParseAddrPort(listen)
	if err != nil {
		return nil, fmt.Errorf("-sdn: %w", err)
	}
	var seedAddrs []sdn.Addr
	for _, s := range strings.Split(seeds, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := sdn.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("-seeds: %w", err)
		}
		seedAddrs = append(seedAddrs, a)
	}
	if secret == "" {
		secret = os.Getenv("SFU_SECRET")
	}
	if secret == "" {
		secret = "sfu development secret"
		logger.Warn("no cluster secret (-secret or $SFU_SECRET): using the development secret; anyone can join this cluster")
		fmt.Fprintln(os.Stderr, "WARNING: no cluster secret set (-secret or $SFU_SECRET); using a development secret, insecure")
	}
	return &driver.ClusterConfig{Listen: addr, Router: sdn.Config{ID: id, Seeds: seedAddrs, Secret: []byte(secret)}}, nil
}
