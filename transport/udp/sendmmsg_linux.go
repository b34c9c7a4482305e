//go:build linux

package udp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// GSO limits: the kernel takes at most 64 segments per UDP_SEGMENT send
// (UDP_MAX_SEGMENTS before Linux 6.9), and a GSO datagram is one IP
// packet of at most 64 KiB before segmentation.
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65000
)

// cmsgSpace is the room one UDP_SEGMENT control message takes.
var cmsgSpace = unix.CmsgSpace(2)

// batchWriter sends batches with sendmmsg(2) directly, with UDP GSO
// (UDP_SEGMENT) where it pays. x/net's WriteBatch cannot attach a
// per-message control message without allocating, nor regroup; and its
// net.UDPAddr destinations need a cache. Here the writer owns every
// array the system call reads (headers, iovecs, sockaddrs, control
// messages) and reuses them, so a steady-state batch allocates nothing.
//
// With GSO each batch is regrouped by destination, keeping each
// destination's datagrams in order (an SFU's batch is every viewer's
// copy of each packet in turn), and a destination's consecutive datagrams
// of one size, the last possibly shorter, go as one message carrying them
// as segments: the kernel builds and routes one large datagram and splits
// it at the end (on a NIC with segmentation offload, in hardware). Each
// segment's iovec points at its own buffer: nothing is copied.
type batchWriter struct {
	conn  *net.UDPConn
	rc    syscall.RawConn
	v6    bool // AF_INET6 socket: every destination as sockaddr_in6
	gso   bool
	stats WriteStats
	// refuse, set by tests, fails every GSO message with this errno
	// before the system call, as a kernel or device that refuses GSO
	// would.
	refuse syscall.Errno

	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte
	segs  []int32 // datagrams per message
	first []int32 // index in order of a message's first datagram

	// Regrouping: order is the sending order of ds's indices; groups
	// are found with an open-addressing table of destinations.
	order        []int32
	next         []int32
	table        []int32 // group index + 1; 0 is empty
	gkey         []netip.AddrPort
	ghead, gtail []int32

	// One sendmmsg call: its arguments and results, for the send
	// closure (made once, so a call allocates nothing).
	off, cnt int
	n        int
	errno    syscall.Errno
	send     func(fd uintptr) bool
}

func newBatchWriter(conn *net.UDPConn, disableGSO bool) (*batchWriter, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &batchWriter{conn: conn, rc: rc}
	w.v6 = conn.LocalAddr().(*net.UDPAddr).IP.To4() == nil
	if !disableGSO {
		// The kernel has UDP_SEGMENT (Linux 4.18+) if it answers the
		// option on this socket.
		var serr error
		if err := rc.Control(func(fd uintptr) {
			_, serr = unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
		}); err == nil && serr == nil {
			w.gso = true
		}
	}
	w.stats.GSO = w.gso
	w.send = w.doSend
	return w, nil
}

func (w *batchWriter) doSend(fd uintptr) bool {
	if w.refuse != 0 && w.segs[w.off] > 1 {
		w.n, w.errno = 0, w.refuse
		return true
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[w.off])),
			uintptr(w.cnt), unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno == unix.EAGAIN {
			return false // wait for room in the socket buffer
		}
		w.n, w.errno = int(n), errno
		if errno != 0 {
			w.n = 0
		}
		return true
	}
}

// grow makes every array hold n datagrams.
func (w *batchWriter) grow(n int) {
	if len(w.order) >= n {
		return
	}
	n = max(n, 64, 2*len(w.order))
	w.hdrs = make([]mmsghdr, n)
	w.iovs = make([]unix.Iovec, n)
	w.names = make([]unix.RawSockaddrInet6, n)
	w.oob = make([]byte, n*cmsgSpace)
	w.segs = make([]int32, n)
	w.first = make([]int32, n)
	w.order = make([]int32, n)
	w.next = make([]int32, n)
	w.gkey = make([]netip.AddrPort, n)
	w.ghead = make([]int32, n)
	w.gtail = make([]int32, n)
	size := 1
	for size < 2*n {
		size <<= 1
	}
	w.table = make([]int32, size)
}

// regroup fills order with ds's indices, destination by destination in
// order of first appearance, each destination's datagrams in their order.
func (w *batchWriter) regroup(ds []Datagram) {
	table := w.table
	clear(table)
	mask := uint64(len(table) - 1)
	ng := int32(0)
	for i := range ds {
		w.next[i] = -1
		to := ds[i].To
		h := hashAddrPort(to) & mask
		for {
			g := table[h]
			if g == 0 {
				table[h] = ng + 1
				w.gkey[ng], w.ghead[ng], w.gtail[ng] = to, int32(i), int32(i)
				ng++
				break
			}
			if w.gkey[g-1] == to {
				w.next[w.gtail[g-1]] = int32(i)
				w.gtail[g-1] = int32(i)
				break
			}
			h = (h + 1) & mask
		}
	}
	k := 0
	for g := range ng {
		for i := w.ghead[g]; i >= 0; i = w.next[i] {
			w.order[k] = i
			k++
		}
	}
	clear(w.gkey[:ng]) // drop zone handles
}

func hashAddrPort(a netip.AddrPort) uint64 {
	b := a.Addr().As16()
	h := binary.LittleEndian.Uint64(b[:8])*0x9E3779B97F4A7C15 ^ binary.LittleEndian.Uint64(b[8:])
	h = (h ^ uint64(a.Port())) * 0xBF58476D1CE4E5B9
	return h ^ h>>31
}

