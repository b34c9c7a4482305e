package track

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// tccStatus is one status as read back, with the symbol (= delta size in
// bytes) that carried it.
type tccStatus struct {
	seq     uint16
	sym     int
	arrival time.Duration
}

// tccWalk drains fb, checking the invariants every walk keeps: sequence
// numbers consecutive from BaseSeq, at most Count statuses (exactly Count
// when valid, none when not), lost packets with a zero arrival.
func tccWalk(t testing.TB, fb TransportCC) []tccStatus {
	t.Helper()
	var out []tccStatus
	for {
		before := len(fb.deltas)
		seq, pkt, ok := fb.Next()
		if !ok {
			break
		}
		sym := before - len(fb.deltas)
		if seq != fb.BaseSeq+uint16(len(out)) {
			t.Fatalf("status %d has seq %d, base %d", len(out), seq, fb.BaseSeq)
		}
		if pkt.Received != (sym != 0) || (!pkt.Received && pkt.Arrival != 0) {
			t.Fatalf("seq %d: %+v with a %d-byte delta", seq, pkt, sym)
		}
		out = append(out, tccStatus{seq, sym, pkt.Arrival})
		if len(out) > int(fb.Count) {
			t.Fatalf("more than %d statuses", fb.Count)
		}
	}
	if _, _, ok := fb.Next(); ok {
		t.Fatal("Next yields again after the end")
	}
	if want := map[bool]int{true: int(fb.Count), false: 0}[fb.Err() == nil]; len(out) != want {
		t.Fatalf("%d statuses of %d, err %v", len(out), fb.Count, fb.Err())
	}
	return out
}

// readTCC reads buf, which must be exactly one well-formed feedback.
func readTCC(t testing.TB, buf []byte) (TransportCC, []tccStatus) {
	t.Helper()
	p, rest, err := ReadRTCP(buf)
	if err != nil || len(rest) != 0 {
		t.Fatalf("ReadRTCP: %v, %d bytes left", err, len(rest))
	}
	fb, ok := p.TransportCC()
	if !ok || fb.Err() != nil {
		t.Fatalf("TransportCC: %v %v", ok, fb.Err())
	}
	return fb, tccWalk(t, fb)
}

// pionStatuses expands pion's chunks and deltas into one status per
// packet, in the same form as tccWalk (arrival from the reference time).
func pionStatuses(t testing.TB, p *rtcp.TransportLayerCC) []tccStatus {
	t.Helper()
	var out []tccStatus
	left, di := int(p.PacketStatusCount), 0
	at := time.Duration(int32(p.ReferenceTime<<8)>>8) * TCCRefTimeUnit
	for _, c := range p.PacketChunks {
		var syms []uint16
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			syms = slices.Repeat([]uint16{c.PacketStatusSymbol}, min(int(c.RunLength), left))
		case *rtcp.StatusVectorChunk:
			syms = c.SymbolList[:min(len(c.SymbolList), left)]
		default:
			t.Fatalf("pion chunk %T", c)
		}
		for _, s := range syms {
			st := tccStatus{seq: p.BaseSequenceNumber + uint16(len(out))}
			if s == rtcp.TypeTCCPacketReceivedSmallDelta || s == rtcp.TypeTCCPacketReceivedLargeDelta {
				d := p.RecvDeltas[di]
				di++
				if d.Type != s {
					t.Fatalf("pion delta type %d for symbol %d", d.Type, s)
				}
				st.sym = int(s)
				at += time.Duration(d.Delta) * time.Microsecond
				st.arrival = at
			}
			out = append(out, st)
		}
		left -= len(syms)
	}
	if di != len(p.RecvDeltas) {
		t.Fatalf("pion has %d deltas, %d used", len(p.RecvDeltas), di)
	}
	return out
}

func pionTCC(t testing.TB, buf []byte) *rtcp.TransportLayerCC {
	t.Helper()
	pk, err := rtcp.Unmarshal(buf)
	if err != nil || len(pk) != 1 {
		t.Fatalf("pion rejects % x: %v", buf, err)
	}
	p, ok := pk[0].(*rtcp.TransportLayerCC)
	if !ok {
		t.Fatalf("pion reads %T", pk[0])
	}
	return p
}

// tccBody is a feedback's body after the common header: SSRCs 1 and 2,
// feedback count 7.
func tccBody(base, count uint16, ref uint32, chunks []uint16, deltas ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 1)
	b = binary.BigEndian.AppendUint32(b, 2)
	b = binary.BigEndian.AppendUint16(b, base)
	b = binary.BigEndian.AppendUint16(b, count)
	b = append(b, uint8(ref>>16), uint8(ref>>8), uint8(ref), 7)
	for _, c := range chunks {
		b = binary.BigEndian.AppendUint16(b, c)
	}
	return append(b, deltas...)
}

