package core

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sansrtc/sfu/cluster"
	"github.com/sansrtc/sfu/endpoint"
	"github.com/sansrtc/sfu/internal/testutil"
	"github.com/sansrtc/sfu/track"
)

func events(n *Node) []string {
	var out []string
	for {
		e, ok := n.pollEvent()
		if !ok {
			return out
		}
		out = append(out, fmt.Sprintf("%d %T %v", e.Endpoint&0xffff, e.Event, e.Event))
	}
}

func TestMisuseGivesClearErrors(t *testing.T) {
	now := testutil.Epoch
	n, _ := New(Config{Seed: 3})
	a, _ := n.CreateEndpoint(now, EndpointConfig{PeerID: "a"})
	b, _ := n.CreateEndpoint(now, EndpointConfig{PeerID: "b"})
	vp8 := endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"create without peer id", second(n.CreateEndpoint(now, EndpointConfig{})), nil},
		{"unknown handle", n.Join(now, Handle(12345), "r"), ErrUnknownEndpoint},
		{"zero handle", n.HandleRTP(now, 0, []byte{0x80}), ErrUnknownEndpoint},
		{"publish before join", n.Publish(now, a, vp8), ErrNotInRoom},
		{"join", n.Join(now, a, "r"), nil},
		{"join twice", n.Join(now, a, "r"), ErrAlreadyInRoom},
		{"empty room name", n.Join(now, b, ""), cluster.ErrInvalidRoomID},
		{"publish", n.Publish(now, a, vp8), nil},
		{"duplicate publish", n.Publish(now, a, vp8), endpoint.ErrDuplicateTrack},
		{"no codec", n.Publish(now, a, endpoint.TrackOptions{Name: "x"}), endpoint.ErrInvalidTrack},
		{"join b", n.Join(now, b, "r"), nil},
		{"subscribe to missing track", second(n.Subscribe(now, b, "a", "nope", endpoint.SubscribeOptions{})), cluster.ErrNoSuchTrack},
		{"subscribe to missing peer", second(n.Subscribe(now, b, "zed", "cam", endpoint.SubscribeOptions{})), cluster.ErrNoSuchTrack},
		{"subscribe", second(n.Subscribe(now, b, "a", "cam", endpoint.SubscribeOptions{})), nil},
		{"subscribe twice", second(n.Subscribe(now, b, "a", "cam", endpoint.SubscribeOptions{})), endpoint.ErrAlreadySubscribed},
		{"unsubscribe unknown", n.Unsubscribe(now, b, "a", "nope"), endpoint.ErrNotSubscribed},
		{"pause unknown", n.SetPaused(now, b, "a", "nope", true), endpoint.ErrNotSubscribed},
		{"unpublish unknown", n.Unpublish(now, a, "nope"), endpoint.ErrNoSuchTrack},
		{"close", n.CloseEndpoint(now, a), nil},
		{"close twice", n.CloseEndpoint(now, a), ErrUnknownEndpoint},
		{"rtp to closed", n.HandleRTP(now, a, make([]byte, 20)), ErrUnknownEndpoint},
	}
	for _, c := range cases {
		if c.name == "create without peer id" {
			if c.err == nil {
				t.Errorf("%s: no error", c.name)
			}
			continue
		}
		if (c.want == nil) != (c.err == nil) || (c.want != nil && !errors.Is(c.err, c.want)) {
			t.Errorf("%s: err = %v, want %v", c.name, c.err, c.want)
		}
	}
	if n.Stats().UnknownEndpoint != 2 {
		t.Errorf("UnknownEndpoint = %d, want 2", n.Stats().UnknownEndpoint)
	}
}

func second[T any](_ T, err error) error { return err }

