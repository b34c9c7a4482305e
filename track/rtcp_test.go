package track

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pion/rtcp"
)

// walk reads every packet of a compound datagram.
func walk(t *testing.T, buf []byte) []RTCPPacket {
	t.Helper()
	var out []RTCPPacket
	for len(buf) > 0 {
		p, rest, err := ReadRTCP(buf)
		if err != nil {
			t.Fatalf("ReadRTCP: %v", err)
		}
		out = append(out, p)
		buf = rest
	}
	return out
}

func pionUnmarshal(t *testing.T, buf []byte) []rtcp.Packet {
	t.Helper()
	pkts, err := rtcp.Unmarshal(buf)
	if err != nil {
		t.Fatalf("pion rejects % x: %v", buf, err)
	}
	return pkts
}

func randReports(r *rand.Rand, n int) []ReportBlock {
	rb := make([]ReportBlock, n)
	for i := range rb {
		rb[i] = ReportBlock{
			SSRC: r.Uint32(), FractionLost: uint8(r.IntN(256)), TotalLost: int32(r.IntN(1 << 23)),
			HighestSeq: r.Uint32(), Jitter: r.Uint32(), LSR: r.Uint32(), DLSR: r.Uint32(),
		}
	}
	return rb
}

func checkReports(t *testing.T, p *RTCPPacket, want []rtcp.ReceptionReport) {
	t.Helper()
	if p.ReportBlockCount() != len(want) {
		t.Fatalf("%d report blocks, want %d", p.ReportBlockCount(), len(want))
	}
	for i, w := range want {
		rb, ok := p.ReportBlock(i)
		if !ok || rb.SSRC != w.SSRC || rb.FractionLost != w.FractionLost || uint32(rb.TotalLost)&0xffffff != w.TotalLost ||
			rb.HighestSeq != w.LastSequenceNumber || rb.Jitter != w.Jitter || rb.LSR != w.LastSenderReport || rb.DLSR != w.Delay {
			t.Fatalf("block %d: %+v, want %+v", i, rb, w)
		}
	}
	if _, ok := p.ReportBlock(len(want)); ok {
		t.Fatal("block past the count")
	}
}