// tccPacket wraps body in a common header, padding it to a word with
// zeros, or with the RTCP padding bit if padBit.
func tccPacket(body []byte, padBit bool) []byte {
	b := append([]byte{0x80 | RTCPFormatTWCC, RTCPTypeRTPFB, 0, 0}, body...)
	if pad := 3 - (len(b)+3)%4; pad > 0 {
		b = append(b, make([]byte, pad)...)
		if padBit {
			b[0] |= 0x20
			b[len(b)-1] = uint8(pad)
		}
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)/4-1))
	return b
}

func TestTransportCCParse(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	lost := tccStatus{}
	small := func(at float64) tccStatus { return tccStatus{sym: 1, arrival: ms(at)} }
	large := func(at float64) tccStatus { return tccStatus{sym: 2, arrival: ms(at)} }
	tests := []struct {
		name    string
		base    uint16
		count   uint16
		ref     uint32
		chunks  []uint16
		deltas  []byte
		padBit  bool
		refTime time.Duration
		want    []tccStatus
	}{
		{name: "run of small", count: 3, ref: 1, chunks: []uint16{0x2003}, deltas: []byte{4, 0, 255},
			refTime: ms(64), want: []tccStatus{small(65), small(65), small(128.75)}},
		{name: "run of lost", count: 5, chunks: []uint16{0x0005}, want: []tccStatus{lost, lost, lost, lost, lost}},
		{name: "run of large, negative", count: 2, ref: 10, chunks: []uint16{0x4002}, deltas: []byte{0xff, 0xfc, 0x01, 0x90},
			refTime: ms(640), want: []tccStatus{large(639), large(739)}},
		{name: "run longer than count", count: 2, chunks: []uint16{0x2000 | 0x1fff}, deltas: []byte{1, 2},
			want: []tccStatus{small(0.25), small(0.75)}},
		{name: "run of length 0 skipped", count: 1, chunks: []uint16{0x2000, 0x6000, 0x2001}, deltas: []byte{8},
			want: []tccStatus{small(2)}},
		// The draft's 1-bit example: received ×3, lost ×2, received, lost,
		// received, lost ×3, received, lost ×2.
		{name: "one-bit vector", count: 14, chunks: []uint16{0xb944}, deltas: []byte{1, 1, 1, 1, 1, 1},
			want: []tccStatus{small(0.25), small(0.5), small(0.75), lost, lost, small(1), lost, small(1.25),
				lost, lost, lost, small(1.5), lost, lost}},
		{name: "one-bit beyond count ignored", count: 2, chunks: []uint16{0xbfff}, deltas: []byte{4, 4},
			want: []tccStatus{small(1), small(2)}},
		{name: "two-bit vector", count: 7, chunks: []uint16{0xc000 | 0b01_10_00_01_00_00_10}, deltas: []byte{4, 0x80, 0x00, 4, 0x7f, 0xff},
			want: []tccStatus{small(1), large(-8191), lost, small(-8190), lost, lost, large(1.75)}},
		{name: "two-bit reserved beyond count ignored", count: 2, chunks: []uint16{0xc000 | 0b01_01_11_11_11_11_11}, deltas: []byte{1, 1},
			want: []tccStatus{small(0.25), small(0.5)}},
		{name: "reserved run of length 0", count: 1, chunks: []uint16{0x6000, 0x0001}, want: []tccStatus{lost}},
		{name: "mixed chunks", count: 10, chunks: []uint16{0x0002, 0xc000 | 0b10_01_00_00_00_00_00, 0xa000}, deltas: []byte{0, 4, 8, 12},
			want: []tccStatus{lost, lost, large(1), small(3), lost, lost, lost, lost, lost, small(6)}},
		{name: "negative reference time", count: 1, ref: 0xffffff, chunks: []uint16{0x2001}, deltas: []byte{0},
			refTime: -ms(64), want: []tccStatus{small(-64)}},
		{name: "largest reference time", count: 1, ref: 0x7fffff, chunks: []uint16{0x0001},
			refTime: (1<<23 - 1) * TCCRefTimeUnit, want: []tccStatus{lost}},
		{name: "smallest reference time", count: 1, ref: 0x800000, chunks: []uint16{0x0001},
			refTime: -(1 << 23) * TCCRefTimeUnit, want: []tccStatus{lost}},
		{name: "sequence wraps", base: 65534, count: 4, chunks: []uint16{0x2004}, deltas: []byte{1, 1, 1, 1},
			want: []tccStatus{small(0.25), small(0.5), small(0.75), small(1)}},
		{name: "RTCP padding", count: 1, chunks: []uint16{0x2001}, deltas: []byte{4}, padBit: true, want: []tccStatus{small(1)}},
		{name: "three zero bytes", count: 3, chunks: []uint16{0x2003}, deltas: []byte{4, 4, 4}, want: []tccStatus{small(1), small(2), small(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := tccPacket(tccBody(tt.base, tt.count, tt.ref, tt.chunks, tt.deltas...), tt.padBit)
			fb, got := readTCC(t, buf)
			if fb.BaseSeq != tt.base || fb.Count != tt.count || fb.RefTime != tt.refTime || fb.FbCount != 7 {
				t.Fatalf("header %+v", fb)
			}
			for i := range tt.want {
				tt.want[i].seq = tt.base + uint16(i)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("statuses\n%v, want\n%v", got, tt.want)
			}
			// pion reads the same, wherever it reads these at all.
			if pk, err := rtcp.Unmarshal(buf); err == nil {
				if p := pk[0].(*rtcp.TransportLayerCC); !slices.Equal(pionStatuses(t, p), got) {
					t.Fatalf("pion reads %v", pionStatuses(t, p))
				}
			}
		})
	}
}

func TestTransportCCErrors(t *testing.T) {
	ok := tccBody(0, 3, 0, []uint16{0x2003}, 1, 2, 3)
	tests := []struct {
		name   string
		body   []byte
		padBit bool
		want   error
	}{
		{"short header", ok[:12], false, ErrTCCShort},
		{"short header in padding", ok[:15], true, ErrTCCShort},
		{"no statuses", tccBody(0, 0, 0, []uint16{0x2001}, 1), false, ErrTCCEmpty},
		{"no chunks", tccBody(0, 3, 0, nil), false, ErrTCCChunks},
		{"chunks short of the count", tccBody(0, 20, 0, []uint16{0x200a}, make([]byte, 10)...), false, ErrTCCChunks},
		{"reserved run", tccBody(0, 1, 0, []uint16{0x6001}), false, ErrTCCSymbol},
		{"reserved two-bit symbol", tccBody(0, 3, 0, []uint16{0xc000 | 0b01_00_11_00_00_00_00}, 1), false, ErrTCCSymbol},
		{"deltas short", tccBody(0, 3, 0, []uint16{0x2003}, 1, 2), false, ErrTCCDeltas},
		{"no deltas", tccBody(0, 4, 0, []uint16{0x2004}), false, ErrTCCDeltas},
		{"large delta cut by padding", tccBody(0, 1, 0, []uint16{0x4001}, 1), true, ErrTCCDeltas},
		{"word after deltas", tccBody(0, 1, 0, []uint16{0x2001}, 1, 0, 0, 0, 0), false, ErrTCCTrailing},
		{"non-zero alignment", tccBody(0, 1, 0, []uint16{0x2001}, 1, 9), false, ErrTCCTrailing},
		{"extra chunk", tccBody(0, 1, 0, []uint16{0x2001, 0x2001}, 1, 1), false, ErrTCCTrailing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := ReadRTCP(tccPacket(tt.body, tt.padBit))
			if err != nil {
				t.Fatal(err)
			}
			fb, isTCC := p.TransportCC()
			if !isTCC || !errors.Is(fb.Err(), tt.want) {
				t.Fatalf("ok %v err %v, want %v", isTCC, fb.Err(), tt.want)
			}
			tccWalk(t, fb)
		})
	}
	// Other packets are not feedback, even an RTPFB or a format 15.
	for _, buf := range [][]byte{AppendPLI(nil, 1, 2), AppendNACK(nil, 1, 2, []uint16{5}), AppendREMB(nil, 1, 1e6, []uint32{2})} {
		p, _, _ := ReadRTCP(buf)
		if fb, ok := p.TransportCC(); ok || p.IsTransportCC() || fb.Count != 0 {
			t.Fatalf("type %d fmt %d read as transport-cc", p.Type, p.Count)
		}
	}
	// Every truncation of a feedback without slack is an error.
	r := rand.New(rand.NewPCG(5, 5))
	for range 50 {
		ref, pkts := randTCCPackets(r, 1+r.IntN(60))
		p, _, _ := ReadRTCP(AppendTransportCC(nil, 1, 2, 3, 4, ref, pkts))
		for n := range len(p.Body) {
			q := RTCPPacket{Type: p.Type, Count: p.Count, Body: p.Body[:n]}
			fb, _ := q.TransportCC()
			if fb.Err() == nil {
				t.Fatalf("body cut to %d of %d bytes reads as valid", n, len(p.Body))
			}
			tccWalk(t, fb)
		}
	}
	var zero TransportCC
	if _, _, ok := zero.Next(); ok || zero.Err() != nil {
		t.Fatal("zero TransportCC yields")
	}
	// A view whose deltas or chunks went missing (impossible after
	// validation) stops instead of reading out of bounds.
	p, _, _ := ReadRTCP(tccFeedback100())
	for _, cut := range []func(*TransportCC){
		func(fb *TransportCC) { fb.deltas = nil },
		func(fb *TransportCC) { fb.deltas = fb.deltas[:1] },
		func(fb *TransportCC) { fb.chunks = fb.chunks[:1] },
	} {
		fb, _ := p.TransportCC()
		cut(&fb)
		n := 0
		for _, _, ok := fb.Next(); ok; _, _, ok = fb.Next() {
			n++
		}
		if n >= int(fb.Count) {
			t.Fatalf("%d statuses from a corrupted view", n)
		}
	}
}