func TestMalformedPacketsAreCountedDrops(t *testing.T) {
	node, pub := fanoutNode(t, 3)
	now := testutil.Epoch
	bad := [][]byte{
		nil,
		{0x80},
		make([]byte, 11),
		{0x40, 96, 0, 1, 0, 0, 0, 1, 0, 0, 4, 87},                   // version 1
		{0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 4, 87, 0xbe, 0xde, 0, 9}, // extension overruns
		{0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 4, 87, 9},                // padding overruns
	}
	for _, b := range bad {
		if err := node.HandleRTP(now, pub, b); err != nil {
			t.Fatalf("malformed packet returned %v; want a counted drop", err)
		}
		if err := node.HandleRTCP(now, pub, b); err != nil {
			t.Fatalf("malformed RTCP returned %v", err)
		}
	}
	// Unknown SSRC.
	buf := make([]byte, 1500)
	_ = node.HandleRTP(now, pub, vp8Packet(buf, 999, 1, 1, 1, true, 100))
	if drain(node) != 0 {
		t.Fatal("malformed input produced output")
	}
	ep, _ := node.Endpoint(pub)
	st := ep.Stats()
	if st.Malformed < uint64(len(bad)) || st.UnknownSSRC != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The stream goes on for everyone.
	_ = node.HandleRTP(now, pub, vp8Packet(buf, 1111, 2, 4000, 2, false, 100))
	if got := drain(node); got != 3 {
		t.Fatalf("after bad input, %d subscribers got the next packet, want 3", got)
	}
}

func TestEventsAndAutoSubscribe(t *testing.T) {
	now := testutil.Epoch
	n, _ := New(Config{Seed: 4})
	a, _ := n.CreateEndpoint(now, EndpointConfig{PeerID: "alice"})
	v, _ := n.CreateEndpoint(now, EndpointConfig{PeerID: "viewer", AutoSubscribe: true})
	must(t, n.Join(now, a, "r"))
	must(t, n.Publish(now, a, endpoint.TrackOptions{Name: "mic", Codec: track.CodecOpus}))
	must(t, n.Join(now, v, "r"))
	got := events(n)
	want := []string{
		"2 endpoint.PeerJoined {alice}",
		"1 endpoint.PeerJoined {viewer}",
		"2 endpoint.TrackPublished {{alice mic audio opus 0  1}}",
	}
	if len(got) != 4 || !reflect.DeepEqual(got[:3], want) {
		t.Fatalf("events:\n%q\nwant prefix\n%q and a subscription", got, want)
	}
	ev, _ := n.Endpoint(v)
	if k := ev.Subscriptions(); len(k) != 1 || k[0] != (endpoint.SubKey{Peer: "alice", Track: "mic"}) {
		t.Fatalf("auto-subscriptions %v", k)
	}
	// The publisher leaves: the viewer is told, and its subscription waits.
	must(t, n.Leave(now, a))
	got = events(n)
	if len(got) != 3 || got[0] != "2 endpoint.TrackUnpublished {{alice mic audio opus 0  1}}" ||
		!contains(got, "source-gone") || got[2] != "2 endpoint.PeerLeft {alice}" {
		t.Fatalf("events on leave: %q", got)
	}
	// It comes back within the grace: the same subscription resumes.
	now = now.Add(5 * time.Second)
	must(t, n.Join(now, a, "r"))
	must(t, n.Publish(now, a, endpoint.TrackOptions{Name: "mic", Codec: track.CodecOpus}))
	got = events(n)
	if !contains(got, "active") || len(ev.Subscriptions()) != 1 {
		t.Fatalf("events on return: %q", got)
	}
	// It leaves for good: after the grace the subscription ends.
	must(t, n.Leave(now, a))
	n.HandleTimeout(now) // the viewer's allocation, due since it subscribed
	events(n)
	at, ok := n.PollTimeout()
	if !ok || !at.Equal(now.Add(cluster.DefaultSourceGrace)) {
		t.Fatalf("PollTimeout = %v %v", at, ok)
	}
	n.HandleTimeout(at)
	if got := events(n); len(got) != 1 || !contains(got, "ended") {
		t.Fatalf("events at grace end: %q", got)
	}
	if len(ev.Subscriptions()) != 0 {
		t.Fatal("ended subscription still held")
	}
	must(t, n.CloseEndpoint(now, a))
	must(t, n.CloseEndpoint(now, v))
	if c := n.Counts(); c != (Counts{}) {
		t.Fatalf("counts after everyone left: %+v", c)
	}
}

