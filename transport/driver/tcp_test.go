package driver_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sansrtc/sfu/transport/driver"
)

// tcpFrame frames a datagram for ICE-TCP (RFC 4571).
func tcpFrame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// tcpViewer starts a driver with one viewer session and dials its ICE-TCP
// port: it returns the driver, its URL, the session's Location, the
// connection, and a valid connectivity check for the session.
func tcpViewer(t *testing.T) (*driver.Driver, string, string, *net.TCPConn, []byte) {
	t.Helper()
	d, url := start(t, driver.Config{}, nil)
	off := offer(t, false)
	code, loc, ans := post(t, url+"/whep/r", off)
	if code != 201 {
		t.Fatal(code, ans)
	}
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(d.TCPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	check := stunReq(t, sdpValue(ans, "ice-ufrag")+":"+sdpValue(off, "ice-ufrag"), sdpValue(ans, "ice-pwd"), true)
	return d, url, loc, c, check
}

// TestTCPStalledPeerDoesNotFreezeDriver: an ICE-TCP peer that keeps
// sending consent checks but never reads the answers costs only itself.
// The driver stays responsive throughout (no socket write happens under
// the driver's or a session's lock, and writes to a TCP path never block)
// and the server closes the stalled connection.
func TestTCPStalledPeerDoesNotFreezeDriver(t *testing.T) {
	d, _, _, c, check := tcpViewer(t)
	var burst []byte
	for range 200 {
		burst = append(burst, tcpFrame(check)...)
	}
	// The driver must answer Stats promptly all along.
	stop := make(chan struct{})
	frozen := make(chan time.Duration, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			done := make(chan struct{})
			t0 := time.Now()
			go func() { d.Stats(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				frozen <- time.Since(t0)
				return
			}
		}
	}()
	defer close(stop)
	// Send consent checks and never read the answers, until the server
	// gives up on us: our writes then fail with a reset, not a timeout.
	pending := burst
	closed := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && !closed; {
		select {
		case dt := <-frozen:
			t.Fatalf("driver frozen: Stats blocked for %v while an ICE-TCP peer stopped reading", dt)
		default:
		}
		_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Write(pending)
		pending = pending[n:] // keep the RFC 4571 framing across partial writes
		if len(pending) == 0 {
			pending = burst
		}
		var ne net.Error
		closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	if !closed {
		t.Fatal("the server never closed a connection whose peer stopped reading")
	}
	if st := d.Stats().TCP; st.Stalled != 1 || st.Dropped == 0 {
		t.Fatalf("TCP stats %+v: want the stall and the drops counted", st)
	}
	select {
	case dt := <-frozen:
		t.Fatalf("driver frozen: Stats blocked for %v", dt)
	default:
	}
}

// TestTCPConnClosedOnDelete: DELETE ends the session's ICE-TCP connection
// too, and nothing answers its consent checks any more, so the peer
// learns that the session is gone.
func TestTCPConnClosedOnDelete(t *testing.T) {
	d, url, loc, c, stunCheck := tcpViewer(t)
	check := func() error {
		if _, err := c.Write(tcpFrame(stunCheck)); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var hdr [2]byte
		_, err := io.ReadFull(c, hdr[:])
		if err == nil {
			_, err = io.ReadFull(c, make([]byte, binary.BigEndian.Uint16(hdr[:])))
		}
		return err
	}
	if err := check(); err != nil {
		t.Fatalf("consent check before DELETE: %v", err)
	}
	req, _ := http.NewRequest("DELETE", url+loc, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if s := d.Stats(); s.Sessions != 0 {
		t.Fatalf("sessions %d after DELETE", s.Sessions)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ne net.Error
	if _, err := c.Read(make([]byte, 16)); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("after DELETE the ICE-TCP connection is still open: %v", err)
	}
	if err := check(); err == nil {
		t.Fatal("after DELETE the session still grants consent")
	}
}