// randTCCPackets draws a feedback's worth of statuses with the shapes
// receivers report: steady pacing, bursts, losses (random and in runs),
// reordering (negative deltas), long gaps (large deltas) and, now and
// then, a gap past what 16 bits can say.
func randTCCPackets(r *rand.Rand, n int) (ref time.Duration, pkts []TCCPacket) {
	pkts = make([]TCCPacket, n)
	at := time.Duration(r.Int64N(int64(24 * time.Hour)))
	ref = at - time.Duration(r.Int64N(int64(100*time.Millisecond)))
	if r.IntN(10) == 0 {
		ref = at + time.Duration(r.Int64N(int64(time.Second))) // first delta negative
	}
	lossP := []float64{0, 0, 0.02, 0.3, 0.9, 1}[r.IntN(6)]
	burst := 0
	for i := range pkts {
		switch k := r.IntN(1000); {
		case k < 700:
			at += time.Duration(r.Int64N(int64(3 * time.Millisecond)))
		case k < 900:
			at += time.Duration(r.Int64N(int64(80 * time.Millisecond)))
		case k < 980:
			at -= time.Duration(r.Int64N(int64(40 * time.Millisecond)))
		case k < 997:
			at += time.Duration(r.Int64N(int64(16*time.Second))) - 8*time.Second
		default:
			at += time.Duration(r.Int64N(int64(30*time.Second))) - 15*time.Second
		}
		if r.IntN(200) == 0 {
			burst = r.IntN(40)
		}
		received := r.Float64() >= lossP && burst == 0
		burst = max(burst-1, 0)
		if received {
			pkts[i] = TCCPacket{Received: true, Arrival: at}
		}
	}
	return ref, pkts
}

