// Package sfu is an embeddable selective forwarding unit (SFU) for
// real-time audio and video, with a sans-IO core.
//
// The core is a set of pure state machines that take timestamped inputs
// and return output actions; thin drivers pump sockets and HTTP into them.
// That makes the SFU easy to embed (mount its handlers on your own mux),
// fast (the forwarding path allocates nothing per packet), and testable: a
// whole node, or a cluster of them, runs deterministically in virtual time
// from a seed.
//
// # Packages
//
//	track/      RTP packet view, codec metadata (Opus, VP8, VP9, H264, AV1),
//	            RemoteTrack (media in: history, keyframe requests) and
//	            LocalTrack (media out: layer choice, seq/ts/picture-id rewriting)
//	endpoint/   one machine per connected peer: its tracks, RTP/RTCP demux
//	cluster/    rooms: membership, track directory, local fan-out
//	core/       core.Node, the one sans-IO machine a driver runs
//	sdn/        the overlay network between nodes (routing, pub/sub, maps)
//	transport/  I/O drivers: UDP, WebRTC, WHIP/WHEP, QUIC links
//	internal/testutil/  deterministic simulator, synthetic media, checkers
//
// # Embedding the core
//
//	node, _ := core.New(core.Config{Seed: seed})
//	h, _ := node.CreateEndpoint(now, core.EndpointConfig{PeerID: "alice"})
//	_ = node.Join(now, h, "room")
//	_ = node.Publish(now, h, endpoint.TrackOptions{Name: "cam", Codec: track.CodecVP8})
//	_ = node.HandleRTP(now, h, decryptedRTP)
//	for o, ok := node.Poll(rtcpBuf); ok; o, ok = node.Poll(rtcpBuf) {
//		if o.Kind == core.OutputRTP {
//			n, _ := o.RTP.MarshalTo(sendBuf, nil) // then encrypt and send to o.Endpoint
//		}
//	}
//	deadline, _ := node.PollTimeout() // sleep until then or the next input
//
// See package core for the run-loop contract.
package sfu
