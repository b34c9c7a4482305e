// Package testutil is the deterministic discrete-event simulator that the
// core and sdn tests run on: a virtual clock, a seeded PRNG (math/rand/v2
// PCG), an event queue, links with latency, jitter, loss, reordering,
// bandwidth caps and partitions, synthetic media sources and checking sinks,
// and Net, a network of overlay nodes (sdn Routers, or core Nodes with
// one) that the sdn and the cluster simulations both run on.
//
// Nothing here reads the wall clock or an unseeded random source: one seed
// chooses everything, and a failing test prints the seed so that
//
//	go test -run TestName -seed N
//
// replays it exactly.
package testutil

import (
	"flag"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"testing"
	"time"
)

// seedFlag, when non-zero, replaces the seeds a test asks for, so a failure
// printed as "seed=N" can be replayed with -seed N.
var seedFlag = flag.Uint64("seed", 0, "replay a simulation with this seed")

// Epoch is virtual time zero. A fixed date keeps logs identical across runs.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Seeds returns the seeds a scenario should run with: the -seed flag alone
// when given, otherwise base, base+1, ... (n of them).
func Seeds(base uint64, n int) []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	s := make([]uint64, n)
	for i := range s {
		s[i] = base + uint64(i)
	}
	return s
}

// Sim is a discrete-event simulator. Events run in time order; events at
// the same instant run in the order they were scheduled, so a run depends
// on the seed alone.
type Sim struct {
	Rand *rand.Rand
	Seed uint64

	tb     testing.TB
	now    time.Time
	queue  eventQueue
	nextID uint64
	steps  uint64
	log    hash.Hash64
	logN   int
}

// NewSim returns a simulator at Epoch seeded with seed. When tb is non-nil,
// a failing test prints the seed and how to replay it.
func NewSim(tb testing.TB, seed uint64) *Sim {
	s := &Sim{
		Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		Seed: seed,
		tb:   tb,
		now:  Epoch,
		log:  fnv.New64a(),
	}
	if tb != nil {
		tb.Helper()
		tb.Cleanup(func() {
			if tb.Failed() {
				tb.Logf("simulation seed=%d (replay: go test -run '^%s$' -seed %d)", seed, tb.Name(), seed)
			}
		})
	}
	return s
}

// Now is the virtual time.
func (s *Sim) Now() time.Time { return s.now }

// Steps is how many events have run.
func (s *Sim) Steps() uint64 { return s.steps }

// At schedules fn to run at t (or now, if t is in the past).
func (s *Sim) At(t time.Time, fn func(now time.Time)) {
	if t.Before(s.now) {
		t = s.now
	}
	s.nextID++
	s.queue.push(event{at: t, id: s.nextID, fn: fn})
}

// After schedules fn to run d after now.
func (s *Sim) After(d time.Duration, fn func(now time.Time)) { s.At(s.now.Add(d), fn) }

// Every runs fn every period starting one period from now, until fn returns
// false.
func (s *Sim) Every(period time.Duration, fn func(now time.Time) bool) {
	var tick func(now time.Time)
	tick = func(now time.Time) {
		if fn(now) {
			s.After(period, tick)
		}
	}
	s.After(period, tick)
}

// Pending is the number of scheduled events.
func (s *Sim) Pending() int { return len(s.queue) }

// Step runs the earliest event. It returns false when none is left.
func (s *Sim) Step() bool {
	if len(s.queue) == 0 {
		return false
	}
	e := s.queue.pop()
	s.now = e.at
	s.steps++
	e.fn(e.at)
	return true
}

// RunUntil runs every event scheduled up to and including t, then sets the
// clock to t.
func (s *Sim) RunUntil(t time.Time) {
	for len(s.queue) > 0 && !s.queue[0].at.After(t) {
		s.Step()
	}
	if t.After(s.now) {
		s.now = t
	}
}

// RunFor runs the simulation for d of virtual time.
func (s *Sim) RunFor(d time.Duration) { s.RunUntil(s.now.Add(d)) }

// RunWhile runs events while cond holds and events remain, up to the
// deadline; it reports whether cond turned false.
func (s *Sim) RunWhile(deadline time.Time, cond func() bool) bool {
	for cond() {
		if len(s.queue) == 0 || s.queue[0].at.After(deadline) {
			return !cond()
		}
		s.Step()
	}
	return true
}

// Logf adds a line to the event log. The log is hashed, not kept, so a
// whole run can be compared by LogHash at no memory cost.
func (s *Sim) Logf(format string, args ...any) {
	fmt.Fprintf(s.log, "%d ", s.now.Sub(Epoch).Nanoseconds())
	fmt.Fprintf(s.log, format, args...)
	s.log.Write([]byte{'\n'})
	s.logN++
}

// LogHash is the hash of every line logged so far.
func (s *Sim) LogHash() uint64 { return s.log.Sum64() }

// LogLines is how many lines were logged.
func (s *Sim) LogLines() int { return s.logN }

// Duration returns a uniformly random duration in [lo, hi].
func (s *Sim) Duration(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.Rand.Int64N(int64(hi-lo)+1))
}

// Chance reports true with probability p.
func (s *Sim) Chance(p float64) bool { return p > 0 && s.Rand.Float64() < p }

type event struct {
	at time.Time
	id uint64
	fn func(time.Time)
}

// eventQueue is a binary min-heap by (time, id), typed to avoid the
// interface boxing of container/heap: simulations push millions of events.
type eventQueue []event

func (q eventQueue) less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].id < q[j].id
	}
	return q[i].at.Before(q[j].at)
}

func (q *eventQueue) push(e event) {
	*q = append(*q, e)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *eventQueue) pop() event {
	h := *q
	e := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = event{}
	h = h[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(l, m) {
			m = l
		}
		if r < n && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return e
}