func floor64ms(d time.Duration) time.Duration {
	q := d / TCCRefTimeUnit
	if d%TCCRefTimeUnit < 0 {
		q--
	}
	return q * TCCRefTimeUnit
}

// checkEncoded asserts that got, read back from AppendTransportCC(...,
// ref, pkts), reports pkts as documented: every lost packet lost, every
// received one within 125 µs of its arrival in the smallest delta that
// holds it, or lost if no delta can.
func checkEncoded(t *testing.T, ref time.Duration, pkts []TCCPacket, got []tccStatus) {
	t.Helper()
	if len(got) != len(pkts) {
		t.Fatalf("%d statuses for %d packets", len(got), len(pkts))
	}
	prev := floor64ms(ref)
	for i, p := range pkts {
		g := got[i]
		if !p.Received {
			if g.sym != 0 {
				t.Fatalf("packet %d lost but reported %+v", i, g)
			}
			continue
		}
		d := p.Arrival - prev
		fits := d > -32768*TCCDeltaUnit-TCCDeltaUnit/2 && d < 32767*TCCDeltaUnit+TCCDeltaUnit/2
		if g.sym == 0 {
			if fits {
				t.Fatalf("packet %d: delta %v fits but reported lost", i, d)
			}
			continue
		}
		if !fits {
			t.Fatalf("packet %d: delta %v cannot fit, reported %+v", i, d, g)
		}
		if e := g.arrival - p.Arrival; e > TCCDeltaUnit/2 || e < -TCCDeltaUnit/2 {
			t.Fatalf("packet %d: arrival %v for %v", i, g.arrival, p.Arrival)
		}
		if sd := g.arrival - prev; (g.sym == 1) != (sd >= 0 && sd <= 255*TCCDeltaUnit) {
			t.Fatalf("packet %d: %d-byte delta for %v", i, g.sym, sd)
		}
		prev = g.arrival
	}
}

func TestTransportCCRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := range 3000 {
		n := 1 + r.IntN(300)
		if i%100 == 0 {
			n = 8000 + r.IntN(9000) // runs beyond 8191
		}
		ref, pkts := randTCCPackets(r, n)
		base, fbCount := uint16(r.Uint32()), uint8(r.Uint32())
		sender, media := r.Uint32(), r.Uint32()
		buf := AppendTransportCC(nil, sender, media, base, fbCount, ref, pkts)
		if len(buf)%4 != 0 {
			t.Fatalf("length %d", len(buf))
		}
		p, rest, err := ReadRTCP(buf)
		if err != nil || len(rest) != 0 || p.SenderSSRC() != sender || p.MediaSSRC() != media {
			t.Fatalf("ReadRTCP %v %+v", err, p)
		}
		fb, got := readTCC(t, buf)
		if fb.BaseSeq != base || fb.FbCount != fbCount || int(fb.Count) != n || fb.RefTime != floor64ms(ref) {
			t.Fatalf("header %+v for base %d fb %d ref %v", fb, base, fbCount, ref)
		}
		checkEncoded(t, ref, pkts, got)

		// pion reads the same statuses and deltas.
		pp := pionTCC(t, buf)
		if pp.SenderSSRC != sender || pp.MediaSSRC != media || pp.BaseSequenceNumber != base || pp.FbPktCount != fbCount {
			t.Fatalf("pion header %+v", pp)
		}
		if ps := pionStatuses(t, pp); !slices.Equal(ps, got) {
			t.Fatalf("pion reads\n%v\nwe read\n%v", ps, got)
		}
	}
}

// TestTransportCCFromPion reads what pion writes: random packets with
// chunks chosen at random (any valid choice, not only libwebrtc's), and
// the feedback of pion/interceptor's recorder, which a pion receiver
// sends.
func TestTransportCCFromPion(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for range 2000 {
		p := randPionTCC(r)
		buf, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		fb, got := readTCC(t, buf)
		if fb.BaseSeq != p.BaseSequenceNumber || fb.Count != p.PacketStatusCount || fb.FbCount != p.FbPktCount ||
			uint32(fb.RefTime/TCCRefTimeUnit)&0xffffff != p.ReferenceTime {
			t.Fatalf("header %+v for %v", fb, p)
		}
		if want := pionStatuses(t, p); !slices.Equal(got, want) {
			t.Fatalf("we read\n%v\npion wrote\n%v", got, want)
		}
	}

	for range 300 {
		rec := twcc.NewRecorder(5)
		seq := uint16(r.Uint32())
		atUS := r.Int64N(1e9)
		arrivals := map[uint16]int64{}
		for range 1 + r.IntN(400) {
			switch k := r.IntN(100); {
			case k < 10: // lost
			case k < 15: // reordered: an older packet arriving now
				s := seq - uint16(1+r.IntN(5))
				if _, dup := arrivals[s]; !dup {
					arrivals[s] = atUS
					rec.Record(9, s, atUS)
				}
			default:
				arrivals[seq] = atUS
				rec.Record(9, seq, atUS)
			}
			seq++
			atUS += r.Int64N(20_000)
			if r.IntN(100) == 0 {
				atUS += r.Int64N(10_000_000) // a gap that needs a new feedback
			}
		}
		seen := 0
		for _, pk := range rec.BuildFeedbackPacket() {
			buf, err := pk.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			fb, got := readTCC(t, buf)
			if want := pionStatuses(t, pk.(*rtcp.TransportLayerCC)); !slices.Equal(got, want) {
				t.Fatalf("we read\n%v\npion wrote\n%v", got, want)
			}
			for _, s := range got {
				at, ok := arrivals[s.seq]
				if ok != (s.sym != 0) {
					t.Fatalf("seq %d: received %v, reported %+v", s.seq, ok, s)
				}
				if e := s.arrival - time.Duration(at)*time.Microsecond; ok && (e > TCCDeltaUnit/2 || e < -TCCDeltaUnit/2) {
					t.Fatalf("seq %d: arrival %v, recorded %d µs (ref %v)", s.seq, s.arrival, at, fb.RefTime)
				}
				if ok {
					seen++
				}
			}
		}
		if seen != len(arrivals) {
			t.Fatalf("%d of %d arrivals reported", seen, len(arrivals))
		}
	}
}

