// Package track holds the per-track machines of the media core and the
// wire formats they read and write.
//
// A Packet is a zero-allocation view of one RTP packet (its slices alias
// the datagram); ParseMeta adds the codec metadata forwarding needs:
// keyframe, frame start, temporal and spatial layer, VP8 picture id and
// TL0PICIDX, for Opus, VP8, VP9, H264 and AV1. rtcp.go walks compound RTCP
// in place and appends the packets the SFU sends (PLI, FIR, NACK, REMB,
// SR, RR). Both are our own rather than pion/rtp and pion/rtcp, whose
// Unmarshal allocates per packet; each parser has a fuzz target.
//
// RemoteTrack is one published track: one or more simulcast encodings,
// each with a bounded history (a byte ring plus a slot ring indexed by
// extended sequence number, allocated once, on the encoding's first
// packet). It coalesces every subscriber's keyframe request into one PLI
// to the publisher, at most one per KeyframeMinInterval and repeated every
// KeyframeRetry until a keyframe arrives; with NACK on, it NACKs packets
// lost on the way in, at once and then every NACKRetry up to NACKTries
// times, tracking them in a fixed array.
//
// LocalTrack is one subscription. It chooses the encoding (the highest
// active one up to the target, switching on a keyframe) and the temporal
// layers, and rewrites SSRC, sequence number, timestamp, picture id and
// TL0PICIDX so the subscriber sees one continuous stream across encoding
// switches, source changes (a publisher re-joining, a viewer moving to
// another publisher) and dropped layers: a dropped packet closes its
// sequence gap, a lost one keeps its number reserved so a late or
// retransmitted packet is forwarded in its place. It answers the
// subscriber's NACKs from the source's history, mapping its own sequence
// numbers back, with a per-packet limit so NACKs cannot become a flood.
//
// The machines share an Output: queues of Transmits (a header to write
// and a payload aliasing a history) and Feedback, and the tracks'
// deadlines. Fan-out writes straight into it, so forwarding a packet to
// N subscribers is N appends to reused slices and allocates nothing.
//
// The deadline is kept incrementally: a driver asks for it after every
// input, and walking every track with a NACK or keyframe timer cost
// about 9 µs per packet with 1000 of them (BenchmarkPollTimeout). Each
// RemoteTrack keeps its own deadline, recomputed only where its timer
// state changes (a loss, a repair, a keyframe or a request for one, a
// resync, a timeout, a close), so a packet in order on a track with a
// timer running pays nothing for it. A moved deadline is filed in the
// Output's min-heap with lazy deletion (an entry whose track has moved
// on is skipped when it reaches the top, and the heap is rebuilt when
// stale entries outnumber live ones), so PollTimeout is amortized
// O(log n): about 0.1-0.25 µs in the same benchmark. HandleTimeout runs
// only the tracks that are due. TestOutputDeadlineMatchesTracks plays
// random scenarios on three copies of the same tracks and holds the heap
// to an oracle that runs exactly the due tracks (same feedback, same
// stats, deadline equal to the brute-force minimum after every event) and
// to the old walk over every track (same NACKs and PLIs).
//
// A publisher's sequence numbering can restart (an encoder restarted, a
// gateway, ffmpeg relaunched): three consecutive packets that fit nowhere
// in the current numbering — too old for the history, clashing with a
// stored packet of another timestamp, or ahead by more than a repairable
// gap — re-anchor it past everything the history holds, without NACKing
// the jump, and each LocalTrack forwarding that encoding resumes at the
// next keyframe (which it requests) with its outgoing numbering
// continuous. Fewer such packets are strays, dropped and counted.
//
// Everything here is sans-IO: inputs carry their time, nothing blocks,
// reads a clock or starts a goroutine, and bad input is a counted drop.
package track
