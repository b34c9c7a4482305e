package sdn

import (
	"flag"
	"go/version"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"testing"
	"time"
)

// fuzzTimeByInterrupt works around go.dev/issue/75804, a race in the
// fuzzing coordinator of Go before 1.27: when a -fuzztime duration runs
// out, the coordinator can wake on its deadline before the deadline has
// reached its workers' context, not recognise it as the normal end, and
// fail the target with "context deadline exceeded" and no failing input
// (10 of 450 one-second runs of FuzzFrames on a busy two-core machine;
// none of 510 with this workaround). An interrupt (^C) ends fuzzing by
// another path: whatever error the coordinator then returns, testing
// compares it with the interrupted context's own and drops it, so the race
// cannot surface. So in the coordinator process, for the target being
// fuzzed for a duration, this moves the deadline out of reach and has the
// process interrupt itself (SIGINT) once the -fuzztime has passed, and
// again every second until the target returns; its own signal.Notify
// keeps an interrupt from killing the process meanwhile. Workers, counts
// (-fuzztime Nx), other targets and plain test runs are left alone. Call
// it first in every fuzz target.
func fuzzTimeByInterrupt(f *testing.F) {
	if version.Compare(runtime.Version(), "go1.27") >= 0 || runtime.GOOS == "windows" {
		return
	}
	pattern, worker, fuzztime := flag.Lookup("test.fuzz"), flag.Lookup("test.fuzzworker"), flag.Lookup("test.fuzztime")
	if pattern == nil || worker == nil || fuzztime == nil || pattern.Value.String() == "" || worker.Value.String() == "true" {
		return
	}
	if ok, err := regexp.MatchString(pattern.Value.String(), f.Name()); err != nil || !ok {
		return // another target is fuzzed; this one only runs its seeds
	}
	d, err := time.ParseDuration(fuzztime.Value.String())
	if err != nil || d <= 0 {
		return // a count (-fuzztime Nx) or no limit: no deadline, no race
	}
	if err := fuzztime.Value.Set("87600h"); err != nil {
		f.Fatalf("fuzztime: %v", err)
	}
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		f.Fatal(err)
	}
	absorb := make(chan os.Signal, 1)
	signal.Notify(absorb, os.Interrupt)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		wait := time.NewTimer(d)
		defer wait.Stop()
		for {
			select {
			case <-done:
				return
			case <-wait.C:
			}
			_ = self.Signal(os.Interrupt)
			wait.Reset(time.Second)
		}
	}()
	f.Cleanup(func() {
		close(done)
		<-stopped
		signal.Stop(absorb)
		_ = fuzztime.Value.Set(d.String())
	})
}
