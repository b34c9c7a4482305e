//go:build linux

package udp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// gsoBatches are WriteBatch calls shaped like an SFU's: each packet in
// turn to every destination. A video frame (5×1200 + 600 bytes), then
// small packets of mixed sizes, then more equal-sized packets than one
// GSO send may carry (64), then more bytes than one may carry (64 KiB).
func gsoBatches(to []netip.AddrPort) [][]Datagram {
	sizes := [][]int{
		{1200, 1200, 1200, 1200, 1200, 600},
		{100, 120, 120, 80, 80, 80, 200},
		slices.Repeat([]int{200}, 70),
		slices.Repeat([]int{1400}, 60),
	}
	var out [][]Datagram
	seq := uint32(0)
	for _, ss := range sizes {
		var ds []Datagram
		for _, n := range ss {
			for v, a := range to {
				b := make([]byte, n)
				binary.BigEndian.PutUint32(b, seq)
				b[4] = byte(v)
				for i := 5; i < n; i++ {
					b[i] = byte(seq) + byte(i)
				}
				ds = append(ds, Datagram{B: b, To: a})
			}
			seq++
		}
		out = append(out, ds)
	}
	return out
}

// sendAndReceive writes each batch through m and returns what each
// receiver got, in order.
func sendAndReceive(t *testing.T, m *Mux, rx []*net.UDPConn, batches [][]Datagram) [][]string {
	t.Helper()
	got := make([][]string, len(rx))
	for _, ds := range batches {
		want := make([]int, len(rx))
		for _, d := range ds {
			for i, c := range rx {
				if c.LocalAddr().(*net.UDPAddr).AddrPort() == d.To {
					want[i]++
				}
			}
		}
		if n, err := m.WriteBatch(ds); n != len(ds) || err != nil {
			t.Fatalf("WriteBatch = %d, %v; want %d", n, err, len(ds))
		}
		buf := make([]byte, 2048)
		for i, c := range rx {
			for range want[i] {
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("receiver %d: %v after %d datagrams", i, err, len(got[i]))
				}
				got[i] = append(got[i], string(buf[:n]))
			}
		}
	}
	return got
}

// The GSO path, the plain path, and a GSO path the kernel refuses (the
// fallback) deliver the same datagrams, each destination's in order,
// with no segment merged or split differently.
func TestMuxWriteBatchGSO(t *testing.T) {
	var rx []*net.UDPConn
	var to []netip.AddrPort
	for range 3 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadBuffer(4 << 20)
		rx = append(rx, c)
		to = append(to, c.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	batches := gsoBatches(to)
	want := make([][]string, len(rx))
	for _, ds := range batches {
		for _, d := range ds {
			want[slices.Index(to, d.To)] = append(want[slices.Index(to, d.To)], string(d.B))
		}
	}
	total := 0
	for _, ds := range batches {
		total += len(ds)
	}

	for _, mode := range []string{"gso", "plain", "refused"} {
		t.Run(mode, func(t *testing.T) {
			m := startMux(t, Config{DisableGSO: mode == "plain"})
			if mode == "refused" {
				m.w.refuse = unix.EIO
			}
			got := sendAndReceive(t, m, rx, batches)
			for i := range rx {
				if !slices.Equal(got[i], want[i]) {
					t.Fatalf("receiver %d got %d datagrams, differing from the %d sent", i, len(got[i]), len(want[i]))
				}
			}
			st := m.WriteStats()
			if st.Datagrams != uint64(total) {
				t.Errorf("Datagrams %d, want %d", st.Datagrams, total)
			}
			switch mode {
			case "gso":
				// Per destination: the frame in one; 100 alone,
				// 120+120+80 (a shorter one ends a send), 80+80, 200
				// alone; 64+6; 46 (64 KiB) + 14: 7 GSO sends.
				if !st.GSO || st.GSOMessages != 3*7 || st.GSOFallbacks != 0 {
					t.Errorf("stats %+v: want GSO on, 21 GSO messages, no fallback", st)
				}
				if st.Syscalls != uint64(len(batches)) {
					t.Errorf("%d syscalls for %d batches", st.Syscalls, len(batches))
				}
			case "plain":
				if st.GSO || st.GSOMessages != 0 {
					t.Errorf("stats %+v: want no GSO", st)
				}
			case "refused":
				// The first GSO send is refused with EIO: resent one by
				// one, and GSO is off for the rest.
				if st.GSO || st.GSOFallbacks != 1 || st.GSOMessages != 0 {
					t.Errorf("stats %+v: want one fallback, then GSO off", st)
				}
			}
		})
	}
}

// Nothing is allocated per batch on the GSO path either.
func TestMuxWriteBatchGSOAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	m := startMux(t, Config{})
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ds := gsoBatches([]netip.AddrPort{c.LocalAddr().(*net.UDPAddr).AddrPort(), netip.MustParseAddrPort("127.0.0.1:9")})[0]
	m.WriteBatch(ds)
	if n := testing.AllocsPerRun(50, func() { m.WriteBatch(ds) }); n > 0 {
		t.Errorf("WriteBatch allocates %v", n)
	}
	if st := m.WriteStats(); !st.GSO || st.GSOMessages == 0 {
		t.Errorf("stats %+v: GSO not used", st)
	}
}

// BenchmarkWriteBatch sends a fan-out batch (a 6-packet frame to each of
// 100 destinations that do not read) with and without GSO.
func BenchmarkWriteBatch(b *testing.B) {
	var to []netip.AddrPort
	for range 100 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		to = append(to, c.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	ds := gsoBatches(to)[0]
	for _, gso := range []bool{true, false} {
		b.Run(fmt.Sprintf("gso=%v", gso), func(b *testing.B) {
			m, err := Listen(Config{DisableGSO: !gso})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			b.ReportAllocs()
			for b.Loop() {
				m.WriteBatch(ds)
			}
			b.ReportMetric(float64(b.N*len(ds))/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
