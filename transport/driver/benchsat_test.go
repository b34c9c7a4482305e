//go:build unix

package driver_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/core"
	"github.com/sansrtc/sfu/transport/driver"
)

// The saturating mode of BenchmarkSFU (sub-benchmarks workers=W/...): the
// publisher offers far more than the server can forward, so egress-pkts/s
// is the server's capacity, not the publisher's rate. For that the client
// process must stay cheap whatever the server sends: its publisher builds
// each frame by patching a few bytes of fixed packets, and its viewers
// stop reading their sockets once media has flowed (sinkConn), so the
// kernel drops what the server sends them without waking the process.

// benchSatModePrefix starts the mode field of benchClientEnv in saturating
// mode: "saturate:<publisher packets per second>".
const benchSatModePrefix = "saturate:"

// benchGenCPU is the line the client process prints last in saturating
// mode: "SFU-BENCH-GENCPU <cpu seconds> <wall seconds> <packets sent>",
// its own CPU time (user+system) and the publisher's packets over the
// time from benchReady to the close of its stdin.
const benchGenCPU = "SFU-BENCH-GENCPU"

// benchSatReady is how many media packets each viewer reads before its
// socket stops being read.
const benchSatReady = 10

// Saturating frames: five full packets and a short one, as an encoder at a
// high bitrate packetizes, at benchSatFrameRate frames per second until
// every viewer is ready and at the target rate after.
const (
	benchSatFull      = 1200
	benchSatLast      = 600
	benchSatPerFrame  = 6
	benchSatSetupRate = 30
	benchSatTick      = 2 * time.Millisecond
	benchSatKeyEvery  = time.Second
	benchSatRcvBuf    = 32 << 10
)

// newBenchDriver is the server of BenchmarkSFU. Saturating runs keep ICE
// consent for an hour: the viewers stop reading, and the server's socket
// overflows, so consent checks may go unanswered or be lost.
// Viewers are spread evenly over the workers (PlacementSlack -1: always
// the least loaded).
func newBenchDriver(workers int, saturate bool) (*driver.Driver, error) {
	cfg := driver.Config{DisableTCP: true, Workers: workers, PlacementSlack: -1}
	if saturate {
		cfg.ConsentTimeout = time.Hour
		cfg.SinglePort = *benchSinglePort
	}
	return driver.New(cfg)
}

// benchGen is what the client process reports of itself in saturating
// mode (benchGenCPU).
type benchGen struct {
	cpu, wall time.Duration
	sent      uint64
	ok        bool
}

func parseBenchGen(s string) (benchGen, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return benchGen{}, fmt.Errorf("%s %q: want 3 fields", benchGenCPU, s)
	}
	cpu, err1 := strconv.ParseFloat(f[0], 64)
	wall, err2 := strconv.ParseFloat(f[1], 64)
	sent, err3 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return benchGen{}, fmt.Errorf("%s %q: %w", benchGenCPU, s, err)
	}
	return benchGen{cpu: time.Duration(cpu * 1e9), wall: time.Duration(wall * 1e9), sent: sent, ok: true}, nil
}

// benchIngress is the number of RTP packets the server's tracks in room
// took in, for telling what the server forwarded from what the publisher
// offered: the most any worker's node took in (the publisher's worker;
// the others take a copy over the in-process link).
func benchIngress(d *driver.Driver, room string) uint64 {
	var most uint64
	d.Inspect(func(node *core.Node) {
		var n uint64
		cl := node.Cluster()
		for _, info := range cl.Tracks(room) {
			if rt, ok := cl.Source(room, cluster.TrackKey{Peer: info.Peer, Track: info.Name}); ok {
				n += rt.Stats().Packets
			}
		}
		most = max(most, n)
	})
	return most
}