func TestRTCPBuildersParsedByPion(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 500 {
		sender, media := r.Uint32(), r.Uint32()
		seq := uint8(r.IntN(256))
		var lost []uint16
		s := uint16(r.Uint32())
		for range 1 + r.IntN(40) {
			s += uint16(1 + r.IntN(30))
			lost = append(lost, s)
		}
		bitrate := r.Uint64N(1 << uint(10+r.IntN(40)))
		ssrcs := make([]uint32, r.IntN(4))
		for i := range ssrcs {
			ssrcs[i] = r.Uint32()
		}
		rr := randReports(r, r.IntN(4))
		ntp, rtpTime, pkts, octets := r.Uint64(), r.Uint32(), r.Uint32(), r.Uint32()

		var buf []byte
		buf = AppendPLI(buf, sender, media)
		buf = AppendFIR(buf, sender, media, seq)
		buf = AppendNACK(buf, sender, media, lost)
		buf = AppendREMB(buf, sender, bitrate, ssrcs)
		buf = AppendReceiverReport(buf, sender, rr)
		buf = AppendSenderReport(buf, sender, ntp, rtpTime, pkts, octets, rr)

		got := pionUnmarshal(t, buf)
		if len(got) != 6 {
			t.Fatalf("pion sees %d packets", len(got))
		}
		if p, ok := got[0].(*rtcp.PictureLossIndication); !ok || p.SenderSSRC != sender || p.MediaSSRC != media {
			t.Fatalf("PLI: %#v", got[0])
		}
		if p, ok := got[1].(*rtcp.FullIntraRequest); !ok || p.SenderSSRC != sender || len(p.FIR) != 1 ||
			p.FIR[0].SSRC != media || p.FIR[0].SequenceNumber != seq {
			t.Fatalf("FIR: %#v", got[1])
		}
		nack, ok := got[2].(*rtcp.TransportLayerNack)
		if !ok || nack.SenderSSRC != sender || nack.MediaSSRC != media {
			t.Fatalf("NACK: %#v", got[2])
		}
		var seqs []uint16
		for _, np := range nack.Nacks {
			seqs = append(seqs, np.PacketList()...)
		}
		if !slices.Equal(seqs, lost) {
			t.Fatalf("NACK seqs %v, want %v", seqs, lost)
		}
		remb, ok := got[3].(*rtcp.ReceiverEstimatedMaximumBitrate)
		if !ok || remb.SenderSSRC != sender || !slices.Equal(remb.SSRCs, ssrcs) {
			t.Fatalf("REMB: %#v", got[3])
		}
		// 18 significant bits: the sent rate is at most the asked one and
		// within 2^-17 of it.
		if b := uint64(remb.Bitrate); b > bitrate || bitrate-b > bitrate>>17 {
			t.Fatalf("REMB bitrate %d for %d", b, bitrate)
		}
		rrp, ok := got[4].(*rtcp.ReceiverReport)
		if !ok || rrp.SSRC != sender || len(rrp.Reports) != len(rr) {
			t.Fatalf("RR: %#v", got[4])
		}
		sr, ok := got[5].(*rtcp.SenderReport)
		if !ok || sr.SSRC != sender || sr.NTPTime != ntp || sr.RTPTime != rtpTime || sr.PacketCount != pkts ||
			sr.OctetCount != octets || len(sr.Reports) != len(rr) {
			t.Fatalf("SR: %#v", got[5])
		}
		for i, b := range rr {
			for _, w := range []rtcp.ReceptionReport{rrp.Reports[i], sr.Reports[i]} {
				if w.SSRC != b.SSRC || w.FractionLost != b.FractionLost || w.TotalLost != uint32(b.TotalLost) ||
					w.LastSequenceNumber != b.HighestSeq || w.Jitter != b.Jitter || w.LastSenderReport != b.LSR || w.Delay != b.DLSR {
					t.Fatalf("report %d: %+v, want %+v", i, w, b)
				}
			}
		}

		// Our own reader agrees too.
		ps := walk(t, buf)
		if !ps[0].IsPLI() || ps[0].SenderSSRC() != sender || ps[0].MediaSSRC() != media {
			t.Fatalf("PLI view %+v", ps[0])
		}
		if e, q := ps[1].FIREntry(0); ps[1].FIREntries() != 1 || e != media || q != seq {
			t.Fatal("FIR view")
		}
		var ours []uint16
		for i := range ps[2].NACKCount() {
			pid, blp := ps[2].NACK(i)
			ForEachNACKSeq(pid, blp, func(s uint16) { ours = append(ours, s) })
		}
		if !slices.Equal(ours, lost) {
			t.Fatalf("NACK view %v, want %v", ours, lost)
		}
		if b, n, ok := ps[3].REMB(); !ok || b != uint64(remb.Bitrate) || n != len(ssrcs) {
			t.Fatalf("REMB view %d %d %v", b, n, ok)
		}
		for i, s := range ssrcs {
			if ps[3].REMBSSRC(i) != s {
				t.Fatal("REMB ssrc")
			}
		}
		checkReports(t, &ps[4], rrp.Reports)
		checkReports(t, &ps[5], sr.Reports)
	}
}