// randPionTCC builds a feedback with pion's types, packing random statuses
// into chunks of random kinds, and random symbols past the count in a
// last vector chunk.
func randPionTCC(r *rand.Rand) *rtcp.TransportLayerCC {
	n := 1 + r.IntN(200)
	syms := make([]uint16, n)
	weights := [3]int{r.IntN(5), r.IntN(5), r.IntN(5)}
	for i := range syms {
		syms[i] = uint16(r.IntN(3))
		if r.IntN(10) > weights[syms[i]] { // runs
			if i > 0 {
				syms[i] = syms[i-1]
			}
		}
	}
	p := &rtcp.TransportLayerCC{
		SenderSSRC: r.Uint32(), MediaSSRC: r.Uint32(),
		BaseSequenceNumber: uint16(r.Uint32()), PacketStatusCount: uint16(n),
		ReferenceTime: r.Uint32N(1 << 24), FbPktCount: uint8(r.Uint32()),
	}
	for i := 0; i < n; {
		left := n - i
		run := 1
		for i+run < n && syms[i+run] == syms[i] && run < tccRunLenMax {
			run++
		}
		oneBitOK := !slices.Contains(syms[i:i+min(tccOneBitCap, left)], 2)
		switch k := r.IntN(3); {
		case k == 0 || (k == 1 && !oneBitOK) && left < 2:
			l := 1 + r.IntN(run)
			if l == left && r.IntN(2) == 0 {
				l = min(left+r.IntN(100), tccRunLenMax) // past the count
			}
			p.PacketChunks = append(p.PacketChunks, &rtcp.RunLengthChunk{PacketStatusSymbol: syms[i], RunLength: uint16(l)})
			i += min(l, left)
		case k == 1 && oneBitOK:
			list := make([]uint16, tccOneBitCap)
			for j := range list {
				if j < left {
					list[j] = syms[i+j]
				} else {
					list[j] = uint16(r.IntN(2))
				}
			}
			p.PacketChunks = append(p.PacketChunks, &rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeOneBit, SymbolList: list})
			i += min(tccOneBitCap, left)
		default:
			list := make([]uint16, tccTwoBitCap)
			for j := range list {
				if j < left {
					list[j] = syms[i+j]
				} else {
					list[j] = uint16(r.IntN(4))
				}
			}
			p.PacketChunks = append(p.PacketChunks, &rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: list})
			i += min(tccTwoBitCap, left)
		}
	}
	for _, s := range syms {
		switch s {
		case rtcp.TypeTCCPacketReceivedSmallDelta:
			p.RecvDeltas = append(p.RecvDeltas, &rtcp.RecvDelta{Type: s, Delta: 250 * r.Int64N(256)})
		case rtcp.TypeTCCPacketReceivedLargeDelta:
			p.RecvDeltas = append(p.RecvDeltas, &rtcp.RecvDelta{Type: s, Delta: 250 * (r.Int64N(1<<16) - 1<<15)})
		}
	}
	size := p.MarshalSize()
	p.Header = rtcp.Header{
		Padding: size != 4+16+2*len(p.PacketChunks)+deltaBytes(p) && r.IntN(2) == 0,
		Count:   rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback, Length: uint16(size/4 - 1),
	}
	return p
}

func deltaBytes(p *rtcp.TransportLayerCC) int {
	n := 0
	for _, d := range p.RecvDeltas {
		n += int(d.Type)
	}
	return n
}

// TestTransportCCChunks pins the chunk choices to libwebrtc's.
func TestTransportCCChunks(t *testing.T) {
	const lost, small, large = 0, 1, 2
	pattern := func(syms ...int) []TCCPacket {
		var pkts []TCCPacket
		at := time.Duration(0)
		for _, s := range syms {
			switch s {
			case lost:
				pkts = append(pkts, TCCPacket{})
			case small:
				at += time.Millisecond
				pkts = append(pkts, TCCPacket{Received: true, Arrival: at})
			case large:
				at -= time.Millisecond
				pkts = append(pkts, TCCPacket{Received: true, Arrival: at})
			}
		}
		return pkts
	}
	rep := func(s, n int) []int { return slices.Repeat([]int{s}, n) }
	tests := []struct {
		name   string
		syms   []int
		chunks []uint16
	}{
		{"run of small", rep(small, 20), []uint16{0x2014}},
		{"run of lost", rep(lost, 3), []uint16{0x0003}},
		{"run of large", rep(large, 30), []uint16{0x401e}},
		{"14 alternating: one-bit", slices.Repeat([]int{small, lost}, 7), []uint16{0xaaaa}},
		{"10 alternating at the end: one-bit", slices.Repeat([]int{small, lost}, 5), []uint16{0xaaa0}},
		{"5 alternating: two-bit", []int{small, lost, small, lost, small}, []uint16{0xd110}},
		{"large in a mix: two-bit, then the rest", []int{small, large, lost, small, large, lost, small, small},
			[]uint16{0xc000 | 0b01_10_00_01_10_00_01, 0x2001}},
		{"7 small then lost: one-bit of 14", append(rep(small, 7), rep(lost, 8)...), []uint16{0xbf80, 0x0001}},
		{"runs", append(rep(small, 20), rep(lost, 20)...), []uint16{0x2014, 0x0014}},
		{"run past 13 bits", rep(small, 8192), []uint16{0x3fff, 0x2001}},
		{"losses past 13 bits", rep(lost, 8192), []uint16{0x1fff, 0x0001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts := pattern(tt.syms...)
			buf := AppendTransportCC(nil, 1, 2, 3, 4, 0, pkts)
			fb, got := readTCC(t, buf)
			var chunks []uint16
			for c := fb.chunks; len(c) >= 2; c = c[2:] {
				chunks = append(chunks, binary.BigEndian.Uint16(c))
			}
			if !slices.Equal(chunks, tt.chunks) {
				t.Fatalf("chunks %#04x, want %#04x", chunks, tt.chunks)
			}
			checkEncoded(t, 0, pkts, got)
			if ps := pionStatuses(t, pionTCC(t, buf)); !slices.Equal(ps, got) {
				t.Fatalf("pion reads %v", ps)
			}
		})
	}
}

