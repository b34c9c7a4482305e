// Command server runs one SFU node with WHIP and WHEP and sample pages:
//
//	go run ./examples/server
//
// then open the printed URL: publish your camera in one tab, view the room
// in another. Flags change the addresses; -public-ip advertises another
// address to peers (a host behind 1:1 NAT).
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
	"syscall"
	"time"

	"github.com/sansrtc/sfu"
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
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := sfu.Config{DisableTCP: *noTCP, Logger: logger}
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