func contains(ss []string, sub string) bool {
	for _, s := range ss {
		if len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) {
			return true
		}
	}
	return false
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestNACKAndPLIFromSubscriber(t *testing.T) {
	node, pub := fanoutNode(t, 1)
	now := testutil.Epoch
	buf := make([]byte, 1500)
	var sent []Transmit
	for i := 0; i < 5; i++ {
		_ = node.HandleRTP(now, pub, vp8Packet(buf, 1111, uint16(2+i), uint32(4000+3000*i), uint16(2+i), false, 100))
		for {
			tr, ok := node.pollTransmit()
			if !ok {
				break
			}
			sent = append(sent, tr)
		}
	}
	sub := Handle(sent[0].Owner)
	rtcp := track.AppendNACK(nil, 1, sent[0].SSRC, []uint16{sent[1].SequenceNumber, sent[3].SequenceNumber})
	rtcp = track.AppendPLI(rtcp, 1, sent[0].SSRC)
	// Past the keyframe-request rate limit (the subscription asked at 0).
	must(t, node.HandleRTCP(now.Add(track.DefaultKeyframeMinInterval), sub, rtcp))
	var rtx []Transmit
	for {
		tr, ok := node.pollTransmit()
		if !ok {
			break
		}
		rtx = append(rtx, tr)
	}
	if len(rtx) != 2 || !rtx[0].Retransmit || rtx[0].SequenceNumber != sent[1].SequenceNumber || rtx[1].SequenceNumber != sent[3].SequenceNumber {
		t.Fatalf("retransmissions %+v", rtx)
	}
	h, pkt, ok := node.pollRTCP(make([]byte, 64))
	if !ok || h != pub {
		t.Fatalf("no PLI to the publisher (%v %v)", h, ok)
	}
	p, _, err := track.ReadRTCP(pkt)
	if err != nil || p.Type != track.RTCPTypePSFB || p.Count != track.RTCPFormatPLI || p.MediaSSRC() != 1111 {
		t.Fatalf("PLI %x: %v", pkt, err)
	}
}

// ExampleNode shows the run loop of a driver around a Node.
func ExampleNode() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	node, _ := New(Config{Seed: 1})

	alice, _ := node.CreateEndpoint(now, EndpointConfig{PeerID: "alice"})
	bob, _ := node.CreateEndpoint(now, EndpointConfig{PeerID: "bob", AutoSubscribe: true})
	_ = node.Join(now, alice, "room")
	_ = node.Join(now, bob, "room")
	_ = node.Publish(now, alice, endpoint.TrackOptions{Name: "mic", Codec: track.CodecOpus,
		Encodings: []track.Encoding{{SSRC: 42}}})

	// 1. Feed an input: a decrypted RTP packet from alice.
	pkt := []byte{0x80, 111, 0, 1, 0, 0, 3, 192, 0, 0, 0, 42, 0xfc, 0xff, 0xfe}
	_ = node.HandleRTP(now, alice, pkt)

	// 2. Drain every output.
	send, rtcp := make([]byte, 1500), make([]byte, 64)
	for o, ok := node.Poll(rtcp); ok; o, ok = node.Poll(rtcp) {
		switch o.Kind {
		case OutputRTP:
			n, _ := o.RTP.MarshalTo(send, nil) // encrypt send[:n] and send it to o.Endpoint's peer
			fmt.Printf("to %s: %d bytes, seq continues from a random start\n", peerOf(node, o.Endpoint), n)
		case OutputRTCP:
			// send o.Data to o.Endpoint's peer
		case OutputEvent:
			fmt.Printf("tell %s: %T\n", peerOf(node, o.Endpoint), o.Event)
		}
	}

	// 5. Sleep until the next deadline or input, then HandleTimeout.
	if at, ok := node.PollTimeout(); ok {
		node.HandleTimeout(at)
	}
	// Output:
	// to bob: 15 bytes, seq continues from a random start
	// tell bob: endpoint.PeerJoined
	// tell alice: endpoint.PeerJoined
	// tell bob: endpoint.TrackPublished
	// tell bob: endpoint.SubscriptionChanged
}

