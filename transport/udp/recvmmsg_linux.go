//go:build linux

package udp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr mirrors struct mmsghdr; Go's alignment gives the C padding on
// both 32- and 64-bit targets.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// mmsgReader reads batches with recvmmsg(2) directly. Unlike x/net's
// ReadBatch, which allocates a net.UDPAddr per datagram, it parses the
// sockaddrs it owns into netip.AddrPort, so a steady-state batch read
// allocates nothing.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
	n     int
	errno syscall.Errno
	read  func(fd uintptr) bool
}

func newBatchReader(conn *net.UDPConn, bufs [][]byte) (*mmsgReader, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &mmsgReader{
		rc:    rc,
		hdrs:  make([]mmsghdr, len(bufs)),
		iovs:  make([]unix.Iovec, len(bufs)),
		names: make([]unix.RawSockaddrInet6, len(bufs)),
		bufs:  bufs,
	}
	for i := range bufs {
		r.iovs[i].Base = &bufs[i][0]
		r.iovs[i].SetLen(len(bufs[i]))
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.SetIovlen(1)
	}
	r.read = r.doRead // one closure for the reader's life: no allocation per call
	return r, nil
}

func (r *mmsgReader) doRead(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		r.hdrs[i].hdr.Flags = 0
		r.hdrs[i].len = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
		uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	if errno == unix.EAGAIN || errno == unix.EINTR {
		return false // wait for readability and retry
	}
	r.n, r.errno = int(n), errno
	return true
}

// readBatch fills up to len(bufs) datagrams and returns how many.
func (r *mmsgReader) readBatch() (int, error) {
	if err := r.rc.Read(r.read); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, r.errno
	}
	return r.n, nil
}

// datagram returns the i-th datagram of the last batch, its sender and
// whether it was truncated.
func (r *mmsgReader) datagram(i int) ([]byte, netip.AddrPort, bool) {
	h := &r.hdrs[i]
	b := r.bufs[i][:h.len]
	trunc := h.hdr.Flags&unix.MSG_TRUNC != 0
	sa := (*[28]byte)(unsafe.Pointer(&r.names[i]))
	port := binary.BigEndian.Uint16(sa[2:4])
	switch r.names[i].Family {
	case unix.AF_INET:
		return b, netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port), trunc
	case unix.AF_INET6:
		a := netip.AddrFrom16([16]byte(sa[8:24])).Unmap()
		return b, netip.AddrPortFrom(a, port), trunc
	}
	return b, netip.AddrPort{}, true
}
