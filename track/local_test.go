package track_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/sansrtc/sfu/track"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// vp8 builds a one-packet VP8 frame: 15-bit picture id, TL0PICIDX, TID.
type vp8 struct {
	ssrc    uint32
	seq     uint16
	ts      uint32
	pid     uint16
	tl0     uint8
	tid     uint8
	sync    bool
	key     bool
	payload byte // fills the frame body, to tell packets apart
}

func (v vp8) bytes() []byte {
	b := make([]byte, 12+6+10+20)
	b[0], b[1] = 0x80, 96|0x80
	binary.BigEndian.PutUint16(b[2:], v.seq)
	binary.BigEndian.PutUint32(b[4:], v.ts)
	binary.BigEndian.PutUint32(b[8:], v.ssrc)
	d := b[12:]
	d[0] = 0x90
	d[1] = 0xe0 // I, L, T
	d[2] = 0x80 | byte(v.pid>>8)&0x7f
	d[3] = byte(v.pid)
	d[4] = v.tl0
	d[5] = v.tid << 6
	if v.sync {
		d[5] |= 0x20
	}
	f := d[6:]
	if v.key {
		f[0], f[1], f[2] = 0x00, 0, 0
		f[3], f[4], f[5] = 0x9d, 0x01, 0x2a
		f[6], f[7], f[8], f[9] = 0x80, 0x02, 0xe0, 0x01
	} else {
		f[0] = 0x01
	}
	for i := 10; i < len(f); i++ {
		f[i] = v.payload
	}
	return b
}

// rig is a RemoteTrack feeding one LocalTrack.
type rig struct {
	t   *testing.T
	out track.Output
	rt  *track.RemoteTrack
	lt  *track.LocalTrack
}

func newRig(t *testing.T, encs ...track.Encoding) *rig {
	r := &rig{t: t}
	if len(encs) == 0 {
		encs = []track.Encoding{{SSRC: 100}}
	}
	r.rt = track.NewRemoteTrack(track.RemoteConfig{Owner: 7, Info: track.Info{Peer: "p", Name: "cam", Codec: track.CodecVP8}, Encodings: encs}, &r.out)
	r.lt = track.NewLocalTrack(track.LocalConfig{Owner: 9, SSRC: 555, InitialSeq: 65530, InitialTimestamp: 4294967000, InitialPictureID: 32760})
	return r
}

// in feeds a packet of encoding enc and returns what the LocalTrack sent.
func (r *rig) in(now time.Time, enc int, v vp8) []track.Transmit {
	r.t.Helper()
	var p track.Packet
	if err := p.Unmarshal(v.bytes()); err != nil {
		r.t.Fatal(err)
	}
	stored, err := r.rt.HandleRTP(now, &p, enc)
	if err != nil {
		r.t.Fatalf("HandleRTP: %v", err)
	}
	r.lt.Forward(now, stored, &r.out)
	return r.poll()
}

func (r *rig) poll() []track.Transmit {
	var ts []track.Transmit
	for {
		tr, ok := r.out.PollTransmit()
		if !ok {
			return ts
		}
		ts = append(ts, tr)
	}
}

func (r *rig) feedback() []track.Feedback {
	var fs []track.Feedback
	for {
		f, ok := r.out.PollFeedback()
		if !ok {
			return fs
		}
		fs = append(fs, f)
	}
}

