package quic

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

// TestMain lets the test binary run as one node process of
// TestMultiProcess (SDN_CHILD set): it re-executes itself.
func TestMain(m *testing.M) {
	if os.Getenv("SDN_CHILD") != "" {
		runChild()
		return
	}
	os.Exit(m.Run())
}

// runChild runs a node configured from the environment and reports on
// stdout: its address, then every 100ms its packet count, routes and
// refusals. It exits when stdin closes.
func runChild() {
	id, _ := strconv.ParseUint(os.Getenv("SDN_ID"), 10, 32)
	var seeds []sdn.Addr
	for _, s := range strings.Split(os.Getenv("SDN_SEEDS"), ",") {
		if s != "" {
			a, err := sdn.ParseAddr(s)
			if err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			seeds = append(seeds, a)
		}
	}
	var mu sync.Mutex
	received := 0
	d, err := New(Config{
		Router: sdn.Config{ID: sdn.NodeID(id), Seeds: seeds, Secret: []byte(os.Getenv("SDN_SECRET")), DialBackoffMax: time.Second},
		OnData: func(sdn.Delivery) { mu.Lock(); received++; mu.Unlock() },
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("addr", d.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	pub, _ := strconv.ParseUint(os.Getenv("SDN_PUBLISH"), 10, 64)
	sub, _ := strconv.ParseUint(os.Getenv("SDN_SUBSCRIBE"), 10, 64)
	if pub != 0 {
		d.Do(func(now time.Time, r *sdn.Router) { _ = r.Publish(now, pub) })
	}
	if sub != 0 {
		d.Do(func(now time.Time, r *sdn.Router) { _ = r.Subscribe(now, sub) })
	}
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if pub != 0 {
				d.Do(func(now time.Time, r *sdn.Router) { _ = r.Send(now, pub, []byte("data")) })
			}
			if n%10 == 0 {
				var b strings.Builder
				d.Do(func(_ time.Time, r *sdn.Router) {
					st := r.Stats()
					fmt.Fprintf(&b, "state refused=%d", st.AuthFailures+st.HandshakeTimeouts+st.HandshakeAborted)
					for _, ri := range r.Routes() {
						fmt.Fprintf(&b, " %d:%d", ri.Node, ri.Next)
					}
				})
				mu.Lock()
				fmt.Fprintf(&b, " recv=%d", received)
				mu.Unlock()
				fmt.Println(b.String())
			}
		}
	}()
	_ = d.Run(ctx)
}

// proc is a child node process and its latest report.
type proc struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	addr  chan string
	mu    sync.Mutex
	state map[string]string
}

func (p *proc) get(k string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state[k]
}

func (p *proc) recv() int {
	n, _ := strconv.Atoi(p.get("recv"))
	return n
}

func spawn(t *testing.T, id int, secret string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SDN_CHILD=1", fmt.Sprintf("SDN_ID=%d", id), "SDN_SECRET="+secret)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: in, addr: make(chan string, 1), state: map[string]string{}}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 2 && f[0] == "addr":
				p.addr <- f[1]
			case len(f) > 0 && f[0] == "state":
				p.mu.Lock()
				for _, kv := range f[1:] {
					if k, v, ok := strings.Cut(kv, "="); ok {
						p.state[k] = v
					} else if k, v, ok := strings.Cut(kv, ":"); ok {
						p.state["route"+k] = v
					}
				}
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		_ = in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return p
}

func (p *proc) address(t *testing.T) string {
	select {
	case a := <-p.addr:
		p.addr <- a
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("child did not print its address")
		return ""
	}
}

// TestMultiProcess runs nodes as separate processes on 127.0.0.1 linked
// over QUIC, chains A–B–C and A–D–C: routes form; a channel published on
// A reaches subscribers on B and C; killing (SIGKILL) the middle node of
// A's route to C reroutes and C receives again; a process with the wrong
// secret is refused.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	c := spawn(t, 3, "s", "SDN_SUBSCRIBE=7")
	b := spawn(t, 2, "s", "SDN_SUBSCRIBE=7", "SDN_SEEDS="+c.address(t))
	dd := spawn(t, 4, "s", "SDN_SEEDS="+c.address(t))
	a := spawn(t, 1, "s", "SDN_PUBLISH=7", "SDN_SEEDS="+b.address(t)+","+dd.address(t))
	procs := map[int]*proc{1: a, 2: b, 3: c, 4: dd}
	waitFor(t, 15*time.Second, "routes between every pair, data on B and C", func() bool {
		for id, p := range procs {
			for dst := range procs {
				if r := p.get(fmt.Sprint("route", dst)); dst != id && (r == "" || r == "0") {
					return false
				}
			}
		}
		return b.recv() > 20 && c.recv() > 20
	})
	mid := a.get("route3")
	victim, other := b, dd
	if mid == "4" {
		victim, other = dd, b
	}
	_ = victim.cmd.Process.Kill()
	before := c.recv()
	waitFor(t, 10*time.Second, "reroute and data on C again", func() bool {
		return a.get("route3") == strconv.Itoa(map[*proc]int{b: 2, dd: 4}[other]) && c.recv() > before+20
	})
	// A process with the wrong secret dials A: each refuses the other
	// (the dialer checks A's proof and closes; A counts the aborted
	// handshake) and no route to it forms.
	refusedA, _ := strconv.Atoi(a.get("refused"))
	e := spawn(t, 5, "wrong", "SDN_SEEDS="+a.address(t))
	waitFor(t, 10*time.Second, "refusal of the wrong secret", func() bool {
		n, _ := strconv.Atoi(e.get("refused"))
		m, _ := strconv.Atoi(a.get("refused"))
		return n > 0 && m > refusedA
	})
	for id, p := range procs {
		if r := p.get("route5"); p != victim && r != "" && r != "0" {
			t.Fatalf("node %d routes to the wrong-secret node via %s", id, r)
		}
	}
	if r := e.get("route1"); r != "" && r != "0" {
		t.Fatalf("the wrong-secret node routes to A via %s", r)
	}
}