func TestRTCPReadPionPackets(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 500 {
		var reports []rtcp.ReceptionReport
		for range r.IntN(5) {
			reports = append(reports, rtcp.ReceptionReport{
				SSRC: r.Uint32(), FractionLost: uint8(r.IntN(256)), TotalLost: uint32(r.IntN(1 << 24)),
				LastSequenceNumber: r.Uint32(), Jitter: r.Uint32(), LastSenderReport: r.Uint32(), Delay: r.Uint32(),
			})
		}
		var nacks []rtcp.NackPair
		for range 1 + r.IntN(5) {
			nacks = append(nacks, rtcp.NackPair{PacketID: uint16(r.Uint32()), LostPackets: rtcp.PacketBitmap(r.Uint32())})
		}
		var firs []rtcp.FIREntry
		for range 1 + r.IntN(3) {
			firs = append(firs, rtcp.FIREntry{SSRC: r.Uint32(), SequenceNumber: uint8(r.IntN(256))})
		}
		ssrcs := make([]uint32, r.IntN(5))
		for i := range ssrcs {
			ssrcs[i] = r.Uint32()
		}
		pkts := []rtcp.Packet{
			&rtcp.SenderReport{SSRC: r.Uint32(), NTPTime: r.Uint64(), RTPTime: r.Uint32(), PacketCount: r.Uint32(), OctetCount: r.Uint32(), Reports: reports},
			&rtcp.ReceiverReport{SSRC: r.Uint32(), Reports: reports},
			&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: r.Uint32(), Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "cname-x"}}}}},
			&rtcp.PictureLossIndication{SenderSSRC: r.Uint32(), MediaSSRC: r.Uint32()},
			&rtcp.FullIntraRequest{SenderSSRC: r.Uint32(), MediaSSRC: r.Uint32(), FIR: firs},
			&rtcp.TransportLayerNack{SenderSSRC: r.Uint32(), MediaSSRC: r.Uint32(), Nacks: nacks},
			&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: r.Uint32(), Bitrate: float32(r.IntN(1 << 30)), SSRCs: ssrcs},
			&rtcp.Goodbye{Sources: []uint32{r.Uint32()}},
		}
		buf, err := rtcp.Marshal(pkts)
		if err != nil {
			t.Fatal(err)
		}
		ps := walk(t, buf)
		if len(ps) != len(pkts) {
			t.Fatalf("%d packets, want %d", len(ps), len(pkts))
		}
		types := []uint8{RTCPTypeSR, RTCPTypeRR, RTCPTypeSDES, RTCPTypePSFB, RTCPTypePSFB, RTCPTypeRTPFB, RTCPTypePSFB, RTCPTypeBYE}
		for i, p := range ps {
			if p.Type != types[i] {
				t.Fatalf("packet %d type %d", i, p.Type)
			}
		}
		sr := pkts[0].(*rtcp.SenderReport)
		if ssrc, ntp, rt, pc, oc, ok := ps[0].SenderReport(); !ok || ssrc != sr.SSRC || ntp != sr.NTPTime || rt != sr.RTPTime || pc != sr.PacketCount || oc != sr.OctetCount {
			t.Fatal("SR view")
		}
		checkReports(t, &ps[0], reports)
		if ps[1].SenderSSRC() != pkts[1].(*rtcp.ReceiverReport).SSRC {
			t.Fatal("RR sender")
		}
		checkReports(t, &ps[1], reports)
		if ps[2].SenderSSRC() != 0 || ps[2].ReportBlockCount() != 0 {
			t.Fatal("SDES accessors")
		}
		pli := pkts[3].(*rtcp.PictureLossIndication)
		if !ps[3].IsPLI() || ps[3].SenderSSRC() != pli.SenderSSRC || ps[3].MediaSSRC() != pli.MediaSSRC || ps[4].IsPLI() {
			t.Fatal("PLI view")
		}
		if ps[4].FIREntries() != len(firs) || ps[3].FIREntries() != 0 {
			t.Fatal("FIR count")
		}
		for i, f := range firs {
			if s, q := ps[4].FIREntry(i); s != f.SSRC || q != f.SequenceNumber {
				t.Fatal("FIR entry")
			}
		}
		nack := pkts[5].(*rtcp.TransportLayerNack)
		if ps[5].NACKCount() != len(nacks) || ps[5].MediaSSRC() != nack.MediaSSRC || ps[4].NACKCount() != 0 {
			t.Fatal("NACK count")
		}
		for i, np := range nacks {
			pid, blp := ps[5].NACK(i)
			var seqs []uint16
			ForEachNACKSeq(pid, blp, func(s uint16) { seqs = append(seqs, s) })
			if !slices.Equal(seqs, np.PacketList()) {
				t.Fatalf("NACK %d: %v, want %v", i, seqs, np.PacketList())
			}
		}
		remb := pkts[6].(*rtcp.ReceiverEstimatedMaximumBitrate)
		b, n, ok := ps[6].REMB()
		if !ok || n != len(ssrcs) || b > uint64(remb.Bitrate) || uint64(remb.Bitrate)-b > uint64(remb.Bitrate)>>17 {
			t.Fatalf("REMB %d %d %v, want %v", b, n, ok, remb.Bitrate)
		}
		for i, s := range ssrcs {
			if ps[6].REMBSSRC(i) != s {
				t.Fatal("REMB ssrc")
			}
		}
		if _, _, ok := ps[3].REMB(); ok {
			t.Fatal("PLI read as REMB")
		}
	}
}