// benchSaturate is TestBenchClientProcess in saturating mode.
func benchSaturate(t *testing.T, url string, fanout, pps int) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)

	pub, err := benchSatPublish(url+"/whip/bench", pps, stop, &wg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.pc.Close()

	views := make([]*benchSatViewer, fanout)
	errs := make([]error, fanout)
	sem := make(chan struct{}, 8) // concurrent handshakes
	var setup sync.WaitGroup
	for i := range fanout {
		setup.Add(1)
		sem <- struct{}{}
		go func() {
			defer setup.Done()
			defer func() { <-sem }()
			views[i], errs[i] = benchSatView(url+"/whep/bench", &wg)
		}()
	}
	setup.Wait()
	for _, v := range views {
		if v != nil {
			defer v.close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; i < fanout; {
		if views[i].count.Load() >= benchSatReady {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewer %d of %d received %d packets", i, fanout, views[i].count.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cpu0, t0, sent0 := benchSelfCPU(t), time.Now(), pub.sent.Load()
	pub.full.Store(true)
	fmt.Println(benchReady)

	_, _ = io.Copy(io.Discard, os.Stdin)
	cpu1, t1, sent1 := benchSelfCPU(t), time.Now(), pub.sent.Load()
	var total uint64
	for _, v := range views {
		total += v.count.Load()
	}
	fmt.Println(benchReceived, total)
	fmt.Printf("%s %.6f %.6f %d\n", benchGenCPU, (cpu1 - cpu0).Seconds(), t1.Sub(t0).Seconds(), sent1-sent0)
}

// benchSelfCPU is this process's user and system CPU time so far.
func benchSelfCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchSatAPI is piontest.API's loopback settings with ICE that never
// gives up on a silent peer, VP8 alone with keyframe requests but neither
// NACK nor RTX (a saturated server loses packets, and must not spend its
// time asking for or resending them), and no interceptors: no TWCC, no
// reports, nothing that costs per packet. With conn, ICE uses that one
// socket.
func benchSatAPI(conn net.PacketConn) (*pion.API, error) {
	var se pion.SettingEngine
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(time.Hour, time.Hour, 2*time.Second)
	if conn != nil {
		se.SetICEUDPMux(ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn}))
	}
	me := &pion.MediaEngine{}
	vp8 := pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: []pion.RTCPFeedback{{Type: "ccm", Parameter: "fir"}, {Type: "nack", Parameter: "pli"}}}, PayloadType: 96}
	if err := me.RegisterCodec(vp8, pion.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	// An empty registry, not none: without one pion adds its defaults.
	return pion.NewAPI(pion.WithSettingEngine(se), pion.WithMediaEngine(me), pion.WithInterceptorRegistry(&interceptor.Registry{})), nil
}

// benchSatPublisher is the saturating publisher: benchSatSetupRate frames
// per second until full, pps/benchSatPerFrame after.
type benchSatPublisher struct {
	pc   *pion.PeerConnection
	full atomic.Bool
	sent atomic.Uint64 // RTP packets written
	key  atomic.Bool   // a keyframe was asked for
}

// benchSatPublish publishes one VP8 track by WHIP and sends it from a
// goroutine until stop closes.
func benchSatPublish(url string, pps int, stop <-chan struct{}, wg *sync.WaitGroup) (*benchSatPublisher, error) {
	api, err := benchSatAPI(nil)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		return nil, err
	}
	local, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8}, "video", "bench")
	if err != nil {
		pc.Close()
		return nil, err
	}
	tx, err := pc.AddTransceiverFromTrack(local, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly})
	if err != nil {
		pc.Close()
		return nil, err
	}
	if err := benchSignal(pc, url); err != nil {
		pc.Close()
		return nil, err
	}
	p := &benchSatPublisher{pc: pc}
	p.key.Store(true)
	wg.Add(2)
	go func() { // keyframe requests from the SFU
		defer wg.Done()
		for {
			pkts, _, err := tx.Sender().ReadRTCP()
			if err != nil {
				return
			}
			for _, pk := range pkts {
				switch pk.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					p.key.Store(true)
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		p.run(local, float64(pps)/benchSatPerFrame, stop)
	}()
	return p, nil
}

// run paces frames by a benchSatTick ticker: each tick sends the frames
// due since the last one (a few at full rate), and a stall is not made up
// for beyond a few ticks.
func (p *benchSatPublisher) run(local *pion.TrackLocalStaticRTP, fps float64, stop <-chan struct{}) {
	var f benchSatFrame
	f.init()
	tick := time.NewTicker(benchSatTick)
	defer tick.Stop()
	last, lastKey := time.Now(), time.Time{}
	credit := 1.0
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			rate := float64(benchSatSetupRate)
			if p.full.Load() {
				rate = fps
			}
			credit = min(credit+now.Sub(last).Seconds()*rate, 1+4*benchSatTick.Seconds()*rate)
			last = now
			for ; credit >= 1; credit-- {
				key := p.key.Swap(false) || now.Sub(lastKey) >= benchSatKeyEvery
				if key {
					lastKey = now
				}
				for i := range f.pkts {
					if local.WriteRTP(f.next(i, key)) == nil {
						p.sent.Add(1)
					}
				}
			}
		}
	}
}

