package track

// history keeps the last packets of one encoding for retransmission. Their
// payloads are copied into a byte ring (arena) of fixed size allocated once,
// and their views into a slot ring indexed by extended sequence number. A
// slot is valid while its bytes have not been overwritten: positions in the
// arena are virtual and only grow, so "still there" is one comparison.
type history struct {
	slots []histSlot
	arena []byte
	vpos  uint64 // virtual write position in arena
}

type histSlot struct {
	pkt  Packet
	vpos uint64
	used bool
}

func newHistory(packets, bytes int) history {
	// Round the slot count up to a power of two for a cheap index.
	n := 1
	for n < packets {
		n <<= 1
	}
	return history{slots: make([]histSlot, n), arena: make([]byte, bytes)}
}

// get returns the stored packet with extended sequence number ext, or nil.
func (h *history) get(ext uint64) *Packet {
	if len(h.slots) == 0 {
		return nil
	}
	s := &h.slots[ext&uint64(len(h.slots)-1)]
	// The slot's bytes [s.vpos, s.vpos+len) survive while the writer has not
	// come round to them again.
	if !s.used || s.pkt.ExtSeq != ext || h.vpos-s.vpos > uint64(len(h.arena)) {
		return nil
	}
	return &s.pkt
}

// put copies p (header view, metadata and payload) into the history and
// returns the stored copy, whose Payload aliases the arena. A payload larger
// than the arena is not stored (nil).
func (h *history) put(p *Packet) *Packet {
	n := uint64(len(p.Payload))
	size := uint64(len(h.arena))
	if n > size || len(h.slots) == 0 {
		return nil
	}
	off := h.vpos % size
	if off+n > size { // does not fit before the end: skip to the start
		h.vpos += size - off
		off = 0
	}
	start := h.vpos
	copy(h.arena[off:off+n], p.Payload)
	h.vpos += n
	s := &h.slots[p.ExtSeq&uint64(len(h.slots)-1)]
	s.pkt = *p
	s.pkt.Extensions = nil // borrowed from the caller's buffer
	s.pkt.ExtProfile = 0
	s.pkt.Payload = h.arena[off : off+n : off+n]
	s.vpos = start
	s.used = true
	return &s.pkt
}