// sockaddr writes to as the socket's family into name and returns its
// length, or 0 if the socket cannot send there.
func (w *batchWriter) sockaddr(name *unix.RawSockaddrInet6, to netip.AddrPort) uint32 {
	addr := to.Addr()
	if !w.v6 {
		if !addr.Unmap().Is4() {
			return 0
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: addr.Unmap().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], to.Port())
		return unix.SizeofSockaddrInet4
	}
	*name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: addr.As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&name.Port))[:], to.Port())
	return unix.SizeofSockaddrInet6
}

var errAddrFamily = &net.AddrError{Err: "destination not reachable from this socket's address family"}

// write sends ds; see Mux.WriteBatch.
func (w *batchWriter) write(ds []Datagram) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	w.grow(len(ds))
	if w.gso {
		w.regroup(ds)
	} else {
		for i := range ds {
			w.order[i] = int32(i)
		}
	}
	sent := 0
	var first error
	for pos := 0; pos < len(ds); {
		nmsg := w.build(ds, pos, &first)
		n, next, err := w.sendAll(ds, nmsg)
		sent += n
		if first == nil {
			first = err
		}
		pos = next
	}
	for i := range ds {
		w.iovs[i].Base = nil // do not pin the caller's buffers
	}
	w.stats.Datagrams += uint64(sent)
	return sent, first
}

// build makes the messages for the datagrams at order[pos:] and returns
// how many. A datagram the socket cannot address sets *first.
func (w *batchWriter) build(ds []Datagram, pos int, first *error) int {
	nmsg := 0
	for i := pos; i < len(ds); {
		d := &ds[w.order[i]]
		h := &w.hdrs[nmsg]
		nl := w.sockaddr(&w.names[nmsg], d.To)
		if nl == 0 {
			if *first == nil {
				*first = errAddrFamily
			}
			i++
			continue
		}
		size := len(d.B)
		k, total := 1, size
		w.setIov(i, d.B)
		if w.gso && size > 0 {
			for j := i + 1; j < len(ds) && k < gsoMaxSegments; j++ {
				e := &ds[w.order[j]]
				if e.To != d.To || len(e.B) > size || len(e.B) == 0 || total+len(e.B) > gsoMaxBytes {
					break
				}
				w.setIov(j, e.B)
				k++
				total += len(e.B)
				if len(e.B) < size {
					break // a shorter segment ends the message
				}
			}
		}
		*h = mmsghdr{}
		h.hdr.Name = (*byte)(unsafe.Pointer(&w.names[nmsg]))
		h.hdr.Namelen = nl
		h.hdr.Iov = &w.iovs[i]
		h.hdr.SetIovlen(k)
		if k > 1 {
			oob := w.oob[nmsg*cmsgSpace : (nmsg+1)*cmsgSpace]
			clear(oob)
			cm := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
			cm.Level, cm.Type = unix.SOL_UDP, unix.UDP_SEGMENT
			cm.SetLen(unix.CmsgLen(2))
			binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
			h.hdr.Control = &oob[0]
			h.hdr.SetControllen(cmsgSpace)
		}
		w.segs[nmsg], w.first[nmsg] = int32(k), int32(i)
		nmsg++
		i += k
	}
	return nmsg
}

func (w *batchWriter) setIov(i int, b []byte) {
	iov := &w.iovs[i]
	iov.Base = nil
	if len(b) > 0 {
		iov.Base = &b[0]
	}
	iov.SetLen(len(b))
}

// sendAll sends the nmsg messages built and returns how many datagrams
// went, and where in order to go on: past the end, or, when GSO was
// turned off on the way, the first datagram of the messages still to be
// rebuilt without it. A message the kernel refuses is skipped (a GSO one
// is resent datagram by datagram first); only a closed socket stops it
// early.
func (w *batchWriter) sendAll(ds []Datagram, nmsg int) (int, int, error) {
	sent := 0
	var first error
	for off := 0; off < nmsg; {
		w.off, w.cnt = off, min(nmsg-off, 1024) // UIO_MAXIOV
		if err := w.rc.Write(w.send); err != nil {
			return sent, len(ds), err
		}
		w.stats.Syscalls++
		for m := off; m < off+w.n; m++ {
			k := int(w.segs[m])
			sent += k
			if k > 1 {
				w.stats.GSOMessages++
				w.stats.GSODatagrams += uint64(k)
			}
		}
		off += w.n
		if w.errno == 0 {
			if w.n == 0 { // cannot happen; do not spin
				off++
			}
			continue
		}
		// The message at off failed (sendmmsg reports an error only for
		// the first message of a call). A GSO one is resent datagram by
		// datagram; the error stands if any of them still fails.
		k, resent := int(w.segs[off]), 0
		if k > 1 {
			resent = w.fallback(ds, off, k)
			sent += resent
		}
		if resent < k && first == nil {
			first = os.NewSyscallError("sendmmsg", w.errno)
		}
		off++
		if k > 1 && !w.gso && off < nmsg {
			return sent, int(w.first[off]), first
		}
	}
	return sent, len(ds), first
}

// fallback resends a refused GSO message's datagrams one by one. EIO
// (the device cannot checksum in hardware, which UDP_SEGMENT needs) and
// the not-supported errors turn GSO off for the socket's life; others
// (EINVAL for a segment larger than the path's MTU, say) cost only this
// message.
func (w *batchWriter) fallback(ds []Datagram, m, k int) int {
	w.stats.GSOFallbacks++
	switch w.errno {
	case unix.EIO, unix.EOPNOTSUPP, unix.ENOPROTOOPT:
		w.gso = false
		w.stats.GSO = false
	}
	sent := 0
	base := int(w.first[m])
	for j := base; j < base+k; j++ {
		d := &ds[w.order[j]]
		if _, err := w.conn.WriteToUDPAddrPort(d.B, d.To); err == nil {
			sent++
		}
	}
	return sent
}
