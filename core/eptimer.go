package core

import "time"

// The endpoints' own deadlines (bitrate allocation, bandwidth
// estimation) are kept in a min-heap with lazy deletion, like the
// tracks' in track.Output: an endpoint touched by an input is put on the
// dirty list once, and its deadline is re-read from it at the next
// PollTimeout or HandleTimeout; an entry whose endpoint has since moved
// its deadline, or gone, is skipped when it reaches the top. So the
// node's deadline costs O(touched endpoints + log n), not a walk over
// every endpoint.

type epTimer struct {
	at time.Time
	h  Handle
}

// touch notes that endpoint h's deadline may have moved.
func (n *Node) touch(h Handle) {
	if s := n.slot(h); s != nil && !s.timerDirty {
		s.timerDirty = true
		n.epDirty = append(n.epDirty, h)
	}
}

// settleEndpoints re-reads the deadlines of the endpoints touched since
// the last call.
func (n *Node) settleEndpoints() {
	for i, h := range n.epDirty {
		n.epDirty[i] = 0
		s := n.slot(h)
		if s == nil {
			continue
		}
		s.timerDirty = false
		at, ok := s.ep.PollTimeout()
		if !ok {
			s.timerAt = time.Time{}
			continue
		}
		if !at.Equal(s.timerAt) {
			s.timerAt = at
			n.pushEPTimer(epTimer{at: at, h: h})
		}
	}
	n.epDirty = n.epDirty[:0]
	if len(n.epTimers) > 2*n.live+64 {
		kept := n.epTimers[:0]
		for _, e := range n.epTimers {
			if n.epLive(e) {
				kept = append(kept, e)
			}
		}
		n.epTimers = kept
		for i := len(kept)/2 - 1; i >= 0; i-- {
			n.siftEPDown(i)
		}
	}
	for len(n.epTimers) > 0 && !n.epLive(n.epTimers[0]) {
		n.popEPTimer()
	}
}

func (n *Node) epLive(e epTimer) bool {
	s := n.slot(e.h)
	return s != nil && s.timerAt.Equal(e.at) && !e.at.IsZero()
}

// runEndpointTimers runs the endpoints whose deadline is due and drains
// what they produce.
func (n *Node) runEndpointTimers(now time.Time) {
	n.settleEndpoints()
	for len(n.epTimers) > 0 && !n.epTimers[0].at.After(now) {
		e := n.popEPTimer()
		s := n.slot(e.h)
		if s == nil || !s.timerAt.Equal(e.at) {
			continue
		}
		s.timerAt = time.Time{}
		s.ep.HandleTimeout(now)
		n.drainEndpoint(e.h, s)
		n.touch(e.h)
	}
	n.settleEndpoints()
}

// drainEndpoint passes on the events endpoint h produced itself.
func (n *Node) drainEndpoint(h Handle, s *slot) {
	for ev, ok := s.ep.PollEvent(); ok; ev, ok = s.ep.PollEvent() {
		n.event(h, ev)
	}
}

func (n *Node) pushEPTimer(e epTimer) {
	n.epTimers = append(n.epTimers, e)
	i := len(n.epTimers) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !n.epTimers[i].at.Before(n.epTimers[p].at) {
			break
		}
		n.epTimers[i], n.epTimers[p] = n.epTimers[p], n.epTimers[i]
		i = p
	}
}

func (n *Node) popEPTimer() epTimer {
	top := n.epTimers[0]
	last := len(n.epTimers) - 1
	n.epTimers[0] = n.epTimers[last]
	n.epTimers = n.epTimers[:last]
	n.siftEPDown(0)
	return top
}

func (n *Node) siftEPDown(i int) {
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(n.epTimers) && n.epTimers[l].at.Before(n.epTimers[m].at) {
			m = l
		}
		if r < len(n.epTimers) && n.epTimers[r].at.Before(n.epTimers[m].at) {
			m = r
		}
		if m == i {
			return
		}
		n.epTimers[i], n.epTimers[m] = n.epTimers[m], n.epTimers[i]
		i = m
	}
}