// wire marshals a transmit and parses it back, as a subscriber sees it.
func wire(t *testing.T, tr track.Transmit) (track.Packet, []byte) {
	t.Helper()
	buf := make([]byte, 1500)
	n, err := tr.MarshalTo(buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	var p track.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if err := p.ParseMeta(track.CodecVP8); err != nil {
		t.Fatal(err)
	}
	return p, buf[:n]
}

func TestLocalStartsOnKeyframeAndAsksForOne(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	fb := r.feedback()
	if len(fb) != 1 || fb[0].Type != track.FeedbackPLI || fb[0].SSRC != 100 || fb[0].Owner != 7 {
		t.Fatalf("feedback on attach = %+v, want one PLI for ssrc 100 owner 7", fb)
	}
	if got := r.in(t0, 0, vp8{ssrc: 100, seq: 10, ts: 1000, pid: 5}); len(got) != 0 {
		t.Fatalf("delta frame before a keyframe was forwarded")
	}
	got := r.in(t0, 0, vp8{ssrc: 100, seq: 11, ts: 4000, pid: 6, key: true})
	if len(got) != 1 || !got[0].Keyframe {
		t.Fatalf("keyframe not forwarded: %+v", got)
	}
	p, _ := wire(t, got[0])
	if p.SSRC != 555 || p.SequenceNumber != 65530 || p.Timestamp != 4294967000 || p.Meta.PictureID != 32760 || p.PayloadType != 96 {
		t.Fatalf("first packet header = ssrc %d seq %d ts %d pid %d pt %d", p.SSRC, p.SequenceNumber, p.Timestamp, p.Meta.PictureID, p.PayloadType)
	}
	if r.lt.State() != track.LocalForwarding {
		t.Fatalf("state %v", r.lt.State())
	}
	// Sequence numbers, timestamps and picture ids wrap continuously.
	var last track.Packet = p
	for i := 0; i < 20; i++ {
		got := r.in(t0, 0, vp8{ssrc: 100, seq: uint16(12 + i), ts: uint32(7000 + 3000*i), pid: uint16(7 + i)})
		q, _ := wire(t, got[0])
		if q.SequenceNumber != last.SequenceNumber+1 || q.Timestamp-last.Timestamp != 3000 || q.Meta.PictureID != (last.Meta.PictureID+1)&0x7fff {
			t.Fatalf("step %d: seq %d→%d ts %d→%d pid %d→%d", i, last.SequenceNumber, q.SequenceNumber, last.Timestamp, q.Timestamp, last.Meta.PictureID, q.Meta.PictureID)
		}
		last = q
	}
}

func TestLocalDropsTemporalLayersWithoutGaps(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	r.lt.SetTargetLayers(t0, 0, 0) // base layer only
	pattern := []uint8{0, 2, 1, 2}
	var outs []track.Packet
	tl0 := uint8(0)
	for i := 0; i < 40; i++ {
		tid := pattern[i%4]
		if tid == 0 {
			tl0++
		}
		got := r.in(t0, 0, vp8{ssrc: 100, seq: uint16(i), ts: uint32(3000 * i), pid: uint16(i), tl0: tl0, tid: tid, key: i == 0})
		for _, g := range got {
			p, _ := wire(t, g)
			outs = append(outs, p)
		}
	}
	if len(outs) != 10 {
		t.Fatalf("forwarded %d packets, want the 10 base-layer ones", len(outs))
	}
	for i := 1; i < len(outs); i++ {
		a, b := outs[i-1], outs[i]
		if b.SequenceNumber != a.SequenceNumber+1 || b.Meta.PictureID != (a.Meta.PictureID+1)&0x7fff || b.Meta.TL0PICIDX != int16(uint8(a.Meta.TL0PICIDX)+1) {
			t.Fatalf("packet %d: seq %d→%d pid %d→%d tl0 %d→%d", i, a.SequenceNumber, b.SequenceNumber, a.Meta.PictureID, b.Meta.PictureID, a.Meta.TL0PICIDX, b.Meta.TL0PICIDX)
		}
		if b.Meta.Temporal != 0 {
			t.Fatalf("forwarded temporal layer %d", b.Meta.Temporal)
		}
	}
	if s := r.lt.Stats(); s.DroppedLayer != 30 {
		t.Fatalf("DroppedLayer = %d, want 30", s.DroppedLayer)
	}
	// Going up again waits for a switching point (a TL0 frame or Y bit).
	r.lt.SetTargetLayers(t0, 0, 2)
	got := r.in(t0, 0, vp8{ssrc: 100, seq: 40, ts: 120000, pid: 40, tl0: tl0, tid: 2})
	if len(got) != 0 {
		t.Fatalf("TL2 frame forwarded before a switching point")
	}
	tl0++
	if got := r.in(t0, 0, vp8{ssrc: 100, seq: 41, ts: 123000, pid: 41, tl0: tl0, tid: 0}); len(got) != 1 {
		t.Fatalf("TL0 frame not forwarded")
	}
	if got := r.in(t0, 0, vp8{ssrc: 100, seq: 42, ts: 126000, pid: 42, tl0: tl0, tid: 2}); len(got) != 1 {
		t.Fatalf("TL2 frame not forwarded after the switch up")
	}
}

func TestLocalSourceChangeIsContinuous(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	var last track.Packet
	now := t0
	for i := 0; i < 10; i++ {
		now = now.Add(33 * time.Millisecond)
		got := r.in(now, 0, vp8{ssrc: 100, seq: uint16(5000 + i), ts: uint32(90000 + 3000*i), pid: uint16(100 + i), tl0: uint8(i), key: i == 0})
		last, _ = wire(t, got[0])
	}
	// The publisher re-joins: a new RemoteTrack with new numbering.
	r.rt.Close()
	r.lt.SetSource(now, nil)
	if r.lt.State() != track.LocalNoSource {
		t.Fatalf("state %v after detach", r.lt.State())
	}
	r.rt = track.NewRemoteTrack(track.RemoteConfig{Owner: 8, Info: track.Info{Peer: "p", Name: "cam", Codec: track.CodecVP8}, Encodings: []track.Encoding{{SSRC: 200}}}, &r.out)
	now = now.Add(2 * time.Second)
	r.lt.SetSource(now, r.rt)
	if fb := r.feedback(); len(fb) == 0 || fb[len(fb)-1].SSRC != 200 {
		t.Fatalf("no keyframe request to the new source: %+v", fb)
	}
	if got := r.in(now, 0, vp8{ssrc: 200, seq: 7, ts: 5, pid: 3, tl0: 9}); len(got) != 0 {
		t.Fatal("delta from the new source forwarded before its keyframe")
	}
	now = now.Add(10 * time.Millisecond)
	got := r.in(now, 0, vp8{ssrc: 200, seq: 8, ts: 3005, pid: 4, tl0: 10, key: true})
	if len(got) != 1 {
		t.Fatal("keyframe from the new source not forwarded")
	}
	p, _ := wire(t, got[0])
	if p.SSRC != last.SSRC || p.SequenceNumber != last.SequenceNumber+1 {
		t.Fatalf("seq jumped %d → %d across the source change", last.SequenceNumber, p.SequenceNumber)
	}
	if d := p.Timestamp - last.Timestamp; int32(d) <= 0 || d < 90000*2 || d > 90000*3 {
		t.Fatalf("timestamp advanced by %d across a 2 s gap, want about %d", d, 2*90000)
	}
	if p.Meta.PictureID != (last.Meta.PictureID+1)&0x7fff || p.Meta.TL0PICIDX != int16(uint8(last.Meta.TL0PICIDX)+1) {
		t.Fatalf("picture id %d→%d, tl0 %d→%d", last.Meta.PictureID, p.Meta.PictureID, last.Meta.TL0PICIDX, p.Meta.TL0PICIDX)
	}
}

func TestLocalSimulcastSwitch(t *testing.T) {
	r := newRig(t, track.Encoding{RID: "q", SSRC: 1}, track.Encoding{RID: "h", SSRC: 2}, track.Encoding{RID: "f", SSRC: 3})
	r.lt.SetTargetLayers(t0, 0, -1)
	r.lt.SetSource(t0, r.rt)
	if fb := r.feedback(); len(fb) != 1 || fb[0].SSRC != 1 {
		t.Fatalf("feedback %+v, want a PLI for the low encoding", fb)
	}
	now := t0
	var outs []track.Packet
	for i := 0; i < 30; i++ {
		now = now.Add(33 * time.Millisecond)
		if i == 10 {
			r.lt.SetTargetLayers(now, 2, -1)
			if fb := r.feedback(); len(fb) != 1 || fb[0].SSRC != 3 {
				t.Fatalf("switch up asked %+v, want a PLI for ssrc 3", fb)
			}
		}
		for enc := 0; enc < 3; enc++ {
			v := vp8{ssrc: uint32(enc + 1), seq: uint16(1000*enc + i), ts: uint32(777*enc + 3000*i), pid: uint16(50*enc + i),
				key: i == 0 || (enc == 2 && i == 15), payload: byte(enc)}
			for _, g := range r.in(now, enc, v) {
				p, _ := wire(t, g)
				outs = append(outs, p)
			}
		}
	}
	// Frame 15 of the low encoding arrived before the high encoding's
	// keyframe of the same instant, so both go out: 31 packets.
	if len(outs) != 31 {
		t.Fatalf("forwarded %d packets, want 31", len(outs))
	}
	for i, p := range outs {
		want := byte(0)
		if i >= 16 {
			want = 2
		}
		if body := p.Payload[len(p.Payload)-1]; body != want {
			t.Fatalf("frame %d came from encoding %d, want %d", i, body, want)
		}
		if i > 0 && (p.SequenceNumber != outs[i-1].SequenceNumber+1 || int32(p.Timestamp-outs[i-1].Timestamp) <= 0) {
			t.Fatalf("frame %d: seq %d→%d ts %d→%d", i, outs[i-1].SequenceNumber, p.SequenceNumber, outs[i-1].Timestamp, p.Timestamp)
		}
	}
	if sp, _ := r.lt.CurrentLayers(); sp != 2 {
		t.Fatalf("current encoding %d, want 2", sp)
	}
}

func TestLocalNACKServedFromHistory(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	var sent []track.Transmit
	for i := 0; i < 10; i++ {
		sent = append(sent, r.in(t0, 0, vp8{ssrc: 100, seq: uint16(i), ts: uint32(3000 * i), pid: uint16(i), key: i == 0, payload: byte(i)})...)
	}
	_, orig := wire(t, sent[4])
	now := t0.Add(50 * time.Millisecond)
	if !r.lt.HandleNACK(now, sent[4].SequenceNumber, &r.out) {
		t.Fatal("NACK not served")
	}
	got := r.poll()
	if len(got) != 1 || !got[0].Retransmit {
		t.Fatalf("retransmissions %+v", got)
	}
	if _, again := wire(t, got[0]); string(again) != string(orig) {
		t.Fatalf("retransmission differs from the original:\n%x\n%x", again, orig)
	}
	// Not sent: a miss.
	if r.lt.HandleNACK(now, sent[9].SequenceNumber+100, &r.out) {
		t.Fatal("NACK for a packet never sent was served")
	}
	// Bounded per packet: a lying subscriber cannot flood.
	served := 1
	for i := 0; i < 20; i++ {
		now = now.Add(50 * time.Millisecond)
		if r.lt.HandleNACK(now, sent[4].SequenceNumber, &r.out) {
			served++
		}
	}
	r.poll()
	if served != 3 {
		t.Fatalf("packet retransmitted %d times, want at most 3", served)
	}
	if s := r.lt.Stats(); s.Retransmits != 3 || s.NACKMisses != 19 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLocalLatePacketKeepsItsPlace(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	r.in(t0, 0, vp8{ssrc: 100, seq: 1, ts: 0, pid: 1, key: true})
	a := r.in(t0, 0, vp8{ssrc: 100, seq: 3, ts: 6000, pid: 3})
	late := r.in(t0, 0, vp8{ssrc: 100, seq: 2, ts: 3000, pid: 2})
	if len(a) != 1 || len(late) != 1 {
		t.Fatalf("forwarded %d, %d", len(a), len(late))
	}
	if late[0].SequenceNumber != a[0].SequenceNumber-1 {
		t.Fatalf("late packet got seq %d, want %d", late[0].SequenceNumber, a[0].SequenceNumber-1)
	}
	// A duplicate is dropped by the source.
	var p track.Packet
	_ = p.Unmarshal(vp8{ssrc: 100, seq: 2, ts: 3000, pid: 2}.bytes())
	if _, err := r.rt.HandleRTP(t0, &p, 0); err == nil {
		t.Fatal("duplicate accepted")
	}
}

func TestLocalPauseResume(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	r.feedback()
	var last track.Transmit
	for i := 0; i < 5; i++ {
		last = r.in(t0, 0, vp8{ssrc: 100, seq: uint16(i), ts: uint32(3000 * i), pid: uint16(i), key: i == 0})[0]
	}
	r.lt.SetPaused(t0, true)
	if got := r.in(t0, 0, vp8{ssrc: 100, seq: 5, ts: 15000, pid: 5, key: true}); len(got) != 0 {
		t.Fatal("forwarded while paused")
	}
	now := t0.Add(time.Second)
	r.lt.SetPaused(now, false)
	if fb := r.feedback(); len(fb) != 1 {
		t.Fatalf("resume asked for %d keyframes, want 1", len(fb))
	}
	if got := r.in(now, 0, vp8{ssrc: 100, seq: 6, ts: 18000, pid: 6}); len(got) != 0 {
		t.Fatal("resumed on a delta frame")
	}
	got := r.in(now, 0, vp8{ssrc: 100, seq: 7, ts: 21000, pid: 7, key: true})
	if len(got) != 1 || got[0].SequenceNumber != last.SequenceNumber+1 {
		t.Fatalf("resume: %+v after seq %d", got, last.SequenceNumber)
	}
}

func TestRemoteKeyframeRequestsCoalesceAndRetry(t *testing.T) {
	var out track.Output
	rt := track.NewRemoteTrack(track.RemoteConfig{Info: track.Info{Codec: track.CodecVP8}, Encodings: []track.Encoding{{SSRC: 1}}}, &out)
	count := func() int {
		n := 0
		for {
			if _, ok := out.PollFeedback(); !ok {
				return n
			}
			n++
		}
	}
	for i := 0; i < 50; i++ {
		rt.RequestKeyframe(t0, 0)
	}
	if n := count(); n != 1 {
		t.Fatalf("50 requests sent %d PLIs, want 1", n)
	}
	// Unanswered: retried after KeyframeRetry, not before.
	if at, ok := out.PollTimeout(); !ok || !at.Equal(t0.Add(track.DefaultKeyframeRetry)) {
		t.Fatalf("timeout %v %v", at, ok)
	}
	out.HandleTimeout(t0.Add(500 * time.Millisecond))
	if n := count(); n != 0 {
		t.Fatalf("retried early")
	}
	out.HandleTimeout(t0.Add(track.DefaultKeyframeRetry))
	if n := count(); n != 1 {
		t.Fatalf("no retry")
	}
	// A keyframe answers it: no more retries, timer list empties.
	var p track.Packet
	_ = p.Unmarshal(vp8{ssrc: 1, seq: 1, key: true}.bytes())
	if _, err := rt.HandleRTP(t0.Add(1100*time.Millisecond), &p, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := out.PollTimeout(); ok || out.Timers() != 0 {
		t.Fatal("timer still set after the keyframe")
	}
	// A new request right after the last one waits out the minimum interval.
	rt.RequestKeyframe(t0.Add(1200*time.Millisecond), 0)
	if n := count(); n != 0 {
		t.Fatal("request inside the minimum interval sent at once")
	}
	at, _ := out.PollTimeout()
	if want := t0.Add(track.DefaultKeyframeRetry + track.DefaultKeyframeMinInterval); !at.Equal(want) {
		t.Fatalf("deferred to %v, want %v", at.Sub(t0), want.Sub(t0))
	}
	out.HandleTimeout(at)
	if n := count(); n != 1 {
		t.Fatal("deferred request not sent")
	}
}

func TestHistoryWraps(t *testing.T) {
	var out track.Output
	rt := track.NewRemoteTrack(track.RemoteConfig{Info: track.Info{Codec: track.CodecVP8}, Encodings: []track.Encoding{{SSRC: 1}},
		HistoryPackets: 16, HistoryBytes: 400}, &out)
	var exts []uint64
	for i := 0; i < 40; i++ {
		var p track.Packet
		_ = p.Unmarshal(vp8{ssrc: 1, seq: uint16(65520 + i), payload: byte(i), key: i == 0}.bytes())
		s, err := rt.HandleRTP(t0, &p, 0)
		if err != nil {
			t.Fatal(err)
		}
		exts = append(exts, s.ExtSeq)
	}
	for i, ext := range exts {
		p := rt.Packet(0, ext)
		// 36-byte payloads in a 400-byte ring: the last 11 survive.
		if i >= 40-11 {
			if p == nil || p.Payload[len(p.Payload)-1] != byte(i) {
				t.Fatalf("packet %d lost or corrupted", i)
			}
		} else if p != nil {
			t.Fatalf("packet %d still served after its bytes were reused", i)
		}
	}
	if exts[39]-exts[0] != 39 {
		t.Fatal("extended sequence numbers did not unwrap")
	}
}

// TestLocalFollowsActiveEncodings: a subscriber asking for the top
// simulcast layer gets the highest one the publisher actually sends, moves
// up when a higher one starts and down when it stops.
func TestLocalFollowsActiveEncodings(t *testing.T) {
	r := newRig(t, track.Encoding{RID: "q", SSRC: 1}, track.Encoding{RID: "h", SSRC: 2}, track.Encoding{RID: "f", SSRC: 3})
	r.lt.SetSource(t0, r.rt) // wants the highest
	now := t0
	frame := 0
	send := func(encs ...int) (from []int) {
		now = now.Add(33 * time.Millisecond)
		for _, enc := range encs {
			v := vp8{ssrc: uint32(enc + 1), seq: uint16(1000*enc + frame), ts: uint32(3000 * frame), pid: uint16(frame),
				key: frame%30 == 0, payload: byte(enc)}
			for _, g := range r.in(now, enc, v) {
				from = append(from, int(g.Payload[len(g.Payload)-1]))
			}
		}
		frame++
		return from
	}
	// Only the low layer flows (a browser with a low bandwidth estimate).
	var got []int
	for i := 0; i < 30; i++ {
		got = append(got, send(0)...)
	}
	if len(got) < 29 || got[0] != 0 {
		t.Fatalf("with only q flowing, forwarded %v", got)
	}
	// f starts: the track moves up at f's next keyframe.
	got = nil
	for i := 0; i < 40; i++ {
		got = append(got, send(0, 2)...)
	}
	if got[len(got)-1] != 2 {
		t.Fatalf("did not move up to f: %v", got)
	}
	// f stops: after the active window the track falls back to q.
	got = nil
	for i := 0; i < 90; i++ {
		got = append(got, send(0)...)
	}
	if len(got) == 0 || got[len(got)-1] != 0 {
		t.Fatalf("did not fall back to q: %v", got)
	}
	if s := r.lt.Stats(); s.Switches < 3 {
		t.Fatalf("switches %d", s.Switches)
	}
}

// TestLocalPaddingLeavesNoGap: a publisher's padding-only packets (bandwidth
// probes) take sequence numbers; subscribers get no packet and no gap.
func TestLocalPaddingLeavesNoGap(t *testing.T) {
	r := newRig(t)
	r.lt.SetSource(t0, r.rt)
	a := r.in(t0, 0, vp8{ssrc: 100, seq: 1, ts: 0, pid: 1, key: true})
	pad := []byte{0xa0, 96, 0, 2, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 4} // P bit, 4 bytes of padding
	var p track.Packet
	if err := p.Unmarshal(pad); err != nil || len(p.Payload) != 0 {
		t.Fatalf("padding packet: %v, payload %d", err, len(p.Payload))
	}
	stored, err := r.rt.HandleRTP(t0, &p, 0)
	if err != nil {
		t.Fatalf("padding refused: %v", err)
	}
	if r.lt.Forward(t0, stored, &r.out) {
		t.Fatal("padding forwarded")
	}
	b := r.in(t0, 0, vp8{ssrc: 100, seq: 3, ts: 3000, pid: 2})
	if len(b) != 1 || b[0].SequenceNumber != a[0].SequenceNumber+1 {
		t.Fatalf("after padding: %+v", b)
	}
	if s := r.rt.Stats(); s.Padding != 1 || s.Malformed != 0 {
		t.Fatalf("remote stats %+v", s)
	}
}

// TestRemoteKeyframeRequestWaitsForSSRC: a request made before a RID
// encoding's SSRC is known goes out with its first packet, not a retry
// interval later.
func TestRemoteKeyframeRequestWaitsForSSRC(t *testing.T) {
	var out track.Output
	rt := track.NewRemoteTrack(track.RemoteConfig{Info: track.Info{Codec: track.CodecVP8}, Encodings: []track.Encoding{{RID: "q"}}}, &out)
	rt.RequestKeyframe(t0, 0)
	if _, ok := out.PollFeedback(); ok {
		t.Fatal("request sent without an SSRC")
	}
	rt.BindSSRC(0, 77)
	var p track.Packet
	_ = p.Unmarshal(vp8{ssrc: 77, seq: 1, pid: 1}.bytes())
	if _, err := rt.HandleRTP(t0.Add(10*time.Millisecond), &p, 0); err != nil {
		t.Fatal(err)
	}
	f, ok := out.PollFeedback()
	if !ok || f.SSRC != 77 {
		t.Fatalf("no request with the first packet: %+v %v", f, ok)
	}
}
