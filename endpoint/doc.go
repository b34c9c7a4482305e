// Package endpoint is the machine for one connected peer: the tracks it
// publishes (RemoteTracks), the tracks it receives (LocalTracks), and the
// demultiplexing of its decrypted RTP and RTCP onto them.
//
// An Endpoint knows nothing of rooms or other peers: core.Node joins it to
// a room in package cluster, which fans its RemoteTracks' packets out to
// other endpoints' LocalTracks. The endpoint's part of a packet's way is:
// parse the RTP header view (no allocation), find the track by SSRC — or,
// for an SSRC the signalling did not declare, by the MID and RID header
// extensions or a unique payload type, binding the SSRC for the packets
// that follow — and hand it to the RemoteTrack, which stores it in its
// history. Subscriber RTCP (NACK, PLI, FIR) goes to the LocalTrack the
// media SSRC names: NACKs are answered from the source's history, keyframe
// requests are coalesced and rate-limited by the source.
//
// On the way out, every packet for the peer passes Stamp, which writes
// the header extensions it negotiated: a transport-wide sequence number
// from one sequence space per peer (the endpoint owns it, because it is
// what the peer's transport-cc feedback describes), abs-send-time, and
// the audio level on audio. Retransmissions go as RTX on their own SSRC
// where the peer negotiated it. The peer's receiver reports reach its
// LocalTracks (loss, jitter, and the RTT from the sender report each
// echoes); its transport-cc feedback is parsed and counted, and its REMB
// is the bandwidth estimate while there is no send-side one.
//
// Allocation: the endpoint shares its bandwidth estimate among its video
// subscriptions (Allocate; audio is taken out first). Each gets its
// minimum layer in priority order, or is paused and the peer told
// (SubscriptionLayers) rather than degraded below it; then, a priority
// level at a time, subscriptions climb layer by layer while the budget
// lasts, equal priorities in turns. Climbing above what a subscription
// has needs 15 % headroom and keeping it none, so a layer does not flap
// on a wavering estimate, and a fall is acted on at once. The choice caps
// the LocalTrack (SetAllocation) below the peer's own choice
// (SetTargetLayers, which stays what relays pull across the cluster).
// Layers are priced by the bitrates the RemoteTrack measures per encoding
// and temporal layer; an encoding not arriving here (not yet pulled by a
// relay, or not yet measured) at a nominal 150 k / 500 k / 1.5 M / 3 Mbps.
// Without an estimate nothing is capped. The allocator runs when
// something changes and every 500 ms while there is an estimate, on the
// endpoint's own deadline (PollTimeout), which core.Node honours.
//
// Like every machine of the core it is pure: inputs carry their time, it
// never blocks, and malformed input is counted in Stats and dropped.
package endpoint
