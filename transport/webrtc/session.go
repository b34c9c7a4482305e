package webrtc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/deadline"

	"github.com/sansrtc/sfu/transport/udp"
)

// State is where a Session is in its life.
type State int32

// Session states, in order.
const (
	// StateNew: waiting for the peer's first valid STUN request.
	StateNew State = iota
	// StateChecking: ICE answered, DTLS handshake not finished.
	StateChecking
	// StateConnected: SRTP keys are in place; media flows both ways.
	StateConnected
	// StateFailed: the DTLS handshake failed or the fingerprint did not match.
	StateFailed
	// StateClosed: closed locally, by close_notify, or consent expired.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateChecking:
		return "checking"
	case StateConnected:
		return "connected"
	case StateFailed:
		return "failed"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Session errors.
var (
	// ErrNotConnected is returned when sending before SRTP keys exist.
	ErrNotConnected = errors.New("webrtc: session not connected")
	// ErrClosed is returned by RestartICE on a closed or failed session.
	ErrClosed = errors.New("webrtc: session closed")
)

// SessionConfig configures one peer's transport session.
type SessionConfig struct {
	// Certificate is the server's DTLS certificate. Required.
	Certificate *Certificate
	// LocalUfrag and LocalPwd are the ICE credentials put in our answer.
	LocalUfrag, LocalPwd string
	// RemoteUfrag is the peer's ufrag from its offer (checked in USERNAME
	// when set).
	RemoteUfrag string
	// RemoteFingerprint is the peer's a=fingerprint. Required.
	RemoteFingerprint Fingerprint
	// OnRTP receives each decrypted RTP packet, on the read goroutine; pkt
	// is borrowed for the call.
	OnRTP func(now time.Time, pkt []byte)
	// OnRTCP receives each decrypted RTCP compound packet, likewise.
	OnRTCP func(now time.Time, pkt []byte)
	// OnStateChange is called, from whichever goroutine caused it, when
	// the state changes. It must not block.
	OnStateChange func(State)
	// ConsentTimeout is how long the session lives without a valid STUN
	// Binding request before Expired reports true; default ConsentTimeout
	// (30 s). A short one (2-3 s) closes vanished peers quickly but must
	// exceed the peer's consent-check interval: pion checks every 2 s,
	// browsers every ~5 s once connected.
	ConsentTimeout time.Duration
	// HandshakeTimeout bounds the DTLS handshake; default 30 s.
	HandshakeTimeout time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// SessionStats counts what a session dropped and passed.
type SessionStats struct {
	ICE ICEStats
	// RTP and RTCP count decrypted packets handed to the callbacks.
	RTP, RTCP uint64
	// DecryptErrors counts SRTP/SRTCP packets that failed authentication,
	// replay checks or parsing.
	DecryptErrors uint64
	// Dropped counts datagrams of unknown class, arriving before keys,
	// or arriving after the session closed or failed.
	Dropped uint64
}

// path is where we send: the writer the peer's nominated address arrived
// by and that address.
type path struct {
	w    udp.Writer
	addr netip.AddrPort
}

// Session is one peer's WebRTC transport: ICE-lite, DTLS (pion/dtls over an
// in-memory packet conn) and SRTP. It implements udp.Handler. Inbound
// datagrams are fed by the demux (HandleDatagram); outbound media goes
// through EncryptRTP/EncryptRTCP into caller buffers and out by WritePacket
// on Path, or WriteRTP/WriteRTCP which do both.
//
// HandleDatagram may be called from several read goroutines; the encrypt
// and write methods from several writers; the two sides have separate
// locks so reading never waits on writing. No lock that Expired, Stats,
// PollTimeout or decryption take is held while writing to the network. A
// closed or failed session drops all input.
type Session struct {
	cfg SessionConfig
	log *slog.Logger

	state atomic.Int32
	path  atomic.Pointer[path]

	// Read side.
	rmu sync.Mutex
	ice *ICELite
	// stunB holds a STUN response while it is written, under smu and not
	// rmu, so a blocking Writer delays only this session's next STUN
	// answer, never Expired, Stats or media. smu is taken before rmu.
	smu   sync.Mutex
	stunB [128]byte
	rtpH  rtp.Header
	rtcpH rtcp.Header
	dec   *srtp.Context
	stats SessionStats

	// Write side.
	wmu  sync.Mutex
	enc  *srtp.Context
	encH rtp.Header
	encR rtcp.Header
	wbuf []byte

	// DTLS plumbing.
	dtlsOnce sync.Once
	pc       *packetConn
	closeMu  sync.Mutex
	dconn    *dtls.Conn
	profile  srtp.ProtectionProfile
}

// NewSession creates a session; the consent timer starts at now.
func NewSession(now time.Time, cfg SessionConfig) (*Session, error) {
	if cfg.Certificate == nil || cfg.LocalUfrag == "" || cfg.LocalPwd == "" || cfg.RemoteFingerprint.Value == "" {
		return nil, errors.New("webrtc: SessionConfig needs Certificate, local ICE credentials and RemoteFingerprint")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Session{
		cfg:  cfg,
		log:  log,
		ice:  NewICELite(now, cfg.LocalUfrag, cfg.LocalPwd, cfg.RemoteUfrag),
		wbuf: make([]byte, 0, 1500),
	}
	s.ice.SetConsentTimeout(cfg.ConsentTimeout)
	s.pc = newPacketConn(s)
	return s, nil
}

// State returns the current state.
func (s *Session) State() State { return State(s.state.Load()) }

// Path returns where media for the peer goes: the writer and address of
// the nominated (else latest valid) ICE path.
func (s *Session) Path() (udp.Writer, netip.AddrPort, bool) {
	p := s.path.Load()
	if p == nil {
		return nil, netip.AddrPort{}, false
	}
	return p.w, p.addr, true
}

// SRTPProfile returns the negotiated SRTP protection profile once connected.
func (s *Session) SRTPProfile() (srtp.ProtectionProfile, bool) {
	if s.State() != StateConnected {
		return 0, false
	}
	return s.profile, true
}

// Stats returns the read-side counters.
func (s *Session) Stats() SessionStats {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	st := s.stats
	st.ICE = s.ice.Stats()
	return st
}

// Expired reports whether ICE consent has lapsed (SessionConfig's
// ConsentTimeout without a valid Binding request). The driver checks it and then closes the session.
func (s *Session) Expired(now time.Time) bool {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.ice.Expired(now)
}

// PollTimeout returns when the session expires unless consent is renewed.
func (s *Session) PollTimeout() time.Time {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.ice.PollTimeout()
}

// HandleDatagram takes one datagram from the demux. STUN is answered on w,
// DTLS goes to the handshake, SRTP/SRTCP is decrypted in place and handed
// to OnRTP/OnRTCP. It returns true when b was a valid STUN Binding request
// (so the demux may bind from to this session). A closed or failed session
// drops everything: in particular it no longer answers consent checks, so
// the peer learns the session is gone even if the demux still routes to it.
func (s *Session) HandleDatagram(now time.Time, from netip.AddrPort, w udp.Writer, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if st := s.State(); st == StateClosed || st == StateFailed {
		s.rmu.Lock()
		s.stats.Dropped++
		s.rmu.Unlock()
		return false
	}
	switch c := b[0]; {
	case c < 4:
		return s.handleSTUN(now, from, w, b)
	case c >= 20 && c < 64:
		s.handleDTLS(b)
	case c >= 128 && c < 192:
		s.handleSRTP(now, b)
	default:
		s.rmu.Lock()
		s.stats.Dropped++
		s.rmu.Unlock()
	}
	return false
}

func (s *Session) handleSTUN(now time.Time, from netip.AddrPort, w udp.Writer, b []byte) bool {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.rmu.Lock()
	resp, ok := s.ice.HandleSTUN(now, from, b, s.stunB[:0])
	var sel netip.AddrPort
	nominated := false
	if ok {
		sel, _ = s.ice.Selected()
		nominated = s.ice.Nominated()
	}
	s.rmu.Unlock()
	if !ok {
		return false
	}
	if err := w.WritePacket(resp, from); err != nil && s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "stun response", slog.String("err", err.Error()))
	}
	if p := s.path.Load(); p == nil || (sel == from && (p.addr != from || p.w != w)) {
		s.path.Store(&path{w: w, addr: from})
	}
	if nominated && s.State() == StateNew {
		s.setState(StateChecking)
	}
	return true
}

func (s *Session) handleDTLS(b []byte) {
	if st := s.State(); st == StateFailed || st == StateClosed {
		return
	}
	s.dtlsOnce.Do(func() {
		if s.State() == StateNew {
			s.setState(StateChecking)
		}
		go s.runDTLS()
	})
	s.pc.push(b)
}

func (s *Session) handleSRTP(now time.Time, b []byte) {
	s.rmu.Lock()
	if s.dec == nil {
		s.stats.Dropped++
		s.rmu.Unlock()
		return
	}
	var out []byte
	var err error
	isRTCP := len(b) >= 2 && b[1]&0x7f >= 64 && b[1]&0x7f < 96 // RFC 5761: PT 192-223
	switch {
	case isRTCP:
		out, err = s.dec.DecryptRTCP(b, b, &s.rtcpH)
	default:
		out, err = s.dec.DecryptRTP(b, b, &s.rtpH)
	}
	if err != nil {
		s.stats.DecryptErrors++
		s.rmu.Unlock()
		return
	}
	if isRTCP {
		s.stats.RTCP++
	} else {
		s.stats.RTP++
	}
	s.rmu.Unlock()
	if isRTCP {
		if s.cfg.OnRTCP != nil {
			s.cfg.OnRTCP(now, out)
		}
	} else if s.cfg.OnRTP != nil {
		s.cfg.OnRTP(now, out)
	}
}

// RestartICE replaces the session's ICE credentials for an ICE restart
// (RFC 8445 section 2.4; WHIP/WHEP PATCH, RFC 9725 section 4.3): from now
// on only Binding requests for localUfrag/remoteUfrag signed with localPwd
// are answered, and the consent timer starts again at now. DTLS and SRTP
// are kept, since an ICE restart does not renegotiate them, and so is the
// selected path until the peer nominates a new one, so media flows
// throughout. The caller registers localUfrag with the demux alongside the
// old ufrag (addresses bound under the old one keep reaching this session)
// and unregisters both when the session ends.
func (s *Session) RestartICE(now time.Time, localUfrag, localPwd, remoteUfrag string) error {
	if localUfrag == "" || localPwd == "" {
		return errors.New("webrtc: RestartICE needs local ICE credentials")
	}
	if st := s.State(); st == StateClosed || st == StateFailed {
		return ErrClosed
	}
	s.rmu.Lock()
	s.ice.Restart(now, localUfrag, localPwd, remoteUfrag)
	s.rmu.Unlock()
	return nil
}

// EncryptRTP encrypts a marshalled RTP packet into dst (reused when its
// capacity is at least len(plain)+16) and returns the SRTP packet.
func (s *Session) EncryptRTP(dst, plain []byte) ([]byte, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.enc == nil {
		return nil, ErrNotConnected
	}
	return s.enc.EncryptRTP(dst[:0], plain, &s.encH)
}

// EncryptRTCP encrypts a marshalled RTCP compound packet into dst (reused
// when its capacity is at least len(plain)+20).
func (s *Session) EncryptRTCP(dst, plain []byte) ([]byte, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.enc == nil {
		return nil, ErrNotConnected
	}
	return s.enc.EncryptRTCP(dst[:0], plain, &s.encR)
}

// WriteRTP encrypts plain into the session's own buffer and sends it on
// the selected path. For batched sending use EncryptRTP and Path.
func (s *Session) WriteRTP(plain []byte) error {
	return s.write(plain, false)
}

// WriteRTCP is WriteRTP for an RTCP compound packet.
func (s *Session) WriteRTCP(plain []byte) error {
	return s.write(plain, true)
}

func (s *Session) write(plain []byte, isRTCP bool) error {
	p := s.path.Load()
	if p == nil {
		return ErrNotConnected
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.enc == nil {
		return ErrNotConnected
	}
	var out []byte
	var err error
	switch {
	case isRTCP:
		out, err = s.enc.EncryptRTCP(s.wbuf[:0], plain, &s.encR)
	default:
		out, err = s.enc.EncryptRTP(s.wbuf[:0], plain, &s.encH)
	}
	if err != nil {
		return err
	}
	if cap(out) > cap(s.wbuf) {
		s.wbuf = out[:0]
	}
	return p.w.WritePacket(out, p.addr)
}

// Close ends the session: sends close_notify if DTLS is up, stops the DTLS
// goroutines, and moves to StateClosed.
func (s *Session) Close() error {
	s.closeMu.Lock()
	c := s.dconn
	s.closeMu.Unlock()
	var err error
	if c != nil {
		err = c.Close()
	}
	s.pc.Close()
	s.setState(StateClosed)
	return err
}

func (s *Session) setState(st State) {
	for {
		old := State(s.state.Load())
		if old == st || old == StateClosed || (old == StateFailed && st != StateClosed) {
			return
		}
		if s.state.CompareAndSwap(int32(old), int32(st)) {
			break
		}
	}
	if s.cfg.OnStateChange != nil {
		s.cfg.OnStateChange(st)
	}
}

// srtpProfiles is our preference: AEAD first (cheaper and stronger), then
// the mandatory-to-implement one.
var srtpProfiles = []dtls.SRTPProtectionProfile{
	dtls.SRTP_AEAD_AES_128_GCM,
	dtls.SRTP_AES128_CM_HMAC_SHA1_80,
}

func (s *Session) runDTLS() {
	err := s.handshake()
	if err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelInfo, "dtls handshake failed", slog.String("err", err.Error()))
		s.setState(StateFailed)
		s.pc.Close()
		return
	}
	s.setState(StateConnected)
	// Keep reading so DTLS processes retransmitted handshake flights and
	// close_notify; there is no application data (no data channels).
	buf := make([]byte, 1500)
	for {
		if _, err := s.dconn.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.setState(StateClosed)
			s.pc.Close()
			return
		}
	}
}

