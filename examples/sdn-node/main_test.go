package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sansrtc/sfu/sdn"
)

// TestMain runs the command itself when SDN_NODE_ARGS is set, so the
// test can start nodes as separate processes of this binary.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("SDN_NODE_ARGS"); ok {
		os.Args = append([]string{"sdn-node"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// nodeProc is one sdn-node process and the lines it printed.
type nodeProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	addr  chan string
	done  chan struct{}
}

func (p *nodeProc) printed(re *regexp.Regexp) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.lines) - 1; i >= 0; i-- {
		if m := re.FindStringSubmatch(p.lines[i]); m != nil {
			return m
		}
	}
	return nil
}

func startNode(t *testing.T, args string) *nodeProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SDN_NODE_ARGS="+args)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &nodeProc{cmd: cmd, addr: make(chan string, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "node address: "); ok {
				p.addr <- a
			}
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		_ = cmd.Wait()
	})
	return p
}

func (p *nodeProc) address(t *testing.T) string {
	t.Helper()
	select {
	case a := <-p.addr:
		p.addr <- a
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("node did not print its address")
		return ""
	}
}

// TestThreeTerminals does what the command's doc shows: three nodes,
// each seeded with the previous one's printed address; the first
// publishes a test channel, the other two subscribe and receive it. An
// interrupt stops a node cleanly. Once in one zone, and once with each
// node in a zone of its own and --flat-routes, where node 3 holds a
// route to node 1 itself (without the flag it would hold one to zone 1).
func TestThreeTerminals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, tc := range []struct {
		name  string
		extra [3]string
		ids   [3]sdn.NodeID
	}{
		{"one zone", [3]string{}, [3]sdn.NodeID{1, 2, 3}},
		{"three zones, flat routes", [3]string{"--zone 1 --flat-routes", "--zone 2 --flat-routes", "--zone 3 --flat-routes"},
			[3]sdn.NodeID{sdn.MakeNodeID(1, 1), sdn.MakeNodeID(2, 2), sdn.MakeNodeID(3, 3)}},
	} {
		t.Run(tc.name, func(t *testing.T) { threeTerminals(t, tc.extra, tc.ids) })
	}
}

func threeTerminals(t *testing.T, extra [3]string, ids [3]sdn.NodeID) {
	n1 := startNode(t, "--node-id 1 --listen 127.0.0.1:0 --secret s --publish 7 "+extra[0])
	a1 := n1.address(t)
	if !regexp.MustCompile(fmt.Sprintf(`^%d@/ip4/127\.0\.0\.1/udp/[1-9][0-9]*$`, ids[0])).MatchString(a1) {
		t.Fatalf("node 1 printed address %q", a1)
	}
	n2 := startNode(t, "--node-id 2 --listen 127.0.0.1:0 --secret s --subscribe 7 --seeds "+a1+" "+extra[1])
	n3 := startNode(t, "--node-id 3 --listen 127.0.0.1:0 --secret s --subscribe 7 --seeds "+n2.address(t)+" "+extra[2])

	recv := regexp.MustCompile(`^channel 7: (\d+) packets received, last seq (\d+)$`)
	routes := regexp.MustCompile(fmt.Sprintf(`^routes:.* node %d via %d `, ids[0], ids[1]))
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, p := range []*nodeProc{n2, n3} {
			m := p.printed(recv)
			if m == nil {
				ok = false
				continue
			}
			if n, _ := strconv.Atoi(m[1]); n < 5 {
				ok = false
			}
		}
		if ok && n3.printed(routes) != nil && n3.printed(regexp.MustCompile(`^channel 7: subscribed$`)) != nil {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range []*nodeProc{n1, n2, n3} {
				p.mu.Lock()
				t.Logf("%s", strings.Join(p.lines, "\n"))
				p.mu.Unlock()
			}
			t.Fatal("nodes 2 and 3 did not receive channel 7 from node 1 (via 2)")
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := n3.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n3.done:
		if err := n3.cmd.Wait(); err != nil {
			t.Fatalf("node 3 after an interrupt: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node 3 did not stop on an interrupt")
	}
}