func TestRTCPNACKPacking(t *testing.T) {
	tests := []struct {
		name  string
		seqs  []uint16
		pairs [][2]uint16
	}{
		{"one", []uint16{100}, [][2]uint16{{100, 0}}},
		{"run of 17", []uint16{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, [][2]uint16{{1, 0xffff}}},
		{"18 splits", []uint16{1, 18}, [][2]uint16{{1, 0}, {18, 0}}},
		{"wrap", []uint16{65535, 0, 2}, [][2]uint16{{65535, 0b101}}},
		{"duplicates", []uint16{5, 5, 6}, [][2]uint16{{5, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := walk(t, AppendNACK(nil, 1, 2, tt.seqs))
			var got [][2]uint16
			for i := range ps[0].NACKCount() {
				pid, blp := ps[0].NACK(i)
				got = append(got, [2]uint16{pid, blp})
			}
			if !slices.Equal(got, tt.pairs) {
				t.Fatalf("pairs %v, want %v", got, tt.pairs)
			}
		})
	}
	if b := AppendNACK([]byte{9}, 1, 2, nil); !bytes.Equal(b, []byte{9}) {
		t.Fatal("empty NACK appended")
	}
}

func TestRTCPREMBRange(t *testing.T) {
	for _, bps := range []uint64{0, 1, 1<<18 - 1, 1 << 18, 123_456_789, 1 << 40, 1<<63 + 12345} {
		ps := walk(t, AppendREMB(nil, 1, bps, []uint32{5}))
		got, n, ok := ps[0].REMB()
		if !ok || n != 1 || got > bps || bps-got > bps>>17 {
			t.Errorf("REMB(%d) reads %d", bps, got)
		}
	}
	// An exponent that overflows 64 bits saturates.
	buf := AppendREMB(nil, 1, 1<<18-1, nil)
	buf[len(buf)-3] |= 63 << 2
	if got, _, ok := walk(t, buf)[0].REMB(); !ok || got != 1<<64-1 {
		t.Fatalf("saturating REMB %d", got)
	}
}

func TestRTCPReportBlockLimits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	rb := randReports(r, 40)
	rb[0].TotalLost = -5
	rb[1].TotalLost = 1 << 30
	ps := walk(t, AppendReceiverReport(nil, 9, rb))
	if ps[0].ReportBlockCount() != 31 {
		t.Fatalf("%d blocks", ps[0].ReportBlockCount())
	}
	if b, _ := ps[0].ReportBlock(0); b.TotalLost != -5 {
		t.Fatalf("negative loss read as %d", b.TotalLost)
	}
	if b, _ := ps[0].ReportBlock(1); b.TotalLost != 1<<23-1 {
		t.Fatalf("large loss not clamped: %d", b.TotalLost)
	}
	// A report count beyond the packet's length is not trusted.
	short := AppendReceiverReport(nil, 9, rb[:2])
	short[0] = short[0]&^0x1f | 5
	if n := walk(t, short)[0].ReportBlockCount(); n != 2 {
		t.Fatalf("count %d", n)
	}
}

func TestReadRTCPErrors(t *testing.T) {
	pli := AppendPLI(nil, 1, 2)
	padded := append(append([]byte{}, pli...), 0, 0, 0, 4)
	padded[0] |= 0x20
	padded[3] = 3
	tests := []struct {
		name string
		buf  []byte
		want error
	}{
		{"short", pli[:3], ErrRTCPShort},
		{"version", append([]byte{0x41}, pli[1:]...), ErrRTCPVersion},
		{"length overrun", pli[:11], ErrRTCPLength},
		{"padding zero", append(append([]byte{0xa1}, padded[1:15]...), 0), ErrRTCPPadding},
		{"padding overrun", append(append([]byte{0xa1}, padded[1:15]...), 13), ErrRTCPPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ReadRTCP(tt.buf); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	p, rest, err := ReadRTCP(append(padded, pli...))
	if err != nil || len(p.Body) != 8 || !p.IsPLI() || !bytes.Equal(rest, pli) {
		t.Fatalf("padded PLI: %v %+v", err, p)
	}
	// Truncation at every length of a compound packet fails or yields a
	// shorter walk; accessors on short bodies never panic.
	r := rand.New(rand.NewPCG(2, 2))
	full := AppendSenderReport(nil, 1, 2, 3, 4, 5, randReports(r, 2))
	full = AppendNACK(full, 1, 2, []uint16{1, 5, 40})
	full = AppendREMB(full, 1, 1e6, []uint32{1, 2})
	full = AppendFIR(full, 1, 2, 3)
	for n := range len(full) {
		buf := full[:n]
		for len(buf) > 0 {
			p, rest, err := ReadRTCP(buf)
			if err != nil {
				break
			}
			exerciseRTCP(&p)
			buf = rest
		}
	}
	for _, typ := range []uint8{RTCPTypeSR, RTCPTypeRR, RTCPTypePSFB, RTCPTypeRTPFB} {
		for f := uint8(0); f < 32; f++ {
			for n := range 12 {
				exerciseRTCP(&RTCPPacket{Type: typ, Count: f, Body: make([]byte, n)})
			}
		}
	}
}

// exerciseRTCP calls every accessor, including out-of-range indexes.
func exerciseRTCP(p *RTCPPacket) int {
	s := int(p.SenderSSRC()) + int(p.MediaSSRC())
	if p.IsPLI() {
		s++
	}
	for i := -1; i <= p.FIREntries(); i++ {
		ssrc, q := p.FIREntry(i)
		s += int(ssrc) + int(q)
	}
	for i := -1; i <= p.NACKCount(); i++ {
		pid, blp := p.NACK(i)
		ForEachNACKSeq(pid, blp, func(q uint16) { s += int(q) })
	}
	if b, n, ok := p.REMB(); ok {
		s += int(b)
		for i := -1; i <= n; i++ {
			s += int(p.REMBSSRC(i))
		}
	}
	if ssrc, ntp, rt, pc, oc, ok := p.SenderReport(); ok {
		s += int(ssrc) + int(ntp) + int(rt) + int(pc) + int(oc)
	}
	for i := -1; i <= p.ReportBlockCount(); i++ {
		rb, _ := p.ReportBlock(i)
		s += int(rb.SSRC)
	}
	return s
}

func TestRTCPNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	rb := randReports(r, 3)
	seqs := []uint16{10, 11, 15, 40, 41}
	ssrcs := []uint32{7, 8}
	buf := make([]byte, 0, 1500)
	var sum int
	n := testing.AllocsPerRun(100, func() {
		b := buf[:0]
		b = AppendSenderReport(b, 1, 2, 3, 4, 5, rb)
		b = AppendReceiverReport(b, 1, rb)
		b = AppendPLI(b, 1, 2)
		b = AppendFIR(b, 1, 2, 3)
		b = AppendNACK(b, 1, 2, seqs)
		b = AppendREMB(b, 1, 2_000_000, ssrcs)
		for len(b) > 0 {
			p, rest, err := ReadRTCP(b)
			if err != nil {
				t.Fatal(err)
			}
			sum += exerciseRTCP(&p)
			b = rest
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per datagram", n)
	}
	if sum == 0 {
		t.Fatal("accessors read nothing")
	}
}

func BenchmarkReadRTCP(b *testing.B) {
	buf := AppendReceiverReport(nil, 1, randReports(rand.New(rand.NewPCG(4, 4)), 2))
	buf = AppendNACK(buf, 1, 2, []uint16{10, 11, 15, 40})
	buf = AppendPLI(buf, 1, 2)
	b.ReportAllocs()
	for b.Loop() {
		for d := buf; len(d) > 0; {
			p, rest, err := ReadRTCP(d)
			if err != nil {
				b.Fatal(err)
			}
			exerciseRTCP(&p)
			d = rest
		}
	}
}
