package testutil

// Reorder is a receiver's jitter buffer in miniature, for checking a
// stream that may carry retransmissions: per SSRC it releases packets in
// sequence order, holding those that arrive after a gap until the gap is
// filled (a retransmission arrives) or MaxHold packets wait behind it; a
// packet older than what was already released comes too late and is
// dropped, as a player would drop it. What it releases is what a decoder
// would see, so a strict Checker behind it holds on a repaired stream.
type Reorder struct {
	// MaxHold is how many packets may wait behind a gap before it is given
	// up (default 32).
	MaxHold int
	// Late counts packets dropped for arriving after their place was
	// released; Filled those that filled a gap in time.
	Late, Filled uint64

	streams map[uint32]*reorderStream
}

type reorderStream struct {
	next uint16 // the sequence number to release next
	held map[uint16][]byte
}

// Push takes one RTP packet (copied if held) and calls emit with each
// packet released, in order.
func (r *Reorder) Push(pkt []byte, emit func([]byte)) {
	if len(pkt) < 12 {
		emit(pkt) // not RTP: the checker's business
		return
	}
	if r.streams == nil {
		r.streams = map[uint32]*reorderStream{}
	}
	if r.MaxHold <= 0 {
		r.MaxHold = 32
	}
	ssrc := uint32(pkt[8])<<24 | uint32(pkt[9])<<16 | uint32(pkt[10])<<8 | uint32(pkt[11])
	seq := uint16(pkt[2])<<8 | uint16(pkt[3])
	s := r.streams[ssrc]
	if s == nil {
		s = &reorderStream{next: seq, held: map[uint16][]byte{}}
		r.streams[ssrc] = s
	}
	switch d := int16(seq - s.next); {
	case d < 0:
		r.Late++
		return
	case d > 0:
		if _, dup := s.held[seq]; !dup {
			s.held[seq] = append([]byte(nil), pkt...)
		}
		if len(s.held) <= r.MaxHold {
			return
		}
		// Give up the gap: skip to the oldest held packet.
		oldest := seq
		for q := range s.held {
			if int16(q-oldest) < 0 {
				oldest = q
			}
		}
		s.next = oldest
	default:
		if len(s.held) > 0 {
			r.Filled++
		}
		emit(pkt)
		s.next++
	}
	for {
		p, ok := s.held[s.next]
		if !ok {
			return
		}
		delete(s.held, s.next)
		emit(p)
		s.next++
	}
}
