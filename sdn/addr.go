package sdn

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// NodeID names a node of the overlay. Its high ZoneBits bits name the
// node's zone: routes inside a zone are kept per node, routes to other
// zones per zone. The zero NodeID is never a valid node.
type NodeID uint32

// ZoneBits is how many high bits of a NodeID name its zone.
const ZoneBits = 8

// ZoneID names a zone (the high ZoneBits bits of its nodes' ids).
type ZoneID uint8

// MakeNodeID returns the id of node local in zone. local must fit in
// 32-ZoneBits bits; higher bits are dropped.
func MakeNodeID(zone ZoneID, local uint32) NodeID {
	return NodeID(uint32(zone)<<(32-ZoneBits) | local&(1<<(32-ZoneBits)-1))
}

// Zone is the zone the node belongs to.
func (n NodeID) Zone() ZoneID { return ZoneID(uint32(n) >> (32 - ZoneBits)) }

// String prints the id as a decimal number, the form addresses use.
func (n NodeID) String() string { return strconv.FormatUint(uint64(n), 10) }

// ErrBadAddr is returned (wrapped) by ParseAddr for a malformed address.
var ErrBadAddr = errors.New("sdn: malformed address")

// Addr is a node's printable address: its id and the UDP endpoint its
// driver listens on, written
//
//	<node-id>@/ip4/<ipv4>/udp/<port>
//	<node-id>@/ip6/<ipv6>/udp/<port>
//
// for example "10@/ip4/127.0.0.1/udp/10001". The id is decimal (zone in
// the high ZoneBits bits: node 5 of zone 1 is 16777221). A node prints its
// address on start; others pass it as a seed.
type Addr struct {
	Node NodeID
	UDP  netip.AddrPort
}

// String formats the address in the documented form.
func (a Addr) String() string {
	ip := a.UDP.Addr()
	proto := "ip4"
	if ip.Is6() && !ip.Is4In6() {
		proto = "ip6"
	} else {
		ip = ip.Unmap()
	}
	return fmt.Sprintf("%d@/%s/%s/udp/%d", a.Node, proto, ip, a.UDP.Port())
}

// ParseAddr parses the form String prints.
func ParseAddr(s string) (Addr, error) {
	id, rest, ok := strings.Cut(s, "@")
	if !ok {
		return Addr{}, fmt.Errorf("%w %q: missing '@'", ErrBadAddr, s)
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil || n == 0 {
		return Addr{}, fmt.Errorf("%w %q: bad node id", ErrBadAddr, s)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[0] != "" || parts[3] != "udp" || (parts[1] != "ip4" && parts[1] != "ip6") {
		return Addr{}, fmt.Errorf("%w %q: want /ip4|ip6/<ip>/udp/<port>", ErrBadAddr, s)
	}
	ip, err := netip.ParseAddr(parts[2])
	if err != nil || ip.Zone() != "" || (parts[1] == "ip4") != ip.Is4() {
		return Addr{}, fmt.Errorf("%w %q: bad ip", ErrBadAddr, s)
	}
	port, err := strconv.ParseUint(parts[4], 10, 16)
	if err != nil {
		return Addr{}, fmt.Errorf("%w %q: bad port", ErrBadAddr, s)
	}
	return Addr{Node: NodeID(n), UDP: netip.AddrPortFrom(ip, uint16(port))}, nil
}