// benchSatFrame holds the packets of a frame, built once: each frame only
// rewrites the sequence numbers, the timestamp, the picture id and the
// keyframe bit.
type benchSatFrame struct {
	pkts [benchSatPerFrame]rtp.Packet
	seq  uint16
	ts   uint32
	pid  uint16
}

func (f *benchSatFrame) init() {
	for i := range f.pkts {
		n := benchSatFull
		if i == len(f.pkts)-1 {
			n = benchSatLast
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = 0x55
		}
		b[0], b[1] = 0x80, 0x80 // X; I (a 15-bit picture id follows)
		if i == 0 {
			b[0] |= 0x10 // S, partition 0
			// RFC 6386 §9.1 frame tag (the keyframe bit is set per
			// frame), start code, 640x360.
			tag := uint32(n/2)<<5 | 1<<4
			b[4], b[5], b[6] = byte(tag), byte(tag>>8), byte(tag>>16)
			copy(b[7:], []byte{0x9d, 0x01, 0x2a})
			binary.LittleEndian.PutUint16(b[10:], 640)
			binary.LittleEndian.PutUint16(b[12:], 360)
		}
		f.pkts[i] = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: i == len(f.pkts)-1}, Payload: b}
	}
}

// next returns packet i of the frame; packet 0 starts a new frame.
func (f *benchSatFrame) next(i int, key bool) *rtp.Packet {
	if i == 0 {
		f.ts += 90000 / 1500
		f.pid = (f.pid + 1) & 0x7fff
	}
	p := &f.pkts[i]
	p.SequenceNumber = f.seq
	f.seq++
	p.Timestamp = f.ts
	p.Payload[2], p.Payload[3] = 0x80|byte(f.pid>>8), byte(f.pid)
	if i == 0 {
		if key {
			p.Payload[4] &^= 1
		} else {
			p.Payload[4] |= 1
		}
	}
	return p
}

// benchSatViewer is a WHEP viewer on its own socket that reads until it
// has benchSatReady media packets and then leaves the socket alone.
type benchSatViewer struct {
	pc    *pion.PeerConnection
	conn  *sinkConn
	count atomic.Uint64
}

func (v *benchSatViewer) close() {
	_ = v.pc.Close()
	_ = v.conn.Close()
}

// benchSatView plays the room by WHEP, one video section.
func benchSatView(url string, wg *sync.WaitGroup) (*benchSatViewer, error) {
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	if err := udp.SetReadBuffer(benchSatRcvBuf); err != nil {
		udp.Close()
		return nil, err
	}
	v := &benchSatViewer{}
	v.conn = &sinkConn{PacketConn: udp, closed: make(chan struct{}),
		open: func() bool { return v.count.Load() < benchSatReady }}
	api, err := benchSatAPI(v.conn)
	if err != nil {
		v.conn.Close()
		return nil, err
	}
	v.pc, err = api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		v.conn.Close()
		return nil, err
	}
	if _, err := v.pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
		v.close()
		return nil, err
	}
	v.pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				v.count.Add(1)
			}
		}()
	})
	if err := benchSignal(v.pc, url); err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

// sinkConn is a viewer's socket that passes reads through while open
// reports true and then blocks them until Close: pion neither wakes nor
// decrypts, and the kernel drops what overflows the socket's buffer.
// Writes (ICE keepalives) still go out, which keeps the server's consent.
type sinkConn struct {
	net.PacketConn
	open   func() bool
	closed chan struct{}
	once   sync.Once
}

func (c *sinkConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if !c.open() {
		<-c.closed
		return 0, nil, net.ErrClosed
	}
	return c.PacketConn.ReadFrom(p)
}

func (c *sinkConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.PacketConn.Close()
}
