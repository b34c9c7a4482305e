//go:build unix

package driver_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sansrtc/sfu/transport/driver"
	"github.com/sansrtc/sfu/transport/whip"
)

var benchProfileDir = flag.String("sfubench.profile", "",
	"BenchmarkSFU writes a CPU profile and allocs profiles (before/after, MemProfileRate=1) of each measurement window to this directory")

var benchSinglePort = flag.Bool("sfubench.singleport", false,
	"the saturating workers=W sub-benchmarks run the server in single-port mode (Config.SinglePort), to measure its cost")

var benchSatPPS = flag.Int("sfubench.pps", 9000,
	"the RTP packet rate the publisher offers in BenchmarkSFU's saturating sub-benchmarks (workers=W/...)")

// benchPoll is how often the measuring goroutine reads the egress counter:
// rare enough that its own wake-ups (tens of microseconds of scheduler
// work each) stay out of the server's CPU time even at fanout=1.
const benchPoll = 250 * time.Millisecond

// BenchmarkSFU measures the whole data path of the server (UDP read, SRTP
// decrypt, core forwarding, SRTP GCM encrypt, sendmmsg) on loopback with
// the sessions already established: one pion publisher sends ~1.5 Mbps of
// VP8 to fanout pion viewers. The clients run in a child process
// (TestBenchClientProcess), so the process CPU time measured here is the
// server's own: HTTP signalling, timers and GC included.
//
// One benchmark iteration is one egress RTP packet, so ns/op is wall time
// per packet (set by the publisher's rate, not by the server) and
// allocs/op is whole-process allocations per egress packet. The metrics
// that matter are egress-pkts/cpu-s (egress packets per second of server
// CPU) and allocs/egress-pkt.
//
// The workers=W/fanout=100 sub-benchmarks saturate the server with W
// workers instead: the publisher offers -sfubench.pps packets per second
// (default 9000: 1500 frames/s of 5×1200+600 bytes, no NACK, no TWCC), far
// more than the server can forward to 100 viewers, and the viewers stop
// reading once media flows, so the kernel discards what they are sent.
// There egress-pkts/s is the server's wall-clock capacity, and comparing
// W=1 with W=2 shows how it scales across cores. The client process must
// not be the bottleneck: gen-cpu-% is its CPU time over the window (100 is
// one core), and the log line shows the rate it offered against what the
// server took in and sent. Iterations are egress packets, so the window
// is best set by count or time, e.g. on 2 cores:
//
//	go test ./transport/driver/ -run '^$' -bench 'SFU/workers' -benchtime=2000000x
//	go test ./transport/driver/ -run '^$' -bench 'SFU/workers' -benchtime=5s
//
// With GSO two workers forward more than 9000 pps can feed: use
// -sfubench.pps=20000 (about a fifth of a core of client CPU) to saturate
// both; -sfubench.singleport measures single-port mode. pkts/udp-send is
// datagrams per message the kernel routed (GSO sends carry several).
func BenchmarkSFU(b *testing.B) {
	for _, fanout := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("fanout=%d", fanout), func(b *testing.B) { benchSFU(b, fanout, 1, false) })
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.Run("fanout=100", func(b *testing.B) { benchSFU(b, 100, workers, true) })
		})
	}
}