func TestAppendTransportCCLimits(t *testing.T) {
	ms := time.Millisecond
	if b := AppendTransportCC([]byte{9}, 1, 2, 3, 4, 0, nil); !slices.Equal(b, []byte{9}) {
		t.Fatal("empty feedback appended")
	}
	// Appends after what the buffer holds, and the result is a datagram
	// of two packets.
	buf := AppendTransportCC(AppendPLI(nil, 1, 2), 1, 2, 3, 4, 0, []TCCPacket{{true, ms}})
	p, rest, _ := ReadRTCP(buf)
	if !p.IsPLI() {
		t.Fatal("PLI overwritten")
	}
	readTCC(t, rest)

	tests := []struct {
		name string
		ref  time.Duration
		pkts []TCCPacket
		want []tccStatus // seq filled in
	}{
		{"rounding half away from zero", 0,
			[]TCCPacket{{true, 125 * time.Microsecond}, {true, 250 * time.Microsecond}, {true, 125 * time.Microsecond}},
			[]tccStatus{{sym: 1, arrival: 250 * time.Microsecond}, {sym: 1, arrival: 250 * time.Microsecond}, {sym: 2, arrival: 0}}},
		{"rounding does not drift", 0,
			[]TCCPacket{{true, 100 * time.Microsecond}, {true, 200 * time.Microsecond}, {true, 300 * time.Microsecond}, {true, 400 * time.Microsecond}},
			[]tccStatus{{sym: 1, arrival: 0}, {sym: 1, arrival: 250 * time.Microsecond}, {sym: 1, arrival: 250 * time.Microsecond}, {sym: 1, arrival: 500 * time.Microsecond}}},
		{"gap past 16 bits reported lost", 0,
			[]TCCPacket{{true, ms}, {true, 9 * time.Second}, {true, 2 * ms}},
			[]tccStatus{{sym: 1, arrival: ms}, {}, {sym: 1, arrival: 2 * ms}}},
		{"largest deltas", 0,
			[]TCCPacket{{true, 32767 * TCCDeltaUnit}, {true, 0}, {true, 63750 * time.Microsecond}},
			[]tccStatus{{sym: 2, arrival: 32767 * TCCDeltaUnit}, {sym: 2, arrival: 0}, {sym: 1, arrival: 63750 * time.Microsecond}}},
		{"ref time floored", 100 * ms,
			[]TCCPacket{{true, 100 * ms}},
			[]tccStatus{{sym: 1, arrival: 100 * ms}}},
		{"negative ref time floored", -ms,
			[]TCCPacket{{true, -ms}},
			[]tccStatus{{sym: 1, arrival: -ms}}},
		{"arrival before ref", 640 * ms,
			[]TCCPacket{{true, 500 * ms}, {false, 0}, {true, 400 * ms}},
			[]tccStatus{{sym: 2, arrival: 500 * ms}, {}, {sym: 2, arrival: 400 * ms}}},
		{"extreme arrivals", 0,
			[]TCCPacket{{true, math.MaxInt64}, {true, math.MinInt64}, {true, ms}},
			[]tccStatus{{}, {}, {sym: 1, arrival: ms}}},
		{"extreme ref", math.MinInt64,
			[]TCCPacket{{true, math.MinInt64}, {true, math.MaxInt64}},
			nil}, // ref wraps on the wire: only checked not to panic
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb, got := readTCC(t, AppendTransportCC(nil, 1, 2, 65535, 0, tt.ref, tt.pkts))
			if tt.want == nil {
				return
			}
			for i := range tt.want {
				tt.want[i].seq = 65535 + uint16(i)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("statuses %v, want %v (ref %v)", got, tt.want, fb.RefTime)
			}
			checkEncoded(t, tt.ref, tt.pkts, got)
		})
	}

	// The reference time travels modulo 2^24 × 64 ms, read back signed;
	// arrivals move with it.
	wrap := time.Duration(1<<24) * TCCRefTimeUnit
	ref := time.Duration(1<<23) * TCCRefTimeUnit
	fb, got := readTCC(t, AppendTransportCC(nil, 1, 2, 3, 4, ref, []TCCPacket{{true, ref + ms}}))
	if fb.RefTime != ref-wrap || got[0].arrival != ref+ms-wrap {
		t.Fatalf("wrapped ref %v, arrival %v", fb.RefTime, got[0].arrival)
	}

	// 65535 statuses at most.
	fb, _ = readTCC(t, AppendTransportCC(nil, 1, 2, 3, 4, 0, make([]TCCPacket, 70000)))
	if fb.Count != 65535 {
		t.Fatalf("count %d", fb.Count)
	}
}