func (s *Session) handshake() error {
	want := s.cfg.RemoteFingerprint
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return ErrFingerprint
		}
		return verifyFingerprint(want, raw[0])
	}
	conn, err := dtls.ServerWithOptions(s.pc, s.pc.RemoteAddr(),
		dtls.WithCertificates(s.cfg.Certificate.tls),
		dtls.WithSRTPProtectionProfiles(srtpProfiles...),
		dtls.WithClientAuth(dtls.RequireAnyClientCert),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		// Self-signed certificates: trust comes from the SDP fingerprint.
		dtls.WithInsecureSkipVerify(true),
		dtls.WithVerifyPeerCertificate(verify),
	)
	if err != nil {
		return err
	}
	s.closeMu.Lock()
	s.dconn = conn
	s.closeMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return err
	}
	dp, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		conn.Close()
		return errors.New("webrtc: no SRTP profile negotiated")
	}
	state, ok := conn.ConnectionState()
	if !ok {
		conn.Close()
		return errors.New("webrtc: no DTLS state")
	}
	profile := srtp.ProtectionProfile(dp)
	sc := srtp.Config{Profile: profile}
	if err := sc.ExtractSessionKeysFromDTLS(&state, false); err != nil {
		conn.Close()
		return err
	}
	enc, err := srtp.CreateContext(sc.Keys.LocalMasterKey, sc.Keys.LocalMasterSalt, profile)
	if err != nil {
		conn.Close()
		return err
	}
	dec, err := srtp.CreateContext(sc.Keys.RemoteMasterKey, sc.Keys.RemoteMasterSalt, profile,
		srtp.SRTPReplayProtection(1024), srtp.SRTCPReplayProtection(1024))
	if err != nil {
		conn.Close()
		return err
	}
	s.profile = profile
	s.wmu.Lock()
	s.enc = enc
	s.wmu.Unlock()
	s.rmu.Lock()
	s.dec = dec
	s.rmu.Unlock()
	return nil
}

