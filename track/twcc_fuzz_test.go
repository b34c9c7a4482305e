package track

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pion/rtcp"
)

// FuzzTransportCC walks compound datagrams and reads every transport-wide
// feedback in them. Whatever the bytes, the view never panics, yields
// consecutive sequence numbers from BaseSeq, at most Count of them
// (exactly Count when valid, none when not), and a valid feedback
// re-encoded by AppendTransportCC reads back the same.
//
// Where pion's TransportLayerCC.Unmarshal also accepts the packet, both
// read the same statuses and deltas. Where one accepts and the other does
// not, the reason is one of those pinned by
// TestTransportCCPionDifferences: pion is looser in that it accepts a
// count of 0, the reserved symbol and data after the deltas, and, since
// it does not remove RTCP padding, reads chunks and deltas from the
// padding; it is stricter in that it rejects a feedback whose last chunk
// ends the packet (no deltas, no padding), valid to us and libwebrtc.
func FuzzTransportCC(f *testing.F) {
	r := rand.New(rand.NewPCG(21, 22))
	for range 8 {
		ref, pkts := randTCCPackets(r, 1+r.IntN(40))
		f.Add(AppendTransportCC(nil, 1, 2, uint16(r.Uint32()), 3, ref, pkts))
	}
	for range 4 {
		if b, err := randPionTCC(r).Marshal(); err == nil {
			f.Add(b)
		}
	}
	f.Add(AppendTransportCC(AppendReceiverReport(nil, 1, nil), 1, 2, 65530, 0, 0, make([]TCCPacket, 20)))
	f.Add(tccPacket(tccBody(0, 10, 0xffffff, []uint16{0x0002, 0xc000 | 0b10_01_00_00_00_00_00, 0xa000}, 0, 4, 8, 12), true))
	f.Add(tccPacket(tccBody(0, 2, 0, []uint16{0x0001, 0x0001}), false))
	f.Add(tccPacket(tccBody(0, 1, 0, []uint16{0x4001}, 1), true))
	f.Fuzz(func(t *testing.T, buf []byte) {
		for d := buf; len(d) > 0; {
			p, rest, err := ReadRTCP(d)
			if err != nil {
				break
			}
			raw := d[:len(d)-len(rest)]
			d = rest
			fb, ok := p.TransportCC()
			if ok != p.IsTransportCC() {
				t.Fatalf("TransportCC ok %v, IsTransportCC %v", ok, p.IsTransportCC())
			}
			if !ok {
				if fb.Count != 0 || fb.Err() != nil || len(fb.chunks)+len(fb.deltas) != 0 {
					t.Fatal("a view of another kind of packet")
				}
				continue
			}
			got := tccWalk(t, fb)
			if fb.Err() == nil {
				checkReencoded(t, &p, fb, got)
			}
			comparePion(t, raw, fb, got)
		}
	})
}

// checkReencoded writes the statuses read as a new feedback and reads it
// back: same header, same statuses, same arrivals to the nanosecond (they
// are whole deltas from a reference time that is a multiple of 64 ms).
func checkReencoded(t *testing.T, p *RTCPPacket, fb TransportCC, got []tccStatus) {
	pkts := make([]TCCPacket, len(got))
	for i, s := range got {
		pkts[i] = TCCPacket{Received: s.sym != 0, Arrival: s.arrival}
	}
	buf := AppendTransportCC(nil, p.SenderSSRC(), p.MediaSSRC(), fb.BaseSeq, fb.FbCount, fb.RefTime, pkts)
	q, _, err := ReadRTCP(buf)
	if err != nil || q.SenderSSRC() != p.SenderSSRC() || q.MediaSSRC() != p.MediaSSRC() {
		t.Fatalf("re-encoded: %v", err)
	}
	fb2, ok := q.TransportCC()
	if !ok || fb2.Err() != nil || fb2.BaseSeq != fb.BaseSeq || fb2.Count != fb.Count || fb2.RefTime != fb.RefTime || fb2.FbCount != fb.FbCount {
		t.Fatalf("re-encoded header %+v (%v), was %+v", fb2, fb2.Err(), fb)
	}
	again := tccWalk(t, fb2)
	for i := range got {
		if again[i].seq != got[i].seq || (again[i].sym != 0) != (got[i].sym != 0) || again[i].arrival != got[i].arrival {
			t.Fatalf("status %d re-encoded as %+v, was %+v", i, again[i], got[i])
		}
	}
}

// comparePion checks pion's reading of raw against ours, fb and got.
func comparePion(t *testing.T, raw []byte, fb TransportCC, got []tccStatus) {
	var pt rtcp.TransportLayerCC
	pionErr := pt.Unmarshal(raw)
	padded := raw[0]&0x20 != 0
	switch {
	case pionErr == nil && fb.Err() == nil:
		if pt.BaseSequenceNumber != fb.BaseSeq || pt.PacketStatusCount != fb.Count || pt.FbPktCount != fb.FbCount ||
			pt.ReferenceTime != uint32(fb.RefTime/TCCRefTimeUnit)&0xffffff {
			t.Fatalf("pion header %+v, ours %+v", pt, fb)
		}
		if ps := pionStatuses(t, &pt); !slices.Equal(ps, got) {
			t.Fatalf("pion reads\n%v\nwe read\n%v", ps, got)
		}
	case pionErr == nil:
		// pion looser: a content rule we (and libwebrtc) keep, or pion
		// reading into the RTCP padding.
		err := fb.Err()
		if !padded && !errors.Is(err, ErrTCCEmpty) && !errors.Is(err, ErrTCCSymbol) && !errors.Is(err, ErrTCCTrailing) {
			t.Fatalf("pion accepts what we reject with %v", err)
		}
	case fb.Err() == nil:
		// pion stricter: only where the last chunk ends the packet.
		if len(fb.deltas) != 0 || len(raw) != 4+tccHeaderLen+len(fb.chunks) {
			t.Fatalf("pion rejects (%v) a feedback we accept", pionErr)
		}
	}
}