// TestTransportCCPionDifferences pins where pion's parser and ours part:
// pion is looser about the content and stricter about one layout.
func TestTransportCCPionDifferences(t *testing.T) {
	tests := []struct {
		name    string
		buf     []byte
		ours    error
		pionErr bool
	}{
		// pion accepts, we (and libwebrtc) reject.
		{"count 0", tccPacket(tccBody(0, 0, 0, nil), false), ErrTCCEmpty, false},
		{"reserved symbol", tccPacket(tccBody(0, 1, 0, []uint16{0x6001}), false), ErrTCCSymbol, false},
		// pion does not remove RTCP padding and reads deltas from it.
		{"delta in padding", tccPacket(tccBody(0, 1, 0, []uint16{0x4001}, 1), true), ErrTCCDeltas, false},
		{"data after deltas", tccPacket(tccBody(0, 1, 0, []uint16{0x2001}, 1, 1, 1, 1, 1), false), ErrTCCTrailing, false},
		// pion rejects a last chunk that ends the packet, though nothing
		// is missing.
		{"last chunk ends the packet", tccPacket(tccBody(0, 2, 0, []uint16{0x0001, 0x0001}), false), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := ReadRTCP(tt.buf)
			if err != nil {
				t.Fatal(err)
			}
			fb, _ := p.TransportCC()
			if !errors.Is(fb.Err(), tt.ours) {
				t.Fatalf("our error %v, want %v", fb.Err(), tt.ours)
			}
			var pt rtcp.TransportLayerCC
			if err := pt.Unmarshal(tt.buf); (err != nil) != tt.pionErr {
				t.Fatalf("pion's Unmarshal now says %v: update the notes in twcc.go and twcc_fuzz_test.go", err)
			}
		})
	}
	// Which is why our feedback of only losses gets padding.
	buf := AppendTransportCC(nil, 1, 2, 3, 4, 0, make([]TCCPacket, 8192))
	if buf[0]&0x20 == 0 || buf[len(buf)-1] != 4 {
		t.Fatalf("losses-only feedback % x", buf)
	}
	pionTCC(t, buf)
}

// tccFeedback100 is a feedback of 100 packets, a few lost, one reordered.
func tccFeedback100() []byte {
	pkts := make([]TCCPacket, 100)
	at := 10 * time.Second
	for i := range pkts {
		at += time.Duration(i%7) * 700 * time.Microsecond
		pkts[i] = TCCPacket{Received: i%13 != 5, Arrival: at}
	}
	pkts[50].Arrival -= 20 * time.Millisecond
	return AppendTransportCC(nil, 1, 2, 1000, 1, 10*time.Second, pkts)
}

func TestTransportCCNoAllocs(t *testing.T) {
	buf := tccFeedback100()
	var sum time.Duration
	n := testing.AllocsPerRun(100, func() {
		p, _, err := ReadRTCP(buf)
		if err != nil {
			t.Fatal(err)
		}
		fb, ok := p.TransportCC()
		if !ok || fb.Err() != nil {
			t.Fatal("not a valid feedback")
		}
		for {
			_, pkt, ok := fb.Next()
			if !ok {
				break
			}
			sum += pkt.Arrival
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per feedback", n)
	}
	if sum == 0 {
		t.Fatal("read nothing")
	}
	pkts := make([]TCCPacket, 100)
	for i := range pkts {
		pkts[i] = TCCPacket{Received: i%3 != 0, Arrival: time.Duration(i) * time.Millisecond}
	}
	out := make([]byte, 0, 1500)
	if n := testing.AllocsPerRun(100, func() { out = AppendTransportCC(out[:0], 1, 2, 3, 4, 0, pkts) }); n != 0 {
		t.Fatalf("%v allocs per AppendTransportCC", n)
	}
}

func BenchmarkTransportCCParse(b *testing.B) {
	buf := tccFeedback100()
	b.ReportAllocs()
	var sum time.Duration
	for b.Loop() {
		p, _, _ := ReadRTCP(buf)
		fb, _ := p.TransportCC()
		for {
			_, pkt, ok := fb.Next()
			if !ok {
				break
			}
			sum += pkt.Arrival
		}
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "statuses/s")
	if sum == 0 {
		b.Fatal("read nothing")
	}
}

func BenchmarkAppendTransportCC(b *testing.B) {
	p, _, _ := ReadRTCP(tccFeedback100())
	fb, _ := p.TransportCC()
	var pkts []TCCPacket
	for {
		_, pkt, ok := fb.Next()
		if !ok {
			break
		}
		pkts = append(pkts, pkt)
	}
	out := make([]byte, 0, 1500)
	b.ReportAllocs()
	for b.Loop() {
		out = AppendTransportCC(out[:0], 1, 2, 1000, 1, fb.RefTime, pkts)
	}
}