// packetConn is the net.PacketConn pion/dtls runs over: reads come from
// datagrams the demux pushes, writes go out on the session's path.
type packetConn struct {
	s        *Session
	in       chan []byte
	done     chan struct{}
	once     sync.Once
	deadline *deadline.Deadline
}

// dtlsQueue bounds buffered DTLS datagrams; a handshake flight is a few.
const dtlsQueue = 64

func newPacketConn(s *Session) *packetConn {
	return &packetConn{s: s, in: make(chan []byte, dtlsQueue), done: make(chan struct{}), deadline: deadline.New()}
}

// push copies a DTLS datagram in; it drops when the queue is full.
func (c *packetConn) push(b []byte) {
	select {
	case c.in <- append([]byte(nil), b...):
	default:
	}
}

var sessionAddr = &net.UDPAddr{IP: net.IPv4zero}

func (c *packetConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case b := <-c.in:
		return copy(p, b), sessionAddr, nil
	case <-c.deadline.Done():
		return 0, nil, &timeoutError{}
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *packetConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	pa := c.s.path.Load()
	if pa == nil {
		return 0, ErrNotConnected
	}
	if err := pa.w.WritePacket(p, pa.addr); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *packetConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *packetConn) LocalAddr() net.Addr                { return sessionAddr }
func (c *packetConn) RemoteAddr() net.Addr               { return sessionAddr }
func (c *packetConn) SetDeadline(t time.Time) error      { c.deadline.Set(t); return nil }
func (c *packetConn) SetReadDeadline(t time.Time) error  { c.deadline.Set(t); return nil }
func (c *packetConn) SetWriteDeadline(_ time.Time) error { return nil }

type timeoutError struct{}

func (timeoutError) Error() string   { return "webrtc: dtls read timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