func benchSFU(b *testing.B, fanout, workers int, saturate bool) {
	if *benchProfileDir != "" {
		runtime.MemProfileRate = 1
		defer func() { runtime.MemProfileRate = 512 * 1024 }()
	}
	d, err := newBenchDriver(workers, saturate)
	if err != nil {
		b.Fatal(err)
	}
	h, err := whip.New(whip.Config{Backend: d})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	hs := httptest.NewServer(h)
	defer func() { hs.Close(); cancel(); <-done }()

	mode := benchSteady
	if saturate {
		mode = benchSatModePrefix + strconv.Itoa(*benchSatPPS)
	}
	c := startBenchClients(b, hs.URL, fanout, mode)
	stop := sync.OnceValue(func() benchGen { return c.stop(b, d) })
	defer stop()
	time.Sleep(time.Second) // past the join-time keyframes and NACKs

	name := filepath.Join(*benchProfileDir, fmt.Sprintf("fanout=%d", fanout))
	if saturate {
		name = filepath.Join(*benchProfileDir, fmt.Sprintf("workers=%d-fanout=%d", workers, fanout))
	}
	if *benchProfileDir != "" {
		writeAllocs(b, name+".allocs-before.pprof")
		f, err := os.Create(name + ".cpu.pprof")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
	}

	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	user0, sys0 := cpuTime(b)
	var in0, in1 uint64
	if saturate {
		in0 = benchIngress(d, "bench")
	}
	t0, sent0 := time.Now(), d.Stats().Sent
	w0 := d.Stats().UDP
	last, credit := sent0, uint64(0)
	for b.Loop() {
		for credit == 0 {
			time.Sleep(benchPoll)
			s := d.Stats().Sent
			credit, last = s-last, s
		}
		credit--
	}
	sent1, t1 := d.Stats().Sent, time.Now()
	w1 := d.Stats().UDP
	user1, sys1 := cpuTime(b)
	runtime.ReadMemStats(&ms1)
	if saturate {
		in1 = benchIngress(d, "bench")
	}

	if *benchProfileDir != "" {
		pprof.StopCPUProfile()
		writeAllocs(b, name+".allocs-after.pprof")
	}
	pkts := float64(sent1 - sent0)
	if pkts == 0 {
		b.Fatal("no egress packets in the measurement window")
	}
	cpu := (user1 - user0) + (sys1 - sys0)
	b.ReportMetric(pkts/cpu.Seconds(), "egress-pkts/cpu-s")
	b.ReportMetric(100*float64(sys1-sys0)/float64(cpu), "kernel-cpu-%")
	b.ReportMetric(pkts/t1.Sub(t0).Seconds(), "egress-pkts/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/pkts, "allocs/egress-pkt")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/pkts, "B/egress-pkt")
	// What GSO did: datagrams per message the kernel routed (a GSO send
	// is one message of several datagrams).
	dg := w1.Datagrams - w0.Datagrams
	msgs := dg - (w1.GSODatagrams - w0.GSODatagrams) + (w1.GSOMessages - w0.GSOMessages)
	b.ReportMetric(float64(dg)/float64(max(msgs, 1)), "pkts/udp-send")
	if !saturate {
		return
	}
	g := stop()
	if !g.ok {
		b.Fatalf("client process did not report its CPU time (%s)", benchGenCPU)
	}
	wall := t1.Sub(t0).Seconds()
	b.ReportMetric(100*g.cpu.Seconds()/g.wall.Seconds(), "gen-cpu-%")
	b.Logf("publisher offered %.0f pkts/s (client process CPU %.1f%% of a core over %.1fs); "+
		"server took in %.0f pkts/s and sent %.0f pkts/s (%.1f per ingress packet, fanout %d) over %.1fs",
		float64(g.sent)/g.wall.Seconds(), 100*g.cpu.Seconds()/g.wall.Seconds(), g.wall.Seconds(),
		float64(in1-in0)/wall, pkts/wall, pkts/float64(max(in1-in0, 1)), fanout, wall)
}

// cpuTime is the user and system CPU time of this process so far. On
// loopback the system time includes delivering each datagram to the
// receiving socket, which a NIC would do elsewhere.
func cpuTime(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// writeAllocs writes the allocs profile as of now (after a GC, so that it
// is current); diff two with pprof -base.
func writeAllocs(b *testing.B, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// benchClients is the child process running the pion clients.
type benchClients struct {
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	lines  chan string
	stderr *bytes.Buffer
}

// startBenchClients re-executes the test binary as TestBenchClientProcess
// and waits until every viewer receives media.
func startBenchClients(b *testing.B, url string, fanout int, mode string) *benchClients {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchClientEnv+"="+url+","+strconv.Itoa(fanout)+","+mode)
	if mode != benchSteady {
		// One P: the saturating client is a paced writer and idle
		// sockets, and idle Ps spinning for work after each wake-up
		// would take CPU from the server.
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	c := &benchClients{cmd: cmd, lines: make(chan string, 16), stderr: &bytes.Buffer{}}
	cmd.Stderr = c.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c.stdin = stdin
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				_ = cmd.Wait()
				b.Fatalf("client process exited before media flowed: %s\n%s", cmd.ProcessState, c.stderr)
			}
			if line == benchReady {
				return c
			}
			if strings.Contains(line, "FAIL") || strings.HasPrefix(line, "    ") {
				b.Log("client: ", line)
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			b.Fatalf("client process not ready after 3 minutes\n%s", c.stderr)
		}
	}
}

// stop closes the child's stdin, which makes it hang up and report what
// its viewers received, and logs that against what the server sent. It
// returns what a saturating child reports of itself.
func (c *benchClients) stop(b *testing.B, d *driver.Driver) benchGen {
	st := d.Stats()
	_ = c.stdin.Close()
	kill := time.AfterFunc(10*time.Second, func() { _ = c.cmd.Process.Kill() })
	defer kill.Stop()
	var received string
	var gen benchGen
	for line := range c.lines {
		if r, ok := strings.CutPrefix(line, benchReceived+" "); ok {
			received = r
		}
		if r, ok := strings.CutPrefix(line, benchGenCPU+" "); ok {
			var err error
			if gen, err = parseBenchGen(r); err != nil {
				b.Error(err)
			}
		}
	}
	_ = c.cmd.Wait()
	b.Logf("server sent %d RTP packets (%d send errors, %d not connected); viewers received %s",
		st.Sent, st.SendErrors, st.NotConnected, received)
	return gen
}
