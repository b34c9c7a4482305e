// Package webrtc is the per-peer WebRTC transport of the SFU: SDP
// negotiation, ICE-lite, DTLS and SRTP, each usable on its own and all
// composed by Session.
//
// # Why these pieces
//
// A server with a public address does not need full ICE: it answers as an
// ICE-lite agent (RFC 8445 section 2.5), so it never sends connectivity
// checks, only answers the peer's. It always takes the DTLS server role
// (a=setup:passive) and insists on BUNDLE and rtcp-mux, so one peer is one
// 5-tuple on one shared UDP port (see package transport/udp), demultiplexed
// by remote address and, for new addresses, by the ICE ufrag in STUN.
//
// # What is pure and what does I/O
//
//   - Negotiate is a pure function from an offer and a Config to an answer
//     and a Negotiated description (mids, kinds, directions, codecs, RTX,
//     header-extension ids, remote SSRCs and rids, ICE credentials and
//     fingerprint) that the caller turns into core publish/subscribe
//     calls. A publisher's m-line is answered with one codec; a viewer's
//     with every supported codec the offer has (Media.Codecs), so the
//     server can forward whichever codec each publisher uses. Its errors wrap ErrMalformed (HTTP 400) or ErrUnsupported
//     (HTTP 422).
//   - ICELite is a pure, allocation-free machine: HandleSTUN(now, from,
//     msg, out) authenticates a Binding request and writes the response
//     into a caller buffer; Selected, Expired and PollTimeout expose the
//     nominated path and consent freshness (ConsentTimeout, 30 s, or
//     SessionConfig.ConsentTimeout to drop vanished peers sooner).
//   - Session does I/O only through what it is given: it implements
//     udp.Handler, so the demux feeds it datagrams and a udp.Writer to answer
//     on. The DTLS handshake (pion/dtls) runs on its own goroutine over an
//     in-memory net.PacketConn fed from HandleDatagram and writing to the
//     selected path; it checks the peer certificate against the SDP
//     fingerprint, then derives SRTP keys (AEAD_AES_128_GCM preferred,
//     AES_128_CM_HMAC_SHA1_80 otherwise). After that, SRTP and SRTCP are
//     decrypted in place on the read goroutine and handed to OnRTP/OnRTCP
//     (borrowed for the call), and outgoing packets are encrypted into
//     caller buffers (EncryptRTP/EncryptRTCP) or sent directly
//     (WriteRTP/WriteRTCP). SRTP and SRTCP are pion/srtp's (since v3.1.3
//     neither allocates per packet; TestSRTCPDoesNotAllocate holds it).
//     STUN answers are written outside the lock that
//     Expired and Stats take, so a Writer that blocks never stalls the
//     driver's consent check. Once closed (or failed) a session drops all
//     input: it stops answering consent checks even on a path the demux
//     still routes to it.
//
// # ICE restart
//
// A WHIP/WHEP PATCH with an application/trickle-ice-sdpfrag body (RFC 9725
// section 4.3) whose credentials differ from the session's restarts ICE:
// ParseICEFragment reads it, Session.RestartICE swaps in fresh local
// credentials and the peer's new ufrag while keeping DTLS, SRTP and the
// current path, the new local ufrag is registered with the demux next to
// the old one, and AnswerFragment is the response body.
//
// # Wiring
//
//	cert, _ := webrtc.NewCertificate()           // once per server
//	mux, _ := udp.Listen(udp.Config{})           // once per server
//	go mux.Serve(ctx)
//	ufrag, pwd := webrtc.NewICECredentials()     // per peer
//	neg, err := webrtc.Negotiate(offer, &webrtc.Config{ICEUfrag: ufrag,
//		ICEPwd: pwd, Fingerprint: cert.Fingerprint(),
//		Candidates: []webrtc.Candidate{{Addr: mux.LocalAddr()}}})
//	sess, _ := webrtc.NewSession(now, webrtc.SessionConfig{Certificate: cert,
//		LocalUfrag: ufrag, LocalPwd: pwd, RemoteUfrag: neg.RemoteUfrag,
//		RemoteFingerprint: neg.RemoteFingerprint, OnRTP: toCore})
//	mux.Register(ufrag, sess)
//	// send neg.Answer; close and Unregister when sess.Expired(now).
package webrtc
