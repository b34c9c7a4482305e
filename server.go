package sfu

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/sansrtc/sfu/core"
	"github.com/sansrtc/sfu/sdn"
	"github.com/sansrtc/sfu/transport/driver"
	"github.com/sansrtc/sfu/transport/whip"
)

// Config configures a Server. The zero value is a development server on
// 127.0.0.1 that lets anyone publish and play.
type Config struct {
	// UDPAddr and TCPAddr are where media arrives (default 127.0.0.1 with
	// an ephemeral port; ICE-TCP on the same IP). DisableTCP turns ICE-TCP off.
	UDPAddr    netip.AddrPort
	TCPAddr    netip.AddrPort
	DisableTCP bool
	// PublicIP is advertised to peers instead of the listening address.
	PublicIP netip.Addr
	// Authorize checks WHIP/WHEP bearer tokens (nil: allow everyone).
	Authorize whip.Authorizer
	// Codecs is the codec preference order (nil: Opus, VP8, VP9, H264, AV1).
	Codecs []string
	// MaxSessions bounds concurrent sessions (default 1000).
	MaxSessions int
	// ConsentTimeout closes a session whose peer vanished: no valid ICE
	// check for this long (default 30 s).
	ConsentTimeout time.Duration
	// Node configures the core nodes (rooms, limits, seed); its limits are
	// per worker.
	Node core.Config
	// Workers is how many cores forward media: each worker has its own
	// core.Node, UDP port (UDPAddr's port plus its index when one is
	// given) and ICE-TCP port (default GOMAXPROCS). SinglePort shares one
	// port among them at a cost (see package transport/driver).
	Workers    int
	SinglePort bool
	// PlacementSlack is how far a room's worker may be ahead of the least
	// loaded one and still take the room's next session (default 8,
	// negative: always the least loaded).
	PlacementSlack int
	// Cluster, when set, makes the server one node of a cluster (QUIC
	// links to the other nodes; rooms span them all). Nil: one node.
	Cluster *driver.ClusterConfig
	// Logger receives lifecycle logs (default: discard).
	Logger *slog.Logger
}

// Server is one SFU node reachable by WHIP and WHEP: a core.Node run by the
// WebRTC driver, and the HTTP handler for its signalling.
type Server struct {
	d *driver.Driver
	h *whip.Handler
}

// New opens the media sockets. Mount Handler on your mux and call Run.
func New(cfg Config) (*Server, error) {
	d, err := driver.New(driver.Config{Node: cfg.Node, UDPAddr: cfg.UDPAddr, TCPAddr: cfg.TCPAddr, DisableTCP: cfg.DisableTCP,
		PublicIP: cfg.PublicIP, Codecs: cfg.Codecs, MaxSessions: cfg.MaxSessions, ConsentTimeout: cfg.ConsentTimeout, Logger: cfg.Logger,
		Cluster: cfg.Cluster, Workers: cfg.Workers, SinglePort: cfg.SinglePort,
		PlacementSlack: cfg.PlacementSlack})
	if err != nil {
		return nil, err
	}
	h, err := whip.New(whip.Config{Backend: d, Authorize: cfg.Authorize, Logger: cfg.Logger})
	if err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return &Server{d: d, h: h}, nil
}

// Handler serves POST /whip/{room}, POST /whep/{room} and their session
// URLs; mount it at "/" or at "/whip/" and "/whep/".
func (s *Server) Handler() http.Handler { return s.h }

// Run forwards media until ctx is done, then closes every session.
func (s *Server) Run(ctx context.Context) error { return s.d.Run(ctx) }

// UDPAddr is where media arrives over UDP.
func (s *Server) UDPAddr() netip.AddrPort { return s.d.UDPAddr() }

// TCPAddr is the ICE-TCP address (invalid when disabled).
func (s *Server) TCPAddr() netip.AddrPort { return s.d.TCPAddr() }

// SDNAddr is the node's overlay address, to give other nodes as a seed
// (zero without Config.Cluster).
func (s *Server) SDNAddr() sdn.Addr { return s.d.SDNAddr() }

// SDNNeighbours are the other nodes this one has links to (nil without
// Config.Cluster).
func (s *Server) SDNNeighbours() []sdn.NeighbourInfo { return s.d.SDNNeighbours() }

// Driver is the WebRTC driver, for stats and inspection.
func (s *Server) Driver() *driver.Driver { return s.d }
