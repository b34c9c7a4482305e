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
// Like every machine of the core it is pure: inputs carry their time, it
// never blocks, and malformed input is counted in Stats and dropped.
package endpoint
