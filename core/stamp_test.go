package core

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/track"
)

// Everything a subscriber is sent carries the extensions it negotiated:
// one transport-wide sequence space across its tracks, retransmissions
// included, abs-send-time of the sending moment, the audio level on
// audio. A subscriber that negotiated none gets none.
func TestTransmitsAreStamped(t *testing.T) {
	now := testutil.Epoch
	n, err := New(Config{Seed: 5})
	must(t, err)
	pub, err := n.CreateEndpoint(now, EndpointConfig{PeerID: "pub", Extensions: endpoint.Extensions{AudioLevel: 4}})
	must(t, err)
	must(t, n.Join(now, pub, "r"))
	must(t, n.Publish(now, pub, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, PayloadType: 96, Encodings: []track.Encoding{{SSRC: 1111}}}))
	must(t, n.Publish(now, pub, endpoint.TrackOptions{Name: "mic", Codec: track.CodecOpus, PayloadType: 111, Encodings: []track.Encoding{{SSRC: 2222}}}))
	ext := endpoint.Extensions{TransportCC: 3, AbsSendTime: 2, AudioLevel: 1}
	sub, err := n.CreateEndpoint(now, EndpointConfig{PeerID: "sub", AutoSubscribe: true, Extensions: ext})
	must(t, err)
	must(t, n.Join(now, sub, "r"))
	plain, err := n.CreateEndpoint(now, EndpointConfig{PeerID: "plain", AutoSubscribe: true})
	must(t, err)
	must(t, n.Join(now, plain, "r"))
	drain(n)

	buf := make([]byte, 1500)
	opus := func(seq uint16) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 2222}, Payload: []byte{0x78, 1, 2, 3}}
		if err := p.SetExtension(4, []byte{0x80 | 42}); err != nil {
			t.Fatal(err)
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var got []Transmit
	collect := func() {
		for {
			o, ok := n.Poll(buf)
			if !ok {
				return
			}
			if o.Kind == OutputRTP {
				got = append(got, o.RTP)
			}
		}
	}
	for i := range 10 {
		now = now.Add(10 * time.Millisecond)
		must(t, n.HandleRTP(now, pub, vp8Packet(buf, 1111, uint16(100+i), uint32(3000*i), uint16(i), i == 0, 300)))
		collect()
		must(t, n.HandleRTP(now, pub, opus(uint16(500+i))))
		collect()
	}
	// A NACK from the stamped subscriber: its retransmission takes the
	// next number too.
	var video Transmit
	for _, tr := range got {
		if Handle(tr.Owner) == sub && tr.PayloadType == 96 {
			video = tr
			break
		}
	}
	now = now.Add(10 * time.Millisecond)
	must(t, n.HandleRTCP(now, sub, track.AppendNACK(nil, 1, video.SSRC, []uint16{video.SequenceNumber + 3})))
	collect()

	next := uint16(0)
	var audio, rtx, stamped int
	for _, tr := range got {
		if Handle(tr.Owner) != sub {
			if tr.TransportSeqExt != 0 || tr.AbsSendTimeExt != 0 || tr.AudioLevelExt != 0 {
				t.Fatalf("a subscriber without extensions got them stamped: %+v", tr)
			}
			continue
		}
		stamped++
		if tr.TransportSeqExt != 3 || tr.TransportSeq != next {
			t.Fatalf("packet %d: transport-wide seq %d (ext %d), want %d", stamped, tr.TransportSeq, tr.TransportSeqExt, next)
		}
		next++
		if tr.AbsSendTimeExt != 2 || tr.AbsSendTime == 0 {
			t.Fatalf("packet %d: abs-send-time %d (ext %d)", stamped, tr.AbsSendTime, tr.AbsSendTimeExt)
		}
		if tr.Retransmit {
			rtx++
		}
		if tr.PayloadType == 111 {
			audio++
			b := make([]byte, 1500)
			m, err := tr.MarshalTo(b, nil)
			must(t, err)
			var p rtp.Packet
			must(t, p.Unmarshal(b[:m]))
			if lvl := p.GetExtension(1); len(lvl) != 1 || lvl[0] != 0x80|42 {
				t.Fatalf("audio level on the wire %x", lvl)
			}
		}
	}
	if stamped != 21 || audio != 10 || rtx != 1 {
		t.Fatalf("%d packets to the subscriber (%d audio, %d retransmitted); want 21, 10, 1", stamped, audio, rtx)
	}
	if st := n.slot(sub).ep.Stats(); st.Sent != 21 || st.SentBytes == 0 {
		t.Fatalf("endpoint counted %d sent, %d bytes", st.Sent, st.SentBytes)
	}
}

