package sdn_test

import (
	"testing"
	"time"

	"github.com/sansrtc/sfu/internal/testutil"
)

// TestRoutingConverges: 100 nodes over 3 zones; within 30 virtual seconds
// every node routes to every other within 10 % of the optimum the zone
// design allows (see routeQuality and the package doc), with no loop at
// any step.
func TestRoutingConverges(t *testing.T) {
	for _, seed := range testutil.Seeds(100, 3) {
		s := newSimNet(t, seed)
		s.topology([]int{33, 33, 34}, 60, 3, true)
		s.checkLoops = true
		s.startAll()
		var bad string
		ok := false
		for range 30 {
			s.sim.RunFor(time.Second)
			if s.loopErr != nil {
				t.Fatalf("seed %d: %v", seed, s.loopErr)
			}
			if bad = s.routeQuality(0.10); bad == "" {
				ok = true
				t.Logf("seed %d: converged at %v after %d steps", seed, s.sim.Now().Sub(testutil.Epoch), s.sim.Steps())
				break
			}
		}
		if !ok {
			t.Fatalf("seed %d: not converged in 30s: %s", seed, bad)
		}
		// And it stays converged: no flapping away from the optimum.
		s.sim.RunUntil(testutil.Epoch.Add(30 * time.Second))
		if s.loopErr != nil {
			t.Fatalf("seed %d: %v", seed, s.loopErr)
		}
		if bad := s.routeQuality(0.10); bad != "" {
			t.Fatalf("seed %d: at 30s: %s", seed, bad)
		}
	}
}
