package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Config configures a Mux. The zero value listens on 127.0.0.1 on a free
// port with batches of 32.
type Config struct {
	// Addr is the local address; zero means 127.0.0.1:0.
	Addr netip.AddrPort
	// BatchSize is how many datagrams one read syscall may return
	// (recvmmsg on Linux); default 32. 1 reads one at a time with
	// ReadFromUDPAddrPort.
	BatchSize int
	// MaxDatagram is the size of each read buffer; default 1500. Longer
	// datagrams are truncated and dropped.
	MaxDatagram int
	// Logger defaults to discarding.
	Logger *slog.Logger
	// DisableGSO turns off UDP GSO in WriteBatch (see the package doc).
	DisableGSO bool
	// BatchDone, if set, is called on the read goroutine after the
	// datagrams of each read batch have been dispatched (after each
	// datagram with BatchSize 1), so a handler can hold what they cause
	// and write it at once.
	BatchDone func()
}

// Validate reports a Config that cannot work.
func (c *Config) Validate() error {
	if c.BatchSize < 0 || c.BatchSize > 1024 {
		return fmt.Errorf("udp: BatchSize %d out of range 0..1024", c.BatchSize)
	}
	if c.MaxDatagram < 0 || c.MaxDatagram > 65535 {
		return fmt.Errorf("udp: MaxDatagram %d out of range 0..65535", c.MaxDatagram)
	}
	return nil
}

// Datagram is one outgoing packet for WriteBatch.
type Datagram struct {
	B  []byte
	To netip.AddrPort
}

// WriteStats counts what WriteBatch did.
type WriteStats struct {
	// Datagrams is how many datagrams were sent, Syscalls in how many
	// system calls.
	Datagrams, Syscalls uint64
	// GSOMessages is how many sends carried more than one datagram as
	// UDP_SEGMENT segments, GSODatagrams how many datagrams they held.
	GSOMessages, GSODatagrams uint64
	// GSOFallbacks is how many such sends the kernel refused and were
	// resent datagram by datagram.
	GSOFallbacks uint64
	// GSO is whether UDP_SEGMENT is in use: false when disabled by
	// Config, outside Linux, on kernels without it, and after the
	// kernel refused it as unsupported (EIO: the device cannot
	// checksum in hardware).
	GSO bool
}

// Mux owns one UDP socket shared by every session of a server: a read
// loop (Serve) hands each datagram to the Demux, and WritePacket /
// WriteBatch send. It implements Writer. Safe for concurrent use.
type Mux struct {
	*Demux
	conn  *net.UDPConn
	cfg   Config
	log   *slog.Logger
	local netip.AddrPort

	wmu sync.Mutex
	w   *batchWriter

	closeOnce sync.Once
	closed    chan struct{}
}

// Listen opens the socket. Call Serve to start reading.
func Listen(cfg Config) (*Mux, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Addr.IsValid() {
		cfg.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 32
	}
	if cfg.MaxDatagram == 0 {
		cfg.MaxDatagram = 1500
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	network := "udp4"
	if !cfg.Addr.Addr().Is4() {
		network = "udp"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(cfg.Addr))
	if err != nil {
		return nil, err
	}
	m := &Mux{
		Demux:  NewDemux(),
		conn:   conn,
		cfg:    cfg,
		log:    log,
		local:  conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		closed: make(chan struct{}),
	}
	if m.w, err = newBatchWriter(conn, cfg.DisableGSO); err != nil {
		conn.Close()
		return nil, err
	}
	return m, nil
}

// LocalAddr returns the bound address (with the real port), for candidates.
func (m *Mux) LocalAddr() netip.AddrPort { return m.local }

// WritePacket sends one datagram. It allocates nothing.
func (m *Mux) WritePacket(b []byte, to netip.AddrPort) error {
	_, err := m.conn.WriteToUDPAddrPort(b, to)
	return err
}

// WriteBatch sends datagrams with as few syscalls as the OS allows
// (sendmmsg on Linux, with a destination's consecutive equal-sized
// datagrams as one UDP GSO send: see the package doc). Datagrams to one
// destination keep their order; across destinations they may not. A datagram the kernel refuses (an unreachable or
// invalid destination, one too large) is skipped and the rest are still
// sent, so one peer's bad path costs no other peer its packets. It returns
// how many were sent and the first error; len(ds) minus the count is how
// many failed. Only a closed socket stops it early.
func (m *Mux) WriteBatch(ds []Datagram) (int, error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	return m.w.write(ds)
}

// WriteStats returns WriteBatch's counters.
func (m *Mux) WriteStats() WriteStats {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	return m.w.stats
}

// Serve runs the read loop until Close or ctx ends. Each datagram is
// dispatched with the time it was read.
func (m *Mux) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { m.Close() })
	defer stop()
	if m.cfg.BatchSize == 1 {
		return m.serveSingle()
	}
	return m.serveBatch()
}

func (m *Mux) serveSingle() error {
	buf := make([]byte, m.cfg.MaxDatagram+1)
	for {
		n, from, err := m.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return m.readErr(err)
		}
		if n > m.cfg.MaxDatagram {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		m.Dispatch(time.Now(), from, m, buf[:n])
		if m.cfg.BatchDone != nil {
			m.cfg.BatchDone()
		}
	}
}

func (m *Mux) serveBatch() error {
	size := m.cfg.MaxDatagram + 1 // one spare byte detects truncation
	mem := make([]byte, m.cfg.BatchSize*size)
	bufs := make([][]byte, m.cfg.BatchSize)
	for i := range bufs {
		bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
	}
	r, err := newBatchReader(m.conn, bufs)
	if err != nil {
		return err
	}
	for {
		n, err := r.readBatch()
		if err != nil {
			return m.readErr(err)
		}
		now := time.Now()
		for i := range n {
			b, from, trunc := r.datagram(i)
			if trunc || len(b) > m.cfg.MaxDatagram || !from.IsValid() {
				continue
			}
			m.Dispatch(now, from, m, b)
		}
		if m.cfg.BatchDone != nil {
			m.cfg.BatchDone()
		}
	}
}

func (m *Mux) readErr(err error) error {
	select {
	case <-m.closed:
		return nil
	default:
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close closes the socket; Serve returns nil.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.conn.Close()
	})
	return err
}