// A subscriber's receiver report about what it is sent reaches its
// subscription: loss and jitter as reported, and the round-trip time from
// the sender report it echoes (the time since it was sent less the
// receiver's delay); the endpoint smooths the RTTs. Blocks about SSRCs it
// is not sent are ignored.
func TestReceiverReportsGiveRTTAndLoss(t *testing.T) {
	node, pub := fanoutNode(t, 1)
	now := testutil.Epoch
	buf := make([]byte, 1500)
	_ = node.HandleRTP(now, pub, vp8Packet(buf, 1111, 2, 4000, 2, false, 100))
	var sub Handle
	var ssrc uint32
	for tr, ok := node.pollTransmit(); ok; tr, ok = node.pollTransmit() {
		sub, ssrc = Handle(tr.Owner), tr.SSRC
	}
	const ntp = 0xe1234567_89abcdef
	must(t, node.HandleRTCP(now, pub, track.AppendSenderReport(nil, 1111, ntp, 7000, 10, 1000, nil)))
	for _, _, ok := node.pollRTCP(buf); ok; _, _, ok = node.pollRTCP(buf) {
	}
	// The SR reaches the subscriber after 20 ms, it holds it 5 ms, the RR
	// takes 20 ms back: 45 ms since sending, 40 ms of it on the wire.
	now = now.Add(45 * time.Millisecond)
	rr := track.AppendReceiverReport(nil, 77, []track.ReportBlock{
		{SSRC: ssrc, FractionLost: 64, TotalLost: 12, Jitter: 900, LSR: uint32(uint64(ntp) >> 16 & 0xffffffff), DLSR: 5 * 65536 / 1000},
		{SSRC: 999, FractionLost: 255},
	})
	must(t, node.HandleRTCP(now, sub, rr))
	s := node.slot(sub)
	var r track.Reception
	for _, k := range s.ep.Subscriptions() {
		l, _ := s.ep.Subscription(k)
		r = l.Reception()
	}
	if r.FractionLost != 64 || r.TotalLost != 12 || r.Jitter != 10*time.Millisecond || !r.At.Equal(now) {
		t.Fatalf("reception %+v", r)
	}
	if d := r.RTT - 40*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("RTT %v, want 40 ms", r.RTT)
	}
	if got := s.ep.RTT(); got != r.RTT {
		t.Fatalf("endpoint RTT %v, want the first sample %v", got, r.RTT)
	}
	if st := s.ep.Stats(); st.ReceiverReports != 1 {
		t.Fatalf("%d report blocks taken, want 1", st.ReceiverReports)
	}
	// A report that echoes no sender report gives loss but no RTT.
	must(t, node.HandleRTCP(now, sub, track.AppendReceiverReport(nil, 77, []track.ReportBlock{{SSRC: ssrc, FractionLost: 1}})))
	for _, k := range s.ep.Subscriptions() {
		l, _ := s.ep.Subscription(k)
		r = l.Reception()
	}
	if r.FractionLost != 1 || r.RTT != 0 || s.ep.RTT() == 0 {
		t.Fatalf("reception %+v, endpoint RTT %v", r, s.ep.RTT())
	}
}