func peerOf(n *Node, h Handle) string {
	ep, _ := n.Endpoint(h)
	return ep.PeerID()
}

// TestSenderReportsAreTranslated: a publisher's sender report reaches each
// subscriber with the RTP time rewritten into that subscriber's timestamps,
// so a player can synchronise audio and video.
func TestSenderReportsAreTranslated(t *testing.T) {
	node, pub := fanoutNode(t, 2)
	now := testutil.Epoch
	buf := make([]byte, 1500)
	_ = node.HandleRTP(now, pub, vp8Packet(buf, 1111, 2, 4000, 2, false, 100))
	offsets := map[Handle]uint32{} // out ts - source ts, per subscriber
	ssrcs := map[Handle]uint32{}
	for tr, ok := node.pollTransmit(); ok; tr, ok = node.pollTransmit() {
		offsets[Handle(tr.Owner)] = tr.Timestamp - 4000
		ssrcs[Handle(tr.Owner)] = tr.SSRC
	}
	const ntp = 0xe1234567_89abcdef
	must(t, node.HandleRTCP(now, pub, track.AppendSenderReport(nil, 1111, ntp, 7000, 10, 1000, nil)))
	got := 0
	for h, pkt, ok := node.pollRTCP(make([]byte, 64)); ok; h, pkt, ok = node.pollRTCP(make([]byte, 64)) {
		p, _, err := track.ReadRTCP(pkt)
		if err != nil {
			t.Fatal(err)
		}
		ssrc, gotNTP, rtpTime, packets, _, ok := p.SenderReport()
		if !ok || ssrc != ssrcs[h] || gotNTP != ntp || rtpTime != 7000+offsets[h] || packets != 2 {
			t.Fatalf("SR to %x: ssrc %x ntp %x rtp %d packets %d; want ssrc %x rtp %d", h, ssrc, gotNTP, rtpTime, packets, ssrcs[h], 7000+offsets[h])
		}
		got++
	}
	if got != 2 {
		t.Fatalf("%d sender reports, want one per subscriber", got)
	}
}

// TestCloseReleasesTimersAndQueues: closing endpoints whose tracks still
// have timers (a keyframe request awaiting its retry) and queued feedback
// leaves nothing behind, even before the driver polls again.
func TestCloseReleasesTimersAndQueues(t *testing.T) {
	now := testutil.Epoch
	n, _ := New(Config{Seed: 5})
	a, _ := n.CreateEndpoint(now, EndpointConfig{PeerID: "alice"})
	v, _ := n.CreateEndpoint(now, EndpointConfig{PeerID: "viewer"})
	must(t, n.Join(now, a, "r"))
	must(t, n.Join(now, v, "r"))
	must(t, n.Publish(now, a, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8, Encodings: []track.Encoding{{SSRC: 7}}}))
	buf := make([]byte, 1500)
	must(t, n.HandleRTP(now, a, vp8Packet(buf, 7, 1, 90000, 1, false, 200)))
	if _, err := n.Subscribe(now, v, "alice", "cam", endpoint.SubscribeOptions{Spatial: -1, Temporal: -1}); err != nil {
		t.Fatal(err)
	}
	if c := n.Counts(); c.Timers == 0 || c.QueuedFeedback == 0 {
		t.Fatalf("the subscription asked for no keyframe: %+v", c)
	}
	must(t, n.HandleRTP(now, a, vp8Packet(buf, 7, 2, 93000, 2, true, 200)))
	if c := n.Counts(); c.QueuedTransmits == 0 {
		t.Fatalf("the keyframe was not forwarded: %+v", c)
	}
	must(t, n.CloseEndpoint(now, v))
	if _, ok := n.pollTransmit(); ok {
		t.Fatal("a transmit for a closed endpoint was polled")
	}
	for {
		e, ok := n.pollEvent()
		if !ok {
			break
		}
		if e.Endpoint == v {
			t.Fatalf("an event for a closed endpoint was polled: %+v", e)
		}
	}
	must(t, n.CloseEndpoint(now, a))
	if c := n.Counts(); c != (Counts{}) {
		t.Fatalf("counts after everyone left: %+v", c)
	}
}
